//! The bounded key table of one limit in shared data, and the CAS loop that updates it.
//!
//! Each limit owns exactly `max_keys + 1` shared-data keys, created once at configure time and
//! never more: `<prefix>.<n>` for the slots `n = 0..max_keys`, and `<prefix>.overflow`. A slot
//! holds 16 bytes, the 64-bit hash of the rate-limit key (never the raw header value or
//! address) and its GCRA state `tat`; hash 0 marks a slot that was never used.
//!
//! A request for key hash `h` probes up to [`PROBES`] slots from `h mod max_keys`:
//! - the slot that already holds `h` is the key's bucket;
//! - otherwise the first slot that is unused or *expired* (its bucket is full again, so
//!   forgetting it changes nothing) is reclaimed for `h`;
//! - otherwise (every probed slot holds another live key) the key is counted against the
//!   limit's single **overflow bucket**, shared by every key that finds no slot. A full table
//!   therefore keeps limiting, more strictly: overflowing keys share one bucket's burst and rate.
//!
//! Every write is a compare-and-swap on the value just read; on a mismatch (another worker
//! wrote first) the whole decision is redone from fresh reads, at most [`MAX_CAS_RETRIES`]
//! times. A denial writes nothing.

use super::gcra::{Gcra, GcraOutcome};
use super::store::{SharedStore, StoreError};

/// Slots probed per key.
pub const PROBES: u32 = 4;
/// Re-reads after a CAS mismatch before the limit gives up (and applies `on_store_error`).
pub const MAX_CAS_RETRIES: u32 = 32;
/// Bytes of one slot value: key hash (u64 LE) then tat (u64 LE).
pub const SLOT_BYTES: usize = 16;
const EMPTY: [u8; SLOT_BYTES] = [0; SLOT_BYTES];

/// Where one limit's table lives and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Shared-data key prefix, e.g. `api_guard.rl.api.per_second`.
    pub prefix: String,
    pub max_keys: u32,
}

/// The result of one request against one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    Allowed {
        remaining: u64,
        full_in_ns: u64,
        overflow: bool,
    },
    Limited {
        retry_after_ns: u64,
        full_in_ns: u64,
        overflow: bool,
    },
    /// Every retry met a concurrent writer.
    CasRetriesExhausted,
    /// The store refused a call.
    StoreFailed(u32),
}

fn encode(hash: u64, tat: u64) -> [u8; SLOT_BYTES] {
    let mut out = [0u8; SLOT_BYTES];
    let (a, b) = out.split_at_mut(8);
    a.copy_from_slice(&hash.to_le_bytes());
    b.copy_from_slice(&tat.to_le_bytes());
    out
}

/// `(hash, tat)`; a value of the wrong size (never written by this code) reads as unused.
fn decode(value: &[u8]) -> (u64, u64) {
    let word = |r: std::ops::Range<usize>| {
        value
            .get(r)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    };
    if value.len() == SLOT_BYTES {
        (word(0..8), word(8..16))
    } else {
        (0, 0)
    }
}

/// The slot chosen for a request: its key, CAS token, and the key's current state.
struct Chosen {
    key: String,
    cas: Option<u32>,
    tat: u64,
    overflow: bool,
}

enum Probe {
    Chosen(Chosen),
    /// A slot did not exist (configure-time creation failed or was raced); it was just created.
    Created,
}

impl Table {
    pub fn slot_key(&self, slot: u32) -> String {
        format!("{}.{slot}", self.prefix)
    }

    pub fn overflow_key(&self) -> String {
        format!("{}.overflow", self.prefix)
    }

    /// Every shared-data key this table can ever use.
    pub fn all_keys(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.max_keys)
            .map(|s| self.slot_key(s))
            .chain(std::iter::once(self.overflow_key()))
    }

    /// Creates the keys that do not exist yet (called at configure time, from the root context,
    /// before requests use the table). Existing keys are left alone: a VM restart must not reset
    /// the buckets other workers are using. Returns how many keys were created.
    pub fn ensure_created(&self, store: &dyn SharedStore) -> Result<u32, StoreError> {
        let mut created = 0;
        for key in self.all_keys() {
            if store.get(&key)?.0.is_none() {
                store.set(&key, &EMPTY, None)?;
                created += 1;
            }
        }
        Ok(created)
    }

    fn probe(&self, store: &dyn SharedStore, hash: u64, now: u64) -> Result<Probe, StoreError> {
        let max = u64::from(self.max_keys.max(1));
        let start = hash % max;
        let mut free: Option<Chosen> = None;
        for i in 0..u64::from(PROBES).min(max) {
            let slot = u32::try_from((start + i) % max).unwrap_or(0);
            let key = self.slot_key(slot);
            let (value, cas) = store.get(&key)?;
            let Some(value) = value else {
                // Never left to a request in normal operation (configure creates every slot).
                // Create the empty slot, then decide again from fresh reads with CAS.
                store.set(&key, &EMPTY, None)?;
                return Ok(Probe::Created);
            };
            let (owner, tat) = decode(&value);
            if owner == hash {
                return Ok(Probe::Chosen(Chosen {
                    key,
                    cas,
                    tat,
                    overflow: false,
                }));
            }
            let never_used = owner == 0;
            if free.is_none() && (never_used || Gcra::is_full(tat, now)) {
                free = Some(Chosen {
                    key,
                    cas,
                    tat: 0,
                    overflow: false,
                });
            }
            // Keys are placed at the first free probe and slots never become unused again,
            // so no key of this probe sequence lies past a never-used slot.
            if never_used {
                break;
            }
        }
        if let Some(free) = free {
            return Ok(Probe::Chosen(free));
        }
        let key = self.overflow_key();
        let (value, cas) = store.get(&key)?;
        let Some(value) = value else {
            store.set(&key, &EMPTY, None)?;
            return Ok(Probe::Created);
        };
        Ok(Probe::Chosen(Chosen {
            key,
            cas,
            tat: decode(&value).1,
            overflow: true,
        }))
    }

    /// One request of key `hash` (never 0) at `now` (Unix nanoseconds): read, decide, and on
    /// admission write the new state with CAS, retrying on mismatch.
    pub fn consume(&self, store: &dyn SharedStore, gcra: &Gcra, hash: u64, now: u64) -> Consumed {
        self.consume_counting_retries(store, gcra, hash, now).0
    }

    /// [`Table::consume`], plus how many times a concurrent write forced a re-read.
    pub fn consume_counting_retries(
        &self,
        store: &dyn SharedStore,
        gcra: &Gcra,
        hash: u64,
        now: u64,
    ) -> (Consumed, u32) {
        let hash = hash.max(1);
        // Re-reads forced by a concurrent writer (creating a missing slot is not one).
        let mut retries = 0;
        for _ in 0..=MAX_CAS_RETRIES {
            let chosen = match self.probe(store, hash, now) {
                Ok(Probe::Chosen(c)) => c,
                Ok(Probe::Created) => continue,
                Err(StoreError::CasMismatch) => {
                    retries += 1;
                    continue;
                }
                Err(StoreError::Unavailable(s)) => return (Consumed::StoreFailed(s), retries),
            };
            match gcra.decide(chosen.tat, now) {
                GcraOutcome::Deny {
                    retry_after_ns,
                    full_in_ns,
                } => {
                    return (
                        Consumed::Limited {
                            retry_after_ns,
                            full_in_ns,
                            overflow: chosen.overflow,
                        },
                        retries,
                    )
                }
                GcraOutcome::Allow {
                    new_tat,
                    remaining,
                    full_in_ns,
                } => {
                    // A CAS token is always present for an existing key; without one the write
                    // would be unconditional, so treat it as a conflict and read again.
                    let Some(cas) = chosen.cas else { continue };
                    let owner = if chosen.overflow { u64::MAX } else { hash };
                    match store.set(&chosen.key, &encode(owner, new_tat), Some(cas)) {
                        Ok(()) => {
                            return (
                                Consumed::Allowed {
                                    remaining,
                                    full_in_ns,
                                    overflow: chosen.overflow,
                                },
                                retries,
                            )
                        }
                        Err(StoreError::CasMismatch) => retries += 1,
                        Err(StoreError::Unavailable(s)) => {
                            return (Consumed::StoreFailed(s), retries)
                        }
                    }
                }
            }
        }
        (Consumed::CasRetriesExhausted, retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::store::MemoryStore;
    use std::sync::Arc;

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_800_000_000 * S;

    fn table(max_keys: u32) -> Table {
        Table {
            prefix: "t.p.l".into(),
            max_keys,
        }
    }

    fn no_refill(burst: u64) -> Gcra {
        Gcra::new(1, 86_400 * S, burst).unwrap()
    }

    fn allowed(c: Consumed) -> bool {
        matches!(c, Consumed::Allowed { .. })
    }

    #[test]
    fn creation_is_bounded_and_idempotent() {
        let store = MemoryStore::new();
        let t = table(8);
        assert_eq!(t.ensure_created(&store), Ok(9));
        assert_eq!(t.ensure_created(&store), Ok(0));
        let g = no_refill(2);
        for h in 1..=1000u64 {
            t.consume(&store, &g, h.wrapping_mul(0x9e37_79b9_7f4a_7c15), NOW);
        }
        // Whatever happens, the table never grows.
        assert_eq!(store.key_count(), 9);
        // A VM restart (configure again) does not reset live buckets.
        let before = store.keys().len();
        assert_eq!(t.ensure_created(&store), Ok(0));
        assert_eq!(store.key_count(), before);
    }

    #[test]
    fn keys_are_exact_and_independent() {
        let store = MemoryStore::new();
        let t = table(16);
        t.ensure_created(&store).unwrap();
        let g = no_refill(3);
        for key in [11u64, 12, 13] {
            let n = (0..10)
                .filter(|_| allowed(t.consume(&store, &g, key, NOW)))
                .count();
            assert_eq!(n, 3, "key {key}");
        }
    }

    #[test]
    fn collisions_probe_then_overflow() {
        let store = MemoryStore::new();
        let t = table(4);
        t.ensure_created(&store).unwrap();
        let g = no_refill(1);
        // Hashes 4, 8, 12, 16, 20 all start at slot 0.
        for h in [4u64, 8, 12, 16] {
            assert_eq!(
                t.consume(&store, &g, h, NOW),
                Consumed::Allowed {
                    remaining: 0,
                    full_in_ns: 86_400 * S,
                    overflow: false
                }
            );
        }
        // Every probed slot is held by a live key: the fifth key uses the overflow bucket...
        assert!(matches!(
            t.consume(&store, &g, 20, NOW),
            Consumed::Allowed { overflow: true, .. }
        ));
        // ...which every other overflowing key shares: limited, never unlimited.
        assert!(matches!(
            t.consume(&store, &g, 24, NOW),
            Consumed::Limited { overflow: true, .. }
        ));
        // Keys with a slot keep their own bucket.
        assert!(matches!(
            t.consume(&store, &g, 8, NOW),
            Consumed::Limited {
                overflow: false,
                ..
            }
        ));
    }

    #[test]
    fn expired_slots_are_reclaimed() {
        let store = MemoryStore::new();
        let t = table(1);
        t.ensure_created(&store).unwrap();
        let g = Gcra::new(1, S, 1).unwrap();
        assert!(allowed(t.consume(&store, &g, 7, NOW)));
        // The slot is live: another key overflows.
        assert!(matches!(
            t.consume(&store, &g, 9, NOW),
            Consumed::Allowed { overflow: true, .. }
        ));
        // One second later key 7's bucket is full again: key 9 takes the slot over.
        assert!(matches!(
            t.consume(&store, &g, 9, NOW + S),
            Consumed::Allowed {
                overflow: false,
                ..
            }
        ));
        let (v, _) = store.get("t.p.l.0").unwrap();
        assert_eq!(decode(&v.unwrap()).0, 9);
    }

    #[test]
    fn cas_mismatch_is_retried_then_exhausted() {
        let store = MemoryStore::new();
        let t = table(4);
        t.ensure_created(&store).unwrap();
        let g = no_refill(5);
        store.interfere_with_next_writes(3);
        let (c, retries) = t.consume_counting_retries(&store, &g, 1, NOW);
        assert!(allowed(c));
        assert_eq!(retries, 3);
        store.interfere_with_next_writes(MAX_CAS_RETRIES + 1);
        assert_eq!(t.consume(&store, &g, 1, NOW), Consumed::CasRetriesExhausted);
        store.interfere_with_next_writes(0);
        // Exhaustion wrote nothing: exactly 4 more admissions remain.
        let n = (0..10)
            .filter(|_| allowed(t.consume(&store, &g, 1, NOW)))
            .count();
        assert_eq!(n, 4);
        store.set_unavailable(true);
        assert!(matches!(
            t.consume(&store, &g, 1, NOW),
            Consumed::StoreFailed(_)
        ));
    }

    #[test]
    fn missing_slots_are_created_on_the_request_path() {
        let store = MemoryStore::new();
        let t = table(4);
        let g = no_refill(2);
        let n = (0..5)
            .filter(|_| allowed(t.consume(&store, &g, 3, NOW)))
            .count();
        assert_eq!(n, 2);
    }

    #[test]
    fn exact_across_real_threads() {
        // Four threads hammer one key and a few others through one shared store: the CAS loop
        // admits exactly the burst, never more, never less.
        let store = Arc::new(MemoryStore::new());
        let t = Arc::new(table(64));
        t.ensure_created(&*store).unwrap();
        let g = no_refill(100);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (store, t) = (store.clone(), t.clone());
                std::thread::spawn(move || {
                    let mut admitted = [0u32; 3];
                    for i in 0..300 {
                        let key = [1u64, 2, 3][i % 3];
                        if allowed(t.consume(&*store, &g, key, NOW)) {
                            admitted[i % 3] += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        let mut total = [0u32; 3];
        for h in handles {
            for (t, n) in total.iter_mut().zip(h.join().unwrap()) {
                *t += n;
            }
        }
        assert_eq!(total, [100, 100, 100]);
    }

    proptest::proptest! {
        /// Any mix of keys and interference: the table never exceeds its keys, and no key is
        /// admitted more than its burst (no refill) unless it shares the overflow bucket, whose
        /// own total is bounded by the burst too.
        #[test]
        fn table_bounds_hold(
            keys in proptest::collection::vec(1u64..40, 1..200),
            max_keys in 1u32..10,
            interference in proptest::collection::vec(0u32..3, 1..200),
        ) {
            let store = MemoryStore::new();
            let t = table(max_keys);
            t.ensure_created(&store).unwrap();
            let g = no_refill(2);
            let mut per_key = std::collections::HashMap::new();
            let mut overflow = 0u64;
            for (i, k) in keys.iter().enumerate() {
                store.interfere_with_next_writes(interference[i % interference.len()]);
                match t.consume(&store, &g, *k, NOW) {
                    Consumed::Allowed { overflow: true, .. } => overflow += 1,
                    Consumed::Allowed { .. } => *per_key.entry(*k).or_insert(0u64) += 1,
                    _ => {}
                }
            }
            proptest::prop_assert!(store.key_count() <= max_keys as usize + 1);
            proptest::prop_assert!(overflow <= 2);
            proptest::prop_assert!(per_key.values().all(|n| *n <= 2));
            proptest::prop_assert!(per_key.len() <= max_keys as usize);
        }
    }
}
