//! Compiled JWT providers and the per-policy JWT rule: what `config` builds, what the check
//! and the host adapter read. Immutable after configure.

use super::claims::ClaimRule;
use super::jwe::DecryptionKeys;
use super::keys::KeySet;
use super::source::TokenSource;
use super::verify::TokenRules;
use crate::remote::RemoteSource;
pub use crate::verdict::ProviderId;

#[derive(Debug)]
pub enum ProviderKeys {
    /// An inline JWKS from the configuration: never stale, never fetched.
    Inline(KeySet),
    /// A JWKS fetched through an Envoy cluster and shared through shared data.
    Remote(RemoteSource),
}

#[derive(Debug)]
pub struct JwtProvider {
    pub name: String,
    pub rules: TokenRules,
    pub sources: Vec<TokenSource>,
    pub keys: ProviderKeys,
    /// Keys for nested JWTs (a JWE wrapping a JWS). `None`: encrypted tokens are refused.
    pub decryption: Option<DecryptionKeys>,
    /// (claim, upstream header) pairs set on admitted requests.
    pub forward_claims: Vec<(String, String)>,
    /// Remove the token before the request goes upstream.
    pub strip_token: bool,
    /// `remote_symmetric_keys`: accept `oct` keys from the remote JWKS (off by default).
    pub remote_symmetric_keys: bool,
}

impl JwtProvider {
    /// How this provider's remote JWKS is read (every VM parses it the same way).
    pub fn remote_jwks_mode(&self) -> super::keys::JwksMode {
        super::keys::JwksMode::Lenient {
            symmetric_keys: self.remote_symmetric_keys,
        }
    }
}

/// How a policy combines its credentials (API key and JWT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every configured credential is required.
    All,
    /// One valid credential suffices; a present but invalid one is still refused.
    Any,
    /// Requests without credentials pass; present credentials must be valid.
    Optional,
}

/// A policy's JWT requirements.
#[derive(Debug)]
pub struct JwtRule {
    /// The token must verify under one of these providers (tried in order; the first whose
    /// sources hold a token decides).
    pub providers: Vec<ProviderId>,
    pub required_scopes: Vec<String>,
    pub claims: Vec<ClaimRule>,
    /// Claims the policy's rate limits key by or match tiers on (filled by the compiler from
    /// the limits): read once per admitted token.
    pub limit_claims: Vec<String>,
}
