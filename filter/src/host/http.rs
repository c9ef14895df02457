//! The per-request context: read facts, decide, apply.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::abi::{self, HostError};
use super::fetch::{self, FetchTarget};
use super::root::Shared;
use crate::checks::api_key::CredentialLocation;
use crate::cidr::parse_socket_ip;
use crate::jwt::keysource::try_early_refetch;
use crate::jwt::provider::ProviderId;
use crate::jwt::source::TokenLocation;
use crate::jwt::TokenProblem;
use crate::metrics::Outcome;
use crate::pipeline::decide_limited;
use crate::ratelimit::Event;
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::response::{render, sanitize_request_id};
use crate::time::UnixTime;
use crate::verdict::{Admission, Decision, Verdict};

const ROUTE_POLICY_PATH: [&str; 5] = [
    "xds",
    "route_metadata",
    "filter_metadata",
    "api_guard",
    "policy",
];
const SOURCE_ADDRESS_PATH: [&str; 2] = ["source", "address"];

pub struct GuardRequest {
    shared: Option<Rc<Shared>>,
    /// An unknown-`kid` JWKS refetch this request waits for: (callout token, provider).
    refetch: Option<(u32, ProviderId)>,
}

impl GuardRequest {
    pub fn new(shared: Option<Rc<Shared>>) -> Self {
        GuardRequest {
            shared,
            refetch: None,
        }
    }
}

impl Context for GuardRequest {
    /// The refetch this request was paused for has answered: install the keys (if good), then
    /// decide again, once (a second unknown `kid` is refused, not refetched).
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _t: usize) {
        let Some((pending, provider)) = self.refetch else {
            return;
        };
        if pending != token {
            return;
        }
        self.refetch = None;
        let Some(shared) = self.shared.clone() else {
            return;
        };
        if let Ok(ns) = abi::now_unix_nanos() {
            let now = UnixTime(i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX));
            fetch::complete(&shared, FetchTarget::Keys(provider), body_size, now);
        }
        if let Action::Continue = self.run(false) {
            if let Err(e) = abi::resume_request() {
                log::error!("cannot resume the request (host status {})", e.0);
            }
        }
    }
}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.run(true)
    }
}

impl GuardRequest {
    /// Reads the facts, decides and applies. `may_refetch`: an unknown `kid` of a remote
    /// provider may pause the request for one JWKS refetch.
    fn run(&mut self, may_refetch: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            deny(&Rejection::HostFailure, None);
            return Action::Pause;
        };
        let headers = match abi::request_headers() {
            Ok(h) => h,
            Err(e) => {
                log::error!("cannot read request headers (host status {})", e.0);
                count(
                    &shared,
                    None,
                    Outcome::Denied(Rejection::HostFailure.reason()),
                );
                deny(&Rejection::HostFailure, None);
                return Action::Pause;
            }
        };
        // An unreadable address is `None`, which IP rules treat as not allowed.
        let client_ip = abi::property(&SOURCE_ADDRESS_PATH)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| parse_socket_ip(&s));
        // Route metadata is operator-controlled; a non-UTF-8 or unreadable value selects no
        // known policy, which fails closed as an unknown policy.
        let route_policy = match abi::property(&ROUTE_POLICY_PATH) {
            Ok(None) => None,
            Ok(Some(bytes)) => {
                Some(String::from_utf8(bytes).unwrap_or_else(|_| "(non-utf8)".into()))
            }
            Err(_) => Some("(unreadable)".into()),
        };
        let (now, now_ns) = match abi::now_unix_nanos() {
            Ok(ns) => (
                UnixTime(i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX)),
                ns,
            ),
            Err(e) => {
                log::error!("cannot read the clock (host status {})", e.0);
                count(
                    &shared,
                    None,
                    Outcome::Denied(Rejection::HostFailure.reason()),
                );
                deny(&Rejection::HostFailure, request_id(&headers));
                return Action::Pause;
            }
        };
        let view = RequestView {
            headers: &headers,
            client_ip,
            route_policy: route_policy.as_deref(),
        };
        let mut events = Vec::new();
        let mut runtime = shared.runtime.borrow_mut();
        let decision = decide_limited(
            &shared.guard,
            &view,
            now,
            now_ns,
            &abi::HostStore,
            &mut runtime,
            &mut events,
        );
        drop(runtime);
        let request_id = request_id(&headers);
        if !events.is_empty() {
            rate_limit_events(&shared, &decision, &events, request_id);
        }

        match &decision.verdict {
            Verdict::Allow(admission) => match apply(&shared, &headers, admission) {
                Ok(()) => {
                    count(&shared, decision.policy, Outcome::Allowed);
                    log::debug!(
                        "allow policy={} client_id={} key_id={} subject_present={}",
                        policy_name(&shared, &decision),
                        admission.identity.map_or("-", |(c, _)| c),
                        admission.identity.map_or("-", |(_, k)| k),
                        admission
                            .token
                            .as_ref()
                            .is_some_and(|t| t.subject.is_some()),
                    );
                    Action::Continue
                }
                Err(e) => {
                    log::error!("cannot edit the request (host status {}); denying", e.0);
                    count(
                        &shared,
                        decision.policy,
                        Outcome::Denied(Rejection::HostFailure.reason()),
                    );
                    deny(&Rejection::HostFailure, request_id);
                    Action::Pause
                }
            },
            Verdict::Deny(Rejection::Token {
                problem: TokenProblem::UnknownKid,
                provider: Some(name),
            }) if may_refetch && self.start_refetch(&shared, name, now) => Action::Pause,
            Verdict::Deny(rejection) => {
                count(&shared, decision.policy, Outcome::of(&decision));
                if matches!(rejection, Rejection::UnknownPolicy) {
                    let name = route_policy.as_deref().unwrap_or_default();
                    if shared.first_sighting_of_unknown_policy(name) {
                        log::warn!("route names unknown policy {name:?}; its requests are denied");
                    }
                }
                log::info!(
                    "deny policy={} reason={} provider={} client_id={} key_id={} request_id={}",
                    policy_name(&shared, &decision),
                    rejection.reason().as_str(),
                    rejection.provider().unwrap_or("-"),
                    rejection.client_id().unwrap_or("-"),
                    rejection.key_id().unwrap_or("-"),
                    sanitize_request_id(request_id).unwrap_or("-"),
                );
                deny(rejection, request_id);
                Action::Pause
            }
        }
    }

    /// Starts an unknown-`kid` refetch of a remote provider's JWKS if the Envoy-wide rate limit
    /// allows one now. `false`: refuse the request as it is.
    fn start_refetch(&mut self, shared: &Shared, provider: &str, now: UnixTime) -> bool {
        let Some(id) = shared
            .guard
            .jwt_providers
            .iter()
            .position(|p| p.name == provider)
            .map(ProviderId)
        else {
            return false;
        };
        let Some(source) = fetch::source_of(shared, FetchTarget::Keys(id)) else {
            return false;
        };
        match try_early_refetch(&abi::HostStore, source, now) {
            Ok(true) => {}
            _ => return false,
        }
        log::info!("unknown kid for provider {provider}: refetching its JWKS");
        match fetch::dispatch(shared, FetchTarget::Keys(id)) {
            Some(token) => {
                self.refetch = Some((token, id));
                true
            }
            None => false,
        }
    }
}

/// Counts rate-limit events and logs the ones an operator must see (shadow denials, store
/// failures). Never logs the key itself (it may be a header value or an address).
fn rate_limit_events(
    shared: &Shared,
    decision: &Decision<'_>,
    events: &[(usize, Event)],
    request_id: Option<&[u8]>,
) {
    let Some(policy_id) = decision.policy else {
        return;
    };
    let Some(policy) = shared.guard.policy(policy_id) else {
        return;
    };
    let client_id = match &decision.verdict {
        Verdict::Allow(a) => a.identity.map_or("-", |(c, _)| c),
        Verdict::Deny(_) => "-",
    };
    let rid = sanitize_request_id(request_id).unwrap_or("-");
    for (limit, event) in events {
        if let Some(id) = shared.rate_limit_metrics.get(policy_id, *limit, *event) {
            let _ = proxy_wasm::hostcalls::increment_metric(id, 1);
        }
        let name = policy
            .rate_limits
            .get(*limit)
            .map_or("-", |l| l.name.as_str());
        match event {
            Event::ShadowLimited => log::info!(
                "shadow_limited policy={} limit={name} client_id={client_id} request_id={rid}",
                policy.name
            ),
            Event::CasRetriesExhausted | Event::StoreErrors => log::warn!(
                "rate limit state unavailable ({}) policy={} limit={name} request_id={rid}",
                event.as_str(),
                policy.name
            ),
            _ => {}
        }
    }
}

fn request_id(headers: &[(String, Vec<u8>)]) -> Option<&[u8]> {
    headers
        .iter()
        .find(|(n, _)| n == "x-request-id")
        .map(|(_, v)| v.as_slice())
}

fn policy_name<'a>(shared: &'a Shared, decision: &Decision<'_>) -> &'a str {
    decision
        .policy
        .and_then(|id| shared.guard.policy(id))
        .map_or(crate::metrics::NO_POLICY_LABEL, |p| p.name.as_str())
}

fn count(shared: &Shared, policy: Option<crate::policy::PolicyId>, outcome: Outcome) {
    if let Some(id) = shared.metrics.get(policy, outcome) {
        // A failed increment loses one count; it must not affect the request.
        let _ = proxy_wasm::hostcalls::increment_metric(id, 1);
    }
}

/// Applies an admission: identity headers are removed from every request (clients cannot forge
/// them), then set from the established identity, and the credential is stripped if asked.
/// Host calls are the main per-request cost of a wasm filter, so a header is only removed when
/// the request carries it, and setting a header replaces every client-sent copy anyway.
fn apply(
    shared: &Shared,
    headers: &[(String, Vec<u8>)],
    admission: &Admission<'_>,
) -> Result<(), HostError> {
    let identity = &shared.guard.identity_headers;
    let present = |name: &str| headers.iter().any(|(n, _)| n == name);
    match admission.identity {
        Some((client_id, key_id)) => {
            abi::set_request_header(&identity.client_id, client_id)?;
            abi::set_request_header(&identity.key_id, key_id)?;
        }
        None => {
            for name in [&identity.client_id, &identity.key_id] {
                if present(name) {
                    abi::remove_request_header(name)?;
                }
            }
        }
    }
    // Both credentials in the query: strip the token's parameter from the key-stripped path, so
    // one `:path` write removes both.
    let token_strip = admission.token.as_ref().and_then(|t| t.strip.as_ref());
    match (&admission.strip, token_strip) {
        (
            Some(CredentialLocation::Query { path_without_key }),
            Some(TokenLocation::Query { name, .. }),
        ) => {
            let both =
                crate::checks::api_key::path_without_param(path_without_key.as_bytes(), name);
            abi::set_request_header(":path", &both)?;
        }
        (Some(CredentialLocation::Query { path_without_key }), _) => {
            abi::set_request_header(":path", path_without_key)?
        }
        (Some(CredentialLocation::Header(name)), _) => abi::remove_request_header(name)?,
        (None, _) => {}
    }
    let forwarded: &[(&str, String)] = admission
        .token
        .as_ref()
        .map_or(&[], |t| t.forward.as_slice());
    // Claim headers come only from api-guard: client-sent copies go, whether or not a token was
    // accepted; setting a header replaces every copy anyway.
    for name in &shared.claim_headers {
        if present(name) && !forwarded.iter().any(|(h, _)| h == name) {
            abi::remove_request_header(name)?;
        }
    }
    for (header, value) in forwarded {
        abi::set_request_header(header, value)?;
    }
    let key_rewrote_path = matches!(admission.strip, Some(CredentialLocation::Query { .. }));
    match token_strip {
        Some(TokenLocation::Query { .. }) if key_rewrote_path => {}
        Some(TokenLocation::Header(name)) => abi::remove_request_header(name)?,
        Some(TokenLocation::Cookie { rest: Some(rest) }) => {
            abi::set_request_header("cookie", rest)?
        }
        Some(TokenLocation::Cookie { rest: None }) => abi::remove_request_header("cookie")?,
        Some(TokenLocation::Query {
            path_without_token, ..
        }) => abi::set_request_header(":path", path_without_token)?,
        None => {}
    }
    Ok(())
}

fn deny(rejection: &Rejection<'_>, request_id: Option<&[u8]>) {
    let response = render(rejection, request_id);
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    if let Err(e) = abi::send_local_response(response.status, &headers, response.body.as_bytes()) {
        // Nothing else can be done from here; the request was paused and is not forwarded.
        log::error!("cannot send the local reply (host status {})", e.0);
    }
}
