//! Failure-only limits (lockouts): a limit that counts only failed authentications, and is
//! consulted before any credential is verified. After `burst` failures from one key (a client
//! address prefix, or the prefix of the presented credential) the key is locked: every request
//! from it is answered 429 with `retry-after`, without looking at its credential, until the
//! bucket refills (`rate` failures per `per`). Successful requests are never counted, so a
//! legitimate client that mistypes a key a few times is not locked out, and a brute-force run is
//! stopped after `burst` guesses at a cost of one shared-data read per request.

use crate::ratelimit::gcra::GcraOutcome;
use crate::ratelimit::store::SharedStore;
use crate::ratelimit::table::Consumed;
use crate::ratelimit::{ceil_secs, Limited, RateLimit};

/// Whether `hash` is locked out under `limit` at `now_ns`: `Some(details)` for the 429.
/// A store failure reads as not locked (`Err` is for the caller's metrics); the credential
/// checks still run in full then.
pub fn locked<'g>(
    limit: &'g RateLimit,
    store: &dyn SharedStore,
    hash: u64,
    now_ns: u64,
) -> Result<Option<Limited<'g>>, crate::ratelimit::store::StoreError> {
    let tat = limit.table.peek(store, hash)?;
    Ok(match limit.gcra.decide(tat, now_ns) {
        GcraOutcome::Allow { .. } => None,
        GcraOutcome::Deny {
            retry_after_ns,
            full_in_ns,
        } => Some(Limited {
            limit: &limit.name,
            quota: limit.quota(),
            window_secs: limit.window_secs(),
            retry_after_secs: ceil_secs(retry_after_ns).max(1),
            reset_secs: ceil_secs(full_in_ns),
        }),
    })
}

/// Counts one failed authentication of `hash`. Returns whether the key is now locked.
pub fn record_failure(limit: &RateLimit, store: &dyn SharedStore, hash: u64, now_ns: u64) -> bool {
    match limit.table.consume(store, &limit.gcra, hash, now_ns) {
        Consumed::Allowed { remaining, .. } => remaining == 0,
        Consumed::Limited { .. } => true,
        Consumed::CasRetriesExhausted | Consumed::StoreFailed(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::gcra::Gcra;
    use crate::ratelimit::store::MemoryStore;
    use crate::ratelimit::table::Table;
    use crate::ratelimit::{Counts, KeySource, Mode, OnStoreError};

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_800_000_000 * S;

    fn lockout(failures: u64, per_secs: u64) -> RateLimit {
        RateLimit {
            name: "failed_auth".into(),
            gcra: Gcra::new(failures, per_secs * S, failures).unwrap(),
            key: KeySource::Ip {
                v4_prefix: 32,
                v6_prefix: 64,
            },
            mode: Mode::Enforce,
            on_store_error: OnStoreError::Allow,
            table: Table::new("lock".into(), 64),
            overrides: Vec::new(),
            counts: Counts::FailedAuth,
        }
    }

    #[test]
    fn locks_after_n_failures_and_unlocks_after_the_window() {
        let store = MemoryStore::new();
        let l = lockout(20, 60);
        for i in 0..20 {
            assert_eq!(locked(&l, &store, 7, NOW), Ok(None), "failure {i}");
            assert_eq!(record_failure(&l, &store, 7, NOW), i == 19);
        }
        let got = locked(&l, &store, 7, NOW).unwrap().unwrap();
        assert_eq!(
            (got.limit, got.quota, got.window_secs),
            ("failed_auth", 20, 60)
        );
        assert_eq!(got.retry_after_secs, 3);
        // Peeking counts nothing: still locked exactly as long.
        for _ in 0..100 {
            assert!(locked(&l, &store, 7, NOW).unwrap().is_some());
        }
        assert!(locked(&l, &store, 7, NOW + 3 * S).unwrap().is_none());
        // Another key is not affected.
        assert_eq!(locked(&l, &store, 8, NOW), Ok(None));
        store.set_unavailable(true);
        assert!(locked(&l, &store, 7, NOW).is_err());
        assert!(!record_failure(&l, &store, 7, NOW));
    }

    proptest::proptest! {
        /// However failures and checks interleave, a key is never refused before `burst`
        /// failures, and always refused right after `burst` failures at one instant.
        #[test]
        fn exactly_n_failures_lock(n in 1u64..30, checks in 0usize..5) {
            let store = MemoryStore::new();
            let l = lockout(n, 3600);
            for _ in 0..n {
                for _ in 0..checks {
                    proptest::prop_assert!(locked(&l, &store, 42, NOW).unwrap().is_none());
                }
                record_failure(&l, &store, 42, NOW);
            }
            proptest::prop_assert!(locked(&l, &store, 42, NOW).unwrap().is_some());
        }
    }
}
