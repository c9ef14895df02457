//! Why a request was refused. Each variant has one stable [`Reason`] (metrics, logs) and one
//! response (see `response.rs`, the only place that turns rejections into HTTP answers).

pub mod finding;
pub mod limited;
pub mod payload;
pub mod token;

pub use limited::Limited;
pub use payload::{JsonLimit, ParamKind, PayloadProblem};
pub use token::{JwksError, TokenProblem};

/// What is wrong with a key that was found in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    Unknown,
    Expired,
    NotYetValid,
    Disabled,
    /// On the revocation list (configuration or remote).
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection<'g> {
    /// The route names no policy, there is no `default` policy, and unmatched routes are denied.
    NoPolicy,
    /// The route names a policy that the configuration does not define (fail closed).
    UnknownPolicy,
    UriTooLong,
    HeadersTooLarge,
    MethodNotAllowed {
        allow: &'g str,
    },
    IpDenied,
    /// The client address could not be read, so no IP rule can be satisfied.
    ClientIpUnknown,
    ApiKeyMissing,
    /// More than one credential in one request.
    ApiKeyAmbiguous,
    ApiKeyInvalid {
        problem: KeyProblem,
        key_id: Option<&'g str>,
    },
    /// The policy identifies clients by their TLS certificate and the connection has none.
    ClientCertificateMissing,
    /// A verified client certificate no identity of the policy's `mtls` rule matches.
    ClientCertificateUnknown,
    /// A valid key of a client this policy does not admit.
    ClientNotAllowed {
        client_id: &'g str,
        key_id: &'g str,
    },
    /// The host refused a call the decision depends on (reading headers, editing the request):
    /// fail closed rather than forward a request that was not fully checked or cleaned.
    HostFailure,
    /// An enforced rate limit has no room for this request.
    RateLimited(Limited<'g>),
    /// A rate limit's shared state could not be read or updated (store error, or every CAS
    /// retry met a concurrent writer) and the limit's `on_store_error` is `deny`.
    RateLimitUnavailable,
    /// A JWT (or the lack of one) that does not satisfy the policy.
    Token {
        problem: TokenProblem,
        /// The provider that judged the token, when one did.
        provider: Option<&'g str>,
    },
    /// The provider's remote JWKS has not been fetched since Envoy started: 503, retry soon.
    KeysUnavailable {
        provider: &'g str,
    },
    /// The provider's last good JWKS is older than its `max_stale_seconds`: fail closed.
    KeysStale {
        provider: &'g str,
    },
    /// Body size, content type, JSON shape or schema, or a query/header rule.
    Payload(PayloadProblem<'g>),
    /// The auth service says the credential is not active (unknown, revoked, expired).
    IntrospectionInactive,
    /// The auth service could not answer (down, slow, breaker open) and the policy fails closed.
    AuthServiceUnavailable {
        retry_after: u32,
    },
    /// Injection or bad-bot screening matched (policy in `block` mode).
    Blocked(finding::Detection),
}

/// The stable, fine-grained reason for a decision: metric name suffixes and log fields.
/// Clients see a coarser code (an expired key and an unknown key look the same from outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NoPolicy,
    UnknownPolicy,
    UriTooLong,
    HeadersTooLarge,
    MethodNotAllowed,
    IpDenied,
    ClientIpUnknown,
    ApiKeyMissing,
    ApiKeyAmbiguous,
    ApiKeyUnknown,
    ApiKeyExpired,
    ApiKeyNotYetValid,
    ApiKeyDisabled,
    ClientNotAllowed,
    ClientCertificateMissing,
    ClientCertificateUnknown,
    HostFailure,
    RateLimited,
    RateLimitUnavailable,
    ApiKeyRevoked,
    Jwt(TokenProblem),
    JwksUnavailable,
    JwksStale,
    IntrospectionInactive,
    AuthServiceUnavailable,
    BlockedSqli,
    BlockedXss,
    BlockedPathTraversal,
    BlockedCommandInjection,
    BadBot,
    BodyTooLarge,
    UnsupportedMediaType,
    UnsupportedContentEncoding,
    MalformedJson,
    MalformedMultipart,
    MalformedXml,
    DuplicateKey,
    JsonLimits,
    SchemaViolation,
    MissingParameter,
    MissingHeader,
    ForbiddenParameter,
    ForbiddenHeader,
    InvalidParameter,
    InvalidHeader,
}

impl Reason {
    pub const ALL: [Reason; 67] = [
        Reason::NoPolicy,
        Reason::UnknownPolicy,
        Reason::UriTooLong,
        Reason::HeadersTooLarge,
        Reason::MethodNotAllowed,
        Reason::IpDenied,
        Reason::ClientIpUnknown,
        Reason::ApiKeyMissing,
        Reason::ApiKeyAmbiguous,
        Reason::ApiKeyUnknown,
        Reason::ApiKeyExpired,
        Reason::ApiKeyNotYetValid,
        Reason::ApiKeyDisabled,
        Reason::ClientNotAllowed,
        Reason::ClientCertificateMissing,
        Reason::ClientCertificateUnknown,
        Reason::HostFailure,
        Reason::RateLimited,
        Reason::RateLimitUnavailable,
        Reason::ApiKeyRevoked,
        Reason::Jwt(TokenProblem::Missing),
        Reason::Jwt(TokenProblem::Ambiguous),
        Reason::Jwt(TokenProblem::TooLarge),
        Reason::Jwt(TokenProblem::Malformed),
        Reason::Jwt(TokenProblem::AlgorithmNotAllowed),
        Reason::Jwt(TokenProblem::UnknownCritical),
        Reason::Jwt(TokenProblem::EmbeddedKey),
        Reason::Jwt(TokenProblem::KidMissing),
        Reason::Jwt(TokenProblem::UnknownKid),
        Reason::Jwt(TokenProblem::NoMatchingKey),
        Reason::Jwt(TokenProblem::BadSignature),
        Reason::Jwt(TokenProblem::DecryptFailed),
        Reason::Jwt(TokenProblem::Expired),
        Reason::Jwt(TokenProblem::MissingExpiry),
        Reason::Jwt(TokenProblem::NotYetValid),
        Reason::Jwt(TokenProblem::IssuedInFuture),
        Reason::Jwt(TokenProblem::LifetimeTooLong),
        Reason::Jwt(TokenProblem::WrongIssuer),
        Reason::Jwt(TokenProblem::WrongAudience),
        Reason::Jwt(TokenProblem::MissingClaim),
        Reason::Jwt(TokenProblem::ClaimMismatch),
        Reason::Jwt(TokenProblem::InsufficientScope),
        Reason::Jwt(TokenProblem::Revoked),
        Reason::JwksUnavailable,
        Reason::JwksStale,
        Reason::IntrospectionInactive,
        Reason::AuthServiceUnavailable,
        Reason::BlockedSqli,
        Reason::BlockedXss,
        Reason::BlockedPathTraversal,
        Reason::BlockedCommandInjection,
        Reason::BadBot,
        Reason::BodyTooLarge,
        Reason::UnsupportedMediaType,
        Reason::UnsupportedContentEncoding,
        Reason::MalformedJson,
        Reason::MalformedMultipart,
        Reason::MalformedXml,
        Reason::DuplicateKey,
        Reason::JsonLimits,
        Reason::SchemaViolation,
        Reason::MissingParameter,
        Reason::MissingHeader,
        Reason::ForbiddenParameter,
        Reason::ForbiddenHeader,
        Reason::InvalidParameter,
        Reason::InvalidHeader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoPolicy => "no_policy",
            Reason::UnknownPolicy => "unknown_policy",
            Reason::UriTooLong => "uri_too_long",
            Reason::HeadersTooLarge => "headers_too_large",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::IpDenied => "ip_denied",
            Reason::ClientIpUnknown => "client_ip_unknown",
            Reason::ApiKeyMissing => "api_key_missing",
            Reason::ApiKeyAmbiguous => "api_key_ambiguous",
            Reason::ApiKeyUnknown => "api_key_unknown",
            Reason::ApiKeyExpired => "api_key_expired",
            Reason::ApiKeyNotYetValid => "api_key_not_yet_valid",
            Reason::ApiKeyDisabled => "api_key_disabled",
            Reason::ClientNotAllowed => "client_not_allowed",
            Reason::ClientCertificateMissing => "client_certificate_missing",
            Reason::ClientCertificateUnknown => "client_certificate_unknown",
            Reason::HostFailure => "host_failure",
            Reason::RateLimited => "rate_limited",
            Reason::RateLimitUnavailable => "rate_limit_unavailable",
            Reason::ApiKeyRevoked => "api_key_revoked",
            Reason::Jwt(p) => p.metric_name(),
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::JwksStale => "jwks_stale",
            Reason::IntrospectionInactive => "introspection_inactive",
            Reason::AuthServiceUnavailable => "auth_service_unavailable",
            Reason::BlockedSqli => "blocked_sqli",
            Reason::BlockedXss => "blocked_xss",
            Reason::BlockedPathTraversal => "blocked_path_traversal",
            Reason::BlockedCommandInjection => "blocked_command_injection",
            Reason::BadBot => "bad_bot",
            Reason::BodyTooLarge => "body_too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::UnsupportedContentEncoding => "unsupported_content_encoding",
            Reason::MalformedJson => "malformed_json",
            Reason::MalformedMultipart => "malformed_multipart",
            Reason::MalformedXml => "malformed_xml",
            Reason::DuplicateKey => "duplicate_key",
            Reason::JsonLimits => "json_limits",
            Reason::SchemaViolation => "schema_violation",
            Reason::MissingParameter => "missing_parameter",
            Reason::MissingHeader => "missing_header",
            Reason::ForbiddenParameter => "forbidden_parameter",
            Reason::ForbiddenHeader => "forbidden_header",
            Reason::InvalidParameter => "invalid_parameter",
            Reason::InvalidHeader => "invalid_header",
        }
    }

    pub fn blocked(class: finding::Class) -> Reason {
        use finding::Class;
        match class {
            Class::Sqli => Reason::BlockedSqli,
            Class::Xss => Reason::BlockedXss,
            Class::Traversal => Reason::BlockedPathTraversal,
            Class::CommandInjection => Reason::BlockedCommandInjection,
            Class::Bot => Reason::BadBot,
            // Never blocked as such: an unreadable body is refused as its payload problem
            // (`malformed_json`, ...) and only reported under this class in `detect` mode.
            Class::UnreadableBody => Reason::MalformedJson,
        }
    }

    /// Dense index, for metric tables.
    pub fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

fn payload_reason(p: &PayloadProblem<'_>) -> Reason {
    use payload::ParamKind::{Header, Query};
    match p {
        PayloadProblem::BodyTooLarge => Reason::BodyTooLarge,
        PayloadProblem::UnsupportedMediaType => Reason::UnsupportedMediaType,
        PayloadProblem::UnsupportedContentEncoding => Reason::UnsupportedContentEncoding,
        PayloadProblem::MalformedJson => Reason::MalformedJson,
        PayloadProblem::MalformedMultipart => Reason::MalformedMultipart,
        PayloadProblem::MalformedXml => Reason::MalformedXml,
        PayloadProblem::DuplicateKey => Reason::DuplicateKey,
        PayloadProblem::JsonLimits(_) => Reason::JsonLimits,
        PayloadProblem::SchemaViolation { .. } => Reason::SchemaViolation,
        PayloadProblem::MissingParameter { kind: Query, .. } => Reason::MissingParameter,
        PayloadProblem::MissingParameter { kind: Header, .. } => Reason::MissingHeader,
        PayloadProblem::ForbiddenParameter { kind: Query, .. } => Reason::ForbiddenParameter,
        PayloadProblem::ForbiddenParameter { kind: Header, .. } => Reason::ForbiddenHeader,
        PayloadProblem::InvalidParameter { kind: Query, .. } => Reason::InvalidParameter,
        PayloadProblem::InvalidParameter { kind: Header, .. } => Reason::InvalidHeader,
    }
}

impl Rejection<'_> {
    pub fn reason(&self) -> Reason {
        match self {
            Rejection::NoPolicy => Reason::NoPolicy,
            Rejection::UnknownPolicy => Reason::UnknownPolicy,
            Rejection::UriTooLong => Reason::UriTooLong,
            Rejection::HeadersTooLarge => Reason::HeadersTooLarge,
            Rejection::MethodNotAllowed { .. } => Reason::MethodNotAllowed,
            Rejection::IpDenied => Reason::IpDenied,
            Rejection::ClientIpUnknown => Reason::ClientIpUnknown,
            Rejection::ApiKeyMissing => Reason::ApiKeyMissing,
            Rejection::ApiKeyAmbiguous => Reason::ApiKeyAmbiguous,
            Rejection::ApiKeyInvalid { problem, .. } => match problem {
                KeyProblem::Unknown => Reason::ApiKeyUnknown,
                KeyProblem::Expired => Reason::ApiKeyExpired,
                KeyProblem::NotYetValid => Reason::ApiKeyNotYetValid,
                KeyProblem::Disabled => Reason::ApiKeyDisabled,
                KeyProblem::Revoked => Reason::ApiKeyRevoked,
            },
            Rejection::ClientNotAllowed { .. } => Reason::ClientNotAllowed,
            Rejection::ClientCertificateMissing => Reason::ClientCertificateMissing,
            Rejection::ClientCertificateUnknown => Reason::ClientCertificateUnknown,
            Rejection::HostFailure => Reason::HostFailure,
            Rejection::RateLimited(_) => Reason::RateLimited,
            Rejection::RateLimitUnavailable => Reason::RateLimitUnavailable,
            Rejection::Token { problem, .. } => Reason::Jwt(*problem),
            Rejection::KeysUnavailable { .. } => Reason::JwksUnavailable,
            Rejection::KeysStale { .. } => Reason::JwksStale,
            Rejection::Payload(p) => payload_reason(p),
            Rejection::IntrospectionInactive => Reason::IntrospectionInactive,
            Rejection::Blocked(d) => Reason::blocked(d.class),
            Rejection::AuthServiceUnavailable { .. } => Reason::AuthServiceUnavailable,
        }
    }

    /// The key id involved, for logs (never the key).
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Rejection::ApiKeyInvalid { key_id, .. } => *key_id,
            Rejection::ClientNotAllowed { key_id, .. } => Some(key_id),
            _ => None,
        }
    }

    /// The JWT provider involved, for logs.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Rejection::Token { provider, .. } => *provider,
            Rejection::KeysUnavailable { provider } | Rejection::KeysStale { provider } => {
                Some(provider)
            }
            _ => None,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Rejection::ClientNotAllowed { client_id, .. } => Some(client_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_and_indexed() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(r
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }

    #[test]
    fn key_problems_map_to_distinct_reasons() {
        let r = |p| Rejection::ApiKeyInvalid {
            problem: p,
            key_id: Some("k1"),
        };
        assert_eq!(r(KeyProblem::Expired).reason(), Reason::ApiKeyExpired);
        assert_eq!(r(KeyProblem::Disabled).reason(), Reason::ApiKeyDisabled);
        assert_eq!(
            r(KeyProblem::NotYetValid).reason(),
            Reason::ApiKeyNotYetValid
        );
        assert_eq!(r(KeyProblem::Unknown).key_id(), Some("k1"));
        assert_eq!(Rejection::IpDenied.key_id(), None);
        let c = Rejection::ClientNotAllowed {
            client_id: "c",
            key_id: "k",
        };
        assert_eq!((c.client_id(), c.key_id()), (Some("c"), Some("k")));
    }
}
