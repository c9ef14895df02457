//! The request lifecycle through the real Envoy: a client that ends its stream with trailers
//! while api-guard waits (for the auth service, another worker's callout, a JWKS refetch, or the
//! rest of a body it must check) gets the decision, never a free pass. Over HTTP/2 (h2c) and
//! HTTP/1.1 chunked with `enable_trailers`. Each case asserts what the client got and what the
//! upstream received; the legitimate twin of each request still passes. Loopback only, bounded.

use std::time::Duration;

use integration_tests::jwt_fixtures::{jwks, token};
use integration_tests::trailers::TrailerRequest;
use integration_tests::{AuthServer, Envoy, EnvoyConfig, Response, Upstream};
use serde_json::json;

/// How long the auth service takes to answer: long enough that the trailers always arrive while
/// the filter waits (they are sent right behind the headers).
const AUTH_DELAY: Duration = Duration::from_millis(400);

/// `/api`: introspection; `/public`: JSON schema + body screening (buffered); `/internal`:
/// a streamed body limit; everything else (`default`): JWTs from a remote JWKS.
fn plugin_config() -> String {
    json!({
        "introspection": {
            "cluster": "auth", "authority": "auth.test", "path": "/introspect",
            "timeout_ms": 3000, "positive_ttl_seconds": 30, "negative_ttl_seconds": 5
        },
        "jwt_providers": {
            "corp": {
                "issuer": "https://issuer.test", "audiences": ["api"],
                "remote_jwks": {
                    "cluster": "auth", "authority": "auth.test", "path": "/jwks.json",
                    "refresh_seconds": 3600, "timeout_ms": 3000, "unknown_kid_refetch_seconds": 1
                }
            }
        },
        "policies": {
            "api": {"introspection": {}},
            "public": {
                "payload": {
                    "max_body_bytes": 4096,
                    "content_types": ["application/json", "application/x-www-form-urlencoded"],
                    "schema": {"type": "object", "required": ["name"],
                               "properties": {"name": {"type": "string", "maxLength": 40}}}
                },
                "screening": {"mode": "block"}
            },
            "internal": {"payload": {"max_body_bytes": 64}},
            "default": {"jwt": {"providers": ["corp"]}}
        }
    })
    .to_string()
}

struct Setup {
    envoy: Envoy,
    up: Upstream,
    auth: AuthServer,
}

fn start() -> Setup {
    let auth = AuthServer::start();
    auth.set_handler("/introspect", |r| {
        let body = String::from_utf8_lossy(&r.body);
        let active = body.contains("token=good-");
        let answer = if active {
            json!({"active": true, "sub": "alice", "client_id": "app1"})
        } else {
            json!({"active": false})
        };
        (200, "application/json".into(), answer.to_string().into())
    });
    auth.set_delay("/introspect", AUTH_DELAY);
    auth.set_json("/jwks.json", &jwks(&["ec-256"]));
    let up = Upstream::start("lifecycle");
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&plugin_config())
            .with_upstreams(&[up.addr])
            .with_auth_service(auth.addr())
            .with_h1_trailers(),
    );
    // The JWKS arrived (first fetch at configure time or the first tick).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = envoy
            .request("GET", "/jwt-ready")
            .header("authorization", &format!("Bearer {}", token("valid_es256")))
            .send();
        if r.status == 200 || std::time::Instant::now() > deadline {
            assert_eq!(r.status, 200, "JWKS never arrived: {}", r.text());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    up.clear();
    Setup { envoy, up, auth }
}

#[derive(Clone, Copy, Debug)]
enum Wire {
    H2,
    H1,
}

const WIRES: [Wire; 2] = [Wire::H2, Wire::H1];

impl Setup {
    fn send(&self, wire: Wire, request: &TrailerRequest) -> Response {
        let port = self.envoy.http_port;
        let result = match wire {
            Wire::H2 => request.send_h2(port),
            Wire::H1 => request.send_h1(port),
        };
        result.unwrap_or_else(|e| {
            panic!(
                "{wire:?} {} {}: no response: {e}\n{}",
                request.method,
                request.path,
                self.envoy.log()
            )
        })
    }

    /// Asserts the status and error code, and that nothing reached the upstream.
    fn refused(&self, wire: Wire, request: &TrailerRequest, status: u16, error: &str) {
        let r = self.send(wire, request);
        assert_eq!(
            (r.status, r.json()["error"].as_str().unwrap_or_default()),
            (status, error),
            "{wire:?} {}: {}",
            request.path,
            r.text()
        );
        let leaked: Vec<_> = self.up.requests().into_iter().map(|r| r.path).collect();
        assert!(
            leaked.is_empty(),
            "{wire:?} {}: reached the upstream: {leaked:?}",
            request.path
        );
    }

    /// Asserts a 200 and that the upstream received exactly `body` on `path`.
    fn admitted(&self, wire: Wire, request: &TrailerRequest) {
        let r = self.send(wire, request);
        assert_eq!(r.status, 200, "{wire:?} {}: {}", request.path, r.text());
        let got = self.up.requests();
        assert_eq!(got.len(), 1, "{wire:?} {}", request.path);
        assert_eq!(got[0].path, request.path);
        assert_eq!(got[0].body, request.chunks.concat(), "{wire:?}");
        self.up.clear();
    }
}

fn bearer(request: TrailerRequest, token: &str) -> TrailerRequest {
    request.header("authorization", &format!("Bearer {token}"))
}

#[test]
fn trailers_do_not_release_a_request_waiting_for_the_auth_service() {
    let s = start();
    for wire in WIRES {
        // A body and trailers, sent while the callout is under way.
        let forged = bearer(TrailerRequest::new("POST", "/api/orders"), "forged-1")
            .header("content-type", "application/json")
            .chunk(br#"{"a":1}"#.to_vec());
        s.refused(wire, &forged, 401, "invalid_token");
        // HEADERS then trailers, no DATA (a GET).
        let bare = bearer(TrailerRequest::new("GET", "/api/orders"), "forged-2");
        s.refused(wire, &bare, 401, "invalid_token");
        let good = bearer(TrailerRequest::new("POST", "/api/orders"), "good-alice")
            .header("content-type", "application/json")
            .chunk(br#"{"a":1}"#.to_vec());
        s.admitted(wire, &good);
        s.auth.clear();
    }
}

#[test]
fn trailers_do_not_release_requests_waiting_for_another_callout() {
    let s = start();
    for (i, wire) in WIRES.into_iter().enumerate() {
        // Several requests with one new credential at once: one makes the callout, the others
        // wait for its answer (in shared data), each ending its stream with trailers.
        let token = format!("forged-peer-{i}");
        let port = s.envoy.http_port;
        let results: Vec<Result<Response, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let request = bearer(TrailerRequest::new("POST", "/api/x"), &token)
                        .chunk(b"payload".to_vec());
                    scope.spawn(move || match wire {
                        Wire::H2 => request.send_h2(port),
                        Wire::H1 => request.send_h1(port),
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            let r = r.unwrap_or_else(|e| panic!("{wire:?}: {e}\n{}", s.envoy.log()));
            assert_eq!(r.status, 401, "{wire:?}: {}", r.text());
        }
        assert!(s.up.requests().is_empty(), "{wire:?}: reached the upstream");
        assert!(
            s.auth.hits("/introspect") <= 2,
            "single flight: {} callouts",
            s.auth.hits("/introspect")
        );
        s.auth.clear();
    }
}

#[test]
fn trailers_do_not_release_a_request_waiting_for_a_jwks_refetch() {
    let s = start();
    s.auth.set_delay("/jwks.json", AUTH_DELAY);
    for wire in WIRES {
        // Signed with the attacker's key under a kid the JWKS does not have: api-guard refetches
        // the JWKS once (rate-limited), and the trailers arrive meanwhile.
        std::thread::sleep(Duration::from_millis(1100));
        let before = s.auth.hits("/jwks.json");
        let forged = bearer(
            TrailerRequest::new("POST", "/orders"),
            &token("kid_unknown"),
        )
        .chunk(b"x".to_vec());
        s.refused(wire, &forged, 401, "invalid_token");
        assert!(
            s.auth.hits("/jwks.json") > before,
            "{wire:?}: the unknown kid caused no refetch, so nothing was paused"
        );
        let good = bearer(
            TrailerRequest::new("POST", "/orders"),
            &token("valid_es256"),
        )
        .chunk(b"x".to_vec());
        s.admitted(wire, &good);
    }
}

#[test]
fn trailers_end_a_buffered_body_which_is_then_checked() {
    let s = start();
    for wire in WIRES {
        let json = |body: &[u8]| {
            TrailerRequest::new("POST", "/public/items")
                .header("content-type", "application/json")
                .chunk(body.get(..3).unwrap_or(body).to_vec())
                .chunk(body.get(3..).unwrap_or_default().to_vec())
        };
        s.refused(wire, &json(br#"{"nom":"x"}"#), 400, "schema_violation");
        s.refused(
            wire,
            &json(br#"{"name":"x' OR '1'='1' --"}"#),
            403,
            "blocked_sqli",
        );
        let form = TrailerRequest::new("POST", "/public/form")
            .header("content-type", "application/x-www-form-urlencoded")
            .chunk(b"q=1%20UNION%20SELECT%20password%20FROM%20users".to_vec());
        s.refused(wire, &form, 403, "blocked_sqli");
        // HEADERS then trailers: an empty body is still checked against the schema.
        let empty =
            TrailerRequest::new("POST", "/public/items").header("content-type", "application/json");
        s.refused(wire, &empty, 400, "malformed_json");
        s.admitted(wire, &json(br#"{"name":"widget"}"#));
    }
}

#[test]
fn trailers_after_a_streamed_body_over_its_limit_do_not_release_it() {
    let s = start();
    for wire in WIRES {
        let big = TrailerRequest::new("POST", "/internal/upload")
            .chunk(vec![b'a'; 40])
            .chunk(vec![b'b'; 40]);
        let r = s.send(wire, &big);
        assert_eq!(r.status, 413, "{wire:?}: {}", r.text());
        assert!(
            s.up.requests().is_empty(),
            "{wire:?}: an over-limit body reached the upstream whole"
        );
        let small = TrailerRequest::new("POST", "/internal/upload")
            .chunk(vec![b'a'; 20])
            .chunk(vec![b'b'; 20]);
        s.admitted(wire, &small);
    }
}

#[test]
fn forged_identity_headers_never_reach_the_upstream() {
    // The shipped configuration and policy, untouched: no provider sets a subject header, and
    // `/healthz` has the filter disabled.
    let up = Upstream::start("identity");
    let envoy = Envoy::start(EnvoyConfig::load("envoy/envoy.yaml").with_upstreams(&[up.addr]));
    for path in ["/public/x", "/healthz"] {
        let r = envoy
            .request("GET", path)
            .header("x-api-guard-subject", "admin")
            .header("x-api-guard-client-id", "admin")
            .header("x-api-guard-key-id", "admin-1")
            .header("x-api-guard-tier", "gold")
            .send();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let api = envoy
        .request("GET", "/api/orders")
        .header("x-api-key", "demo-key-123")
        .header("x-api-guard-subject", "admin")
        .header("x-api-guard-client-id", "admin")
        .send();
    assert_eq!(api.status, 200, "{}", api.text());
    let got = up.requests();
    assert_eq!(got.len(), 3);
    for r in &got[..2] {
        for name in [
            "x-api-guard-subject",
            "x-api-guard-client-id",
            "x-api-guard-key-id",
        ] {
            assert_eq!(r.header(name), None, "{} {name}", r.path);
        }
    }
    // Under the reserved prefix, stripped by the filter (on `/healthz` Envoy removes only the
    // headers its route lists).
    assert_eq!(got[0].header("x-api-guard-tier"), None);
    assert_eq!(got[2].header("x-api-guard-subject"), None);
    assert_eq!(
        got[2].header("x-api-guard-client-id").as_deref(),
        Some("demo-client")
    );
    assert_eq!(got[2].header_count("x-api-guard-client-id"), 1);
}
