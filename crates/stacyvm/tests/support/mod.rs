//! Shared helpers for the integration tests: run the real `stacyvm` binary as a child process
//! (a server on a free port, or a CLI invocation) with a hermetic environment and bounded time.
//!
//! Every child is killed and every temporary directory removed by Drop guards, also when a test
//! panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_stacyvm");

/// How long a server may take to answer `/api/v1/health`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A temporary directory holding one server's database, mock root and logs; shared by
/// successive server processes (restarts) and removed when the last holder is dropped.
#[derive(Debug, Clone)]
pub struct Workdir {
    dir: Arc<tempfile::TempDir>,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    /// A fresh directory under the system temp dir.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("stacyvm-it.").tempdir().expect("create temp dir");
        Workdir { dir: Arc::new(dir) }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `STACYVM_DATABASE_PATH`.
    pub fn db_path(&self) -> PathBuf {
        self.path().join("stacyvm.db")
    }

    /// `STACYVM_PROVIDERS_MOCK_ROOT_DIR`.
    pub fn mock_root(&self) -> PathBuf {
        self.path().join("mock")
    }

    /// A sandbox's directory under the mock root.
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.mock_root().join(id)
    }

    /// Names of the `sb-*` directories under the mock root, sorted.
    pub fn sandbox_dirs(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.mock_root()) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("sb-"))
            .collect();
        names.sort();
        names
    }

    /// A `Command` for the binary with a hermetic environment: nothing inherited but `PATH`,
    /// `HOME` and the working directory point into this workdir (so no config file is found).
    pub fn command(&self) -> Command {
        let home = self.path().join("home");
        std::fs::create_dir_all(&home).expect("create home");
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
            .env("HOME", &home)
            .current_dir(self.path())
            .stdin(Stdio::null());
        cmd
    }

    /// The environment of a mock-provider server on `port`.
    pub fn server_env(&self, port: u16) -> Vec<(String, String)> {
        vec![
            ("STACYVM_PROVIDERS_DEFAULT".into(), "mock".into()),
            ("STACYVM_SERVER_HOST".into(), "127.0.0.1".into()),
            ("STACYVM_SERVER_PORT".into(), port.to_string()),
            ("STACYVM_DATABASE_PATH".into(), self.db_path().display().to_string()),
            ("STACYVM_PROVIDERS_MOCK_ROOT_DIR".into(), self.mock_root().display().to_string()),
            // The image store lives here too (never in the host's /var/lib).
            ("STACYVM_PROVIDERS_OCI_DATA_DIR".into(), self.path().join("oci").display().to_string()),
        ]
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

static LOG_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running `stacyvm serve`; SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    /// Port it listens on.
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its combined stdout/stderr.
    pub log: PathBuf,
    workdir: Workdir,
}

impl Server {
    /// Starts a mock-provider server in `workdir` with extra `STACYVM_*` variables and waits until
    /// `/api/v1/health` answers 200. Retries on another port if the chosen one was taken.
    pub fn start(workdir: &Workdir, extra_env: &[(&str, &str)]) -> Server {
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let seq = LOG_SEQ.fetch_add(1, Ordering::SeqCst);
            let log = workdir.path().join(format!("server-{seq}.log"));
            let out = std::fs::File::create(&log).expect("create server log");
            let err = out.try_clone().expect("clone log handle");
            let mut cmd = workdir.command();
            cmd.arg("serve").envs(workdir.server_env(port)).stdout(out).stderr(err);
            for (k, v) in extra_env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("spawn stacyvm serve");
            let mut server = Server {
                child: Some(child),
                port,
                url: format!("http://127.0.0.1:{port}"),
                log,
                workdir: workdir.clone(),
            };
            // `/api/v1/health` is public, so the readiness probe needs no key.
            match server.wait_healthy(START_TIMEOUT, None) {
                Ok(()) => return server,
                Err(e) => {
                    last_log = format!("{e}\n--- server log\n{}", server.log_text());
                    server.kill();
                    // Only a lost port race is worth another try.
                    if !last_log.contains("bind") {
                        break;
                    }
                }
            }
        }
        panic!("server did not become healthy: {last_log}");
    }

    fn wait_healthy(&mut self, timeout: Duration, api_key: Option<&str>) -> Result<(), String> {
        let headers: Vec<(&str, &str)> = api_key.map(|k| ("X-API-Key", k)).into_iter().collect();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("server exited early with {status}"));
                }
            }
            if http_status_with(self.port, "GET", "/api/v1/health", &headers) == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no healthy answer within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILLs the process (`Child::kill` sends SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The server's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The workdir it runs in.
    pub fn workdir(&self) -> &Workdir {
        &self.workdir
    }

    /// A REST client for it.
    pub fn client(&self) -> stacyvm_client::Client {
        stacyvm_client::Client::with_timeout(&self.url, None, Duration::from_secs(20)).expect("client")
    }

    /// Runs the CLI against this server (`--server` prepended) with a 30 s limit.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_env(args, &[])
    }

    /// Like [`Server::cli`] with extra environment variables.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        let mut cmd = self.workdir.command();
        cmd.arg("--server").arg(&self.url).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, Duration::from_secs(30))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a finished CLI invocation produced.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl CliOutput {
    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics unless the command exited 0; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.status.success(), "expected success, got {self:#?}");
        &self.stdout
    }

    /// Panics if the command exited 0; returns stderr.
    #[track_caller]
    pub fn failed(&self) -> &str {
        assert!(!self.status.success(), "expected failure, got {self:#?}");
        &self.stderr
    }
}

/// Kills the child on drop (for [`run`]'s timeout and panics).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `cmd` to completion, capturing output; kills it and panics after `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> CliOutput {
    let started = Instant::now();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut guard = KillOnDrop(cmd.spawn().expect("spawn stacyvm"));
    let mut stdout = guard.0.stdout.take().expect("stdout pipe");
    let mut stderr = guard.0.stderr.take().expect("stderr pipe");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait for stacyvm") {
            break status;
        }
        if started.elapsed() > timeout {
            drop(guard);
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    CliOutput { status, stdout, stderr, elapsed: started.elapsed() }
}

/// Status code of a bodiless HTTP/1.1 request to 127.0.0.1 (None when nothing answers).
/// Blocking and dependency-free, for readiness polling from synchronous code.
pub fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    http_status_with(port, method, path, &[])
}

/// Like [`http_status`] with extra request headers.
pub fn http_status_with(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Standard base64 with padding (for binary file writes; no extra dependency).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, expected) in
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
    {
        assert_eq!(base64(input.as_bytes()), expected);
    }
}

/// An `oci` server's data directory in `workdir` (`oci/`) with `busybox:latest` already imported
/// into its image store, and the static agent; `None` when the oci prerequisites are missing
/// (the test is skipped, or fails under `STACYVM_REQUIRE_RUNTIMES=1`).
pub async fn oci_with_busybox(workdir: &Workdir) -> Option<OciData> {
    let agent = stacyvm_testkit::oci_prerequisites("crun")?;
    let data = workdir.path().join("oci");
    let tarball = workdir.path().join("busybox.tar");
    stacyvm_testkit::busybox_tarball(&tarball);
    let store = stacyvm_image::ImageStore::open(&data.join("images"), Default::default()).unwrap();
    store.import(&tarball, Some("busybox:latest")).await.unwrap();
    Some(OciData { data_dir: data.display().to_string(), data, agent: agent.display().to_string() })
}

/// See [`oci_with_busybox`].
pub struct OciData {
    /// `<workdir>/oci`.
    pub data: PathBuf,
    /// The same, as a string for the environment.
    pub data_dir: String,
    /// The static agent binary.
    pub agent: String,
}
