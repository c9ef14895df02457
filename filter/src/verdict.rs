//! The decision for one request, and what the adapter must do to the request when it passes.

use crate::checks::api_key::CredentialLocation;
use crate::checks::jwt::TokenAdmission;
use crate::policy::PolicyId;
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
    pub introspected: Option<crate::checks::introspection::Introspected>,
    /// A stale answer was served and this worker must refresh it in the background.
    pub refresh: Option<crate::checks::introspection::Refresh>,
    /// Screening findings of a policy in `detect` (shadow) mode: counted and logged only.
    pub detections: Vec<crate::screening::Detection>,
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
    pub screen: Option<crate::screening::ScreenedBody>,
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
    Introspection(crate::checks::introspection::Pending),
    /// A remote provider's JWKS, refetched for an unknown `kid`.
    Keys(crate::jwt::provider::ProviderId),
}

/// The verdict plus the policy it was reached under (`None`: no policy applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'g> {
    pub policy: Option<PolicyId>,
    pub verdict: Verdict<'g>,
}
