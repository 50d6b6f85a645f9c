//! The incremental decoder and `read_frame`: partial input, every decode error, and property /
//! fuzz tests (arbitrary splits, arbitrary bytes).

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{all_frames, all_messages, encode_all, raw_frame};
use proptest::prelude::*;
use stacyvm_agent_proto::*;

/// Feeds `chunks` one after another, draining complete frames after each.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Frame>, ProtoError> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        dec.feed(chunk);
        while let Some(f) = dec.next_frame()? {
            out.push(f);
        }
    }
    dec.finish()?;
    Ok(out)
}

/// The first error (or the frames) of decoding `bytes` in one go.
fn decode_bytes(bytes: &[u8]) -> Result<Vec<Frame>, ProtoError> {
    decode_chunks([bytes])
}

fn read_frame_blocking(bytes: &[u8]) -> Result<Vec<Frame>, ProtoError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut reader = bytes;
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut reader).await? {
            out.push(f);
        }
        Ok(out)
    })
}

#[test]
fn byte_by_byte_yields_the_same_frames() {
    let frames = all_frames();
    let wire = encode_all(&frames);
    let got = decode_chunks(wire.chunks(1)).unwrap();
    assert_eq!(got, frames);
}

#[test]
fn partial_input_waits_for_more() {
    let wire = Frame::control(3, Message::Ping).to_bytes().unwrap();
    let mut dec = Decoder::new();
    for i in 0..wire.len() - 1 {
        dec.feed(&wire[i..i + 1]);
        assert_eq!(dec.next_frame().unwrap(), None, "after {} bytes", i + 1);
        assert!(matches!(dec.finish(), Err(ProtoError::Truncated)));
    }
    dec.feed(&wire[wire.len() - 1..]);
    assert_eq!(dec.next_frame().unwrap(), Some(Frame::control(3, Message::Ping)));
    dec.finish().unwrap();
}

#[test]
fn oversize_length_is_an_error_and_poisons_the_decoder() {
    for len in [MAX_FRAME as u32 + 1, 0x7fff_ffff, u32::MAX] {
        let mut dec = Decoder::new();
        dec.feed(&len.to_be_bytes());
        let err = dec.next_frame().unwrap_err();
        assert!(matches!(err, ProtoError::FrameTooLarge { len: l, max: MAX_FRAME } if l == u64::from(len)), "{err}");
        // Poisoned: the same error again, even after more (valid) input.
        dec.feed(&Frame::control(1, Message::Ping).to_bytes().unwrap());
        assert!(matches!(dec.next_frame(), Err(ProtoError::FrameTooLarge { .. })));
        assert!(matches!(dec.finish(), Err(ProtoError::FrameTooLarge { .. })));
        // read_frame rejects it from the header alone, without trying to read (or allocate) the body.
        assert!(matches!(read_frame_blocking(&len.to_be_bytes()), Err(ProtoError::FrameTooLarge { .. })));
    }
}

#[test]
fn max_frame_length_is_accepted() {
    let mut dec = Decoder::new();
    dec.feed(&(MAX_FRAME as u32).to_be_bytes());
    assert_eq!(dec.next_frame().unwrap(), None);
    let mut wire = raw_frame(7, 5, &vec![9; MAX_PAYLOAD]);
    assert_eq!(wire.len(), 4 + MAX_FRAME);
    let frames = decode_bytes(&wire).unwrap();
    assert_eq!(frames, vec![Frame::data(7, DataKind::FileData, vec![9; MAX_PAYLOAD])]);
    wire.push(0);
    assert!(matches!(decode_bytes(&wire), Err(ProtoError::Truncated)));
}

#[test]
fn length_shorter_than_the_header_is_an_error() {
    for len in 0u32..5 {
        let mut wire = len.to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 8]);
        assert!(matches!(decode_bytes(&wire), Err(ProtoError::FrameTooShort(l)) if l == len));
        assert!(matches!(read_frame_blocking(&wire), Err(ProtoError::FrameTooShort(l)) if l == len));
    }
}

#[test]
fn truncated_frame_at_eof_is_an_error() {
    let wire = encode_all(&all_frames());
    // Cut inside the length field, inside channel/kind, and inside the payload of the last frame.
    let last_start = wire.len() - all_frames().last().unwrap().to_bytes().unwrap().len();
    let first_len = Frame::control(0, all_messages()[0].clone()).to_bytes().unwrap().len();
    for cut in [1, 3, 4, 6, 8, first_len - 1, first_len + 2, wire.len() - 1] {
        let err = decode_bytes(&wire[..cut]).unwrap_err();
        assert!(matches!(err, ProtoError::Truncated), "cut {cut}: {err}");
        let err = read_frame_blocking(&wire[..cut]).unwrap_err();
        assert!(matches!(err, ProtoError::Truncated), "cut {cut}: {err}");
    }
    // A cut exactly between frames is a clean end.
    assert_eq!(decode_bytes(&wire[..last_start]).unwrap().len(), all_frames().len() - 1);
    assert_eq!(read_frame_blocking(&wire[..last_start]).unwrap().len(), all_frames().len() - 1);
    assert_eq!(read_frame_blocking(&[]).unwrap(), vec![]);
}

#[test]
fn unknown_kind_is_an_error_and_only_that_frame_is_consumed() {
    for kind in [0u8, 6, 7, 0x80, 255] {
        let mut wire = raw_frame(1, kind, b"whatever");
        let good = Frame::control(2, Message::Pong);
        wire.extend_from_slice(&good.to_bytes().unwrap());
        let mut dec = Decoder::new();
        dec.feed(&wire);
        assert!(matches!(dec.next_frame(), Err(ProtoError::UnknownKind(k)) if k == kind));
        assert_eq!(dec.next_frame().unwrap(), Some(good));
        assert!(matches!(read_frame_blocking(&wire), Err(ProtoError::UnknownKind(k)) if k == kind));
    }
}

#[test]
fn invalid_json_is_an_error() {
    let payloads: [&[u8]; 7] = [
        b"",
        b"{",
        b"not json",
        br#"{"type":"ping""#,
        br#"{"type":"ping"} trailing"#,
        b"\xff\xfe",
        b"{\"type\":\"stat\",\"path\":\"\xff\"}",
    ];
    for payload in payloads {
        let wire = raw_frame(1, 1, payload);
        let err = decode_bytes(&wire).unwrap_err();
        assert!(matches!(err, ProtoError::InvalidJson(_)), "{:?}: {err}", String::from_utf8_lossy(payload));
        let err = read_frame_blocking(&wire).unwrap_err();
        assert!(matches!(err, ProtoError::InvalidJson(_)), "{:?}: {err}", String::from_utf8_lossy(payload));
    }
}

#[test]
fn json_of_the_wrong_shape_is_a_bad_message() {
    let payloads = [
        r#"{"type":"no_such_message"}"#,
        r#"{"path":"/etc"}"#,
        r#"{"type":"stat"}"#,
        r#"{"type":"signal","signal":"TERM"}"#,
        r#"{"type":"exited","code":0,"signal":null,"reason":"exploded","duration_ms":1}"#,
        r#"{"type":"error","kind":"weird","message":"x"}"#,
        r#"{"type":"resize","rows":70000,"cols":1}"#,
        r#"{"type":"file_end","size":-1}"#,
        r#"{"type":"exec","argv":"ls","cwd":"/","uid":0,"gid":0}"#,
        r#"{"type":1}"#,
        r#"["ping"]"#,
        r#""ping""#,
        "null",
        "42",
    ];
    for payload in payloads {
        let wire = raw_frame(1, 1, payload.as_bytes());
        let err = decode_bytes(&wire).unwrap_err();
        assert!(matches!(err, ProtoError::BadMessage(_)), "{payload}: {err}");
        let err = read_frame_blocking(&wire).unwrap_err();
        assert!(matches!(err, ProtoError::BadMessage(_)), "{payload}: {err}");
    }
}

#[test]
fn errors_have_readable_messages() {
    let err = decode_bytes(&u32::MAX.to_be_bytes()).unwrap_err();
    assert_eq!(err.to_string(), format!("frame length {} exceeds the maximum of {MAX_FRAME} bytes", u32::MAX));
    let err = decode_bytes(&raw_frame(1, 9, b"")).unwrap_err();
    assert_eq!(err.to_string(), "unknown frame kind 9");
    let err = decode_bytes(&raw_frame(1, 1, br#"{"type":"nope"}"#)).unwrap_err();
    assert!(err.to_string().starts_with("control frame is not a valid message: unknown variant `nope`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "/[a-z0-9/._-]{0,60}"]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let samples = all_messages();
    prop_oneof![
        proptest::sample::select(samples),
        arb_string().prop_map(|path| Message::Stat { path }),
        (any::<u64>()).prop_map(|size| Message::FileEnd { size }),
        (proptest::option::of(any::<i32>()), proptest::option::of(any::<i32>()), any::<u64>(), 0usize..4).prop_map(
            |(code, signal, duration_ms, r)| {
                let reason = [ExitReason::Exited, ExitReason::Signaled, ExitReason::TimedOut, ExitReason::OomKilled][r];
                Message::Exited(ExitStatus { code, signal, reason, duration_ms })
            }
        ),
        (
            proptest::collection::vec(arb_string(), 1..5),
            proptest::collection::btree_map("[A-Z_]{1,8}", arb_string(), 0..4),
            arb_string(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            proptest::option::of((any::<u16>(), any::<u16>())),
        )
            .prop_map(|(argv, env, cwd, uid, gid, timeout_ms, stdin, pty)| {
                let env: BTreeMap<String, String> = env;
                Message::Exec(ExecStart {
                    argv,
                    env,
                    cwd,
                    uid,
                    gid,
                    timeout_ms,
                    stdin,
                    pty: pty.map(|(rows, cols)| PtySize { rows, cols }),
                })
            }),
        arb_string().prop_map(|m| Message::error(ErrorKind::Failed, m)),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let data_kind =
        proptest::sample::select(vec![DataKind::Stdout, DataKind::Stderr, DataKind::Stdin, DataKind::FileData]);
    prop_oneof![
        (any::<u32>(), arb_message()).prop_map(|(ch, m)| Frame::control(ch, m)),
        (any::<u32>(), data_kind, proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(ch, k, d)| Frame::data(
            ch,
            k,
            Bytes::from(d)
        )),
    ]
}

/// Splits `bytes` at the given (unsorted, possibly repeated, possibly out-of-range) cut points.
fn split_at_cuts(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[prev..c].to_vec());
        prev = c;
    }
    out
}

/// Drives the decoder over arbitrary input; must never panic or loop forever.
fn drain_anything(chunks: &[Vec<u8>]) {
    let mut dec = Decoder::new();
    for chunk in chunks {
        dec.feed(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    // Whatever decodes re-encodes to a frame that decodes to the same value.
                    let again = decode_bytes(&f.to_bytes().unwrap()).unwrap();
                    assert_eq!(again, vec![f]);
                }
                Ok(None) => break,
                Err(ProtoError::FrameTooLarge { .. } | ProtoError::FrameTooShort(_)) => {
                    assert!(dec.next_frame().is_err(), "poisoned decoder must keep failing");
                    return;
                }
                Err(_) => continue, // frame consumed; go on
            }
        }
    }
    let _ = dec.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_splits_yield_the_same_frames(
        frames in proptest::collection::vec(arb_frame(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let wire = encode_all(&frames);
        let chunks = split_at_cuts(&wire, &cuts);
        let got = decode_chunks(chunks.iter().map(|c| c.as_slice())).unwrap();
        prop_assert_eq!(&got, &frames);
        prop_assert_eq!(read_frame_blocking(&wire).unwrap(), frames);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        drain_anything(&split_at_cuts(&bytes, &cuts));
        let _ = read_frame_blocking(&bytes);
    }

    #[test]
    fn fuzz_well_framed_garbage_never_panics(
        frames in proptest::collection::vec(
            (any::<u32>(), 0u8..8, prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                ".{0,100}".prop_map(String::into_bytes),
                r#"\{"type":"[a-z_]{0,12}"(,"[a-z_]{1,10}":("[^"]{0,10}"|-?[0-9]{1,12}|null|true|\[\]|\{\}))*\}"#
                    .prop_map(String::into_bytes),
            ]),
            0..8,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut wire = Vec::new();
        for (ch, kind, payload) in &frames {
            wire.extend_from_slice(&raw_frame(*ch, *kind, payload));
        }
        drain_anything(&split_at_cuts(&wire, &cuts));
        let _ = read_frame_blocking(&wire);
    }

    #[test]
    fn fuzz_mutated_valid_streams_never_panic(
        frames in proptest::collection::vec(arb_frame(), 1..6),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut wire = encode_all(&frames);
        for (pos, val) in flips {
            let n = wire.len();
            wire[pos % n] = val;
        }
        drain_anything(&split_at_cuts(&wire, &cuts));
        let _ = read_frame_blocking(&wire);
    }
}
