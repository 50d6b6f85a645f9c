//! What a provider can do, declared up front instead of discovered as run-time errors.

/// Feature flags of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Output streams chunk by chunk while the process runs.
    pub exec_stream: bool,
    /// The file API works, including streamed writes ([`crate::Provider::write_file_stream`]).
    pub files: bool,
    /// Console logs are available.
    pub console: bool,
    /// Processes are isolated from the host (namespaces, VM, ...). `false` for `mock`.
    pub isolation: bool,
    /// Memory/CPU/pids limits are enforced.
    pub resource_limits: bool,
    /// Snapshots can be taken and restored.
    pub snapshots: bool,
    /// Sandboxes have a network address for preview URLs.
    pub preview: bool,
    /// Exec on a pseudo-terminal with input, resize and signals
    /// ([`Provider::exec_interactive`](crate::Provider::exec_interactive)).
    pub pty: bool,
}

impl Capabilities {
    /// Names for `ProviderInfo.capabilities`: the base set plus provider extras.
    pub fn names(&self, extras: &[&str]) -> Vec<String> {
        let mut names = vec!["spawn", "exec", "health"];
        for (on, name) in [
            (self.exec_stream, "exec_stream"),
            (self.files, "files"),
            (self.console, "console"),
            (self.isolation, "isolation"),
            (self.resource_limits, "resource_limits"),
            (self.snapshots, "snapshots"),
            (self.preview, "preview"),
            (self.pty, "pty"),
        ] {
            if on {
                names.push(name);
            }
        }
        names.extend_from_slice(extras);
        names.into_iter().map(str::to_string).collect()
    }
}
