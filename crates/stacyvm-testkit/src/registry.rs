//! A real OCI distribution registry (`docker-registry`, Debian package `docker-registry`) on
//! 127.0.0.1, plain HTTP, with filesystem storage in a temporary directory.
//!
//! ```no_run
//! let Some(registry) = stacyvm_testkit::TestRegistry::start() else { return };
//! assert!(registry.url().starts_with("http://127.0.0.1:"));
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::prereq::{find_program, skip};

/// How long the registry may take to answer `GET /v2/` with 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `docker-registry serve`; on drop the process is SIGKILLed and reaped and its
/// temporary directory (configuration, storage, log) removed.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry on a free loopback port and waits until `GET /v2/` answers 200.
    ///
    /// `None` (the test is skipped, reason printed) when `docker-registry` is not installed,
    /// unless `STACYVM_REQUIRE_RUNTIMES=1`, which makes that a failure. Panics with the registry's
    /// log if it does not become ready within [`START_TIMEOUT`] (after retrying a lost port race).
    pub fn start() -> Option<TestRegistry> {
        let Some(binary) = find_program("docker-registry") else {
            return skip("docker-registry is not installed (apt-get install docker-registry)");
        };
        let mut failure = String::new();
        for _ in 0..3 {
            match Self::try_start(&binary) {
                Ok(registry) => return Some(registry),
                Err(e) => failure = e,
            }
        }
        panic!("docker-registry did not start: {failure}");
    }

    fn try_start(binary: &Path) -> Result<TestRegistry, String> {
        let dir = tempfile::Builder::new().prefix("stacyvm-registry.").tempdir().expect("create registry temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(&config, config_yaml(&dir.path().join("storage"), port)).expect("write registry config");
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).expect("create registry log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut registry = TestRegistry { child, port, dir };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                return Err(format!("exited early with {status}\n--- log\n{}", registry.log()));
            }
            if http_status(port, "/v2/") == Some(200) {
                return Ok(registry);
            }
            if Instant::now() > deadline {
                return Err(format!("no 200 from /v2/ within {START_TIMEOUT:?}\n--- log\n{}", registry.log()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`, as used in image references (`127.0.0.1:PORT/repo:tag`).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage root (filesystem driver), e.g. to corrupt blobs on purpose.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's output so far (errors only: the log level is `error`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registry configuration: filesystem storage, deletes enabled, quiet logs, loopback only.
fn config_yaml(storage: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: stacyvm-testkit\n",
        storage.display()
    )
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Status code of `GET path` on 127.0.0.1:port (None when nothing answers).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 32];
    let mut n = 0;
    while n < 12 {
        match stream.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.strip_prefix("HTTP/1.1 ").or_else(|| line.strip_prefix("HTTP/1.0 "))?.get(..3)?.parse().ok()
}
