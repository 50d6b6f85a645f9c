//! Unpacking one layer tarball into its own directory, ready to be an overlayfs lower layer.
//!
//! Layer contents are untrusted. Every entry is created with `*at` calls on a parent directory
//! opened with `openat2(RESOLVE_IN_ROOT)` from the layer's directory, so neither `..` nor a
//! symlink planted by an earlier entry can place anything outside it. Whiteouts are converted to
//! overlayfs's format (`.wh.NAME` → a 0:0 character device `NAME`; `.wh..wh..opq` → the
//! `trusted.overlay.opaque` attribute on the directory). Device nodes are skipped: a sandbox has
//! no business with host devices. Extended attributes other than the opaque marker are not kept.
//!
//! The uncompressed stream is hashed on the way: its digest is the layer's `diff_id`.

use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawMode, ResolveFlags, Timestamps};
use tar::EntryType;

use crate::digest::{Digest, Hashing};
use crate::ImageError;

/// What unpacking a layer produced.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of file content written.
    pub content_bytes: u64,
    /// Device nodes that were not created.
    pub skipped_devices: u32,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

fn corrupt(what: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(what.to_string())
}

/// Opens a possibly compressed layer stream: gzip is recognised by its magic bytes, zstd is refused.
fn decompressed<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut buffered = BufReader::with_capacity(256 << 10, reader);
    let head = buffered.fill_buf().map_err(|e| ImageError::io("read layer", e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(GzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(ImageError::Unsupported("zstd-compressed layers are not supported yet".into()))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Unpacks `reader` (a tar, optionally gzip-compressed) into the existing empty directory `dest`.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<Unpacked, ImageError> {
    let root = rustix::fs::open(dest, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ImageError::io(&format!("open {}", dest.display()), e.into()))?;
    let layer = LayerDir { root };
    let mut archive = tar::Archive::new(Hashing::new(decompressed(reader)?));
    let mut stats = Unpacked { diff_id: Digest::of(b""), content_bytes: 0, skipped_devices: 0 };
    for entry in archive.entries().map_err(|e| corrupt(format!("layer is not a tar archive: {e}")))? {
        let entry = entry.map_err(|e| layer_read_error("read layer entry", e))?;
        layer.add(entry, &mut stats)?;
    }
    // The diff_id covers the whole stream, including the end-of-archive padding.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| layer_read_error("read layer", e))?;
    stats.diff_id = rest.finish().0;
    Ok(stats)
}

/// Errors from the file system (they carry an OS error code) are I/O problems, e.g. a full
/// disk; anything else while reading the stream means the layer itself is broken.
fn layer_read_error(context: &str, e: io::Error) -> ImageError {
    match e.raw_os_error() {
        Some(_) => ImageError::io(context, e),
        None => corrupt(format!("{context}: {e}")),
    }
}

/// Splits an entry path into safe components; `..` and non-UTF-8 names are refused.
fn components(path: &Path) -> Result<Vec<String>, ImageError> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => {
                out.push(name.to_str().ok_or_else(|| corrupt(format!("non UTF-8 path {}", path.display())))?.into())
            }
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(corrupt(format!("layer entry {} leaves the layer", path.display())))
            }
        }
    }
    Ok(out)
}

struct LayerDir {
    root: OwnedFd,
}

impl LayerDir {
    fn at_err(path: &[String], e: rustix::io::Errno) -> ImageError {
        ImageError::io(&format!("unpack /{}", path.join("/")), e.into())
    }

    /// Opens (creating as needed) the directory holding `path`'s last component.
    fn parent(&self, path: &[String]) -> Result<OwnedFd, ImageError> {
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let parents = &path[..path.len().saturating_sub(1)];
        let mut fd =
            rustix::fs::openat2(&self.root, ".", flags, Mode::empty(), resolve).map_err(|e| Self::at_err(path, e))?;
        for (i, name) in parents.iter().enumerate() {
            let prefix = parents[..=i].join("/");
            match rustix::fs::mkdirat(&fd, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Self::at_err(&parents[..=i], e)),
            }
            fd = rustix::fs::openat2(&self.root, prefix.as_str(), flags, Mode::empty(), resolve)
                .map_err(|e| Self::at_err(&parents[..=i], e))?;
        }
        Ok(fd)
    }

    fn add<R: Read>(&self, mut entry: tar::Entry<'_, R>, stats: &mut Unpacked) -> Result<(), ImageError> {
        let path = components(&entry.path().map_err(|e| corrupt(format!("bad entry path: {e}")))?)?;
        let Some(name) = path.last().cloned() else { return Ok(()) };
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(|e| corrupt(format!("bad mode: {e}")))? & 0o7777;
        let owner = (
            header.uid().map_err(|e| corrupt(format!("bad uid: {e}")))? as u32,
            header.gid().map_err(|e| corrupt(format!("bad gid: {e}")))? as u32,
        );
        let mtime = header.mtime().unwrap_or(0) as i64;
        let parent = self.parent(&path)?;
        let err = |e| Self::at_err(&path, e);
        if name == OPAQUE_MARKER {
            let dir =
                rustix::fs::openat(&parent, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(err)?;
            return rustix::fs::fsetxattr(&dir, "trusted.overlay.opaque", b"y", rustix::fs::XattrFlags::empty())
                .map_err(err);
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(corrupt(format!("bad whiteout /{}", path.join("/"))));
            }
            remove_existing(&parent, hidden).map_err(err)?;
            return rustix::fs::mknodat(&parent, hidden, FileType::CharacterDevice, Mode::empty(), 0).map_err(err);
        }
        match kind {
            EntryType::Directory => {
                match rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        remove_existing(&parent, &name).map_err(err)?;
                        rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700)).map_err(err)?;
                    }
                    Err(_) => rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700)).map_err(err)?,
                }
                self.finish(&parent, &name, owner, Some(mode), mtime).map_err(err)
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&parent, &name).map_err(err)?;
                let fd = rustix::fs::openat(
                    &parent,
                    name.as_str(),
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(err)?;
                let mut file = std::fs::File::from(fd);
                stats.content_bytes += io::copy(&mut entry, &mut file)
                    .map_err(|e| layer_read_error(&format!("unpack /{}", path.join("/")), e))?;
                drop(file);
                self.finish(&parent, &name, owner, Some(mode), mtime).map_err(err)
            }
            EntryType::Symlink => {
                let target = link_target(&entry)?;
                remove_existing(&parent, &name).map_err(err)?;
                rustix::fs::symlinkat(target.as_str(), &parent, name.as_str()).map_err(err)?;
                self.finish(&parent, &name, owner, None, mtime).map_err(err)
            }
            EntryType::Link => {
                let target = components(Path::new(&link_target(&entry)?))?;
                let Some(target_name) = target.last() else { return Err(corrupt("hard link to the layer root")) };
                let target_parent = self.parent(&target)?;
                remove_existing(&parent, &name).map_err(err)?;
                rustix::fs::linkat(&target_parent, target_name.as_str(), &parent, name.as_str(), AtFlags::empty())
                    .map_err(err)
            }
            EntryType::Fifo => {
                remove_existing(&parent, &name).map_err(err)?;
                rustix::fs::mknodat(&parent, name.as_str(), FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(err)?;
                self.finish(&parent, &name, owner, Some(mode), mtime).map_err(err)
            }
            EntryType::Char | EntryType::Block => {
                stats.skipped_devices += 1;
                Ok(())
            }
            // Metadata-only entries (PAX globals, GNU extensions the tar crate surfaces).
            _ => Ok(()),
        }
    }

    /// Owner, mode (not for symlinks, which have none) and mtime, never following a symlink.
    fn finish(
        &self,
        parent: &OwnedFd,
        name: &str,
        (uid, gid): (u32, u32),
        mode: Option<RawMode>,
        mtime: i64,
    ) -> rustix::io::Result<()> {
        rustix::fs::chownat(
            parent,
            name,
            Some(unsafe { rustix::fs::Uid::from_raw(uid) }),
            Some(unsafe { rustix::fs::Gid::from_raw(gid) }),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if let Some(mode) = mode {
            // After chown, which clears set-id bits.
            rustix::fs::chmodat(parent, name, Mode::from_raw_mode(mode), AtFlags::empty())?;
        }
        let t = rustix::fs::Timespec { tv_sec: mtime, tv_nsec: 0 };
        rustix::fs::utimensat(
            parent,
            name,
            &Timestamps { last_access: t, last_modification: t },
            AtFlags::SYMLINK_NOFOLLOW,
        )
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, ImageError> {
    let target = entry.link_name().map_err(|e| corrupt(format!("bad link target: {e}")))?;
    let target = target.ok_or_else(|| corrupt("link without a target"))?;
    target.to_str().map(str::to_string).ok_or_else(|| corrupt("non UTF-8 link target"))
}

/// Removes `name` in `dir` if present (a directory with all its contents), never following symlinks.
pub(crate) fn remove_existing(dir: &impl AsFd, name: &str) -> rustix::io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let names: Vec<String> = rustix::fs::Dir::read_from(&sub)?
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
                .filter(|n| n != "." && n != "..")
                .collect();
            for child in names {
                remove_existing(&sub, &child)?;
            }
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()),
    }
}
