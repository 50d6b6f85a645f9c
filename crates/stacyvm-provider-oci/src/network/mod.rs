//! Sandbox networking of the `oci` provider.
//!
//! - [`NetworkMode::None`] (the default): the runtime gives each sandbox a fresh network
//!   namespace with only `lo`.
//! - [`NetworkMode::Bridge`]: [`BridgeNetwork`] prepares, per sandbox, a network namespace bound
//!   at `/run/stacyvm/netns/<bridge>/<id>` that `config.json` joins, with a veth pair: `eth0`
//!   inside (an address leased from the subnet, default route via the bridge) and
//!   `sv<tag><id-hex>` on the host, a port of the bridge. The host side, set up once
//!   ([`BridgeNetwork::ensure_host`]): the bridge with the subnet's first address, IPv4
//!   forwarding, and the nftables rules of [`nft`] (egress NAT, sandboxes isolated from each
//!   other and from the host's own services, no inbound connections).
//!
//! Everything a sandbox owns is found again from its ID alone (the namespace path, the veth name,
//! the lease file `<sandbox dir>/ipv4`), so destroy and crash reconciliation need no extra state.
//! Links and addresses are set with iproute2 (see [`iproute`] for why).
//!
//! One server per bridge: [`BridgeNetwork::open`] holds an exclusive lock on
//! `/run/stacyvm/bridges/<bridge>.lock` for the provider's lifetime, because leases are only
//! known to the server that wrote them.

pub mod ipam;
mod iproute;
pub mod netns;
pub mod nft;

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub use ipam::Subnet;
use ipam::{read_lease, write_lease, Ipam};
use iproute::Ip;
use nft::Nft;

/// Root of our runtime files (namespaces, bridge locks). Like the kernel state they track, they
/// do not survive a reboot.
pub const RUN_DIR: &str = "/run/stacyvm";

/// How sandboxes are networked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Loopback only.
    #[default]
    None,
    /// A veth on a host bridge with NAT egress.
    Bridge(BridgeSettings),
}

impl NetworkMode {
    /// `none` or `bridge`.
    pub fn name(&self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Bridge(_) => "bridge",
        }
    }
}

/// Settings of [`NetworkMode::Bridge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSettings {
    /// Host bridge (created if missing), 1..=15 bytes of `[A-Za-z0-9_-]`.
    pub bridge: String,
    /// Its subnet; the first address is the bridge's.
    pub subnet: Subnet,
}

impl BridgeSettings {
    /// Defaults: `stacyvm0`, `10.88.0.0/16`.
    pub fn new(bridge: impl Into<String>, subnet: Subnet) -> Self {
        BridgeSettings { bridge: bridge.into(), subnet }
    }
}

/// What one sandbox got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its address.
    pub ip: Ipv4Addr,
    /// The namespace file `config.json` points at.
    pub netns: PathBuf,
}

/// Finds a host tool on PATH or in the sbin directories (root's PATH may lack them).
pub(crate) fn find_binary(name: &str, package: &str) -> io::Result<PathBuf> {
    stacyvm_oci::which(name)
        .or_else(|| ["/usr/sbin", "/sbin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file()))
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{name} is not installed (apt-get install {package})"))
        })
}

fn context(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Bridge networking for one provider.
pub struct BridgeNetwork {
    settings: BridgeSettings,
    ipam: Ipam,
    ip: Ip,
    nft: Nft,
    netns_dir: PathBuf,
    /// Prefix of our veth names: `sv` + 4 hex digits derived from the bridge name.
    veth_prefix: String,
    _lock: File,
}

impl BridgeNetwork {
    /// Claims the bridge for this server, sets up the host side and loads the leases recorded
    /// under `sandboxes_dir`.
    pub fn open(settings: BridgeSettings, sandboxes_dir: &Path) -> io::Result<Self> {
        let ip = Ip::find()?;
        let nft = Nft::find()?;
        let lock = lock_bridge(&settings.bridge)?;
        let hash = settings.bridge.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        let net = BridgeNetwork {
            ipam: Ipam::load(settings.subnet, sandboxes_dir),
            netns_dir: Path::new(RUN_DIR).join("netns").join(&settings.bridge),
            veth_prefix: format!("sv{:04x}", hash & 0xffff),
            settings,
            ip,
            nft,
            _lock: lock,
        };
        net.ensure_host()?;
        Ok(net)
    }

    /// The settings.
    pub fn settings(&self) -> &BridgeSettings {
        &self.settings
    }

    /// Number of leased addresses.
    pub fn leased(&self) -> usize {
        self.ipam.leased()
    }

    /// Creates or repairs the host side: the bridge and its address, IPv4 forwarding, our
    /// nftables tables, and our `DOCKER-USER` rules if Docker is present (so calling this again
    /// after dockerd started fixes egress). Idempotent.
    pub fn ensure_host(&self) -> io::Result<()> {
        let BridgeSettings { bridge, subnet } = &self.settings;
        let mut lines = Vec::new();
        if !iproute::link_exists(bridge) {
            lines.push(format!("link add {bridge} type bridge"));
        }
        lines.push(format!("addr replace {}/{} dev {bridge}", subnet.gateway(), subnet.prefix()));
        lines.push(format!("link set {bridge} up"));
        self.ip.batch(&lines).map_err(context(format!("set up bridge {bridge}")))?;
        let forward = Path::new("/proc/sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(forward).map(|v| v.trim() != "1").unwrap_or(true) {
            std::fs::write(forward, "1").map_err(context("enable IPv4 forwarding".into()))?;
        }
        self.nft
            .apply(&nft::ruleset(bridge, *subnet, &self.veth_prefix))
            .map_err(context(format!("install nftables rules for {bridge}")))?;
        nft::ensure_docker_user(bridge).map_err(context("add accept rules to DOCKER-USER".into()))?;
        Ok(())
    }

    /// The namespace file of a sandbox.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// The host end of a sandbox's veth pair: the prefix and the 8 hex digits of an `sb-xxxxxxxx`
    /// ID (a hash of other IDs), 14 bytes in all (the kernel allows 15).
    pub fn veth_name(&self, id: &str) -> String {
        let hex = id.strip_prefix("sb-").filter(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        match hex {
            Some(h) => format!("{}{}", self.veth_prefix, h.to_ascii_lowercase()),
            None => {
                let hash = id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
                format!("{}{hash:08x}", self.veth_prefix)
            }
        }
    }

    /// Leases an address, records it in `sandbox_dir`, creates the namespace and the veth pair
    /// and configures `lo`, `eth0` and the default route inside. On failure everything done so
    /// far is undone.
    pub fn attach(&self, id: &str, sandbox_dir: &Path) -> io::Result<Attachment> {
        let ip = self.ipam.allocate()?;
        let attachment = Attachment { ip, netns: self.netns_path(id) };
        let result = write_lease(sandbox_dir, ip)
            .map_err(context("record the address lease".into()))
            .and_then(|()| self.plumb(id, &attachment));
        if let Err(e) = result {
            let _ = self.detach(id, sandbox_dir);
            self.ipam.release(ip);
            return Err(e);
        }
        Ok(attachment)
    }

    fn plumb(&self, id: &str, a: &Attachment) -> io::Result<()> {
        let BridgeSettings { bridge, subnet } = &self.settings;
        let veth = self.veth_name(id);
        netns::create(&a.netns)?;
        self.ip
            .batch(&[
                format!("link add {veth} type veth peer name eth0 netns {}", a.netns.display()),
                format!("link set {veth} master {bridge} up"),
            ])
            .map_err(context(format!("create veth {veth}")))?;
        let inside = vec![
            "link set lo up".to_string(),
            format!("addr add {}/{} dev eth0", a.ip, subnet.prefix()),
            "link set eth0 up".to_string(),
            format!("route add default via {}", subnet.gateway()),
        ];
        let ip = self.ip.clone();
        netns::run_in(&a.netns, move || ip.batch(&inside))?.map_err(context("configure the sandbox's eth0".into()))
    }

    /// Removes the veth, the namespace and the lease of a sandbox. Idempotent; works from the ID
    /// alone (after a restart too).
    pub fn detach(&self, id: &str, sandbox_dir: &Path) -> io::Result<()> {
        self.ip.delete_link(&self.veth_name(id))?;
        netns::remove(&self.netns_path(id))?;
        if let Some(ip) = read_lease(sandbox_dir) {
            self.ipam.release(ip);
            match std::fs::remove_file(sandbox_dir.join(ipam::LEASE_FILE)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Sandbox IDs that still have a namespace here, and veth names on the bridge that are ours
    /// (as IDs, for `sb-xxxxxxxx` IDs). Crash reconciliation destroys those without a live row.
    pub fn owned_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.netns_dir)
            .map(|entries| entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        for port in iproute::bridge_ports(&self.settings.bridge) {
            if let Some(hex) = port.strip_prefix(&self.veth_prefix) {
                ids.push(format!("sb-{hex}"));
            }
        }
        ids
    }
}

fn lock_bridge(bridge: &str) -> io::Result<File> {
    let dir = Path::new(RUN_DIR).join("bridges");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{bridge}.lock"));
    let file = File::options().create(true).truncate(false).write(true).open(&path)?;
    // A lock just released can still be held for a moment by a child this process is forking
    // (the descriptor is copied until the child's exec closes it): retry briefly before
    // concluding that another server owns the bridge.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    // SAFETY: flock on a valid fd; released when the file is closed.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if std::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("bridge {bridge} is in use by another stacyvm server (lock {})", path.display()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(file)
}

/// Removes the host side of a bridge network: our nftables tables, our `DOCKER-USER` rules and
/// the bridge itself. For tests and uninstalls; sandboxes should be destroyed first.
pub fn remove_host_network(bridge: &str) -> io::Result<()> {
    Nft::find()?.apply(&nft::removal(bridge))?;
    nft::remove_docker_user(bridge)?;
    Ip::find()?.delete_link(bridge)?;
    let _ = std::fs::remove_dir(Path::new(RUN_DIR).join("netns").join(bridge));
    let _ = std::fs::remove_file(Path::new(RUN_DIR).join("bridges").join(format!("{bridge}.lock")));
    Ok(())
}
