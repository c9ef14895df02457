//! Abuse resistance through the real Envoy (`--concurrency 2`): lockouts after failed
//! authentications, identity-keyed limits under `auth: any` with a tier header upstream, a
//! saturated key table that still admits newcomers, the budget of introspection callouts under
//! random opaque tokens, and the negative cache. Every client is on loopback (distinct source
//! addresses in 127.0.0.0/8); every loop is bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use integration_tests::jwt_fixtures::{jwks, mint};
use integration_tests::{key_digest, AuthServer, Envoy, EnvoyConfig, Upstream};
use serde_json::{json, Value};

struct Setup {
    envoy: Envoy,
    up: Upstream,
    _auth: Option<AuthServer>,
}

fn start(config: Value, auth: Option<AuthServer>) -> Setup {
    let up = Upstream::start("abuse");
    let mut envoy = EnvoyConfig::load("envoy/envoy.yaml")
        .with_plugin_config(&config.to_string())
        .with_upstreams(&[up.addr]);
    if let Some(a) = &auth {
        envoy = envoy.with_auth_service(a.addr());
    }
    Setup {
        envoy: Envoy::start(envoy),
        up,
        _auth: auth,
    }
}

fn clients() -> Value {
    json!({
        "acme": {"keys": [{"id": "acme-1", "sha256": key_digest("acme-key")}]},
        "globex": {"keys": [{"id": "globex-1", "sha256": key_digest("globex-key")}]}
    })
}

fn get(s: &Setup, path: &str, from: &str, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut r = s.envoy.request("GET", path).from_ip(from);
    for (n, v) in headers {
        r = r.header(n, v);
    }
    let resp = r.send();
    (resp.status, resp.header("retry-after").map(str::to_string))
}

#[test]
fn wrong_keys_from_one_address_are_answered_429_from_the_nth_failure_on() {
    let s = start(
        json!({
            "clients": clients(),
            "policies": {"api": {"api_key": {}, "rate_limits": [
                {"name": "failed_auth", "rate": 20, "per": "hour", "key": "ip", "counts": "failed_auth"}
            ]}}
        }),
        None,
    );
    let mut statuses = Vec::new();
    for i in 0..300 {
        let key = format!("guess-{i}");
        let (status, retry) = get(&s, "/api/x", "127.0.0.21", &[("x-api-key", &key)]);
        if status == 429 {
            assert!(retry.is_some(), "429 without retry-after");
        }
        statuses.push(status);
    }
    assert!(
        statuses[..20].iter().all(|s| *s == 401),
        "{:?}",
        &statuses[..25]
    );
    assert!(
        statuses[20..].iter().all(|s| *s == 429),
        "{:?}",
        &statuses[..25]
    );
    // The right key from the locked address is refused too (nothing is verified there); from
    // another address it passes, and the upstream saw only admitted requests.
    assert_eq!(
        get(&s, "/api/x", "127.0.0.21", &[("x-api-key", "acme-key")]).0,
        429
    );
    assert_eq!(
        get(&s, "/api/x", "127.0.0.22", &[("x-api-key", "acme-key")]).0,
        200
    );
    assert_eq!(s.up.requests().len(), 1);
}

#[test]
fn guesses_for_one_key_id_from_many_addresses_lock_that_key_id_only() {
    let s = start(
        json!({
            "clients": {
                "acme": {"keys": [{"id": "acme-1", "sha256": key_digest("acme.right-secret")}]},
                "globex": {"keys": [{"id": "globex-1", "sha256": key_digest("globex.right-secret")}]}
            },
            "policies": {"api": {"api_key": {}, "rate_limits": [
                {"name": "failed_auth_by_key_id", "rate": 5, "per": "hour",
                 "key": {"key_prefix": {"separator": "."}}, "counts": "failed_auth"}
            ]}}
        }),
        None,
    );
    // Five wrong secrets for key id `acme`, each from another address: all verified and refused.
    for i in 0..5 {
        let key = format!("acme.guess-{i}");
        let from = format!("127.0.0.{}", 41 + i);
        assert_eq!(get(&s, "/api/x", &from, &[("x-api-key", &key)]).0, 401);
    }
    // From then on key id `acme` is answered 429 with retry-after from any address, the right
    // secret too (nothing is verified), while key id `globex` is untouched.
    for from in ["127.0.0.41", "127.0.0.49"] {
        let (status, retry) = get(&s, "/api/x", from, &[("x-api-key", "acme.guess-9")]);
        assert_eq!((status, retry.is_some()), (429, true), "from {from}");
    }
    let (status, retry) = get(
        &s,
        "/api/x",
        "127.0.0.50",
        &[("x-api-key", "acme.right-secret")],
    );
    assert_eq!((status, retry.is_some()), (429, true));
    assert_eq!(
        get(&s, "/api/x", "127.0.0.41", &[("x-api-key", "globex.wrong")]).0,
        401
    );
    assert_eq!(
        get(
            &s,
            "/api/x",
            "127.0.0.41",
            &[("x-api-key", "globex.right-secret")]
        )
        .0,
        200
    );
    // A request without a key, or with a key outside the `<id>.<secret>` scheme, is not this
    // lockout's: 401, not 429.
    assert_eq!(get(&s, "/api/x", "127.0.0.51", &[]).0, 401);
    assert_eq!(
        get(
            &s,
            "/api/x",
            "127.0.0.52",
            &[("x-api-key", "acme-no-separator")]
        )
        .0,
        401
    );
    let got = s.up.requests();
    assert_eq!(got.len(), 1, "only the admitted request went upstream");
}

#[test]
fn identity_limits_under_auth_any_count_keys_and_tokens_and_send_the_tier() {
    let gold = mint(
        "ec-256",
        &json!({"iss": "https://issuer.test", "aud": "api", "exp": "$now+600", "sub": "u-gold", "plan": "gold"}),
    );
    let free = mint(
        "ec-256",
        &json!({"iss": "https://issuer.test", "aud": "api", "exp": "$now+600", "sub": "u-free", "plan": "free"}),
    );
    let s = start(
        json!({
            "clients": clients(),
            "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"],
                                       "jwks": jwks(&["ec-256"])}},
            "policies": {"api": {"api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any",
                "rate_limits": [{"name": "per_identity", "rate": 1, "per": "day", "burst": 2,
                    "key": "identity",
                    "overrides": [{"claim": "plan", "value": "gold", "rate": 4}]}]}}
        }),
        None,
    );
    let count = |headers: &[(&str, &str)]| {
        (0..6)
            .filter(|_| get(&s, "/api/x", "127.0.0.31", headers).0 == 200)
            .count()
    };
    let gold_auth = format!("Bearer {gold}");
    let free_auth = format!("Bearer {free}");
    // A client-sent tier never reaches the upstream.
    let forged_tier = get(
        &s,
        "/api/x",
        "127.0.0.32",
        &[("x-api-key", "acme-key"), ("x-api-guard-tier", "gold")],
    );
    assert_eq!(forged_tier.0, 200);
    assert_eq!(s.up.requests()[0].header("x-api-guard-tier"), None);
    s.up.clear();
    assert_eq!(count(&[("x-api-key", "acme-key")]), 1);
    assert_eq!(count(&[("x-api-key", "globex-key")]), 2);
    assert_eq!(count(&[("authorization", &free_auth)]), 2);
    assert_eq!(count(&[("authorization", &gold_auth)]), 4);
    // Never a 503: every admitted request had an identity. The gold tier went upstream.
    let tiers: Vec<Option<String>> =
        s.up.requests()
            .iter()
            .map(|r| r.header("x-api-guard-tier"))
            .collect();
    assert_eq!(
        tiers
            .iter()
            .filter(|t| t.as_deref() == Some("gold"))
            .count(),
        4
    );
    assert_eq!(tiers.iter().filter(|t| t.is_none()).count(), 5);
}

#[test]
fn a_filled_table_admits_three_fresh_clients_on_their_first_request() {
    let s = start(
        json!({
            "policies": {"public": {"rate_limits": [
                {"name": "per_address", "rate": 1, "per": "minute", "burst": 5, "key": "ip", "max_keys": 20}
            ]}}
        }),
        None,
    );
    // 60 addresses, two requests each: far more live keys than slots.
    for i in 0..60 {
        let ip = format!("127.0.1.{}", i + 1);
        for _ in 0..2 {
            assert_eq!(get(&s, "/public/x", &ip, &[]).0, 200, "{ip}");
        }
    }
    for ip in ["127.0.2.1", "127.0.2.2", "127.0.2.3"] {
        assert_eq!(get(&s, "/public/x", ip, &[]).0, 200, "fresh client {ip}");
    }
    // The table is still a limit: one address that keeps going is stopped within its burst
    // (a newcomer may start with the light debt the crowd left in its overflow bucket).
    let n = (0..10)
        .filter(|_| get(&s, "/public/x", "127.0.2.9", &[]).0 == 200)
        .count();
    assert!((1..=5).contains(&n), "{n} admitted");
}

/// An auth service that calls every token inactive, counting callouts.
fn counting_auth() -> (AuthServer, Arc<AtomicUsize>) {
    let auth = AuthServer::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    auth.set_handler("/introspect", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        (
            200,
            "application/json".into(),
            b"{\"active\": false}".to_vec(),
        )
    });
    (auth, calls)
}

#[test]
fn random_opaque_tokens_cost_at_most_a_fifth_of_a_callout_each() {
    let (auth, calls) = counting_auth();
    let s = start(
        json!({
            "introspection": {"cluster": "auth", "authority": "auth.test", "path": "/introspect",
                              "timeout_ms": 1000,
                              "token_shape": {"min_length": 20, "alphabet": "b64token"}},
            "abuse": {"expensive_per_address": {"rate": 2, "per": "minute", "burst": 10}},
            "policies": {"api": {"introspection": {}}}
        }),
        Some(auth),
    );
    let mut statuses = std::collections::BTreeMap::new();
    let tokens = 200;
    for i in 0..tokens {
        // Half cannot be a token of the service at all (too short or outside the alphabet).
        let token = match i % 4 {
            0 => format!("short{i}"),
            1 => format!("not*b64token*at*all*{i:08}"),
            _ => format!("random0opaque0token0{i:08}"),
        };
        let auth = format!("Bearer {token}");
        let (status, _) = get(&s, "/api/x", "127.0.0.41", &[("authorization", &auth)]);
        *statuses.entry(status).or_insert(0) += 1;
    }
    let callouts = calls.load(Ordering::SeqCst);
    assert!(
        callouts * 5 <= tokens,
        "{callouts} callouts for {tokens} tokens: {statuses:?}"
    );
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    // Another address still gets its callouts.
    let before = calls.load(Ordering::SeqCst);
    get(
        &s,
        "/api/x",
        "127.0.0.42",
        &[("authorization", "Bearer random0opaque0token0other")],
    );
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
}

#[test]
fn a_refused_token_is_not_verified_again_while_remembered() {
    let good = mint(
        "ec-256",
        &json!({"iss": "https://issuer.test", "aud": "api", "exp": "$now+600", "sub": "u"}),
    );
    let (head, sig) = good.rsplit_once('.').unwrap();
    let forged = format!(
        "{head}.{}{}",
        if sig.starts_with('A') { 'B' } else { 'A' },
        &sig[1..]
    );
    let s = start(
        json!({
            "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"],
                                       "jwks": jwks(&["ec-256"])}},
            "abuse": {"negative_cache": {"ttl_seconds": 60},
                      "expensive_per_address": {"rate": 1, "per": "minute", "burst": 2}},
            "policies": {"api": {"jwt": {"providers": ["corp"]}}}
        }),
        None,
    );
    let auth = format!("Bearer {forged}");
    // With a budget of 2 cold verifications, 20 replays of the same forged token are all 401:
    // after the first, each is a negative-cache hit that spends no budget.
    for _ in 0..20 {
        assert_eq!(
            get(&s, "/api/x", "127.0.0.51", &[("authorization", &auth)]).0,
            401
        );
    }
    // The budget is intact: the valid token verifies (cold, one spend).
    let ok = format!("Bearer {good}");
    assert_eq!(
        get(&s, "/api/x", "127.0.0.51", &[("authorization", &ok)]).0,
        200
    );
    assert!(s.up.requests().len() == 1);
}

#[test]
fn an_unknown_kid_is_refused_from_the_negative_cache_without_spending_the_budget() {
    let claims = json!({"iss": "https://issuer.test", "aud": "api", "exp": "$now+600", "sub": "u"});
    // Signed by a key the provider does not have (kid ed-1; the set holds ec-256 only).
    let stranger = mint("ed-1", &claims);
    let good = mint("ec-256", &claims);
    let s = start(
        json!({
            "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"],
                                       "jwks": jwks(&["ec-256"])}},
            "abuse": {"negative_cache": {"ttl_seconds": 60},
                      "expensive_per_address": {"rate": 1, "per": "minute", "burst": 2}},
            "policies": {"api": {"jwt": {"providers": ["corp"]}}}
        }),
        None,
    );
    // With a budget of 2, 20 replays are all 401 (not 429 from the 3rd on): after the first,
    // each is answered from the negative cache.
    let auth = format!("Bearer {stranger}");
    for i in 0..20 {
        assert_eq!(
            get(&s, "/api/x", "127.0.0.61", &[("authorization", &auth)]).0,
            401,
            "replay {i}"
        );
    }
    let ok = format!("Bearer {good}");
    assert_eq!(
        get(&s, "/api/x", "127.0.0.61", &[("authorization", &ok)]).0,
        200
    );
    assert_eq!(s.up.requests().len(), 1);
}

#[test]
fn an_inactive_token_costs_one_callout_however_often_it_is_replayed() {
    let (auth, calls) = counting_auth();
    let s = start(
        json!({
            "introspection": {"cluster": "auth", "authority": "auth.test", "path": "/introspect",
                              "timeout_ms": 1000},
            "abuse": {"expensive_per_address": {"rate": 1, "per": "minute", "burst": 2}},
            "policies": {"api": {"introspection": {}}}
        }),
        Some(auth),
    );
    for i in 0..20 {
        let (status, _) = get(
            &s,
            "/api/x",
            "127.0.0.62",
            &[("authorization", "Bearer revoked0opaque0token0000001")],
        );
        assert_eq!(status, 401, "replay {i}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(s.up.requests().is_empty());
}
