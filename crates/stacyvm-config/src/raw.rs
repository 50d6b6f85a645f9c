//! Stage 1: the raw key tree, exactly as written in the file and the environment.
//!
//! Every struct is `#[serde(default)]` and its `Default` gives the documented default of
//! `spec/config-and-cli.md` §2, so a partial file fills in the rest. Durations stay Go duration
//! strings and integers stay signed here; [`crate::Config`] is the validated, typed form.
//! Unknown keys in a file are ignored.
//!
//! The set of keys (and of `STACYVM_*` variables) is derived from this tree by serialising
//! [`RawConfig::default`], so adding a field here is all it takes to add a key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn s(v: &str) -> String {
    v.to_string()
}

fn list(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The whole key tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RawConfig {
    /// `server.*`
    pub server: RawServer,
    /// `worker.*`
    pub worker: RawWorker,
    /// `providers.*`
    pub providers: RawProviders,
    /// `defaults.*`
    pub defaults: RawDefaults,
    /// `auth.*`
    pub auth: RawAuth,
    /// `rate_limit.*`
    pub rate_limit: RawRateLimit,
    /// `database.*`
    pub database: RawDatabase,
    /// `logging.*`
    pub logging: RawLogging,
    /// `pool.*`
    pub pool: RawPool,
    /// `retention.*` (addition)
    pub retention: RawRetention,
}

/// `server.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawServer {
    pub host: String,
    pub port: i64,
    pub preview_domain: String,
    pub cors_allowed_origins: Vec<String>,
    /// (addition) Largest accepted request body.
    pub max_request_body_bytes: i64,
    /// (addition) Largest raw (streamed) upload, `PUT /sandboxes/{id}/files`.
    pub max_upload_bytes: i64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            host: s("0.0.0.0"),
            port: 7423,
            preview_domain: s("localhost"),
            cors_allowed_origins: list(&["*"]),
            max_request_body_bytes: 16 * 1024 * 1024,
            max_upload_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

/// `worker.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawWorker {
    pub id: String,
    pub control_plane_url: String,
    pub listen_addr: String,
    pub preview_domain: String,
    pub heartbeat_interval: String,
    pub shutdown_timeout: String,
    pub rpc_tls: RawRpcTls,
}

impl Default for RawWorker {
    fn default() -> Self {
        Self {
            id: String::new(),
            control_plane_url: s("http://localhost:7423"),
            listen_addr: String::new(),
            preview_domain: String::new(),
            heartbeat_interval: s("30s"),
            shutdown_timeout: s("10s"),
            rpc_tls: RawRpcTls::default(),
        }
    }
}

/// `worker.rpc_tls.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RawRpcTls {
    pub enabled: bool,
    pub server_cert_file: String,
    pub server_key_file: String,
    pub client_ca_file: String,
    pub ca_file: String,
    pub client_cert_file: String,
    pub client_key_file: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
}

/// `providers.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawProviders {
    pub default: String,
    pub mock: RawMock,
    pub firecracker: RawFirecracker,
    pub docker: RawDocker,
    pub e2b: RawE2b,
    pub custom: RawCustom,
    pub proot: RawProot,
    /// (addition)
    pub oci: RawOci,
}

impl Default for RawProviders {
    fn default() -> Self {
        Self {
            default: s("auto"),
            mock: RawMock::default(),
            firecracker: RawFirecracker::default(),
            docker: RawDocker::default(),
            e2b: RawE2b::default(),
            custom: RawCustom::default(),
            proot: RawProot::default(),
            oci: RawOci::default(),
        }
    }
}

/// `providers.mock.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RawMock {
    pub enabled: bool,
    /// (addition) `""` = `<temp dir>/stacyvm-mock`.
    pub root_dir: String,
}

/// `providers.firecracker.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawFirecracker {
    pub enabled: bool,
    pub firecracker_path: String,
    pub kernel_path: String,
    pub default_rootfs: String,
    pub agent_path: String,
    pub data_dir: String,
}

impl Default for RawFirecracker {
    fn default() -> Self {
        Self {
            enabled: true,
            firecracker_path: s("/usr/local/bin/firecracker"),
            kernel_path: s("/var/lib/stacyvm/vmlinux.bin"),
            default_rootfs: String::new(),
            agent_path: s("./bin/stacyvm-agent"),
            data_dir: s("/var/lib/stacyvm"),
        }
    }
}

/// `providers.docker.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawDocker {
    pub enabled: bool,
    pub socket: String,
    pub runtime: String,
    pub default_image: String,
    pub network_mode: String,
    pub seccomp_profile: String,
    pub read_only_rootfs: bool,
    pub memory: String,
    pub cpus: String,
    pub pids_limit: i64,
    pub user: String,
    pub dropped_caps: Vec<String>,
    pub added_caps: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub pool_security: RawPoolSecurity,
}

impl Default for RawDocker {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: String::new(),
            runtime: s("runc"),
            default_image: s("alpine:latest"),
            network_mode: s("bridge"),
            seccomp_profile: s("default"),
            read_only_rootfs: false,
            memory: s("512m"),
            cpus: s("1"),
            pids_limit: 256,
            user: String::new(),
            dropped_caps: list(&["ALL"]),
            added_caps: Vec::new(),
            tmpfs: BTreeMap::new(),
            pool_security: RawPoolSecurity::default(),
        }
    }
}

/// `providers.docker.pool_security.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawPoolSecurity {
    pub per_user_uid: bool,
    pub pid_namespace: bool,
    pub workspace_permissions: bool,
    pub hidepid: bool,
}

impl Default for RawPoolSecurity {
    fn default() -> Self {
        Self { per_user_uid: false, pid_namespace: false, workspace_permissions: true, hidepid: false }
    }
}

/// `providers.e2b.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawE2b {
    pub enabled: bool,
    pub api_key: String,
    pub base_url: String,
}

impl Default for RawE2b {
    fn default() -> Self {
        Self { enabled: false, api_key: String::new(), base_url: s("https://api.e2b.dev") }
    }
}

/// `providers.custom.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawCustom {
    pub enabled: bool,
    pub name: String,
    pub base_url: String,
    pub api_key: String,
    pub timeout: String,
}

impl Default for RawCustom {
    fn default() -> Self {
        Self { enabled: false, name: s("custom"), base_url: String::new(), api_key: String::new(), timeout: s("60s") }
    }
}

/// `providers.proot.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawProot {
    pub enabled: bool,
    pub rootfs_path: String,
    pub proot_binary: String,
    pub workspace_base: String,
    pub default_timeout: String,
    pub max_sandboxes: i64,
    pub max_memory_mb: i64,
    pub max_disk_mb: i64,
    pub languages: Vec<String>,
}

impl Default for RawProot {
    fn default() -> Self {
        Self {
            enabled: false,
            rootfs_path: s("/var/lib/stacyvm/rootfs"),
            proot_binary: s("proot"),
            workspace_base: s("/var/lib/stacyvm/workspaces"),
            default_timeout: s("60s"),
            max_sandboxes: 10,
            max_memory_mb: 512,
            max_disk_mb: 1024,
            languages: list(&["python3", "node", "bash"]),
        }
    }
}

/// `providers.oci.*` (addition)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawOci {
    pub enabled: bool,
    /// OCI runtime name: `crun`, `runc` or `runsc`.
    pub runtime: String,
    /// `""` = look the runtime up on PATH.
    pub runtime_path: String,
    /// Sandboxes (overlay layers, bundles) and runtime state.
    pub data_dir: String,
    /// Local image store; `""` = `<data_dir>/images`.
    pub images_dir: String,
    /// The static `stacyvm-agent`; `""` = next to the `stacyvm` binary.
    pub agent_path: String,
    /// Task limit (processes + threads) per sandbox.
    pub pids_limit: u32,
    /// Registries (`host[:port]`) pulled from over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Docker-style `config.json` with registry credentials; `""` = anonymous pulls.
    pub registry_auth_file: String,
    /// `if_missing` (pull at first spawn) or `never` (only pulled or imported images).
    pub pull_policy: String,
    /// Sandbox networking: `none` (loopback only) or `bridge` (veth on a host bridge, NAT egress).
    pub network: String,
    /// Host bridge of `bridge` networking (a Linux interface name).
    pub bridge_name: String,
    /// IPv4 subnet of the bridge (`a.b.c.d/prefix`); the first address is the gateway.
    pub subnet: String,
    /// Mount the sandbox's `/` read-only (writable `/tmp`, `/workspace`).
    pub readonly_rootfs: bool,
    /// Set the cgroup2 `favordynmods` flag at start (faster container starts, host-wide).
    pub favor_dynamic_cgroups: bool,
}

impl Default for RawOci {
    fn default() -> Self {
        Self {
            enabled: true,
            runtime: s("crun"),
            runtime_path: String::new(),
            data_dir: s("/var/lib/stacyvm/oci"),
            images_dir: String::new(),
            agent_path: String::new(),
            pids_limit: 256,
            insecure_registries: Vec::new(),
            registry_auth_file: String::new(),
            pull_policy: s("if_missing"),
            network: s("none"),
            bridge_name: s("stacyvm0"),
            subnet: s("10.88.0.0/16"),
            readonly_rootfs: false,
            favor_dynamic_cgroups: true,
        }
    }
}

/// `defaults.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawDefaults {
    pub ttl: String,
    pub image: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub disk_size_mb: i64,
    pub pool_size: i64,
    pub pool_template: String,
    pub max_ttl: String,
    pub default_exec_timeout: String,
    pub max_exec_timeout: String,
    pub max_sandboxes: i64,
    pub max_sandboxes_per_owner: i64,
    pub spawn_overflow: String,
    pub spawn_queue_timeout: String,
    pub max_spawn_queue: i64,
    /// (addition) Output kept per stream for a synchronous exec.
    pub max_exec_output_bytes: i64,
    /// (addition) How often the TTL reaper runs.
    pub reaper_interval: String,
}

impl Default for RawDefaults {
    fn default() -> Self {
        Self {
            ttl: s("30m"),
            image: s("alpine:latest"),
            memory_mb: 1024,
            vcpus: 1,
            disk_size_mb: 1024,
            pool_size: 0,
            pool_template: String::new(),
            max_ttl: s("24h"),
            default_exec_timeout: s("0s"),
            max_exec_timeout: s("10m"),
            max_sandboxes: 0,
            max_sandboxes_per_owner: 0,
            spawn_overflow: s("reject"),
            spawn_queue_timeout: s("30s"),
            max_spawn_queue: 100,
            max_exec_output_bytes: 16 * 1024 * 1024,
            reaper_interval: s("30s"),
        }
    }
}

/// `auth.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawAuth {
    pub enabled: bool,
    pub api_key: String,
    pub admin_api_key: String,
    pub worker_token: String,
    pub worker_token_file: String,
    pub worker_tokens: BTreeMap<String, String>,
    pub worker_signing_key: String,
    pub worker_signing_key_file: String,
    pub worker_signing_keys: Vec<String>,
    pub worker_revoked_token_ids: Vec<String>,
    pub admin_fallback_enabled: bool,
    pub admin_audit_retention: String,
    pub oidc_enabled: bool,
    pub oidc_issuer: String,
    pub oidc_audience: String,
    pub oidc_jwks_url: String,
    pub oidc_public_key: String,
    pub oidc_public_key_file: String,
    pub oidc_groups_claim: String,
    pub oidc_tenant_claim: String,
    pub oidc_admin_groups: Vec<String>,
    pub oidc_operator_groups: Vec<String>,
    pub oidc_viewer_groups: Vec<String>,
    /// (addition)
    pub allow_unauthenticated: bool,
    /// (addition) tenant_id → API key.
    pub tenant_api_keys: BTreeMap<String, String>,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            enabled: false,
            api_key: String::new(),
            admin_api_key: String::new(),
            worker_token: String::new(),
            worker_token_file: String::new(),
            worker_tokens: BTreeMap::new(),
            worker_signing_key: String::new(),
            worker_signing_key_file: String::new(),
            worker_signing_keys: Vec::new(),
            worker_revoked_token_ids: Vec::new(),
            admin_fallback_enabled: true,
            admin_audit_retention: s("0s"),
            oidc_enabled: false,
            oidc_issuer: String::new(),
            oidc_audience: String::new(),
            oidc_jwks_url: String::new(),
            oidc_public_key: String::new(),
            oidc_public_key_file: String::new(),
            oidc_groups_claim: s("groups"),
            oidc_tenant_claim: s("tenant_id"),
            oidc_admin_groups: Vec::new(),
            oidc_operator_groups: Vec::new(),
            oidc_viewer_groups: Vec::new(),
            allow_unauthenticated: false,
            tenant_api_keys: BTreeMap::new(),
        }
    }
}

/// `rate_limit.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawRateLimit {
    pub enabled: bool,
    pub requests_per_minute: i64,
    pub burst: i64,
    pub key_by: String,
    pub bucket_ttl: String,
    pub cleanup_interval: String,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            requests_per_minute: 120,
            burst: 60,
            key_by: s("owner"),
            bucket_ttl: s("15m"),
            cleanup_interval: s("1m"),
        }
    }
}

/// `database.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawDatabase {
    pub driver: String,
    pub path: String,
    pub dsn: String,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self { driver: s("sqlite"), path: s("stacyvm.db"), dsn: String::new() }
    }
}

/// `logging.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawLogging {
    pub level: String,
    pub format: String,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self { level: s("info"), format: s("json") }
    }
}

/// `pool.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawPool {
    pub enabled: bool,
    pub max_vms: i64,
    pub max_users_per_vm: i64,
    pub image: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub overflow: String,
}

impl Default for RawPool {
    fn default() -> Self {
        Self {
            enabled: false,
            max_vms: 10,
            max_users_per_vm: 5,
            image: s("alpine:latest"),
            memory_mb: 2048,
            vcpus: 2,
            overflow: s("reject"),
        }
    }
}

/// `retention.*` (addition): how long finished records are kept; `0s` keeps them forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawRetention {
    pub destroyed_sandboxes: String,
    pub exec_logs: String,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self { destroyed_sandboxes: s("168h"), exec_logs: s("168h") }
    }
}
