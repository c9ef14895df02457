//! Rate limits: several per policy, each a GCRA bucket per key (client, address prefix, header
//! value, or the whole policy), kept in Envoy's shared data so that every worker of one Envoy
//! enforces one exact limit. Pure: the host passes in its shared data as a [`SharedStore`] and
//! its clock in nanoseconds.
//!
//! - [`gcra`]: the bucket math.
//! - [`key_prefix`]: the key-id prefix of a presented API key (the lockouts' key).
//! - [`table`]: the buckets of one limit, or of several limits of a policy that count by the
//!   same key (one entry per key holding every such limit's state: one read and one
//!   compare-and-swap for all of them), in a bounded slot table in shared data (`crate::store`).

pub mod gcra;
pub mod key_prefix;
pub mod table;

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::store::SharedStore;
use gcra::Gcra;
use key_prefix::KeyIdPrefix;
use table::{Decided, Table, Tats, Updated, MAX_LANES};

use crate::cidr::Cidr;
use crate::rejection::{Limited, Rejection};
use crate::request::RequestView;
use crate::verdict::Admission;

pub const DEFAULT_MAX_KEYS: u32 = 10_000;
pub const MAX_MAX_KEYS: u32 = 100_000;

/// What a limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The API-key client the request was admitted as (a configured key's client, or the
    /// client a remote key list or the auth service named); a request admitted without one (an
    /// introspected token that names no client) is counted by its [`KeySource::Identity`].
    Client,
    /// Whichever verified credential admitted the request: the API key's client, the auth
    /// service's `client_id` or `sub`, the JWT's `sub` (per provider). With `claim`, a JWT is
    /// counted by that claim's value instead (e.g. an organisation or tenant id), and a token
    /// without the claim shares one bucket per provider with every other such token.
    Identity { claim: Option<String> },
    /// The client address, grouped by prefix (`/32` and `/64` by default).
    Ip { v4_prefix: u8, v6_prefix: u8 },
    /// The first value of a request header (absent: one shared bucket for "no header").
    Header(String),
    /// One bucket for the whole policy.
    Policy,
    /// The key-id prefix of the presented API key (lockouts only; see `abuse::lockout`). A
    /// request presenting no key has no such key: the lockout neither counts nor refuses it.
    KeyIdPrefix(KeyIdPrefix),
}

/// Which consumers an [`Override`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumer {
    /// The API-key client (or the client the auth service named) with this id.
    Client(String),
    /// A verified JWT whose claim has this value (a string, or the JSON text of a number or
    /// boolean; an array matches if any item does).
    Claim { claim: String, value: String },
}

/// A per-consumer tier of a limit: its own rate and burst, and a tier name sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub tier: String,
    pub consumer: Consumer,
    pub gcra: Gcra,
}

impl Consumer {
    fn matches(&self, admission: &Admission<'_>) -> bool {
        match self {
            Consumer::Client(id) => admission.client_id() == Some(id.as_str()),
            Consumer::Claim { claim, value } => admission.token.as_ref().is_some_and(|t| {
                t.limit_claims.iter().any(|(name, v)| {
                    *name == claim.as_str() && v.split(',').any(|item| item == value)
                })
            }),
        }
    }
}

/// Which requests a limit counts, and so where in the pipeline it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// Requests every other check admitted (the default): runs last.
    Admitted,
    /// Every request, before any credential is looked at (pre-authentication): runs first,
    /// keyed by address, header or policy.
    Requests,
    /// Failed authentications only (a lockout): consulted first without counting, counted when
    /// a presented credential is refused.
    FailedAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    /// Report only: would-be denials are counted and logged, the request passes.
    Shadow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Answer 503 (the default: fail closed).
    Deny,
    Allow,
}

/// One compiled limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub name: String,
    pub gcra: Gcra,
    pub key: KeySource,
    pub mode: Mode,
    pub on_store_error: OnStoreError,
    /// The table of the limit's entry: its own, or the one it shares with the limits next to
    /// it (in its stage) that count by the same key.
    pub table: Table,
    /// The limit's place in its entry (0 for the first; always 0 in a table of its own).
    pub lane: usize,
    /// Per-consumer tiers, first match wins; consumers that match none get `gcra`.
    pub overrides: Vec<Override>,
    pub counts: Counts,
}

impl RateLimit {
    /// The tier and bucket parameters that apply to an admitted request.
    pub fn tier_of(&self, admission: &Admission<'_>) -> (Option<&str>, &Gcra) {
        match self
            .overrides
            .iter()
            .find(|o| o.consumer.matches(admission))
        {
            Some(o) => (Some(o.tier.as_str()), &o.gcra),
            None => (None, &self.gcra),
        }
    }

    /// The JWT claims this limit reads (its key's claim and its overrides' claims).
    pub fn claims(&self) -> impl Iterator<Item = &str> {
        let key = match &self.key {
            KeySource::Identity { claim: Some(c) } => Some(c.as_str()),
            _ => None,
        };
        key.into_iter()
            .chain(self.overrides.iter().filter_map(|o| match &o.consumer {
                Consumer::Claim { claim, .. } => Some(claim.as_str()),
                Consumer::Client(_) => None,
            }))
    }

    /// `RateLimit-Policy` quota: the burst.
    pub fn quota(&self) -> u64 {
        self.gcra.burst
    }

    /// `RateLimit-Policy` window: seconds to refill the whole burst, rounded up.
    pub fn window_secs(&self) -> u64 {
        ceil_secs(self.gcra.tolerance_ns)
    }
}

/// Nanoseconds to whole seconds, rounded up.
pub fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

/// What happened to one limit for one request (metric events, in [`Event::ALL`] order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Allowed,
    Limited,
    ShadowLimited,
    CasRetriesExhausted,
    StoreErrors,
    /// The key found no slot and was counted against the overflow bucket.
    Overflow,
    /// A concurrent write (another worker) forced a re-read; one event per re-read.
    CasRetries,
    /// A failed authentication was counted by a lockout (`counts: failed_auth`).
    FailedAuth,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Allowed,
        Event::Limited,
        Event::ShadowLimited,
        Event::CasRetriesExhausted,
        Event::StoreErrors,
        Event::Overflow,
        Event::CasRetries,
        Event::FailedAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Allowed => "allowed",
            Event::Limited => "limited",
            Event::ShadowLimited => "shadow_limited",
            Event::CasRetriesExhausted => "cas_retries_exhausted",
            Event::StoreErrors => "store_errors",
            Event::Overflow => "overflow",
            Event::CasRetries => "cas_retries",
            Event::FailedAuth => "failed_auth",
        }
    }

    pub fn index(self) -> usize {
        Event::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }
}

/// The 64-bit key of a request for one limit (never 0). `None` when the key cannot be formed
/// (an identity key for a request admitted without any credential, which the configuration
/// compiler rules out).
pub fn key_hash(
    source: &KeySource,
    request: &RequestView<'_>,
    admission: &Admission<'_>,
) -> Option<u64> {
    // SipHash with fixed keys: the same in every VM of the module, so all workers agree.
    let mut h = std::hash::DefaultHasher::new();
    match source {
        KeySource::Client => match admission.client_id() {
            Some(client) => ("client", client).hash(&mut h),
            None => hash_identity(admission, None, &mut h)?,
        },
        KeySource::Identity { claim } => hash_identity(admission, claim.as_deref(), &mut h)?,
        KeySource::Ip {
            v4_prefix,
            v6_prefix,
        } => match request.client_ip {
            Some(ip) => {
                let len = match ip {
                    IpAddr::V4(_) => *v4_prefix,
                    IpAddr::V6(_) => *v6_prefix,
                };
                ("ip", Cidr::containing(ip, len)).hash(&mut h);
            }
            None => "ip-unknown".hash(&mut h),
        },
        KeySource::Header(name) => match request.header(name) {
            Some(v) => ("header", v).hash(&mut h),
            None => "header-absent".hash(&mut h),
        },
        KeySource::Policy => "policy".hash(&mut h),
        KeySource::KeyIdPrefix(prefix) => ("key-prefix", prefix.presented(request)?).hash(&mut h),
    }
    Some(h.finish().max(1))
}

/// Hashes the verified identity of an admitted request: with `claim`, a JWT's claim value
/// first; then the API-key client, the auth service's client or subject, the JWT subject. The
/// kinds are namespaced (a client id never shares a bucket with an equal JWT subject), JWT
/// values per provider. `None`: no credential admitted the request.
fn hash_identity(
    admission: &Admission<'_>,
    claim: Option<&str>,
    h: &mut std::hash::DefaultHasher,
) -> Option<()> {
    if let (Some(claim), Some(token)) = (claim, &admission.token) {
        match token.limit_claims.iter().find(|(name, _)| *name == claim) {
            Some((_, value)) => ("jwt-claim", token.provider.0, claim, value.as_str()).hash(h),
            None => ("jwt-claim-absent", token.provider.0, claim).hash(h),
        }
        return Some(());
    }
    if let Some(client) = admission.client_id() {
        ("client", client).hash(h);
    } else if let Some(sub) = admission
        .introspected
        .as_ref()
        .and_then(|i| i.subject.as_deref())
    {
        ("introspected-sub", sub).hash(h);
    } else if admission.introspected.is_some() {
        "introspected-anonymous".hash(h);
    } else if let Some(token) = &admission.token {
        match &token.subject {
            Some(sub) => ("jwt-sub", token.provider.0, sub.as_str()).hash(h),
            None => ("jwt-sub-absent", token.provider.0).hash(h),
        }
    } else {
        return None;
    }
    Some(())
}

/// The tier of an admitted request: the first override any of the policy's limits has for it.
pub fn tier<'g>(limits: &'g [RateLimit], admission: &Admission<'_>) -> Option<&'g str> {
    limits
        .iter()
        .filter(|l| l.counts == Counts::Admitted)
        .find_map(|l| l.tier_of(admission).0)
}

/// Runs a policy's limits that count admitted requests, in order, for a request that passed
/// every other check. Stops at the first enforced limit that denies (limits before it have
/// already counted the request). `events` receives (limit index, event) for metrics and logs.
pub fn enforce<'g>(
    limits: &'g [RateLimit],
    request: &RequestView<'_>,
    admission: &Admission<'_>,
    store: &dyn SharedStore,
    now_ns: u64,
    events: &mut Vec<(usize, Event)>,
) -> Result<(), Rejection<'g>> {
    enforce_stage(
        limits,
        Counts::Admitted,
        request,
        admission,
        store,
        now_ns,
        events,
    )
}

/// Runs the pre-authentication limits (`counts: requests`), before any check.
pub fn enforce_before_checks<'g>(
    limits: &'g [RateLimit],
    request: &RequestView<'_>,
    store: &dyn SharedStore,
    now_ns: u64,
    events: &mut Vec<(usize, Event)>,
) -> Result<(), Rejection<'g>> {
    enforce_stage(
        limits,
        Counts::Requests,
        request,
        &Admission::default(),
        store,
        now_ns,
        events,
    )
}

/// The limits whose states share the entry of `limits[lead]`, in order, `lead` first (the
/// compiler gives one entry to limits next to each other in one stage with the same key and
/// table size; their table's prefix names them all).
pub fn entry_members(
    limits: &[RateLimit],
    lead: usize,
) -> impl Iterator<Item = (usize, &RateLimit)> + Clone {
    let leader = limits.get(lead);
    let lanes = leader.map_or(0, |l| l.table.lanes as usize);
    limits
        .iter()
        .enumerate()
        .skip(lead)
        .filter(move |(_, l)| {
            leader
                .is_some_and(|lead| l.counts == lead.counts && l.table.prefix == lead.table.prefix)
        })
        .take(lanes)
}

/// What one request did to one lane of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneOutcome {
    /// An earlier lane refused the request: this one was not consulted (nor counted).
    Unreached,
    Allowed,
    Refused {
        retry_after_ns: u64,
        full_in_ns: u64,
    },
}

/// Decides one request against an entry's lanes in order, as separate limits run in order:
/// each lane that admits counts the request; an enforced refusal stops there (the lanes after it
/// are neither consulted nor counted); a shadow refusal counts nothing and goes on. Writes if
/// any lane counted.
fn decide_lanes(
    gcras: &[Option<&Gcra>; MAX_LANES],
    modes: &[Mode; MAX_LANES],
    tats: &Tats,
    now_ns: u64,
) -> Decided<[LaneOutcome; MAX_LANES]> {
    let mut next = *tats;
    let mut outcomes = [LaneOutcome::Unreached; MAX_LANES];
    let mut counted = false;
    let lanes = gcras
        .iter()
        .zip(modes)
        .zip(next.iter_mut())
        .zip(outcomes.iter_mut());
    for (((gcra, mode), tat), outcome) in lanes {
        let Some(gcra) = gcra else { break };
        match gcra.decide(*tat, now_ns) {
            gcra::GcraOutcome::Allow { new_tat, .. } => {
                *tat = new_tat;
                *outcome = LaneOutcome::Allowed;
                counted = true;
            }
            gcra::GcraOutcome::Deny {
                retry_after_ns,
                full_in_ns,
            } => {
                *outcome = LaneOutcome::Refused {
                    retry_after_ns,
                    full_in_ns,
                };
                if *mode == Mode::Enforce {
                    break;
                }
            }
        }
    }
    if counted {
        Decided::Write(next, outcomes)
    } else {
        Decided::Keep(outcomes)
    }
}

fn enforce_stage<'g>(
    limits: &'g [RateLimit],
    stage: Counts,
    request: &RequestView<'_>,
    admission: &Admission<'_>,
    store: &dyn SharedStore,
    now_ns: u64,
    events: &mut Vec<(usize, Event)>,
) -> Result<(), Rejection<'g>> {
    for (i, limit) in limits.iter().enumerate() {
        // An entry is decided at its first limit, for every limit it holds.
        if limit.counts != stage || limit.lane != 0 {
            continue;
        }
        let members = entry_members(limits, i);
        let mut gcras = [None; MAX_LANES];
        let mut modes = [Mode::Enforce; MAX_LANES];
        for ((_, member), (gcra, mode)) in members.clone().zip(gcras.iter_mut().zip(&mut modes)) {
            *gcra = Some(member.tier_of(admission).1);
            *mode = member.mode;
        }
        let (updated, retries) = match key_hash(&limit.key, request, admission) {
            Some(hash) => limit.table.update(store, hash, now_ns, |tats| {
                decide_lanes(&gcras, &modes, tats, now_ns)
            }),
            // A CORS preflight a policy lets pass carries no credential: limits by client or
            // identity do not count it (limits by address or policy do).
            None if crate::checks::preflight::is_preflight(request)
                && admission.identity.is_none() =>
            {
                continue
            }
            // An identity-keyed limit without an identity cannot happen otherwise (the compiler
            // requires a credential the policy always has); if it did, fail per on_store_error.
            None => (Updated::StoreFailed(0), 0),
        };
        let failed = match updated {
            Updated::Done { result, overflow } => {
                report_lanes(members, result, overflow, retries, admission, events)?;
                continue;
            }
            Updated::CasRetriesExhausted => Event::CasRetriesExhausted,
            Updated::StoreFailed(_) => Event::StoreErrors,
        };
        for (j, member) in members {
            for _ in 0..retries {
                events.push((j, Event::CasRetries));
            }
            events.push((j, failed));
            if member.on_store_error == OnStoreError::Deny && member.mode == Mode::Enforce {
                return Err(Rejection::RateLimitUnavailable);
            }
        }
    }
    Ok(())
}

/// The events of an entry's decided lanes, in order, and the refusal of the first enforced
/// lane that refused.
fn report_lanes<'g>(
    members: impl Iterator<Item = (usize, &'g RateLimit)>,
    outcomes: [LaneOutcome; MAX_LANES],
    overflow: bool,
    retries: u32,
    admission: &Admission<'_>,
    events: &mut Vec<(usize, Event)>,
) -> Result<(), Rejection<'g>> {
    for ((j, member), outcome) in members.zip(outcomes) {
        if outcome == LaneOutcome::Unreached {
            break;
        }
        for _ in 0..retries {
            events.push((j, Event::CasRetries));
        }
        if overflow {
            events.push((j, Event::Overflow));
        }
        let LaneOutcome::Refused {
            retry_after_ns,
            full_in_ns,
        } = outcome
        else {
            events.push((j, Event::Allowed));
            continue;
        };
        if member.mode == Mode::Shadow {
            events.push((j, Event::ShadowLimited));
            continue;
        }
        events.push((j, Event::Limited));
        let (_, gcra) = member.tier_of(admission);
        return Err(Rejection::RateLimited(Limited {
            limit: &member.name,
            quota: gcra.burst,
            window_secs: ceil_secs(gcra.tolerance_ns),
            retry_after_secs: ceil_secs(retry_after_ns).max(1),
            reset_secs: ceil_secs(full_in_ns),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
