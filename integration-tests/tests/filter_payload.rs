//! Payload shape through the real Envoy: 413 from content-length and while streaming, 415, JSON
//! well-formedness, limits and schema (400 naming pointer and keyword, never the value), query
//! rules; a body that fails never reaches the upstream, one that passes arrives byte-identical.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use integration_tests::{Envoy, EnvoyConfig, Response, Upstream};
use serde_json::json;

const LIMIT: usize = 128;

fn config() -> String {
    json!({
        "policies": {
            "api": {
                "payload": {
                    "max_body_bytes": LIMIT,
                    "content_types": ["application/json"],
                    "json": {"max_depth": 8},
                    "schema": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": false,
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": 200},
                            "age": {"type": "integer", "minimum": 0},
                            "email": {"type": "string", "format": "email"},
                            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
                        }
                    }
                }
            },
            "public": {"query": {"required": ["v"], "rules": {"v": {"pattern": "^[0-9]{1,3}$"}}}},
            "internal": {"payload": {"max_body_bytes": LIMIT}}
        }
    })
    .to_string()
}

struct Setup {
    envoy: Envoy,
    up: Upstream,
}

fn start() -> Setup {
    let up = Upstream::start("payload");
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config())
            .with_upstreams(&[up.addr]),
    );
    Setup { envoy, up }
}

impl Setup {
    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        self.envoy
            .request("POST", path)
            .header("content-type", content_type)
            .body(body.to_vec())
            .send()
    }
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["error"], code, "{}", r.text());
}

/// A JSON object of exactly `n` bytes: {"name":"xxx..."}.
fn json_of_len(n: usize) -> Vec<u8> {
    let overhead = br#"{"name":""}"#.len();
    format!(r#"{{"name":"{}"}}"#, "x".repeat(n - overhead)).into_bytes()
}

#[test]
fn valid_bodies_arrive_byte_identical_and_bad_ones_never_reach_the_upstream() {
    let s = start();
    let body = br#"{"name": "O'Brien", "age": 42, "tags": ["a", "b"]}"#;
    let r = s.post("/api/people", "application/json; charset=utf-8", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = s.up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body,
        body.to_vec(),
        "the body must arrive byte-identical"
    );
    s.up.clear();

    // Schema: 400 naming the instance pointer and keyword, never the value.
    let r = s.post(
        "/api/people",
        "application/json",
        br#"{"name": "secret-value-123", "age": -5}"#,
    );
    assert_error(&r, 400, "schema_violation");
    assert_eq!(r.json()["pointer"], "/age");
    assert_eq!(r.json()["keyword"], "minimum");
    // Nothing of the offending values anywhere but in Envoy's own request id (a UUID, which may
    // contain "-5" by chance).
    let mut body = r.json();
    body.as_object_mut().unwrap().remove("request_id");
    let rest = body.to_string();
    assert!(
        !rest.contains("-5") && !rest.contains("secret-value-123"),
        "{rest}"
    );
    assert!(!r.text().contains("secret-value-123"));
    let r = s.post(
        "/api/people",
        "application/json",
        br#"{"name": "a", "admin": true}"#,
    );
    assert_error(&r, 400, "schema_violation");
    assert_eq!(r.json()["keyword"], "additionalProperties");
    let r = s.post("/api/people", "application/json", br#"{"age": 1}"#);
    assert_error(&r, 400, "schema_violation");
    assert_eq!(r.json()["keyword"], "required");
    // Malformed JSON, a JSON bomb (depth), a wrong content type, a missing one.
    let r = s.post("/api/people", "application/json", br#"{"name": "a""#);
    assert_error(&r, 400, "malformed_json");
    let deep = format!("{}{}", "[".repeat(20), "]".repeat(20));
    let r = s.post("/api/people", "application/json", deep.as_bytes());
    assert_error(&r, 400, "json_limits");
    assert_eq!(r.json()["keyword"], "max_depth");
    let r = s.post("/api/people", "text/plain", br#"{"name": "a"}"#);
    assert_error(&r, 415, "unsupported_media_type");
    let r = s
        .envoy
        .request("POST", "/api/people")
        .header("content-type", "application/xml")
        .body(b"<a/>".to_vec())
        .send();
    assert_error(&r, 415, "unsupported_media_type");
    assert!(
        s.up.requests().is_empty(),
        "a refused body reached the upstream"
    );
}

#[test]
fn body_limits_at_and_one_past_the_limit_from_content_length() {
    let s = start();
    let r = s.post("/api/people", "application/json", &json_of_len(LIMIT));
    assert_eq!(r.status, 200, "exactly at the limit: {}", r.text());
    let r = s.post("/api/people", "application/json", &json_of_len(LIMIT + 1));
    assert_error(&r, 413, "body_too_large");
    // A policy with only a size limit: bodies stream through, counted.
    let r = s.post(
        "/internal/upload",
        "application/octet-stream",
        &[b'x'; LIMIT],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post(
        "/internal/upload",
        "application/octet-stream",
        &[b'x'; LIMIT + 1],
    );
    assert_error(&r, 413, "body_too_large");
    assert_eq!(s.up.requests().len(), 2);
}

/// A chunked request sent in pieces with pauses, over a raw connection; the status line.
fn chunked(port: u16, path: &str, content_type: &str, chunks: &[&[u8]]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    for chunk in chunks {
        let _ = write!(stream, "{:x}\r\n", chunk.len());
        let _ = stream.write_all(chunk);
        let _ = stream.write_all(b"\r\n");
        let _ = stream.flush();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[test]
fn chunked_bodies_are_checked_whole_and_stopped_past_the_limit() {
    let s = start();
    let port = s.envoy.http_port;
    // A valid JSON body split into several chunks: reassembled, checked, forwarded intact.
    let (status, text) = chunked(
        port,
        "/api/people",
        "application/json",
        &[b"{\"na".as_slice(), b"me\": \"Zo\xc3", b"\xab\"}"],
    );
    assert_eq!(status, 200, "{text}");
    let seen = s.up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, "{\"name\": \"Zo\u{eb}\"}".as_bytes());
    // Split so that the violation is only visible once whole.
    let (status, text) = chunked(
        port,
        "/api/people",
        "application/json",
        &[b"{\"name\": \"a\", ", b"\"age\": ", b"-1}"],
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("schema_violation"));
    // Over the limit in the third chunk: 413, and nothing reaches the upstream.
    let piece = vec![b' '; LIMIT / 2];
    let (status, text) = chunked(
        port,
        "/api/people",
        "application/json",
        &[&piece, &piece, &piece],
    );
    assert_eq!(status, 413, "{text}");
    let (status, text) = chunked(
        port,
        "/internal/upload",
        "application/octet-stream",
        &[&piece, &piece, &piece],
    );
    assert_eq!(status, 413, "{text}");
    assert_eq!(
        s.up.requests().len(),
        1,
        "only the valid body was forwarded"
    );
}

#[test]
fn query_rules() {
    let s = start();
    let r = s.envoy.request("GET", "/public/items").send();
    assert_error(&r, 400, "missing_parameter");
    assert_eq!(r.json()["parameter"], "v");
    let r = s.envoy.request("GET", "/public/items?v=12345").send();
    assert_error(&r, 400, "invalid_parameter");
    let r = s.envoy.request("GET", "/public/items?v=12").send();
    assert_eq!(r.status, 200, "{}", r.text());
}
