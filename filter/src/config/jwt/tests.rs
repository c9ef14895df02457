//! Compiling `jwt_providers`, `revocation`, `jwt_cache` and a policy's `jwt` / `auth` fields:
//! what a good configuration becomes, and an error table where every bad field is reported
//! with its exact JSON path (`config::compile` is the only public entry point).

use crate::config::*;
use crate::jwt::alg::{Algorithm, AlgorithmSet};
use crate::jwt::provider::{ProviderId, ProviderKeys};
use crate::jwt::source::TokenSource;
use crate::jwt::verify::tests::fixture;
use crate::time::UnixTime;
use serde_json::{json, Value};

const DIGEST: &str = "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873";

/// The fixture JWKS restricted to some kids.
fn jwks(kids: &[&str]) -> Value {
    let list: Vec<Value> = fixture()["jwks"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({ "keys": list })
}

/// A valid provider (one inline EC key) with `extra` merged in; a `null` removes a field.
fn provider(extra: Value) -> Value {
    let mut p = json!({
        "issuer": "https://issuer.test",
        "audiences": ["api"],
        "jwks": jwks(&["ec-256"]),
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            p.as_object_mut().unwrap().remove(k);
        } else {
            p[k] = v.clone();
        }
    }
    p
}

fn remote(extra: Value) -> Value {
    let mut r = json!({"cluster": "jwks", "authority": "issuer.test", "path": "/jwks.json"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            r.as_object_mut().unwrap().remove(k);
        } else {
            r[k] = v.clone();
        }
    }
    r
}

/// A configuration with one provider `corp` and one policy `p` using it.
fn with_provider(extra: Value) -> Value {
    json!({
        "jwt_providers": {"corp": provider(extra)},
        "policies": {"p": {"jwt": {"providers": ["corp"]}}}
    })
}

fn compile_value(config: &Value) -> Result<Guard, Vec<String>> {
    compile(config.to_string().as_bytes())
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

#[test]
fn provider_defaults() {
    let g = compile_value(&with_provider(json!({}))).unwrap();
    let p = &g.jwt_providers[0];
    assert_eq!(p.name, "corp");
    assert_eq!(p.rules.issuer, "https://issuer.test");
    assert_eq!(p.rules.audiences, vec!["api".to_string()]);
    assert_eq!(p.rules.algorithms, AlgorithmSet::all());
    assert_eq!(p.rules.clock_skew_seconds, 60);
    assert_eq!(p.rules.max_lifetime_seconds, None);
    assert!(p.rules.require_exp);
    assert!(p.rules.required_claims.is_empty());
    assert!(p.rules.kid_required);
    assert_eq!(p.rules.max_token_bytes, 8192);
    assert_eq!(p.sources, vec![TokenSource::bearer()]);
    assert_eq!(
        p.forward_claims,
        vec![("sub".to_string(), "x-api-guard-subject".to_string())]
    );
    assert!(!p.strip_token);
    assert!(p.decryption.is_none());
    assert!(matches!(&p.keys, ProviderKeys::Inline(set) if set.len() == 1));
    let rule = g.policies[0].jwt.as_ref().unwrap();
    assert_eq!(rule.providers, vec![ProviderId(0)]);
    assert!(rule.required_scopes.is_empty() && rule.claims.is_empty());
    assert_eq!(g.policies[0].auth, AuthMode::All);
    assert_eq!(g.jwt_cache, crate::jwt::cache::CacheSettings::default());
    assert!(g.revocation.list.is_empty() && g.revocation.remote.is_none());
}

#[test]
fn provider_fields_compile() {
    let g = compile_value(&json!({
        "jwt_providers": {
            "corp": provider(json!({
                "audiences": ["api", "web"],
                "algorithms": ["ES256"],
                "clock_skew_seconds": 0, "max_lifetime_seconds": 3600, "require_exp": false,
                "required_claims": ["sub", "jti"], "kid": "optional", "max_token_bytes": 256,
                "sources": [{"header": "authorization"}, {"header": "x-token"},
                            {"header": "x-auth", "scheme": "Token"}, {"cookie": "session"},
                            {"query": "access_token"}],
                "forward_claims": {"sub": "x-sub", "tier": "x-tier"},
                "strip_token": true,
            })),
            "enc": provider(json!({
                "jwks": null,
                "remote_jwks": remote(json!({"refresh_seconds": 60, "timeout_ms": 500,
                    "max_stale_seconds": 60, "unknown_kid_refetch_seconds": 5})),
                "decryption_keys": serde_json::from_str::<Value>(
                    include_str!("../../jwt/testdata/jwe.json")).unwrap()["decryption_keys"],
            })),
        },
        "revocation": {"jtis": ["a", {"value": "b", "expires": "2030-01-01T00:00:00Z"}],
                       "subjects": ["mallory"], "key_ids": ["k-1"],
                       "remote": {"cluster": "auth", "authority": "auth.test", "path": "/revocations",
                                  "poll_seconds": 5, "timeout_ms": 100}},
        "jwt_cache": {"max_entries": 0, "max_ttl_seconds": 86400},
        "policies": {"p": {"jwt": {"providers": ["enc", "corp"], "required_scopes": ["read"],
            "claims": [{"claim": "tier", "equals": "gold"}, {"claim": "org", "one_of": ["a", 1]},
                       {"claim": "roles", "contains": "admin"}]}}}
    }))
    .unwrap();
    // Providers are compiled in name order (a JSON object is a map).
    let names: Vec<&str> = g.jwt_providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["corp", "enc"]);
    let corp = &g.jwt_providers[0];
    assert_eq!(
        corp.rules.algorithms,
        AlgorithmSet::EMPTY.with(Algorithm::ES256)
    );
    assert_eq!(
        corp.rules.audiences,
        vec!["api".to_string(), "web".to_string()]
    );
    assert_eq!(
        (
            corp.rules.clock_skew_seconds,
            corp.rules.max_lifetime_seconds,
            corp.rules.require_exp
        ),
        (0, Some(3600), false)
    );
    assert_eq!(
        corp.rules.required_claims,
        vec!["sub".to_string(), "jti".to_string()]
    );
    assert!(!corp.rules.kid_required);
    assert_eq!(corp.rules.max_token_bytes, 256);
    let header = |name: &str, scheme: Option<&str>| TokenSource::Header {
        name: name.into(),
        scheme: scheme.map(Into::into),
    };
    assert_eq!(
        corp.sources,
        vec![
            // `authorization` always needs a scheme: Bearer by default.
            header("authorization", Some("Bearer")),
            header("x-token", None),
            header("x-auth", Some("Token")),
            TokenSource::Cookie("session".into()),
            TokenSource::Query("access_token".into()),
        ]
    );
    assert_eq!(
        corp.forward_claims,
        vec![
            ("sub".into(), "x-sub".into()),
            ("tier".into(), "x-tier".into())
        ]
    );
    assert!(corp.strip_token);
    let enc = &g.jwt_providers[1];
    assert!(enc.decryption.is_some());
    let ProviderKeys::Remote(source) = &enc.keys else {
        panic!("remote keys expected")
    };
    assert_eq!(
        (
            source.cluster.as_str(),
            source.authority.as_str(),
            source.path.as_str()
        ),
        ("jwks", "issuer.test", "/jwks.json")
    );
    assert_eq!(
        (
            source.refresh_seconds,
            source.timeout_ms,
            source.max_stale_seconds,
            source.early_refetch_seconds
        ),
        (60, 500, Some(60), Some(5))
    );
    assert_eq!(source.key, "api_guard.jwks.enc");
    let rev = g.revocation.remote.as_ref().unwrap();
    assert_eq!((rev.refresh_seconds, rev.timeout_ms), (5, 100));
    assert_eq!(
        (rev.max_stale_seconds, rev.early_refetch_seconds),
        (None, None)
    );
    assert_eq!(rev.key, "api_guard.revocations");
    let list = &g.revocation.list;
    assert_eq!(list.len(), 4);
    let t = |s: &str| crate::time::parse_rfc3339(s).unwrap();
    assert!(list.revokes_token(Some("a"), None, UnixTime(i64::MAX)));
    assert!(list.revokes_token(Some("b"), None, t("2029-12-31T23:59:59Z")));
    assert!(
        !list.revokes_token(Some("b"), None, t("2030-01-01T00:00:00Z")),
        "expires is exclusive"
    );
    assert!(list.revokes_token(None, Some("mallory"), UnixTime(0)));
    assert!(list.revokes_key("k-1", UnixTime(0)));
    assert!(
        !list.revokes_token(Some("k-1"), Some("k-1"), UnixTime(0)),
        "lists do not mix"
    );
    assert_eq!(g.jwt_cache.max_entries, 0);
    assert_eq!(g.jwt_cache.max_ttl_seconds, 86_400);
    let rule = g.policies[0].jwt.as_ref().unwrap();
    assert_eq!(
        rule.providers,
        vec![ProviderId(1), ProviderId(0)],
        "the policy's order"
    );
    assert_eq!(rule.required_scopes, vec!["read".to_string()]);
    assert_eq!(rule.claims.len(), 3);
}

#[test]
fn defaults_of_remote_documents() {
    let g = compile_value(&json!({
        "jwt_providers": {"corp": provider(json!({"jwks": null, "remote_jwks": remote(json!({}))}))},
        "revocation": {"remote": {"cluster": "auth", "authority": "auth.test", "path": "/r"}},
    }))
    .unwrap();
    let ProviderKeys::Remote(s) = &g.jwt_providers[0].keys else {
        panic!("remote keys expected")
    };
    assert_eq!(
        (
            s.refresh_seconds,
            s.timeout_ms,
            s.max_stale_seconds,
            s.early_refetch_seconds
        ),
        (300, 2000, Some(86_400), Some(30))
    );
    let r = g.revocation.remote.as_ref().unwrap();
    assert_eq!((r.refresh_seconds, r.timeout_ms), (10, 2000));
}

#[test]
fn kid_optional_and_auth_modes_that_compile() {
    // A single key, with or without kid: `kid: optional` is fine.
    let single_ec = with_provider(json!({"kid": "optional"}));
    let hmac = with_provider(json!({"kid": "optional", "jwks": jwks(&["hmac-1"])}));
    let pinned_rsa = with_provider(json!({"kid": "optional", "jwks": jwks(&["rsa-pinned"])}));
    for config in [single_ec, hmac, pinned_rsa] {
        let g = compile_value(&config).unwrap();
        assert!(!g.jwt_providers[0].rules.kid_required, "{config}");
    }
    let g = compile_value(&json!({
        "clients": {"acme": {"keys": [{"id": "acme-1", "sha256": DIGEST}]}},
        "jwt_providers": {"corp": provider(json!({}))},
        "policies": {
            "any": {"api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any"},
            "opt_key": {"api_key": {}, "auth": "optional"},
            "opt_jwt": {"jwt": {"providers": ["corp"]}, "auth": "optional"},
            "all": {"api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "all"},
        }
    }))
    .unwrap();
    let mode = |name: &str| g.policies[g.by_name[name].0].auth;
    assert_eq!(mode("any"), AuthMode::Any);
    assert_eq!(mode("opt_key"), AuthMode::Optional);
    assert_eq!(mode("opt_jwt"), AuthMode::Optional);
    assert_eq!(mode("all"), AuthMode::All);
}

#[test]
fn jwt_error_paths_table() {
    let supported = Algorithm::ALL.map(Algorithm::name).join(", ");
    let kid_single = "jwt_providers.corp.kid: \"kid\": \"optional\" needs an inline JWKS with a single key (with several keys or a remote JWKS, tokens must name their key)";
    let exactly_one =
        "a token source is exactly one of {\"header\": ...} (with an optional \"scheme\"), {\"cookie\": ...}, {\"query\": ...}";
    let in_policy = |jwt: Value| json!({"jwt_providers": {"corp": provider(json!({}))}, "policies": {"p": {"jwt": jwt}}});
    let with_root = |key: &str, value: Value| {
        let mut c = with_provider(json!({}));
        c[key] = value;
        c
    };
    let cases: Vec<(Value, String)> = vec![
        // Issuer and audiences are required: without an audience check, a token minted for
        // any other API of the same issuer would pass.
        (with_provider(json!({"issuer": null})),
         "jwt_providers.corp: a provider needs \"issuer\" (the exact `iss` of its tokens)".into()),
        (with_provider(json!({"issuer": ""})), "jwt_providers.corp.issuer: the issuer must not be empty".into()),
        (with_provider(json!({"issuer": 7})), "jwt_providers.corp.issuer: expected a string, found a number".into()),
        (with_provider(json!({"audiences": null})),
         "jwt_providers.corp: a provider needs \"audiences\" (at least one accepted `aud`)".into()),
        (with_provider(json!({"audiences": []})), "jwt_providers.corp.audiences: list at least one audience".into()),
        (with_provider(json!({"audiences": ["api", ""]})),
         "jwt_providers.corp.audiences[1]: an audience must not be empty".into()),
        (with_provider(json!({"audiences": "api"})),
         "jwt_providers.corp.audiences: expected an array, found a string".into()),
        // Algorithms: exact names only; `none` does not exist in any case.
        (with_provider(json!({"algorithms": ["ES256", "none"]})),
         format!("jwt_providers.corp.algorithms[1]: unsupported algorithm \"none\" (supported: {supported})")),
        (with_provider(json!({"algorithms": ["es256"]})),
         format!("jwt_providers.corp.algorithms[0]: unsupported algorithm \"es256\" (supported: {supported})")),
        (with_provider(json!({"algorithms": ["ES512"]})),
         format!("jwt_providers.corp.algorithms[0]: unsupported algorithm \"ES512\" (supported: {supported})")),
        (with_provider(json!({"algorithms": []})),
         "jwt_providers.corp.algorithms: list at least one algorithm, or omit the field".into()),
        // An inline key none of whose algorithms is allowed: a strict configuration error.
        (with_provider(json!({"algorithms": ["RS256"]})),
         "jwt_providers.corp.jwks.keys[0].alg: no algorithm of this key is allowed for the provider".into()),
        // Keys: exactly one of jwks / remote_jwks.
        (with_provider(json!({"remote_jwks": remote(json!({}))})),
         "jwt_providers.corp: use either \"jwks\" or \"remote_jwks\", not both".into()),
        (with_provider(json!({"jwks": null})),
         "jwt_providers.corp: a provider needs keys: \"jwks\" (inline) or \"remote_jwks\"".into()),
        (with_provider(json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "x"}]}})),
         "jwt_providers.corp.jwks.keys[0].x: missing or not a string".into()),
        // Symmetric keys from a remote JWKS: an explicit boolean, meaningless for inline keys.
        (with_provider(json!({"remote_symmetric_keys": true})),
         "jwt_providers.corp.remote_symmetric_keys: applies to \"remote_jwks\" only".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({})), "remote_symmetric_keys": "yes"})),
         "jwt_providers.corp.remote_symmetric_keys: expected a boolean, found a string".into()),
        // kid optional only with one inline key.
        (with_provider(json!({"kid": "optional", "jwks": jwks(&["ec-256", "ec-384"])})), kid_single.into()),
        (with_provider(json!({"kid": "optional", "jwks": null, "remote_jwks": remote(json!({}))})), kid_single.into()),
        (with_provider(json!({"kid": "maybe"})), "jwt_providers.corp.kid: expected \"required\" or \"optional\"".into()),
        // Bounded numbers.
        (with_provider(json!({"clock_skew_seconds": 601})), "jwt_providers.corp.clock_skew_seconds: must be between 0 and 600".into()),
        (with_provider(json!({"max_lifetime_seconds": 0})), "jwt_providers.corp.max_lifetime_seconds: must be between 1 and 31536000".into()),
        (with_provider(json!({"max_token_bytes": 255})), "jwt_providers.corp.max_token_bytes: must be between 256 and 65536".into()),
        (with_provider(json!({"max_token_bytes": 65537})), "jwt_providers.corp.max_token_bytes: must be between 256 and 65536".into()),
        (with_provider(json!({"clock_skew_seconds": -1})), "jwt_providers.corp.clock_skew_seconds: expected a whole number, found a number".into()),
        (with_provider(json!({"require_exp": "yes"})), "jwt_providers.corp.require_exp: expected a boolean, found a string".into()),
        (with_provider(json!({"strip_token": 1})), "jwt_providers.corp.strip_token: expected a boolean, found a number".into()),
        (with_provider(json!({"issuers": ["x"]})), "jwt_providers.corp.issuers: unknown field".into()),
        // Remote JWKS.
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"refresh_seconds": 600, "max_stale_seconds": 599}))})),
         "jwt_providers.corp.remote_jwks.max_stale_seconds: must be at least refresh_seconds (keys would go stale between fetches)".into()),
        // The default refresh (300 s) counts too.
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"max_stale_seconds": 299}))})),
         "jwt_providers.corp.remote_jwks.max_stale_seconds: must be at least refresh_seconds (keys would go stale between fetches)".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"cluster": null}))})),
         "jwt_providers.corp.remote_jwks: \"cluster\" is required".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"path": "jwks.json"}))})),
         "jwt_providers.corp.remote_jwks.path: must start with /".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"authority": "issuer test"}))})),
         "jwt_providers.corp.remote_jwks.authority: must be 1-1024 visible ASCII characters".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"cluster": ""}))})),
         "jwt_providers.corp.remote_jwks.cluster: must be 1-1024 visible ASCII characters".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"refresh_seconds": 0}))})),
         "jwt_providers.corp.remote_jwks.refresh_seconds: must be between 1 and 86400".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"timeout_ms": 9}))})),
         "jwt_providers.corp.remote_jwks.timeout_ms: must be between 10 and 60000".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"unknown_kid_refetch_seconds": 0}))})),
         "jwt_providers.corp.remote_jwks.unknown_kid_refetch_seconds: must be between 1 and 86400".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": remote(json!({"poll_seconds": 5}))})),
         "jwt_providers.corp.remote_jwks.poll_seconds: unknown field".into()),
        (with_provider(json!({"jwks": null, "remote_jwks": "https://issuer.test/jwks.json"})),
         "jwt_providers.corp.remote_jwks: expected an object, found a string".into()),
        // Token sources.
        (with_provider(json!({"sources": []})), "jwt_providers.corp.sources: list at least one token source, or omit the field".into()),
        (with_provider(json!({"sources": [{}]})), format!("jwt_providers.corp.sources[0]: {exactly_one}")),
        (with_provider(json!({"sources": [{"header": "x-token", "cookie": "s"}]})), format!("jwt_providers.corp.sources[0]: {exactly_one}")),
        // A scheme belongs to a header source (one token-source compiler with introspection).
        (with_provider(json!({"sources": [{"cookie": "s", "scheme": "Bearer"}]})), format!("jwt_providers.corp.sources[0]: {exactly_one}")),
        (with_provider(json!({"sources": (0..9).map(|i| json!({"query": format!("t{i}")})).collect::<Vec<_>>()})),
         "jwt_providers.corp.sources: at most 8 token sources".into()),
        (with_provider(json!({"sources": [{"cookie": "s"}, {"header": "X-Token"}]})),
         "jwt_providers.corp.sources[1].header: header names must be lowercase: \"X-Token\"".into()),
        (with_provider(json!({"sources": [{"header": "authorization", "scheme": "Bea rer"}]})),
         "jwt_providers.corp.sources[0].scheme: not an authentication scheme name".into()),
        (with_provider(json!({"sources": [{"cookie": "a b"}]})),
         "jwt_providers.corp.sources[0].cookie: names are 1-128 characters of [A-Za-z0-9_.-]".into()),
        (with_provider(json!({"sources": [{"query": ""}]})),
         "jwt_providers.corp.sources[0].query: names are 1-128 characters of [A-Za-z0-9_.-]".into()),
        // `authorization` without a scheme means Bearer: the same source twice.
        (with_provider(json!({"sources": [{"header": "authorization"}, {"header": "authorization", "scheme": "Bearer"}]})),
         "jwt_providers.corp.sources[1]: duplicate token source".into()),
        (with_provider(json!({"sources": [{"query": "t", "form": "t"}]})), "jwt_providers.corp.sources[0].form: unknown field".into()),
        (with_provider(json!({"sources": {"header": "x"}})), "jwt_providers.corp.sources: expected an array, found an object".into()),
        // Forwarded claims: never into the headers api-guard sets itself, the rate-limit tier
        // included (its default name or the configured one).
        (with_provider(json!({"forward_claims": {"tier": "x-api-guard-tier"}})),
         "jwt_providers.corp.forward_claims.tier: api-guard sets this header itself (identity_headers: client id, key id, rate-limit tier): forward the claim into another header".into()),
        (with_provider(json!({"forward_claims": {"sub": "x-api-guard-client-id"}})),
         "jwt_providers.corp.forward_claims.sub: api-guard sets this header itself (identity_headers: client id, key id, rate-limit tier): forward the claim into another header".into()),
        ({
            let mut v = with_provider(json!({"forward_claims": {"plan": "x-plan"}}));
            v["identity_headers"] = json!({"tier": "x-plan"});
            v
        },
         "jwt_providers.corp.forward_claims.plan: api-guard sets this header itself (identity_headers: client id, key id, rate-limit tier): forward the claim into another header".into()),
        (with_provider(json!({"forward_claims": {"org": "x-api-guard-key-id"}})),
         "jwt_providers.corp.forward_claims.org: api-guard sets this header itself (identity_headers: client id, key id, rate-limit tier): forward the claim into another header".into()),
        // Forwarded claims: never into headers that carry credentials or routing.
        (with_provider(json!({"forward_claims": {"sub": "authorization"}})),
         "jwt_providers.corp.forward_claims.sub: cannot forward a claim into this header".into()),
        (with_provider(json!({"forward_claims": {"sub": "cookie"}})),
         "jwt_providers.corp.forward_claims.sub: cannot forward a claim into this header".into()),
        (with_provider(json!({"forward_claims": {"sub": "host"}})),
         "jwt_providers.corp.forward_claims.sub: cannot forward a claim into this header".into()),
        (with_provider(json!({"forward_claims": {"sub": ":authority"}})),
         "jwt_providers.corp.forward_claims.sub: not an HTTP header name: \":authority\"".into()),
        (with_provider(json!({"forward_claims": {"sub": "X-Sub"}})),
         "jwt_providers.corp.forward_claims.sub: header names must be lowercase: \"X-Sub\"".into()),
        (with_provider(json!({"forward_claims": {"sub": "x-who", "tier": "x-who"}})),
         "jwt_providers.corp.forward_claims.tier: two claims forwarded into the same header".into()),
        (with_provider(json!({"forward_claims": ["sub"]})), "jwt_providers.corp.forward_claims: expected an object, found an array".into()),
        // Decryption keys are checked strictly, with their paths.
        (with_provider(json!({"decryption_keys": {"keys": "none"}})), "jwt_providers.corp.decryption_keys".into()),
        (json!({"jwt_providers": {"bad name": provider(json!({}))}}),
         "jwt_providers.bad name: provider names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit".into()),
        (json!({"jwt_providers": []}), "jwt_providers: expected an object, found an array".into()),
        // Policy rules.
        (in_policy(json!({"providers": ["corp", "ghost"]})), "policies.p.jwt.providers[1]: unknown provider \"ghost\"".into()),
        (json!({"policies": {"p": {"jwt": {"providers": ["corp"]}}}}), "policies.p.jwt.providers[0]: unknown provider \"corp\"".into()),
        (in_policy(json!({"providers": []})), "policies.p.jwt.providers: list at least one provider".into()),
        (in_policy(json!({})), "policies.p.jwt: a jwt rule needs \"providers\"".into()),
        (in_policy(json!({"providers": ["corp"], "required_scopes": "read"})),
         "policies.p.jwt.required_scopes: expected an array, found a string".into()),
        (in_policy(json!({"providers": ["corp"], "scopes": ["read"]})), "policies.p.jwt.scopes: unknown field".into()),
        (in_policy(json!({"providers": ["corp"], "claims": [{"claim": "tier", "equals": "a", "contains": "b"}]})),
         "policies.p.jwt.claims[0]: a claim rule has exactly one of \"equals\", \"one_of\", \"contains\"".into()),
        (in_policy(json!({"providers": ["corp"], "claims": [{"claim": "tier"}]})),
         "policies.p.jwt.claims[0]: a claim rule has exactly one of \"equals\", \"one_of\", \"contains\"".into()),
        (in_policy(json!({"providers": ["corp"], "claims": [{"equals": "gold"}]})),
         "policies.p.jwt.claims[0]: a claim rule needs \"claim\"".into()),
        (in_policy(json!({"providers": ["corp"], "claims": [{"claim": "org", "one_of": "a"}]})),
         "policies.p.jwt.claims[0].one_of: expected an array, found a string".into()),
        (in_policy(json!({"providers": ["corp"], "claims": [{"claim": "org", "matches": "a.*"}]})),
         "policies.p.jwt.claims[0].matches: unknown field".into()),
        // auth modes.
        (json!({"jwt_providers": {"corp": provider(json!({}))}, "policies": {"p": {"jwt": {"providers": ["corp"]}, "auth": "any"}}}),
         "policies.p.auth: \"auth\": \"any\" needs two of \"api_key\", \"jwt\", \"introspection\" (either one then suffices)".into()),
        (json!({"policies": {"p": {"api_key": {}, "auth": "any"}}}),
         "policies.p.auth: \"auth\": \"any\" needs two of \"api_key\", \"jwt\", \"introspection\" (either one then suffices)".into()),
        (json!({"policies": {"p": {"auth": "optional"}}}),
         "policies.p.auth: \"auth\": \"optional\" needs \"api_key\", \"jwt\" or \"introspection\"".into()),
        (json!({"policies": {"p": {"api_key": {}, "auth": "either"}}}),
         "policies.p.auth: expected \"all\" or \"any\" or \"optional\"".into()),
        // Revocation entries.
        (with_root("revocation", json!({"jtis": [""]})), "revocation.jtis[0]: a value is 1-1024 bytes".into()),
        (with_root("revocation", json!({"jtis": ["x".repeat(1025)]})), "revocation.jtis[0]: a value is 1-1024 bytes".into()),
        (with_root("revocation", json!({"subjects": ["a", {"value": "b", "expires": "soon"}]})),
         "revocation.subjects[1].expires: not an RFC 3339 timestamp".into()),
        (with_root("revocation", json!({"key_ids": [{"value": 7}]})), "revocation.key_ids[0].value: must be a string".into()),
        (with_root("revocation", json!({"jtis": "a"})), "revocation.jtis: must be an array".into()),
        (with_root("revocation", json!({"users": ["a"]})),
         "revocation.users: unknown field (expected \"jtis\", \"subjects\" or \"key_ids\")".into()),
        (with_root("revocation", json!(["a"])), "revocation: expected an object".into()),
        (with_root("revocation", json!({"remote": {"cluster": "auth", "authority": "a", "path": "/r", "max_stale_seconds": 60}})),
         "revocation.remote.max_stale_seconds: unknown field".into()),
        (with_root("revocation", json!({"remote": {"cluster": "auth", "authority": "a", "path": "/r", "poll_seconds": 0}})),
         "revocation.remote.poll_seconds: must be between 1 and 86400".into()),
        (with_root("revocation", json!({"remote": {"cluster": "auth", "path": "/r"}})),
         "revocation.remote: \"authority\" is required".into()),
        // Cache bounds.
        (with_root("jwt_cache", json!({"max_entries": 1_000_001})), "jwt_cache.max_entries: must be between 0 and 1000000".into()),
        (with_root("jwt_cache", json!({"max_ttl_seconds": 0})), "jwt_cache.max_ttl_seconds: must be between 1 and 86400".into()),
        (with_root("jwt_cache", json!({"max_ttl_seconds": 86_401})), "jwt_cache.max_ttl_seconds: must be between 1 and 86400".into()),
        (with_root("jwt_cache", json!({"max_entries": 1.5})), "jwt_cache.max_entries: expected a whole number, found a number".into()),
        (with_root("jwt_cache", json!({"size": 10})), "jwt_cache.size: unknown field".into()),
        (with_root("jwt_cache", json!(10)), "jwt_cache: expected an object, found a number".into()),
    ];
    let mut misses = Vec::new();
    for (config, want) in cases {
        let errors = match compile_value(&config) {
            Ok(_) => vec!["(accepted)".to_string()],
            Err(e) => e,
        };
        // A want without ": " names only the path (messages written by other modules).
        let hit = if want.contains(": ") {
            errors.contains(&want)
        } else {
            errors.iter().any(|e| e.starts_with(&want))
        };
        if !hit {
            misses.push(format!("config {config}\n want: {want}\n got: {errors:#?}"));
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n\n"));
}

#[test]
fn secret_key_material_is_never_echoed() {
    // A private JWK pasted into a verification JWKS, and a bad revocation value: the errors
    // name paths, never the values.
    let mut key = fixture()["jwks"]["keys"][2].clone();
    key["d"] = json!("c2VjcmV0LXByaXZhdGUtc2NhbGFy");
    let config = json!({
        "jwt_providers": {"corp": provider(json!({"jwks": {"keys": [key]}}))},
        "revocation": {"jtis": [{"value": "leaky-value", "why": "x"}]},
    });
    let errors = compile_value(&config).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("jwt_providers.corp.jwks.keys[0]")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("revocation.jtis[0]")),
        "{errors:#?}"
    );
    for e in &errors {
        assert!(!e.contains("c2VjcmV0") && !e.contains("leaky-value"), "{e}");
    }
}

#[test]
fn every_jwt_error_is_reported_at_once() {
    let errors = compile_value(&json!({
        "jwt_providers": {"corp": {"algorithms": ["none"], "kid": "optional"}},
        "jwt_cache": {"max_entries": -1},
        "revocation": {"jtis": [""]},
        "policies": {"p": {"jwt": {"providers": ["ghost"]}, "auth": "any"}}
    }))
    .unwrap_err();
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap())
        .collect();
    for want in [
        "jwt_providers.corp",
        "jwt_providers.corp.algorithms[0]",
        "jwt_providers.corp.kid",
        "jwt_cache.max_entries",
        "revocation.jtis[0]",
        "policies.p.jwt.providers[0]",
        "policies.p.auth",
    ] {
        assert!(paths.contains(&want), "{want} missing from {errors:#?}");
    }
}

#[test]
fn example_jwt_policy_compiles() {
    let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/jwt.json")).unwrap();
    let g = compile(&json).unwrap();
    let names: Vec<&str> = g.jwt_providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["corp", "partner"]);
    assert!(matches!(g.jwt_providers[0].keys, ProviderKeys::Remote(_)));
    assert!(matches!(g.jwt_providers[1].keys, ProviderKeys::Inline(_)));
    assert!(g.revocation.remote.is_some() && !g.revocation.list.is_empty());
    assert_eq!(g.jwt_cache.max_entries, 20_000);
    let auth = |name: &str| g.policies[g.by_name[name].0].auth;
    assert_eq!(auth("orders-batch"), AuthMode::Any);
    assert_eq!(auth("catalog"), AuthMode::Optional);
}
