//! CORS preflights through the real Envoy (envoy/envoy.yaml): with `preflight: "pass"` a real
//! preflight (OPTIONS + Origin + Access-Control-Request-Method) reaches the upstream without a
//! credential, while the IP rule, the method check (on the method asked for) and the rate limit
//! by address still apply; everything else still needs its key.

use integration_tests::{Envoy, EnvoyConfig, RequestBuilder, Upstream};
use serde_json::json;

/// The digest of `demo-key-123`.
const DEMO_KEY_SHA256: &str = "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873";

fn start(preflight: &str, methods: &[&str], upstream: &Upstream) -> Envoy {
    let config = json!({
        "clients": {"demo": {"keys": [{"id": "demo-1", "sha256": DEMO_KEY_SHA256}]}},
        "policies": {
            "api": {
                "methods": methods,
                "ip": {"allow": ["127.0.0.0/8"], "deny": ["127.0.0.2/32"]},
                "api_key": {},
                "preflight": preflight,
                "rate_limits": [
                    {"name": "per_ip", "rate": 1, "per": "hour", "burst": 3, "key": "ip"}
                ]
            }
        }
    });
    Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[upstream.addr]),
    )
}

fn preflight(envoy: &Envoy, method: &str) -> RequestBuilder {
    envoy
        .request("OPTIONS", "/api/orders")
        .header("origin", "https://app.example")
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "x-api-key, content-type")
}

#[test]
fn a_preflight_passes_without_credentials_and_nothing_else_does() {
    let up = Upstream::start("replica");
    let envoy = start("pass", &["GET", "PUT"], &up);

    // The preflight reaches the upstream, with no identity and no credential.
    let r = preflight(&envoy, "PUT").send();
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "OPTIONS");
    assert_eq!(seen[0].header("x-api-guard-client-id"), None);
    assert_eq!(
        seen[0].header("access-control-request-method").as_deref(),
        Some("PUT")
    );

    // An OPTIONS that is not a real preflight is an ordinary request: OPTIONS is not allowed.
    let r = envoy
        .request("OPTIONS", "/api/orders")
        .header("origin", "https://app.example")
        .send();
    assert_eq!(r.status, 405);
    // A preflight for a method the policy does not allow.
    assert_eq!(preflight(&envoy, "DELETE").send().status, 405);
    // The IP rule applies to preflights.
    assert_eq!(
        preflight(&envoy, "PUT").from_ip("127.0.0.2").send().status,
        403
    );
    // The real request still needs its key; with it, it passes.
    assert_eq!(envoy.request("PUT", "/api/orders").send().status, 401);
    let r = envoy
        .request("GET", "/api/orders")
        .header("x-api-key", "demo-key-123")
        .send();
    assert_eq!(r.status, 200);

    // The address limit (burst 3) counts preflights: the GET above was the second request
    // from 127.0.0.1, so one more preflight passes and the next is limited.
    assert_eq!(preflight(&envoy, "GET").send().status, 200);
    assert_eq!(preflight(&envoy, "PUT").send().status, 429);
    let methods: Vec<String> = up.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["OPTIONS", "GET", "OPTIONS"]);
}

#[test]
fn without_the_option_a_preflight_needs_a_credential() {
    let up = Upstream::start("replica");
    // OPTIONS allowed, so that only the credential check can refuse it.
    let envoy = start("check", &["GET", "PUT", "OPTIONS"], &up);
    let r = preflight(&envoy, "PUT").send();
    assert_eq!(r.status, 401);
    assert!(up.requests().is_empty());
}

/// envoy/cors.yaml: Envoy's CORS filter before api_guard answers preflights from allowed
/// origins itself, passes others on to api-guard, and adds CORS headers to api-guard's refusals.
#[test]
fn envoy_cors_filter_before_api_guard() {
    let up = Upstream::start("replica");
    let envoy = Envoy::start(EnvoyConfig::load("envoy/cors.yaml").with_upstreams(&[up.addr]));
    let ask = |origin: &str| {
        envoy
            .request("OPTIONS", "/api/orders")
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "x-api-key")
            .send()
    };
    // An allowed origin: answered by Envoy, nothing reaches api-guard's upstream.
    let r = ask("https://app.example");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(up.requests().is_empty());
    // Another origin: passed on, and api-guard refuses the OPTIONS (not an allowed method).
    let r = ask("https://evil.example");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert!(up.requests().is_empty());
    // api-guard's 401 carries the CORS header for an allowed origin: the page can read it.
    let r = envoy
        .request("GET", "/api/orders")
        .header("origin", "https://app.example")
        .send();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = envoy
        .request("GET", "/api/orders")
        .header("origin", "https://app.example")
        .header("x-api-key", "demo-key-123")
        .send();
    assert_eq!(r.status, 200);
    assert_eq!(up.requests().len(), 1);
}
