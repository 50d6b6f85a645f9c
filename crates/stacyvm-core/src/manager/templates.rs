//! Template CRUD and template spawn. Input accepts both field spellings (`cpu_cores`/`vcpus`,
//! `ttl_seconds`/`ttl`); the server spelling wins when both are given.

use std::time::Duration;

use chrono::Utc;
use stacyvm_store::{StoreError, TemplateRecord};
use stacyvm_types::sandbox::{Sandbox, SpawnRequest};
use stacyvm_types::template::{Template, TemplateInput, TemplateSpawnRequest};

use super::spawn::SpawnContext;
use super::Manager;
use crate::error::{CoreError, CoreResult};
use crate::validate;

const DEFAULT_TEMPLATE_MEMORY_MB: u32 = 512;
const DEFAULT_TEMPLATE_VCPUS: u32 = 1;
const DEFAULT_TEMPLATE_TTL_SECS: u64 = 300;

fn count(field: &str, value: Option<i64>, default: u32) -> CoreResult<u32> {
    match value {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(CoreError::invalid(format!("{field} must not be negative"))),
        Some(n) => u32::try_from(n).map_err(|_| CoreError::invalid(format!("{field} is too large"))),
    }
}

/// Converts a stored template to the wire shape (both spellings).
pub fn to_template(r: &TemplateRecord) -> Template {
    Template {
        name: r.name.clone(),
        image: r.image.clone(),
        version: r.version,
        description: r.description.clone(),
        memory_mb: r.memory_mb,
        cpu_cores: r.vcpus,
        vcpus: r.vcpus,
        ttl_seconds: r.ttl_seconds,
        ttl: validate::go(Duration::from_secs(r.ttl_seconds)),
        provider: r.provider.clone(),
        metadata: r.metadata.clone(),
        env: r.env.clone(),
        pool_size: r.pool_size,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

impl Manager {
    /// Validates input into a record (timestamps and version are set by the caller).
    fn template_from_input(&self, name: &str, input: &TemplateInput) -> CoreResult<TemplateRecord> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::invalid("template name is required"));
        }
        validate::template_name(name)?;
        let image = input.image.as_deref().map(str::trim).unwrap_or_default();
        if image.is_empty() {
            return Err(CoreError::invalid("template image is required"));
        }
        let memory_mb = count("memory_mb", input.memory_mb, DEFAULT_TEMPLATE_MEMORY_MB)?;
        let vcpus = count("cpu_cores", input.cpu_cores.or(input.vcpus), DEFAULT_TEMPLATE_VCPUS)?;
        let ttl_seconds = match (input.ttl_seconds, input.ttl.as_deref()) {
            (Some(secs), _) if secs < 0 => return Err(CoreError::invalid("ttl_seconds must not be negative")),
            (Some(secs), _) if secs > 0 => secs as u64,
            (_, Some(ttl)) => {
                validate::positive_duration("ttl", Some(ttl))?.map_or(DEFAULT_TEMPLATE_TTL_SECS, |d| d.as_secs().max(1))
            }
            _ => DEFAULT_TEMPLATE_TTL_SECS,
        };
        let max = self.settings.max_ttl;
        if !max.is_zero() && Duration::from_secs(ttl_seconds) > max {
            return Err(CoreError::invalid(format!("ttl exceeds max ttl {}", validate::go(max))));
        }
        let provider = input.provider.as_deref().map(str::trim).unwrap_or_default().to_string();
        if !provider.is_empty() && self.providers.get(&provider).is_none() {
            return Err(CoreError::invalid(format!("unknown provider {provider:?}")));
        }
        let pool_size = count("pool_size", input.pool_size, 0)?;
        let now = Utc::now();
        Ok(TemplateRecord {
            name: name.to_string(),
            image: image.to_string(),
            version: 1,
            description: input.description.clone().unwrap_or_default(),
            memory_mb,
            vcpus,
            ttl_seconds,
            provider,
            metadata: input.metadata.clone().unwrap_or_default(),
            env: input.env.clone().unwrap_or_default(),
            pool_size,
            created_at: now,
            updated_at: now,
        })
    }

    /// Creates a template; 409 when the name exists.
    pub async fn create_template(&self, input: &TemplateInput) -> CoreResult<Template> {
        let record = self.template_from_input(input.name.as_deref().unwrap_or_default(), input)?;
        match self.store.insert_template(&record).await {
            Ok(()) => Ok(to_template(&record)),
            Err(StoreError::Conflict) => Err(CoreError::Conflict(format!("template already exists: {}", record.name))),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a template (defaults applied, `created_at` kept, `version` bumped).
    pub async fn update_template(&self, name: &str, input: &TemplateInput) -> CoreResult<Template> {
        let existing = self.template_record(name).await?;
        let mut record = self.template_from_input(name, input)?;
        record.created_at = existing.created_at;
        record.version = existing.version + 1;
        self.store.update_template(&record).await.map_err(|e| match e {
            StoreError::NotFound => CoreError::NotFound(format!("template not found: {name}")),
            other => other.into(),
        })?;
        Ok(to_template(&record))
    }

    /// One template.
    pub async fn get_template(&self, name: &str) -> CoreResult<Template> {
        Ok(to_template(&self.template_record(name).await?))
    }

    /// All templates by name.
    pub async fn list_templates(&self) -> CoreResult<Vec<Template>> {
        Ok(self.store.list_templates().await?.iter().map(to_template).collect())
    }

    /// Deletes a template; 404 when missing.
    pub async fn delete_template(&self, name: &str) -> CoreResult<()> {
        self.store.delete_template(name).await.map_err(|e| match e {
            StoreError::NotFound => CoreError::NotFound(format!("template not found: {name}")),
            other => other.into(),
        })
    }

    /// Spawns from a template; the body may override provider and TTL.
    pub async fn spawn_template(
        &self,
        name: &str,
        overrides: &TemplateSpawnRequest,
        ctx: &SpawnContext,
    ) -> CoreResult<Sandbox> {
        self.template_record(name).await?;
        let req = SpawnRequest {
            template: Some(name.to_string()),
            provider: overrides.provider.clone(),
            ttl: overrides.ttl.clone(),
            ..SpawnRequest::default()
        };
        self.spawn(req, ctx).await
    }
}
