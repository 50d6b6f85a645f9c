//! Overlaying the YAML file on the default tree.
//!
//! Keys match case-insensitively (as the reference's viper does), a `null` value (`key:` with
//! nothing after it) keeps the default, values are coerced to the default's type (`port: "7423"`,
//! `cpus: 1`), and unknown keys are collected and otherwise ignored.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::error::ConfigError;
use crate::schema::{kind_of, parse_text, Kind};

/// Parses `text` and writes its values into `tree` (the default tree). Returns unknown key paths.
pub(crate) fn overlay(tree: &mut Value, text: &str, file: Option<&Path>) -> Result<Vec<String>, ConfigError> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::yaml(file.map(Path::to_path_buf), &e))?;
    let mut unknown = Vec::new();
    match untag(&doc) {
        Value::Null => {}
        Value::Mapping(map) => {
            let Value::Mapping(root) = tree else { unreachable!("the default tree is a mapping") };
            merge_section(root, map, "", &mut unknown)?;
        }
        other => {
            return Err(ConfigError::Yaml {
                file: file.map(Path::to_path_buf),
                line: Some(1),
                column: Some(1),
                message: format!("the top level must be a mapping of keys, found {}", describe(other)),
            })
        }
    }
    Ok(unknown)
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn key_text(key: &Value) -> Option<String> {
    match untag(key) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn merge_section(
    section: &mut Mapping,
    input: &Mapping,
    prefix: &str,
    unknown: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (key, value) in input {
        let Some(key) = key_text(key) else {
            unknown.push(join(prefix, "<non-scalar key>"));
            continue;
        };
        let found = section.iter_mut().find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(&key)));
        let Some((canonical, slot)) = found else {
            unknown.push(join(prefix, &key));
            continue;
        };
        let path = join(prefix, canonical.as_str().unwrap_or_default());
        let value = untag(value);
        if value.is_null() {
            continue;
        }
        match kind_of(slot) {
            None => match value {
                Value::Mapping(inner) => {
                    let Value::Mapping(slot) = slot else { unreachable!("sections are mappings") };
                    merge_section(slot, inner, &path, unknown)?;
                }
                other => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("expected a mapping of keys, found {}", describe(other)),
                    ))
                }
            },
            Some(kind) => {
                *slot = coerce(kind, value).map_err(|m| ConfigError::invalid(&path, m))?;
            }
        }
    }
    Ok(())
}

/// Text form of a scalar, for coercion to strings.
fn scalar_text(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn describe(v: &Value) -> String {
    match untag(v) {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

/// Coerces a file value to the leaf's kind.
fn coerce(kind: Kind, value: &Value) -> Result<Value, String> {
    match (kind, value) {
        (_, Value::String(s)) => parse_text(kind, s),
        (Kind::Bool, Value::Bool(b)) => Ok(Value::Bool(*b)),
        (Kind::Bool, Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(Value::Bool(false)),
            Some(1) => Ok(Value::Bool(true)),
            _ => Err(format!("expected a boolean, found number {n}")),
        },
        (Kind::Int, Value::Number(n)) => {
            let int =
                n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
            int.map(Value::from).ok_or_else(|| format!("expected an integer, found number {n}"))
        }
        (Kind::Str, Value::Number(_) | Value::Bool(_)) => Ok(Value::String(scalar_text(value).unwrap_or_default())),
        (Kind::List, Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                scalar_text(item)
                    .map(Value::String)
                    .ok_or_else(|| format!("list entries must be strings, found {}", describe(item)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Sequence),
        (Kind::Map, Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let k = key_text(k).ok_or_else(|| "map keys must be strings".to_string())?;
                let v = scalar_text(v)
                    .ok_or_else(|| format!("map value for {k:?} must be a string, found {}", describe(v)))?;
                Ok((Value::String(k), Value::String(v)))
            })
            .collect::<Result<Mapping, String>>()
            .map(Value::Mapping),
        (kind, other) => Err(format!("expected {}, found {}", kind_name(kind), describe(other))),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "a boolean",
        Kind::Int => "an integer",
        Kind::Str => "a string",
        Kind::List => "a list of strings",
        Kind::Map => "a mapping of strings",
    }
}
