//! Query-parameter and header rules: required names, forbidden names, and simple value rules
//! (`pattern`, `max_length`, `one_of`).
//!
//! Query parameters are read from `:path` after the first `?` (up to any `#`), split on `&`,
//! and both names and values are percent-decoded with `+` as a space (form encoding); a `%`
//! not followed by two hex digits stays literal, as browsers and most servers do. Headers are
//! matched by lowercase name on their raw values.
//!
//! - `required`: at least one occurrence with a non-empty value.
//! - `forbidden`: no occurrence at all (even empty, even `?debug` without `=`).
//! - `rules`: every occurrence must pass; `max_length` counts bytes of the decoded value,
//!   `pattern` is an unanchored `regex-lite` search on the value (a non-UTF-8 value fails it;
//!   see [`Pattern`]), `one_of` is an exact, case-sensitive match.

use super::pattern::Pattern;
use crate::config::reader::{child, field, object, ConfigErrors};
use crate::rejection::payload::PayloadProblem;
use crate::request::{percent_decode, query_pairs, RequestView};
use serde_json::Value;

pub use crate::rejection::payload::ParamKind;

/// Rules on one parameter's values.
#[derive(Debug)]
pub struct ValueRule {
    pub pattern: Option<Pattern>,
    pub max_length: Option<usize>,
    pub one_of: Option<Vec<String>>,
}

/// A compiled `query` or `headers` section.
#[derive(Debug)]
pub struct ParamRule {
    pub kind: ParamKind,
    pub required: Vec<String>,
    pub forbidden: Vec<String>,
    pub rules: Vec<(String, ValueRule)>,
}

impl ValueRule {
    /// The first rule `value` breaks, if any.
    fn broken(&self, value: &[u8]) -> Option<&'static str> {
        if self.max_length.is_some_and(|max| value.len() > max) {
            return Some("max_length");
        }
        if let Some(re) = &self.pattern {
            match std::str::from_utf8(value) {
                Ok(s) if re.is_match(s) => {}
                _ => return Some("pattern"),
            }
        }
        if let Some(options) = &self.one_of {
            if !options.iter().any(|o| o.as_bytes() == value) {
                return Some("one_of");
            }
        }
        None
    }
}

impl ParamRule {
    /// Checks the request: forbidden names first, then required ones, then value rules.
    pub fn check(&self, req: &RequestView<'_>) -> Result<(), PayloadProblem<'_>> {
        match self.kind {
            ParamKind::Query => self.check_query(req.path()),
            ParamKind::Header => self.check_headers(req),
        }
    }

    fn check_query(&self, path: &[u8]) -> Result<(), PayloadProblem<'_>> {
        let kind = ParamKind::Query;
        for (raw_name, _) in query_pairs(path) {
            let name = percent_decode(raw_name, true);
            if let Some(f) = self.forbidden.iter().find(|f| f.as_bytes() == &*name) {
                return Err(PayloadProblem::ForbiddenParameter { kind, name: f });
            }
        }
        for r in &self.required {
            let present = query_pairs(path).any(|(n, v)| {
                !v.is_empty()
                    && &*percent_decode(n, true) == r.as_bytes()
                    && !percent_decode(v, true).is_empty()
            });
            if !present {
                return Err(PayloadProblem::MissingParameter { kind, name: r });
            }
        }
        if self.rules.is_empty() {
            return Ok(());
        }
        for (raw_name, raw_value) in query_pairs(path) {
            let name = percent_decode(raw_name, true);
            if let Some((n, rule)) = self.rules.iter().find(|(n, _)| n.as_bytes() == &*name) {
                if let Some(broken) = rule.broken(&percent_decode(raw_value, true)) {
                    return Err(PayloadProblem::InvalidParameter {
                        kind,
                        name: n,
                        rule: broken,
                    });
                }
            }
        }
        Ok(())
    }

    fn check_headers(&self, req: &RequestView<'_>) -> Result<(), PayloadProblem<'_>> {
        let kind = ParamKind::Header;
        if let Some(f) = self.forbidden.iter().find(|f| req.header(f).is_some()) {
            return Err(PayloadProblem::ForbiddenParameter { kind, name: f });
        }
        for r in &self.required {
            if !req.headers.iter().any(|(n, v)| n == r && !v.is_empty()) {
                return Err(PayloadProblem::MissingParameter { kind, name: r });
            }
        }
        for (n, rule) in &self.rules {
            for value in req.headers.iter().filter(|(h, _)| h == n).map(|(_, v)| v) {
                if let Some(broken) = rule.broken(value) {
                    return Err(PayloadProblem::InvalidParameter {
                        kind,
                        name: n,
                        rule: broken,
                    });
                }
            }
        }
        Ok(())
    }
}

fn name(v: &Value, path: &str, kind: ParamKind, errs: &mut ConfigErrors) -> Option<String> {
    let Some(s) = v.as_str() else {
        errs.add(path, "expected a string");
        return None;
    };
    match kind {
        ParamKind::Query if s.is_empty() => {
            errs.add(path, "parameter names cannot be empty");
            None
        }
        ParamKind::Query => Some(s.to_string()),
        ParamKind::Header => {
            let token = !s.is_empty() && s.bytes().all(crate::request::is_tchar);
            if !token {
                errs.add(path, "not an HTTP header name");
                None
            } else if s.bytes().any(|c| c.is_ascii_uppercase()) {
                errs.add(
                    path,
                    "header names must be lowercase (Envoy lowercases them)",
                );
                None
            } else {
                Some(s.to_string())
            }
        }
    }
}

fn names(v: &Value, path: &str, kind: ParamKind, errs: &mut ConfigErrors) -> Vec<String> {
    let Value::Array(items) = v else {
        errs.add(path, "expected an array of names");
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(n) = name(item, &p, kind, errs) {
            if out.contains(&n) {
                errs.add(&p, "duplicate name");
            } else {
                out.push(n);
            }
        }
    }
    out
}

fn value_rule(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<ValueRule> {
    let map = object(v, path, &["pattern", "max_length", "one_of"], errs)?;
    let mut rule = ValueRule {
        pattern: None,
        max_length: None,
        one_of: None,
    };
    if let Some(p) = field(map, "pattern") {
        let pp = child(path, "pattern");
        match p.as_str().map(Pattern::new) {
            Some(Ok(re)) => rule.pattern = Some(re),
            Some(Err(e)) => errs.add(&pp, format!("invalid pattern: {e}")),
            None => errs.add(&pp, "expected a string"),
        }
    }
    if let Some(m) = field(map, "max_length") {
        match m.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) => rule.max_length = Some(n),
            None => errs.add(
                &child(path, "max_length"),
                "expected a non-negative whole number",
            ),
        }
    }
    if let Some(o) = field(map, "one_of") {
        let op = child(path, "one_of");
        match o {
            Value::Array(items) if !items.is_empty() => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => out.push(s.to_string()),
                        None => errs.add(&format!("{op}[{i}]"), "expected a string"),
                    }
                }
                rule.one_of = Some(out);
            }
            _ => errs.add(&op, "expected a non-empty array of strings"),
        }
    }
    if rule.pattern.is_none() && rule.max_length.is_none() && rule.one_of.is_none() {
        errs.add(path, "a rule needs pattern, max_length or one_of");
    }
    Some(rule)
}

/// Compiles a policy's `query` or `headers` section; `path` is its config path.
pub fn compile_params(v: &Value, path: &str, kind: ParamKind) -> Result<ParamRule, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let Some(map) = object(v, path, &["required", "forbidden", "rules"], &mut errs) else {
        return Err(errs);
    };
    let required = field(map, "required")
        .map(|v| names(v, &child(path, "required"), kind, &mut errs))
        .unwrap_or_default();
    let forbidden = field(map, "forbidden")
        .map(|v| names(v, &child(path, "forbidden"), kind, &mut errs))
        .unwrap_or_default();
    for (i, f) in forbidden.iter().enumerate() {
        if required.contains(f) {
            errs.add(
                &format!("{}[{i}]", child(path, "forbidden")),
                "also listed as required",
            );
        }
    }
    let mut rules = Vec::new();
    if let Some(r) = field(map, "rules") {
        let rp = child(path, "rules");
        match r {
            Value::Object(entries) => {
                for (n, rule) in entries {
                    let p = child(&rp, n);
                    let Some(checked) = name(&Value::String(n.clone()), &p, kind, &mut errs) else {
                        continue;
                    };
                    if forbidden.contains(&checked) {
                        errs.add(&p, "a forbidden name cannot have value rules");
                    }
                    if let Some(rule) = value_rule(rule, &p, &mut errs) {
                        rules.push((checked, rule));
                    }
                }
            }
            _ => errs.add(&rp, "expected an object keyed by name"),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ParamRule {
        kind,
        required,
        forbidden,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(headers: &[(String, Vec<u8>)]) -> RequestView<'_> {
        RequestView {
            headers: crate::request::leaked_headers(headers),
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        }
    }

    fn with_path(path: &str) -> Vec<(String, Vec<u8>)> {
        vec![(":path".to_string(), path.as_bytes().to_vec())]
    }

    #[test]
    fn query_table() {
        let rule = compile_params(
            &json!({
                "required": ["page"],
                "forbidden": ["debug"],
                "rules": {
                    "page": {"pattern": "^[0-9]{1,6}$", "max_length": 16},
                    "sort": {"one_of": ["asc", "desc"]},
                    "q": {"max_length": 3}
                }
            }),
            "query",
            ParamKind::Query,
        )
        .unwrap();
        // (path, expected code or None)
        let cases: &[(&str, Option<&str>)] = &[
            ("/a?page=1", None),
            ("/a?page=1&sort=asc", None),
            ("/a?sort=asc&page=123456", None),
            ("/a?page=%31%32", None),
            ("/a?page=1#frag", None),
            ("/a", Some("missing_parameter")),
            ("/a?page=", Some("missing_parameter")),
            ("/a?page", Some("missing_parameter")),
            ("/a?Page=1", Some("missing_parameter")),
            ("/a?page=1&debug", Some("forbidden_parameter")),
            ("/a?page=1&debug=0", Some("forbidden_parameter")),
            ("/a?page=1&%64ebug=1", Some("forbidden_parameter")),
            ("/a?page=x", Some("invalid_parameter")),
            ("/a?page=1234567", Some("invalid_parameter")),
            ("/a?page=1&page=x", Some("invalid_parameter")),
            ("/a?page=1&sort=ASC", Some("invalid_parameter")),
            ("/a?page=1&q=a+b+c", Some("invalid_parameter")),
            ("/a?page=1&q=a+b", None),
            ("/a?page=%ff", Some("invalid_parameter")),
        ];
        for (path, want) in cases {
            let h = with_path(path);
            let got = rule.check(&view(&h)).err().map(|p| p.code());
            assert_eq!(got, *want, "{path}");
        }
        let h = with_path("/a?page=x");
        let err = rule.check(&view(&h)).unwrap_err();
        assert_eq!(err.parameter(), Some("page"));
        assert_eq!(err.keyword(), Some("pattern"));
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn header_table() {
        let rule = compile_params(
            &json!({
                "required": ["x-tenant"],
                "forbidden": ["x-debug"],
                "rules": {"x-tenant": {"pattern": "^[a-z]+$", "max_length": 8}}
            }),
            "headers",
            ParamKind::Header,
        )
        .unwrap();
        let h = |pairs: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect()
        };
        type Headers = Vec<(String, Vec<u8>)>;
        let cases: Vec<(Headers, Option<&str>)> = vec![
            (h(&[("x-tenant", b"acme")]), None),
            (h(&[]), Some("missing_header")),
            (h(&[("x-tenant", b"")]), Some("missing_header")),
            (
                h(&[("x-tenant", b"acme"), ("x-debug", b"")]),
                Some("forbidden_header"),
            ),
            (h(&[("x-tenant", b"ACME")]), Some("invalid_header")),
            (h(&[("x-tenant", b"abcdefghi")]), Some("invalid_header")),
            (
                h(&[("x-tenant", b"acme"), ("x-tenant", b"b4d")]),
                Some("invalid_header"),
            ),
            (h(&[("x-tenant", b"\xff")]), Some("invalid_header")),
        ];
        for (headers, want) in cases {
            let got = rule.check(&view(&headers)).err().map(|p| p.code());
            assert_eq!(got, want, "{headers:?}");
        }
    }

    #[test]
    fn config_errors_name_their_path() {
        let cases = [
            (json!({"required": "page"}), ParamKind::Query, "q.required"),
            (json!({"required": [""]}), ParamKind::Query, "q.required[0]"),
            (
                json!({"required": ["X-A"]}),
                ParamKind::Header,
                "q.required[0]",
            ),
            (
                json!({"forbidden": ["a b"]}),
                ParamKind::Header,
                "q.forbidden[0]",
            ),
            (
                json!({"required": ["a"], "forbidden": ["a"]}),
                ParamKind::Query,
                "q.forbidden[0]",
            ),
            (
                json!({"rules": {"a": {"pattern": "("}}}),
                ParamKind::Query,
                "q.rules.a.pattern",
            ),
            (
                json!({"rules": {"a": {"max_lenght": 3}}}),
                ParamKind::Query,
                "q.rules.a.max_lenght",
            ),
            (json!({"rules": {"a": {}}}), ParamKind::Query, "q.rules.a"),
            (
                json!({"rules": {"a": {"one_of": []}}}),
                ParamKind::Query,
                "q.rules.a.one_of",
            ),
            (
                json!({"forbidden": ["a"], "rules": {"a": {"max_length": 1}}}),
                ParamKind::Query,
                "q.rules.a",
            ),
            (json!({"requird": []}), ParamKind::Query, "q.requird"),
            (json!([]), ParamKind::Query, "q"),
        ];
        for (v, kind, path) in cases {
            let errs = compile_params(&v, "q", kind).unwrap_err();
            assert!(errs.0.iter().any(|e| e.path == path), "{v}: {errs:?}");
        }
    }

    proptest::proptest! {
        // Query strings are attacker bytes: checking them must never panic.
        #[test]
        fn query_check_never_panics(path in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let rule = compile_params(
                &json!({"required": ["a"], "forbidden": ["b"], "rules": {"a": {"pattern": "x", "max_length": 4}}}),
                "q",
                ParamKind::Query,
            ).unwrap();
            let h = vec![(":path".to_string(), path)];
            let _ = rule.check(&view(&h));
        }
    }
}
