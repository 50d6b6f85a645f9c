//! Shared setup of the network tests: a provider with bridge networking on a bridge and subnet
//! of the test's own, a busybox image, an "upstream" host in a network namespace the test
//! creates, and a detector of leftover network state. Every host object made here is removed by
//! a `Drop` guard, also when the test fails.
//!
//! Needs root, crun, `/bin/busybox` (static), `ip`, `nft` and `STACYVM_AGENT_BIN`; without them
//! the tests skip, or fail when `STACYVM_REQUIRE_RUNTIMES=1`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stacyvm_image::ImageStore;
use stacyvm_oci::RuntimeKind;
use stacyvm_provider::conformance::{capture, shell};
use stacyvm_provider::{Provider, RuntimeHandle, SandboxSpec};
use stacyvm_provider_oci::network::{remove_host_network, BridgeSettings, NetworkMode, Subnet, RUN_DIR};
use stacyvm_provider_oci::{OciProvider, OciSettings, PullPolicy};

pub const IMAGE: &str = "busybox:latest";

/// Root, crun, busybox, iproute2, nftables and the agent, or `None` (skip) with a message.
pub fn prerequisites() -> Option<PathBuf> {
    let required = std::env::var("STACYVM_REQUIRE_RUNTIMES").is_ok_and(|v| v == "1");
    let agent = std::env::var_os("STACYVM_AGENT_BIN").map(PathBuf::from);
    let tool = |name: &str| ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().any(|d| Path::new(d).join(name).exists());
    let ready = unsafe { libc::geteuid() } == 0
        && stacyvm_oci::which("crun").is_some()
        && Path::new("/bin/busybox").exists()
        && tool("ip")
        && tool("nft")
        && agent.is_some();
    if !ready {
        assert!(
            !required,
            "STACYVM_REQUIRE_RUNTIMES=1 but root, crun, busybox, ip, nft or STACYVM_AGENT_BIN is missing"
        );
        eprintln!("SKIPPED: needs root, crun, /bin/busybox, ip, nft and STACYVM_AGENT_BIN");
        return None;
    }
    let _ = stacyvm_oci::ensure_hugetlb_v1_mount();
    agent
}

/// An image store holding a busybox image (imported offline) as [`IMAGE`].
pub fn busybox_store(root: &Path) -> Arc<ImageStore> {
    let store = Arc::new(ImageStore::open(root, Default::default()).unwrap());
    let tarball = root.with_extension("busybox.tar");
    stacyvm_testkit::busybox_tarball(&tarball);
    // Tests call this from inside their own runtime: import on a thread with a runtime of its own.
    let importer = store.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(importer.import(&tarball, Some(IMAGE))).unwrap();
    })
    .join()
    .unwrap();
    store
}

/// Runs a command, panicking with its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test bridge name and subnet unique to this process and `slot` (0..=40).
pub fn test_bridge(slot: u8) -> BridgeSettings {
    let name = format!("svt{:x}x{slot}", std::process::id() & 0xfffff);
    BridgeSettings::new(name, Subnet::new(Ipv4Addr::new(10, 231, slot, 0), 24).unwrap())
}

/// A provider (crun) with its own data dir; the bridge's host side is removed on drop.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub provider: Option<OciProvider>,
    pub bridge: BridgeSettings,
    pub agent: PathBuf,
    pub images: Arc<ImageStore>,
}

impl Net {
    pub fn new(agent: PathBuf, bridge: BridgeSettings) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let images = busybox_store(&dir.path().join("images"));
        let mut net = Net { dir, provider: None, bridge, agent, images };
        net.provider = Some(net.open(NetworkMode::Bridge(net.bridge.clone())).expect("provider with bridge network"));
        net
    }

    pub fn settings(&self, network: NetworkMode) -> OciSettings {
        OciSettings {
            runtime: RuntimeKind::Crun,
            runtime_path: None,
            data_dir: self.dir.path().join("data"),
            images: self.images.clone(),
            pull_policy: PullPolicy::Never,
            agent_binary: self.agent.clone(),
            pids_limit: 64,
            network,
            readonly_rootfs: false,
        }
    }

    /// Another provider over the same data dir (e.g. after a "restart").
    pub fn open(&self, network: NetworkMode) -> stacyvm_provider::ProviderResult<OciProvider> {
        OciProvider::new(self.settings(network))
    }

    pub fn p(&self) -> &OciProvider {
        self.provider.as_ref().unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Host state that belongs to a sandbox of this bridge: veths, namespace files and mounts,
    /// lease files, sandbox directories, nft rules naming a sandbox address.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge.bridge));
        found.extend(ports.into_iter().flatten().flatten().map(|e| format!("bridge port: {:?}", e.file_name())));
        let netns_dir = Path::new(RUN_DIR).join("netns").join(&self.bridge.bridge);
        found.extend(
            std::fs::read_dir(&netns_dir).into_iter().flatten().flatten().map(|e| format!("netns: {:?}", e.path())),
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let netns_text = netns_dir.display().to_string();
        found.extend(mounts.lines().filter(|l| l.contains(&netns_text)).map(|l| format!("mount: {l}")));
        found.extend(
            std::fs::read_dir(self.data_dir().join("sandboxes"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| format!("sandbox dir: {:?}", e.path())),
        );
        let prefix = self.bridge.subnet.to_string();
        let net_prefix = prefix.rsplit_once('.').unwrap().0.to_string() + ".";
        let rules = run("nft", &["list", "ruleset"]);
        found.extend(
            rules
                .lines()
                .filter(|l| l.contains(&net_prefix) && !l.contains(&prefix))
                .map(|l| format!("nft rule: {}", l.trim())),
        );
        found
    }

    pub async fn spawn(&self, tag: u32) -> RuntimeHandle {
        self.p().create(&spec(tag)).await.unwrap_or_else(|e| panic!("spawn {tag}: {e}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            // Drop may run inside the test's runtime: destroy on a thread with a runtime of its own.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    rt.block_on(async {
                        for id in p.list_owned().await.unwrap_or_default() {
                            let h =
                                RuntimeHandle { sandbox_id: id.clone(), runtime_id: id, details: Default::default() };
                            let _ = p.destroy(&h).await;
                        }
                    })
                });
            });
        }
        if let Err(e) = remove_host_network(&self.bridge.bridge) {
            eprintln!("cleanup of bridge {}: {e}", self.bridge.bridge);
        }
    }
}

/// A sandbox spec whose ID is unique to this test process and `tag`.
pub fn spec(tag: u32) -> SandboxSpec {
    let id = format!("sb-{:08x}", (std::process::id() << 12) ^ tag);
    SandboxSpec { id, image: IMAGE.into(), memory_mb: 64, vcpus: 1 }
}

/// Runs a shell script in a sandbox and returns its stdout.
pub async fn sh(p: &OciProvider, h: &RuntimeHandle, script: &str) -> String {
    let mut s = shell(script);
    s.timeout = Some(Duration::from_secs(20));
    let out = capture(p, h, s).await.unwrap();
    out.text(stacyvm_types::exec::StreamName::Stdout)
}

/// Joins the calling thread to a network namespace file.
fn enter_netns(path: &Path) {
    let ns = std::fs::File::open(path).unwrap();
    // SAFETY: setns on the calling thread with a valid fd.
    assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {}", path.display());
}

/// A host in a network namespace made by the test, reached from the host through a veth
/// (`host_ip` on the host side, `ip` inside, a /30 of 198.51.100.0/24), running a TCP service on
/// port 8080 that answers `hello-upstream` and records its peers. Removed on drop.
pub struct Upstream {
    pub name: String,
    pub veth: String,
    pub ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn start(slot: u8) -> Upstream {
        let name = format!("svup{:x}x{slot}", std::process::id());
        let veth = format!("svu{:x}x{slot}", std::process::id() & 0xfffff);
        let base = u32::from(Ipv4Addr::new(198, 51, 100, 0)) + 4 * u32::from(slot);
        let (host_ip, ip) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let mut up = Upstream {
            name: name.clone(),
            veth: veth.clone(),
            ip,
            host_ip,
            peers: Arc::default(),
            stop: Arc::default(),
            server: None,
        };
        run("ip", &["netns", "add", &name]);
        run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name]);
        run("ip", &["addr", "add", &format!("{host_ip}/30"), "dev", &veth]);
        run("ip", &["link", "set", &veth, "up"]);
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", &format!("{ip}/30"), "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
        ] {
            let mut full = vec!["-n", name.as_str()];
            full.extend(args);
            run("ip", &full);
        }
        // The route to the upstream must exist before anything is sent its way.
        let route = run("ip", &["-4", "route", "get", &ip.to_string()]);
        assert!(route.contains(&format!("dev {veth}")), "route to the upstream host: {route}");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, peers) = (up.stop.clone(), up.peers.clone());
        let ns_path = PathBuf::from(format!("/run/netns/{name}"));
        up.server = Some(std::thread::spawn(move || {
            enter_netns(&ns_path);
            let listener = TcpListener::bind((ip, 8080)).unwrap();
            listener.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        peers.lock().unwrap().push(peer);
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                        let _ = conn.write_all(b"hello-upstream\n");
                        let mut sink = [0u8; 64];
                        let _ = conn.read(&mut sink);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("upstream service listening");
        up
    }

    /// A shell line that prints the service's answer or `UNREACHABLE`.
    pub fn probe(&self) -> String {
        format!("nc -w 3 {} 8080 </dev/null || echo UNREACHABLE", self.ip)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
        let _ = Command::new("ip").args(["link", "del", &self.veth]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
