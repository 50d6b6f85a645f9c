//! Generation of the OCI runtime `config.json`.
//!
//! We only model the subset of the [OCI runtime spec] that StacyVM uses; the structs serialise to
//! the exact field names of the spec (`camelCase`) and every optional field is omitted when unset,
//! so crun, runc and runsc all accept the result.
//!
//! [`BundleSpec`] is the provider-facing description of one sandbox; [`BundleSpec::to_spec`] turns
//! it into a [`Spec`] with our isolation defaults and [`write_bundle`] writes `config.json`.
//!
//! [OCI runtime spec]: https://github.com/opencontainers/runtime-spec/blob/main/config.md

// Layout, by the part of `config.json` each file produces:
// - `bundle.rs`: `BundleSpec` (defaults, validation, `to_spec`), `write_bundle`, `SpecError`;
// - `process.rs`: `ProcessSpec` and `process` (user, env, capabilities, rlimits);
// - `mounts.rs`: `BindMount` and `mounts`;
// - `linux.rs`: `NetworkSpec` and `linux` (namespaces, masked paths, resources, seccomp);
// - `serde_types.rs`: the serde model of `config.json`.

mod bundle;
mod linux;
mod mounts;
mod process;
mod serde_types;

pub use bundle::{write_bundle, BundleSpec, SpecError, OCI_VERSION};
pub use linux::{NetworkSpec, CPU_PERIOD_US, MASKED_PATHS, READONLY_PATHS};
pub use mounts::BindMount;
pub use process::{ProcessSpec, AGENT_CAPABILITIES, DEFAULT_NOFILE, DEFAULT_PATH_ENV};
pub use serde_types::{
    Capabilities, Cpu, DeviceRule, Linux, Memory, Mount, Namespace, Pids, Process, Resources, Rlimit, Root, Seccomp,
    SeccompArg, Spec, SyscallRule, User,
};

#[cfg(test)]
mod tests;
