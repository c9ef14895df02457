//! Remote documents and endpoints api-guard calls out to: JWKS, revocation lists and remote
//! key lists ([`document`]: one VM per Envoy fetches, every worker reads the shared copy; the
//! key list and its merge with the configured keys: [`RemoteClients`]), and
//! api-guard's own client authentication to those endpoints and to the introspection service
//! ([`ClientAuth`]). Plain Rust over the `SharedStore` port; the callouts themselves are the
//! host's (`host/fetch.rs`).

pub mod client_auth;
pub mod clients;
pub mod document;
pub use client_auth::{ClientAuth, ClientAuthMethod};
pub use clients::RemoteClients;
pub use document::{
    publish, release_lease, try_early_refetch, try_lease, Availability, RemoteSource, SyncOutcome,
    Synced, RETRY_BACKOFF_MS, UNAVAILABLE_RETRY_AFTER_SECS,
};
