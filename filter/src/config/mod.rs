//! Configuration compiling: the plugin configuration (JSON) becomes a [`Guard`] whose types
//! cannot hold bad values (CIDR sets, key digests, validated names). Every error is collected
//! with its JSON path; a configuration with any error is refused whole, never half-applied.
//!
//! The full reference of fields and defaults is `docs/configuration.md`.

mod abuse;
mod jwt;
mod ratelimits;
pub(crate) mod reader;
mod routes;
pub(crate) mod sources;

pub use jwt::{RevocationConfig, DEFAULT_SUBJECT_HEADER};
pub use reader::{ConfigError, ConfigErrors};
pub use sources::MAX_TOKEN_SOURCES;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::checks::api_key::{ApiKey, ApiKeyRule, ApiKeys, Client, ClientIndex};
use crate::checks::ip::IpRule;
use crate::checks::preflight::Preflight;
use crate::checks::request_limits::RequestLimits;
use crate::cidr::{Cidr, CidrSet};
use crate::digest::KeyDigest;
use crate::jwt::provider::AuthMode;
use crate::payload::{compile_params, compile_payload, ParamKind};
use crate::policy::{Guard, IdentityHeaders, PolicyId, RoutePolicy, UnmatchedRoutes};
use crate::screening::compile_screening;
use crate::time::parse_rfc3339;
use reader::{array, boolean, child, choice, integer, item, named, string, strings, Fields};
pub(crate) use reader::{header_name, is_policy_name};
use routes::compile_methods;

pub use reader::Env;

/// The name of the policy used by routes that do not name one.
pub const DEFAULT_POLICY: &str = "default";
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// Compiles a plugin configuration with an empty environment (a configuration that names a
/// secret's environment variable fails: use [`compile_with_env`]).
pub fn compile(json: &[u8]) -> Result<Guard, ConfigErrors> {
    compile_with_env(json, &|_| None)
}

/// Compiles a plugin configuration; `env` looks up the environment variables that hold
/// secrets api-guard sends (the introspection client credentials), so that they need not be
/// written into the configuration.
pub fn compile_with_env(json: &[u8], env: Env<'_>) -> Result<Guard, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    if json.iter().all(u8::is_ascii_whitespace) {
        errors.add(
            "",
            "the configuration is empty (api-guard needs at least {\"policies\": {...}})",
        );
        return Err(errors);
    }
    let root: Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            // serde_json's message names line and column, never the content.
            errors.add("", format!("not valid JSON: {e}"));
            return Err(errors);
        }
    };
    let guard = compile_root(&root, env, &mut errors);
    match guard {
        Some(g) if errors.is_empty() => Ok(g),
        _ => Err(errors),
    }
}

fn compile_root(root: &Value, env: Env<'_>, errors: &mut ConfigErrors) -> Option<Guard> {
    let mut fields = Fields::of(root, "", errors)?;

    let unmatched_routes = choice(
        fields.take("unmatched_routes"),
        &[
            ("deny", UnmatchedRoutes::Deny),
            ("allow", UnmatchedRoutes::Allow),
        ],
        UnmatchedRoutes::Deny,
        errors,
    );

    let identity_headers = match fields.take("identity_headers") {
        None => IdentityHeaders::default(),
        Some((v, path)) => compile_identity_headers(v, &path, errors),
    };

    let (api_keys, client_ids) = match fields.take("clients") {
        None => (ApiKeys::default(), Vec::new()),
        Some((v, path)) => compile_clients(v, &path, errors),
    };

    let jwt_providers = match fields.take("jwt_providers") {
        None => Vec::new(),
        Some((v, path)) => {
            let reserved = jwt::Reserved {
                // The tier header too: it carries the rate-limit tier api-guard matched and
                // nothing else, so Envoy's descriptors and routes on it have one source.
                identity: [
                    &identity_headers.client_id,
                    &identity_headers.key_id,
                    &identity_headers.tier,
                ],
            };
            jwt::compile_providers(v, &path, &reserved, env, errors)
        }
    };
    let provider_names: Vec<String> = jwt_providers.iter().map(|p| p.name.clone()).collect();
    let revocation = match fields.take("revocation") {
        None => RevocationConfig::default(),
        Some((v, path)) => jwt::compile_revocation(v, &path, env, errors),
    };
    let remote_clients = fields
        .take("remote_clients")
        .and_then(|(v, p)| jwt::compile_remote(v, &p, REMOTE_CLIENTS_KEY, false, env, errors));
    let introspection = fields
        .take("introspection")
        .and_then(|(v, p)| crate::introspect::compile_service_into(v, &p, env, errors));
    let abuse = fields
        .take("abuse")
        .map(|(v, p)| abuse::compile(v, &p, errors))
        .unwrap_or_default();
    let jwt_cache = match fields.take("jwt_cache") {
        None => Default::default(),
        Some((v, path)) => jwt::compile_cache(v, &path, errors),
    };

    let mut policies = Vec::new();
    if let Some((v, path)) = fields.take("policies") {
        if let Some(map) = named(v, &path, errors) {
            for (name, value) in map {
                let p = child(&path, name);
                if !is_policy_name(name) {
                    errors.add(&p, "policy names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit");
                }
                let ctx = PolicyContext {
                    identity: &identity_headers,
                    client_ids: &client_ids,
                    providers: &provider_names,
                    has_introspection: introspection.is_some(),
                };
                if let Some(policy) = compile_policy(name, value, &p, &ctx, errors) {
                    policies.push(policy);
                }
            }
        }
    }
    let routes_field = fields.take("routes");
    fields.finish(errors);

    let by_name: HashMap<String, PolicyId> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), PolicyId(i)))
        .collect();
    let default_policy = by_name.get(DEFAULT_POLICY).copied();
    let routes = routes_field
        .map(|(v, p)| routes::compile(v, &p, &by_name, errors))
        .unwrap_or_default();
    Some(Guard {
        policies,
        by_name,
        default_policy,
        unmatched_routes,
        identity_headers,
        api_keys,
        jwt_providers,
        revocation,
        jwt_cache,
        introspection,
        remote_clients,
        abuse,
        routes,
    })
}

/// Shared-data key of the published remote key list.
pub const REMOTE_CLIENTS_KEY: &str = "api_guard.clients";

/// Compiles a remote key list, `{"clients": {...}}` with the same client and key entries as the
/// configuration's `clients` (digests only). Refused whole on any error, so a broken list
/// never replaces the last good one.
pub fn compile_remote_clients(bytes: &[u8]) -> Result<ApiKeys, Vec<crate::jwt::JwksError>> {
    const MAX_BYTES: usize = 8 * 1024 * 1024;
    let to_jwks = |errors: ConfigErrors| {
        errors
            .0
            .into_iter()
            .map(|e| crate::jwt::JwksError::new(e.path, e.message))
            .collect::<Vec<_>>()
    };
    if bytes.len() > MAX_BYTES {
        return Err(vec![crate::jwt::JwksError::new("", "larger than 8 MiB")]);
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![crate::jwt::JwksError::new(
            "",
            format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        )]
    })?;
    let mut errors = ConfigErrors::default();
    let Some(mut fields) = Fields::of(&doc, "", &mut errors) else {
        return Err(to_jwks(errors));
    };
    let keys = match fields.take("clients") {
        Some((v, path)) => compile_clients(v, &path, &mut errors).0,
        None => {
            errors.add("", "a key list needs \"clients\"");
            ApiKeys::default()
        }
    };
    fields.finish(&mut errors);
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(to_jwks(errors))
    }
}

/// Client and key ids travel in upstream headers and log lines: keep them plain.
fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b'@'))
}

const IDENTIFIER_RULE: &str =
    "ids are 1-128 characters of [A-Za-z0-9_.:@-], starting with a letter or digit";

fn compile_identity_headers(v: &Value, path: &str, errors: &mut ConfigErrors) -> IdentityHeaders {
    let mut headers = IdentityHeaders::default();
    let Some(mut fields) = Fields::of(v, path, errors) else {
        return headers;
    };
    if let Some((v, p)) = fields.take("client_id") {
        if let Some(h) = header_name(v, &p, errors) {
            headers.client_id = h;
        }
    }
    if let Some((v, p)) = fields.take("key_id") {
        if let Some(h) = header_name(v, &p, errors) {
            headers.key_id = h;
        }
    }
    if let Some((v, p)) = fields.take("tier") {
        if let Some(h) = header_name(v, &p, errors) {
            headers.tier = h;
        }
    }
    if headers.client_id == headers.key_id
        || headers.tier == headers.client_id
        || headers.tier == headers.key_id
    {
        errors.add(path, "client_id, key_id and tier must be different headers");
    }
    fields.finish(errors);
    headers
}

fn compile_clients(v: &Value, path: &str, errors: &mut ConfigErrors) -> (ApiKeys, Vec<String>) {
    let Some(map) = named(v, path, errors) else {
        return (ApiKeys::default(), Vec::new());
    };
    let mut clients = Vec::new();
    // Where each digest was first seen, to report duplicates across clients by path.
    let mut seen_digests: HashMap<KeyDigest, String> = HashMap::new();
    for (client_id, value) in map {
        let cpath = child(path, client_id);
        if !is_identifier(client_id) {
            errors.add(&cpath, format!("client {IDENTIFIER_RULE}"));
        }
        let Some(mut fields) = Fields::of(value, &cpath, errors) else {
            continue;
        };
        let mut keys = Vec::new();
        let mut digests = Vec::new();
        match fields.take("keys") {
            None => errors.add(&cpath, "a client needs \"keys\" (at least one)"),
            Some((v, kpath)) => {
                let items = array(v, &kpath, errors).unwrap_or_default();
                if items.is_empty() {
                    errors.add(&kpath, "a client needs at least one key");
                }
                let mut key_ids = HashSet::new();
                for (i, key_value) in items.iter().enumerate() {
                    let p = item(&kpath, i);
                    if let Some((key, digest)) = compile_key(key_value, &p, errors) {
                        if !key_ids.insert(key.id.clone()) {
                            errors.add(&child(&p, "id"), format!("duplicate key id {:?}", key.id));
                        }
                        if let Some(first) = seen_digests.get(&digest) {
                            errors.add(
                                &child(&p, "sha256"),
                                format!("the same key digest is already used at {first}"),
                            );
                        } else {
                            seen_digests.insert(digest, child(&p, "sha256"));
                        }
                        keys.push(key);
                        digests.push(digest);
                    }
                }
            }
        }
        fields.finish(errors);
        clients.push((
            Client {
                id: client_id.clone(),
                keys,
            },
            digests,
        ));
    }
    let ids = clients.iter().map(|(c, _)| c.id.clone()).collect();
    (ApiKeys::new(clients), ids)
}

fn compile_key(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<(ApiKey, KeyDigest)> {
    let mut fields = Fields::of(v, path, errors)?;
    let id = match fields.take("id") {
        Some((v, p)) => match string(v, &p, errors) {
            Some(s) if is_identifier(s) => Some(s.to_string()),
            Some(_) => {
                errors.add(&p, format!("key {IDENTIFIER_RULE}"));
                None
            }
            None => None,
        },
        None => {
            errors.add(path, "a key needs an \"id\"");
            None
        }
    };
    let digest = match fields.take("sha256") {
        // Never echo the value: someone may have pasted a plaintext key here by mistake.
        Some((v, p)) => string(v, &p, errors).and_then(|s| {
            let d = KeyDigest::from_hex(s);
            if d.is_none() {
                errors.add(&p, "not a SHA-256 digest (64 hex digits); store `printf %s KEY | sha256sum`, never the key");
            }
            d
        }),
        None => {
            errors.add(path, "a key needs \"sha256\", the hex SHA-256 digest of the key");
            None
        }
    };
    let time = |name: &'static str, fields: &mut Fields<'_>, errors: &mut ConfigErrors| {
        let (v, p) = fields.take(name)?;
        let s = string(v, &p, errors)?;
        let t = parse_rfc3339(s);
        if t.is_none() {
            errors.add(&p, format!("not an RFC 3339 timestamp: {s:?}"));
        }
        t
    };
    let not_before = time("not_before", &mut fields, errors);
    let expires = time("expires", &mut fields, errors);
    if let (Some(nb), Some(exp)) = (not_before, expires) {
        if exp <= nb {
            errors.add(&child(path, "expires"), "must be later than not_before");
        }
    }
    let disabled = fields
        .take("disabled")
        .and_then(|(v, p)| boolean(v, &p, errors))
        .unwrap_or(false);
    fields.finish(errors);
    Some((
        ApiKey {
            id: id?,
            not_before,
            expires,
            disabled,
        },
        digest?,
    ))
}

struct PolicyContext<'a> {
    identity: &'a IdentityHeaders,
    client_ids: &'a [String],
    providers: &'a [String],
    has_introspection: bool,
}

fn compile_policy(
    name: &str,
    v: &Value,
    path: &str,
    ctx: &PolicyContext<'_>,
    errors: &mut ConfigErrors,
) -> Option<RoutePolicy> {
    let mut fields = Fields::of(v, path, errors)?;
    let request_limits = fields
        .take("request_limits")
        .map(|(v, p)| compile_request_limits(v, &p, errors))
        .unwrap_or_default();
    let methods = fields
        .take("methods")
        .map(|(v, p)| compile_methods(v, &p, errors));
    let ip = fields.take("ip").map(|(v, p)| compile_ip(v, &p, errors));
    let api_key = fields
        .take("api_key")
        .and_then(|(v, p)| compile_api_key(v, &p, ctx, errors));
    let jwt = fields
        .take("jwt")
        .and_then(|(v, p)| jwt::compile_rule(v, &p, ctx.providers, errors));
    let introspection = fields.take("introspection").and_then(|(v, p)| {
        if !ctx.has_introspection {
            errors.add(
                &p,
                "a policy's \"introspection\" needs the top-level \"introspection\" service",
            );
        }
        crate::introspect::compile_rule_into(v, &p, errors)
    });
    let auth_field = fields.take("auth");
    let auth_path = auth_field.as_ref().map(|(_, p)| p.clone());
    let auth = choice(
        auth_field,
        &[
            ("all", AuthMode::All),
            ("any", AuthMode::Any),
            ("optional", AuthMode::Optional),
        ],
        AuthMode::All,
        errors,
    );
    let credentials = [api_key.is_some(), jwt.is_some(), introspection.is_some()]
        .iter()
        .filter(|c| **c)
        .count();
    if auth == AuthMode::Any && credentials < 2 {
        errors.add(
            auth_path.as_deref().unwrap_or(path),
            "\"auth\": \"any\" needs two of \"api_key\", \"jwt\", \"introspection\" (either one then suffices)",
        );
    }
    if auth == AuthMode::Optional && credentials == 0 {
        errors.add(
            auth_path.as_deref().unwrap_or(path),
            "\"auth\": \"optional\" needs \"api_key\", \"jwt\" or \"introspection\"",
        );
    }
    let query = fields
        .take("query")
        .and_then(|(v, p)| reader::collect(compile_params(v, &p, ParamKind::Query), errors));
    let headers = fields
        .take("headers")
        .and_then(|(v, p)| reader::collect(compile_params(v, &p, ParamKind::Header), errors));
    let payload = fields
        .take("payload")
        .and_then(|(v, p)| reader::collect(compile_payload(v, &p), errors));
    let screening = fields
        .take("screening")
        .and_then(|(v, p)| reader::collect(compile_screening(v, &p), errors));
    let mtls = fields
        .take("mtls")
        .and_then(|(v, p)| reader::collect(crate::checks::mtls::compile(v, &p), errors));
    let preflight = choice(
        fields.take("preflight"),
        &[("check", Preflight::Check), ("pass", Preflight::Pass)],
        Preflight::Check,
        errors,
    );
    let creds = ratelimits::Credentials {
        api_key: api_key.is_some(),
        api_key_sources: api_key
            .as_ref()
            .map(|r| (r.header.as_deref(), r.query.as_deref())),
        jwt: jwt.is_some(),
        introspection: introspection.is_some(),
        auth,
        mtls: mtls.is_some(),
        client_ids: ctx.client_ids,
    };
    let rate_limits = fields
        .take("rate_limits")
        .map(|(v, p)| ratelimits::compile(name, v, &p, &creds, errors))
        .unwrap_or_default();
    let mut jwt = jwt;
    if let Some(rule) = &mut jwt {
        let mut claims: Vec<String> = Vec::new();
        for claim in rate_limits.iter().flat_map(|l| l.claims()) {
            if !claims.iter().any(|c| c == claim) {
                claims.push(claim.to_string());
            }
        }
        rule.limit_claims = claims;
    }
    fields.finish(errors);
    Some(RoutePolicy {
        name: name.to_string(),
        request_limits,
        methods,
        ip,
        api_key,
        jwt,
        auth,
        query,
        headers,
        payload,
        introspection,
        screening,
        rate_limits,
        mtls,
        preflight,
    })
}

fn compile_request_limits(v: &Value, path: &str, errors: &mut ConfigErrors) -> RequestLimits {
    let mut limits = RequestLimits::default();
    let Some(mut fields) = Fields::of(v, path, errors) else {
        return limits;
    };
    if let Some(n) = fields
        .take("max_path_bytes")
        .and_then(|(v, p)| integer(v, &p, 1, 65_536, errors))
    {
        limits.max_path_bytes = n as usize;
    }
    if let Some(n) = fields
        .take("max_header_bytes")
        .and_then(|(v, p)| integer(v, &p, 1, 1_048_576, errors))
    {
        limits.max_header_bytes = n as usize;
    }
    fields.finish(errors);
    limits
}

fn compile_ip(v: &Value, path: &str, errors: &mut ConfigErrors) -> IpRule {
    let mut rule = IpRule {
        allow: CidrSet::default(),
        deny: CidrSet::default(),
    };
    let Some(mut fields) = Fields::of(v, path, errors) else {
        return rule;
    };
    let cidrs = |name: &'static str, fields: &mut Fields<'_>, errors: &mut ConfigErrors| {
        let Some((v, p)) = fields.take(name) else {
            return CidrSet::default();
        };
        let parsed = strings(v, &p, errors)
            .into_iter()
            .filter_map(|(s, ip)| match s.parse::<Cidr>() {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.add(&ip, format!("not a CIDR: {s:?} ({e})"));
                    None
                }
            })
            .collect();
        CidrSet::new(parsed)
    };
    rule.allow = cidrs("allow", &mut fields, errors);
    rule.deny = cidrs("deny", &mut fields, errors);
    fields.finish(errors);
    rule
}

fn compile_api_key(
    v: &Value,
    path: &str,
    ctx: &PolicyContext<'_>,
    errors: &mut ConfigErrors,
) -> Option<ApiKeyRule> {
    let mut fields = Fields::of(v, path, errors)?;
    let header = fields.take("header").and_then(|(v, p)| {
        let h = header_name(v, &p, errors)?;
        if h == ctx.identity.client_id || h == ctx.identity.key_id {
            errors.add(&p, "the key header cannot be one of the identity headers");
        }
        Some(h)
    });
    let query = fields.take("query").and_then(|(v, p)| {
        let q = string(v, &p, errors)?;
        let valid = !q.is_empty()
            && q.len() <= 128
            && !q.bytes().any(|c| {
                matches!(c, b'&' | b'=' | b'#' | b'?' | b'%' | b'+') || c <= b' ' || c >= 0x7f
            });
        if !valid {
            errors.add(&p, format!("not a plain query parameter name: {q:?}"));
            return None;
        }
        Some(q.to_string())
    });
    let had_source = fields.map_has("header") || fields.map_has("query");
    // With neither source named, the key is read from the conventional header.
    let header = if !had_source {
        Some(DEFAULT_API_KEY_HEADER.to_string())
    } else {
        header
    };
    let admitted = fields.take("clients").map(|(v, p)| {
        let names = strings(v, &p, errors);
        if names.is_empty() && v.is_array() {
            errors.add(
                &p,
                "list at least one client, or omit \"clients\" to admit every client",
            );
        }
        names
            .into_iter()
            .filter_map(
                |(name, ip)| match ctx.client_ids.iter().position(|c| c == name) {
                    Some(i) => Some(ClientIndex(i)),
                    None => {
                        errors.add(&ip, format!("unknown client {name:?}"));
                        None
                    }
                },
            )
            .collect::<Vec<_>>()
    });
    let strip_credential = fields
        .take("strip_credential")
        .and_then(|(v, p)| boolean(v, &p, errors))
        .unwrap_or(true);
    fields.finish(errors);
    Some(ApiKeyRule {
        header,
        query,
        admitted,
        strip_credential,
    })
}

#[cfg(test)]
mod tests;
