use super::*;
use serde_json::json;

type Pairs<'a> = &'a [(&'a str, &'a str)];
/// A body check's outcome as (code, pointer, keyword).
type BodyOutcome = Result<(), (String, Option<String>, Option<&'static str>)>;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn view(h: &[(String, Vec<u8>)]) -> RequestView<'_> {
    RequestView {
        headers: crate::request::leaked_headers(h),
        client_ip: None,
        route_policy: None,
        route_name: None,
        virtual_host: None,
    }
}

fn rule(v: Value) -> PayloadRule {
    compile_payload(&v, "payload").unwrap()
}

#[test]
fn media_type_parsing() {
    // (header value, parsed (type, subtype) or None, is JSON)
    type Parsed<'a> = Option<(&'a str, &'a str)>;
    let cases: &[(&str, Parsed, bool)] = &[
        ("application/json", Some(("application", "json")), true),
        (
            "Application/JSON; charset=UTF-8",
            Some(("Application", "JSON")),
            true,
        ),
        (
            "  application/json  ;charset=utf-8",
            Some(("application", "json")),
            true,
        ),
        (
            "application/problem+json",
            Some(("application", "problem+json")),
            true,
        ),
        (
            "application/vnd.api+JSON",
            Some(("application", "vnd.api+JSON")),
            true,
        ),
        // Aliases backends read as JSON (ASP.NET Core, Rails, older clients).
        ("text/json", Some(("text", "json")), true),
        ("Text/X-JSON", Some(("Text", "X-JSON")), true),
        ("application/x-json", Some(("application", "x-json")), true),
        (
            "application/jsonrequest",
            Some(("application", "jsonrequest")),
            true,
        ),
        ("text/plain", Some(("text", "plain")), false),
        ("text/x-json-seq", Some(("text", "x-json-seq")), false),
        ("text/vnd.a+json", Some(("text", "vnd.a+json")), false),
        ("application/jsonx", Some(("application", "jsonx")), false),
        (
            "application/x-www-form-urlencoded",
            Some(("application", "x-www-form-urlencoded")),
            false,
        ),
        ("application/+json", Some(("application", "+json")), true),
        ("application", None, false),
        ("application/", None, false),
        ("/json", None, false),
        ("application/js on", None, false),
        ("", None, false),
        ("application/json\u{e9}", None, false),
        // Blanks around the essence are spaces and tabs only; parameters are not read, but a
        // value must be UTF-8 throughout.
        (
            "\t application/json\t; q=\u{e9}",
            Some(("application", "json")),
            true,
        ),
        ("\napplication/json", None, false),
        ("application/json\r", None, false),
        ("application /json", None, false),
        ("application/json/x", None, false),
        (" ; application/json", None, false),
        ("*/*", Some(("*", "*")), false),
    ];
    for (raw, want, json) in cases {
        let got = parse_media_type(raw.as_bytes());
        assert_eq!(got.map(|m| (m.type_, m.subtype)), *want, "{raw}");
        assert_eq!(got.is_some_and(|m| m.is_json()), *json, "{raw}");
    }
    assert_eq!(parse_media_type(b"application/json\xff"), None);
    assert_eq!(parse_media_type(b"application/json; charset=\xff"), None);
}

#[test]
fn on_headers_table() {
    let r = rule(json!({
        "max_body_bytes": 100,
        "content_types": ["application/json", "text/*"],
        "json": {},
        "methods": {"PUT": {"max_body_bytes": 10, "require_content_type": false}}
    }));
    // (method, headers, end_of_stream, expected: Ok(needs_body) or Err(code))
    type Want = Result<bool, &'static str>;
    let cases: &[(&str, Pairs, bool, Want)] = &[
        (
            "POST",
            &[
                ("content-type", "application/json"),
                ("content-length", "5"),
            ],
            false,
            Ok(true),
        ),
        (
            "POST",
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("content-length", "100"),
            ],
            false,
            Ok(true),
        ),
        (
            "POST",
            &[("content-type", "APPLICATION/JSON")],
            false,
            Ok(true),
        ),
        (
            "POST",
            &[
                ("content-type", "application/json"),
                ("content-length", "101"),
            ],
            false,
            Err("body_too_large"),
        ),
        // The declared length is refused even when the headers end the stream (a lie or not).
        (
            "POST",
            &[("content-length", "101")],
            true,
            Err("body_too_large"),
        ),
        (
            "POST",
            &[("content-length", "99999999999999999999999")],
            false,
            Err("body_too_large"),
        ),
        (
            "POST",
            &[("content-type", "text/plain"), ("content-length", "5")],
            false,
            Ok(false),
        ),
        ("POST", &[("content-type", "text/plain")], false, Ok(false)),
        (
            "POST",
            &[("content-type", "application/xml"), ("content-length", "5")],
            false,
            Err("unsupported_media_type"),
        ),
        (
            "POST",
            &[("content-type", "application/problem+json")],
            false,
            Err("unsupported_media_type"),
        ),
        (
            "POST",
            &[("content-type", "garbage")],
            false,
            Err("unsupported_media_type"),
        ),
        (
            "POST",
            &[
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
            false,
            Err("unsupported_media_type"),
        ),
        (
            "POST",
            &[("content-length", "5")],
            false,
            Err("unsupported_media_type"),
        ),
        // No body: nothing to check, content type or not.
        ("POST", &[], true, Ok(false)),
        ("POST", &[("content-length", "0")], false, Ok(false)),
        (
            "GET",
            &[("content-type", "application/xml")],
            true,
            Ok(false),
        ),
        // Per-method override: smaller limit, content type optional (unlabelled -> checked as JSON).
        (
            "PUT",
            &[("content-length", "11")],
            false,
            Err("body_too_large"),
        ),
        ("PUT", &[("content-length", "10")], false, Ok(true)),
        (
            "PUT",
            &[("content-type", "application/xml")],
            false,
            Err("unsupported_media_type"),
        ),
    ];
    for (method, hs, eos, want) in cases {
        let mut h = headers(hs);
        h.push((":method".to_string(), method.as_bytes().to_vec()));
        let got = r
            .on_headers(&view(&h), *eos)
            .map(|p| p.needs_body())
            .map_err(|e| e.code());
        assert_eq!(got, *want, "{method} {hs:?} eos={eos}");
    }
}

#[test]
fn plans_and_streaming() {
    let r = rule(json!({"max_body_bytes": 10}));
    let h = headers(&[(":method", "POST"), ("content-length", "4")]);
    // Known length within the limit and nothing to read: no body work.
    assert!(matches!(
        r.on_headers(&view(&h), false).unwrap(),
        BodyPlan::None
    ));
    // Chunked / HTTP/2 without a length: count it.
    let h = headers(&[(":method", "POST")]);
    let plan = r.on_headers(&view(&h), false).unwrap();
    assert!(matches!(
        plan,
        BodyPlan::Inspect {
            max_bytes: 10,
            json: None
        }
    ));
    assert!(!plan.needs_body());
    assert_eq!(plan.accept_chunk(10), Ok(()));
    assert_eq!(plan.accept_chunk(11), Err(PayloadProblem::BodyTooLarge));
    assert_eq!(r.on_body(&plan, &[0; 10]), Ok(()));
    assert_eq!(
        r.on_body(&plan, &[0; 11]),
        Err(PayloadProblem::BodyTooLarge)
    );
    assert_eq!(BodyPlan::None.accept_chunk(u64::MAX), Ok(()));
    // A zero limit admits only empty bodies.
    let r = rule(json!({"max_body_bytes": 0}));
    let h = headers(&[(":method", "POST"), ("content-length", "1")]);
    assert_eq!(
        r.on_headers(&view(&h), false).unwrap_err(),
        PayloadProblem::BodyTooLarge
    );
}

#[test]
fn schema_defaults_to_json_only_and_required_content_type() {
    let r = rule(json!({"schema": {"type": "object"}}));
    let cases: &[(Pairs, Result<bool, &str>)] = &[
        (&[("content-type", "application/json")], Ok(true)),
        (
            &[("content-type", "application/merge-patch+json")],
            Ok(true),
        ),
        // Labelling JSON as text must not bypass the schema.
        (
            &[("content-type", "text/plain")],
            Err("unsupported_media_type"),
        ),
        (&[], Err("unsupported_media_type")),
    ];
    for (hs, want) in cases {
        let mut h = headers(hs);
        h.push((":method".to_string(), b"POST".to_vec()));
        let got = r
            .on_headers(&view(&h), false)
            .map(|p| p.needs_body())
            .map_err(|e| e.code());
        assert_eq!(got, *want, "{hs:?}");
    }
    // Without content types, schema or json, anything goes.
    let r = rule(json!({}));
    let h = headers(&[(":method", "POST"), ("content-type", "x/y")]);
    assert!(!r.on_headers(&view(&h), false).unwrap().needs_body());
}

fn body_result(r: &PayloadRule, body: &[u8]) -> BodyOutcome {
    let h = headers(&[(":method", "POST"), ("content-type", "application/json")]);
    let plan = r.on_headers(&view(&h), false).unwrap();
    r.on_body(&plan, body).map_err(|e| {
        (
            e.code().to_string(),
            e.pointer().map(str::to_string),
            e.keyword(),
        )
    })
}

#[test]
fn on_body_table() {
    let r = rule(json!({
        "json": {"max_depth": 4, "max_array_items": 3},
        "schema": {
            "type": "object",
            "properties": {"age": {"type": "integer", "minimum": 0}, "tags": {"type": "array"}},
            "required": ["age"]
        }
    }));
    let err = |code: &str, ptr: Option<&str>, kw: Option<&'static str>| {
        Err((code.to_string(), ptr.map(str::to_string), kw))
    };
    let cases: Vec<(&[u8], BodyOutcome)> = vec![
        (br#"{"age": 3}"#, Ok(())),
        (br#"{"age": 3, "tags": [1, 2, 3]}"#, Ok(())),
        (
            br#"{"age": -1}"#,
            err("schema_violation", Some("/age"), Some("minimum")),
        ),
        (
            br#"{}"#,
            err("schema_violation", Some("/age"), Some("required")),
        ),
        (br#"[]"#, err("schema_violation", Some(""), Some("type"))),
        (
            br#"{"age": 3, "tags": [1, 2, 3, 4]}"#,
            err("json_limits", None, Some("max_array_items")),
        ),
        (
            br#"{"age": [[[[1]]]]}"#,
            err("json_limits", None, Some("max_depth")),
        ),
        (br#"{"age": 3"#, err("malformed_json", None, None)),
        (br#"{"age": 3} x"#, err("malformed_json", None, None)),
        (
            b"{\"age\": 3, \"n\": \"\xff\"}",
            err("malformed_json", None, None),
        ),
        (br#"{"age": 1e400}"#, err("malformed_json", None, None)),
        (b"", err("malformed_json", None, None)),
        // Duplicate names: refused when a schema reads the values (first-wins vs last-wins).
        (
            br#"{"age": -1, "age": 3}"#,
            err("duplicate_key", None, None),
        ),
        (
            br#"{"age": 3, "x": {"a": 1, "\u0061": 2}}"#,
            err("duplicate_key", None, None),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            body_result(&r, body),
            want,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // Without a schema, duplicates pass (nothing reads the values) but limits still apply.
    let r = rule(json!({"json": {"max_string_bytes": 3}}));
    assert_eq!(body_result(&r, br#"{"a": 1, "a": 2}"#), Ok(()));
    assert_eq!(
        body_result(&r, br#"{"a": "long"}"#),
        err("json_limits", None, Some("max_string_bytes"))
    );
}

#[test]
fn json_bomb_never_builds_a_tree() {
    let r = rule(json!({"schema": {}}));
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert_eq!(
        body_result(&r, deep.as_bytes()).unwrap_err().0,
        "json_limits"
    );
    let wide = format!("[{}1]", "1,".repeat(50_000));
    assert_eq!(
        body_result(&r, wide.as_bytes()).unwrap_err().0,
        "json_limits"
    );
}

#[test]
fn problems_have_stable_codes_and_statuses() {
    let kinds = [ParamKind::Query, ParamKind::Header];
    let mut rows: Vec<(PayloadProblem<'static>, &str, u16)> = vec![
        (PayloadProblem::BodyTooLarge, "body_too_large", 413),
        (
            PayloadProblem::UnsupportedMediaType,
            "unsupported_media_type",
            415,
        ),
        (PayloadProblem::MalformedJson, "malformed_json", 400),
        (PayloadProblem::DuplicateKey, "duplicate_key", 400),
        (
            PayloadProblem::JsonLimits(JsonLimit::Depth),
            "json_limits",
            400,
        ),
        (
            PayloadProblem::SchemaViolation {
                pointer: "/a".into(),
                keyword: "type",
            },
            "schema_violation",
            400,
        ),
    ];
    for (kind, suffix) in kinds.iter().zip(["parameter", "header"]) {
        rows.push((
            PayloadProblem::MissingParameter {
                kind: *kind,
                name: "n",
            },
            "missing",
            400,
        ));
        rows.push((
            PayloadProblem::ForbiddenParameter {
                kind: *kind,
                name: "n",
            },
            "forbidden",
            400,
        ));
        rows.push((
            PayloadProblem::InvalidParameter {
                kind: *kind,
                name: "n",
                rule: "pattern",
            },
            "invalid",
            400,
        ));
        for (p, prefix, _) in rows.iter().rev().take(3) {
            assert_eq!(p.code(), format!("{prefix}_{suffix}"));
            assert_eq!(p.parameter(), Some("n"));
        }
    }
    for (p, code, status) in &rows {
        assert!(p.code().starts_with(code), "{p:?}");
        assert_eq!(p.status(), *status, "{p:?}");
    }
}

#[test]
fn config_errors_name_their_path() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"max_body_bytes": -1}), "payload.max_body_bytes"),
        (
            json!({"max_body_bytes": 67108865}),
            "payload.max_body_bytes",
        ),
        (json!({"max_body_byte": 1}), "payload.max_body_byte"),
        (
            json!({"content_types": "application/json"}),
            "payload.content_types",
        ),
        (json!({"content_types": []}), "payload.content_types"),
        (
            json!({"content_types": ["application/json; charset=utf-8"]}),
            "payload.content_types[0]",
        ),
        (
            json!({"content_types": ["json"]}),
            "payload.content_types[0]",
        ),
        (
            json!({"content_types": ["*/*"]}),
            "payload.content_types[0]",
        ),
        (
            json!({"content_types": ["a/b", "A/B"]}),
            "payload.content_types[1]",
        ),
        (
            json!({"require_content_type": "yes"}),
            "payload.require_content_type",
        ),
        (
            json!({"json": {"max_depth": 101}}),
            "payload.json.max_depth",
        ),
        (json!({"json": {"max_depth": 0}}), "payload.json.max_depth"),
        (json!({"json": {"max_dept": 3}}), "payload.json.max_dept"),
        (
            json!({"schema": {"properties": {"age": {"minimum": "x"}}}}),
            "payload.schema.properties.age.minimum",
        ),
        (json!({"methods": {"post": {}}}), "payload.methods.post"),
        (json!({"methods": {"PO ST": {}}}), "payload.methods.PO ST"),
        (
            json!({"methods": {"POST": {"methods": {}}}}),
            "payload.methods.POST.methods",
        ),
        (
            json!({"methods": {"POST": {"schema": {"typo": 1}}}}),
            "payload.methods.POST.schema.typo",
        ),
        (json!({"methods": []}), "payload.methods"),
        (json!("payload"), "payload"),
    ];
    for (v, path) in cases {
        let errs = compile_payload(&v, "payload").unwrap_err();
        assert!(errs.0.iter().any(|e| e.path == path), "{v}: {errs:?}");
    }
    // Every error is collected, not just the first.
    let errs = compile_payload(
        &json!({"max_body_bytes": "x", "json": {"max_depth": 0}, "x": 1}),
        "payload",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(compile_schema(&json!({"type": "nope"}), "s").is_err());
    assert!(compile_schema(&json!({"type": "string"}), "s").is_ok());
}

#[test]
fn method_overrides_inherit_the_rest() {
    let r = rule(json!({
        "max_body_bytes": 50,
        "content_types": ["application/json"],
        "schema": {"type": "object"},
        "methods": {"PATCH": {"schema": {"type": "array"}}, "DELETE": {"schema": true, "content_types": ["text/plain"]}}
    }));
    assert_eq!(r.settings_for(b"POST").max_body_bytes, 50);
    assert_eq!(r.settings_for(b"PATCH").max_body_bytes, 50);
    assert!(r.settings_for(b"PATCH").require_content_type);
    let patch = |body: &[u8]| {
        let h = headers(&[(":method", "PATCH"), ("content-type", "application/json")]);
        let plan = r.on_headers(&view(&h), false).unwrap();
        r.on_body(&plan, body).map_err(|e| e.code())
    };
    assert_eq!(patch(b"[]"), Ok(()));
    assert_eq!(patch(b"{}"), Err("schema_violation"));
    let h = headers(&[(":method", "DELETE"), ("content-type", "text/plain")]);
    assert!(!r.on_headers(&view(&h), false).unwrap().needs_body());
    // Method names are case-sensitive: `patch` gets the base settings.
    assert!(r.methods.iter().all(|(m, _)| m != "patch"));
}

proptest::proptest! {
    // Whole-body checks see attacker bytes: never panic, whatever arrives.
    #[test]
    fn on_body_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        let r = rule(json!({"schema": {"type": "object", "additionalProperties": {"type": "string"}}}));
        let h = headers(&[(":method", "POST"), ("content-type", "application/json")]);
        let plan = r.on_headers(&view(&h), false).unwrap();
        let _ = r.on_body(&plan, &body);
    }

    // Content-type values are attacker bytes too.
    #[test]
    fn media_type_never_panics(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let _ = parse_media_type(&v).map(|m| m.is_json());
    }

    // The byte-wise reading answers as the first one, which read the whole value as a `str`.
    #[test]
    fn media_type_as_the_str_reading(v in proptest::collection::vec(
        proptest::sample::select(b"aj/;+ \t\r\n=*x-.,\"\xc3\xa9\xff".to_vec()), 0..24)
    ) {
        let reference = |v: &[u8]| -> Option<(String, String)> {
            let s = std::str::from_utf8(v).ok()?;
            let essence = s.split(';').next()?.trim_matches([' ', '\t']);
            let (t, sub) = essence.split_once('/')?;
            let token = |x: &str| !x.is_empty() && x.bytes().all(crate::request::is_tchar);
            (token(t) && token(sub)).then(|| (t.to_string(), sub.to_string()))
        };
        let got = parse_media_type(&v).map(|m| (m.type_.to_string(), m.subtype.to_string()));
        proptest::prop_assert_eq!(got, reference(&v));
    }
}
