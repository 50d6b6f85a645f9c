//! StacyVM's default seccomp profile.
//!
//! Default action `SCMP_ACT_ALLOW` with an explicit denylist: every syscall in [`BLOCKED`] fails
//! with `EPERM`; `clone` fails with `EPERM` when any namespace flag is set; `clone3` fails with
//! `ENOSYS` (its flags live in a struct seccomp cannot read, and libc falls back to `clone` on
//! `ENOSYS`). The rationale for every entry is in [`BLOCKED`] and, in prose, in `docs/seccomp.md`
//! (a unit test keeps the two in sync).

use crate::runtime::RuntimeKind;
use crate::spec::{Seccomp, SeccompArg, SyscallRule};

/// `EPERM`: what a denied syscall returns.
pub const EPERM: u32 = 1;
/// `ENOSYS`: what `clone3` returns, so that glibc/musl fall back to `clone`.
pub const ENOSYS: u32 = 38;

/// Architectures the filter is compiled for (all x86 ABIs, so a 32-bit or x32 binary cannot be
/// used to get around the x86_64 rules).
pub const ARCHITECTURES: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

/// Syscalls denied with `EPERM`, each with the reason.
///
/// Names that do not exist on an architecture (e.g. `vm86` on x86_64, `create_module` on new
/// kernels) are resolved or skipped by libseccomp; crun, runc and runsc accept them.
pub const BLOCKED: &[(&str, &str)] = &[
    // mount table
    ("mount", "changes the mount table: could expose or shadow paths; mounts are set up by the runtime only"),
    ("umount", "removes mounts (e.g. the masks over /proc paths)"),
    ("umount2", "removes mounts (e.g. the masks over /proc paths)"),
    ("pivot_root", "changes the root mount"),
    ("fsopen", "new mount API (same power as mount)"),
    ("fsconfig", "new mount API (same power as mount)"),
    ("fsmount", "new mount API (same power as mount)"),
    ("fspick", "new mount API: reconfigure an existing mount"),
    ("move_mount", "new mount API: attach/move mounts"),
    ("open_tree", "new mount API: clone mount trees"),
    ("mount_setattr", "new mount API: change mount flags (e.g. drop read-only)"),
    // namespaces
    ("unshare", "creates namespaces; a new user namespace grants a full capability set inside it and opens kernel code paths normally reserved to root"),
    ("setns", "joins other namespaces"),
    // kernel code and state
    ("kexec_load", "loads a new kernel"),
    ("kexec_file_load", "loads a new kernel"),
    ("init_module", "loads kernel modules"),
    ("finit_module", "loads kernel modules"),
    ("delete_module", "unloads kernel modules"),
    ("create_module", "obsolete module API"),
    ("query_module", "obsolete module API"),
    ("get_kernel_syms", "obsolete module API, leaks kernel symbols"),
    ("bpf", "loads eBPF programs/maps: large kernel attack surface, frequent source of privilege escalations"),
    ("perf_event_open", "kernel and hardware performance events: information leaks and side channels, large attack surface"),
    ("lookup_dcookie", "kernel profiling helper that returns host paths"),
    ("syslog", "reads/clears the kernel log ring buffer (kernel addresses, other tenants' messages)"),
    ("acct", "switches process accounting to a file: host-wide"),
    ("reboot", "reboots or halts the machine, or enables Ctrl-Alt-Del handling"),
    ("swapon", "host-wide swap configuration"),
    ("swapoff", "host-wide swap configuration"),
    ("quotactl", "filesystem quota control on host devices"),
    ("quotactl_fd", "filesystem quota control on host devices"),
    ("nfsservctl", "obsolete kernel NFS server control"),
    ("_sysctl", "obsolete sysctl interface, bypasses the read-only /proc/sys"),
    ("sysfs", "obsolete filesystem-type query"),
    ("ustat", "obsolete filesystem statistics on host devices"),
    ("uselib", "obsolete shared-library loader with a history of exploits"),
    // other processes
    ("ptrace", "inspects and modifies other processes, including the agent (PID 1)"),
    ("process_vm_readv", "reads another process's memory"),
    ("process_vm_writev", "writes another process's memory"),
    ("kcmp", "compares kernel objects of other processes: information leak used to defeat ASLR"),
    ("pidfd_getfd", "steals file descriptors from another process (ptrace-equivalent)"),
    // keyrings are not namespaced
    ("keyctl", "kernel keyrings are not namespaced: access to keys of other containers/host"),
    ("add_key", "kernel keyrings are not namespaced"),
    ("request_key", "kernel keyrings are not namespaced"),
    // filesystem handles
    ("open_by_handle_at", "opens files by handle, bypassing the mount namespace (the \"shocker\" container escape)"),
    ("name_to_handle_at", "produces handles for open_by_handle_at"),
    // exploit helpers and raw hardware
    ("userfaultfd", "lets a process stall kernel page faults: a standard tool to win kernel race conditions"),
    ("io_uring_setup", "io_uring: large, fast-moving kernel attack surface whose operations bypass seccomp"),
    ("io_uring_enter", "io_uring: see io_uring_setup"),
    ("io_uring_register", "io_uring: see io_uring_setup"),
    ("iopl", "raw I/O port access"),
    ("ioperm", "raw I/O port access"),
    ("vm86", "virtual 8086 mode (32-bit x86)"),
    ("vm86old", "virtual 8086 mode (32-bit x86)"),
    ("personality", "can disable ASLR (ADDR_NO_RANDOMIZE) or enable READ_IMPLIES_EXEC/MMAP_PAGE_ZERO"),
    // host-wide NUMA policy
    ("mbind", "NUMA memory policy: can degrade the host (needs CAP_SYS_NICE in Docker's profile)"),
    ("set_mempolicy", "NUMA memory policy"),
    ("migrate_pages", "moves other processes' pages between NUMA nodes"),
    ("move_pages", "moves pages between NUMA nodes"),
    // the clock is not namespaced
    ("clock_settime", "sets the host's clock (time is not namespaced)"),
    ("clock_adjtime", "adjusts the host's clock"),
    ("settimeofday", "sets the host's clock"),
    ("stime", "sets the host's clock (32-bit x86)"),
    ("adjtimex", "adjusts the host's clock"),
];

/// `clone` flags that create namespaces; `clone` with any of them is denied with `EPERM`.
/// (`CLONE_NEWTIME` is not included: in `clone` its bit is part of the exit-signal field; it is
/// only meaningful for `unshare` and `clone3`, both blocked.)
pub const CLONE_NAMESPACE_FLAGS: &[(&str, u64)] = &[
    ("CLONE_NEWNS", 0x0002_0000),
    ("CLONE_NEWCGROUP", 0x0200_0000),
    ("CLONE_NEWUTS", 0x0400_0000),
    ("CLONE_NEWIPC", 0x0800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
];

/// The profile put into `linux.seccomp` by default (crun, runc).
pub fn default_profile() -> Seccomp {
    default_profile_for(RuntimeKind::Crun)
}

/// The default profile adjusted for a runtime's quirks.
///
/// runsc (gVisor, Debian's 2022 build) ignores `errnoRet` and always answers `EPERM`; a denied
/// `clone3` must return `ENOSYS` for glibc to fall back to `clone`, so with `EPERM` no thread could
/// be created. That gVisor does not implement `clone3` at all (it returns `ENOSYS` itself), so for
/// runsc the `clone3` rule is left out. Every other rule is the same.
pub fn default_profile_for(kind: RuntimeKind) -> Seccomp {
    let mut syscalls = vec![SyscallRule {
        names: BLOCKED.iter().map(|(n, _)| n.to_string()).collect(),
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(EPERM),
        args: Vec::new(),
    }];
    // One rule per flag: rules for the same syscall are OR-ed, the conditions of one rule AND-ed.
    // On every x86 ABI the clone flags are argument 0.
    for (_, flag) in CLONE_NAMESPACE_FLAGS {
        syscalls.push(SyscallRule {
            names: vec!["clone".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(EPERM),
            args: vec![SeccompArg { index: 0, value: *flag, value_two: *flag, op: "SCMP_CMP_MASKED_EQ".into() }],
        });
    }
    if kind != RuntimeKind::Runsc {
        syscalls.push(SyscallRule {
            names: vec!["clone3".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(ENOSYS),
            args: Vec::new(),
        });
    }
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        architectures: ARCHITECTURES.iter().map(|s| s.to_string()).collect(),
        syscalls,
    }
}

/// Names of every syscall the default profile blocks unconditionally (`EPERM`, plus `clone3`
/// with `ENOSYS`).
pub fn blocked_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = BLOCKED.iter().map(|(n, _)| *n).collect();
    v.push("clone3");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_duplicates_and_required_entries() {
        let names: Vec<&str> = BLOCKED.iter().map(|(n, _)| *n).collect();
        let set: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(set.len(), names.len(), "duplicate entries");
        for required in [
            "mount",
            "umount2",
            "pivot_root",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "bpf",
            "perf_event_open",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "keyctl",
            "add_key",
            "request_key",
            "unshare",
            "setns",
            "swapon",
            "swapoff",
            "reboot",
            "acct",
            "open_by_handle_at",
            "name_to_handle_at",
            "userfaultfd",
            "iopl",
            "ioperm",
            "syslog",
            "quotactl",
            "lookup_dcookie",
            "mbind",
            "set_mempolicy",
            "move_pages",
            "clock_settime",
            "settimeofday",
            "adjtimex",
            "personality",
            "create_module",
            "vm86",
            "uselib",
        ] {
            assert!(set.contains(required), "{required} not blocked");
        }
        for (n, why) in BLOCKED {
            assert!(!why.is_empty(), "{n} has no reason");
        }
    }

    #[test]
    fn profile_shape() {
        let p = default_profile();
        assert_eq!(p.default_action, "SCMP_ACT_ALLOW");
        assert_eq!(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        let clone_rules: Vec<_> = p.syscalls.iter().filter(|r| r.names == ["clone"]).collect();
        assert_eq!(clone_rules.len(), CLONE_NAMESPACE_FLAGS.len());
        let mask: u64 = clone_rules.iter().map(|r| r.args[0].value).fold(0, |a, b| a | b);
        assert_eq!(mask, 0x7E02_0000);
        for r in clone_rules {
            assert_eq!(r.args.len(), 1);
            assert_eq!(r.args[0].op, "SCMP_CMP_MASKED_EQ");
            assert_eq!(r.args[0].value, r.args[0].value_two);
            assert_eq!(r.errno_ret, Some(EPERM));
        }
        let c3 = p.syscalls.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!(c3.errno_ret, Some(ENOSYS));
        let runsc = default_profile_for(RuntimeKind::Runsc);
        assert!(!runsc.syscalls.iter().any(|r| r.names == ["clone3"]));
        assert_eq!(runsc.syscalls.len(), p.syscalls.len() - 1);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["syscalls"][0]["errnoRet"], 1);
        assert_eq!(json["syscalls"][1]["args"][0]["valueTwo"], 0x0002_0000);
    }

    #[test]
    fn docs_explain_every_blocked_syscall() {
        let doc = include_str!("../../../docs/seccomp.md");
        for name in blocked_names() {
            assert!(doc.contains(&format!("`{name}`")), "docs/seccomp.md does not mention `{name}`");
        }
        for (flag, _) in CLONE_NAMESPACE_FLAGS {
            assert!(doc.contains(flag), "docs/seccomp.md does not mention {flag}");
        }
    }
}
