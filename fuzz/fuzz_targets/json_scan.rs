//! Request bodies: the allocation-free JSON scanner (`payload::scan::scan`) under three limit
//! sets, and the whole body check (`payload::check_json`: scan, strict parse refusing
//! duplicate names, schema) with fixed compiled schemas. Under generous limits the scanner must
//! agree with serde_json on well-formedness (serde_json also refuses numbers that overflow an
//! `f64`, and the scanner caps depth at `MAX_DEPTH_CAP`), and the body check's answer must be
//! explained by the scanner, serde_json and the schema on their own.
#![no_main]

use std::sync::{Arc, LazyLock};

use api_guard::payload::scan::{scan, ScanError, MAX_DEPTH_CAP};
use api_guard::payload::{
    check_json, compile_schema, JsonCheck, JsonLimit, JsonLimits, PayloadProblem,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// Every count unlimited and the deepest nesting a configuration may allow: only `Depth` can
/// be passed.
const GENEROUS: JsonLimits = JsonLimits {
    max_depth: MAX_DEPTH_CAP,
    max_members: u32::MAX,
    max_array_items: u32::MAX,
    max_string_bytes: u32::MAX,
    max_total_values: u32::MAX,
};

/// Every limit at or below the default, so that limits are actually reached.
const TIGHT: JsonLimits = JsonLimits {
    max_depth: 3,
    max_members: 2,
    max_array_items: 3,
    max_string_bytes: 4,
    max_total_values: 6,
};

/// The body checks: the integration test's person schema with `max_depth: 8`, a recursive
/// `$ref` tree schema with the defaults, and no schema at all under generous limits.
static CHECKS: LazyLock<Vec<JsonCheck>> = LazyLock::new(|| {
    let person = json!({
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "age": {"type": "integer", "minimum": 0},
            "email": {"type": "string", "format": "email"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
        }
    });
    let tree = json!({
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
                },
                "required": ["value"]
            }
        },
        "anyOf": [{"$ref": "#/$defs/node"}, {"type": "array", "uniqueItems": true}]
    });
    let compiled = |v: &Value| {
        Arc::new(compile_schema(v, "schema").expect("fixed schema must compile (harness bug)"))
    };
    vec![
        JsonCheck {
            limits: JsonLimits {
                max_depth: 8,
                ..JsonLimits::default()
            },
            schema: Some(compiled(&person)),
        },
        JsonCheck {
            limits: JsonLimits::default(),
            schema: Some(compiled(&tree)),
        },
        JsonCheck {
            limits: GENEROUS,
            schema: None,
        },
    ]
});

fn no_larger(a: &JsonLimits, b: &JsonLimits) -> bool {
    a.max_depth <= b.max_depth
        && a.max_members <= b.max_members
        && a.max_array_items <= b.max_array_items
        && a.max_string_bytes <= b.max_string_bytes
        && a.max_total_values <= b.max_total_values
}

fuzz_target!(|data: &[u8]| {
    let serde = serde_json::from_slice::<Value>(data);
    let generous = scan(data, &GENEROUS);
    match (&generous, &serde) {
        (Ok(()), Err(e)) => assert!(
            e.to_string().contains("number out of range"),
            "scanner accepts what serde_json refuses: {e}"
        ),
        (Err(ScanError::Malformed { offset }), Ok(_)) => {
            panic!("scanner refuses (offset {offset}) what serde_json accepts")
        }
        (Err(ScanError::Malformed { offset }), Err(_)) => assert!(*offset <= data.len()),
        // Only depth can be passed under these limits, and only past the cap.
        (Err(ScanError::Limit(l)), _) => assert_eq!(*l, JsonLimit::Depth),
        _ => {}
    }

    // Smaller limits can only refuse more: an acceptance carries over to larger limits, and a
    // malformation found before any limit was reached is found at the same place.
    let results = [
        (TIGHT, scan(data, &TIGHT)),
        (JsonLimits::default(), scan(data, &JsonLimits::default())),
        (GENEROUS, generous),
    ];
    for (small, r_small) in &results {
        for (large, r_large) in &results {
            if !no_larger(small, large) {
                continue;
            }
            match r_small {
                Ok(()) => assert_eq!(*r_large, Ok(()), "accepted under smaller limits only"),
                Err(ScanError::Malformed { .. }) => {
                    assert_eq!(r_large, r_small, "malformation moved with larger limits")
                }
                Err(ScanError::Limit(_)) => {}
            }
        }
    }

    for check in CHECKS.iter() {
        let got = check_json(check, data);
        let scanned = scan(data, &check.limits);
        match &got {
            Err(PayloadProblem::JsonLimits(l)) => assert_eq!(scanned, Err(ScanError::Limit(*l))),
            Err(PayloadProblem::MalformedJson) => assert!(
                matches!(scanned, Err(ScanError::Malformed { .. })) || serde.is_err(),
                "malformed_json for a body both the scanner and serde_json accept"
            ),
            // A duplicate member name: serde_json (last one wins) parses it.
            Err(PayloadProblem::DuplicateKey) => {
                assert!(scanned.is_ok());
                assert!(check.schema.is_some());
                assert!(serde.is_ok(), "duplicate_key for a body serde_json refuses");
            }
            Err(PayloadProblem::SchemaViolation { pointer, keyword }) => {
                assert!(scanned.is_ok());
                assert!(pointer.is_empty() || pointer.starts_with('/'));
                // No duplicates, so the strict parse is serde_json's tree: same failure.
                let schema = check
                    .schema
                    .as_ref()
                    .expect("schema violation without a schema");
                let value = serde
                    .as_ref()
                    .expect("schema violation for a body serde_json refuses");
                let again = schema
                    .validate(value)
                    .expect_err("schema disagrees on the same tree");
                assert_eq!((&again.pointer, again.keyword), (pointer, *keyword));
            }
            Err(other) => panic!("check_json returned {other:?}"),
            Ok(()) => {
                assert_eq!(scanned, Ok(()));
                if let Some(schema) = &check.schema {
                    let value = serde
                        .as_ref()
                        .expect("check_json passed what serde_json refuses");
                    assert!(schema.validate(value).is_ok());
                }
            }
        }
        if check.schema.is_none() {
            // Without a schema the body check is the scan alone.
            assert_eq!(got.is_ok(), scanned.is_ok());
        }
    }
});
