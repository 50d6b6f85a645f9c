//! Stage 2: the validated, typed configuration.
//!
//! Field names mirror the key tree; see `docs/configuration.md` for the meaning of each key.
//! Durations are [`Duration`]s (zero keeps the key's documented "0" meaning, e.g. "no cap"),
//! enumerations are enums, and file paths that may be unset (`""`) are `Option<PathBuf>`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::raw::RawConfig;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub worker: WorkerConfig,
    pub providers: ProvidersConfig,
    pub defaults: DefaultsConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub database: DatabaseConfig,
    pub logging: LoggingConfig,
    pub pool: PoolConfig,
    /// (addition)
    pub retention: RetentionConfig,
    /// The raw tree this was validated from (file + environment + defaults), with the original
    /// strings, for `config lint` and support bundles. Secrets are not redacted here.
    pub raw: RawConfig,
}

impl Config {
    /// The preview domain a worker advertises: `worker.preview_domain`, else
    /// `server.preview_domain`.
    pub fn worker_preview_domain(&self) -> &str {
        if self.worker.preview_domain.is_empty() {
            &self.server.preview_domain
        } else {
            &self.worker.preview_domain
        }
    }
}

/// `server.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub preview_domain: String,
    /// `*` = any origin.
    pub cors_allowed_origins: Vec<String>,
    /// (addition)
    pub max_request_body_bytes: u64,
    /// (addition) Largest raw upload.
    pub max_upload_bytes: u64,
}

/// `worker.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `""` = hostname.
    pub id: String,
    pub control_plane_url: String,
    /// `""` = heartbeat only, no RPC server.
    pub listen_addr: String,
    /// `""` = `server.preview_domain` (see [`Config::worker_preview_domain`]).
    pub preview_domain: String,
    /// Always > 0.
    pub heartbeat_interval: Duration,
    pub shutdown_timeout: Duration,
    pub rpc_tls: RpcTlsConfig,
}

/// `worker.rpc_tls.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcTlsConfig {
    pub enabled: bool,
    pub server_cert_file: Option<PathBuf>,
    pub server_key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub server_name: String,
    pub insecure_skip_verify: bool,
}

/// `providers.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// `auto` or a provider name (`oci`, `docker`, …, or `providers.custom.name`).
    pub default: String,
    pub mock: MockConfig,
    pub firecracker: FirecrackerConfig,
    pub docker: DockerConfig,
    pub e2b: E2bConfig,
    pub custom: CustomConfig,
    pub proot: ProotConfig,
    /// (addition)
    pub oci: OciConfig,
}

/// `providers.mock.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    pub enabled: bool,
    /// (addition) Resolved: `""` becomes `<temp dir>/stacyvm-mock`.
    pub root_dir: PathBuf,
}

/// `providers.firecracker.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirecrackerConfig {
    pub enabled: bool,
    pub firecracker_path: PathBuf,
    pub kernel_path: PathBuf,
    pub default_rootfs: Option<PathBuf>,
    /// Relative: next to the binary, then cwd, then PATH.
    pub agent_path: PathBuf,
    pub data_dir: PathBuf,
}

/// `providers.docker.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    pub enabled: bool,
    /// `""` = `DOCKER_HOST` or the platform default.
    pub socket: String,
    pub runtime: String,
    pub default_image: String,
    /// `""` falls back to `none`.
    pub network_mode: String,
    pub seccomp_profile: String,
    pub read_only_rootfs: bool,
    /// Docker memory string, e.g. `512m`.
    pub memory: String,
    /// Docker CPU string, e.g. `1` or `0.5`.
    pub cpus: String,
    /// Normalised: a configured value ≤ 0 becomes 256.
    pub pids_limit: u32,
    pub user: String,
    pub dropped_caps: Vec<String>,
    pub added_caps: Vec<String>,
    /// Mount point → options.
    pub tmpfs: BTreeMap<String, String>,
    pub pool_security: PoolSecurityConfig,
}

/// `providers.docker.pool_security.*` (parsed, not applied by the reference)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSecurityConfig {
    pub per_user_uid: bool,
    pub pid_namespace: bool,
    pub workspace_permissions: bool,
    pub hidepid: bool,
}

/// `providers.e2b.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2bConfig {
    pub enabled: bool,
    pub api_key: String,
    pub base_url: String,
}

/// `providers.custom.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomConfig {
    pub enabled: bool,
    pub name: String,
    pub base_url: String,
    /// Sent to the backend as `X-API-Key`.
    pub api_key: String,
    pub timeout: Duration,
}

/// `providers.proot.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProotConfig {
    pub enabled: bool,
    pub rootfs_path: PathBuf,
    pub proot_binary: String,
    pub workspace_base: PathBuf,
    pub default_timeout: Duration,
    pub max_sandboxes: u32,
    pub max_memory_mb: u64,
    pub max_disk_mb: u64,
    pub languages: Vec<String>,
}

/// `providers.oci.*` (addition)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciConfig {
    pub enabled: bool,
    pub runtime: String,
    /// `None` = look `runtime` up on PATH.
    pub runtime_path: Option<PathBuf>,
    /// Sandboxes and runtime state.
    pub data_dir: PathBuf,
    /// Local image store (resolved: `<data_dir>/images` when unset).
    pub images_dir: PathBuf,
    /// The static agent; `None` = next to the `stacyvm` binary.
    pub agent_path: Option<PathBuf>,
    /// Task limit per sandbox (> 0).
    pub pids_limit: u32,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Registry credentials file.
    pub registry_auth_file: Option<PathBuf>,
    /// `true` = a spawn may pull a missing image (`if_missing`); `false` = `never`.
    pub pull_if_missing: bool,
    /// Sandbox networking.
    pub network: OciNetworkMode,
    /// Host bridge for [`OciNetworkMode::Bridge`]: 1..=15 bytes of `[A-Za-z0-9_-]`.
    pub bridge_name: String,
    /// Bridge subnet: network address (host bits zero) and prefix length (8..=30).
    pub subnet: (std::net::Ipv4Addr, u8),
    /// The sandbox's `/` is read-only; `/tmp` (tmpfs) and `/workspace` (a host directory) stay
    /// writable.
    pub readonly_rootfs: bool,
    /// Set the cgroup2 `favordynmods` flag at start.
    pub favor_dynamic_cgroups: bool,
}

/// `providers.oci.network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OciNetworkMode {
    /// A fresh network namespace with only `lo`.
    #[default]
    None,
    /// A veth pair to a host bridge, an address from the subnet, NAT egress.
    Bridge,
}

/// `defaults.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultsConfig {
    pub ttl: Duration,
    pub image: String,
    /// Always > 0.
    pub memory_mb: u64,
    /// Always > 0.
    pub vcpus: u32,
    pub disk_size_mb: u64,
    pub pool_size: u32,
    pub pool_template: String,
    /// Zero = no cap.
    pub max_ttl: Duration,
    /// Zero = no timeout.
    pub default_exec_timeout: Duration,
    /// Zero = no cap.
    pub max_exec_timeout: Duration,
    /// Zero = unlimited.
    pub max_sandboxes: u32,
    /// Zero = unlimited.
    pub max_sandboxes_per_owner: u32,
    pub spawn_overflow: Overflow,
    pub spawn_queue_timeout: Duration,
    pub max_spawn_queue: u32,
    /// (addition) Always > 0.
    pub max_exec_output_bytes: u64,
    /// (addition) Always > 0.
    pub reaper_interval: Duration,
}

/// `auth.*`. Secret values supplied by `*_file` keys are already read into the value fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub enabled: bool,
    pub api_key: String,
    pub admin_api_key: String,
    /// From `auth.worker_token` or the trimmed content of `auth.worker_token_file`.
    pub worker_token: String,
    pub worker_token_file: Option<PathBuf>,
    /// Worker ID → token.
    pub worker_tokens: BTreeMap<String, String>,
    /// From `auth.worker_signing_key` or the trimmed content of `auth.worker_signing_key_file`.
    pub worker_signing_key: String,
    pub worker_signing_key_file: Option<PathBuf>,
    pub worker_signing_keys: Vec<String>,
    pub worker_revoked_token_ids: Vec<String>,
    pub admin_fallback_enabled: bool,
    /// Zero = keep forever.
    pub admin_audit_retention: Duration,
    pub oidc_enabled: bool,
    pub oidc_issuer: String,
    pub oidc_audience: String,
    pub oidc_jwks_url: String,
    /// From `auth.oidc_public_key` or the trimmed content of `auth.oidc_public_key_file`.
    pub oidc_public_key: String,
    pub oidc_public_key_file: Option<PathBuf>,
    pub oidc_groups_claim: String,
    pub oidc_tenant_claim: String,
    pub oidc_admin_groups: Vec<String>,
    pub oidc_operator_groups: Vec<String>,
    pub oidc_viewer_groups: Vec<String>,
    /// (addition)
    pub allow_unauthenticated: bool,
    /// (addition) Tenant ID → API key.
    pub tenant_api_keys: BTreeMap<String, String>,
}

/// `rate_limit.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub requests_per_minute: u32,
    pub burst: u32,
    pub key_by: KeyBy,
    pub bucket_ttl: Duration,
    /// Always > 0.
    pub cleanup_interval: Duration,
}

/// `database.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub driver: DbDriver,
    /// Non-empty for SQLite.
    pub path: PathBuf,
    /// Non-empty for Postgres.
    pub dsn: String,
}

/// `logging.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// `pool.*`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub enabled: bool,
    pub max_vms: u32,
    pub max_users_per_vm: u32,
    pub image: String,
    /// Always > 0.
    pub memory_mb: u64,
    /// Always > 0.
    pub vcpus: u32,
    pub overflow: Overflow,
}

/// `retention.*` (addition). Zero = keep forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    pub destroyed_sandboxes: Duration,
    pub exec_logs: Duration,
}

/// Defines a string-valued enum: accepted spellings (matched case-insensitively after
/// trimming; `""` included where it means the default) and the canonical name.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $canon:literal [$($alias:literal),*]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every accepted spelling, for error messages.
            pub const ACCEPTED: &'static [&'static str] = &[$($($alias),*),+];

            /// Parses a config value; `None` when it is not an accepted spelling.
            pub fn parse(text: &str) -> Option<Self> {
                let t = text.trim().to_ascii_lowercase();
                $(if [$($alias),*].contains(&t.as_str()) {
                    return Some($name::$variant);
                })+
                None
            }

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $canon),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// `database.driver`
    DbDriver {
        /// `sqlite` or `sqlite3` (also `""`).
        Sqlite = "sqlite" ["", "sqlite", "sqlite3"],
        /// `postgres` or `postgresql`.
        Postgres = "postgres" ["postgres", "postgresql"],
    }
}

string_enum! {
    /// `defaults.spawn_overflow` and `pool.overflow`: what happens when capacity is exhausted.
    Overflow {
        /// Fail at once (also `""`).
        Reject = "reject" ["", "reject"],
        /// Wait for capacity.
        Queue = "queue" ["queue"],
    }
}

string_enum! {
    /// `rate_limit.key_by`
    KeyBy {
        /// `X-User-ID`, else `X-API-Key`, else client IP (also `""`).
        Owner = "owner" ["", "owner"],
        /// The API key.
        ApiKey = "api_key" ["api_key"],
        /// The client IP.
        Ip = "ip" ["ip"],
    }
}

string_enum! {
    /// `logging.level`
    LogLevel {
        Debug = "debug" ["debug"],
        /// Also `""`.
        Info = "info" ["", "info"],
        /// Also `warning`.
        Warn = "warn" ["warn", "warning"],
        Error = "error" ["error"],
    }
}

string_enum! {
    /// `logging.format`
    LogFormat {
        /// Also `""`.
        Json = "json" ["", "json"],
        /// Human-readable text (also `text`).
        Pretty = "pretty" ["pretty", "text"],
    }
}
