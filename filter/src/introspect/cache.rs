//! Introspection answers cached in Envoy's shared data, so every worker of one Envoy shares
//! them, in a bounded slot table (the design of `ratelimit::table`).
//!
//! The cache owns at most `max_entries` shared-data keys, `<prefix>.<n>` for `n < max_entries`,
//! created at configure time ([`IntrospectionCache::ensure_created`]) or lazily by the first
//! write to a slot. A slot holds one entry: the credential's SHA-256 digest (never the
//! credential), the encoded [`Answer`] (if any), and four Unix-millisecond times:
//!
//! - `cached_at`: when the answer was stored;
//! - `fresh_until`: positive answers `min(now + positive_ttl, exp)`, negative answers
//!   `now + negative_ttl`;
//! - `stale_until`: positive answers `min(fresh_until + stale_while_revalidate, exp)` (nothing
//!   is ever served at or after the token's `exp`), negative answers `fresh_until`;
//! - `pending_until`: the single-flight marker: one worker claimed the callout for this
//!   credential until then (`timeout + CLAIM_MARGIN_MS`); 0 when none.
//!
//! An entry is *live* while `now < max(stale_until, pending_until)`; a dead entry's slot is free.
//! A credential's digest picks its first slot (`digest mod max_entries`); [`PROBES`] slots are
//! probed. The entry holding the digest is used; otherwise the first free (empty or dead) slot.
//! **Eviction**: when every probed slot is live, the entry whose usefulness ends first,
//! `max(fresh_until, pending_until)` smallest, is overwritten (reported as `evicted`). Under a
//! flood of distinct credentials the cache therefore keeps the answers with the most time left,
//! and never grows.
//!
//! Every write is a compare-and-swap on the value just read; a mismatch redoes the decision from
//! fresh reads, at most [`MAX_CAS_RETRIES`] times (then `Err(StoreError::CasMismatch)`). A key's
//! creation is also a CAS (with a token no live key has), so two workers creating the same slot
//! cannot both believe they claimed it.

use super::answer::{decode_answer, encode_answer, exp_ms, Answer, TokenDigest};
use crate::store::{cas_loop, SharedStore, SlotTable, Step, StoreError};
pub use crate::store::{MAX_CAS_RETRIES, PROBES};
/// A claim outlives the callout's timeout by this much (the callback runs a little after it).
pub const CLAIM_MARGIN_MS: u64 = 250;
/// The CAS token used to create a key: Envoy's CAS counter never reaches it in practice, so a
/// creation that races with another worker's fails as a mismatch instead of overwriting.
const CREATE_CAS: u32 = u32::MAX;
const VERSION: u8 = 1;
/// version + digest + 4 times + answer flag.
const HEADER_BYTES: usize = 1 + 32 + 4 * 8 + 1;

/// One cache: where it lives, its size, its lifetimes (milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntrospectionCache {
    /// Shared-data key prefix, e.g. `api_guard.introspect.cache`.
    pub prefix: String,
    pub max_entries: u32,
    pub positive_ttl_ms: u64,
    pub negative_ttl_ms: u64,
    pub stale_while_revalidate_ms: u64,
}

/// What the cache knows about a credential now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Serve it.
    Fresh(Answer),
    /// An active answer past `fresh_until` but before `stale_until`: serve it, and refresh it
    /// (`try_claim` decides which worker does).
    Stale(Answer),
    /// No usable answer, and another worker is fetching one until `until_ms`.
    Pending {
        until_ms: u64,
    },
    Miss,
}

/// The result of [`IntrospectionCache::try_claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This worker makes the callout; `evicted`: a live entry was overwritten to make room.
    Won { evicted: bool },
    /// Another claim is live: wait for its answer (or serve a stale one).
    Busy,
}

impl Claim {
    pub fn won(self) -> bool {
        matches!(self, Claim::Won { .. })
    }
}

/// The result of [`IntrospectionCache::store_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub evicted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    digest: [u8; 32],
    cached_at: u64,
    fresh_until: u64,
    stale_until: u64,
    pending_until: u64,
    answer: Option<Answer>,
}

impl Entry {
    fn new(digest: &TokenDigest) -> Entry {
        Entry {
            digest: digest.0,
            cached_at: 0,
            fresh_until: 0,
            stale_until: 0,
            pending_until: 0,
            answer: None,
        }
    }

    fn live(&self, now: u64) -> bool {
        now < self.stale_until.max(self.pending_until)
    }

    /// Eviction rank: the smallest is overwritten first.
    fn useful_until(&self) -> u64 {
        self.fresh_until.max(self.pending_until)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + 64);
        out.push(VERSION);
        out.extend_from_slice(&self.digest);
        for t in [
            self.cached_at,
            self.fresh_until,
            self.stale_until,
            self.pending_until,
        ] {
            out.extend_from_slice(&t.to_le_bytes());
        }
        match &self.answer {
            Some(a) => {
                out.push(1);
                encode_answer(a, &mut out);
            }
            None => out.push(0),
        }
        out
    }

    /// `None` for an empty slot or anything this version did not write (treated as free).
    fn decode(bytes: &[u8]) -> Option<Entry> {
        if bytes.first() != Some(&VERSION) {
            return None;
        }
        let digest: [u8; 32] = bytes.get(1..33)?.try_into().ok()?;
        let time = |i: usize| -> Option<u64> {
            let start = 33 + 8 * i;
            Some(u64::from_le_bytes(
                bytes.get(start..start + 8)?.try_into().ok()?,
            ))
        };
        let answer = match bytes.get(HEADER_BYTES - 1)? {
            0 if bytes.len() == HEADER_BYTES => None,
            1 => {
                let (a, rest) = decode_answer(bytes.get(HEADER_BYTES..)?)?;
                if !rest.is_empty() {
                    return None;
                }
                Some(a)
            }
            _ => return None,
        };
        Some(Entry {
            digest,
            cached_at: time(0)?,
            fresh_until: time(1)?,
            stale_until: time(2)?,
            pending_until: time(3)?,
            answer,
        })
    }

    fn classify(&self, now: u64) -> Lookup {
        if let Some(a) = &self.answer {
            // A positive answer is never served at or after its exp, whatever the times say.
            let servable = !a.active || a.usable_at(now);
            if servable && now < self.fresh_until {
                return Lookup::Fresh(a.clone());
            }
            if servable && a.active && now < self.stale_until {
                return Lookup::Stale(a.clone());
            }
        }
        if now < self.pending_until {
            return Lookup::Pending {
                until_ms: self.pending_until,
            };
        }
        Lookup::Miss
    }
}

/// Where a write goes.
struct Target {
    key: String,
    cas: u32,
    /// The digest's current entry, if this slot holds it.
    current: Option<Entry>,
    evicted: bool,
}

impl IntrospectionCache {
    /// The cache's slots as a probed slot table.
    fn slots(&self) -> SlotTable<'_> {
        SlotTable::new(&self.prefix, self.max_entries)
    }

    pub fn slot_key(&self, slot: u32) -> String {
        self.slots().key(slot)
    }

    /// Every shared-data key this cache can ever use.
    pub fn all_keys(&self) -> impl Iterator<Item = String> + '_ {
        self.slots().keys()
    }

    /// Creates the slots that do not exist yet (configure time, optional: writes create missing
    /// slots too). Existing slots are kept (a VM restart must not drop the workers' cache).
    pub fn ensure_created(&self, store: &dyn SharedStore) -> Result<u32, StoreError> {
        let mut created = 0;
        for key in self.all_keys() {
            if store.get(&key)?.0.is_none() {
                match store.set(&key, &[], Some(CREATE_CAS)) {
                    Ok(()) => created += 1,
                    Err(StoreError::CasMismatch) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(created)
    }

    fn probe(&self, digest: &TokenDigest) -> impl Iterator<Item = String> + '_ {
        self.slots().probe(digest.slot_hash())
    }

    /// The digest's entry, read-only (reads never create keys).
    fn find(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
    ) -> Result<Option<Entry>, StoreError> {
        for key in self.probe(digest) {
            let (value, _) = store.get(&key)?;
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                // Entries are placed at the first free probe and slots never become empty
                // again, so none of this digest lies past an empty slot.
                break;
            };
            if let Some(e) = Entry::decode(&value).filter(|e| e.digest == digest.0) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// The slot a write for `digest` goes to: its own entry, else the first free slot, else
    /// the live entry with the earliest `max(fresh_until, pending_until)`.
    fn target(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        now: u64,
    ) -> Result<Target, StoreError> {
        let mut free: Option<Target> = None;
        let mut victim: Option<(u64, Target)> = None;
        for key in self.probe(digest) {
            let (value, cas) = store.get(&key)?;
            let cas = cas.unwrap_or(CREATE_CAS);
            let value = value.unwrap_or_default();
            let empty = value.is_empty();
            let entry = Entry::decode(&value);
            if let Some(e) = entry.as_ref().filter(|e| e.digest == digest.0) {
                return Ok(Target {
                    key,
                    cas,
                    current: Some(e.clone()),
                    evicted: false,
                });
            }
            match entry.filter(|e| e.live(now)) {
                None => {
                    if free.is_none() {
                        free = Some(Target {
                            key,
                            cas,
                            current: None,
                            evicted: false,
                        });
                    }
                }
                Some(e) => {
                    let rank = e.useful_until();
                    if victim.as_ref().is_none_or(|(r, _)| rank < *r) {
                        victim = Some((
                            rank,
                            Target {
                                key,
                                cas,
                                current: None,
                                evicted: true,
                            },
                        ));
                    }
                }
            }
            if empty {
                break;
            }
        }
        match (free, victim) {
            (Some(t), _) | (None, Some((_, t))) => Ok(t),
            // Unreachable: at least one slot is probed.
            (None, None) => Err(StoreError::Unavailable(0)),
        }
    }

    /// Read, rewrite with CAS, retry on mismatch. `change` returns the new entry, or `None` to
    /// write nothing (returning `Ok(None)`).
    fn update<T>(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        now: u64,
        mut change: impl FnMut(&Target) -> Option<(Entry, T)>,
    ) -> Result<Option<T>, StoreError> {
        let (updated, _) = cas_loop(0, || {
            let target = match self.target(store, digest, now) {
                Ok(t) => t,
                Err(e) => return Step::Done(Err(e)),
            };
            let Some((entry, result)) = change(&target) else {
                return Step::Done(Ok(None));
            };
            match store.set(&target.key, &entry.encode(), Some(target.cas)) {
                Ok(()) => Step::Done(Ok(Some(result))),
                Err(StoreError::CasMismatch) => Step::Conflict,
                Err(e) => Step::Done(Err(e)),
            }
        });
        updated.unwrap_or(Err(StoreError::CasMismatch))
    }

    /// What the cache knows about `digest` at `now_ms`. One to [`PROBES`] reads, no write.
    pub fn lookup(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        now_ms: u64,
    ) -> Result<Lookup, StoreError> {
        Ok(self
            .find(store, digest)?
            .map_or(Lookup::Miss, |e| e.classify(now_ms)))
    }

    /// The answer served while the service is unavailable under `on_failure: cache_only`: any
    /// answer before its `stale_until` (positive) or `fresh_until` (negative), never an active
    /// one at or after its `exp`. In other words exactly what [`Lookup::Fresh`] and
    /// [`Lookup::Stale`] carry; no answer past `stale_until` is ever served.
    pub fn cache_only(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        now_ms: u64,
    ) -> Result<Option<Answer>, StoreError> {
        Ok(match self.lookup(store, digest, now_ms)? {
            Lookup::Fresh(a) | Lookup::Stale(a) => Some(a),
            Lookup::Pending { .. } | Lookup::Miss => None,
        })
    }

    /// Claims the callout for `digest` across workers: sets `pending_until = now + timeout +
    /// CLAIM_MARGIN_MS` with CAS, keeping any answer (a stale one stays servable). `Busy` while
    /// another claim is live; an expired claim (its worker died or its callback never came) is
    /// taken over.
    pub fn try_claim(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        now_ms: u64,
        timeout_ms: u64,
    ) -> Result<Claim, StoreError> {
        let until = now_ms
            .saturating_add(timeout_ms)
            .saturating_add(CLAIM_MARGIN_MS);
        let claimed = self.update(store, digest, now_ms, |t| {
            let mut entry = match &t.current {
                Some(e) if now_ms < e.pending_until => return None,
                Some(e) => e.clone(),
                None => Entry::new(digest),
            };
            entry.pending_until = until;
            Some((entry, Claim::Won { evicted: t.evicted }))
        })?;
        Ok(claimed.unwrap_or(Claim::Busy))
    }

    /// Stores the service's answer and clears the claim. Lifetimes as in the module docs; an
    /// active answer already expired at `now_ms` is stored as a negative one.
    pub fn store_answer(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        answer: &Answer,
        now_ms: u64,
    ) -> Result<Stored, StoreError> {
        let entry = self.entry_for(digest, answer, now_ms);
        let stored = self.update(store, digest, now_ms, |t| {
            Some((entry.clone(), Stored { evicted: t.evicted }))
        })?;
        Ok(stored.unwrap_or(Stored { evicted: false }))
    }

    fn entry_for(&self, digest: &TokenDigest, answer: &Answer, now: u64) -> Entry {
        let mut entry = Entry::new(digest);
        entry.cached_at = now;
        if answer.usable_at(now) {
            let exp = answer.exp.map_or(u64::MAX, exp_ms);
            entry.fresh_until = now.saturating_add(self.positive_ttl_ms).min(exp);
            entry.stale_until = entry
                .fresh_until
                .saturating_add(self.stale_while_revalidate_ms)
                .min(exp);
            entry.answer = Some(answer.clone());
        } else {
            entry.fresh_until = now.saturating_add(self.negative_ttl_ms);
            entry.stale_until = entry.fresh_until;
            entry.answer = Some(Answer::inactive());
        }
        entry
    }

    /// The callout failed: clears the claim so the next request may try again, keeping any
    /// answer (a stale one stays servable until its `stale_until`). No entry: nothing to do.
    pub fn release(
        &self,
        store: &dyn SharedStore,
        digest: &TokenDigest,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.update(store, digest, now_ms, |t| {
            let mut entry = t.current.clone().filter(|e| e.pending_until != 0)?;
            entry.pending_until = 0;
            Some((entry, ()))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::time::UnixTime;
    use std::sync::Arc;

    const NOW: u64 = 1_800_000_000_000;

    fn cache(max_entries: u32) -> IntrospectionCache {
        IntrospectionCache {
            prefix: "t.ic".into(),
            max_entries,
            positive_ttl_ms: 60_000,
            negative_ttl_ms: 10_000,
            stale_while_revalidate_ms: 10_000,
        }
    }

    fn d(n: u64) -> TokenDigest {
        TokenDigest::of(&n.to_le_bytes())
    }

    /// A digest whose first slot is `slot` of a table of `max` slots.
    fn in_slot(slot: u64, max: u64, skip: usize) -> TokenDigest {
        (0u64..)
            .map(d)
            .filter(|g| g.slot_hash() % max == slot)
            .nth(skip)
            .unwrap()
    }

    fn ok(scopes: &[&str], exp: Option<i64>) -> Answer {
        Answer {
            active: true,
            subject: Some("u1".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            exp: exp.map(UnixTime),
            ..Answer::default()
        }
    }

    #[test]
    fn lifetimes_table() {
        let c = cache(16);
        let far = Some(1_900_000_000);
        // (answer, lookup offsets from NOW with the expected kind)
        type Case = (Answer, Vec<(u64, &'static str)>);
        let cases: Vec<Case> = vec![
            (
                ok(&["read"], far),
                vec![
                    (0, "fresh"),
                    (59_999, "fresh"),
                    (60_000, "stale"),
                    (69_999, "stale"),
                    (70_000, "miss"),
                ],
            ),
            // exp caps freshness and leaves no stale period: never served at or after exp.
            (
                ok(&[], Some(1_800_000_030)),
                vec![(29_999, "fresh"), (30_000, "miss")],
            ),
            // exp between fresh_until and fresh_until + swr cuts the stale period.
            (
                ok(&[], Some(1_800_000_065)),
                vec![(60_000, "stale"), (64_999, "stale"), (65_000, "miss")],
            ),
            (
                Answer::inactive(),
                vec![(0, "fresh"), (9_999, "fresh"), (10_000, "miss")],
            ),
            // Stored already expired: a negative answer.
            (
                ok(&[], Some(1_700_000_000)),
                vec![(0, "negative"), (10_000, "miss")],
            ),
        ];
        for (answer, checks) in cases {
            let store = MemoryStore::new();
            c.store_answer(&store, &d(1), &answer, NOW).unwrap();
            for (offset, want) in checks {
                let got = c.lookup(&store, &d(1), NOW + offset).unwrap();
                let kind = match &got {
                    Lookup::Fresh(a) if a.active => "fresh",
                    Lookup::Fresh(_) => {
                        if answer.active {
                            "negative"
                        } else {
                            "fresh"
                        }
                    }
                    Lookup::Stale(_) => "stale",
                    Lookup::Pending { .. } => "pending",
                    Lookup::Miss => "miss",
                };
                assert_eq!(kind, want, "{answer:?} +{offset}");
                if let Lookup::Fresh(a) | Lookup::Stale(a) = got {
                    if a.active {
                        assert_eq!(a, answer);
                    }
                }
            }
        }
        assert_eq!(c.lookup(&MemoryStore::new(), &d(1), NOW), Ok(Lookup::Miss));
    }

    #[test]
    fn single_flight_claims() {
        let c = cache(16);
        let store = MemoryStore::new();
        let t = 500;
        let until = NOW + t + CLAIM_MARGIN_MS;
        assert_eq!(
            c.try_claim(&store, &d(1), NOW, t),
            Ok(Claim::Won { evicted: false })
        );
        assert_eq!(
            c.lookup(&store, &d(1), NOW),
            Ok(Lookup::Pending { until_ms: until })
        );
        assert_eq!(c.try_claim(&store, &d(1), NOW + 1, t), Ok(Claim::Busy));
        assert_eq!(c.try_claim(&store, &d(1), until - 1, t), Ok(Claim::Busy));
        // Other credentials are independent.
        assert!(c.try_claim(&store, &d(2), NOW, t).unwrap().won());
        // An expired claim is taken over.
        assert!(c.try_claim(&store, &d(1), until, t).unwrap().won());
        // The answer clears the claim.
        c.store_answer(&store, &d(1), &ok(&["a"], None), until + 1)
            .unwrap();
        assert!(matches!(
            c.lookup(&store, &d(1), until + 1),
            Ok(Lookup::Fresh(_))
        ));
        // A refresh claim keeps the stale answer servable...
        let stale_at = until + 1 + 60_000;
        assert!(c.try_claim(&store, &d(1), stale_at, t).unwrap().won());
        assert!(matches!(
            c.lookup(&store, &d(1), stale_at),
            Ok(Lookup::Stale(_))
        ));
        assert_eq!(c.try_claim(&store, &d(1), stale_at, t), Ok(Claim::Busy));
        // ...and a failed refresh releases the claim but keeps it too.
        c.release(&store, &d(1), stale_at).unwrap();
        assert!(matches!(
            c.cache_only(&store, &d(1), stale_at + 1),
            Ok(Some(_))
        ));
        assert!(c.try_claim(&store, &d(1), stale_at + 1, t).unwrap().won());
        // Past stale_until nothing is served, in any mode.
        assert_eq!(c.cache_only(&store, &d(1), stale_at + 10_000), Ok(None));
        // Release without an entry or a claim writes nothing.
        let (_, sets) = store.calls();
        c.release(&store, &d(99), NOW).unwrap();
        c.release(&store, &d(2), NOW).unwrap(); // d(2) has a claim: cleared
        c.release(&store, &d(2), NOW).unwrap(); // nothing left to clear
        assert_eq!(store.calls().1, sets + 1);
        assert_eq!(c.lookup(&store, &d(2), NOW), Ok(Lookup::Miss));
    }

    #[test]
    fn cas_conflicts_are_retried_then_reported() {
        let c = cache(8);
        let store = MemoryStore::new();
        // Interference only meets existing keys (creating a key never conflicts in the mock).
        c.ensure_created(&store).unwrap();
        store.interfere_with_next_writes(5);
        assert!(c.try_claim(&store, &d(1), NOW, 500).unwrap().won());
        store.interfere_with_next_writes(3);
        c.store_answer(&store, &d(1), &ok(&[], None), NOW).unwrap();
        assert!(matches!(c.lookup(&store, &d(1), NOW), Ok(Lookup::Fresh(_))));
        store.interfere_with_next_writes(MAX_CAS_RETRIES + 1);
        assert_eq!(
            c.try_claim(&store, &d(2), NOW, 500),
            Err(StoreError::CasMismatch)
        );
        store.interfere_with_next_writes(0);
        assert!(c.try_claim(&store, &d(2), NOW, 500).unwrap().won());
        store.set_unavailable(true);
        for r in [
            c.lookup(&store, &d(1), NOW).map(|_| ()),
            c.try_claim(&store, &d(1), NOW, 1).map(|_| ()),
            c.store_answer(&store, &d(1), &ok(&[], None), NOW)
                .map(|_| ()),
            c.release(&store, &d(1), NOW),
            c.cache_only(&store, &d(1), NOW).map(|_| ()),
        ] {
            assert!(matches!(r, Err(StoreError::Unavailable(_))));
        }
    }

    #[test]
    fn eviction_overwrites_the_earliest_fresh_until() {
        let max = 8;
        let c = cache(max);
        let store = MemoryStore::new();
        c.ensure_created(&store).unwrap();
        // Five credentials start at slot 0: four fill the probes, with different lifetimes.
        let g: Vec<TokenDigest> = (0..5).map(|i| in_slot(0, u64::from(max), i)).collect();
        let exps = [1_800_000_050, 1_800_000_020, 1_800_000_040, 1_800_000_030];
        for (dg, exp) in g.iter().zip(exps) {
            let s = c
                .store_answer(&store, dg, &ok(&[], Some(exp)), NOW)
                .unwrap();
            assert!(!s.evicted);
        }
        let s = c.store_answer(&store, &g[4], &ok(&[], None), NOW).unwrap();
        assert!(s.evicted);
        // g[1] had the earliest fresh_until.
        assert_eq!(c.lookup(&store, &g[1], NOW), Ok(Lookup::Miss));
        for i in [0, 2, 3, 4] {
            assert!(
                matches!(c.lookup(&store, &g[i], NOW), Ok(Lookup::Fresh(_))),
                "{i}"
            );
        }
        // Dead entries are reused before anything is evicted: after g[3]'s exp...
        let later = NOW + 35_000;
        let s = c
            .store_answer(&store, &g[1], &ok(&[], None), later)
            .unwrap();
        assert!(!s.evicted);
        assert_eq!(c.lookup(&store, &g[3], later), Ok(Lookup::Miss));
        assert!(matches!(
            c.lookup(&store, &g[0], later),
            Ok(Lookup::Fresh(_))
        ));
        assert_eq!(store.key_count(), max as usize);
    }

    #[test]
    fn entry_after_a_dead_slot_is_found_and_updated_in_place() {
        let max = 8;
        let c = cache(max);
        let store = MemoryStore::new();
        let a = in_slot(3, u64::from(max), 0);
        let b = in_slot(3, u64::from(max), 1);
        c.store_answer(&store, &a, &Answer::inactive(), NOW)
            .unwrap();
        c.store_answer(&store, &b, &ok(&[], None), NOW).unwrap();
        // a's negative entry dies; b is still found behind it and rewritten in its own slot.
        let later = NOW + 20_000;
        assert!(matches!(c.lookup(&store, &b, later), Ok(Lookup::Fresh(_))));
        c.store_answer(&store, &b, &ok(&["x"], None), later)
            .unwrap();
        let (v, _) = store.get("t.ic.4").unwrap();
        let e = Entry::decode(&v.unwrap()).unwrap();
        assert_eq!(e.digest, b.0);
        assert_eq!(e.answer, Some(ok(&["x"], None)));
    }

    #[test]
    fn garbage_slots_are_free() {
        let c = cache(1);
        let store = MemoryStore::new();
        for junk in [&b"\x02xyz"[..], &[1u8; 10], &[0u8; 70]] {
            store.set("t.ic.0", junk, None).unwrap();
            assert_eq!(c.lookup(&store, &d(1), NOW), Ok(Lookup::Miss));
            assert_eq!(
                c.store_answer(&store, &d(1), &ok(&[], None), NOW),
                Ok(Stored { evicted: false })
            );
            assert!(matches!(c.lookup(&store, &d(1), NOW), Ok(Lookup::Fresh(_))));
        }
        let mut e = Entry::new(&d(1)).encode();
        e.push(0);
        assert_eq!(Entry::decode(&e), None, "trailing bytes");
    }

    #[test]
    fn one_claim_wins_across_threads() {
        for round in 0..20u64 {
            let store = Arc::new(MemoryStore::new());
            let c = Arc::new(cache(64));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (store, c) = (store.clone(), c.clone());
                    std::thread::spawn(move || {
                        (0..50)
                            .filter(|_| c.try_claim(&*store, &d(round), NOW, 500).unwrap().won())
                            .count()
                    })
                })
                .collect();
            let wins: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(wins, 1, "round {round}");
        }
    }

    #[test]
    fn bounded_under_100k_distinct_credentials() {
        let c = cache(1_000);
        let store = MemoryStore::new();
        let mut evicted = 0;
        for i in 0..100_000u64 {
            let now = NOW + i;
            // Room is made by the claim (the answer then finds its own entry).
            if let Claim::Won { evicted: e } = c.try_claim(&store, &d(i), now, 500).unwrap() {
                evicted += u32::from(e);
                let s = c.store_answer(&store, &d(i), &ok(&[], None), now).unwrap();
                assert!(!s.evicted);
            }
        }
        assert_eq!(store.key_count(), 1_000);
        assert!(evicted > 90_000, "{evicted}");
        // The newest answers are still there.
        assert!(matches!(
            c.lookup(&store, &d(99_999), NOW + 100_000),
            Ok(Lookup::Fresh(_))
        ));
    }

    proptest::proptest! {
        /// Whatever the sequence of operations, lookups never return Fresh at or after the
        /// entry's fresh_until (checked from the stored entry), never an active answer at or
        /// after its exp, and the key count stays within max_entries.
        #[test]
        fn cache_invariants(
            ops in proptest::collection::vec((0u8..4, 0u64..12, 0u64..200_000, proptest::option::of(0i64..200)), 1..120),
            max in 1u32..6,
            interference in 0u32..3,
        ) {
            let c = cache(max);
            let store = MemoryStore::new();
            for (op, cred, offset, exp) in ops {
                let now = NOW + offset;
                let g = d(cred);
                store.interfere_with_next_writes(interference);
                match op {
                    0 => { let _ = c.try_claim(&store, &g, now, 500); }
                    1 => {
                        let a = ok(&["s"], exp.map(|e| 1_800_000_000 + e));
                        let _ = c.store_answer(&store, &g, &a, now);
                    }
                    2 => { let _ = c.release(&store, &g, now); }
                    _ => { let _ = c.store_answer(&store, &g, &Answer::inactive(), now); }
                }
                store.interfere_with_next_writes(0);
                for probe_at in [now, now + 1, now + 30_000, now + 61_000] {
                    let entry = c.find(&store, &g).unwrap();
                    match c.lookup(&store, &g, probe_at).unwrap() {
                        Lookup::Fresh(a) => {
                            let e = entry.unwrap();
                            proptest::prop_assert!(probe_at < e.fresh_until);
                            proptest::prop_assert!(!a.active || a.usable_at(probe_at));
                        }
                        Lookup::Stale(a) => {
                            let e = entry.unwrap();
                            proptest::prop_assert!(probe_at < e.stale_until);
                            proptest::prop_assert!(a.usable_at(probe_at));
                        }
                        _ => {}
                    }
                }
                proptest::prop_assert!(store.key_count() <= max as usize);
            }
        }
    }
}
