//! `policies.<name>.rate_limits`: compiled into [`RateLimit`]s (GCRA parameters, key source,
//! and the shared-data table each limit owns).

use std::collections::HashSet;

use serde_json::Value;

use super::reader::{array, child, choice, integer, item, kind, string, ConfigErrors, Fields};
use super::reader::{header_name, is_policy_name};
use crate::jwt::provider::AuthMode;
use crate::ratelimit::gcra::Gcra;
use crate::ratelimit::table::{Table, MAX_LANES};
use crate::ratelimit::{
    Consumer, Counts, KeySource, Mode, OnStoreError, Override, RateLimit, DEFAULT_MAX_KEYS,
    MAX_MAX_KEYS,
};

const NS_PER_SEC: u64 = 1_000_000_000;
/// The longest period: one year.
const MAX_PERIOD_SECS: u64 = 366 * 86_400;
const MAX_COUNT: u64 = 1_000_000_000;
/// Limits per policy: each costs a few shared-data reads per request.
const MAX_LIMITS: usize = 8;
/// Tiers per limit: matched in order on every admitted request.
const MAX_OVERRIDES: usize = 32;
/// The default IPv6 prefix of an address key.
pub const DEFAULT_V6_PREFIX: u8 = 64;

/// What a policy's limits may key by: the credentials it checks and how they combine.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub api_key: bool,
    /// Where the policy's `api_key` check reads the key, `(header, query parameter)`: a
    /// `key_prefix` lockout reads it there.
    pub api_key_sources: Option<(Option<&'a str>, Option<&'a str>)>,
    pub jwt: bool,
    pub introspection: bool,
    pub auth: AuthMode,
    /// The policy requires a client certificate (`mtls`): every admitted request has a client.
    pub mtls: bool,
    /// The configured client ids (an override naming another client is a typo).
    pub client_ids: &'a [String],
}

impl Credentials<'_> {
    /// Every admitted request carries a verified identity (some credential is required).
    fn always_identified(&self) -> bool {
        let any = self.api_key || self.jwt || self.introspection;
        (any && self.auth != AuthMode::Optional) || self.mtls
    }

    /// Every admitted request carries an API-key client (the key is required).
    fn always_client(&self) -> bool {
        (self.api_key && self.auth == AuthMode::All) || self.mtls
    }
}

pub fn compile(
    policy: &str,
    v: &Value,
    path: &str,
    creds: &Credentials<'_>,
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
        if let Some(limit) = compile_limit(policy, value, &p, creds, errors) {
            if !names.insert(limit.name.clone()) {
                errors.add(
                    &child(&p, "name"),
                    format!("duplicate rate limit name {:?}", limit.name),
                );
            }
            out.push(limit);
        }
    }
    share_entries(policy, &mut out);
    out
}

/// Gives one shared-data entry to limits that count the same requests by the same key: within
/// one stage (`counts`), each run of limits listed next to each other with an equal key and
/// table size (at most [`MAX_LANES`]) keeps all its states in one value per key, so a request
/// pays one read and one compare-and-swap for the whole run instead of one each. Runs only:
/// limits run in order and a refusal counts against the ones before it only (never a limit
/// with another key in between that has not run yet). The entry's prefix names every limit it
/// holds, in order (`api_guard.rl.<policy>.<a>+<b>`; names never contain `+`), so that a
/// configuration that changes a run never reads another layout's values; a limit alone keeps
/// its own table and today's layout (`api_guard.rl.<policy>.<name>`, 16 bytes).
fn share_entries(policy: &str, limits: &mut [RateLimit]) {
    for stage in [Counts::Admitted, Counts::Requests, Counts::FailedAuth] {
        let in_stage: Vec<usize> = (0..limits.len())
            .filter(|i| limits.get(*i).is_some_and(|l| l.counts == stage))
            .collect();
        let mut start = 0;
        while start < in_stage.len() {
            let first = in_stage.get(start).and_then(|i| limits.get(*i));
            let run = in_stage
                .iter()
                .skip(start)
                .take(MAX_LANES)
                .take_while(|i| {
                    let l = limits.get(**i);
                    l.zip(first).is_some_and(|(l, f)| {
                        l.key == f.key && l.table.max_keys == f.table.max_keys
                    })
                })
                .count()
                .max(1);
            let members: Vec<usize> = in_stage.iter().skip(start).take(run).copied().collect();
            start += run;
            if members.len() < 2 {
                continue;
            }
            let names: Vec<&str> = members
                .iter()
                .filter_map(|i| limits.get(*i).map(|l| l.name.as_str()))
                .collect();
            let max_keys = first.map_or(1, |l| l.table.max_keys);
            let table = Table::with_lanes(
                format!("api_guard.rl.{policy}.{}", names.join("+")),
                max_keys,
                u32::try_from(members.len()).unwrap_or(1),
            );
            for (lane, i) in members.iter().enumerate() {
                if let Some(l) = limits.get_mut(*i) {
                    l.table = table.clone();
                    l.lane = lane;
                }
            }
        }
    }
}

fn compile_limit(
    policy: &str,
    v: &Value,
    path: &str,
    creds: &Credentials<'_>,
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
                "a rate limit needs \"key\": \"client\", \"identity\", \"ip\", \"policy\", {\"identity\": {...}}, {\"ip\": {...}} or {\"header\": NAME}",
            );
            None
        }
        Some((v, p)) => key_source(v, &p, creds, errors),
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
    let overrides = fields.take("overrides");
    let counts_field = fields.take("counts");
    let counts_path = counts_field.as_ref().map(|(_, p)| p.clone());
    let counts = choice(
        counts_field,
        &[
            ("admitted", Counts::Admitted),
            ("requests", Counts::Requests),
            ("failed_auth", Counts::FailedAuth),
        ],
        Counts::Admitted,
        errors,
    );
    fields.finish(errors);
    if counts != Counts::FailedAuth && matches!(key, Some(KeySource::KeyIdPrefix(_))) {
        // Counting every request by a prefix the client chooses limits nobody; a lockout by it
        // protects the key id's owner from guesses.
        errors.add(
            counts_path.as_deref().unwrap_or(path),
            "a limit keyed by \"key_prefix\" is a lockout: set \"counts\": \"failed_auth\"",
        );
    }
    if counts != Counts::Admitted {
        // Before the credential checks there is no identity yet.
        if matches!(key, Some(KeySource::Client | KeySource::Identity { .. })) {
            errors.add(
                counts_path.as_deref().unwrap_or(path),
                "a limit that counts \"requests\" or \"failed_auth\" runs before any credential is verified: key it by \"ip\", a header or \"policy\"",
            );
        }
        if overrides.is_some() {
            errors.add(
                counts_path.as_deref().unwrap_or(path),
                "\"overrides\" need a verified identity: only limits that count \"admitted\" requests have them",
            );
        }
        if counts == Counts::FailedAuth && !(creds.api_key || creds.jwt || creds.introspection) {
            errors.add(
                counts_path.as_deref().unwrap_or(path),
                "\"failed_auth\" counts refused credentials: this policy checks none",
            );
        }
    }

    let overrides = match (overrides, period_secs) {
        (None, _) => Vec::new(),
        (Some((v, p)), Some(period)) => compile_overrides(v, &p, period, creds, errors),
        (Some(_), None) => Vec::new(),
    };
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
        table: Table::new(format!("api_guard.rl.{policy}.{name}"), max_keys),
        lane: 0,
        name,
        gcra,
        key,
        mode,
        on_store_error,
        overrides,
        counts,
    })
}

/// `overrides`: `[{"client": ID | "claim": NAME, "value": V, "tier": T?, "rate": N, "burst": N?}]`.
fn compile_overrides(
    v: &Value,
    path: &str,
    period_secs: u64,
    creds: &Credentials<'_>,
    errors: &mut ConfigErrors,
) -> Vec<Override> {
    let Some(items) = array(v, path, errors) else {
        return Vec::new();
    };
    if items.len() > MAX_OVERRIDES {
        errors.add(path, format!("at most {MAX_OVERRIDES} overrides per limit"));
    }
    let mut out = Vec::new();
    for (i, value) in items.iter().enumerate() {
        let p = item(path, i);
        let Some(mut f) = Fields::of(value, &p, errors) else {
            continue;
        };
        let client = f.take("client");
        let claim = f.take("claim");
        let claim_value = f.take("value");
        let consumer = match (client, claim, claim_value) {
            (Some((c, cp)), None, None) => match string(c, &cp, errors) {
                Some(id) if creds.client_ids.iter().any(|k| k == id) => {
                    Some(Consumer::Client(id.to_string()))
                }
                Some(id) if creds.introspection => Some(Consumer::Client(id.to_string())),
                Some(id) => {
                    errors.add(&cp, format!("no client {id:?} in \"clients\""));
                    None
                }
                None => None,
            },
            (None, Some((c, cp)), Some((val, vp))) => {
                if !creds.jwt {
                    errors.add(&cp, "a claim override needs a \"jwt\" check in this policy");
                }
                let claim = string(c, &cp, errors).map(str::to_string);
                let value = match val {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Some(val.to_string()),
                    other => {
                        errors.add(
                            &vp,
                            format!(
                                "expected a string, number or boolean, found {}",
                                kind(other)
                            ),
                        );
                        None
                    }
                };
                match (claim, value) {
                    (Some(claim), Some(value)) => Some(Consumer::Claim { claim, value }),
                    _ => None,
                }
            }
            _ => {
                errors.add(
                    &p,
                    "an override has either \"client\", or \"claim\" and \"value\"",
                );
                None
            }
        };
        let tier = match f.take("tier") {
            Some((t, tp)) => match string(t, &tp, errors) {
                Some(s) if is_policy_name(s) => Some(s.to_string()),
                Some(_) => {
                    errors.add(&tp, "tier names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit");
                    None
                }
                None => None,
            },
            None => match &consumer {
                Some(Consumer::Claim { value, .. }) if is_policy_name(value) => Some(value.clone()),
                Some(Consumer::Client(id)) if is_policy_name(id) => Some(id.clone()),
                Some(_) => {
                    errors.add(
                        &p,
                        "this override needs a \"tier\" name (the value is not one)",
                    );
                    None
                }
                None => None,
            },
        };
        let rate = match f.take("rate") {
            None => {
                errors.add(
                    &p,
                    "an override needs \"rate\" (requests per the limit's \"per\")",
                );
                None
            }
            Some((v, rp)) => integer(v, &rp, 1, MAX_COUNT, errors),
        };
        let burst = f
            .take("burst")
            .map(|(v, bp)| integer(v, &bp, 1, MAX_COUNT, errors));
        f.finish(errors);
        let (Some(consumer), Some(tier), Some(rate)) = (consumer, tier, rate) else {
            continue;
        };
        let burst = match burst {
            None => rate,
            Some(Some(b)) => b,
            Some(None) => continue,
        };
        let Some(gcra) = Gcra::new(rate, period_secs * NS_PER_SEC, burst) else {
            errors.add(&p, "burst x (per / rate) is too long a time to track");
            continue;
        };
        out.push(Override {
            tier,
            consumer,
            gcra,
        });
    }
    out
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
    creds: &Credentials<'_>,
    errors: &mut ConfigErrors,
) -> Option<KeySource> {
    let client = |errors: &mut ConfigErrors| {
        if creds.always_client() {
            Some(KeySource::Client)
        } else if creds.api_key {
            errors.add(
                path,
                "key \"client\" needs every admitted request to carry an API key, but under \"auth\": \"any\" or \"optional\" some do not: use \"identity\" (any verified credential)",
            );
            None
        } else {
            errors.add(
                path,
                "key \"client\" needs an identity: add an \"api_key\" or \"mtls\" check to this policy",
            );
            None
        }
    };
    let identity = |claim: Option<String>, errors: &mut ConfigErrors| {
        if !creds.always_identified() {
            errors.add(
                path,
                "key \"identity\" needs every admitted request to carry a verified credential: this policy admits requests without one (no api_key/jwt/introspection, or \"auth\": \"optional\"); key such requests by \"ip\"",
            );
            return None;
        }
        if claim.is_some() && !creds.jwt {
            errors.add(
                path,
                "an identity \"claim\" needs a \"jwt\" check in this policy",
            );
            return None;
        }
        Some(KeySource::Identity { claim })
    };
    match v {
        Value::String(s) => match s.as_str() {
            "client" => client(errors),
            "identity" => identity(None, errors),
            // IPv6: a /64 is what one subscriber or host gets; a /128 key would let one client
            // take every slot of a table with addresses of its own prefix.
            "ip" => Some(KeySource::Ip {
                v4_prefix: 32,
                v6_prefix: DEFAULT_V6_PREFIX,
            }),
            "policy" => Some(KeySource::Policy),
            _ => {
                errors.add(path, "expected \"client\", \"identity\", \"ip\", \"policy\", {\"identity\": {...}}, {\"ip\": {...}} or {\"header\": NAME}");
                None
            }
        },
        Value::Object(_) => {
            let mut fields = Fields::of(v, path, errors)?;
            let header = fields.take("header");
            let ip = fields.take("ip");
            let ident = fields.take("identity");
            if let Some((kp, kpp)) = fields.take("key_prefix") {
                let out = if header.is_some() || ip.is_some() || ident.is_some() {
                    errors.add(
                        path,
                        "a key object has exactly one of \"header\", \"identity\", \"ip\" or \"key_prefix\"",
                    );
                    None
                } else {
                    super::abuse::key_id_prefix(kp, &kpp, creds.api_key_sources, errors)
                        .map(KeySource::KeyIdPrefix)
                };
                fields.finish(errors);
                return out;
            }
            let out = match (header, ip, ident) {
                (Some((h, hp)), None, None) => header_name(h, &hp, errors).map(KeySource::Header),
                (None, None, Some((id, idp))) => {
                    let mut f = Fields::of(id, &idp, errors)?;
                    let claim = f
                        .take("claim")
                        .and_then(|(c, cp)| string(c, &cp, errors).map(str::to_string));
                    f.finish(errors);
                    identity(claim, errors)
                }
                (None, Some((ip, ipp)), None) => {
                    let mut f = Fields::of(ip, &ipp, errors)?;
                    let v4 = f
                        .take("v4_prefix")
                        .map_or(Some(32), |(v, p)| integer(v, &p, 0, 32, errors));
                    let v6 = f
                        .take("v6_prefix")
                        .map_or(Some(u64::from(DEFAULT_V6_PREFIX)), |(v, p)| {
                            integer(v, &p, 0, 128, errors)
                        });
                    f.finish(errors);
                    Some(KeySource::Ip {
                        v4_prefix: u8::try_from(v4?).ok()?,
                        v6_prefix: u8::try_from(v6?).ok()?,
                    })
                }
                _ => {
                    errors.add(
                        path,
                        "a key object has exactly one of \"header\", \"identity\" or \"ip\"",
                    );
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
