//! Spawn and admission: resolving a request into a plan, reserving a slot, creating the runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use stacyvm_provider::SandboxSpec;
use stacyvm_store::{SandboxRecord, TemplateRecord};
use stacyvm_types::id::SandboxId;
use stacyvm_types::lifecycle::LifecycleState;
use stacyvm_types::sandbox::{Sandbox, SpawnAdmissionDecision, SpawnRequest};

use super::{Manager, SandboxEntry};
use crate::error::{CoreError, CoreResult};
use crate::lifecycle;
use crate::validate;

/// Who is spawning (from headers and the verified identity, not the body).
#[derive(Debug, Clone, Default)]
pub struct SpawnContext {
    /// `X-User-ID`, if sent.
    pub header_owner: Option<String>,
    /// Tenant of the verified identity.
    pub tenant_id: String,
}

/// A fully resolved spawn.
struct SpawnPlan {
    image: String,
    provider: String,
    memory_mb: u32,
    vcpus: u32,
    ttl: Duration,
    owner: String,
    metadata: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

/// Largest memory a request may ask for (1 TiB), to catch nonsense early.
const MAX_MEMORY_MB: i64 = 1 << 20;
/// Largest vCPU count a request may ask for.
const MAX_VCPUS: i64 = 1024;

fn positive_count(field: &str, value: Option<i64>, max: i64) -> CoreResult<Option<u32>> {
    match value {
        None | Some(0) => Ok(None),
        Some(n) if n < 0 => Err(CoreError::invalid(format!("{field} must not be negative"))),
        Some(n) if n > max => Err(CoreError::invalid(format!("{field} must be at most {max}"))),
        Some(n) => Ok(Some(n as u32)),
    }
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl Manager {
    fn resolve_owner(&self, body_owner: Option<&String>, ctx: &SpawnContext) -> CoreResult<String> {
        match ctx.header_owner.as_deref().filter(|h| !h.trim().is_empty()) {
            Some(header) => validate::owner_id(header),
            None => validate::owner_id(body_owner.map_or("", String::as_str)),
        }
    }

    pub(crate) fn check_ttl(&self, ttl: Duration, owner: &str) -> CoreResult<()> {
        let max = self.effective_max_ttl(owner);
        if !max.is_zero() && ttl > max {
            return Err(CoreError::ResourceLimit(format!(
                "resource limit exceeded: ttl exceeds max ttl {}",
                validate::go(max)
            )));
        }
        Ok(())
    }

    async fn plan(&self, req: &SpawnRequest, ctx: &SpawnContext) -> CoreResult<SpawnPlan> {
        let template = match non_empty(req.template.as_ref()) {
            Some(name) => Some(self.template_record(name).await?),
            None => None,
        };
        let t = template.as_ref();
        let memory_mb = positive_count("memory_mb", req.memory_mb, MAX_MEMORY_MB)?
            .or(t.map(|t| t.memory_mb))
            .unwrap_or(self.settings.default_memory_mb);
        let vcpus = positive_count("vcpus", req.vcpus, MAX_VCPUS)?
            .or(t.map(|t| t.vcpus))
            .unwrap_or(self.settings.default_vcpus);
        let ttl = validate::positive_duration("ttl", req.ttl.as_deref())?
            .or(t.map(|t| Duration::from_secs(t.ttl_seconds)))
            .unwrap_or(self.settings.default_ttl);
        let owner = self.resolve_owner(req.owner_id.as_ref(), ctx)?;
        self.check_ttl(ttl, &owner)?;
        let image = non_empty(req.image.as_ref())
            .map(str::to_string)
            .or(t.map(|t| t.image.clone()))
            .unwrap_or_else(|| self.settings.default_image.clone());
        let provider = non_empty(req.provider.as_ref())
            .map(str::to_string)
            .or(t.map(|t| t.provider.clone()).filter(|p| !p.is_empty()))
            .unwrap_or_else(|| self.providers.default_name().to_string());
        let mut metadata = t.map(|t| t.metadata.clone()).unwrap_or_default();
        if let Some(t) = t {
            metadata.insert("template".into(), t.name.clone());
        }
        metadata.extend(req.metadata.clone().unwrap_or_default());
        let env = t.map(|t| t.env.clone()).unwrap_or_default();
        Ok(SpawnPlan { image, provider, memory_mb, vcpus, ttl, owner, metadata, env })
    }

    /// Checks capacity against the live entries. Called with the map lock held, so the
    /// check and the reservation (inserting the pending entry) are one atomic step.
    fn admit(&self, map: &HashMap<String, Arc<SandboxEntry>>, owner: &str) -> CoreResult<()> {
        let (total, owned) = active_counts(map, owner);
        let max = self.settings.max_sandboxes as u64;
        if max > 0 && total >= max {
            return Err(CoreError::ResourceLimit(format!("max sandboxes reached ({max})")));
        }
        let max_owner = self.effective_owner_cap(owner);
        if max_owner > 0 && !owner.is_empty() && owned >= max_owner {
            return Err(CoreError::ResourceLimit(format!("max sandboxes per owner reached ({max_owner})")));
        }
        Ok(())
    }

    /// Spawns a sandbox; returns once it can run commands.
    pub async fn spawn(&self, req: SpawnRequest, ctx: &SpawnContext) -> CoreResult<Sandbox> {
        let started = Instant::now();
        let plan = self.plan(&req, ctx).await?;
        let provider = self.provider(&plan.provider)?;
        if let Some(reason) = self.unhealthy_reason(&plan.provider) {
            return Err(CoreError::Unavailable(format!("provider {} is unavailable: {reason}", plan.provider)));
        }
        let now = Utc::now();
        let expires_at = chrono::Duration::from_std(plan.ttl)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| CoreError::invalid("ttl is too large"))?;
        let state = lifecycle::transition(LifecycleState::Pending, LifecycleState::Starting)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut record = SandboxRecord {
            id: String::new(),
            state,
            provider: plan.provider.clone(),
            image: plan.image.clone(),
            memory_mb: plan.memory_mb,
            vcpus: plan.vcpus,
            owner_id: plan.owner.clone(),
            tenant_id: ctx.tenant_id.clone(),
            vm_id: String::new(),
            worker_id: self.settings.worker_id.clone(),
            created_at: now,
            expires_at,
            updated_at: now,
            destroyed_at: None,
            metadata: plan.metadata,
            env: plan.env,
            runtime: String::new(),
            error: String::new(),
        };
        let entry = {
            let mut map = self.sandboxes.write().unwrap_or_else(|e| e.into_inner());
            self.admit(&map, &plan.owner).inspect_err(|e| {
                self.events.publish(
                    "resource.limit",
                    None,
                    Some(serde_json::json!({"operation": "spawn", "error": e.to_string()})),
                );
            })?;
            record.id = loop {
                let id = SandboxId::generate().to_string();
                if !map.contains_key(&id) {
                    break id;
                }
            };
            let entry = SandboxEntry::new(record.clone());
            map.insert(record.id.clone(), Arc::clone(&entry));
            entry
        };
        let id = record.id.clone();
        if let Err(e) = self.store.insert_sandbox(&record).await {
            self.forget(&id);
            return Err(e.into());
        }
        self.events.publish("sandbox.created", Some(&id), None);
        let _guard = entry.op_lock.lock().await;
        let spec = SandboxSpec { id: id.clone(), image: plan.image, memory_mb: plan.memory_mb, vcpus: plan.vcpus };
        match provider.create(&spec).await {
            Ok(handle) => {
                let runtime = serde_json::to_string(&handle).map_err(|e| CoreError::Internal(e.to_string()))?;
                entry.update(|r| r.runtime = runtime);
                let record = self.set_state(&entry, LifecycleState::Running, None).await?;
                self.events.publish("sandbox.running", Some(&id), None);
                self.metrics.record("spawn", &plan.provider, true, started.elapsed());
                Ok(self.to_wire(&record))
            }
            Err(err) => {
                let message = format!("spawn failed: {err}");
                self.metrics.record("spawn", &plan.provider, false, started.elapsed());
                self.events.publish(
                    "sandbox.error",
                    Some(&id),
                    Some(
                        serde_json::json!({"operation": "spawn", "provider": plan.provider, "error": err.to_string()}),
                    ),
                );
                // A failed spawn leaves nothing behind: clean up whatever the provider made and
                // keep only the destroyed row (with its error) for inspection.
                let _ = self.set_state(&entry, LifecycleState::Error, Some(message)).await;
                let handle = stacyvm_provider::RuntimeHandle {
                    sandbox_id: id.clone(),
                    runtime_id: String::new(),
                    details: Default::default(),
                };
                let _ = provider.destroy(&handle).await;
                let _ = self.set_state(&entry, LifecycleState::Stopping, None).await;
                let _ = self.set_state(&entry, LifecycleState::Destroyed, None).await;
                self.forget(&id);
                Err(err.into())
            }
        }
    }

    /// Removes an entry from the live map.
    pub(crate) fn forget(&self, id: &str) {
        self.sandboxes.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Admission preflight: would a spawn be admitted now? Never reserves anything.
    pub async fn admission(&self, req: &SpawnRequest, ctx: &SpawnContext) -> CoreResult<SpawnAdmissionDecision> {
        let ttl = validate::positive_duration("ttl", req.ttl.as_deref())?.unwrap_or(self.settings.default_ttl);
        let owner = self.resolve_owner(req.owner_id.as_ref(), ctx)?;
        let max_ttl = self.effective_max_ttl(&owner);
        let mut decision = SpawnAdmissionDecision {
            max_ttl: if max_ttl.is_zero() { String::new() } else { validate::go(max_ttl) },
            max_sandboxes: self.settings.max_sandboxes as u64,
            max_owner_sandboxes: if owner.is_empty() { 0 } else { self.effective_owner_cap(&owner) },
            ..Default::default()
        };
        let (total, owned) = active_counts(&self.sandboxes.read().unwrap_or_else(|e| e.into_inner()), &owner);
        decision.active_sandboxes = total;
        decision.active_owner_sandboxes = owned;
        decision.reason = if self.check_ttl(ttl, &owner).is_err() {
            "max_ttl"
        } else if decision.max_sandboxes > 0 && total >= decision.max_sandboxes {
            "max_sandboxes"
        } else if decision.max_owner_sandboxes > 0 && owned >= decision.max_owner_sandboxes {
            "max_sandboxes_per_owner"
        } else {
            ""
        }
        .to_string();
        decision.allowed = decision.reason.is_empty();
        Ok(decision)
    }

    pub(crate) async fn template_record(&self, name: &str) -> CoreResult<TemplateRecord> {
        self.store.get_template(name).await?.ok_or_else(|| CoreError::NotFound(format!("template not found: {name}")))
    }
}

/// Active sandboxes (not destroyed, not expired) in total and for `owner`.
fn active_counts(map: &HashMap<String, Arc<SandboxEntry>>, owner: &str) -> (u64, u64) {
    let mut total = 0;
    let mut owned = 0;
    for entry in map.values() {
        let (state, entry_owner_matches) = entry.update(|r| (r.state, !owner.is_empty() && r.owner_id == owner));
        if matches!(state, LifecycleState::Destroyed | LifecycleState::Expired) {
            continue;
        }
        total += 1;
        if entry_owner_matches {
            owned += 1;
        }
    }
    (total, owned)
}
