//! Events published on the SSE stream (`GET /api/v1/events`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event: `{id: "evt-<n>", type, sandbox_id?, timestamp, data?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// `evt-<sequence number>`.
    pub id: String,
    /// Event type, e.g. `sandbox.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sandbox concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    /// When it happened (UTC RFC 3339).
    pub timestamp: String,
    /// Event-specific details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
}
