//! The per-address budget of expensive operations.
//!
//! A cold signature verification (RSA, ECDSA, EdDSA on a token the verified-token cache has not
//! seen) and an introspection callout each cost far more than everything else a request does.
//! Each client address prefix gets a GCRA bucket of them (`rate` per `per`, `burst`), kept in a
//! bounded rate-limit table in shared data (so every worker counts against the same budget, and
//! a flood of addresses cannot lock newcomers out: see `ratelimit::table`). A request that needs
//! an expensive step when its address has no budget left is answered 429 *before* the step.
//! Cheap answers (cache hits, negative-cache hits, structural refusals) never consume budget.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::ratelimit::ceil_secs;
use crate::ratelimit::gcra::Gcra;
use crate::ratelimit::table::{Consumed, Table};
use crate::rejection::Limited;
use crate::store::SharedStore;

/// The compiled budget (`abuse.expensive_per_address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpensiveBudget {
    pub gcra: Gcra,
    pub table: Table,
    pub v4_prefix: u8,
    pub v6_prefix: u8,
    /// When the store fails: `true` admits the expensive step (the budget is a defence, the
    /// checks after it still run), `false` refuses with 503.
    pub allow_on_store_error: bool,
}

/// The name a budget refusal reports as its limit (`ratelimit-policy` header, logs).
pub const BUDGET_LIMIT_NAME: &str = "expensive_per_address";

/// What the budget says about one expensive step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Granted,
    /// No budget left: answer 429 with these details, before the step.
    Exhausted(Limited<'static>),
    /// The store failed and the budget fails closed.
    Unavailable,
}

impl ExpensiveBudget {
    fn key(&self, ip: Option<IpAddr>) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        match ip {
            Some(ip) => {
                let len = match ip {
                    IpAddr::V4(_) => self.v4_prefix,
                    IpAddr::V6(_) => self.v6_prefix,
                };
                ("expensive", Cidr::containing(ip, len)).hash(&mut h);
            }
            None => "expensive-ip-unknown".hash(&mut h),
        }
        h.finish()
    }

    /// Spends one expensive operation of the client at `ip` at `now_ns`.
    pub fn spend(&self, store: &dyn SharedStore, ip: Option<IpAddr>, now_ns: u64) -> Spend {
        match self.table.consume(store, &self.gcra, self.key(ip), now_ns) {
            Consumed::Allowed { .. } => Spend::Granted,
            Consumed::Limited {
                retry_after_ns,
                full_in_ns,
                ..
            } => Spend::Exhausted(Limited {
                limit: BUDGET_LIMIT_NAME,
                quota: self.gcra.burst,
                window_secs: ceil_secs(self.gcra.tolerance_ns),
                retry_after_secs: ceil_secs(retry_after_ns).max(1),
                reset_secs: ceil_secs(full_in_ns),
            }),
            Consumed::CasRetriesExhausted | Consumed::StoreFailed(_) => {
                if self.allow_on_store_error {
                    Spend::Granted
                } else {
                    Spend::Unavailable
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_800_000_000 * S;

    fn budget() -> ExpensiveBudget {
        ExpensiveBudget {
            // 5 per second, burst 10.
            gcra: Gcra::new(5, S, 10).unwrap(),
            table: Table::new("b".into(), 64),
            v4_prefix: 32,
            v6_prefix: 64,
            allow_on_store_error: true,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn each_address_has_its_own_budget() {
        let store = MemoryStore::new();
        let b = budget();
        let granted = |a: &str, now| {
            (0..30)
                .filter(|_| b.spend(&store, ip(a), now) == Spend::Granted)
                .count()
        };
        assert_eq!(granted("10.0.0.1", NOW), 10);
        assert_eq!(granted("10.0.0.2", NOW), 10);
        // A /64 is one client.
        assert_eq!(granted("2001:db8::1", NOW), 10);
        assert_eq!(granted("2001:db8::2", NOW), 0);
        // Refilled at 5 per second.
        assert_eq!(granted("10.0.0.1", NOW + S), 5);
        match b.spend(&store, ip("10.0.0.1"), NOW + S) {
            Spend::Exhausted(l) => {
                assert_eq!(
                    (l.limit, l.quota, l.window_secs),
                    (BUDGET_LIMIT_NAME, 10, 2)
                );
                assert_eq!(l.retry_after_secs, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn store_failures_follow_the_setting() {
        let store = MemoryStore::new();
        store.set_unavailable(true);
        let mut b = budget();
        assert_eq!(b.spend(&store, ip("10.0.0.1"), NOW), Spend::Granted);
        b.allow_on_store_error = false;
        assert_eq!(b.spend(&store, ip("10.0.0.1"), NOW), Spend::Unavailable);
    }
}
