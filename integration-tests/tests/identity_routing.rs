//! Identity-aware routing (`envoy/identity-routing.yaml`, the shipped example): Envoy's router
//! balances and matches on the identity api-guard established, never on what the client claims.

use integration_tests::jwt_fixtures::mint;
use integration_tests::{Envoy, EnvoyConfig, Response, Upstream};
use serde_json::json;

struct Setup {
    envoy: Envoy,
    _replicas: [Upstream; 3],
}

fn start() -> Setup {
    let a = Upstream::start("replica-1");
    let b = Upstream::start("replica-2");
    let p = Upstream::start("premium");
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/identity-routing.yaml")
            // Fixed hash keys: the ring, and so which replica each client lands on, is the
            // same every run (the upstreams' ports are not).
            .with_hashed_cluster_endpoints(
                "upstream",
                &[("replica-1", a.addr), ("replica-2", b.addr)],
            )
            .with_cluster_endpoints("premium", &[p.addr]),
    );
    Setup {
        envoy,
        _replicas: [a, b, p],
    }
}

/// Which upstream answered (the echo upstream names itself in its JSON body).
fn served_by(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["upstream"].as_str().unwrap().to_string()
}

fn token(sub: &str, tier: &str) -> String {
    mint(
        "ec-256",
        &json!({"iss": "https://issuer.test", "aud": "api", "sub": sub, "tier": tier,
                "iat": "$now-60", "exp": "$now+3600"}),
    )
}

#[test]
fn each_client_sticks_to_one_replica_and_clients_spread() {
    let s = start();
    let mut used = std::collections::BTreeSet::new();
    for client in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"] {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let r = s
                .envoy
                .request("GET", "/orders")
                .header("x-api-key", &format!("{client}-key"))
                // A client cannot pick its replica (or the premium cluster) by sending the
                // identity headers itself: api-guard replaces or removes them first.
                .header("x-api-guard-client-id", "alpha")
                .header("x-api-guard-tier", "premium")
                .header("x-api-guard-claim-tier", "premium")
                .send();
            seen.insert(served_by(&r));
        }
        assert_eq!(seen.len(), 1, "{client} moved between replicas: {seen:?}");
        assert!(
            !seen.contains("premium"),
            "{client} reached premium by a forged header"
        );
        used.extend(seen);
    }
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["replica-1".to_string(), "replica-2".to_string()],
        "six clients should spread over both replicas"
    );
    // Without credentials nothing is routed at all.
    let r = s.envoy.request("GET", "/orders").send();
    assert_eq!(r.status, 401);
}

#[test]
fn a_verified_premium_claim_routes_to_the_premium_cluster() {
    let s = start();
    let premium = token("carol", "premium");
    for _ in 0..3 {
        let r = s
            .envoy
            .request("GET", "/orders")
            .header("authorization", &format!("Bearer {premium}"))
            .send();
        assert_eq!(served_by(&r), "premium");
    }
    // Other tiers stay on the replicas, sticky per subject.
    let gold = token("dave", "gold");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let r = s
            .envoy
            .request("GET", "/orders")
            .header("authorization", &format!("Bearer {gold}"))
            .header("x-api-guard-tier", "premium")
            .header("x-api-guard-claim-tier", "premium")
            .send();
        seen.insert(served_by(&r));
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(!seen.contains("premium"));
}
