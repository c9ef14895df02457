//! One rate limit for a fleet (envoy/ratelimit-global.yaml): `redis-server`, the rate limit
//! service (ratelimit-service/, Limitador on Redis) and three Envoys with two workers each, all
//! on loopback, started and stopped here. api-guard authenticates and applies its per-Envoy
//! limits; Envoy's `ratelimit` filter asks the service with descriptors built from the identity
//! headers api-guard set. Every load is bounded in count; every wait has a deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::jwt_fixtures::{jwks, mint, token};
use integration_tests::load::get_with_head;
use integration_tests::ratelimit::{RateLimitService, Redis};
use integration_tests::{key_digest, Envoy, EnvoyConfig, Upstream};
use serde_json::{json, Value};

const RATELIMIT_FILTER: &str = "envoy.filters.http.ratelimit";

/// api-guard's configuration: two API-key clients and a JWT provider, either credential admits
/// (`auth: any`); `node_limit` is the per-Envoy tier, keyed by `node_key` ("identity": per
/// verified client and Envoy; `key: "client"` is a configuration error under `auth: any`).
fn plugin_config(node_rate: u64, node_per: &str, node_burst: u64, node_key: &str) -> Value {
    json!({
        "clients": {
            "acme": {"keys": [{"id": "acme-1", "sha256": key_digest("acme-key")}]},
            "bravo": {"keys": [{"id": "bravo-1", "sha256": key_digest("bravo-key")}]}
        },
        "jwt_providers": {
            "corp": {"issuer": "https://issuer.test", "audiences": ["api"], "jwks": jwks(&["ec-256"])}
        },
        "policies": {
            "api": {
                "api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any",
                "rate_limits": [{"name": "node_limit", "rate": node_rate, "per": node_per,
                                 "burst": node_burst, "key": node_key}]
            }
        }
    })
}

/// The service's limits: per client id and per JWT subject, an hour long so that no window
/// ends during a test. The storage timeout is raised from 100 ms for this shared 2-core
/// machine, where a Redis round trip under load can take longer (a timeout is a 503).
fn limits(per_client: u32, per_subject: u32) -> String {
    format!(
        "domain: api-guard
storage_timeout_ms: 1500
limits:
  - {{name: per_client, descriptor: [{{key: client_id}}], rate: {per_client}, per: hour}}
  - {{name: per_subject, descriptor: [{{key: subject}}], rate: {per_subject}, per: hour}}
"
    )
}

struct Fleet {
    nodes: Vec<Envoy>,
    service: RateLimitService,
    redis: Redis,
    up: Upstream,
}

fn start(nodes: usize, limits: &str, plugin: &Value, envoy_edits: &[(&str, Value)]) -> Fleet {
    let redis = Redis::start();
    let service = RateLimitService::start(limits, &redis.url());
    let up = Upstream::start("fleet");
    let nodes = (0..nodes)
        .map(|_| {
            let mut config = EnvoyConfig::load("envoy/ratelimit-global.yaml")
                .with_plugin_config(&plugin.to_string())
                .with_upstreams(&[up.addr])
                .with_cluster_endpoints("ratelimit", &[service.grpc]);
            for (field, value) in envoy_edits {
                config = config.with_filter_field(RATELIMIT_FILTER, field, value.clone());
            }
            Envoy::start(config)
        })
        .collect();
    Fleet {
        nodes,
        service,
        redis,
        up,
    }
}

/// On a busy 2-core machine a call to the service can take longer than the shipped 0.25 s;
/// a timeout would be a 503 (fail closed), not what these tests look at.
fn patient() -> Vec<(&'static str, Value)> {
    vec![("timeout", Value::String("3s".into()))]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cred {
    Acme,
    Bravo,
    Jwt,
}

fn headers(cred: Cred) -> Vec<(String, String)> {
    // Forged identity headers ride along: api-guard removes them, so they neither pick nor
    // dodge a counter.
    let mut h = vec![
        (
            "x-api-guard-client-id".to_string(),
            "someone-else".to_string(),
        ),
        (
            "x-api-guard-subject".to_string(),
            "someone-else".to_string(),
        ),
    ];
    match cred {
        Cred::Acme => h.push(("x-api-key".into(), "acme-key".into())),
        Cred::Bravo => h.push(("x-api-key".into(), "bravo-key".into())),
        Cred::Jwt => h.push((
            "authorization".into(),
            format!("Bearer {}", token("valid_es256")),
        )),
    }
    h
}

/// Who answered a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    Admitted,
    /// 429 from the fleet tier (Envoy's ratelimit filter marks it `x-envoy-ratelimited`).
    FleetLimited,
    /// 429 from api-guard's per-Envoy tier.
    NodeLimited,
    Other(u16),
}

fn classify(result: Result<(u16, String), String>) -> Answer {
    match result {
        Ok((200, _)) => Answer::Admitted,
        Ok((429, head)) if head.to_ascii_lowercase().contains("\nx-envoy-ratelimited:") => {
            Answer::FleetLimited
        }
        Ok((429, _)) => Answer::NodeLimited,
        Ok((status, _)) => Answer::Other(status),
        Err(_) => Answer::Other(0),
    }
}

type Tally = BTreeMap<(Cred, usize, Answer), usize>;

/// Sends `total` requests from `threads` threads: request i uses `creds[i % creds.len()]` on
/// node `(i / creds.len()) % nodes`. Returns counts by (credential, node, answer).
fn burst(fleet: &Fleet, creds: &[Cred], total: usize, threads: usize) -> Tally {
    let ports: Vec<u16> = fleet.nodes.iter().map(|n| n.http_port).collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::new()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (ports, next, tally, creds) =
                (ports.clone(), next.clone(), tally.clone(), creds.to_vec());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let cred = creds[i % creds.len()];
                let node = (i / creds.len()) % ports.len();
                let answer = classify(get_with_head(ports[node], "/api/x", &headers(cred)));
                *tally
                    .lock()
                    .unwrap()
                    .entry((cred, node, answer))
                    .or_default() += 1;
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let tally = tally.lock().unwrap().clone();
    tally
}

fn count(tally: &Tally, cred: Cred, answer: Answer) -> usize {
    tally
        .iter()
        .filter(|((c, _, a), _)| *c == cred && *a == answer)
        .map(|(_, n)| n)
        .sum()
}

fn merge(a: &mut Tally, b: Tally) {
    for (k, v) in b {
        *a.entry(k).or_default() += v;
    }
}

fn answers(tally: &Tally) -> Vec<Answer> {
    let mut all: Vec<Answer> = tally.keys().map(|(_, _, a)| *a).collect();
    all.dedup();
    all.sort();
    all.dedup();
    all
}

#[test]
fn a_client_spread_over_three_envoys_gets_exactly_the_fleet_number_and_clients_do_not_interfere() {
    // The per-Envoy tier is out of the way here (one generous bucket per Envoy).
    let fleet = start(
        3,
        &limits(30, 20),
        &plugin_config(5000, "second", 5000, "policy"),
        &patient(),
    );
    let creds = [Cred::Acme, Cred::Bravo, Cred::Jwt];
    // 270 concurrent requests, 90 per credential, round-robin over the three Envoys.
    let mut tally = burst(&fleet, &creds, 270, 12);
    let in_burst: Vec<usize> = creds
        .iter()
        .map(|c| count(&tally, *c, Answer::Admitted))
        .collect();
    // Then 6 more each, one at a time. "exact" admission never admits over the limit; a
    // refusal caused only by commits in flight is retried a bounded number of times, and a
    // place it still left is taken by these (docs/fleet-rate-limits.md).
    merge(&mut tally, burst(&fleet, &creds, 18, 1));
    eprintln!("admitted during the burst {in_burst:?}; tally {tally:?}");
    assert_eq!(
        answers(&tally),
        vec![Answer::Admitted, Answer::FleetLimited],
        "{tally:?}"
    );
    assert_eq!(count(&tally, Cred::Acme, Answer::Admitted), 30, "{tally:?}");
    assert_eq!(
        count(&tally, Cred::Bravo, Answer::Admitted),
        30,
        "{tally:?}"
    );
    assert_eq!(count(&tally, Cred::Jwt, Answer::Admitted), 20, "{tally:?}");
    assert!(in_burst[0] <= 30 && in_burst[1] <= 30 && in_burst[2] <= 20);
    // All three Envoys admitted some of each client's number: one count for the fleet.
    for cred in creds {
        for node in 0..3 {
            assert!(
                tally
                    .get(&(cred, node, Answer::Admitted))
                    .is_some_and(|n| *n > 0),
                "{cred:?} got nothing from node {node}: {tally:?}"
            );
        }
    }
    // The upstream saw exactly the admitted requests, each with the identity api-guard set
    // (the forged headers replaced or removed).
    let seen = fleet.up.requests();
    assert_eq!(seen.len(), 80);
    let by = |header: &str, value: &str| {
        seen.iter()
            .filter(|r| r.header(header).as_deref() == Some(value))
            .count()
    };
    assert_eq!(by("x-api-guard-client-id", "acme"), 30);
    assert_eq!(by("x-api-guard-client-id", "bravo"), 30);
    assert_eq!(by("x-api-guard-subject", "user-1"), 20);
    assert!(seen.iter().all(|r| r.header_count("x-api-guard-client-id")
        + r.header_count("x-api-guard-subject")
        == 1));
    // The service agrees.
    let series = |limit: &str, result: &str| {
        fleet.service.metric(&format!(
            "api_guard_ratelimit_descriptors_total{{limit=\"{limit}\",result=\"{result}\"}}"
        ))
    };
    assert_eq!(series("per_client", "ok"), 60);
    assert_eq!(series("per_subject", "ok"), 20);
    assert_eq!(
        series("per_client", "over_limit") + series("per_subject", "over_limit"),
        288 - 80
    );
}

#[test]
fn a_tier_claim_selects_its_own_fleet_limit_and_a_forged_tier_header_does_not() {
    // api-guard's per-Envoy limit gives each `tier` claim its tier (overrides; the tier header
    // carries only tiers api-guard matched, never a forwarded claim); the service counts
    // (tier=free, subject) at 8 and every subject at 16. A gold token matches no tier limit,
    // only the subject one.
    let mut plugin = plugin_config(5000, "second", 5000, "identity");
    plugin["policies"]["api"]["rate_limits"][0]["overrides"] = json!([
        {"claim": "tier", "value": "free", "rate": 5000},
        {"claim": "tier", "value": "gold", "rate": 5000}
    ]);
    let limits = "domain: api-guard
storage_timeout_ms: 1500
limits:
  - {name: per_subject, descriptor: [{key: subject}], rate: 16, per: hour}
  - {name: free_tier, descriptor: [{key: tier, value: free}, {key: subject}], rate: 8, per: hour}
";
    let fleet = start(3, limits, &plugin, &patient());
    let jwt = |sub: &str, tier: &str| {
        format!(
            "Bearer {}",
            mint(
                "ec-256",
                &json!({"iss": "https://issuer.test", "aud": "api", "sub": sub, "tier": tier,
                        "iat": "$now-60", "exp": "$now+3600"})
            )
        )
    };
    let users = [
        ("u-free", jwt("u-free", "free"), None),
        ("u-gold", jwt("u-gold", "gold"), None),
        // A gold token with a forged tier header: api-guard replaces it with the matched tier.
        ("u-gold-2", jwt("u-gold-2", "gold"), Some("free")),
    ];
    let ports: Vec<u16> = fleet.nodes.iter().map(|n| n.http_port).collect();
    let mut admitted = BTreeMap::new();
    for (user, bearer, forged) in &users {
        let mut headers = vec![("authorization".to_string(), bearer.clone())];
        if let Some(tier) = forged {
            headers.push(("x-api-guard-tier".to_string(), tier.to_string()));
        }
        let ports = ports.clone();
        let tally = integration_tests::load::burst(30, 6, move |i| {
            (ports[i % 3], "/api/x".to_string(), headers.clone())
        });
        assert!(
            tally.keys().all(|s| *s == 200 || *s == 429),
            "{user}: {tally:?}"
        );
        admitted.insert(*user, tally.get(&200).copied().unwrap_or(0));
    }
    assert_eq!(
        admitted,
        BTreeMap::from([("u-free", 8), ("u-gold", 16), ("u-gold-2", 16)])
    );
    let seen = fleet.up.requests();
    assert_eq!(seen.len(), 40);
    let tiers = |tier: &str| {
        seen.iter()
            .filter(|r| r.header("x-api-guard-tier").as_deref() == Some(tier))
            .count()
    };
    assert_eq!((tiers("free"), tiers("gold")), (8, 32));
    assert_eq!(
        fleet
            .service
            .metric("api_guard_ratelimit_descriptors_total{limit=\"free_tier\",result=\"ok\"}"),
        8
    );
}

#[test]
fn the_per_envoy_tier_sheds_a_flood_before_the_fleet_tier_and_two_clients_stay_apart() {
    // Per Envoy: 10 per client at once (then 1 an hour); the fleet: 20 per client. Three
    // Envoys let 30 through locally, the fleet number admits 20 of them.
    let fleet = start(
        3,
        &limits(20, 20),
        &plugin_config(1, "hour", 10, "identity"),
        &patient(),
    );
    let tally = burst(&fleet, &[Cred::Acme, Cred::Bravo], 300, 12);
    eprintln!("{tally:?}");
    assert_eq!(
        answers(&tally),
        vec![Answer::Admitted, Answer::FleetLimited, Answer::NodeLimited]
    );
    for cred in [Cred::Acme, Cred::Bravo] {
        assert_eq!(count(&tally, cred, Answer::Admitted), 20, "{cred:?}");
        assert_eq!(count(&tally, cred, Answer::FleetLimited), 10, "{cred:?}");
        // 50 requests per node each: 40 shed by api-guard on every node.
        for node in 0..3 {
            assert_eq!(
                tally.get(&(cred, node, Answer::NodeLimited)),
                Some(&40),
                "{cred:?} node {node}"
            );
        }
    }
    // The service was asked only for what the per-Envoy tier let through: 2 x 3 x 10.
    let requests = |result: &str| {
        fleet.service.metric(&format!(
            "api_guard_ratelimit_requests_total{{result=\"{result}\"}}"
        ))
    };
    assert_eq!(requests("ok") + requests("over_limit"), 60);
    assert_eq!(fleet.up.requests().len(), 40);
    // Envoy's view, summed over the fleet (the filter's stats live under the route's cluster).
    let envoy_stat = |name: &str| -> u64 {
        fleet
            .nodes
            .iter()
            .map(|n| {
                let stats = n.admin_get("/stats?filter=^cluster.upstream.ratelimit");
                stats
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("cluster.upstream.ratelimit.{name}: ")))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no {name} in {stats}"))
            })
            .sum()
    };
    assert_eq!((envoy_stat("ok"), envoy_stat("over_limit")), (40, 20));
}

/// Polls `node` with `cred` until it answers `want`, up to `limit`; every answer on the way
/// must be in `allowed`. Returns how long it took.
fn wait_for(fleet: &Fleet, want: Answer, allowed: &[Answer], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let mut all = Vec::new();
        for node in &fleet.nodes {
            all.push(classify(get_with_head(
                node.http_port,
                "/api/x",
                &headers(Cred::Acme),
            )));
        }
        assert!(all.iter().all(|a| allowed.contains(a)), "{all:?}");
        if all.iter().all(|a| *a == want) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "still {all:?} after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redis_or_the_service_down_fails_closed_with_503_never_500_and_recovers() {
    // The shipped filter settings (failure_mode_deny, 503 on error), the timeout raised.
    let mut fleet = start(
        3,
        &limits(10_000, 10_000),
        &plugin_config(5000, "second", 5000, "policy"),
        &patient(),
    );
    let admitted = burst(&fleet, &[Cred::Acme], 30, 3);
    assert_eq!(answers(&admitted), vec![Answer::Admitted], "{admitted:?}");
    let down = [Answer::Other(503)];
    let either = [Answer::Admitted, Answer::Other(503)];

    fleet.redis.kill();
    let during = burst(&fleet, &[Cred::Acme, Cred::Jwt], 60, 6);
    assert_eq!(answers(&during), down, "{during:?}");
    assert_eq!(fleet.service.http_get("/healthz").unwrap().0, 503);
    fleet.redis.restart();
    let took = wait_for(&fleet, Answer::Admitted, &either, Duration::from_secs(15));
    eprintln!("Redis back: every node admits again after {took:?}");
    assert_eq!(fleet.service.http_get("/healthz").unwrap().0, 200);

    fleet.service.kill();
    let during = burst(&fleet, &[Cred::Acme, Cred::Jwt], 60, 6);
    assert_eq!(answers(&during), down, "{during:?}");
    fleet.service.restart();
    let took = wait_for(&fleet, Answer::Admitted, &either, Duration::from_secs(15));
    eprintln!("service back: every node admits again after {took:?}");
    let after = burst(&fleet, &[Cred::Acme, Cred::Bravo, Cred::Jwt], 30, 3);
    assert_eq!(answers(&after), vec![Answer::Admitted], "{after:?}");
}

#[test]
fn failing_open_leaves_the_per_envoy_tier_in_force() {
    let mut fleet = start(
        1,
        &limits(10_000, 10_000),
        &plugin_config(1, "hour", 5, "identity"),
        &[("failure_mode_deny", Value::Bool(false))],
    );
    fleet.service.kill();
    let tally = burst(&fleet, &[Cred::Acme], 8, 1);
    assert_eq!(count(&tally, Cred::Acme, Answer::Admitted), 5, "{tally:?}");
    assert_eq!(
        count(&tally, Cred::Acme, Answer::NodeLimited),
        3,
        "{tally:?}"
    );
    assert_eq!(fleet.up.requests().len(), 5);
}
