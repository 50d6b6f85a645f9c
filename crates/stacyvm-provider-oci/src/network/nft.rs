//! Host packet filtering for a sandbox bridge: one nftables ruleset of our own, plus accept
//! rules in Docker's `DOCKER-USER` chain when Docker is there.
//!
//! Our tables are `inet stacyvm_<bridge>` and `bridge stacyvm_<bridge>` (`-` becomes `_`). They
//! reference only the bridge and the subnet, never a sandbox, so spawning and destroying touch no
//! rule. [`ruleset`] replaces both tables in one atomic `nft -f -` transaction:
//!
//! - `bridge … forward`: drops every frame forwarded between two of our veths (matched by their
//!   name prefix: `meta ibrname` needs `CONFIG_NFT_BRIDGE_META`, which some kernels lack), so
//!   sandboxes cannot reach each other (ARP included); each sandbox only talks to the gateway.
//! - `inet … input`: sandboxes may not open connections to the host itself (any of its addresses
//!   and services); replies to host-initiated traffic pass.
//! - `inet … forward`: routed traffic from the bridge out is accepted, back in only as replies;
//!   bridge-to-bridge routing (what `br_netfilter` would hand us) is dropped.
//! - `inet … postrouting`: source NAT (masquerade) for the subnet leaving through any other
//!   interface.
//!
//! A drop in any base chain is final, but an accept is not: when dockerd has set the `ip filter`
//! `FORWARD` policy to drop, our routed traffic dies there whatever our table says. Docker
//! evaluates `DOCKER-USER` first in `FORWARD` and leaves it to the administrator, so
//! [`ensure_docker_user`] inserts `-i <bridge> -j ACCEPT` and `-o <bridge> -j ACCEPT` there
//! (tagged with the comment `stacyvm:<bridge>`). Those go through the `iptables` front end on
//! purpose: it is the tool that owns that chain (iptables-nft or legacy, whichever Docker uses),
//! and native nft expressions in an iptables-nft chain can make iptables refuse to list or edit
//! it. Our own table still decides what may enter the bridge.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::Subnet;

/// Name of our tables for `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("stacyvm_{}", bridge.replace('-', "_"))
}

/// The comment tagging our `DOCKER-USER` rules.
pub fn docker_user_tag(bridge: &str) -> String {
    format!("stacyvm:{bridge}")
}

/// The nft script that (re)installs our tables for `bridge` and `subnet`, atomically;
/// `port_prefix` starts the name of every sandbox veth on the bridge.
pub fn ruleset(bridge: &str, subnet: Subnet, port_prefix: &str) -> String {
    let t = table_name(bridge);
    format!(
        r#"table inet {t}
delete table inet {t}
table inet {t} {{
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{bridge}" ct state established,related accept
        iifname "{bridge}" drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{bridge}" oifname "{bridge}" drop
        oifname "{bridge}" ct state established,related accept
        oifname "{bridge}" drop
        iifname "{bridge}" accept
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
table bridge {t}
delete table bridge {t}
table bridge {t} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{port_prefix}*" oifname "{port_prefix}*" drop
    }}
}}
"#
    )
}

/// The nft script removing our tables for `bridge` (idempotent).
pub fn removal(bridge: &str) -> String {
    let t = table_name(bridge);
    format!("table inet {t}\ndelete table inet {t}\ntable bridge {t}\ndelete table bridge {t}\n")
}

fn run_with_stdin(binary: &PathBuf, args: &[&str], stdin: &str) -> io::Result<Output> {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("run {}: {e}", binary.display())))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    child.wait_with_output()
}

fn check(what: &str, out: Output) -> io::Result<Output> {
    if out.status.success() {
        return Ok(out);
    }
    Err(io::Error::other(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim())))
}

/// The `nft` binary.
#[derive(Debug, Clone)]
pub struct Nft {
    binary: PathBuf,
}

impl Nft {
    /// Finds `nft` on PATH (or in /usr/sbin, /sbin).
    pub fn find() -> io::Result<Self> {
        super::find_binary("nft", "nftables").map(|binary| Nft { binary })
    }

    /// Applies a script as one transaction (`nft -f -`).
    pub fn apply(&self, script: &str) -> io::Result<()> {
        check("nft -f -", run_with_stdin(&self.binary, &["-f", "-"], script)?).map(|_| ())
    }
}

/// Whether a line of `iptables -S` is `rule` (iptables quotes comments in some versions).
fn same_rule(line: &str, rule: &str) -> bool {
    line.replace('"', "") == rule
}

/// Our two rules in `DOCKER-USER`, as `iptables -S` prints them (without quotes).
fn docker_user_rules(bridge: &str) -> [String; 2] {
    let tag = docker_user_tag(bridge);
    [
        format!("-A DOCKER-USER -i {bridge} -m comment --comment {tag} -j ACCEPT"),
        format!("-A DOCKER-USER -o {bridge} -m comment --comment {tag} -j ACCEPT"),
    ]
}

/// `iptables -w -S DOCKER-USER`, or `None` when iptables or the chain is missing.
fn docker_user_listing() -> Option<(PathBuf, String)> {
    let iptables = super::find_binary("iptables", "iptables").ok()?;
    let out = Command::new(&iptables).args(["-w", "-S", "DOCKER-USER"]).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| (iptables, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Makes sure `DOCKER-USER` (if Docker created it) starts with our accept rules for `bridge`.
/// Returns whether the chain exists.
pub fn ensure_docker_user(bridge: &str) -> io::Result<bool> {
    let Some((iptables, listing)) = docker_user_listing() else { return Ok(false) };
    let rules = docker_user_rules(bridge);
    let lines: Vec<&str> = listing.lines().collect();
    // Already in place, as the first two rules: nothing to do.
    let first_two: Vec<&str> = lines.iter().skip(1).take(2).copied().collect();
    if first_two.len() == 2 && first_two.iter().zip(&rules).all(|(l, r)| same_rule(l, r)) {
        return Ok(true);
    }
    let mut script = String::from("*filter\n");
    for line in lines.iter().filter(|l| rules.iter().any(|r| same_rule(l, r))) {
        script.push_str(&line.replacen("-A ", "-D ", 1));
        script.push('\n');
    }
    for (n, rule) in rules.iter().enumerate() {
        script.push_str(&rule.replacen("-A DOCKER-USER", &format!("-I DOCKER-USER {}", n + 1), 1));
        script.push('\n');
    }
    script.push_str("COMMIT\n");
    let restore = iptables.with_file_name("iptables-restore");
    let restore = if restore.exists() { restore } else { PathBuf::from("iptables-restore") };
    check("iptables-restore --noflush", run_with_stdin(&restore, &["-w", "--noflush"], &script)?)?;
    Ok(true)
}

/// Removes our `DOCKER-USER` rules for `bridge`, if any.
pub fn remove_docker_user(bridge: &str) -> io::Result<()> {
    let Some((iptables, listing)) = docker_user_listing() else { return Ok(()) };
    let rules = docker_user_rules(bridge);
    let ours: Vec<String> = listing
        .lines()
        .filter(|l| rules.iter().any(|r| same_rule(l, r)))
        .map(|l| l.replacen("-A ", "-D ", 1))
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    let script = format!("*filter\n{}\nCOMMIT\n", ours.join("\n"));
    let restore = iptables.with_file_name("iptables-restore");
    check("iptables-restore --noflush", run_with_stdin(&restore, &["-w", "--noflush"], &script)?).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_names_only_the_bridge_and_subnet() {
        let script = ruleset("sv-br0", "10.88.0.0/16".parse().unwrap(), "sv12ab");
        assert!(script.starts_with("table inet stacyvm_sv_br0\ndelete table inet stacyvm_sv_br0\n"));
        assert!(script.contains("ip saddr 10.88.0.0/16 oifname != \"sv-br0\" masquerade"));
        assert!(script.contains("iifname \"sv12ab*\" oifname \"sv12ab*\" drop"));
        assert_eq!(removal("sv-br0").lines().count(), 4);
        let rule = &docker_user_rules("stacyvm0")[0];
        assert_eq!(rule, "-A DOCKER-USER -i stacyvm0 -m comment --comment stacyvm:stacyvm0 -j ACCEPT");
        assert!(same_rule("-A DOCKER-USER -i stacyvm0 -m comment --comment \"stacyvm:stacyvm0\" -j ACCEPT", rule));
    }
}
