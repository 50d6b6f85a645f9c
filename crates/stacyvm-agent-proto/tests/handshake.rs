//! Version negotiation and an end-to-end exchange over an in-memory duplex stream.

mod common;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use stacyvm_agent_proto::*;
use tokio::io::{AsyncWriteExt, DuplexStream};

#[test]
fn negotiate_table() {
    use NegotiateError::*;
    assert_eq!((MIN_PROTOCOL_VERSION, PROTOCOL_VERSION), (1, 2));
    /// (peer_min, peer_max, ours_min, ours_max, result)
    type Row = (u32, u32, u32, u32, Result<u32, NegotiateError>);
    let table: &[Row] = &[
        (1, 1, 1, 1, Ok(1)),
        (1, 5, 1, 1, Ok(1)),
        (0, 1, 1, 1, Ok(1)),
        (0, u32::MAX, 1, 1, Ok(1)),
        (1, 3, 2, 5, Ok(3)),
        (2, 5, 1, 3, Ok(3)),
        (4, 4, 1, 9, Ok(4)),
        (1, 9, 4, 4, Ok(4)),
        (3, 3, 3, 3, Ok(3)),
        (1, 1, 1, 2, Ok(1)),
        (1, 2, 1, 2, Ok(2)),
        (2, 2, 1, 1, Err(NoCommonVersion { peer_min: 2, peer_max: 2, ours_min: 1, ours_max: 1 })),
        (5, 9, 1, 4, Err(NoCommonVersion { peer_min: 5, peer_max: 9, ours_min: 1, ours_max: 4 })),
        (0, 0, 1, 1, Err(NoCommonVersion { peer_min: 0, peer_max: 0, ours_min: 1, ours_max: 1 })),
        (1, 2, 3, 4, Err(NoCommonVersion { peer_min: 1, peer_max: 2, ours_min: 3, ours_max: 4 })),
        (2, 1, 1, 1, Err(InvalidRange { min: 2, max: 1 })),
        (u32::MAX, 0, 1, 1, Err(InvalidRange { min: u32::MAX, max: 0 })),
    ];
    for &(pmin, pmax, omin, omax, expected) in table {
        assert_eq!(negotiate_between(pmin, pmax, omin, omax), expected, "{pmin}..={pmax} vs {omin}..={omax}");
        if (omin, omax) == (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION) {
            assert_eq!(negotiate(pmin, pmax), expected);
        }
    }
    let refusal = negotiate(3, 4).unwrap_err().to_message();
    assert!(
        matches!(refusal, Message::Error { kind: ErrorKind::Unsupported, ref message } if message.contains("3..=4"))
    );
    // A version 1 host still talks to this (version 2) agent.
    assert_eq!(negotiate(1, 1), Ok(1));
}

/// Reads every frame until EOF.
async fn read_all(stream: &mut DuplexStream) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(f) = read_frame(stream).await.unwrap() {
        out.push(f);
    }
    out
}

#[tokio::test]
async fn refused_version_is_reported_to_both_sides() {
    let (mut host, mut agent) = tokio::io::duplex(4096);
    let agent_task = tokio::spawn(async move {
        let r = agent_handshake(&mut agent, "0.1.0", &[]).await;
        drop(agent);
        r
    });
    let hello = Hello { min_version: 3, max_version: 5, client: "future-host".into() };
    write_frame(&mut host, &Frame::control(0, Message::Hello(hello))).await.unwrap();
    let frames = read_all(&mut host).await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].channel, 0);
    assert!(matches!(frames[0].message(), Some(Message::Error { kind: ErrorKind::Unsupported, .. })));
    let err = agent_task.await.unwrap().unwrap_err();
    assert!(matches!(err, ProtoError::Version(NegotiateError::NoCommonVersion { peer_min: 3, peer_max: 5, .. })));
}

#[tokio::test]
async fn client_handshake_surfaces_refusals_and_bad_answers() {
    // The agent refuses.
    let (mut host, mut agent) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        read_frame(&mut agent).await.unwrap();
        let reply = Frame::control(0, Message::error(ErrorKind::Unsupported, "nope"));
        write_frame(&mut agent, &reply).await.unwrap();
    });
    let err = client_handshake(&mut host, "h").await.unwrap_err();
    assert!(matches!(err, ProtoError::Remote { kind: ErrorKind::Unsupported, ref message } if message == "nope"));

    // The agent picks a version we did not offer.
    let (mut host, mut agent) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        read_frame(&mut agent).await.unwrap();
        let ack = HelloAck { version: PROTOCOL_VERSION + 1, agent_version: "x".into(), features: vec![] };
        write_frame(&mut agent, &Frame::control(0, Message::HelloAck(ack))).await.unwrap();
    });
    assert!(matches!(client_handshake(&mut host, "h").await, Err(ProtoError::Handshake(_))));

    // The agent answers something else, or on another channel, or hangs up.
    for reply in [Some(Frame::control(0, Message::Pong)), Some(Frame::control(1, Message::Pong)), None] {
        let (mut host, mut agent) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            read_frame(&mut agent).await.unwrap();
            if let Some(reply) = reply {
                write_frame(&mut agent, &reply).await.unwrap();
            }
        });
        assert!(matches!(client_handshake(&mut host, "h").await, Err(ProtoError::Handshake(_))));
    }
}

#[tokio::test]
async fn agent_handshake_rejects_anything_but_hello_first() {
    let (mut host, mut agent) = tokio::io::duplex(4096);
    write_frame(&mut host, &Frame::control(0, Message::Ping)).await.unwrap();
    let err = agent_handshake(&mut agent, "0.1.0", &[]).await.unwrap_err();
    assert!(matches!(err, ProtoError::Handshake(_)), "{err}");
    drop(agent);
    let frames = read_all(&mut host).await;
    assert!(matches!(
        frames[..],
        [Frame { channel: 0, body: Body::Control(Message::Error { kind: ErrorKind::InvalidInput, .. }) }]
    ));

    let (mut host, mut agent) = tokio::io::duplex(4096);
    write_frame(&mut host, &Frame::control(5, Message::Hello(Hello::new("h")))).await.unwrap();
    assert!(matches!(agent_handshake(&mut agent, "0.1.0", &[]).await, Err(ProtoError::Handshake(_))));

    let (host, mut agent) = tokio::io::duplex(4096);
    drop(host);
    assert!(matches!(agent_handshake(&mut agent, "0.1.0", &[]).await, Err(ProtoError::Handshake(_))));
}

const BIG_OUTPUT: usize = 2 * MAX_CHUNK + 12_345;

/// A toy agent: `["burst"]` prints interleaved stdout/stderr plus a big chunked stdout, `["cat"]`
/// echoes stdin to stdout until `stdin_close`; `ping` answers `pong`.
async fn fake_agent(mut stream: DuplexStream) -> Result<(), ProtoError> {
    let (hello, version) = agent_handshake(&mut stream, "9.9.9", &["pty".to_string()]).await?;
    assert_eq!(hello.client, "test-host");
    assert_eq!(version, PROTOCOL_VERSION);

    let mut decoder = Decoder::new();
    let mut cat_bytes: HashMap<u32, u64> = HashMap::new();
    let exited = |code| {
        Message::Exited(ExitStatus { code: Some(code), signal: None, reason: ExitReason::Exited, duration_ms: 1 })
    };
    loop {
        let n = decoder.read_from(&mut stream).await?;
        while let Some(frame) = decoder.next_frame()? {
            let ch = frame.channel;
            let mut out = Vec::new();
            match frame.body {
                Body::Control(Message::Exec(exec)) if exec.argv == ["burst"] => {
                    assert_eq!(exec.env.get("K").map(String::as_str), Some("V"));
                    for i in 0..3 {
                        out.push(Frame::data(ch, DataKind::Stdout, format!("out{i}\n")));
                        out.push(Frame::data(ch, DataKind::Stderr, format!("err{i}\n")));
                    }
                    let big: Vec<u8> = (0..BIG_OUTPUT).map(|i| (i % 253) as u8).collect();
                    out.extend(chunk_frames(ch, DataKind::Stdout, Bytes::from(big)));
                    out.push(Frame::control(ch, exited(3)));
                }
                Body::Control(Message::Exec(exec)) if exec.argv == ["cat"] => {
                    assert!(exec.stdin);
                    cat_bytes.insert(ch, 0);
                }
                Body::Stdin(data) => {
                    *cat_bytes.get_mut(&ch).expect("stdin for a running cat") += data.len() as u64;
                    out.push(Frame::data(ch, DataKind::Stdout, data));
                }
                Body::Control(Message::StdinClose) => {
                    cat_bytes.remove(&ch).expect("stdin_close for a running cat");
                    out.push(Frame::control(ch, exited(0)));
                }
                Body::Control(Message::Ping) => out.push(Frame::control(ch, Message::Pong)),
                other => out.push(Frame::control(ch, Message::error(ErrorKind::Unsupported, format!("{other:?}")))),
            }
            for f in &out {
                write_frame(&mut stream, f).await?;
            }
        }
        if n == 0 {
            return decoder.finish();
        }
    }
}

#[tokio::test]
async fn end_to_end_handshake_and_multiplexed_execs() {
    let (mut host, agent) = tokio::io::duplex(64 * 1024);
    let agent_task = tokio::spawn(fake_agent(agent));

    let ack = client_handshake(&mut host, "test-host").await.unwrap();
    assert_eq!(
        ack,
        HelloAck { version: PROTOCOL_VERSION, agent_version: "9.9.9".into(), features: vec!["pty".into()] }
    );

    let exec = |argv: &str, stdin| {
        Message::Exec(ExecStart {
            argv: vec![argv.into()],
            env: BTreeMap::from([("K".to_string(), "V".to_string())]),
            cwd: "/".into(),
            uid: 1000,
            gid: 1000,
            timeout_ms: Some(5_000),
            stdin,
            pty: None,
        })
    };
    // Three requests in flight at once on channels 1, 2 and 3.
    write_frame(&mut host, &Frame::control(1, exec("burst", false))).await.unwrap();
    write_frame(&mut host, &Frame::control(2, exec("cat", true))).await.unwrap();
    for chunk in ["hello ", "over ", "stdin"] {
        write_frame(&mut host, &Frame::data(2, DataKind::Stdin, chunk)).await.unwrap();
    }
    write_frame(&mut host, &Frame::control(3, Message::Ping)).await.unwrap();
    write_frame(&mut host, &Frame::control(2, Message::StdinClose)).await.unwrap();

    // Demultiplex until all three requests ended.
    #[derive(Default)]
    struct Chan {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        /// Order of stream kinds as received, with consecutive duplicates collapsed.
        order: Vec<FrameKind>,
        end: Option<Message>,
    }
    let mut chans: HashMap<u32, Chan> = HashMap::new();
    while chans.values().filter(|c| c.end.is_some()).count() < 3 {
        let frame = read_frame(&mut host).await.unwrap().expect("agent closed early");
        let chan = chans.entry(frame.channel).or_default();
        assert!(chan.end.is_none(), "frame after the terminal message on channel {}", frame.channel);
        if chan.order.last() != Some(&frame.kind()) {
            chan.order.push(frame.kind());
        }
        match frame.body {
            Body::Stdout(b) => {
                assert!(b.len() <= MAX_CHUNK);
                chan.stdout.extend_from_slice(&b)
            }
            Body::Stderr(b) => chan.stderr.extend_from_slice(&b),
            Body::Control(m) => {
                assert!(m.ends_request(), "unexpected {m:?}");
                chan.end = Some(m);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let burst = &chans[&1];
    let expected_big: Vec<u8> = (0..BIG_OUTPUT).map(|i| (i % 253) as u8).collect();
    assert_eq!(&burst.stdout[..15], b"out0\nout1\nout2\n");
    assert_eq!(&burst.stdout[15..], &expected_big[..]);
    assert_eq!(burst.stderr, b"err0\nerr1\nerr2\n");
    use FrameKind::*;
    assert_eq!(burst.order, [Stdout, Stderr, Stdout, Stderr, Stdout, Stderr, Stdout, Control]);
    assert!(matches!(burst.end, Some(Message::Exited(ExitStatus { code: Some(3), reason: ExitReason::Exited, .. }))));

    let cat = &chans[&2];
    assert_eq!(cat.stdout, b"hello over stdin");
    assert!(cat.stderr.is_empty());
    assert!(matches!(cat.end, Some(Message::Exited(ExitStatus { code: Some(0), .. }))));
    assert_eq!(chans[&3].end, Some(Message::Pong));

    // A clean shutdown: the agent sees EOF between frames.
    host.shutdown().await.unwrap();
    drop(host);
    agent_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_version_1_host_still_gets_version_1() {
    let (mut host, mut agent) = tokio::io::duplex(4096);
    let agent_task = tokio::spawn(async move { agent_handshake(&mut agent, "0.2.0", &[FEATURE_PTY.into()]).await });
    let hello = Hello { min_version: 1, max_version: 1, client: "old-host".into() };
    write_frame(&mut host, &Frame::control(0, Message::Hello(hello))).await.unwrap();
    let ack = read_frame(&mut host).await.unwrap().unwrap();
    assert!(matches!(ack.message(), Some(Message::HelloAck(HelloAck { version: 1, .. }))), "{ack:?}");
    assert_eq!(agent_task.await.unwrap().unwrap().1, 1);
}

#[test]
fn pty_sizes_are_validated() {
    assert_eq!(PtySize { rows: 24, cols: 80 }.validate(), Ok(()));
    assert_eq!(PtySize { rows: 1, cols: PtySize::MAX }.validate(), Ok(()));
    let err = PtySize { rows: 0, cols: 80 }.validate().unwrap_err();
    assert_eq!(err, "pty rows must be between 1 and 1000, got 0");
    assert!(PtySize { rows: 24, cols: 1001 }.validate().unwrap_err().contains("cols"));
}
