//! The per-request context: read facts, decide, apply.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::abi::{self, HostError};
use super::fetch::{self, FetchTarget};
use super::root::Shared;
use crate::checks::api_key::CredentialLocation;
use crate::checks::introspection::Pending;
use crate::cidr::parse_socket_ip;
use crate::introspect::TokenDigest;
use crate::jwt::keysource::try_early_refetch;
use crate::jwt::provider::ProviderId;
use crate::jwt::source::TokenLocation;
use crate::jwt::TokenProblem;
use crate::metrics::Outcome;
use crate::payload::PayloadProblem;
use crate::pipeline::{check_body, decide_limited, Env, Events};
use crate::policy::PolicyId;
use crate::ratelimit::Event;
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::response::{render, sanitize_request_id};
use crate::time::UnixTime;
use crate::verdict::{Admission, BodyCheck, Decision, Verdict};

const ROUTE_POLICY_PATH: [&str; 5] = [
    "xds",
    "route_metadata",
    "filter_metadata",
    "api_guard",
    "policy",
];
const SOURCE_ADDRESS_PATH: [&str; 2] = ["source", "address"];
const ROUTE_NAME_PATH: [&str; 2] = ["xds", "route_name"];
const VIRTUAL_HOST_PATH: [&str; 2] = ["xds", "virtual_host_name"];

/// Envoy's route or virtual host name for `routes` matchers: read only when a matcher needs it
/// and the route has no metadata. Unreadable fails closed as an unknown policy, like metadata.
fn xds_name(needed: bool, path: &[&str], route_policy: &mut Option<String>) -> Option<String> {
    if !needed || route_policy.is_some() {
        return None;
    }
    match abi::property(path) {
        Ok(name) => name.and_then(|b| String::from_utf8(b).ok()),
        Err(_) => {
            *route_policy = Some("(unreadable)".into());
            None
        }
    }
}

/// The proxy-wasm context object: a handle on the request's state, which the root context can
/// also reach (to resume a request that waited for another worker's introspection callout).
pub struct GuardRequest {
    core: Rc<RefCell<RequestCore>>,
}

impl GuardRequest {
    pub fn new(shared: Option<Rc<Shared>>, context_id: u32) -> Self {
        let core = Rc::new(RefCell::new(RequestCore::new(shared, context_id)));
        core.borrow_mut().me = Rc::downgrade(&core);
        GuardRequest { core }
    }
}

impl Context for GuardRequest {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, t: usize) {
        self.core
            .borrow_mut()
            .on_http_call_response(token, headers, body_size, t);
    }
}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.core
            .borrow_mut()
            .on_http_request_headers(num_headers, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.core
            .borrow_mut()
            .on_http_request_body(body_size, end_of_stream)
    }
}

/// Where a request stands with the auth service.
#[derive(Debug)]
enum IntroWait {
    /// This request's own callout: (token, digest, started at ms).
    Callout(u32, TokenDigest, u64),
    /// Waiting for another worker's callout (the root context polls).
    Waiting,
}

pub struct RequestCore {
    shared: Option<Rc<Shared>>,
    context_id: u32,
    me: Weak<RefCell<RequestCore>>,
    intro: Option<IntroWait>,
    /// This request's introspection callout failed: decide with the policy's `on_failure`.
    intro_failed: bool,
    /// An unknown-`kid` JWKS refetch this request waits for: (callout token, provider).
    refetch: Option<(u32, ProviderId)>,
    /// The headers ended the request (no body follows).
    end_of_stream: bool,
    /// The body still to check, once the headers were admitted.
    body: Option<PendingBody>,
    /// Body bytes that arrived while the request waited for a refetch: (size, end of stream).
    body_while_waiting: Option<(usize, bool)>,
}

struct PendingBody {
    policy: PolicyId,
    check: BodyCheck,
    /// Bytes seen so far (streamed mode; in buffered mode Envoy reports the running total).
    received: u64,
    request_id: Option<String>,
}

impl RequestCore {
    fn new(shared: Option<Rc<Shared>>, context_id: u32) -> Self {
        RequestCore {
            shared,
            context_id,
            me: Weak::new(),
            intro: None,
            intro_failed: false,
            refetch: None,
            end_of_stream: true,
            body: None,
            body_while_waiting: None,
        }
    }
}

impl RequestCore {
    /// A callout this request was paused for has answered: an introspection answer, or the
    /// JWKS refetch (install the keys if good, then decide again, once: a second unknown `kid`
    /// is refused, not refetched).
    pub fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _t: usize,
    ) {
        if let Some(IntroWait::Callout(pending, digest, started_ms)) = self.intro {
            if pending == token {
                self.intro = None;
                if let Some(shared) = self.shared.clone() {
                    let ok = fetch::complete_introspection(&shared, &digest, body_size, started_ms);
                    self.intro_failed = !ok;
                }
                self.decide_again();
                return;
            }
        }
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
        self.decide_again();
    }
}

impl RequestCore {
    pub fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.end_of_stream = end_of_stream;
        self.run(true)
    }

    /// Bodies of admitted requests with a [`BodyCheck`]: counted while they stream (413 as soon
    /// as the limit is passed), or held and buffered (the headers too, thanks to
    /// `allow_on_headers_stop_iteration`) and checked whole at the end. Never more than the
    /// limit is buffered: the count is checked before Envoy is asked to buffer more.
    pub fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.refetch.is_some() || self.intro.is_some() {
            // Still deciding the headers: hold the body until the decision.
            self.body_while_waiting = Some((body_size, end_of_stream));
            return Action::Pause;
        }
        let (Some(shared), Some(pending)) = (self.shared.clone(), self.body.as_mut()) else {
            return Action::Continue;
        };
        let size = u64::try_from(body_size).unwrap_or(u64::MAX);
        let total = if pending.check.buffer {
            size
        } else {
            pending.received = pending.received.saturating_add(size);
            pending.received
        };
        let verdict = if total > pending.check.max_bytes {
            Err(Rejection::Payload(PayloadProblem::BodyTooLarge))
        } else if !end_of_stream {
            return if pending.check.buffer {
                Action::Pause
            } else {
                Action::Continue
            };
        } else if pending.check.buffer {
            match abi::request_body(body_size) {
                Ok(body) => check_body(&shared.guard, pending.policy, &pending.check, &body).map(
                    |detection| {
                        if let Some(d) = detection {
                            shared.screening_finding(&d, false);
                        }
                    },
                ),
                Err(e) => {
                    log::error!("cannot read the request body (host status {})", e.0);
                    Err(Rejection::HostFailure)
                }
            }
        } else {
            Ok(())
        };
        let policy = Some(pending.policy);
        let request_id = pending.request_id.take();
        self.body = None;
        match verdict {
            Ok(()) => {
                count(&shared, policy, Outcome::Allowed);
                Action::Continue
            }
            Err(rejection) => {
                count(&shared, policy, Outcome::Denied(rejection.reason()));
                if let Rejection::Blocked(d) = &rejection {
                    shared.screening_finding(d, true);
                }
                log::info!(
                    "deny policy={} reason={} request_id={}",
                    policy
                        .and_then(|id| shared.guard.policy(id))
                        .map_or("-", |p| p.name.as_str()),
                    rejection.reason().as_str(),
                    request_id.as_deref().unwrap_or("-"),
                );
                deny(&rejection, request_id.as_deref().map(str::as_bytes));
                Action::Pause
            }
        }
    }
}

impl RequestCore {
    /// Decides again after a pause (a callout answered, or the auth service answered for a
    /// waiting request); judges body bytes that arrived meanwhile; resumes if admitted.
    pub fn decide_again(&mut self) {
        let mut action = self.run(false);
        if let (Action::Continue | Action::Pause, Some((size, eos))) =
            (action, self.body_while_waiting.take())
        {
            if self.body.is_some() {
                action = self.on_http_request_body(size, eos);
            } else if self.intro.is_some() || self.refetch.is_some() {
                // Still waiting: keep the body bytes in mind.
                self.body_while_waiting = Some((size, eos));
            }
        }
        if let Action::Continue = action {
            if let Err(e) = abi::resume_request() {
                log::error!("cannot resume the request (host status {})", e.0);
            }
        }
    }

    /// The token of this request's own introspection callout, if one is in flight.
    pub fn callout_token(&self) -> Option<u32> {
        match self.intro {
            Some(IntroWait::Callout(token, ..)) => Some(token),
            _ => None,
        }
    }

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
        // Route metadata is operator-controlled; a non-UTF-8 or unreadable value selects no
        // known policy, which fails closed as an unknown policy.
        let mut route_policy = match abi::property(&ROUTE_POLICY_PATH) {
            Ok(None) => None,
            Ok(Some(bytes)) => {
                Some(String::from_utf8(bytes).unwrap_or_else(|_| "(non-utf8)".into()))
            }
            Err(_) => Some("(unreadable)".into()),
        };
        let routes = &shared.guard.routes;
        let route_name = xds_name(
            routes.needs_route_name(),
            &ROUTE_NAME_PATH,
            &mut route_policy,
        );
        let virtual_host = xds_name(
            routes.needs_virtual_host(),
            &VIRTUAL_HOST_PATH,
            &mut route_policy,
        );
        let mut view = RequestView {
            headers: &headers,
            client_ip: None,
            route_policy: route_policy.as_deref(),
            route_name: route_name.as_deref(),
            virtual_host: virtual_host.as_deref(),
        };
        // Only policies with IP rules or IP-keyed limits read the address (one host call less
        // for the others). An unreadable address is `None`, which IP rules treat as not allowed.
        if shared.guard.needs_client_ip(&view) {
            view.client_ip = abi::property(&SOURCE_ADDRESS_PATH)
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| parse_socket_ip(&s));
        }
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
        let mut events = Events::default();
        let env = Env {
            store: &abi::HostStore,
            now,
            now_ns,
            end_of_stream: self.end_of_stream,
            service_failed: self.intro_failed,
        };
        let mut runtime = shared.runtime.borrow_mut();
        if runtime.lacks_first_documents(&shared.guard) {
            // Between Envoy's start and the first fetch: use what another VM just published
            // rather than refusing until this worker's own tick.
            if let Err(e) = runtime.sync_first_documents(&shared.guard, &abi::HostStore) {
                log::warn!("cannot read shared remote documents ({e:?})");
            }
        }
        let decision = decide_limited(&shared.guard, &view, &env, &mut runtime, &mut events);
        drop(runtime);
        let request_id = request_id(&headers);
        if !events.rate_limits.is_empty() {
            rate_limit_events(&shared, &decision, &events.rate_limits, request_id);
        }
        for event in &events.introspection {
            shared.count_introspection(*event);
        }

        match &decision.verdict {
            Verdict::Deny(Rejection::IntrospectionPending(pending)) => {
                self.wait_for_service(&shared, pending.clone(), now_ns / 1_000_000)
            }
            Verdict::Allow(admission) => match apply(&shared, &headers, admission) {
                Ok(()) => {
                    for d in &admission.detections {
                        shared.screening_finding(d, false);
                    }
                    if let (Some(check), Some(policy)) = (&admission.body, decision.policy) {
                        // Counted (allowed or denied) once the body is judged.
                        self.body = Some(PendingBody {
                            policy,
                            check: check.clone(),
                            received: 0,
                            request_id: sanitize_request_id(request_id).map(str::to_string),
                        });
                        return if check.buffer {
                            Action::Pause
                        } else {
                            Action::Continue
                        };
                    }
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
                if let Rejection::Blocked(d) = rejection {
                    shared.screening_finding(d, true);
                }
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

    /// The decision needs the auth service: make this worker's callout, or wait for another
    /// worker's (the root context decides again for waiting requests on a short tick).
    fn wait_for_service(&mut self, shared: &Rc<Shared>, pending: Pending, now_ms: u64) -> Action {
        match pending {
            Pending::Callout { credential, digest } => {
                match fetch::dispatch_introspection(shared, &credential, &digest) {
                    Some(token) => {
                        self.intro = Some(IntroWait::Callout(token, digest, now_ms));
                        Action::Pause
                    }
                    None => {
                        // Could not even call: the service is unavailable for this request.
                        self.intro_failed = true;
                        self.run(false)
                    }
                }
            }
            Pending::Wait { .. } => {
                if shared.add_waiter(self.context_id, self.me.clone()) {
                    self.intro = Some(IntroWait::Waiting);
                    Action::Pause
                } else {
                    // Too many waiting requests: decide as if the service were down.
                    self.intro_failed = true;
                    self.run(false)
                }
            }
        }
    }

    /// Called by the root context for a waiting request: decide again (the answer may be in
    /// the cache now, or the other worker's claim expired and this one calls).
    pub fn retry_after_wait(&mut self) {
        self.intro = None;
        self.decide_again();
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
    if let Some(refresh) = &admission.refresh {
        shared.queue_refresh(refresh.clone());
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
    // After the removals above: these replace any client-sent copy themselves.
    if let Some(who) = &admission.introspected {
        if let Some(client) = &who.client_id {
            abi::set_request_header(&identity.client_id, client)?;
        }
        if let Some(subject) = &who.subject {
            abi::set_request_header(crate::config::DEFAULT_SUBJECT_HEADER, subject)?;
        }
        if let Some(key_id) = &who.key_id {
            abi::set_request_header(&identity.key_id, key_id)?;
        }
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
