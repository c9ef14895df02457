//! `policies.<name>.rate_limits`: compiled into [`RateLimit`]s (GCRA parameters, key source,
//! and the shared-data table each limit owns).

use std::collections::HashSet;

use serde_json::Value;

use super::reader::{array, child, choice, integer, item, kind, string, ConfigErrors, Fields};
use super::{header_name, is_policy_name};
use crate::ratelimit::gcra::Gcra;
use crate::ratelimit::table::Table;
use crate::ratelimit::{KeySource, Mode, OnStoreError, RateLimit, DEFAULT_MAX_KEYS, MAX_MAX_KEYS};

const NS_PER_SEC: u64 = 1_000_000_000;
/// The longest period: one year.
const MAX_PERIOD_SECS: u64 = 366 * 86_400;
const MAX_COUNT: u64 = 1_000_000_000;
/// Limits per policy: each costs a few shared-data reads per request.
const MAX_LIMITS: usize = 8;

pub fn compile(
    policy: &str,
    v: &Value,
    path: &str,
    has_api_key: bool,
    errors: &mut ConfigErrors,
) -> Vec<RateLimit> {
    let Some(items) = array(v, path, errors) else {
        return Vec::new();
    };
    if items.len() > MAX_LIMITS {
        errors.add(path, format!("at most {MAX_LIMITS} rate limits per policy"));
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, value) in items.iter().enumerate() {
        let p = item(path, i);
        if let Some(limit) = compile_limit(policy, value, &p, has_api_key, errors) {
            if !names.insert(limit.name.clone()) {
                errors.add(
                    &child(&p, "name"),
                    format!("duplicate rate limit name {:?}", limit.name),
                );
            }
            out.push(limit);
        }
    }
    out
}

fn compile_limit(
    policy: &str,
    v: &Value,
    path: &str,
    has_api_key: bool,
    errors: &mut ConfigErrors,
) -> Option<RateLimit> {
    let mut fields = Fields::of(v, path, errors)?;
    let name = match fields.take("name") {
        None => {
            errors.add(
                path,
                "a rate limit needs a \"name\" (used in metrics and headers)",
            );
            None
        }
        Some((v, p)) => match string(v, &p, errors) {
            Some(s) if is_policy_name(s) => Some(s.to_string()),
            Some(_) => {
                errors.add(&p, "rate limit names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit");
                None
            }
            None => None,
        },
    };
    let rate = match fields.take("rate") {
        None => {
            errors.add(path, "a rate limit needs \"rate\" (requests per \"per\")");
            None
        }
        Some((v, p)) => integer(v, &p, 1, MAX_COUNT, errors),
    };
    let period_secs = match fields.take("per") {
        None => {
            errors.add(path, "a rate limit needs \"per\": \"second\", \"minute\", \"hour\", \"day\" or a number of seconds");
            None
        }
        Some((v, p)) => period(v, &p, errors),
    };
    let burst = fields
        .take("burst")
        .map(|(v, p)| integer(v, &p, 1, MAX_COUNT, errors));
    let key = match fields.take("key") {
        None => {
            errors.add(
                path,
                "a rate limit needs \"key\": \"client\", \"ip\", \"policy\", {\"ip\": {...}} or {\"header\": NAME}",
            );
            None
        }
        Some((v, p)) => key_source(v, &p, has_api_key, errors),
    };
    let mode = choice(
        fields.take("mode"),
        &[("enforce", Mode::Enforce), ("shadow", Mode::Shadow)],
        Mode::Enforce,
        errors,
    );
    let on_store_error = choice(
        fields.take("on_store_error"),
        &[("deny", OnStoreError::Deny), ("allow", OnStoreError::Allow)],
        OnStoreError::Deny,
        errors,
    );
    let max_keys = match fields.take("max_keys") {
        None => Some(DEFAULT_MAX_KEYS),
        Some((v, p)) => {
            if key == Some(KeySource::Policy) {
                errors.add(
                    &p,
                    "a limit keyed by \"policy\" has one bucket; remove max_keys",
                );
            }
            integer(v, &p, 1, u64::from(MAX_MAX_KEYS), errors).and_then(|n| u32::try_from(n).ok())
        }
    };
    fields.finish(errors);

    let (name, rate, period_secs, key, max_keys) = (name?, rate?, period_secs?, key?, max_keys?);
    let burst = match burst {
        None => rate,
        Some(b) => b?,
    };
    let Some(gcra) = Gcra::new(rate, period_secs * NS_PER_SEC, burst) else {
        errors.add(
            &child(path, "burst"),
            "burst x (per / rate) is too long a time to track",
        );
        return None;
    };
    let max_keys = if key == KeySource::Policy {
        1
    } else {
        max_keys
    };
    Some(RateLimit {
        table: Table {
            prefix: format!("api_guard.rl.{policy}.{name}"),
            max_keys,
        },
        name,
        gcra,
        key,
        mode,
        on_store_error,
    })
}

fn period(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<u64> {
    match v {
        Value::String(s) => match s.as_str() {
            "second" => Some(1),
            "minute" => Some(60),
            "hour" => Some(3600),
            "day" => Some(86_400),
            _ => {
                errors.add(
                    path,
                    "expected \"second\", \"minute\", \"hour\", \"day\" or a number of seconds",
                );
                None
            }
        },
        Value::Number(_) => integer(v, path, 1, MAX_PERIOD_SECS, errors),
        other => {
            errors.add(
                path,
                format!(
                    "expected a unit name or a number of seconds, found {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

fn key_source(
    v: &Value,
    path: &str,
    has_api_key: bool,
    errors: &mut ConfigErrors,
) -> Option<KeySource> {
    let client = |errors: &mut ConfigErrors| {
        if has_api_key {
            Some(KeySource::Client)
        } else {
            errors.add(
                path,
                "key \"client\" needs an identity: add an \"api_key\" or \"mtls\" check to this policy",
            );
            None
        }
    };
    match v {
        Value::String(s) => match s.as_str() {
            "client" => client(errors),
            "ip" => Some(KeySource::Ip {
                v4_prefix: 32,
                v6_prefix: 128,
            }),
            "policy" => Some(KeySource::Policy),
            _ => {
                errors.add(path, "expected \"client\", \"ip\", \"policy\", {\"ip\": {...}} or {\"header\": NAME}");
                None
            }
        },
        Value::Object(_) => {
            let mut fields = Fields::of(v, path, errors)?;
            let header = fields.take("header");
            let ip = fields.take("ip");
            let out = match (header, ip) {
                (Some((h, hp)), None) => header_name(h, &hp, errors).map(KeySource::Header),
                (None, Some((ip, ipp))) => {
                    let mut f = Fields::of(ip, &ipp, errors)?;
                    let v4 = f
                        .take("v4_prefix")
                        .map_or(Some(32), |(v, p)| integer(v, &p, 0, 32, errors));
                    let v6 = f
                        .take("v6_prefix")
                        .map_or(Some(128), |(v, p)| integer(v, &p, 0, 128, errors));
                    f.finish(errors);
                    Some(KeySource::Ip {
                        v4_prefix: u8::try_from(v4?).ok()?,
                        v6_prefix: u8::try_from(v6?).ok()?,
                    })
                }
                _ => {
                    errors.add(path, "a key object has exactly one of \"header\" or \"ip\"");
                    None
                }
            };
            fields.finish(errors);
            out
        }
        other => {
            errors.add(
                path,
                format!("expected a string or an object, found {}", kind(other)),
            );
            None
        }
    }
}
