use super::*;
use serde_json::json;

fn compiled(v: Value) -> Schema {
    let mut errs = ConfigErrors::default();
    let s = compile(&v, "s", &mut errs);
    assert!(errs.0.is_empty(), "{v}: {:?}", errs.0);
    s.unwrap()
}

fn errors(v: Value) -> Vec<(String, String)> {
    let mut errs = ConfigErrors::default();
    let s = compile(&v, "s", &mut errs);
    assert!(s.is_none(), "{v} compiled");
    errs.0.into_iter().map(|e| (e.path, e.message)).collect()
}

/// One row: schema, instance, expected failure (pointer, keyword) or None for valid.
type Row = (Value, Value, Option<(&'static str, &'static str)>);

fn run(rows: Vec<Row>) {
    for (schema, instance, want) in rows {
        let got = compiled(schema.clone()).validate(&instance).err();
        let got = got.as_ref().map(|f| (f.pointer.as_str(), f.keyword));
        assert_eq!(got, want, "schema {schema} instance {instance}");
    }
}

#[test]
fn type_keyword() {
    run(vec![
        (json!({"type": "string"}), json!("a"), None),
        (json!({"type": "string"}), json!(1), Some(("", "type"))),
        (json!({"type": "integer"}), json!(1), None),
        (json!({"type": "integer"}), json!(1.0), None),
        (json!({"type": "integer"}), json!(-5), None),
        (json!({"type": "integer"}), json!(1.5), Some(("", "type"))),
        (json!({"type": "number"}), json!(1.5), None),
        (json!({"type": "number"}), json!("1"), Some(("", "type"))),
        (json!({"type": ["null", "boolean"]}), json!(null), None),
        (json!({"type": ["null", "boolean"]}), json!(false), None),
        (
            json!({"type": ["null", "boolean"]}),
            json!(0),
            Some(("", "type")),
        ),
        (json!({"type": "object"}), json!({}), None),
        (json!({"type": "object"}), json!([]), Some(("", "type"))),
        (json!({"type": "array"}), json!([]), None),
        (json!({"type": "array"}), json!({}), Some(("", "type"))),
    ]);
}

#[test]
fn object_keywords() {
    let person = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name"],
        "additionalProperties": false
    });
    run(vec![
        (person.clone(), json!({"name": "Ann", "age": 3}), None),
        (
            person.clone(),
            json!({"age": 3}),
            Some(("/name", "required")),
        ),
        (person.clone(), json!({"name": 1}), Some(("/name", "type"))),
        (
            person.clone(),
            json!({"name": "A", "age": -1}),
            Some(("/age", "minimum")),
        ),
        (
            person.clone(),
            json!({"name": "A", "x": 1}),
            Some(("/x", "additionalProperties")),
        ),
        (
            json!({"additionalProperties": {"type": "integer"}, "properties": {"a": {}}}),
            json!({"a": "s", "b": 2}),
            None,
        ),
        (
            json!({"additionalProperties": {"type": "integer"}}),
            json!({"b": "x"}),
            Some(("/b", "type")),
        ),
        (
            json!({"additionalProperties": true}),
            json!({"b": "x"}),
            None,
        ),
        (json!({"required": ["a"]}), json!("not an object"), None),
        (json!({"minProperties": 1}), json!({"a": 1}), None),
        (
            json!({"minProperties": 1}),
            json!({}),
            Some(("", "minProperties")),
        ),
        (json!({"maxProperties": 1}), json!({"a": 1}), None),
        (
            json!({"maxProperties": 1}),
            json!({"a": 1, "b": 2}),
            Some(("", "maxProperties")),
        ),
        // Pointer escaping (RFC 6901): `~` and `/` in member names.
        (
            json!({"properties": {"a/b~c": {"type": "string"}}}),
            json!({"a/b~c": 1}),
            Some(("/a~1b~0c", "type")),
        ),
    ]);
}

#[test]
fn array_keywords() {
    run(vec![
        (json!({"items": {"type": "integer"}}), json!([1, 2]), None),
        (
            json!({"items": {"type": "integer"}}),
            json!([1, "x"]),
            Some(("/1", "type")),
        ),
        (json!({"items": false}), json!([]), None),
        (json!({"items": false}), json!([1]), Some(("/0", "items"))),
        (
            json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}),
            json!(["a", 1]),
            None,
        ),
        (
            json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}),
            json!(["a", "b"]),
            Some(("/1", "type")),
        ),
        (
            json!({"prefixItems": [{"type": "string"}], "items": false}),
            json!(["a", 1]),
            Some(("/1", "items")),
        ),
        // Draft-07 tuple form.
        (
            json!({"items": [{"type": "string"}], "additionalItems": {"type": "integer"}}),
            json!(["a", 1, 2]),
            None,
        ),
        (
            json!({"items": [{"type": "string"}], "additionalItems": {"type": "integer"}}),
            json!(["a", 1, "x"]),
            Some(("/2", "type")),
        ),
        (json!({"minItems": 2}), json!([1, 2]), None),
        (json!({"minItems": 2}), json!([1]), Some(("", "minItems"))),
        (json!({"maxItems": 1}), json!([1]), None),
        (
            json!({"maxItems": 1}),
            json!([1, 2]),
            Some(("", "maxItems")),
        ),
        (
            json!({"uniqueItems": true}),
            json!([1, "1", [1], {"a": 1}, {"a": 2}]),
            None,
        ),
        (
            json!({"uniqueItems": true}),
            json!([1, 2, 1.0]),
            Some(("", "uniqueItems")),
        ),
        (
            json!({"uniqueItems": true}),
            json!([{"a": 1, "b": [2]}, {"b": [2], "a": 1}]),
            Some(("", "uniqueItems")),
        ),
        (json!({"uniqueItems": false}), json!([1, 1]), None),
    ]);
}

#[test]
fn value_keywords() {
    run(vec![
        (json!({"enum": ["a", 1, null]}), json!(1.0), None),
        (
            json!({"enum": ["a", 1, null]}),
            json!("b"),
            Some(("", "enum")),
        ),
        (json!({"enum": [{"a": [1]}]}), json!({"a": [1]}), None),
        (json!({"const": {"a": 1}}), json!({"a": 1}), None),
        (
            json!({"const": {"a": 1}}),
            json!({"a": 2}),
            Some(("", "const")),
        ),
        (json!({"const": false}), json!(0), Some(("", "const"))),
    ]);
}

#[test]
fn numeric_keywords() {
    run(vec![
        (json!({"minimum": 5}), json!(5), None),
        (json!({"minimum": 5}), json!(4.999), Some(("", "minimum"))),
        (json!({"maximum": 5}), json!(5.0), None),
        (json!({"maximum": 5}), json!(6), Some(("", "maximum"))),
        (json!({"exclusiveMinimum": 5}), json!(5.1), None),
        (
            json!({"exclusiveMinimum": 5}),
            json!(5),
            Some(("", "exclusiveMinimum")),
        ),
        (json!({"exclusiveMaximum": 5}), json!(4), None),
        (
            json!({"exclusiveMaximum": 5}),
            json!(5),
            Some(("", "exclusiveMaximum")),
        ),
        // Draft-4 boolean form.
        (
            json!({"minimum": 5, "exclusiveMinimum": true}),
            json!(5),
            Some(("", "exclusiveMinimum")),
        ),
        (
            json!({"maximum": 5, "exclusiveMaximum": true}),
            json!(5),
            Some(("", "exclusiveMaximum")),
        ),
        (
            json!({"maximum": 5, "exclusiveMaximum": false}),
            json!(5),
            None,
        ),
        // Exact integer comparison beyond f64 precision.
        (
            json!({"maximum": 9007199254740992u64}),
            json!(9007199254740993u64),
            Some(("", "maximum")),
        ),
        (json!({"minimum": -1}), json!(u64::MAX), None),
        (json!({"minimum": 5}), json!("not a number"), None),
    ]);
}

#[test]
fn string_keywords() {
    run(vec![
        (json!({"minLength": 2}), json!("éé"), None),
        (
            json!({"minLength": 3}),
            json!("éé"),
            Some(("", "minLength")),
        ),
        (json!({"maxLength": 2}), json!("😀😀"), None),
        (
            json!({"maxLength": 1}),
            json!("😀😀"),
            Some(("", "maxLength")),
        ),
        (json!({"pattern": "^[a-z]+$"}), json!("abc"), None),
        (
            json!({"pattern": "^[a-z]+$"}),
            json!("abC"),
            Some(("", "pattern")),
        ),
        // Unanchored search, as JSON Schema specifies.
        (json!({"pattern": "b"}), json!("abc"), None),
        (json!({"pattern": "b"}), json!(3), None),
    ]);
}

#[test]
fn format_keyword() {
    let rows: &[(&str, &str, bool)] = &[
        ("email", "a.b+tag@example.co.uk", true),
        ("email", "o'brien@example.com", true),
        ("email", "user@localhost", true),
        ("email", "no-at-sign", false),
        ("email", "@example.com", false),
        ("email", "a..b@example.com", false),
        ("email", "a@-bad.com", false),
        ("email", "a b@example.com", false),
        ("email", "a@", false),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
        ("uuid", "123E4567-E89B-12D3-A456-426614174000", true),
        ("uuid", "123e4567e89b12d3a456426614174000", false),
        ("uuid", "123e4567-e89b-12d3-a456-42661417400g", false),
        ("date-time", "2024-02-29T23:59:60Z", true),
        ("date-time", "2024-01-01t00:00:00.123+05:30", true),
        ("date-time", "2023-02-29T00:00:00Z", false),
        ("date-time", "2024-13-01T00:00:00Z", false),
        ("date-time", "2024-01-01T24:00:00Z", false),
        ("date-time", "2024-01-01T00:00:00", false),
        ("date-time", "2024-01-01 00:00:00Z", false),
        ("date-time", "2024-01-01T00:00:00.Z", false),
        ("date-time", "2024-01-01T00:00:00+0530", false),
        ("date-time", "2024-01-01T00:00:00Zjunk", false),
        // Unsupported formats are annotations.
        ("ipv4", "not an ip", true),
    ];
    for (format, s, ok) in rows {
        let got = compiled(json!({"format": format})).validate(&json!(s));
        assert_eq!(got.is_ok(), *ok, "{format} {s}");
        if let Err(f) = got {
            assert_eq!(f.keyword, "format");
        }
    }
}

#[test]
fn combinators() {
    run(vec![
        (
            json!({"allOf": [{"type": "integer"}, {"minimum": 2}]}),
            json!(3),
            None,
        ),
        (
            json!({"allOf": [{"type": "integer"}, {"minimum": 2}]}),
            json!(1),
            Some(("", "minimum")),
        ),
        (
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            json!(null),
            None,
        ),
        (
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            json!(1),
            Some(("", "anyOf")),
        ),
        (
            json!({"oneOf": [{"type": "integer"}, {"minimum": 2}]}),
            json!(1),
            None,
        ),
        (
            json!({"oneOf": [{"type": "integer"}, {"minimum": 2}]}),
            json!(3),
            Some(("", "oneOf")),
        ),
        (
            json!({"oneOf": [{"type": "integer"}, {"minimum": 2}]}),
            json!(1.5),
            Some(("", "oneOf")),
        ),
        (json!({"not": {"type": "string"}}), json!(1), None),
        (
            json!({"not": {"type": "string"}}),
            json!("s"),
            Some(("", "not")),
        ),
        // A failing branch deep inside reports the combinator at the outer location.
        (
            json!({"properties": {"a": {"anyOf": [{"properties": {"b": {"type": "string"}}}]}}}),
            json!({"a": {"b": 1}}),
            Some(("/a", "anyOf")),
        ),
        (json!(true), json!({"anything": 1}), None),
        (json!(false), json!(1), Some(("", "false"))),
        (
            json!({"properties": {"a": false}}),
            json!({"a": 1}),
            Some(("/a", "properties")),
        ),
    ]);
}

#[test]
fn references() {
    let tree = json!({
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "required": ["value"]
            }
        },
        "$ref": "#/$defs/node"
    });
    run(vec![
        (
            tree.clone(),
            json!({"value": 1, "children": [{"value": 2, "children": []}]}),
            None,
        ),
        (
            tree.clone(),
            json!({"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]}),
            Some(("/children/0/children/0/value", "type")),
        ),
        (
            json!({"definitions": {"id": {"type": "string", "format": "uuid"}}, "properties": {"id": {"$ref": "#/definitions/id"}}}),
            json!({"id": "nope"}),
            Some(("/id", "format")),
        ),
        (
            json!({"properties": {"self": {"$ref": "#"}}, "type": "object"}),
            json!({"self": {"self": 1}}),
            Some(("/self/self", "type")),
        ),
        // Reference to a non-$defs location, with an escaped token.
        (
            json!({"properties": {"a/b": {"type": "integer"}, "c": {"$ref": "#/properties/a~1b"}}}),
            json!({"c": "x"}),
            Some(("/c", "type")),
        ),
    ]);
}

#[test]
fn cyclic_references_fail_closed_instead_of_looping() {
    // `a` refers to itself without consuming input: evaluation would never end.
    let s =
        compiled(json!({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}));
    let f = s.validate(&json!(1)).unwrap_err();
    assert_eq!(f.keyword, LIMIT);
    // Inside not/anyOf, the limit still fails closed (it must not become a pass via `not`).
    let s = compiled(
        json!({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "not": {"$ref": "#/$defs/a"}}),
    );
    assert_eq!(s.validate(&json!(1)).unwrap_err().keyword, LIMIT);
}

#[test]
fn exponential_schemas_hit_the_step_budget() {
    // Each level doubles the work: 2^40 evaluations unless bounded.
    let mut defs = serde_json::Map::new();
    defs.insert("l40".to_string(), json!({"type": "integer"}));
    for i in (0..40).rev() {
        let next = format!("#/$defs/l{}", i + 1);
        defs.insert(
            format!("l{i}"),
            json!({"allOf": [{"$ref": next}, {"$ref": next}]}),
        );
    }
    let s = compiled(json!({"$defs": defs, "$ref": "#/$defs/l0"}));
    let started = std::time::Instant::now();
    assert_eq!(s.validate(&json!(1)).unwrap_err().keyword, LIMIT);
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn annotations_are_ignored_and_unknown_keywords_are_errors() {
    compiled(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "$comment": "c",
        "title": "t", "description": "d", "examples": [1], "default": 1, "deprecated": true,
        "readOnly": true, "writeOnly": false, "format": "hostname"
    }));
    let cases: Vec<(Value, &str)> = vec![
        (json!({"minimun": 1}), "s.minimun"),
        (
            json!({"properties": {"a": {"maxLenght": 3}}}),
            "s.properties.a.maxLenght",
        ),
        (json!({"patternProperties": {}}), "s.patternProperties"),
        (json!({"type": "strin"}), "s.type"),
        (json!({"type": ["string", 3]}), "s.type[1]"),
        (json!({"type": []}), "s.type"),
        (
            json!({"properties": {"age": {"minimum": "0"}}}),
            "s.properties.age.minimum",
        ),
        (json!({"minLength": -1}), "s.minLength"),
        (json!({"minItems": 1.5}), "s.minItems"),
        (json!({"required": "a"}), "s.required"),
        (json!({"required": ["a", "a"]}), "s.required[1]"),
        (json!({"enum": []}), "s.enum"),
        (json!({"pattern": "(unclosed"}), "s.pattern"),
        (json!({"pattern": 5}), "s.pattern"),
        (json!({"allOf": []}), "s.allOf"),
        (json!({"anyOf": [{"type": "x"}]}), "s.anyOf[0].type"),
        (json!({"not": 5}), "s.not"),
        (json!({"$ref": "other.json#/x"}), "s.$ref"),
        (json!({"$ref": "#anchor"}), "s.$ref"),
        (json!({"$ref": "#/$defs/missing"}), "s.$ref"),
        (json!({"$defs": {"a": {"typo": 1}}}), "s.$defs.a.typo"),
        (
            json!({"definitions": {"a": {"items": {"minimum": "x"}}}}),
            "s.definitions.a.items.minimum",
        ),
        (json!({"exclusiveMinimum": true}), "s.exclusiveMinimum"),
        (json!({"uniqueItems": "yes"}), "s.uniqueItems"),
        (
            json!({"prefixItems": [true], "items": [true]}),
            "s.prefixItems",
        ),
        (json!(5), "s"),
    ];
    for (schema, path) in cases {
        let errs = errors(schema.clone());
        assert!(errs.iter().any(|(p, _)| p == path), "{schema}: {errs:?}");
    }
}

#[test]
fn deep_schemas_are_config_errors() {
    let mut v = json!({"type": "integer"});
    for _ in 0..100 {
        v = json!({"items": v});
    }
    let errs = errors(v);
    assert!(
        errs.iter().any(|(_, m)| m.contains("nested deeper")),
        "{errs:?}"
    );
}

#[test]
fn long_pointers_are_capped() {
    let key = "k".repeat(100);
    let mut instance = json!("leaf");
    let mut schema = json!({"type": "integer"});
    for _ in 0..5 {
        instance = json!({ key.clone(): instance });
        schema = json!({"properties": { key.clone(): schema }});
    }
    let f = compiled(schema).validate(&instance).unwrap_err();
    assert!(
        f.pointer.len() <= MAX_POINTER_BYTES + 8,
        "{}",
        f.pointer.len()
    );
    assert!(f.pointer.ends_with("/…"));
}
