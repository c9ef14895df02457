//! The shared auth service (RFC 7662 introspection) through the real Envoy: answers cached in
//! shared data for every worker, one callout per credential, failure modes per policy, the
//! breaker, across a fleet of three Envoys. Bounded in requests and time; loopback only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::load::{burst, get};
use integration_tests::{AuthRequest, AuthServer, Envoy, EnvoyConfig, Upstream};
use serde_json::{json, Value};

/// The token in an RFC 7662 form body (`token=...&token_type_hint=...`).
fn token_of(r: &AuthRequest) -> String {
    String::from_utf8_lossy(&r.body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("token=").map(str::to_string))
        .unwrap_or_default()
}

/// An auth service: `good-*` tokens are active with scope `read`, `ro-*` with scope `other`,
/// everything else inactive. Counts callouts per token.
fn auth_service() -> (AuthServer, Arc<AtomicUsize>) {
    let auth = AuthServer::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    auth.set_handler("/introspect", move |r| {
        counter.fetch_add(1, Ordering::SeqCst);
        let t = token_of(r);
        let answer = if let Some(who) = t.strip_prefix("good-") {
            json!({"active": true, "scope": "read", "sub": who, "client_id": "app1"})
        } else if t.starts_with("ro-") {
            json!({"active": true, "scope": "other", "sub": "ro"})
        } else {
            json!({"active": false})
        };
        (
            200,
            "application/json".into(),
            answer.to_string().into_bytes(),
        )
    });
    (auth, calls)
}

fn config(timeout_ms: u64) -> Value {
    json!({
        "introspection": {
            "cluster": "auth", "authority": "auth.test", "path": "/introspect",
            "timeout_ms": timeout_ms, "positive_ttl_seconds": 30, "negative_ttl_seconds": 5,
            "stale_while_revalidate_seconds": 5, "breaker": {"failures": 3, "open_seconds": 30}
        },
        "policies": {
            "api": {"introspection": {"required_scopes": ["read"]}},
            "internal": {"introspection": {"required_scopes": ["read"], "on_failure": "cache_only"}}
        }
    })
}

fn start(auth: &AuthServer, up: &Upstream, config: &Value) -> Envoy {
    Envoy::start(envoy_config(auth, up, config, &[]))
}

/// The shipped Envoy config pointed at `auth` and `up`, passing `env_keys` of Envoy's own
/// environment into the VM.
fn envoy_config(
    auth: &AuthServer,
    up: &Upstream,
    config: &Value,
    env_keys: &[&str],
) -> EnvoyConfig {
    let envoy = EnvoyConfig::load("envoy/envoy.yaml")
        .with_plugin_config(&config.to_string())
        .with_upstreams(&[up.addr])
        .with_auth_service(auth.addr());
    if env_keys.is_empty() {
        envoy
    } else {
        envoy.with_vm_host_env_keys(env_keys)
    }
}

fn status(envoy: &Envoy, path: &str, token: &str) -> u16 {
    get(
        envoy.http_port,
        path,
        &[("authorization".into(), format!("Bearer {token}"))],
    )
    .unwrap_or(0)
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .admin_get("/stats?filter=api_guard.introspection")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wasmcustom.api_guard.introspection.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn one_callout_per_credential_shared_by_every_worker() {
    let (auth, calls) = auth_service();
    let up = Upstream::start("introspection");
    let envoy = start(&auth, &up, &config(1000));
    // 40 concurrent requests with one new credential over fresh connections (both workers):
    // exactly one callout, every request admitted.
    let port = envoy.http_port;
    let tally = burst(40, 20, move |_| {
        (
            port,
            "/api/x".into(),
            vec![("authorization".into(), "Bearer good-alice".into())],
        )
    });
    assert_eq!(tally.get(&200), Some(&40), "{tally:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "single flight across workers"
    );
    assert!(counter(&envoy, "hit") + counter(&envoy, "pending_wait") >= 39);
    // The upstream sees who the service said the caller is; client-sent copies are replaced.
    up.clear();
    let r = envoy
        .request("GET", "/api/x")
        .header("authorization", "Bearer good-alice")
        .header("x-api-guard-subject", "mallory")
        .send();
    assert_eq!(r.status, 200);
    let seen = up.requests();
    assert_eq!(
        seen[0].header("x-api-guard-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(
        seen[0].header("x-api-guard-client-id").as_deref(),
        Some("app1")
    );
    // Scope and activity.
    let r = envoy
        .request("GET", "/api/x")
        .header("authorization", "Bearer ro-1")
        .send();
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("insufficient_scope"))
    );
    let r = envoy
        .request("GET", "/api/x")
        .header("authorization", "Bearer nope")
        .send();
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_token"))
    );
    // Negative answers are cached too.
    let before = calls.load(Ordering::SeqCst);
    assert_eq!(status(&envoy, "/api/x", "nope"), 401);
    assert_eq!(calls.load(Ordering::SeqCst), before);
    assert_eq!(status(&envoy, "/api/x", ""), 401);
}

#[test]
fn a_fleet_keeps_serving_cached_decisions_while_the_service_is_down_then_recovers() {
    let (mut auth, _calls) = auth_service();
    let up = Upstream::start("introspection");
    let fleet: Vec<Envoy> = (0..3).map(|_| start(&auth, &up, &config(500))).collect();
    for node in &fleet {
        assert_eq!(status(node, "/api/x", "good-bob"), 200);
        assert_eq!(status(node, "/internal/x", "good-carol"), 200);
    }
    auth.stop();
    // Cached answers keep working on every node; uncached credentials fail per policy:
    // 503 with retry-after under `deny`; `cache_only` has nothing cached for them either.
    let ports: Vec<u16> = fleet.iter().map(|n| n.http_port).collect();
    let tally = burst(60, 6, move |i| {
        let token = ["good-bob", "good-new", "good-carol"][i % 3];
        let path = if i % 3 == 2 { "/internal/x" } else { "/api/x" };
        (
            ports[i % 3],
            path.into(),
            vec![("authorization".into(), format!("Bearer {token}"))],
        )
    });
    assert!(tally.keys().all(|s| [200, 503].contains(s)), "{tally:?}");
    assert_eq!(
        tally.get(&200),
        Some(&40),
        "cached credentials must keep working: {tally:?}"
    );
    let r = fleet[0]
        .request("GET", "/api/x")
        .header("authorization", "Bearer good-new2")
        .send();
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "auth_unavailable");
    assert!(r.header("retry-after").is_some());
    // Back up: new credentials work again on every node (the breaker may need its probe).
    auth.restart();
    let started = Instant::now();
    for node in &fleet {
        while status(node, "/api/x", "good-dave") != 200 {
            assert!(started.elapsed() < Duration::from_secs(45), "no recovery");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

#[test]
fn api_guard_authenticates_to_the_service_with_a_secret_from_the_environment() {
    // The secret reaches the VM through Envoy's environment (host_env_keys), never through
    // the YAML. Names unique to this test: tests run in parallel in one process.
    const SECRET_VAR: &str = "API_GUARD_IT_INTROSPECTION_SECRET";
    const UNLISTED_VAR: &str = "API_GUARD_IT_UNLISTED_SECRET";
    std::env::set_var(SECRET_VAR, "it s3cret:+%");
    std::env::set_var(UNLISTED_VAR, "x");
    // client_secret_basic: base64("api-guard:it+s3cret%3A%2B%25").
    let expected = "Basic YXBpLWd1YXJkOml0K3MzY3JldCUzQSUyQiUyNQ==";
    let auth = AuthServer::start();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    auth.set_handler("/introspect", move |r| {
        let header = r.header("authorization").map(str::to_string);
        log.lock().unwrap().push(header.clone());
        let answer = if header.as_deref() == Some(expected) {
            json!({"active": true, "scope": "read", "sub": "dave"})
        } else {
            // RFC 7662: a caller that does not authenticate gets 401, not an answer.
            return (401, "application/json".into(), b"{}".to_vec());
        };
        (
            200,
            "application/json".into(),
            answer.to_string().into_bytes(),
        )
    });
    let up = Upstream::start("introspection");
    let mut cfg = config(500);
    cfg["introspection"]["client_auth"] =
        json!({"method": "basic", "client_id": "api-guard", "client_secret_env": SECRET_VAR});
    let envoy = Envoy::start(envoy_config(&auth, &up, &cfg, &[SECRET_VAR]));
    assert_eq!(status(&envoy, "/api/x", "good-dave"), 200);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [Some(expected.to_string())]
    );
    // The secret never appears in Envoy's log.
    assert!(!envoy.log().contains("s3cret") && !envoy.log().contains(expected));
    // A variable the VM was not given is not set there: the configuration is refused whole.
    let mut cfg = config(500);
    cfg["introspection"]["client_auth"] = json!({"method": "bearer", "token_env": UNLISTED_VAR});
    let failure = Envoy::try_start(envoy_config(&auth, &up, &cfg, &[SECRET_VAR]))
        .err()
        .expect("Envoy accepted a configuration whose secret is not in the VM's environment");
    assert!(
        failure
            .log
            .contains("introspection.client_auth.token_env: the variable is not set"),
        "{}",
        failure.log
    );
}

#[test]
fn a_slow_service_fails_within_the_timeout_and_opens_the_breaker() {
    let (auth, calls) = auth_service();
    auth.set_delay("/introspect", Duration::from_secs(3));
    let up = Upstream::start("introspection");
    let envoy = start(&auth, &up, &config(300));
    for i in 0..3 {
        let started = Instant::now();
        let s = status(&envoy, "/api/x", &format!("good-slow{i}"));
        let took = started.elapsed();
        assert_eq!(s, 503);
        // Fails at the 300 ms timeout, not after the service's 3 s.
        assert!(took < Duration::from_millis(2500), "took {took:?}");
    }
    // Three failures opened the breaker: no more callouts, immediate 503s. (The server counts
    // a request when it arrives; the handler's `calls` only after the delay.)
    let _ = &calls;
    let before = auth.hits("/introspect");
    assert_eq!(before, 3);
    for i in 0..5 {
        assert_eq!(status(&envoy, "/api/x", &format!("good-more{i}")), 503);
    }
    assert_eq!(
        auth.hits("/introspect"),
        before,
        "the breaker must stop callouts"
    );
    assert!(counter(&envoy, "breaker_open") >= 5);
    assert!(counter(&envoy, "callout_failed") >= 3);
}

#[test]
fn api_keys_are_added_and_removed_centrally_without_redeploys() {
    let auth = AuthServer::start();
    let list = |keys: Value| json!({"clients": {"partner": {"keys": keys}}});
    // (A client needs at least one key: an empty list is `{"clients": {}}`.)
    let empty = json!({"clients": {}});
    auth.set_json("/clients", &empty);
    let up = Upstream::start("keys");
    let config = json!({
        "clients": {"acme": {"keys": [{"id": "acme-1", "sha256": integration_tests::key_digest("acme-key")}]}},
        "remote_clients": {"cluster": "auth", "authority": "auth.test", "path": "/clients",
                           "poll_seconds": 1, "timeout_ms": 500,
                           "client_auth": {"method": "bearer", "token_env": TOKEN_VAR}},
        "policies": {"api": {"api_key": {}}}
    });
    // The key list is fetched with api-guard's own credentials, from the VM's environment.
    const TOKEN_VAR: &str = "API_GUARD_IT_KEY_LIST_TOKEN";
    std::env::set_var(TOKEN_VAR, "key-list-t0ken");
    let envoy = Envoy::start(envoy_config(&auth, &up, &config, &[TOKEN_VAR]));
    let key =
        |k: &str| get(envoy.http_port, "/api/x", &[("x-api-key".into(), k.into())]).unwrap_or(0);
    assert_eq!(key("acme-key"), 200);
    assert_eq!(key("partner-key"), 401);
    assert!(auth.wait_for_hits("/clients", 1, Duration::from_secs(5)));
    let fetches: Vec<AuthRequest> = auth
        .requests()
        .into_iter()
        .filter(|r| r.path == "/clients")
        .collect();
    assert!(!fetches.is_empty());
    for r in &fetches {
        assert_eq!(r.header("authorization"), Some("Bearer key-list-t0ken"));
    }
    // The central service adds a key: every worker accepts it within poll + tick.
    auth.set_json(
        "/clients",
        &list(json!([{"id": "partner-1", "sha256": integration_tests::key_digest("partner-key")}])),
    );
    let started = Instant::now();
    while key("partner-key") != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "remote key not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The first acceptance came from the VM that fetched the list; the other worker syncs the
    // shared copy on its own 1 s tick, so wait one tick before asking whichever worker answers.
    std::thread::sleep(Duration::from_millis(1_200));
    up.clear();
    let r = envoy
        .request("GET", "/api/x")
        .header("x-api-key", "partner-key")
        .send();
    assert_eq!(r.status, 200);
    let seen = up.requests();
    assert_eq!(
        seen[0].header("x-api-guard-client-id").as_deref(),
        Some("partner")
    );
    assert_eq!(
        seen[0].header("x-api-guard-key-id").as_deref(),
        Some("partner-1")
    );
    assert_eq!(seen[0].header("x-api-key"), None, "the key is stripped");
    // ...and removes it: refused again within the same bound. A garbage list keeps the last good one.
    auth.set("/clients", 200, "application/json", "{oops");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        key("partner-key"),
        200,
        "a broken list must not replace the last good one"
    );
    auth.set_json("/clients", &empty);
    let started = Instant::now();
    while key("partner-key") != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "remote key not removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(key("acme-key"), 200, "configured keys are unaffected");
}
