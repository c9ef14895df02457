//! Policy checks on a verified token's claims (scopes, claim rules) and claim forwarding.
//!
//! Issuer, audience and times are checked in `verify` (they decide whether the token is valid
//! at all); what lives here decides whether a valid token may do this request.

use serde_json::Value;

use super::verify::VerifiedToken;

/// Longest claim value forwarded to the upstream as a header.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;

/// A policy's `claims` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimRule {
    /// The claim equals the value (JSON equality: `"1"` is not `1`).
    Equals { claim: String, value: Value },
    /// The claim equals one of the values.
    OneOf { claim: String, values: Vec<Value> },
    /// The claim is an array containing the value, or a string containing the value as a
    /// space-delimited word (the `scope` convention).
    Contains { claim: String, value: Value },
}

impl ClaimRule {
    /// Whether the rule holds; a missing claim never satisfies a rule.
    pub fn holds(&self, token: &VerifiedToken) -> bool {
        match self {
            ClaimRule::Equals { claim, value } => token.claims.get(claim) == Some(value),
            ClaimRule::OneOf { claim, values } => token
                .claims
                .get(claim)
                .is_some_and(|c| values.iter().any(|v| v == c)),
            ClaimRule::Contains { claim, value } => match (token.claims.get(claim), value) {
                (Some(Value::Array(items)), v) => items.iter().any(|i| i == v),
                (Some(Value::String(s)), Value::String(word)) => {
                    !word.is_empty() && s.split(' ').any(|w| w == word)
                }
                _ => false,
            },
        }
    }
}

/// Whether the token grants every required scope.
pub fn has_scopes(token: &VerifiedToken, required: &[String]) -> bool {
    required.iter().all(|r| token.scopes.iter().any(|s| s == r))
}

/// Header-safe: visible ASCII or space. No control characters (CR/LF would split headers), no
/// bytes >= 0x80 (proxies disagree on their meaning).
fn header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// A claim rendered for an upstream header: strings verbatim if every byte is visible ASCII or
/// space and len <= 1024; numbers and booleans as JSON text; arrays of such strings joined
/// with ","; anything else (objects, null, mixed or empty arrays, too long) `None`.
pub fn claim_header_value(token: &VerifiedToken, claim: &str) -> Option<String> {
    let value = match token.claims.get(claim)? {
        Value::String(s) => (header_safe(s)).then(|| s.clone()),
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        Value::Array(items) if !items.is_empty() => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                let s = item.as_str().filter(|s| header_safe(s))?;
                if i > 0 {
                    out.push(',');
                }
                out.push_str(s);
                if out.len() > MAX_HEADER_VALUE_BYTES {
                    return None;
                }
            }
            Some(out)
        }
        _ => None,
    }?;
    (value.len() <= MAX_HEADER_VALUE_BYTES).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: Value) -> VerifiedToken {
        VerifiedToken {
            subject: None,
            jti: None,
            expires_at: None,
            scopes: vec!["read".into(), "write".into()],
            claims: claims.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn claim_rule_table() {
        let t = token(json!({
            "tier": "gold", "level": 3, "org": "a", "roles": ["admin", "dev"],
            "groups": "eng ops", "flag": true, "nested": {"a": 1}, "n": null
        }));
        let eq = |c: &str, v: Value| ClaimRule::Equals {
            claim: c.into(),
            value: v,
        };
        let one = |c: &str, v: Vec<Value>| ClaimRule::OneOf {
            claim: c.into(),
            values: v,
        };
        let has = |c: &str, v: Value| ClaimRule::Contains {
            claim: c.into(),
            value: v,
        };
        let cases: Vec<(ClaimRule, bool, &str)> = vec![
            (eq("tier", json!("gold")), true, "string equal"),
            (eq("tier", json!("Gold")), false, "case-sensitive"),
            (eq("level", json!(3)), true, "number equal"),
            (eq("level", json!("3")), false, "no type coercion"),
            (eq("flag", json!(true)), true, "boolean"),
            (eq("nested", json!({"a": 1})), true, "object equality"),
            (
                eq("missing", json!(null)),
                false,
                "missing claim never equals, even null",
            ),
            (eq("n", json!(null)), true, "explicit null equals null"),
            (one("org", vec![json!("a"), json!("b")]), true, "one of"),
            (one("org", vec![json!("b"), json!("c")]), false, "none of"),
            (one("org", vec![]), false, "empty list"),
            (one("missing", vec![json!("a")]), false, "missing claim"),
            (has("roles", json!("admin")), true, "array contains"),
            (
                has("roles", json!("adm")),
                false,
                "no substring match in arrays",
            ),
            (has("groups", json!("ops")), true, "space-delimited word"),
            (
                has("groups", json!("op")),
                false,
                "no substring match in words",
            ),
            (
                has("groups", json!("eng ops")),
                false,
                "a value with a space is not one word",
            ),
            (has("groups", json!("")), false, "empty word"),
            (has("tier", json!("gold")), true, "single-word string"),
            (has("level", json!(3)), false, "number is not a container"),
            (
                has("roles", json!(["admin"])),
                false,
                "array value is not an element",
            ),
            (has("missing", json!("x")), false, "missing claim"),
        ];
        for (rule, want, why) in cases {
            assert_eq!(rule.holds(&t), want, "{why}");
        }
    }

    #[test]
    fn has_scopes_table() {
        let t = token(json!({}));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases: Vec<(Vec<String>, bool, &str)> = vec![
            (s(&[]), true, "nothing required"),
            (s(&["read"]), true, "one granted"),
            (s(&["read", "write"]), true, "all granted"),
            (s(&["read", "admin"]), false, "one missing"),
            (s(&["rea"]), false, "no prefix match"),
            (s(&["READ"]), false, "case-sensitive"),
        ];
        for (required, want, why) in cases {
            assert_eq!(has_scopes(&t, &required), want, "{why}");
        }
    }

    #[test]
    fn claim_header_value_table() {
        let long = "x".repeat(MAX_HEADER_VALUE_BYTES);
        let t = token(json!({
            "sub": "user-1", "name": "Ada Lovelace", "n": 42, "f": 1.5, "b": false,
            "roles": ["admin", "dev"], "crlf": "a\r\nx-injected: 1", "tab": "a\tb",
            "utf8": "caf\u{e9}", "obj": {"a": 1}, "null": null, "mixed": ["a", 1],
            "empty": [], "long": long, "too_long": format!("{long}x"),
            "long_list": [long, "y"], "bad_item": ["ok", "new\nline"], "empty_str": ""
        }));
        let cases: Vec<(&str, Option<&str>, &str)> = vec![
            ("sub", Some("user-1"), "string verbatim"),
            ("name", Some("Ada Lovelace"), "space allowed"),
            ("n", Some("42"), "integer as JSON"),
            ("f", Some("1.5"), "float as JSON"),
            ("b", Some("false"), "boolean as JSON"),
            ("roles", Some("admin,dev"), "array joined"),
            ("crlf", None, "header injection refused"),
            ("tab", None, "control character"),
            ("utf8", None, "non-ASCII"),
            ("obj", None, "object"),
            ("null", None, "null"),
            ("mixed", None, "array with a non-string"),
            ("empty", None, "empty array: nothing to forward"),
            ("long", Some(long.as_str()), "exactly the limit"),
            ("too_long", None, "over the limit"),
            ("long_list", None, "joined value over the limit"),
            ("bad_item", None, "one unsafe element"),
            ("empty_str", Some(""), "empty string verbatim"),
            ("missing", None, "absent claim"),
        ];
        for (claim, want, why) in cases {
            assert_eq!(claim_header_value(&t, claim).as_deref(), want, "{why}");
        }
    }
}
