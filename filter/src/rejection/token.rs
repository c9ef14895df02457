//! Why a token was refused. One variant per distinct cause: metrics and logs name it, clients
//! see a coarser answer (`response.rs`), so an attacker learns nothing from the difference
//! between, say, a bad signature and an unknown key.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenProblem {
    /// No token in any configured source.
    Missing,
    /// Tokens in more than one source, or the same source twice.
    Ambiguous,
    /// Larger than the provider's `max_token_bytes` (checked before any decoding).
    TooLarge,
    /// Not a strict compact serialization: segment count, base64url alphabet, padding, JSON.
    Malformed,
    /// `alg` is `none` (any case), unknown, or not allowed for this provider.
    AlgorithmNotAllowed,
    /// The header lists a `crit` parameter api-guard does not understand.
    UnknownCritical,
    /// The header carries key material or a key location (`jwk`, `jku`, `x5u`, `x5c`).
    EmbeddedKey,
    /// No `kid` while the provider requires one.
    KidMissing,
    /// A `kid` that is not in the provider's key set (may trigger an early JWKS refetch).
    UnknownKid,
    /// No key of the provider can verify this algorithm (key confusion attempts land here).
    NoMatchingKey,
    BadSignature,
    /// The nested JWE could not be decrypted (wrong key, tampered ciphertext, unsupported enc).
    DecryptFailed,
    Expired,
    /// `exp` is absent and the provider requires it.
    MissingExpiry,
    NotYetValid,
    /// `iat` lies in the future (beyond the clock skew).
    IssuedInFuture,
    /// `exp - iat` exceeds the provider's `max_lifetime_seconds`.
    LifetimeTooLong,
    WrongIssuer,
    WrongAudience,
    /// A claim the provider requires is absent.
    MissingClaim,
    /// A policy claim rule (equals / one of / contains) does not hold.
    ClaimMismatch,
    /// A required scope is missing (403, not 401: the token is fine, its grants are not).
    InsufficientScope,
    /// The token's `jti` or `sub` is on the revocation list.
    Revoked,
}

impl TokenProblem {
    pub const ALL: [TokenProblem; 23] = [
        TokenProblem::Missing,
        TokenProblem::Ambiguous,
        TokenProblem::TooLarge,
        TokenProblem::Malformed,
        TokenProblem::AlgorithmNotAllowed,
        TokenProblem::UnknownCritical,
        TokenProblem::EmbeddedKey,
        TokenProblem::KidMissing,
        TokenProblem::UnknownKid,
        TokenProblem::NoMatchingKey,
        TokenProblem::BadSignature,
        TokenProblem::DecryptFailed,
        TokenProblem::Expired,
        TokenProblem::MissingExpiry,
        TokenProblem::NotYetValid,
        TokenProblem::IssuedInFuture,
        TokenProblem::LifetimeTooLong,
        TokenProblem::WrongIssuer,
        TokenProblem::WrongAudience,
        TokenProblem::MissingClaim,
        TokenProblem::ClaimMismatch,
        TokenProblem::InsufficientScope,
        TokenProblem::Revoked,
    ];

    /// The metric suffix and log reason: `jwt_<name>`.
    pub fn metric_name(self) -> &'static str {
        match self {
            TokenProblem::Missing => "jwt_missing",
            TokenProblem::Ambiguous => "jwt_ambiguous",
            TokenProblem::TooLarge => "jwt_too_large",
            TokenProblem::Malformed => "jwt_malformed",
            TokenProblem::AlgorithmNotAllowed => "jwt_algorithm_not_allowed",
            TokenProblem::UnknownCritical => "jwt_unknown_critical",
            TokenProblem::EmbeddedKey => "jwt_embedded_key",
            TokenProblem::KidMissing => "jwt_kid_missing",
            TokenProblem::UnknownKid => "jwt_unknown_kid",
            TokenProblem::NoMatchingKey => "jwt_no_matching_key",
            TokenProblem::BadSignature => "jwt_bad_signature",
            TokenProblem::DecryptFailed => "jwt_decrypt_failed",
            TokenProblem::Expired => "jwt_expired",
            TokenProblem::MissingExpiry => "jwt_missing_expiry",
            TokenProblem::NotYetValid => "jwt_not_yet_valid",
            TokenProblem::IssuedInFuture => "jwt_issued_in_future",
            TokenProblem::LifetimeTooLong => "jwt_lifetime_too_long",
            TokenProblem::WrongIssuer => "jwt_wrong_issuer",
            TokenProblem::WrongAudience => "jwt_wrong_audience",
            TokenProblem::MissingClaim => "jwt_missing_claim",
            TokenProblem::ClaimMismatch => "jwt_claim_mismatch",
            TokenProblem::InsufficientScope => "jwt_insufficient_scope",
            TokenProblem::Revoked => "jwt_revoked",
        }
    }

    /// Stable snake_case name: the metric suffix `jwt_<name>` and the log field.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenProblem::Missing => "missing",
            TokenProblem::Ambiguous => "ambiguous",
            TokenProblem::TooLarge => "too_large",
            TokenProblem::Malformed => "malformed",
            TokenProblem::AlgorithmNotAllowed => "algorithm_not_allowed",
            TokenProblem::UnknownCritical => "unknown_critical",
            TokenProblem::EmbeddedKey => "embedded_key",
            TokenProblem::KidMissing => "kid_missing",
            TokenProblem::UnknownKid => "unknown_kid",
            TokenProblem::NoMatchingKey => "no_matching_key",
            TokenProblem::BadSignature => "bad_signature",
            TokenProblem::DecryptFailed => "decrypt_failed",
            TokenProblem::Expired => "expired",
            TokenProblem::MissingExpiry => "missing_expiry",
            TokenProblem::NotYetValid => "not_yet_valid",
            TokenProblem::IssuedInFuture => "issued_in_future",
            TokenProblem::LifetimeTooLong => "lifetime_too_long",
            TokenProblem::WrongIssuer => "wrong_issuer",
            TokenProblem::WrongAudience => "wrong_audience",
            TokenProblem::MissingClaim => "missing_claim",
            TokenProblem::ClaimMismatch => "claim_mismatch",
            TokenProblem::InsufficientScope => "insufficient_scope",
            TokenProblem::Revoked => "revoked",
        }
    }
}

/// One problem in a JWKS (or a set of decryption keys): a JSON path relative to the document
/// (`keys[2].n`) and a message that never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksError {
    pub path: String,
    pub message: String,
}

impl JwksError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> JwksError {
        JwksError {
            path: path.into(),
            message: message.into(),
        }
    }
}
