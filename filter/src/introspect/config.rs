//! Compiling the `introspection` configuration: the service (top level) and the per-policy
//! rule. Strict: unknown fields, wrong types and out-of-range values are errors, each with its
//! JSON path; every error is collected. Error messages never quote configured values. Read
//! with the configuration's one reader (`config/reader.rs`); the token `sources` with the one
//! token-source compiler JWT providers use too.

use serde_json::Value;

use crate::config::reader::{array, child, is_plain_name, string, ConfigErrors, Env, Fields};
use crate::config::sources::compile_token_sources;
use crate::remote::ClientAuth;

use super::answer::{scope_token_ok, Answer, MAX_SCOPES};
use super::breaker::Breaker;
use super::cache::{IntrospectionCache, CLAIM_MARGIN_MS};
use crate::jwt::source::TokenSource;

/// Shared-data key prefix of everything introspection stores.
pub const KEY_PREFIX: &str = "api_guard.introspect";

/// The introspection service and its cache, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionService {
    /// Envoy cluster the callouts go through.
    pub cluster: String,
    pub authority: String,
    pub path: String,
    /// Callout timeout (10-60000, default 500).
    pub timeout_ms: u64,
    /// Default 60 (1-86400).
    pub positive_ttl_seconds: u64,
    /// Default 10 (1-3600).
    pub negative_ttl_seconds: u64,
    /// Default 10 (0-3600; 0 disables stale-while-revalidate).
    pub stale_while_revalidate_seconds: u64,
    /// Cache slots, i.e. shared-data keys (1-1000000, default 10000).
    pub max_entries: u32,
    /// Consecutive failures that open the breaker (1-1000, default 5).
    pub breaker_failures: u32,
    /// How long the breaker stays open (1-3600, default 10).
    pub breaker_open_seconds: u64,
    /// Where the credential is found; default `Authorization: Bearer`.
    pub sources: Vec<TokenSource>,
    /// How api-guard authenticates itself to the service (RFC 7662 section 2.1), if at all.
    pub client_auth: Option<ClientAuth>,
    /// What the service's tokens can look like; others are refused without a callout.
    pub token_shape: crate::abuse::shape::TokenShape,
    /// Derived from the fields above once, at configure time (the request path only borrows
    /// them: no key prefix is formatted per request).
    cache: IntrospectionCache,
    breaker: Breaker,
}

impl IntrospectionService {
    pub fn cache(&self) -> &IntrospectionCache {
        &self.cache
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    fn derive(mut self) -> IntrospectionService {
        self.cache = IntrospectionCache {
            prefix: format!("{KEY_PREFIX}.cache"),
            max_entries: self.max_entries,
            positive_ttl_ms: self.positive_ttl_seconds.saturating_mul(1000),
            negative_ttl_ms: self.negative_ttl_seconds.saturating_mul(1000),
            stale_while_revalidate_ms: self.stale_while_revalidate_seconds.saturating_mul(1000),
        };
        self.breaker = Breaker {
            key: format!("{KEY_PREFIX}.breaker"),
            failures: self.breaker_failures,
            open_ms: self.breaker_open_seconds.saturating_mul(1000),
            probe_ms: self.timeout_ms.saturating_add(CLAIM_MARGIN_MS),
        };
        self
    }

    /// The callout's headers (the body is [`super::request_body`]).
    pub fn request_headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![
            (":method", "POST"),
            (":path", &self.path),
            (":authority", &self.authority),
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ];
        if let Some(auth) = &self.client_auth {
            headers.push(("authorization", auth.header_value()));
        }
        headers
    }
}

/// Reads the secret named by the string field `field` from the environment.
fn env_secret(
    f: &mut Fields<'_>,
    field: &'static str,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> Option<String> {
    let Some((v, p)) = f.take(field) else {
        errors.add(f.path(), format!("\"{field}\" is required"));
        return None;
    };
    let name = string(v, &p, errors)?;
    if !is_plain_name(name) {
        errors.add(&p, "not an environment variable name");
        return None;
    }
    match env(name) {
        Some(secret)
            if !secret.is_empty() && secret.bytes().all(|c| c.is_ascii_graphic() || c == b' ') =>
        {
            Some(secret)
        }
        // Never quote the value; the variable's name is in the configuration already.
        Some(_) => {
            errors.add(
                &p,
                "the variable's value must be 1 or more visible ASCII characters",
            );
            None
        }
        None => {
            errors.add(
                &p,
                "the variable is not set in the wasm VM (vm_config.environment_variables)",
            );
            None
        }
    }
}

/// Compiles a `client_auth` object (introspection, and every remote document source).
pub fn compile_client_auth(
    v: &Value,
    path: &str,
    env: Env<'_>,
) -> Result<ClientAuth, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let auth = compile_client_auth_into(v, path, env, &mut errors);
    done(auth, errors)
}

/// Compiles a `client_auth` object into `errors` (the configuration compiler's reader).
pub(crate) fn compile_client_auth_into(
    v: &Value,
    path: &str,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> Option<ClientAuth> {
    let mut f = Fields::of(v, path, errors)?;
    let method = f.required_text("method", errors);
    let auth = match method.as_deref() {
        Some("basic") => {
            let id = f.required_text("client_id", errors);
            let secret = env_secret(&mut f, "client_secret_env", env, errors);
            match id.zip(secret) {
                Some((id, secret)) => {
                    let auth = ClientAuth::basic(&id, &secret);
                    if auth.is_none() {
                        errors.add(path, "cannot encode the credentials");
                    }
                    auth
                }
                None => None,
            }
        }
        Some("bearer") => match env_secret(&mut f, "token_env", env, errors) {
            Some(token) if token.contains(' ') => {
                errors.add(&child(path, "token_env"), "a bearer token has no spaces");
                None
            }
            Some(token) => Some(ClientAuth::bearer(&token)),
            None => None,
        },
        Some(_) => {
            errors.add(&child(path, "method"), "expected \"basic\" or \"bearer\"");
            None
        }
        None => None,
    };
    f.finish(errors);
    auth
}

/// What to do when no answer can be had (service down or slow, breaker open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Fail closed (503 with `retry-after`): only fresh answers are served; a stale answer is
    /// served only while the service is callable (stale-while-revalidate).
    #[default]
    Deny,
    /// Serve any cached answer until its `stale_until` even while the service is down; without
    /// one, 503 as `Deny`.
    CacheOnly,
}

/// A policy's use of introspection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntrospectionRule {
    /// Every one must be granted (`scope`); otherwise 403.
    pub required_scopes: Vec<String>,
    pub on_failure: OnFailure,
}

/// How a rule judges an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Allow,
    /// Inactive (unknown, revoked, expired): 401.
    Inactive,
    /// Active, but a required scope is missing: 403.
    InsufficientScope,
}

impl IntrospectionRule {
    pub fn judge(&self, answer: &Answer, now_ms: u64) -> Judgement {
        if !answer.usable_at(now_ms) {
            Judgement::Inactive
        } else if self.required_scopes.iter().all(|s| answer.has_scope(s)) {
            Judgement::Allow
        } else {
            Judgement::InsufficientScope
        }
    }
}

fn done<T>(value: Option<T>, errors: ConfigErrors) -> Result<T, ConfigErrors> {
    match value {
        Some(v) if errors.is_empty() => Ok(v),
        _ => Err(errors),
    }
}

/// Compiles the top-level `introspection` object; `path` is its JSON path (`introspection`).
pub fn compile_service(v: &Value, path: &str) -> Result<IntrospectionService, ConfigErrors> {
    compile_service_with_env(v, path, &|_| None)
}

/// [`compile_service`] with the VM's environment, where `client_auth` secrets come from.
pub fn compile_service_with_env(
    v: &Value,
    path: &str,
    env: Env<'_>,
) -> Result<IntrospectionService, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let service = compile_service_into(v, path, env, &mut errors);
    done(service, errors)
}

/// [`compile_service_with_env`], collecting into `errors`.
pub(crate) fn compile_service_into(
    v: &Value,
    path: &str,
    env: Env<'_>,
    errors: &mut ConfigErrors,
) -> Option<IntrospectionService> {
    let mut f = Fields::of(v, path, errors)?;
    let cluster = f.required_text("cluster", errors);
    let authority = f.required_text("authority", errors);
    let url_path = f.required_text("path", errors);
    if url_path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        errors.add(&child(path, "path"), "must start with /");
    }
    let timeout_ms = f.integer_or("timeout_ms", 10, 60_000, 500, errors);
    let positive_ttl_seconds = f.integer_or("positive_ttl_seconds", 1, 86_400, 60, errors);
    // At least 1 s: the request that made the callout reads its answer back from the cache;
    // an answer cached for 0 s would send it round again.
    let negative_ttl_seconds = f.integer_or("negative_ttl_seconds", 1, 3_600, 10, errors);
    let stale_while_revalidate_seconds =
        f.integer_or("stale_while_revalidate_seconds", 0, 3_600, 10, errors);
    let max_entries = f.integer_or("max_entries", 1, 1_000_000, 10_000, errors);
    let (breaker_failures, breaker_open_seconds) = match f.take("breaker") {
        None => (5, 10),
        Some((bv, bp)) => match Fields::of(bv, &bp, errors) {
            None => (5, 10),
            Some(mut b) => {
                let failures = b.integer_or("failures", 1, 1_000, 5, errors);
                let open = b.integer_or("open_seconds", 1, 3_600, 10, errors);
                b.finish(errors);
                (failures, open)
            }
        },
    };
    let sources = match f.take("sources") {
        None => vec![TokenSource::bearer()],
        Some((sv, sp)) => compile_token_sources(sv, &sp, errors),
    };
    let client_auth = f
        .take("client_auth")
        .and_then(|(cv, cp)| compile_client_auth_into(cv, &cp, env, errors));
    let token_shape = match f.take("token_shape") {
        None => crate::abuse::shape::TokenShape::default(),
        Some((tv, tp)) => token_shape(tv, &tp, errors),
    };
    f.finish(errors);
    Some(
        IntrospectionService {
            cluster: cluster?,
            authority: authority?,
            path: url_path?,
            timeout_ms,
            positive_ttl_seconds,
            negative_ttl_seconds,
            stale_while_revalidate_seconds,
            max_entries: u32::try_from(max_entries).unwrap_or(10_000),
            breaker_failures: u32::try_from(breaker_failures).unwrap_or(5),
            breaker_open_seconds,
            sources,
            client_auth,
            token_shape,
            cache: IntrospectionCache::default(),
            breaker: Breaker::default(),
        }
        .derive(),
    )
}

/// `token_shape`: `{"min_length": N, "max_length": N, "prefixes": [..], "alphabet": "b64token"}`.
fn token_shape(
    v: &Value,
    path: &str,
    errors: &mut ConfigErrors,
) -> crate::abuse::shape::TokenShape {
    let mut shape = crate::abuse::shape::TokenShape::default();
    let Some(mut f) = Fields::of(v, path, errors) else {
        return shape;
    };
    let max = crate::introspect::answer::MAX_TOKEN_BYTES as u64;
    shape.min_length = usize::try_from(f.integer_or("min_length", 1, max, 1, errors)).unwrap_or(1);
    shape.max_length =
        usize::try_from(f.integer_or("max_length", 1, max, max, errors)).unwrap_or(4096);
    if shape.min_length > shape.max_length {
        errors.add(path, "min_length is more than max_length");
    }
    if let Some((pv, pp)) = f.take("prefixes") {
        for (i, item) in array(pv, &pp, errors)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match item.as_str() {
                Some(p) if !p.is_empty() && p.len() <= 64 => shape.prefixes.push(p.to_string()),
                _ => errors.add(
                    &format!("{pp}[{i}]"),
                    "expected a prefix of 1-64 characters",
                ),
            }
        }
    }
    if let Some((av, ap)) = f.take("alphabet") {
        match av.as_str() {
            Some("b64token") => shape.b64token = true,
            Some("visible") => shape.b64token = false,
            _ => errors.add(&ap, "expected \"b64token\" or \"visible\""),
        }
    }
    f.finish(errors);
    shape
}

/// Compiles a policy's `introspection` object; `path` is its JSON path
/// (`policies.<name>.introspection`).
pub fn compile_rule(v: &Value, path: &str) -> Result<IntrospectionRule, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let rule = compile_rule_into(v, path, &mut errors);
    done(rule, errors)
}

/// [`compile_rule`], collecting into `errors`.
pub(crate) fn compile_rule_into(
    v: &Value,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<IntrospectionRule> {
    let mut f = Fields::of(v, path, errors)?;
    let mut required_scopes: Vec<String> = Vec::new();
    if let Some((sv, sp)) = f.take("required_scopes") {
        if let Some(items) = array(sv, &sp, errors) {
            if items.len() > MAX_SCOPES {
                errors.add(&sp, format!("at most {MAX_SCOPES} scopes"));
            }
            for (i, item) in items.iter().enumerate().take(MAX_SCOPES) {
                let ip = format!("{sp}[{i}]");
                let Some(s) = string(item, &ip, errors) else {
                    continue;
                };
                if !scope_token_ok(s) {
                    errors.add(&ip, "not an OAuth scope (1-128 visible ASCII characters, no quote, backslash or space)");
                } else if required_scopes.iter().any(|have| have == s) {
                    errors.add(&ip, "duplicate scope");
                } else {
                    required_scopes.push(s.to_string());
                }
            }
        }
    }
    let on_failure = match f.take("on_failure") {
        None => OnFailure::Deny,
        Some((ov, op)) => match string(ov, &op, errors) {
            Some("deny") => OnFailure::Deny,
            Some("cache_only") => OnFailure::CacheOnly,
            Some(_) => {
                errors.add(&op, "expected \"deny\" or \"cache_only\"");
                OnFailure::Deny
            }
            None => OnFailure::Deny,
        },
    };
    f.finish(errors);
    Some(IntrospectionRule {
        required_scopes,
        on_failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::ClientAuthMethod;
    use serde_json::json;

    fn full() -> Value {
        json!({"cluster": "auth", "authority": "auth.test", "path": "/introspect", "timeout_ms": 500,
            "positive_ttl_seconds": 60, "negative_ttl_seconds": 10, "stale_while_revalidate_seconds": 10,
            "max_entries": 100000, "breaker": {"failures": 5, "open_seconds": 10},
            "sources": [{"header":"authorization","scheme":"Bearer"}, {"header": "x-api-key"}]})
    }

    #[test]
    fn compiles_the_documented_example() {
        let s = compile_service(&full(), "introspection").unwrap();
        assert_eq!(
            s,
            IntrospectionService {
                cluster: "auth".into(),
                authority: "auth.test".into(),
                path: "/introspect".into(),
                timeout_ms: 500,
                positive_ttl_seconds: 60,
                negative_ttl_seconds: 10,
                stale_while_revalidate_seconds: 10,
                max_entries: 100_000,
                breaker_failures: 5,
                breaker_open_seconds: 10,
                sources: vec![
                    TokenSource::bearer(),
                    TokenSource::Header {
                        name: "x-api-key".into(),
                        scheme: None
                    }
                ],
                client_auth: None,
                token_shape: crate::abuse::shape::TokenShape::default(),
                cache: IntrospectionCache {
                    prefix: "api_guard.introspect.cache".into(),
                    max_entries: 100_000,
                    positive_ttl_ms: 60_000,
                    negative_ttl_ms: 10_000,
                    stale_while_revalidate_ms: 10_000,
                },
                breaker: Breaker {
                    key: "api_guard.introspect.breaker".into(),
                    failures: 5,
                    open_ms: 10_000,
                    probe_ms: 750,
                },
            }
        );
        assert!(s.request_headers().contains(&(":authority", "auth.test")));
    }

    #[test]
    fn client_auth_from_the_environment() {
        let env = |name: &str| match name {
            "INTROSPECT_SECRET" => Some("s3cr:t +%~".to_string()),
            "INTROSPECT_TOKEN" => Some("tok.en-1".to_string()),
            "EMPTY" => Some(String::new()),
            "SPACED" => Some("a b".to_string()),
            "CONTROL" => Some("a\nb".to_string()),
            _ => None,
        };
        let with = |auth: Value| {
            let mut v = full();
            v["client_auth"] = auth;
            compile_service_with_env(&v, "introspection", &env)
        };
        // RFC 6749 2.3.1: id and secret form-urlencoded before Basic; base64 of
        // "api-guard:s3cr%3At+%2B%25%7E".
        let s = with(json!({"method": "basic", "client_id": "api-guard", "client_secret_env": "INTROSPECT_SECRET"}))
            .unwrap();
        let auth = s.client_auth.as_ref().unwrap();
        assert_eq!(auth.method(), ClientAuthMethod::Basic);
        assert_eq!(
            auth.header_value(),
            "Basic YXBpLWd1YXJkOnMzY3IlM0F0KyUyQiUyNSU3RQ=="
        );
        assert!(s.request_headers().contains(&(
            "authorization",
            "Basic YXBpLWd1YXJkOnMzY3IlM0F0KyUyQiUyNSU3RQ=="
        )));
        // The secret never shows in Debug output (logs, panics in tests).
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("YXBp") && debug.contains("<redacted>"),
            "{debug}"
        );
        let s = with(json!({"method": "bearer", "token_env": "INTROSPECT_TOKEN"})).unwrap();
        assert_eq!(
            s.client_auth.as_ref().map(ClientAuth::header_value),
            Some("Bearer tok.en-1")
        );
        // Without client_auth: no authorization header at all.
        let s = compile_service(&full(), "introspection").unwrap();
        assert!(s
            .request_headers()
            .iter()
            .all(|(n, _)| *n != "authorization"));
        // Errors, each at its path, never quoting a value.
        let p = "introspection.client_auth";
        let cases: Vec<(Value, Vec<String>)> = vec![
            (json!("basic"), vec![p.to_string()]),
            (json!({"method": "digest"}), vec![format!("{p}.method")]),
            (json!({}), vec![p.to_string()]),
            (
                json!({"method": "basic", "client_secret_env": "UNSET"}),
                vec![p.to_string(), format!("{p}.client_secret_env")],
            ),
            (
                json!({"method": "basic", "client_id": "x", "client_secret_env": "EMPTY"}),
                vec![format!("{p}.client_secret_env")],
            ),
            (
                json!({"method": "basic", "client_id": "x", "client_secret_env": "CONTROL"}),
                vec![format!("{p}.client_secret_env")],
            ),
            (
                json!({"method": "basic", "client_id": "x", "client_secret_env": "NOT A NAME"}),
                vec![format!("{p}.client_secret_env")],
            ),
            (
                json!({"method": "bearer", "token_env": "SPACED"}),
                vec![format!("{p}.token_env")],
            ),
            (
                json!({"method": "bearer", "token_env": "INTROSPECT_TOKEN", "client_id": "x"}),
                vec![format!("{p}.client_id")],
            ),
            (
                json!({"method": "bearer", "token_env": "INTROSPECT_SECRET"}),
                vec![format!("{p}.token_env")],
            ),
            // Every error at once: an unset variable does not hide an unknown field.
            (
                json!({"method": "bearer", "token_env": "UNSET", "client_id": "x"}),
                vec![format!("{p}.client_id"), format!("{p}.token_env")],
            ),
            (
                json!({"method": "basic", "client_secret_env": "UNSET", "token_env": "X"}),
                vec![
                    p.to_string(),
                    format!("{p}.client_secret_env"),
                    format!("{p}.token_env"),
                ],
            ),
        ];
        for (auth, want) in cases {
            let errs = with(auth.clone()).unwrap_err();
            let mut paths: Vec<String> = errs.0.iter().map(|e| e.path.clone()).collect();
            paths.sort();
            assert_eq!(paths, want, "{auth}");
            for e in &errs.0 {
                assert!(
                    !e.message.contains("s3cr") && !e.message.contains("tok.en"),
                    "{e}"
                );
            }
        }
        // The same configuration without that environment is refused, not half-applied.
        let mut v = full();
        v["client_auth"] = json!({"method": "bearer", "token_env": "INTROSPECT_TOKEN"});
        assert!(compile_service(&v, "introspection").is_err());
    }

    #[test]
    fn defaults() {
        let s = compile_service(
            &json!({"cluster": "a", "authority": "b", "path": "/c"}),
            "introspection",
        )
        .unwrap();
        assert_eq!(
            (
                s.timeout_ms,
                s.positive_ttl_seconds,
                s.negative_ttl_seconds,
                s.stale_while_revalidate_seconds,
                s.max_entries,
                s.breaker_failures,
                s.breaker_open_seconds
            ),
            (500, 60, 10, 10, 10_000, 5, 10)
        );
        assert_eq!(s.sources, vec![TokenSource::bearer()]);
    }

    #[test]
    fn service_errors_table() {
        let with = |patch: Value| {
            let mut v = full();
            for (k, x) in patch.as_object().unwrap() {
                if x.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = x.clone();
                }
            }
            v
        };
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!("x"), vec!["introspection"]),
            (with(json!({"cluster": null})), vec!["introspection"]),
            (with(json!({"cluster": ""})), vec!["introspection.cluster"]),
            (
                with(json!({"authority": "a b"})),
                vec!["introspection.authority"],
            ),
            (
                with(json!({"path": "introspect"})),
                vec!["introspection.path"],
            ),
            (with(json!({"path": 5})), vec!["introspection.path"]),
            (
                with(json!({"timeout_ms": 0})),
                vec!["introspection.timeout_ms"],
            ),
            (
                with(json!({"timeout_ms": 1.5})),
                vec!["introspection.timeout_ms"],
            ),
            (
                with(json!({"positive_ttl_seconds": 0})),
                vec!["introspection.positive_ttl_seconds"],
            ),
            (
                with(json!({"negative_ttl_seconds": -1})),
                vec!["introspection.negative_ttl_seconds"],
            ),
            (
                with(json!({"stale_while_revalidate_seconds": 3601})),
                vec!["introspection.stale_while_revalidate_seconds"],
            ),
            (
                with(json!({"max_entries": 0})),
                vec!["introspection.max_entries"],
            ),
            (
                with(json!({"max_entries": 1_000_001})),
                vec!["introspection.max_entries"],
            ),
            (
                with(json!({"breaker": {"failures": 0, "open": 1}})),
                vec![
                    "introspection.breaker.failures",
                    "introspection.breaker.open",
                ],
            ),
            (with(json!({"breaker": []})), vec!["introspection.breaker"]),
            (with(json!({"sources": []})), vec!["introspection.sources"]),
            (with(json!({"sources": {}})), vec!["introspection.sources"]),
            (
                with(json!({"sources": [{"header": "X-Key"}]})),
                vec!["introspection.sources[0].header"],
            ),
            (
                with(json!({"sources": [{"header": "a", "cookie": "b"}]})),
                vec!["introspection.sources[0]"],
            ),
            (
                with(json!({"sources": [{"cookie": "b", "scheme": "Bearer"}]})),
                vec!["introspection.sources[0]"],
            ),
            (
                with(json!({"sources": [{"header": "a", "scheme": "Be arer"}]})),
                vec!["introspection.sources[0].scheme"],
            ),
            (
                with(json!({"sources": [{"query": "a"}, {"query": "a"}]})),
                vec!["introspection.sources[1]"],
            ),
            (
                with(json!({"sources": [{"header": "a", "typo": 1}]})),
                vec!["introspection.sources[0].typo"],
            ),
            (
                with(json!({"sources": [{}]})),
                vec!["introspection.sources[0]"],
            ),
            (
                with(json!({"ttl": 5, "timeout_ms": 5})),
                vec!["introspection.timeout_ms", "introspection.ttl"],
            ),
        ];
        for (v, want) in cases {
            let errs = compile_service(&v, "introspection").unwrap_err();
            let mut paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
            paths.sort();
            assert_eq!(paths, want, "{v}");
        }
        // Messages name the field, never the value.
        let errs = compile_service(&with(json!({"authority": "sécret"})), "introspection");
        assert!(!format!("{errs:?}").contains("sécret"));
        // Sources that compile: cookie, query, authorization defaults to Bearer.
        let s = compile_service(
            &with(json!({"sources": [{"header": "authorization"}, {"cookie": "sid"}, {"query": "key"}]})),
            "i",
        )
        .unwrap();
        assert_eq!(
            s.sources,
            vec![
                TokenSource::bearer(),
                TokenSource::Cookie("sid".into()),
                TokenSource::Query("key".into())
            ]
        );
    }

    #[test]
    fn rule_table() {
        let p = "policies.orders.introspection";
        let ok = |scopes: &[&str], on_failure| IntrospectionRule {
            required_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            on_failure,
        };
        let too_many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        let cases: Vec<(Value, Result<IntrospectionRule, Vec<String>>)> = vec![
            (json!({}), Ok(ok(&[], OnFailure::Deny))),
            (
                json!({"required_scopes": ["read", "orders:write"], "on_failure": "cache_only"}),
                Ok(ok(&["read", "orders:write"], OnFailure::CacheOnly)),
            ),
            (json!({"on_failure": "deny"}), Ok(ok(&[], OnFailure::Deny))),
            (
                json!({"on_failure": "allow"}),
                Err(vec![format!("{p}.on_failure")]),
            ),
            (
                json!({"on_failure": false}),
                Err(vec![format!("{p}.on_failure")]),
            ),
            (
                json!({"required_scopes": "read"}),
                Err(vec![format!("{p}.required_scopes")]),
            ),
            (
                json!({"required_scopes": ["a b", 3, "", "ok", "ok"]}),
                Err(vec![
                    format!("{p}.required_scopes[0]"),
                    format!("{p}.required_scopes[1]"),
                    format!("{p}.required_scopes[2]"),
                    format!("{p}.required_scopes[4]"),
                ]),
            ),
            (
                json!({"required_scopes": too_many}),
                Err(vec![format!("{p}.required_scopes")]),
            ),
            (json!({"scopes": []}), Err(vec![format!("{p}.scopes")])),
            (json!(["read"]), Err(vec![p.to_string()])),
        ];
        for (v, want) in cases {
            let got = compile_rule(&v, p)
                .map_err(|e| e.0.into_iter().map(|e| e.path).collect::<Vec<_>>());
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn judge_table() {
        let rule = IntrospectionRule {
            required_scopes: vec!["read".into(), "write".into()],
            on_failure: OnFailure::Deny,
        };
        let answer = |active, scopes: &[&str], exp: Option<i64>| Answer {
            active,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            exp: exp.map(crate::time::UnixTime),
            ..Answer::default()
        };
        let now = 1_800_000_000_000;
        let cases = [
            (
                answer(true, &["write", "read", "x"], None),
                Judgement::Allow,
            ),
            (answer(true, &["read"], None), Judgement::InsufficientScope),
            (
                answer(true, &[], Some(1_800_000_001)),
                Judgement::InsufficientScope,
            ),
            (
                answer(true, &["read", "write"], Some(1_800_000_000)),
                Judgement::Inactive,
            ),
            (answer(false, &["read", "write"], None), Judgement::Inactive),
        ];
        for (a, want) in cases {
            assert_eq!(rule.judge(&a, now), want, "{a:?}");
        }
        assert_eq!(
            IntrospectionRule::default().judge(&answer(true, &[], None), now),
            Judgement::Allow
        );
    }
}
