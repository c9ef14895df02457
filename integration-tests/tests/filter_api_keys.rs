//! API keys through the real Envoy: statuses, rotation windows, credential stripping, identity
//! headers, and what the upstream actually received.

use integration_tests::{key_digest, Envoy, EnvoyConfig, Upstream};
use serde_json::json;

/// Policies for the routes of envoy/envoy.yaml: /api needs a key of an admitted client,
/// /internal needs a key of any client with tight request limits, /public needs nothing.
fn config() -> String {
    json!({
        "clients": {
            "acme": {"keys": [
                {"id": "acme-2026", "sha256": key_digest("acme-new"), "not_before": "2026-01-01T00:00:00Z"},
                {"id": "acme-2025", "sha256": key_digest("acme-old"), "expires": "2026-01-01T00:00:00Z"},
                {"id": "acme-future", "sha256": key_digest("acme-future"), "not_before": "2099-01-01T00:00:00Z"}
            ]},
            "globex": {"keys": [
                {"id": "globex-1", "sha256": key_digest("globex-key")},
                {"id": "globex-2", "sha256": key_digest("globex-off"), "disabled": true}
            ]}
        },
        "policies": {
            "api": {
                "methods": ["GET", "POST"],
                "api_key": {"header": "x-api-key", "query": "api_key", "clients": ["acme"]}
            },
            "internal": {
                "request_limits": {"max_path_bytes": 256, "max_header_bytes": 2048},
                "api_key": {"strip_credential": false}
            },
            "public": {}
        }
    })
    .to_string()
}

struct Setup {
    envoy: Envoy,
    a: Upstream,
    b: Upstream,
}

impl Setup {
    fn new() -> Setup {
        let a = Upstream::start("replica-a");
        let b = Upstream::start("replica-b");
        let envoy = Envoy::start(
            EnvoyConfig::load("envoy/envoy.yaml")
                .with_plugin_config(&config())
                .with_upstreams(&[a.addr, b.addr]),
        );
        Setup { envoy, a, b }
    }

    fn upstream_requests(&self) -> Vec<integration_tests::RecordedRequest> {
        let mut all = self.a.requests();
        all.extend(self.b.requests());
        all
    }

    fn clear(&self) {
        self.a.clear();
        self.b.clear();
    }
}

fn assert_error(resp: &integration_tests::Response, status: u16, code: &str) {
    assert_eq!(resp.status, status, "body: {}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body = resp.json();
    assert_eq!(body["error"], code, "body: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Envoy generated the request id (use_remote_address makes it ignore client-sent ones).
    assert!(
        body["request_id"].as_str().is_some_and(|id| id.len() >= 16),
        "body: {body}"
    );
}

#[test]
fn key_statuses_and_upstream_view() {
    let s = Setup::new();

    // Missing key: 401 with a challenge, and the upstream never sees the request.
    let r = s.envoy.request("GET", "/api/orders").send();
    assert_error(&r, 401, "api_key_missing");
    assert_eq!(
        r.header("www-authenticate"),
        Some("ApiKey realm=\"api-guard\"")
    );
    assert!(s.upstream_requests().is_empty());

    // Unknown, expired (rotated out), not yet valid, disabled: all 401, none reach the upstream.
    for key in ["nope", "acme-old", "acme-future"] {
        let r = s
            .envoy
            .request("GET", "/api/orders")
            .header("x-api-key", key)
            .send();
        assert_error(&r, 401, "api_key_invalid");
        assert!(r.header("www-authenticate").is_some());
    }
    let r = s
        .envoy
        .request("GET", "/internal/x")
        .header("x-api-key", "globex-off")
        .send();
    assert_error(&r, 401, "api_key_invalid");
    // A valid key of a client the policy does not admit: 403.
    let r = s
        .envoy
        .request("GET", "/api/orders")
        .header("x-api-key", "globex-key")
        .send();
    assert_error(&r, 403, "client_forbidden");
    // Two keys in one request: refused, never guessed.
    let r = s
        .envoy
        .request("GET", "/api/orders")
        .header("x-api-key", "acme-new")
        .header("x-api-key", "acme-new")
        .send();
    assert_error(&r, 400, "api_key_ambiguous");
    let r = s
        .envoy
        .request("GET", "/api/orders?api_key=acme-new")
        .header("x-api-key", "acme-new")
        .send();
    assert_error(&r, 400, "api_key_ambiguous");
    assert!(
        s.upstream_requests().is_empty(),
        "denied requests reached the upstream"
    );

    // The current key passes; the upstream gets identity headers and no credential, and the
    // client's forged identity headers are replaced.
    let r = s
        .envoy
        .request("POST", "/api/orders")
        .header("x-api-key", "acme-new")
        .header("x-api-guard-client-id", "admin")
        .header("x-api-guard-client-id", "root")
        .header("x-api-guard-key-id", "forged")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s.upstream_requests();
    assert_eq!(got.len(), 1);
    let up = &got[0];
    assert_eq!(up.method, "POST");
    assert_eq!(
        up.header_count("x-api-key"),
        0,
        "credential forwarded: {:?}",
        up.headers
    );
    assert_eq!(up.header_count("x-api-guard-client-id"), 1);
    assert_eq!(up.header("x-api-guard-client-id").as_deref(), Some("acme"));
    assert_eq!(
        up.header("x-api-guard-key-id").as_deref(),
        Some("acme-2026")
    );
    s.clear();

    // Query-parameter key: stripped from the path, other parameters byte-exact.
    let r = s
        .envoy
        .request("GET", "/api/orders?page=2&api_key=acme-new&q=a%20b")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s.upstream_requests();
    assert_eq!(got[0].path, "/api/orders?page=2&q=a%20b");
    assert_eq!(
        got[0].header("x-api-guard-key-id").as_deref(),
        Some("acme-2026")
    );
    s.clear();

    // strip_credential: false keeps the key for the upstream.
    let r = s
        .envoy
        .request("GET", "/internal/x")
        .header("x-api-key", "globex-key")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s.upstream_requests();
    assert_eq!(got[0].header("x-api-key").as_deref(), Some("globex-key"));
    assert_eq!(
        got[0].header("x-api-guard-client-id").as_deref(),
        Some("globex")
    );
    s.clear();

    // A route without api_key still loses forged identity headers.
    let r = s
        .envoy
        .request("GET", "/public/x")
        .header("x-api-guard-client-id", "admin")
        .header("x-api-guard-client-id", "root")
        .header("x-api-guard-key-id", "forged")
        .send();
    assert_eq!(r.status, 200);
    let got = s.upstream_requests();
    assert_eq!(
        got[0].header_count("x-api-guard-client-id"),
        0,
        "{:?}",
        got[0].headers
    );
    assert_eq!(got[0].header_count("x-api-guard-key-id"), 0);

    // Logs carry the policy, reason and key id, never a key.
    let log = s.envoy.log();
    assert!(
        log.contains(
            "deny policy=api reason=api_key_expired provider=- client_id=- key_id=acme-2025"
        ),
        "{log}"
    );
    assert!(log.contains(
        "deny policy=api reason=client_not_allowed provider=- client_id=globex key_id=globex-1"
    ));
    for secret in ["acme-new", "acme-old", "globex-key", "globex-off"] {
        assert!(!log.contains(secret), "log contains the key {secret}");
    }
}

#[test]
fn request_shape_limits_and_bad_input() {
    let s = Setup::new();
    // 405 names the allowed methods.
    let r = s
        .envoy
        .request("DELETE", "/api/orders")
        .header("x-api-key", "acme-new")
        .send();
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // 414 and 431 from the policy's own limits (far below Envoy's).
    let long = format!("/internal/{}", "a".repeat(300));
    assert_error(
        &s.envoy
            .request("GET", &long)
            .header("x-api-key", "globex-key")
            .send(),
        414,
        "uri_too_long",
    );
    let r = s
        .envoy
        .request("GET", "/internal/x")
        .header("x-api-key", "globex-key")
        .header("x-padding", &"p".repeat(3000))
        .send();
    assert_error(&r, 431, "headers_too_large");
    // Non-UTF-8 bytes in the key header: an invalid key, not a crash.
    let r = s
        .envoy
        .request("GET", "/api/orders")
        .header_bytes("x-api-key", &[0xff, 0xfe, b'k', 0x80])
        .send();
    assert_error(&r, 401, "api_key_invalid");
    // An empty key header counts as missing.
    assert_error(
        &s.envoy
            .request("GET", "/api/orders")
            .header("x-api-key", "")
            .send(),
        401,
        "api_key_missing",
    );
    // A key far larger than any real one.
    let r = s
        .envoy
        .request("GET", "/api/orders")
        .header("x-api-key", &"k".repeat(5000))
        .send();
    assert_error(&r, 401, "api_key_invalid");
    assert!(s.upstream_requests().is_empty());
    // The VM survived all of it: the next good request passes and no VM was restarted.
    let r = s
        .envoy
        .request("GET", "/api/orders")
        .header("x-api-key", "acme-new")
        .send();
    assert_eq!(r.status, 200);
    let stats = s.envoy.admin_get("/stats");
    assert!(
        !stats
            .lines()
            .any(|l| l.contains("wasm") && l.contains("vm_reload_success") && !l.ends_with(": 0")),
        "{stats}"
    );
}

#[test]
fn http2_and_http1_over_tls() {
    let s = Setup::new();
    for http2 in [false, true] {
        let req = || {
            let b = s.envoy.request("GET", "/api/orders").https();
            if http2 {
                b.http2()
            } else {
                b
            }
        };
        let r = req().send();
        assert_error(&r, 401, "api_key_missing");
        let r = req().header("x-api-key", "acme-new").send();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.http_version, if http2 { "2" } else { "1.1" });
        let body = r.json();
        let headers = body["headers"].as_array().unwrap();
        assert!(
            headers
                .iter()
                .any(|h| h[0] == "x-api-guard-client-id" && h[1] == "acme"),
            "{body}"
        );
        assert!(!headers.iter().any(|h| h[0] == "x-api-key"));
    }
}
