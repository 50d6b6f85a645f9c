//! IPv4 address management: the bridge [`Subnet`] and the per-sandbox leases.
//!
//! A lease is the file `<sandbox dir>/ipv4` (written before the address is configured, removed
//! with the sandbox directory), so the set of leased addresses is rebuilt from disk when the
//! server starts and survives a crash. In memory, [`Ipam`] keeps that set behind a mutex:
//! concurrent spawns never get the same address. Allocation is next-fit (it continues after the
//! last address handed out) so a just-released address, which may still have conntrack entries,
//! is not reused at once.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

/// Name of the lease file inside a sandbox directory.
pub const LEASE_FILE: &str = "ipv4";

/// An IPv4 subnet whose first address is the gateway (the bridge) and whose remaining addresses,
/// except the broadcast address, are leased to sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// `network/prefix`; the prefix must be 8..=30 and the host bits of `network` zero.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Self, String> {
        if !(8..=30).contains(&prefix) {
            return Err(format!("subnet prefix length must be between 8 and 30, got {prefix}"));
        }
        if u32::from(network) & Self::host_mask(prefix) != 0 {
            return Err(format!("{network}/{prefix} has host bits set"));
        }
        Ok(Subnet { network, prefix })
    }

    fn host_mask(prefix: u8) -> u32 {
        u32::MAX >> prefix
    }

    /// Prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The bridge's address (network + 1).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// First and last address that can be leased to a sandbox.
    fn lease_range(&self) -> (u32, u32) {
        let base = u32::from(self.network);
        (base + 2, base + Self::host_mask(self.prefix) - 1)
    }

    /// How many sandboxes fit.
    pub fn capacity(&self) -> u32 {
        let (first, last) = self.lease_range();
        last - first + 1
    }

    /// Whether `ip` lies in the leasable range.
    pub fn is_leasable(&self, ip: Ipv4Addr) -> bool {
        let (first, last) = self.lease_range();
        (first..=last).contains(&u32::from(ip))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a subnet like 10.88.0.0/16"))?;
        let addr = addr.parse().map_err(|_| format!("{s:?}: not an IPv4 address"))?;
        let prefix = prefix.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
        Subnet::new(addr, prefix)
    }
}

struct Leases {
    used: BTreeSet<u32>,
    /// The last address handed out (next-fit cursor).
    last: u32,
}

/// The leased addresses of one subnet.
pub struct Ipam {
    subnet: Subnet,
    leases: Mutex<Leases>,
}

impl Ipam {
    /// An allocator with the leases recorded under `sandboxes_dir/*/ipv4` (addresses outside the
    /// subnet, e.g. after a subnet change, are ignored).
    pub fn load(subnet: Subnet, sandboxes_dir: &Path) -> Self {
        let mut used = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(sandboxes_dir) {
            for entry in entries.flatten() {
                if let Some(ip) = read_lease(&entry.path()).filter(|ip| subnet.is_leasable(*ip)) {
                    used.insert(u32::from(ip));
                }
            }
        }
        let last = used.last().copied().unwrap_or(subnet.lease_range().0 - 1);
        Ipam { subnet, leases: Mutex::new(Leases { used, last }) }
    }

    /// The subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// Reserves a free address; fails with a clear message when the subnet is exhausted.
    pub fn allocate(&self) -> io::Result<Ipv4Addr> {
        let (first, last) = self.subnet.lease_range();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let start = if leases.last >= last { first } else { leases.last + 1 };
        let found = (start..=last).chain(first..start).find(|ip| !leases.used.contains(ip));
        let ip = found.ok_or_else(|| {
            io::Error::other(format!(
                "subnet {} is exhausted: all {} sandbox addresses are leased",
                self.subnet,
                self.subnet.capacity()
            ))
        })?;
        leases.used.insert(ip);
        leases.last = ip;
        Ok(Ipv4Addr::from(ip))
    }

    /// Returns an address to the pool (no-op if it was not leased).
    pub fn release(&self, ip: Ipv4Addr) {
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).used.remove(&u32::from(ip));
    }

    /// Number of leased addresses.
    pub fn leased(&self) -> usize {
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).used.len()
    }
}

/// Records `ip` as the lease of the sandbox in `sandbox_dir` (atomically).
pub fn write_lease(sandbox_dir: &Path, ip: Ipv4Addr) -> io::Result<()> {
    let tmp = sandbox_dir.join(".ipv4.tmp");
    std::fs::write(&tmp, format!("{ip}\n"))?;
    std::fs::rename(tmp, sandbox_dir.join(LEASE_FILE))
}

/// The lease recorded in `sandbox_dir`, if any.
pub fn read_lease(sandbox_dir: &Path) -> Option<Ipv4Addr> {
    std::fs::read_to_string(sandbox_dir.join(LEASE_FILE)).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_parsing_and_ranges() {
        let s: Subnet = "10.88.0.0/16".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.capacity(), 65_533);
        assert!(s.is_leasable(Ipv4Addr::new(10, 88, 0, 2)));
        assert!(s.is_leasable(Ipv4Addr::new(10, 88, 255, 254)));
        assert!(!s.is_leasable(Ipv4Addr::new(10, 88, 255, 255)), "broadcast");
        assert!(!s.is_leasable(s.gateway()));
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert!("10.88.0.1/16".parse::<Subnet>().unwrap_err().contains("host bits"));
        assert!("10.88.0.0/31".parse::<Subnet>().is_err());
        assert!("10.88.0.0".parse::<Subnet>().is_err());
    }

    #[test]
    fn allocation_is_unique_next_fit_and_exhausts_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::load("192.168.50.0/29".parse().unwrap(), dir.path());
        let got: Vec<Ipv4Addr> = (0..5).map(|_| ipam.allocate().unwrap()).collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(192, 168, 50, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(192, 168, 50, 6)));
        let err = ipam.allocate().unwrap_err().to_string();
        assert!(err.contains("192.168.50.0/29 is exhausted") && err.contains("all 5"), "{err}");
        ipam.release(Ipv4Addr::new(192, 168, 50, 3));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(192, 168, 50, 3));
        ipam.release(Ipv4Addr::new(192, 168, 50, 4));
        ipam.release(Ipv4Addr::new(192, 168, 50, 2));
        // Next-fit: continues after .3, so .4 comes before the older .2.
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(192, 168, 50, 4));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(192, 168, 50, 2));
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = std::sync::Arc::new(Ipam::load("10.1.0.0/22".parse().unwrap(), dir.path()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let ipam = ipam.clone();
                std::thread::spawn(move || (0..100).map(|_| ipam.allocate().unwrap()).collect::<Vec<_>>())
            })
            .collect();
        let all: Vec<Ipv4Addr> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let unique: BTreeSet<Ipv4Addr> = all.iter().copied().collect();
        assert_eq!(unique.len(), 800);
    }

    #[test]
    fn leases_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = "10.2.0.0/29".parse().unwrap();
        for (id, ip) in [("sb-1", Ipv4Addr::new(10, 2, 0, 2)), ("sb-2", Ipv4Addr::new(10, 2, 0, 4))] {
            std::fs::create_dir(dir.path().join(id)).unwrap();
            write_lease(&dir.path().join(id), ip).unwrap();
        }
        std::fs::create_dir(dir.path().join("sb-3")).unwrap();
        write_lease(&dir.path().join("sb-3"), Ipv4Addr::new(10, 9, 9, 9)).unwrap();
        let ipam = Ipam::load(subnet, dir.path());
        assert_eq!(ipam.leased(), 2, "the foreign address is ignored");
        let next: Vec<Ipv4Addr> = (0..3).map(|_| ipam.allocate().unwrap()).collect();
        assert_eq!(next, [Ipv4Addr::new(10, 2, 0, 5), Ipv4Addr::new(10, 2, 0, 6), Ipv4Addr::new(10, 2, 0, 3)]);
        assert!(ipam.allocate().is_err());
    }
}
