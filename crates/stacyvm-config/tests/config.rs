//! Integration tests for stacyvm-config: defaults, precedence, environment parsing, validation,
//! file lookup, secret files, YAML errors and the reference documentation.

#[path = "support/spec_table.rs"]
mod spec_table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stacyvm_config::*;
use stacyvm_types::duration::GoDuration;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn from_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    from_sources(None, &env(pairs))
}

fn from_yaml(text: &str) -> Result<Config, ConfigError> {
    from_sources(Some(text), &[])
}

/// Asserts `result` is an `Invalid` error for `key` and returns its message.
#[track_caller]
fn expect_invalid(result: Result<Config, ConfigError>, key: &str) -> String {
    match result {
        Err(err @ ConfigError::Invalid { .. }) => {
            assert_eq!(err.key(), Some(key), "wrong key in: {err}");
            let shown = err.to_string();
            assert!(shown.starts_with(&format!("config key {key}: ")), "display does not name the key: {shown}");
            shown
        }
        Err(other) => panic!("expected an invalid-key error for {key}, got: {other}"),
        Ok(_) => panic!("expected an invalid-key error for {key}, got a config"),
    }
}

const SECS: fn(u64) -> Duration = Duration::from_secs;

// ---------------------------------------------------------------------------------------------
// Defaults

#[test]
fn every_key_default_matches_the_spec() {
    let expected: BTreeMap<&str, &str> =
        spec_table::SPEC_DEFAULTS.iter().chain(spec_table::ADDITION_DEFAULTS).copied().collect();
    assert_eq!(expected.len(), spec_table::SPEC_DEFAULTS.len() + spec_table::ADDITION_DEFAULTS.len());
    let reference = key_reference();
    let actual: BTreeMap<&str, &str> = reference.iter().map(|k| (k.path.as_str(), k.default.as_str())).collect();
    for (key, default) in &expected {
        assert_eq!(actual.get(key), Some(default), "default of {key}");
    }
    let extra: Vec<&&str> = actual.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "keys not in the spec or the additions: {extra:?}");
    assert_eq!(reference.len(), 142);
}

#[test]
fn typed_defaults() {
    let c = Config::default();
    assert_eq!(c.server.host, "0.0.0.0");
    assert_eq!(c.server.port, 7423);
    assert_eq!(c.server.preview_domain, "localhost");
    assert_eq!(c.server.cors_allowed_origins, ["*"]);
    assert_eq!(c.server.max_request_body_bytes, 16 * 1024 * 1024);
    assert_eq!(c.server.max_upload_bytes, 10 * 1024 * 1024 * 1024);

    assert_eq!(c.worker.id, "");
    assert_eq!(c.worker.control_plane_url, "http://localhost:7423");
    assert_eq!(c.worker.listen_addr, "");
    assert_eq!(c.worker.heartbeat_interval, SECS(30));
    assert_eq!(c.worker.shutdown_timeout, SECS(10));
    assert!(!c.worker.rpc_tls.enabled);
    assert_eq!(c.worker.rpc_tls.ca_file, None);
    assert!(!c.worker.rpc_tls.insecure_skip_verify);
    assert_eq!(c.worker_preview_domain(), "localhost");

    assert_eq!(c.providers.default, "auto");
    assert!(!c.providers.mock.enabled);
    assert_eq!(c.providers.mock.root_dir, std::env::temp_dir().join("stacyvm-mock"));
    assert!(c.providers.firecracker.enabled);
    assert_eq!(c.providers.firecracker.agent_path, PathBuf::from("./bin/stacyvm-agent"));
    assert_eq!(c.providers.firecracker.default_rootfs, None);
    let d = &c.providers.docker;
    assert!(d.enabled);
    assert_eq!(d.runtime, "runc");
    assert_eq!(d.network_mode, "bridge");
    assert_eq!(d.seccomp_profile, "default");
    assert_eq!((d.memory.as_str(), d.cpus.as_str()), ("512m", "1"));
    assert_eq!(d.pids_limit, 256);
    assert_eq!(d.dropped_caps, ["ALL"]);
    assert!(d.added_caps.is_empty() && d.tmpfs.is_empty());
    assert!(d.pool_security.workspace_permissions && !d.pool_security.hidepid);
    assert_eq!(c.providers.e2b.base_url, "https://api.e2b.dev");
    assert_eq!(c.providers.custom.name, "custom");
    assert_eq!(c.providers.custom.timeout, SECS(60));
    let p = &c.providers.proot;
    assert_eq!(p.default_timeout, SECS(60));
    assert_eq!((p.max_sandboxes, p.max_memory_mb, p.max_disk_mb), (10, 512, 1024));
    assert_eq!(p.languages, ["python3", "node", "bash"]);
    assert!(c.providers.oci.enabled);
    assert_eq!(c.providers.oci.runtime, "crun");
    assert_eq!(c.providers.oci.runtime_path, None);
    assert_eq!(c.providers.oci.images_dir, std::path::Path::new("/var/lib/stacyvm/oci/images"));
    assert_eq!((c.providers.oci.agent_path.clone(), c.providers.oci.pids_limit), (None, 256));

    let d = &c.defaults;
    assert_eq!(d.ttl, SECS(30 * 60));
    assert_eq!(d.image, "alpine:latest");
    assert_eq!((d.memory_mb, d.vcpus, d.disk_size_mb), (1024, 1, 1024));
    assert_eq!(d.max_ttl, SECS(24 * 3600));
    assert_eq!(d.default_exec_timeout, Duration::ZERO);
    assert_eq!(d.max_exec_timeout, SECS(600));
    assert_eq!((d.max_sandboxes, d.max_sandboxes_per_owner), (0, 0));
    assert_eq!(d.spawn_overflow, Overflow::Reject);
    assert_eq!(d.spawn_queue_timeout, SECS(30));
    assert_eq!(d.max_spawn_queue, 100);
    assert_eq!(d.max_exec_output_bytes, 16 * 1024 * 1024);
    assert_eq!(d.reaper_interval, SECS(30));

    let a = &c.auth;
    assert!(!a.enabled && a.admin_fallback_enabled && !a.allow_unauthenticated);
    assert_eq!(a.admin_audit_retention, Duration::ZERO);
    assert_eq!(a.oidc_groups_claim, "groups");
    assert_eq!(a.oidc_tenant_claim, "tenant_id");
    assert_eq!(a.worker_token_file, None);
    assert!(a.worker_tokens.is_empty() && a.tenant_api_keys.is_empty());

    let r = &c.rate_limit;
    assert!(!r.enabled);
    assert_eq!((r.requests_per_minute, r.burst), (120, 60));
    assert_eq!(r.key_by, KeyBy::Owner);
    assert_eq!(r.bucket_ttl, SECS(15 * 60));
    assert_eq!(r.cleanup_interval, SECS(60));

    assert_eq!(c.database.driver, DbDriver::Sqlite);
    assert_eq!(c.database.path, PathBuf::from("stacyvm.db"));
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.pool.overflow, Overflow::Reject);
    assert_eq!((c.pool.max_vms, c.pool.max_users_per_vm), (10, 5));
    assert_eq!((c.pool.memory_mb, c.pool.vcpus), (2048, 2));
    assert_eq!(c.retention.destroyed_sandboxes, SECS(168 * 3600));
    assert_eq!(c.retention.exec_logs, SECS(168 * 3600));
    assert_eq!(c.raw, RawConfig::default());
}

#[test]
fn no_sources_and_empty_file_give_defaults() {
    let defaults = Config::default();
    assert_eq!(from_sources(None, &[]).unwrap(), defaults);
    assert_eq!(from_yaml("").unwrap(), defaults);
    assert_eq!(from_yaml("# only a comment\n").unwrap(), defaults);
    assert_eq!(from_yaml("server:\n").unwrap(), defaults);
}

// ---------------------------------------------------------------------------------------------
// Precedence and the environment

#[test]
fn env_beats_file_beats_default() {
    let yaml = "server:\n  port: 8000\n  host: 127.0.0.1\ndefaults:\n  ttl: 5m\n";
    let c = from_sources(Some(yaml), &env(&[("STACYVM_SERVER_PORT", "9000")])).unwrap();
    assert_eq!(c.server.port, 9000, "env wins over file");
    assert_eq!(c.server.host, "127.0.0.1", "file wins over default");
    assert_eq!(c.defaults.ttl, SECS(300));
    assert_eq!(c.server.preview_domain, "localhost", "default stays");
    assert_eq!(c.raw.server.port, 9000);
}

#[test]
fn env_names_follow_the_mapping_rule() {
    let names: BTreeMap<String, String> = env_var_names().into_iter().collect();
    for (key, var) in [
        ("server.port", "STACYVM_SERVER_PORT"),
        ("providers.mock.enabled", "STACYVM_PROVIDERS_MOCK_ENABLED"),
        ("defaults.max_sandboxes_per_owner", "STACYVM_DEFAULTS_MAX_SANDBOXES_PER_OWNER"),
        ("worker.rpc_tls.ca_file", "STACYVM_WORKER_RPC_TLS_CA_FILE"),
        ("server.cors_allowed_origins", "STACYVM_SERVER_CORS_ALLOWED_ORIGINS"),
        ("auth.api_key", "STACYVM_AUTH_API_KEY"),
    ] {
        assert_eq!(names.get(key).map(String::as_str), Some(var), "{key}");
    }
    assert_eq!(names.len(), 142);
    assert!(!names.values().any(|v| v == "STACYVM_API_KEY"));
}

#[test]
fn env_value_types() {
    let c = from_env(&[
        ("STACYVM_PROVIDERS_MOCK_ENABLED", "TRUE"),
        ("STACYVM_PROVIDERS_DOCKER_ENABLED", "0"),
        ("STACYVM_PROVIDERS_FIRECRACKER_ENABLED", "f"),
        ("STACYVM_RATE_LIMIT_ENABLED", "T"),
        ("STACYVM_AUTH_ADMIN_FALLBACK_ENABLED", "False"),
        ("STACYVM_SERVER_PORT", "18080"),
        ("STACYVM_DEFAULTS_MEMORY_MB", "256"),
        ("STACYVM_PROVIDERS_DEFAULT", "mock"),
        ("STACYVM_DATABASE_PATH", "/tmp/x.db"),
        ("STACYVM_DEFAULTS_TTL", "1h30m"),
        ("STACYVM_SERVER_CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example"),
        ("STACYVM_PROVIDERS_DOCKER_TMPFS", r#"{"/tmp":"rw,size=64m"}"#),
        ("STACYVM_AUTH_WORKER_TOKENS", r#"{"w1":"t1","w2":"t2"}"#),
        ("STACYVM_AUTH_TENANT_API_KEYS", r#"{"acme":"k-acme"}"#),
        ("STACYVM_PROVIDERS_DOCKER_ADDED_CAPS", r#"["NET_ADMIN"]"#),
        ("STACYVM_PROVIDERS_DOCKER_DROPPED_CAPS", "[]"),
    ])
    .unwrap();
    assert!(c.providers.mock.enabled);
    assert!(!c.providers.docker.enabled);
    assert!(!c.providers.firecracker.enabled);
    assert!(c.rate_limit.enabled);
    assert!(!c.auth.admin_fallback_enabled);
    assert_eq!(c.server.port, 18080);
    assert_eq!(c.defaults.memory_mb, 256);
    assert_eq!(c.providers.default, "mock");
    assert_eq!(c.database.path, PathBuf::from("/tmp/x.db"));
    assert_eq!(c.defaults.ttl, SECS(5400));
    assert_eq!(c.server.cors_allowed_origins, ["https://a.example", "https://b.example"]);
    assert_eq!(c.providers.docker.tmpfs["/tmp"], "rw,size=64m");
    assert_eq!(c.auth.worker_tokens.len(), 2);
    assert_eq!(c.auth.worker_tokens["w2"], "t2");
    assert_eq!(c.auth.tenant_api_keys["acme"], "k-acme");
    assert_eq!(c.providers.docker.added_caps, ["NET_ADMIN"]);
    assert!(c.providers.docker.dropped_caps.is_empty());
}

#[test]
fn env_keys_with_underscores() {
    let c = from_env(&[
        ("STACYVM_DEFAULTS_MAX_SANDBOXES_PER_OWNER", "3"),
        ("STACYVM_DEFAULTS_MAX_SANDBOXES", "7"),
        ("STACYVM_WORKER_RPC_TLS_CA_FILE", "/etc/ca.pem"),
        ("STACYVM_WORKER_RPC_TLS_INSECURE_SKIP_VERIFY", "true"),
        ("STACYVM_PROVIDERS_DOCKER_POOL_SECURITY_PER_USER_UID", "1"),
        ("STACYVM_AUTH_WORKER_REVOKED_TOKEN_IDS", "a,b"),
        ("STACYVM_RATE_LIMIT_KEY_BY", "api_key"),
    ])
    .unwrap();
    assert_eq!(c.defaults.max_sandboxes_per_owner, 3);
    assert_eq!(c.defaults.max_sandboxes, 7);
    assert_eq!(c.worker.rpc_tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert!(c.worker.rpc_tls.insecure_skip_verify);
    assert!(c.providers.docker.pool_security.per_user_uid);
    assert_eq!(c.auth.worker_revoked_token_ids, ["a", "b"]);
    assert_eq!(c.rate_limit.key_by, KeyBy::ApiKey);
}

#[test]
fn non_key_and_empty_variables_are_ignored() {
    let c = from_env(&[
        ("STACYVM_API_KEY", "cli-key"),
        ("STACYVM_WORKER_BOOTSTRAP_ADMIN_KEY", "boot"),
        ("STACYVM_NOPE", "x"),
        ("STACYVM_SERVER", "x"),
        ("stacyvm_server_port", "1"),
        ("STACYVM_SERVER_PORT", ""),
        ("STACYVM_PROVIDERS_MOCK_ENABLED", ""),
    ])
    .unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.auth.api_key, "");

    let c = from_env(&[("STACYVM_AUTH_API_KEY", "server-key")]).unwrap();
    assert_eq!(c.auth.api_key, "server-key");
}

#[test]
fn last_env_occurrence_wins() {
    let c = from_env(&[("STACYVM_SERVER_PORT", "1000"), ("STACYVM_SERVER_PORT", "2000")]).unwrap();
    assert_eq!(c.server.port, 2000);
}

#[test]
fn bad_env_values_name_the_key_and_variable() {
    for (var, value, key) in [
        ("STACYVM_SERVER_PORT", "http", "server.port"),
        ("STACYVM_PROVIDERS_MOCK_ENABLED", "yes", "providers.mock.enabled"),
        ("STACYVM_PROVIDERS_DOCKER_TMPFS", "/tmp=rw", "providers.docker.tmpfs"),
        ("STACYVM_AUTH_WORKER_TOKENS", r#"{"w":{"x":1}}"#, "auth.worker_tokens"),
        ("STACYVM_SERVER_CORS_ALLOWED_ORIGINS", "[broken", "server.cors_allowed_origins"),
    ] {
        let msg = expect_invalid(from_env(&[(var, value)]), key);
        assert!(msg.contains(var), "{msg}");
    }
}

#[test]
fn smoke_configuration_from_env_only() {
    let c = from_env(&[
        ("STACYVM_SERVER_PORT", "17423"),
        ("STACYVM_PROVIDERS_DEFAULT", "mock"),
        ("STACYVM_PROVIDERS_MOCK_ENABLED", "true"),
        ("STACYVM_PROVIDERS_DOCKER_ENABLED", "false"),
        ("STACYVM_PROVIDERS_FIRECRACKER_ENABLED", "false"),
        ("STACYVM_AUTH_API_KEY", "k"),
        ("STACYVM_DATABASE_PATH", "/tmp/smoke.db"),
    ])
    .unwrap();
    assert_eq!(c.server.port, 17423);
    assert!(c.providers.mock.enabled && !c.providers.docker.enabled);
}

// ---------------------------------------------------------------------------------------------
// The file

#[test]
fn file_values_are_coerced_like_the_reference() {
    let yaml = r#"
Server:
  PORT: "8123"
providers:
  docker:
    cpus: 1
    memory: 1g
    pids_limit: 0
    tmpfs:
      /tmp: rw,size=64m
    dropped_caps: ALL, NET_RAW
  mock:
    enabled: "t"
defaults:
  max_ttl: 0
  memory_mb: 512.0
  image:
auth:
  worker_tokens: {w1: 12345}
database:
  path: /var/lib/stacyvm/stacyvm.db
"#;
    let c = from_yaml(yaml).unwrap();
    assert_eq!(c.server.port, 8123);
    assert_eq!(c.providers.docker.cpus, "1");
    assert_eq!(c.providers.docker.memory, "1g");
    assert_eq!(c.providers.docker.pids_limit, 256, "≤0 → 256");
    assert_eq!(c.raw.providers.docker.pids_limit, 0);
    assert_eq!(c.providers.docker.tmpfs["/tmp"], "rw,size=64m");
    assert_eq!(c.providers.docker.dropped_caps, ["ALL", "NET_RAW"]);
    assert!(c.providers.mock.enabled);
    assert_eq!(c.defaults.max_ttl, Duration::ZERO);
    assert_eq!(c.defaults.memory_mb, 512);
    assert_eq!(c.defaults.image, "alpine:latest", "null keeps the default");
    assert_eq!(c.auth.worker_tokens["w1"], "12345");
    assert_eq!(c.database.path, PathBuf::from("/var/lib/stacyvm/stacyvm.db"));
}

#[test]
fn production_sample_values_are_accepted() {
    let yaml = "providers:\n  docker:\n    user: \"1000:1000\"\nauth:\n  admin_audit_retention: \"2160h\"\n";
    let c = from_yaml(yaml).unwrap();
    assert_eq!(c.providers.docker.user, "1000:1000");
    assert_eq!(c.auth.admin_audit_retention, SECS(2160 * 3600));
}

#[test]
fn unknown_file_keys_are_ignored_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "server:\n  port: 8001\n  portt: 1\nextra:\n  a: 1\nproviders:\n  podman:\n    enabled: true\n",
    )
    .unwrap();
    let loaded = load_from(Some(&path), &[], &[]).unwrap();
    assert_eq!(loaded.config.server.port, 8001);
    assert_eq!(loaded.source.as_deref(), Some(path.as_path()));
    assert_eq!(loaded.unknown_keys, ["server.portt", "extra", "providers.podman"]);
}

#[test]
fn file_type_errors_name_the_key() {
    expect_invalid(from_yaml("server:\n  port: [1]\n"), "server.port");
    expect_invalid(from_yaml("server:\n  port: abc\n"), "server.port");
    expect_invalid(from_yaml("server: 5\n"), "server");
    expect_invalid(from_yaml("providers:\n  mock:\n    enabled: maybe\n"), "providers.mock.enabled");
    expect_invalid(from_yaml("providers:\n  docker:\n    tmpfs: [a]\n"), "providers.docker.tmpfs");
    expect_invalid(from_yaml("server:\n  cors_allowed_origins: [{a: 1}]\n"), "server.cors_allowed_origins");
}

#[test]
fn yaml_syntax_errors_name_the_file_and_line() {
    let text = "server:\n  port: 7423\n  host: [oops\nlogging:\n  level: info\n";
    let err = from_yaml(text).unwrap_err();
    let ConfigError::Yaml { line, .. } = &err else {
        panic!("expected a YAML error, got {err}");
    };
    assert!(line.is_some_and(|l| l >= 3), "line {line:?}");
    assert!(err.to_string().contains("line"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stacyvm.yaml");
    std::fs::write(&path, "server:\n\tport: 1\n").unwrap();
    let err = load_from(Some(&path), &[], &[]).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains(":2:") && shown.contains("line 2"), "{shown}");

    let err = from_yaml("just a string\n").unwrap_err();
    assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Every key holding a Go duration (⏱ in the spec, plus additions).
const DURATION_KEYS: &[&str] = &[
    "worker.heartbeat_interval",
    "worker.shutdown_timeout",
    "providers.custom.timeout",
    "providers.proot.default_timeout",
    "defaults.ttl",
    "defaults.max_ttl",
    "defaults.default_exec_timeout",
    "defaults.max_exec_timeout",
    "defaults.spawn_queue_timeout",
    "defaults.reaper_interval",
    "auth.admin_audit_retention",
    "rate_limit.bucket_ttl",
    "rate_limit.cleanup_interval",
    "retention.destroyed_sandboxes",
    "retention.exec_logs",
];

fn var(key: &str) -> String {
    format!("STACYVM_{}", key.to_ascii_uppercase().replace('.', "_"))
}

#[test]
fn duration_key_list_is_complete() {
    let found: Vec<String> = key_reference()
        .into_iter()
        // `512m` is a Docker memory size that happens to parse as 512 minutes.
        .filter(|k| k.path != "providers.docker.memory")
        .filter(|k| {
            serde_json::from_str::<String>(&k.default).is_ok_and(|s| !s.is_empty() && GoDuration::parse(&s).is_ok())
        })
        .map(|k| k.path)
        .collect();
    assert_eq!(found, DURATION_KEYS);
}

#[test]
fn durations_must_parse_and_not_be_negative() {
    for key in DURATION_KEYS {
        let var = var(key);
        for bad in ["abc", "-1s", "1d", "60", "5 m"] {
            let msg = expect_invalid(from_env(&[(&var, bad)]), key);
            assert!(msg.contains(bad), "{msg}");
        }
        let section_and_leaf = key.split_once('.').unwrap();
        let (section, leaf) = section_and_leaf;
        let yaml = match leaf.split_once('.') {
            Some((sub, leaf)) => format!("{section}:\n  {sub}:\n    {leaf}: \"\"\n"),
            None => format!("{section}:\n  {leaf}: \"\"\n"),
        };
        expect_invalid(from_yaml(&yaml), key);
    }
    let c = from_env(&[
        ("STACYVM_DEFAULTS_TTL", "1.5h"),
        ("STACYVM_DEFAULTS_MAX_TTL", "0"),
        ("STACYVM_DEFAULTS_DEFAULT_EXEC_TIMEOUT", "250ms"),
        ("STACYVM_WORKER_SHUTDOWN_TIMEOUT", "10\u{b5}s"),
    ])
    .unwrap();
    assert_eq!(c.defaults.ttl, SECS(5400));
    assert_eq!(c.defaults.max_ttl, Duration::ZERO);
    assert_eq!(c.defaults.default_exec_timeout, Duration::from_millis(250));
    assert_eq!(c.worker.shutdown_timeout, Duration::from_micros(10));
}

#[test]
fn invalid_duration_error_text() {
    let err = from_env(&[("STACYVM_DEFAULTS_TTL", "abc")]).unwrap_err();
    assert!(err.to_string().starts_with("config key defaults.ttl: invalid duration \"abc\""), "{err}");
}

#[test]
fn loop_intervals_must_be_positive() {
    for key in ["worker.heartbeat_interval", "rate_limit.cleanup_interval", "defaults.reaper_interval"] {
        expect_invalid(from_env(&[(&var(key), "0s")]), key);
    }
}

#[test]
fn counts_must_not_be_negative() {
    for key in [
        "defaults.max_sandboxes",
        "defaults.max_sandboxes_per_owner",
        "defaults.max_spawn_queue",
        "rate_limit.requests_per_minute",
        "rate_limit.burst",
        "defaults.disk_size_mb",
        "defaults.pool_size",
        "providers.proot.max_sandboxes",
        "providers.proot.max_memory_mb",
        "providers.proot.max_disk_mb",
        "pool.max_vms",
        "pool.max_users_per_vm",
    ] {
        let msg = expect_invalid(from_env(&[(&var(key), "-1")]), key);
        assert!(msg.contains("-1"), "{msg}");
        from_env(&[(&var(key), "0")]).unwrap_or_else(|e| panic!("{key}=0: {e}"));
    }
    expect_invalid(from_env(&[("STACYVM_DEFAULTS_MAX_SANDBOXES", "99999999999")]), "defaults.max_sandboxes");
}

#[test]
fn sizes_must_be_positive() {
    for key in [
        "defaults.memory_mb",
        "defaults.vcpus",
        "pool.memory_mb",
        "pool.vcpus",
        "server.max_request_body_bytes",
        "server.max_upload_bytes",
        "defaults.max_exec_output_bytes",
    ] {
        expect_invalid(from_env(&[(&var(key), "0")]), key);
        expect_invalid(from_env(&[(&var(key), "-2")]), key);
    }
}

#[test]
fn port_range() {
    for bad in ["0", "65536", "-1"] {
        expect_invalid(from_env(&[("STACYVM_SERVER_PORT", bad)]), "server.port");
    }
    for good in [("1", 1), ("65535", 65535)] {
        let c = from_env(&[("STACYVM_SERVER_PORT", good.0)]).unwrap();
        assert_eq!(c.server.port, good.1);
    }
}

#[test]
fn enumerations() {
    for (key, bad) in [
        ("database.driver", "mysql"),
        ("defaults.spawn_overflow", "drop"),
        ("pool.overflow", "wait"),
        ("rate_limit.key_by", "user"),
        ("logging.level", "verbose"),
        ("logging.format", "xml"),
    ] {
        let msg = expect_invalid(from_env(&[(&var(key), bad)]), key);
        assert!(msg.contains(bad), "{msg}");
    }

    let blank = "defaults:\n  spawn_overflow: \"\"\npool:\n  overflow: \"\"\nrate_limit:\n  key_by: \"\"\ndatabase:\n  driver: \"\"\nlogging:\n  level: \"\"\n  format: \"\"\n";
    let c = from_yaml(blank).unwrap();
    assert_eq!(c.defaults.spawn_overflow, Overflow::Reject);
    assert_eq!(c.pool.overflow, Overflow::Reject);
    assert_eq!(c.rate_limit.key_by, KeyBy::Owner);
    assert_eq!(c.database.driver, DbDriver::Sqlite);
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.logging.format, LogFormat::Json);

    let c = from_env(&[
        ("STACYVM_DEFAULTS_SPAWN_OVERFLOW", "queue"),
        ("STACYVM_POOL_OVERFLOW", "Queue"),
        ("STACYVM_RATE_LIMIT_KEY_BY", "ip"),
        ("STACYVM_DATABASE_DRIVER", "sqlite3"),
        ("STACYVM_LOGGING_LEVEL", "DEBUG"),
        ("STACYVM_LOGGING_FORMAT", "pretty"),
    ])
    .unwrap();
    assert_eq!(c.defaults.spawn_overflow, Overflow::Queue);
    assert_eq!(c.pool.overflow, Overflow::Queue);
    assert_eq!(c.rate_limit.key_by, KeyBy::Ip);
    assert_eq!(c.database.driver, DbDriver::Sqlite);
    assert_eq!(c.logging.level, LogLevel::Debug);
    assert_eq!(c.logging.format, LogFormat::Pretty);
    assert_eq!(c.logging.level.to_string(), "debug");
    assert_eq!(KeyBy::ApiKey.as_str(), "api_key");
}

#[test]
fn database_requirements() {
    expect_invalid(from_yaml("database:\n  path: \"\"\n"), "database.path");
    expect_invalid(from_yaml("database:\n  driver: sqlite3\n  path: \" \"\n"), "database.path");
    for driver in ["postgres", "postgresql"] {
        let msg = expect_invalid(from_env(&[("STACYVM_DATABASE_DRIVER", driver)]), "database.dsn");
        assert!(msg.contains("required"), "{msg}");
        let c = from_env(&[("STACYVM_DATABASE_DRIVER", driver), ("STACYVM_DATABASE_DSN", "postgres://u@localhost/db")])
            .unwrap();
        assert_eq!(c.database.driver, DbDriver::Postgres);
        assert_eq!(c.database.dsn, "postgres://u@localhost/db");
    }
    let c = from_yaml("database:\n  driver: postgres\n  dsn: postgres://x/y\n  path: \"\"\n").unwrap();
    assert_eq!(c.database.driver, DbDriver::Postgres);
}

#[test]
fn cors_origins() {
    for bad in
        ["https://a.example/path", "https://a.example?q=1", "https://a.example#top", "a.example", "ftp://a.example"]
    {
        let msg = expect_invalid(
            from_env(&[("STACYVM_SERVER_CORS_ALLOWED_ORIGINS", &format!("*,{bad}"))]),
            "server.cors_allowed_origins",
        );
        assert!(msg.contains(bad) && msg.contains("entry 1"), "{msg}");
    }
    let c =
        from_yaml("server:\n  cors_allowed_origins: [\"*\", \"\", \"https://a.example:8443\", \"http://localhost\"]\n")
            .unwrap();
    assert_eq!(c.server.cors_allowed_origins.len(), 4);
    let c = from_yaml("server:\n  cors_allowed_origins: []\n").unwrap();
    assert!(c.server.cors_allowed_origins.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secret files

const SECRETS: &[&str] = &["auth.worker_token", "auth.worker_signing_key", "auth.oidc_public_key"];

fn secret_value<'a>(c: &'a Config, key: &str) -> (&'a str, Option<&'a Path>) {
    let a = &c.auth;
    match key {
        "auth.worker_token" => (&a.worker_token, a.worker_token_file.as_deref()),
        "auth.worker_signing_key" => (&a.worker_signing_key, a.worker_signing_key_file.as_deref()),
        "auth.oidc_public_key" => (&a.oidc_public_key, a.oidc_public_key_file.as_deref()),
        _ => unreachable!(),
    }
}

#[test]
fn secret_files_are_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    for key in SECRETS {
        let path = dir.path().join(key.replace('.', "-"));
        std::fs::write(&path, format!("  secret-for-{key}\n\n")).unwrap();
        let file_var = format!("{}_FILE", var(key));
        let c = from_env(&[(&file_var, path.to_str().unwrap())]).unwrap();
        let (value, file) = secret_value(&c, key);
        assert_eq!(value, format!("secret-for-{key}"));
        assert_eq!(file, Some(path.as_path()));
        if *key == "auth.worker_token" {
            assert_eq!(c.raw.auth.worker_token, "", "the raw tree keeps the original strings");
            assert_eq!(c.raw.auth.worker_token_file, path.to_str().unwrap());
        }

        let c = from_env(&[(&var(key), "inline")]).unwrap();
        assert_eq!(secret_value(&c, key), ("inline", None));
    }
}

#[test]
fn secret_value_and_file_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, "x").unwrap();
    for key in SECRETS {
        let file_key = format!("{key}_file");
        let msg =
            expect_invalid(from_env(&[(&var(key), "inline"), (&var(&file_key), path.to_str().unwrap())]), &file_key);
        assert!(msg.contains(&format!("{key} and {file_key} cannot both be set")), "{msg}");
    }
}

#[test]
fn secret_file_missing_or_empty() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n\t\n").unwrap();
    let missing = dir.path().join("missing");
    for key in SECRETS {
        let file_key = format!("{key}_file");
        let msg = expect_invalid(from_env(&[(&var(&file_key), missing.to_str().unwrap())]), &file_key);
        assert!(msg.contains("missing"), "{msg}");
        let msg = expect_invalid(from_env(&[(&var(&file_key), empty.to_str().unwrap())]), &file_key);
        assert!(msg.contains("empty"), "{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// File lookup

#[test]
fn file_search_reads_only_the_first_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("stacyvm.yaml");
    let home = dir.path().join("home-config.yaml");
    let search = [local.clone(), home.clone()];

    let loaded = load_from(None, &search, &[]).unwrap();
    assert_eq!(loaded.source, None, "no file is fine");
    assert_eq!(loaded.config, Config::default());

    std::fs::write(&home, "server:\n  port: 2\n  host: home\n").unwrap();
    let loaded = load_from(None, &search, &[]).unwrap();
    assert_eq!(loaded.source.as_deref(), Some(home.as_path()));
    assert_eq!(loaded.config.server.port, 2);

    std::fs::write(&local, "server:\n  port: 1\n").unwrap();
    let loaded = load_from(None, &search, &[]).unwrap();
    assert_eq!(loaded.source.as_deref(), Some(local.as_path()));
    assert_eq!(loaded.config.server.port, 1);
    assert_eq!(loaded.config.server.host, "0.0.0.0", "files are not merged");

    let loaded = load_from(None, &search, &env(&[("STACYVM_SERVER_PORT", "3")])).unwrap();
    assert_eq!(loaded.config.server.port, 3);
}

#[test]
fn explicit_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let other = dir.path().join("stacyvm.yaml");
    std::fs::write(&other, "server:\n  port: 1\n").unwrap();
    let err = load_from(Some(&missing), std::slice::from_ref(&other), &[]).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope.yaml"), "{err}");

    let explicit = dir.path().join("explicit.yaml");
    std::fs::write(&explicit, "server:\n  port: 5\n").unwrap();
    let loaded = load_from(Some(&explicit), &[other], &[]).unwrap();
    assert_eq!(loaded.config.server.port, 5);
}

#[test]
fn unreadable_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_from(Some(dir.path()), &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn search_paths_order() {
    let paths = search_paths();
    assert_eq!(paths[0], PathBuf::from("stacyvm.yaml"));
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        assert_eq!(paths[1], PathBuf::from(home).join(".stacyvm/config.yaml"));
    }
}

#[test]
fn raw_stage_keeps_values_validation_rejects() {
    let raw = raw_from_sources(Some("defaults:\n  ttl: nonsense\n"), &[]).unwrap();
    assert_eq!(raw.defaults.ttl, "nonsense");
    expect_invalid(Config::from_raw(raw), "defaults.ttl");
}

// ---------------------------------------------------------------------------------------------
// Documentation

fn docs_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn docs_mention_every_env_var() {
    let docs = docs_text();
    let missing: Vec<String> = env_var_names()
        .into_iter()
        .filter(|(_, var)| !docs.contains(&format!("`{var}`")))
        .map(|(_, var)| var)
        .collect();
    assert!(missing.is_empty(), "docs/configuration.md lacks: {missing:?}");
}

/// The reference table (between the `keys:start`/`keys:end` markers) lists exactly the keys
/// of the tree, with their defaults and variables.
#[test]
fn docs_table_matches_the_code() {
    let docs = docs_text();
    let table = docs
        .split("<!-- keys:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- keys:end -->").next())
        .expect("keys:start / keys:end markers");
    let mut rows = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let unquote = |c: &str| c.trim_matches('`').to_string();
        rows.insert(unquote(cells[1]), (unquote(cells[2]), unquote(cells[3])));
    }
    let mut expected = BTreeMap::new();
    for k in key_reference() {
        expected.insert(k.path, (k.default, k.env));
    }
    if rows != expected {
        let generated: Vec<String> = key_reference()
            .into_iter()
            .map(|k| format!("| `{}` | `{}` | `{}` | |", k.path, k.default, k.env))
            .collect();
        panic!("docs/configuration.md table is out of date; rows from the code:\n{}", generated.join("\n"));
    }
}
