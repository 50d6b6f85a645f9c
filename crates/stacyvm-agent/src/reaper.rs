//! Child reaping for an agent that runs as PID 1.
//!
//! As PID 1 the agent inherits every orphan in the sandbox, so it must reap them all. One
//! thread blocks in `waitpid(-1)`; exits of processes the agent started are delivered to their
//! waiters, everything else is reaped and forgotten. Registration happens under the same lock
//! the reaper takes before looking a pid up, and a spawn holds that lock from fork to
//! registration, so an exit can never be missed.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// How a child ended, as `waitpid` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    /// Normal exit with a code.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

#[derive(Default)]
struct State {
    waiters: HashMap<i32, oneshot::Sender<WaitStatus>>,
    /// Children started and not yet reaped (wakes the reaper when it has nothing to wait for).
    live: usize,
}

/// Shared registry of children the agent waits for.
#[derive(Clone, Default)]
pub struct Reaper {
    state: Arc<(Mutex<State>, Condvar)>,
}

/// Held while spawning: register the new pid before dropping it.
pub struct SpawnGuard<'a> {
    guard: MutexGuard<'a, State>,
    cvar: &'a Condvar,
}

impl SpawnGuard<'_> {
    /// Registers `pid`; its exit status will be sent on the returned channel.
    pub fn register(mut self, pid: i32) -> oneshot::Receiver<WaitStatus> {
        let (tx, rx) = oneshot::channel();
        self.guard.waiters.insert(pid, tx);
        self.guard.live += 1;
        self.cvar.notify_one();
        rx
    }
}

impl Reaper {
    /// Starts the reaper thread.
    pub fn start() -> Self {
        let reaper = Reaper::default();
        let state = Arc::clone(&reaper.state);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap_forever(&state))
            .expect("spawn the reaper thread");
        reaper
    }

    /// Locks the registry for a spawn (fork, then [`SpawnGuard::register`]).
    pub fn lock(&self) -> SpawnGuard<'_> {
        let (lock, cvar) = &*self.state;
        SpawnGuard { guard: lock.lock().unwrap_or_else(|e| e.into_inner()), cvar }
    }
}

fn reap_forever(state: &(Mutex<State>, Condvar)) {
    let (lock, cvar) = state;
    loop {
        let mut status = 0;
        // SAFETY: plain syscall with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            // ECHILD: nothing to wait for until a spawn registers a child. Waiters whose child
            // vanished without us reaping it are released (their receivers see an error).
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            guard.waiters.clear();
            guard.live = 0;
            let _unused = cvar.wait_while(guard, |s| s.live == 0).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        let outcome = if libc::WIFEXITED(status) {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            continue;
        };
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = guard.waiters.remove(&pid) {
            guard.live = guard.live.saturating_sub(1);
            let _ = tx.send(outcome);
        }
    }
}
