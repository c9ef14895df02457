//! The root context: compiles the plugin configuration once per VM and hands the compiled
//! [`Guard`] to every request.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MetricType};

use super::abi::{self, HostStore};
use super::fetch::{self, FetchTarget};
use super::http::{GuardRequest, RequestCore};
use crate::checks::introspection::Refresh;
use crate::config::compile_with_env;
use crate::introspect::{Event, TokenDigest};
use crate::jwt::runtime::TokenRuntime;
use crate::metrics::{MetricTable, RateLimitMetrics};
use crate::policy::Guard;
use crate::remote::document::{try_lease, Synced};
use crate::time::UnixTime;

/// How often every VM syncs remote documents from shared data and checks whether a fetch is
/// due. Part of the propagation bound of a JWKS or revocation update (see `remote::document`).
pub const TICK_MS: u32 = 1_000;

/// How many distinct unknown policy names a VM remembers for log de-duplication.
const MAX_REMEMBERED_UNKNOWN_POLICIES: usize = 64;

/// What every request of this VM shares.
pub struct Shared {
    pub guard: Guard,
    pub metrics: MetricTable<u32>,
    pub rate_limit_metrics: RateLimitMetrics<u32>,
    /// Occupancy gauges of the rate-limit tables (recorded by the VM holding the census lease).
    table_gauges: crate::metrics::TableGauges<u32>,
    /// Counters per guardrail event (`api_guard.abuse.<event>`), in `AbuseEvent::ALL` order.
    abuse_metrics: Vec<Option<u32>>,
    unknown_policies_logged: RefCell<HashSet<String>>,
    /// This VM's view of remote key sets and revocations, and its verified-token cache.
    pub runtime: RefCell<TokenRuntime>,
    /// Every identity header api-guard can set (`edits::identity_header_names`): client-sent
    /// copies are removed from every request.
    pub identity_headers: Vec<String>,
    fetch_metrics: FetchMetrics,
    /// Counters per introspection event, and the callout latency histogram.
    intro_metrics: Vec<Option<u32>>,
    intro_latency: Option<u32>,
    /// Stale answers this VM claimed to refresh (the root context makes the callouts).
    refresh_queue: RefCell<Vec<Refresh>>,
    /// Requests waiting for another worker's introspection callout.
    waiters: RefCell<Vec<(u32, Weak<RefCell<RequestCore>>)>>,
    /// The tick period without waiters (0: no tick).
    base_tick_ms: u32,
    /// Screening counters, defined on first use: `api_guard.screening.<class>.<blocked|detected>`
    /// and `api_guard.screening.rule.<rule id>` (rule ids are a fixed set in the code).
    screening_metrics: RefCell<HashMap<String, Option<u32>>>,
}

/// Bounds on the per-VM introspection queues (beyond them a request is decided as if the
/// service were down, per its policy).
const MAX_WAITERS: usize = 4096;
const MAX_REFRESHES: usize = 256;
/// While requests wait for another worker's answer, the root polls the shared cache this often.
const WAIT_TICK_MS: u32 = 20;

/// Counters per remote document: (fetch ok, fetch failed, age gauge).
#[derive(Default)]
struct FetchMetrics {
    keys: Vec<[Option<u32>; 3]>,
    revocations: [Option<u32>; 3],
    clients: [Option<u32>; 3],
}

impl FetchMetrics {
    fn build(guard: &Guard) -> FetchMetrics {
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
    fn census(&self, now_ms: u64) {
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
        for (id, value) in self.table_gauges.readings(&self.guard, |limit| {
            limit.table.census(&HostStore, now_ns).ok()
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
    pub fn add_waiter(&self, context_id: u32, core: Weak<RefCell<RequestCore>>) -> bool {
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

    fn record_age(&self, target: FetchTarget, age_seconds: u64) {
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

/// Creates every rate-limit table's shared-data keys that do not exist yet, before this VM
/// serves requests: creation is the one write that cannot be a compare-and-swap, so it is done
/// here (the first VM to configure creates them; the others, and restarted VMs, find them and
/// write nothing). A failure is logged, not fatal: the request path creates a missing slot
/// itself, and a store that keeps failing is handled by each limit's `on_store_error`.
fn create_rate_limit_tables(guard: &Guard) {
    if let Err(e) = guard.abuse.ensure_created(&super::abi::HostStore) {
        log::warn!("abuse: cannot create the negative cache / budget keys ({e:?})");
    }
    for policy in &guard.policies {
        for limit in &policy.rate_limits {
            match limit.table.ensure_created(&super::abi::HostStore) {
                Ok(0) => {}
                Ok(n) => log::debug!(
                    "rate limit {}.{}: created {n} shared-data keys",
                    policy.name,
                    limit.name
                ),
                Err(e) => log::warn!(
                    "rate limit {}.{}: cannot create its shared-data keys ({e:?})",
                    policy.name,
                    limit.name
                ),
            }
        }
    }
}

impl GuardRoot {
    /// Decides again for every request waiting on another worker's introspection callout (the
    /// answer may be cached now, or that claim expired and one of these calls). Host calls made
    /// while deciding must target the waiting request, hence the effective-context switch.
    fn resume_waiters(&mut self, shared: &Rc<Shared>) {
        let waiters = std::mem::take(&mut *shared.waiters.borrow_mut());
        for (context_id, core) in waiters {
            let Some(core) = core.upgrade() else {
                continue;
            };
            if proxy_wasm::hostcalls::set_effective_context(context_id).is_err() {
                continue;
            }
            core.borrow_mut().retry_after_wait();
            self.track_callout(context_id, &core);
        }
        if shared.waiters.borrow().is_empty() {
            let _ = abi::set_tick_period_ms(shared.base_tick_ms);
        }
    }

    /// A waiting request that this root resumed may have started its own callout: its answer
    /// comes back to this root, which hands it on.
    fn track_callout(&mut self, context_id: u32, core: &Rc<RefCell<RequestCore>>) {
        if let Some(token) = core.borrow().callout_token() {
            self.on_behalf
                .insert(token, (context_id, Rc::downgrade(core)));
        }
    }

    /// Background refreshes of stale answers that requests of this VM claimed.
    fn start_refreshes(&mut self, shared: &Rc<Shared>, now_ms: u64) {
        let queue = std::mem::take(&mut *shared.refresh_queue.borrow_mut());
        for refresh in queue {
            if let Some(token) =
                fetch::dispatch_introspection(shared, &refresh.credential, &refresh.digest)
            {
                self.refreshing.insert(token, (refresh.digest, now_ms));
            }
        }
    }
}

#[derive(Default)]
pub struct GuardRoot {
    shared: Option<Rc<Shared>>,
    /// Callouts this VM started from its tick: token -> document.
    pending: HashMap<u32, FetchTarget>,
    /// Background refreshes of stale introspection answers: token -> (digest, started ms).
    refreshing: HashMap<u32, (TokenDigest, u64)>,
    /// When the periodic work (sync, fetches) last ran.
    last_periodic_ms: u64,
    /// Callouts started from this root's tick on behalf of a waiting request (its answer is
    /// delivered here, to the context that dispatched): token -> (request context, request).
    on_behalf: HashMap<u32, (u32, Weak<RefCell<RequestCore>>)>,
}

fn now() -> Option<(UnixTime, u64)> {
    let ns = abi::now_unix_nanos().ok()?;
    Some((
        UnixTime(i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX)),
        ns / 1_000_000,
    ))
}

impl Context for GuardRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _t: usize) {
        if let Some((context_id, core)) = self.on_behalf.remove(&token) {
            if let Some(core) = core.upgrade() {
                if proxy_wasm::hostcalls::set_effective_context(context_id).is_ok() {
                    core.borrow_mut().on_callout(token, body_size);
                    self.track_callout(context_id, &core);
                }
            }
            return;
        }
        if let (Some(shared), Some((digest, started))) =
            (&self.shared, self.refreshing.remove(&token))
        {
            fetch::complete_introspection(shared, &digest, body_size, started);
            return;
        }
        let (Some(shared), Some(target)) = (&self.shared, self.pending.remove(&token)) else {
            return;
        };
        if let Some((now, _)) = now() {
            fetch::complete(shared, target, body_size, now);
        }
    }
}

impl RootContext for GuardRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config =
            match proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            {
                Ok(bytes) => bytes.unwrap_or_default(),
                Err(status) => {
                    log::error!("cannot read the plugin configuration (host status {status:?})");
                    return false;
                }
            };
        if let Some(stage) = super::probe::probe_stage() {
            log::warn!(
                "STAGE PROBE BUILD (stops after {stage}): requests pass undecided; never deploy"
            );
        }
        // Configure time is part of what operators pay on every reload: measure it with the
        // host clock and log it.
        let started_ns = abi::now_unix_nanos().unwrap_or(0);
        // Secrets (the introspection client credentials) come from the VM's environment:
        // Envoy's `vm_config.environment_variables`, read through WASI.
        match compile_with_env(&config, &|name| std::env::var(name).ok()) {
            Ok(guard) => {
                for p in &guard.jwt_providers {
                    if p.decryption.as_ref().is_some_and(|d| d.has_rsa()) {
                        log::warn!(
                            "jwt provider {}: RSA-OAEP decryption keys are exposed to a timing side channel (RUSTSEC-2023-0071, no fixed rsa release); prefer dir or A256KW (docs/jwt.md)",
                            p.name
                        );
                    }
                }
                let compile_us = abi::now_unix_nanos()
                    .unwrap_or(0)
                    .saturating_sub(started_ns)
                    / 1_000;
                let metrics = MetricTable::build(&guard, |name| {
                    proxy_wasm::hostcalls::define_metric(MetricType::Counter, name).ok()
                });
                let rate_limit_metrics = RateLimitMetrics::build(&guard, |name| {
                    proxy_wasm::hostcalls::define_metric(MetricType::Counter, name).ok()
                });
                create_rate_limit_tables(&guard);
                let mut runtime = TokenRuntime::new(&guard);
                // Documents published before this VM started (other workers, or this VM
                // before a FAIL_RELOAD restart) are usable at once.
                if let Err(e) = runtime.sync(&guard, &HostStore) {
                    log::warn!("cannot read shared remote documents ({e:?})");
                }
                let identity_headers = crate::edits::identity_header_names(&guard);
                let fetch_metrics = FetchMetrics::build(&guard);
                let (intro_metrics, intro_latency) = if guard.introspection.is_some() {
                    (
                        Event::ALL
                            .iter()
                            .map(|e| {
                                proxy_wasm::hostcalls::define_metric(
                                    MetricType::Counter,
                                    &format!("api_guard.introspection.{}", e.name()),
                                )
                                .ok()
                            })
                            .collect(),
                        proxy_wasm::hostcalls::define_metric(
                            MetricType::Histogram,
                            "api_guard.introspection.callout_ms",
                        )
                        .ok(),
                    )
                } else {
                    (Vec::new(), None)
                };
                let has_remote = guard.revocation.remote.is_some()
                    || guard.remote_clients.is_some()
                    || guard
                        .jwt_providers
                        .iter()
                        .any(|p| matches!(p.keys, crate::jwt::provider::ProviderKeys::Remote(_)));
                let has_tables = guard.policies.iter().any(|p| !p.rate_limits.is_empty());
                let base_tick_ms = if has_remote || guard.introspection.is_some() || has_tables {
                    TICK_MS
                } else {
                    0
                };
                let table_gauges = crate::metrics::TableGauges::build(&guard, |name| {
                    proxy_wasm::hostcalls::define_metric(MetricType::Gauge, name).ok()
                });
                let abuse_metrics = crate::abuse::AbuseEvent::ALL
                    .iter()
                    .map(|e| {
                        proxy_wasm::hostcalls::define_metric(
                            MetricType::Counter,
                            &format!("api_guard.abuse.{}", e.as_str()),
                        )
                        .ok()
                    })
                    .collect();
                if base_tick_ms > 0 {
                    if let Err(e) = abi::set_tick_period_ms(base_tick_ms) {
                        log::error!(
                            "cannot start the tick for remote documents (host status {})",
                            e.0
                        );
                        return false;
                    }
                }
                log::info!(
                    "configuration accepted: {} policies, {} API keys, {} JWT providers, unmatched routes {:?}, compiled in {}.{:03} ms ({} bytes)",
                    guard.policies.len(),
                    guard.api_keys.len(),
                    guard.jwt_providers.len(),
                    guard.unmatched_routes,
                    compile_us / 1_000,
                    compile_us % 1_000,
                    config.len(),
                );
                self.shared = Some(Rc::new(Shared {
                    guard,
                    metrics,
                    rate_limit_metrics,
                    table_gauges,
                    abuse_metrics,
                    unknown_policies_logged: RefCell::new(HashSet::new()),
                    runtime: RefCell::new(runtime),
                    identity_headers,
                    fetch_metrics,
                    intro_metrics,
                    intro_latency,
                    refresh_queue: RefCell::new(Vec::new()),
                    waiters: RefCell::new(Vec::new()),
                    base_tick_ms,
                    screening_metrics: RefCell::new(HashMap::new()),
                }));
                true
            }
            Err(errors) => {
                // Every error with its JSON path; Envoy refuses the configuration (at startup it
                // exits, on a dynamic update it keeps the previous listener).
                for e in &errors.0 {
                    log::error!("invalid configuration: {e}");
                }
                log::error!("configuration rejected with {} error(s)", errors.0.len());
                false
            }
        }
    }

    /// Every VM: pick up what others published, report ages, and fetch what is due if this VM
    /// wins the lease.
    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Some((now, now_ms)) = now() else {
            return;
        };
        self.resume_waiters(&shared);
        self.start_refreshes(&shared, now_ms);
        // The rest runs once a second even while the tick is short for waiting requests.
        if now_ms.saturating_sub(self.last_periodic_ms) < u64::from(TICK_MS) - 50 {
            return;
        }
        self.last_periodic_ms = now_ms;
        shared.census(now_ms);
        if let Err(e) = shared.runtime.borrow_mut().sync(&shared.guard, &HostStore) {
            log::warn!("cannot read shared remote documents ({e:?})");
        }
        for (target, source) in fetch::remote_sources(&shared) {
            let published = Synced::<()>::published_at(&HostStore, source).unwrap_or(None);
            if let Some(at) = published {
                shared.record_age(
                    target,
                    u64::try_from(now.0.saturating_sub(at.0)).unwrap_or(0),
                );
            }
            if self.pending.values().any(|t| *t == target) || !source.fetch_due(published, now) {
                continue;
            }
            match try_lease(&HostStore, source, now_ms) {
                Ok(true) => {
                    if let Some(token) = fetch::dispatch(&shared, target) {
                        self.pending.insert(token, target);
                    }
                }
                Ok(false) => {}
                Err(e) => log::warn!("cannot take the fetch lease ({e:?})"),
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a compiled configuration Envoy does not create request contexts for this
        // plugin; if it ever did, `GuardRequest` with no config fails closed.
        Some(Box::new(GuardRequest::new(self.shared.clone(), context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
