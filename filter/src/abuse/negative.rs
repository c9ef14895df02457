//! The negative cache: credentials refused recently, by digest, shared by every worker.
//!
//! A refused credential (a JWT whose signature does not verify, an API key no client has, a
//! token the auth service called inactive) is remembered for `ttl_ms` under the first 16 bytes
//! of its SHA-256 digest (never the credential). While remembered, the same credential is
//! refused again with the same reason before any expensive work: no signature verification, no
//! key-list lookup, no callout. The refusal is about the credential only, so it is safe to
//! replay: whoever sends that exact credential was refused with it a moment ago.
//!
//! The cache is a bounded table in shared data, `<prefix>.<n>` for `n < max_entries`, created
//! at configure time (see `ratelimit::table` for why). A digest probes [`PROBES`] slots from
//! `digest mod max_entries`. Recording takes the slot already holding the digest, else the
//! first empty or expired one, else the one that expires first (a flood of distinct refused
//! credentials evicts the oldest, and never grows the table). Writes are compare-and-swaps; a
//! record that keeps losing races is simply dropped (the cache is an optimisation: missing an
//! entry costs one more verification, never a wrong answer).

use sha2::{Digest, Sha256};

use crate::store::{SharedStore, StoreError};

/// Slots probed per digest.
pub const PROBES: u32 = 2;
/// Attempts of one record before it is dropped.
const MAX_ATTEMPTS: u32 = 4;
const VERSION: u8 = 1;
/// version + digest + expires_ms + reason.
const ENTRY_BYTES: usize = 1 + 16 + 8 + 1;
const EMPTY: [u8; ENTRY_BYTES] = [0; ENTRY_BYTES];

/// Why a credential was refused (what a hit answers again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refused {
    /// A JWT whose signature (or authentication tag) did not verify with the provider's keys.
    BadSignature,
    /// A key the credential names that the verifier does not have: a JWT `kid` missing from
    /// the provider's key set (remembered for that key set only).
    UnknownKey,
    /// An opaque token the auth service said is not active.
    Inactive,
}

impl Refused {
    fn code(self) -> u8 {
        match self {
            Refused::BadSignature => 1,
            Refused::UnknownKey => 2,
            Refused::Inactive => 3,
        }
    }

    fn from_code(c: u8) -> Option<Refused> {
        match c {
            1 => Some(Refused::BadSignature),
            2 => Some(Refused::UnknownKey),
            3 => Some(Refused::Inactive),
            _ => None,
        }
    }
}

/// The first 16 bytes of a credential's SHA-256 (a collision needs ~2^64 credentials).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CredentialDigest([u8; 16]);

impl std::fmt::Debug for CredentialDigest {
    // Never printed: a digest of a weak API key can be brute-forced.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialDigest(..)")
    }
}

impl CredentialDigest {
    /// `kind` separates credential kinds (an API key and a token with equal bytes differ).
    pub fn of(kind: &str, credential: &[u8]) -> CredentialDigest {
        CredentialDigest::of_generation(kind, 0, credential)
    }

    /// A digest that also names the generation of what refused the credential (for a JWT, the
    /// key set it was checked against): a refusal is remembered for that generation only, so a
    /// token refused for an unknown `kid` is verified again once a refetch brings new keys.
    pub fn of_generation(kind: &str, generation: u64, credential: &[u8]) -> CredentialDigest {
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        h.update([0u8]);
        h.update(generation.to_le_bytes());
        h.update(credential);
        let full: [u8; 32] = h.finalize().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(full.get(..16).unwrap_or(&[0; 16]));
        CredentialDigest(out)
    }

    fn slot_hash(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.0.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(b)
    }
}

/// One negative cache: where it lives, its size, how long a refusal is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegativeCache {
    /// Shared-data key prefix, e.g. `api_guard.neg`.
    pub prefix: String,
    pub max_entries: u32,
    pub ttl_ms: u64,
}

struct Entry {
    digest: [u8; 16],
    expires_ms: u64,
    reason: Option<Refused>,
}

fn encode(digest: &CredentialDigest, expires_ms: u64, reason: Refused) -> [u8; ENTRY_BYTES] {
    let mut out = [0u8; ENTRY_BYTES];
    let mut parts = out.iter_mut();
    let bytes = std::iter::once(VERSION)
        .chain(digest.0)
        .chain(expires_ms.to_le_bytes())
        .chain(std::iter::once(reason.code()));
    for (slot, b) in parts.by_ref().zip(bytes) {
        *slot = b;
    }
    out
}

/// An entry; anything unreadable (another version, the wrong size, never written) is empty.
fn decode(value: &[u8]) -> Entry {
    let empty = Entry {
        digest: [0; 16],
        expires_ms: 0,
        reason: None,
    };
    if value.len() != ENTRY_BYTES || value.first() != Some(&VERSION) {
        return empty;
    }
    let (Some(d), Some(e), Some(r)) = (value.get(1..17), value.get(17..25), value.get(25)) else {
        return empty;
    };
    let (Ok(digest), Ok(exp)) = (<[u8; 16]>::try_from(d), <[u8; 8]>::try_from(e)) else {
        return empty;
    };
    Entry {
        digest,
        expires_ms: u64::from_le_bytes(exp),
        reason: Refused::from_code(*r),
    }
}

impl NegativeCache {
    pub fn slot_key(&self, slot: u32) -> String {
        format!("{}.{slot}", self.prefix)
    }

    fn slots(&self, digest: &CredentialDigest) -> impl Iterator<Item = String> + '_ {
        let max = u64::from(self.max_entries.max(1));
        let start = digest.slot_hash() % max;
        (0..u64::from(PROBES).min(max))
            .map(move |i| self.slot_key(u32::try_from((start + i) % max).unwrap_or(0)))
    }

    /// Creates the slots that do not exist yet (configure time). Returns how many.
    pub fn ensure_created(&self, store: &dyn SharedStore) -> Result<u32, StoreError> {
        let mut created = 0;
        for slot in 0..self.max_entries {
            let key = self.slot_key(slot);
            if store.get(&key)?.0.is_none() {
                store.set(&key, &EMPTY, None)?;
                created += 1;
            }
        }
        Ok(created)
    }

    /// Whether `digest` was refused and the refusal is still remembered at `now_ms`.
    pub fn lookup(
        &self,
        store: &dyn SharedStore,
        digest: &CredentialDigest,
        now_ms: u64,
    ) -> Result<Option<Refused>, StoreError> {
        for key in self.slots(digest) {
            let Some(value) = store.get(&key)?.0 else {
                continue;
            };
            let entry = decode(&value);
            if entry.digest == digest.0 && now_ms < entry.expires_ms {
                return Ok(entry.reason);
            }
        }
        Ok(None)
    }

    /// Remembers that `digest` was refused for `reason`, until `now_ms + ttl_ms`. Best effort:
    /// `Ok(false)` when every attempt met a concurrent writer (nothing was recorded).
    pub fn record(
        &self,
        store: &dyn SharedStore,
        digest: &CredentialDigest,
        reason: Refused,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let value = encode(digest, now_ms.saturating_add(self.ttl_ms), reason);
        for _ in 0..MAX_ATTEMPTS {
            // (key, cas, expires) of the slot to write: own, else free, else the oldest.
            let mut own = None;
            let mut free = None;
            let mut oldest: Option<(String, Option<u32>, u64)> = None;
            for key in self.slots(digest) {
                let (stored, cas) = store.get(&key)?;
                let entry = stored.as_deref().map(decode);
                match entry {
                    Some(e) if e.digest == digest.0 => {
                        own = Some((key, cas));
                        break;
                    }
                    Some(e) if now_ms < e.expires_ms => {
                        if oldest.as_ref().is_none_or(|o| e.expires_ms < o.2) {
                            oldest = Some((key, cas, e.expires_ms));
                        }
                    }
                    // Expired, unreadable or missing: free.
                    _ => {
                        if free.is_none() {
                            free = Some((key, cas));
                        }
                    }
                }
            }
            let Some((key, cas)) = own.or(free).or(oldest.map(|(k, c, _)| (k, c))) else {
                return Ok(false);
            };
            // A missing key (configure-time creation failed) is created here; Envoy ignores the
            // CAS of a missing key, so creation can race: harmless for a cache.
            match store.set(&key, &value, cas) {
                Ok(()) => return Ok(true),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const NOW: u64 = 1_800_000_000_000;

    fn cache(max_entries: u32) -> NegativeCache {
        NegativeCache {
            prefix: "neg".into(),
            max_entries,
            ttl_ms: 30_000,
        }
    }

    fn d(s: &str) -> CredentialDigest {
        CredentialDigest::of("jwt", s.as_bytes())
    }

    #[test]
    fn remembers_for_the_ttl_only() {
        let store = MemoryStore::new();
        let c = cache(64);
        assert_eq!(c.ensure_created(&store), Ok(64));
        assert_eq!(c.lookup(&store, &d("a"), NOW), Ok(None));
        assert_eq!(
            c.record(&store, &d("a"), Refused::BadSignature, NOW),
            Ok(true)
        );
        assert_eq!(
            c.lookup(&store, &d("a"), NOW),
            Ok(Some(Refused::BadSignature))
        );
        assert_eq!(
            c.lookup(&store, &d("a"), NOW + 29_999),
            Ok(Some(Refused::BadSignature))
        );
        assert_eq!(c.lookup(&store, &d("a"), NOW + 30_000), Ok(None));
        // Other credentials, and the same bytes as another kind, are not hits.
        assert_eq!(c.lookup(&store, &d("b"), NOW), Ok(None));
        let as_key = CredentialDigest::of("api_key", b"a");
        assert_eq!(c.lookup(&store, &as_key, NOW), Ok(None));
        // Recording again refreshes the entry in place.
        c.record(&store, &d("a"), Refused::Inactive, NOW + 20_000)
            .unwrap();
        assert_eq!(
            c.lookup(&store, &d("a"), NOW + 40_000),
            Ok(Some(Refused::Inactive))
        );
        assert_eq!(store.key_count(), 64);
    }

    #[test]
    fn a_refusal_is_remembered_for_its_generation_only() {
        let store = MemoryStore::new();
        let c = cache(64);
        let at = |g| CredentialDigest::of_generation("jwt", g, b"token");
        c.record(&store, &at(7), Refused::UnknownKey, NOW).unwrap();
        assert_eq!(c.lookup(&store, &at(7), NOW), Ok(Some(Refused::UnknownKey)));
        assert_eq!(c.lookup(&store, &at(8), NOW), Ok(None));
        assert_eq!(c.lookup(&store, &at(0), NOW), Ok(None));
    }

    #[test]
    fn a_flood_evicts_the_oldest_and_never_grows() {
        let store = MemoryStore::new();
        let c = cache(8);
        c.ensure_created(&store).unwrap();
        for i in 0..1000u64 {
            c.record(&store, &d(&format!("t{i}")), Refused::UnknownKey, NOW + i)
                .unwrap();
        }
        assert_eq!(store.key_count(), 8);
        // The most recent refusal is remembered.
        assert_eq!(
            c.lookup(&store, &d("t999"), NOW + 1000),
            Ok(Some(Refused::UnknownKey))
        );
    }

    #[test]
    fn store_failures_and_races_are_reported_not_fatal() {
        let store = MemoryStore::new();
        let c = cache(4);
        c.ensure_created(&store).unwrap();
        store.interfere_with_next_writes(MAX_ATTEMPTS);
        assert_eq!(
            c.record(&store, &d("x"), Refused::BadSignature, NOW),
            Ok(false)
        );
        assert_eq!(c.lookup(&store, &d("x"), NOW), Ok(None));
        store.interfere_with_next_writes(0);
        store.set_unavailable(true);
        assert!(c.lookup(&store, &d("x"), NOW).is_err());
        assert!(c
            .record(&store, &d("x"), Refused::BadSignature, NOW)
            .is_err());
        // A slot that was never created is created by the first record.
        let fresh = MemoryStore::new();
        assert_eq!(c.record(&fresh, &d("y"), Refused::Inactive, NOW), Ok(true));
        assert_eq!(c.lookup(&fresh, &d("y"), NOW), Ok(Some(Refused::Inactive)));
        // Garbage in a slot reads as empty.
        fresh.set("neg.0", b"garbage", None).unwrap();
        fresh.set("neg.1", b"garbage", None).unwrap();
        fresh.set("neg.2", b"garbage", None).unwrap();
        fresh.set("neg.3", b"garbage", None).unwrap();
        assert_eq!(c.lookup(&fresh, &d("y"), NOW), Ok(None));
    }

    proptest::proptest! {
        /// Whatever is recorded, a lookup never answers for a credential that was not
        /// recorded, and never after its TTL.
        #[test]
        fn never_a_false_hit(
            recorded in proptest::collection::vec((0u32..50, 0u64..60_000), 0..100),
            probe in 0u32..100,
            at in 0u64..120_000,
            size in 1u32..16,
        ) {
            let store = MemoryStore::new();
            let c = cache(size);
            let mut last: Option<u64> = None;
            for (id, t) in &recorded {
                c.record(&store, &d(&format!("c{id}")), Refused::BadSignature, NOW + t).unwrap();
                if *id == probe {
                    last = Some(last.map_or(*t, |l: u64| l.max(*t)));
                }
            }
            if let Ok(Some(_)) = c.lookup(&store, &d(&format!("c{probe}")), NOW + at) {
                let t = last.unwrap_or(u64::MAX);
                proptest::prop_assert!(t != u64::MAX, "hit for a credential never recorded");
                proptest::prop_assert!(at < t + 30_000, "hit after the TTL");
            }
        }
    }
}
