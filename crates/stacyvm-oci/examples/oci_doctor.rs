//! Prints what `stacyvm doctor` would report for the `oci` provider on this host:
//! cgroup layout, the crun hybrid workaround (applied when `--fix` is given), and every runtime's
//! version and warnings.
//!
//! `cargo run -p stacyvm-oci --example oci_doctor [-- --fix]`

use stacyvm_oci::{cgroup, OciRuntime, RuntimeKind};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fix = std::env::args().any(|a| a == "--fix");
    match cgroup::detect_mode() {
        Ok(mode) => println!("cgroup layout: {mode}"),
        Err(e) => println!("cgroup layout: unknown ({e})"),
    }
    if let Ok(ctrls) = cgroup::hybrid_unified_controllers() {
        println!("controllers on the hybrid cgroup2 mount: {ctrls:?}");
    }
    if fix {
        match cgroup::ensure_hugetlb_v1_mount() {
            Ok(r) => println!("hugetlb workaround: {r:?}"),
            Err(e) => println!("hugetlb workaround failed: {e}"),
        }
    }
    for kind in RuntimeKind::ALL {
        match OciRuntime::new(kind, format!("/run/stacyvm/{kind}")) {
            Ok(rt) => match rt.detect().await {
                Ok(info) => {
                    println!("{kind}: {} at {}", info.version, info.binary.display());
                    for w in info.warnings {
                        println!("  warning: {w}");
                    }
                }
                Err(e) => println!("{kind}: not working: {e}"),
            },
            Err(e) => println!("{kind}: {e}"),
        }
    }
}
