//! Encoding and decoding of every frame and message kind; the pinned wire format.

mod common;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use common::{all_frames, all_messages, encode_all};
use serde_json::json;
use stacyvm_agent_proto::*;

#[test]
fn every_frame_round_trips_through_the_decoder() {
    for frame in all_frames() {
        let bytes = frame.to_bytes().unwrap();
        let mut dec = Decoder::new();
        dec.feed(&bytes);
        let got = dec.next_frame().unwrap().expect("a complete frame");
        assert_eq!(got, frame);
        assert_eq!(dec.next_frame().unwrap(), None);
        assert_eq!(dec.buffered(), 0);
        dec.finish().unwrap();
    }
}

#[test]
fn a_concatenated_stream_decodes_in_order() {
    let frames = all_frames();
    let mut dec = Decoder::new();
    dec.feed(&encode_all(&frames));
    let mut got = Vec::new();
    while let Some(f) = dec.next_frame().unwrap() {
        got.push(f);
    }
    assert_eq!(got, frames);
    dec.finish().unwrap();
}

#[tokio::test]
async fn every_frame_round_trips_through_read_and_write_frame() {
    let frames = all_frames();
    let mut wire = Vec::new();
    for f in &frames {
        write_frame(&mut wire, f).await.unwrap();
    }
    assert_eq!(wire, encode_all(&frames));
    let mut reader = &wire[..];
    let mut got = Vec::new();
    while let Some(f) = read_frame(&mut reader).await.unwrap() {
        got.push(f);
    }
    assert_eq!(got, frames);
}

#[test]
fn samples_cover_every_message_variant_and_type_names_match_the_wire() {
    let mut seen = BTreeSet::new();
    for m in all_messages() {
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], m.type_name(), "{m:?}");
        seen.insert(m.type_name());
    }
    let expected = [
        "hello",
        "hello_ack",
        "exec",
        "stdin_close",
        "signal",
        "resize",
        "cancel",
        "file_write",
        "file_read",
        "file_ack",
        "stat",
        "list_dir",
        "glob",
        "rename",
        "chmod",
        "remove",
        "ping",
        "exited",
        "file_info",
        "dir_entries",
        "paths",
        "file_end",
        "done",
        "pong",
        "error",
    ];
    assert_eq!(seen, expected.into_iter().collect());
}

#[test]
fn frame_byte_layout_is_big_endian_length_channel_kind_payload() {
    let bytes = Frame::data(0x0102_0304, DataKind::Stderr, Bytes::from_static(b"ab")).to_bytes().unwrap();
    assert_eq!(&bytes[..], &[0, 0, 0, 7, 1, 2, 3, 4, 3, b'a', b'b']);

    let bytes = Frame::control(0, Message::Ping).to_bytes().unwrap();
    let json = br#"{"type":"ping"}"#;
    assert_eq!(&bytes[..4], &(5 + json.len() as u32).to_be_bytes());
    assert_eq!(&bytes[4..9], &[0, 0, 0, 0, 1]);
    assert_eq!(&bytes[9..], json);

    for (kind, byte) in [(DataKind::Stdout, 2u8), (DataKind::Stderr, 3), (DataKind::Stdin, 4), (DataKind::FileData, 5)]
    {
        let f = Frame::data(9, kind, Bytes::from_static(b"x"));
        assert_eq!(f.kind() as u8, byte);
        assert_eq!(f.to_bytes().unwrap()[8], byte);
    }
}

#[test]
fn json_shapes_are_pinned() {
    let cases = [
        (
            Message::Hello(Hello { min_version: 1, max_version: 2, client: "h".into() }),
            json!({"type": "hello", "min_version": 1, "max_version": 2, "client": "h"}),
        ),
        (
            Message::HelloAck(HelloAck { version: 1, agent_version: "0.1.0".into(), features: vec!["pty".into()] }),
            json!({"type": "hello_ack", "version": 1, "agent_version": "0.1.0", "features": ["pty"]}),
        ),
        (
            Message::Exited(ExitStatus { code: None, signal: Some(9), reason: ExitReason::OomKilled, duration_ms: 5 }),
            json!({"type": "exited", "code": null, "signal": 9, "reason": "oom_killed", "duration_ms": 5}),
        ),
        (Message::Signal { signal: 2 }, json!({"type": "signal", "signal": 2})),
        (Message::Resize(PtySize { rows: 1, cols: 2 }), json!({"type": "resize", "rows": 1, "cols": 2})),
        (Message::StdinClose, json!({"type": "stdin_close"})),
        (
            Message::DirEntries {
                entries: vec![FileEntry { path: "/a".into(), size: 1, mode: 0o100644, is_dir: false, mtime: -1 }],
            },
            json!({"type": "dir_entries", "entries": [
                {"path": "/a", "size": 1, "mode": 0o100644, "is_dir": false, "mtime": -1}
            ]}),
        ),
        (Message::Paths { paths: vec!["/x".into()] }, json!({"type": "paths", "paths": ["/x"]})),
        (Message::FileEnd { size: 7 }, json!({"type": "file_end", "size": 7})),
        (Message::error(ErrorKind::PathEscape, "no"), json!({"type": "error", "kind": "path_escape", "message": "no"})),
        (
            Message::Remove { path: "/a".into(), recursive: false },
            json!({"type": "remove", "path": "/a", "recursive": false}),
        ),
    ];
    for (msg, expected) in cases {
        assert_eq!(serde_json::to_value(&msg).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Message>(expected).unwrap(), msg);
    }
    let exec = serde_json::to_value(Message::Exec(ExecStart {
        argv: vec!["ls".into()],
        env: [("A".to_string(), "1".to_string())].into_iter().collect(),
        cwd: "/".into(),
        uid: 1,
        gid: 2,
        timeout_ms: Some(3),
        stdin: true,
        pty: Some(PtySize { rows: 4, cols: 5 }),
    }))
    .unwrap();
    assert_eq!(
        exec,
        json!({"type": "exec", "argv": ["ls"], "env": {"A": "1"}, "cwd": "/", "uid": 1, "gid": 2,
               "timeout_ms": 3, "stdin": true, "pty": {"rows": 4, "cols": 5}})
    );
}

#[test]
fn optional_fields_may_be_omitted_and_unknown_fields_are_ignored() {
    let m: Message = serde_json::from_str(r#"{"type":"exec","argv":["true"],"cwd":"/","uid":0,"gid":0}"#).unwrap();
    let Message::Exec(e) = m else { panic!("not exec: {m:?}") };
    assert!(e.env.is_empty() && e.timeout_ms.is_none() && !e.stdin && e.pty.is_none());

    let m: Message =
        serde_json::from_str(r#"{"type":"file_write","path":"/a","mode":420,"uid":0,"gid":0,"future":1}"#).unwrap();
    assert_eq!(m, Message::FileWrite { path: "/a".into(), mode: 0o644, uid: 0, gid: 0, size: None });

    let m: Message = serde_json::from_str(r#"{"type":"hello_ack","version":1,"agent_version":"x"}"#).unwrap();
    assert_eq!(m, Message::HelloAck(HelloAck { version: 1, agent_version: "x".into(), features: vec![] }));
}

#[test]
fn ends_request_marks_exactly_the_agents_terminal_replies() {
    let terminal: BTreeSet<&str> = all_messages().iter().filter(|m| m.ends_request()).map(|m| m.type_name()).collect();
    let expected: BTreeSet<&str> =
        ["hello_ack", "exited", "file_info", "dir_entries", "paths", "file_end", "done", "pong", "error"]
            .into_iter()
            .collect();
    assert_eq!(terminal, expected);
}

#[test]
fn chunk_frames_splits_without_exceeding_max_chunk() {
    let data: Bytes = (0..(2 * MAX_CHUNK + MAX_CHUNK / 2)).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
    let frames: Vec<Frame> = chunk_frames(4, DataKind::FileData, data.clone()).collect();
    assert_eq!(frames.len(), 3);
    let mut joined = Vec::new();
    for f in &frames {
        assert_eq!(f.channel, 4);
        let Body::FileData(b) = &f.body else { panic!("wrong body") };
        assert!(b.len() <= MAX_CHUNK);
        joined.extend_from_slice(b);
        f.to_bytes().expect("a max-size chunk fits in a frame");
    }
    assert_eq!(joined, data);
    assert_eq!(chunk_frames(1, DataKind::Stdout, Bytes::new()).count(), 0);
    assert_eq!(chunk_frames(1, DataKind::Stdout, Bytes::from(vec![0; MAX_CHUNK])).count(), 1);
    assert_eq!(chunk_frames(1, DataKind::Stdout, Bytes::from(vec![0; MAX_CHUNK + 1])).count(), 2);
    let kinds: Vec<FrameKind> = [DataKind::Stdout, DataKind::Stderr, DataKind::Stdin, DataKind::FileData]
        .into_iter()
        .map(|k| chunk_frames(0, k, Bytes::from_static(b"x")).next().unwrap().kind())
        .collect();
    assert_eq!(kinds, [FrameKind::Stdout, FrameKind::Stderr, FrameKind::Stdin, FrameKind::FileData]);
}

#[test]
fn encoding_an_oversize_frame_fails_and_leaves_the_buffer_untouched() {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    let ok = Frame::data(1, DataKind::Stdout, Bytes::from(vec![1; MAX_PAYLOAD]));
    encode(&ok, &mut buf).unwrap();
    assert_eq!(buf.len(), 6 + 4 + MAX_FRAME);
    buf.truncate(6);

    let big = Frame::data(1, DataKind::Stdout, Bytes::from(vec![1; MAX_PAYLOAD + 1]));
    let err = encode(&big, &mut buf).unwrap_err();
    assert!(matches!(err, ProtoError::FrameTooLarge { len, max: MAX_FRAME } if len == MAX_FRAME as u64 + 1), "{err}");
    assert_eq!(&buf[..], b"prefix");

    let huge_control = Frame::control(1, Message::Paths { paths: vec!["/x".repeat(1000); 1000] });
    let err = encode(&huge_control, &mut buf).unwrap_err();
    assert!(matches!(err, ProtoError::FrameTooLarge { .. }), "{err}");
    assert_eq!(&buf[..], b"prefix");
    assert!(huge_control.to_bytes().is_err());
}

#[test]
fn file_read_window_is_optional_on_the_wire() {
    // Hosts that do not use flow control send exactly what version 1 and 2 hosts always sent.
    let plain = Frame::control(3, Message::FileRead { path: "/a".into(), window: None }).to_bytes().unwrap();
    assert!(!String::from_utf8_lossy(&plain).contains("window"));
    let json = br#"{"type":"file_read","path":"/a"}"#;
    let parsed: Message = serde_json::from_slice(json).unwrap();
    assert_eq!(parsed, Message::FileRead { path: "/a".into(), window: None });
    let json = br#"{"type":"file_ack","chunks":4}"#;
    assert_eq!(serde_json::from_slice::<Message>(json).unwrap(), Message::FileAck { chunks: 4 });
    assert!(!Message::FileAck { chunks: 1 }.ends_request());
}
