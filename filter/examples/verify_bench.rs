//! Cold JWS verification cost, one algorithm at a time: `verify_jws` on the fixture tokens
//! (tools/jwt-fixtures, PyJWT-minted) with the fixture JWKS, as the request path runs it on a
//! verified-token cache miss. Built natively or for wasm32-wasip1 and run under node's V8 (the
//! engine Envoy embeds): `make bench-verify`.
//!
//! Prints one line per algorithm: `<alg> <microseconds per verification> (<iterations>)`, and
//! for RS256, ES256 and EdDSA also jwt-simple's own verification of the same token with the same key
//! (the backend api-guard used before `jwt/rsa_pkcs1.rs`, `jwt/ec_p256.rs` and
//! `jwt/ed25519.rs`), measured in the
//! same run.

// serde_json::Value indexing yields Null for a missing member; it never panics.
#![allow(clippy::indexing_slicing)]

use std::time::Instant;

use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike, RS256PublicKey,
    RSAPublicKeyLike,
};

use api_guard::jwt::alg::AlgorithmSet;
use api_guard::jwt::keys::{parse_jwks, JwksMode};
use api_guard::jwt::verify::{signature_only_options, verify_jws, TokenRules};
use api_guard::time::UnixTime;

const FIXTURE: &str = include_str!("../src/jwt/testdata/jws.json");

fn main() {
    let Ok(fixture) = serde_json::from_str::<serde_json::Value>(FIXTURE) else {
        eprintln!("fixture is not JSON");
        std::process::exit(1);
    };
    let Ok(keys) = parse_jwks(&fixture["jwks"], JwksMode::Strict, AlgorithmSet::all()) else {
        eprintln!("fixture JWKS does not compile");
        std::process::exit(1);
    };
    let rules = TokenRules {
        issuer: "https://issuer.test".into(),
        audiences: vec!["api".into()],
        algorithms: AlgorithmSet::all(),
        clock_skew_seconds: 60,
        max_lifetime_seconds: None,
        require_exp: true,
        required_claims: vec![],
        kid_required: true,
        max_token_bytes: 8192,
    };
    let now = UnixTime(fixture["now"].as_i64().unwrap_or(1_800_000_000));
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let time = |label: &str, f: &dyn Fn()| {
        for _ in 0..iterations / 10 + 1 {
            f();
        }
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!("{label} {per:.1} ({iterations})");
    };
    // jwt-simple's RS256 on the same key and token, for the side-by-side ratio.
    let rsa = fixture["jwks"]["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == "rsa-1"))
        .cloned()
        .unwrap_or_default();
    let b64 = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| {
                use base64_decode as d;
                d(s)
            })
            .unwrap_or_default()
    };
    let Ok(simple) = RS256PublicKey::from_components(&b64(&rsa["n"]), &b64(&rsa["e"])) else {
        eprintln!("jwt-simple refuses the fixture RSA key");
        std::process::exit(1);
    };
    let rs256 = fixture["tokens"]["valid_rs256"]
        .as_str()
        .unwrap_or_default();
    // As `jwt::verify` calls it: jwt-simple's clock and claim checks neutralized.
    let options = || signature_only_options(now);
    if let Err(e) =
        simple.verify_token::<jwt_simple::prelude::NoCustomClaims>(rs256, Some(options()))
    {
        eprintln!("jwt-simple refuses the fixture RS256 token: {e}");
        std::process::exit(1);
    }
    time("RS256-jwt-simple", &|| {
        let _ = std::hint::black_box(simple.verify_token::<jwt_simple::prelude::NoCustomClaims>(
            std::hint::black_box(rs256),
            Some(options()),
        ));
    });
    // jwt-simple's ES256 on the fixture's P-256 key and token.
    let ec = fixture["jwks"]["keys"]
        .as_array()
        .and_then(|keys| {
            keys.iter()
                .find(|k| k["kty"] == "EC" && k["crv"] == "P-256")
        })
        .cloned()
        .unwrap_or_default();
    let mut point = vec![0x04];
    point.extend(b64(&ec["x"]));
    point.extend(b64(&ec["y"]));
    let Ok(simple_es) = ES256PublicKey::from_bytes(&point) else {
        eprintln!("jwt-simple refuses the fixture P-256 key");
        std::process::exit(1);
    };
    let es256 = fixture["tokens"]["valid_es256"]
        .as_str()
        .unwrap_or_default();
    if let Err(e) =
        simple_es.verify_token::<jwt_simple::prelude::NoCustomClaims>(es256, Some(options()))
    {
        eprintln!("jwt-simple refuses the fixture ES256 token: {e}");
        std::process::exit(1);
    }
    time("ES256-jwt-simple", &|| {
        let _ = std::hint::black_box(
            simple_es.verify_token::<jwt_simple::prelude::NoCustomClaims>(
                std::hint::black_box(es256),
                Some(options()),
            ),
        );
    });
    // What a P-256 key costs once, when its JWKS is compiled: the fixed-base table.
    time("ES256-prepare-key", &|| {
        let _ = std::hint::black_box(api_guard::jwt::ec_p256::Es256Key::from_sec1(
            std::hint::black_box(&point),
        ));
    });
    // jwt-simple's EdDSA (ed25519-compact) on the fixture's Ed25519 key and token.
    let ed = fixture["jwks"]["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kty"] == "OKP"))
        .cloned()
        .unwrap_or_default();
    let ed_x = b64(&ed["x"]);
    let Ok(simple_ed) = Ed25519PublicKey::from_bytes(&ed_x) else {
        eprintln!("jwt-simple refuses the fixture Ed25519 key");
        std::process::exit(1);
    };
    let eddsa = fixture["tokens"]["valid_eddsa"]
        .as_str()
        .unwrap_or_default();
    if let Err(e) =
        simple_ed.verify_token::<jwt_simple::prelude::NoCustomClaims>(eddsa, Some(options()))
    {
        eprintln!("jwt-simple refuses the fixture EdDSA token: {e}");
        std::process::exit(1);
    }
    time("EdDSA-jwt-simple", &|| {
        let _ = std::hint::black_box(
            simple_ed.verify_token::<jwt_simple::prelude::NoCustomClaims>(
                std::hint::black_box(eddsa),
                Some(options()),
            ),
        );
    });
    // What an Ed25519 key costs once, when its JWKS is compiled: its table.
    time("EdDSA-prepare-key", &|| {
        let _ = std::hint::black_box(api_guard::jwt::ed25519::Ed25519Key::from_bytes(
            std::hint::black_box(&ed_x),
        ));
    });
    for (alg, name) in [
        ("RS256", "valid_rs256"),
        ("PS256", "valid_ps256"),
        ("ES256", "valid_es256"),
        ("EdDSA", "valid_eddsa"),
        ("HS256", "valid_hs256"),
    ] {
        let Some(token) = fixture["tokens"][name].as_str() else {
            eprintln!("no fixture token {name}");
            std::process::exit(1);
        };
        if let Err(p) = verify_jws(token, &rules, &keys, now) {
            eprintln!("{alg}: fixture token refused: {p:?}");
            std::process::exit(1);
        }
        time(alg, &|| {
            let _ =
                std::hint::black_box(verify_jws(std::hint::black_box(token), &rules, &keys, now));
        });
    }
}

/// Base64url without padding (the JWK encoding), for the fixture key's components.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
