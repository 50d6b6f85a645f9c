//! StacyVM configuration (`spec/config-and-cli.md` §1–2).
//!
//! Loading happens in two stages:
//!
//! 1. **Raw tree** ([`RawConfig`]): the built-in defaults, overlaid with the YAML file, overlaid
//!    with `STACYVM_*` environment variables (env wins over file, file over defaults). Values are
//!    coerced to each key's type; unknown file keys and unknown variables are ignored.
//! 2. **Validation** into the typed [`Config`]: durations parsed (Go syntax, ≥ 0), enumerations,
//!    ranges, cross-field rules, and `auth.*_file` secrets read. Errors name the key
//!    (`config key defaults.ttl: invalid duration "abc": …`).
//!
//! File lookup: an explicit path must exist; otherwise the first existing of `./stacyvm.yaml`
//! and `~/.stacyvm/config.yaml` is the only file read, and no file at all means defaults.
//!
//! Environment variables are `STACYVM_` + the key path upper-cased with `.` → `_`
//! (`defaults.max_sandboxes_per_owner` → `STACYVM_DEFAULTS_MAX_SANDBOXES_PER_OWNER`); see
//! [`env_var_names`]. Values parse by the key's type: booleans `true/false/1/0/t/f` (any case),
//! decimal integers, strings as-is, lists comma-separated (or a JSON array, an addition), maps
//! as a JSON object (an addition). An empty variable counts as unset. `STACYVM_API_KEY` is the
//! CLI's variable, not a key.
//!
//! Project additions to the reference key tree: `server.max_request_body_bytes`,
//! `server.max_upload_bytes`, `defaults.max_exec_output_bytes`, `defaults.reaper_interval`, `providers.mock.root_dir`,
//! `providers.oci.*`, `retention.*`, `auth.allow_unauthenticated`, `auth.tenant_api_keys`.
//! Stricter than the reference: `worker.heartbeat_interval`, `rate_limit.cleanup_interval` and
//! `defaults.reaper_interval` must be > 0 (a zero ticker would spin or panic), `server.port` must
//! be 1–65535, `memory_mb`/`vcpus` must be > 0.
//!
//! The full key reference is `docs/configuration.md`.

mod env;
mod error;
mod file;
pub mod raw;
mod schema;
mod typed;
mod validate;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use raw::RawConfig;
pub use schema::ENV_PREFIX;
pub use typed::*;

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// The file that was read, if any.
    pub source: Option<PathBuf>,
    /// Keys in the file that are not part of the tree (ignored), as dotted paths.
    pub unknown_keys: Vec<String>,
}

/// Loads the configuration: `explicit` (which must exist) or the first existing file of
/// [`search_paths`], overlaid with the process environment, then validated.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_from(explicit, &search_paths(), &env)
}

/// Like [`load`], but stops after stage 1 and returns the unvalidated raw tree and its source
/// file, for tools (such as `config lint`) that report on values validation would reject.
pub fn load_raw(explicit: Option<&Path>) -> Result<(RawConfig, Option<PathBuf>), ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (text, source) = read_file(explicit, &search_paths())?;
    let (raw, _) = build_raw(text.as_deref(), source.as_deref(), &env)?;
    Ok((raw, source))
}

/// The files searched when no explicit path is given, in order: `./stacyvm.yaml`, then
/// `~/.stacyvm/config.yaml` (when `HOME` is set).
pub fn search_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("stacyvm.yaml")];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        paths.push(PathBuf::from(home).join(".stacyvm").join("config.yaml"));
    }
    paths
}

/// [`load`] with the search list and the environment given explicitly.
pub fn load_from(explicit: Option<&Path>, search: &[PathBuf], env: &[(String, String)]) -> Result<Loaded, ConfigError> {
    let (text, source) = read_file(explicit, search)?;
    let (raw, unknown_keys) = build_raw(text.as_deref(), source.as_deref(), env)?;
    let config = Config::from_raw(raw).map_err(|e| name_env_source(e, env))?;
    Ok(Loaded { config, source, unknown_keys })
}

/// Adds `(from STACYVM_X)` to a validation error whose key was set from the environment.
fn name_env_source(err: ConfigError, env: &[(String, String)]) -> ConfigError {
    let ConfigError::Invalid { key, message } = err else { return err };
    let var = schema::leaves().into_iter().find(|leaf| leaf.path == key).map(|leaf| leaf.env_name());
    match var {
        Some(var) if !message.contains(&var) && env.iter().any(|(k, v)| *k == var && !v.is_empty()) => {
            ConfigError::Invalid { message: format!("{message} (from {var})"), key }
        }
        _ => ConfigError::Invalid { key, message },
    }
}

/// Builds the configuration from YAML text (if any) and environment pairs. No file lookup and
/// no process environment; reads only the `auth.*_file` secrets named by the values.
pub fn from_sources(file_text: Option<&str>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let (raw, _) = build_raw(file_text, None, env)?;
    Config::from_raw(raw).map_err(|e| name_env_source(e, env))
}

/// Stage 1 only: defaults, overlaid with `file_text`, overlaid with `env`.
pub fn raw_from_sources(file_text: Option<&str>, env: &[(String, String)]) -> Result<RawConfig, ConfigError> {
    build_raw(file_text, None, env).map(|(raw, _)| raw)
}

/// Every key path and its environment variable, in tree order.
pub fn env_var_names() -> Vec<(String, String)> {
    schema::leaves()
        .into_iter()
        .map(|leaf| {
            let env = leaf.env_name();
            (leaf.path, env)
        })
        .collect()
}

/// Every key path with its default as compact JSON (`"30m"`, `7423`, `["*"]`, `{}`) and its
/// environment variable, in tree order. Used to check the reference documentation.
pub fn key_reference() -> Vec<KeyInfo> {
    schema::leaves()
        .into_iter()
        .map(|leaf| KeyInfo { env: leaf.env_name(), default: leaf.default_json(), path: leaf.path })
        .collect()
}

/// One key of the tree, as listed by [`key_reference`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Dotted key path.
    pub path: String,
    /// Default value as compact JSON.
    pub default: String,
    /// Environment variable name.
    pub env: String,
}

impl Config {
    /// Stage 2: validates a raw tree.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        validate::validate(raw)
    }
}

impl Default for Config {
    /// The built-in defaults.
    fn default() -> Self {
        Config::from_raw(RawConfig::default()).expect("the built-in defaults are valid")
    }
}

fn read_file(explicit: Option<&Path>, search: &[PathBuf]) -> Result<(Option<String>, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) if !p.exists() => return Err(ConfigError::NotFound { path: p.to_path_buf() }),
        Some(p) => p.to_path_buf(),
        None => match search.iter().find(|p| p.exists()) {
            Some(p) => p.clone(),
            None => return Ok((None, None)),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    Ok((Some(text), Some(path)))
}

fn build_raw(
    file_text: Option<&str>,
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<(RawConfig, Vec<String>), ConfigError> {
    let mut tree = schema::default_tree();
    let unknown = match file_text {
        Some(text) => file::overlay(&mut tree, text, file)?,
        None => Vec::new(),
    };
    env::overlay(&mut tree, env)?;
    let raw = serde_yaml::from_value(tree)
        .map_err(|e| ConfigError::invalid("", format!("internal: merged tree does not fit: {e}")))?;
    Ok((raw, unknown))
}
