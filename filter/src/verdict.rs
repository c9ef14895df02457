//! The decision for one request, and what the adapter must do to the request when it passes.

use crate::digest::TokenDigest;
use crate::rejection::Rejection;

/// Edits to apply to an admitted request before it goes upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission<'g> {
    /// (client id, key id) to send in the identity headers.
    pub identity: Option<(&'g str, &'g str)>,
    /// The credential to remove, if the policy strips it.
    pub strip: Option<CredentialLocation<'g>>,
    /// The accepted JWT, if the policy checked one.
    pub token: Option<TokenAdmission<'g>>,
    /// The body must still be checked (`pipeline::check_body`) before the request goes on.
    pub body: Option<BodyCheck>,
    /// Who the auth service said the caller is.
    pub introspected: Option<Introspected>,
    /// A stale answer was served and this worker must refresh it in the background.
    pub refresh: Option<Refresh>,
    /// Screening findings of a policy in `detect` (shadow) mode: counted and logged only.
    pub detections: Vec<crate::rejection::finding::Detection>,
    /// The rate-limit tier (override) the caller matched, for the tier identity header.
    pub tier: Option<&'g str>,
}

impl Admission<'_> {
    /// The client the request was admitted as: a configured API key's client, or one named by
    /// a remote source (remote key list, introspection).
    pub fn client_id(&self) -> Option<&str> {
        self.identity
            .map(|(c, _)| c)
            .or_else(|| self.introspected.as_ref()?.client_id.as_deref())
    }
}

/// What the adapter must do with the request body of an admitted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyCheck {
    /// 413 as soon as more than this many bytes arrived.
    pub max_bytes: u64,
    /// Hold the headers and buffer the whole body for `pipeline::check_body` (JSON checks,
    /// body screening); otherwise only count bytes while the body streams through.
    pub buffer: bool,
    /// The request method (per-method payload settings).
    pub method: Vec<u8>,
    /// The kind of body, when body screening applies to it.
    pub screen: Option<crate::rejection::finding::ScreenedBody>,
    /// The policy's JSON checks (limits, schema) apply to this body (a JSON or unlabelled
    /// body); a form body buffered only for screening is not parsed as JSON.
    pub json: bool,
}

// One per request, built in place and moved rarely: boxing the admission would cost an
// allocation on every admitted request to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'g> {
    Allow(Admission<'g>),
    Deny(Rejection<'g>),
    /// The decision needs an answer that is not there yet: waiting is not a refusal. The
    /// request lifecycle (`lifecycle`) holds the request and decides again when it comes.
    Wait(Pending),
}

/// What a waiting decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The auth service's answer for a credential (this worker's callout, or another's).
    Introspection(IntrospectionWait),
    /// A remote provider's JWKS, refetched for an unknown `kid`.
    Keys(ProviderId),
}

/// The verdict plus the policy it was reached under (`None`: no policy applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'g> {
    pub policy: Option<PolicyId>,
    pub verdict: Verdict<'g>,
}

// ---- what the checks hand to the adapter: kept here, at the bottom, so that the decision
// types do not import the checks that fill them in ----------------------------------------

/// Where the accepted credential was found, so the adapter can remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialLocation<'g> {
    Header(&'g str),
    /// The request path with the key's query parameter removed.
    Query {
        path_without_key: String,
    },
}

/// An accepted token: who it names and what to do to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAdmission<'g> {
    pub provider: ProviderId,
    pub subject: Option<String>,
    /// (upstream header, value) for each forwarded claim the token has.
    pub forward: Vec<(&'g str, String)>,
    /// Where the token was, when the provider strips it.
    pub strip: Option<TokenLocation<'g>>,
    /// (claim, value) of the claims the policy's rate limits read (`JwtRule::limit_claims`)
    /// that the token has, as header-safe text (arrays joined with `,`).
    pub limit_claims: Vec<(&'g str, String)>,
}

/// Who the service said the caller is (header-safe values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspected {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    /// Set for keys from the remote key list (introspection answers carry no key id).
    pub key_id: Option<String>,
}

/// A request that must wait for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntrospectionWait {
    /// This worker claimed the callout: make it (the credential goes to the service only).
    Callout {
        credential: String,
        digest: TokenDigest,
    },
    /// Another worker is calling: look again until `until_ms`.
    Wait { digest: TokenDigest, until_ms: u64 },
}

/// A stale answer was served and this worker claimed its refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub credential: String,
    pub digest: TokenDigest,
}

/// Where the token was found, so the adapter can strip it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation<'g> {
    Header(&'g str),
    /// The `cookie` header rebuilt without the token's cookie (`None`: no cookie left).
    Cookie {
        rest: Option<String>,
    },
    Query {
        /// The parameter name (to strip it again if another credential rewrote the path).
        name: &'g str,
        path_without_token: String,
    },
}

/// Index of a provider in `Guard::jwt_providers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProviderId(pub usize);

/// Index of a policy in `Guard::policies` (`policy.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(pub usize);
