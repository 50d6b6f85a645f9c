//! File operations on a directory that serves as a sandbox root.
//!
//! Every path is resolved with `openat2` from a descriptor of the root, so neither `..` nor a
//! symlink can reach outside it:
//! - [`ResolveMode::Beneath`] (a host directory, e.g. the `mock` provider): any attempt to leave
//!   the root, including an absolute symlink, is refused by the kernel with `EXDEV`, which
//!   becomes [`FsError::PathEscape`].
//! - [`ResolveMode::InRoot`] (inside a sandbox, e.g. the agent): absolute symlinks and `..` are
//!   resolved as if the root were `/`, like a chroot, which is what programs in the sandbox see.
//!
//! Final operations use `*at` calls on a resolved parent descriptor; recursive deletion never
//! follows symlinks. All calls block: run them on a blocking thread.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::path::SandboxPath;
use crate::{FileEntry, FsError, FsResult};

/// Most paths a glob may return.
const GLOB_LIMIT: usize = 10_000;

/// How symlinks and `..` that point outside the root are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveMode {
    /// Refuse them (`PathEscape`): for host directories.
    Beneath,
    /// Resolve them relative to the root, like a chroot: for the sandbox's own `/`.
    InRoot,
}

/// A directory treated as `/` of a sandbox.
#[derive(Debug)]
pub struct HostRoot {
    fd: OwnedFd,
    mode: ResolveMode,
    /// Owner given to files and directories this root creates (the agent runs as root but
    /// creates files for the sandbox user).
    owner: Option<(u32, u32)>,
    /// The root is this process's own `/` (the agent inside a sandbox).
    is_process_root: bool,
}

fn io_err(path: &SandboxPath, e: rustix::io::Errno) -> FsError {
    FsError::from_io(&path.to_string(), std::io::Error::from(e))
}

fn entry_from_stat(path: String, st: &Stat) -> FileEntry {
    FileEntry {
        path,
        size: st.st_size.max(0) as u64,
        mode: st.st_mode & 0o7777,
        is_dir: FileType::from_raw_mode(st.st_mode) == FileType::Directory,
        mtime: st.st_mtime as i64,
    }
}

impl HostRoot {
    /// Opens an existing directory as a sandbox root.
    pub fn open(dir: &Path, mode: ResolveMode) -> FsResult<Self> {
        let fd = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| FsError::Failed(format!("open sandbox root {}: {e}", dir.display())))?;
        let is_process_root = dir == Path::new("/");
        Ok(HostRoot { fd, mode, owner: None, is_process_root })
    }

    /// Makes created files and directories belong to `uid:gid` (`u32::MAX`, the "no change"
    /// value of chown, is ignored).
    pub fn with_owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = (uid != u32::MAX && gid != u32::MAX).then_some((uid, gid));
        self
    }

    fn chown_created(&self, dir: &OwnedFd, name: &str) -> rustix::io::Result<()> {
        let Some((uid, gid)) = self.owner else { return Ok(()) };
        rustix::fs::chownat(dir, name, Some(raw_uid(uid)), Some(raw_gid(gid)), AtFlags::SYMLINK_NOFOLLOW)
    }

    fn resolve(&self, path: &SandboxPath, flags: OFlags, mode: Mode) -> FsResult<OwnedFd> {
        let resolve = match self.mode {
            ResolveMode::Beneath => ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            ResolveMode::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        };
        match rustix::fs::openat2(&self.fd, path.relative(), flags | OFlags::CLOEXEC, mode, resolve) {
            // Kernels (and gVisor) without openat2: when the root is the process's own `/`,
            // every lookup is already confined to it, so a plain openat has the same meaning.
            // Anywhere else there is no safe fallback: fail closed.
            Err(rustix::io::Errno::NOSYS) if self.is_process_root && self.mode == ResolveMode::InRoot => {
                rustix::fs::openat(&self.fd, path.relative(), flags | OFlags::CLOEXEC, mode)
            }
            other => other,
        }
        .map_err(|e| io_err(path, e))
    }

    fn resolve_dir(&self, path: &SandboxPath) -> FsResult<OwnedFd> {
        self.resolve(path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
    }

    /// `mkdir -p` beneath the root; returns a descriptor of the directory.
    pub fn ensure_dir(&self, path: &SandboxPath) -> FsResult<OwnedFd> {
        let mut prefix = SandboxPath::root();
        for name in path.components() {
            let parent = self.resolve_dir(&prefix)?;
            prefix = prefix.join(name);
            match rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) => self.chown_created(&parent, name).map_err(|e| io_err(&prefix, e))?,
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(io_err(&prefix, e)),
            }
        }
        self.resolve_dir(path)
    }

    fn require_not_root(path: &SandboxPath) -> FsResult<()> {
        if path.is_root() {
            return Err(FsError::InvalidInput("this operation is not allowed on /".into()));
        }
        Ok(())
    }

    /// Writes atomically: a temporary file in the same directory, then a rename over `path`.
    pub fn write(&self, path: &SandboxPath, content: &[u8], mode: u32) -> FsResult<()> {
        let mut pending = self.begin_write(path, mode)?;
        pending.write_chunk(content)?;
        pending.commit()
    }

    /// Starts a streamed write: chunks go to a temporary file beside `path`, which replaces
    /// `path` on [`PendingWrite::commit`]. Dropping it uncommitted removes the temporary file,
    /// so a failed or cancelled transfer never leaves a partial file.
    pub fn begin_write(&self, path: &SandboxPath, mode: u32) -> FsResult<PendingWrite> {
        Self::require_not_root(path)?;
        let parent = self.ensure_dir(&path.parent())?;
        let name = path.file_name().to_string();
        if let Ok(st) = rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Err(FsError::InvalidInput(format!("{path} is a directory")));
            }
        }
        let tmp_name = format!(".{name}.stacyvm-{:08x}", rand_u32());
        let fd = rustix::fs::openat(
            &parent,
            tmp_name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err(path, e))?;
        Ok(PendingWrite {
            file: std::fs::File::from(fd),
            parent,
            tmp_name,
            name,
            path: path.clone(),
            mode,
            owner: self.owner,
            written: 0,
            committed: false,
        })
    }

    /// Opens a regular file for reading; returns it with its size.
    pub fn open_read(&self, path: &SandboxPath) -> FsResult<(std::fs::File, u64)> {
        let fd = self.resolve(path, OFlags::RDONLY, Mode::empty())?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(path, e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Ok((std::fs::File::from(fd), st.st_size.max(0) as u64)),
            FileType::Directory => Err(FsError::InvalidInput(format!("{path} is a directory"))),
            _ => Err(FsError::InvalidInput(format!("{path} is not a regular file"))),
        }
    }

    /// Metadata, following symlinks beneath the root.
    pub fn stat(&self, path: &SandboxPath) -> FsResult<FileEntry> {
        let fd = self.resolve(path, OFlags::PATH, Mode::empty())?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(path, e))?;
        Ok(entry_from_stat(path.to_string(), &st))
    }

    /// Direct children sorted by name (symlinks are reported, not followed).
    pub fn list(&self, path: &SandboxPath) -> FsResult<Vec<FileEntry>> {
        let fd = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let names = read_names(&fd).map_err(|e| io_err(path, e))?;
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(st) = rustix::fs::statat(&fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                entries.push(entry_from_stat(path.join(&name).to_string(), &st));
            }
        }
        Ok(entries)
    }

    /// Renames `from` to `to`, creating `to`'s parent.
    pub fn rename(&self, from: &SandboxPath, to: &SandboxPath) -> FsResult<()> {
        Self::require_not_root(from)?;
        Self::require_not_root(to)?;
        let from_parent = self.resolve_dir(&from.parent())?;
        rustix::fs::statat(&from_parent, from.file_name(), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(from, e))?;
        let to_parent = self.ensure_dir(&to.parent())?;
        rustix::fs::renameat(&from_parent, from.file_name(), &to_parent, to.file_name()).map_err(|e| io_err(to, e))
    }

    /// Changes permission bits of the file `path` resolves to.
    pub fn chmod(&self, path: &SandboxPath, mode: u32) -> FsResult<()> {
        let fd = self.resolve(path, OFlags::PATH, Mode::empty())?;
        // fchmod does not accept O_PATH descriptors; the /proc link names exactly the inode
        // that was resolved beneath the root.
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(mode)).map_err(|e| io_err(path, e))
    }

    /// Deletes a file or directory; a non-empty directory needs `recursive`.
    pub fn remove(&self, path: &SandboxPath, recursive: bool) -> FsResult<()> {
        Self::require_not_root(path)?;
        let parent = self.resolve_dir(&path.parent())?;
        let name = path.file_name();
        let st = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(path, e))?;
        let result = if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            rustix::fs::unlinkat(&parent, name, AtFlags::empty())
        } else if recursive {
            remove_tree(&parent, name)
        } else {
            rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR)
        };
        result.map_err(|e| io_err(path, e))
    }

    /// Shell-glob expansion (`*`, `?`, `[...]`) per path component; results sorted.
    pub fn glob(&self, pattern: &str) -> FsResult<Vec<String>> {
        if pattern.split('/').any(|c| c == "..") {
            return Err(FsError::PathEscape(pattern.to_string()));
        }
        let base = SandboxPath::parse(pattern)?;
        let mut current = vec![SandboxPath::root()];
        for component in base.components() {
            let mut next = Vec::new();
            if !is_wildcard(component) {
                next = current.into_iter().map(|p| p.join(component)).collect();
            } else {
                let matcher = glob::Pattern::new(component)
                    .map_err(|e| FsError::InvalidInput(format!("invalid glob pattern: {e}")))?;
                for dir in &current {
                    let Ok(fd) = self.resolve(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) else {
                        continue;
                    };
                    let names = read_names(&fd).map_err(|e| io_err(dir, e))?;
                    let hidden_ok = component.starts_with('.');
                    for name in names.into_iter().filter(|n| hidden_ok || !n.starts_with('.')) {
                        if matcher.matches(&name) {
                            next.push(dir.join(&name));
                            if next.len() > GLOB_LIMIT {
                                return Err(FsError::InvalidInput(format!(
                                    "glob matches more than {GLOB_LIMIT} paths"
                                )));
                            }
                        }
                    }
                }
            }
            current = next;
        }
        let mut found: Vec<String> = current
            .into_iter()
            .filter(|p| self.resolve(p, OFlags::PATH, Mode::empty()).is_ok())
            .map(|p| p.to_string())
            .collect();
        found.sort();
        Ok(found)
    }
}

fn raw_uid(uid: u32) -> rustix::fs::Uid {
    // SAFETY: `with_owner` never stores u32::MAX (-1), the only invalid value.
    unsafe { rustix::fs::Uid::from_raw(uid) }
}

fn raw_gid(gid: u32) -> rustix::fs::Gid {
    // SAFETY: as for `raw_uid`.
    unsafe { rustix::fs::Gid::from_raw(gid) }
}

/// A write in progress (see [`HostRoot::begin_write`]).
#[derive(Debug)]
pub struct PendingWrite {
    file: std::fs::File,
    parent: OwnedFd,
    tmp_name: String,
    name: String,
    path: SandboxPath,
    mode: u32,
    owner: Option<(u32, u32)>,
    written: u64,
    committed: bool,
}

impl PendingWrite {
    /// Appends a chunk.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> FsResult<()> {
        self.file.write_all(chunk).map_err(|e| FsError::from_io(&self.path.to_string(), e))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Applies owner and mode, then atomically replaces the target.
    pub fn commit(mut self) -> FsResult<()> {
        let path = self.path.clone();
        if let Some((uid, gid)) = self.owner {
            rustix::fs::fchown(self.file.as_fd(), Some(raw_uid(uid)), Some(raw_gid(gid)))
                .map_err(|e| io_err(&path, e))?;
        }
        rustix::fs::fchmod(self.file.as_fd(), Mode::from_raw_mode(self.mode)).map_err(|e| io_err(&path, e))?;
        rustix::fs::renameat(&self.parent, self.tmp_name.as_str(), &self.parent, self.name.as_str())
            .map_err(|e| io_err(&path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.parent, self.tmp_name.as_str(), AtFlags::empty());
        }
    }
}

fn is_wildcard(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

fn read_names(fd: &OwnedFd) -> rustix::io::Result<Vec<String>> {
    let mut dir = Dir::read_from(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Removes a directory tree without following symlinks.
fn remove_tree(parent: &OwnedFd, name: &str) -> rustix::io::Result<()> {
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in read_names(&dir)? {
        let st = rustix::fs::statat(&dir, child.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            remove_tree(&dir, &child)?;
        } else {
            rustix::fs::unlinkat(&dir, child.as_str(), AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos.wrapping_add(COUNTER.fetch_add(0x9e37_79b9, Ordering::Relaxed))
}
