//! A fleet: three Envoy processes (each `--concurrency 2`) with the module, all pointed at the
//! same auth service (JWKS and revocation list; a real HTTP server in the harness). Bounded in
//! requests and time; loopback only.

use std::time::{Duration, Instant};

use integration_tests::jwt_fixtures::{jwks, token};
use integration_tests::load::{burst, Tally};
use integration_tests::{key_digest, AuthServer, Envoy, EnvoyConfig, Upstream};
use serde_json::{json, Value};

fn config(rate: u64) -> Value {
    json!({
        "clients": {"acme": {"keys": [{"id": "acme-1", "sha256": key_digest("acme-key")}]}},
        "jwt_providers": {
            "corp": {
                "issuer": "https://issuer.test", "audiences": ["api"],
                "remote_jwks": {"cluster": "auth", "authority": "auth.test", "path": "/jwks.json",
                                "refresh_seconds": 1, "timeout_ms": 500, "max_stale_seconds": 30,
                                "unknown_kid_refetch_seconds": 1}
            }
        },
        "revocation": {"remote": {"cluster": "auth", "authority": "auth.test", "path": "/revocations",
                                  "poll_seconds": 1, "timeout_ms": 500}},
        "policies": {
            "api": {"jwt": {"providers": ["corp"]}},
            "internal": {"api_key": {}, "rate_limits": [
                {"name": "per_client", "rate": rate, "per": "second", "burst": rate, "key": "client"}]}
        }
    })
}

struct Fleet {
    nodes: Vec<Envoy>,
    auth: AuthServer,
    _up: Upstream,
}

fn start_fleet(config: &Value, dynamic: bool) -> Fleet {
    let auth = AuthServer::start();
    auth.set_json("/jwks.json", &jwks(&["ec-256", "ed-1"]));
    auth.set_json("/revocations", &json!({}));
    let up = Upstream::start("fleet");
    let nodes = (0..3)
        .map(|_| {
            let mut c = EnvoyConfig::load("envoy/envoy.yaml")
                .with_plugin_config(&config.to_string())
                .with_upstreams(&[up.addr])
                .with_auth_service(auth.addr());
            if dynamic {
                c = c.with_dynamic_listeners();
            }
            Envoy::start(c)
        })
        .collect();
    let fleet = Fleet {
        nodes,
        auth,
        _up: up,
    };
    fleet.wait_all(&token("valid_es256"), 200, Duration::from_secs(10));
    fleet
}

impl Fleet {
    fn status(&self, node: usize, path: &str, token: &str) -> u16 {
        integration_tests::load::get(
            self.nodes[node].http_port,
            path,
            &[("authorization".into(), format!("Bearer {token}"))],
        )
        .unwrap_or(0)
    }

    /// Polls every node until each answers `want` (bounded); returns how long it took.
    fn wait_all(&self, token: &str, want: u16, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let all: Vec<u16> = (0..self.nodes.len())
                .map(|n| self.status(n, "/api/x", token))
                .collect();
            if all.iter().all(|s| *s == want) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "nodes answered {all:?}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wasm_vm_created(&self, node: usize) -> u64 {
        self.nodes[node]
            .admin_get("/stats?filter=wasm")
            .lines()
            .filter(|l| l.contains("runtime") && l.contains(".created:"))
            .filter_map(|l| l.rsplit(": ").next()?.trim().parse::<u64>().ok())
            .sum()
    }
}

fn only(tally: &Tally, allowed: &[u16]) -> bool {
    tally.keys().all(|s| allowed.contains(s))
}

#[test]
fn one_token_one_answer_everywhere_and_central_revocation_reaches_every_node() {
    let fleet = start_fleet(&config(1000), false);
    for name in ["valid_es256", "valid_eddsa"] {
        fleet.wait_all(&token(name), 200, Duration::from_secs(5));
    }
    for name in ["expired", "kid_unknown", "alg_none"] {
        let all: Vec<u16> = (0..3)
            .map(|n| fleet.status(n, "/api/x", &token(name)))
            .collect();
        assert!(all.iter().all(|s| *s == all[0]), "{name}: {all:?}");
    }
    fleet
        .auth
        .set_json("/revocations", &json!({"subjects": ["user-1"]}));
    // Bound: poll 1 s + tick 1 s + timeout 0.5 s per node, nodes polling independently.
    let took = fleet.wait_all(&token("valid_es256"), 401, Duration::from_secs(10));
    eprintln!("revocation enforced by all 3 nodes after {took:?}");
    fleet.auth.set_json("/revocations", &json!({}));
    fleet.wait_all(&token("valid_es256"), 200, Duration::from_secs(10));
}

#[test]
fn auth_service_killed_under_load_then_back() {
    let mut fleet = start_fleet(&config(1000), false);
    let ports: Vec<u16> = fleet.nodes.iter().map(|n| n.http_port).collect();
    let good = token("valid_es256");
    let load = |ports: Vec<u16>, good: String| {
        burst(300, 12, move |i| {
            (
                ports[i % ports.len()],
                "/api/x".to_string(),
                vec![("authorization".into(), format!("Bearer {good}"))],
            )
        })
    };
    let before = load(ports.clone(), good.clone());
    assert_eq!(before.get(&200), Some(&300), "{before:?}");
    // The service dies mid-traffic: cached keys keep verifying (max_stale 30 s), a token that
    // needs a fetch (a key the nodes never saw) fails closed with 401, never anything else.
    fleet.auth.stop();
    let during = load(ports.clone(), good.clone());
    assert_eq!(during.get(&200), Some(&300), "{during:?}");
    let unseen = token("valid_rs256");
    let tally = burst(30, 6, {
        let ports = ports.clone();
        move |i| {
            (
                ports[i % 3],
                "/api/x".to_string(),
                vec![("authorization".into(), format!("Bearer {unseen}"))],
            )
        }
    });
    assert!(only(&tally, &[401]), "{tally:?}");
    // It returns with a new key: every node picks it up.
    fleet
        .auth
        .set_json("/jwks.json", &jwks(&["ec-256", "ed-1", "rsa-1"]));
    fleet.auth.restart();
    fleet.wait_all(&token("valid_rs256"), 200, Duration::from_secs(10));
}

#[test]
fn a_traffic_spike_gets_only_designed_answers_and_no_vm_restarts() {
    let fleet = start_fleet(&config(5), false);
    let created: Vec<u64> = (0..3).map(|n| fleet.wasm_vm_created(n)).collect();
    // The counter is read for real (a wrong stat name would read 0 before and after).
    assert!(
        created.iter().all(|c| *c > 0),
        "wasm VM counters not found: {created:?}"
    );
    let ports: Vec<u16> = fleet.nodes.iter().map(|n| n.http_port).collect();
    let tokens = [
        token("valid_es256"),
        token("expired"),
        token("kid_unknown"),
        String::new(),
    ];
    // 3,000 requests from 48 threads over 3 nodes: JWT routes with good, expired, unknown-kid and
    // missing tokens; API-key routes over a 5/s limit; unknown keys.
    let tally = burst(3000, 48, move |i| {
        let port = ports[i % 3];
        match i % 6 {
            0..=3 => {
                let t = &tokens[i % 4];
                let headers = if t.is_empty() {
                    vec![]
                } else {
                    vec![("authorization".to_string(), format!("Bearer {t}"))]
                };
                (port, "/api/x".to_string(), headers)
            }
            4 => (
                port,
                "/internal/x".to_string(),
                vec![("x-api-key".into(), "acme-key".into())],
            ),
            _ => (
                port,
                "/internal/x".to_string(),
                vec![("x-api-key".into(), "nope".into())],
            ),
        }
    });
    eprintln!("spike: {tally:?}");
    assert!(only(&tally, &[200, 401, 403, 429]), "{tally:?}");
    assert!(
        tally.get(&429).is_some_and(|n| *n > 0),
        "the limit should have bitten: {tally:?}"
    );
    let after: Vec<u64> = (0..3).map(|n| fleet.wasm_vm_created(n)).collect();
    assert_eq!(created, after, "a wasm VM was (re)created during the spike");
}

#[test]
fn a_policy_reload_under_load_applies_without_dropping_requests_and_a_bad_one_is_refused() {
    let mut old = config(1000);
    old["policies"]["api"] = json!({"jwt": {"providers": ["corp"]}});
    let fleet = start_fleet(&old, true);
    let node = &fleet.nodes[0];
    let port = node.http_port;
    let good = token("valid_es256");
    // Load runs while the policy changes (/api/x needs scope "admin" in the new policy): 8
    // threads of fresh connections until the update has been applied for a while, at most
    // 8 x 1,500 requests.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (good, stop) = (good.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut tally = Tally::new();
                let mut errors = Vec::new();
                for _ in 0..1500 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let headers = [("authorization".to_string(), format!("Bearer {good}"))];
                    let status = integration_tests::load::get(port, "/api/x", &headers)
                        .unwrap_or_else(|e| {
                            errors.push(e);
                            0
                        });
                    *tally.entry(status).or_default() += 1;
                }
                (tally, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (ok_before, rejected_before) = node.lds_updates();
    let mut new = old.clone();
    new["policies"]["api"] = json!({"jwt": {"providers": ["corp"], "required_scopes": ["admin"]}});
    node.update_plugin_config(&new.to_string());
    let started = Instant::now();
    while node.lds_updates().0 == ok_before && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(node.lds_updates().0, ok_before + 1);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut tally = Tally::new();
    let mut errors = Vec::new();
    for t in load {
        let (t, e) = t.join().unwrap();
        for (k, v) in t {
            *tally.entry(k).or_default() += v;
        }
        errors.extend(e.into_iter().take(5));
    }
    eprintln!("during reload: {tally:?} {errors:?}");
    // Every request got a designed answer from the old or the new policy; none was dropped.
    assert!(only(&tally, &[200, 403]), "{tally:?} {errors:?}");
    assert!(
        tally.contains_key(&200) && tally.contains_key(&403),
        "the load did not span the update: {tally:?}"
    );
    // The new policy is in force (new connections reach the new listener config).
    let started = Instant::now();
    while fleet.status(0, "/api/x", &good) != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new policy not applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A bad update (unknown field) is rejected whole; the current policy keeps serving.
    let mut bad = new.clone();
    bad["policies"]["api"]["jwt"]["scopes_typo"] = json!(["x"]);
    node.update_plugin_config(&bad.to_string());
    let started = Instant::now();
    while node.lds_updates().1 == rejected_before && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        node.lds_updates().1,
        rejected_before + 1,
        "bad update not rejected"
    );
    assert_eq!(fleet.status(0, "/api/x", &good), 403);
    assert_eq!(
        fleet.status(0, "/api/x", &token("valid_scopes")),
        403,
        "valid_scopes has read/write, not admin"
    );
}
