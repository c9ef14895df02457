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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'g> {
    Allow(Admission<'g>),
    Deny(Rejection<'g>),
}

/// The verdict plus the policy it was reached under (`None`: no policy applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'g> {
    pub policy: Option<PolicyId>,
    pub verdict: Verdict<'g>,
}
