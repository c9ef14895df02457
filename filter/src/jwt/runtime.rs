//! The per-VM, mutable side of token validation: remote key sets and revocation lists as this
//! VM last synced them from shared data, the merged revocation list, and the verified-token
//! cache. The host adapter owns one per VM, syncs it on every tick, and lends it to the
//! pipeline for each request.

use crate::policy::Guard;
use crate::ratelimit::store::{SharedStore, StoreError};

use super::cache::TokenCache;
use super::keys::{parse_jwks_bytes, JwksMode, KeySet};
use super::keysource::{SyncOutcome, Synced};
use super::provider::{ProviderId, ProviderKeys};
use super::revocation::RevocationList;
use super::verify::VerifiedToken;

#[derive(Debug)]
pub struct TokenRuntime {
    /// Indexed by provider; stays empty for providers with an inline JWKS.
    pub remote_keys: Vec<Synced<KeySet>>,
    pub remote_revocations: Synced<RevocationList>,
    /// The configuration's list merged with the remote one.
    pub revocations: RevocationList,
    pub cache: TokenCache<VerifiedToken>,
}

/// What a sync changed, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub keys_updated: usize,
    pub revocations_updated: bool,
    pub invalid: usize,
}

impl TokenRuntime {
    pub fn new(guard: &Guard) -> TokenRuntime {
        TokenRuntime {
            remote_keys: guard
                .jwt_providers
                .iter()
                .map(|_| Synced::default())
                .collect(),
            remote_revocations: Synced::default(),
            revocations: guard.revocation.list.clone(),
            cache: TokenCache::new(guard.jwt_cache),
        }
    }

    /// Picks up documents other VMs published since the last sync.
    pub fn sync(
        &mut self,
        guard: &Guard,
        store: &dyn SharedStore,
    ) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        for (i, provider) in guard.jwt_providers.iter().enumerate() {
            let (ProviderKeys::Remote(source), Some(synced)) =
                (&provider.keys, self.remote_keys.get_mut(i))
            else {
                continue;
            };
            let allowed = provider.rules.algorithms;
            match synced.sync(store, source, |b| {
                parse_jwks_bytes(b, JwksMode::Lenient, allowed).ok()
            })? {
                SyncOutcome::Updated => report.keys_updated += 1,
                SyncOutcome::Invalid => report.invalid += 1,
                SyncOutcome::Unchanged => {}
            }
        }
        if report.keys_updated > 0 {
            // A key that left the JWKS must stop verifying now, not when its cached tokens expire.
            self.cache.clear();
        }
        if let Some(source) = &guard.revocation.remote {
            match self
                .remote_revocations
                .sync(store, source, |b| RevocationList::parse_bytes(b).ok())?
            {
                SyncOutcome::Updated => {
                    report.revocations_updated = true;
                    self.remerge(guard);
                }
                SyncOutcome::Invalid => report.invalid += 1,
                SyncOutcome::Unchanged => {}
            }
        }
        Ok(report)
    }

    /// Installs a key set this VM fetched itself.
    pub fn install_keys(
        &mut self,
        provider: ProviderId,
        keys: KeySet,
        fetched_at: crate::time::UnixTime,
    ) {
        if let Some(synced) = self.remote_keys.get_mut(provider.0) {
            synced.install(keys, fetched_at);
            self.cache.clear();
        }
    }

    /// Installs a revocation list this VM fetched itself.
    pub fn install_revocations(
        &mut self,
        guard: &Guard,
        list: RevocationList,
        fetched_at: crate::time::UnixTime,
    ) {
        self.remote_revocations.install(list, fetched_at);
        self.remerge(guard);
    }

    fn remerge(&mut self, guard: &Guard) {
        self.revocations = match &self.remote_revocations.value {
            Some(remote) => guard.revocation.list.merged(remote),
            None => guard.revocation.list.clone(),
        };
    }
}
