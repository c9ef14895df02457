//! Remote documents (a provider's JWKS, the revocation list) fetched by ONE VM per Envoy and
//! shared with every worker, decoupled from the apps behind Envoy.
//!
//! Envoy runs one VM per worker thread (plus the main thread), and `on_tick` fires in every one
//! of them. If each VM fetched on its own, an Envoy with N workers would hit the issuer N times
//! per period. Instead, per document, in Envoy's shared data (one map per `vm_id`):
//!
//! - `<key>`: the last good document, as 8 bytes of little-endian `fetched_at` (Unix seconds)
//!   followed by the body exactly as served. Only documents that parsed are published, so a
//!   JWKS endpoint that starts serving garbage never replaces the last good key set.
//! - `<key>.lease`: 8 bytes, the Unix millisecond until which one VM holds the right to fetch.
//!   Taken with compare-and-swap, so exactly one VM wins per period; it outlives the callout's
//!   timeout plus a back-off, which also rate-limits retries against a failing endpoint.
//! - `<key>.early`: 8 bytes, the Unix second of the last unknown-`kid` refetch, taken with CAS,
//!   so a flood of tokens with random `kid`s causes at most one extra fetch per interval.
//!
//! Every VM, on its own tick, compares the published CAS version with the one it parsed last
//! and re-parses only when it changed. The propagation bound for a new document is therefore
//! one fetch period plus one tick. Shared data survives a VM restart (FAIL_RELOAD) but not an
//! Envoy restart: a new Envoy fetches again before it can verify remote-keyed tokens, and
//! answers 503 `jwks_unavailable` with `retry-after` meanwhile. During that window only, a
//! VM also looks for the first document on the request path (one lookup per missing
//! document), so every worker starts verifying as soon as any VM published the keys.

use crate::store::{SharedStore, StoreError};

use super::client_auth::ClientAuth;
use crate::time::UnixTime;

/// How long a failed fetch blocks the next attempt (beyond the callout timeout).
pub const RETRY_BACKOFF_MS: u64 = 2_000;
/// What `retry-after` says while no document was ever fetched.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 2;

/// Where and how often to fetch one remote document (compiled from the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSource {
    /// Envoy cluster the callout goes through.
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub refresh_seconds: u64,
    pub timeout_ms: u64,
    /// Serve the last good document for at most this long after its fetch; then fail closed.
    /// `None` for documents that never go stale (revocation lists only add to the config).
    pub max_stale_seconds: Option<u64>,
    /// Minimum spacing of unknown-`kid` refetches (JWKS only).
    pub early_refetch_seconds: Option<u64>,
    /// Shared-data key of the published document.
    pub key: String,
    /// api-guard's credentials for the endpoint (`client_auth`), if it asks for them.
    pub client_auth: Option<ClientAuth>,
}

impl RemoteSource {
    pub fn lease_key(&self) -> String {
        format!("{}.lease", self.key)
    }

    pub fn early_key(&self) -> String {
        format!("{}.early", self.key)
    }

    /// Is a fetch due, given when the published document was fetched?
    pub fn fetch_due(&self, published_at: Option<UnixTime>, now: UnixTime) -> bool {
        published_at.is_none_or(|t| {
            now.0.saturating_sub(t.0) >= i64::try_from(self.refresh_seconds).unwrap_or(i64::MAX)
        })
    }

    /// Can a document fetched at `fetched_at` still be used at `now`?
    pub fn availability(&self, fetched_at: Option<UnixTime>, now: UnixTime) -> Availability {
        match (fetched_at, self.max_stale_seconds) {
            (None, _) => Availability::NeverFetched,
            (Some(_), None) => Availability::Fresh,
            (Some(t), Some(max)) => {
                let age = now.0.saturating_sub(t.0);
                if age > i64::try_from(max).unwrap_or(i64::MAX) {
                    Availability::Stale
                } else {
                    Availability::Fresh
                }
            }
        }
    }

    fn lease_ms(&self) -> u64 {
        self.timeout_ms.saturating_add(RETRY_BACKOFF_MS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Fresh,
    /// Older than `max_stale_seconds`: fail closed (503 `jwks_stale`).
    Stale,
    /// Never fetched since this Envoy started (503 `jwks_unavailable` with `retry-after`).
    NeverFetched,
}

fn u64_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Tries to take the fetch lease. `Ok(true)`: this VM fetches now.
pub fn try_lease(
    store: &dyn SharedStore,
    source: &RemoteSource,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let key = source.lease_key();
    let (value, cas) = store.get(&key)?;
    if value
        .as_deref()
        .and_then(u64_of)
        .is_some_and(|until| until > now_ms)
    {
        return Ok(false);
    }
    let until = now_ms.saturating_add(source.lease_ms());
    match store.set(&key, &until.to_le_bytes(), cas) {
        Ok(()) => Ok(true),
        Err(StoreError::CasMismatch) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease back after a successful fetch, so the next one can start as soon as the
/// refresh interval says (a failed fetch keeps the lease: that is the back-off).
pub fn release_lease(store: &dyn SharedStore, source: &RemoteSource) -> Result<(), StoreError> {
    store.set(&source.lease_key(), &0u64.to_le_bytes(), None)
}

/// Tries to claim an unknown-`kid` refetch: at most one per `early_refetch_seconds` per Envoy.
pub fn try_early_refetch(
    store: &dyn SharedStore,
    source: &RemoteSource,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let Some(interval) = source.early_refetch_seconds else {
        return Ok(false);
    };
    let key = source.early_key();
    let (value, cas) = store.get(&key)?;
    let last = value.as_deref().and_then(u64_of);
    let now_s = u64::try_from(now.0).unwrap_or(0);
    if last.is_some_and(|t| now_s < t.saturating_add(interval)) {
        return Ok(false);
    }
    match store.set(&key, &now_s.to_le_bytes(), cas) {
        Ok(()) => Ok(true),
        Err(StoreError::CasMismatch) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Publishes a document that parsed. Unconditional: only the lease holder fetches, and if two
/// fetches ever overlap, both documents are good and the later one wins.
pub fn publish(
    store: &dyn SharedStore,
    source: &RemoteSource,
    fetched_at: UnixTime,
    body: &[u8],
) -> Result<(), StoreError> {
    let mut value = Vec::with_capacity(8 + body.len());
    value.extend_from_slice(&u64::try_from(fetched_at.0).unwrap_or(0).to_le_bytes());
    value.extend_from_slice(body);
    store.set(&source.key, &value, None)
}

/// One VM's parsed copy of a published document.
#[derive(Debug)]
pub struct Synced<T> {
    pub value: Option<T>,
    pub fetched_at: Option<UnixTime>,
    seen: Option<u32>,
}

impl<T> Default for Synced<T> {
    fn default() -> Self {
        Synced {
            value: None,
            fetched_at: None,
            seen: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    Unchanged,
    Updated,
    /// The published document did not parse here (should not happen: only parsed documents are
    /// published; a different module version could). The previous copy is kept.
    Invalid,
}

impl<T> Synced<T> {
    /// Re-reads the published document and re-parses it if its version changed.
    pub fn sync(
        &mut self,
        store: &dyn SharedStore,
        source: &RemoteSource,
        parse: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Result<SyncOutcome, StoreError> {
        let (value, cas) = store.get(&source.key)?;
        let Some(value) = value else {
            return Ok(SyncOutcome::Unchanged);
        };
        if cas.is_some() && cas == self.seen {
            return Ok(SyncOutcome::Unchanged);
        }
        self.seen = cas;
        let (Some(at), Some(body)) = (u64_of(&value), value.get(8..)) else {
            return Ok(SyncOutcome::Invalid);
        };
        match parse(body) {
            Some(parsed) => {
                self.value = Some(parsed);
                self.fetched_at = Some(UnixTime(i64::try_from(at).unwrap_or(0)));
                Ok(SyncOutcome::Updated)
            }
            None => Ok(SyncOutcome::Invalid),
        }
    }

    /// Installs a document this VM fetched itself (before the next sync would see it).
    pub fn install(&mut self, value: T, fetched_at: UnixTime) {
        self.value = Some(value);
        self.fetched_at = Some(fetched_at);
    }

    /// When the published copy was fetched (without parsing it), for `fetch_due`.
    pub fn published_at(
        store: &dyn SharedStore,
        source: &RemoteSource,
    ) -> Result<Option<UnixTime>, StoreError> {
        let (value, _) = store.get(&source.key)?;
        Ok(value
            .as_deref()
            .and_then(u64_of)
            .map(|t| UnixTime(i64::try_from(t).unwrap_or(0))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn source() -> RemoteSource {
        RemoteSource {
            cluster: "jwks".into(),
            authority: "issuer.test".into(),
            path: "/jwks.json".into(),
            refresh_seconds: 60,
            timeout_ms: 1_000,
            max_stale_seconds: Some(600),
            early_refetch_seconds: Some(10),
            key: "api_guard.jwks.corp".into(),
            client_auth: None,
        }
    }

    #[test]
    fn one_lease_per_period() {
        let store = MemoryStore::new();
        let s = source();
        let t = 1_000_000u64;
        assert!(try_lease(&store, &s, t).unwrap());
        assert!(!try_lease(&store, &s, t + 1).unwrap(), "second VM loses");
        assert!(!try_lease(&store, &s, t + s.lease_ms() - 1).unwrap());
        assert!(
            try_lease(&store, &s, t + s.lease_ms()).unwrap(),
            "expired lease"
        );
        release_lease(&store, &s).unwrap();
        assert!(
            try_lease(&store, &s, t + s.lease_ms() + 1).unwrap(),
            "released lease"
        );
        // A concurrent writer between read and write: this VM does not get it.
        store.interfere_with_next_writes(1);
        assert!(!try_lease(&store, &s, t + 10 * s.lease_ms()).unwrap());
        store.set_unavailable(true);
        assert!(try_lease(&store, &s, t + 20 * s.lease_ms()).is_err());
    }

    #[test]
    fn early_refetch_is_rate_limited() {
        let store = MemoryStore::new();
        let s = source();
        let now = UnixTime(1_800_000_000);
        assert!(try_early_refetch(&store, &s, now).unwrap());
        assert!(!try_early_refetch(&store, &s, UnixTime(now.0 + 9)).unwrap());
        assert!(try_early_refetch(&store, &s, UnixTime(now.0 + 10)).unwrap());
        let off = RemoteSource {
            early_refetch_seconds: None,
            ..source()
        };
        assert!(!try_early_refetch(&store, &off, now).unwrap());
    }

    #[test]
    fn due_and_availability() {
        let s = source();
        let t = UnixTime(1_800_000_000);
        let cases = [
            (None, t.0, true, Availability::NeverFetched),
            (Some(t), t.0 + 59, false, Availability::Fresh),
            (Some(t), t.0 + 60, true, Availability::Fresh),
            (Some(t), t.0 + 600, true, Availability::Fresh),
            (Some(t), t.0 + 601, true, Availability::Stale),
        ];
        for (at, now, due, avail) in cases {
            assert_eq!(s.fetch_due(at, UnixTime(now)), due, "{at:?} {now}");
            assert_eq!(s.availability(at, UnixTime(now)), avail, "{at:?} {now}");
        }
        let never_stale = RemoteSource {
            max_stale_seconds: None,
            ..source()
        };
        assert_eq!(
            never_stale.availability(Some(t), UnixTime(t.0 + 1_000_000)),
            Availability::Fresh
        );
    }

    #[test]
    fn vms_pick_up_published_documents_once() {
        let store = MemoryStore::new();
        let s = source();
        let mut a: Synced<String> = Synced::default();
        let parse = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        assert_eq!(a.sync(&store, &s, parse).unwrap(), SyncOutcome::Unchanged);
        assert_eq!(a.value, None);
        publish(&store, &s, UnixTime(100), b"v1").unwrap();
        assert_eq!(a.sync(&store, &s, parse).unwrap(), SyncOutcome::Updated);
        assert_eq!(
            (a.value.as_deref(), a.fetched_at),
            (Some("v1"), Some(UnixTime(100)))
        );
        let mut parsed = 0;
        let counting = |b: &[u8]| {
            parsed += 1;
            String::from_utf8(b.to_vec()).ok()
        };
        assert_eq!(
            a.sync(&store, &s, counting).unwrap(),
            SyncOutcome::Unchanged
        );
        assert_eq!(parsed, 0, "an unchanged document is not parsed again");
        assert_eq!(
            Synced::<String>::published_at(&store, &s).unwrap(),
            Some(UnixTime(100))
        );
        // A document that does not parse here keeps the previous copy.
        publish(&store, &s, UnixTime(200), &[0xff]).unwrap();
        assert_eq!(a.sync(&store, &s, parse).unwrap(), SyncOutcome::Invalid);
        assert_eq!(a.value.as_deref(), Some("v1"));
        assert_eq!(a.fetched_at, Some(UnixTime(100)));
    }
}
