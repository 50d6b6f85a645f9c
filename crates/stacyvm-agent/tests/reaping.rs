//! The agent as PID 1 of its own pid namespace reports every exit status exactly, even while
//! many very short processes run at once and orphans it never started exit around them: its
//! reaper must never take a status the exec layer is waiting for (nor one `std`'s spawn waits
//! for when the program cannot be executed).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stacyvm_provider::agent_client::AgentClient;
use stacyvm_provider::{ExecSpec, ExitReason, ProviderError};
use stacyvm_types::exec::PtySize;
use tokio::sync::mpsc;

/// Concurrent exec loops.
const WORKERS: usize = 6;
/// Execs per loop.
const ROUNDS: usize = 60;

/// Starts the agent as PID 1 of a new pid namespace (`unshare --kill-child`: the namespace dies
/// with the test's handle). Without root it maps itself to root in a new user namespace.
fn agent_as_pid1(dir: &Path) -> Option<common::KillOnDrop> {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("workspace")).unwrap();
    let socket = dir.join("agent.sock");
    let mut cmd = Command::new("unshare");
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        cmd.arg("--map-root-user");
    }
    cmd.args(["--pid", "--fork", "--kill-child", "--", env!("CARGO_BIN_EXE_stacyvm-agent")])
        .args(["--listen", socket.to_str().unwrap(), "--root", root.to_str().unwrap()])
        .args(["--uid", "0", "--gid", "0"]);
    match cmd.spawn() {
        Ok(child) => Some(common::KillOnDrop(child)),
        Err(e) => {
            eprintln!("skipped: unshare: {e}");
            None
        }
    }
}

fn spec(script: &str, pty: bool) -> ExecSpec {
    ExecSpec {
        argv: ["sh", "-c", script].map(String::from).to_vec(),
        env: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
        workdir: "/workspace".into(),
        timeout: Some(Duration::from_secs(30)),
        pty: pty.then_some(PtySize { rows: 24, cols: 80 }),
    }
}

/// One exec and what it must end with.
async fn check(client: &AgentClient, what: &str, spec: ExecSpec, expected: Result<ExitReason, ()>) {
    let (tx, mut rx) = mpsc::channel(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let outcome = tokio::time::timeout(Duration::from_secs(15), client.exec(spec, 0, 0, tx))
        .await
        .unwrap_or_else(|_| panic!("{what}: no exit reported within 15 s"));
    let _ = drain.await;
    match (outcome, expected) {
        (Ok(outcome), Ok(reason)) => assert_eq!(outcome.reason, reason, "{what}"),
        (Err(ProviderError::InvalidInput(message)), Err(())) => {
            assert!(message.contains("executable not found"), "{what}: {message}")
        }
        (got, expected) => panic!("{what}: got {got:?}, expected {expected:?}"),
    }
}

/// Runs [`WORKERS`] loops of [`ROUNDS`] execs concurrently; `case(worker, round)` says what to
/// run and how it must end.
async fn churn(case: fn(usize, usize) -> (ExecSpec, Result<ExitReason, ()>)) {
    let dir = tempfile::tempdir().unwrap();
    let Some(_agent) = agent_as_pid1(dir.path()) else { return };
    let client = match AgentClient::connect(&dir.path().join("agent.sock"), Duration::from_secs(5)).await {
        Ok(client) => Arc::new(client),
        Err(e) => {
            eprintln!("skipped: no agent in a pid namespace here ({e})");
            return;
        }
    };
    // The agent is PID 1: processes it never started end up as its children.
    check(&client, "pid", spec("test $PPID = 1", false), Ok(ExitReason::Exited(0))).await;

    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let client = Arc::clone(&client);
        workers.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let (spec, expected) = case(worker, round);
                check(&client, &format!("worker {worker} round {round}"), spec, expected).await;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    eprintln!("{} execs in {:?}", WORKERS * ROUNDS, started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_exact_under_concurrent_short_execs_and_orphans() {
    churn(|worker, round| {
        let code = ((worker + round) % 5) as i32;
        match round % 5 {
            // The shortest possible process.
            0 => (ExecSpec { argv: vec!["true".into()], ..spec("", false) }, Ok(ExitReason::Exited(0))),
            1 => (spec(&format!("exit {code}"), false), Ok(ExitReason::Exited(code))),
            // Leaves an orphan that exits a little later (the agent reaps it).
            2 => (
                spec(&format!("sleep 0.0{code} </dev/null >/dev/null 2>&1 & exit {}", code + 10), false),
                Ok(ExitReason::Exited(code + 10)),
            ),
            3 => (spec(&format!("exit {}", code + 20), true), Ok(ExitReason::Exited(code + 20))),
            _ => (spec("kill -9 $$", false), Ok(ExitReason::Signaled(9))),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexecutable_programs_are_reported_while_other_processes_exit() {
    churn(|_, round| match round % 2 {
        // std's spawn reaps a child whose exec failed itself.
        0 => (ExecSpec { argv: vec!["/nonexistent/program".into()], ..spec("", round % 4 == 2) }, Err(())),
        _ => (ExecSpec { argv: vec!["true".into()], ..spec("", false) }, Ok(ExitReason::Exited(0))),
    })
    .await;
}

/// Host pid of the agent: the child of `unshare`.
fn agent_pid(unshare: u32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse::<u32>().ok()?;
        (ppid == unshare).then_some(pid)
    })
}

/// Thread id of the agent's reaper thread.
fn reaper_tid(agent: i32) -> Option<i32> {
    std::fs::read_dir(format!("/proc/{agent}/task")).ok()?.flatten().find_map(|e| {
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "reaper").then(|| e.file_name().to_str()?.parse().ok()).flatten()
    })
}

/// Waits until thread `tid` of `agent` sleeps in `futex`: for the reaper, idle with no children
/// (the spawn lock is free), so the next `ECHILD` it sees comes after the next reap.
async fn wait_until_idle(agent: i32, tid: i32) -> bool {
    for _ in 0..500 {
        let syscall = std::fs::read_to_string(format!("/proc/{agent}/task/{tid}/syscall")).unwrap_or_default();
        if syscall.split_whitespace().next().and_then(|nr| nr.parse::<i64>().ok()) == Some(libc::SYS_futex) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// What the tracer thread reports.
#[derive(Debug)]
enum Traced {
    Attached,
    /// The reaper just learnt from the kernel that it has no children, and is held there.
    HeldAfterNoChildren,
    Failed(String),
}

/// `struct ptrace_syscall_info` (linux/ptrace.h) up to the first member of its union.
#[repr(C)]
#[derive(Default)]
struct SyscallInfo {
    op: u8,
    pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    /// Entry: the syscall number; exit: the return value.
    nr_or_rval: i64,
    rest: [u64; 7],
}

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
const SYSCALL_INFO_ENTRY: u8 = 1;
const SYSCALL_INFO_EXIT: u8 = 2;

/// Traces thread `tid` (ptrace is per thread, so every call happens on this one thread) until
/// a `wait4`/`waitid` of it fails with `ECHILD`, keeps it stopped right there (as a loaded
/// machine may keep a thread off the CPU) until `resume` says so, then detaches.
fn hold_after_no_children(tid: i32, report: mpsc::UnboundedSender<Traced>, resume: std::sync::mpsc::Receiver<()>) {
    let fail = |what: &str| {
        let _ = report.send(Traced::Failed(format!("{what}: {}", std::io::Error::last_os_error())));
    };
    let wait_stop = || {
        let mut status = 0;
        // SAFETY: plain syscall with a valid out-pointer.
        let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        (rc == tid && libc::WIFSTOPPED(status)).then_some(status)
    };
    // SAFETY (all ptrace calls): requests on a thread this thread traces, with valid pointers.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, tid, 0, libc::PTRACE_O_TRACESYSGOOD) != 0 {
            return fail("PTRACE_SEIZE");
        }
        if libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) != 0 || wait_stop().is_none() {
            return fail("PTRACE_INTERRUPT");
        }
    }
    let _ = report.send(Traced::Attached);
    let mut last_nr = -1i64;
    loop {
        // SAFETY: see above.
        if unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0, 0) } != 0 {
            return fail("PTRACE_SYSCALL");
        }
        let Some(status) = wait_stop() else { return fail("waitpid on the traced thread") };
        if libc::WSTOPSIG(status) != (libc::SIGTRAP | 0x80) {
            continue; // An event stop; nothing is ever sent to the reaper.
        }
        let mut info = SyscallInfo::default();
        let size = std::mem::size_of::<SyscallInfo>();
        // SAFETY: see above; the kernel writes at most `size` bytes.
        if unsafe { libc::ptrace(PTRACE_GET_SYSCALL_INFO, tid, size, &mut info as *mut SyscallInfo) } <= 0 {
            return fail("PTRACE_GET_SYSCALL_INFO");
        }
        match info.op {
            SYSCALL_INFO_ENTRY => last_nr = info.nr_or_rval,
            SYSCALL_INFO_EXIT
                if (last_nr == libc::SYS_wait4 || last_nr == libc::SYS_waitid)
                    && info.nr_or_rval == -(libc::ECHILD as i64) =>
            {
                break
            }
            _ => {}
        }
    }
    let _ = report.send(Traced::HeldAfterNoChildren);
    let _ = resume.recv();
    // SAFETY: see above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) };
}

/// Deterministic form of the race behind rare `Exited(-1)` results: the reaper finds no child
/// and is delayed before acting on it, while an exec starts a process that then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_is_delivered_when_the_reaper_is_delayed_after_finding_no_children() {
    let dir = tempfile::tempdir().unwrap();
    let Some(agent) = agent_as_pid1(dir.path()) else { return };
    let Ok(client) = AgentClient::connect(&dir.path().join("agent.sock"), Duration::from_secs(5)).await else {
        eprintln!("skipped: no agent in a pid namespace here");
        return;
    };
    check(&client, "first", spec("exit 0", false), Ok(ExitReason::Exited(0))).await;
    let pid = agent_pid(agent.0.id()).expect("the agent's pid");
    let tid = reaper_tid(pid).expect("the agent's reaper thread");
    assert!(wait_until_idle(pid, tid).await, "the reaper never went idle");

    let (report, mut traced) = mpsc::unbounded_channel();
    let (resume, resumed) = std::sync::mpsc::channel();
    let tracer = std::thread::spawn(move || hold_after_no_children(tid, report, resumed));
    match traced.recv().await {
        Some(Traced::Attached) => {}
        Some(Traced::Failed(why)) => {
            eprintln!("skipped: cannot trace the reaper: {why}");
            return;
        }
        other => panic!("tracer: {other:?}"),
    }
    // Reaping this one leaves the reaper with no children: it is held right after learning that.
    check(&client, "before", ExecSpec { argv: vec!["true".into()], ..spec("", false) }, Ok(ExitReason::Exited(0)))
        .await;
    match tokio::time::timeout(Duration::from_secs(10), traced.recv()).await {
        Ok(Some(Traced::HeldAfterNoChildren)) => {}
        other => panic!("the reaper never found itself without children: {other:?}"),
    }
    // Meanwhile a process starts and exits.
    let client = Arc::new(client);
    let exec = tokio::spawn({
        let client = Arc::clone(&client);
        async move { check(&client, "while held", spec("exit 7", false), Ok(ExitReason::Exited(7))).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    resume.send(()).unwrap();
    tracer.join().unwrap();
    exec.await.unwrap();
    // And the agent goes on reaping normally.
    check(&client, "after", spec("exit 3", false), Ok(ExitReason::Exited(3))).await;
}
