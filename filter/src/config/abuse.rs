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
