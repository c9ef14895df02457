//! What every request of a VM shares with its root context ([`Shared`]), below the adapter's
//! modules that use it: the root context (`root`) builds it, requests (`http`) and callouts
//! (`fetch`) read it. It names neither of them: a waiting request is a [`Waiter`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Weak;

use proxy_wasm::types::MetricType;

use super::abi::{self, HostStore};
use crate::checks::introspection::Refresh;
use crate::introspect::Event;
use crate::jwt::provider::ProviderId;
use crate::jwt::runtime::TokenRuntime;
use crate::metrics::{MetricTable, RateLimitMetrics};
use crate::policy::Guard;

/// A remote document this VM fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchTarget {
    Keys(ProviderId),
    Revocations,
    /// The remote API key list.
    Clients,
}

/// A handle on a waiting request (it may have ended meanwhile).
pub type WaitingRequest = Weak<RefCell<dyn Waiter>>;

/// A request waiting for another worker's introspection callout (`http::RequestCore`): the
/// root context's tick resumes it, and hands it the answers to callouts made on its behalf.
pub trait Waiter {
    /// Decides again (the answer may be cached now).
    fn retry_after_wait(&mut self);
    /// The token of this request's own callout, if one is in flight.
    fn callout_token(&self) -> Option<u32>;
    /// A callout this request made has answered.
    fn on_callout(&mut self, token: u32, body_size: usize);
}

/// How many distinct unknown policy names a VM remembers for log de-duplication.
const MAX_REMEMBERED_UNKNOWN_POLICIES: usize = 64;

/// What every request of this VM shares.
pub struct Shared {
    pub guard: Guard,
    pub metrics: MetricTable<u32>,
    pub rate_limit_metrics: RateLimitMetrics<u32>,
    /// Occupancy gauges of the rate-limit tables (recorded by the VM holding the census lease).
    pub(super) table_gauges: crate::metrics::TableGauges<u32>,
    /// Counters per guardrail event (`api_guard.abuse.<event>`), in `AbuseEvent::ALL` order.
    pub(super) abuse_metrics: Vec<Option<u32>>,
    pub(super) unknown_policies_logged: RefCell<HashSet<String>>,
    /// This VM's view of remote key sets and revocations, and its verified-token cache.
    pub runtime: RefCell<TokenRuntime>,
    /// Every identity header api-guard can set (`edits::identity_header_names`): client-sent
    /// copies are removed from every request.
    pub identity_headers: Vec<String>,
    pub(super) fetch_metrics: FetchMetrics,
    /// Counters per introspection event, and the callout latency histogram.
    pub(super) intro_metrics: Vec<Option<u32>>,
    pub(super) intro_latency: Option<u32>,
    /// Stale answers this VM claimed to refresh (the root context makes the callouts).
    pub(super) refresh_queue: RefCell<Vec<Refresh>>,
    /// Requests waiting for another worker's introspection callout.
    pub(super) waiters: RefCell<Vec<(u32, WaitingRequest)>>,
    /// The tick period without waiters (0: no tick).
    pub(super) base_tick_ms: u32,
    /// Screening counters, defined on first use: `api_guard.screening.<class>.<blocked|detected>`
    /// and `api_guard.screening.rule.<rule id>` (rule ids are a fixed set in the code).
    pub(super) screening_metrics: RefCell<HashMap<String, Option<u32>>>,
}

/// Bounds on the per-VM introspection queues (beyond them a request is decided as if the
/// service were down, per its policy).
const MAX_WAITERS: usize = 4096;
const MAX_REFRESHES: usize = 256;
/// While requests wait for another worker's answer, the root polls the shared cache this often.
const WAIT_TICK_MS: u32 = 20;

/// Counters per remote document: (fetch ok, fetch failed, age gauge).
#[derive(Default)]
pub(super) struct FetchMetrics {
    keys: Vec<[Option<u32>; 3]>,
    revocations: [Option<u32>; 3],
    clients: [Option<u32>; 3],
}

impl FetchMetrics {
    pub(super) fn build(guard: &Guard) -> FetchMetrics {
        use proxy_wasm::hostcalls::define_metric;
        let three = |prefix: &str| {
            [
                define_metric(MetricType::Counter, &format!("{prefix}.fetch_ok")).ok(),
                define_metric(MetricType::Counter, &format!("{prefix}.fetch_failed")).ok(),
                define_metric(MetricType::Gauge, &format!("{prefix}.age_seconds")).ok(),
            ]
        };
        FetchMetrics {
            keys: guard
                .jwt_providers
                .iter()
                .map(|p| three(&format!("api_guard.jwks.{}", p.name)))
                .collect(),
            revocations: if guard.revocation.remote.is_some() {
                three("api_guard.revocations")
            } else {
                [None; 3]
            },
            clients: if guard.remote_clients.is_some() {
                three("api_guard.remote_clients")
            } else {
                [None; 3]
            },
        }
    }

    fn row(&self, target: FetchTarget) -> Option<&[Option<u32>; 3]> {
        match target {
            FetchTarget::Keys(id) => self.keys.get(id.0),
            FetchTarget::Revocations => Some(&self.revocations),
            FetchTarget::Clients => Some(&self.clients),
        }
    }
}

impl Shared {
    pub fn count_abuse(&self, event: crate::abuse::AbuseEvent) {
        if let Some(Some(id)) = crate::abuse::AbuseEvent::ALL
            .iter()
            .position(|e| *e == event)
            .and_then(|i| self.abuse_metrics.get(i))
        {
            let _ = proxy_wasm::hostcalls::increment_metric(*id, 1);
        }
    }

    /// Records every rate-limit table's occupancy, if this VM holds the census lease now.
    pub(super) fn census(&self, now_ms: u64) {
        if !self
            .guard
            .policies
            .iter()
            .any(|p| !p.rate_limits.is_empty())
        {
            return;
        }
        match crate::metrics::try_census_lease(&HostStore, now_ms) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                log::warn!("cannot take the census lease ({e:?})");
                return;
            }
        }
        let now_ns = now_ms.saturating_mul(1_000_000);
        for (id, value) in self.table_gauges.readings(&self.guard, |table| {
            table.census_lanes(&HostStore, now_ns).ok()
        }) {
            let _ = proxy_wasm::hostcalls::record_metric(id, value);
        }
    }

    pub fn count_introspection(&self, event: Event) {
        if let Some(Some(id)) = Event::ALL
            .iter()
            .position(|e| *e == event)
            .and_then(|i| self.intro_metrics.get(i))
        {
            let _ = proxy_wasm::hostcalls::increment_metric(*id, 1);
        }
    }

    pub fn record_callout_ms(&self, ms: u64) {
        if let Some(id) = self.intro_latency {
            let _ = proxy_wasm::hostcalls::record_metric(id, ms);
        }
    }

    /// Counts and logs a screening finding: class, rule id and location, never the value.
    pub fn screening_finding(&self, d: &crate::screening::Detection, blocked: bool) {
        let outcome = if blocked { "blocked" } else { "detected" };
        for name in [
            format!("api_guard.screening.{}.{outcome}", d.class.as_str()),
            format!("api_guard.screening.rule.{}", d.rule_id),
        ] {
            let mut metrics = self.screening_metrics.borrow_mut();
            // Bounded: classes x 2 + the rule ids the detectors define.
            if metrics.len() >= 512 && !metrics.contains_key(&name) {
                continue;
            }
            let id = *metrics.entry(name.clone()).or_insert_with(|| {
                proxy_wasm::hostcalls::define_metric(MetricType::Counter, &name).ok()
            });
            if let Some(id) = id {
                let _ = proxy_wasm::hostcalls::increment_metric(id, 1);
            }
        }
        log::info!(
            "screening {outcome} class={} rule={} location={}",
            d.class.as_str(),
            d.rule_id,
            d.location.key()
        );
    }

    pub fn queue_refresh(&self, refresh: Refresh) {
        let mut queue = self.refresh_queue.borrow_mut();
        if queue.len() < MAX_REFRESHES {
            queue.push(refresh);
        }
    }

    /// Registers a waiting request; `false` when the list is full.
    pub fn add_waiter(&self, context_id: u32, core: WaitingRequest) -> bool {
        let mut waiters = self.waiters.borrow_mut();
        if waiters.len() >= MAX_WAITERS {
            return false;
        }
        if waiters.is_empty() {
            if let Err(e) = abi::set_tick_period_ms(WAIT_TICK_MS) {
                log::warn!(
                    "cannot shorten the tick for waiting requests (host status {})",
                    e.0
                );
            }
        }
        if !waiters.iter().any(|(id, _)| *id == context_id) {
            waiters.push((context_id, core));
        }
        true
    }

    pub fn metrics_fetch(&self, target: FetchTarget, ok: bool) {
        let slot = usize::from(!ok);
        if let Some(id) = self
            .fetch_metrics
            .row(target)
            .and_then(|r| r.get(slot).copied().flatten())
        {
            let _ = proxy_wasm::hostcalls::increment_metric(id, 1);
        }
    }

    pub(super) fn record_age(&self, target: FetchTarget, age_seconds: u64) {
        if let Some(id) = self
            .fetch_metrics
            .row(target)
            .and_then(|r| r.get(2).copied().flatten())
        {
            let _ = proxy_wasm::hostcalls::record_metric(id, age_seconds);
        }
    }

    /// True the first time a given unknown policy name is seen (bounded: after the limit, names
    /// are no longer remembered and are not logged again; the metric still counts them).
    pub fn first_sighting_of_unknown_policy(&self, name: &str) -> bool {
        let mut seen = self.unknown_policies_logged.borrow_mut();
        if seen.contains(name) || seen.len() >= MAX_REMEMBERED_UNKNOWN_POLICIES {
            return false;
        }
        seen.insert(name.to_string());
        true
    }
}
