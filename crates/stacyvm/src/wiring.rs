//! Turns the validated configuration into the pieces the server is built from: manager
//! settings, the provider registry (resolving `providers.default: auto`) and HTTP settings.

use std::sync::Arc;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use stacyvm_config::{Config, OciNetworkMode};
use stacyvm_core::Settings;
use stacyvm_image::{ImageStore, RegistrySettings};
use stacyvm_oci::RuntimeKind;
use stacyvm_provider::mock::MockProvider;
use stacyvm_provider::ProviderRegistry;
use stacyvm_provider_oci::network::{BridgeSettings, NetworkMode, Subnet};
use stacyvm_provider_oci::{OciProvider, OciSettings, PullPolicy};
use stacyvm_server::{AuthSettings, HttpSettings};

/// Providers this build can run.
pub const BUILT_IN_PROVIDERS: &[&str] = &["mock", "oci"];

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
        max_upload_bytes: config.server.max_upload_bytes,
        cors_allowed_origins: config.server.cors_allowed_origins.clone(),
        auth: AuthSettings {
            api_key: config.auth.api_key.clone(),
            admin_api_key: config.auth.admin_api_key.clone(),
            admin_fallback_enabled: config.auth.admin_fallback_enabled,
            allow_unauthenticated: config.auth.allow_unauthenticated,
        },
        images: None,
        rate_limit: Some(config.rate_limit.clone()),
    }
}

/// The static agent for `oci` sandboxes: `providers.oci.agent_path`, else a statically linked
/// `stacyvm-agent` next to this binary, else the output of `scripts/build-agent.sh` when running
/// from the build tree.
pub fn agent_binary(config: &Config) -> Option<PathBuf> {
    if let Some(path) = &config.providers.oci.agent_path {
        return Some(path.clone());
    }
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    [exe_dir.join("stacyvm-agent"), exe_dir.join("../agent/x86_64-unknown-linux-gnu/release/stacyvm-agent")]
        .into_iter()
        .find(|p| is_static_executable(p))
}

/// True for an ELF file without a dynamic loader (no `PT_INTERP` path near its start).
fn is_static_executable(path: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let mut head = vec![0u8; 4096];
    let Ok(n) = std::io::Read::read(&mut file, &mut head) else { return false };
    let head = &head[..n];
    head.starts_with(b"\x7fELF") && !head.windows(10).any(|w| w == b"/lib64/ld-")
}

/// The image store at `providers.oci.images_dir`, with the registry settings of the config.
pub fn image_store(config: &Config) -> anyhow::Result<Arc<ImageStore>> {
    let o = &config.providers.oci;
    let settings = RegistrySettings {
        insecure: o.insecure_registries.clone(),
        auth_file: o.registry_auth_file.clone(),
        ..RegistrySettings::default()
    };
    let store = ImageStore::open(&o.images_dir, settings)
        .with_context(|| format!("image store {} (providers.oci.images_dir)", o.images_dir.display()))?;
    Ok(Arc::new(store))
}

fn oci_settings(config: &Config, images: Arc<ImageStore>) -> anyhow::Result<OciSettings> {
    let o = &config.providers.oci;
    let runtime = match o.runtime.as_str() {
        "runc" => RuntimeKind::Runc,
        "runsc" => RuntimeKind::Runsc,
        _ => RuntimeKind::Crun,
    };
    let agent_binary = agent_binary(config).context(
        "the static stacyvm-agent was not found: build it with scripts/build-agent.sh \
         or set providers.oci.agent_path",
    )?;
    Ok(OciSettings {
        runtime,
        runtime_path: o.runtime_path.clone(),
        data_dir: o.data_dir.clone(),
        images,
        pull_policy: if o.pull_if_missing { PullPolicy::IfMissing } else { PullPolicy::Never },
        agent_binary,
        pids_limit: i64::from(o.pids_limit),
        network: match o.network {
            OciNetworkMode::None => NetworkMode::None,
            OciNetworkMode::Bridge => {
                let (addr, prefix) = o.subnet;
                let subnet = Subnet::new(addr, prefix).map_err(|e| anyhow::anyhow!("providers.oci.subnet: {e}"))?;
                NetworkMode::Bridge(BridgeSettings::new(o.bridge_name.clone(), subnet))
            }
        },
        readonly_rootfs: o.readonly_rootfs,
    })
}

/// Why `oci` cannot run here, if it cannot (root, runtime binary, agent).
fn oci_unavailable(config: &Config) -> Option<String> {
    let o = &config.providers.oci;
    if !o.enabled {
        return Some("providers.oci.enabled is false".into());
    }
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the oci provider needs root".into());
    }
    let found = o.runtime_path.as_ref().map_or_else(|| stacyvm_oci::which(&o.runtime).is_some(), |p| p.exists());
    if !found {
        return Some(format!("{} is not installed (apt-get install {})", o.runtime, o.runtime));
    }
    agent_binary(config).is_none().then(|| "the static stacyvm-agent is missing (scripts/build-agent.sh)".into())
}

/// The name `providers.default` resolves to.
///
/// `auto` picks the first isolating provider that is available (`oci`), and never `mock`.
pub fn resolve_default(config: &Config) -> anyhow::Result<String> {
    let wanted = config.providers.default.trim();
    match wanted {
        "" | "auto" => match oci_unavailable(config) {
            None => Ok("oci".into()),
            Some(why) => bail!(
                "providers.default is `auto` but no isolating provider is available ({why}); \
                 install crun (`apt-get install crun`) and run as root, or for development set \
                 STACYVM_PROVIDERS_DEFAULT=mock (no isolation: commands run on this host)"
            ),
        },
        name if BUILT_IN_PROVIDERS.contains(&name) => Ok(name.to_string()),
        name => bail!(
            "provider {name:?} (providers.default) is not available in this build; available: {}",
            BUILT_IN_PROVIDERS.join(", ")
        ),
    }
}

/// Registers every enabled provider (the default one is always enabled). `images` is the
/// result of [`image_store`]: providers that need images fail with its error.
pub fn registry(config: &Config, images: &anyhow::Result<Arc<ImageStore>>) -> anyhow::Result<ProviderRegistry> {
    let default = resolve_default(config)?;
    let mut registry = ProviderRegistry::new(default.clone());
    if config.providers.mock.enabled || default == "mock" {
        let root = &config.providers.mock.root_dir;
        let mock = MockProvider::new(root).with_context(|| format!("mock provider root {}", root.display()))?;
        registry.register(Arc::new(mock));
    }
    if default == "oci" || (config.providers.oci.enabled && oci_unavailable(config).is_none()) {
        if let Some(why) = oci_unavailable(config) {
            bail!("the oci provider cannot run here: {why}");
        }
        if config.providers.oci.runtime == "crun" {
            // crun refuses hybrid cgroup hosts while hugetlb sits on the v2 mount (idempotent fix).
            let _ = stacyvm_oci::ensure_hugetlb_v1_mount();
        }
        if config.providers.oci.favor_dynamic_cgroups {
            use stacyvm_oci::cgroup_tuning::{favor_dynamic_cgroups, FavorDynmods};
            match favor_dynamic_cgroups() {
                Ok(FavorDynmods::Set(at)) => {
                    tracing::info!(mount = %at.display(), "set cgroup2 favordynmods for fast container starts")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not set favordynmods; container starts stay slower"),
            }
        }
        let images = images.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?.clone();
        let provider = OciProvider::new(oci_settings(config, images)?).context("oci provider")?;
        registry.register(Arc::new(provider));
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
        // Make oci unavailable whatever this machine has: a runtime path that does not exist.
        let no_oci = ("STACYVM_PROVIDERS_OCI_RUNTIME_PATH", "/nonexistent/crun");
        let err = resolve_default(&config(&[no_oci])).unwrap_err().to_string();
        assert!(err.contains("STACYVM_PROVIDERS_DEFAULT=mock"), "{err}");
        assert!(err.contains("apt-get install crun"), "{err}");
        let err = resolve_default(&config(&[no_oci, ("STACYVM_PROVIDERS_MOCK_ENABLED", "true")])).unwrap_err();
        assert!(err.to_string().contains("auto"));
    }

    #[test]
    fn static_executables_are_told_apart() {
        assert!(!is_static_executable(Path::new("/bin/sh")), "dash is dynamically linked");
        assert!(!is_static_executable(Path::new("/nonexistent")));
        if Path::new("/bin/busybox").exists() {
            assert!(is_static_executable(Path::new("/bin/busybox")), "busybox-static");
        }
    }

    #[test]
    fn explicit_mock_and_unknown_providers() {
        assert_eq!(resolve_default(&config(&[("STACYVM_PROVIDERS_DEFAULT", "mock")])).unwrap(), "mock");
        let err = resolve_default(&config(&[("STACYVM_PROVIDERS_DEFAULT", "firecracker")])).unwrap_err();
        assert!(err.to_string().contains("available: mock, oci"));
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
