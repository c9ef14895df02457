//! The bounded key table of one limit in shared data, and the CAS loop that updates it.
//!
//! Each limit owns exactly `max_keys + overflow_buckets` shared-data keys, created once at
//! configure time and never more: `<prefix>.<n>` for the slots `n = 0..max_keys`, and
//! `<prefix>.overflow.<j>` for the overflow buckets. A slot holds 16 bytes, the 64-bit hash of
//! the rate-limit key (never the raw header value or address) and its GCRA state `tat`; hash 0
//! marks a slot that was never used. An overflow bucket holds the same 16 bytes (owner
//! `u64::MAX`) and only a `tat`.
//!
//! A request for key hash `h` probes up to [`PROBES`] slots from `h mod max_keys`:
//! - the slot that already holds `h` is the key's bucket;
//! - otherwise the first slot that is unused or *idle* (its bucket is full again, so forgetting
//!   it changes nothing) is taken for `h`;
//! - otherwise (every probed slot holds a live key: a real flood of keys) the probed slot whose
//!   bucket is *fullest* (smallest `tat`) is taken over, and the state of the key it held is
//!   moved into that key's **overflow bucket** (`tat = max(tat, evicted tat)`).
//!
//! A key that takes a slot starts from its own overflow bucket's `tat`, not from an empty
//! bucket: a key that was pushed out comes back with at least the debt it left with. So
//! eviction never lets a key past its limit (exactness), and newcomers are not starved by the
//! crowd: an overflow bucket keeps the *maximum* of the debts moved into it, never their sum, so
//! light keys leave light debts, and a heavy key (whose slot is the last to be taken, its
//! bucket being the emptiest) taints only the one overflow bucket it hashes to, the share
//! `1 / overflow_buckets` of newcomers that hash there too.
//!
//! Every write is a compare-and-swap on the value just read; on a mismatch (another worker
//! wrote first) the whole decision is redone from fresh reads, at most [`MAX_CAS_RETRIES`]
//! times. A denial writes nothing. When a slot is taken over, the overflow bucket is raised
//! first and the slot written second: a lost race on the slot only leaves the overflow bucket
//! stricter.

use super::gcra::{Gcra, GcraOutcome};
use crate::store::{cas_loop, SharedStore, SlotTable, Step, StoreError};
pub use crate::store::{MAX_CAS_RETRIES, PROBES};
/// Bytes of one slot value: key hash (u64 LE) then tat (u64 LE).
pub const SLOT_BYTES: usize = 16;
/// The most overflow buckets a table has (for `max_keys` of 256 and more).
pub const MAX_OVERFLOW_BUCKETS: u32 = 256;
const EMPTY: [u8; SLOT_BYTES] = [0; SLOT_BYTES];
const OVERFLOW_OWNER: u64 = u64::MAX;

/// Where one limit's table lives and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Shared-data key prefix, e.g. `api_guard.rl.api.per_second`.
    pub prefix: String,
    pub max_keys: u32,
    /// `min(max_keys, 256)`: one per slot for small tables.
    pub overflow_buckets: u32,
}

/// The result of one request against one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    Allowed {
        remaining: u64,
        full_in_ns: u64,
        /// The key found no idle slot and took over a live key's slot (the table is saturated).
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

/// How full a table is at one instant (exported as gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Slots holding a key whose bucket is not full (a key that would be counted if forgotten).
    pub live_slots: u32,
    /// Overflow buckets holding a debt that has not run out yet.
    pub live_overflow: u32,
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

/// One read entry: its key, CAS token, owner and tat.
struct Entry {
    key: String,
    cas: Option<u32>,
    owner: u64,
    tat: u64,
}

/// Where a request's key will be counted.
enum Placement {
    /// The key holds this slot.
    Own(Entry),
    /// The key takes this slot, starting from `start` (its overflow bucket's tat). `evict`:
    /// the slot holds a live key whose state must first move to its overflow bucket.
    Take {
        slot: Entry,
        start: u64,
        evict: Option<Entry>,
    },
}

enum Read {
    Found(Entry),
    /// The key did not exist (configure-time creation failed or was raced); it was just
    /// created: decide again from fresh reads.
    Created,
}

impl Table {
    /// A table of `max_keys` slots under `prefix`, with its overflow buckets.
    pub fn new(prefix: String, max_keys: u32) -> Table {
        let max_keys = max_keys.max(1);
        Table {
            prefix,
            max_keys,
            overflow_buckets: max_keys.min(MAX_OVERFLOW_BUCKETS),
        }
    }

    /// The slots (`<prefix>.<n>`) as a probed slot table.
    fn slots(&self) -> SlotTable<'_> {
        SlotTable::new(&self.prefix, self.max_keys)
    }

    pub fn slot_key(&self, slot: u32) -> String {
        self.slots().key(slot)
    }

    pub fn overflow_key(&self, bucket: u32) -> String {
        format!("{}.overflow.{bucket}", self.prefix)
    }

    /// The overflow bucket of key `hash` (other bits than the slot index uses).
    fn overflow_of(&self, hash: u64) -> u32 {
        let n = u64::from(self.overflow_buckets.max(1));
        u32::try_from(hash.rotate_right(32) % n).unwrap_or(0)
    }

    /// Every shared-data key this table can ever use.
    pub fn all_keys(&self) -> impl Iterator<Item = String> + '_ {
        self.slots()
            .keys()
            .chain((0..self.overflow_buckets).map(|b| self.overflow_key(b)))
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

    /// Counts the live slots and overflow buckets at `now` (one read per key: for a periodic
    /// gauge, never the request path).
    pub fn census(&self, store: &dyn SharedStore, now: u64) -> Result<Census, StoreError> {
        let mut census = Census::default();
        for key in self.all_keys() {
            let Some(value) = store.get(&key)?.0 else {
                continue;
            };
            let (owner, tat) = decode(&value);
            if owner == 0 || Gcra::is_full(tat, now) {
                continue;
            }
            if owner == OVERFLOW_OWNER {
                census.live_overflow += 1;
            } else {
                census.live_slots += 1;
            }
        }
        Ok(census)
    }

    fn read(store: &dyn SharedStore, key: String) -> Result<Read, StoreError> {
        let (value, cas) = store.get(&key)?;
        let Some(value) = value else {
            // Never left to a request in normal operation (configure creates every key).
            store.set(&key, &EMPTY, None)?;
            return Ok(Read::Created);
        };
        let (owner, tat) = decode(&value);
        Ok(Read::Found(Entry {
            key,
            cas,
            owner,
            tat,
        }))
    }

    /// Finds where key `hash` is counted at `now`; `None`: a key was just created, read again.
    fn place(
        &self,
        store: &dyn SharedStore,
        hash: u64,
        now: u64,
    ) -> Result<Option<Placement>, StoreError> {
        let mut idle: Option<Entry> = None;
        let mut fullest: Option<Entry> = None;
        for key in self.slots().probe(hash) {
            let Read::Found(entry) = Self::read(store, key)? else {
                return Ok(None);
            };
            if entry.owner == hash {
                return Ok(Some(Placement::Own(entry)));
            }
            let never_used = entry.owner == 0;
            if never_used || Gcra::is_full(entry.tat, now) {
                if idle.is_none() {
                    idle = Some(entry);
                }
            } else if fullest.as_ref().is_none_or(|f| entry.tat < f.tat) {
                fullest = Some(entry);
            }
            // Keys are placed at the first idle probe and slots never become unused again,
            // so no key of this probe sequence lies past a never-used slot.
            if never_used {
                break;
            }
        }
        let Read::Found(own_overflow) =
            Self::read(store, self.overflow_key(self.overflow_of(hash)))?
        else {
            return Ok(None);
        };
        let start = own_overflow.tat;
        if let Some(slot) = idle {
            return Ok(Some(Placement::Take {
                slot,
                start,
                evict: None,
            }));
        }
        let Some(slot) = fullest else {
            // No probe at all (cannot happen: max_keys >= 1); count nothing, fail per policy.
            return Err(StoreError::Unavailable(0));
        };
        let Read::Found(evict) =
            Self::read(store, self.overflow_key(self.overflow_of(slot.owner)))?
        else {
            return Ok(None);
        };
        Ok(Some(Placement::Take {
            slot,
            start,
            evict: Some(evict),
        }))
    }

    /// The state key `hash` would be decided on at `now`, without counting anything: its own
    /// slot's `tat`, or (no slot) the overflow debt it would start from. For limits that are
    /// consulted on every request but counted only on some (failed authentications). One to
    /// five reads, no write.
    pub fn peek(&self, store: &dyn SharedStore, hash: u64) -> Result<u64, StoreError> {
        let hash = hash.clamp(1, u64::MAX - 1);
        for key in self.slots().probe(hash) {
            let Some(value) = store.get(&key)?.0 else {
                break;
            };
            let (owner, tat) = decode(&value);
            if owner == hash {
                return Ok(tat);
            }
            if owner == 0 {
                break;
            }
        }
        Ok(store
            .get(&self.overflow_key(self.overflow_of(hash)))?
            .0
            .map_or(0, |v| decode(&v).1))
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
        // 0 marks an unused slot and u64::MAX an overflow bucket: neither is a key.
        let hash = hash.clamp(1, u64::MAX - 1);
        // Keys created on the request path (at most every probed slot and two overflow
        // buckets) are re-read for free; more would mean a store that drops keys.
        let (consumed, retries) = cas_loop(PROBES + 2, || self.attempt(store, gcra, hash, now));
        (consumed.unwrap_or(Consumed::CasRetriesExhausted), retries)
    }

    /// One read-decide-write of [`Table::consume`].
    fn attempt(&self, store: &dyn SharedStore, gcra: &Gcra, hash: u64, now: u64) -> Step<Consumed> {
        let placement = match self.place(store, hash, now) {
            Ok(Some(p)) => p,
            Ok(None) => return Step::Created,
            Err(StoreError::CasMismatch) => return Step::Conflict,
            Err(StoreError::Unavailable(s)) => return Step::Done(Consumed::StoreFailed(s)),
        };
        let (slot, tat, evict) = match placement {
            Placement::Own(slot) => {
                let tat = slot.tat;
                (slot, tat, None)
            }
            Placement::Take { slot, start, evict } => (slot, start, evict),
        };
        let overflow = evict.is_some();
        let (new_tat, remaining, full_in_ns) = match gcra.decide(tat, now) {
            GcraOutcome::Deny {
                retry_after_ns,
                full_in_ns,
            } => {
                return Step::Done(Consumed::Limited {
                    retry_after_ns,
                    full_in_ns,
                    overflow,
                })
            }
            GcraOutcome::Allow {
                new_tat,
                remaining,
                full_in_ns,
            } => (new_tat, remaining, full_in_ns),
        };
        // Move the evicted key's state first: if the slot write below then loses a race, the
        // overflow bucket is only stricter than it needs to be.
        if let Some(bucket) = evict {
            let debt = slot.tat;
            if bucket.tat < debt {
                // A CAS token is always present for an existing key; without one the write
                // would be unconditional, so treat it as a conflict and read again.
                let Some(cas) = bucket.cas else {
                    return Step::Conflict;
                };
                match store.set(&bucket.key, &encode(OVERFLOW_OWNER, debt), Some(cas)) {
                    Ok(()) => {}
                    Err(StoreError::CasMismatch) => return Step::Conflict,
                    Err(StoreError::Unavailable(s)) => return Step::Done(Consumed::StoreFailed(s)),
                }
            }
        }
        let Some(cas) = slot.cas else {
            return Step::Conflict;
        };
        match store.set(&slot.key, &encode(hash, new_tat), Some(cas)) {
            Ok(()) => Step::Done(Consumed::Allowed {
                remaining,
                full_in_ns,
                overflow,
            }),
            Err(StoreError::CasMismatch) => Step::Conflict,
            Err(StoreError::Unavailable(s)) => Step::Done(Consumed::StoreFailed(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::collections::HashMap;
    use std::sync::Arc;

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_800_000_000 * S;

    fn table(max_keys: u32) -> Table {
        Table::new("t.p.l".into(), max_keys)
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
        assert_eq!(t.overflow_buckets, 8);
        assert_eq!(t.ensure_created(&store), Ok(16));
        assert_eq!(t.ensure_created(&store), Ok(0));
        let g = no_refill(2);
        for h in 1..=1000u64 {
            t.consume(&store, &g, h.wrapping_mul(0x9e37_79b9_7f4a_7c15), NOW);
        }
        // Whatever happens, the table never grows.
        assert_eq!(store.key_count(), 16);
        // A VM restart (configure again) does not reset live buckets.
        let before = store.keys().len();
        assert_eq!(t.ensure_created(&store), Ok(0));
        assert_eq!(store.key_count(), before);
        assert_eq!(Table::new("x".into(), 100_000).overflow_buckets, 256);
        assert_eq!(Table::new("x".into(), 0).max_keys, 1);
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
    fn a_saturated_table_moves_the_fullest_bucket_out_and_keeps_its_debt() {
        let store = MemoryStore::new();
        let t = table(4);
        t.ensure_created(&store).unwrap();
        let g = no_refill(3);
        // Hashes 4, 8, 12, 16 all start at slot 0 and fill the table; key 4 uses its whole
        // burst, the others one request each.
        for _ in 0..3 {
            assert!(allowed(t.consume(&store, &g, 4, NOW)));
        }
        for h in [8u64, 12, 16] {
            assert_eq!(
                t.consume(&store, &g, h, NOW),
                Consumed::Allowed {
                    remaining: 2,
                    full_in_ns: 86_400 * S,
                    overflow: false
                }
            );
        }
        // A fifth key finds every probed slot live: it takes the fullest bucket's slot (key 8,
        // the first of the lightest) and is admitted on its first request.
        assert_eq!(
            t.consume(&store, &g, 20, NOW),
            Consumed::Allowed {
                remaining: 2,
                full_in_ns: 86_400 * S,
                overflow: true
            }
        );
        // Key 8 comes back with the debt it left with: 2 more, not 3.
        let n = (0..5)
            .filter(|_| allowed(t.consume(&store, &g, 8, NOW)))
            .count();
        assert_eq!(n, 2);
        // The heavy key is never the one moved out while lighter keys hold slots, and it stays
        // refused wherever it is counted.
        for _ in 0..5 {
            assert!(!allowed(t.consume(&store, &g, 4, NOW)));
        }
    }

    #[test]
    fn idle_slots_are_reclaimed() {
        let store = MemoryStore::new();
        let t = table(1);
        t.ensure_created(&store).unwrap();
        let g = Gcra::new(1, S, 1).unwrap();
        assert!(allowed(t.consume(&store, &g, 7, NOW)));
        // The slot is live: key 9 takes it over, key 7's debt moves to its overflow bucket.
        assert!(matches!(
            t.consume(&store, &g, 9, NOW),
            Consumed::Allowed { overflow: true, .. }
        ));
        // Key 7 comes back at once: its debt is still there.
        assert!(matches!(
            t.consume(&store, &g, 7, NOW),
            Consumed::Limited { .. }
        ));
        // One second later key 9's bucket is full again: key 7 takes the slot, no eviction.
        assert!(matches!(
            t.consume(&store, &g, 7, NOW + S),
            Consumed::Allowed {
                overflow: false,
                ..
            }
        ));
        let (v, _) = store.get("t.p.l.0").unwrap();
        assert_eq!(decode(&v.unwrap()).0, 7);
    }

    #[test]
    fn census_counts_live_slots_and_debts() {
        let store = MemoryStore::new();
        let t = table(4);
        t.ensure_created(&store).unwrap();
        let g = Gcra::new(1, S, 1).unwrap();
        assert_eq!(t.census(&store, NOW), Ok(Census::default()));
        for h in [4u64, 8, 12, 16, 20] {
            assert!(allowed(t.consume(&store, &g, h, NOW)));
        }
        assert_eq!(
            t.census(&store, NOW),
            Ok(Census {
                live_slots: 4,
                live_overflow: 1
            })
        );
        assert_eq!(t.census(&store, NOW + S), Ok(Census::default()));
        store.set_unavailable(true);
        assert!(t.census(&store, NOW).is_err());
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
        // Four threads hammer a few keys through one shared store, in a table small enough
        // that the keys push each other out: the CAS loop admits exactly the burst per key.
        for max_keys in [64, 2] {
            let store = Arc::new(MemoryStore::new());
            let t = Arc::new(table(max_keys));
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
            if max_keys == 64 {
                assert_eq!(total, [100, 100, 100]);
            } else {
                assert!(total.iter().all(|n| *n <= 100), "{total:?}");
            }
        }
    }

    /// Runs `(key, gap)` arrivals and checks every key's admissions against its own GCRA
    /// bound (burst + elapsed / T since its first request). Returns the admissions per key.
    fn run_and_check_exactness(
        t: &Table,
        store: &MemoryStore,
        g: &Gcra,
        arrivals: &[(u64, u64)],
    ) -> Result<HashMap<u64, u64>, String> {
        let mut now = NOW;
        let mut first: HashMap<u64, u64> = HashMap::new();
        let mut admitted: HashMap<u64, u64> = HashMap::new();
        for (key, gap) in arrivals {
            now += gap;
            let since = *first.entry(*key).or_insert(now);
            if allowed(t.consume(store, g, *key, now)) {
                let n = admitted.entry(*key).or_insert(0);
                *n += 1;
                let bound = g.burst + (now - since) / g.interval_ns;
                if *n > bound {
                    return Err(format!("key {key}: {n} admitted, bound {bound}"));
                }
            }
        }
        Ok(admitted)
    }

    /// The distinct keys of `keys`, in order, keeping fewer than `burst` per overflow bucket.
    fn few_per_bucket(t: &Table, keys: Vec<u64>, burst: u64) -> Vec<u64> {
        let mut per_bucket = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        keys.into_iter()
            .filter(|k| seen.insert(*k))
            .filter(|k| {
                let n = per_bucket.entry(t.overflow_of(*k)).or_insert(0u64);
                *n += 1;
                *n < burst
            })
            .collect()
    }

    proptest::proptest! {
        /// Any mix of keys, table sizes, arrival times and interference: the table never
        /// exceeds its keys, and no key is ever admitted past its own limit, however often it
        /// is pushed out of its slot and comes back.
        #[test]
        fn every_key_stays_within_its_limit(
            arrivals in proptest::collection::vec((1u64..40, 0u64..(S / 2)), 1..300),
            max_keys in 1u32..10,
            burst in 1u64..4,
            interference in proptest::collection::vec(0u32..3, 1..50),
        ) {
            let store = MemoryStore::new();
            let t = table(max_keys);
            t.ensure_created(&store).unwrap();
            let g = Gcra::new(1, S, burst).unwrap();
            for (i, chunk) in arrivals.chunks(7).enumerate() {
                store.interfere_with_next_writes(interference[i % interference.len()]);
                let got = run_and_check_exactness(&t, &store, &g, chunk);
                proptest::prop_assert!(got.is_ok(), "{:?}", got);
            }
            let whole = MemoryStore::new();
            let got = run_and_check_exactness(&t, &whole, &g, &arrivals);
            proptest::prop_assert!(got.is_ok(), "{:?}", got);
            proptest::prop_assert!(store.key_count() <= (max_keys + t.overflow_buckets) as usize);
        }

        /// A table full of keys whose buckets are full again (idle) admits every newcomer: the
        /// fillers' debts have run out. (Newcomers that push each other out pass debts on: fewer
        /// than `burst` newcomers per overflow bucket here, see the next property.)
        #[test]
        fn a_full_table_of_idle_keys_admits_newcomers(
            max_keys in 1u32..30,
            fillers in proptest::collection::vec(1u64..u64::MAX, 1..100),
            newcomers in proptest::collection::btree_set(1u64..u64::MAX, 1..20),
            burst in 2u64..5,
        ) {
            let store = MemoryStore::new();
            let t = table(max_keys);
            t.ensure_created(&store).unwrap();
            let g = Gcra::new(1, S, burst).unwrap();
            for k in &fillers {
                for _ in 0..burst + 1 {
                    t.consume(&store, &g, *k, NOW);
                }
            }
            // Every filler's bucket (and every debt) is full again after burst * T.
            let later = NOW + g.tolerance_ns;
            for k in few_per_bucket(&t, newcomers.into_iter().collect(), burst) {
                proptest::prop_assert!(allowed(t.consume(&store, &g, k, later)));
            }
        }

        /// A table saturated by light keys (a crowd, not an attacker) admits every newcomer on
        /// its first request, at once. A newcomer inherits the largest debt moved into its
        /// overflow bucket, which grows by one request per key pushed out through that bucket:
        /// the crowd here leaves fewer than `burst` keys per overflow bucket.
        #[test]
        fn a_crowd_does_not_lock_newcomers_out(
            max_keys in 1u32..30,
            fillers in proptest::collection::vec(1u64..u64::MAX, 1..120),
            newcomers in proptest::collection::btree_set(1u64..u64::MAX, 1..20),
            burst in 2u64..6,
        ) {
            let store = MemoryStore::new();
            let t = table(max_keys);
            t.ensure_created(&store).unwrap();
            let g = no_refill(burst);
            let mut keys = fillers;
            keys.extend(newcomers);
            let keys = few_per_bucket(&t, keys, burst);
            let (fillers, newcomers) = keys.split_at(keys.len() / 2);
            for k in fillers {
                t.consume(&store, &g, *k, NOW);
            }
            for k in newcomers {
                proptest::prop_assert!(allowed(t.consume(&store, &g, *k, NOW)));
            }
        }
    }

    #[test]
    fn one_attacker_starves_at_most_one_overflow_bucket_of_newcomers() {
        // 20 slots: 19 light keys and one attacker that exhausts its bucket and keeps trying,
        // then a crowd of newcomers pushes keys out.
        let store = MemoryStore::new();
        let t = table(20);
        t.ensure_created(&store).unwrap();
        // 1 per second, burst 3; newcomers arrive 10 per second, so pushed-out debts run out
        // about as fast as they are made.
        let g = Gcra::new(1, S, 3).unwrap();
        let attacker = 0xdead_beef_u64;
        let hashes: Vec<u64> = (1..=400u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for h in &hashes[..19] {
            assert!(allowed(t.consume(&store, &g, *h, NOW)));
        }
        for _ in 0..50 {
            t.consume(&store, &g, attacker, NOW);
        }
        let mut now = NOW;
        let refused = hashes[19..]
            .iter()
            .filter(|h| {
                // Newcomers arrive between the attacker's requests.
                now += S / 10;
                t.consume(&store, &g, attacker, now);
                !allowed(t.consume(&store, &g, **h, now))
            })
            .count();
        // Only newcomers sharing the attacker's overflow bucket (1 in 20) can inherit its debt.
        let share = hashes[19..]
            .iter()
            .filter(|h| t.overflow_of(**h) == t.overflow_of(attacker))
            .count();
        assert!(refused <= share, "refused {refused}, share {share}");
    }
}
