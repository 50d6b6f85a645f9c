//! Exec on a pseudo-terminal through the real agent binary: the process has a controlling
//! terminal of the requested size, sees resizes and input, keeps the sandbox user's identity
//! and lack of privileges, and bad sizes are refused by the agent itself.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use stacyvm_agent_proto::{
    client_handshake, read_frame, write_frame, Body, ErrorKind, ExecStart, Frame, Message, PtySize, PROTOCOL_VERSION,
};
use stacyvm_provider::conformance::{argv, capture, on_pty, shell, Interactive};
use stacyvm_provider::{ExecInput, ExitReason, Provider, SandboxSpec};
use stacyvm_types::exec::{PtySize as ApiPtySize, StreamName};

fn is_root() -> bool {
    // SAFETY: plain getter.
    unsafe { libc::geteuid() == 0 }
}

async fn sandbox(p: &dyn Provider, id: &str) -> stacyvm_provider::RuntimeHandle {
    let spec = SandboxSpec { id: id.into(), image: "host".into(), memory_mb: 64, vcpus: 1 };
    p.create(&spec).await.expect("agent starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_exec_has_a_terminal_sees_resizes_and_input_and_stays_unprivileged() {
    if !is_root() {
        eprintln!("skipped: dropping to uid 1000 needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let provider: Arc<dyn Provider> = Arc::new(common::provider_as(dir.path(), (1000, 1000)));
    let h = sandbox(provider.as_ref(), "sb-pty00001").await;

    let script = "tty; stty size; id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; \
                  read -r pid comm state ppid pgrp sid rest < /proc/$$/stat; [ \"$pid\" = \"$sid\" ] && echo LEADER; \
                  echo READY; read line; echo \"got:$line\"; stty size; exit 3";
    let mut run = Interactive::start(provider.clone(), h.clone(), on_pty(shell(script), 24, 80));
    run.expect("READY").await;
    let lines: Vec<&str> = run.seen.lines().map(str::trim_end).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "tty reports a terminal: {:?}", run.seen);
    assert_eq!(lines[1], "24 80", "initial size: {:?}", run.seen);
    assert_eq!(lines[2], "1000", "sandbox user: {:?}", run.seen);
    assert!(run.seen.contains("CapEff:\t0000000000000000"), "no capabilities: {:?}", run.seen);
    assert!(run.seen.contains("CapPrm:\t0000000000000000"), "no capabilities: {:?}", run.seen);
    assert!(run.seen.contains("NoNewPrivs:\t1"), "no_new_privs: {:?}", run.seen);
    assert!(run.seen.contains("LEADER"), "session leader: {:?}", run.seen);
    run.send(ExecInput::Resize(ApiPtySize { rows: 50, cols: 132 })).await;
    run.type_text("typed at the terminal\n").await;
    run.expect("got:typed at the terminal").await;
    run.expect("50 132").await;
    assert_eq!(run.finish().await.unwrap().reason, ExitReason::Exited(3), "exit code propagates");

    // Without a PTY nothing changes: no terminal.
    let plain = capture(provider.as_ref(), &h, argv(&["tty"])).await.unwrap();
    assert_eq!(plain.reason, ExitReason::Exited(1), "{}", plain.text(StreamName::Stdout));
    assert!(plain.text(StreamName::Stdout).contains("not a tty"));

    // SIGWINCH reaches a program waiting for it.
    let trap = "trap 'stty size; exit 0' WINCH; echo ARMED; while :; do sleep 0.05; done";
    let mut winch = Interactive::start(provider.clone(), h.clone(), on_pty(shell(trap), 24, 80));
    winch.expect("ARMED").await;
    winch.send(ExecInput::Resize(ApiPtySize { rows: 33, cols: 77 })).await;
    winch.expect("33 77").await;
    assert_eq!(winch.finish().await.unwrap().reason, ExitReason::Exited(0));

    // Processes of the session die with a timeout, even in another process group (job control).
    let marker = format!("{}", 41_000_000 + std::process::id());
    let script = format!("set -m; sleep {marker} & echo BG; sleep 30");
    let mut spec = on_pty(shell(&script), 24, 80);
    spec.timeout = Some(Duration::from_millis(500));
    let out = capture(provider.as_ref(), &h, spec).await.unwrap();
    assert_eq!(out.reason, ExitReason::TimedOut);
    assert!(out.text(StreamName::Stdout).contains("BG"), "{}", out.text(StreamName::Stdout));
    assert!(gone(&marker).await, "a background job of the terminal session survived the timeout");
    provider.destroy(&h).await.unwrap();
}

/// Whether no process has `marker` in its command line (waiting a little for the kill).
async fn gone(marker: &str) -> bool {
    for _ in 0..50 {
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        });
        if !alive {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_bad_pty_sizes_and_announces_pty() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("workspace")).unwrap();
    let socket = dir.path().join("agent.sock");
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let agent = Command::new(env!("CARGO_BIN_EXE_stacyvm-agent"))
        .args(["--listen", socket.to_str().unwrap(), "--root", root.to_str().unwrap()])
        .args(["--uid", &uid.to_string(), "--gid", &gid.to_string()])
        .spawn()
        .unwrap();
    let mut guard = common::KillOnDrop(agent);
    let mut stream = loop {
        match tokio::net::UnixStream::connect(&socket).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    let ack = client_handshake(&mut stream, "pty-test").await.unwrap();
    assert_eq!(ack.version, PROTOCOL_VERSION);
    assert!(ack.features.iter().any(|f| f == "pty"), "{ack:?}");
    for (channel, (rows, cols)) in [(1, (0, 80)), (2, (24, 0)), (3, (24, 5000))] {
        let start = ExecStart {
            argv: vec!["true".into()],
            env: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
            cwd: "/workspace".into(),
            uid,
            gid,
            timeout_ms: None,
            stdin: true,
            pty: Some(PtySize { rows, cols }),
        };
        write_frame(&mut stream, &Frame::control(channel, Message::Exec(start))).await.unwrap();
        let reply = read_frame(&mut stream).await.unwrap().unwrap();
        assert_eq!(reply.channel, channel);
        match reply.body {
            Body::Control(Message::Error { kind: ErrorKind::InvalidInput, message }) => {
                assert!(message.contains("pty"), "{message}")
            }
            other => panic!("size {rows}x{cols}: expected invalid_input, got {other:?}"),
        }
    }
    drop(stream);
    guard.0.kill().unwrap();
}
