//! The key list, derived from [`RawConfig::default`] serialised to a YAML value (whose mappings
//! keep declaration order), and value coercion.
//!
//! A *leaf* is a key that holds a value: a bool, an integer, a string, a list of strings, or a
//! map of strings (an empty object in the defaults). Every other object is a section to recurse
//! into. Both the file and the environment are coerced to the type of the leaf's default, so
//! `port: "7423"` in a file or `STACYVM_SERVER_PORT=7423` both become the integer 7423.

use serde_yaml::{Mapping, Value};

use crate::raw::RawConfig;

/// Prefix of every key-tree environment variable.
pub const ENV_PREFIX: &str = "STACYVM_";

/// The value type of a leaf key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int,
    Str,
    List,
    Map,
}

/// One key of the tree.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Dotted key path, e.g. `server.port`.
    pub path: String,
    pub kind: Kind,
    pub default: Value,
}

impl Leaf {
    pub fn env_name(&self) -> String {
        env_name(&self.path)
    }

    /// The default as compact JSON text (`"30m"`, `7423`, `["*"]`, `{}`).
    pub fn default_json(&self) -> String {
        serde_json::to_string(&self.default).expect("default values serialise to JSON")
    }
}

/// `STACYVM_` + the key path upper-cased with `.` replaced by `_`.
pub(crate) fn env_name(path: &str) -> String {
    format!("{ENV_PREFIX}{}", path.to_ascii_uppercase().replace('.', "_"))
}

/// The default tree.
pub(crate) fn default_tree() -> Value {
    serde_yaml::to_value(RawConfig::default()).expect("the default config serialises")
}

/// The leaf kind of a default value, or `None` for a section.
pub(crate) fn kind_of(v: &Value) -> Option<Kind> {
    match v {
        Value::Bool(_) => Some(Kind::Bool),
        Value::Number(_) => Some(Kind::Int),
        Value::String(_) => Some(Kind::Str),
        Value::Sequence(_) => Some(Kind::List),
        Value::Mapping(m) if m.is_empty() => Some(Kind::Map),
        Value::Mapping(_) => None,
        Value::Null | Value::Tagged(_) => Some(Kind::Str),
    }
}

/// Every leaf of the tree, in declaration order.
pub(crate) fn leaves() -> Vec<Leaf> {
    let mut out = Vec::new();
    if let Value::Mapping(root) = default_tree() {
        walk(&root, "", &mut out);
    }
    out
}

fn walk(section: &Mapping, prefix: &str, out: &mut Vec<Leaf>) {
    for (key, value) in section {
        let key = key.as_str().expect("config keys are strings");
        let path = if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
        match (kind_of(value), value) {
            (Some(kind), _) => out.push(Leaf { path, kind, default: value.clone() }),
            (None, Value::Mapping(inner)) => walk(inner, &path, out),
            (None, _) => unreachable!("kind_of returns None only for objects"),
        }
    }
}

/// Booleans: `true/false/1/0/t/f`, any case.
pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Ok(true),
        "false" | "f" | "0" => Ok(false),
        _ => Err(format!("expected a boolean (true/false/1/0/t/f), got {text:?}")),
    }
}

/// Integers: decimal, optionally signed.
pub(crate) fn parse_int(text: &str) -> Result<i64, String> {
    text.trim().parse::<i64>().map_err(|_| format!("expected a decimal integer, got {text:?}"))
}

/// Lists: comma-separated, entries trimmed, empty entries dropped. (Addition: a JSON array of
/// strings is accepted too, so `[]` sets an empty list.)
pub(crate) fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let value: serde_json::Value = serde_json::from_str(trimmed)
            .map_err(|e| format!("expected comma-separated values or a JSON array: {e}"))?;
        let serde_json::Value::Array(items) = value else {
            unreachable!("text starting with '[' parses only as an array")
        };
        return items
            .into_iter()
            .map(|item| json_scalar_string(&item).ok_or_else(|| "list entries must be strings".to_string()))
            .collect();
    }
    Ok(trimmed.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
}

/// Maps: a JSON object whose values are strings (numbers and booleans are turned into strings).
pub(crate) fn parse_map(text: &str) -> Result<Mapping, String> {
    let value: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("expected a JSON object such as {{\"key\":\"value\"}}: {e}"))?;
    let serde_json::Value::Object(obj) = value else {
        return Err("expected a JSON object such as {\"key\":\"value\"}".to_string());
    };
    obj.into_iter()
        .map(|(k, v)| match json_scalar_string(&v) {
            Some(s) => Ok((Value::String(k), Value::String(s))),
            None => Err(format!("map value for {k:?} must be a string")),
        })
        .collect()
}

fn json_scalar_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a text value (an environment variable, or a string in the file) as `kind`.
pub(crate) fn parse_text(kind: Kind, text: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Bool => Value::Bool(parse_bool(text)?),
        Kind::Int => Value::from(parse_int(text)?),
        Kind::Str => Value::String(text.to_string()),
        Kind::List => Value::Sequence(parse_list(text)?.into_iter().map(Value::String).collect()),
        Kind::Map => Value::Mapping(parse_map(text)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_unique_and_prefixed() {
        let leaves = leaves();
        let mut names: Vec<String> = leaves.iter().map(Leaf::env_name).collect();
        assert!(names.iter().all(|n| n.starts_with(ENV_PREFIX)));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), leaves.len());
    }

    #[test]
    fn map_leaves_are_the_map_keys() {
        let maps: Vec<String> = leaves().into_iter().filter(|l| l.kind == Kind::Map).map(|l| l.path).collect();
        assert_eq!(maps, ["providers.docker.tmpfs", "auth.worker_tokens", "auth.tenant_api_keys"]);
    }

    #[test]
    fn bool_forms() {
        for t in ["true", "TRUE", "True", "t", "T", "1"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "FALSE", "fAlSe", "f", "F", "0"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("yes").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn list_forms() {
        assert_eq!(parse_list("a, b,,c ").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse_list("[]").unwrap(), Vec::<String>::new());
        assert_eq!(parse_list(r#"["x,y", "z"]"#).unwrap(), ["x,y", "z"]);
        assert!(parse_list("[oops").is_err());
    }

    #[test]
    fn map_forms() {
        let m = parse_map(r#"{"/tmp":"rw,size=64m","n":5}"#).unwrap();
        assert_eq!(m["/tmp"], Value::from("rw,size=64m"));
        assert_eq!(m["n"], Value::from("5"));
        assert!(parse_map("a=b").is_err());
        assert!(parse_map("[1]").is_err());
        assert!(parse_map(r#"{"a":{"b":1}}"#).is_err());
    }
}
