//! Streamed writes replace the target atomically, and an abandoned write leaves no trace.

use stacyvm_fs::{HostRoot, ResolveMode, SandboxPath};

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn chunks_commit_atomically_and_abandoned_writes_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::open(dir.path(), ResolveMode::Beneath).unwrap();
    let path = SandboxPath::parse("/data/big.bin").unwrap();
    root.write(&path, b"old", 0o644).unwrap();

    let mut pending = root.begin_write(&path, 0o600).unwrap();
    for i in 0..64u8 {
        pending.write_chunk(&[i; 1024]).unwrap();
    }
    assert_eq!(pending.written(), 64 * 1024);
    assert_eq!(std::fs::read(dir.path().join("data/big.bin")).unwrap(), b"old", "not visible before commit");
    pending.commit().unwrap();
    let content = std::fs::read(dir.path().join("data/big.bin")).unwrap();
    assert_eq!(content.len(), 64 * 1024);
    assert_eq!(content[1024 * 63], 63);

    let mut abandoned = root.begin_write(&path, 0o644).unwrap();
    abandoned.write_chunk(b"partial").unwrap();
    drop(abandoned);
    assert_eq!(std::fs::read(dir.path().join("data/big.bin")).unwrap().len(), 64 * 1024, "target untouched");
    assert_eq!(entries(&dir.path().join("data")), ["big.bin"], "no temporary file left");

    let err = root.begin_write(&SandboxPath::parse("/data").unwrap(), 0o644).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
}
