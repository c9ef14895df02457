//! The per-request context: an interpreter of the request lifecycle (`crate::lifecycle`).
//! Each callback feeds its event to the lifecycle, which asks this adapter's [`HostGate`] for
//! facts (headers, address, clock, body) and effects (callouts, header edits, local replies,
//! resume) and says whether the callback lets what it holds go on. No request state is kept
//! here beyond the facts the host gave (the callout to complete, the request id to echo).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::abi::{self, HostError};
use super::fetch;
use super::probe::{stops_after, Stage};
use super::shared::{FetchTarget, Shared, Waiter};
use crate::checks::introspection;
use crate::cidr::parse_socket_ip;
use crate::decision_record::DecisionRecord;
use crate::edits::{header_edits, HeaderEdit};
use crate::introspect::TokenDigest;
use crate::jwt::provider::ProviderId;
use crate::lifecycle::{Attempt, Decided, Flow, Gate, Lifecycle, Ruling, Wait};
use crate::metrics::Outcome;
use crate::payload::PayloadProblem;
use crate::pipeline::{check_body, decide_selected, Env, Events};
use crate::policy::{select, PolicyId};
use crate::ratelimit::Event;
use crate::rejection::Rejection;
use crate::request::{HeaderMap, RequestView};
use crate::response::{render, sanitize_request_id};
use crate::verdict::{Admission, BodyCheck, Decision, Pending, Verdict};

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
/// also reach (to decide again for a request that waits on another worker's callout).
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
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _t: usize) {
        self.core.borrow_mut().on_callout(token, body_size);
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Stop => Action::Pause,
    }
}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if stops_after(Stage::Noop) {
            return Action::Continue;
        }
        let core = &mut *self.core.borrow_mut();
        core.headers_ended = end_of_stream;
        let (life, mut gate) = core.split();
        action(life.on_headers(end_of_stream, &mut gate))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if stops_after(Stage::Noop) {
            return Action::Continue;
        }
        let core = &mut *self.core.borrow_mut();
        let (life, mut gate) = core.split();
        action(life.on_body(body_size, end_of_stream, &mut gate))
    }

    /// Trailers end the request: without this callback (or with `Continue`) Envoy would resume
    /// a request the filter holds, undecided.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if stops_after(Stage::Noop) {
            return Action::Continue;
        }
        let core = &mut *self.core.borrow_mut();
        let (life, mut gate) = core.split();
        action(life.on_trailers(&mut gate))
    }
}

/// A callout this request started, and how to complete it when it answers.
#[derive(Debug)]
enum Callout {
    /// Introspection: the credential's digest and when the callout started (ms).
    Introspection(TokenDigest, u64),
    /// An unknown-`kid` JWKS refetch.
    Keys(ProviderId),
}

pub struct RequestCore {
    shared: Option<Rc<Shared>>,
    context_id: u32,
    me: Weak<RefCell<RequestCore>>,
    life: Lifecycle,
    callout: Option<(u32, Callout)>,
    /// The request headers ended the stream (the host's flag, for the body plan).
    headers_ended: bool,
    /// The request id, read with the headers, echoed in a local reply sent later.
    request_id: Option<String>,
}

impl RequestCore {
    fn new(shared: Option<Rc<Shared>>, context_id: u32) -> Self {
        RequestCore {
            shared,
            context_id,
            me: Weak::new(),
            life: Lifecycle::new(),
            callout: None,
            headers_ended: false,
            request_id: None,
        }
    }

    fn split(&mut self) -> (&mut Lifecycle, HostGate<'_>) {
        let RequestCore {
            shared,
            context_id,
            me,
            life,
            callout,
            headers_ended,
            request_id,
        } = self;
        (
            life,
            HostGate {
                shared: shared.as_ref(),
                context_id: *context_id,
                me,
                callout,
                headers_ended: *headers_ended,
                request_id,
            },
        )
    }

    /// A callout this request made has answered: install what it brought (keys, introspection
    /// answer), then let the lifecycle decide again. Any other token is not ours.
    pub fn on_callout(&mut self, token: u32, body_size: usize) {
        let Some((_, callout)) = self.callout.take_if(|(t, _)| *t == token) else {
            return;
        };
        let usable = match (&self.shared, callout) {
            (Some(shared), Callout::Introspection(digest, started_ms)) => {
                fetch::complete_introspection(shared, &digest, body_size, started_ms)
            }
            (Some(shared), Callout::Keys(provider)) => {
                if let Ok(ns) = abi::now_unix_nanos() {
                    let now = crate::time::UnixTime(i64::try_from(ns / 1_000_000_000).unwrap_or(0));
                    fetch::complete(shared, FetchTarget::Keys(provider), body_size, now);
                }
                // Whatever the refetch brought, decide again (without another refetch): a
                // failed refetch leaves the unknown `kid` refused.
                true
            }
            (None, _) => false,
        };
        let (life, mut gate) = self.split();
        life.on_callout(token, usable, &mut gate);
    }

    /// Called by the root context's tick for a request waiting on another worker's callout.
    pub fn retry_after_wait(&mut self) {
        let (life, mut gate) = self.split();
        life.on_retry(&mut gate);
    }

    /// The token of this request's own callout, if one is in flight (the root delivers answers
    /// to callouts it made on this request's behalf).
    pub fn callout_token(&self) -> Option<u32> {
        self.callout.as_ref().map(|(t, _)| *t)
    }
}

impl Waiter for RequestCore {
    fn retry_after_wait(&mut self) {
        RequestCore::retry_after_wait(self)
    }

    fn callout_token(&self) -> Option<u32> {
        RequestCore::callout_token(self)
    }

    fn on_callout(&mut self, token: u32, body_size: usize) {
        RequestCore::on_callout(self, token, body_size)
    }
}

/// The lifecycle's view of the host for one event.
struct HostGate<'r> {
    shared: Option<&'r Rc<Shared>>,
    context_id: u32,
    me: &'r Weak<RefCell<RequestCore>>,
    callout: &'r mut Option<(u32, Callout)>,
    headers_ended: bool,
    request_id: &'r mut Option<String>,
}

impl<'r> Gate for HostGate<'r> {
    type Admission = (HeaderMap, Admission<'r>);
    type Refusal = Rejection<'r>;
    type Pending = Pending;

    fn decide(&mut self, attempt: Attempt) -> Decided<Self> {
        let Some(shared) = self.shared else {
            return (None, Ruling::Refuse(Rejection::HostFailure));
        };
        let headers = match abi::request_headers() {
            Ok(h) => h,
            Err(e) => {
                log::error!("cannot read request headers (host status {})", e.0);
                return (None, Ruling::Refuse(Rejection::HostFailure));
            }
        };
        if self.request_id.is_none() {
            *self.request_id =
                sanitize_request_id(headers.headers().get("x-request-id")).map(str::to_string);
        }
        if stops_after(Stage::Headers) {
            return probe_admit();
        }
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
            headers: headers.headers(),
            client_ip: None,
            route_policy: route_policy.as_deref(),
            route_name: route_name.as_deref(),
            virtual_host: virtual_host.as_deref(),
        };
        // Selected once: which facts the policy needs, and then its decision. Only policies
        // with IP rules or IP-keyed limits read the address (one host call less for the
        // others). An unreadable address is `None`, which IP rules treat as not allowed.
        let selection = select(&shared.guard, &view);
        if stops_after(Stage::Meta) {
            return probe_admit();
        }
        if shared.guard.needs_client_ip(selection) {
            view.client_ip = abi::property(&SOURCE_ADDRESS_PATH)
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| parse_socket_ip(&s));
        }
        let now_ns = match abi::now_unix_nanos() {
            Ok(ns) => ns,
            Err(e) => {
                log::error!("cannot read the clock (host status {})", e.0);
                return (None, Ruling::Refuse(Rejection::HostFailure));
            }
        };
        // Only policies with an `mtls` rule read the connection's certificate.
        let peer = shared
            .guard
            .needs_peer_certificate(selection)
            .then(abi::peer_certificate)
            .flatten();
        if stops_after(Stage::Facts) {
            return probe_admit();
        }
        let mut env = Env::first(&abi::HostStore, now_ns, self.headers_ended);
        env.attempt = attempt;
        env.peer = peer.as_ref();
        let mut events = Events::default();
        let mut runtime = shared.runtime.borrow_mut();
        if runtime.lacks_first_documents(&shared.guard) {
            // Between Envoy's start and the first fetch: use what another VM just published
            // rather than refusing until this worker's own tick.
            if let Err(e) = runtime.sync_first_documents(&shared.guard, &abi::HostStore) {
                log::warn!("cannot read shared remote documents ({e:?})");
            }
        }
        let decision = decide_selected(
            &shared.guard,
            selection,
            &view,
            &env,
            &mut runtime,
            &mut events,
        );
        drop(runtime);
        if stops_after(Stage::Decide) {
            return probe_admit();
        }
        if !events.rate_limits.is_empty() {
            rate_limit_events(
                shared,
                &decision,
                &events.rate_limits,
                self.request_id.as_deref(),
            );
        }
        for event in &events.introspection {
            shared.count_introspection(*event);
        }
        for event in &events.abuse {
            shared.count_abuse(*event);
        }
        let ruling = match decision.verdict {
            Verdict::Allow(mut admission) => {
                let body = admission.body.take();
                Ruling::Admit((headers, admission), body)
            }
            Verdict::Deny(rejection) => {
                if matches!(rejection, Rejection::UnknownPolicy) {
                    let name = route_policy.as_deref().unwrap_or_default();
                    if shared.first_sighting_of_unknown_policy(name) {
                        log::warn!("route names unknown policy {name:?}; its requests are denied");
                    }
                }
                Ruling::Refuse(rejection)
            }
            Verdict::Wait(pending) => Ruling::Wait(pending),
        };
        (decision.policy, ruling)
    }

    fn wait(&mut self, pending: Pending) -> Option<Wait> {
        let shared = self.shared?;
        match pending {
            Pending::Introspection(introspection::Pending::Callout { credential, digest }) => {
                let token = fetch::dispatch_introspection(shared, &credential, &digest)?;
                let started_ms = abi::now_unix_nanos().unwrap_or(0) / 1_000_000;
                *self.callout = Some((token, Callout::Introspection(digest, started_ms)));
                Some(Wait::Callout(token))
            }
            Pending::Introspection(introspection::Pending::Wait { .. }) => shared
                .add_waiter(self.context_id, self.me.clone())
                .then_some(Wait::Peer),
            Pending::Keys(provider) => {
                log::info!(
                    "unknown kid for provider {}: refetching its JWKS",
                    shared
                        .guard
                        .provider(provider)
                        .map_or("?", |p| p.name.as_str())
                );
                let token = fetch::dispatch(shared, FetchTarget::Keys(provider))?;
                *self.callout = Some((token, Callout::Keys(provider)));
                Some(Wait::Callout(token))
            }
        }
    }

    fn admit(
        &mut self,
        policy: Option<PolicyId>,
        (headers, admission): Self::Admission,
    ) -> Result<(), Rejection<'r>> {
        let Some(shared) = self.shared else {
            return Err(Rejection::HostFailure);
        };
        if probe_before_admission() {
            return Ok(());
        }
        for edit in header_edits(
            &shared.guard,
            &shared.identity_headers,
            headers.headers(),
            &admission,
        ) {
            let applied = match &edit {
                HeaderEdit::Remove(name) => abi::remove_request_header(name),
                HeaderEdit::Set(name, value) => abi::set_request_header(name, value),
            };
            if let Err(HostError(status)) = applied {
                log::error!("cannot edit the request (host status {status}); denying");
                return Err(Rejection::HostFailure);
            }
        }
        if let Some(refresh) = &admission.refresh {
            shared.queue_refresh(refresh.clone());
        }
        for d in &admission.detections {
            shared.screening_finding(d, false);
        }
        record_decision(&DecisionRecord::allowed(policy_name(shared, policy), &admission).line());
        log::debug!(
            "admit policy={} client_id={} key_id={} subject_present={}",
            policy_name(shared, policy),
            admission.client_id().unwrap_or("-"),
            admission.identity.map_or("-", |(_, k)| k),
            admission
                .token
                .as_ref()
                .is_some_and(|t| t.subject.is_some()),
        );
        Ok(())
    }

    fn check_body(
        &mut self,
        policy: Option<PolicyId>,
        check: &BodyCheck,
        len: u64,
    ) -> Result<(), Rejection<'r>> {
        let (Some(shared), Some(policy)) = (self.shared, policy) else {
            return Err(Rejection::UnknownPolicy);
        };
        if stops_after(Stage::BodyWait) {
            return Ok(());
        }
        let body = abi::request_body(usize::try_from(len).unwrap_or(usize::MAX)).map_err(|e| {
            log::error!("cannot read the request body (host status {})", e.0);
            Rejection::HostFailure
        })?;
        if stops_after(Stage::BodyRead) {
            return Ok(());
        }
        if stops_after(Stage::BodyTwice) {
            check_body(&shared.guard, policy, check, &body)?;
        }
        if let Some(detection) = check_body(&shared.guard, policy, check, &body)? {
            shared.screening_finding(&detection, false);
        }
        Ok(())
    }

    fn body_too_large(&self) -> Rejection<'r> {
        Rejection::Payload(PayloadProblem::BodyTooLarge)
    }

    fn undecided(&self) -> Rejection<'r> {
        Rejection::AuthServiceUnavailable { retry_after: 1 }
    }

    fn refuse(&mut self, policy: Option<PolicyId>, rejection: Rejection<'r>) {
        if let Some(shared) = self.shared {
            count(shared, policy, Outcome::Denied(rejection.reason()));
            if let Rejection::Blocked(d) = &rejection {
                shared.screening_finding(d, true);
            }
            record_decision(
                &DecisionRecord::denied(policy_name(shared, policy), &rejection).line(),
            );
            log::info!(
                "deny policy={} reason={} provider={} client_id={} key_id={} request_id={}",
                policy_name(shared, policy),
                rejection.reason().as_str(),
                rejection.provider().unwrap_or("-"),
                rejection.client_id().unwrap_or("-"),
                rejection.key_id().unwrap_or("-"),
                self.request_id.as_deref().unwrap_or("-"),
            );
        }
        let response = render(&rejection, self.request_id.as_deref().map(str::as_bytes));
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        if let Err(e) =
            abi::send_local_response(response.status, &headers, response.body.as_bytes())
        {
            // Nothing else can be done from here; the request is held and is not forwarded.
            log::error!("cannot send the local reply (host status {})", e.0);
        }
    }

    fn allowed(&mut self, policy: Option<PolicyId>) {
        if probe_before_admission() {
            return;
        }
        if let Some(shared) = self.shared {
            count(shared, policy, Outcome::Allowed);
        }
    }

    fn resume(&mut self) {
        if let Err(e) = abi::resume_request() {
            log::error!("cannot resume the request (host status {})", e.0);
        }
    }
}

/// A stage probe that stops before the decision is applied: the request goes on undecided,
/// nothing edited, counted or recorded (`probe`; never in the shipped module).
fn probe_admit<'r>() -> Decided<HostGate<'r>> {
    (
        None,
        Ruling::Admit((HeaderMap::default(), Admission::default()), None),
    )
}

fn probe_before_admission() -> bool {
    [Stage::Headers, Stage::Meta, Stage::Facts, Stage::Decide]
        .into_iter()
        .any(stops_after)
}

/// Counts rate-limit events and logs the ones an operator must see (shadow denials, store
/// failures). Never logs the key itself (it may be a header value or an address).
fn rate_limit_events(
    shared: &Shared,
    decision: &Decision<'_>,
    events: &[(usize, Event)],
    request_id: Option<&str>,
) {
    let Some(policy_id) = decision.policy else {
        return;
    };
    let Some(policy) = shared.guard.policy(policy_id) else {
        return;
    };
    let client_id = match &decision.verdict {
        Verdict::Allow(a) => a.client_id().unwrap_or("-"),
        _ => "-",
    };
    let rid = request_id.unwrap_or("-");
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

/// Stores the decision in the request's filter state for the access log (`decision_record`).
/// Losing it must not change the decision: a failure is only logged.
fn record_decision(line: &str) {
    if let Err(e) = abi::set_property(crate::decision_record::FILTER_STATE_KEY, line.as_bytes()) {
        log::debug!(
            "cannot record the decision in the filter state (host status {})",
            e.0
        );
    }
}

fn policy_name(shared: &Shared, policy: Option<PolicyId>) -> &str {
    policy
        .and_then(|id| shared.guard.policy(id))
        .map_or(crate::metrics::NO_POLICY_LABEL, |p| p.name.as_str())
}

fn count(shared: &Shared, policy: Option<PolicyId>, outcome: Outcome) {
    if let Some(id) = shared.metrics.get(policy, outcome) {
        // A failed increment loses one count; it must not affect the request.
        let _ = proxy_wasm::hostcalls::increment_metric(id, 1);
    }
}
