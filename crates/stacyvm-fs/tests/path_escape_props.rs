//! Property tests: no path string, however built, lets the file layer reach outside the
//! sandbox root, even with hostile symlinks inside it.

use std::os::unix::fs::symlink;

use proptest::prelude::*;
use stacyvm_fs::{HostRoot, ResolveMode, SandboxPath};

const SECRET: &[u8] = b"host secret outside the sandbox";

/// A root containing symlinks that point outside in every way we can think of, next to a
/// secret file that must never be readable or writable through the root.
fn hostile_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("workspace/sub")).unwrap();
    std::fs::write(root.join("workspace/ok.txt"), b"inside").unwrap();
    let secret = dir.path().join("secret");
    symlink(&secret, root.join("workspace/abs-secret")).unwrap();
    symlink("../../secret", root.join("workspace/rel-secret")).unwrap();
    symlink(dir.path(), root.join("workspace/abs-parent")).unwrap();
    symlink("../..", root.join("workspace/sub/up")).unwrap();
    symlink("/", root.join("workspace/slash")).unwrap();
    symlink("ok.txt", root.join("workspace/fine")).unwrap();
    (dir, root)
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("workspace".to_string()),
        Just("sub".to_string()),
        Just("up".to_string()),
        Just("abs-secret".to_string()),
        Just("rel-secret".to_string()),
        Just("abs-parent".to_string()),
        Just("slash".to_string()),
        Just("fine".to_string()),
        Just("secret".to_string()),
        Just("ok.txt".to_string()),
        "[a-z]{1,3}",
    ]
}

fn path_string() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(component(), 0..8))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn normalised_paths_are_absolute_and_clean(raw in path_string()) {
        if let Ok(p) = SandboxPath::parse(&raw) {
            let text = p.to_string();
            prop_assert!(text.starts_with('/'));
            prop_assert!(!text.split('/').any(|c| c == ".." || c == "."));
            prop_assert_eq!(SandboxPath::parse(&text).unwrap(), p, "parsing is idempotent");
        }
    }

    #[test]
    fn no_path_reads_or_writes_outside_the_root(
        raw in path_string(),
        mode in prop_oneof![Just(ResolveMode::Beneath), Just(ResolveMode::InRoot)],
    ) {
        let (dir, root_dir) = hostile_root();
        let root = HostRoot::open(&root_dir, mode).unwrap();
        let Ok(path) = SandboxPath::parse(&raw) else { return Ok(()) };
        if let Ok((mut file, _)) = root.open_read(&path) {
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut content).unwrap();
            prop_assert_ne!(content.as_slice(), SECRET, "read the host secret via {}", raw);
        }
        let _ = root.write(&path, b"overwritten", 0o644);
        let _ = root.chmod(&path, 0o777);
        let _ = root.remove(&path, true);
        let _ = root.rename(&path, &SandboxPath::parse("/workspace/moved").unwrap());
        prop_assert_eq!(std::fs::read(dir.path().join("secret")).unwrap(), SECRET, "secret changed via {}", raw);
        let mode = std::fs::metadata(dir.path().join("secret")).unwrap().permissions();
        prop_assert_ne!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o777, "chmod escaped via {}", raw);
        for listed in root.glob(&format!("{}/*", path)).unwrap_or_default() {
            prop_assert!(listed.starts_with('/'));
        }
    }
}
