//! Compiling `jwt_providers`, `revocation`, `jwt_cache` and a policy's `jwt` rule.

use std::collections::HashSet;

use serde_json::Value;

use super::reader::{array, boolean, child, choice, integer, named, string, strings, Fields};
use super::reader::{header_name, is_policy_name, ConfigErrors, Env};
use super::sources::compile_token_sources;
use crate::jwt::alg::{Algorithm, AlgorithmSet};
use crate::jwt::cache::CacheSettings;
use crate::jwt::claims::ClaimRule;
use crate::jwt::jwe::parse_decryption_keys;
use crate::jwt::keys::{parse_jwks, JwksMode};
use crate::jwt::provider::{JwtProvider, JwtRule, ProviderId, ProviderKeys};
use crate::jwt::revocation::RevocationList;
use crate::jwt::source::TokenSource;
use crate::jwt::verify::TokenRules;
use crate::jwt::JwksError;
use crate::remote::RemoteSource;

pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
pub const DEFAULT_MAX_TOKEN_BYTES: u64 = 8 * 1024;
pub const DEFAULT_SUBJECT_HEADER: &str = "x-api-guard-subject";

pub use crate::jwt::revocation::RevocationConfig;

fn add_all(errors: &mut ConfigErrors, base: &str, problems: Vec<JwksError>) {
    for e in problems {
        let path = if e.path.is_empty() {
            base.to_string()
        } else if e.path.starts_with('[') {
            format!("{base}{}", e.path)
        } else {
            format!("{base}.{}", e.path)
        };
        errors.add(&path, e.message);
    }
}

/// Headers a claim may never be forwarded into: request framing and routing, credentials, and
/// the identity headers api-guard sets itself (a token claim must not pose as a key's client id
/// or as the rate-limit tier api-guard matched).
pub struct Reserved<'a> {
    pub identity: [&'a str; 3],
}

fn reserved_header(h: &str, reserved: &Reserved<'_>, sources: &[TokenSource]) -> bool {
    const FIXED: [&str; 10] = [
        "host",
        "authorization",
        "proxy-authorization",
        "cookie",
        "content-length",
        "content-type",
        "transfer-encoding",
        "te",
        "connection",
        "x-api-key",
    ];
    h.starts_with(':')
        || h.starts_with("x-envoy-")
        || FIXED.contains(&h)
        || reserved.identity.contains(&h)
        || sources
            .iter()
            .any(|s| matches!(s, TokenSource::Header { name, .. } if name == h))
}

pub fn compile_providers(
    v: &Value,
    path: &str,
    reserved: &Reserved<'_>,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> Vec<JwtProvider> {
    let Some(map) = named(v, path, errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in map {
        let p = child(path, name);
        if !is_policy_name(name) {
            errors.add(
                &p,
                "provider names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit",
            );
        }
        if let Some(provider) = compile_provider(name, value, &p, reserved, env, errors) {
            out.push(provider);
        }
    }
    out
}

fn seconds(
    fields: &mut Fields<'_>,
    name: &'static str,
    min: u64,
    max: u64,
    errors: &mut ConfigErrors,
) -> Option<u64> {
    fields
        .take(name)
        .and_then(|(v, p)| integer(v, &p, min, max, errors))
}

fn compile_provider(
    name: &str,
    v: &Value,
    path: &str,
    reserved: &Reserved<'_>,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> Option<JwtProvider> {
    let mut fields = Fields::of(v, path, errors)?;
    let issuer = match fields.take("issuer") {
        Some((v, p)) => string(v, &p, errors).and_then(|s| {
            if s.is_empty() {
                errors.add(&p, "the issuer must not be empty");
                None
            } else {
                Some(s.to_string())
            }
        }),
        None => {
            errors.add(
                path,
                "a provider needs \"issuer\" (the exact `iss` of its tokens)",
            );
            None
        }
    };
    let audiences = match fields.take("audiences") {
        Some((v, p)) => {
            let list: Vec<String> = strings(v, &p, errors)
                .into_iter()
                .filter_map(|(s, ip)| {
                    if s.is_empty() {
                        errors.add(&ip, "an audience must not be empty");
                        None
                    } else {
                        Some(s.to_string())
                    }
                })
                .collect();
            if list.is_empty() && v.is_array() {
                errors.add(&p, "list at least one audience");
            }
            list
        }
        None => {
            // Without an audience check, a token minted for any other API of the same
            // issuer would be accepted here.
            errors.add(
                path,
                "a provider needs \"audiences\" (at least one accepted `aud`)",
            );
            Vec::new()
        }
    };
    let algorithms = fields.take("algorithms").map(|(v, p)| {
        let mut set = AlgorithmSet::EMPTY;
        let items = strings(v, &p, errors);
        if items.is_empty() && v.is_array() {
            errors.add(&p, "list at least one algorithm, or omit the field");
        }
        for (s, ip) in items {
            match Algorithm::from_name(s) {
                Some(a) => set = set.with(a),
                None => errors.add(
                    &ip,
                    format!(
                        "unsupported algorithm {s:?} (supported: {})",
                        Algorithm::ALL.map(Algorithm::name).join(", ")
                    ),
                ),
            }
        }
        set
    });
    let allowed = algorithms.unwrap_or_else(AlgorithmSet::all);
    let clock_skew_seconds = seconds(&mut fields, "clock_skew_seconds", 0, 600, errors)
        .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
    let max_lifetime_seconds = seconds(&mut fields, "max_lifetime_seconds", 1, 31_536_000, errors);
    let require_exp = fields
        .take("require_exp")
        .and_then(|(v, p)| boolean(v, &p, errors))
        .unwrap_or(true);
    let required_claims: Vec<String> = fields
        .take("required_claims")
        .map(|(v, p)| {
            strings(v, &p, errors)
                .into_iter()
                .map(|(s, _)| s.to_string())
                .collect()
        })
        .unwrap_or_default();
    #[derive(Clone, Copy, PartialEq)]
    enum Kid {
        Required,
        Optional,
    }
    let kid_field = fields.take("kid");
    let kid_path = kid_field.as_ref().map(|(_, p)| p.clone());
    let kid = choice(
        kid_field,
        &[("required", Kid::Required), ("optional", Kid::Optional)],
        Kid::Required,
        errors,
    );
    let max_token_bytes = seconds(&mut fields, "max_token_bytes", 256, 65_536, errors)
        .unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    let sources = match fields.take("sources") {
        None => vec![TokenSource::bearer()],
        Some((v, p)) => compile_token_sources(v, &p, errors),
    };

    let inline = fields.take("jwks");
    let inline_key_count = inline
        .as_ref()
        .and_then(|(v, _)| v.get("keys"))
        .and_then(Value::as_array)
        .map(Vec::len);
    let remote = fields.take("remote_jwks");
    let remote_symmetric_keys = match fields.take("remote_symmetric_keys") {
        Some((v, p)) => {
            let allowed = boolean(v, &p, errors).unwrap_or(false);
            if allowed && remote.is_none() {
                // Inline keys are the operator's own; the switch would silently mean nothing.
                errors.add(&p, "applies to \"remote_jwks\" only");
            }
            allowed
        }
        None => false,
    };
    let keys = match (inline, remote) {
        (Some((v, p)), None) => match parse_jwks(v, JwksMode::Strict, allowed) {
            Ok(set) => Some(ProviderKeys::Inline(set)),
            Err(problems) => {
                add_all(errors, &p, problems);
                None
            }
        },
        (None, Some((v, p))) => {
            compile_remote(v, &p, &format!("api_guard.jwks.{name}"), true, env, errors)
                .map(ProviderKeys::Remote)
        }
        (Some(_), Some(_)) => {
            errors.add(path, "use either \"jwks\" or \"remote_jwks\", not both");
            None
        }
        (None, None) => {
            errors.add(
                path,
                "a provider needs keys: \"jwks\" (inline) or \"remote_jwks\"",
            );
            None
        }
    };
    if kid == Kid::Optional {
        // One JWK in the document (a key may serve several algorithms; that is still one key).
        let single = matches!(&keys, Some(ProviderKeys::Inline(_))) && inline_key_count == Some(1);
        if !single {
            errors.add(
                kid_path.as_deref().unwrap_or(path),
                "\"kid\": \"optional\" needs an inline JWKS with a single key (with several keys or a remote JWKS, tokens must name their key)",
            );
        }
    }
    let decryption =
        fields
            .take("decryption_keys")
            .and_then(|(v, p)| match parse_decryption_keys(v) {
                Ok(k) => Some(k),
                Err(problems) => {
                    add_all(errors, &p, problems);
                    None
                }
            });
    let forward_claims = match fields.take("forward_claims") {
        None => vec![("sub".to_string(), DEFAULT_SUBJECT_HEADER.to_string())],
        Some((v, p)) => {
            let mut out = Vec::new();
            if let Some(map) = named(v, &p, errors) {
                let mut headers = HashSet::new();
                for (claim, header) in map {
                    let hp = child(&p, claim);
                    if let Some(h) = header_name(header, &hp, errors) {
                        if reserved.identity.contains(&h.as_str()) {
                            errors.add(
                                &hp,
                                "api-guard sets this header itself (identity_headers: client id, key id, rate-limit tier): forward the claim into another header",
                            );
                        } else if reserved_header(&h, reserved, &sources) {
                            errors.add(&hp, "cannot forward a claim into this header");
                        } else if !headers.insert(h.clone()) {
                            errors.add(&hp, "two claims forwarded into the same header");
                        }
                        out.push((claim.clone(), h));
                    }
                }
            }
            out
        }
    };
    let strip_token = fields
        .take("strip_token")
        .and_then(|(v, p)| boolean(v, &p, errors))
        .unwrap_or(false);
    fields.finish(errors);
    Some(JwtProvider {
        name: name.to_string(),
        rules: TokenRules {
            issuer: issuer?,
            audiences,
            algorithms: allowed,
            clock_skew_seconds,
            max_lifetime_seconds,
            require_exp,
            required_claims,
            kid_required: kid == Kid::Required,
            max_token_bytes: usize::try_from(max_token_bytes).unwrap_or(8192),
        },
        sources,
        keys: keys?,
        decryption,
        forward_claims,
        strip_token,
        remote_symmetric_keys,
    })
}

/// A remote document (`remote_jwks`, `revocation.remote`).
pub(super) fn compile_remote(
    v: &Value,
    path: &str,
    key: &str,
    is_jwks: bool,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> Option<RemoteSource> {
    let mut fields = Fields::of(v, path, errors)?;
    let cluster = fields.required_text("cluster", errors);
    let authority = fields.required_text("authority", errors);
    let url_path = fields.required_text("path", errors);
    if let Some(p) = &url_path {
        if !p.starts_with('/') {
            errors.add(&child(path, "path"), "must start with /");
        }
    }
    let (period_name, default_period) = if is_jwks {
        ("refresh_seconds", 300)
    } else {
        ("poll_seconds", 10)
    };
    let refresh_seconds =
        seconds(&mut fields, period_name, 1, 86_400, errors).unwrap_or(default_period);
    let timeout_ms = seconds(&mut fields, "timeout_ms", 10, 60_000, errors).unwrap_or(2_000);
    let (max_stale_seconds, early_refetch_seconds) = if is_jwks {
        let max_stale =
            seconds(&mut fields, "max_stale_seconds", 1, 30 * 86_400, errors).unwrap_or(86_400);
        if max_stale < refresh_seconds {
            errors.add(
                &child(path, "max_stale_seconds"),
                format!("must be at least {period_name} (keys would go stale between fetches)"),
            );
        }
        let early = seconds(
            &mut fields,
            "unknown_kid_refetch_seconds",
            1,
            86_400,
            errors,
        )
        .unwrap_or(30);
        (Some(max_stale), Some(early))
    } else {
        (None, None)
    };
    // The same credentials as the introspection service's (`introspection.client_auth`).
    let client_auth = fields
        .take("client_auth")
        .and_then(|(v, p)| crate::introspect::compile_client_auth_into(v, &p, env, errors));
    fields.finish(errors);
    Some(RemoteSource {
        cluster: cluster?,
        authority: authority?,
        path: url_path?,
        refresh_seconds,
        timeout_ms,
        max_stale_seconds,
        early_refetch_seconds,
        key: key.to_string(),
        client_auth,
    })
}

pub fn compile_revocation(
    v: &Value,
    path: &str,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> RevocationConfig {
    let mut config = RevocationConfig::default();
    let Some(map) = v.as_object() else {
        errors.add(path, "expected an object");
        return config;
    };
    // The lists share the remote document's parser; `remote` is ours.
    let mut lists = map.clone();
    if let Some(remote) = lists.remove("remote") {
        if !remote.is_null() {
            config.remote = compile_remote(
                &remote,
                &child(path, "remote"),
                "api_guard.revocations",
                false,
                env,
                errors,
            );
        }
    }
    match RevocationList::parse(&Value::Object(lists)) {
        Ok(list) => config.list = list,
        Err(problems) => add_all(errors, path, problems),
    }
    config
}

pub fn compile_cache(v: &Value, path: &str, errors: &mut ConfigErrors) -> CacheSettings {
    let mut settings = CacheSettings::default();
    let Some(mut fields) = Fields::of(v, path, errors) else {
        return settings;
    };
    if let Some(n) = seconds(&mut fields, "max_entries", 0, 1_000_000, errors) {
        settings.max_entries = usize::try_from(n).unwrap_or(0);
    }
    if let Some(n) = seconds(&mut fields, "max_ttl_seconds", 1, 86_400, errors) {
        settings.max_ttl_seconds = n;
    }
    fields.finish(errors);
    settings
}

/// A policy's `jwt` rule; provider names resolve against the compiled providers.
pub fn compile_rule(
    v: &Value,
    path: &str,
    providers: &[String],
    errors: &mut ConfigErrors,
) -> Option<JwtRule> {
    let mut fields = Fields::of(v, path, errors)?;
    let ids: Vec<ProviderId> = match fields.take("providers") {
        Some((v, p)) => {
            let names = strings(v, &p, errors);
            if names.is_empty() && v.is_array() {
                errors.add(&p, "list at least one provider");
            }
            names
                .into_iter()
                .filter_map(|(n, ip)| match providers.iter().position(|x| x == n) {
                    Some(i) => Some(ProviderId(i)),
                    None => {
                        errors.add(&ip, format!("unknown provider {n:?}"));
                        None
                    }
                })
                .collect()
        }
        None => {
            errors.add(path, "a jwt rule needs \"providers\"");
            Vec::new()
        }
    };
    let required_scopes = fields
        .take("required_scopes")
        .map(|(v, p)| {
            strings(v, &p, errors)
                .into_iter()
                .map(|(s, _)| s.to_string())
                .collect()
        })
        .unwrap_or_default();
    let claims = fields
        .take("claims")
        .map(|(v, p)| compile_claim_rules(v, &p, errors))
        .unwrap_or_default();
    fields.finish(errors);
    Some(JwtRule {
        providers: ids,
        required_scopes,
        claims,
        limit_claims: Vec::new(),
    })
}

fn compile_claim_rules(v: &Value, path: &str, errors: &mut ConfigErrors) -> Vec<ClaimRule> {
    let items = array(v, path, errors).unwrap_or_default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = super::reader::item(path, i);
        let Some(mut fields) = Fields::of(item, &p, errors) else {
            continue;
        };
        let claim = match fields.take("claim") {
            Some((v, cp)) => string(v, &cp, errors).map(str::to_string),
            None => {
                errors.add(&p, "a claim rule needs \"claim\"");
                None
            }
        };
        let equals = fields.take("equals");
        let one_of = fields.take("one_of");
        let contains = fields.take("contains");
        fields.finish(errors);
        let Some(claim) = claim else { continue };
        let rule = match (equals, one_of, contains) {
            (Some((v, _)), None, None) => Some(ClaimRule::Equals {
                claim,
                value: v.clone(),
            }),
            (None, Some((v, op)), None) => array(v, &op, errors).map(|vals| ClaimRule::OneOf {
                claim,
                values: vals.to_vec(),
            }),
            (None, None, Some((v, _))) => Some(ClaimRule::Contains {
                claim,
                value: v.clone(),
            }),
            _ => {
                errors.add(
                    &p,
                    "a claim rule has exactly one of \"equals\", \"one_of\", \"contains\"",
                );
                None
            }
        };
        out.extend(rule);
    }
    out
}

#[cfg(test)]
mod tests;
