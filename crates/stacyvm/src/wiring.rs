//! Turns the validated configuration into the pieces the server is built from: manager
//! settings, the provider registry (resolving `providers.default: auto`) and HTTP settings.

use std::sync::Arc;

use anyhow::{bail, Context};
use stacyvm_config::Config;
use stacyvm_core::Settings;
use stacyvm_provider::mock::MockProvider;
use stacyvm_provider::ProviderRegistry;
use stacyvm_server::{AuthSettings, HttpSettings};

/// Providers this build can run.
pub const BUILT_IN_PROVIDERS: &[&str] = &["mock"];

/// Manager settings from config.
pub fn settings(config: &Config) -> Settings {
    let d = &config.defaults;
    Settings {
        default_image: d.image.clone(),
        default_memory_mb: u32::try_from(d.memory_mb).unwrap_or(u32::MAX),
        default_vcpus: d.vcpus,
        default_ttl: d.ttl,
        max_ttl: d.max_ttl,
        default_exec_timeout: d.default_exec_timeout,
        max_exec_timeout: d.max_exec_timeout,
        max_sandboxes: d.max_sandboxes,
        max_sandboxes_per_owner: d.max_sandboxes_per_owner,
        max_exec_output_bytes: usize::try_from(d.max_exec_output_bytes).unwrap_or(usize::MAX),
        // The SDK builds preview URLs from this value: never leave it empty.
        preview_domain: Some(config.server.preview_domain.trim())
            .filter(|d| !d.is_empty())
            .unwrap_or("localhost")
            .to_string(),
        worker_id: "local".into(),
        reaper_interval: d.reaper_interval,
        destroyed_retention: config.retention.destroyed_sandboxes,
        exec_log_retention: config.retention.exec_logs,
        ..Settings::default()
    }
}

/// HTTP settings from config.
pub fn http(config: &Config) -> HttpSettings {
    HttpSettings {
        max_body_bytes: usize::try_from(config.server.max_request_body_bytes).unwrap_or(usize::MAX),
        cors_allowed_origins: config.server.cors_allowed_origins.clone(),
        auth: AuthSettings {
            api_key: config.auth.api_key.clone(),
            admin_api_key: config.auth.admin_api_key.clone(),
            admin_fallback_enabled: config.auth.admin_fallback_enabled,
            allow_unauthenticated: config.auth.allow_unauthenticated,
        },
    }
}

/// The name `providers.default` resolves to.
///
/// `auto` picks the first isolating provider that is available, and never `mock`.
pub fn resolve_default(config: &Config) -> anyhow::Result<String> {
    let wanted = config.providers.default.trim();
    match wanted {
        "" | "auto" => bail!(
            "providers.default is `auto` but no isolating provider is available in this build yet; \
             for development set STACYVM_PROVIDERS_DEFAULT=mock (no isolation: commands run on this host)"
        ),
        name if BUILT_IN_PROVIDERS.contains(&name) => Ok(name.to_string()),
        name => bail!(
            "provider {name:?} (providers.default) is not available in this build; available: {}",
            BUILT_IN_PROVIDERS.join(", ")
        ),
    }
}

/// Registers every enabled provider (the default one is always enabled).
pub fn registry(config: &Config) -> anyhow::Result<ProviderRegistry> {
    let default = resolve_default(config)?;
    let mut registry = ProviderRegistry::new(default.clone());
    if config.providers.mock.enabled || default == "mock" {
        let root = &config.providers.mock.root_dir;
        let mock = MockProvider::new(root).with_context(|| format!("mock provider root {}", root.display()))?;
        registry.register(Arc::new(mock));
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        stacyvm_config::from_sources(None, &env).unwrap()
    }

    #[test]
    fn auto_never_picks_mock() {
        let err = resolve_default(&config(&[])).unwrap_err().to_string();
        assert!(err.contains("STACYVM_PROVIDERS_DEFAULT=mock"), "{err}");
        let err = resolve_default(&config(&[("STACYVM_PROVIDERS_MOCK_ENABLED", "true")])).unwrap_err();
        assert!(err.to_string().contains("auto"));
    }

    #[test]
    fn explicit_mock_and_unknown_providers() {
        assert_eq!(resolve_default(&config(&[("STACYVM_PROVIDERS_DEFAULT", "mock")])).unwrap(), "mock");
        let err = resolve_default(&config(&[("STACYVM_PROVIDERS_DEFAULT", "firecracker")])).unwrap_err();
        assert!(err.to_string().contains("available: mock"));
    }

    #[test]
    fn settings_follow_config() {
        let c = config(&[("STACYVM_DEFAULTS_MAX_TTL", "2h"), ("STACYVM_DEFAULTS_MEMORY_MB", "256")]);
        let s = settings(&c);
        assert_eq!(s.max_ttl, std::time::Duration::from_secs(7200));
        assert_eq!(s.default_memory_mb, 256);
        assert_eq!(s.default_image, "alpine:latest");
        let blank = config(&[("STACYVM_SERVER_PREVIEW_DOMAIN", " ")]);
        assert_eq!(settings(&blank).preview_domain, "localhost");
    }
}
