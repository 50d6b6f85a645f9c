//! The runtime-facing half of StacyVM's `oci` provider.
//!
//! - [`spec`]: builds the OCI runtime `config.json` from a [`BundleSpec`] with StacyVM's isolation
//!   defaults (namespaces, capabilities, masked paths, cgroup limits, [`seccomp`] profile).
//! - [`runtime`]: drives crun, runc or runsc through the OCI runtime CLI contract
//!   (`create`/`start`/`state`/`kill`/`delete`/`list`) with bounded, non-blocking stdio.
//! - [`cgroup`]: host cgroup layout (v1, hybrid, v2), container cgroup locations, and the crun
//!   hybrid-host workaround.
//!
//! A provider typically does:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stacyvm_oci::{BundleSpec, ContainerIo, OciRuntime, ProcessSpec, RuntimeKind};
//! let rt = OciRuntime::new(RuntimeKind::Crun, "/run/stacyvm/crun")?;
//! let mut spec = BundleSpec::new("/var/lib/stacyvm/sb-1/rootfs", ProcessSpec::new(["/.stacyvm/agent"]));
//! spec.memory_bytes = Some(512 << 20);
//! spec.cgroups_path = Some("stacyvm/sb-1".into());
//! let bundle = std::path::Path::new("/var/lib/stacyvm/sb-1");
//! stacyvm_oci::write_bundle(bundle, &spec)?;
//! rt.create("sb-1", bundle, ContainerIo::file(bundle.join("init.log"))).await?;
//! rt.start("sb-1").await?;
//! // ... later
//! rt.delete("sb-1", true).await?;
//! # Ok(()) }
//! ```

//! # What works where (checked on Debian 12, cgroup v1 hybrid, crun 1.8.1, runc 1.1.5, runsc 2022)
//!
//! The integration tests (`tests/isolation.rs`, `clone_filter.rs`, `limits.rs`, `lifecycle.rs`) run
//! the same checks on every installed runtime:
//!
//! | | crun | runc | runsc |
//! |---|---|---|---|
//! | uid 1000, all capability sets 0, `NoNewPrivs`, seccomp mode 2 | yes | yes | yes (no `NoNewPrivs`/`CapAmb` lines in gVisor's status) |
//! | root init keeps exactly the 7 agent capabilities | yes | yes | yes |
//! | own pid namespace, hostname, empty netns (`lo` only), masked/read-only paths | yes | yes | yes (gVisor has its own /proc) |
//! | read-only rootfs with writable tmpfs `/tmp`, `/workspace` | yes | yes | yes |
//! | `unshare`, `clone(CLONE_NEW*)`, `mount` denied; `clone3` = `ENOSYS`; threads work | yes | yes | yes |
//! | pids limit | fork fails, sandbox lives | same | the whole sandbox stops (see below) |
//! | memory limit | the biggest process is OOM-killed (137) | same | the whole sandbox stops (see below) |
//! | limits visible inside (`/sys/fs/cgroup`) | yes | yes | no |
//! | joins a prepared netns (`NetworkSpec::Path`) | yes | yes | no (`--network=none`) |
//! | delete leaves no cgroup, process or mount | yes | yes | yes |
//!
//! Caveats the provider must handle:
//!
//! - **crun on a hybrid host** refuses to start while controllers sit on the cgroup2 mount:
//!   [`cgroup::ensure_hugetlb_v1_mount`] at startup (and in `doctor`).
//! - **runc** gives a tmpfs mount the mode of the directory it covers (ignores `mode=`): images
//!   have `/tmp` 1777, so this only matters for odd images. Its `delete --force` polls at 100 ms;
//!   [`OciRuntime::destroy`] kills first and is ~6x faster.
//! - **runsc**: `--platform=ptrace --network=none` only; it applies `linux.seccomp` only with
//!   `--oci-seccomp` (always passed) and ignores `errnoRet` (see
//!   [`seccomp::default_profile_for`]). The Sentry and its ptrace stub processes live in the
//!   sandbox's host cgroup: hitting the pids limit makes the Sentry panic and a memory OOM kills
//!   the Sentry, so with runsc either limit stops the **whole sandbox** (the provider should
//!   report that as the sandbox's death, reading the OOM counter before `delete`). `delete` takes
//!   ~1.5 s: destroy in the background. A failed `create` leaves cgroup directories behind:
//!   [`OciRuntime::destroy`] with the cgroups path removes them.
//! - **cgroupsPath**: use an absolute path (`/stacyvm/<id>`); crun and runc resolve relative paths
//!   differently (see [`cgroup::container_cgroup_dirs`]).
//! - `RLIMIT_NOFILE` above the server's hard limit needs `CAP_SYS_RESOURCE`, which the server may
//!   lack: the spec clamps it (see [`BundleSpec::nofile`]).
//! - The container's init is reparented away from the server when the runtime's `create` exits,
//!   so its exit status is not available to the server; the agent reports exec results itself.

pub mod cgroup;
pub mod cgroup_sweep;
pub mod cgroup_tuning;
pub mod runtime;
pub mod seccomp;
pub mod spec;

pub use cgroup::{detect_mode, ensure_hugetlb_v1_mount, CgroupMode, HugetlbFix};
pub use cgroup_sweep::{sweep_stale_cgroups, SweepReport};
pub use runtime::{
    validate_id, which, ContainerIo, IoTarget, OciError, OciRuntime, RunscOptions, RuntimeInfo, RuntimeKind, State,
    Status,
};
pub use spec::{write_bundle, BindMount, BundleSpec, NetworkSpec, ProcessSpec, SpecError};
