//! Overlaying `STACYVM_*` environment variables on the tree.
//!
//! Each key's variable name is computed from its path (`STACYVM_` + path upper-cased, `.` → `_`)
//! and looked up; variable names are never split back into paths, so keys containing underscores
//! map correctly and variables that are not keys (such as the CLI's `STACYVM_API_KEY`) are
//! ignored. An empty variable counts as unset, as with the reference's viper.

use std::collections::HashMap;

use serde_yaml::Value;

use crate::error::ConfigError;
use crate::schema::{leaves, parse_text};

/// Writes every set key variable of `env` into `tree`. The last occurrence of a name wins.
pub(crate) fn overlay(tree: &mut Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for leaf in leaves() {
        let name = leaf.env_name();
        let Some(text) = vars.get(name.as_str()).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value =
            parse_text(leaf.kind, text).map_err(|m| ConfigError::invalid(&leaf.path, format!("{m} (from {name})")))?;
        *slot(tree, &leaf.path) = value;
    }
    Ok(())
}

/// The value at a dotted path of the tree, which must exist.
fn slot<'a>(tree: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('.').fold(tree, |node, key| {
        node.get_mut(key).unwrap_or_else(|| panic!("key path {path} exists in the default tree"))
    })
}
