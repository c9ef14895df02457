//! Bodies a policy must read but cannot (issue 12, finding 3), decided as the host decides them:
//! `decide` at the headers, then `check_body` on the whole body. Every row names what
//! the client gets; `block` mode never lets such a body through, `detect` mode lets it through
//! and reports it as a finding of class `unreadable_body`.

use crate::config::compile;
use crate::jwt::runtime::TokenRuntime;
use crate::pipeline::{check_body, decide_at};
use crate::policy::Guard;
use crate::request::RequestView;
use crate::time::UnixTime;
use crate::verdict::Verdict;

/// An injection the screening finds in any JSON string value.
const SQLI: &str = "1 union select password from users--";

/// `deny:<reason>` (headers or body), `pass` (no body check), `ok` (the body was checked and
/// passed), each finding reported on the way as ` +<class>/<rule>/<location>`.
fn outcome(policy: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let config = format!(r#"{{"policies": {{"p": {policy}}}}}"#);
    let guard: &'static Guard = Box::leak(Box::new(compile(config.as_bytes()).unwrap()));
    let mut all = vec![
        (":method".to_string(), b"POST".to_vec()),
        (":path".to_string(), b"/x".to_vec()),
    ];
    for (name, value) in headers {
        all.push((name.to_string(), value.as_bytes().to_vec()));
    }
    let view = RequestView {
        headers: crate::request::leaked_headers(&all),
        client_ip: None,
        route_policy: Some("p"),
        route_name: None,
        virtual_host: None,
    };
    let mut runtime = TokenRuntime::new(guard);
    let d = decide_at(guard, &view, UnixTime(0), &mut runtime, false);
    let admission = match d.verdict {
        Verdict::Allow(a) => a,
        Verdict::Deny(r) => return format!("deny:{}", r.reason().as_str()),
        Verdict::Wait(p) => return format!("wait:{p:?}"),
    };
    let finding = |d: &crate::screening::Detection| {
        format!(" +{}/{}/{}", d.class.as_str(), d.rule_id, d.location.key())
    };
    let mut out = String::new();
    for d in &admission.detections {
        out.push_str(&finding(d));
    }
    let Some(check) = admission.body.filter(|c| c.buffer) else {
        return format!("pass{out}");
    };
    let Some(policy) = d.policy else {
        return "no policy".into();
    };
    match check_body(guard, policy, &check, body) {
        Ok(None) => format!("ok{out}"),
        Ok(Some(d)) => format!("ok{out}{}", finding(&d)),
        Err(r) => format!("deny:{}{out}", r.reason().as_str()),
    }
}

fn json_with_sqli() -> Vec<u8> {
    format!(r#"{{"q": "{SQLI}"}}"#).into_bytes()
}

fn utf16le(s: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0xfe];
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// What backends read as JSON although a strict parser does not (Python's `json` takes a BOM,
/// UTF-16 and `NaN`; Newtonsoft takes comments and trailing commas; streaming decoders take
/// several texts). Each hides an injection.
fn lenient_json_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(json_with_sqli());
    let deep = format!(r#"{}{{"q": "{SQLI}"}}{}"#, "[".repeat(130), "]".repeat(130));
    vec![
        ("utf-8 bom", bom),
        ("utf-16", utf16le(&format!(r#"{{"q": "{SQLI}"}}"#))),
        (
            "NaN",
            format!(r#"{{"n": NaN, "q": "{SQLI}"}}"#).into_bytes(),
        ),
        (
            "Infinity",
            format!(r#"{{"n": -Infinity, "q": "{SQLI}"}}"#).into_bytes(),
        ),
        (
            "comment",
            format!(r#"{{/* note */ "q": "{SQLI}"}}"#).into_bytes(),
        ),
        (
            "line comment",
            format!("{{\"a\": 1, // note\n\"q\": \"{SQLI}\"}}").into_bytes(),
        ),
        (
            "trailing comma",
            format!(r#"{{"q": "{SQLI}",}}"#).into_bytes(),
        ),
        (
            "single quotes",
            format!(r#"{{'q': '{SQLI}'}}"#).into_bytes(),
        ),
        (
            "two texts",
            format!(r#"{{"a": 1}} {{"q": "{SQLI}"}}"#).into_bytes(),
        ),
        (
            "two texts, newline-delimited",
            format!("{{\"a\": 1}}\n{{\"q\": \"{SQLI}\"}}\n").into_bytes(),
        ),
        ("deeper than the parser goes", deep.into_bytes()),
        (
            "number beyond f64",
            format!(r#"{{"n": 1e400, "q": "{SQLI}"}}"#).into_bytes(),
        ),
        ("whitespace only", b"  \n".to_vec()),
    ]
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

#[test]
fn json_the_screening_cannot_parse_is_refused_in_block_mode() {
    for (why, body) in lenient_json_bodies() {
        assert_eq!(
            outcome(r#"{"screening": {}}"#, JSON, &body),
            "deny:malformed_json",
            "{why}"
        );
    }
    // What it can read passes, or is blocked for what it holds.
    assert_eq!(
        outcome(r#"{"screening": {}}"#, JSON, br#"{"q": "O'Brien"}"#),
        "ok"
    );
    assert_eq!(
        outcome(r#"{"screening": {}}"#, JSON, &json_with_sqli()),
        "deny:blocked_sqli"
    );
    // An empty body is no JSON text, and nothing a backend reads as one.
    assert_eq!(outcome(r#"{"screening": {}}"#, JSON, b""), "ok");
}

/// Shadow mode reports what block mode would refuse, and lets it through.
#[test]
fn detect_mode_reports_unreadable_bodies() {
    for (why, body) in lenient_json_bodies() {
        assert_eq!(
            outcome(r#"{"screening": {"mode": "detect"}}"#, JSON, &body),
            "ok +unreadable_body/malformed_json/body",
            "{why}"
        );
    }
    let multipart = [("content-type", "multipart/form-data; boundary=b0")];
    assert_eq!(
        outcome(
            r#"{"screening": {"mode": "detect"}}"#,
            &multipart,
            b"--b0\r\nno disposition\r\n\r\nx\r\n--b0--\r\n"
        ),
        "ok +unreadable_body/malformed_multipart/body"
    );
    let two_types = [
        ("content-type", "text/plain"),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        outcome(
            r#"{"screening": {"mode": "detect"}}"#,
            &two_types,
            &json_with_sqli()
        ),
        "pass +unreadable_body/unsupported_media_type/body"
    );
}

#[test]
fn json_under_other_media_types_is_read_as_json() {
    for ct in [
        "text/json",
        "application/x-json",
        "text/x-json",
        "application/jsonrequest",
        "application/vnd.api+json",
        "Application/Merge-Patch+JSON; charset=utf-8",
        "TEXT/JSON;charset=UTF-8",
    ] {
        let headers = [("content-type", ct)];
        assert_eq!(
            outcome(r#"{"screening": {}}"#, &headers, &json_with_sqli()),
            "deny:blocked_sqli",
            "{ct}"
        );
        assert_eq!(
            outcome(r#"{"screening": {}}"#, &headers, b"{'q': 1}"),
            "deny:malformed_json",
            "{ct}"
        );
        // A schema applies to them too (a schema without content_types takes JSON types only).
        let schema = r#"{"payload": {"schema": {"type": "object", "required": ["id"]}}}"#;
        assert_eq!(
            outcome(schema, &headers, br#"{"q": 1}"#),
            "deny:schema_violation",
            "{ct}"
        );
        assert_eq!(outcome(schema, &headers, br#"{"id": 1}"#), "ok", "{ct}");
    }
    // Not JSON: not read as JSON. `text/plain` is screened as one text value (issue 13), so
    // the SQL in it is found, and a body that is not JSON passes.
    let text = [("content-type", "text/plain")];
    assert_eq!(
        outcome(r#"{"screening": {}}"#, &text, &json_with_sqli()),
        "deny:blocked_sqli"
    );
    assert_eq!(outcome(r#"{"screening": {}}"#, &text, b"{'q': 1}"), "ok");
    for ct in ["application/javascript", "text/x-json-ish"] {
        let headers = [("content-type", ct)];
        assert_eq!(
            outcome(r#"{"screening": {}}"#, &headers, &json_with_sqli()),
            "pass",
            "{ct}"
        );
    }
}

#[test]
fn encoded_bodies_that_must_be_read_are_refused() {
    let gzip = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            r#"{"screening": {}}"#,
            &gzip,
            "deny:unsupported_content_encoding",
        ),
        (
            r#"{"screening": {}}"#,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-encoding", "br"),
            ],
            "deny:unsupported_content_encoding",
        ),
        (
            r#"{"screening": {}}"#,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "identity"),
                ("content-encoding", "deflate"),
            ],
            "deny:unsupported_content_encoding",
        ),
        (
            r#"{"screening": {}}"#,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "Identity, gzip"),
            ],
            "deny:unsupported_content_encoding",
        ),
        // Wherever the header is, and only that header.
        (
            r#"{"screening": {}}"#,
            &[
                ("content-encoding", "gzip"),
                ("content-type", "application/json"),
            ],
            "deny:unsupported_content_encoding",
        ),
        (
            r#"{"screening": {}}"#,
            &[
                ("content-type", "application/json"),
                ("x-content-encoding", "gzip"),
            ],
            "ok",
        ),
        // `identity` is no coding at all.
        (
            r#"{"screening": {}}"#,
            &[
                ("content-type", "application/json"),
                ("content-encoding", " IDENTITY "),
            ],
            "ok",
        ),
        // In detect mode: reported, passed unread.
        (
            r#"{"screening": {"mode": "detect"}}"#,
            &gzip,
            "pass +unreadable_body/unsupported_content_encoding/body",
        ),
        // A body the policy does not read may be encoded.
        (
            r#"{"screening": {}}"#,
            &[("content-type", "image/png"), ("content-encoding", "gzip")],
            "pass",
        ),
        (r#"{"screening": {"bodies": []}}"#, &gzip, "pass"),
        (r#"{"payload": {"max_body_bytes": 100}}"#, &gzip, "pass"),
        // Payload JSON checks read the body: the same refusal, with or without a schema.
        (
            r#"{"payload": {"json": {}}}"#,
            &gzip,
            "deny:unsupported_content_encoding",
        ),
        (
            r#"{"payload": {"schema": {"type": "object"}}}"#,
            &gzip,
            "deny:unsupported_content_encoding",
        ),
        (
            r#"{"payload": {"json": {}}}"#,
            &[("content-encoding", "gzip")],
            "deny:unsupported_content_encoding",
        ),
    ];
    for (policy, headers, want) in cases {
        // Refused at the headers; a body that gets read is one that parses.
        let body = br#"{"a": 1}"#;
        assert_eq!(
            outcome(policy, headers, body),
            *want,
            "{policy} {headers:?}"
        );
    }
}

proptest::proptest! {
    /// Whatever the bytes, a JSON body that screening lets through in `block` mode is empty or
    /// one strict JSON text (as serde_json reads it); in `detect` mode nothing is refused for
    /// being unreadable, and every unreadable body is reported.
    #[test]
    fn only_strict_json_passes_block_mode(
        body in proptest::collection::vec(
            proptest::sample::select(b"{}[]\":,. \n\t0123456789eE+-truefalsnNaI/*\\u\xef\xbb\xbf\x00\xff".to_vec()),
            0..48,
        ),
    ) {
        let strict = body.is_empty() || serde_json::from_slice::<serde_json::Value>(&body).is_ok();
        let block = outcome(r#"{"screening": {}}"#, JSON, &body);
        // A strict text may still hold something screening blocks (`"/*"` in a string).
        let read = block == "ok" || block.starts_with("deny:blocked_");
        proptest::prop_assert_eq!(read, strict, "{}", block);
        proptest::prop_assert!(read || block == "deny:malformed_json", "{}", block);
        let detect = outcome(r#"{"screening": {"mode": "detect"}}"#, JSON, &body);
        proptest::prop_assert!(detect.starts_with("ok"), "{}", detect);
        // Reported as unreadable exactly when it is (an attack finding has another class).
        proptest::prop_assert_eq!(detect.contains("unreadable_body"), !strict, "{}", detect);
    }
}
