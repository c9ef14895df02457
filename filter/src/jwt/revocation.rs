//! Revocation without redeploys: token ids (`jti`), subjects (`sub`) and API key ids that must
//! be refused even though their signature or digest is valid.
//!
//! Two sources are merged: the list in the plugin configuration, and a list pulled from a URL on
//! an interval (by one elected VM, published through shared data, picked up by every VM on its
//! next tick: see `remote::document` and `host/`). Both use the same document shape:
//!
//! ```json
//! {"jtis": ["a1", {"value": "b2", "expires": "2030-01-01T00:00:00Z"}], "subjects": [], "key_ids": []}
//! ```
//!
//! An entry with `expires` is dropped from that second on (a revoked token that has expired
//! anyway needs no entry, so lists stay short). The check runs on every request, after the
//! verified-token cache, so a cached token is still refused once it is revoked.

use std::collections::HashMap;

use serde_json::Value;

use crate::remote::RemoteSource;
use crate::time::{parse_rfc3339, UnixTime};

use super::JwksError;

/// Upper bound on entries per document (all three lists together): a bigger document is
/// refused whole rather than truncated, so a revocation is never silently dropped.
pub const MAX_ENTRIES: usize = 100_000;
/// Upper bound on a remote document, checked before parsing.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// Values are ids, not documents.
const MAX_VALUE_BYTES: usize = 1024;

/// One list: value -> optional expiry (the first second the entry no longer applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entries(HashMap<String, Option<UnixTime>>);

impl Entries {
    fn contains(&self, value: &str, now: UnixTime) -> bool {
        match self.0.get(value) {
            Some(None) => true,
            Some(Some(expires)) => now < *expires,
            None => false,
        }
    }

    fn merge(&mut self, other: &Entries) {
        for (value, expires) in &other.0 {
            // The longer revocation wins (no expiry is longest).
            let merged = match (self.0.get(value), expires) {
                (Some(None), _) | (_, None) => None,
                (Some(Some(a)), Some(b)) => Some(UnixTime(a.0.max(b.0))),
                (None, Some(b)) => Some(*b),
            };
            self.0.insert(value.clone(), merged);
        }
    }
}

/// A compiled revocation list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    jtis: Entries,
    subjects: Entries,
    key_ids: Entries,
}

impl RevocationList {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.jtis.0.len() + self.subjects.0.len() + self.key_ids.0.len()
    }

    /// A token is revoked when its `jti` or its `sub` is listed (and the entry has not expired).
    pub fn revokes_token(&self, jti: Option<&str>, subject: Option<&str>, now: UnixTime) -> bool {
        jti.is_some_and(|j| self.jtis.contains(j, now))
            || subject.is_some_and(|s| self.subjects.contains(s, now))
    }

    pub fn revokes_key(&self, key_id: &str, now: UnixTime) -> bool {
        self.key_ids.contains(key_id, now)
    }

    /// The union of two lists (configuration and remote).
    pub fn merged(&self, other: &RevocationList) -> RevocationList {
        let mut out = self.clone();
        out.jtis.merge(&other.jtis);
        out.subjects.merge(&other.subjects);
        out.key_ids.merge(&other.key_ids);
        out
    }

    /// Parses a revocation document. Every problem is reported with its path; values are ids
    /// and are quoted in messages only by position, never by content.
    pub fn parse(doc: &Value) -> Result<RevocationList, Vec<JwksError>> {
        let mut errors = Vec::new();
        let mut list = RevocationList::default();
        let Some(map) = doc.as_object() else {
            return Err(vec![JwksError::new(
                "",
                "a revocation list is an object with \"jtis\", \"subjects\" and \"key_ids\"",
            )]);
        };
        let mut total = 0usize;
        for (name, value) in map {
            let target = match name.as_str() {
                "jtis" => &mut list.jtis,
                "subjects" => &mut list.subjects,
                "key_ids" => &mut list.key_ids,
                _ => {
                    errors.push(JwksError::new(
                        name.as_str(),
                        "unknown field (expected \"jtis\", \"subjects\" or \"key_ids\")",
                    ));
                    continue;
                }
            };
            let Some(items) = value.as_array() else {
                if !value.is_null() {
                    errors.push(JwksError::new(name.as_str(), "must be an array"));
                }
                continue;
            };
            total = total.saturating_add(items.len());
            if total > MAX_ENTRIES {
                errors.push(JwksError::new(
                    name.as_str(),
                    format!("more than {MAX_ENTRIES} entries in one revocation list"),
                ));
                break;
            }
            for (i, item) in items.iter().enumerate() {
                let path = format!("{name}[{i}]");
                match parse_entry(item, &path) {
                    Ok((value, expires)) => {
                        target.merge(&Entries(HashMap::from([(value, expires)])));
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        if errors.is_empty() {
            Ok(list)
        } else {
            Err(errors)
        }
    }

    pub fn parse_bytes(bytes: &[u8]) -> Result<RevocationList, Vec<JwksError>> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(vec![JwksError::new(
                "",
                format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
            )]);
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(doc) => RevocationList::parse(&doc),
            Err(e) => Err(vec![JwksError::new(
                "",
                format!("not valid JSON (line {}, column {})", e.line(), e.column()),
            )]),
        }
    }
}

fn parse_entry(item: &Value, path: &str) -> Result<(String, Option<UnixTime>), JwksError> {
    let check = |s: &str| -> Result<String, JwksError> {
        if s.is_empty() || s.len() > MAX_VALUE_BYTES {
            Err(JwksError::new(
                path,
                format!("a value is 1-{MAX_VALUE_BYTES} bytes"),
            ))
        } else {
            Ok(s.to_string())
        }
    };
    match item {
        Value::String(s) => Ok((check(s)?, None)),
        Value::Object(map) => {
            let mut value = None;
            let mut expires = None;
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("value", Value::String(s)) => value = Some(check(s)?),
                    ("expires", Value::String(s)) => match parse_rfc3339(s) {
                        Some(t) => expires = Some(t),
                        None => {
                            return Err(JwksError::new(
                                format!("{path}.expires"),
                                "not an RFC 3339 timestamp",
                            ))
                        }
                    },
                    ("value" | "expires", _) => {
                        return Err(JwksError::new(format!("{path}.{k}"), "must be a string"))
                    }
                    _ => {
                        return Err(JwksError::new(
                            format!("{path}.{k}"),
                            "unknown field (expected \"value\" and \"expires\")",
                        ))
                    }
                }
            }
            match value {
                Some(v) => Ok((v, expires)),
                None => Err(JwksError::new(path, "an entry needs \"value\"")),
            }
        }
        _ => Err(JwksError::new(
            path,
            "an entry is a string or {\"value\": ..., \"expires\": ...}",
        )),
    }
}

/// The compiled revocation configuration: the inline list and an optional remote one.
#[derive(Debug, Default)]
pub struct RevocationConfig {
    pub list: RevocationList,
    pub remote: Option<RemoteSource>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    #[test]
    fn entries_revoke_until_they_expire() {
        let list = RevocationList::parse(&json!({
            "jtis": ["j1", {"value": "j2", "expires": "2027-01-15T08:00:00Z"}],
            "subjects": ["alice"],
            "key_ids": [{"value": "k1"}]
        }))
        .unwrap();
        let j2_expiry = parse_rfc3339("2027-01-15T08:00:00Z").unwrap();
        let cases = [
            (Some("j1"), None, NOW, true),
            (Some("j2"), None, UnixTime(j2_expiry.0 - 1), true),
            (Some("j2"), None, j2_expiry, false),
            (Some("j3"), None, NOW, false),
            (None, Some("alice"), NOW, true),
            (Some("j3"), Some("alice"), NOW, true),
            (Some("alice"), None, NOW, false), // lists do not leak into each other
            (None, None, NOW, false),
        ];
        for (jti, sub, now, revoked) in cases {
            assert_eq!(
                list.revokes_token(jti, sub, now),
                revoked,
                "{jti:?} {sub:?}"
            );
        }
        assert!(list.revokes_key("k1", NOW));
        assert!(!list.revokes_key("j1", NOW));
        assert_eq!(list.len(), 4);
    }

    #[test]
    fn merge_keeps_the_longer_revocation() {
        let a = RevocationList::parse(
            &json!({"jtis": [{"value": "x", "expires": "2027-01-01T00:00:00Z"}, "y"]}),
        )
        .unwrap();
        let b = RevocationList::parse(&json!({"jtis": [{"value": "x", "expires": "2028-01-01T00:00:00Z"}, {"value": "y", "expires": "2027-01-01T00:00:00Z"}], "subjects": ["s"]})).unwrap();
        let m = a.merged(&b);
        let t2027 = parse_rfc3339("2027-06-01T00:00:00Z").unwrap();
        assert!(m.revokes_token(Some("x"), None, t2027));
        assert!(m.revokes_token(Some("y"), None, UnixTime(4_000_000_000)));
        assert!(m.revokes_token(None, Some("s"), NOW));
        assert!(!a.revokes_token(None, Some("s"), NOW));
    }

    #[test]
    fn bad_documents_name_every_problem_by_path() {
        let cases = [
            (json!([]), vec![""]),
            (json!({"jti": []}), vec!["jti"]),
            (json!({"jtis": "x"}), vec!["jtis"]),
            (
                json!({"jtis": [1, ""], "subjects": [{"expires": "2027-01-01T00:00:00Z"}]}),
                vec!["jtis[0]", "jtis[1]", "subjects[0]"],
            ),
            (
                json!({"key_ids": [{"value": "k", "expires": "tomorrow"}]}),
                vec!["key_ids[0].expires"],
            ),
            (
                json!({"key_ids": [{"value": "k", "until": "x"}]}),
                vec!["key_ids[0].until"],
            ),
        ];
        for (doc, paths) in cases {
            let errors = RevocationList::parse(&doc).unwrap_err();
            let got: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(got, paths, "{doc}");
        }
        assert!(RevocationList::parse_bytes(b"{not json").is_err());
        assert!(RevocationList::parse_bytes(b"{}").unwrap().is_empty());
        assert!(RevocationList::parse(&json!({"jtis": null}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn oversized_lists_are_refused_whole() {
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("j{i}")).collect();
        assert!(RevocationList::parse(&json!({ "jtis": many })).is_err());
    }
}
