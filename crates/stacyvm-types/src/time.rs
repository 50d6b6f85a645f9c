//! Timestamp helpers: every timestamp on the wire is UTC RFC 3339 with a `Z` suffix.

use chrono::{DateTime, SecondsFormat, Utc};

/// A UTC timestamp.
pub type Timestamp = DateTime<Utc>;

/// Formats with millisecond precision and `Z`, e.g. `2026-05-08T10:30:00.123Z`.
pub fn rfc3339_millis(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats with second precision, e.g. `2026-05-08T10:30:00Z` (FileInfo, workers).
pub fn rfc3339_secs(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serde adapter writing [`rfc3339_millis`].
pub mod millis {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes a timestamp.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339_millis(t))
    }

    /// Deserializes any RFC 3339 timestamp into UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}
