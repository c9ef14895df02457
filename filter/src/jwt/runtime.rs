//! The per-VM, mutable side of token validation: remote key sets and revocation lists as this
//! VM last synced them from shared data, the merged revocation list, and the verified-token
//! cache; plus the remote API key list ([`RemoteClients`], `remote/`), synced on the same tick. The host adapter owns one per VM, syncs it on every tick, and lends it to the
//! pipeline for each request.

use crate::checks::api_key::ApiKeys;
use crate::policy::Guard;
use crate::store::{SharedStore, StoreError};

use super::cache::TokenCache;
use super::keys::{parse_jwks_bytes, KeySet};
use super::provider::{ProviderId, ProviderKeys};
use super::revocation::RevocationList;
use super::verify::VerifiedToken;
use crate::remote::{RemoteClients, SyncOutcome, Synced};

#[derive(Debug)]
pub struct TokenRuntime {
    /// Indexed by provider; stays empty for providers with an inline JWKS.
    pub remote_keys: Vec<Synced<KeySet>>,
    pub remote_revocations: Synced<RevocationList>,
    /// The configuration's list merged with the remote one.
    pub revocations: RevocationList,
    pub cache: TokenCache<VerifiedToken>,
    /// The remote key list as last synced, and the configuration's keys merged with it.
    pub clients: RemoteClients,
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
            clients: RemoteClients::default(),
        }
    }

    /// Picks up documents other VMs published since the last sync.
    pub fn sync(
        &mut self,
        guard: &Guard,
        store: &dyn SharedStore,
    ) -> Result<SyncReport, StoreError> {
        self.sync_selected(guard, store, false)
    }

    /// Does this VM still lack a remote document it has never had (a JWKS, a revocation list
    /// or a key list)? Only true between Envoy's start and the first fetch of each one.
    pub fn lacks_first_documents(&self, guard: &Guard) -> bool {
        let keys_missing = guard
            .jwt_providers
            .iter()
            .zip(&self.remote_keys)
            .any(|(p, synced)| matches!(p.keys, ProviderKeys::Remote(_)) && synced.value.is_none());
        keys_missing
            || (guard.remote_clients.is_some() && self.clients.is_missing())
            || (guard.revocation.remote.is_some() && self.remote_revocations.value.is_none())
    }

    /// Syncs only the documents this VM has never had. The request path calls it while
    /// `lacks_first_documents`, so a worker starts using a JWKS the moment another VM
    /// published it instead of refusing until its own next tick; each call costs one
    /// shared-data lookup per missing document, and nothing once all have arrived.
    pub fn sync_first_documents(
        &mut self,
        guard: &Guard,
        store: &dyn SharedStore,
    ) -> Result<SyncReport, StoreError> {
        self.sync_selected(guard, store, true)
    }

    fn sync_selected(
        &mut self,
        guard: &Guard,
        store: &dyn SharedStore,
        only_missing: bool,
    ) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        for (i, provider) in guard.jwt_providers.iter().enumerate() {
            let (ProviderKeys::Remote(source), Some(synced)) =
                (&provider.keys, self.remote_keys.get_mut(i))
            else {
                continue;
            };
            if only_missing && synced.value.is_some() {
                continue;
            }
            let (allowed, mode) = (provider.rules.algorithms, provider.remote_jwks_mode());
            match synced.sync(store, source, |b| parse_jwks_bytes(b, mode, allowed).ok())? {
                SyncOutcome::Updated => report.keys_updated += 1,
                SyncOutcome::Invalid => report.invalid += 1,
                SyncOutcome::Unchanged => {}
            }
        }
        if report.keys_updated > 0 {
            // A key that left the JWKS must stop verifying now, not when its cached tokens expire.
            self.cache.clear();
        }
        if let Some(source) = guard
            .remote_clients
            .as_ref()
            .filter(|_| !only_missing || self.clients.is_missing())
        {
            let parse = |b: &[u8]| crate::config::compile_remote_clients(b).ok();
            match self.clients.sync(&guard.api_keys, source, store, parse)? {
                SyncOutcome::Invalid => report.invalid += 1,
                SyncOutcome::Updated | SyncOutcome::Unchanged => {}
            }
        }
        if let Some(source) = guard
            .revocation
            .remote
            .as_ref()
            .filter(|_| !only_missing || self.remote_revocations.value.is_none())
        {
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

    /// Configured keys plus the remote key list, when one was fetched.
    pub fn merged_api_keys(&self) -> Option<&ApiKeys> {
        self.clients.merged()
    }

    /// Installs a remote key list this VM fetched itself.
    pub fn install_clients(
        &mut self,
        guard: &Guard,
        keys: ApiKeys,
        fetched_at: crate::time::UnixTime,
    ) {
        self.clients.install(&guard.api_keys, keys, fetched_at);
    }

    fn remerge(&mut self, guard: &Guard) {
        self.revocations = match &self.remote_revocations.value {
            Some(remote) => guard.revocation.list.merged(remote),
            None => guard.revocation.list.clone(),
        };
    }
}
