//! The request pipeline: select the route's policy, then run its checks in order. Pure: the
//! adapter gathers the facts into a [`RequestView`] and an [`Env`] (host clock, shared store,
//! what this decision may do) and the request lifecycle (`lifecycle`) acts on the [`Decision`].

use crate::abuse::lockout::{check_lockouts, record_failed_auth};
use crate::abuse::Guardrails;
use crate::checks::api_key::{Authenticated, CredentialLocation};
use crate::checks::introspection::{self, IntroFacts, IntroOutcome, Introspected, Refresh};
use crate::checks::jwt::{self, TokenAdmission};
use crate::checks::mtls::MtlsProblem;
use crate::jwt::provider::{AuthMode, ProviderId, ProviderKeys};
use crate::jwt::runtime::TokenRuntime;
use crate::jwt::TokenProblem;
use crate::lifecycle::Attempt;
use crate::payload::{check_json_keeping, BodyPlan, PayloadProblem};
use crate::policy::{select, Guard, RoutePolicy};
use crate::ratelimit::{enforce, enforce_before_checks, Event};
use crate::rejection::{KeyProblem, Rejection};
use crate::remote::document::try_early_refetch;
use crate::request::RequestView;
use crate::route::Selection;
use crate::screening::BodyScreening;
use crate::store::SharedStore;
use crate::time::UnixTime;
use crate::verdict::{Admission, BodyCheck, Decision, Pending, Verdict};

/// The host's facts for a decision.
pub struct Env<'a> {
    pub store: &'a dyn SharedStore,
    pub now: UnixTime,
    /// The same host clock in nanoseconds (rate limits, introspection timing).
    pub now_ns: u64,
    /// The headers end the request (no body follows).
    pub end_of_stream: bool,
    /// What this decision may do (wait for the auth service, refetch keys).
    pub attempt: Attempt,
    /// The connection's verified client certificate, when the policy reads it (`mtls`).
    pub peer: Option<&'a crate::checks::mtls::PeerCertificate>,
}

impl<'a> Env<'a> {
    /// A first decision at `now_ns`: it may wait and refetch.
    pub fn first(store: &'a dyn SharedStore, now_ns: u64, end_of_stream: bool) -> Env<'a> {
        Env {
            store,
            now: UnixTime(i64::try_from(now_ns / 1_000_000_000).unwrap_or(i64::MAX)),
            now_ns,
            end_of_stream,
            attempt: Attempt {
                may_wait: true,
                may_refetch: true,
            },
            peer: None,
        }
    }
}

/// What a decision reports for metrics and logs.
#[derive(Debug, Default)]
pub struct Events {
    /// (limit index, event) per rate limit.
    pub rate_limits: Vec<(usize, Event)>,
    pub introspection: Vec<crate::introspect::Event>,
    /// Negative cache and budget of expensive operations.
    pub abuse: Vec<crate::abuse::AbuseEvent>,
}

/// Why the checks stopped short of an admission.
enum Halt<'g> {
    Deny(Rejection<'g>),
    Wait(Pending),
}

impl<'g> From<Rejection<'g>> for Halt<'g> {
    fn from(r: Rejection<'g>) -> Self {
        Halt::Deny(r)
    }
}

/// Decides a request: the route's policy, its checks in order, then its rate limits (which
/// count only requests every other check admitted).
pub fn decide<'g>(
    guard: &'g Guard,
    request: &RequestView<'_>,
    env: &Env<'_>,
    runtime: &mut TokenRuntime,
    events: &mut Events,
) -> Decision<'g> {
    decide_selected(guard, select(guard, request), request, env, runtime, events)
}

/// [`decide`] under a policy already selected for `request` (`policy::select` of the same guard
/// and request): the host adapter selects once, to know which facts the policy needs (client
/// address, certificate) before it reads them, and hands the selection on.
pub fn decide_selected<'g>(
    guard: &'g Guard,
    selection: Selection,
    request: &RequestView<'_>,
    env: &Env<'_>,
    runtime: &mut TokenRuntime,
    events: &mut Events,
) -> Decision<'g> {
    let deny = |policy, rejection| Decision {
        policy,
        verdict: Verdict::Deny(rejection),
    };
    let id = match selection {
        Selection::Policy(id) => id,
        Selection::PassThrough => {
            return Decision {
                policy: None,
                verdict: Verdict::Allow(Admission::default()),
            }
        }
        Selection::NoPolicy => return deny(None, Rejection::NoPolicy),
        Selection::UnknownPolicy => return deny(None, Rejection::UnknownPolicy),
    };
    // Unreachable by construction (ids come from the same table); still fail closed.
    let Some(policy) = guard.policy(id) else {
        return deny(None, Rejection::UnknownPolicy);
    };
    // Before any credential is looked at: lockouts after repeated failed authentications (a
    // shared-data read, nothing written), then limits on every request (a write each). A
    // locked-out flood is refused at the cost of the read alone.
    let early = check_lockouts(
        &policy.rate_limits,
        request,
        env.store,
        env.now_ns,
        &mut events.rate_limits,
    )
    .and_then(|()| {
        enforce_before_checks(
            &policy.rate_limits,
            request,
            env.store,
            env.now_ns,
            &mut events.rate_limits,
        )
    });
    if let Err(rejection) = early {
        return deny(Some(id), rejection);
    }
    let mut facts = IntroFacts {
        store: env.store,
        now_ms: env.now_ns / 1_000_000,
        service_failed: !env.attempt.may_wait,
        events: Vec::new(),
        budget: guard
            .abuse
            .expensive_per_address
            .as_ref()
            .map(|b| (b, request.client_ip)),
    };
    let mut guardrails = Guardrails {
        settings: &guard.abuse,
        store: env.store,
        client_ip: request.client_ip,
        now_ns: env.now_ns,
        events: Vec::new(),
    };
    let checked = run_checks(
        guard,
        policy,
        request,
        env,
        runtime,
        &mut facts,
        &mut guardrails,
    );
    events.introspection.append(&mut facts.events);
    events.abuse.append(&mut guardrails.events);
    if let Err(Halt::Deny(rejection)) = &checked {
        if is_failed_authentication(rejection) {
            record_failed_auth(
                &policy.rate_limits,
                request,
                env.store,
                env.now_ns,
                &mut events.rate_limits,
            );
        }
    }
    let verdict = match checked {
        Ok(admission) if policy.rate_limits.is_empty() => Verdict::Allow(admission),
        Ok(mut admission) => {
            admission.tier = crate::ratelimit::tier(&policy.rate_limits, &admission);
            match enforce(
                &policy.rate_limits,
                request,
                &admission,
                env.store,
                env.now_ns,
                &mut events.rate_limits,
            ) {
                Ok(()) => Verdict::Allow(admission),
                Err(rejection) => Verdict::Deny(rejection),
            }
        }
        Err(Halt::Wait(pending)) => Verdict::Wait(pending),
        Err(Halt::Deny(rejection)) => match refetch_for(guard, &rejection, env) {
            Some(provider) => Verdict::Wait(Pending::Keys(provider)),
            None => Verdict::Deny(rejection),
        },
    };
    Decision {
        policy: Some(id),
        verdict,
    }
}

/// A token under an unknown `kid` of a remote provider may be signed by a key published since
/// the last fetch: one refetch, if this decision may wait and the Envoy-wide rate limit of early
/// refetches allows one now.
fn refetch_for(guard: &Guard, rejection: &Rejection<'_>, env: &Env<'_>) -> Option<ProviderId> {
    let Rejection::Token {
        problem: TokenProblem::UnknownKid,
        provider: Some(name),
    } = rejection
    else {
        return None;
    };
    if !(env.attempt.may_wait && env.attempt.may_refetch) {
        return None;
    }
    let id = guard
        .jwt_providers
        .iter()
        .position(|p| p.name == *name)
        .map(ProviderId)?;
    let ProviderKeys::Remote(source) = &guard.provider(id)?.keys else {
        return None;
    };
    match try_early_refetch(env.store, source, env.now) {
        Ok(true) => Some(id),
        _ => None,
    }
}

/// What one credential check found.
enum Found<'g, T> {
    /// The policy has no such check.
    NotChecked,
    /// No credential of this kind: the rejection a client gets if the auth mode needs one.
    Absent(Rejection<'g>),
    Valid(T),
    /// A credential is present and not valid: refused in every auth mode.
    Refused(Rejection<'g>),
    /// A credential only the auth service can judge (an API key nobody here knows).
    Deferred,
}

impl<'g, T> Found<'g, T> {
    fn from_result(result: Option<Result<T, Rejection<'g>>>) -> Self {
        match result {
            None => Found::NotChecked,
            Some(Ok(v)) => Found::Valid(v),
            Some(Err(r)) if is_missing(&r) => Found::Absent(r),
            Some(Err(r)) => Found::Refused(r),
        }
    }

    fn is_valid(&self) -> bool {
        matches!(self, Found::Valid(_))
    }

    fn valid(self) -> Option<T> {
        match self {
            Found::Valid(v) => Some(v),
            _ => None,
        }
    }

    /// The auth mode's verdict on this credential, checked as soon as it is known (so a refused
    /// key stops the request before any token is verified or any callout made): a refused
    /// credential always stops it; a missing one under `all`, unless `vouched` (another
    /// credential already identified the caller for it).
    fn settle(&self, auth: AuthMode, vouched: bool) -> Result<(), Rejection<'g>> {
        match self {
            Found::Refused(r) => Err(r.clone()),
            Found::Absent(r) if auth == AuthMode::All && !vouched => Err(r.clone()),
            _ => Ok(()),
        }
    }
}

/// Who an API key identified: a key of the configuration, or one of the remote key list.
enum KeyHolder<'g> {
    Configured(Authenticated<'g>),
    Remote(Introspected, Option<CredentialLocation<'g>>),
}

fn run_checks<'g>(
    guard: &'g Guard,
    policy: &'g RoutePolicy,
    request: &RequestView<'_>,
    env: &Env<'_>,
    runtime: &mut TokenRuntime,
    intro: &mut IntroFacts<'_>,
    guardrails: &mut Guardrails<'_>,
) -> Result<Admission<'g>, Halt<'g>> {
    let now = env.now;
    policy.request_limits.check(request)?;
    // A CORS preflight the policy lets pass: checked for the method it asks for, and it skips
    // the header rules (a preflight carries none of the real request's headers) and the
    // credentials (a browser never sends them on a preflight).
    let preflight = policy.passing_preflight(request);
    if let Some(methods) = &policy.methods {
        match preflight {
            Some(asked) => methods.check_method(asked)?,
            None => methods.check(request)?,
        }
    }
    if let Some(ip) = &policy.ip {
        ip.check(request)?;
    }
    let mut detections = Vec::new();
    if let Some(rule) = &policy.screening {
        if let Some(d) = rule.screen_request(request) {
            if rule.blocks() {
                return Err(Rejection::Blocked(d).into());
            }
            detections.push(d);
        }
    }
    if let Some(rule) = &policy.query {
        rule.check(request).map_err(Rejection::Payload)?;
    }
    if let (Some(rule), None) = (&policy.headers, preflight) {
        rule.check(request).map_err(Rejection::Payload)?;
    }
    if preflight.is_some() {
        let body = body_check(policy, request, env.end_of_stream, &mut detections)?;
        return Ok(Admission {
            detections,
            body,
            ..Admission::default()
        });
    }
    // The client certificate, when the policy names its clients: required whatever `auth` says.
    let certified = match &policy.mtls {
        Some(rule) => Some(rule.identify(env.peer).map_err(|problem| match problem {
            MtlsProblem::Missing => Rejection::ClientCertificateMissing,
            MtlsProblem::Unknown => Rejection::ClientCertificateUnknown,
        })?),
        None => None,
    };
    // Credentials, cheapest first; each is settled by the auth mode as soon as it is known.
    let key = api_key(guard, policy, request, now, runtime);
    key.settle(policy.auth, false)?;
    let token = Found::from_result(policy.jwt.as_ref().map(|rule| {
        match jwt::check(guard, rule, runtime, request, now, guardrails) {
            // Not a JWT at all (an opaque token): with introspection in the policy, it is the
            // auth service's to judge, not a bad JWT.
            Err(Rejection::Token {
                problem: TokenProblem::Malformed,
                ..
            }) if policy.introspection.is_some() => Err(Rejection::Token {
                problem: TokenProblem::Missing,
                provider: None,
            }),
            other => other,
        }
    }));
    token.settle(policy.auth, false)?;
    let introspected = match (&policy.introspection, &guard.introspection) {
        (Some(rule), Some(service)) => match introspection::check(service, rule, request, intro) {
            IntroOutcome::Admit(who, refresh) => Found::Valid((who, refresh)),
            IntroOutcome::Missing => Found::Absent(Rejection::Token {
                problem: TokenProblem::Missing,
                provider: None,
            }),
            IntroOutcome::Refuse(r) => Found::Refused(r),
            IntroOutcome::Pending(p) => return Err(Halt::Wait(Pending::Introspection(p))),
        },
        _ => Found::NotChecked,
    };
    // A missing token at the service is fine under `all` when a key or JWT identified the
    // caller (the service judges what those could not).
    introspected.settle(policy.auth, key.is_valid() || token.is_valid())?;
    let anyone = key.is_valid() || token.is_valid() || introspected.is_valid();
    if policy.auth == AuthMode::Any && !anyone {
        // Both missing: the token challenge when a JWT is accepted (bearer clients are the
        // common case), else the key challenge.
        return Err(Rejection::Token {
            problem: TokenProblem::Missing,
            provider: None,
        }
        .into());
    }
    let mut admission = admit(key.valid(), token.valid(), introspected.valid());
    // A key's identity wins; the certificate's is the request's identity otherwise.
    admission.identity = admission.identity.or(certified);
    admission.detections = detections;
    admission.body = body_check(
        policy,
        request,
        env.end_of_stream,
        &mut admission.detections,
    )?;
    Ok(admission)
}

/// The API key check, with the remote key list and the auth service as fallbacks for a key the
/// configuration does not know.
fn api_key<'g>(
    guard: &'g Guard,
    policy: &'g RoutePolicy,
    request: &RequestView<'_>,
    now: UnixTime,
    runtime: &TokenRuntime,
) -> Found<'g, KeyHolder<'g>> {
    let Some(rule) = &policy.api_key else {
        return Found::NotChecked;
    };
    let revoked = |key_id| Rejection::ApiKeyInvalid {
        problem: KeyProblem::Revoked,
        key_id,
    };
    let local = match rule.check(&guard.api_keys, request, now) {
        Ok(who) if runtime.revocations.revokes_key(who.key_id, now) => {
            Err(revoked(Some(who.key_id)))
        }
        other => other,
    };
    let unknown = matches!(
        local,
        Err(Rejection::ApiKeyInvalid {
            problem: KeyProblem::Unknown,
            ..
        })
    );
    if !unknown {
        return Found::from_result(Some(local.map(KeyHolder::Configured)));
    }
    // A key the configuration does not know may be on the remote key list (pulled from the
    // central service): judged against configured + remote keys, so `clients` lists hold.
    // Problems with a remote key are reported without its (remote) id: rejections must not
    // borrow the remote list.
    if let Some(merged) = runtime.merged_api_keys() {
        let remote = match rule.check(merged, request, now) {
            Ok(who) if runtime.revocations.revokes_key(who.key_id, now) => Err(revoked(None)),
            Ok(who) => Ok(KeyHolder::Remote(
                Introspected {
                    subject: None,
                    client_id: Some(who.client_id.to_string()),
                    key_id: Some(who.key_id.to_string()),
                },
                rule.strip_location(request),
            )),
            Err(Rejection::ApiKeyInvalid { problem, .. }) => Err(Rejection::ApiKeyInvalid {
                problem,
                key_id: None,
            }),
            Err(Rejection::ApiKeyMissing) => Err(Rejection::ApiKeyMissing),
            Err(Rejection::ApiKeyAmbiguous) => Err(Rejection::ApiKeyAmbiguous),
            // A remote key of a client this policy does not admit, or anything else: the key
            // is unknown here.
            Err(_) => Err(Rejection::ApiKeyInvalid {
                problem: KeyProblem::Unknown,
                key_id: None,
            }),
        };
        let still_unknown = matches!(
            remote,
            Err(Rejection::ApiKeyInvalid {
                problem: KeyProblem::Unknown,
                ..
            })
        );
        if !(still_unknown && policy.introspection.is_some()) {
            return Found::from_result(Some(remote));
        }
    } else if policy.introspection.is_none() {
        return Found::from_result(Some(local.map(KeyHolder::Configured)));
    }
    // An API key nobody here knows may still be valid at the auth service: with introspection
    // in the policy, it is the service's to judge.
    Found::Deferred
}

/// The admission of the credentials that were valid.
fn admit<'g>(
    key: Option<KeyHolder<'g>>,
    token: Option<TokenAdmission<'g>>,
    introspected: Option<(Introspected, Option<Refresh>)>,
) -> Admission<'g> {
    let mut admission = Admission {
        token,
        ..Admission::default()
    };
    match key {
        Some(KeyHolder::Configured(who)) => {
            admission.identity = Some((who.client_id, who.key_id));
            admission.strip = who.strip;
        }
        Some(KeyHolder::Remote(who, strip)) => {
            admission.introspected = Some(who);
            admission.strip = strip;
        }
        None => {}
    }
    if let Some((who, refresh)) = introspected {
        admission.introspected = Some(who);
        admission.refresh = refresh;
    }
    admission
}

/// What the body of an admitted request still needs: the payload rules' limit and JSON checks,
/// and body screening (form, JSON and multipart bodies are buffered, up to the payload limit
/// or 1 MiB, and screened at the end). Last among the checks: only authenticated requests get
/// their bodies read. A body a `detect` policy cannot screen is reported in `detections`.
fn body_check<'g>(
    policy: &'g RoutePolicy,
    request: &RequestView<'_>,
    end_of_stream: bool,
    detections: &mut Vec<crate::screening::Detection>,
) -> Result<Option<BodyCheck>, Rejection<'g>> {
    let mut check = None;
    if let Some(payload) = &policy.payload {
        match payload
            .on_headers(request, end_of_stream)
            .map_err(Rejection::Payload)?
        {
            BodyPlan::None => {}
            BodyPlan::Inspect { max_bytes, json } => {
                check = Some(BodyCheck {
                    max_bytes,
                    buffer: json.is_some(),
                    method: request.method().to_vec(),
                    screen: None,
                    json: json.is_some(),
                });
            }
        }
    }
    if let (Some(rule), false) = (&policy.screening, end_of_stream) {
        let kind = match rule.plan_body(request) {
            BodyScreening::Skip => None,
            BodyScreening::Screen(kind) => Some(kind),
            BodyScreening::Refuse(problem) => return Err(Rejection::Payload(problem)),
            BodyScreening::Report(d) => {
                detections.push(d);
                None
            }
        };
        if let Some(kind) = kind {
            let check = check.get_or_insert_with(|| BodyCheck {
                max_bytes: crate::payload::DEFAULT_MAX_BODY_BYTES,
                buffer: true,
                method: request.method().to_vec(),
                screen: None,
                json: false,
            });
            check.buffer = true;
            check.screen = Some(kind);
        }
    }
    Ok(check)
}

/// Checks a whole (buffered) body of a request admitted with a [`BodyCheck`] under `policy`.
/// `Ok(Some(d))`: a screening finding of a policy in `detect` mode (count and log it).
pub fn check_body<'g>(
    guard: &'g Guard,
    policy: crate::policy::PolicyId,
    check: &BodyCheck,
    body: &[u8],
) -> Result<Option<crate::screening::Detection>, Rejection<'g>> {
    if u64::try_from(body.len()).unwrap_or(u64::MAX) > check.max_bytes {
        return Err(Rejection::Payload(PayloadProblem::BodyTooLarge));
    }
    let Some(policy) = guard.policy(policy) else {
        // Unreachable by construction; fail closed.
        return Err(Rejection::UnknownPolicy);
    };
    let mut parsed = None;
    if let Some(json) = policy
        .payload
        .as_ref()
        .and_then(|p| p.settings_for(&check.method).json.as_ref())
        .filter(|_| check.json)
    {
        parsed = check_json_keeping(json, body).map_err(Rejection::Payload)?;
    }
    if let (Some(rule), Some(kind)) = (&policy.screening, &check.screen) {
        // The schema stage's document, when there was one: one parse per body, not two.
        return rule.judge_body(kind, body, parsed.as_ref());
    }
    Ok(None)
}

/// [`decide`] at `now` against a fresh in-memory store (tests of the checks, not of limits).
#[cfg(test)]
pub(crate) fn decide_at<'g>(
    guard: &'g Guard,
    request: &RequestView<'_>,
    now: UnixTime,
    runtime: &mut TokenRuntime,
    end_of_stream: bool,
) -> Decision<'g> {
    let store = crate::store::MemoryStore::default();
    let ns = u64::try_from(now.0)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000);
    let mut env = Env::first(&store, ns, end_of_stream);
    env.now = now;
    decide(guard, request, &env, runtime, &mut Events::default())
}

/// A presented credential was refused (what a lockout counts): a wrong, expired or revoked
/// API key or token, a bad signature, an inactive token. Missing credentials, unavailable
/// services and every other refusal are not guesses.
fn is_failed_authentication(r: &Rejection<'_>) -> bool {
    match r {
        Rejection::ApiKeyInvalid { .. } | Rejection::IntrospectionInactive => true,
        Rejection::Token { problem, .. } => *problem != TokenProblem::Missing,
        _ => false,
    }
}

fn is_missing(r: &Rejection<'_>) -> bool {
    matches!(
        r,
        Rejection::ApiKeyMissing
            | Rejection::Token {
                problem: crate::jwt::TokenProblem::Missing,
                ..
            }
    )
}

#[cfg(test)]
mod tests;
