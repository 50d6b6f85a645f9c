//! The container's init process: [`ProcessSpec`], its defaults and its `config.json` form
//! (user, environment, capabilities, rlimits).

use super::{BundleSpec, Capabilities, Process, Rlimit, User};

/// Default `RLIMIT_NOFILE` (soft and hard) for the container's init.
pub const DEFAULT_NOFILE: u64 = 65_536;

/// Default `PATH` given to the init process when the caller does not set one.
pub const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capabilities kept by a **root** init process (the in-sandbox agent, PID 1).
///
/// Everything else is dropped from every set, including the bounding set, so no descendant can
/// ever regain it. Each one is needed by an agent that runs user commands with lower privileges:
///
/// | capability | why the agent needs it |
/// |---|---|
/// | `CAP_SETUID` | `setuid()/setresuid()` to the sandbox user before `execve` of a user command |
/// | `CAP_SETGID` | `setgid()/setgroups()` to the sandbox user's groups before `execve` |
/// | `CAP_CHOWN` | file API: create files on behalf of the user and hand them over (`chown`) |
/// | `CAP_DAC_OVERRIDE` | file API: read/write paths the user made unreadable to root-without-caps (e.g. mode 0600 files owned by uid 1000) |
/// | `CAP_FOWNER` | file API: `chmod`/`utimes` on files the agent does not own |
/// | `CAP_KILL` | signal, time out and kill user processes that run under another uid |
/// | `CAP_SETPCAP` | drop the bounding set (`PR_CAPBSET_DROP`) and clear capabilities for user processes |
///
/// User processes started by the agent get **no** capabilities (all sets empty) and
/// `no_new_privs`; that is the agent's job, not the runtime's.
pub const AGENT_CAPABILITIES: &[&str] =
    &["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP"];

/// The init process of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// `argv`, `args[0]` resolved in the container's `PATH`.
    pub args: Vec<String>,
    /// `KEY=value` entries. When no `PATH=` entry is present, [`DEFAULT_PATH_ENV`] is added.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    /// User id of the process.
    pub uid: u32,
    /// Primary group id of the process.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

impl ProcessSpec {
    /// A root process (`uid` 0) running `args` in `/`.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessSpec {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
        }
    }
}

impl BundleSpec {
    /// `process`: the init process with the default `PATH`, the capability sets described on
    /// [`BundleSpec::capabilities`] (never ambient or inheritable), the clamped `RLIMIT_NOFILE` and
    /// `noNewPrivileges`.
    pub(super) fn oci_process(&self) -> Process {
        let p = &self.process;

        let mut env = p.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH_ENV.to_string());
        }

        let caps: Vec<String> = match &self.capabilities {
            Some(c) => c.clone(),
            None if p.uid == 0 => AGENT_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
            None => Vec::new(),
        };
        let capabilities = Capabilities {
            bounding: caps.clone(),
            effective: caps.clone(),
            permitted: caps,
            inheritable: Vec::new(),
            ambient: Vec::new(),
        };

        Process {
            terminal: false,
            user: User { uid: p.uid, gid: p.gid, additional_gids: p.additional_gids.clone() },
            args: p.args.clone(),
            env,
            cwd: p.cwd.clone(),
            capabilities: Some(capabilities),
            rlimits: self
                .nofile
                .map(|n| {
                    let n = n.min(own_nofile_hard_limit());
                    vec![Rlimit { kind: "RLIMIT_NOFILE".into(), hard: n, soft: n }]
                })
                .unwrap_or_default(),
            no_new_privileges: true,
            oom_score_adj: None,
        }
    }
}

/// This process's hard `RLIMIT_NOFILE` (`u64::MAX` when unlimited or unknown).
pub(super) fn own_nofile_hard_limit() -> u64 {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 || rl.rlim_max == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    rl.rlim_max
}
