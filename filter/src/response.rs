//! The single place that maps rejections to HTTP responses: status, headers and a JSON body with
//! a stable machine-readable code. Nothing from the request is echoed except a sanitised request id.

use crate::jwt::TokenProblem;
use crate::rejection::Rejection;

/// A local reply for the adapter to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Realm sent in `www-authenticate` challenges.
pub const REALM: &str = "api-guard";

/// (status, client-facing code, message)
fn describe(rejection: &Rejection<'_>) -> (u32, &'static str, &'static str) {
    match rejection {
        Rejection::NoPolicy | Rejection::UnknownPolicy => (
            403,
            "route_forbidden",
            "This route is not open to requests.",
        ),
        Rejection::UriTooLong => (414, "uri_too_long", "The request URI is too long."),
        Rejection::HeadersTooLarge => (
            431,
            "headers_too_large",
            "The request headers are too large.",
        ),
        Rejection::MethodNotAllowed { .. } => (
            405,
            "method_not_allowed",
            "This method is not allowed on this route.",
        ),
        Rejection::IpDenied | Rejection::ClientIpUnknown => (
            403,
            "ip_forbidden",
            "Requests from this address are not allowed.",
        ),
        Rejection::ApiKeyMissing => (401, "api_key_missing", "An API key is required."),
        Rejection::ApiKeyAmbiguous => (
            400,
            "api_key_ambiguous",
            "The request carries more than one API key.",
        ),
        Rejection::ApiKeyInvalid { .. } => (401, "api_key_invalid", "The API key is not valid."),
        Rejection::ClientNotAllowed { .. } => (
            403,
            "client_forbidden",
            "This client is not allowed on this route.",
        ),
        Rejection::ClientCertificateMissing => (
            403,
            "client_certificate_required",
            "A client certificate is required.",
        ),
        Rejection::ClientCertificateUnknown => (
            403,
            "client_certificate_forbidden",
            "This client certificate is not allowed on this route.",
        ),
        Rejection::HostFailure => (500, "internal_error", "The request could not be checked."),
        Rejection::RateLimited(_) => (
            429,
            "rate_limited",
            "Too many requests; retry after the time in the retry-after header.",
        ),
        Rejection::RateLimitUnavailable => (
            503,
            "rate_limit_unavailable",
            "The request could not be checked against its rate limits; retry later.",
        ),
        Rejection::Token { problem, .. } => match problem {
            TokenProblem::Missing => (401, "token_missing", "A bearer token is required."),
            TokenProblem::Ambiguous => (
                400,
                "token_ambiguous",
                "The request carries more than one token.",
            ),
            TokenProblem::InsufficientScope => (
                403,
                "insufficient_scope",
                "The token does not grant the scope this route requires.",
            ),
            TokenProblem::ClaimMismatch => (
                403,
                "token_forbidden",
                "The token's claims do not allow this route.",
            ),
            // Every other problem looks the same from outside: which check failed (signature,
            // key, expiry, revocation) is in the metrics and logs, not in the answer.
            _ => (401, "invalid_token", "The bearer token is not valid."),
        },
        Rejection::KeysUnavailable { .. } => (
            503,
            "jwks_unavailable",
            "The token issuer's keys are not available yet; retry shortly.",
        ),
        Rejection::KeysStale { .. } => (
            503,
            "jwks_stale",
            "The token issuer's keys could not be refreshed; retry later.",
        ),
        Rejection::Payload(p) => (u32::from(p.status()), p.code(), payload_message(p)),
        // The class is the code; what matched, and where, stays in the logs (rule id and
        // location), never in the answer.
        Rejection::Blocked(d) => (
            403,
            crate::rejection::Reason::blocked(d.class).as_str(),
            "The request was blocked by the API gateway's screening.",
        ),
        Rejection::IntrospectionInactive => {
            (401, "invalid_token", "The bearer token is not valid.")
        }
        Rejection::AuthServiceUnavailable { .. } => (
            503,
            "auth_unavailable",
            "The credential could not be checked right now; retry after the time in the retry-after header.",
        ),
    }
}

fn payload_message(p: &crate::payload::PayloadProblem<'_>) -> &'static str {
    use crate::payload::PayloadProblem as P;
    match p {
        P::BodyTooLarge => "The request body is too large.",
        P::UnsupportedMediaType => "This content type is not accepted here.",
        P::UnsupportedContentEncoding => "Send this body without a content-encoding.",
        P::MalformedJson => "The request body is not well-formed JSON.",
        P::MalformedMultipart => "The multipart/form-data body is not well-formed.",
        P::MalformedXml => "The XML body is not well-formed or uses a DOCTYPE.",
        P::DuplicateKey => "The JSON body repeats a member name.",
        P::JsonLimits(_) => "The JSON body exceeds a structural limit (see `keyword`).",
        P::SchemaViolation { .. } => {
            "The JSON body does not match the schema (see `pointer` and `keyword`)."
        }
        P::MissingParameter { .. } => "A required parameter is missing (see `parameter`).",
        P::ForbiddenParameter { .. } => {
            "A parameter that is not allowed here is present (see `parameter`)."
        }
        P::InvalidParameter { .. } => {
            "A parameter value is not valid (see `parameter` and `keyword`)."
        }
    }
}

/// Request ids are echoed (in bodies and log lines) only when they look like ids; anything else
/// is dropped, so neither can carry attacker-chosen text such as a forged `key=value` log field.
pub fn sanitize_request_id(id: Option<&[u8]>) -> Option<&str> {
    let id = id?;
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        std::str::from_utf8(id).ok()
    } else {
        None
    }
}

/// `retry-after` and the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11,
/// Structured Field lists): `RateLimit-Policy: "<limit>";q=<burst>;w=<seconds to refill it>`
/// and `RateLimit: "<limit>";r=0;t=<seconds until the bucket is full again>`. Limit names are
/// `[A-Za-z0-9_-]`, so they are valid sf-strings without escaping.
pub fn rate_limit_headers(l: &crate::rejection::Limited<'_>) -> [(&'static str, String); 3] {
    [
        ("retry-after", l.retry_after_secs.to_string()),
        (
            "ratelimit-policy",
            format!("\"{}\";q={};w={}", l.limit, l.quota, l.window_secs),
        ),
        (
            "ratelimit",
            format!("\"{}\";r=0;t={}", l.limit, l.reset_secs),
        ),
    ]
}

pub fn render(rejection: &Rejection<'_>, request_id: Option<&[u8]>) -> LocalResponse {
    let (status, code, message) = describe(rejection);
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("cache-control", "no-store".to_string()),
    ];
    match rejection {
        Rejection::ApiKeyMissing | Rejection::ApiKeyInvalid { .. } => {
            headers.push(("www-authenticate", format!("ApiKey realm=\"{REALM}\"")));
        }
        Rejection::MethodNotAllowed { allow } => headers.push(("allow", allow.to_string())),
        // RFC 7694 §3: the codings the server accepts in requests.
        Rejection::Payload(crate::payload::PayloadProblem::UnsupportedContentEncoding) => {
            headers.push(("accept-encoding", "identity".to_string()))
        }
        Rejection::RateLimited(l) => headers.extend(rate_limit_headers(l)),
        Rejection::Token { problem, .. } => {
            let challenge = match problem {
                TokenProblem::Missing => format!("Bearer realm=\"{REALM}\""),
                TokenProblem::Ambiguous => {
                    format!("Bearer realm=\"{REALM}\", error=\"invalid_request\"")
                }
                TokenProblem::InsufficientScope | TokenProblem::ClaimMismatch => {
                    format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\"")
                }
                _ => format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
            };
            headers.push(("www-authenticate", challenge));
        }
        Rejection::KeysUnavailable { .. } => headers.push((
            "retry-after",
            crate::remote::UNAVAILABLE_RETRY_AFTER_SECS.to_string(),
        )),
        Rejection::KeysStale { .. } => headers.push(("retry-after", "30".to_string())),
        Rejection::IntrospectionInactive => headers.push((
            "www-authenticate",
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
        )),
        Rejection::AuthServiceUnavailable { retry_after } => {
            headers.push(("retry-after", retry_after.to_string()))
        }
        _ => {}
    }
    let mut body = serde_json::json!({
        "error": code,
        "message": message,
        "request_id": sanitize_request_id(request_id),
    });
    // Where a payload problem is, never what the offending value was: a JSON pointer (member
    // names come from the body; serde_json escapes them), the keyword or limit, the
    // configured parameter name.
    if let (Rejection::Payload(p), Some(map)) = (rejection, body.as_object_mut()) {
        if let Some(pointer) = p.pointer() {
            map.insert("pointer".into(), pointer.into());
        }
        if let Some(keyword) = p.keyword() {
            map.insert("keyword".into(), keyword.into());
        }
        if let Some(parameter) = p.parameter() {
            map.insert("parameter".into(), parameter.into());
        }
    }
    let body = body.to_string();
    LocalResponse {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rejection::KeyProblem;

    #[test]
    fn response_table() {
        type Case<'a> = (Rejection<'a>, u32, &'a str, Option<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (Rejection::NoPolicy, 403, "route_forbidden", None),
            (Rejection::UnknownPolicy, 403, "route_forbidden", None),
            (Rejection::UriTooLong, 414, "uri_too_long", None),
            (Rejection::HeadersTooLarge, 431, "headers_too_large", None),
            (
                Rejection::MethodNotAllowed { allow: "GET, HEAD" },
                405,
                "method_not_allowed",
                Some(("allow", "GET, HEAD")),
            ),
            (Rejection::IpDenied, 403, "ip_forbidden", None),
            (
                Rejection::ClientCertificateMissing,
                403,
                "client_certificate_required",
                None,
            ),
            (
                Rejection::ClientCertificateUnknown,
                403,
                "client_certificate_forbidden",
                None,
            ),
            (Rejection::ClientIpUnknown, 403, "ip_forbidden", None),
            (
                Rejection::ApiKeyMissing,
                401,
                "api_key_missing",
                Some(("www-authenticate", "ApiKey realm=\"api-guard\"")),
            ),
            (Rejection::ApiKeyAmbiguous, 400, "api_key_ambiguous", None),
            (
                Rejection::ApiKeyInvalid {
                    problem: KeyProblem::Expired,
                    key_id: Some("k-1"),
                },
                401,
                "api_key_invalid",
                Some(("www-authenticate", "ApiKey realm=\"api-guard\"")),
            ),
            (
                Rejection::ClientNotAllowed {
                    client_id: "c",
                    key_id: "k",
                },
                403,
                "client_forbidden",
                None,
            ),
            (Rejection::HostFailure, 500, "internal_error", None),
            (
                Rejection::RateLimited(crate::rejection::Limited {
                    limit: "burst",
                    quota: 20,
                    window_secs: 2,
                    retry_after_secs: 1,
                    reset_secs: 2,
                }),
                429,
                "rate_limited",
                Some(("ratelimit-policy", "\"burst\";q=20;w=2")),
            ),
            (
                Rejection::RateLimitUnavailable,
                503,
                "rate_limit_unavailable",
                None,
            ),
            (
                Rejection::ApiKeyInvalid {
                    problem: KeyProblem::Revoked,
                    key_id: Some("k-1"),
                },
                401,
                "api_key_invalid",
                Some(("www-authenticate", "ApiKey realm=\"api-guard\"")),
            ),
            (
                Rejection::Token {
                    problem: TokenProblem::Missing,
                    provider: None,
                },
                401,
                "token_missing",
                Some(("www-authenticate", "Bearer realm=\"api-guard\"")),
            ),
            (
                Rejection::KeysUnavailable { provider: "corp" },
                503,
                "jwks_unavailable",
                Some(("retry-after", "2")),
            ),
            (
                Rejection::KeysStale { provider: "corp" },
                503,
                "jwks_stale",
                Some(("retry-after", "30")),
            ),
        ];
        for (rejection, status, code, header) in cases {
            let r = render(&rejection, Some(b"abc-123"));
            assert_eq!(r.status, status, "{rejection:?}");
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], code);
            assert_eq!(body["request_id"], "abc-123");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(r
                .headers
                .contains(&("content-type", "application/json".to_string())));
            if let Some((name, value)) = header {
                assert!(
                    r.headers.contains(&(name, value.to_string())),
                    "{rejection:?} {:?}",
                    r.headers
                );
            }
            // Key ids and client ids are for logs, not for clients.
            assert!(!r.body.contains("k-1"));
        }
    }

    /// Every token problem and key-set state: status, client code, and the exact
    /// `www-authenticate` / `retry-after` (absent where `None`). Which check failed is never
    /// visible to the client beyond these classes, and the provider name is not echoed.
    #[test]
    fn jwt_response_table() {
        const INVALID: &str = "Bearer realm=\"api-guard\", error=\"invalid_token\"";
        const SCOPE: &str = "Bearer realm=\"api-guard\", error=\"insufficient_scope\"";
        let token = |problem| Rejection::Token {
            problem,
            provider: Some("secret-provider-name"),
        };
        type Case<'a> = (
            Rejection<'a>,
            u32,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let mut cases: Vec<Case> = vec![
            (
                token(TokenProblem::Missing),
                401,
                "token_missing",
                Some("Bearer realm=\"api-guard\""),
                None,
            ),
            (
                token(TokenProblem::Ambiguous),
                400,
                "token_ambiguous",
                Some("Bearer realm=\"api-guard\", error=\"invalid_request\""),
                None,
            ),
            (
                token(TokenProblem::InsufficientScope),
                403,
                "insufficient_scope",
                Some(SCOPE),
                None,
            ),
            (
                token(TokenProblem::ClaimMismatch),
                403,
                "token_forbidden",
                Some(SCOPE),
                None,
            ),
            (
                Rejection::KeysUnavailable {
                    provider: "secret-provider-name",
                },
                503,
                "jwks_unavailable",
                None,
                Some("2"),
            ),
            (
                Rejection::KeysStale {
                    provider: "secret-provider-name",
                },
                503,
                "jwks_stale",
                None,
                Some("30"),
            ),
            (
                Rejection::ApiKeyInvalid {
                    problem: KeyProblem::Revoked,
                    key_id: Some("k-1"),
                },
                401,
                "api_key_invalid",
                Some("ApiKey realm=\"api-guard\""),
                None,
            ),
        ];
        // Every other problem is one class from outside: 401 invalid_token.
        let special = [
            TokenProblem::Missing,
            TokenProblem::Ambiguous,
            TokenProblem::InsufficientScope,
            TokenProblem::ClaimMismatch,
        ];
        for p in TokenProblem::ALL
            .into_iter()
            .filter(|p| !special.contains(p))
        {
            cases.push((token(p), 401, "invalid_token", Some(INVALID), None));
        }
        assert_eq!(cases.len(), TokenProblem::ALL.len() + 3);
        for (rejection, status, code, challenge, retry) in cases {
            let r = render(&rejection, None);
            let h = |n: &str| {
                let all: Vec<&str> = r
                    .headers
                    .iter()
                    .filter(|(k, _)| *k == n)
                    .map(|(_, v)| v.as_str())
                    .collect();
                assert!(all.len() <= 1, "{n} twice: {rejection:?}");
                all.first().copied()
            };
            assert_eq!(r.status, status, "{rejection:?}");
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], code, "{rejection:?}");
            assert_eq!(h("www-authenticate"), challenge, "{rejection:?}");
            assert_eq!(h("retry-after"), retry, "{rejection:?}");
            assert_eq!(h("cache-control"), Some("no-store"));
            assert!(!r.body.contains("secret-provider-name") && !r.body.contains("k-1"));
        }
    }

    #[test]
    fn rate_limited_headers() {
        let r = render(
            &Rejection::RateLimited(crate::rejection::Limited {
                limit: "per_hour",
                quota: 1000,
                window_secs: 3600,
                retry_after_secs: 4,
                reset_secs: 3600,
            }),
            None,
        );
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("retry-after"), Some("4"));
        assert_eq!(h("ratelimit-policy"), Some("\"per_hour\";q=1000;w=3600"));
        assert_eq!(h("ratelimit"), Some("\"per_hour\";r=0;t=3600"));
        assert_eq!(h("cache-control"), Some("no-store"));
    }

    #[test]
    fn request_id_is_sanitised() {
        let body = |id: Option<&[u8]>| -> serde_json::Value {
            serde_json::from_str(&render(&Rejection::IpDenied, id).body).unwrap()
        };
        assert_eq!(
            body(Some(b"0f1e-22")),
            serde_json::json!({"error":"ip_forbidden","message":"Requests from this address are not allowed.","request_id":"0f1e-22"})
        );
        for bad in [&b""[..], b"<script>", b"a b", &[0xff], &[b'a'; 129]] {
            assert_eq!(
                body(Some(bad))["request_id"],
                serde_json::Value::Null,
                "{bad:?}"
            );
        }
        assert_eq!(body(None)["request_id"], serde_json::Value::Null);
    }
}
