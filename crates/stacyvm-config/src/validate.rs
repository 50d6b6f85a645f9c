//! Validation of the raw tree into [`Config`]. The first failing key is reported, in tree order.

use std::path::PathBuf;
use std::time::Duration;

use stacyvm_types::duration::GoDuration;

use crate::error::ConfigError;
use crate::raw::*;
use crate::typed::*;

type Result<T> = std::result::Result<T, ConfigError>;

/// Validates `raw` and converts it to the typed [`Config`]. Reads the `auth.*_file` secrets.
pub(crate) fn validate(raw: RawConfig) -> Result<Config> {
    Ok(Config {
        server: server(&raw.server)?,
        worker: worker(&raw.worker)?,
        providers: providers(&raw.providers)?,
        defaults: defaults(&raw.defaults)?,
        auth: auth(&raw.auth)?,
        rate_limit: rate_limit(&raw.rate_limit)?,
        database: database(&raw.database)?,
        logging: logging(&raw.logging)?,
        pool: pool(&raw.pool)?,
        retention: RetentionConfig {
            destroyed_sandboxes: duration("retention.destroyed_sandboxes", &raw.retention.destroyed_sandboxes)?,
            exec_logs: duration("retention.exec_logs", &raw.retention.exec_logs)?,
        },
        raw,
    })
}

// ---------------------------------------------------------------------------------------------
// Value helpers

/// A Go duration that must parse and be ≥ 0.
fn duration(key: &str, text: &str) -> Result<Duration> {
    let parsed = GoDuration::parse(text).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
    parsed.to_std().ok_or_else(|| ConfigError::invalid(key, format!("duration {text:?} must not be negative")))
}

/// A Go duration that must be > 0 (intervals of background loops).
fn interval(key: &str, text: &str) -> Result<Duration> {
    let d = duration(key, text)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(key, format!("interval {text:?} must be greater than 0")));
    }
    Ok(d)
}

fn non_negative<T: TryFrom<i64>>(key: &str, value: i64) -> Result<T> {
    if value < 0 {
        return Err(ConfigError::invalid(key, format!("must be ≥ 0, got {value}")));
    }
    T::try_from(value).map_err(|_| ConfigError::invalid(key, format!("{value} is too large")))
}

fn positive<T: TryFrom<i64>>(key: &str, value: i64) -> Result<T> {
    if value <= 0 {
        return Err(ConfigError::invalid(key, format!("must be greater than 0, got {value}")));
    }
    non_negative(key, value)
}

fn port(key: &str, value: i64) -> Result<u16> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ConfigError::invalid(key, format!("port must be between 1 and 65535, got {value}")))
}

/// A Linux interface name we also use in nftables table names: 1..=15 bytes of
/// `[A-Za-z0-9_-]`.
fn interface_name(key: &str, name: &str) -> Result<String> {
    let ok =
        (1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ConfigError::invalid(key, format!("{name:?} is not 1 to 15 characters of A-Z, a-z, 0-9, _ and -")));
    }
    Ok(name.to_string())
}

/// `a.b.c.d/prefix` with prefix 8..=30 and no host bits set.
fn ipv4_subnet(key: &str, text: &str) -> Result<(std::net::Ipv4Addr, u8)> {
    let invalid = |why: &str| ConfigError::invalid(key, format!("{text:?}: {why}"));
    let (addr, prefix) = text.split_once('/').ok_or_else(|| invalid("expected an IPv4 subnet like 10.88.0.0/16"))?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| invalid("not an IPv4 address"))?;
    let prefix: u8 = prefix.parse().map_err(|_| invalid("the prefix length is not a number"))?;
    if !(8..=30).contains(&prefix) {
        return Err(invalid("the prefix length must be between 8 and 30"));
    }
    let host_bits = u32::MAX >> prefix;
    if u32::from(addr) & host_bits != 0 {
        return Err(invalid("host bits are set (give the network address)"));
    }
    Ok((addr, prefix))
}

fn opt_path(text: &str) -> Option<PathBuf> {
    (!text.is_empty()).then(|| PathBuf::from(text))
}

fn one_of<T>(key: &str, text: &str, parse: fn(&str) -> Option<T>, accepted: &[&str]) -> Result<T> {
    parse(text).ok_or_else(|| {
        let names: Vec<&str> = accepted.iter().copied().filter(|a| !a.is_empty()).collect();
        ConfigError::invalid(key, format!("{text:?} is not one of: {}", names.join(", ")))
    })
}

/// A secret given inline or by a file: `X and X_file cannot both be set`; the file must exist
/// and be non-empty after trimming.
fn secret(key: &str, value: &str, file: &str) -> Result<(String, Option<PathBuf>)> {
    let file_key = format!("{key}_file");
    if file.is_empty() {
        return Ok((value.to_string(), None));
    }
    if !value.is_empty() {
        return Err(ConfigError::invalid(&file_key, format!("{key} and {file_key} cannot both be set")));
    }
    let content = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::invalid(&file_key, format!("cannot read {file:?}: {e}")))?;
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::invalid(&file_key, format!("file {file:?} is empty")));
    }
    Ok((trimmed.to_string(), Some(PathBuf::from(file))))
}

/// Each entry is `*`, blank, or `http(s)://host[:port]` without path, query or fragment.
fn check_origin(origin: &str) -> std::result::Result<(), &'static str> {
    let origin = origin.trim();
    if origin.is_empty() || origin == "*" {
        return Ok(());
    }
    let lower = origin.to_ascii_lowercase();
    let Some(scheme_len) = ["http://", "https://"].iter().find(|s| lower.starts_with(*s)).map(|s| s.len()) else {
        return Err("must start with http:// or https://");
    };
    let authority = &origin[scheme_len..];
    if authority.contains(['/', '?', '#']) {
        return Err("must not have a path, query or fragment");
    }
    if authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err("must be scheme://host[:port]");
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("has an unterminated IPv6 address");
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err("must be scheme://host[:port]"),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u32>().map_or(true, |n| n > 65535) {
            return Err("has an invalid port");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sections

fn server(r: &RawServer) -> Result<ServerConfig> {
    for (i, origin) in r.cors_allowed_origins.iter().enumerate() {
        check_origin(origin).map_err(|why| {
            ConfigError::invalid(
                "server.cors_allowed_origins",
                format!("entry {i} ({origin:?}) {why}; use \"*\" or an origin like https://host[:port]"),
            )
        })?;
    }
    Ok(ServerConfig {
        host: r.host.clone(),
        port: port("server.port", r.port)?,
        preview_domain: r.preview_domain.clone(),
        cors_allowed_origins: r.cors_allowed_origins.clone(),
        max_request_body_bytes: positive("server.max_request_body_bytes", r.max_request_body_bytes)?,
        max_upload_bytes: positive("server.max_upload_bytes", r.max_upload_bytes)?,
    })
}

fn worker(r: &RawWorker) -> Result<WorkerConfig> {
    let t = &r.rpc_tls;
    Ok(WorkerConfig {
        id: r.id.clone(),
        control_plane_url: r.control_plane_url.clone(),
        listen_addr: r.listen_addr.clone(),
        preview_domain: r.preview_domain.clone(),
        heartbeat_interval: interval("worker.heartbeat_interval", &r.heartbeat_interval)?,
        shutdown_timeout: duration("worker.shutdown_timeout", &r.shutdown_timeout)?,
        rpc_tls: RpcTlsConfig {
            enabled: t.enabled,
            server_cert_file: opt_path(&t.server_cert_file),
            server_key_file: opt_path(&t.server_key_file),
            client_ca_file: opt_path(&t.client_ca_file),
            ca_file: opt_path(&t.ca_file),
            client_cert_file: opt_path(&t.client_cert_file),
            client_key_file: opt_path(&t.client_key_file),
            server_name: t.server_name.clone(),
            insecure_skip_verify: t.insecure_skip_verify,
        },
    })
}

fn providers(r: &RawProviders) -> Result<ProvidersConfig> {
    let d = &r.docker;
    let p = &r.proot;
    let pool_security = PoolSecurityConfig {
        per_user_uid: d.pool_security.per_user_uid,
        pid_namespace: d.pool_security.pid_namespace,
        workspace_permissions: d.pool_security.workspace_permissions,
        hidepid: d.pool_security.hidepid,
    };
    Ok(ProvidersConfig {
        default: r.default.trim().to_string(),
        mock: MockConfig {
            enabled: r.mock.enabled,
            root_dir: opt_path(&r.mock.root_dir).unwrap_or_else(|| std::env::temp_dir().join("stacyvm-mock")),
        },
        firecracker: FirecrackerConfig {
            enabled: r.firecracker.enabled,
            firecracker_path: PathBuf::from(&r.firecracker.firecracker_path),
            kernel_path: PathBuf::from(&r.firecracker.kernel_path),
            default_rootfs: opt_path(&r.firecracker.default_rootfs),
            agent_path: PathBuf::from(&r.firecracker.agent_path),
            data_dir: PathBuf::from(&r.firecracker.data_dir),
        },
        docker: DockerConfig {
            enabled: d.enabled,
            socket: d.socket.clone(),
            runtime: d.runtime.clone(),
            default_image: d.default_image.clone(),
            network_mode: d.network_mode.clone(),
            seccomp_profile: d.seccomp_profile.clone(),
            read_only_rootfs: d.read_only_rootfs,
            memory: d.memory.clone(),
            cpus: d.cpus.clone(),
            pids_limit: if d.pids_limit <= 0 {
                256
            } else {
                non_negative("providers.docker.pids_limit", d.pids_limit)?
            },
            user: d.user.clone(),
            dropped_caps: d.dropped_caps.clone(),
            added_caps: d.added_caps.clone(),
            tmpfs: d.tmpfs.clone(),
            pool_security,
        },
        e2b: E2bConfig { enabled: r.e2b.enabled, api_key: r.e2b.api_key.clone(), base_url: r.e2b.base_url.clone() },
        custom: CustomConfig {
            enabled: r.custom.enabled,
            name: r.custom.name.clone(),
            base_url: r.custom.base_url.clone(),
            api_key: r.custom.api_key.clone(),
            timeout: duration("providers.custom.timeout", &r.custom.timeout)?,
        },
        proot: ProotConfig {
            enabled: p.enabled,
            rootfs_path: PathBuf::from(&p.rootfs_path),
            proot_binary: p.proot_binary.clone(),
            workspace_base: PathBuf::from(&p.workspace_base),
            default_timeout: duration("providers.proot.default_timeout", &p.default_timeout)?,
            max_sandboxes: non_negative("providers.proot.max_sandboxes", p.max_sandboxes)?,
            max_memory_mb: non_negative("providers.proot.max_memory_mb", p.max_memory_mb)?,
            max_disk_mb: non_negative("providers.proot.max_disk_mb", p.max_disk_mb)?,
            languages: p.languages.clone(),
        },
        oci: {
            let o = &r.oci;
            if !matches!(o.runtime.as_str(), "crun" | "runc" | "runsc") {
                return Err(ConfigError::invalid(
                    "providers.oci.runtime",
                    format!("unknown runtime {:?} (accepted: crun, runc, runsc)", o.runtime),
                ));
            }
            if o.pids_limit == 0 {
                return Err(ConfigError::invalid("providers.oci.pids_limit", "must be greater than 0"));
            }
            if o.data_dir.trim().is_empty() {
                return Err(ConfigError::invalid("providers.oci.data_dir", "must not be empty"));
            }
            let pull_if_missing = match o.pull_policy.as_str() {
                "if_missing" | "" => true,
                "never" => false,
                other => {
                    return Err(ConfigError::invalid(
                        "providers.oci.pull_policy",
                        format!("{other:?} is not one of: if_missing, never"),
                    ))
                }
            };
            if let Some(bad) = o.insecure_registries.iter().find(|h| h.is_empty() || h.contains(['/', ' '])) {
                return Err(ConfigError::invalid(
                    "providers.oci.insecure_registries",
                    format!("{bad:?} is not a registry host[:port] (no scheme, no path)"),
                ));
            }
            let network = match o.network.as_str() {
                "" | "none" => OciNetworkMode::None,
                "bridge" => OciNetworkMode::Bridge,
                other => {
                    return Err(ConfigError::invalid(
                        "providers.oci.network",
                        format!("unknown network mode {other:?} (accepted: none, bridge)"),
                    ))
                }
            };
            let data_dir = PathBuf::from(&o.data_dir);
            OciConfig {
                enabled: o.enabled,
                runtime: o.runtime.clone(),
                runtime_path: opt_path(&o.runtime_path),
                images_dir: opt_path(&o.images_dir).unwrap_or_else(|| data_dir.join("images")),
                data_dir,
                agent_path: opt_path(&o.agent_path),
                pids_limit: o.pids_limit,
                insecure_registries: o.insecure_registries.clone(),
                registry_auth_file: opt_path(&o.registry_auth_file),
                pull_if_missing,
                network,
                bridge_name: interface_name("providers.oci.bridge_name", &o.bridge_name)?,
                subnet: ipv4_subnet("providers.oci.subnet", &o.subnet)?,
                readonly_rootfs: o.readonly_rootfs,
                favor_dynamic_cgroups: o.favor_dynamic_cgroups,
            }
        },
    })
}

fn defaults(r: &RawDefaults) -> Result<DefaultsConfig> {
    Ok(DefaultsConfig {
        ttl: duration("defaults.ttl", &r.ttl)?,
        image: r.image.clone(),
        memory_mb: positive("defaults.memory_mb", r.memory_mb)?,
        vcpus: positive("defaults.vcpus", r.vcpus)?,
        disk_size_mb: non_negative("defaults.disk_size_mb", r.disk_size_mb)?,
        pool_size: non_negative("defaults.pool_size", r.pool_size)?,
        pool_template: r.pool_template.clone(),
        max_ttl: duration("defaults.max_ttl", &r.max_ttl)?,
        default_exec_timeout: duration("defaults.default_exec_timeout", &r.default_exec_timeout)?,
        max_exec_timeout: duration("defaults.max_exec_timeout", &r.max_exec_timeout)?,
        max_sandboxes: non_negative("defaults.max_sandboxes", r.max_sandboxes)?,
        max_sandboxes_per_owner: non_negative("defaults.max_sandboxes_per_owner", r.max_sandboxes_per_owner)?,
        spawn_overflow: one_of("defaults.spawn_overflow", &r.spawn_overflow, Overflow::parse, Overflow::ACCEPTED)?,
        spawn_queue_timeout: duration("defaults.spawn_queue_timeout", &r.spawn_queue_timeout)?,
        max_spawn_queue: non_negative("defaults.max_spawn_queue", r.max_spawn_queue)?,
        max_exec_output_bytes: positive("defaults.max_exec_output_bytes", r.max_exec_output_bytes)?,
        reaper_interval: interval("defaults.reaper_interval", &r.reaper_interval)?,
    })
}

fn auth(r: &RawAuth) -> Result<AuthConfig> {
    let (worker_token, worker_token_file) = secret("auth.worker_token", &r.worker_token, &r.worker_token_file)?;
    let (worker_signing_key, worker_signing_key_file) =
        secret("auth.worker_signing_key", &r.worker_signing_key, &r.worker_signing_key_file)?;
    let (oidc_public_key, oidc_public_key_file) =
        secret("auth.oidc_public_key", &r.oidc_public_key, &r.oidc_public_key_file)?;
    Ok(AuthConfig {
        enabled: r.enabled,
        api_key: r.api_key.clone(),
        admin_api_key: r.admin_api_key.clone(),
        worker_token,
        worker_token_file,
        worker_tokens: r.worker_tokens.clone(),
        worker_signing_key,
        worker_signing_key_file,
        worker_signing_keys: r.worker_signing_keys.clone(),
        worker_revoked_token_ids: r.worker_revoked_token_ids.clone(),
        admin_fallback_enabled: r.admin_fallback_enabled,
        admin_audit_retention: duration("auth.admin_audit_retention", &r.admin_audit_retention)?,
        oidc_enabled: r.oidc_enabled,
        oidc_issuer: r.oidc_issuer.clone(),
        oidc_audience: r.oidc_audience.clone(),
        oidc_jwks_url: r.oidc_jwks_url.clone(),
        oidc_public_key,
        oidc_public_key_file,
        oidc_groups_claim: r.oidc_groups_claim.clone(),
        oidc_tenant_claim: r.oidc_tenant_claim.clone(),
        oidc_admin_groups: r.oidc_admin_groups.clone(),
        oidc_operator_groups: r.oidc_operator_groups.clone(),
        oidc_viewer_groups: r.oidc_viewer_groups.clone(),
        allow_unauthenticated: r.allow_unauthenticated,
        tenant_api_keys: r.tenant_api_keys.clone(),
    })
}

fn rate_limit(r: &RawRateLimit) -> Result<RateLimitConfig> {
    Ok(RateLimitConfig {
        enabled: r.enabled,
        requests_per_minute: non_negative("rate_limit.requests_per_minute", r.requests_per_minute)?,
        burst: non_negative("rate_limit.burst", r.burst)?,
        key_by: one_of("rate_limit.key_by", &r.key_by, KeyBy::parse, KeyBy::ACCEPTED)?,
        bucket_ttl: duration("rate_limit.bucket_ttl", &r.bucket_ttl)?,
        cleanup_interval: interval("rate_limit.cleanup_interval", &r.cleanup_interval)?,
    })
}

fn database(r: &RawDatabase) -> Result<DatabaseConfig> {
    let driver = one_of("database.driver", &r.driver, DbDriver::parse, DbDriver::ACCEPTED)?;
    match driver {
        DbDriver::Sqlite if r.path.trim().is_empty() => {
            return Err(ConfigError::invalid("database.path", "is required for the sqlite driver"))
        }
        DbDriver::Postgres if r.dsn.trim().is_empty() => {
            return Err(ConfigError::invalid("database.dsn", "is required for the postgres driver"))
        }
        _ => {}
    }
    Ok(DatabaseConfig { driver, path: PathBuf::from(&r.path), dsn: r.dsn.clone() })
}

fn logging(r: &RawLogging) -> Result<LoggingConfig> {
    Ok(LoggingConfig {
        level: one_of("logging.level", &r.level, LogLevel::parse, LogLevel::ACCEPTED)?,
        format: one_of("logging.format", &r.format, LogFormat::parse, LogFormat::ACCEPTED)?,
    })
}

fn pool(r: &RawPool) -> Result<PoolConfig> {
    Ok(PoolConfig {
        enabled: r.enabled,
        max_vms: non_negative("pool.max_vms", r.max_vms)?,
        max_users_per_vm: non_negative("pool.max_users_per_vm", r.max_users_per_vm)?,
        image: r.image.clone(),
        memory_mb: positive("pool.memory_mb", r.memory_mb)?,
        vcpus: positive("pool.vcpus", r.vcpus)?,
        overflow: one_of("pool.overflow", &r.overflow, Overflow::parse, Overflow::ACCEPTED)?,
    })
}

#[cfg(test)]
mod tests {
    use super::check_origin;

    #[test]
    fn origins() {
        for ok in ["*", "", " ", "http://localhost", "https://a.example:8443", "http://[::1]:3000", "HTTPS://A.EXAMPLE"]
        {
            assert_eq!(check_origin(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a.example",
            "ftp://a.example",
            "https://a.example/",
            "https://a.example/app",
            "https://a.example?x=1",
            "https://a.example#f",
            "https://user:pw@a.example",
            "https://",
            "https://a.example:",
            "https://a.example:99999",
            "https://a.example:80x",
            "http://[::1",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
