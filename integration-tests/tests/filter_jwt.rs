//! JWTs through the real Envoy (`--concurrency 2`) with a real JWKS / revocation server on
//! loopback (`AuthServer`). Tokens and keys were minted by Python (PyJWT, jwcrypto: see
//! tools/jwt-fixtures/), an implementation independent of the jwt-simple the filter uses.
//!
//! Timing: every VM ticks once a second, so the bounds below are documented propagation bounds
//! (interval + tick + timeout) plus slack; every wait is bounded.

use std::time::{Duration, Instant};

use integration_tests::jwt_fixtures::{fixture, jwks, mint, token};
use integration_tests::{AuthServer, Envoy, EnvoyConfig, Response, Upstream};
use serde_json::{json, Value};

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": "https://issuer.test", "aud": "api", "sub": "user-2",
                       "iat": "$now-60", "exp": "$now+3600"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

struct Setup {
    envoy: Envoy,
    up: Upstream,
    auth: AuthServer,
}

fn start(config: Value, auth: AuthServer) -> Setup {
    let up = Upstream::start("jwt");
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[up.addr])
            .with_auth_service(auth.addr()),
    );
    Setup { envoy, up, auth }
}

impl Setup {
    fn get(&self, path: &str, token: &str) -> Response {
        self.envoy
            .request("GET", path)
            .header("authorization", &format!("Bearer {token}"))
            .send()
    }

    /// Sends until `done` holds for a response or `limit` passes; the responses seen, in order.
    fn poll(
        &self,
        path: &str,
        token: &str,
        limit: Duration,
        done: impl Fn(&Response) -> bool,
    ) -> Vec<u16> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let r = self.get(path, token);
            seen.push(r.status);
            if done(&r) || started.elapsed() > limit {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`Setup::poll`] until `status`, asserting it came within `limit`; the statuses seen.
    fn expect(&self, path: &str, token: &str, status: u16, limit: Duration) -> Vec<u16> {
        let seen = self.poll(path, token, limit, |r| r.status == status);
        assert_eq!(seen.last().copied(), Some(status), "{seen:?}");
        seen
    }

    fn counter(&self, name: &str) -> u64 {
        let stats = self.envoy.admin_get("/stats?filter=wasmcustom");
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("wasmcustom.{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.json()["error"], code, "body: {}", r.text());
}

fn inline_config() -> Value {
    let jwe = fixture("jwe.json");
    json!({
        "jwt_providers": {
            "corp": {
                "issuer": "https://issuer.test",
                "audiences": ["api"],
                "jwks": fixture("jws.json")["jwks"],
                "forward_claims": {"sub": "x-api-guard-subject", "tier": "x-tier"}
            },
            // Nested JWTs: the inner JWS is signed by the JWE fixture's own key.
            "sealed": {
                "issuer": "https://issuer.test",
                "audiences": ["api"],
                "jwks": jwe["signing_jwks"],
                "decryption_keys": jwe["decryption_keys"]
            }
        },
        "policies": {
            "api": {"jwt": {"providers": ["corp", "sealed"]}},
            "internal": {"jwt": {"providers": ["corp"], "required_scopes": ["admin"]}},
            "public": {"jwt": {"providers": ["corp"], "required_scopes": ["read"], "claims": [{"claim": "tier", "equals": "gold"}]}}
        }
    })
}

#[test]
fn every_algorithm_verifies_and_the_upstream_sees_the_subject() {
    let s = start(inline_config(), AuthServer::start());
    for name in [
        "valid_rs256",
        "valid_rs384",
        "valid_rs512",
        "valid_ps256",
        "valid_ps384",
        "valid_ps512",
        "valid_es256",
        "valid_es384",
        "valid_eddsa",
        "valid_hs256",
        "valid_hs384",
        "valid_hs512",
    ] {
        s.up.clear();
        let r = s
            .envoy
            .request("GET", "/api/orders")
            .header("authorization", &format!("Bearer {}", token(name)))
            .header("x-api-guard-subject", "forged")
            .header("x-tier", "forged")
            .send();
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let seen = s.up.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].header("x-api-guard-subject").as_deref(),
            Some("user-1"),
            "{name}"
        );
        assert_eq!(seen[0].header_count("x-api-guard-subject"), 1);
        // The token has no `tier` claim: the client's forged header is removed, not passed on.
        assert_eq!(seen[0].header("x-tier"), None, "{name}");
        // strip_token is off: the upstream gets the token.
        assert!(seen[0].header("authorization").is_some());
    }
    // Nested JWT: a JWE (dir + A256GCM, RSA-OAEP) around an ES256 JWS.
    let jwe = fixture("jwe.json");
    for name in ["dir_a256gcm", "rsa_oaep_a256gcm", "a256kw_a256gcm"] {
        let t = jwe["tokens"][name]["token"].as_str().unwrap();
        let r = s.get("/api/orders", t);
        assert_eq!(r.status, 200, "{name}: {}", r.text());
    }
    // The provider holds RSA-OAEP decryption keys: the operator is warned (RUSTSEC-2023-0071).
    assert!(
        s.envoy.log().contains(
            "jwt provider sealed: RSA-OAEP decryption keys are exposed to a timing side channel"
        ),
        "no RSA decryption warning"
    );
    assert!(!s.envoy.log().contains("jwt provider corp: RSA-OAEP"));
}

#[test]
fn refusals_have_stable_codes_and_never_reach_the_upstream() {
    let s = start(inline_config(), AuthServer::start());
    let r = s.envoy.request("GET", "/api/orders").send();
    assert_error(&r, 401, "token_missing");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api-guard\"")
    );
    // Fixture attacks, plus tokens minted against the real clock (the fixtures' times are fixed).
    let mut tokens: Vec<(String, String)> = [
        "alg_none",
        "alg_nOnE",
        "confusion_hs256_rsa_pem",
        "kid_unknown",
        "tampered_payload",
        "spliced_signature",
        "embedded_jwk",
        "embedded_jku",
        "crit_b64",
        "wrong_iss",
        "wrong_aud",
        "missing_exp",
        "padding_signature",
        "oversize",
    ]
    .iter()
    .map(|n| (n.to_string(), token(n)))
    .collect();
    tokens.push((
        "expired".into(),
        mint(
            "ec-256",
            &claims(json!({"exp": "$now-3600", "iat": "$now-7200"})),
        ),
    ));
    tokens.push((
        "nbf_future".into(),
        mint("ed-1", &claims(json!({"nbf": "$now+3600"}))),
    ));
    tokens.push((
        "iat_future".into(),
        mint("rsa-1", &claims(json!({"iat": "$now+3600"}))),
    ));
    let fresh = mint("ec-256", &claims(json!({"exp": "$now+30"})));
    assert_eq!(
        s.get("/api/orders", &fresh).status,
        200,
        "a fresh minted token passes"
    );
    for (name, t) in &tokens {
        let r = s.get("/api/orders", t);
        assert_error(&r, 401, "invalid_token");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api-guard\", error=\"invalid_token\""),
            "{name}"
        );
    }
    let jwe = fixture("jwe.json");
    let r = s.get(
        "/api/orders",
        jwe["tokens"]["tampered_tag"]["token"].as_str().unwrap(),
    );
    assert_error(&r, 401, "invalid_token");
    // Scopes: 403 with the RFC 6750 error.
    let r = s.get("/internal/x", &token("valid_scopes"));
    assert_error(&r, 403, "insufficient_scope");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    // Scope and claim rule hold.
    let r = s.get("/public/x", &token("valid_scopes"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.get("/public/x", &token("valid_es256"));
    assert_error(&r, 403, "insufficient_scope");
    // Two tokens: refused.
    let r = s
        .envoy
        .request("GET", "/api/orders")
        .header("authorization", &format!("Bearer {}", token("valid_es256")))
        .header("authorization", &format!("Bearer {}", token("valid_es256")))
        .send();
    assert_error(&r, 400, "token_ambiguous");
    let forwarded: Vec<_> = s.up.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        forwarded,
        vec!["/api/orders".to_string(), "/public/x".to_string()],
        "only the admitted requests went upstream"
    );
    assert!(s.counter("api_guard.policy.api.denied.jwt_expired") >= 1);
    assert!(s.counter("api_guard.policy.api.denied.jwt_algorithm_not_allowed") >= 2);
}

fn remote_config(refresh: u64, max_stale: u64) -> Value {
    json!({
        "jwt_providers": {
            "corp": {
                "issuer": "https://issuer.test",
                "audiences": ["api"],
                "remote_jwks": {
                    "cluster": "auth", "authority": "auth.test", "path": "/jwks.json",
                    "refresh_seconds": refresh, "timeout_ms": 500,
                    "max_stale_seconds": max_stale, "unknown_kid_refetch_seconds": 1
                }
            }
        },
        "revocation": {
            "jtis": ["revoked-in-config"],
            "remote": {"cluster": "auth", "authority": "auth.test", "path": "/revocations", "poll_seconds": 1, "timeout_ms": 500}
        },
        "policies": {"api": {"jwt": {"providers": ["corp"]}}}
    })
}

/// A provider with a remote JWKS serving `kids` and an empty remote revocation list, started
/// and waited for until its keys arrived.
fn start_remote(kids: &[&str], refresh: u64, max_stale: u64) -> Setup {
    let auth = AuthServer::start();
    auth.set_json("/jwks.json", &jwks(kids));
    auth.set_json("/revocations", &json!({}));
    let s = start(remote_config(refresh, max_stale), auth);
    s.expect(
        "/api/x",
        &token("valid_es256"),
        200,
        Duration::from_secs(10),
    );
    s
}

#[test]
fn before_the_first_fetch_requests_get_503_with_retry_after_then_keys_arrive() {
    let auth = AuthServer::start();
    auth.set("/jwks.json", 500, "text/plain", "down");
    auth.set_json("/revocations", &json!({}));
    let s = start(remote_config(1, 60), auth);
    let r = s.get("/api/x", &token("valid_es256"));
    assert_error(&r, 503, "jwks_unavailable");
    assert_eq!(r.header("retry-after"), Some("2"));
    // The first fetch fails (500): counted, and requests keep getting 503.
    assert!(s
        .auth
        .wait_for_hits("/jwks.json", 1, Duration::from_secs(5)));
    let r = s.get("/api/x", &token("valid_es256"));
    assert_error(&r, 503, "jwks_unavailable");
    s.auth.set_json("/jwks.json", &jwks(&["ec-256"]));
    // One refresh period (1 s, retried after the 2 s back-off of the failed attempt) + tick.
    let seen = s.poll(
        "/api/x",
        &token("valid_es256"),
        Duration::from_secs(10),
        |r| r.status == 200,
    );
    assert_eq!(*seen.last().unwrap(), 200, "statuses: {seen:?}");
    assert!(seen.iter().all(|st| *st == 503 || *st == 200), "{seen:?}");
    // One fetcher per Envoy: two workers + main thread did not each fetch every second.
    let stats = s.envoy.admin_get("/stats?filter=api_guard.jwks");
    assert!(
        s.counter("api_guard.jwks.corp.fetch_failed") >= 1,
        "{stats}"
    );
}

#[test]
fn rotation_unknown_kid_refetch_and_removed_keys() {
    let s = start_remote(&["ec-256"], 3600, 86_400);
    let fetches = s.auth.hits("/jwks.json");
    // A token signed by a key the issuer just added: its unknown kid pauses the request for one
    // refetch (refresh is an hour away), then it is admitted.
    s.auth.set_json("/jwks.json", &jwks(&["ec-256", "rsa-1"]));
    let r = s.get("/api/x", &token("valid_rs256"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.auth.hits("/jwks.json"), fetches + 1);
    // Random kids cannot hammer the issuer: one refetch per second per Envoy at most.
    let before = s.auth.hits("/jwks.json");
    let started = Instant::now();
    for _ in 0..20 {
        let r = s.get("/api/x", &token("kid_unknown"));
        assert_error(&r, 401, "invalid_token");
    }
    let secs = started.elapsed().as_secs() + 1;
    let refetches = s.auth.hits("/jwks.json") - before;
    assert!(
        refetches as u64 <= secs,
        "{refetches} refetches in {secs} s"
    );
    // The issuer drops ec-256; an unknown-kid refetch (triggered by another new key) installs
    // the new set, and the dropped key stops verifying even though its token was cached.
    std::thread::sleep(Duration::from_millis(1100));
    s.auth.set_json("/jwks.json", &jwks(&["rsa-1", "ed-1"]));
    let r = s.get("/api/x", &token("valid_eddsa"));
    assert_eq!(r.status, 200, "{}", r.text());
    s.expect("/api/x", &token("valid_es256"), 401, Duration::from_secs(5));
}

#[test]
fn jwks_down_or_garbage_keeps_the_last_good_keys_until_max_staleness() {
    let mut s = start_remote(&["ec-256"], 1, 6);
    // Garbage: counted as a failed fetch, the last good keys stay.
    s.auth
        .set("/jwks.json", 200, "application/json", "{not json");
    let failed = s.counter("api_guard.jwks.corp.fetch_failed");
    let started = Instant::now();
    while s.counter("api_guard.jwks.corp.fetch_failed") == failed
        && started.elapsed() < Duration::from_secs(8)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.counter("api_guard.jwks.corp.fetch_failed") > failed);
    assert_eq!(s.get("/api/x", &token("valid_es256")).status, 200);
    // The service dies: keys keep working up to max_stale_seconds (6 s) after the last good
    // fetch, then requests fail closed with 503 jwks_stale.
    s.auth.stop();
    let r = s.get("/api/x", &token("valid_es256"));
    assert_eq!(r.status, 200, "still within max staleness: {}", r.text());
    let seen = s.poll(
        "/api/x",
        &token("valid_es256"),
        Duration::from_secs(15),
        |r| r.status == 503,
    );
    let last = s.get("/api/x", &token("valid_es256"));
    assert_error(&last, 503, "jwks_stale");
    assert!(seen.iter().all(|st| *st == 200 || *st == 503), "{seen:?}");
    // It comes back, serving good keys again: the next refresh recovers.
    s.auth.set_json("/jwks.json", &jwks(&["ec-256"]));
    s.auth.restart();
    s.expect(
        "/api/x",
        &token("valid_es256"),
        200,
        Duration::from_secs(10),
    );
}

#[test]
fn revocations_reach_every_worker_within_the_poll_interval_even_for_cached_tokens() {
    let s = start_remote(&["ec-256", "ed-1"], 3600, 86_400);
    s.auth
        .set_json("/revocations", &json!({"jtis": ["someone-else"]}));
    // Warm the cache on both workers (each request is a new connection; Envoy spreads them).
    for _ in 0..10 {
        assert_eq!(s.get("/api/x", &token("valid_es256")).status, 200);
    }
    s.auth.set_json(
        "/revocations",
        &json!({"jtis": [{"value": "jti-1", "expires": "2099-01-01T00:00:00Z"}]}),
    );
    let published = Instant::now();
    let seen = s.poll(
        "/api/x",
        &token("valid_es256"),
        Duration::from_secs(10),
        |r| r.status == 401,
    );
    let took = published.elapsed();
    assert_eq!(*seen.last().unwrap(), 401, "{seen:?}");
    // Bound: poll 1 s + tick 1 s + timeout 0.5 s, plus the curl round trips.
    // Generous slack for a loaded CI machine; the point is "seconds, not a redeploy".
    assert!(took < Duration::from_secs(8), "revocation took {took:?}");
    // The first refusal came from the worker that synced first; every other worker syncs the
    // shared list on its own 1 s tick, so one tick (plus slack for a loaded machine) later every
    // request, whichever worker it lands on, is refused.
    std::thread::sleep(Duration::from_millis(1_500));
    for _ in 0..20 {
        let r = s.get("/api/x", &token("valid_es256"));
        assert_error(&r, 401, "invalid_token");
    }
    assert!(s.counter("api_guard.policy.api.denied.jwt_revoked") >= 21);
}

#[test]
fn a_jwks_file_served_by_envoy_itself() {
    // envoy/jwks-file.yaml: Envoy reads envoy/jwks/example-jwks.json at configure time and serves
    // it on a loopback listener that the provider's remote_jwks cluster points at.
    let up = Upstream::start("jwks-file");
    let port = integration_tests::free_port();
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/jwks-file.yaml")
            .with_upstreams(&[up.addr])
            .with_listener_port("jwks_file", port)
            .with_cluster_endpoints(
                "jwks_file",
                &[std::net::SocketAddr::from(([127, 0, 0, 1], port))],
            ),
    );
    let get = |t: &str| {
        envoy
            .request("GET", "/orders")
            .header("authorization", &format!("Bearer {t}"))
            .send()
    };
    let started = Instant::now();
    while get(&token("valid_es256")).status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "keys from the file never arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every worker verifies from the moment the keys are published (a worker that never had
    // them looks in shared data on the request path), not from its next tick.
    for _ in 0..10 {
        assert_eq!(get(&token("valid_eddsa")).status, 200);
    }
    // A key that is not in the file: refused.
    assert_eq!(get(&token("valid_rs256")).status, 401);
}
