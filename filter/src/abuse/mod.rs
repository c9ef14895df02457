//! The gate protecting itself: defences against attackers who aim at the gate's own work
//! (signature verification, introspection callouts, key lookups) rather than at the upstream.
//!
//! - [`negative`]: a bounded cache, shared by every worker, of credentials that were refused
//!   (bad signature, unknown key, inactive token), by digest, for a short time: a refused
//!   credential sent again is refused before any expensive step.
//! - [`budget`]: a per-address budget of expensive operations (cold signature verifications,
//!   introspection callouts): past it, a request is answered 429 before the expensive step.
//! - [`shape`]: what an opaque token of the introspection service can look like; anything else
//!   is refused without a callout.
//! - [`lockout`]: limits that count only failed authentications (brute force), consulted
//!   before anything is verified.
//!
//! Everything here is pure: shared data through [`crate::store::SharedStore`], the
//! clock passed in.

pub mod budget;
pub mod lockout;
pub mod negative;
pub mod shape;

use std::net::IpAddr;

use crate::rejection::Limited;
use crate::store::SharedStore;
use budget::{ExpensiveBudget, Spend};
use negative::{CredentialDigest, NegativeCache, Refused};

/// The compiled top-level `abuse` settings (both off unless configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbuseSettings {
    pub negative_cache: Option<NegativeCache>,
    pub expensive_per_address: Option<ExpensiveBudget>,
}

impl AbuseSettings {
    /// Creates the shared-data keys of the negative cache and the budget table (configure
    /// time; see `ratelimit::table` for why). Returns how many were created.
    pub fn ensure_created(&self, store: &dyn SharedStore) -> Result<u32, crate::store::StoreError> {
        let mut created = 0;
        if let Some(cache) = &self.negative_cache {
            created += cache.ensure_created(store)?;
        }
        if let Some(budget) = &self.expensive_per_address {
            created += budget.table.ensure_created(store)?;
        }
        Ok(created)
    }
}

/// Why an expensive step was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The same credential was refused a moment ago, for this reason.
    Remembered(Refused),
    /// The client's budget of expensive operations is spent (429).
    Budget(Limited<'static>),
    /// The budget's store failed and it fails closed (503).
    Unavailable,
}

/// What the guardrails did, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbuseEvent {
    NegativeHit,
    NegativeRecorded,
    BudgetSpent,
    BudgetExhausted,
    StoreErrors,
}

impl AbuseEvent {
    pub const ALL: [AbuseEvent; 5] = [
        AbuseEvent::NegativeHit,
        AbuseEvent::NegativeRecorded,
        AbuseEvent::BudgetSpent,
        AbuseEvent::BudgetExhausted,
        AbuseEvent::StoreErrors,
    ];

    /// The counter `api_guard.abuse.<name>`.
    pub fn as_str(self) -> &'static str {
        match self {
            AbuseEvent::NegativeHit => "negative_cache_hit",
            AbuseEvent::NegativeRecorded => "negative_cache_recorded",
            AbuseEvent::BudgetSpent => "budget_spent",
            AbuseEvent::BudgetExhausted => "budget_exhausted",
            AbuseEvent::StoreErrors => "store_errors",
        }
    }
}

/// The guardrails of one decision: the settings, the shared store, the client and the clock.
pub struct Guardrails<'a> {
    pub settings: &'a AbuseSettings,
    pub store: &'a dyn SharedStore,
    pub client_ip: Option<IpAddr>,
    pub now_ns: u64,
    pub events: Vec<AbuseEvent>,
}

impl<'a> Guardrails<'a> {
    /// Guardrails for a decision of `settings` (all off when nothing is configured).
    pub fn off(settings: &'a AbuseSettings, store: &'a dyn SharedStore) -> Guardrails<'a> {
        Guardrails {
            settings,
            store,
            client_ip: None,
            now_ns: 0,
            events: Vec::new(),
        }
    }

    /// Consulted right before an expensive step (a cold signature verification, an
    /// introspection callout) for `credential` of `kind`, judged against `generation` (see
    /// [`CredentialDigest::of_generation`]): a remembered refusal first (it costs no budget),
    /// then the client's budget.
    pub fn before_expensive(
        &mut self,
        kind: &str,
        generation: u64,
        credential: &[u8],
    ) -> Result<(), Stop> {
        let now_ms = self.now_ns / 1_000_000;
        if let Some(cache) = &self.settings.negative_cache {
            let digest = CredentialDigest::of_generation(kind, generation, credential);
            match cache.lookup(self.store, &digest, now_ms) {
                Ok(Some(reason)) => {
                    self.events.push(AbuseEvent::NegativeHit);
                    return Err(Stop::Remembered(reason));
                }
                Ok(None) => {}
                // A cache we cannot read only costs the work it would have saved.
                Err(_) => self.events.push(AbuseEvent::StoreErrors),
            }
        }
        if let Some(budget) = &self.settings.expensive_per_address {
            match budget.spend(self.store, self.client_ip, self.now_ns) {
                Spend::Granted => self.events.push(AbuseEvent::BudgetSpent),
                Spend::Exhausted(limited) => {
                    self.events.push(AbuseEvent::BudgetExhausted);
                    return Err(Stop::Budget(limited));
                }
                Spend::Unavailable => {
                    self.events.push(AbuseEvent::StoreErrors);
                    return Err(Stop::Unavailable);
                }
            }
        }
        Ok(())
    }

    /// Remembers that `credential` of `kind` was refused against `generation` after the
    /// expensive step.
    pub fn refused(&mut self, kind: &str, generation: u64, credential: &[u8], reason: Refused) {
        let Some(cache) = &self.settings.negative_cache else {
            return;
        };
        let digest = CredentialDigest::of_generation(kind, generation, credential);
        match cache.record(self.store, &digest, reason, self.now_ns / 1_000_000) {
            Ok(true) => self.events.push(AbuseEvent::NegativeRecorded),
            Ok(false) => {}
            Err(_) => self.events.push(AbuseEvent::StoreErrors),
        }
    }
}

/// Credential kinds (digest domains) of the negative cache.
pub const KIND_JWT: &str = "jwt";
pub const KIND_OPAQUE: &str = "opaque";
