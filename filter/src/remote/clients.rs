//! The remote key list (`remote_clients`): API keys a service publishes, fetched like the other
//! remote documents, and the configuration's keys merged with it (the merge is computed once
//! per new list, never per request).

use crate::checks::api_key::ApiKeys;
use crate::store::{SharedStore, StoreError};
use crate::time::UnixTime;

use super::document::{RemoteSource, SyncOutcome, Synced};

/// One VM's copy of the remote key list and of the merged key table.
#[derive(Debug, Default)]
pub struct RemoteClients {
    /// The list as this VM last synced it from shared data (or fetched it).
    pub synced: Synced<ApiKeys>,
    /// The configuration's keys plus the list; `None` until a list arrived.
    merged: Option<ApiKeys>,
}

impl RemoteClients {
    /// Configured keys plus the remote list, once one was fetched.
    pub fn merged(&self) -> Option<&ApiKeys> {
        self.merged.as_ref()
    }

    /// Whether no list has arrived yet (only between Envoy's start and the first fetch).
    pub fn is_missing(&self) -> bool {
        self.synced.value.is_none()
    }

    /// Picks up a list another VM published; `parse` compiles it (a broken list is
    /// `Invalid` and never replaces the last good one).
    pub fn sync(
        &mut self,
        configured: &ApiKeys,
        source: &RemoteSource,
        store: &dyn SharedStore,
        parse: impl FnOnce(&[u8]) -> Option<ApiKeys>,
    ) -> Result<SyncOutcome, StoreError> {
        let outcome = self.synced.sync(store, source, parse)?;
        if outcome == SyncOutcome::Updated {
            self.remerge(configured);
        }
        Ok(outcome)
    }

    /// Installs a list this VM fetched itself.
    pub fn install(&mut self, configured: &ApiKeys, keys: ApiKeys, fetched_at: UnixTime) {
        self.synced.install(keys, fetched_at);
        self.remerge(configured);
    }

    fn remerge(&mut self, configured: &ApiKeys) {
        self.merged = self
            .synced
            .value
            .as_ref()
            .map(|remote| configured.merged(remote));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_remote_clients;
    use crate::remote::publish;
    use crate::store::MemoryStore;
    use sha2::{Digest, Sha256};

    fn list(client: &str, key: &str) -> Vec<u8> {
        let digest: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            r#"{{"clients": {{"{client}": {{"keys": [{{"id": "k1", "sha256": "{digest}"}}]}}}}}}"#
        )
        .into_bytes()
    }

    fn source() -> RemoteSource {
        RemoteSource {
            cluster: "auth".into(),
            authority: "auth.test".into(),
            path: "/clients".into(),
            refresh_seconds: 10,
            timeout_ms: 500,
            max_stale_seconds: None,
            early_refetch_seconds: None,
            key: "api_guard.clients".into(),
            client_auth: None,
        }
    }

    fn knows(keys: &ApiKeys, client: &str) -> bool {
        keys.client_index(client).is_some()
    }

    #[test]
    fn merges_once_per_new_list_and_keeps_the_last_good_one() {
        let configured = compile_remote_clients(&list("local", "local-key")).unwrap();
        let store = MemoryStore::default();
        let mut clients = RemoteClients::default();
        let parse = |b: &[u8]| compile_remote_clients(b).ok();
        // Nothing published yet: nothing merged.
        let outcome = clients.sync(&configured, &source(), &store, parse).unwrap();
        assert_eq!(
            (outcome, clients.is_missing()),
            (SyncOutcome::Unchanged, true)
        );
        assert!(clients.merged().is_none());

        publish(
            &store,
            &source(),
            UnixTime(100),
            &list("remote", "remote-key"),
        )
        .unwrap();
        let outcome = clients.sync(&configured, &source(), &store, parse).unwrap();
        assert_eq!(outcome, SyncOutcome::Updated);
        let merged = clients.merged().unwrap();
        assert!(knows(merged, "local") && knows(merged, "remote"));
        // Same version again: not parsed, not merged again.
        let outcome = clients.sync(&configured, &source(), &store, parse).unwrap();
        assert_eq!(outcome, SyncOutcome::Unchanged);

        // A broken list never replaces the last good one.
        publish(&store, &source(), UnixTime(200), b"{not json").unwrap();
        let outcome = clients.sync(&configured, &source(), &store, parse).unwrap();
        assert_eq!(outcome, SyncOutcome::Invalid);
        assert!(knows(clients.merged().unwrap(), "remote"));

        // A list this VM fetched itself replaces it.
        let fetched = compile_remote_clients(&list("other", "other-key")).unwrap();
        clients.install(&configured, fetched, UnixTime(300));
        let merged = clients.merged().unwrap();
        assert!(knows(merged, "local") && knows(merged, "other"));
        assert!(!knows(merged, "remote"));
        assert_eq!(clients.synced.fetched_at, Some(UnixTime(300)));
    }
}
