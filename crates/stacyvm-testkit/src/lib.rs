//! Test-support fixtures shared by StacyVM's integration tests (a dev-dependency only).
//!
//! - [`rootfs`]: a busybox root filesystem built from the host's static busybox.
//! - [`registry`]: a real `docker-registry` on 127.0.0.1, started per test and killed on drop.
//! - [`images`]: OCI images built with `umoci`, pushed with `skopeo`, or packed as archives.
//! - [`python`]: a cached Debian bookworm root filesystem with python3 (`mmdebstrap`).
//! - [`prereq`]: skip-or-fail checks for host prerequisites (`STACYVM_REQUIRE_RUNTIMES=1`).
//!
//! Fixtures panic with the failing command and its stderr; missing host tools make them return
//! `None` (the test is skipped with a printed reason) unless `STACYVM_REQUIRE_RUNTIMES=1`.

pub mod cmd;
pub mod images;
pub mod prereq;
pub mod python;
pub mod registry;
pub mod rootfs;

pub use images::{
    busybox_tarball, docker_archive, oci_layout, oci_layout_archive, push_layered, push_rootfs, rootfs_tarball,
    skopeo_inspect, ImageConfig,
};
pub use prereq::{agent_binary, find_program, is_root, oci_prerequisites, programs, required, skip};
pub use python::python_rootfs;
pub use registry::TestRegistry;
pub use rootfs::busybox_rootfs;
