//! Per-route policy without route metadata, through the real Envoy with envoy/route-matchers.yaml:
//! routes named as Istio names VirtualService routes, several virtual hosts, and the `routes`
//! matchers of the plugin configuration choosing by route name, virtual host, host and path.

use integration_tests::{Envoy, EnvoyConfig, Upstream};

const KEY: &str = "shop-key-123";

fn start(upstream: &Upstream) -> Envoy {
    Envoy::start(EnvoyConfig::load("envoy/route-matchers.yaml").with_upstreams(&[upstream.addr]))
}

/// Sends one request to `host` and returns the status and api-guard's error code, if any.
fn send(envoy: &Envoy, method: &str, host: &str, path: &str, key: bool) -> (u16, String) {
    let mut request = envoy.request(method, path).header("host", host);
    if key {
        request = request.header("x-api-key", KEY);
    }
    let r = request.send();
    let error = if r.status >= 400 {
        r.json()["error"].as_str().unwrap_or_default().to_string()
    } else {
        String::new()
    };
    (r.status, error)
}

#[test]
fn route_names_virtual_hosts_hosts_and_paths_select_policies() {
    let up = Upstream::start("replica");
    let envoy = start(&up);
    let shop = "shop.example.com";
    // (method, host, path, API key, status, error): each row's status shows which policy ran.
    let cases: &[(&str, &str, &str, bool, u16, &str)] = &[
        // Route `shop-public` -> public (GET only).
        ("GET", shop, "/public/a", false, 200, ""),
        ("POST", shop, "/public/a", false, 405, "method_not_allowed"),
        // Route `shop-api.writes` (VirtualService route `shop-api`, match `writes`) -> writes.
        ("POST", shop, "/api/orders", false, 401, "api_key_missing"),
        ("POST", shop, "/api/orders", true, 200, ""),
        // Route `shop-api` -> api: a key is needed, any method.
        ("GET", shop, "/api/orders", false, 401, "api_key_missing"),
        ("DELETE", shop, "/api/orders", true, 200, ""),
        // Route metadata wins over a matcher on the same route name (`shop-legacy` -> admin).
        ("GET", "shop.example.com:8080", "/legacy/x", false, 200, ""),
        ("PUT", shop, "/legacy/x", false, 405, "method_not_allowed"),
        // Unnamed route on the shop host: host + regex -> api, else /healthz -> health,
        // else default (GET/HEAD).
        ("GET", shop, "/orders/42", false, 401, "api_key_missing"),
        ("GET", shop, "/orders/42?x=1", true, 200, ""),
        ("GET", shop, "/orders/42/items", false, 200, ""),
        (
            "POST",
            shop,
            "/orders/42/items",
            false,
            405,
            "method_not_allowed",
        ),
        ("GET", shop, "/healthz", false, 200, ""),
        ("PUT", shop, "/healthz", false, 405, "method_not_allowed"),
        // Virtual host `admin.example.com:8080` -> admin (10/8 only): loopback is refused,
        // on every path, /healthz included (the virtual host matcher comes first).
        ("GET", "admin.example.com", "/", false, 403, "ip_forbidden"),
        (
            "GET",
            "admin.example.com:8080",
            "/healthz",
            false,
            403,
            "ip_forbidden",
        ),
        // Any other host: route `catch-all`, no matcher -> default; /healthz -> health.
        ("GET", "other.example.com", "/anything", false, 200, ""),
        (
            "DELETE",
            "other.example.com",
            "/anything",
            false,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "other.example.com",
            "/healthz",
            false,
            405,
            "method_not_allowed",
        ),
    ];
    let mut admitted = 0;
    for (i, (method, host, path, key, status, error)) in cases.iter().enumerate() {
        let got = send(&envoy, method, host, path, *key);
        assert_eq!(
            got,
            (*status, error.to_string()),
            "case {i}: {method} {host}{path}"
        );
        if *status == 200 {
            admitted += 1;
        }
    }
    // The upstream saw exactly the admitted requests, and api-guard's identity on the ones
    // that presented the key.
    let seen = up.requests();
    assert_eq!(seen.len(), admitted);
    let identified = seen
        .iter()
        .filter(|r| r.header("x-api-guard-client-id").as_deref() == Some("shop-client"))
        .count();
    assert_eq!(identified, 3);
    assert!(seen.iter().all(|r| r.header("x-api-key").is_none()));
}

#[test]
fn a_path_trick_cannot_step_out_of_a_route_policy() {
    let up = Upstream::start("replica");
    let envoy = start(&up);
    // Envoy normalizes the path before routing and before the filter reads it: these reach
    // route `shop-api` and its policy, never `shop-public`'s.
    for path in [
        "/public/../api/orders",
        "/public/%2e%2e/api/orders",
        "//api/orders",
    ] {
        let got = send(&envoy, "GET", "shop.example.com", path, false);
        assert_eq!(got, (401, "api_key_missing".to_string()), "{path}");
    }
    // An encoded slash is refused by Envoy itself.
    let r = envoy
        .request("GET", "/public%2F..%2Fapi/orders")
        .header("host", "shop.example.com")
        .send();
    assert_eq!(r.status, 400);
    assert!(up.requests().is_empty());
}
