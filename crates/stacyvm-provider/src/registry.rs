//! The set of configured providers, looked up by name, with one default.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Provider;

/// Providers by name (sorted, so listings are deterministic).
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    default: String,
}

impl ProviderRegistry {
    /// An empty registry whose default is `default`.
    pub fn new(default: impl Into<String>) -> Self {
        ProviderRegistry { providers: BTreeMap::new(), default: default.into() }
    }

    /// Adds (or replaces) a provider under its own name.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.insert(provider.name().to_string(), provider);
    }

    /// Looks a provider up.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    /// Name of the default provider.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// All providers sorted by name.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.providers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many are registered.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// True when none are registered.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}
