//! The verified-token cache: a repeated token costs one SHA-256 and one hash-map lookup instead
//! of a signature check (RSA in wasm is tens of microseconds; see the README's performance
//! section).
//!
//! - Keyed by the SHA-256 of (provider, token): the token itself is never stored, so a heap
//!   dump of the VM does not hand out bearer credentials.
//! - An entry is valid until the earlier of the token's `exp` and insertion + `max_ttl`: it can
//!   never admit an expired token, and a key removed from the JWKS stops admitting its tokens
//!   within `max_ttl` at most (the cache is also cleared when a provider's key set changes).
//! - Revocation is not cached: the pipeline checks the revocation list on every request, hit or
//!   miss, so a revoked token is refused even while it sits in the cache.
//! - Bounded: at most `max_entries` entries per VM. When full, expired entries are swept; if
//!   none expired, the oldest insertion is evicted (FIFO). Memory is about
//!   1-3 KB per entry (measured: ~1 KB with 6 claims, ~2.8 KB with 13); `max_entries: 0` turns
//!   the cache off.
//!
//! The cache is per VM (per worker thread): it needs no host call, and each worker verifies a
//! given token once.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

use crate::time::UnixTime;

pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
pub const DEFAULT_MAX_TTL_SECONDS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub max_entries: usize,
    pub max_ttl_seconds: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_ttl_seconds: DEFAULT_MAX_TTL_SECONDS,
        }
    }
}

type CacheKey = [u8; 32];

#[derive(Debug)]
struct Entry<T> {
    value: T,
    valid_until: UnixTime,
}

#[derive(Debug)]
pub struct TokenCache<T> {
    settings: CacheSettings,
    entries: HashMap<CacheKey, Entry<T>>,
    /// Insertion order, for FIFO eviction. May hold keys already removed (lazy deletion);
    /// bounded by compaction in `insert`.
    order: VecDeque<CacheKey>,
}

impl<T> TokenCache<T> {
    pub fn new(settings: CacheSettings) -> TokenCache<T> {
        TokenCache {
            settings,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn key(provider: usize, token: &str) -> CacheKey {
        let mut h = Sha256::new();
        h.update((provider as u64).to_le_bytes());
        h.update(token.as_bytes());
        h.finalize().into()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A live entry, or `None` (an expired entry is removed on the way).
    pub fn get(&mut self, key: &CacheKey, now: UnixTime) -> Option<&T> {
        let expired = self.entries.get(key).is_some_and(|e| now >= e.valid_until);
        if expired {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| &e.value)
    }

    /// Caches a verified token. `expires_at` is the token's `exp` (`None`: no exp, then only the
    /// TTL cap applies).
    pub fn insert(&mut self, key: CacheKey, value: T, expires_at: Option<i64>, now: UnixTime) {
        if self.settings.max_entries == 0 {
            return;
        }
        let ttl = i64::try_from(self.settings.max_ttl_seconds).unwrap_or(i64::MAX);
        let cap = now.0.saturating_add(ttl);
        let valid_until = UnixTime(expires_at.map_or(cap, |exp| exp.min(cap)));
        if valid_until <= now {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.settings.max_entries {
            self.entries.retain(|_, e| now < e.valid_until);
            while self.entries.len() >= self.settings.max_entries {
                match self.order.pop_front() {
                    Some(old) => {
                        self.entries.remove(&old);
                    }
                    None => break,
                }
            }
        }
        if self
            .entries
            .insert(key, Entry { value, valid_until })
            .is_none()
        {
            self.order.push_back(key);
        }
        // Lazy deletion leaves stale keys in `order`; compact when it doubles the live count.
        if self.order.len() > 2 * self.settings.max_entries.max(16) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    fn cache(max_entries: usize, ttl: u64) -> TokenCache<u32> {
        TokenCache::new(CacheSettings {
            max_entries,
            max_ttl_seconds: ttl,
        })
    }

    #[test]
    fn entries_live_until_exp_or_ttl_whichever_is_first() {
        let mut c = cache(10, 300);
        let (a, b, d) = (
            TokenCache::<u32>::key(0, "a"),
            TokenCache::<u32>::key(0, "b"),
            TokenCache::<u32>::key(0, "d"),
        );
        c.insert(a, 1, Some(NOW.0 + 10), NOW); // exp first
        c.insert(b, 2, Some(NOW.0 + 10_000), NOW); // ttl first
        c.insert(d, 3, None, NOW);
        let cases = [
            (a, NOW.0 + 9, Some(1)),
            (a, NOW.0 + 10, None),
            (b, NOW.0 + 299, Some(2)),
            (b, NOW.0 + 300, None),
            (d, NOW.0 + 299, Some(3)),
        ];
        for (key, t, want) in cases {
            assert_eq!(c.get(&key, UnixTime(t)).copied(), want, "at {t}");
        }
    }

    #[test]
    fn expired_tokens_are_never_inserted_and_keys_differ_per_provider() {
        let mut c = cache(10, 300);
        c.insert(TokenCache::<u32>::key(0, "x"), 1, Some(NOW.0), NOW);
        assert!(c.is_empty());
        assert_ne!(
            TokenCache::<u32>::key(0, "x"),
            TokenCache::<u32>::key(1, "x")
        );
        let mut off = cache(0, 300);
        off.insert(TokenCache::<u32>::key(0, "x"), 1, None, NOW);
        assert!(off.is_empty());
    }

    #[test]
    fn full_cache_sweeps_expired_then_evicts_oldest() {
        let mut c = cache(3, 300);
        let k = |i: u32| TokenCache::<u32>::key(0, &i.to_string());
        c.insert(k(1), 1, Some(NOW.0 + 5), NOW);
        c.insert(k(2), 2, None, NOW);
        c.insert(k(3), 3, None, NOW);
        // k(1) expired by now: swept, nothing live is evicted.
        let later = UnixTime(NOW.0 + 6);
        c.insert(k(4), 4, None, later);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&k(2), later), Some(&2));
        // Full of live entries: the oldest insertion (k2) goes.
        c.insert(k(5), 5, None, later);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&k(2), later), None);
        assert_eq!(c.get(&k(5), later), Some(&5));
    }

    #[test]
    fn stays_bounded_under_churn() {
        let mut c = cache(100, 300);
        for i in 0..10_000u32 {
            c.insert(TokenCache::<u32>::key(0, &i.to_string()), i, None, NOW);
            assert!(c.len() <= 100);
            assert!(c.order.len() <= 2 * 100 + 1);
        }
    }
}
