//! Fail closed on what api-guard cannot read (issue 12, findings 3, 5 and 6), through the real
//! Envoy: bodies a policy must screen or check but that a strict JSON parser refuses, that are
//! compressed, or that are labelled with a JSON type other than `application/json`; symmetric
//! keys in a remote JWKS; IPv4-mapped client addresses in rate limits. Each refused request is
//! checked at the upstream too (it received nothing), and the legitimate request next to it
//! arrives byte-identical.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::jwt_fixtures::{jwks, token};
use integration_tests::{AuthServer, Envoy, EnvoyConfig, Response, Upstream};
use serde_json::{json, Value};

/// An injection the screening finds in any JSON string value.
const SQLI: &str = "1 union select password from users--";

fn start(config: &Value, edit: impl FnOnce(EnvoyConfig) -> EnvoyConfig) -> (Envoy, Upstream) {
    let up = Upstream::start("fail-closed");
    let envoy = Envoy::start(edit(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[up.addr]),
    ));
    (envoy, up)
}

fn post(envoy: &Envoy, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut r = envoy.request("POST", path);
    for (name, value) in headers {
        r = r.header(name, value);
    }
    r.body(body.to_vec()).send()
}

fn assert_error(r: &Response, status: u16, code: &str, why: &str) {
    assert_eq!(r.status, status, "{why}: {}", r.text());
    assert_eq!(r.json()["error"], code, "{why}: {}", r.text());
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .admin_get("/stats?filter=wasmcustom")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wasmcustom.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `bytes` gzip-compressed by the system's gzip (no name, no time stamp: reproducible).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(bytes)
        .expect("write to gzip");
    let out = child.wait_with_output().expect("gzip output");
    assert!(out.status.success());
    out.stdout
}

fn with_sqli() -> String {
    format!(r#"{{"q": "{SQLI}"}}"#)
}

/// JSON a strict parser refuses and some backend still reads (Python's `json`: BOM, UTF-16,
/// `NaN`; Newtonsoft: comments, trailing commas; streaming decoders: two texts), each hiding
/// an injection.
fn lenient_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(with_sqli().into_bytes());
    let mut utf16 = vec![0xff, 0xfe];
    for unit in with_sqli().encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    vec![
        ("utf-8 bom", bom),
        ("utf-16", utf16),
        (
            "NaN",
            format!(r#"{{"n": NaN, "q": "{SQLI}"}}"#).into_bytes(),
        ),
        (
            "comment",
            format!(r#"{{/* c */ "q": "{SQLI}"}}"#).into_bytes(),
        ),
        (
            "trailing comma",
            format!(r#"{{"q": "{SQLI}",}}"#).into_bytes(),
        ),
        (
            "two texts",
            format!(r#"{{"a": 1}} {}"#, with_sqli()).into_bytes(),
        ),
        (
            "nested deeper than the parser goes",
            format!("{}{}{}", "[".repeat(200), with_sqli(), "]".repeat(200)).into_bytes(),
        ),
    ]
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

#[test]
fn bodies_the_policy_cannot_read_never_reach_the_upstream() {
    let config = json!({
        "policies": {
            "api": {"screening": {}},
            "internal": {"payload": {"json": {}}},
            "public": {"screening": {"mode": "detect"}}
        }
    });
    let (envoy, up) = start(&config, |c| c);
    // Screening in block mode: 400 for JSON the parser refuses.
    for (why, body) in lenient_bodies() {
        let r = post(&envoy, "/api/x", JSON, &body);
        assert_error(&r, 400, "malformed_json", why);
    }
    // JSON under other JSON media types is screened as JSON.
    for ct in [
        "text/json",
        "application/x-json",
        "application/vnd.api+json",
    ] {
        let r = post(
            &envoy,
            "/api/x",
            &[("content-type", ct)],
            with_sqli().as_bytes(),
        );
        assert_error(&r, 403, "blocked_sqli", ct);
        let r = post(&envoy, "/api/x", &[("content-type", ct)], b"{'q': 1}");
        assert_error(&r, 400, "malformed_json", ct);
    }
    // A compressed body is not read: 415, saying which coding is accepted (RFC 7694). Also
    // where only the payload's JSON checks read the body.
    let compressed = gzip(with_sqli().as_bytes());
    for path in ["/api/x", "/internal/x"] {
        let r = post(
            &envoy,
            path,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            &compressed,
        );
        assert_error(&r, 415, "unsupported_content_encoding", path);
        assert_eq!(r.header("accept-encoding"), Some("identity"), "{path}");
    }
    assert!(
        up.requests().is_empty(),
        "a refused body reached the upstream: {:?}",
        up.requests()
    );
    // What can be read and holds nothing passes, byte-identical, whatever its JSON type.
    let ok = br#"{"name": "O'Brien", "note": "caf\u00e9 50% off"}"#;
    for ct in ["application/json", "text/json; charset=utf-8"] {
        let r = post(&envoy, "/api/x", &[("content-type", ct)], ok);
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
    let r = post(
        &envoy,
        "/api/x",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
        ],
        ok,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = up.requests();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.body == ok), "{got:?}");
    // Detect mode: passed unread, byte-identical, and counted as an unreadable body.
    up.clear();
    let (_, bom) = &lenient_bodies()[0];
    let r = post(&envoy, "/public/x", JSON, bom);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &envoy,
        "/public/x",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &compressed,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = up.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0].body, bom);
    assert_eq!(got[1].body, compressed);
    assert_eq!(got[1].header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        counter(&envoy, "api_guard.screening.unreadable_body.detected"),
        2
    );
    assert_eq!(
        counter(&envoy, "api_guard.screening.rule.malformed_json"),
        1
    );
    assert_eq!(
        counter(
            &envoy,
            "api_guard.screening.rule.unsupported_content_encoding"
        ),
        1
    );
    assert!(counter(&envoy, "api_guard.policy.api.denied.malformed_json") >= 9);
    assert_eq!(
        counter(
            &envoy,
            "api_guard.policy.internal.denied.unsupported_content_encoding"
        ),
        1
    );
}

/// Envoy's decompressor filter, placed before api-guard as docs/payload.md shows, decompresses
/// the body and removes `content-encoding`: api-guard then reads (and limits) the plain body.
///
/// Envoy's decompressor ends every request it decompresses with trailers
/// (`x-envoy-decompressor-<name>-compressed-bytes`, `addDecodedTrailers` in its `decodeData`):
/// this passes only because api-guard holds a request's trailers until its body is judged.
/// Before that (main at aa4c2bb), the compressed injection reached the upstream (200) and no
/// `api_guard.policy.api.*` counter moved.
#[test]
fn envoy_decompressor_before_api_guard_lets_compressed_bodies_be_read() {
    let config = json!({
        "policies": {"api": {"screening": {}, "payload": {"max_body_bytes": 4096}}}
    });
    let decompressor = json!({
        "name": "envoy.filters.http.decompressor",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor",
            "decompressor_library": {
                "name": "gzip",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip"
                }
            },
            "request_direction_config": {"advertise_accept_encoding": false},
            "response_direction_config": {"common_config": {"enabled": {
                "default_value": false, "runtime_key": "api_guard.decompress_responses"
            }}}
        }
    });
    let (envoy, up) = start(&config, |c| {
        c.with_http_filter_before_api_guard(decompressor)
    });
    let gz = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let r = post(&envoy, "/api/x", &gz, &gzip(with_sqli().as_bytes()));
    assert_error(&r, 403, "blocked_sqli", "a compressed injection");
    // A decompression bomb: limited as the decompressed body it becomes.
    let bomb = format!(r#"{{"q": "{}"}}"#, "a".repeat(1 << 20));
    let compressed = gzip(bomb.as_bytes());
    assert!(compressed.len() < 4096);
    let r = post(&envoy, "/api/x", &gz, &compressed);
    assert_error(&r, 413, "body_too_large", "a decompression bomb");
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    let ok = br#"{"q": "O'Brien"}"#;
    let r = post(&envoy, "/api/x", &gz, &gzip(ok));
    assert_eq!(r.status, 200, "{}", r.text());
    let got = up.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, ok, "the upstream gets the decompressed body");
    assert_eq!(got[0].header("content-encoding"), None);
}

/// A provider `corp` with a remote JWKS publishing the fixture's HMAC key `hmac-1` next to its
/// P-256 key `ec-256`, and the policy `api` requiring its tokens; `extra` is merged into the
/// provider. Waits (bounded) until the keys arrived.
fn start_remote_jwks(extra: Value) -> (Envoy, Upstream, AuthServer) {
    let auth = AuthServer::start();
    auth.set_json("/jwks.json", &jwks(&["hmac-1", "ec-256"]));
    let mut provider = json!({
        "issuer": "https://issuer.test",
        "audiences": ["api"],
        "remote_jwks": {
            "cluster": "auth", "authority": "auth.test", "path": "/jwks.json",
            "refresh_seconds": 60, "timeout_ms": 500, "unknown_kid_refetch_seconds": 1
        }
    });
    for (k, v) in extra.as_object().expect("an object") {
        provider[k] = v.clone();
    }
    let config = json!({
        "jwt_providers": {"corp": provider},
        "policies": {"api": {"jwt": {"providers": ["corp"]}}}
    });
    let (envoy, up) = start(&config, |c| c.with_auth_service(auth.addr()));
    let started = Instant::now();
    while bearer(&envoy, "valid_es256").status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "keys never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    up.clear();
    (envoy, up, auth)
}

fn bearer(envoy: &Envoy, name: &str) -> Response {
    envoy
        .request("GET", "/api/x")
        .header("authorization", &format!("Bearer {}", token(name)))
        .send()
}

/// A symmetric key in a remote JWKS is a secret every reader of the JWKS could sign with:
/// skipped (and logged, without the key) unless the provider allows it.
#[test]
fn remote_jwks_symmetric_keys_are_refused() {
    let (envoy, up, _auth) = start_remote_jwks(json!({}));
    let r = bearer(&envoy, "valid_hs256");
    assert_error(
        &r,
        401,
        "invalid_token",
        "an HS256 token from a remote oct key",
    );
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    // The asymmetric key published next to it keeps working.
    assert_eq!(bearer(&envoy, "valid_es256").status, 200);
    assert_eq!(up.requests().len(), 1);
    let log = envoy.log();
    assert!(
        log.contains("symmetric (oct) key skipped"),
        "the skip is logged"
    );
    let secret = jwks(&["hmac-1"])["keys"][0]["k"]
        .as_str()
        .expect("an oct key")
        .to_string();
    assert!(!log.contains(&secret), "key material in the log");
}

#[test]
fn remote_jwks_symmetric_keys_are_used_when_the_provider_allows_them() {
    let (envoy, up, _auth) = start_remote_jwks(json!({"remote_symmetric_keys": true}));
    assert_eq!(bearer(&envoy, "valid_hs256").status, 200);
    assert_eq!(up.requests().len(), 1);
}

/// A trusted proxy in front of Envoy (`xff_num_trusted_hops: 1`) may write IPv4 clients in
/// mapped form: `::ffff:10.7.7.7` is the IPv4 client 10.7.7.7, for IP rules and for rate
/// limits (its own /32, not the /64 every mapped client shares). Envoy reports such a client
/// as `[::ffff:10.7.7.7]:0`. (A dual-stack listener, `::` with `ipv4_compat`, does not: Envoy
/// already reports its IPv4 peers as IPv4.)
#[test]
fn ipv4_mapped_clients_are_rate_limited_as_ipv4() {
    let config = json!({
        "policies": {"api": {
            "ip": {"allow": ["10.0.0.0/8"]},
            "rate_limits": [{"name": "net", "rate": 1, "per": 3600, "burst": 1,
                             "key": {"ip": {"v4_prefix": 32, "v6_prefix": 64}}}]
        }}
    });
    let (envoy, up) = start(&config, |c| c.with_xff_trusted_hops(1));
    let from = |client: &str| {
        envoy
            .request("GET", "/api/x")
            .header("x-forwarded-for", client)
            .send()
            .status
    };
    let cases = [
        ("::ffff:10.7.7.7", 200),
        ("::ffff:10.7.7.7", 429),
        // Another mapped client has its own bucket.
        ("::ffff:10.7.7.8", 200),
        // The plain form of a mapped client shares its bucket.
        ("10.7.7.7", 429),
        ("10.7.7.9", 200),
        ("::ffff:11.1.1.1", 403),
    ];
    let got: Vec<(&str, u16)> = cases.iter().map(|(c, _)| (*c, from(c))).collect();
    assert_eq!(got, cases);
    let forwarded: Vec<_> = up
        .requests()
        .iter()
        .map(|r| r.header("x-forwarded-for").unwrap_or_default())
        .collect();
    assert_eq!(forwarded.len(), 3, "{forwarded:?}");
}
