//! Smoke test of the harness itself: the shipped config boots with the module, traffic reaches
//! both upstreams round-robin, over HTTP/1.1, TLS and HTTP/2.

use integration_tests::{Envoy, EnvoyConfig, Upstream};

/// Routes without a policy are passed through: the harness is tested, not the policies.
const PASS_THROUGH: &str = r#"{"unmatched_routes":"allow","policies":{}}"#;

fn config(upstreams: &[&Upstream]) -> EnvoyConfig {
    let addrs: Vec<_> = upstreams.iter().map(|u| u.addr).collect();
    EnvoyConfig::load("envoy/envoy.yaml")
        .with_plugin_config(PASS_THROUGH)
        .with_upstreams(&addrs)
}

#[test]
fn requests_reach_the_upstreams_round_robin() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    // Each worker balances on its own (from a random start), and curl opens a new connection per
    // request, which may land on either worker: one worker makes the alternation deterministic.
    let envoy = Envoy::start(config(&[&a, &b]).with_concurrency(1));

    let mut seen = Vec::new();
    for i in 0..6 {
        let response = envoy
            .request("GET", &format!("/hello?i={i}"))
            .header("x-test", "smoke")
            .send();
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.http_version, "1.1");
        let json = response.json();
        let upstream = response
            .header("x-upstream")
            .expect("x-upstream")
            .to_string();
        assert_eq!(json["upstream"], upstream.as_str());
        assert_eq!(json["path"], format!("/hello?i={i}"));
        seen.push(upstream);
    }
    assert!(
        seen.windows(2).all(|pair| pair[0] != pair[1]),
        "not alternating: {seen:?}"
    );

    let recorded: Vec<_> = a.requests().into_iter().chain(b.requests()).collect();
    assert_eq!(recorded.len(), 6);
    for r in &recorded {
        assert_eq!(r.method, "GET");
        assert_eq!(r.header("x-test").as_deref(), Some("smoke"));
        assert_eq!(r.header_count("x-test"), 1);
    }
}

#[test]
fn tls_http2_and_request_bodies_pass_through() {
    let upstream = Upstream::start("only");
    let envoy = Envoy::start(config(&[&upstream]));

    let response = envoy
        .request("POST", "/upload")
        .https()
        .http2()
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 100_000])
        .send();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.http_version, "2");
    assert_eq!(response.json()["body_len"], 100_000);

    let h2c = envoy.request("GET", "/h2c").http2().send();
    assert_eq!((h2c.status, h2c.http_version.as_str()), (200, "2"));

    let recorded = upstream.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].body, vec![7u8; 100_000]);
    assert_eq!(
        recorded[0].header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert!(envoy
        .admin_get("/stats/prometheus")
        .contains("envoy_cluster_upstream_rq"));
}

#[test]
fn rejected_configuration_is_reported_not_hung() {
    let config = EnvoyConfig::load("envoy/envoy.yaml").with_plugin_config("not json");
    let failure = match Envoy::try_start(config) {
        Ok(_) => panic!("Envoy accepted an invalid plugin configuration"),
        Err(failure) => failure,
    };
    assert_eq!(failure.exit_code, Some(1), "{}", failure.log);
    assert!(failure.log.contains("api_guard"), "{}", failure.log);
}
