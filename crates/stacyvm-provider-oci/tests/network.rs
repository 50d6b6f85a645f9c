//! Bridge networking of the `oci` provider with real crun, nftables and network namespaces:
//! addresses, egress through NAT to an upstream host in a namespace of the test's own, isolation
//! (from other sandboxes and from host services), cleanup (destroy, churn, exhausted subnet,
//! restart), and `none` still meaning loopback only. See `support/mod.rs` for prerequisites.
//!
//! Each test uses its own bridge (`svt<pid>x<slot>`), subnet (`10.231.<slot>.0/24`) and upstream
//! /30 in 198.51.100.0/24, so the tests of this file run in parallel.

mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener};

use stacyvm_provider::{Provider, ProviderError, RuntimeHandle};
use stacyvm_provider_oci::network::{BridgeSettings, NetworkMode, Subnet};
use support::*;

fn ip_of(h: &RuntimeHandle) -> Ipv4Addr {
    h.details.get("ip").expect("the handle carries the address").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_sandbox_gets_an_address_and_reaches_an_upstream_host_through_nat() {
    let Some(agent) = prerequisites() else { return };
    let net = Net::new(agent, test_bridge(1));
    let up = Upstream::start(1);
    let h = net.spawn(0x101).await;
    let ip = ip_of(&h);
    assert!(net.bridge.subnet.is_leasable(ip), "{ip} in {}", net.bridge.subnet);
    assert_eq!(h.details.get("network").map(String::as_str), Some("bridge"));
    let inside = sh(net.p(), &h, "ip -4 -o addr show dev eth0; ip route; ip -o link | wc -l").await;
    assert!(inside.contains(&format!("inet {ip}/24")), "eth0 has the leased address:\n{inside}");
    assert!(inside.contains(&format!("default via {}", net.bridge.subnet.gateway())), "default route:\n{inside}");
    assert!(inside.trim_end().ends_with('2'), "lo and eth0 only:\n{inside}");
    let lease = std::fs::read_to_string(net.data_dir().join("sandboxes").join(&h.sandbox_id).join("ipv4")).unwrap();
    assert_eq!(lease.trim(), ip.to_string(), "the lease is recorded in the sandbox directory");

    let answer = sh(net.p(), &h, &up.probe()).await;
    assert!(answer.contains("hello-upstream"), "the sandbox reaches the upstream host: {answer}");
    let peers = up.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].ip(), IpAddr::V4(up.host_ip), "egress is masqueraded to the host's address");

    net.p().destroy(&h).await.unwrap();
    assert_eq!(net.leftovers(), Vec::<String>::new(), "destroy leaves no veth, netns, lease or rule");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_cannot_reach_each_other_nor_host_services() {
    let Some(agent) = prerequisites() else { return };
    let net = Net::new(agent, test_bridge(2));
    let gateway = net.bridge.subnet.gateway();
    // Host services on loopback and on the bridge's own address.
    let on_loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let on_gateway = TcpListener::bind((gateway, 0)).unwrap();
    for l in [&on_loopback, &on_gateway] {
        l.set_nonblocking(true).unwrap();
    }
    let (a, b) = (net.spawn(0x201).await, net.spawn(0x202).await);
    let (ip_a, ip_b) = (ip_of(&a), ip_of(&b));
    assert_ne!(ip_a, ip_b);
    // B serves on 9000 and reaches itself, so the listener works.
    sh(net.p(), &b, "nc -ll -p 9000 -e echo from-b >/dev/null 2>&1 & sleep 0.3; echo started").await;
    let own = sh(net.p(), &b, &format!("nc -w 2 {ip_b} 9000 </dev/null || echo UNREACHABLE")).await;
    assert!(own.contains("from-b"), "B's own service answers: {own}");
    let cross = sh(net.p(), &a, &format!("nc -w 2 {ip_b} 9000 </dev/null || echo UNREACHABLE")).await;
    assert!(cross.contains("UNREACHABLE") && !cross.contains("from-b"), "A must not reach B: {cross}");
    let ping = sh(net.p(), &a, &format!("ping -c 1 -W 1 {ip_b} >/dev/null 2>&1 && echo PINGED || echo no-ping")).await;
    assert!(ping.contains("no-ping"), "A must not even ping B: {ping}");

    let port_lo = on_loopback.local_addr().unwrap().port();
    let port_gw = on_gateway.local_addr().unwrap().port();
    let probe = format!(
        "nc -w 2 127.0.0.1 {port_lo} </dev/null && echo REACHED-LO || echo lo-unreachable; \
         nc -w 2 {gateway} {port_gw} </dev/null && echo REACHED-GW || echo gw-unreachable"
    );
    let text = sh(net.p(), &a, &probe).await;
    assert!(text.contains("lo-unreachable") && text.contains("gw-unreachable"), "{text}");
    assert!(on_loopback.accept().is_err() && on_gateway.accept().is_err(), "a host service saw a connection");
    for h in [&a, &b] {
        net.p().destroy(h).await.unwrap();
    }
    assert_eq!(net.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_still_has_only_loopback() {
    let Some(agent) = prerequisites() else { return };
    let net = Net::new(agent, test_bridge(3));
    let none = net.open(NetworkMode::None);
    // The bridge is claimed by the first provider, but `none` needs no bridge.
    let none = none.expect("a provider without network");
    let h = none.create(&spec(0x301)).await.unwrap();
    assert_eq!(h.details.get("network").map(String::as_str), Some("none"));
    assert!(!h.details.contains_key("ip"));
    let links = sh(&none, &h, "ip -o link | wc -l; ip -o link").await;
    assert!(links.starts_with("1\n") && links.contains("lo:"), "only lo:\n{links}");
    none.destroy(&h).await.unwrap();
    assert_eq!(net.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawns_get_distinct_addresses_and_a_churn_of_50_leaves_nothing() {
    let Some(agent) = prerequisites() else { return };
    let net = Net::new(agent, test_bridge(4));
    let ours = |family: &str| format!("{family} stacyvm_{}", net.bridge.bridge);
    let rules = || ["inet", "bridge"].map(|f| run("nft", &["list", "table", f, &ours(f)[f.len() + 1..]]));
    let before = rules();
    let spawned = futures::future::join_all((0..8).map(|i| net.spawn(0x400 + i))).await;
    let ips: BTreeSet<Ipv4Addr> = spawned.iter().map(ip_of).collect();
    assert_eq!(ips.len(), 8, "distinct addresses: {ips:?}");
    assert_eq!(net.leftovers().iter().filter(|l| l.starts_with("bridge port")).count(), 8);
    futures::future::join_all(spawned.iter().map(|h| net.p().destroy(h))).await.into_iter().for_each(|r| r.unwrap());
    assert_eq!(net.leftovers(), Vec::<String>::new());

    let started = std::time::Instant::now();
    for i in 0..50u32 {
        let h = net.spawn(0x500 + i).await;
        assert!(net.bridge.subnet.is_leasable(ip_of(&h)));
        net.p().destroy(&h).await.unwrap_or_else(|e| panic!("cycle {i}: destroy: {e}"));
    }
    eprintln!("50 bridge-network spawn/destroy cycles in {:?}", started.elapsed());
    assert_eq!(net.leftovers(), Vec::<String>::new(), "the churn leaked");
    assert_eq!(rules(), before, "spawns and destroys change no nft rule");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_subnet_fails_clearly_and_leaks_nothing() {
    let Some(agent) = prerequisites() else { return };
    // A /29: the gateway and five sandbox addresses.
    let net = Net::new(agent, BridgeSettings::new(test_bridge(5).bridge, "10.231.5.0/29".parse::<Subnet>().unwrap()));
    let mut live = Vec::new();
    for i in 0..5 {
        live.push(net.spawn(0x600 + i).await);
    }
    let err = net.p().create(&spec(0x6ff)).await.unwrap_err();
    assert!(matches!(err, ProviderError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("10.231.5.0/29 is exhausted"), "{err}");
    let leftovers = net.leftovers();
    assert!(!leftovers.iter().any(|l| l.contains(&spec(0x6ff).id)), "the failed spawn left {leftovers:?}");
    for kind in ["bridge port", "netns", "sandbox dir"] {
        assert_eq!(leftovers.iter().filter(|l| l.starts_with(kind)).count(), 5, "{kind}: {leftovers:?}");
    }
    // A released address is usable again.
    net.p().destroy(&live.remove(2)).await.unwrap();
    live.push(net.spawn(0x6fe).await);
    for h in &live {
        net.p().destroy(h).await.unwrap();
    }
    assert_eq!(net.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_survive_a_restart_and_orphans_are_cleaned() {
    let Some(agent) = prerequisites() else { return };
    let mut net = Net::new(agent, test_bridge(6));
    let (a, b) = (net.spawn(0x701).await, net.spawn(0x702).await);
    // One server per bridge.
    let err = net.open(NetworkMode::Bridge(net.bridge.clone())).err().expect("a second server on the bridge");
    assert!(err.to_string().contains("in use by another stacyvm server"), "{err}");
    // "kill -9": the provider goes away without destroying anything.
    drop(net.provider.take());
    let restarted = net.open(NetworkMode::Bridge(net.bridge.clone())).expect("restart");
    let owned = restarted.list_owned().await.unwrap();
    assert!(owned.contains(&a.sandbox_id) && owned.contains(&b.sandbox_id), "{owned:?}");
    let c = restarted.create(&spec(0x703)).await.unwrap();
    assert!(![ip_of(&a), ip_of(&b)].contains(&ip_of(&c)), "the leases of running sandboxes are kept");
    // The old sandboxes still have their network.
    let up = Upstream::start(6);
    let answer = sh(&restarted, &a, &up.probe()).await;
    assert!(answer.contains("hello-upstream"), "{answer}");
    // Reconciliation destroys orphans by ID alone (no handle details).
    for h in [&a, &b, &c] {
        let bare =
            RuntimeHandle { sandbox_id: h.sandbox_id.clone(), runtime_id: String::new(), details: Default::default() };
        restarted.destroy(&bare).await.unwrap();
    }
    assert!(restarted.list_owned().await.unwrap().is_empty());
    net.provider = Some(restarted);
    assert_eq!(net.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_left_by_a_crash_mid_destroy_is_found_and_removed() {
    let Some(agent) = prerequisites() else { return };
    let net = Net::new(agent, test_bridge(7));
    let h = net.spawn(0x801).await;
    // Simulate a crash after the container and the sandbox directory were removed but before the
    // network was: only the namespace and the veth remain.
    let bare =
        RuntimeHandle { sandbox_id: h.sandbox_id.clone(), runtime_id: String::new(), details: Default::default() };
    let none = net.open(NetworkMode::None).unwrap();
    none.destroy(&bare).await.unwrap();
    let left = net.leftovers();
    assert!(
        left.iter().any(|l| l.starts_with("netns")) && left.iter().any(|l| l.starts_with("bridge port")),
        "{left:?}"
    );
    assert!(net.p().list_owned().await.unwrap().contains(&h.sandbox_id), "the orphan is reported");
    net.p().destroy(&bare).await.unwrap();
    assert_eq!(net.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_refuses_bridge_networking() {
    let Some(agent) = prerequisites() else { return };
    if stacyvm_oci::which("runsc").is_none() {
        eprintln!("SKIPPED: runsc is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let settings = stacyvm_provider_oci::OciSettings {
        runtime: stacyvm_oci::RuntimeKind::Runsc,
        runtime_path: None,
        data_dir: dir.path().join("data"),
        images: std::sync::Arc::new(
            stacyvm_image::ImageStore::open(&dir.path().join("images"), Default::default()).unwrap(),
        ),
        pull_policy: stacyvm_provider_oci::PullPolicy::Never,
        agent_binary: agent,
        pids_limit: 128,
        network: NetworkMode::Bridge(test_bridge(8)),
        readonly_rootfs: false,
    };
    let err = stacyvm_provider_oci::OciProvider::new(settings).err().expect("refused");
    assert!(matches!(err, ProviderError::Unavailable(_)) && err.to_string().contains("crun or runc"), "{err}");
    assert!(!std::path::Path::new("/sys/class/net").join(test_bridge(8).bridge).exists(), "nothing was set up");
}
