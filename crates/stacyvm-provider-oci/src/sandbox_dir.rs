//! The host directory of one sandbox: overlay layers, mount point, agent socket directory.

use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

/// The kernel copies at most one page of mount options.
const MAX_MOUNT_DATA: usize = 4096;

/// `<data_dir>/sandboxes/<id>/`.
#[derive(Debug, Clone)]
pub struct SandboxDir {
    path: PathBuf,
}

impl SandboxDir {
    /// Wraps the path (nothing is created yet).
    pub fn new(path: PathBuf) -> Self {
        SandboxDir { path }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Overlay mount point, the container's `/`.
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// Bind-mounted at `/.stacyvm/run`.
    pub fn run(&self) -> PathBuf {
        self.path.join("run")
    }

    /// The agent's socket as seen from the host.
    pub fn agent_socket(&self) -> PathBuf {
        self.run().join("agent.sock")
    }

    /// The writable `/workspace` of a sandbox with a read-only root.
    pub fn workspace(&self) -> PathBuf {
        self.path.join("workspace")
    }

    /// The agent's output.
    pub fn init_log(&self) -> PathBuf {
        self.path.join("init.log")
    }

    /// The image's `Env` (NUL-separated `KEY=value`), the base environment of every exec.
    pub fn image_env(&self) -> PathBuf {
        self.path.join("image.env")
    }

    /// Creates the layers and mounts the overlay (the image's layers read-only below, top layer
    /// first; `upper` on top), with `/workspace` owned by the sandbox user and the agent's mount
    /// points in place. With `separate_workspace` (read-only root) the host directory
    /// [`SandboxDir::workspace`] is created too, owned by the sandbox user, to be bind-mounted
    /// over `/workspace`.
    pub fn prepare(
        &self,
        image_layers: &[PathBuf],
        (uid, gid): (u32, u32),
        separate_workspace: bool,
    ) -> io::Result<()> {
        let upper = self.path.join("upper");
        let work = self.path.join("work");
        for dir in [&upper, &work, &self.rootfs(), &self.run()] {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::set_permissions(self.run(), std::fs::Permissions::from_mode(0o700))?;
        let workspace = upper.join("workspace");
        std::fs::create_dir_all(&workspace)?;
        chown(&workspace, Some(uid), Some(gid))?;
        if separate_workspace {
            std::fs::create_dir_all(self.workspace())?;
            chown(self.workspace(), Some(uid), Some(gid))?;
        }
        std::fs::create_dir_all(upper.join(".stacyvm/run"))?;
        std::fs::write(upper.join(".stacyvm/agent"), b"")?;
        let lower: Vec<String> = image_layers.iter().map(|p| p.display().to_string()).collect();
        let data = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
        if data.len() >= MAX_MOUNT_DATA {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the image has too many layers ({}) for one overlay mount", image_layers.len()),
            ));
        }
        rustix::mount::mount("overlay", self.rootfs(), "overlay", rustix::mount::MountFlags::empty(), data.as_str())
            .map_err(io::Error::from)
    }

    /// Unmounts the overlay and removes everything. Idempotent.
    pub fn remove(&self) -> io::Result<()> {
        match rustix::mount::unmount(self.rootfs(), rustix::mount::UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
