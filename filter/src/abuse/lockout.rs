//! Failure-only limits (lockouts): a limit that counts only failed authentications, and is
//! consulted before any credential is verified. After `burst` failures from one key (a client
//! address prefix, or the prefix of the presented credential) the key is locked: every request
//! from it is answered 429 with `retry-after`, without looking at its credential, until the
//! bucket refills (`rate` failures per `per`). Successful requests are never counted, so a
//! legitimate client that mistypes a key a few times is not locked out, and a brute-force run is
//! stopped after `burst` guesses at a cost of one shared-data read per request.
//!
//! A lockout keyed by [`crate::ratelimit::key_prefix::KeyIdPrefix`] counts failures per API-key id prefix (the non-secret
//! part of a presented key, as in `<key-id>.<secret>` schemes) wherever they come from: a
//! guesser spreading one key id's guesses over many addresses is stopped after `burst` of them.

use crate::ratelimit::gcra::GcraOutcome;
use crate::ratelimit::table::{Decided, Tats, Updated};
use crate::ratelimit::{ceil_secs, entry_members, key_hash, Counts, Event, Mode, RateLimit};
use crate::rejection::{Limited, Rejection};
use crate::request::RequestView;
use crate::store::SharedStore;
use crate::verdict::Admission;

/// The lockouts (`counts: failed_auth`): a request whose key has failed too often is refused
/// before any credential is verified. Counts nothing: one read per entry (lockouts next to each
/// other with the same key share one).
pub fn check_lockouts<'g>(
    limits: &'g [RateLimit],
    request: &RequestView<'_>,
    store: &dyn SharedStore,
    now_ns: u64,
    events: &mut Vec<(usize, Event)>,
) -> Result<(), Rejection<'g>> {
    let none = Admission::default();
    for (i, limit) in limits.iter().enumerate() {
        if limit.counts != Counts::FailedAuth || limit.lane != 0 {
            continue;
        }
        let Some(hash) = key_hash(&limit.key, request, &none) else {
            continue;
        };
        let tats = limit.table.peek(store, hash);
        for (j, member) in entry_members(limits, i) {
            match &tats {
                Ok(tats) => {
                    let Some(limited) = lockout_of(member, tats, now_ns) else {
                        continue;
                    };
                    if member.mode == Mode::Shadow {
                        events.push((j, Event::ShadowLimited));
                        continue;
                    }
                    events.push((j, Event::Limited));
                    return Err(Rejection::RateLimited(limited));
                }
                // A lockout that cannot be read does not lock: the credential checks still run.
                Err(_) => events.push((j, Event::StoreErrors)),
            }
        }
    }
    Ok(())
}

/// Counts one failed authentication against every lockout of the policy: one read and one
/// write per entry.
pub fn record_failed_auth(
    limits: &[RateLimit],
    request: &RequestView<'_>,
    store: &dyn SharedStore,
    now_ns: u64,
    events: &mut Vec<(usize, Event)>,
) {
    let none = Admission::default();
    for (i, limit) in limits.iter().enumerate() {
        if limit.counts != Counts::FailedAuth || limit.lane != 0 {
            continue;
        }
        if let Some(hash) = key_hash(&limit.key, request, &none) {
            count_failure(
                entry_members(limits, i).map(|(_, l)| l),
                store,
                hash,
                now_ns,
            );
            for (j, _) in entry_members(limits, i) {
                events.push((j, Event::FailedAuth));
            }
        }
    }
}

/// The 429 of `limit` for an entry in state `tats` at `now_ns`, if its key is locked.
fn lockout_of<'g>(limit: &'g RateLimit, tats: &Tats, now_ns: u64) -> Option<Limited<'g>> {
    let tat = tats.get(limit.lane).copied().unwrap_or(0);
    match limit.gcra.decide(tat, now_ns) {
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
    }
}

/// Whether `hash` is locked out under `limit` at `now_ns`: `Some(details)` for the 429.
/// A store failure reads as not locked (`Err` is for the caller's metrics); the credential
/// checks still run in full then.
pub fn locked<'g>(
    limit: &'g RateLimit,
    store: &dyn SharedStore,
    hash: u64,
    now_ns: u64,
) -> Result<Option<Limited<'g>>, crate::store::StoreError> {
    let tats = limit.table.peek(store, hash)?;
    Ok(lockout_of(limit, &tats, now_ns))
}

/// Counts one failed authentication of `hash` against `limit` alone. Returns whether the key is
/// now locked.
pub fn record_failure(limit: &RateLimit, store: &dyn SharedStore, hash: u64, now_ns: u64) -> bool {
    count_failure(std::iter::once(limit), store, hash, now_ns).unwrap_or(false)
}

/// Counts one failed authentication of `hash` in each of `lanes` (limits of one entry): every
/// lockout counts it on its own (one that is already locked counts nothing, as a refusal
/// writes nothing), in one write. `Some(whether the first of them is now locked)`, `None` if
/// the store failed.
fn count_failure<'g>(
    lanes: impl Iterator<Item = &'g RateLimit> + Clone,
    store: &dyn SharedStore,
    hash: u64,
    now_ns: u64,
) -> Option<bool> {
    let Some(table) = lanes.clone().next().map(|l| &l.table) else {
        return Some(false);
    };
    let (updated, _) = table.update(store, hash, now_ns, |tats| {
        let mut next = *tats;
        let mut counted = false;
        let mut first_locked = None;
        for limit in lanes.clone() {
            let Some(tat) = next.get_mut(limit.lane) else {
                continue;
            };
            let locked = match limit.gcra.decide(*tat, now_ns) {
                GcraOutcome::Allow {
                    new_tat, remaining, ..
                } => {
                    *tat = new_tat;
                    counted = true;
                    remaining == 0
                }
                GcraOutcome::Deny { .. } => true,
            };
            first_locked.get_or_insert(locked);
        }
        let locked = first_locked.unwrap_or(false);
        if counted {
            Decided::Write(next, locked)
        } else {
            Decided::Keep(locked)
        }
    });
    match updated {
        Updated::Done { result, .. } => Some(result),
        Updated::CasRetriesExhausted | Updated::StoreFailed(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::gcra::Gcra;
    use crate::ratelimit::key_prefix::{KeyIdPrefix, PrefixRule};
    use crate::ratelimit::table::Table;
    use crate::ratelimit::{KeySource, OnStoreError};
    use crate::store::MemoryStore;

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
            lane: 0,
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

    fn prefix_lockout(failures: u64) -> RateLimit {
        RateLimit {
            name: "failed_auth_by_key_id".into(),
            key: KeySource::KeyIdPrefix(KeyIdPrefix {
                header: "x-api-key".into(),
                rule: PrefixRule::Separator(b'.'),
            }),
            ..lockout(failures, 600)
        }
    }

    fn hash_of(limit: &RateLimit, key: Option<&str>, ip: &str) -> Option<u64> {
        let mut headers = vec![(":path".to_string(), b"/x".to_vec())];
        if let Some(k) = key {
            headers.push(("x-api-key".to_string(), k.as_bytes().to_vec()));
        }
        let view = RequestView {
            headers: crate::request::leaked_headers(&headers),
            client_ip: ip.parse().ok(),
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        crate::ratelimit::key_hash(&limit.key, &view, &crate::verdict::Admission::default())
    }

    #[test]
    fn a_key_id_is_locked_after_n_failures_from_any_addresses() {
        let store = MemoryStore::new();
        let l = prefix_lockout(5);
        // Five wrong secrets for key id `acme`, each from another address.
        for i in 0..5 {
            let h = hash_of(&l, Some(&format!("acme.guess{i}")), &format!("10.0.0.{i}")).unwrap();
            assert_eq!(locked(&l, &store, h, NOW), Ok(None), "guess {i}");
            record_failure(&l, &store, h, NOW);
        }
        // The id is locked whatever the secret and the address; other ids are not.
        let acme = hash_of(&l, Some("acme.right-secret"), "192.0.2.9").unwrap();
        let got = locked(&l, &store, acme, NOW).unwrap().unwrap();
        assert_eq!(got.limit, "failed_auth_by_key_id");
        assert!(got.retry_after_secs >= 1);
        let globex = hash_of(&l, Some("globex.secret"), "10.0.0.1").unwrap();
        assert_eq!(locked(&l, &store, globex, NOW), Ok(None));
        // No key presented, or a key outside the scheme: nothing to count or refuse.
        assert_eq!(hash_of(&l, None, "10.0.0.1"), None);
        assert_eq!(hash_of(&l, Some(""), "10.0.0.1"), None);
        assert_eq!(hash_of(&l, Some("junk"), "10.0.0.1"), None);
        assert_eq!(hash_of(&l, Some(".secret"), "10.0.0.1"), None);
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
