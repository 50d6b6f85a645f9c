//! Child reaping for an agent that runs as PID 1.
//!
//! As PID 1 the agent inherits every orphan in the sandbox, so it must reap them all, while the
//! exec layer needs the exact status of each process it started. One thread does all reaping
//! and routes statuses by pid; it never takes a status that someone else is waiting for:
//!
//! - It first *peeks* at an exited child with `waitid(P_ALL, WEXITED | WNOWAIT)`, which leaves
//!   the child a zombie, then takes the registry lock, and only then collects that very pid
//!   (`waitpid(pid, WNOHANG)`) and hands the status to its waiter, if it has one.
//! - A spawn holds the same lock from before `fork` until the new pid is registered. So a
//!   started child is always registered before its status is collected, and a child whose
//!   `exec` failed is collected by `std`'s spawn itself (it waits for it under the lock; the
//!   reaper then finds nothing left to collect).
//! - "No children" (`ECHILD`) only means "wait for a spawn" if no spawn registered a child since
//!   the reaper asked; otherwise it asks again. A child started while the reaper was delayed
//!   between the kernel's answer and acting on it is therefore never forgotten.

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
    /// Children registered so far (tells the reaper whether a spawn happened while it looked).
    spawns: u64,
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
        self.guard.spawns += 1;
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

/// What the kernel says about this process's children.
enum Peek {
    /// This child has exited and is still a zombie.
    Exited(i32),
    /// There are no children at all.
    NoChildren,
    /// Interrupted; ask again.
    Interrupted,
}

/// Waits until some child has exited, without collecting it.
fn peek() -> Peek {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall with a valid out-pointer.
    let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
    if rc == 0 {
        // SAFETY: waitid filled in a SIGCHLD siginfo, whose pid field is valid.
        let pid = unsafe { info.si_pid() };
        if pid > 0 {
            return Peek::Exited(pid);
        }
        return Peek::Interrupted;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINTR) => Peek::Interrupted,
        _ => Peek::NoChildren,
    }
}

/// Collects `pid` if it is still an exited child of ours (`None` if someone else did).
fn collect(pid: i32) -> Option<WaitStatus> {
    let mut status = 0;
    // SAFETY: plain syscall with a valid out-pointer.
    if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != pid {
        return None;
    }
    if libc::WIFEXITED(status) {
        Some(WaitStatus::Exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(WaitStatus::Signaled(libc::WTERMSIG(status)))
    } else {
        None
    }
}

fn reap_forever(state: &(Mutex<State>, Condvar)) {
    let (lock, cvar) = state;
    let locked = || lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let spawns_before = locked().spawns;
        match peek() {
            Peek::Exited(pid) => {
                // Under the lock: a spawn that forked this pid has registered it by now.
                let mut guard = locked();
                if let Some(status) = collect(pid) {
                    if let Some(tx) = guard.waiters.remove(&pid) {
                        let _ = tx.send(status);
                    }
                }
            }
            Peek::NoChildren => {
                // Every child registered before `spawns_before` was read was still ours to
                // collect, so there is nothing to release; sleep until the next spawn (at once
                // if one happened meanwhile).
                let guard = locked();
                let _guard = cvar.wait_while(guard, |s| s.spawns == spawns_before).unwrap_or_else(|e| e.into_inner());
            }
            Peek::Interrupted => {}
        }
    }
}
