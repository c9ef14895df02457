//! Nested JWT (compact JWE wrapping a JWS): every input is tried both as a decryption-key
//! document (`parse_decryption_keys`, the configuration's private JWKS) and as a token
//! (`decrypt_nested` with the fixtures' keys: dir, A128KW/A256KW, RSA-OAEP, RSA-OAEP-256).
//! Whatever decrypts goes on to the inner JWS verification, as in the filter.
#![no_main]

use std::sync::LazyLock;

use api_guard::jwt::alg::AlgorithmSet;
use api_guard::jwt::jwe::{decrypt_nested, is_jwe, parse_decryption_keys, DecryptionKeys};
use api_guard::jwt::keys::{parse_jwks_bytes, JwksMode, KeySet};
use api_guard::jwt::verify::{verify_jws, TokenRules};
use api_guard::time::UnixTime;
use libfuzzer_sys::fuzz_target;

/// The fixtures' decryption keys and the inner token's signing key, copied from
/// filter/src/jwt/testdata/jwe.json so the seeds (tokens minted by jwcrypto) keep decrypting.
static DECRYPTION: LazyLock<DecryptionKeys> = LazyLock::new(|| {
    let doc = serde_json::from_slice(include_bytes!("../keys/jwe-decryption.json"))
        .expect("fuzz/keys/jwe-decryption.json is JSON (harness bug, not a finding)");
    parse_decryption_keys(&doc)
        .unwrap_or_else(|_| panic!("fuzz/keys/jwe-decryption.json must compile (harness bug)"))
});

static SIGNING: LazyLock<KeySet> = LazyLock::new(|| {
    parse_jwks_bytes(
        include_bytes!("../keys/jwe-signing.json"),
        JwksMode::Strict,
        AlgorithmSet::all(),
    )
    .expect("fuzz/keys/jwe-signing.json must compile (harness bug, not a finding)")
});

static RULES: LazyLock<TokenRules> = LazyLock::new(|| TokenRules {
    issuer: "https://issuer.test".into(),
    audiences: vec!["api".into()],
    algorithms: AlgorithmSet::all(),
    clock_skew_seconds: 60,
    max_lifetime_seconds: None,
    require_exp: true,
    required_claims: vec![],
    kid_required: false,
    max_token_bytes: 8192,
});

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(keys) = parse_decryption_keys(&doc) {
            assert!(!keys.is_empty());
            let _ = keys.kids().count();
        }
    }
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = is_jwe(token);
    if let Ok(inner) = decrypt_nested(token, &DECRYPTION, 8192) {
        // The contract: what comes out is a compact JWS (three segments).
        assert_eq!(inner.split('.').count(), 3);
        let _ = verify_jws(&inner, &RULES, &SIGNING, UnixTime(1_800_000_000));
    }
});
