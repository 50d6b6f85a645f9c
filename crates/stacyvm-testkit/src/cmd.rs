//! Running host tools: every failure panics naming the command line and its stderr.

use std::ffi::OsStr;
use std::process::Command;

/// Runs `program args…` to completion and returns its stdout; panics with the command line,
/// exit status and stderr if it cannot be started or exits non-zero.
#[track_caller]
pub fn run<I, S>(program: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(&mut cmd)
}

/// Like [`run`] for a prepared [`Command`].
#[track_caller]
pub fn run_command(cmd: &mut Command) -> String {
    let line = describe(cmd);
    let out = cmd.output().unwrap_or_else(|e| panic!("`{line}` could not be started: {e}"));
    if !out.status.success() {
        panic!(
            "`{line}` failed ({}):\n--- stderr\n{}\n--- stdout\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            String::from_utf8_lossy(&out.stdout).trim_end()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command line as a shell-like string, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
