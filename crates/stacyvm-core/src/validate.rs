//! Input validation shared by several Manager calls.

use std::time::Duration;

use stacyvm_types::GoDuration;

use crate::error::{CoreError, CoreResult};

/// Longest owner ID in bytes.
pub const MAX_OWNER_BYTES: usize = 128;

/// Validates an owner ID (spec `rest-api.md` §2.3). Returns the trimmed value; empty means
/// "no owner".
pub fn owner_id(raw: &str) -> CoreResult<String> {
    let owner = raw.trim();
    if owner.len() > MAX_OWNER_BYTES {
        return Err(CoreError::invalid(format!("owner_id exceeds {MAX_OWNER_BYTES} bytes")));
    }
    if owner.contains(['/', '\\']) {
        return Err(CoreError::invalid("owner_id cannot contain path separators"));
    }
    if owner.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}' || c == ' ') {
        return Err(CoreError::invalid("owner_id cannot contain control characters or spaces"));
    }
    Ok(owner.to_string())
}

/// Parses an optional positive duration field; `None`/empty gives `None`.
pub fn positive_duration(field: &str, raw: Option<&str>) -> CoreResult<Option<Duration>> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let parsed = GoDuration::parse(text).map_err(|e| CoreError::invalid(format!("{field}: {e}")))?;
    if !parsed.is_positive() {
        return Err(CoreError::invalid(format!("{field} must be positive")));
    }
    Ok(parsed.to_std())
}

/// Formats a duration the Go way (`24h0m0s`).
pub fn go(d: Duration) -> String {
    GoDuration::from_std(d).to_string()
}

/// Template names: 1–128 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn template_name(name: &str) -> CoreResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "template name {name:?} must be 1-128 characters of letters, digits, '.', '_' or '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_rules() {
        assert_eq!(owner_id("  alice ").unwrap(), "alice");
        assert_eq!(owner_id("").unwrap(), "");
        assert_eq!(owner_id("名前").unwrap(), "名前");
        assert!(owner_id(&"a".repeat(128)).is_ok());
        assert!(owner_id(&"a".repeat(129)).is_err());
        assert!(owner_id(&"é".repeat(65)).is_err(), "byte length, not chars");
        for bad in ["a/b", "a\\b", "a b", "a\tb", "a\u{7f}"] {
            let err = owner_id(bad).unwrap_err();
            assert!(matches!(err, CoreError::BadRequest(_)), "{bad:?}");
        }
        assert_eq!(owner_id("x/y").unwrap_err().to_string(), "invalid input: owner_id cannot contain path separators");
    }

    #[test]
    fn durations() {
        assert_eq!(positive_duration("ttl", Some("1h")).unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(positive_duration("ttl", None).unwrap(), None);
        assert_eq!(positive_duration("ttl", Some("")).unwrap(), None);
        assert!(positive_duration("ttl", Some("0s")).is_err());
        assert!(positive_duration("ttl", Some("-5m")).is_err());
        assert!(positive_duration("ttl", Some("abc")).is_err());
        assert_eq!(go(Duration::from_secs(86400)), "24h0m0s");
    }

    #[test]
    fn template_names() {
        assert!(template_name("python-3.12_data").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(template_name(bad).is_err(), "{bad:?}");
        }
    }
}
