use super::*;
use proptest::prelude::*;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Whether a document value is exactly the serde_json value: same variants, same numbers
/// (representation included), same strings, members in the same order.
fn same(j: Json<'_>, v: &Value) -> bool {
    match (j, v) {
        (Json::Null, Value::Null) => true,
        (Json::Bool(a), Value::Bool(b)) => a == *b,
        (Json::Number(a), Value::Number(b)) => a == b,
        (Json::String(a), Value::String(b)) => a == b,
        (Json::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Json::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => false,
    }
}

/// The strict parse as it was before documents: serde_json into a `Value`, a duplicate
/// member name being a data error. The oracle for [`Duplicates::Refuse`].
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom("duplicate member name"));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Oracle {
    Ok,
    Malformed,
    Duplicate,
}

fn oracle_strict(body: &[u8]) -> (Oracle, Option<Value>) {
    let mut de = serde_json::Deserializer::from_slice(body);
    match Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(Strict(v)) => (Oracle::Ok, Some(v)),
        Err(e) if e.is_data() => (Oracle::Duplicate, None),
        Err(_) => (Oracle::Malformed, None),
    }
}

/// Both modes against serde_json on one body.
fn check_agreement(body: &[u8]) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(body).into_owned();
    // KeepLast: exactly `serde_json::from_slice::<Value>`.
    let lenient = Document::parse(body, Duplicates::KeepLast);
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let doc = lenient.map_err(|e| TestCaseError::fail(format!("{shown}: {e:?}")))?;
            prop_assert!(
                same(doc.root(), &v),
                "{}: {:?} vs {:?}",
                shown,
                doc.root(),
                v
            );
        }
        Err(e) => {
            prop_assert!(lenient.is_err(), "{}: serde refuses ({})", shown, e);
            let out_of_range = e.to_string().contains("number out of range");
            prop_assert_eq!(
                lenient.err(),
                Some(if out_of_range {
                    ParseError::NumberOutOfRange
                } else {
                    ParseError::Malformed
                }),
                "{}",
                shown
            );
        }
    }
    // Refuse, as the body check composes it: after the structure scan (which refuses every
    // malformed body but for numbers beyond f64, whose refusal serde_json then explains).
    let generous = super::super::JsonLimits {
        max_depth: super::super::scan::MAX_DEPTH_CAP,
        max_members: u32::MAX,
        max_array_items: u32::MAX,
        max_string_bytes: u32::MAX,
        max_total_values: u32::MAX,
    };
    let Ok(values) = super::super::scan::scan_counting(body, &generous) else {
        return Ok(());
    };
    let strict = super::super::parse_strict(body, values);
    match oracle_strict(body) {
        (Oracle::Ok, Some(v)) => {
            let doc = strict.map_err(|e| TestCaseError::fail(format!("{shown}: {e:?}")))?;
            prop_assert!(same(doc.root(), &v), "{}", shown);
        }
        (Oracle::Duplicate, _) => prop_assert_eq!(
            strict.err(),
            Some(super::super::PayloadProblem::DuplicateKey),
            "{}",
            shown
        ),
        _ => prop_assert_eq!(
            strict.err(),
            Some(super::super::PayloadProblem::MalformedJson),
            "{}",
            shown
        ),
    }
    Ok(())
}

#[test]
fn agreement_table() {
    let bodies: &[&[u8]] = &[
        b"{}",
        b"[]",
        b" \t\r\n[ 1 , 2 ] \n",
        b"0",
        b"-0",
        b"-0.0",
        b"1.0",
        b"-5",
        b"18446744073709551615",
        b"18446744073709551616",
        b"9999999999999999999",
        b"-999999999999999999",
        b"-9223372036854775808",
        b"-9223372036854775809",
        b"123456789012345678901234567890",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"0.1",
        b"2.5E+3",
        b"9.99",
        b"[1e400, {\"a\":1,\"a\":2}]",
        b"[{\"a\":1,\"a\":2}, 1e400]",
        b"{\"a\":1,\"a\":2,\"b\":1e400}",
        b"{\"a\":1,\"b\":1e400,\"a\":2}",
        b"{\"a\":1e400,\"a\":2}",
        b"{\"x\":{\"a\":1,\"a\":2},\"y\":1e400}",
        b"{\"b\":1,\"a\":2,\"c\":{\"z\":[],\"y\":{}}}",
        b"{\"a\":1,\"a\":\"two\"}",
        b"{\"a\":1,\"b\":2,\"a\":3,\"b\":4,\"a\":5}",
        b"{\"\\u0061\":1,\"a\":2}",
        b"\"a\\u00e9\\ud83d\\ude00\\n\\/\\\"\\\\\\b\\f\\r\\t\"",
        "\"é😀\"".as_bytes(),
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\\ud800\\u0041\"",
        b"\"\\ud800\\ud800\"",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\x01\"",
        b"\"\x7f\"",
        b"\"\xff\"",
        b"\"\xc0\xaf\"",
        b"\"unterminated",
        b"",
        b"   ",
        b"{",
        b"[1,]",
        b"{\"a\":1,}",
        b"01",
        b"1.",
        b"-",
        b"tru",
        b"nulll",
        b"{} {}",
        b"\xef\xbb\xbf[]",
        b"[\"a\" \"b\"]",
        b"{\"a\" 1}",
        b"{1:2}",
        b"[}",
    ];
    for body in bodies {
        if let Err(e) = check_agreement(body) {
            panic!("{e}");
        }
    }
}

#[test]
fn large_objects_agree() {
    // Past the insertion-sorted runs: members in a scrambled order, some names repeated.
    let members: Vec<String> = (0..300u32)
        .map(|i| format!("\"k{}\":{i}", (i * 7919) % 250))
        .collect();
    let body = format!("{{{}}}", members.join(","));
    if let Err(e) = check_agreement(body.as_bytes()) {
        panic!("{e}");
    }
    let unique: Vec<String> = (0..300u32)
        .map(|i| format!("\"k{}\":[{i}]", (i * 7919) % 300))
        .collect();
    let body = format!("{{{}}}", unique.join(","));
    if let Err(e) = check_agreement(body.as_bytes()) {
        panic!("{e}");
    }
}

#[test]
fn nesting_limit_is_serde_jsons() {
    for (n, ok) in [
        (MAX_NESTING, true),
        (MAX_NESTING + 1, false),
        (10_000, false),
    ] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let mut body = open.repeat(n);
            if open == "[" {
                body.push_str(&close.repeat(n));
            } else {
                body.push('1');
                body.push_str(&close.repeat(n));
            }
            assert_eq!(
                Document::parse(body.as_bytes(), Duplicates::KeepLast).is_ok(),
                ok,
                "{n} x {open}"
            );
            assert_eq!(serde_json::from_str::<Value>(&body).is_ok(), ok);
        }
    }
}

#[test]
fn limits_stop_the_parse() {
    let limits = JsonLimits::default();
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let huge = format!("[{}0]", "0,".repeat(200_000));
    let long = format!("\"{}\"", "a".repeat(1_000_000));
    let wide = format!(
        "{{{}\"k\":0}}",
        (0..2000)
            .map(|i| format!("\"k{i}\":0,"))
            .collect::<String>()
    );
    for body in [deep, huge, long, wide] {
        assert_eq!(
            Document::parse_within(body.as_bytes(), Duplicates::Refuse, &limits).err(),
            Some(ParseError::Limit)
        );
    }
    // Within the limits, the same as without them.
    let body = br#"{"a": [1, 2, {"b": "c"}], "d": "e"}"#;
    let within = Document::parse_within(body, Duplicates::Refuse, &limits).unwrap();
    let v: Value = serde_json::from_slice(body).unwrap();
    assert!(same(within.root(), &v));
}

#[test]
fn strings_borrow_unless_escaped() {
    let body = br#"{"plain": "abc", "esc\u0061ped": "a\nb", "arr": ["x", "\u00e9"]}"#;
    let doc = Document::parse(body, Duplicates::Refuse).unwrap();
    let Json::Object(m) = doc.root() else {
        panic!("not an object")
    };
    let names: Vec<&str> = m.iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["arr", "escaped", "plain"]);
    assert!(matches!(m.get("plain"), Some(Json::String("abc"))));
    assert!(matches!(m.get("escaped"), Some(Json::String("a\nb"))));
    assert!(m.get("missing").is_none());
    assert!(m.contains_key("arr") && !m.contains_key("ar"));
    let Some(Json::Array(items)) = m.get("arr") else {
        panic!("not an array")
    };
    let items: Vec<String> = items.iter().map(|j| format!("{j:?}")).collect();
    assert_eq!(items, ["String(\"x\")", "String(\"é\")"]);
    // Only the escaped strings were copied.
    assert_eq!(doc.decoded, "escapeda\nbé");
}

#[test]
fn entries_stay_small() {
    // The parser moves entries around a lot: keep them at three words.
    assert!(
        std::mem::size_of::<Entry>() <= 24,
        "{}",
        std::mem::size_of::<Entry>()
    );
}

#[test]
fn from_value_is_the_same_document() {
    let v = serde_json::json!({"b": [1, -2, 3.5, "s", null, true], "a": {"y": {}, "x": []}});
    let doc = Document::from_value(&v).unwrap();
    assert!(same(doc.root(), &v));
}

/// Tricky number tokens.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "1.0",
    "-0.0",
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "1234567890123456789",
    "-123456789012345678",
    "123456789012345678901234567890",
    "0.30000000000000004",
    "2.5E+3",
    "9.99",
    "1E2",
];

/// Strings: plain, escaped, non-ASCII, surrogate pairs, and a few malformed ones.
const STRINGS: &[&str] = &[
    "\"\"",
    "\"a\"",
    "\"b\"",
    "\"é😀\"",
    "\"a\\u0062\"",
    "\"\\u0061\"",
    "\"\\ud83d\\ude00\"",
    "\"x\\ny\\t\\\"q\\\"\\\\\\/\"",
    "\"' or 1=1--\"",
    "\"<script>\"",
    "\"..\\/..\\/etc\\/passwd\"",
    "\"a;id\"",
    "\"\\u003csvg onload=alert(1)>\"",
    "\"\\ud800\"",
    "\"\\q\"",
];

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        proptest::sample::select(NUMBERS).prop_map(str::to_string),
        proptest::sample::select(STRINGS).prop_map(str::to_string),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((proptest::sample::select(STRINGS), inner, " ?"), 0..6)
                .prop_map(|members| {
                    let parts: Vec<String> = members
                        .into_iter()
                        .map(|(k, v, ws)| format!("{k}{ws}:{ws}{v}"))
                        .collect();
                    format!("{{{}}}", parts.join(","))
                }),
        ]
    })
}

proptest! {
    // Generated documents: members in any order, duplicate names, escapes, tricky numbers.
    #[test]
    fn agrees_with_serde_on_documents(text in json_text()) {
        check_agreement(text.as_bytes())?;
    }

    // Short texts over JSON's alphabet (mostly malformed).
    #[test]
    fn agrees_with_serde_on_fragments(s in "[\\[\\]{}:,\" 0-9.eE+\\-tfrunlsa\\\\/u\u{e9}]{0,40}") {
        check_agreement(s.as_bytes())?;
    }

    // Any bytes: never a panic, and the same acceptance as serde_json.
    #[test]
    fn agrees_with_serde_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_agreement(&bytes)?;
    }
}

/// The body check as it was before documents: the scan, then the strict serde_json parse,
/// then the schema on the `Value`.
fn old_check_json(
    check: &super::super::JsonCheck,
    body: &[u8],
) -> Result<(), super::super::PayloadProblem<'static>> {
    use super::super::scan::{scan, ScanError};
    use super::super::PayloadProblem;
    scan(body, &check.limits).map_err(|e| match e {
        ScanError::Malformed { .. } => PayloadProblem::MalformedJson,
        ScanError::Limit(l) => PayloadProblem::JsonLimits(l),
    })?;
    let Some(schema) = &check.schema else {
        return Ok(());
    };
    let value = match oracle_strict(body) {
        (Oracle::Ok, Some(v)) => v,
        (Oracle::Duplicate, _) => return Err(PayloadProblem::DuplicateKey),
        _ => return Err(PayloadProblem::MalformedJson),
    };
    schema
        .validate(&value)
        .map_err(|f| PayloadProblem::SchemaViolation {
            pointer: f.pointer,
            keyword: f.keyword,
        })
}

fn checks() -> Vec<super::super::JsonCheck> {
    use super::super::{compile_schema, JsonCheck, JsonLimits};
    use std::sync::Arc;
    let tight = JsonLimits {
        max_depth: 3,
        max_members: 2,
        max_array_items: 3,
        max_string_bytes: 4,
        max_total_values: 6,
    };
    let medium = JsonLimits {
        max_depth: 4,
        max_members: 4,
        max_array_items: 5,
        max_string_bytes: 12,
        max_total_values: 30,
    };
    let generous = JsonLimits {
        max_depth: super::super::scan::MAX_DEPTH_CAP,
        max_members: u32::MAX,
        max_array_items: u32::MAX,
        max_string_bytes: u32::MAX,
        max_total_values: u32::MAX,
    };
    let schemas = [
        serde_json::json!(true),
        serde_json::json!({
            "type": ["object", "array"],
            "additionalProperties": {"type": ["string", "number", "array"], "maxLength": 3},
            "properties": {"a": {"uniqueItems": true}, "b": {"enum": [1, "b", [true]]}},
            "items": {"not": {"const": "a"}}
        }),
    ];
    let mut out = Vec::new();
    for limits in [tight, medium, generous, JsonLimits::default()] {
        for schema in &schemas {
            out.push(JsonCheck {
                limits,
                schema: Some(Arc::new(compile_schema(schema, "s").unwrap())),
            });
        }
        out.push(JsonCheck {
            limits,
            schema: None,
        });
    }
    out
}

fn check_json_agreement(
    checks: &[super::super::JsonCheck],
    body: &[u8],
) -> Result<(), TestCaseError> {
    for check in checks {
        prop_assert_eq!(
            super::super::check_json(check, body),
            old_check_json(check, body),
            "{} under {:?}",
            String::from_utf8_lossy(body),
            check.limits
        );
    }
    Ok(())
}

#[test]
fn check_json_table() {
    let checks = checks();
    let bodies: &[&[u8]] = &[
        b"{\"a\":1,\"a\":2,\"b\":\"toolongstring\"}",
        b"{\"a\":1,\"a\":2,\"b\":1e400}",
        b"{\"a\":1e400,\"a\":2}",
        b"[1,2,3,4,1e400]",
        b"[[[[1]]]]",
        b"{\"a\":[1,1],\"b\":\"b\",\"c\":\"cccc\"}",
        b"{\"aaaaa\":1}",
        b"[\"a\\u0062\\u0063\\u0064\\u0065\"]",
        b"[\"a\\u00\"]",
        b"\"abcd",
        b"\"abcdefghijklmnop",
        b"[1,2,3] x",
    ];
    for body in bodies {
        if let Err(e) = check_json_agreement(&checks, body) {
            panic!("{e}");
        }
    }
}

proptest! {
    // The one-pass body check answers exactly as scan-then-parse did, under tight and loose
    // limits, with and without a schema.
    #[test]
    fn check_json_agrees_on_documents(text in json_text()) {
        check_json_agreement(&checks(), text.as_bytes())?;
    }

    #[test]
    fn check_json_agrees_on_fragments(s in "[\\[\\]{}:,\" 0-9.eE+\\-tfrunlsa\\\\/u\u{e9}]{0,40}") {
        check_json_agreement(&checks(), s.as_bytes())?;
    }
}

/// The JSON pointer of `path` as `Location` writes it (names sanitised, long ones cut).
fn reference_pointer(path: &[String]) -> String {
    let mut pointer = String::new();
    for seg in path {
        pointer.push('/');
        pointer.push_str(seg);
        if pointer.len() > 256 {
            pointer.push_str("/...");
            break;
        }
    }
    pointer
}

/// The screening walk as it was, over a `serde_json::Value`: members in map order, each
/// member's name and then its value; the first name or string value `screen_value` flags,
/// with its location.
fn old_walk(
    rule: &crate::screening::ScreeningRule,
    v: &Value,
    path: &mut Vec<String>,
) -> Option<(crate::screening::Class, &'static str, String)> {
    if path.len() > crate::screening::MAX_JSON_DEPTH {
        return None;
    }
    match v {
        Value::String(s) => rule
            .screen_value(s.as_bytes(), crate::screening::ValueKind::Json)
            .map(|(class, id)| (class, id, format!("json.{}", reference_pointer(path)))),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            path.push(i.to_string());
            let d = old_walk(rule, item, path);
            path.pop();
            d
        }),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if let Some((class, id)) =
                rule.screen_value(k.as_bytes(), crate::screening::ValueKind::Json)
            {
                return Some((class, id, format!("json_name.{}", reference_pointer(path))));
            }
            let name: String = k
                .bytes()
                .take(64)
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
                        char::from(b)
                    } else {
                        '_'
                    }
                })
                .collect();
            path.push(name);
            let d = old_walk(rule, item, path);
            path.pop();
            d
        }),
        _ => None,
    }
}

proptest! {
    // Body screening finds what the walk over serde_json's tree found, at the same place;
    // with repeated member names (serde_json keeps the last, screening reads them all) it
    // finds at least what serde's tree held.
    #[test]
    fn screening_walk_agrees(text in json_text()) {
        let body = text.as_bytes();
        let repeated_names = matches!(
            Document::parse(body, Duplicates::Refuse),
            Err(ParseError::DuplicateKey)
        );
        for sensitivity in ["low", "medium", "high"] {
            let rule = crate::screening::compile_screening(
                &serde_json::json!({"sensitivity": sensitivity}),
                "screening",
            )
            .unwrap();
            let new = rule
                .screen_body("application/json", body)
                .map(|d| (d.class, d.rule_id, d.location.key()));
            let old = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| old_walk(&rule, &v, &mut Vec::new()));
            if repeated_names {
                prop_assert!(old.is_none() || new.is_some(), "{}", text);
            } else {
                prop_assert_eq!(new, old, "{}", text);
            }
        }
    }
}

proptest! {
    // The hand-written sort is the standard library's stable sort.
    #[test]
    fn sort_stable_is_a_stable_sort(v in proptest::collection::vec((0u8..8, any::<u16>()), 0..300)) {
        let mut ours = v.clone();
        sort_stable(&mut ours, |a, b| a.0.cmp(&b.0));
        let mut theirs = v;
        theirs.sort_by_key(|a| a.0);
        prop_assert_eq!(ours, theirs);
    }
}
