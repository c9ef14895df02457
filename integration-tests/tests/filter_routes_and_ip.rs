//! Per-route policy selection, client IP rules (including a spoofed X-Forwarded-For), metrics,
//! and configuration errors, through the real Envoy with envoy/envoy.yaml.

use integration_tests::{Envoy, EnvoyConfig, Upstream};
use serde_json::json;

fn start(config: &serde_json::Value, upstream: &Upstream) -> Envoy {
    Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[upstream.addr]),
    )
}

#[test]
fn routes_select_their_policy_and_unknown_fails_closed() {
    let up = Upstream::start("replica");
    // /public -> "public" (GET only), /api -> "api" (not defined here: fail closed),
    // /internal -> "internal" (POST only), / -> no metadata and no default policy: denied.
    let envoy = start(
        &json!({"policies": {"public": {"methods": ["GET"]}, "internal": {"methods": ["POST"]}}}),
        &up,
    );
    assert_eq!(envoy.request("GET", "/public/a").send().status, 200);
    assert_eq!(envoy.request("POST", "/public/a").send().status, 405);
    assert_eq!(envoy.request("POST", "/internal/a").send().status, 200);
    assert_eq!(envoy.request("GET", "/internal/a").send().status, 405);
    for path in ["/api/a", "/api/b"] {
        let r = envoy.request("GET", path).send();
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["error"], "route_forbidden");
    }
    let r = envoy.request("GET", "/elsewhere").send();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "route_forbidden");
    assert_eq!(
        up.requests().len(),
        2,
        "only the two admitted requests reach the upstream"
    );

    // Every decision is a metric, labelled by policy and reason.
    let prom = envoy.admin_get("/stats/prometheus");
    let value = |series: &str| -> u64 {
        prom.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{prom}"))
    };
    assert_eq!(value("api_guard_policy_allowed{policy=\"public\"}"), 1);
    assert_eq!(
        value("api_guard_policy_denied{policy=\"public\",reason=\"method_not_allowed\"}"),
        1
    );
    assert_eq!(
        value("api_guard_policy_denied{policy=\"_none\",reason=\"unknown_policy\"}"),
        2
    );
    assert_eq!(
        value("api_guard_policy_denied{policy=\"_none\",reason=\"no_policy\"}"),
        1
    );
    // The unknown policy is logged once per VM, not once per request.
    let log = envoy.log();
    let warnings = log.matches("route names unknown policy \"api\"").count();
    assert!(
        (1..=2).contains(&warnings),
        "logged {warnings} times:\n{log}"
    );
}

#[test]
fn default_policy_and_explicit_pass_through() {
    let up = Upstream::start("replica");
    let envoy = start(&json!({"policies": {"default": {"methods": ["GET"]}}}), &up);
    // Routes without metadata get `default`; so do none others here.
    assert_eq!(envoy.request("GET", "/anything").send().status, 200);
    assert_eq!(envoy.request("PUT", "/anything").send().status, 405);
    drop(envoy);

    let envoy = start(&json!({"unmatched_routes": "allow", "policies": {}}), &up);
    up.clear();
    let r = envoy
        .request("PUT", "/anything")
        .header("x-api-guard-client-id", "forged")
        .send();
    assert_eq!(r.status, 200);
    // Passed through untouched, except that forged identity headers never pass.
    assert_eq!(up.requests()[0].header_count("x-api-guard-client-id"), 0);
    // A route that names a missing policy is still denied with unmatched routes allowed.
    assert_eq!(envoy.request("GET", "/api/x").send().status, 403);
}

#[test]
fn ip_rules_deny_wins_and_spoofed_forwarding_headers_do_not_help() {
    let up = Upstream::start("replica");
    let envoy = start(
        &json!({"policies": {
            // Only 10/8 may use /internal: a loopback client is refused whatever it claims.
            "internal": {"ip": {"allow": ["10.0.0.0/8"]}},
            // Everyone on loopback but 127.0.0.2 may use /public.
            "public": {"ip": {"allow": ["127.0.0.0/8", "::1/128"], "deny": ["127.0.0.2/32"]}}
        }}),
        &up,
    );
    assert_eq!(envoy.request("GET", "/public/x").send().status, 200);
    let r = envoy
        .request("GET", "/public/x")
        .from_ip("127.0.0.2")
        .send();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "ip_forbidden");
    assert_eq!(
        envoy
            .request("GET", "/public/x")
            .from_ip("127.0.0.3")
            .send()
            .status,
        200
    );

    let r = envoy.request("GET", "/internal/x").send();
    assert_eq!(r.status, 403);
    // Spoofing the forwarding headers does not move the client into 10/8 (use_remote_address).
    for (name, value) in [
        ("x-forwarded-for", "10.1.2.3"),
        ("x-forwarded-for", "10.1.2.3, 10.9.9.9"),
        ("x-real-ip", "10.1.2.3"),
        ("forwarded", "for=10.1.2.3"),
    ] {
        let r = envoy
            .request("GET", "/internal/x")
            .header(name, value)
            .send();
        assert_eq!(r.status, 403, "{name}: {value} got through");
    }
    // Nor does it get a denied client out of the deny list.
    let r = envoy
        .request("GET", "/public/x")
        .from_ip("127.0.0.2")
        .header("x-forwarded-for", "127.0.0.1")
        .send();
    assert_eq!(r.status, 403);
    assert_eq!(up.requests().len(), 2);
    let prom = envoy.admin_get("/stats/prometheus");
    assert!(
        prom.contains("api_guard_policy_denied{policy=\"internal\",reason=\"ip_denied\"} 5"),
        "{prom}"
    );
}

#[test]
fn bad_configuration_is_rejected_with_every_path() {
    let config = json!({
        "policies": {
            "payments": {"ip": {"allow": ["10.0.0.0/8", "10.0.0.300/8"]}, "methods": ["get"]},
            "api": {"api_key": {"clients": ["ghost"]}, "ratelimit": {}}
        }
    });
    let failure = Envoy::try_start(
        EnvoyConfig::load("envoy/envoy.yaml").with_plugin_config(&config.to_string()),
    )
    .err()
    .expect("Envoy accepted a bad api-guard configuration");
    // With a static bootstrap, a plugin that refuses its configuration stops Envoy (exit 1).
    assert_eq!(failure.exit_code, Some(1), "{}", failure.log);
    for line in [
        "policies.payments.ip.allow[1]: not a CIDR: \"10.0.0.300/8\"",
        "policies.payments.methods[0]: not an uppercase HTTP method: \"get\"",
        "policies.api.api_key.clients[0]: unknown client \"ghost\"",
        "policies.api.ratelimit: unknown field",
        "configuration rejected with 4 error(s)",
    ] {
        assert!(
            failure.log.contains(line),
            "missing {line:?} in\n{}",
            failure.log
        );
    }
}
