//! Decisions in Envoy's access log: api-guard stores each decision in the request's filter
//! state, and the access-log format of envoy/envoy.yaml prints it with
//! `%FILTER_STATE(wasm.api_guard.decision:PLAIN)%`. Read from the access log of a real run.

use integration_tests::{Envoy, EnvoyConfig, Upstream};
use serde_json::json;

/// The digest of `demo-key-123`.
const DEMO_KEY_SHA256: &str = "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873";

/// The access-log line of the request to `path` (the format prints the path without query).
fn line_of(log: &str, path: &str) -> Option<String> {
    let needle = format!("\"GET {path} HTTP/1.1\"");
    log.lines()
        .find(|l| l.contains(&needle))
        .map(str::to_string)
}

#[test]
fn every_decision_is_in_the_access_log() {
    let up = Upstream::start("replica");
    let config = json!({
        "clients": {"demo-client": {"keys": [{"id": "demo-2026", "sha256": DEMO_KEY_SHA256}]}},
        "policies": {
            "api": {
                "api_key": {},
                "rate_limits": [{"name": "per_client", "rate": 1, "per": "hour", "burst": 1, "key": "client"}]
            }
        }
    });
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[up.addr]),
    );
    let key = |path: &str| {
        envoy
            .request("GET", path)
            .header("x-api-key", "demo-key-123")
            .send()
            .status
    };
    assert_eq!(key("/api/first"), 200);
    assert_eq!(key("/api/second"), 429);
    assert_eq!(envoy.request("GET", "/api/nokey").send().status, 401);
    let r = envoy
        .request("GET", "/api/badkey")
        .header("x-api-key", "not a key")
        .send();
    assert_eq!(r.status, 401);
    // No metadata, no default policy: denied without a policy.
    assert_eq!(envoy.request("GET", "/elsewhere").send().status, 403);
    // The filter is disabled on /healthz: no decision, the field prints `-`.
    assert_eq!(envoy.request("GET", "/healthz").send().status, 200);

    let expected = [
        (
            "/api/first",
            "decision=allow policy=api reason=- client_id=demo-client key_id=demo-2026 limit=-",
        ),
        (
            "/api/second",
            "decision=deny policy=api reason=rate_limited client_id=- key_id=- limit=per_client",
        ),
        (
            "/api/nokey",
            "decision=deny policy=api reason=api_key_missing client_id=- key_id=- limit=-",
        ),
        (
            "/api/badkey",
            "decision=deny policy=api reason=api_key_unknown client_id=- key_id=- limit=-",
        ),
        (
            "/elsewhere",
            "decision=deny policy=_none reason=no_policy client_id=- key_id=- limit=-",
        ),
    ];
    // Envoy buffers access-log lines; stopping it writes them all.
    let log = envoy.stop_and_log();
    for (path, fields) in expected {
        let line =
            line_of(&log, path).unwrap_or_else(|| panic!("no access-log line for {path}:\n{log}"));
        assert!(line.ends_with(fields), "{path}: {line}");
    }
    let healthz = line_of(&log, "/healthz").unwrap_or_else(|| panic!("no /healthz line:\n{log}"));
    assert!(healthz.ends_with(" -"), "{healthz}");
    assert!(!healthz.contains("decision="), "{healthz}");
    // Never the key itself.
    assert!(!log.contains("demo-key-123"));
}
