//! The pipeline's tests: decisions over compiled policies, and bodies as the host hands them.

use super::*;
use crate::checks::api_key::CredentialLocation;
use crate::config::compile;
use crate::rejection::{KeyProblem, Rejection};

const CONFIG: &str = r#"{
    "clients": {
        "acme": {"keys": [{"id": "acme-1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]}
    },
    "policies": {
        "api": {
            "methods": ["GET"],
            "ip": {"allow": ["10.0.0.0/8"]},
            "api_key": {}
        },
        "open": {}
    }
}"#;

fn decide_for(
    policy: Option<&str>,
    ip: &str,
    method: &str,
    key: Option<&str>,
) -> (Option<String>, Verdict<'static>) {
    let guard: &'static Guard = Box::leak(Box::new(compile(CONFIG.as_bytes()).unwrap()));
    let mut headers = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), b"/x".to_vec()),
    ];
    if let Some(k) = key {
        headers.push(("x-api-key".to_string(), k.as_bytes().to_vec()));
    }
    let view = RequestView {
        headers: crate::request::leaked_headers(&headers),
        client_ip: ip.parse().ok(),
        route_policy: policy,
        route_name: None,
        virtual_host: None,
    };
    let d = decide_at(
        guard,
        &view,
        UnixTime(0),
        &mut TokenRuntime::new(guard),
        true,
    );
    (
        d.policy.map(|id| guard.policies[id.0].name.clone()),
        d.verdict,
    )
}

#[test]
fn pipeline_table() {
    let admitted = Verdict::Allow(Admission {
        identity: Some(("acme", "acme-1")),
        strip: Some(CredentialLocation::Header("x-api-key")),
        ..Admission::default()
    });
    let cases = [
        (
            Some("api"),
            "10.1.1.1",
            "GET",
            Some("demo-key-123"),
            admitted,
        ),
        // Order: method before IP before key.
        (
            Some("api"),
            "11.1.1.1",
            "POST",
            None,
            Verdict::Deny(Rejection::MethodNotAllowed { allow: "GET" }),
        ),
        (
            Some("api"),
            "11.1.1.1",
            "GET",
            Some("demo-key-123"),
            Verdict::Deny(Rejection::IpDenied),
        ),
        (
            Some("api"),
            "10.1.1.1",
            "GET",
            None,
            Verdict::Deny(Rejection::ApiKeyMissing),
        ),
        (
            Some("api"),
            "10.1.1.1",
            "GET",
            Some("wrong"),
            Verdict::Deny(Rejection::ApiKeyInvalid {
                problem: KeyProblem::Unknown,
                key_id: None,
            }),
        ),
        (
            Some("open"),
            "11.1.1.1",
            "DELETE",
            None,
            Verdict::Allow(Admission::default()),
        ),
        (
            Some("nope"),
            "10.1.1.1",
            "GET",
            None,
            Verdict::Deny(Rejection::UnknownPolicy),
        ),
        (
            None,
            "10.1.1.1",
            "GET",
            None,
            Verdict::Deny(Rejection::NoPolicy),
        ),
    ];
    for (policy, ip, method, key, want) in cases {
        assert_eq!(
            decide_for(policy, ip, method, key).1,
            want,
            "{policy:?} {ip} {method} {key:?}"
        );
    }
    assert_eq!(
        decide_for(Some("api"), "10.1.1.1", "GET", None)
            .0
            .as_deref(),
        Some("api")
    );
    assert_eq!(decide_for(Some("nope"), "10.1.1.1", "GET", None).0, None);
}

fn demo_guard() -> Guard {
    let json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/demo.json"
    ))
    .unwrap();
    compile(&json).unwrap()
}

#[test]
fn hostile_requests_are_decided_not_panicked() {
    let guard = demo_guard();
    let huge = vec![b'a'; 1 << 20];
    let cases: Vec<Vec<(String, Vec<u8>)>> = vec![
        vec![],
        vec![(":path".into(), vec![])],
        vec![
            (":method".into(), vec![0xff]),
            (":path".into(), vec![0xc3, 0x28, b'?', 0xff]),
        ],
        vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), huge.clone()),
        ],
        vec![
            (":method".into(), b"GET".to_vec()),
            ("x-api-key".into(), huge),
        ],
        vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/?api_key=%".to_vec()),
        ],
        vec![
            (":method".into(), b"GET".to_vec()),
            ("x-api-key".into(), vec![]),
            ("x-api-key".into(), vec![0]),
        ],
    ];
    for headers in &cases {
        for policy in [
            None,
            Some("api"),
            Some("public"),
            Some("internal"),
            Some(""),
        ] {
            let view = RequestView {
                headers: crate::request::leaked_headers(headers),
                client_ip: None,
                route_policy: policy,
                route_name: None,
                virtual_host: None,
            };
            let d = decide_at(
                &guard,
                &view,
                UnixTime(i64::MAX),
                &mut TokenRuntime::new(&guard),
                true,
            );
            // `public` may admit a plain GET; everything else here lacks a key or an address.
            if policy != Some("public") {
                assert!(matches!(d.verdict, Verdict::Deny(_)), "{policy:?} {d:?}");
            }
        }
    }
}

/// API key and JWT together, per auth mode. The key `demo-key-123` is acme-1's;
/// `revoked-key-456` is old-1's, revoked by key id in the configuration.
fn auth_guard() -> Guard {
    let jwks = crate::jwt::verify::tests::fixture()["jwks"].clone();
    let config = serde_json::json!({
        "clients": {
            "acme": {"keys": [{"id": "acme-1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]},
            "old": {"keys": [{"id": "old-1", "sha256": "a910551965708168716403f67a0a0303e942da5f3aeb99f49661dd87ba4d9bf2"}]}
        },
        "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"], "jwks": jwks}},
        "revocation": {"key_ids": ["old-1"]},
        "policies": {
            "all": {"api_key": {}, "jwt": {"providers": ["corp"]}},
            "any": {"api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any"},
            "optional": {"api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "optional"},
            "jwt_only": {"jwt": {"providers": ["corp"]}},
            "jwt_optional": {"jwt": {"providers": ["corp"]}, "auth": "optional"},
            "key_only": {"api_key": {}},
            "scoped_any": {"api_key": {}, "jwt": {"providers": ["corp"], "required_scopes": ["admin"]}, "auth": "any"}
        }
    });
    compile(config.to_string().as_bytes()).unwrap()
}

/// A verdict in one line: `allow key=<key id> sub=<subject>` or the metric reason.
fn summary(v: &Verdict<'_>) -> String {
    match v {
        Verdict::Allow(a) => format!(
            "allow key={} sub={}",
            a.identity.map_or("-", |(_, k)| k),
            a.token
                .as_ref()
                .map_or("-", |t| t.subject.as_deref().unwrap_or("?"))
        ),
        Verdict::Deny(r) => r.reason().as_str().to_string(),
        Verdict::Wait(p) => format!("wait {p:?}"),
    }
}

#[test]
fn auth_modes_table() {
    use crate::jwt::verify::tests::{token, NOW};
    let guard = auth_guard();
    const GOOD: Option<&str> = Some("demo-key-123");
    const WRONG: Option<&str> = Some("wrong-key");
    const REVOKED: Option<&str> = Some("revoked-key-456");
    const VALID: Option<&str> = Some("valid_es256");
    const EXPIRED: Option<&str> = Some("expired");
    const BOTH: &str = "allow key=acme-1 sub=user-1";
    let cases: Vec<(&str, Option<&str>, Option<&str>, &str)> = vec![
        // all: both credentials required, the key is checked first.
        ("all", GOOD, VALID, BOTH),
        ("all", None, VALID, "api_key_missing"),
        ("all", GOOD, None, "jwt_missing"),
        ("all", None, None, "api_key_missing"),
        ("all", WRONG, VALID, "api_key_unknown"),
        ("all", GOOD, EXPIRED, "jwt_expired"),
        ("all", REVOKED, VALID, "api_key_revoked"),
        // any: one suffices, but a present invalid credential is refused.
        ("any", GOOD, VALID, BOTH),
        ("any", GOOD, None, "allow key=acme-1 sub=-"),
        ("any", None, VALID, "allow key=- sub=user-1"),
        ("any", None, None, "jwt_missing"),
        ("any", WRONG, VALID, "api_key_unknown"),
        ("any", GOOD, EXPIRED, "jwt_expired"),
        ("any", REVOKED, None, "api_key_revoked"),
        ("any", REVOKED, VALID, "api_key_revoked"),
        // optional: nothing passes, present credentials must be valid.
        ("optional", None, None, "allow key=- sub=-"),
        ("optional", GOOD, None, "allow key=acme-1 sub=-"),
        ("optional", None, VALID, "allow key=- sub=user-1"),
        ("optional", GOOD, VALID, BOTH),
        ("optional", WRONG, None, "api_key_unknown"),
        ("optional", None, EXPIRED, "jwt_expired"),
        ("optional", REVOKED, None, "api_key_revoked"),
        // A single credential kind.
        ("jwt_only", None, VALID, "allow key=- sub=user-1"),
        ("jwt_only", None, None, "jwt_missing"),
        ("jwt_only", GOOD, None, "jwt_missing"),
        ("jwt_optional", None, None, "allow key=- sub=-"),
        ("jwt_optional", None, EXPIRED, "jwt_expired"),
        ("key_only", REVOKED, None, "api_key_revoked"),
        ("key_only", GOOD, EXPIRED, "allow key=acme-1 sub=-"),
        // any: a token that verifies but lacks the scope is a present, refused credential.
        ("scoped_any", GOOD, VALID, "jwt_insufficient_scope"),
        ("scoped_any", GOOD, None, "allow key=acme-1 sub=-"),
    ];
    for (policy, key, jwt, want) in cases {
        let mut headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/x".to_vec()),
        ];
        if let Some(k) = key {
            headers.push(("x-api-key".to_string(), k.as_bytes().to_vec()));
        }
        if let Some(t) = jwt {
            headers.push((
                "authorization".to_string(),
                format!("Bearer {}", token(t)).into_bytes(),
            ));
        }
        let view = RequestView {
            headers: crate::request::leaked_headers(&headers),
            client_ip: None,
            route_policy: Some(policy),
            route_name: None,
            virtual_host: None,
        };
        let d = decide_at(&guard, &view, NOW, &mut TokenRuntime::new(&guard), true);
        assert_eq!(
            summary(&d.verdict),
            want,
            "{policy} key={key:?} jwt={jwt:?}"
        );
    }
}

#[test]
fn revoked_key_reports_its_id_and_remote_lists_apply() {
    use crate::jwt::revocation::RevocationList;
    use crate::jwt::verify::tests::NOW;
    let guard = auth_guard();
    let decide_key = |rt: &mut TokenRuntime, key: &str| {
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            ("x-api-key".to_string(), key.as_bytes().to_vec()),
        ];
        let view = RequestView {
            headers: crate::request::leaked_headers(&headers),
            client_ip: None,
            route_policy: Some("key_only"),
            route_name: None,
            virtual_host: None,
        };
        decide_at(&guard, &view, NOW, rt, true).verdict
    };
    let mut rt = TokenRuntime::new(&guard);
    assert_eq!(
        decide_key(&mut rt, "revoked-key-456"),
        Verdict::Deny(Rejection::ApiKeyInvalid {
            problem: KeyProblem::Revoked,
            key_id: Some("old-1"),
        })
    );
    assert!(matches!(
        decide_key(&mut rt, "demo-key-123"),
        Verdict::Allow(_)
    ));
    // A remote list revoking acme-1 merges with the configured one; neither replaces the other.
    let remote = RevocationList::parse(&serde_json::json!({"key_ids": ["acme-1"]})).unwrap();
    rt.install_revocations(&guard, remote, NOW);
    assert_eq!(
        decide_key(&mut rt, "demo-key-123"),
        Verdict::Deny(Rejection::ApiKeyInvalid {
            problem: KeyProblem::Revoked,
            key_id: Some("acme-1"),
        })
    );
    assert_eq!(
        summary(&decide_key(&mut rt, "revoked-key-456")),
        "api_key_revoked"
    );
    // An entry that expired no longer applies.
    let expired = RevocationList::parse(
        &serde_json::json!({"key_ids": [{"value": "acme-1", "expires": "2020-01-01T00:00:00Z"}]}),
    )
    .unwrap();
    rt.install_revocations(&guard, expired, NOW);
    assert!(matches!(
        decide_key(&mut rt, "demo-key-123"),
        Verdict::Allow(_)
    ));
}

proptest::proptest! {
    /// Whatever the client sends, a decision comes back (no panic), and it never admits a
    /// request to the key-protected route without the one valid key.
    #[test]
    fn any_request_gets_a_decision(
        headers in proptest::collection::vec(
            (proptest::sample::select(vec![":method", ":path", "x-api-key", "x-forwarded-for", "cookie"]),
             proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)),
            0..8),
        policy in proptest::option::of(proptest::sample::select(vec!["api", "public", "internal", "nope"])),
        v4 in proptest::prelude::any::<u32>(),
        now in proptest::prelude::any::<i64>(),
    ) {
        let guard = demo_guard();
        let headers: Vec<(String, Vec<u8>)> = headers.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        let view = RequestView {
            headers: crate::request::leaked_headers(&headers),
            client_ip: Some(std::net::IpAddr::V4(v4.into())),
            route_policy: policy,
            route_name: None,
            virtual_host: None,
        };
        // The host selects before it reads the client address (to know whether the policy
        // needs it): the selection must not depend on the address.
        let without_ip = RequestView { client_ip: None, ..view };
        proptest::prop_assert_eq!(select(&guard, &without_ip), select(&guard, &view));
        let d = decide_at(&guard, &view, UnixTime(now), &mut TokenRuntime::new(&guard), true);
        if policy == Some("api") {
            if let Verdict::Allow(_) = d.verdict {
                proptest::prop_assert!(headers.iter().any(|(n, v)| n == "x-api-key" && v == b"demo-key-123"));
            }
        }
    }
}

/// Bodies through decide() and check_body(), as the host hands them over.
mod body_screening {
    use crate::config::compile;
    use crate::pipeline::*;
    use crate::screening::{Location, ScreenedBody};

    /// decide() at the headers, then check_body() on the whole body, as the host does.
    fn judge(
        screening: &str,
        content_type: &str,
        body: &[u8],
    ) -> (Option<ScreenedBody>, Result<Option<Location>, String>) {
        judge_headers(screening, &[("content-type", content_type)], body)
    }

    fn judge_headers(
        screening: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> (Option<ScreenedBody>, Result<Option<Location>, String>) {
        let config = format!(r#"{{"policies": {{"p": {{"screening": {screening}}}}}}}"#);
        let guard: &'static Guard = Box::leak(Box::new(compile(config.as_bytes()).unwrap()));
        let mut headers = vec![
            (":method".to_string(), b"POST".to_vec()),
            (":path".to_string(), b"/x".to_vec()),
        ];
        for (name, value) in extra {
            headers.push((name.to_string(), value.as_bytes().to_vec()));
        }
        let view = RequestView {
            headers: crate::request::leaked_headers(&headers),
            client_ip: None,
            route_policy: Some("p"),
            route_name: None,
            virtual_host: None,
        };
        let mut runtime = TokenRuntime::new(guard);
        let d = decide_at(guard, &view, UnixTime(0), &mut runtime, false);
        let admission = match d.verdict {
            Verdict::Allow(admission) => admission,
            Verdict::Deny(r) => return (None, Err(r.reason().as_str().to_string())),
            Verdict::Wait(p) => return (None, Err(format!("waits for {p:?}"))),
        };
        let Some(check) = admission.body else {
            return (None, Ok(None));
        };
        let got = check_body(guard, d.policy.unwrap(), &check, body)
            .map(|finding| finding.map(|f| f.location))
            .map_err(|r| r.reason().as_str().to_string());
        (check.screen, got)
    }

    fn multipart(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, file, content) in parts {
            let file = file
                .map(|f| format!("; filename=\"{f}\""))
                .unwrap_or_default();
            out.extend_from_slice(
                format!("--b0\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{content}\r\n")
                    .as_bytes(),
            );
        }
        out.extend_from_slice(b"--b0--\r\n");
        out
    }

    #[test]
    fn multipart_bodies_are_screened_and_unreadable_ones_refused() {
        let ct = "multipart/form-data; boundary=b0";
        let multi = Some(ScreenedBody::Multipart {
            boundary: b"b0".to_vec(),
        });
        let ok = multipart(&[
            ("title", None, "Holiday"),
            ("photo", Some("me.jpg"), "' or 1=1--"),
        ]);
        // File contents are data: not screened.
        assert_eq!(judge("{}", ct, &ok), (multi.clone(), Ok(None)));
        let bad_value = multipart(&[("q", None, "1 union select password from users--")]);
        let (_, got) = judge("{}", ct, &bad_value);
        assert_eq!(got, Err("blocked_sqli".into()));
        let bad_file = multipart(&[("photo", Some("../../../etc/passwd"), "x")]);
        let (_, got) = judge("{}", ct, &bad_file);
        assert_eq!(got, Err("blocked_path_traversal".into()));
        // detect mode: passes, reporting where.
        let (_, got) = judge(r#"{"mode": "detect"}"#, ct, &bad_file);
        assert_eq!(
            got,
            Ok(Some(Location::Filename {
                name: "photo".into()
            }))
        );
        // skip form.<name> skips a multipart field's value, never its file name.
        let (_, got) = judge(r#"{"skip": ["form.q"]}"#, ct, &bad_value);
        assert_eq!(got, Ok(None));
        // Unreadable: refused in block mode, passed and reported in detect mode.
        let broken = b"--b0\r\nContent-Disposition: form-data; name=q\r\n\r\n' or 1=1--";
        assert_eq!(judge("{}", ct, broken).1, Err("malformed_multipart".into()));
        assert_eq!(
            judge(r#"{"mode": "detect"}"#, ct, broken).1,
            Ok(Some(Location::Body))
        );
        let (kind, got) = judge("{}", "multipart/form-data", &ok);
        assert_eq!(kind, Some(ScreenedBody::Multipart { boundary: vec![] }));
        assert_eq!(got, Err("malformed_multipart".into()), "no boundary");
        // bodies: without "multipart", such bodies are neither buffered nor screened.
        assert_eq!(
            judge(r#"{"bodies": ["form", "json"]}"#, ct, broken),
            (None, Ok(None))
        );
        // Other kinds keep working, and can be turned off the same way.
        let json = br#"{"a": "<script>alert(1)</script>"}"#;
        assert_eq!(
            judge("{}", "application/json", json).1,
            Err("blocked_xss".into())
        );
        assert_eq!(
            judge(r#"{"bodies": ["multipart"]}"#, "application/json", json),
            (None, Ok(None))
        );
        // Two content types, or one that does not parse: 415 in block mode (the backend might
        // read the body as JSON), passed unscreened in detect mode.
        for headers in [
            vec![
                ("content-type", "text/plain"),
                ("content-type", "application/json"),
            ],
            vec![("content-type", "text/plain, application/json")],
        ] {
            assert_eq!(
                judge_headers("{}", &headers, json).1,
                Err("unsupported_media_type".into()),
                "{headers:?}"
            );
            assert_eq!(
                judge_headers(r#"{"mode": "detect"}"#, &headers, json),
                (None, Ok(None))
            );
            // A policy that screens no bodies does not care what the body is.
            assert_eq!(
                judge_headers(r#"{"bodies": []}"#, &headers, json),
                (None, Ok(None))
            );
        }
        let form = b"q=%27+or+1%3D1--";
        let (kind, got) = judge(
            "{}",
            "application/x-www-form-urlencoded; charset=utf-8",
            form,
        );
        assert_eq!(
            (kind, got),
            (Some(ScreenedBody::Form), Err("blocked_sqli".into()))
        );
    }
}
