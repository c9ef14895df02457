//! A small reader over `serde_json::Value` that tracks the JSON path of every value, so that
//! each configuration error names exactly where it is, and that collects errors instead of
//! stopping at the first.

use serde_json::{Map, Value};
use std::fmt;

/// Looks up an environment variable of the VM (secrets api-guard sends are read this way).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One configuration error: where, and what is wrong. Never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Every error found in one configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    pub fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The fields of one JSON object. Fields are taken by name; whatever is left when the object is
/// finished is an unknown field, reported as an error (typos must not silently disable a check).
pub struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
    taken: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value, path: &str, errors: &mut ConfigErrors) -> Option<Fields<'a>> {
        match value {
            Value::Object(map) => Some(Fields {
                path: path.to_string(),
                map,
                taken: Vec::new(),
            }),
            other => {
                errors.add(path, format!("expected an object, found {}", kind(other)));
                None
            }
        }
    }

    /// The field's value and path; `null` counts as absent.
    pub fn take(&mut self, name: &'static str) -> Option<(&'a Value, String)> {
        self.taken.push(name);
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some((v, child(&self.path, name))),
        }
    }

    /// Whether the field is present and not `null`, without taking it.
    pub fn map_has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    /// The object's own path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A required string of 1-1024 visible ASCII characters (cluster names, authorities, URL
    /// paths); absent is reported at the object's path.
    pub fn required_text(
        &mut self,
        name: &'static str,
        errors: &mut ConfigErrors,
    ) -> Option<String> {
        let Some((v, p)) = self.take(name) else {
            errors.add(&self.path, format!("\"{name}\" is required"));
            return None;
        };
        let s = string(v, &p, errors)?;
        if s.is_empty() || s.len() > 1024 || !s.bytes().all(|c| c.is_ascii_graphic()) {
            errors.add(&p, "must be 1-1024 visible ASCII characters");
            return None;
        }
        Some(s.to_string())
    }

    /// An optional whole number in `min..=max`; `default` when absent or wrong (reported).
    pub fn integer_or(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
        default: u64,
        errors: &mut ConfigErrors,
    ) -> u64 {
        self.take(name)
            .and_then(|(v, p)| integer(v, &p, min, max, errors))
            .unwrap_or(default)
    }

    pub fn finish(self, errors: &mut ConfigErrors) {
        for name in self.map.keys() {
            if !self.taken.contains(&name.as_str()) {
                errors.add(&child(&self.path, name), "unknown field");
            }
        }
    }
}

/// An object read by a list of known field names (the style of compilers that read one object
/// at several levels, e.g. `payload` and its per-method overrides): every other key is an
/// unknown field. `null` members count as absent ([`field`]).
pub fn object<'a>(
    v: &'a Value,
    path: &str,
    known: &[&str],
    errors: &mut ConfigErrors,
) -> Option<&'a Map<String, Value>> {
    let map = named(v, path, errors)?;
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            errors.add(&child(path, key), "unknown field");
        }
    }
    Some(map)
}

/// A member of an [`object`]; `null` counts as absent.
pub fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

/// The value of a sub-compiler that collected its own errors, its errors added to `errors`.
pub fn collect<T>(result: Result<T, ConfigErrors>, errors: &mut ConfigErrors) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(found) => {
            errors.0.extend(found.0);
            None
        }
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn string<'a>(v: &'a Value, path: &str, errors: &mut ConfigErrors) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        other => {
            errors.add(path, format!("expected a string, found {}", kind(other)));
            None
        }
    }
}

pub fn boolean(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => {
            errors.add(path, format!("expected a boolean, found {}", kind(other)));
            None
        }
    }
}

/// A whole number in `min..=max`.
pub fn integer(
    v: &Value,
    path: &str,
    min: u64,
    max: u64,
    errors: &mut ConfigErrors,
) -> Option<u64> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(_) => {
            errors.add(path, format!("must be between {min} and {max}"));
            None
        }
        None => {
            errors.add(path, format!("expected a whole number, found {}", kind(v)));
            None
        }
    }
}

pub fn array<'a>(v: &'a Value, path: &str, errors: &mut ConfigErrors) -> Option<&'a [Value]> {
    match v {
        Value::Array(items) => Some(items),
        other => {
            errors.add(path, format!("expected an array, found {}", kind(other)));
            None
        }
    }
}

/// A JSON object used as a map of named entries (`policies`, `clients`).
pub fn named<'a>(
    v: &'a Value,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(map) => Some(map),
        other => {
            errors.add(path, format!("expected an object, found {}", kind(other)));
            None
        }
    }
}

/// Strings of an array, each with its path; non-strings are reported and skipped.
pub fn strings<'a>(v: &'a Value, path: &str, errors: &mut ConfigErrors) -> Vec<(&'a str, String)> {
    let Some(items) = array(v, path, errors) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item_value)| {
            let p = item(path, i);
            string(item_value, &p, errors).map(|s| (s, p))
        })
        .collect()
}

/// A lowercase HTTP header name (RFC 9110 token). Envoy hands names to filters in lowercase, so
/// an uppercase name in the configuration would never match.
pub fn header_name(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<String> {
    let s = string(v, path, errors)?;
    let token = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
    if !token {
        errors.add(path, format!("not an HTTP header name: {s:?}"));
        None
    } else if s.bytes().any(|c| c.is_ascii_uppercase()) {
        errors.add(path, format!("header names must be lowercase: {s:?}"));
        None
    } else {
        Some(s.to_string())
    }
}

/// A name of 1-128 characters of `[A-Za-z0-9_.-]` (cookies, query parameters, environment
/// variables); anything else is reported with `rule`.
pub fn plain_name(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<String> {
    let s = string(v, path, errors)?;
    if is_plain_name(s) {
        Some(s.to_string())
    } else {
        errors.add(path, "names are 1-128 characters of [A-Za-z0-9_.-]");
        None
    }
}

pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// A field that must be one of a few strings, e.g. `"deny"` or `"allow"`; absent means
/// `default`, and anything else is reported (`expected "deny" or "allow"`) and also `default`.
pub fn choice<T: Copy>(
    field: Option<(&Value, String)>,
    options: &[(&str, T)],
    default: T,
    errors: &mut ConfigErrors,
) -> T {
    let Some((v, path)) = field else {
        return default;
    };
    let Some(s) = string(v, &path, errors) else {
        return default;
    };
    match options.iter().find(|(name, _)| *name == s) {
        Some((_, value)) => *value,
        None => {
            let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
            errors.add(&path, format!("expected {}", names.join(" or ")));
            default
        }
    }
}

pub fn is_policy_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}
