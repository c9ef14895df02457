//! The body parser shared by the schema check and body screening (`payload::doc::Document`):
//! in every duplicate-name mode it must accept exactly what serde_json accepts (or refuse a
//! repeated name when told to, possibly before a later malformation), never panic, and read the same tree as `serde_json::Value`
//! when it keeps the last of a repeated name; keeping all of them may only add members.
#![no_main]

use api_guard::payload::doc::{Document, Duplicates, ParseError};
use api_guard::payload::Json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Whether `doc` is the same tree as `value` (members compared in the document's order, which
/// is name order like `serde_json::Map`'s).
fn same(doc: Json<'_>, value: &Value) -> bool {
    match (doc, value) {
        (Json::Null, Value::Null) => true,
        (Json::Bool(a), Value::Bool(b)) => a == *b,
        (Json::Number(a), Value::Number(b)) => a == b,
        (Json::String(a), Value::String(b)) => a == b,
        (Json::Array(items), Value::Array(values)) => {
            items.len() == values.len() && items.iter().zip(values).all(|(d, v)| same(d, v))
        }
        (Json::Object(members), Value::Object(map)) => {
            members.len() == map.len()
                && members
                    .iter()
                    .zip(map)
                    .all(|((dk, dv), (k, v))| dk == k && same(dv, v))
        }
        _ => false,
    }
}

/// Every value of `doc` is one of `value`'s, or a repeated member's (KeepAll keeps more).
fn count(doc: Json<'_>) -> usize {
    match doc {
        Json::Array(items) => 1 + items.iter().map(count).sum::<usize>(),
        Json::Object(members) => 1 + members.iter().map(|(_, v)| count(v)).sum::<usize>(),
        _ => 1,
    }
}

fn count_value(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(count_value).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(count_value).sum::<usize>(),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let serde = serde_json::from_slice::<Value>(data);
    for mode in [
        Duplicates::Refuse,
        Duplicates::KeepLast,
        Duplicates::KeepAll,
    ] {
        match (Document::parse(data, mode), &serde) {
            (Ok(doc), Ok(value)) => match mode {
                Duplicates::KeepAll => assert!(count(doc.root()) >= count_value(value)),
                _ => assert!(
                    same(doc.root(), value),
                    "a different tree than serde_json's"
                ),
            },
            (Ok(_), Err(e)) => panic!("accepted what serde_json refuses ({e})"),
            // A repeated name is seen when its object closes, so it may be reported before a
            // malformation further on (the body check runs the scanner first for that reason).
            (Err(ParseError::DuplicateKey), _) => assert_eq!(mode, Duplicates::Refuse),
            (Err(e), Ok(_)) => panic!("refused ({e:?}) what serde_json accepts"),
            (Err(_), Err(_)) => {}
        }
    }
});
