//! Failure-only limits (lockouts): a limit that counts only failed authentications, and is
//! consulted before any credential is verified. After `burst` failures from one key (a client
//! address prefix, or the prefix of the presented credential) the key is locked: every request
//! from it is answered 429 with `retry-after`, without looking at its credential, until the
//! bucket refills (`rate` failures per `per`). Successful requests are never counted, so a
//! legitimate client that mistypes a key a few times is not locked out, and a brute-force run is
//! stopped after `burst` guesses at a cost of one shared-data read per request.
//!
//! A lockout keyed by [`KeyIdPrefix`] counts failures per API-key id prefix (the non-secret
//! part of a presented key, as in `<key-id>.<secret>` schemes) wherever they come from: a
//! guesser spreading one key id's guesses over many addresses is stopped after `burst` of them.

use crate::ratelimit::gcra::GcraOutcome;
use crate::ratelimit::store::SharedStore;
use crate::ratelimit::table::Consumed;
use crate::ratelimit::{ceil_secs, Limited, RateLimit};
use crate::request::RequestView;

/// Whether `hash` is locked out under `limit` at `now_ns`: `Some(details)` for the 429.
/// A store failure reads as not locked (`Err` is for the caller's metrics); the credential
/// checks still run in full then.
pub fn locked<'g>(
    limit: &'g RateLimit,
    store: &dyn SharedStore,
    hash: u64,
    now_ns: u64,
) -> Result<Option<Limited<'g>>, crate::ratelimit::store::StoreError> {
    let tat = limit.table.peek(store, hash)?;
    Ok(match limit.gcra.decide(tat, now_ns) {
        GcraOutcome::Allow { .. } => None,
        GcraOutcome::Deny {
            retry_after_ns,
            full_in_ns,
        } => Some(Limited {
            limit: &limit.name,
            quota: limit.quota(),
            window_secs: limit.window_secs(),
            retry_after_secs: ceil_secs(retry_after_ns).max(1),
            reset_secs: ceil_secs(full_in_ns),
        }),
    })
}

/// Counts one failed authentication of `hash`. Returns whether the key is now locked.
pub fn record_failure(limit: &RateLimit, store: &dyn SharedStore, hash: u64, now_ns: u64) -> bool {
    match limit.table.consume(store, &limit.gcra, hash, now_ns) {
        Consumed::Allowed { remaining, .. } => remaining == 0,
        Consumed::Limited { .. } => true,
        Consumed::CasRetriesExhausted | Consumed::StoreFailed(_) => false,
    }
}

/// Longest key-id prefix counted as one: a longer one is not a prefix of the scheme (and the
/// lockout must not hash a key's secret part).
pub const MAX_KEY_ID_PREFIX_BYTES: usize = 64;

/// Where the key-id part of a presented API key ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixRule {
    /// The bytes before the first `separator` (`kid_3f9a.s3cr3t` with `.`).
    Separator(u8),
    /// The first `n` bytes (keys of a fixed-length id followed by the secret).
    Length(usize),
}

impl PrefixRule {
    /// The key-id prefix of `key`, or `None` when the key does not follow the scheme (no
    /// separator, an empty or too long id, shorter than the id length).
    pub fn of<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        let prefix = match *self {
            PrefixRule::Separator(sep) => key.get(..key.iter().position(|&b| b == sep)?)?,
            // The id must leave a secret after it.
            PrefixRule::Length(n) if key.len() > n => key.get(..n)?,
            PrefixRule::Length(_) => return None,
        };
        (!prefix.is_empty() && prefix.len() <= MAX_KEY_ID_PREFIX_BYTES).then_some(prefix)
    }
}

/// A lockout key: the key-id prefix of the API key a request presents in the header the
/// policy's `api_key` check reads (`key: {"key_prefix": ...}`, `counts: failed_auth` only; the
/// compiler refuses it for a check that also reads a query parameter, which would let a guesser
/// send the key where the lockout does not look).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdPrefix {
    /// Lowercase header name of the policy's `api_key` check.
    pub header: String,
    pub rule: PrefixRule,
}

impl KeyIdPrefix {
    /// The key-id prefix of the API key `request` presents. `None` when it presents none, or a
    /// key outside the scheme: such a request is not this lockout's to count or refuse (a key
    /// outside the scheme cannot be a configured key when every key follows it, and a shared
    /// bucket for them would lock out a configured key that does not; the address lockouts
    /// still count it).
    pub fn presented<'r>(&self, request: &RequestView<'r>) -> Option<&'r [u8]> {
        self.rule.of(request.header(&self.header)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::gcra::Gcra;
    use crate::ratelimit::store::MemoryStore;
    use crate::ratelimit::table::Table;
    use crate::ratelimit::{Counts, KeySource, Mode, OnStoreError};

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_800_000_000 * S;

    fn lockout(failures: u64, per_secs: u64) -> RateLimit {
        RateLimit {
            name: "failed_auth".into(),
            gcra: Gcra::new(failures, per_secs * S, failures).unwrap(),
            key: KeySource::Ip {
                v4_prefix: 32,
                v6_prefix: 64,
            },
            mode: Mode::Enforce,
            on_store_error: OnStoreError::Allow,
            table: Table::new("lock".into(), 64),
            overrides: Vec::new(),
            counts: Counts::FailedAuth,
        }
    }

    #[test]
    fn locks_after_n_failures_and_unlocks_after_the_window() {
        let store = MemoryStore::new();
        let l = lockout(20, 60);
        for i in 0..20 {
            assert_eq!(locked(&l, &store, 7, NOW), Ok(None), "failure {i}");
            assert_eq!(record_failure(&l, &store, 7, NOW), i == 19);
        }
        let got = locked(&l, &store, 7, NOW).unwrap().unwrap();
        assert_eq!(
            (got.limit, got.quota, got.window_secs),
            ("failed_auth", 20, 60)
        );
        assert_eq!(got.retry_after_secs, 3);
        // Peeking counts nothing: still locked exactly as long.
        for _ in 0..100 {
            assert!(locked(&l, &store, 7, NOW).unwrap().is_some());
        }
        assert!(locked(&l, &store, 7, NOW + 3 * S).unwrap().is_none());
        // Another key is not affected.
        assert_eq!(locked(&l, &store, 8, NOW), Ok(None));
        store.set_unavailable(true);
        assert!(locked(&l, &store, 7, NOW).is_err());
        assert!(!record_failure(&l, &store, 7, NOW));
    }

    #[test]
    fn key_id_prefix_table() {
        let dot = PrefixRule::Separator(b'.');
        let eight = PrefixRule::Length(8);
        let long = format!("{}.secret", "k".repeat(MAX_KEY_ID_PREFIX_BYTES));
        let too_long = format!("{}.secret", "k".repeat(MAX_KEY_ID_PREFIX_BYTES + 1));
        let cases: &[(PrefixRule, &str, Option<&str>)] = &[
            (dot, "kid_3f9a.s3cr3t", Some("kid_3f9a")),
            // The first separator ends the id: a secret may contain more.
            (dot, "kid.a.b", Some("kid")),
            (dot, "kid.", Some("kid")),
            (dot, ".secret", None),
            (dot, "no-separator", None),
            (dot, "", None),
            (dot, &long, Some(&long[..MAX_KEY_ID_PREFIX_BYTES])),
            (dot, &too_long, None),
            (eight, "ak_12345secret", Some("ak_12345")),
            (eight, "ak_123456", Some("ak_12345")),
            // Nothing left for a secret: not a key of the scheme.
            (eight, "ak_12345", None),
            (eight, "short", None),
        ];
        for (rule, key, want) in cases {
            assert_eq!(
                rule.of(key.as_bytes()),
                want.map(str::as_bytes),
                "{rule:?} {key:?}"
            );
        }
    }

    fn prefix_lockout(failures: u64) -> RateLimit {
        RateLimit {
            name: "failed_auth_by_key_id".into(),
            key: KeySource::KeyIdPrefix(KeyIdPrefix {
                header: "x-api-key".into(),
                rule: PrefixRule::Separator(b'.'),
            }),
            ..lockout(failures, 600)
        }
    }

    fn hash_of(limit: &RateLimit, key: Option<&str>, ip: &str) -> Option<u64> {
        let mut headers = vec![(":path".to_string(), b"/x".to_vec())];
        if let Some(k) = key {
            headers.push(("x-api-key".to_string(), k.as_bytes().to_vec()));
        }
        let view = RequestView {
            headers: &headers,
            client_ip: ip.parse().ok(),
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        crate::ratelimit::key_hash(&limit.key, &view, &crate::verdict::Admission::default())
    }

    #[test]
    fn a_key_id_is_locked_after_n_failures_from_any_addresses() {
        let store = MemoryStore::new();
        let l = prefix_lockout(5);
        // Five wrong secrets for key id `acme`, each from another address.
        for i in 0..5 {
            let h = hash_of(&l, Some(&format!("acme.guess{i}")), &format!("10.0.0.{i}")).unwrap();
            assert_eq!(locked(&l, &store, h, NOW), Ok(None), "guess {i}");
            record_failure(&l, &store, h, NOW);
        }
        // The id is locked whatever the secret and the address; other ids are not.
        let acme = hash_of(&l, Some("acme.right-secret"), "192.0.2.9").unwrap();
        let got = locked(&l, &store, acme, NOW).unwrap().unwrap();
        assert_eq!(got.limit, "failed_auth_by_key_id");
        assert!(got.retry_after_secs >= 1);
        let globex = hash_of(&l, Some("globex.secret"), "10.0.0.1").unwrap();
        assert_eq!(locked(&l, &store, globex, NOW), Ok(None));
        // No key presented, or a key outside the scheme: nothing to count or refuse.
        assert_eq!(hash_of(&l, None, "10.0.0.1"), None);
        assert_eq!(hash_of(&l, Some(""), "10.0.0.1"), None);
        assert_eq!(hash_of(&l, Some("junk"), "10.0.0.1"), None);
        assert_eq!(hash_of(&l, Some(".secret"), "10.0.0.1"), None);
    }

    proptest::proptest! {
        /// A prefix never contains the separator, never exceeds the bound, and is a prefix.
        #[test]
        fn a_prefix_is_a_bounded_head_of_the_key(key in proptest::collection::vec(proptest::num::u8::ANY, 0..100), n in 1usize..70) {
            for rule in [PrefixRule::Separator(b'.'), PrefixRule::Length(n)] {
                if let Some(p) = rule.of(&key) {
                    proptest::prop_assert!(key.starts_with(p) && p.len() < key.len());
                    proptest::prop_assert!(!p.is_empty() && p.len() <= MAX_KEY_ID_PREFIX_BYTES);
                    if let PrefixRule::Separator(sep) = rule {
                        proptest::prop_assert!(!p.contains(&sep));
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// However failures and checks interleave, a key is never refused before `burst`
        /// failures, and always refused right after `burst` failures at one instant.
        #[test]
        fn exactly_n_failures_lock(n in 1u64..30, checks in 0usize..5) {
            let store = MemoryStore::new();
            let l = lockout(n, 3600);
            for _ in 0..n {
                for _ in 0..checks {
                    proptest::prop_assert!(locked(&l, &store, 42, NOW).unwrap().is_none());
                }
                record_failure(&l, &store, 42, NOW);
            }
            proptest::prop_assert!(locked(&l, &store, 42, NOW).unwrap().is_some());
        }
    }
}
