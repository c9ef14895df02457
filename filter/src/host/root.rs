//! The root context: compiles the plugin configuration once per VM and hands the compiled
//! [`Guard`] to every request.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MetricType};

use super::abi::{self, HostStore};
use super::fetch;
use super::http::GuardRequest;
use super::shared::{FetchMetrics, FetchTarget, Shared, Waiter, WaitingRequest};
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
        // Limits that share an entry share its table: created once, by the first of them.
        for limit in policy.rate_limits.iter().filter(|l| l.lane == 0) {
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
    fn track_callout(&mut self, context_id: u32, core: &Rc<RefCell<dyn Waiter>>) {
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
    on_behalf: HashMap<u32, (u32, WaitingRequest)>,
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
