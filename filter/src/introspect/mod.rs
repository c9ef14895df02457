//! Opaque tokens and API keys validated by a remote introspection service (RFC 7662), with the
//! answers cached in Envoy's shared data so every worker shares them. This module is the pure
//! core; the host adapter makes the callouts, pauses requests and counts [`Event`]s.
//!
//! - [`config`]: the service (`introspection` at the top level) and the per-policy rule.
//! - [`answer`]: the request body, the parsed [`Answer`] (header-safe identities), digests.
//! - [`cache`]: the bounded shared cache with single-flight claims and stale-while-revalidate.
//! - [`breaker`]: the shared circuit breaker.
//!
//! ## The request flow the host follows
//!
//! With `d = TokenDigest::of(credential)` (refuse the request as 401 first if
//! [`acceptable_token`] says no) and `now` in Unix milliseconds:
//!
//! 1. `cache.lookup(d)`:
//!    - `Fresh(a)`: judge `a` with the policy's rule ([`Event::Hit`]). No callout.
//!    - `Stale(a)`: ask `breaker.allow`. Unless the gate is `Open` and the policy is `deny`
//!      (see [`serves_stale`]), judge `a` now ([`Event::StaleHit`]); if the gate allows a call
//!      and `cache.try_claim(d)` wins, refresh in the background (from the root context: the
//!      request has moved on).
//!    - `Pending { until_ms }`: another worker is fetching; pause and look again on a tick
//!      until `until_ms` ([`Event::PendingWait`]); then treat as `Miss`.
//!    - `Miss`: `breaker.allow`: `Open` fails per policy ([`Event::BreakerOpen`]); `Call` /
//!      `Probe` then `cache.try_claim(d)`: `Won` pauses and calls out ([`Event::Miss`]),
//!      `Busy` waits as for `Pending`.
//! 2. Callback: a 200 whose body [`parse_answer`]s is a success: `cache.store_answer`,
//!    `breaker.record(true)`, judge ([`Event::CalloutOk`]). Anything else (timeout 504,
//!    cluster failure 503, another status, an unparseable body) is a failure:
//!    `cache.release(d)`, `breaker.record(false)` ([`Event::CalloutFailed`]), fail per policy.
//! 3. Failing per policy: `deny` answers 503 with `retry-after`; `cache_only` serves
//!    `cache.cache_only(d)` if it has an answer ([`Event::CacheOnlyServe`]), else 503.
//!
//! Nothing is ever served after `stale_until`, nor an active answer at or after its `exp`.
//! A store error on the request path is a failure too (the policy decides).

pub mod answer;
pub mod breaker;
pub mod cache;
pub mod config;

pub use answer::{acceptable_token, parse_answer, request_body, Answer, BadAnswer, TokenDigest};
pub use breaker::{Breaker, Gate, Transition};
pub use cache::{Claim, IntrospectionCache, Lookup, Stored};
pub use config::{
    compile_client_auth, compile_rule, compile_service, compile_service_with_env,
    IntrospectionRule, IntrospectionService, Judgement, OnFailure,
};
pub(crate) use config::{compile_client_auth_into, compile_rule_into, compile_service_into};

/// Whether a stale answer is served given the breaker's gate: always under `cache_only`; under
/// `deny` only while the service can be called (stale-while-revalidate is a latency
/// optimisation; with the service down, fail closed means no answer older than its TTL).
pub fn serves_stale(on_failure: OnFailure, gate: Gate) -> bool {
    match on_failure {
        OnFailure::CacheOnly => true,
        OnFailure::Deny => !matches!(gate, Gate::Open { .. }),
    }
}

/// What the host counts (the metric names are the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A fresh cached answer was used.
    Hit,
    /// A stale answer was used (and a refresh may have started).
    StaleHit,
    /// No usable answer: a callout was made.
    Miss,
    /// A request waited for another worker's callout.
    PendingWait,
    CalloutOk,
    /// Timeout, cluster failure, unexpected status or unparseable answer.
    CalloutFailed,
    /// The breaker refused a callout.
    BreakerOpen,
    /// `cache_only` served a cached answer while the service was unavailable.
    CacheOnlyServe,
    /// A live cache entry was overwritten to make room.
    Evicted,
    /// The client's budget of expensive operations refused a callout (429, no callout).
    BudgetExhausted,
    /// The token cannot be one of the service's (`token_shape`): refused without a callout.
    ShapeRefused,
}

impl Event {
    pub const ALL: [Event; 11] = [
        Event::Hit,
        Event::StaleHit,
        Event::Miss,
        Event::PendingWait,
        Event::CalloutOk,
        Event::CalloutFailed,
        Event::BreakerOpen,
        Event::CacheOnlyServe,
        Event::Evicted,
        Event::BudgetExhausted,
        Event::ShapeRefused,
    ];

    /// A stable snake_case name, for metric names.
    pub fn name(self) -> &'static str {
        match self {
            Event::Hit => "hit",
            Event::StaleHit => "stale_hit",
            Event::Miss => "miss",
            Event::PendingWait => "pending_wait",
            Event::CalloutOk => "callout_ok",
            Event::CalloutFailed => "callout_failed",
            Event::BreakerOpen => "breaker_open",
            Event::CacheOnlyServe => "cache_only_serve",
            Event::Evicted => "evicted",
            Event::BudgetExhausted => "budget_exhausted",
            Event::ShapeRefused => "shape_refused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_unique_snake_case() {
        let names: std::collections::HashSet<_> = Event::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), Event::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')));
    }

    #[test]
    fn serves_stale_table() {
        let open = Gate::Open { retry_after_ms: 1 };
        let cases = [
            (OnFailure::Deny, Gate::Call, true),
            (OnFailure::Deny, Gate::Probe, true),
            (OnFailure::Deny, open, false),
            (OnFailure::CacheOnly, open, true),
            (OnFailure::CacheOnly, Gate::Call, true),
        ];
        for (f, g, want) in cases {
            assert_eq!(serves_stale(f, g), want, "{f:?} {g:?}");
        }
    }
}
