//! Verifying one compact JWS against a provider's rules and keys.
//!
//! jwt-simple checks the signature; every claim check is ours, on the payload as the issuer
//! wrote it, so each failure maps to one precise [`TokenProblem`] and the numeric dates are
//! compared without jwt-simple's fixed-point time (which silently wraps dates past 2106).

use jwt_simple::prelude::{Duration, UnixTimeStamp, VerificationOptions};
use jwt_simple::JWTError;
use serde_json::{Map, Value};

use super::alg::AlgorithmSet;
use super::compact::{decode_segment, parse_json_object, parse_jws_header, split_jws};
use super::keys::{KeySet, VerifyingKey};
use super::problem::TokenProblem;
use crate::time::UnixTime;

/// What a provider requires of a token (compiled from `jwt_providers.<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: AlgorithmSet,
    pub clock_skew_seconds: u64,
    pub max_lifetime_seconds: Option<u64>,
    pub require_exp: bool,
    pub required_claims: Vec<String>,
    pub kid_required: bool,
    pub max_token_bytes: usize,
}

/// A token whose signature and claims passed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub subject: Option<String>,
    pub jti: Option<String>,
    /// `exp` in whole seconds (fractions dropped: the token expires no later than that).
    pub expires_at: Option<i64>,
    /// `scope` (space-delimited string), else `scp` (array of strings, or a space-delimited
    /// string as some issuers send it).
    pub scopes: Vec<String>,
    /// Every claim of the payload, as the issuer wrote it.
    pub claims: Map<String, Value>,
}

/// Verifies a compact JWS. Order: size and structure, `alg` allowed, kid policy, key lookup,
/// signature, then the claims (see the module docs of each step for why).
pub fn verify_jws(
    token: &str,
    rules: &TokenRules,
    keys: &KeySet,
    now: UnixTime,
) -> Result<VerifiedToken, TokenProblem> {
    let header = parse_jws_header(token, rules.max_token_bytes)?;
    if !rules.algorithms.contains(header.alg) {
        return Err(TokenProblem::AlgorithmNotAllowed);
    }
    let kid = header.kid.as_deref();
    if kid.is_none() && rules.kid_required {
        return Err(TokenProblem::KidMissing);
    }
    if let Some(kid) = kid {
        if !keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
            // May make the caller refetch the JWKS (key rotation).
            return Err(TokenProblem::UnknownKid);
        }
    }
    // With a kid: the keys of that kid and this alg. Without: every key of this alg (kid
    // optional is only configurable with a single JWK).
    let mut candidates = keys
        .iter()
        .filter(|k| k.alg == header.alg && (kid.is_none() || k.kid.as_deref() == kid))
        .peekable();
    if candidates.peek().is_none() {
        return Err(TokenProblem::NoMatchingKey);
    }
    let mut outcome = TokenProblem::BadSignature;
    let verified = candidates.any(|key| match check_signature(key, token, now) {
        Ok(()) => true,
        Err(p) => {
            // A structural problem is the token's, whatever the key: report it over a bad
            // signature from another candidate.
            if p == TokenProblem::Malformed {
                outcome = p;
            }
            false
        }
    });
    if !verified {
        return Err(outcome);
    }
    let claims = decode_payload(token).ok_or(TokenProblem::Malformed)?;
    check_claims(claims, rules, now)
}

/// jwt-simple's options as api-guard verifies with them: only the signature decides. Its claim
/// checks are neutralized: `accept_future` skips `nbf`/`iat`, and a tolerance equal to `now`
/// makes its expiry window start at the epoch. Its clock is never read (`artificial_time`).
pub fn signature_only_options(now: UnixTime) -> VerificationOptions {
    let secs = u64::try_from(now.0).unwrap_or(0);
    VerificationOptions {
        accept_future: true,
        artificial_time: Some(UnixTimeStamp::from_secs(secs)),
        time_tolerance: Some(Duration::from_secs(secs)),
        max_token_length: None,
        // Our size limit was checked first; the header is part of the token.
        max_header_length: Some(usize::MAX),
        ..VerificationOptions::default()
    }
}

/// jwt-simple verifies the signature and decodes its own view of the claims, which we discard
/// ([`signature_only_options`]).
fn check_signature(key: &VerifyingKey, token: &str, now: UnixTime) -> Result<(), TokenProblem> {
    key.verify(token, signature_only_options(now))
        .map(|_| ())
        .map_err(|e| {
            match e.downcast_ref::<JWTError>() {
                Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
                    TokenProblem::BadSignature
                }
                Some(_) => TokenProblem::Malformed,
                // serde_json / base64 errors: a payload jwt-simple cannot read (after the
                // signature matched, or a header member of the wrong type).
                None if e.is::<serde_json::Error>() => TokenProblem::Malformed,
                None => TokenProblem::BadSignature,
            }
        })
}

fn decode_payload(token: &str) -> Option<Map<String, Value>> {
    let (_, payload, _) = split_jws(token)?;
    parse_json_object(&decode_segment(payload)?)
}

/// A NumericDate (RFC 7519 section 2): a JSON number of seconds, possibly fractional. Rounded
/// in the direction that makes the check stricter (`up` for nbf/iat, down for exp).
fn numeric_date(v: &Value, up: bool) -> Result<i64, TokenProblem> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    if v.is_u64() {
        return Ok(i64::MAX); // beyond i64: far future
    }
    match v.as_f64() {
        Some(f) if f.is_finite() => {
            let r = if up { f.ceil() } else { f.floor() };
            // `as` saturates for out-of-range floats, which is the far past/future we want.
            Ok(r as i64)
        }
        _ => Err(TokenProblem::Malformed),
    }
}

fn check_claims(
    claims: Map<String, Value>,
    rules: &TokenRules,
    now: UnixTime,
) -> Result<VerifiedToken, TokenProblem> {
    let now = i128::from(now.0);
    let skew = i128::from(rules.clock_skew_seconds);
    let date = |name: &str, up: bool| -> Result<Option<i64>, TokenProblem> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => numeric_date(v, up).map(Some),
        }
    };
    let exp = date("exp", false)?;
    let nbf = date("nbf", true)?;
    let iat = date("iat", true)?;

    match exp {
        None if rules.require_exp => return Err(TokenProblem::MissingExpiry),
        Some(exp) if now > i128::from(exp) + skew => return Err(TokenProblem::Expired),
        _ => {}
    }
    if nbf.is_some_and(|nbf| i128::from(nbf) > now + skew) {
        return Err(TokenProblem::NotYetValid);
    }
    if iat.is_some_and(|iat| i128::from(iat) > now + skew) {
        return Err(TokenProblem::IssuedInFuture);
    }
    if let Some(max) = rules.max_lifetime_seconds {
        let iat = iat.ok_or(TokenProblem::MissingClaim)?;
        // No exp means an unbounded lifetime.
        let exp = exp.ok_or(TokenProblem::LifetimeTooLong)?;
        if i128::from(exp) - i128::from(iat) > i128::from(max) {
            return Err(TokenProblem::LifetimeTooLong);
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer.as_str()) {
        return Err(TokenProblem::WrongIssuer);
    }
    let ours = |a: &Value| {
        a.as_str()
            .is_some_and(|a| rules.audiences.iter().any(|o| o == a))
    };
    let aud_ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(ours),
        Some(a) => ours(a),
        None => false,
    };
    if !aud_ok {
        return Err(TokenProblem::WrongAudience);
    }
    if rules
        .required_claims
        .iter()
        .any(|c| matches!(claims.get(c), None | Some(Value::Null)))
    {
        return Err(TokenProblem::MissingClaim);
    }

    let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let words = |s: &str| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => words(s),
        (_, Some(Value::Array(list))) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        (_, Some(Value::String(s))) => words(s),
        _ => Vec::new(),
    };
    Ok(VerifiedToken {
        subject: string("sub"),
        jti: string("jti"),
        expires_at: exp,
        scopes,
        claims,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jwt::alg::Algorithm;
    use crate::jwt::keys::{parse_jwks, JwksMode};
    use serde_json::json;

    pub(crate) const FIXTURE: &str = include_str!("testdata/jws.json");
    pub(crate) const NOW: UnixTime = UnixTime(1_800_000_000);

    pub(crate) fn fixture() -> Value {
        serde_json::from_str(FIXTURE).unwrap()
    }

    pub(crate) fn token(name: &str) -> String {
        fixture()["tokens"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no fixture token {name}"))
            .to_owned()
    }

    /// The key set of the given kids (all of them for an empty list).
    pub(crate) fn keys(kids: &[&str]) -> KeySet {
        let doc = fixture();
        let list: Vec<Value> = doc["jwks"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| kids.is_empty() || kids.contains(&k["kid"].as_str().unwrap()))
            .cloned()
            .collect();
        parse_jwks(
            &json!({ "keys": list }),
            JwksMode::Strict,
            AlgorithmSet::all(),
        )
        .unwrap()
    }

    pub(crate) fn rules() -> TokenRules {
        TokenRules {
            issuer: "https://issuer.test".into(),
            audiences: vec!["api".into()],
            algorithms: AlgorithmSet::all(),
            clock_skew_seconds: 60,
            max_lifetime_seconds: None,
            require_exp: true,
            required_claims: vec![],
            kid_required: true,
            max_token_bytes: 8192,
        }
    }

    type Tweak = fn(&mut TokenRules);
    const NONE: Tweak = |_| {};
    const KID_OPTIONAL: Tweak = |r| r.kid_required = false;
    const ES256_ONLY: Tweak = |r| r.algorithms = AlgorithmSet::EMPTY.with(Algorithm::ES256);
    const DAY_LIFETIME: Tweak = |r| r.max_lifetime_seconds = Some(86_400);
    const EXP_OPTIONAL: Tweak = |r| r.require_exp = false;
    const NEED_SUB: Tweak = |r| r.required_claims = vec!["sub".into()];
    const BIG_TOKENS: Tweak = |r| r.max_token_bytes = 16_384;
    const TWO_AUDIENCES: Tweak = |r| r.audiences = vec!["web".into(), "api".into()];
    const NO_SKEW: Tweak = |r| r.clock_skew_seconds = 0;

    /// The attack/edge table. Every token is minted by tools/jwt-fixtures/mint_jws.py (PyJWT),
    /// never by the library under test. Columns: fixture token, rules tweak, key set (kids; empty
    /// = the whole fixture JWKS), expected outcome, why.
    #[test]
    fn attack_table() {
        use TokenProblem::*;
        let ok = Ok(());
        let all: &[&str] = &[];
        type Case = (
            &'static str,
            Tweak,
            &'static [&'static str],
            Result<(), TokenProblem>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            // Every algorithm, valid (interoperability with an independent implementation).
            ("valid_rs256", NONE, all, ok, "RS256"),
            ("valid_rs384", NONE, all, ok, "RS384"),
            ("valid_rs512", NONE, all, ok, "RS512"),
            ("valid_ps256", NONE, all, ok, "PS256"),
            ("valid_ps384", NONE, all, ok, "PS384"),
            ("valid_ps512", NONE, all, ok, "PS512"),
            ("valid_es256", NONE, all, ok, "ES256"),
            ("valid_es384", NONE, all, ok, "ES384"),
            ("valid_eddsa", NONE, all, ok, "EdDSA"),
            ("valid_hs256", NONE, all, ok, "HS256"),
            ("valid_hs384", NONE, all, ok, "HS384"),
            ("valid_hs512", NONE, all, ok, "HS512"),
            (
                "valid_typ_at_jwt",
                NONE,
                all,
                ok,
                "explicitly typed access token",
            ),
            ("valid_no_typ", NONE, all, ok, "typ is optional"),
            (
                "valid_pinned_rs256",
                NONE,
                all,
                ok,
                "key pinned to RS256 verifies RS256",
            ),
            // alg none, in every spelling, even with a signature attached.
            ("alg_none", NONE, all, Err(AlgorithmNotAllowed), "none"),
            ("alg_None", NONE, all, Err(AlgorithmNotAllowed), "None"),
            ("alg_NONE", NONE, all, Err(AlgorithmNotAllowed), "NONE"),
            ("alg_nOnE", NONE, all, Err(AlgorithmNotAllowed), "nOnE"),
            (
                "alg_none_empty_sig",
                NONE,
                all,
                Err(Malformed),
                "classic unsecured JWT: empty signature",
            ),
            (
                "alg_lowercase_rs256",
                NONE,
                all,
                Err(AlgorithmNotAllowed),
                "alg is case-sensitive",
            ),
            (
                "alg_es512",
                NONE,
                all,
                Err(AlgorithmNotAllowed),
                "unsupported algorithm",
            ),
            ("alg_missing", NONE, all, Err(Malformed), "no alg"),
            (
                "alg_not_string",
                NONE,
                all,
                Err(Malformed),
                "alg as an array",
            ),
            (
                "valid_rs256",
                ES256_ONLY,
                all,
                Err(AlgorithmNotAllowed),
                "provider allows ES256 only",
            ),
            // Key confusion: an RSA public key used as an HMAC secret.
            (
                "confusion_hs256_rsa_pem",
                NONE,
                all,
                Err(NoMatchingKey),
                "kid of the RSA key, alg HS256",
            ),
            (
                "confusion_hs256_rsa_pem",
                NONE,
                &["rsa-1"],
                Err(NoMatchingKey),
                "RSA-only set",
            ),
            (
                "confusion_hs256_rsa_pem_no_kid",
                KID_OPTIONAL,
                &["rsa-1"],
                Err(NoMatchingKey),
                "no kid, RSA-only set",
            ),
            (
                "hs256_wrong_secret",
                NONE,
                all,
                Err(BadSignature),
                "HMAC with another secret",
            ),
            (
                "valid_rs256",
                NONE,
                &["ec-256"],
                Err(UnknownKid),
                "RS256 token, ES256-only set",
            ),
            (
                "valid_no_kid",
                KID_OPTIONAL,
                &["ec-256"],
                Err(NoMatchingKey),
                "RS256 without kid, ES256-only set",
            ),
            // kid tricks.
            (
                "kid_unknown",
                NONE,
                all,
                Err(UnknownKid),
                "unknown kid (may trigger a refetch)",
            ),
            (
                "kid_of_es256_key",
                NONE,
                all,
                Err(NoMatchingKey),
                "kid of a key of another algorithm",
            ),
            (
                "kid_path_traversal",
                NONE,
                all,
                Err(UnknownKid),
                "kid is an opaque string, never a path",
            ),
            ("kid_empty", NONE, all, Err(UnknownKid), "empty kid"),
            (
                "kid_not_string",
                NONE,
                all,
                Err(Malformed),
                "kid as a number",
            ),
            (
                "kid_pinned_ps256",
                NONE,
                all,
                Err(NoMatchingKey),
                "key pinned to RS256, token PS256",
            ),
            ("valid_no_kid", NONE, all, Err(KidMissing), "kid required"),
            (
                "valid_no_kid",
                KID_OPTIONAL,
                &["rsa-1"],
                ok,
                "kid optional with a single key",
            ),
            (
                "es256_no_kid",
                KID_OPTIONAL,
                &["ec-256"],
                ok,
                "kid optional, ES256",
            ),
            (
                "valid_rs256",
                KID_OPTIONAL,
                all,
                ok,
                "a kid is still honoured when optional",
            ),
            // Signatures.
            (
                "spliced_signature",
                NONE,
                all,
                Err(BadSignature),
                "signature of another token",
            ),
            (
                "tampered_payload",
                NONE,
                all,
                Err(BadSignature),
                "payload changed after signing",
            ),
            (
                "attacker_key_same_kid",
                NONE,
                all,
                Err(BadSignature),
                "attacker's key, our kid",
            ),
            (
                "es256_sig_truncated",
                NONE,
                all,
                Err(BadSignature),
                "63-byte ECDSA signature",
            ),
            // Header parameters we refuse.
            (
                "crit_b64",
                NONE,
                all,
                Err(UnknownCritical),
                "crit b64 (unencoded payload)",
            ),
            (
                "crit_empty",
                NONE,
                all,
                Err(UnknownCritical),
                "crit present at all",
            ),
            (
                "embedded_jwk",
                NONE,
                all,
                Err(EmbeddedKey),
                "self-signed with an embedded jwk",
            ),
            ("embedded_jku", NONE, all, Err(EmbeddedKey), "jku"),
            ("embedded_x5u", NONE, all, Err(EmbeddedKey), "x5u"),
            ("embedded_x5c", NONE, all, Err(EmbeddedKey), "x5c"),
            (
                "typ_jose",
                NONE,
                all,
                Err(Malformed),
                "typ says it is not a JWT",
            ),
            (
                "header_duplicate_alg",
                NONE,
                all,
                Err(Malformed),
                "duplicate alg member",
            ),
            // Compact serialization.
            (
                "padding_signature",
                NONE,
                all,
                Err(Malformed),
                "'=' padding on the signature",
            ),
            (
                "padding_header",
                NONE,
                all,
                Err(Malformed),
                "'=' padding on the header",
            ),
            ("two_segments", NONE, all, Err(Malformed), "truncated"),
            ("four_segments", NONE, all, Err(Malformed), "four segments"),
            (
                "empty_signature",
                NONE,
                all,
                Err(Malformed),
                "empty signature",
            ),
            ("empty_payload", NONE, all, Err(Malformed), "empty payload"),
            (
                "standard_base64_chars",
                NONE,
                all,
                Err(Malformed),
                "'+' and '/'",
            ),
            (
                "whitespace_in_token",
                NONE,
                all,
                Err(Malformed),
                "space inside",
            ),
            ("oversize", NONE, all, Err(TooLarge), "over 8 KiB"),
            (
                "oversize",
                BIG_TOKENS,
                all,
                ok,
                "the same token under a larger limit",
            ),
            (
                "header_not_json",
                NONE,
                all,
                Err(Malformed),
                "header not JSON",
            ),
            (
                "header_json_array",
                NONE,
                all,
                Err(Malformed),
                "header a JSON array",
            ),
            (
                "payload_not_json",
                NONE,
                all,
                Err(Malformed),
                "validly signed non-JSON payload",
            ),
            (
                "payload_json_array",
                NONE,
                all,
                Err(Malformed),
                "validly signed array payload",
            ),
            // Claims.
            ("expired", NONE, all, Err(Expired), "expired an hour ago"),
            (
                "expired_within_skew",
                NONE,
                all,
                ok,
                "expired 30 s ago, skew 60 s",
            ),
            (
                "expired_within_skew",
                NO_SKEW,
                all,
                Err(Expired),
                "expired 30 s ago, no skew",
            ),
            (
                "expired_at_skew_edge",
                NONE,
                all,
                ok,
                "now == exp + skew still passes",
            ),
            (
                "expired_just_past_skew",
                NONE,
                all,
                Err(Expired),
                "now == exp + skew + 1",
            ),
            ("nbf_future", NONE, all, Err(NotYetValid), "nbf in an hour"),
            ("nbf_within_skew", NONE, all, ok, "nbf in 30 s, skew 60 s"),
            (
                "nbf_past_2106",
                NONE,
                all,
                Err(NotYetValid),
                "nbf beyond 2^32 s must not wrap",
            ),
            (
                "iat_future",
                NONE,
                all,
                Err(IssuedInFuture),
                "iat in an hour",
            ),
            ("wrong_iss", NONE, all, Err(WrongIssuer), "other issuer"),
            (
                "iss_case",
                NONE,
                all,
                Err(WrongIssuer),
                "issuer compared exactly",
            ),
            ("missing_iss", NONE, all, Err(WrongIssuer), "no iss"),
            ("wrong_aud", NONE, all, Err(WrongAudience), "other audience"),
            (
                "aud_array_with_ours",
                NONE,
                all,
                ok,
                "aud array containing ours",
            ),
            (
                "aud_array_without_ours",
                NONE,
                all,
                Err(WrongAudience),
                "aud array without ours",
            ),
            (
                "aud_array_with_ours",
                TWO_AUDIENCES,
                all,
                ok,
                "any shared audience",
            ),
            ("missing_aud", NONE, all, Err(WrongAudience), "no aud"),
            ("missing_exp", NONE, all, Err(MissingExpiry), "exp required"),
            ("missing_exp", EXP_OPTIONAL, all, ok, "exp optional"),
            (
                "missing_exp",
                |r| {
                    r.require_exp = false;
                    r.max_lifetime_seconds = Some(60)
                },
                all,
                Err(LifetimeTooLong),
                "no exp is an unbounded lifetime",
            ),
            (
                "long_lifetime",
                DAY_LIFETIME,
                all,
                Err(LifetimeTooLong),
                "two-day token, one-day limit",
            ),
            ("short_lifetime", DAY_LIFETIME, all, ok, "one-hour token"),
            (
                "short_lifetime_no_iat",
                DAY_LIFETIME,
                all,
                Err(MissingClaim),
                "lifetime unknowable without iat",
            ),
            (
                "short_lifetime_no_iat",
                NONE,
                all,
                ok,
                "iat optional without a lifetime limit",
            ),
            (
                "missing_sub",
                NEED_SUB,
                all,
                Err(MissingClaim),
                "required claim missing",
            ),
            ("valid_es256", NEED_SUB, all, ok, "required claim present"),
            ("exp_string", NONE, all, Err(Malformed), "exp as a string"),
            ("exp_float", NONE, all, ok, "fractional NumericDate"),
        ];
        assert!(cases.len() >= 40);
        for (name, tweak, kids, want, why) in cases {
            let mut r = rules();
            tweak(&mut r);
            let got = verify_jws(&token(name), &r, &keys(kids), NOW).map(|_| ());
            assert_eq!(got, want, "{name}: {why}");
        }
    }

    #[test]
    fn fixture_tokens_are_what_their_names_say() {
        // Guard the fixture generator: the padding cases really carry '='.
        assert!(token("padding_header").contains('='));
        assert!(token("padding_signature").ends_with("=="));
        assert!(token("oversize").len() > 8192 && token("oversize").len() <= 16_384);
    }

    #[test]
    fn verified_token_fields() {
        let v = verify_jws(&token("valid_scopes"), &rules(), &keys(&[]), NOW).unwrap();
        assert_eq!(v.subject.as_deref(), Some("user-1"));
        assert_eq!(v.jti.as_deref(), Some("jti-1"));
        assert_eq!(v.expires_at, Some(4_102_444_800));
        assert_eq!(v.scopes, ["read", "write"]);
        assert_eq!(v.claims["tier"], "gold");
        assert_eq!(v.claims["iat"], 1_700_000_000);

        let v = verify_jws(&token("valid_scp_array"), &rules(), &keys(&[]), NOW).unwrap();
        assert_eq!(v.scopes, ["read", "write"]);
        let v = verify_jws(&token("exp_float"), &rules(), &keys(&[]), NOW).unwrap();
        assert_eq!(v.expires_at, Some(4_102_444_800), "fraction dropped");
        assert_eq!(v.claims["exp"], 4_102_444_800.5, "claims kept as written");
    }

    #[test]
    fn every_key_of_the_alg_is_tried_without_kid() {
        // Two P-256 keys without kids in a lenient set; the token verifies with the second.
        let doc = fixture();
        let mut a = doc["jwks"]["keys"][2].clone();
        a.as_object_mut().unwrap().remove("kid");
        let mut other = doc["attacker"]["ec_jwk"].clone();
        other.as_object_mut().unwrap().remove("kid");
        let set = parse_jwks(
            &json!({"keys": [other, a]}),
            JwksMode::REMOTE,
            AlgorithmSet::all(),
        )
        .unwrap();
        let mut r = rules();
        r.kid_required = false;
        assert!(verify_jws(&token("es256_no_kid"), &r, &set, NOW).is_ok());
        assert_eq!(
            verify_jws(&token("es256_no_kid"), &r, &KeySet::empty(), NOW),
            Err(TokenProblem::NoMatchingKey)
        );
    }

    #[test]
    fn numeric_date_table() {
        let cases: Vec<(Value, bool, Result<i64, TokenProblem>)> = vec![
            (json!(5), false, Ok(5)),
            (json!(-5), false, Ok(-5)),
            (json!(5.5), false, Ok(5)),
            (json!(5.5), true, Ok(6)),
            (json!(u64::MAX), false, Ok(i64::MAX)),
            (json!(1e300), true, Ok(i64::MAX)),
            (json!("5"), false, Err(TokenProblem::Malformed)),
            (json!(true), false, Err(TokenProblem::Malformed)),
        ];
        for (v, up, want) in cases {
            assert_eq!(numeric_date(&v, up), want, "{v}");
        }
    }
}
