//! Injection and bot screening on attacker bytes: `ScreeningRule::screen_value` for every
//! `ValueKind`, `screen_body` for form and JSON media types, and `screen_request` with the
//! input as the whole target, a query value, a cookie value, a screened header and the user
//! agent, under three fixed configurations (defaults; high sensitivity with skips and extra
//! headers; low sensitivity in detect mode with bot rules; exclusions and extra vocabularies). Besides never panicking: a
//! detection's location is sanitised and bounded (it never carries the value), and a value
//! placed alone in a query parameter, a cookie or a header is judged exactly as
//! `screen_value` judges it with that kind. The request-path body verdict (`judge_body`) on
//! the input as a JSON body: in `block` mode, passed only when serde_json reads it as one
//! strict JSON text (or it is empty), else refused; in `detect` mode, never refused for being
//! unreadable but reported. The input as `content-type` and `content-encoding`
//! (`plan_body`): a screened kind is never planned for a body with a content coding.
#![no_main]

use std::sync::LazyLock;

use api_guard::request::RequestView;
use api_guard::rejection::Rejection;
use api_guard::screening::{
    compile_screening, BodyScreening, Class, Detection, Location, ScreenedBody, ScreeningRule,
    ValueKind,
};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

struct Case {
    rule: ScreeningRule,
    /// Whether `query.q` / `cookie.session` / `header.referer` are screened (not skipped) and
    /// `referer` is among the screened headers.
    query_q: bool,
    cookie_session: bool,
    referer: bool,
}

static CASES: LazyLock<Vec<Case>> = LazyLock::new(|| {
    let compiled = |v: serde_json::Value| {
        compile_screening(&v, "policies.p.screening")
            .unwrap_or_else(|e| panic!("fixed screening config must compile (harness bug): {e:?}"))
    };
    vec![
        Case {
            rule: compiled(json!({})),
            query_q: true,
            cookie_session: true,
            referer: true,
        },
        Case {
            rule: compiled(json!({
                "sensitivity": "high",
                "skip": ["query.q", "cookie.session", "form.body", "json./a/*/b~1c", "header.x-skipped"],
                "headers": ["User-Agent", "referer", "x-forwarded-host", "x-skipped"],
                "bots": {"block_scanners": true, "allow": ["curl/"]}
            })),
            query_q: false,
            cookie_session: false,
            referer: true,
        },
        Case {
            rule: compiled(json!({
                "sensitivity": "low",
                "mode": "detect",
                "sqli": true, "xss": true, "traversal": false, "command_injection": true,
                "headers": ["x-api-note"],
                "bots": {"block_scanners": false, "require_user_agent": true}
            })),
            query_q: true,
            cookie_session: true,
            referer: false,
        },
        Case {
            rule: compiled(json!({
                "exclude": [
                    {"rule": "sqli.tautology", "location": "query.q"},
                    {"rule": "xss.dom_sink"},
                    {"rule": "traversal.sensitive_file", "location": "header.*"}
                ],
                "extra": {
                    "files": ["secrets/app.key"],
                    "commands": ["frobctl"],
                    "cmdlets": ["Invoke-Frob"],
                    "sql_functions": ["frob_exec"],
                    "scanners": ["FrobScanner"]
                }
            })),
            // Exclusions make a located verdict differ from `screen_value`'s (which knows no
            // location) on purpose: `xss.dom_sink` is silenced everywhere.
            query_q: false,
            cookie_session: false,
            referer: false,
        },
    ]
});

const KINDS: [ValueKind; 7] = [
    ValueKind::Path,
    ValueKind::Query,
    ValueKind::Header,
    ValueKind::Cookie,
    ValueKind::Form,
    ValueKind::Json,
    ValueKind::Multipart,
];

const MEDIA_TYPES: [&str; 4] = [
    "application/x-www-form-urlencoded",
    "application/json",
    "application/problem+json",
    "text/plain",
];

/// A user agent no configuration treats as a bot or an attack.
const UA: &[u8] = b"Mozilla/5.0";

/// A detection's location is what logs and metrics print: sanitised names, bounded length.
fn check_location(d: &Detection) {
    let key = d.location.key();
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')),
        "unsanitised location {key:?}"
    );
    // `json_name.` (the longest prefix) + a pointer cut after 256 bytes (one more segment of
    // at most 64, then `/...`).
    assert!(
        key.len() <= 10 + 256 + 1 + 64 + 4,
        "location too long: {}",
        key.len()
    );
    assert!(!d.rule_id.is_empty());
}

fn request(headers: &api_guard::request::HeaderMap) -> RequestView<'_> {
    RequestView {
        headers: headers.headers(),
        client_ip: None,
        route_policy: None,
        route_name: None,
        virtual_host: None,
    }
}

fn header(name: &str, value: &[u8]) -> (String, Vec<u8>) {
    (name.to_string(), value.to_vec())
}

fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

fn screen(rule: &ScreeningRule, headers: &[(String, Vec<u8>)]) -> Option<Detection> {
    let headers = api_guard::request::HeaderMap::from_pairs(headers).expect("headers encode");
    let d = rule.screen_request(&request(&headers));
    if let Some(d) = &d {
        check_location(d);
    }
    d
}

/// A detection in `want` must be `screen_value`'s verdict; no detection anywhere means
/// `screen_value` found nothing either (the other parts of the request are benign).
fn agrees(
    got: Option<Detection>,
    want: &Location,
    direct: Option<(api_guard::screening::Class, &str)>,
) {
    match got {
        Some(d) if d.location == *want => assert_eq!(Some((d.class, d.rule_id)), direct),
        Some(_) => {}
        None => assert_eq!(direct, None, "{want:?} not screened as screen_value does"),
    }
}

fuzz_target!(|data: &[u8]| {
    for case in CASES.iter() {
        let rule = &case.rule;
        for kind in KINDS {
            let _ = rule.screen_value(data, kind);
        }
        for media in MEDIA_TYPES {
            if let Some(d) = rule.screen_body(media, data) {
                check_location(&d);
                assert!(media != "text/plain");
            }
        }
        let strict = data.is_empty() || serde_json::from_slice::<serde_json::Value>(data).is_ok();
        match rule.judge_body(&ScreenedBody::Json, data, None) {
            Err(Rejection::Payload(p)) => {
                assert!(rule.blocks() && !strict && p.code() == "malformed_json");
            }
            Err(Rejection::Blocked(d)) => assert!(rule.blocks() && strict && d.class != Class::UnreadableBody),
            Err(other) => panic!("unexpected refusal {other:?}"),
            Ok(Some(d)) if d.class == Class::UnreadableBody => {
                assert!(!rule.blocks() && !strict && d.location == Location::Body)
            }
            Ok(Some(d)) => {
                assert!(!rule.blocks() && strict);
                check_location(&d);
            }
            Ok(None) => assert!(strict),
        }
        for name in ["content-type", "content-encoding"] {
            let encoded = name == "content-encoding"
                && data
                    .split(|&b| b == b',')
                    .any(|c| !c.trim_ascii().is_empty() && !c.trim_ascii().eq_ignore_ascii_case(b"identity"));
            let mut hs = vec![header(":method", b"POST"), header(name, data)];
            if name == "content-encoding" {
                hs.push(header("content-type", b"application/json"));
            }
            let hs = api_guard::request::HeaderMap::from_pairs(&hs).expect("headers encode");
            let view = RequestView {
                headers: hs.headers(),
                client_ip: None,
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            match rule.plan_body(&view) {
                BodyScreening::Screen(_) => assert!(!encoded),
                BodyScreening::Report(d) => assert!(!rule.blocks() && d.class == Class::UnreadableBody),
                BodyScreening::Refuse(_) => assert!(rule.blocks()),
                BodyScreening::Skip => {}
            }
        }

        let base = |extra: Vec<(String, Vec<u8>)>| {
            let mut hs = vec![header(":method", b"GET"), header("user-agent", UA)];
            hs.extend(extra);
            hs
        };
        // The whole request target.
        screen(rule, &base(vec![header(":path", data)]));
        // A query value: alone in the query when it holds no `&` or `#`.
        let got = screen(
            rule,
            &base(vec![header(":path", &concat(b"/search?q=", data))]),
        );
        if case.query_q && !data.iter().any(|&b| b == b'&' || b == b'#') {
            let want = Location::Query { name: "q".into() };
            agrees(got, &want, rule.screen_value(data, ValueKind::Query));
        }
        // A cookie value: alone when it holds no `;` and no surrounding whitespace.
        let got = screen(
            rule,
            &base(vec![
                header(":path", b"/"),
                header("cookie", &concat(b"theme=dark; session=", data)),
            ]),
        );
        if case.cookie_session && !data.contains(&b';') && data.trim_ascii_end() == data {
            let want = Location::Cookie {
                name: "session".into(),
            };
            agrees(got, &want, rule.screen_value(data, ValueKind::Cookie));
        }
        // Screened headers, and the user agent itself (bots first, then as a header).
        let got = screen(
            rule,
            &base(vec![
                header(":path", b"/"),
                header("referer", data),
                header("x-forwarded-host", data),
                header("x-api-note", data),
                header("x-skipped", data),
            ]),
        );
        if case.referer {
            let want = Location::Header {
                name: "referer".into(),
            };
            agrees(got, &want, rule.screen_value(data, ValueKind::Header));
        }
        screen(
            rule,
            &[
                header(":method", b"POST"),
                header(":path", b"/"),
                header("user-agent", data),
            ],
        );
    }
});
