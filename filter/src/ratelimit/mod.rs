//! Rate limits: several per policy, each a GCRA bucket per key (client, address prefix, header
//! value, or the whole policy), kept in Envoy's shared data so that every worker of one Envoy
//! enforces one exact limit. Pure: the host passes in its shared data as a [`SharedStore`] and
//! its clock in nanoseconds.
//!
//! - [`gcra`]: the bucket math.
//! - [`table`]: the bounded slot table in shared data, and the CAS retry loop.
//! - [`store`]: the store contract (Envoy's shared data) and an in-memory implementation.

pub mod gcra;
pub mod store;
pub mod table;

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use gcra::Gcra;
use store::SharedStore;
use table::{Consumed, Table};

use crate::cidr::Cidr;
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::verdict::Admission;

pub const DEFAULT_MAX_KEYS: u32 = 10_000;
pub const MAX_MAX_KEYS: u32 = 100_000;

/// What a limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The authenticated subject the policy established: today the API key's client id. Other
    /// identity sources (a JWT `sub`) fill the same [`Admission::identity`] and plug in here.
    Client,
    /// The client address, grouped by prefix (`/32` and `/128` by default).
    Ip { v4_prefix: u8, v6_prefix: u8 },
    /// The first value of a request header (absent: one shared bucket for "no header").
    Header(String),
    /// One bucket for the whole policy.
    Policy,
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
    pub table: Table,
}

impl RateLimit {
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
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::Allowed,
        Event::Limited,
        Event::ShadowLimited,
        Event::CasRetriesExhausted,
        Event::StoreErrors,
        Event::Overflow,
        Event::CasRetries,
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
        }
    }

    pub fn index(self) -> usize {
        Event::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }
}

/// Details of a 429, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited<'g> {
    pub limit: &'g str,
    pub quota: u64,
    pub window_secs: u64,
    /// Whole seconds until one request is admitted again (at least 1).
    pub retry_after_secs: u64,
    /// Whole seconds until the bucket is full again.
    pub reset_secs: u64,
}

/// The 64-bit key of a request for one limit (never 0). `None` when the key cannot be formed.
pub fn key_hash(
    source: &KeySource,
    request: &RequestView<'_>,
    admission: &Admission<'_>,
) -> Option<u64> {
    // SipHash with fixed keys: the same in every VM of the module, so all workers agree.
    let mut h = std::hash::DefaultHasher::new();
    match source {
        KeySource::Client => {
            let client = admission.client_id()?;
            ("client", client).hash(&mut h);
        }
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
    }
    Some(h.finish().max(1))
}

/// Runs a policy's limits, in order, for a request that passed every other check. Stops at the
/// first enforced limit that denies (limits before it have already counted the request).
/// `events` receives (limit index, event) for metrics and logs.
pub fn enforce<'g>(
    limits: &'g [RateLimit],
    request: &RequestView<'_>,
    admission: &Admission<'_>,
    store: &dyn SharedStore,
    now_ns: u64,
    events: &mut Vec<(usize, Event)>,
) -> Result<(), Rejection<'g>> {
    for (i, limit) in limits.iter().enumerate() {
        let (outcome, retries) = match key_hash(&limit.key, request, admission) {
            Some(hash) => limit
                .table
                .consume_counting_retries(store, &limit.gcra, hash, now_ns),
            // A CORS preflight a policy lets pass carries no credential: limits by client do
            // not count it (limits by address or policy do).
            None if crate::checks::preflight::is_preflight(request)
                && admission.identity.is_none() =>
            {
                continue
            }
            // A client-keyed limit without an identity cannot happen otherwise (the compiler
            // requires an api_key check); if it did, count it as a store failure: fail per
            // on_store_error.
            None => (Consumed::StoreFailed(0), 0),
        };
        for _ in 0..retries {
            events.push((i, Event::CasRetries));
        }
        let failed = match outcome {
            Consumed::Allowed { overflow, .. } => {
                if overflow {
                    events.push((i, Event::Overflow));
                }
                events.push((i, Event::Allowed));
                continue;
            }
            Consumed::Limited {
                retry_after_ns,
                full_in_ns,
                overflow,
            } => {
                if overflow {
                    events.push((i, Event::Overflow));
                }
                if limit.mode == Mode::Shadow {
                    events.push((i, Event::ShadowLimited));
                    continue;
                }
                events.push((i, Event::Limited));
                return Err(Rejection::RateLimited(Limited {
                    limit: &limit.name,
                    quota: limit.quota(),
                    window_secs: limit.window_secs(),
                    retry_after_secs: ceil_secs(retry_after_ns).max(1),
                    reset_secs: ceil_secs(full_in_ns),
                }));
            }
            Consumed::CasRetriesExhausted => Event::CasRetriesExhausted,
            Consumed::StoreFailed(_) => Event::StoreErrors,
        };
        events.push((i, failed));
        if limit.on_store_error == OnStoreError::Deny && limit.mode == Mode::Enforce {
            return Err(Rejection::RateLimitUnavailable);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
