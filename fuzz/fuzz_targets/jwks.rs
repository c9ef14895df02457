//! JWKS documents: inline configuration (Strict) and what a remote issuer serves (Lenient,
//! the untrusted one: fetched over the network on a timer), with every algorithm allowed and
//! with a narrow set (keys whose algorithms are all excluded must be handled, not assumed).
#![no_main]

use api_guard::jwt::alg::{Algorithm, AlgorithmSet};
use api_guard::jwt::keys::{parse_jwks_bytes, JwksMode, MAX_KEYS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let narrow = AlgorithmSet::default()
        .with(Algorithm::RS256)
        .with(Algorithm::ES256);
    for mode in [JwksMode::Lenient, JwksMode::Strict] {
        for allowed in [AlgorithmSet::all(), narrow] {
            if let Ok(keys) = parse_jwks_bytes(data, mode, allowed) {
                // What the parser promises: bounded, within the allowed algorithms, and a
                // remote (Lenient) document is an error rather than an empty key set.
                assert!(keys.len() <= MAX_KEYS * Algorithm::ALL.len());
                assert!(keys.algorithms().iter().all(|a| allowed.contains(a)));
                assert!(keys.iter().all(|k| allowed.contains(k.alg)));
                assert!(mode == JwksMode::Strict || !keys.is_empty());
                let _ = keys.kids().count();
            }
        }
    }
});
