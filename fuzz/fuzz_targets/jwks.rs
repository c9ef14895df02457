//! JWKS documents: inline configuration (Strict) and what a remote issuer serves (Lenient,
//! the untrusted one: fetched over the network on a timer; symmetric keys refused unless the
//! provider allows them), with every algorithm allowed and with a narrow set (keys whose
//! algorithms are all excluded must be handled, not assumed).
#![no_main]

use api_guard::jwt::alg::{Algorithm, AlgorithmSet};
use api_guard::jwt::keys::{parse_jwks_bytes, JwksMode, MAX_KEYS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let narrow = AlgorithmSet::default()
        .with(Algorithm::RS256)
        .with(Algorithm::ES256);
    let symmetric = JwksMode::Lenient {
        symmetric_keys: true,
    };
    for mode in [JwksMode::REMOTE, symmetric, JwksMode::Strict] {
        for allowed in [AlgorithmSet::all(), narrow] {
            if let Ok(keys) = parse_jwks_bytes(data, mode, allowed) {
                // What the parser promises: bounded, within the allowed algorithms, and a
                // remote (Lenient) document is an error rather than an empty key set.
                assert!(keys.len() <= MAX_KEYS * Algorithm::ALL.len());
                assert!(keys.algorithms().iter().all(|a| allowed.contains(a)));
                assert!(keys.iter().all(|k| allowed.contains(k.alg)));
                assert!(mode == JwksMode::Strict || !keys.is_empty());
                // A remote document never yields a symmetric key unless the provider allows it.
                if mode == JwksMode::REMOTE {
                    assert!(keys.algorithms().iter().all(|a| !a.name().starts_with("HS")));
                }
                let _ = keys.kids().count();
            }
        }
    }
});
