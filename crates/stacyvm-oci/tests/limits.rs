//! Resource limits on real containers (pids limit, memory limit and the OOM killer), on every
//! installed runtime; see `support/mod.rs`.

mod support;

use std::time::Duration;

use stacyvm_oci::{cgroup, RuntimeKind};
use support::{controller_dir, kv, processes_in_cgroup, setup};

const PIDS_SCRIPT: &str = r#"
(for i in $(seq 200); do sleep 5 & done) 2>/dev/null
echo loop_rc=$?
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
echo procs=$n
echo done=yes
"#;

async fn pids_limit_holds(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("pids");
    let limit: i64 = if kind == RuntimeKind::Runsc { 128 } else { 32 };
    let mut spec = env.spec(&id, PIDS_SCRIPT);
    spec.pids_limit = Some(limit);
    let cg = spec.cgroups_path.clone().unwrap();
    let guard = env.launch(&id, &spec).await;
    let st = env.rt.wait_stopped(&id, Duration::from_secs(30)).await.unwrap();
    assert!(st.is_some());
    let out = env.output(&id);
    eprintln!("--- {kind} pids output ---\n{out}\n--- runtime log ---\n{}", env.runtime_log(&id));
    let m = kv(&out);
    if kind == RuntimeKind::Runsc && !m.contains_key("done") {
        // With --platform=ptrace every sandbox address space is a host stub process: when the
        // pids limit refuses one, the Sentry panics and the whole sandbox stops. The limit holds
        // (the host never sees more tasks), at the price of the sandbox.
        eprintln!("runsc: the fork bomb stopped the whole sandbox (expected with the ptrace platform)");
        drop(guard);
        let left = processes_in_cgroup(&cg);
        assert!(left.is_empty(), "processes left after delete: {left:?}");
        return;
    }
    assert_eq!(m.get("done").map(String::as_str), Some("yes"), "script did not finish:\n{out}");
    assert_ne!(m["loop_rc"], "0", "the fork loop must hit the limit");
    let procs: i64 = m["procs"].parse().unwrap();
    assert!(procs <= limit, "{procs} processes with pids.max {limit}");
    if kind != RuntimeKind::Runsc {
        if let Some(dir) = controller_dir(&cg, "pids") {
            let events = std::fs::read_to_string(dir.join("pids.events")).unwrap_or_default();
            eprintln!("pids.events: {events:?}");
            let max_hits: u64 = events.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            assert!(max_hits > 0, "pids.events shows no refused fork: {events:?}");
        }
    }
    drop(guard);
    let left = processes_in_cgroup(&cg);
    assert!(left.is_empty(), "processes left after delete: {left:?}");
}

async fn memory_limit_oom_kills(kind: RuntimeKind) {
    let Some(env) = setup(kind) else { return };
    let id = env.id("oom");
    let mut spec = env.spec(&id, "tail /dev/zero; echo exit=$?");
    spec.memory_bytes = Some(32 << 20);
    let cg = spec.cgroups_path.clone().unwrap();
    let guard = env.launch(&id, &spec).await;
    let st = env.rt.wait_stopped(&id, Duration::from_secs(60)).await.unwrap();
    assert!(st.is_some());
    let out = env.output(&id);
    eprintln!("--- {kind} oom output ---\n{out}\n--- runtime log ---\n{}", env.runtime_log(&id));
    // Read before delete: delete removes the cgroup.
    let kills = cgroup::oom_kill_count(&cg);
    eprintln!("{kind}: oom_kill count {kills:?}");
    if kind == RuntimeKind::Runsc {
        // The host OOM killer picks the Sentry (the sandbox's kernel) as the biggest task in the
        // cgroup: the whole sandbox stops, nothing inside gets to print an exit status.
        match kv(&out).get("exit") {
            Some(code) => assert_eq!(code, "137"),
            None => eprintln!("runsc: OOM killed the whole sandbox (expected: the Sentry is the biggest task)"),
        }
        if let Some(k) = kills {
            assert!(k >= 1, "runsc sandbox stopped without an OOM kill");
        }
        drop(guard);
        return;
    }
    assert_eq!(kv(&out).get("exit").map(String::as_str), Some("137"), "tail must be SIGKILLed:\n{out}");
    assert!(kills.unwrap_or(0) >= 1, "the kernel's OOM counter did not move: {kills:?}");
    drop(guard);
    assert_eq!(cgroup::oom_kill_count(&cg), None, "cgroup gone after delete");
}

support::runtime_tests!(pids_limit_holds, memory_limit_oom_kills);
