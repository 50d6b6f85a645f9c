//! `stacyvm-agent`: runs inside every sandbox (as PID 1 for container providers) and serves the
//! host over one Unix socket with the framed protocol of `stacyvm-agent-proto`: exec with
//! streamed output and exit status (optionally on a pseudo-terminal), and file operations
//! streamed in chunks.
//!
//! Usage: `stacyvm-agent --listen <socket> [--root <dir>] [--uid N] [--gid N]`
//! - `--root`: the directory treated as `/` for file operations and exec working directories
//!   (default `/`; other values are for tests on the host).
//! - `--uid`/`--gid`: the sandbox user (default 1000) owning files the agent creates.

mod exec;
mod files;
mod process;
mod pty;
mod reaper;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

/// Parsed command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Socket to listen on.
    pub listen: PathBuf,
    /// The sandbox's `/`.
    pub root: PathBuf,
    /// Default owner of created files.
    pub uid: u32,
    /// Default group of created files.
    pub gid: u32,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options { listen: PathBuf::new(), root: PathBuf::from("/"), uid: 1000, gid: 1000 };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => opts.listen = PathBuf::from(value()?),
            "--root" => opts.root = PathBuf::from(value()?),
            "--uid" => opts.uid = value()?.parse().map_err(|_| "--uid must be a number".to_string())?,
            "--gid" => opts.gid = value()?.parse().map_err(|_| "--gid must be a number".to_string())?,
            "--version" => return Err(format!("stacyvm-agent {}", env!("CARGO_PKG_VERSION"))),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.listen.as_os_str().is_empty() {
        return Err("usage: stacyvm-agent --listen <socket> [--root <dir>] [--uid N] [--gid N]".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let reaper = reaper::Reaper::start();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stacyvm-agent: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(session::listen(opts, reaper)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stacyvm-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
