//! Sample data shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::Bytes;
use stacyvm_agent_proto::*;

fn entry(path: &str, is_dir: bool) -> FileEntry {
    FileEntry {
        path: path.into(),
        size: if is_dir { 4096 } else { 12 },
        mode: if is_dir { 0o040755 } else { 0o100644 },
        is_dir,
        mtime: 1_700_000_000,
    }
}

/// One instance of every message variant (some twice, with optional fields set and unset).
pub fn all_messages() -> Vec<Message> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
    env.insert("LANG".to_string(), "C.UTF-8 ünïcödé \"quoted\"\n".to_string());
    vec![
        Message::Hello(Hello::new("stacyvm/test")),
        Message::HelloAck(HelloAck { version: 1, agent_version: "0.1.0".into(), features: vec!["pty".into()] }),
        Message::Exec(ExecStart {
            argv: vec!["sh".into(), "-c".into(), "echo hi; exit 3".into()],
            env,
            cwd: "/workspace".into(),
            uid: 1000,
            gid: 1000,
            timeout_ms: Some(30_000),
            stdin: true,
            pty: Some(PtySize { rows: 24, cols: 80 }),
        }),
        Message::Exec(ExecStart {
            argv: vec!["true".into()],
            env: BTreeMap::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            timeout_ms: None,
            stdin: false,
            pty: None,
        }),
        Message::StdinClose,
        Message::Signal { signal: 15 },
        Message::Resize(PtySize { rows: 50, cols: 200 }),
        Message::Cancel,
        Message::FileWrite { path: "/tmp/a".into(), mode: 0o644, uid: 1000, gid: 1000, size: Some(1 << 30) },
        Message::FileWrite { path: "/tmp/b".into(), mode: 0o600, uid: 0, gid: 0, size: None },
        Message::FileRead { path: "/etc/hosts".into(), window: None },
        Message::FileRead { path: "/etc/hosts".into(), window: Some(8) },
        Message::FileAck { chunks: 3 },
        Message::Stat { path: "/etc".into() },
        Message::ListDir { path: "/workspace".into() },
        Message::Glob { pattern: "/workspace/**/*.rs".into() },
        Message::Rename { from: "/tmp/a".into(), to: "/tmp/c".into() },
        Message::Chmod { path: "/tmp/c".into(), mode: 0o755 },
        Message::Remove { path: "/tmp/d".into(), recursive: true },
        Message::Ping,
        Message::Exited(ExitStatus { code: Some(3), signal: None, reason: ExitReason::Exited, duration_ms: 12 }),
        Message::Exited(ExitStatus { code: None, signal: Some(9), reason: ExitReason::Signaled, duration_ms: 1 }),
        Message::Exited(ExitStatus { code: None, signal: Some(9), reason: ExitReason::TimedOut, duration_ms: 30_000 }),
        Message::Exited(ExitStatus { code: None, signal: Some(9), reason: ExitReason::OomKilled, duration_ms: 700 }),
        Message::FileInfo(entry("/etc/hosts", false)),
        Message::DirEntries { entries: vec![entry("/w/src", true), entry("/w/a.txt", false)] },
        Message::DirEntries { entries: vec![] },
        Message::Paths { paths: vec!["/w/a.rs".into(), "/w/b/c.rs".into()] },
        Message::FileEnd { size: 1 << 30 },
        Message::Done,
        Message::Pong,
        Message::error(ErrorKind::NotFound, "no such file"),
        Message::error(ErrorKind::PathEscape, "escapes"),
        Message::error(ErrorKind::InvalidInput, "bad"),
        Message::error(ErrorKind::Unsupported, "v9"),
        Message::error(ErrorKind::Busy, "channel 3 in use"),
        Message::error(ErrorKind::Failed, "EIO"),
    ]
}

/// Every message as a control frame on varied channels, plus data frames of every kind.
pub fn all_frames() -> Vec<Frame> {
    let mut frames: Vec<Frame> =
        all_messages().into_iter().enumerate().map(|(i, m)| Frame::control(i as u32 * 7, m)).collect();
    frames.push(Frame::data(1, DataKind::Stdout, Bytes::from_static(b"hello\n")));
    frames.push(Frame::data(2, DataKind::Stderr, Bytes::from_static(b"oops\xff\x00\n")));
    frames.push(Frame::data(3, DataKind::Stdin, Bytes::from_static(b"input")));
    frames.push(Frame::data(u32::MAX, DataKind::FileData, Bytes::from(vec![0xAB; 70_000])));
    frames.push(Frame::data(5, DataKind::Stdout, Bytes::new()));
    frames
}

/// Encodes frames back to back.
pub fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    for f in frames {
        encode(f, &mut buf).unwrap();
    }
    buf.to_vec()
}

/// A raw frame with the given fields (no validation), for malformed-input tests.
pub fn raw_frame(channel: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(5 + payload.len() as u32).to_be_bytes());
    v.extend_from_slice(&channel.to_be_bytes());
    v.push(kind);
    v.extend_from_slice(payload);
    v
}
