//! Files and directories created through a root with an owner belong to that owner.

use std::os::unix::fs::MetadataExt;

use stacyvm_fs::{HostRoot, ResolveMode, SandboxPath};

#[test]
fn created_files_and_parents_get_the_owner() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: chown needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::open(dir.path(), ResolveMode::InRoot).unwrap().with_owner(1000, 1001);
    root.write(&SandboxPath::parse("/workspace/a/b.txt").unwrap(), b"x", 0o640).unwrap();
    for rel in ["workspace", "workspace/a", "workspace/a/b.txt"] {
        let meta = std::fs::metadata(dir.path().join(rel)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1000, 1001), "{rel}");
    }
    assert_eq!(std::fs::metadata(dir.path().join("workspace/a/b.txt")).unwrap().mode() & 0o777, 0o640);
    // Without an owner, files keep the creator's identity.
    let plain = HostRoot::open(dir.path(), ResolveMode::InRoot).unwrap();
    plain.write(&SandboxPath::parse("/c.txt").unwrap(), b"y", 0o644).unwrap();
    assert_eq!(std::fs::metadata(dir.path().join("c.txt")).unwrap().uid(), 0);
}
