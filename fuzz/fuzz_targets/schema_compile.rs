//! JSON Schema compilation (`payload::compile_schema`) and the `payload` section compiler
//! (`payload::compile_payload`) on any JSON value, then validation of a fixed set of instances
//! (every JSON type, nesting, a deep array) against whatever compiled. Schemas come from the
//! operator, but also from the OpenAPI importer, so a strange document must be refused with an
//! error or compiled into something whose validation is bounded, never a panic or a hang
//! (validation is capped by `MAX_EVAL_STEPS` / `MAX_EVAL_DEPTH` and fails closed).
#![no_main]

use std::sync::LazyLock;

use api_guard::config::ConfigErrors;
use api_guard::payload::{compile_payload, compile_schema, BodyPlan, PayloadRule, Schema};
use api_guard::request::RequestView;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// Instances every compiled schema is tried on.
static INSTANCES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let mut deep = json!([]);
    for _ in 0..40 {
        deep = json!([deep, {"a": 1}]);
    }
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(18446744073709551615u64),
        json!(""),
        json!("x"),
        json!("2024-01-01T00:00:00Z"),
        json!("550e8400-e29b-41d4-a716-446655440000"),
        json!("user@example.com"),
        json!([]),
        json!([1, "a", null, [1], {"a": 1}, 1]),
        json!({}),
        json!({"name": "O'Brien", "age": 42, "tags": ["a", "b"]}),
        json!({"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]}),
        json!({"a/b": 1, "c": "x", "~": [true, false], "self": {"self": 1}}),
        deep,
    ]
});

/// Bodies a compiled `payload` section is tried on (as JSON).
const BODIES: &[&[u8]] = &[
    b"",
    b"{}",
    br#"{"name": "O'Brien", "age": 42, "tags": ["a", "b"]}"#,
    br#"{"a":1,"a":2}"#,
    b"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
    b"{\"name\": \"a\"",
    b"1e400",
];

fn check_failure_pointer(pointer: &str) {
    assert!(pointer.is_empty() || pointer.starts_with('/'));
}

fn validate_all(schema: &Schema) {
    for instance in INSTANCES.iter() {
        if let Err(f) = schema.validate(instance) {
            check_failure_pointer(&f.pointer);
            assert!(!f.keyword.is_empty());
        }
    }
}

fn headers(method: &str, content_type: &str, len: usize) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), b"/api".to_vec()),
        ("content-type".into(), content_type.as_bytes().to_vec()),
        ("content-length".into(), len.to_string().into_bytes()),
    ]
}

/// At most this many configured methods are exercised (a section may list hundreds).
const MAX_METHODS: usize = 3;

/// Drives a compiled section through the host's steps: headers, then the whole body.
fn exercise_payload(rule: &PayloadRule, content_types: &[&str]) {
    let methods = std::iter::once("POST").chain(
        rule.methods
            .iter()
            .take(MAX_METHODS)
            .map(|(m, _)| m.as_str()),
    );
    for method in methods {
        for ct in content_types {
            for body in BODIES {
                let hs = headers(method, ct, body.len());
                let hs = api_guard::request::HeaderMap::from_pairs(&hs).expect("headers encode");
                let req = RequestView {
                    headers: hs.headers(),
                    client_ip: None,
                    route_policy: None,
                    route_name: None,
                    virtual_host: None,
                };
                let plan = match rule.on_headers(&req, false) {
                    Ok(plan) => plan,
                    Err(p) => {
                        assert!(matches!(p.status(), 413 | 415), "{p:?}");
                        continue;
                    }
                };
                if let BodyPlan::Inspect { max_bytes, .. } = plan {
                    assert!(u64::try_from(body.len()).is_ok_and(|n| n <= max_bytes));
                    assert!(plan.accept_chunk(max_bytes).is_ok());
                    assert!(plan.accept_chunk(max_bytes + 1).is_err());
                }
                if let Err(p) = rule.on_body(&plan, body) {
                    // The length was declared and within the limit: only the JSON checks remain.
                    assert_eq!(p.status(), 400, "{p:?}");
                    assert!(plan.needs_body());
                    if let Some(pointer) = p.pointer() {
                        check_failure_pointer(pointer);
                    }
                }
            }
        }
    }
}

/// A failed compile must say why, at or below the path it was given.
fn check_errors(errors: &ConfigErrors, path: &str) {
    assert!(!errors.is_empty(), "refused without an error");
    for e in &errors.0 {
        assert!(e.path.starts_with(path), "error path {:?} outside {path:?}", e.path);
        assert!(!e.message.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let standalone = compile_schema(&v, "schema");
    match &standalone {
        Ok(schema) => validate_all(schema),
        Err(errors) => check_errors(errors, "schema"),
    }
    // The same value as the schema of a `payload` section: compiled the same way (`null`
    // there means "no schema").
    let section = json!({"json": {"max_depth": 16}, "schema": v});
    match compile_payload(&section, "payload") {
        Ok(rule) => {
            assert!(
                standalone.is_ok() || v.is_null(),
                "compiles in a section only"
            );
            exercise_payload(&rule, &["application/json"]);
        }
        Err(errors) => {
            assert!(standalone.is_err(), "compiles standalone only");
            check_errors(&errors, "payload.schema");
        }
    }
    // The input as a whole `payload` section (seeds are sections with methods).
    match compile_payload(&v, "payload") {
        Ok(rule) => {
            if let Some(schema) = rule.base.json.as_ref().and_then(|j| j.schema.as_ref()) {
                validate_all(schema);
            }
            exercise_payload(&rule, &["application/json", "text/plain"]);
        }
        Err(errors) => check_errors(&errors, "payload"),
    }
});
