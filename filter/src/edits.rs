//! What an admitted request looks like when it goes upstream: the header edits, computed here
//! (pure) and applied by the host adapter while the headers are still held.
//!
//! Identity headers come only from api-guard. Every request that passes through the filter,
//! whatever its policy (pass-through routes and `unmatched_routes: allow` included), loses every
//! client-sent copy of a header api-guard can set — the configured client and key id headers,
//! the subject header, every forwarded-claim header — and every header under api-guard's reserved
//! prefix `x-api-guard-`, set or not by this configuration. The ones the admission sets replace
//! them. A route with the filter disabled needs Envoy's `request_headers_to_remove` instead.

use std::borrow::Cow;

use crate::checks::api_key::CredentialLocation;
use crate::jwt::source::TokenLocation;
use crate::policy::Guard;
use crate::request::{path_without_param, Headers};
use crate::verdict::Admission;

/// Headers under this prefix are api-guard's: never forwarded as a client sent them.
pub const RESERVED_PREFIX: &str = "x-api-guard-";

/// One edit of the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    Remove(&'a str),
    /// Replaces every copy of the header.
    Set(&'a str, Cow<'a, str>),
}

/// Every header name api-guard can set under this configuration, lowercase, sorted (computed
/// once at configure time).
pub fn identity_header_names(guard: &Guard) -> Vec<String> {
    let mut out: Vec<String> = guard
        .jwt_providers
        .iter()
        .flat_map(|p| p.forward_claims.iter().map(|(_, h)| h.to_ascii_lowercase()))
        .chain([
            guard.identity_headers.client_id.to_ascii_lowercase(),
            guard.identity_headers.key_id.to_ascii_lowercase(),
            guard.identity_headers.tier.to_ascii_lowercase(),
            crate::config::DEFAULT_SUBJECT_HEADER.to_string(),
        ])
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The edits that make the request what the upstream may see: client copies of identity
/// headers removed, the established identity set, the credential stripped if the policy says
/// so. `headers` are the request's (Envoy gives lowercase names); `identity_names` is
/// [`identity_header_names`] of the same guard.
pub fn header_edits<'a>(
    guard: &'a Guard,
    identity_names: &'a [String],
    headers: Headers<'a>,
    admission: &'a Admission<'a>,
) -> Vec<HeaderEdit<'a>> {
    let identity = &guard.identity_headers;
    let mut sets: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
    if let Some((client_id, key_id)) = admission.identity {
        sets.push((identity.client_id.as_str(), Cow::Borrowed(client_id)));
        sets.push((identity.key_id.as_str(), Cow::Borrowed(key_id)));
    }
    if let Some(token) = &admission.token {
        for (header, value) in &token.forward {
            sets.push((header, Cow::Borrowed(value.as_str())));
        }
    }
    // After the JWT's claims: the service's (or remote key list's) word on who the caller is.
    if let Some(who) = &admission.introspected {
        if let Some(client) = &who.client_id {
            sets.push((identity.client_id.as_str(), Cow::Borrowed(client.as_str())));
        }
        if let Some(subject) = &who.subject {
            sets.push((
                crate::config::DEFAULT_SUBJECT_HEADER,
                Cow::Borrowed(subject.as_str()),
            ));
        }
        if let Some(key_id) = &who.key_id {
            sets.push((identity.key_id.as_str(), Cow::Borrowed(key_id.as_str())));
        }
    }
    // The rate-limit tier the caller matched, for Envoy's global rate limit descriptors.
    if let Some(tier) = admission.tier {
        sets.push((identity.tier.as_str(), Cow::Borrowed(tier)));
    }
    let mut edits = Vec::new();
    // Host calls are the main per-request cost: remove only what the request carries, once, and
    // not what a set replaces anyway.
    for (name, _) in headers {
        let reserved = name.starts_with(RESERVED_PREFIX)
            || identity_names
                .binary_search_by(|n| n.as_str().cmp(name))
                .is_ok();
        let set_later = sets.iter().any(|(h, _)| h.eq_ignore_ascii_case(name));
        let removed = edits
            .iter()
            .any(|e| matches!(e, HeaderEdit::Remove(n) if *n == name));
        if reserved && !set_later && !removed {
            edits.push(HeaderEdit::Remove(name));
        }
    }
    // Later sets of the same header win (a set replaces every copy).
    for (i, (header, value)) in sets.iter().enumerate() {
        let overridden = sets
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .any(|(h, _)| h == header);
        if !overridden {
            edits.push(HeaderEdit::Set(header, value.clone()));
        }
    }
    credential_edits(admission, &mut edits);
    edits
}

/// Strips the credentials the policy says to strip. Both in the query: the token's parameter is
/// removed from the key-stripped path, so one `:path` write removes both.
fn credential_edits<'a>(admission: &'a Admission<'a>, edits: &mut Vec<HeaderEdit<'a>>) {
    let token_strip = admission.token.as_ref().and_then(|t| t.strip.as_ref());
    match (&admission.strip, token_strip) {
        (
            Some(CredentialLocation::Query { path_without_key }),
            Some(TokenLocation::Query { name, .. }),
        ) => {
            let both = path_without_param(path_without_key.as_bytes(), name);
            edits.push(HeaderEdit::Set(":path", Cow::Owned(both)));
            return;
        }
        (Some(CredentialLocation::Query { path_without_key }), _) => {
            edits.push(HeaderEdit::Set(":path", Cow::Borrowed(path_without_key)));
        }
        (Some(CredentialLocation::Header(name)), _) => edits.push(HeaderEdit::Remove(name)),
        (None, _) => {}
    }
    match token_strip {
        Some(TokenLocation::Header(name)) => edits.push(HeaderEdit::Remove(name)),
        Some(TokenLocation::Cookie { rest: Some(rest) }) => {
            edits.push(HeaderEdit::Set("cookie", Cow::Borrowed(rest)))
        }
        Some(TokenLocation::Cookie { rest: None }) => edits.push(HeaderEdit::Remove("cookie")),
        Some(TokenLocation::Query {
            path_without_token, ..
        }) => edits.push(HeaderEdit::Set(":path", Cow::Borrowed(path_without_token))),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::introspection::Introspected;
    use crate::config::compile;

    fn guard() -> Guard {
        let jwks = crate::jwt::verify::tests::fixture()["jwks"].clone();
        compile(
            serde_json::json!({
                "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"],
                    "jwks": jwks, "forward_claims": {"email": "x-user-email"}}},
                "policies": {"p": {}}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn headers(names: &[&str]) -> Vec<(String, Vec<u8>)> {
        names
            .iter()
            .map(|n| (n.to_string(), b"forged".to_vec()))
            .collect()
    }

    #[test]
    fn every_client_copy_of_an_identity_header_goes_whatever_the_policy() {
        let g = guard();
        let names = identity_header_names(&g);
        let h = headers(&[
            ":path",
            "x-api-guard-client-id",
            "x-api-guard-subject",
            "x-api-guard-tier",
            "x-user-email",
            "x-api-guard-client-id",
            "accept",
        ]);
        let admission = Admission::default();
        let edits = header_edits(&g, &names, crate::request::leaked_headers(&h), &admission);
        assert_eq!(
            edits,
            vec![
                HeaderEdit::Remove("x-api-guard-client-id"),
                HeaderEdit::Remove("x-api-guard-subject"),
                HeaderEdit::Remove("x-api-guard-tier"),
                HeaderEdit::Remove("x-user-email"),
            ]
        );
        // Nothing to remove: no host call at all.
        assert!(header_edits(
            &g,
            &names,
            crate::request::leaked_headers(&headers(&["accept"])),
            &admission
        )
        .is_empty());
    }

    #[test]
    fn the_rate_limit_tier_replaces_a_client_copy() {
        let g = guard();
        let names = identity_header_names(&g);
        assert!(names.iter().any(|n| n == "x-api-guard-tier"));
        let h = headers(&["x-api-guard-tier"]);
        let admission = Admission {
            tier: Some("gold"),
            ..Admission::default()
        };
        assert_eq!(
            header_edits(&g, &names, crate::request::leaked_headers(&h), &admission),
            vec![HeaderEdit::Set("x-api-guard-tier", Cow::Borrowed("gold"))]
        );
    }

    #[test]
    fn set_headers_replace_client_copies_and_the_service_has_the_last_word() {
        let g = guard();
        let names = identity_header_names(&g);
        let h = headers(&["x-api-guard-client-id", "x-api-key"]);
        let admission = Admission {
            identity: Some(("acme", "acme-1")),
            strip: Some(CredentialLocation::Header("x-api-key")),
            introspected: Some(Introspected {
                subject: Some("alice".into()),
                client_id: Some("app1".into()),
                key_id: None,
            }),
            ..Admission::default()
        };
        let edits = header_edits(&g, &names, crate::request::leaked_headers(&h), &admission);
        assert_eq!(
            edits,
            vec![
                HeaderEdit::Set("x-api-guard-key-id", Cow::Borrowed("acme-1")),
                HeaderEdit::Set("x-api-guard-client-id", Cow::Borrowed("app1")),
                HeaderEdit::Set("x-api-guard-subject", Cow::Borrowed("alice")),
                HeaderEdit::Remove("x-api-key"),
            ]
        );
    }

    #[test]
    fn both_credentials_in_the_query_make_one_path_write() {
        let g = guard();
        let names = identity_header_names(&g);
        let admission = Admission {
            strip: Some(CredentialLocation::Query {
                path_without_key: "/a?t=tok&x=1".into(),
            }),
            token: Some(crate::checks::jwt::TokenAdmission {
                provider: crate::jwt::provider::ProviderId(0),
                subject: None,
                forward: vec![],
                limit_claims: vec![],
                strip: Some(TokenLocation::Query {
                    name: "t",
                    path_without_token: "/a?k=key&x=1".into(),
                }),
            }),
            ..Admission::default()
        };
        let edits = header_edits(&g, &names, Default::default(), &admission);
        assert_eq!(
            edits,
            vec![HeaderEdit::Set(":path", Cow::Borrowed("/a?x=1"))]
        );
    }
}
