//! Bridge networking next to Docker: dockerd sets the `ip filter` `FORWARD` policy to drop (it
//! does when it has to turn on IP forwarding itself; the test forces it, since forwarding may
//! already be on), which would drop our routed traffic whatever our own nftables table says.
//! The provider's accept rules in `DOCKER-USER` keep a sandbox's egress working; without them
//! the same probe fails; `health()` puts them back.
//!
//! Starts its own dockerd (own data root, exec root, pidfile and socket) unless one runs, and
//! restores what it changed: the `FORWARD` policy, the nftables tables and the `docker0` link
//! that dockerd created. In its own test binary so nothing else runs while the policy is `DROP`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stacyvm_provider::Provider;
use stacyvm_provider_oci::network::nft::remove_docker_user;
use support::*;

fn tables() -> Vec<String> {
    run("nft", &["list", "tables"]).lines().map(str::to_string).collect()
}

fn dockerd_running() -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "dockerd"))
}

fn forward_policy() -> Option<String> {
    let out = Command::new("iptables").args(["-w", "-S", "FORWARD"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| l.strip_prefix("-P FORWARD ").map(str::to_string))
}

/// Our dockerd (if we started one) and the host state to restore.
struct Docker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    tables_before: Vec<String>,
    docker0_before: bool,
    policy_before: Option<String>,
}

impl Docker {
    fn start() -> Docker {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Docker {
            child: None,
            tables_before: tables(),
            docker0_before: Path::new("/sys/class/net/docker0").exists(),
            policy_before: forward_policy(),
            dir,
        };
        if !dockerd_running() {
            let p = |name: &str| d.dir.path().join(name).display().to_string();
            let log = std::fs::File::create(d.dir.path().join("dockerd.log")).unwrap();
            let child = Command::new("dockerd")
                .args(["--data-root", &p("data"), "--exec-root", &p("exec"), "--pidfile", &p("docker.pid")])
                .args(["-H", &format!("unix://{}", p("docker.sock"))])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start dockerd");
            d.child = Some(child);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Command::new("iptables").args(["-w", "-S", "DOCKER-USER"]).output().is_ok_and(|o| o.status.success()) {
            assert!(Instant::now() < deadline, "dockerd did not create DOCKER-USER; log: {}", d.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        // Docker's own choice when it enables forwarding itself; forced so the test does not depend
        // on the forwarding state it found.
        run("iptables", &["-w", "-P", "FORWARD", "DROP"]);
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(policy) = &self.policy_before {
            let _ = Command::new("iptables").args(["-w", "-P", "FORWARD", policy]).output();
        }
        if self.child.is_none() && !dockerd_running() {
            for table in tables().into_iter().filter(|t| !self.tables_before.contains(t)) {
                let args: Vec<&str> = table.split_whitespace().collect();
                if let ["table", family, name] = args[..] {
                    let _ = Command::new("nft").args(["delete", "table", family, name]).output();
                }
            }
            if !self.docker0_before {
                let _ = Command::new("ip").args(["link", "del", "docker0"]).output();
            }
        }
        // The container runtime state of a dockerd started here lives in our temp dir.
        let _ = std::fs::remove_dir_all(self.dir.path().join("exec"));
    }
}

fn dockerd_installed() -> Option<PathBuf> {
    stacyvm_oci::which("dockerd").or_else(|| Some(PathBuf::from("/usr/sbin/dockerd")).filter(|p| p.exists()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_keeps_egress_when_docker_sets_forward_to_drop() {
    let Some(agent) = prerequisites() else { return };
    if dockerd_installed().is_none() || stacyvm_oci::which("iptables").is_none() {
        let required = std::env::var("STACYVM_REQUIRE_RUNTIMES").is_ok_and(|v| v == "1");
        assert!(!required, "STACYVM_REQUIRE_RUNTIMES=1 but dockerd or iptables is missing (apt-get install docker.io)");
        eprintln!("SKIPPED: needs dockerd and iptables (apt-get install docker.io)");
        return;
    }
    let docker = Docker::start();
    {
        let up = Upstream::start(20);
        let net = Net::new(agent, test_bridge(20));
        let rules = run("iptables", &["-w", "-S", "DOCKER-USER"]);
        let tag = format!("stacyvm:{}", net.bridge.bridge);
        assert_eq!(rules.lines().nth(1).map(|l| l.contains(&tag)), Some(true), "our rules come first:\n{rules}");
        let h = net.spawn(0x2001).await;
        let answer = sh(net.p(), &h, &up.probe()).await;
        assert!(answer.contains("hello-upstream"), "egress with Docker's FORWARD DROP: {answer}\n{}", docker.log());

        // Without our DOCKER-USER rules (as when dockerd starts after stacyvm) the drop bites...
        remove_docker_user(&net.bridge.bridge).unwrap();
        let cut = sh(net.p(), &h, &up.probe()).await;
        assert!(
            cut.contains("UNREACHABLE"),
            "Docker's policy should drop this: {cut}\n{}\n{}",
            run("iptables", &["-w", "-S"]),
            run("nft", &["list", "ruleset"])
        );
        // ...and the next health check repairs it, once (health checks repeat).
        net.p().health().await.unwrap();
        net.p().health().await.unwrap();
        let rules = run("iptables", &["-w", "-S", "DOCKER-USER"]);
        assert_eq!(rules.matches(&tag).count(), 2, "exactly our two rules:\n{rules}");
        let again = sh(net.p(), &h, &up.probe()).await;
        assert!(again.contains("hello-upstream"), "after health(): {again}");

        net.p().destroy(&h).await.unwrap();
        assert_eq!(net.leftovers(), Vec::<String>::new());
    }
    let rules = run("iptables", &["-w", "-S", "DOCKER-USER"]);
    assert!(!rules.contains("stacyvm:"), "our DOCKER-USER rules are removed with the bridge:\n{rules}");
    drop(docker);
}
