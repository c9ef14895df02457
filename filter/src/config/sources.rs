//! Token sources (`sources` of a JWT provider and of the introspection service): one compiler
//! for both, so the two cannot drift apart.

use serde_json::Value;

use super::reader::{array, header_name, item, plain_name, string, ConfigErrors, Fields};
use crate::jwt::source::TokenSource;

/// At most this many token sources per JWT provider or introspection service.
pub const MAX_TOKEN_SOURCES: usize = 8;

/// Where a JWT provider or the introspection service finds its token (`sources`): the one
/// compiler of both. Each source is exactly one of `{"header", "scheme"?}`, `{"cookie"}`,
/// `{"query"}`; 1 to [`MAX_TOKEN_SOURCES`] of them, no duplicates. `authorization` without a
/// scheme means `Bearer` (it would otherwise take `Basic ...` for a token).
pub(crate) fn compile_token_sources(
    v: &Value,
    path: &str,
    errors: &mut ConfigErrors,
) -> Vec<TokenSource> {
    let items = array(v, path, errors).unwrap_or_default();
    if items.is_empty() && v.is_array() {
        errors.add(path, "list at least one token source, or omit the field");
    }
    if items.len() > MAX_TOKEN_SOURCES {
        errors.add(path, format!("at most {MAX_TOKEN_SOURCES} token sources"));
    }
    let mut out = Vec::new();
    for (i, item_value) in items.iter().enumerate().take(MAX_TOKEN_SOURCES) {
        let p = item(path, i);
        let Some(mut fields) = Fields::of(item_value, &p, errors) else {
            continue;
        };
        let given = ["header", "cookie", "query"]
            .iter()
            .filter(|k| fields.map_has(k))
            .count();
        let header = fields
            .take("header")
            .and_then(|(v, hp)| header_name(v, &hp, errors));
        let header_given = fields.map_has("header");
        let scheme_given = fields.map_has("scheme");
        let scheme = fields.take("scheme").and_then(|(v, sp)| {
            let s = string(v, &sp, errors)?;
            if s.is_empty()
                || s.len() > 64
                || !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            {
                errors.add(&sp, "not an authentication scheme name");
                return None;
            }
            Some(s.to_string())
        });
        let cookie = fields
            .take("cookie")
            .and_then(|(v, np)| plain_name(v, &np, errors));
        let query = fields
            .take("query")
            .and_then(|(v, np)| plain_name(v, &np, errors));
        fields.finish(errors);
        let scheme_without_header = scheme_given && !header_given;
        let source = match (header, cookie, query) {
            (Some(name), None, None) => {
                let scheme = match (name.as_str(), scheme) {
                    ("authorization", None) => Some("Bearer".to_string()),
                    (_, s) => s,
                };
                Some(TokenSource::Header { name, scheme })
            }
            (None, Some(c), None) if !scheme_without_header => Some(TokenSource::Cookie(c)),
            (None, None, Some(q)) if !scheme_without_header => Some(TokenSource::Query(q)),
            // The one field given was invalid: already reported at its path.
            _ if given == 1 && !scheme_without_header => None,
            _ => {
                errors.add(&p, "a token source is exactly one of {\"header\": ...} (with an optional \"scheme\"), {\"cookie\": ...}, {\"query\": ...}");
                None
            }
        };
        if let Some(s) = source {
            if out.contains(&s) {
                errors.add(&p, "duplicate token source");
            } else {
                out.push(s);
            }
        }
    }
    out
}
