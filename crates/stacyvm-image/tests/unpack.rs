//! The layer unpacker against hostile and tricky tarballs: nothing lands outside the layer
//! directory, whiteouts become overlayfs whiteouts, metadata is kept, device nodes are not.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use stacyvm_image::unpack::unpack_layer;
use stacyvm_image::{Digest, ImageError};

/// A tar entry written with a raw name, so names the `tar` builder refuses (`..`) can be tested.
fn entry(tar: &mut Vec<u8>, name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>, mode: u32, uid: u64) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_700_000_000);
    if let Some(link) = link {
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

fn file(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
    entry(tar, name, tar::EntryType::Regular, data, None, 0o644, 0);
}

struct Fixture {
    _tmp: tempfile::TempDir,
    layer: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&layer).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "host secret").unwrap();
    Fixture { _tmp: tmp, layer, outside }
}

fn outside_untouched(f: &Fixture) {
    let names: Vec<_> = std::fs::read_dir(&f.outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["secret"], "something was written outside the layer");
    assert_eq!(std::fs::read_to_string(f.outside.join("secret")).unwrap(), "host secret");
    assert_eq!(std::fs::metadata(f.outside.join("secret")).unwrap().nlink(), 1, "host file was hard-linked");
}

#[test]
fn dot_dot_entries_are_refused() {
    let f = fixture();
    let mut tar = Vec::new();
    file(&mut tar, "../outside/evil", b"x");
    let err = unpack_layer(&finish(tar)[..], &f.layer).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    outside_untouched(&f);
}

#[test]
fn symlinks_cannot_carry_later_entries_outside() {
    for target in ["../outside", "/", "../../../../..", "/tmp"] {
        let f = fixture();
        let mut tar = Vec::new();
        entry(&mut tar, "link", tar::EntryType::Symlink, b"", Some(target), 0o777, 0);
        file(&mut tar, "link/evil", b"x");
        entry(&mut tar, "hard", tar::EntryType::Link, b"", Some("link/secret"), 0o644, 0);
        let _ = unpack_layer(&finish(tar)[..], &f.layer);
        outside_untouched(&f);
        assert!(!Path::new("/tmp/evil").exists() && !Path::new("/evil").exists());
    }
}

#[test]
fn hard_links_to_absolute_host_paths_stay_inside() {
    let f = fixture();
    let mut tar = Vec::new();
    let host_secret = f.outside.join("secret");
    entry(&mut tar, "h", tar::EntryType::Link, b"", Some(host_secret.to_str().unwrap()), 0o644, 0);
    let _ = unpack_layer(&finish(tar)[..], &f.layer);
    outside_untouched(&f);
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_devices_are_skipped() {
    let f = fixture();
    let mut tar = Vec::new();
    entry(&mut tar, "dir/", tar::EntryType::Directory, b"", None, 0o755, 0);
    file(&mut tar, "dir/.wh..wh..opq", b"");
    file(&mut tar, "etc/.wh.gone", b"");
    entry(&mut tar, "dev/sda", tar::EntryType::Block, b"", None, 0o600, 0);
    let stats = unpack_layer(&finish(tar)[..], &f.layer).unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(!f.layer.join("dev/sda").exists());
    let gone = std::fs::symlink_metadata(f.layer.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0, "whiteout must be a 0:0 char device");
    assert!(!f.layer.join("etc/.wh.gone").exists());
    let mut value = [0u8; 8];
    let n = rustix::fs::getxattr(f.layer.join("dir"), "trusted.overlay.opaque", &mut value).unwrap();
    assert_eq!(&value[..n], b"y");
}

#[test]
fn metadata_is_kept_and_later_entries_replace_earlier_ones() {
    let f = fixture();
    let mut tar = Vec::new();
    entry(&mut tar, "bin/tool", tar::EntryType::Regular, b"v1", None, 0o4755, 1234);
    file(&mut tar, "bin/tool", b"version 2");
    file(&mut tar, "x", b"file first");
    entry(&mut tar, "x/", tar::EntryType::Directory, b"", None, 0o750, 0);
    entry(&mut tar, "bin/sh", tar::EntryType::Symlink, b"", Some("tool"), 0o777, 0);
    entry(&mut tar, "owned", tar::EntryType::Regular, b"data", None, 0o4755, 1234);
    let stats = unpack_layer(&finish(tar)[..], &f.layer).unwrap();
    assert_eq!(std::fs::read_to_string(f.layer.join("bin/tool")).unwrap(), "version 2");
    assert!(std::fs::metadata(f.layer.join("x")).unwrap().is_dir());
    assert_eq!(std::fs::metadata(f.layer.join("x")).unwrap().permissions().mode() & 0o7777, 0o750);
    assert_eq!(std::fs::read_link(f.layer.join("bin/sh")).unwrap(), Path::new("tool"));
    let owned = std::fs::metadata(f.layer.join("owned")).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!((owned.uid(), owned.gid()), (1234, 1234));
    }
    assert_eq!(owned.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(owned.mtime(), 1_700_000_000);
    assert_eq!(stats.content_bytes, 2 + 9 + 10 + 4);
}

#[test]
fn diff_id_is_the_digest_of_the_uncompressed_stream_whatever_the_compression() {
    let mut tar = Vec::new();
    file(&mut tar, "a", b"hello");
    let tar = finish(tar);
    let f = fixture();
    assert_eq!(unpack_layer(&tar[..], &f.layer).unwrap().diff_id, Digest::of(&tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let f = fixture();
    assert_eq!(unpack_layer(&gz.finish().unwrap()[..], &f.layer).unwrap().diff_id, Digest::of(&tar));
}

#[test]
fn garbage_and_truncated_layers_are_corrupt() {
    let mut tar = Vec::new();
    file(&mut tar, "big", &[1u8; 4096]);
    let tar = finish(tar);
    let f = fixture();
    let err = unpack_layer(&tar[..1000], &f.layer).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    let f = fixture();
    let err = unpack_layer(&[0x1f, 0x8b, 9, 9, 9][..], &f.layer).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
}
