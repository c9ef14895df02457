//! Compact JWS: the strict header parser and the whole verification (structure, alg and kid
//! policy, key lookup, signature, claims) against a fixed key set of every family, with two
//! rule sets (kid required and strict lifetime; kid optional and lenient). The seeds are
//! PyJWT-minted tokens for these keys, so valid signatures reach the claim checks and, past
//! them, the claim helpers a policy applies. Tokens are bytes from a request header: anything.
#![no_main]

use std::sync::LazyLock;

use api_guard::jwt::alg::AlgorithmSet;
use api_guard::jwt::claims::{claim_header_value, has_scopes, ClaimRule};
use api_guard::jwt::compact::parse_jws_header;
use api_guard::jwt::keys::{parse_jwks_bytes, JwksMode, KeySet};
use api_guard::jwt::verify::{verify_jws, TokenRules};
use api_guard::time::UnixTime;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// The public JWKS of tools/jwt-fixtures (RSA, pinned RSA, P-256, P-384, Ed25519, HMAC),
/// copied so the seeds and keys stay a matching pair whatever the fixtures become.
static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    parse_jwks_bytes(
        include_bytes!("../keys/jws-verification.json"),
        JwksMode::Strict,
        AlgorithmSet::all(),
    )
    .expect("fuzz/keys/jws-verification.json must compile (harness bug, not a finding)")
});

static RULES: LazyLock<[TokenRules; 2]> = LazyLock::new(|| {
    let base = TokenRules {
        issuer: "https://issuer.test".into(),
        audiences: vec!["api".into()],
        algorithms: AlgorithmSet::all(),
        clock_skew_seconds: 60,
        max_lifetime_seconds: None,
        require_exp: true,
        required_claims: vec!["sub".into()],
        kid_required: true,
        max_token_bytes: 8192,
    };
    // The configuration's extremes (config/jwt.rs bounds them: skew <= 600 s, lifetime <= 1 y,
    // token size 256..=65536).
    let lenient = TokenRules {
        audiences: vec!["other".into(), "api".into()],
        clock_skew_seconds: 600,
        max_lifetime_seconds: Some(31_536_000),
        max_token_bytes: 65_536,
        require_exp: false,
        required_claims: vec![],
        kid_required: false,
        ..base.clone()
    };
    [base, lenient]
});

static CLAIM_RULES: LazyLock<Vec<ClaimRule>> = LazyLock::new(|| {
    vec![
        ClaimRule::Equals {
            claim: "sub".into(),
            value: json!("user-1"),
        },
        ClaimRule::OneOf {
            claim: "aud".into(),
            values: vec![json!("api"), json!(["api"])],
        },
        ClaimRule::Contains {
            claim: "scope".into(),
            value: json!("read"),
        },
        ClaimRule::Contains {
            claim: "roles".into(),
            value: json!("admin"),
        },
    ]
});

// The fixtures' fixed clock: valid tokens were minted for it.
const NOW: UnixTime = UnixTime(1_800_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_jws_header(token, 8192);
    let _ = parse_jws_header(token, 64);
    for rules in RULES.iter() {
        if let Ok(verified) = verify_jws(token, rules, &KEYS, NOW) {
            // Verification starts with the header parser: it cannot accept what that refused.
            assert!(parse_jws_header(token, rules.max_token_bytes).is_ok());
            let _ = has_scopes(&verified, &["read".into(), "write".into()]);
            for rule in CLAIM_RULES.iter() {
                let _ = rule.holds(&verified);
            }
            for claim in verified.claims.keys() {
                let _ = claim_header_value(&verified, claim);
            }
        }
    }
});
