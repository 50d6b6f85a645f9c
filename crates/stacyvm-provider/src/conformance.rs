//! The provider conformance suite: one behavioural contract every provider's tests run.
//!
//! Call [`run`] from a provider's integration tests with a ready provider. Each case spawns its
//! own sandbox and destroys it. Cases a provider cannot support are skipped according to its
//! [`Capabilities`](crate::Capabilities), and the skip is printed with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stacyvm_types::exec::StreamName;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::error::ProviderError;
use crate::types::{ExecSpec, ExitReason, OutputChunk, RuntimeHandle, RuntimeState, SandboxSpec};
use crate::Provider;
use crate::SandboxPath;

mod pty;
mod stream;
pub use pty::{on_pty, Interactive};
pub use stream::{pattern_bytes, Pattern};

/// Image the suite asks for; providers that pull images must be able to serve it.
pub const DEFAULT_IMAGE: &str = "alpine:latest";

/// Collected result of one exec.
#[derive(Debug)]
pub struct Captured {
    /// Exit reason.
    pub reason: ExitReason,
    /// Chunks in arrival order.
    pub chunks: Vec<OutputChunk>,
}

impl Captured {
    /// Concatenated output of one stream.
    pub fn text(&self, stream: StreamName) -> String {
        let bytes: Vec<u8> = self.chunks.iter().filter(|c| c.stream == stream).flat_map(|c| c.data.to_vec()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Runs an argv and collects everything.
pub async fn capture(p: &dyn Provider, h: &RuntimeHandle, spec: ExecSpec) -> Result<Captured, ProviderError> {
    let (tx, mut rx) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        chunks
    });
    let outcome = p.exec(h, spec, tx).await?;
    let chunks = collector.await.expect("collector task");
    Ok(Captured { reason: outcome.reason, chunks })
}

/// An argv exec spec in `/workspace`.
pub fn argv(words: &[&str]) -> ExecSpec {
    ExecSpec {
        argv: words.iter().map(|w| w.to_string()).collect(),
        env: BTreeMap::new(),
        workdir: "/workspace".into(),
        timeout: Some(Duration::from_secs(30)),
        pty: None,
    }
}

/// `sh -c <script>`.
pub fn shell(script: &str) -> ExecSpec {
    argv(&["sh", "-c", script])
}

fn path(p: &str) -> SandboxPath {
    SandboxPath::parse(p).expect("valid test path")
}

async fn spawn(p: &dyn Provider, image: &str, tag: &str) -> RuntimeHandle {
    let id = format!("sb-c{:07x}", rand_tag(tag));
    let spec = SandboxSpec { id, image: image.into(), memory_mb: 256, vcpus: 1 };
    p.create(&spec).await.unwrap_or_else(|e| panic!("[{tag}] create failed: {e}"))
}

fn rand_tag(tag: &str) -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (nanos ^ tag.bytes().fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(b))) & 0x0fff_ffff
}

/// Runs every case against `provider` with [`DEFAULT_IMAGE`]. Panics with the failing case's name.
pub async fn run(provider: Arc<dyn Provider>) {
    run_with_image(provider, DEFAULT_IMAGE).await;
}

/// Runs every case, spawning sandboxes from `image`.
pub async fn run_with_image(provider: Arc<dyn Provider>, image: &str) {
    let p = provider.as_ref();
    provider.health().await.expect("health check must pass before conformance");
    lifecycle(p, image).await;
    exec_basics(p, image).await;
    exec_env_workdir(p, image).await;
    exec_stream_order(p, image).await;
    exec_timeout(p, image).await;
    if provider.capabilities().files {
        files_round_trip(p, image).await;
        files_traversal(p, image).await;
        stream::files_stream(p, image).await;
    } else {
        eprintln!("conformance: {}: file cases skipped (capability files=false)", p.name());
    }
    if provider.capabilities().console {
        console_logs(p, image).await;
    }
    if provider.capabilities().pty {
        pty::exec_pty(provider.clone(), image).await;
    } else {
        eprintln!("conformance: {}: pty cases skipped (capability pty=false)", p.name());
        pty_refused(p, image).await;
    }
}

/// A provider without the `pty` capability refuses PTY execs with `Unsupported`.
async fn pty_refused(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "nopty").await;
    let (tx, _rx) = mpsc::channel(4);
    let (_input, input_rx) = mpsc::channel(1);
    match p.exec_interactive(&h, on_pty(argv(&["true"]), 24, 80), input_rx, tx).await {
        Err(ProviderError::Unsupported(_)) => {}
        other => panic!("[nopty] a pty exec must be Unsupported, got {other:?}"),
    }
    p.destroy(&h).await.unwrap();
}

async fn lifecycle(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "lifecycle").await;
    assert_eq!(p.inspect(&h).await.unwrap(), RuntimeState::Running, "[lifecycle] running after create");
    assert!(p.list_owned().await.unwrap().contains(&h.sandbox_id), "[lifecycle] list_owned includes it");
    p.destroy(&h).await.expect("[lifecycle] destroy");
    p.destroy(&h).await.expect("[lifecycle] destroy is idempotent");
    assert_eq!(p.inspect(&h).await.unwrap(), RuntimeState::Missing, "[lifecycle] missing after destroy");
    assert!(!p.list_owned().await.unwrap().contains(&h.sandbox_id), "[lifecycle] not listed after destroy");
}

async fn exec_basics(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "exec").await;
    let out = capture(p, &h, argv(&["echo", "hello", "world"])).await.unwrap();
    assert_eq!(out.reason, ExitReason::Exited(0), "[exec] echo exits 0");
    assert_eq!(out.text(StreamName::Stdout), "hello world\n", "[exec] argv stdout");

    let out = capture(p, &h, shell("echo oops >&2; exit 42")).await.unwrap();
    assert_eq!(out.reason, ExitReason::Exited(42), "[exec] exit code 42");
    assert_eq!(out.text(StreamName::Stderr), "oops\n", "[exec] stderr");
    assert_eq!(out.text(StreamName::Stdout), "", "[exec] no stdout");

    // argv mode passes arguments verbatim: no shell expansion.
    let out = capture(p, &h, argv(&["echo", "$HOME", "a b", "'q'"])).await.unwrap();
    assert_eq!(out.text(StreamName::Stdout), "$HOME a b 'q'\n", "[exec] argv is not shell-expanded");

    let err = capture(p, &h, argv(&["/definitely/not/a/program"])).await;
    match err {
        Err(_) => {}
        Ok(c) => assert_ne!(c.reason, ExitReason::Exited(0), "[exec] missing program must fail"),
    }

    let big = capture(p, &h, shell("head -c 300000 /dev/zero | tr '\\0' x")).await.unwrap();
    assert_eq!(big.text(StreamName::Stdout).len(), 300_000, "[exec] large output is complete");
    p.destroy(&h).await.unwrap();
}

async fn exec_env_workdir(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "env").await;
    let mut spec = shell("printf '%s|%s' \"$GREETING\" \"$(basename \"$PWD\")\"");
    spec.env.insert("GREETING".into(), "hi there".into());
    p.write_file(&h, &path("/workspace/sub/keep.txt"), Bytes::from_static(b"x"), 0o644).await.unwrap();
    spec.workdir = "/workspace/sub".into();
    let out = capture(p, &h, spec).await.unwrap();
    assert_eq!(out.text(StreamName::Stdout), "hi there|sub", "[env] env and workdir applied");

    let mut missing = argv(&["true"]);
    missing.workdir = "/workspace/nope".into();
    match capture(p, &h, missing).await {
        Err(ProviderError::InvalidInput(_)) => {}
        other => panic!("[env] missing workdir must be InvalidInput, got {other:?}"),
    }
    p.destroy(&h).await.unwrap();
}

async fn exec_stream_order(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "stream").await;
    let out = capture(p, &h, shell("echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three")).await.unwrap();
    let seq: Vec<(StreamName, String)> =
        out.chunks.iter().map(|c| (c.stream, String::from_utf8_lossy(&c.data).into_owned())).collect();
    assert_eq!(
        seq,
        vec![
            (StreamName::Stdout, "one\n".to_string()),
            (StreamName::Stderr, "two\n".to_string()),
            (StreamName::Stdout, "three\n".to_string()),
        ],
        "[stream] chunks arrive in order, streams never mixed"
    );
    p.destroy(&h).await.unwrap();
}

async fn exec_timeout(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "timeout").await;
    let mut spec = shell("echo started; sleep 30");
    spec.timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let out = capture(p, &h, spec).await.unwrap();
    assert_eq!(out.reason, ExitReason::TimedOut, "[timeout] reason");
    assert!(started.elapsed() < Duration::from_secs(10), "[timeout] returned promptly");
    assert_eq!(out.text(StreamName::Stdout), "started\n", "[timeout] output before the kill is kept");
    // The sandbox still works afterwards.
    let out = capture(p, &h, argv(&["true"])).await.unwrap();
    assert_eq!(out.reason, ExitReason::Exited(0), "[timeout] sandbox usable after a timeout");
    p.destroy(&h).await.unwrap();
}

async fn read_all(p: &dyn Provider, h: &RuntimeHandle, at: &str) -> Result<Vec<u8>, ProviderError> {
    let mut file = p.read_file(h, &path(at)).await?;
    let mut buf = Vec::new();
    file.reader.read_to_end(&mut buf).await.expect("read body");
    Ok(buf)
}

async fn files_round_trip(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "files").await;
    p.write_file(&h, &path("/workspace/deep/er/a.txt"), Bytes::from_static(b"hello world"), 0o644).await.unwrap();
    assert_eq!(read_all(p, &h, "/workspace/deep/er/a.txt").await.unwrap(), b"hello world", "[files] byte exact");
    let st = p.stat(&h, &path("/workspace/deep/er/a.txt")).await.unwrap();
    assert_eq!((st.size, st.is_dir, st.mode), (11, false, 0o644), "[files] stat");

    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    p.write_file(&h, &path("/workspace/bin.dat"), Bytes::from(binary.clone()), 0o600).await.unwrap();
    assert_eq!(read_all(p, &h, "/workspace/bin.dat").await.unwrap(), binary, "[files] binary content");

    for name in ["a.log", "b.log", "c.txt"] {
        p.write_file(&h, &path(&format!("/workspace/g/{name}")), Bytes::from_static(b"x"), 0o644).await.unwrap();
    }
    let found = p.glob(&h, "/workspace/g/*.log").await.unwrap();
    assert_eq!(found, ["/workspace/g/a.log", "/workspace/g/b.log"], "[files] glob");
    assert!(p.glob(&h, "/workspace/none/*.x").await.unwrap().is_empty(), "[files] empty glob");

    let listed = p.list_dir(&h, &path("/workspace/g")).await.unwrap();
    let names: Vec<_> = listed.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["/workspace/g/a.log", "/workspace/g/b.log", "/workspace/g/c.txt"], "[files] list");

    p.rename(&h, &path("/workspace/g/c.txt"), &path("/workspace/moved/c.txt")).await.unwrap();
    assert!(matches!(read_all(p, &h, "/workspace/g/c.txt").await, Err(ProviderError::FileNotFound(_))));
    assert_eq!(read_all(p, &h, "/workspace/moved/c.txt").await.unwrap(), b"x", "[files] moved");
    assert!(matches!(
        p.rename(&h, &path("/workspace/ghost"), &path("/workspace/x")).await,
        Err(ProviderError::FileNotFound(_))
    ));

    p.chmod(&h, &path("/workspace/moved/c.txt"), 0o755).await.unwrap();
    assert_eq!(p.stat(&h, &path("/workspace/moved/c.txt")).await.unwrap().mode, 0o755, "[files] chmod");

    assert!(
        matches!(p.remove(&h, &path("/workspace/g"), false).await, Err(ProviderError::InvalidInput(_))),
        "[files] non-empty dir needs recursive"
    );
    p.remove(&h, &path("/workspace/g"), true).await.unwrap();
    assert!(matches!(p.stat(&h, &path("/workspace/g")).await, Err(ProviderError::FileNotFound(_))));
    assert!(matches!(p.remove(&h, &path("/workspace/g"), false).await, Err(ProviderError::FileNotFound(_))));
    assert!(matches!(read_all(p, &h, "/workspace").await, Err(ProviderError::InvalidInput(_))), "[files] read dir");
    p.destroy(&h).await.unwrap();
}

async fn files_traversal(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "traversal").await;
    // Symlinks inside /workspace (the exec cwd) that point at /etc and far above the root.
    let out = capture(p, &h, shell("ln -s /etc etc-link && ln -s ../../../../../../.. up")).await.unwrap();
    assert_eq!(out.reason, ExitReason::Exited(0), "[traversal] create symlinks");
    let host_passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    for attempt in ["/workspace/etc-link/passwd", "/workspace/up/etc/passwd"] {
        match read_all(p, &h, attempt).await {
            Err(ProviderError::PathEscape(_)) | Err(ProviderError::FileNotFound(_)) => {}
            Ok(bytes) => assert!(
                p.capabilities().isolation && bytes != host_passwd,
                "[traversal] {attempt} must not expose the host file"
            ),
            Err(other) => panic!("[traversal] {attempt}: unexpected {other:?}"),
        }
        // Writing through the links either fails or lands inside the sandbox; never on the host.
        let _ = p.write_file(&h, &path(&format!("{attempt}.new")), Bytes::from_static(b"x"), 0o644).await;
        assert!(
            !std::path::Path::new("/etc/passwd.new").exists(),
            "[traversal] write through {attempt} reached the host"
        );
    }
    assert_eq!(std::fs::read("/etc/passwd").unwrap_or_default(), host_passwd, "[traversal] host file unchanged");
    if !p.capabilities().isolation {
        // Without isolation the sandbox root is a host directory: an absolute path names a
        // file inside it, never the host's file.
        assert!(matches!(read_all(p, &h, "/etc/passwd").await, Err(ProviderError::FileNotFound(_))));
    }
    assert!(SandboxPath::parse("/workspace/../../etc/passwd").is_err(), "[traversal] lexical escape");
    p.destroy(&h).await.unwrap();
}

async fn console_logs(p: &dyn Provider, image: &str) {
    let h = spawn(p, image, "console").await;
    capture(p, &h, argv(&["echo", "x"])).await.unwrap();
    let lines = p.logs(&h, 100).await.unwrap();
    assert!(!lines.is_empty(), "[console] has lines");
    assert!(p.logs(&h, 1).await.unwrap().len() <= 1, "[console] honours the line limit");
    p.destroy(&h).await.unwrap();
}
