//! The root context: compiles the plugin configuration once per VM and hands the compiled
//! [`Guard`] to every request.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MetricType};

use super::abi::{self, HostStore};
use super::fetch::{self, FetchTarget};
use super::http::GuardRequest;
use crate::config::compile;
use crate::jwt::keysource::{try_lease, Synced};
use crate::jwt::runtime::TokenRuntime;
use crate::metrics::{MetricTable, RateLimitMetrics};
use crate::policy::Guard;
use crate::time::UnixTime;

/// How often every VM syncs remote documents from shared data and checks whether a fetch is
/// due. Part of the propagation bound of a JWKS or revocation update (see `jwt::keysource`).
pub const TICK_MS: u32 = 1_000;

/// How many distinct unknown policy names a VM remembers for log de-duplication.
const MAX_REMEMBERED_UNKNOWN_POLICIES: usize = 64;

/// What every request of this VM shares.
pub struct Shared {
    pub guard: Guard,
    pub metrics: MetricTable<u32>,
    pub rate_limit_metrics: RateLimitMetrics<u32>,
    unknown_policies_logged: RefCell<HashSet<String>>,
    /// This VM's view of remote key sets and revocations, and its verified-token cache.
    pub runtime: RefCell<TokenRuntime>,
    /// Every header a provider forwards a claim into: client-sent copies are removed.
    pub claim_headers: Vec<String>,
    fetch_metrics: FetchMetrics,
}

/// Counters per remote document: (fetch ok, fetch failed, age gauge).
#[derive(Default)]
struct FetchMetrics {
    keys: Vec<[Option<u32>; 3]>,
    revocations: [Option<u32>; 3],
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
        }
    }

    fn row(&self, target: FetchTarget) -> Option<&[Option<u32>; 3]> {
        match target {
            FetchTarget::Keys(id) => self.keys.get(id.0),
            FetchTarget::Revocations => Some(&self.revocations),
        }
    }
}

impl Shared {
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

/// Every header a provider forwards a claim into.
fn claim_headers(guard: &Guard) -> Vec<String> {
    let mut out: Vec<String> = guard
        .jwt_providers
        .iter()
        .flat_map(|p| p.forward_claims.iter().map(|(_, h)| h.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[derive(Default)]
pub struct GuardRoot {
    shared: Option<Rc<Shared>>,
    /// Callouts this VM started from its tick: token -> document.
    pending: HashMap<u32, FetchTarget>,
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
        match compile(&config) {
            Ok(guard) => {
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
                let claim_headers = claim_headers(&guard);
                let fetch_metrics = FetchMetrics::build(&guard);
                let has_remote = guard.revocation.remote.is_some()
                    || guard
                        .jwt_providers
                        .iter()
                        .any(|p| matches!(p.keys, crate::jwt::provider::ProviderKeys::Remote(_)));
                if has_remote {
                    if let Err(e) = abi::set_tick_period_ms(TICK_MS) {
                        log::error!(
                            "cannot start the tick for remote documents (host status {})",
                            e.0
                        );
                        return false;
                    }
                }
                log::info!(
                    "configuration accepted: {} policies, unmatched routes {:?}",
                    guard.policies.len(),
                    guard.unmatched_routes
                );
                self.shared = Some(Rc::new(Shared {
                    guard,
                    metrics,
                    rate_limit_metrics,
                    unknown_policies_logged: RefCell::new(HashSet::new()),
                    runtime: RefCell::new(runtime),
                    claim_headers,
                    fetch_metrics,
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a compiled configuration Envoy does not create request contexts for this
        // plugin; if it ever did, `GuardRequest` with no config fails closed.
        Some(Box::new(GuardRequest::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
