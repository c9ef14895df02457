//! Top-level `abuse`: the gate's own defences (see `crate::abuse`).
//!
//! ```json
//! "abuse": {
//!   "negative_cache": {"ttl_seconds": 30, "max_entries": 4096},
//!   "expensive_per_address": {"rate": 20, "per": "second", "burst": 40, "max_keys": 10000,
//!                             "v4_prefix": 32, "v6_prefix": 64, "on_store_error": "allow"}
//! }
//! ```

use serde_json::Value;

use super::reader::{choice, integer, ConfigErrors, Fields};
use crate::abuse::budget::ExpensiveBudget;
use crate::abuse::negative::NegativeCache;
use crate::abuse::AbuseSettings;
use crate::ratelimit::gcra::Gcra;
use crate::ratelimit::key_prefix::{KeyIdPrefix, PrefixRule, MAX_KEY_ID_PREFIX_BYTES};
use crate::ratelimit::table::Table;
use crate::ratelimit::{DEFAULT_MAX_KEYS, MAX_MAX_KEYS};

const NS_PER_SEC: u64 = 1_000_000_000;
const MAX_NEGATIVE_ENTRIES: u64 = 100_000;
const MAX_NEGATIVE_TTL_SECONDS: u64 = 3600;

pub fn compile(v: &Value, path: &str, errors: &mut ConfigErrors) -> AbuseSettings {
    let mut out = AbuseSettings::default();
    let Some(mut fields) = Fields::of(v, path, errors) else {
        return out;
    };
    if let Some((v, p)) = fields.take("negative_cache") {
        out.negative_cache = negative_cache(v, &p, errors);
    }
    if let Some((v, p)) = fields.take("expensive_per_address") {
        out.expensive_per_address = expensive(v, &p, errors);
    }
    fields.finish(errors);
    out
}

fn negative_cache(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<NegativeCache> {
    let mut f = Fields::of(v, path, errors)?;
    let ttl = f.take("ttl_seconds").map_or(Some(30), |(v, p)| {
        integer(v, &p, 1, MAX_NEGATIVE_TTL_SECONDS, errors)
    });
    let entries = f.take("max_entries").map_or(Some(4096), |(v, p)| {
        integer(v, &p, 1, MAX_NEGATIVE_ENTRIES, errors)
    });
    f.finish(errors);
    Some(NegativeCache {
        prefix: "api_guard.neg".into(),
        max_entries: u32::try_from(entries?).ok()?,
        ttl_ms: ttl? * 1000,
    })
}

fn expensive(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<ExpensiveBudget> {
    let mut f = Fields::of(v, path, errors)?;
    let rate = match f.take("rate") {
        None => {
            errors.add(
                path,
                "the budget needs \"rate\" (expensive operations per \"per\")",
            );
            None
        }
        Some((v, p)) => integer(v, &p, 1, 1_000_000, errors),
    };
    let per = match f.take("per") {
        None => Some(1),
        Some((Value::String(s), p)) => match s.as_str() {
            "second" => Some(1),
            "minute" => Some(60),
            _ => {
                errors.add(&p, "expected \"second\" or \"minute\"");
                None
            }
        },
        Some((v, p)) => integer(v, &p, 1, 3600, errors),
    };
    let burst = f
        .take("burst")
        .map(|(v, p)| integer(v, &p, 1, 1_000_000, errors));
    let max_keys = f
        .take("max_keys")
        .map_or(Some(u64::from(DEFAULT_MAX_KEYS)), |(v, p)| {
            integer(v, &p, 1, u64::from(MAX_MAX_KEYS), errors)
        });
    let v4 = f
        .take("v4_prefix")
        .map_or(Some(32), |(v, p)| integer(v, &p, 0, 32, errors));
    let v6 = f
        .take("v6_prefix")
        .map_or(Some(64), |(v, p)| integer(v, &p, 0, 128, errors));
    let allow = choice(
        f.take("on_store_error"),
        &[("allow", true), ("deny", false)],
        true,
        errors,
    );
    f.finish(errors);
    let (rate, per) = (rate?, per?);
    let burst = match burst {
        None => rate,
        Some(b) => b?,
    };
    let Some(gcra) = Gcra::new(rate, per * NS_PER_SEC, burst) else {
        errors.add(path, "burst x (per / rate) is too long a time to track");
        return None;
    };
    Some(ExpensiveBudget {
        gcra,
        table: Table::new("api_guard.expensive".into(), u32::try_from(max_keys?).ok()?),
        v4_prefix: u8::try_from(v4?).ok()?,
        v6_prefix: u8::try_from(v6?).ok()?,
        allow_on_store_error: allow,
    })
}

/// The longest `key_prefix.length`.
const MAX_PREFIX_LENGTH: u64 = MAX_KEY_ID_PREFIX_BYTES as u64;

/// A lockout key `{"key_prefix": {"separator": "."}}` or `{"key_prefix": {"length": 8}}`: the
/// key-id part of the API key the policy's `api_key` check reads, given as `(header, query)`
/// (`None` when the policy has no such check: an error).
pub(crate) fn key_id_prefix(
    v: &Value,
    path: &str,
    api_key: Option<(Option<&str>, Option<&str>)>,
    errors: &mut ConfigErrors,
) -> Option<KeyIdPrefix> {
    let mut f = Fields::of(v, path, errors)?;
    let separator = f.take("separator");
    let length = f.take("length");
    f.finish(errors);
    let prefix = match (separator, length) {
        (Some((Value::String(s), p)), None) => match s.as_bytes() {
            // Punctuation only: a letter or digit would split ids made of those.
            [b] if b.is_ascii_punctuation() => Some(PrefixRule::Separator(*b)),
            _ => {
                errors.add(
                    &p,
                    "the separator is one ASCII punctuation character, e.g. \".\" or \"_\"",
                );
                None
            }
        },
        (Some((_, p)), None) => {
            errors.add(&p, "expected a one-character string");
            None
        }
        (None, Some((v, p))) => integer(v, &p, 1, MAX_PREFIX_LENGTH, errors)
            .and_then(|n| usize::try_from(n).ok())
            .map(PrefixRule::Length),
        _ => {
            errors.add(
                path,
                "\"key_prefix\" has exactly one of \"separator\" (the key id ends before it) or \"length\" (the key id is that many bytes)",
            );
            None
        }
    };
    let header = match api_key {
        None => {
            errors.add(
                path,
                "\"key_prefix\" counts the presented API key's id: this policy has no \"api_key\" check",
            );
            None
        }
        // A guesser would send the key where the lockout does not look.
        Some((_, Some(_))) => {
            errors.add(
                path,
                "\"key_prefix\" reads the key from the api_key header: this policy also accepts it in a query parameter",
            );
            None
        }
        Some((None, None)) => None,
        Some((Some(h), None)) => Some(h.to_string()),
    };
    Some(KeyIdPrefix {
        header: header?,
        rule: prefix?,
    })
}

#[cfg(test)]
mod tests {
    use crate::ratelimit::key_prefix::{KeyIdPrefix, PrefixRule};
    use crate::ratelimit::KeySource;
    use serde_json::json;

    fn compile(policy: serde_json::Value) -> Result<crate::policy::Guard, Vec<String>> {
        let config = json!({
            "clients": {"acme": {"keys": [{"id": "a1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]}},
            "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"], "jwks": {"keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"}]}}},
            "policies": {"p": policy}
        });
        super::super::compile(config.to_string().as_bytes())
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    fn lockout(key: serde_json::Value) -> serde_json::Value {
        json!({"name": "by_key_id", "rate": 5, "per": 600, "key": key, "counts": "failed_auth"})
    }

    #[test]
    fn key_prefix_lockouts_compile_to_the_api_key_header() {
        let g = compile(json!({"api_key": {"header": "x-key"},
            "rate_limits": [lockout(json!({"key_prefix": {"separator": "."}})),
                            {"name": "by_len", "rate": 5, "per": 600, "key": {"key_prefix": {"length": 12}}, "counts": "failed_auth"}]}))
        .unwrap();
        let p = g.policies.first().unwrap();
        let keys: Vec<_> = p.rate_limits.iter().map(|l| l.key.clone()).collect();
        assert_eq!(
            keys,
            vec![
                KeySource::KeyIdPrefix(KeyIdPrefix {
                    header: "x-key".into(),
                    rule: PrefixRule::Separator(b'.')
                }),
                KeySource::KeyIdPrefix(KeyIdPrefix {
                    header: "x-key".into(),
                    rule: PrefixRule::Length(12)
                }),
            ]
        );
    }

    #[test]
    fn key_prefix_mistakes_are_configuration_errors_with_their_path() {
        let at = "policies.p.rate_limits[0].key.key_prefix";
        let cases: &[(serde_json::Value, &str, &str)] = &[
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {}}))]}),
                at,
                "exactly one of",
            ),
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {"separator": ".", "length": 4}}))]}),
                at,
                "exactly one of",
            ),
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {"separator": "ab"}}))]}),
                "policies.p.rate_limits[0].key.key_prefix.separator",
                "punctuation",
            ),
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {"separator": "a"}}))]}),
                "policies.p.rate_limits[0].key.key_prefix.separator",
                "punctuation",
            ),
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {"length": 0}}))]}),
                "policies.p.rate_limits[0].key.key_prefix.length",
                "",
            ),
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {"length": 65}}))]}),
                "policies.p.rate_limits[0].key.key_prefix.length",
                "",
            ),
            (
                json!({"api_key": {}, "rate_limits": [lockout(json!({"key_prefix": {"length": 8}, "ip": {}}))]}),
                "policies.p.rate_limits[0].key",
                "exactly one of",
            ),
            (
                json!({"jwt": {"providers": ["corp"]}, "rate_limits": [lockout(json!({"key_prefix": {"length": 8}}))]}),
                at,
                "no \"api_key\" check",
            ),
            (
                json!({"api_key": {"header": "x-key", "query": "key"}, "rate_limits": [lockout(json!({"key_prefix": {"length": 8}}))]}),
                at,
                "query parameter",
            ),
            (
                json!({"api_key": {}, "rate_limits": [{"name": "n", "rate": 5, "per": 600, "key": {"key_prefix": {"length": 8}}}]}),
                "policies.p.rate_limits[0]",
                "is a lockout",
            ),
            (
                json!({"api_key": {}, "rate_limits": [{"name": "n", "rate": 5, "per": 600, "key": {"key_prefix": {"length": 8}}, "counts": "requests"}]}),
                "policies.p.rate_limits[0].counts",
                "is a lockout",
            ),
        ];
        for (policy, path, words) in cases {
            let errors = compile(policy.clone()).err().unwrap_or_default();
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(path) && e.contains(words)),
                "{policy}: want {path}: ..{words}.., got {errors:?}"
            );
        }
    }
}
