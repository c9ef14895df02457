//! The root context: compiles the plugin configuration once per VM and hands the compiled
//! [`Guard`] to every request.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MetricType};

use super::http::GuardRequest;
use crate::config::compile;
use crate::metrics::{MetricTable, RateLimitMetrics};
use crate::policy::Guard;

/// How many distinct unknown policy names a VM remembers for log de-duplication.
const MAX_REMEMBERED_UNKNOWN_POLICIES: usize = 64;

/// What every request of this VM shares.
pub struct Shared {
    pub guard: Guard,
    pub metrics: MetricTable<u32>,
    pub rate_limit_metrics: RateLimitMetrics<u32>,
    unknown_policies_logged: RefCell<HashSet<String>>,
}

impl Shared {
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

#[derive(Default)]
pub struct GuardRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for GuardRoot {}

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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a compiled configuration Envoy does not create request contexts for this
        // plugin; if it ever did, `GuardRequest` with no config fails closed.
        Some(Box::new(GuardRequest::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
