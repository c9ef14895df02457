//! The JWT check of a policy: find the token, verify it (or find it in the verified-token
//! cache), refuse it if revoked, then check the policy's scopes and claim rules and work out
//! which claims to forward upstream.

use crate::abuse::negative::Refused;
use crate::abuse::{Guardrails, Stop, KIND_JWT};
use crate::jwt::cache::TokenCache;
use crate::jwt::claims::{claim_header_value, has_scopes};
use crate::jwt::jwe::{decrypt_nested, is_jwe};
use crate::jwt::provider::{JwtProvider, JwtRule, ProviderId, ProviderKeys};
use crate::jwt::revocation::RevocationList;
use crate::jwt::runtime::TokenRuntime;
use crate::jwt::source::{find_token, location};
use crate::jwt::verify::{verify_jws, VerifiedToken};
use crate::jwt::TokenProblem;
use crate::policy::Guard;
use crate::rejection::Rejection;
use crate::remote::Availability;
use crate::request::RequestView;
use crate::time::UnixTime;
pub use crate::verdict::TokenAdmission;

/// Runs a policy's JWT rule. Providers are tried in order; the first that accepts the token
/// wins. If none does, the first real problem is reported (a provider that found no token at
/// all only matters when every provider found none).
pub fn check<'g>(
    guard: &'g Guard,
    rule: &'g JwtRule,
    runtime: &mut TokenRuntime,
    request: &RequestView<'_>,
    now: UnixTime,
    guardrails: &mut Guardrails<'_>,
) -> Result<TokenAdmission<'g>, Rejection<'g>> {
    let mut problems: Vec<(ProviderId, Rejection<'g>)> = Vec::new();
    for &id in &rule.providers {
        let Some(provider) = guard.provider(id) else {
            continue;
        };
        match check_provider(id, provider, rule, runtime, request, now, guardrails) {
            Ok(admission) => return Ok(admission),
            Err(Rejection::Token {
                problem: TokenProblem::Missing,
                ..
            }) => {}
            Err(other) => problems.push((id, other)),
        }
    }
    // With several providers, report the problem of the one the token claims to come from
    // (its unverified `iss`): that names the right provider in logs and metrics, and an
    // unknown `kid` then refetches the right JWKS. Otherwise the first problem.
    if problems.len() > 1 {
        if let Some(iss) = request_token_issuer(guard, rule, request) {
            if let Some(i) = problems
                .iter()
                .position(|(id, _)| guard.provider(*id).is_some_and(|p| p.rules.issuer == iss))
            {
                return Err(problems.swap_remove(i).1);
            }
        }
    }
    Err(problems
        .into_iter()
        .next()
        .map(|(_, r)| r)
        .unwrap_or(Rejection::Token {
            problem: TokenProblem::Missing,
            provider: None,
        }))
}

/// The `iss` a (compact JWS) token claims, unverified: used only to pick which provider's
/// problem to report, never to accept anything. Failure paths only.
fn request_token_issuer(
    guard: &Guard,
    rule: &JwtRule,
    request: &RequestView<'_>,
) -> Option<String> {
    let provider = rule.providers.first().and_then(|id| guard.provider(*id))?;
    let (token, _) = find_token(&provider.sources, request).ok()?;
    let payload = token.split('.').nth(1)?;
    let bytes = crate::jwt::compact::decode_segment(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

fn check_provider<'g>(
    id: ProviderId,
    provider: &'g JwtProvider,
    rule: &'g JwtRule,
    runtime: &mut TokenRuntime,
    request: &RequestView<'_>,
    now: UnixTime,
    guardrails: &mut Guardrails<'_>,
) -> Result<TokenAdmission<'g>, Rejection<'g>> {
    let name = provider.name.as_str();
    let reject = |problem| Rejection::Token {
        problem,
        provider: Some(name),
    };
    let (token, source) = find_token(&provider.sources, request).map_err(reject)?;
    // Checked before hashing or decoding anything: an oversized token costs nothing more.
    if token.len() > provider.rules.max_token_bytes {
        return Err(reject(TokenProblem::TooLarge));
    }
    let TokenRuntime {
        remote_keys,
        revocations,
        cache,
        ..
    } = runtime;
    // The key set's generation: a remembered refusal holds for the key set that refused it.
    let (keys, generation) = match &provider.keys {
        ProviderKeys::Inline(keys) => (keys, 0),
        ProviderKeys::Remote(remote) => {
            let synced = remote_keys.get(id.0);
            let fetched_at = synced.and_then(|s| s.fetched_at);
            let generation = fetched_at.map_or(0, |t| t.0.unsigned_abs());
            match (
                remote.availability(fetched_at, now),
                synced.and_then(|s| s.value.as_ref()),
            ) {
                (Availability::Fresh, Some(keys)) => (keys, generation),
                (Availability::Stale, _) => return Err(Rejection::KeysStale { provider: name }),
                _ => return Err(Rejection::KeysUnavailable { provider: name }),
            }
        }
    };
    // After the key-set check: a stale key set fails closed for cached tokens too.
    let key = TokenCache::<VerifiedToken>::key(id.0, &token);
    if let Some(verified) = cache.get(&key, now) {
        return admit(
            id,
            provider,
            rule,
            verified,
            revocations,
            request,
            source,
            now,
        );
    }
    // A cold verification: the expensive step the gate protects itself around. A token
    // refused a moment ago is refused again without it, and each client address has a budget
    // of them (HMAC tokens cost microseconds and are not counted).
    let expensive = is_jwe(&token) || !is_hmac(&token, provider.rules.max_token_bytes);
    if expensive {
        match guardrails.before_expensive(KIND_JWT, generation, token.as_bytes()) {
            Ok(()) => {}
            // Refused again as it was refused (an unknown kid may still make the pipeline
            // refetch the key set, which ends this generation).
            Err(Stop::Remembered(Refused::UnknownKey)) => {
                return Err(reject(TokenProblem::UnknownKid))
            }
            Err(Stop::Remembered(_)) => return Err(reject(TokenProblem::BadSignature)),
            Err(Stop::Budget(limited)) => return Err(Rejection::RateLimited(limited)),
            Err(Stop::Unavailable) => return Err(Rejection::RateLimitUnavailable),
        }
    }
    let verified = if is_jwe(&token) {
        let Some(decryption) = &provider.decryption else {
            // An encrypted token for a provider without decryption keys.
            return Err(reject(TokenProblem::AlgorithmNotAllowed));
        };
        let inner =
            decrypt_nested(&token, decryption, provider.rules.max_token_bytes).map_err(reject)?;
        verify_jws(&inner, &provider.rules, keys, now)
    } else {
        verify_jws(&token, &provider.rules, keys, now)
    }
    .map_err(|problem| {
        let remembered = match problem {
            TokenProblem::BadSignature => Some(Refused::BadSignature),
            TokenProblem::UnknownKid => Some(Refused::UnknownKey),
            _ => None,
        };
        if let (true, Some(reason)) = (expensive, remembered) {
            guardrails.refused(KIND_JWT, generation, token.as_bytes(), reason);
        }
        reject(problem)
    })?;
    let result = admit(
        id,
        provider,
        rule,
        &verified,
        revocations,
        request,
        source,
        now,
    );
    // Cache what verified, even if this policy's scopes refuse it: another route may accept it.
    // A revoked token is still checked against the list on every hit.
    let exp = verified.expires_at;
    cache.insert(key, verified, exp, now);
    result
}

/// Whether a compact JWS claims an HMAC algorithm (a cheap verification). Anything unreadable
/// counts as expensive: the budget errs on the side of counting.
fn is_hmac(token: &str, max_bytes: usize) -> bool {
    crate::jwt::compact::parse_jws_header(token, max_bytes).is_ok_and(|h| {
        matches!(
            h.alg,
            crate::jwt::alg::Algorithm::HS256
                | crate::jwt::alg::Algorithm::HS384
                | crate::jwt::alg::Algorithm::HS512
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn admit<'g>(
    id: ProviderId,
    provider: &'g JwtProvider,
    rule: &'g JwtRule,
    token: &VerifiedToken,
    revocations: &RevocationList,
    request: &RequestView<'_>,
    source: &'g crate::jwt::source::TokenSource,
    now: UnixTime,
) -> Result<TokenAdmission<'g>, Rejection<'g>> {
    let reject = |problem| Rejection::Token {
        problem,
        provider: Some(provider.name.as_str()),
    };
    // The cache stores verification, never revocation: every request consults the list.
    if revocations.revokes_token(token.jti.as_deref(), token.subject.as_deref(), now) {
        return Err(reject(TokenProblem::Revoked));
    }
    // An expired token cannot come from the cache (entries end at `exp`), but a token cached
    // with skew must not outlive `exp + skew` either: re-check cheaply.
    if let Some(exp) = token.expires_at {
        let skew = i64::try_from(provider.rules.clock_skew_seconds).unwrap_or(0);
        if now.0 > exp.saturating_add(skew) {
            return Err(reject(TokenProblem::Expired));
        }
    }
    if !has_scopes(token, &rule.required_scopes) {
        return Err(reject(TokenProblem::InsufficientScope));
    }
    if !rule.claims.iter().all(|c| c.holds(token)) {
        return Err(reject(TokenProblem::ClaimMismatch));
    }
    let forward = provider
        .forward_claims
        .iter()
        .filter_map(|(claim, header)| {
            claim_header_value(token, claim).map(|v| (header.as_str(), v))
        })
        .collect();
    let limit_claims = rule
        .limit_claims
        .iter()
        .filter_map(|claim| claim_header_value(token, claim).map(|v| (claim.as_str(), v)))
        .collect();
    Ok(TokenAdmission {
        provider: id,
        subject: token.subject.clone(),
        forward,
        strip: provider.strip_token.then(|| location(source, request)),
        limit_claims,
    })
}

#[cfg(test)]
mod tests {
    //! `check` through the public path: a JSON configuration compiled by `config::compile`,
    //! a `TokenRuntime`, and tokens minted by PyJWT / jwcrypto (`jwt/testdata/*.json`), at the
    //! fixtures' fixed clock so nothing expires with time.

    use super::*;
    use crate::config::compile;
    use crate::jwt::keys::KeySet;
    use crate::jwt::verify::tests::{fixture, keys, token, NOW};
    use crate::verdict::TokenLocation;
    use serde_json::{json, Value};

    const JWE: &str = include_str!("../jwt/testdata/jwe.json");

    fn jwe() -> Value {
        serde_json::from_str(JWE).unwrap()
    }

    fn jwe_token(name: &str) -> String {
        jwe()["tokens"][name]["token"].as_str().unwrap().to_owned()
    }

    /// A provider accepting the fixture tokens, with `extra` fields merged in.
    fn provider(extra: Value) -> Value {
        let mut p = json!({
            "issuer": "https://issuer.test",
            "audiences": ["api"],
            "jwks": fixture()["jwks"],
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

    fn remote() -> Value {
        json!({"cluster": "jwks", "authority": "issuer.test", "path": "/jwks.json",
               "refresh_seconds": 300, "max_stale_seconds": 3600})
    }

    fn guard(config: Value) -> Guard {
        match compile(config.to_string().as_bytes()) {
            Ok(g) => g,
            Err(e) => panic!("{e}\n{config}"),
        }
    }

    fn rule<'g>(g: &'g Guard, policy: &str) -> &'g JwtRule {
        let id = g.by_name[policy];
        g.policies[id.0].jwt.as_ref().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        let mut h = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/orders".to_vec()),
        ];
        for (n, v) in pairs {
            if *n == ":path" {
                h[1].1 = v.as_bytes().to_vec();
            } else {
                h.push((n.to_string(), v.as_bytes().to_vec()));
            }
        }
        h
    }

    fn bearer(name: &str) -> Vec<(String, Vec<u8>)> {
        headers(&[("authorization", &format!("Bearer {}", token(name)))])
    }

    fn run<'g>(
        g: &'g Guard,
        rt: &mut TokenRuntime,
        policy: &str,
        h: &[(String, Vec<u8>)],
        now: UnixTime,
    ) -> Result<TokenAdmission<'g>, Rejection<'g>> {
        let view = RequestView {
            headers: crate::request::leaked_headers(h),
            client_ip: None,
            route_policy: Some(policy),
            route_name: None,
            virtual_host: None,
        };
        let settings = crate::abuse::AbuseSettings::default();
        let store = crate::store::MemoryStore::new();
        let mut guardrails = Guardrails::off(&settings, &store);
        check(g, rule(g, policy), rt, &view, now, &mut guardrails)
    }

    /// The outcome in one comparable shape: Ok(subject) or Err((problem, provider)).
    fn outcome(r: Result<TokenAdmission<'_>, Rejection<'_>>) -> Result<String, String> {
        match r {
            Ok(a) => Ok(a.subject.unwrap_or_default()),
            Err(Rejection::Token { problem, provider }) => {
                Err(format!("{problem:?}@{}", provider.unwrap_or("-")))
            }
            Err(other) => Err(format!("{other:?}")),
        }
    }

    fn jwks_of(kids: &[&str]) -> KeySet {
        keys(kids)
    }

    /// The fixture JWKS restricted to some kids, as configuration JSON.
    fn jwks_json(kids: &[&str]) -> Value {
        let list: Vec<Value> = fixture()["jwks"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
            .cloned()
            .collect();
        json!({ "keys": list })
    }

    /// Providers compile in name order (a JSON object is a map): look ids up by name.
    fn id_of(g: &Guard, name: &str) -> ProviderId {
        ProviderId(g.jwt_providers.iter().position(|p| p.name == name).unwrap())
    }

    #[test]
    fn check_table() {
        let g = guard(json!({
            "jwt_providers": {
                "corp": provider(json!({})),
                "enc": provider(json!({
                    "jwks": jwe()["signing_jwks"],
                    "decryption_keys": jwe()["decryption_keys"],
                })),
            },
            "policies": {
                "plain": {"jwt": {"providers": ["corp"]}},
                "scoped": {"jwt": {"providers": ["corp"], "required_scopes": ["read", "write"],
                    "claims": [{"claim": "tier", "equals": "gold"}, {"claim": "org", "one_of": ["a", "b"]},
                               {"claim": "roles", "contains": "admin"}, {"claim": "level", "equals": 3}]}},
                "needs_delete": {"jwt": {"providers": ["corp"], "required_scopes": ["delete"]}},
                "silver": {"jwt": {"providers": ["corp"], "claims": [{"claim": "tier", "equals": "silver"}]}},
                "typed": {"jwt": {"providers": ["corp"], "claims": [{"claim": "level", "equals": "3"}]}},
                "encrypted": {"jwt": {"providers": ["enc"]}},
            }
        }));
        let oversize = token("oversize");
        let jwe_dir = jwe_token("dir_a256gcm");
        type Headers = Vec<(String, Vec<u8>)>;
        let cases: Vec<(&str, Headers, Result<&str, &str>, &str)> = vec![
            ("plain", bearer("valid_es256"), Ok("user-1"), "valid token"),
            (
                "plain",
                bearer("valid_rs256"),
                Ok("user-1"),
                "another key of the set",
            ),
            (
                "plain",
                headers(&[]),
                Err("Missing@-"),
                "no token: no provider to blame",
            ),
            (
                "plain",
                headers(&[("authorization", "Basic dXNlcjpwdw==")]),
                Err("Missing@-"),
                "a Basic credential is not a bearer token",
            ),
            (
                "plain",
                headers(&[
                    ("authorization", &format!("Bearer {}", token("valid_es256"))),
                    ("authorization", &format!("Bearer {}", token("valid_rs256"))),
                ]),
                Err("Ambiguous@corp"),
                "two tokens are refused, not guessed at",
            ),
            (
                "plain",
                headers(&[("authorization", &format!("Bearer {oversize}"))]),
                Err("TooLarge@corp"),
                "size checked before decoding",
            ),
            ("plain", bearer("expired"), Err("Expired@corp"), "expired"),
            (
                "plain",
                bearer("expired_within_skew"),
                Ok("user-1"),
                "default 60 s skew",
            ),
            (
                "plain",
                bearer("wrong_iss"),
                Err("WrongIssuer@corp"),
                "other issuer",
            ),
            (
                "plain",
                bearer("wrong_aud"),
                Err("WrongAudience@corp"),
                "other audience",
            ),
            (
                "plain",
                bearer("alg_none"),
                Err("AlgorithmNotAllowed@corp"),
                "alg none",
            ),
            (
                "plain",
                bearer("kid_unknown"),
                Err("UnknownKid@corp"),
                "unknown kid",
            ),
            (
                "plain",
                bearer("tampered_payload"),
                Err("BadSignature@corp"),
                "tampered",
            ),
            (
                "plain",
                bearer("valid_no_kid"),
                Err("KidMissing@corp"),
                "kid required by default",
            ),
            (
                "plain",
                bearer("missing_exp"),
                Err("MissingExpiry@corp"),
                "exp required by default",
            ),
            (
                "scoped",
                bearer("valid_scopes"),
                Ok("user-1"),
                "scopes and every claim rule hold",
            ),
            (
                "scoped",
                bearer("valid_es256"),
                Err("InsufficientScope@corp"),
                "no scope claim",
            ),
            (
                "needs_delete",
                bearer("valid_scp_array"),
                Err("InsufficientScope@corp"),
                "scp lacks delete",
            ),
            (
                "silver",
                bearer("valid_scopes"),
                Err("ClaimMismatch@corp"),
                "tier is gold",
            ),
            (
                "typed",
                bearer("valid_scopes"),
                Err("ClaimMismatch@corp"),
                "3 is not \"3\": exact JSON",
            ),
            (
                "plain",
                headers(&[("authorization", &format!("Bearer {jwe_dir}"))]),
                Err("AlgorithmNotAllowed@corp"),
                "encrypted token, provider without decryption keys",
            ),
            (
                "encrypted",
                headers(&[("authorization", &format!("Bearer {jwe_dir}"))]),
                Ok("user-1"),
                "nested JWT: dir + A256GCM wrapping an ES256 JWS",
            ),
            (
                "encrypted",
                headers(&[(
                    "authorization",
                    &format!("Bearer {}", jwe_token("rsa_oaep_256_a256gcm")),
                )]),
                Ok("user-1"),
                "nested JWT: RSA-OAEP-256",
            ),
            (
                "encrypted",
                headers(&[(
                    "authorization",
                    &format!("Bearer {}", jwe_token("tampered_tag")),
                )]),
                Err("DecryptFailed@enc"),
                "tampered tag",
            ),
            (
                "encrypted",
                headers(&[("authorization", &format!("Bearer {}", jwe_token("zip_def")))]),
                Err("AlgorithmNotAllowed@enc"),
                "zip (compression before encryption) is refused",
            ),
        ];
        for (policy, h, want, why) in cases {
            // A fresh runtime per case: no cache carry-over between rows.
            let mut rt = TokenRuntime::new(&g);
            let got = outcome(run(&g, &mut rt, policy, &h, NOW));
            let want = want.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, want, "{why} ({policy})");
        }
    }

    #[test]
    fn forwarded_claims_and_strip_locations() {
        let g = guard(json!({
            "jwt_providers": {
                "corp": provider(json!({
                    "sources": [{"header": "authorization"}, {"header": "x-token"},
                                {"cookie": "session"}, {"query": "access_token"}],
                    "forward_claims": {"sub": "x-sub", "tier": "x-tier", "roles": "x-roles",
                                       "level": "x-level", "premium": "x-premium", "absent": "x-absent"},
                    "strip_token": true,
                })),
                "keep": provider(json!({})),
            },
            "policies": {"p": {"jwt": {"providers": ["corp"]}}, "k": {"jwt": {"providers": ["keep"]}}}
        }));
        let t = token("valid_scopes");
        let cases: Vec<(Vec<(&str, String)>, TokenLocation)> = vec![
            (
                vec![("authorization", format!("bearer {t}"))],
                TokenLocation::Header("authorization"),
            ),
            (
                vec![("x-token", t.clone())],
                TokenLocation::Header("x-token"),
            ),
            (
                vec![("cookie", format!("a=1; session={t}; b=2"))],
                TokenLocation::Cookie {
                    rest: Some("a=1; b=2".into()),
                },
            ),
            (
                vec![("cookie", format!("session={t}"))],
                TokenLocation::Cookie { rest: None },
            ),
            (
                vec![(":path", format!("/orders?x=1&access_token={t}"))],
                TokenLocation::Query {
                    name: "access_token",
                    path_without_token: "/orders?x=1".into(),
                },
            ),
        ];
        for (pairs, want) in cases {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let mut rt = TokenRuntime::new(&g);
            let a = run(&g, &mut rt, "p", &headers(&pairs), NOW).unwrap();
            assert_eq!(a.strip, Some(want), "{pairs:?}");
            assert_eq!(a.provider, ProviderId(0));
            // Absent claims are not forwarded; arrays are joined, numbers and booleans as JSON.
            // (Order follows the configuration map, which serde_json keeps sorted.)
            let mut forward = a.forward.clone();
            forward.sort();
            assert_eq!(
                forward,
                vec![
                    ("x-level", "3".to_string()),
                    ("x-premium", "true".to_string()),
                    ("x-roles", "admin,dev".to_string()),
                    ("x-sub", "user-1".to_string()),
                    ("x-tier", "gold".to_string()),
                ]
            );
        }
        // Defaults: sub forwarded to x-api-guard-subject, the token is left in place.
        let mut rt = TokenRuntime::new(&g);
        let a = run(&g, &mut rt, "k", &bearer("valid_es256"), NOW).unwrap();
        assert_eq!(
            a.forward,
            vec![("x-api-guard-subject", "user-1".to_string())]
        );
        assert_eq!(a.strip, None);
        assert_eq!(a.provider, ProviderId(1));
    }

    #[test]
    fn cache_hit_skips_verification_until_the_key_set_changes() {
        let g = guard(json!({
            "jwt_providers": {"corp": provider(json!({"jwks": null, "remote_jwks": remote()}))},
            "policies": {"p": {"jwt": {"providers": ["corp"]}}}
        }));
        let mut rt = TokenRuntime::new(&g);
        rt.remote_keys[0].install(jwks_of(&["ec-256"]), NOW);
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW)),
            Ok("user-1".into())
        );
        assert_eq!(rt.cache.len(), 1);
        // Swap the key set underneath the cache WITHOUT clearing it (Synced::install alone):
        // a fresh verification would now fail, so an admission proves the cache was used.
        rt.remote_keys[0].install(jwks_of(&["ed-1"]), NOW);
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW)),
            Ok("user-1".into())
        );
        // The same check for a token never seen: verified for real, and refused.
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es384"), NOW)),
            Err("UnknownKid@corp".into())
        );
        // TokenRuntime::install_keys is what the host calls: it clears the cache, so the key
        // that left the set stops verifying at once.
        rt.install_keys(ProviderId(0), jwks_of(&["ed-1"]), NOW);
        assert!(rt.cache.is_empty());
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW)),
            Err("UnknownKid@corp".into())
        );
        // A token refused by the policy (scope) is still cached: the verification was good.
        rt.install_keys(ProviderId(0), jwks_of(&[]), NOW);
        let _ = run(&g, &mut rt, "p", &bearer("valid_eddsa"), NOW);
        assert_eq!(rt.cache.len(), 1);
        // Refused tokens are not cached.
        let _ = run(&g, &mut rt, "p", &bearer("expired"), NOW);
        assert_eq!(rt.cache.len(), 1);
    }

    #[test]
    fn cache_disabled_verifies_every_time() {
        let g = guard(json!({
            "jwt_providers": {"corp": provider(json!({"jwks": null, "remote_jwks": remote()}))},
            "jwt_cache": {"max_entries": 0},
            "policies": {"p": {"jwt": {"providers": ["corp"]}}}
        }));
        let mut rt = TokenRuntime::new(&g);
        rt.remote_keys[0].install(jwks_of(&["ec-256"]), NOW);
        assert!(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW).is_ok());
        assert!(rt.cache.is_empty());
        rt.remote_keys[0].install(jwks_of(&["ed-1"]), NOW);
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW)),
            Err("UnknownKid@corp".into())
        );
    }

    #[test]
    fn revocation_applies_to_cached_tokens() {
        let g = guard(json!({
            "jwt_providers": {"corp": provider(json!({}))},
            "revocation": {"subjects": [{"value": "user-1", "expires": "2020-01-01T00:00:00Z"}]},
            "policies": {"p": {"jwt": {"providers": ["corp"]}}}
        }));
        let mut rt = TokenRuntime::new(&g);
        // The configured entry expired in 2020: it no longer applies.
        assert!(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW).is_ok());
        assert_eq!(rt.cache.len(), 1, "now cached");
        type Doc = (Value, Result<&'static str, &'static str>);
        let docs: Vec<Doc> = vec![
            (json!({"jtis": ["jti-1"]}), Err("Revoked@corp")),
            (json!({"subjects": ["user-1"]}), Err("Revoked@corp")),
            (
                json!({"jtis": [{"value": "jti-1", "expires": "2100-01-01T00:00:00Z"}]}),
                Err("Revoked@corp"),
            ),
            // Ends before `now` (2027-01-15): no longer applies.
            (
                json!({"jtis": [{"value": "jti-1", "expires": "2027-01-01T00:00:00Z"}]}),
                Ok("user-1"),
            ),
            (
                json!({"jtis": ["jti-2"], "subjects": ["user-2"]}),
                Ok("user-1"),
            ),
            // API key ids never revoke tokens.
            (json!({"key_ids": ["jti-1", "user-1"]}), Ok("user-1")),
        ];
        for (doc, want) in docs {
            let list = RevocationList::parse(&doc).unwrap();
            rt.install_revocations(&g, list, NOW);
            let got = outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW));
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{doc}");
            assert_eq!(
                rt.cache.len(),
                1,
                "revocation never evicts or bypasses the cache"
            );
        }
    }

    /// A remote JWKS is read by anyone who can reach it: a symmetric (`oct`) key published
    /// there is a secret everyone may sign with. Such keys are skipped unless the provider says
    /// `remote_symmetric_keys: true`; the asymmetric keys beside them keep working, and a
    /// document with nothing else usable is not installed (503 until a good one arrives).
    #[test]
    fn remote_symmetric_keys_are_refused_unless_the_provider_allows_them() {
        use crate::remote::publish;
        use crate::store::MemoryStore;
        let published = |kids: &[&str]| serde_json::to_vec(&jwks_json(kids)).unwrap();
        // (provider extra fields, published kids) -> (HS256 outcome, ES256 outcome)
        type Case = (Value, &'static [&'static str], &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                json!({}),
                &["hmac-1", "ec-256"],
                "UnknownKid@corp",
                "user-1",
            ),
            (
                json!({}),
                &["hmac-1"],
                "KeysUnavailable { provider: \"corp\" }",
                "KeysUnavailable { provider: \"corp\" }",
            ),
            (
                json!({"remote_symmetric_keys": false}),
                &["hmac-1", "ec-256"],
                "UnknownKid@corp",
                "user-1",
            ),
            (
                json!({"remote_symmetric_keys": true}),
                &["hmac-1", "ec-256"],
                "user-1",
                "user-1",
            ),
        ];
        for (extra, kids, want_hs, want_es) in cases {
            let mut fields = json!({"jwks": null, "remote_jwks": remote()});
            for (k, v) in extra.as_object().unwrap() {
                fields[k] = v.clone();
            }
            let g = guard(json!({
                "jwt_providers": {"corp": provider(fields)},
                "policies": {"p": {"jwt": {"providers": ["corp"]}}}
            }));
            let ProviderKeys::Remote(source) = &g.jwt_providers[0].keys else {
                panic!("a remote provider");
            };
            let store = MemoryStore::new();
            publish(&store, source, NOW, &published(kids)).unwrap();
            let mut rt = TokenRuntime::new(&g);
            rt.sync(&g, &store).unwrap();
            let got = |name: &str, rt: &mut TokenRuntime| {
                let r = outcome(run(&g, rt, "p", &bearer(name), NOW));
                r.unwrap_or_else(|e| e)
            };
            assert_eq!(got("valid_hs256", &mut rt), want_hs, "{extra} {kids:?}");
            assert_eq!(got("valid_es256", &mut rt), want_es, "{extra} {kids:?}");
        }
    }

    #[test]
    fn remote_key_availability() {
        let g = guard(json!({
            "jwt_providers": {"corp": provider(json!({"jwks": null, "remote_jwks": remote()}))},
            "policies": {"p": {"jwt": {"providers": ["corp"]}}}
        }));
        // (fetched `age` seconds ago, or never) -> outcome; max_stale_seconds is 3600.
        let cases: [(Option<i64>, Result<&str, &str>); 5] = [
            (None, Err("KeysUnavailable { provider: \"corp\" }")),
            (Some(0), Ok("user-1")),
            (Some(3600), Ok("user-1")),
            (Some(3601), Err("KeysStale { provider: \"corp\" }")),
            (Some(1_000_000), Err("KeysStale { provider: \"corp\" }")),
        ];
        for (age, want) in cases {
            let mut rt = TokenRuntime::new(&g);
            if let Some(age) = age {
                rt.remote_keys[0].install(jwks_of(&[]), UnixTime(NOW.0 - age));
            }
            let got = outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW));
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{age:?}"
            );
            // A missing token is still "missing", whatever the key set's state: `auth: any`
            // and `optional` depend on it.
            let got = outcome(run(&g, &mut rt, "p", &headers(&[]), NOW));
            assert_eq!(got, Err("Missing@-".to_string()), "{age:?}");
        }
        // A cached token fails closed too once the key set goes stale.
        let mut rt = TokenRuntime::new(&g);
        rt.remote_keys[0].install(jwks_of(&[]), NOW);
        assert!(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW).is_ok());
        assert_eq!(rt.cache.len(), 1);
        let later = UnixTime(NOW.0 + 3601);
        assert_eq!(
            run(&g, &mut rt, "p", &bearer("valid_es256"), later),
            Err(Rejection::KeysStale { provider: "corp" })
        );
    }

    #[test]
    fn a_vm_that_never_had_the_keys_syncs_them_on_the_request_path() {
        use crate::remote::publish;
        use crate::store::MemoryStore;
        let g = guard(json!({
            "jwt_providers": {
                "corp": provider(json!({"jwks": null, "remote_jwks": remote()})),
                "inline": provider(json!({"issuer": "https://inline.test"})),
            },
            "policies": {"p": {"jwt": {"providers": ["corp"]}}}
        }));
        let ProviderKeys::Remote(source) = &g.jwt_providers[0].keys else {
            panic!("corp is remote")
        };
        let store = MemoryStore::new();
        let mut rt = TokenRuntime::new(&g);
        assert!(rt.lacks_first_documents(&g));
        // Nothing published yet: one lookup, still unavailable.
        rt.sync_first_documents(&g, &store).unwrap();
        assert_eq!(store.calls().0, 1, "one lookup per missing document");
        assert!(rt.lacks_first_documents(&g));
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW)),
            Err("KeysUnavailable { provider: \"corp\" }".into())
        );
        // Another VM fetched and published the JWKS: the next request picks it up.
        let body = serde_json::to_vec(&jwks_json(&["ec-256"])).unwrap();
        publish(&store, source, NOW, &body).unwrap();
        let report = rt.sync_first_documents(&g, &store).unwrap();
        assert_eq!(report.keys_updated, 1);
        assert!(!rt.lacks_first_documents(&g));
        assert_eq!(
            outcome(run(&g, &mut rt, "p", &bearer("valid_es256"), NOW)),
            Ok("user-1".into())
        );
        // Once every document is here it reads nothing more (updates come with the tick).
        let before = store.calls().0;
        rt.sync_first_documents(&g, &store).unwrap();
        assert_eq!(store.calls().0, before);
    }

    #[test]
    fn providers_are_tried_in_order() {
        let g = guard(json!({
            "jwt_providers": {
                // Same keys, another issuer: refuses every fixture token with WrongIssuer.
                "other": provider(json!({"issuer": "https://other.test"})),
                "corp": provider(json!({})),
                "xtok": provider(json!({"sources": [{"header": "x-token"}]})),
                "evil": provider(json!({"issuer": "https://evil.test"})),
                "remote": provider(json!({"jwks": null, "remote_jwks": remote()})),
            },
            "policies": {
                "other_first": {"jwt": {"providers": ["other", "corp"]}},
                "corp_first": {"jwt": {"providers": ["corp", "other"]}},
                "xtok_first": {"jwt": {"providers": ["xtok", "corp"]}},
                "two_bad": {"jwt": {"providers": ["other", "xtok"]}},
                "evil_last": {"jwt": {"providers": ["corp", "evil"]}},
                "remote_first": {"jwt": {"providers": ["remote", "corp"]}},
            }
        }));
        let cases = [
            (
                "other_first",
                bearer("valid_es256"),
                Ok("user-1"),
                "a later provider accepts",
            ),
            (
                "corp_first",
                bearer("expired"),
                Err("Expired@corp"),
                "first real problem is reported",
            ),
            (
                "other_first",
                bearer("expired"),
                Err("Expired@corp"),
                "with several problems, the provider matching the token's iss is reported",
            ),
            (
                "other_first",
                bearer("missing_exp"),
                Err("MissingExpiry@corp"),
                "the issuer's provider, not the first one",
            ),
            (
                "xtok_first",
                bearer("expired"),
                Err("Expired@corp"),
                "a provider that found no token does not mask a later real problem",
            ),
            (
                "two_bad",
                headers(&[]),
                Err("Missing@-"),
                "nobody found a token",
            ),
            (
                "two_bad",
                bearer("valid_es256"),
                Err("WrongIssuer@other"),
                "xtok found none",
            ),
            (
                "evil_last",
                bearer("wrong_iss"),
                Ok("user-1"),
                "the token's issuer is evil.test",
            ),
            (
                "remote_first",
                bearer("valid_es256"),
                Ok("user-1"),
                "an unavailable key set does not block a later provider",
            ),
            (
                "remote_first",
                bearer("expired"),
                Err("KeysUnavailable { provider: \"remote\" }"),
                "...but it is the first real problem when nobody accepts",
            ),
        ];
        for (policy, h, want, why) in cases {
            let mut rt = TokenRuntime::new(&g);
            let got = outcome(run(&g, &mut rt, policy, &h, NOW));
            let want = want.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, want, "{why} ({policy})");
        }
        // The winner is reported by id, and each provider caches under its own key.
        let mut rt = TokenRuntime::new(&g);
        let a = run(&g, &mut rt, "evil_last", &bearer("wrong_iss"), NOW).unwrap();
        assert_eq!(a.provider, id_of(&g, "evil"));
        assert_eq!(rt.cache.len(), 1);
        let a = run(&g, &mut rt, "other_first", &bearer("valid_es256"), NOW).unwrap();
        assert_eq!(a.provider, id_of(&g, "corp"));
        assert_eq!(rt.cache.len(), 2);
    }

    #[test]
    fn algorithm_restriction_and_allowed_set() {
        // `algorithms` narrows what the keys may verify: the oct key without `alg` would verify
        // HS256/384/512, here only HS256.
        let g = guard(json!({
            "jwt_providers": {"corp": provider(json!({
                "algorithms": ["ES256", "HS256"],
                "jwks": jwks_json(&["ec-256", "hmac-1"]),
            }))},
            "policies": {"p": {"jwt": {"providers": ["corp"]}}}
        }));
        let cases = [
            ("valid_es256", Ok("user-1")),
            ("valid_hs256", Ok("user-1")),
            ("valid_hs384", Err("AlgorithmNotAllowed@corp")),
            ("valid_rs256", Err("AlgorithmNotAllowed@corp")),
            ("valid_es384", Err("AlgorithmNotAllowed@corp")),
            // HS256 is allowed, but the RSA kid is not in this set.
            ("confusion_hs256_rsa_pem", Err("UnknownKid@corp")),
            // RS256 naming a kid we hold: the algorithm is refused before any key lookup.
            ("kid_of_es256_key", Err("AlgorithmNotAllowed@corp")),
        ];
        for (name, want) in cases {
            let mut rt = TokenRuntime::new(&g);
            let got = outcome(run(&g, &mut rt, "p", &bearer(name), NOW));
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{name}"
            );
        }
    }

    #[test]
    fn an_unknown_kid_is_remembered_for_the_key_set_that_did_not_have_it() {
        use crate::abuse::{AbuseEvent, AbuseSettings};
        let g = guard(json!({
            "jwt_providers": {"corp": provider(json!({"jwks": jwks_json(&["rsa-1"])}))},
            "abuse": {"negative_cache": {"ttl_seconds": 30, "max_entries": 64},
                      "expensive_per_address": {"rate": 1, "per": "minute", "burst": 2}},
            "policies": {"plain": {"jwt": {"providers": ["corp"]}}}
        }));
        let mut rt = TokenRuntime::new(&g);
        let store = crate::store::MemoryStore::new();
        let h = bearer("valid_es256");
        let view = RequestView {
            headers: crate::request::leaked_headers(&h),
            client_ip: "10.0.0.1".parse().ok(),
            route_policy: Some("plain"),
            route_name: None,
            virtual_host: None,
        };
        let attempt = |rt: &mut TokenRuntime, settings: &AbuseSettings| {
            let mut guardrails = Guardrails {
                settings,
                store: &store,
                client_ip: view.client_ip,
                now_ns: u64::try_from(NOW.0).unwrap() * 1_000_000_000,
                events: Vec::new(),
            };
            let r = outcome(check(
                &g,
                rule(&g, "plain"),
                rt,
                &view,
                NOW,
                &mut guardrails,
            ));
            (r, guardrails.events)
        };
        let (first, events) = attempt(&mut rt, &g.abuse);
        assert_eq!(first, Err("UnknownKid@corp".to_string()));
        assert_eq!(
            events,
            vec![AbuseEvent::BudgetSpent, AbuseEvent::NegativeRecorded]
        );
        // Replays: refused the same way from the cache, without spending the budget of 2.
        for _ in 0..5 {
            let (again, events) = attempt(&mut rt, &g.abuse);
            assert_eq!(again, Err("UnknownKid@corp".to_string()));
            assert_eq!(events, vec![AbuseEvent::NegativeHit]);
        }
    }
}
