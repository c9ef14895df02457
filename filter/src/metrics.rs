//! Decision counters: one per policy and outcome, named so that Envoy's `stats_tags` can turn
//! the policy and reason into Prometheus labels:
//!
//! `api_guard.policy.<policy>.allowed` and `api_guard.policy.<policy>.denied.<reason>`
//!
//! Decisions taken without a policy (no policy, unknown policy, pass-through) count under the
//! policy label `_none`, which no configured policy can be named (names start with [A-Za-z0-9]).
//! The table is built once at configure time; per request it is two index operations.

use crate::policy::{Guard, PolicyId};
use crate::ratelimit::table::{Census, Table, MAX_LANES};
use crate::ratelimit::Event;
use crate::rejection::Reason;

pub const NO_POLICY_LABEL: &str = "_none";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied(Reason),
}

pub const OUTCOMES: usize = 1 + Reason::ALL.len();

impl Outcome {
    fn index(self) -> usize {
        match self {
            Outcome::Allowed => 0,
            Outcome::Denied(r) => 1 + r.index(),
        }
    }

    fn all() -> impl Iterator<Item = Outcome> {
        std::iter::once(Outcome::Allowed).chain(Reason::ALL.iter().map(|r| Outcome::Denied(*r)))
    }

    pub fn metric_name(self, policy_label: &str) -> String {
        match self {
            Outcome::Allowed => format!("api_guard.policy.{policy_label}.allowed"),
            Outcome::Denied(r) => format!("api_guard.policy.{policy_label}.denied.{}", r.as_str()),
        }
    }
}

/// Metric handles (the host's ids) for every policy label and outcome.
#[derive(Debug, Clone)]
pub struct MetricTable<T> {
    /// Row 0 is `_none`; row `i + 1` is policy `i`.
    rows: Vec<[Option<T>; OUTCOMES]>,
}

impl<T: Copy> MetricTable<T> {
    /// Defines every counter through `define` (the host's `define_metric`); a counter the host
    /// refuses is left out and simply not counted, never a reason to fail a request.
    pub fn build(guard: &Guard, mut define: impl FnMut(&str) -> Option<T>) -> MetricTable<T> {
        let labels =
            std::iter::once(NO_POLICY_LABEL).chain(guard.policies.iter().map(|p| p.name.as_str()));
        let rows = labels
            .map(|label| {
                let mut row = [None; OUTCOMES];
                for outcome in Outcome::all() {
                    if let Some(slot) = row.get_mut(outcome.index()) {
                        *slot = define(&outcome.metric_name(label));
                    }
                }
                row
            })
            .collect();
        MetricTable { rows }
    }

    pub fn get(&self, policy: Option<PolicyId>, outcome: Outcome) -> Option<T> {
        let row = policy.map_or(0, |id| id.0 + 1);
        self.rows.get(row)?.get(outcome.index()).copied().flatten()
    }
}

/// Rate-limit counters: `api_guard.rate_limit.<policy>.<limit>.<event>`, one per policy, limit
/// and [`Event`] (allowed, limited, shadow_limited, cas_retries_exhausted, store_errors,
/// overflow), defined at configure time.
#[derive(Debug, Clone)]
pub struct RateLimitMetrics<T> {
    /// `rows[policy][limit][event]`.
    rows: Vec<Vec<[Option<T>; Event::ALL.len()]>>,
}

pub fn rate_limit_metric_name(policy: &str, limit: &str, event: Event) -> String {
    format!("api_guard.rate_limit.{policy}.{limit}.{}", event.as_str())
}

impl<T: Copy> RateLimitMetrics<T> {
    pub fn build(guard: &Guard, mut define: impl FnMut(&str) -> Option<T>) -> RateLimitMetrics<T> {
        let rows = guard
            .policies
            .iter()
            .map(|p| {
                p.rate_limits
                    .iter()
                    .map(|l| {
                        let mut row = [None; Event::ALL.len()];
                        for e in Event::ALL {
                            if let Some(slot) = row.get_mut(e.index()) {
                                *slot = define(&rate_limit_metric_name(&p.name, &l.name, e));
                            }
                        }
                        row
                    })
                    .collect()
            })
            .collect();
        RateLimitMetrics { rows }
    }

    pub fn get(&self, policy: PolicyId, limit: usize, event: Event) -> Option<T> {
        self.rows
            .get(policy.0)?
            .get(limit)?
            .get(event.index())
            .copied()
            .flatten()
    }
}

/// Gauges of one rate limit's key table (`Table::census`), recorded periodically by the host:
/// `api_guard.rate_limit.<policy>.<limit>.slots_in_use` (slots holding a key whose bucket is not
/// full) and `...overflow_in_use` (overflow buckets holding a debt not yet run out). A table
/// whose `slots_in_use` stays near `max_keys` is too small for its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableGauge {
    SlotsInUse,
    OverflowInUse,
}

impl TableGauge {
    pub const ALL: [TableGauge; 2] = [TableGauge::SlotsInUse, TableGauge::OverflowInUse];

    pub fn as_str(self) -> &'static str {
        match self {
            TableGauge::SlotsInUse => "slots_in_use",
            TableGauge::OverflowInUse => "overflow_in_use",
        }
    }

    /// The gauge's value in a census.
    pub fn of(self, census: &Census) -> u32 {
        match self {
            TableGauge::SlotsInUse => census.live_slots,
            TableGauge::OverflowInUse => census.live_overflow,
        }
    }
}

/// Shared-data key of the census lease: the VM that holds it reads the rate-limit tables for
/// the occupancy gauges, so one VM per period pays for the reads, not every worker.
pub const CENSUS_LEASE_KEY: &str = "api_guard.census.lease";
/// How often the tables are counted (a census reads every slot once: a tick's work, never the
/// request path's).
pub const CENSUS_PERIOD_MS: u64 = 10_000;

/// Takes the census lease for this period: `true` for one VM per period (a compare-and-swap on
/// the lease's timestamp; only the very first creation can let two VMs count once each, which
/// records the same values twice and costs nothing else).
pub fn try_census_lease(
    store: &dyn crate::store::SharedStore,
    now_ms: u64,
) -> Result<bool, crate::store::StoreError> {
    let (value, cas) = store.get(CENSUS_LEASE_KEY)?;
    let last = value
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_le_bytes);
    // A little early is fine: VMs tick at slightly different moments.
    if last.is_some_and(|t| now_ms.saturating_sub(t) < CENSUS_PERIOD_MS.saturating_sub(500)) {
        return Ok(false);
    }
    match store.set(CENSUS_LEASE_KEY, &now_ms.to_le_bytes(), cas) {
        Ok(()) => Ok(true),
        Err(crate::store::StoreError::CasMismatch) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn table_gauge_name(policy: &str, limit: &str, gauge: TableGauge) -> String {
    format!("api_guard.rate_limit.{policy}.{limit}.{}", gauge.as_str())
}

/// Handles of every table gauge: `rows[policy][limit][gauge]`, defined at configure time.
#[derive(Debug, Clone)]
pub struct TableGauges<T> {
    rows: Vec<Vec<[Option<T>; 2]>>,
}

impl<T: Copy> TableGauges<T> {
    pub fn build(guard: &Guard, mut define: impl FnMut(&str) -> Option<T>) -> TableGauges<T> {
        let rows = guard
            .policies
            .iter()
            .map(|p| {
                p.rate_limits
                    .iter()
                    .map(|l| {
                        TableGauge::ALL.map(|g| define(&table_gauge_name(&p.name, &l.name, g)))
                    })
                    .collect()
            })
            .collect();
        TableGauges { rows }
    }

    /// Every (handle, value) to record for the censuses `census(table)` returns, one per lane
    /// (`None`: that table could not be read this time; its gauges keep their last value). A
    /// table shared by several limits is counted once.
    pub fn readings(
        &self,
        guard: &Guard,
        mut census: impl FnMut(&Table) -> Option<[Census; MAX_LANES]>,
    ) -> Vec<(T, u64)> {
        let mut out = Vec::new();
        for (policy, row) in guard.policies.iter().zip(&self.rows) {
            // (prefix, census) of the tables counted so far (a policy has at most 8 limits).
            let mut counted: Vec<(&str, Option<[Census; MAX_LANES]>)> = Vec::new();
            for (limit, handles) in policy.rate_limits.iter().zip(row) {
                let prefix = limit.table.prefix.as_str();
                let lanes = match counted.iter().find(|(p, _)| *p == prefix) {
                    Some((_, lanes)) => *lanes,
                    None => {
                        let lanes = census(&limit.table);
                        counted.push((prefix, lanes));
                        lanes
                    }
                };
                let Some(c) = lanes.as_ref().and_then(|lanes| lanes.get(limit.lane)) else {
                    continue;
                };
                for (gauge, handle) in TableGauge::ALL.iter().zip(handles) {
                    if let Some(h) = handle {
                        out.push((*h, u64::from(gauge.of(c))));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile;
    use crate::store::MemoryStore;

    #[test]
    fn table_names_and_lookup() {
        let guard = compile(br#"{"policies":{"api":{},"web":{}}}"#).unwrap();
        let mut names = Vec::new();
        let table = MetricTable::build(&guard, |name| {
            names.push(name.to_string());
            Some(names.len() as u32 - 1)
        });
        assert_eq!(names.len(), 3 * OUTCOMES);
        let api = guard.by_name["api"];
        let id = table
            .get(Some(api), Outcome::Denied(Reason::ApiKeyExpired))
            .unwrap();
        assert_eq!(
            names[id as usize],
            "api_guard.policy.api.denied.api_key_expired"
        );
        let id = table
            .get(None, Outcome::Denied(Reason::UnknownPolicy))
            .unwrap();
        assert_eq!(
            names[id as usize],
            "api_guard.policy._none.denied.unknown_policy"
        );
        let id = table
            .get(Some(guard.by_name["web"]), Outcome::Allowed)
            .unwrap();
        assert_eq!(names[id as usize], "api_guard.policy.web.allowed");
        assert_eq!(table.get(Some(PolicyId(99)), Outcome::Allowed), None);
    }

    #[test]
    fn rate_limit_names() {
        let guard = compile(
            br#"{"policies":{"api":{"rate_limits":[
                {"name":"per_second","rate":10,"per":"second","key":"ip"},
                {"name":"per_hour","rate":1000,"per":"hour","key":"policy"}]},"web":{}}}"#,
        )
        .unwrap();
        let mut names = Vec::new();
        let table = RateLimitMetrics::build(&guard, |name| {
            names.push(name.to_string());
            Some(names.len() - 1)
        });
        assert_eq!(names.len(), 2 * Event::ALL.len());
        let api = guard.by_name["api"];
        let id = table.get(api, 1, Event::ShadowLimited).unwrap();
        assert_eq!(
            names[id],
            "api_guard.rate_limit.api.per_hour.shadow_limited"
        );
        assert_eq!(table.get(api, 2, Event::Allowed), None);
        assert_eq!(table.get(guard.by_name["web"], 0, Event::Allowed), None);
    }

    #[test]
    fn table_gauges_are_named_and_read() {
        let guard = compile(
            br#"{"policies":{"api":{"rate_limits":[
                {"name":"per_second","rate":10,"per":"second","key":"ip"},
                {"name":"total","rate":1000,"per":"hour","key":"policy"}]}}}"#,
        )
        .unwrap();
        let mut names = Vec::new();
        let gauges = TableGauges::build(&guard, |name| {
            names.push(name.to_string());
            Some(names.len() - 1)
        });
        assert_eq!(
            names[..2],
            [
                "api_guard.rate_limit.api.per_second.slots_in_use",
                "api_guard.rate_limit.api.per_second.overflow_in_use"
            ]
        );
        let readings = gauges.readings(&guard, |t| {
            let mut lanes = [Census::default(); MAX_LANES];
            lanes[0] = Census {
                live_slots: 7,
                live_overflow: 2,
            };
            t.prefix.ends_with("per_second").then_some(lanes)
        });
        assert_eq!(readings, vec![(0, 7), (1, 2)]);
    }

    #[test]
    fn refused_definitions_are_skipped() {
        let guard = compile(br#"{"policies":{"api":{}}}"#).unwrap();
        let table: MetricTable<u32> = MetricTable::build(&guard, |_| None);
        assert_eq!(table.get(None, Outcome::Allowed), None);
    }

    #[test]
    fn one_vm_per_period_takes_the_census() {
        let store = MemoryStore::new();
        assert_eq!(try_census_lease(&store, 100_000), Ok(true));
        // The other VMs of the same period, and the same VM a second later, do not.
        assert_eq!(try_census_lease(&store, 100_000), Ok(false));
        assert_eq!(try_census_lease(&store, 101_000), Ok(false));
        assert_eq!(try_census_lease(&store, 110_000), Ok(true));
        store.set_unavailable(true);
        assert!(try_census_lease(&store, 200_000).is_err());
    }
}
