//! The bounded key table of one rate-limit entry in shared data, and the CAS loop that updates
//! it. An entry is one limit, or several limits of one policy that count by the same key (the
//! *lanes* of the entry): their states live side by side in one value, so that a request pays
//! one read and one compare-and-swap for all of them.
//!
//! Each table owns exactly `max_keys + overflow_buckets` shared-data keys, created once at
//! configure time and never more: `<prefix>.<n>` for the slots `n = 0..max_keys`, and
//! `<prefix>.overflow.<j>` for the overflow buckets. A slot holds `8 + 8 × lanes` bytes: the
//! 64-bit hash of the rate-limit key (never the raw header value or address), then the GCRA
//! state `tat` of each lane (u64 LE, in lane order); hash 0 marks a slot that was never used.
//! An overflow bucket holds the same layout (owner `u64::MAX`) and only the `tat`s. A one-lane
//! table is exactly the 16-byte layout of a single limit. A value of any other length (never
//! written under this prefix, since the prefix names every lane: see `config::ratelimits`)
//! reads as unused.
//!
//! A slot is *idle* when every lane's bucket is full again (its latest `tat` is past), and a
//! slot is *fuller* than another when its latest `tat` is earlier. A request for key hash `h`
//! probes up to [`PROBES`] slots from `h mod max_keys`:
//! - the slot that already holds `h` is the key's entry;
//! - otherwise the first slot that is unused or idle (forgetting it changes nothing) is taken
//!   for `h`;
//! - otherwise (every probed slot holds a live key: a real flood of keys) the probed slot that
//!   is *fullest* is taken over, and the state of the key it held is moved into that key's
//!   **overflow bucket**, lane by lane (`tat = max(tat, evicted tat)`).
//!
//! A key that takes a slot starts from its own overflow bucket's `tat`s, not from empty
//! buckets: a key that was pushed out comes back with at least the debt it left with. So
//! eviction never lets a key past any of its limits (exactness), and newcomers are not starved
//! by the crowd: an overflow bucket keeps the *maximum* of the debts moved into it, never their
//! sum, so light keys leave light debts, and a heavy key (whose slot is the last to be taken,
//! its buckets being the emptiest) taints only the one overflow bucket it hashes to, the share
//! `1 / overflow_buckets` of newcomers that hash there too.
//!
//! What a request does to the lanes is the caller's decision ([`Table::update`]: from the
//! current `tat`s to new ones, or nothing to write); [`Table::consume`] is the one-lane GCRA
//! decision. Every write is a compare-and-swap on the value just read; on a mismatch (another
//! worker wrote first) the whole decision is redone from fresh reads, at most
//! [`MAX_CAS_RETRIES`] times. A decision that changes nothing writes nothing. When a slot is
//! taken over, the overflow bucket is raised first and the slot written second: a lost race on
//! the slot only leaves the overflow bucket stricter.

use super::gcra::{Gcra, GcraOutcome};
use crate::store::{cas_loop, SharedStore, SlotTable, Step, StoreError};
pub use crate::store::{MAX_CAS_RETRIES, PROBES};
/// Bytes of a one-lane slot value: key hash (u64 LE) then tat (u64 LE).
pub const SLOT_BYTES: usize = 16;
/// The most lanes an entry has (a policy has at most 8 limits).
pub const MAX_LANES: usize = 8;
/// The largest slot value: the key hash and [`MAX_LANES`] tats.
const MAX_VALUE_BYTES: usize = 8 + 8 * MAX_LANES;
/// The most overflow buckets a table has (for `max_keys` of 256 and more).
pub const MAX_OVERFLOW_BUCKETS: u32 = 256;
const OVERFLOW_OWNER: u64 = u64::MAX;

/// The `tat` of every lane of an entry (lanes past the table's count are 0 and never stored).
pub type Tats = [u64; MAX_LANES];

/// Where one entry's table lives, how big it is and how many limits (lanes) it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Shared-data key prefix, e.g. `api_guard.rl.api.per_second` (one lane) or
    /// `api_guard.rl.api.per_second+per_hour` (two).
    pub prefix: String,
    pub max_keys: u32,
    /// `min(max_keys, 256)`: one per slot for small tables.
    pub overflow_buckets: u32,
    /// Limits kept in each slot, 1 to [`MAX_LANES`].
    pub lanes: u32,
}

/// The result of one request against a one-lane table ([`Table::consume`]).
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

/// What a caller's decision does with the `tat`s it was given ([`Table::update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided<T> {
    /// Store these `tat`s (lanes past the table's count are ignored).
    Write(Tats, T),
    /// Store nothing (a refusal).
    Keep(T),
}

/// The result of [`Table::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated<T> {
    /// The decision on the key's latest state, written if it was a [`Decided::Write`].
    /// `overflow`: the key found no idle slot and took over a live key's slot.
    Done { result: T, overflow: bool },
    /// Every retry met a concurrent writer; nothing was written.
    CasRetriesExhausted,
    /// The store refused a call.
    StoreFailed(u32),
}

/// How full a table is at one instant, for one lane (exported as gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Slots holding a key whose bucket is not full (a key that would be counted if forgotten).
    pub live_slots: u32,
    /// Overflow buckets holding a debt that has not run out yet.
    pub live_overflow: u32,
}

/// One read entry: its key, CAS token, owner and tats.
struct Entry {
    key: String,
    cas: Option<u32>,
    owner: u64,
    tats: Tats,
}

/// Where a request's key will be counted.
enum Placement {
    /// The key holds this slot.
    Own(Entry),
    /// The key takes this slot, starting from `start` (its overflow bucket's tats). `evict`:
    /// the slot holds a live key whose state must first move to its overflow bucket.
    Take {
        slot: Entry,
        start: Tats,
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
    /// A one-limit table of `max_keys` slots under `prefix`, with its overflow buckets.
    pub fn new(prefix: String, max_keys: u32) -> Table {
        Table::with_lanes(prefix, max_keys, 1)
    }

    /// A table whose slots hold `lanes` limits (clamped to 1..=[`MAX_LANES`]).
    pub fn with_lanes(prefix: String, max_keys: u32, lanes: u32) -> Table {
        let max_keys = max_keys.max(1);
        Table {
            prefix,
            max_keys,
            overflow_buckets: max_keys.min(MAX_OVERFLOW_BUCKETS),
            lanes: lanes.clamp(1, MAX_LANES as u32),
        }
    }

    fn lane_count(&self) -> usize {
        usize::try_from(self.lanes).map_or(1, |n| n.clamp(1, MAX_LANES))
    }

    /// Bytes of one slot value.
    pub fn value_bytes(&self) -> usize {
        8 + 8 * self.lane_count()
    }

    /// The value of `owner` with `tats` (the table's lanes of them).
    fn encode(&self, owner: u64, tats: &Tats) -> ([u8; MAX_VALUE_BYTES], usize) {
        let mut out = [0u8; MAX_VALUE_BYTES];
        let words = std::iter::once(owner).chain(tats.iter().take(self.lane_count()).copied());
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        (out, self.value_bytes())
    }

    /// `(owner, tats)`; a value of the wrong size (never written under this prefix) reads as
    /// unused.
    fn decode(&self, value: &[u8]) -> (u64, Tats) {
        let mut tats = [0; MAX_LANES];
        if value.len() != self.value_bytes() {
            return (0, tats);
        }
        let mut words = value
            .chunks_exact(8)
            .map(|b| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes));
        let owner = words.next().unwrap_or(0);
        for (tat, word) in tats.iter_mut().zip(words) {
            *tat = word;
        }
        (owner, tats)
    }

    /// The latest `tat` of an entry: when every lane's bucket is full again.
    fn horizon(&self, tats: &Tats) -> u64 {
        tats.iter()
            .take(self.lane_count())
            .copied()
            .max()
            .unwrap_or(0)
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
        let empty = [0u8; MAX_VALUE_BYTES];
        let empty = empty.get(..self.value_bytes()).unwrap_or(&empty);
        let mut created = 0;
        for key in self.all_keys() {
            if store.get(&key)?.0.is_none() {
                store.set(&key, empty, None)?;
                created += 1;
            }
        }
        Ok(created)
    }

    /// Counts the live slots and overflow buckets of each lane at `now` (one read per key: for
    /// a periodic gauge, never the request path). Lanes past the table's count stay zero.
    pub fn census_lanes(
        &self,
        store: &dyn SharedStore,
        now: u64,
    ) -> Result<[Census; MAX_LANES], StoreError> {
        let mut census = [Census::default(); MAX_LANES];
        for key in self.all_keys() {
            let Some(value) = store.get(&key)?.0 else {
                continue;
            };
            let (owner, tats) = self.decode(&value);
            if owner == 0 {
                continue;
            }
            for (lane, tat) in census.iter_mut().zip(tats).take(self.lane_count()) {
                if Gcra::is_full(tat, now) {
                    continue;
                }
                if owner == OVERFLOW_OWNER {
                    lane.live_overflow += 1;
                } else {
                    lane.live_slots += 1;
                }
            }
        }
        Ok(census)
    }

    /// [`Table::census_lanes`] of the first lane (a one-limit table).
    pub fn census(&self, store: &dyn SharedStore, now: u64) -> Result<Census, StoreError> {
        Ok(self.census_lanes(store, now)?[0])
    }

    fn read(&self, store: &dyn SharedStore, key: String) -> Result<Read, StoreError> {
        let (value, cas) = store.get(&key)?;
        let Some(value) = value else {
            // Never left to a request in normal operation (configure creates every key).
            let empty = [0u8; MAX_VALUE_BYTES];
            store.set(
                &key,
                empty.get(..self.value_bytes()).unwrap_or(&empty),
                None,
            )?;
            return Ok(Read::Created);
        };
        let (owner, tats) = self.decode(&value);
        Ok(Read::Found(Entry {
            key,
            cas,
            owner,
            tats,
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
        let mut fullest: Option<(u64, Entry)> = None;
        for key in self.slots().probe(hash) {
            let Read::Found(entry) = self.read(store, key)? else {
                return Ok(None);
            };
            if entry.owner == hash {
                return Ok(Some(Placement::Own(entry)));
            }
            let never_used = entry.owner == 0;
            let horizon = self.horizon(&entry.tats);
            if never_used || Gcra::is_full(horizon, now) {
                if idle.is_none() {
                    idle = Some(entry);
                }
            } else if fullest.as_ref().is_none_or(|(h, _)| horizon < *h) {
                fullest = Some((horizon, entry));
            }
            // Keys are placed at the first idle probe and slots never become unused again,
            // so no key of this probe sequence lies past a never-used slot.
            if never_used {
                break;
            }
        }
        let Read::Found(own_overflow) =
            self.read(store, self.overflow_key(self.overflow_of(hash)))?
        else {
            return Ok(None);
        };
        let start = own_overflow.tats;
        if let Some(slot) = idle {
            return Ok(Some(Placement::Take {
                slot,
                start,
                evict: None,
            }));
        }
        let Some((_, slot)) = fullest else {
            // No probe at all (cannot happen: max_keys >= 1); count nothing, fail per policy.
            return Err(StoreError::Unavailable(0));
        };
        let Read::Found(evict) =
            self.read(store, self.overflow_key(self.overflow_of(slot.owner)))?
        else {
            return Ok(None);
        };
        Ok(Some(Placement::Take {
            slot,
            start,
            evict: Some(evict),
        }))
    }

    /// The state key `hash` would be decided on, without counting anything: its own slot's
    /// `tat`s, or (no slot) the overflow debt it would start from. For limits that are
    /// consulted on every request but counted only on some (failed authentications). One to
    /// five reads, no write.
    pub fn peek(&self, store: &dyn SharedStore, hash: u64) -> Result<Tats, StoreError> {
        let hash = hash.clamp(1, u64::MAX - 1);
        for key in self.slots().probe(hash) {
            let Some(value) = store.get(&key)?.0 else {
                break;
            };
            let (owner, tats) = self.decode(&value);
            if owner == hash {
                return Ok(tats);
            }
            if owner == 0 {
                break;
            }
        }
        Ok(store
            .get(&self.overflow_key(self.overflow_of(hash)))?
            .0
            .map_or([0; MAX_LANES], |v| self.decode(&v).1))
    }

    /// One request of key `hash` (never 0) at `now` (Unix nanoseconds) against a one-lane
    /// table: read, decide, and on admission write the new state with CAS, retrying on
    /// mismatch.
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
        let (updated, retries) =
            self.update(store, hash, now, |tats| match gcra.decide(tats[0], now) {
                GcraOutcome::Allow {
                    new_tat,
                    remaining,
                    full_in_ns,
                } => {
                    let mut next = *tats;
                    next[0] = new_tat;
                    Decided::Write(next, Ok((remaining, full_in_ns)))
                }
                GcraOutcome::Deny {
                    retry_after_ns,
                    full_in_ns,
                } => Decided::Keep(Err((retry_after_ns, full_in_ns))),
            });
        let consumed = match updated {
            Updated::Done {
                result: Ok((remaining, full_in_ns)),
                overflow,
            } => Consumed::Allowed {
                remaining,
                full_in_ns,
                overflow,
            },
            Updated::Done {
                result: Err((retry_after_ns, full_in_ns)),
                overflow,
            } => Consumed::Limited {
                retry_after_ns,
                full_in_ns,
                overflow,
            },
            Updated::CasRetriesExhausted => Consumed::CasRetriesExhausted,
            Updated::StoreFailed(s) => Consumed::StoreFailed(s),
        };
        (consumed, retries)
    }

    /// One request of key `hash` (never 0) at `now`: reads the key's entry, asks `decide` what
    /// to do with its lanes' `tat`s, and writes the answer with CAS, redoing the whole read and
    /// decision on a mismatch (so `decide` may run several times; only the last answer
    /// counts). Returns the result and how many times a concurrent write forced a re-read.
    pub fn update<T>(
        &self,
        store: &dyn SharedStore,
        hash: u64,
        now: u64,
        mut decide: impl FnMut(&Tats) -> Decided<T>,
    ) -> (Updated<T>, u32) {
        // 0 marks an unused slot and u64::MAX an overflow bucket: neither is a key.
        let hash = hash.clamp(1, u64::MAX - 1);
        // Keys created on the request path (at most every probed slot and two overflow
        // buckets) are re-read for free; more would mean a store that drops keys.
        let (updated, retries) =
            cas_loop(PROBES + 2, || self.attempt(store, hash, now, &mut decide));
        (updated.unwrap_or(Updated::CasRetriesExhausted), retries)
    }

    /// One read-decide-write of [`Table::update`].
    fn attempt<T>(
        &self,
        store: &dyn SharedStore,
        hash: u64,
        now: u64,
        decide: &mut impl FnMut(&Tats) -> Decided<T>,
    ) -> Step<Updated<T>> {
        let placement = match self.place(store, hash, now) {
            Ok(Some(p)) => p,
            Ok(None) => return Step::Created,
            Err(StoreError::CasMismatch) => return Step::Conflict,
            Err(StoreError::Unavailable(s)) => return Step::Done(Updated::StoreFailed(s)),
        };
        let (slot, tats, evict) = match placement {
            Placement::Own(slot) => {
                let tats = slot.tats;
                (slot, tats, None)
            }
            Placement::Take { slot, start, evict } => (slot, start, evict),
        };
        let overflow = evict.is_some();
        let (new_tats, result) = match decide(&tats) {
            Decided::Keep(result) => return Step::Done(Updated::Done { result, overflow }),
            Decided::Write(new_tats, result) => (new_tats, result),
        };
        // Move the evicted key's state first: if the slot write below then loses a race, the
        // overflow bucket is only stricter than it needs to be.
        if let Some(bucket) = evict {
            let lanes = self.lane_count();
            let mut raised = bucket.tats;
            for (kept, debt) in raised.iter_mut().zip(slot.tats).take(lanes) {
                *kept = (*kept).max(debt);
            }
            if raised != bucket.tats {
                // A CAS token is always present for an existing key; without one the write
                // would be unconditional, so treat it as a conflict and read again.
                let Some(cas) = bucket.cas else {
                    return Step::Conflict;
                };
                let (value, len) = self.encode(OVERFLOW_OWNER, &raised);
                match store.set(&bucket.key, value.get(..len).unwrap_or(&value), Some(cas)) {
                    Ok(()) => {}
                    Err(StoreError::CasMismatch) => return Step::Conflict,
                    Err(StoreError::Unavailable(s)) => return Step::Done(Updated::StoreFailed(s)),
                }
            }
        }
        let Some(cas) = slot.cas else {
            return Step::Conflict;
        };
        let (value, len) = self.encode(hash, &new_tats);
        match store.set(&slot.key, value.get(..len).unwrap_or(&value), Some(cas)) {
            Ok(()) => Step::Done(Updated::Done { result, overflow }),
            Err(StoreError::CasMismatch) => Step::Conflict,
            Err(StoreError::Unavailable(s)) => Step::Done(Updated::StoreFailed(s)),
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
        assert_eq!(t.decode(&v.unwrap()).0, 7);
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

    /// Two lanes decided as two independent buckets (each admits or refuses on its own state;
    /// written if either admitted).
    fn both(g: &[Gcra; 2], t: &Table, store: &MemoryStore, key: u64, now: u64) -> [bool; 2] {
        let (u, _) = t.update(store, key, now, |tats| {
            let mut next = *tats;
            let mut ok = [false; 2];
            for lane in 0..2 {
                if let GcraOutcome::Allow { new_tat, .. } = g[lane].decide(tats[lane], now) {
                    next[lane] = new_tat;
                    ok[lane] = true;
                }
            }
            if ok.contains(&true) {
                Decided::Write(next, ok)
            } else {
                Decided::Keep(ok)
            }
        });
        match u {
            Updated::Done { result, .. } => result,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lanes_share_one_value_one_read_and_one_write() {
        let store = MemoryStore::new();
        let t = Table::with_lanes("t.p.a+b".into(), 8, 2);
        assert_eq!(t.value_bytes(), 24);
        assert_eq!(t.ensure_created(&store), Ok(16));
        assert_eq!(store.get("t.p.a+b.3").unwrap().0.unwrap().len(), 24);
        let g = [no_refill(2), no_refill(3)];
        assert_eq!(both(&g, &t, &store, 11, NOW), [true, true]);
        // A known key: one read and one compare-and-swap for both lanes.
        let before = store.calls();
        assert_eq!(both(&g, &t, &store, 11, NOW), [true, true]);
        let after = store.calls();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
        assert_eq!(both(&g, &t, &store, 11, NOW), [false, true]);
        // Both lanes refuse: nothing is written.
        let before = store.calls();
        assert_eq!(both(&g, &t, &store, 11, NOW), [false, false]);
        assert_eq!(store.calls().1, before.1);
        let (v, _) = store.get("t.p.a+b.3").unwrap();
        assert_eq!(t.decode(&v.unwrap()).0, 11);
        assert_eq!(
            t.peek(&store, 11).unwrap()[..2],
            [NOW + 2 * 86_400 * S, NOW + 3 * 86_400 * S]
        );
        // Per-lane census: the key is live in both lanes.
        let c = t.census_lanes(&store, NOW).unwrap();
        assert_eq!(
            (c[0].live_slots, c[1].live_slots, c[2].live_slots),
            (1, 1, 0)
        );
    }

    /// Upgrade: a value of another layout under the same key (a one-lane table's 16 bytes, or
    /// anything else) reads as an unused slot, never as a state.
    #[test]
    fn a_value_of_another_layout_reads_as_unused() {
        let store = MemoryStore::new();
        let one = Table::new("t.p.x".into(), 1);
        let two = Table::with_lanes("t.p.x".into(), 1, 2);
        let g = no_refill(1);
        assert!(allowed(one.consume(&store, &g, 5, NOW)));
        assert!(!allowed(one.consume(&store, &g, 5, NOW)));
        assert_eq!(store.get("t.p.x.0").unwrap().0.unwrap().len(), 16);
        assert_eq!(two.peek(&store, 5), Ok([0; MAX_LANES]));
        assert_eq!(both(&[g, g], &two, &store, 5, NOW), [true, true]);
        assert_eq!(store.get("t.p.x.0").unwrap().0.unwrap().len(), 24);
        // And back: the one-lane table no longer sees a state of its layout.
        assert_eq!(one.peek(&store, 5), Ok([0; MAX_LANES]));
    }

    /// A saturated two-lane table keeps every key within each of its limits: an evicted key's
    /// lanes move to its overflow bucket lane by lane.
    #[test]
    fn an_evicted_entry_keeps_the_debt_of_every_lane() {
        let store = MemoryStore::new();
        let t = Table::with_lanes("t.p.a+b".into(), 1, 2);
        t.ensure_created(&store).unwrap();
        let g = [no_refill(3), no_refill(2)];
        assert_eq!(both(&g, &t, &store, 7, NOW), [true, true]);
        assert_eq!(both(&g, &t, &store, 7, NOW), [true, true]);
        // Key 9 pushes key 7 out (one slot); key 7 comes back with its debts: one more in lane
        // 0, none in lane 1.
        assert_eq!(both(&g, &t, &store, 9, NOW), [true, true]);
        assert_eq!(both(&g, &t, &store, 7, NOW), [true, false]);
        assert_eq!(both(&g, &t, &store, 7, NOW), [false, false]);
    }

    proptest::proptest! {
        /// Any mix of keys, table sizes, arrival times and interference: a two-lane table never
        /// exceeds its keys, and no key is ever admitted past either of its limits, however
        /// often it is pushed out of its slot and comes back.
        #[test]
        fn every_key_stays_within_each_of_its_limits(
            arrivals in proptest::collection::vec((1u64..40, 0u64..(S / 2)), 1..300),
            max_keys in 1u32..10,
            bursts in (1u64..4, 1u64..6),
            interference in proptest::collection::vec(0u32..3, 1..50),
        ) {
            let store = MemoryStore::new();
            let t = Table::with_lanes("t.p.a+b".into(), max_keys, 2);
            t.ensure_created(&store).unwrap();
            let g = [Gcra::new(1, S, bursts.0).unwrap(), Gcra::new(1, 3 * S, bursts.1).unwrap()];
            let mut now = NOW;
            let mut first: HashMap<u64, u64> = HashMap::new();
            let mut admitted: HashMap<(u64, usize), u64> = HashMap::new();
            for (i, (key, gap)) in arrivals.iter().enumerate() {
                if i % 7 == 0 {
                    store.interfere_with_next_writes(interference[(i / 7) % interference.len()]);
                }
                now += gap;
                let since = *first.entry(*key).or_insert(now);
                let (u, _) = t.update(&store, *key, now, |tats| {
                    let mut next = *tats;
                    let mut ok = [false; 2];
                    for lane in 0..2 {
                        if let GcraOutcome::Allow { new_tat, .. } = g[lane].decide(tats[lane], now) {
                            next[lane] = new_tat;
                            ok[lane] = true;
                        }
                    }
                    if ok.contains(&true) { Decided::Write(next, ok) } else { Decided::Keep(ok) }
                });
                if let Updated::Done { result, .. } = u {
                    for lane in 0..2 {
                        if result[lane] {
                            let n = admitted.entry((*key, lane)).or_insert(0);
                            *n += 1;
                            let bound = g[lane].burst + (now - since) / g[lane].interval_ns;
                            proptest::prop_assert!(*n <= bound, "key {} lane {}: {} > {}", key, lane, n, bound);
                        }
                    }
                }
            }
            proptest::prop_assert!(store.key_count() <= (max_keys + t.overflow_buckets) as usize);
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
