//! Verification keys, compiled once from a JWKS (RFC 7517) into jwt-simple key objects, or
//! into our own prepared keys for RS256/384/512 (`rsa_pkcs1`), ES256 (`ec_p256`) and
//! EdDSA (`ed25519`).
//!
//! A JWK becomes one [`VerifyingKey`] per algorithm it may verify, so the per-request lookup is
//! a plain scan for `(kid, alg)` and the key object never has to be built on the hot path. The
//! key's type fixes its algorithm family (RSA -> RS*/PS*, EC P-256 -> ES256, ...): a token can
//! never make an RSA public key act as an HMAC secret.

use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, ES256PublicKey, ES384PublicKey,
    Ed25519PublicKey, EdDSAPublicKeyLike, HS256Key, HS384Key, HS512Key, JWTClaims, MACLike,
    NoCustomClaims, PS256PublicKey, PS384PublicKey, PS512PublicKey, RSAPublicKeyLike,
    VerificationOptions,
};
use jwt_simple::JWTError;
use serde_json::{Map, Value};

use super::alg::{Algorithm, AlgorithmSet};
use super::compact::decode_segment;
use super::ec_p256::Es256Key;
use super::ed25519::Ed25519Key;
use super::problem::JwksError;
use super::rsa_pkcs1::{RsaHash, RsaPublicKey};

/// Largest JWKS document accepted (remote documents are bounded before parsing).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most JWKs in one document.
pub const MAX_KEYS: usize = 64;
/// Longest `kid` accepted (kids are compared per request and appear in metrics labels).
pub const MAX_KID_BYTES: usize = 256;

/// Most P-256 keys of one JWKS that get a fixed-base table (`ec_p256`, `TABLE_BYTES` each, in
/// every VM); the others verify through jwt-simple, correct but about 3x slower. Issuers publish
/// one to three signing keys at a time (current, next, previous).
pub const MAX_PREPARED_ES256_KEYS: usize = 4;

/// Most Ed25519 keys of one JWKS that get a fixed-base table (`ed25519`, `TABLE_BYTES` each, in
/// every VM); the others verify through jwt-simple (ed25519-compact), same verdicts, slower.
pub const MAX_PREPARED_ED25519_KEYS: usize = 4;

/// How many more keys of the JWKS being compiled may get a table, per family.
struct TablesLeft {
    es256: usize,
    ed25519: usize,
}

const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;

/// Private JWK members (RFC 7518 section 6.3.2, 6.2.2, RFC 8037). In a verification JWKS they
/// mean someone published or pasted a private key.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

#[derive(Clone)]
enum Inner {
    /// RS256/384/512: our own PKCS#1 v1.5 check on a prepared modulus (`rsa_pkcs1`), several
    /// times faster than jwt-simple's in wasm.
    RsaPkcs1(super::rsa_pkcs1::RsaPublicKey, super::rsa_pkcs1::RsaHash),
    Ps256(PS256PublicKey),
    Ps384(PS384PublicKey),
    Ps512(PS512PublicKey),
    /// ES256 over a fixed-base table prepared when the JWKS is compiled (`ec_p256`).
    Es256Table(Es256Key),
    /// ES256 through jwt-simple: keys beyond [`MAX_PREPARED_ES256_KEYS`].
    Es256(ES256PublicKey),
    Es384(ES384PublicKey),
    /// EdDSA over a fixed-base table of the key prepared when the JWKS is compiled (`ed25519`).
    Ed25519Table(Ed25519Key),
    /// EdDSA through jwt-simple: keys beyond [`MAX_PREPARED_ED25519_KEYS`].
    EdDsa(Ed25519PublicKey),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

/// One key for one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    inner: Inner,
}

impl std::fmt::Debug for VerifyingKey {
    // Never print key material (HMAC secrets especially).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Verifies the signature (and lets jwt-simple decode the standard claims) with the given
    /// options; the caller maps the error.
    pub(crate) fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<(), jwt_simple::Error> {
        let o = Some(options);
        let claims: Result<JWTClaims<NoCustomClaims>, _> = match &self.inner {
            Inner::RsaPkcs1(k, hash) => return verify_pkcs1(k, *hash, token),
            Inner::Es256Table(k) => return verify_es256(k, token),
            Inner::Ed25519Table(k) => return verify_eddsa(k, token),
            Inner::Ps256(k) => k.verify_token(token, o),
            Inner::Ps384(k) => k.verify_token(token, o),
            Inner::Ps512(k) => k.verify_token(token, o),
            Inner::Es256(k) => k.verify_token(token, o),
            Inner::Es384(k) => k.verify_token(token, o),
            Inner::EdDsa(k) => k.verify_token(token, o),
            Inner::Hs256(k) => k.verify_token(token, o),
            Inner::Hs384(k) => k.verify_token(token, o),
            Inner::Hs512(k) => k.verify_token(token, o),
        };
        claims.map(|_| ())
    }
}

/// RS256/384/512 through [`super::rsa_pkcs1`]: the signature over `header.payload` (the caller
/// parsed and checked the header, and decodes the payload itself).
fn verify_pkcs1(key: &RsaPublicKey, hash: RsaHash, token: &str) -> Result<(), jwt_simple::Error> {
    let malformed = || jwt_simple::Error::from(JWTError::CompactEncodingError);
    let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let signature = decode_segment(signature).ok_or_else(malformed)?;
    if key.verify(hash, signed.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(JWTError::InvalidSignature.into())
    }
}

/// ES256 through [`super::ec_p256`], like [`verify_pkcs1`]: the signature over `header.payload`.
fn verify_es256(key: &Es256Key, token: &str) -> Result<(), jwt_simple::Error> {
    let malformed = || jwt_simple::Error::from(JWTError::CompactEncodingError);
    let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let signature = decode_segment(signature).ok_or_else(malformed)?;
    if key.verify(signed.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(JWTError::InvalidSignature.into())
    }
}

/// EdDSA through [`super::ed25519`], like [`verify_es256`].
fn verify_eddsa(key: &Ed25519Key, token: &str) -> Result<(), jwt_simple::Error> {
    let malformed = || jwt_simple::Error::from(JWTError::CompactEncodingError);
    let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let signature = decode_segment(signature).ok_or_else(malformed)?;
    if key.verify(signed.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(JWTError::InvalidSignature.into())
    }
}

/// The compiled keys of one provider: one entry per (JWK, allowed algorithm).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    /// Distinct kids, in document order (precomputed: `kids()` is used for metrics and logs).
    kids: Vec<String>,
}

impl KeySet {
    /// No keys (a remote JWKS not fetched yet).
    pub fn empty() -> KeySet {
        KeySet::default()
    }

    /// Number of (key, algorithm) entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The distinct key ids, in document order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.kids.iter().map(String::as_str)
    }

    /// Every algorithm some key can verify (a provider's default `algorithms`).
    pub fn algorithms(&self) -> AlgorithmSet {
        self.keys.iter().map(|k| k.alg).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter()
    }

    fn push(&mut self, key: VerifyingKey) {
        if let Some(kid) = &key.kid {
            if !self.kids.iter().any(|k| k == kid) {
                self.kids.push(kid.clone());
            }
        }
        self.keys.push(key);
    }
}

/// How forgiving to be with keys we cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    /// Inline configuration: any malformed or unsupported key is an error with its path.
    Strict,
    /// Remote JWKS: skip keys with `use` = `enc`, unknown kty/crv/alg, private members (issuers
    /// publish keys we do not use); error only if the document is not a JWKS, a supported key is
    /// malformed, or no usable key remains.
    ///
    /// Symmetric (`oct`) keys are skipped too unless `symmetric_keys` (the provider's
    /// `remote_symmetric_keys`): a JWKS is served to whoever can reach its endpoint, and an
    /// `oct` key in it is a secret every reader can sign tokens with.
    Lenient { symmetric_keys: bool },
}

impl JwksMode {
    /// A remote JWKS of a provider that does not accept symmetric keys from it (the default).
    pub const REMOTE: JwksMode = JwksMode::Lenient {
        symmetric_keys: false,
    };
}

/// `parse_jwks` on raw bytes: at most [`MAX_JWKS_BYTES`], must be JSON.
pub fn parse_jwks_bytes(
    bytes: &[u8],
    mode: JwksMode,
    allowed: AlgorithmSet,
) -> Result<KeySet, Vec<JwksError>> {
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(vec![JwksError::new(
            "",
            format!("JWKS document larger than {MAX_JWKS_BYTES} bytes"),
        )]);
    }
    // The parser's message is dropped: it may quote the document.
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|_| vec![JwksError::new("", "JWKS document is not valid JSON")])?;
    parse_jwks(&doc, mode, allowed)
}

/// Compiles a JWKS into verification keys. Errors carry JSON paths (`keys[2].n`) and never key
/// material.
pub fn parse_jwks(
    doc: &Value,
    mode: JwksMode,
    allowed: AlgorithmSet,
) -> Result<KeySet, Vec<JwksError>> {
    let Some(list) = doc
        .as_object()
        .and_then(|o| o.get("keys"))
        .and_then(Value::as_array)
    else {
        return Err(vec![JwksError::new(
            "keys",
            "a JWKS is an object with a `keys` array",
        )]);
    };
    if list.len() > MAX_KEYS {
        return Err(vec![JwksError::new(
            "keys",
            format!("at most {MAX_KEYS} keys"),
        )]);
    }
    let mut set = KeySet::default();
    let mut errors = Vec::new();
    let mut tables_left = TablesLeft {
        es256: MAX_PREPARED_ES256_KEYS,
        ed25519: MAX_PREPARED_ED25519_KEYS,
    };
    for (i, jwk) in list.iter().enumerate() {
        let path = format!("keys[{i}]");
        if mode == JwksMode::REMOTE && jwk.get("kty").and_then(Value::as_str) == Some("oct") {
            // Worth a warning: the issuer publishes a secret. The path only, never the key
            // (nor its kid, which the document chose).
            log::warn!(
                "JWKS {path}: symmetric (oct) key skipped: anyone who can read this JWKS could sign tokens with it (set the provider's remote_symmetric_keys to accept it)"
            );
            continue;
        }
        match compile_jwk(jwk, &path, allowed, &mut tables_left) {
            Ok(keys) => {
                if mode == JwksMode::Strict {
                    if let Some(kid) = keys.first().and_then(|k| k.kid.as_deref()) {
                        if set.kids().any(|k| k == kid) {
                            errors.push(JwksError::new(
                                format!("{path}.kid"),
                                "duplicate kid: tokens could not say which key they mean",
                            ));
                            continue;
                        }
                    }
                }
                keys.into_iter().for_each(|k| set.push(k));
            }
            Err(Skip::Unusable(e)) if mode != JwksMode::Strict => {
                log::debug!("JWKS {}: skipped ({})", e.path, e.message);
            }
            Err(Skip::Unusable(e) | Skip::Broken(e)) => errors.push(e),
        }
    }
    if errors.is_empty() && set.is_empty() {
        errors.push(JwksError::new("keys", "no usable verification key"));
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Why a JWK produced no key: `Unusable` keys are skipped in lenient mode (not for us),
/// `Broken` ones are an error in every mode (a key we support, but malformed).
enum Skip {
    Unusable(JwksError),
    Broken(JwksError),
}

fn unusable(path: &str, member: &str, message: impl Into<String>) -> Skip {
    Skip::Unusable(JwksError::new(join(path, member), message))
}

fn broken(path: &str, member: &str, message: impl Into<String>) -> Skip {
    Skip::Broken(JwksError::new(join(path, member), message))
}

fn join(path: &str, member: &str) -> String {
    if member.is_empty() {
        path.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

/// The key family a `kty` (and `crv`) implies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
    Oct,
}

impl Family {
    fn algorithms(self) -> AlgorithmSet {
        use Algorithm::*;
        let list: &[Algorithm] = match self {
            Family::Rsa => &[RS256, RS384, RS512, PS256, PS384, PS512],
            Family::P256 => &[ES256],
            Family::P384 => &[ES384],
            Family::Ed25519 => &[EdDSA],
            Family::Oct => &[HS256, HS384, HS512],
        };
        list.iter().copied().collect()
    }
}

fn compile_jwk(
    jwk: &Value,
    path: &str,
    allowed: AlgorithmSet,
    tables_left: &mut TablesLeft,
) -> Result<Vec<VerifyingKey>, Skip> {
    let obj = jwk
        .as_object()
        .ok_or_else(|| broken(path, "", "a JWK is a JSON object"))?;

    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_KID_BYTES => Some(s.clone()),
        Some(_) => {
            return Err(broken(
                path,
                "kid",
                format!("must be a non-empty string of at most {MAX_KID_BYTES} bytes"),
            ))
        }
    };
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(_)) => {
            return Err(unusable(
                path,
                "use",
                "not a signature key (use is not \"sig\")",
            ))
        }
        Some(_) => return Err(broken(path, "use", "must be a string")),
    }
    match obj.get("key_ops") {
        Some(Value::Array(ops)) if !ops.iter().any(|o| o.as_str() == Some("verify")) => {
            return Err(unusable(path, "key_ops", "does not include \"verify\""));
        }
        None | Some(Value::Array(_)) => {}
        Some(_) => return Err(broken(path, "key_ops", "must be an array of strings")),
    }

    let family = match (str_member(obj, "kty"), str_member(obj, "crv")) {
        (Some("RSA"), _) => Family::Rsa,
        (Some("EC"), Some("P-256")) => Family::P256,
        (Some("EC"), Some("P-384")) => Family::P384,
        (Some("OKP"), Some("Ed25519")) => Family::Ed25519,
        (Some("oct"), _) => Family::Oct,
        (Some("EC" | "OKP"), _) => {
            return Err(unusable(
                path,
                "crv",
                "unsupported curve (P-256, P-384, Ed25519)",
            ))
        }
        (Some(_), _) => return Err(unusable(path, "kty", "unsupported key type")),
        (None, _) => return Err(broken(path, "kty", "missing or not a string")),
    };

    // A private member in a verification set: a leaked private key. (`k` is the whole point of
    // an oct key, so only the asymmetric private members count.)
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
        return Err(unusable(
            path,
            m,
            "private key member in a verification JWKS (publish the public key only)",
        ));
    }

    let family_algs = family.algorithms();
    let pinned = match obj.get("alg") {
        None => None,
        Some(Value::String(name)) => match Algorithm::from_name(name) {
            Some(a) if family_algs.contains(a) => Some(a),
            Some(_) => return Err(broken(path, "alg", "contradicts the key type")),
            None => return Err(unusable(path, "alg", "unsupported algorithm")),
        },
        Some(_) => return Err(broken(path, "alg", "must be a string")),
    };
    let candidates = match pinned {
        Some(a) => AlgorithmSet::EMPTY.with(a),
        None => family_algs,
    };
    let algs = candidates.intersect(allowed);
    if algs.is_empty() {
        return Err(unusable(
            path,
            if pinned.is_some() { "alg" } else { "kty" },
            "no algorithm of this key is allowed for the provider",
        ));
    }

    let inners = match family {
        Family::Rsa => rsa_keys(obj, path, algs)?,
        Family::P256 => {
            let point = ec_point(obj, path, 32)?;
            let k = ES256PublicKey::from_bytes(&point)
                .map_err(|_| broken(path, "", "not a point on P-256"))?;
            let prepared = match tables_left.es256.checked_sub(1) {
                Some(left) => Es256Key::from_sec1(&point).map(|table| (left, table)),
                None => None,
            };
            match prepared {
                Some((left, table)) => {
                    tables_left.es256 = left;
                    vec![(Algorithm::ES256, Inner::Es256Table(table))]
                }
                None => vec![(Algorithm::ES256, Inner::Es256(k))],
            }
        }
        Family::P384 => {
            let point = ec_point(obj, path, 48)?;
            let k = ES384PublicKey::from_bytes(&point)
                .map_err(|_| broken(path, "", "not a point on P-384"))?;
            vec![(Algorithm::ES384, Inner::Es384(k))]
        }
        Family::Ed25519 => {
            let x = b64_member(obj, path, "x")?;
            if x.len() != 32 {
                return Err(broken(path, "x", "an Ed25519 public key is 32 bytes"));
            }
            let k = Ed25519PublicKey::from_bytes(&x)
                .map_err(|_| broken(path, "x", "not an Ed25519 public key"))?;
            // A key ed25519-compact would refuse at every verification (non-canonical, small
            // order) gets no table and keeps jwt-simple's verdicts.
            let prepared = match tables_left.ed25519.checked_sub(1) {
                Some(left) => Ed25519Key::from_bytes(&x).map(|table| (left, table)),
                None => None,
            };
            match prepared {
                Some((left, table)) => {
                    tables_left.ed25519 = left;
                    vec![(Algorithm::EdDSA, Inner::Ed25519Table(table))]
                }
                None => vec![(Algorithm::EdDSA, Inner::EdDsa(k))],
            }
        }
        Family::Oct => hmac_keys(obj, path, algs, pinned.is_some())?,
    };
    Ok(inners
        .into_iter()
        .map(|(alg, inner)| VerifyingKey {
            kid: kid.clone(),
            alg,
            inner,
        })
        .collect())
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

fn b64_member(obj: &Map<String, Value>, path: &str, name: &str) -> Result<Vec<u8>, Skip> {
    let s = str_member(obj, name).ok_or_else(|| broken(path, name, "missing or not a string"))?;
    if s.is_empty() {
        return Err(broken(path, name, "empty"));
    }
    decode_segment(s).ok_or_else(|| broken(path, name, "not base64url without padding"))
}

fn ec_point(obj: &Map<String, Value>, path: &str, size: usize) -> Result<Vec<u8>, Skip> {
    let x = b64_member(obj, path, "x")?;
    let y = b64_member(obj, path, "y")?;
    for (name, v) in [("x", &x), ("y", &y)] {
        if v.len() != size {
            return Err(broken(path, name, format!("must be {size} bytes")));
        }
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04); // SEC1 uncompressed point
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

fn rsa_keys(
    obj: &Map<String, Value>,
    path: &str,
    algs: AlgorithmSet,
) -> Result<Vec<(Algorithm, Inner)>, Skip> {
    let n = b64_member(obj, path, "n")?;
    let e = b64_member(obj, path, "e")?;
    let n_trim = n
        .get(n.iter().position(|b| *b != 0).unwrap_or(n.len())..)
        .unwrap_or(&[]);
    let bits = n_trim.first().map_or(0, |top| {
        (n_trim.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    });
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(broken(
            path,
            "n",
            format!("RSA modulus must be {RSA_MIN_BITS} to {RSA_MAX_BITS} bits"),
        ));
    }
    let e_trim = e
        .get(e.iter().position(|b| *b != 0).unwrap_or(e.len())..)
        .unwrap_or(&[]);
    if e_trim != [1, 0, 1] {
        return Err(broken(path, "e", "RSA public exponent must be 65537"));
    }
    let bad = |_| broken(path, "n", "not a valid RSA public key");
    let pkcs1 = |hash| {
        RsaPublicKey::from_components(&n, &e)
            .map(|k| Inner::RsaPkcs1(k, hash))
            .ok_or_else(|| broken(path, "n", "not a valid RSA public key"))
    };
    algs.iter()
        .map(|alg| {
            let inner = match alg {
                Algorithm::RS256 => pkcs1(RsaHash::Sha256)?,
                Algorithm::RS384 => pkcs1(RsaHash::Sha384)?,
                Algorithm::RS512 => pkcs1(RsaHash::Sha512)?,
                Algorithm::PS256 => {
                    Inner::Ps256(PS256PublicKey::from_components(&n, &e).map_err(bad)?)
                }
                Algorithm::PS384 => {
                    Inner::Ps384(PS384PublicKey::from_components(&n, &e).map_err(bad)?)
                }
                Algorithm::PS512 => {
                    Inner::Ps512(PS512PublicKey::from_components(&n, &e).map_err(bad)?)
                }
                _ => return Err(broken(path, "kty", "internal: not an RSA algorithm")),
            };
            Ok((alg, inner))
        })
        .collect()
}

/// RFC 7518 section 3.2: an HMAC key must be at least as long as the hash output.
fn hmac_min_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

fn hmac_keys(
    obj: &Map<String, Value>,
    path: &str,
    algs: AlgorithmSet,
    pinned: bool,
) -> Result<Vec<(Algorithm, Inner)>, Skip> {
    let k = b64_member(obj, path, "k")?;
    let mut out = Vec::new();
    for alg in algs.iter() {
        if k.len() < hmac_min_bytes(alg) {
            // Without `alg`, a 32-byte secret simply does not serve HS384/HS512; with `alg`
            // pinned, a short secret is a configuration error.
            if pinned {
                return Err(broken(
                    path,
                    "k",
                    format!(
                        "{} needs a secret of at least {} bytes",
                        alg.name(),
                        hmac_min_bytes(alg)
                    ),
                ));
            }
            continue;
        }
        let inner = match alg {
            Algorithm::HS256 => Inner::Hs256(HS256Key::from_bytes(&k)),
            Algorithm::HS384 => Inner::Hs384(HS384Key::from_bytes(&k)),
            Algorithm::HS512 => Inner::Hs512(HS512Key::from_bytes(&k)),
            _ => continue,
        };
        out.push((alg, inner));
    }
    if out.is_empty() {
        return Err(broken(
            path,
            "k",
            "an HMAC secret must be at least 32 bytes",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) const FIXTURE: &str = include_str!("testdata/jws.json");

    fn fixture_jwks() -> Value {
        let doc: Value = serde_json::from_str(FIXTURE).unwrap();
        doc["jwks"].clone()
    }

    fn jwk(kid: &str) -> Value {
        fixture_jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone()
    }

    fn with(mut v: Value, member: &str, value: Value) -> Value {
        v.as_object_mut().unwrap().insert(member.into(), value);
        v
    }

    fn without(mut v: Value, member: &str) -> Value {
        v.as_object_mut().unwrap().remove(member);
        v
    }

    fn set_of(keys: Vec<Value>) -> Value {
        json!({ "keys": keys })
    }

    /// Options as `verify::verify_jws` passes them, at the fixture's `now`.
    fn fixture_options(doc: &Value) -> VerificationOptions {
        let secs = i64::try_from(doc["now"].as_u64().unwrap()).unwrap();
        crate::jwt::verify::signature_only_options(crate::time::UnixTime(secs))
    }

    /// A key set of `MAX + 2` copies of the fixture key `kid`: exactly `max` entries get a
    /// prepared table (`is_table`), the rest go through jwt-simple, and every entry gives the
    /// same verdicts on `token` (valid) and `tampered` (not).
    fn tables_are_bounded(
        kid: &str,
        max: usize,
        is_table: fn(&Inner) -> bool,
        token: &str,
        tampered: &str,
    ) {
        let doc: Value = serde_json::from_str(FIXTURE).unwrap();
        let count = max + 2;
        let set = parse_jwks(
            &set_of(vec![jwk(kid); count]),
            JwksMode::REMOTE,
            AlgorithmSet::all(),
        )
        .unwrap();
        assert_eq!(set.iter().filter(|k| is_table(&k.inner)).count(), max);
        assert_eq!(set.len(), count);
        for (i, key) in set.iter().enumerate() {
            assert!(key.verify(token, fixture_options(&doc)).is_ok(), "key {i}");
            assert!(
                key.verify(tampered, fixture_options(&doc)).is_err(),
                "key {i}"
            );
        }
    }

    #[test]
    fn es256_tables_are_bounded_and_every_key_verifies() {
        let doc: Value = serde_json::from_str(FIXTURE).unwrap();
        tables_are_bounded(
            "ec-256",
            MAX_PREPARED_ES256_KEYS,
            |inner| matches!(inner, Inner::Es256Table(_)),
            doc["tokens"]["valid_es256"].as_str().unwrap(),
            doc["tokens"]["tampered_payload"].as_str().unwrap(),
        );
    }

    #[test]
    fn ed25519_tables_are_bounded_and_every_key_verifies() {
        let doc: Value = serde_json::from_str(FIXTURE).unwrap();
        let token = doc["tokens"]["valid_eddsa"].as_str().unwrap();
        // The payload swapped for another token's: the signature no longer covers it.
        let (_, signature) = token.rsplit_once('.').unwrap();
        let other = doc["tokens"]["valid_es256"].as_str().unwrap();
        let (other_signed, _) = other.rsplit_once('.').unwrap();
        tables_are_bounded(
            "ed-1",
            MAX_PREPARED_ED25519_KEYS,
            |inner| matches!(inner, Inner::Ed25519Table(_)),
            token,
            &format!("{other_signed}.{signature}"),
        );
    }

    #[test]
    fn fixture_jwks_compiles_to_one_entry_per_algorithm() {
        let set = parse_jwks(&fixture_jwks(), JwksMode::Strict, AlgorithmSet::all()).unwrap();
        // rsa-1: 6 RSA algs; rsa-pinned: RS256; ec-256, ec-384, ed-1: 1 each; hmac-1 (64 bytes): 3.
        assert_eq!(set.len(), 6 + 1 + 3 + 3);
        assert_eq!(
            set.kids().collect::<Vec<_>>(),
            ["rsa-1", "rsa-pinned", "ec-256", "ec-384", "ed-1", "hmac-1"]
        );
        assert_eq!(set.algorithms(), AlgorithmSet::all());
        // Narrowing the provider's algorithms narrows the entries.
        let only = AlgorithmSet::EMPTY
            .with(Algorithm::ES256)
            .with(Algorithm::RS256);
        let set = parse_jwks(&fixture_jwks(), JwksMode::REMOTE, only).unwrap();
        assert_eq!(set.algorithms(), only);
        assert_eq!(set.len(), 3);
        // ...and in strict mode a key no allowed algorithm can use is an error.
        let errs = parse_jwks(&fixture_jwks(), JwksMode::Strict, only).unwrap_err();
        assert!(errs.iter().any(|e| e.path == "keys[3].alg"), "{errs:?}");
    }

    #[test]
    fn debug_never_shows_key_material() {
        let set = parse_jwks(
            &set_of(vec![jwk("hmac-1")]),
            JwksMode::Strict,
            AlgorithmSet::all(),
        )
        .unwrap();
        let k = jwk("hmac-1")["k"].as_str().unwrap().to_owned();
        let dbg = format!("{set:?}");
        assert!(!dbg.contains(&k) && dbg.contains("hmac-1"), "{dbg}");
    }

    /// One JWK at a time: (jwk, strict result, lenient result), results as `Ok(entries)` or
    /// `Err(path)` of the first error.
    #[test]
    fn single_key_table() {
        let rsa = jwk("rsa-1");
        let ec = jwk("ec-256");
        let ec384 = jwk("ec-384");
        let ed = jwk("ed-1");
        let oct = jwk("hmac-1");
        let short_secret =
            json!({"kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}); // 32 bytes
        let p = "keys[0]";
        // Lenient skips of the only key surface as "no usable key" at `keys`.
        type Case = (
            Value,
            Result<usize, String>,
            Result<usize, String>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                rsa.clone(),
                Ok(6),
                Ok(6),
                "RSA without alg: every RSA algorithm",
            ),
            (
                with(rsa.clone(), "alg", json!("PS384")),
                Ok(1),
                Ok(1),
                "alg pins one",
            ),
            (
                with(rsa.clone(), "alg", json!("ES256")),
                Err(format!("{p}.alg")),
                Err(format!("{p}.alg")),
                "alg contradicts kty",
            ),
            (
                with(rsa.clone(), "alg", json!("HS256")),
                Err(format!("{p}.alg")),
                Err(format!("{p}.alg")),
                "RSA key as HMAC: key confusion",
            ),
            (
                with(rsa.clone(), "alg", json!("RSA-OAEP")),
                Err(format!("{p}.alg")),
                Err("keys".into()),
                "unknown alg: skipped when lenient",
            ),
            (
                with(rsa.clone(), "alg", json!(7)),
                Err(format!("{p}.alg")),
                Err(format!("{p}.alg")),
                "alg not a string",
            ),
            (
                with(rsa.clone(), "use", json!("enc")),
                Err(format!("{p}.use")),
                Err("keys".into()),
                "encryption key",
            ),
            (
                with(rsa.clone(), "key_ops", json!(["encrypt"])),
                Err(format!("{p}.key_ops")),
                Err("keys".into()),
                "no verify op",
            ),
            (
                with(rsa.clone(), "key_ops", json!(["verify"])),
                Ok(6),
                Ok(6),
                "verify op",
            ),
            (
                with(rsa.clone(), "d", json!("AQAB")),
                Err(format!("{p}.d")),
                Err("keys".into()),
                "leaked private key",
            ),
            (
                without(rsa.clone(), "n"),
                Err(format!("{p}.n")),
                Err(format!("{p}.n")),
                "modulus missing",
            ),
            (
                with(rsa.clone(), "n", json!("AQAB")),
                Err(format!("{p}.n")),
                Err(format!("{p}.n")),
                "1024-bit-or-less modulus",
            ),
            (
                with(rsa.clone(), "e", json!("Aw")),
                Err(format!("{p}.e")),
                Err(format!("{p}.e")),
                "exponent 3",
            ),
            (
                with(rsa.clone(), "e", json!("AQAB==")),
                Err(format!("{p}.e")),
                Err(format!("{p}.e")),
                "padded base64",
            ),
            (
                with(rsa.clone(), "kid", json!(5)),
                Err(format!("{p}.kid")),
                Err(format!("{p}.kid")),
                "kid not a string",
            ),
            (
                with(rsa.clone(), "kid", json!("")),
                Err(format!("{p}.kid")),
                Err(format!("{p}.kid")),
                "empty kid",
            ),
            (ec.clone(), Ok(1), Ok(1), "P-256"),
            (ec384.clone(), Ok(1), Ok(1), "P-384"),
            (
                with(ec.clone(), "crv", json!("P-521")),
                Err(format!("{p}.crv")),
                Err("keys".into()),
                "unsupported curve",
            ),
            (
                with(ec.clone(), "crv", json!("P-384")),
                Err(format!("{p}.alg")),
                Err(format!("{p}.alg")),
                "curve contradicts alg",
            ),
            (
                with(ec.clone(), "y", ec["x"].clone()),
                Err(p.to_owned()),
                Err(p.to_owned()),
                "point not on the curve",
            ),
            (
                with(ec.clone(), "x", json!("AQAB")),
                Err(format!("{p}.x")),
                Err(format!("{p}.x")),
                "short coordinate",
            ),
            (ed.clone(), Ok(1), Ok(1), "Ed25519"),
            (
                with(ed.clone(), "crv", json!("X25519")),
                Err(format!("{p}.crv")),
                Err("keys".into()),
                "key agreement curve",
            ),
            (
                with(ed.clone(), "x", json!("AQAB")),
                Err(format!("{p}.x")),
                Err(format!("{p}.x")),
                "short Ed25519 key",
            ),
            (
                oct.clone(),
                Ok(3),
                Ok(3),
                "64-byte secret serves every HS alg",
            ),
            (
                short_secret.clone(),
                Ok(1),
                Ok(1),
                "32-byte secret serves HS256 only",
            ),
            (
                with(short_secret.clone(), "alg", json!("HS512")),
                Err(format!("{p}.k")),
                Err(format!("{p}.k")),
                "pinned alg needs a longer secret",
            ),
            (
                json!({"kty": "oct", "k": "AAAA"}),
                Err(format!("{p}.k")),
                Err(format!("{p}.k")),
                "3-byte secret",
            ),
            (
                json!({"kty": "foo"}),
                Err(format!("{p}.kty")),
                Err("keys".into()),
                "unknown kty",
            ),
            (
                json!({"n": "x"}),
                Err(format!("{p}.kty")),
                Err(format!("{p}.kty")),
                "kty missing",
            ),
            (
                json!("RSA"),
                Err(p.to_string()),
                Err(p.to_string()),
                "not an object",
            ),
        ];
        for (key, strict, lenient, why) in cases {
            let symmetric = JwksMode::Lenient {
                symmetric_keys: true,
            };
            // A remote JWKS by default: symmetric keys are not even read (so, alone, leave
            // no usable key); every other key as with symmetric keys allowed.
            let remote = if key["kty"] == "oct" {
                Err("keys".to_string())
            } else {
                lenient.clone()
            };
            let modes = [
                (JwksMode::Strict, strict),
                (symmetric, lenient),
                (JwksMode::REMOTE, remote),
            ];
            for (mode, want) in modes {
                let got = parse_jwks(&set_of(vec![key.clone()]), mode, AlgorithmSet::all())
                    .map(|s| s.len())
                    .map_err(|e| e[0].path.clone());
                assert_eq!(got, want, "{why} ({mode:?})");
            }
        }
    }

    #[test]
    fn document_table() {
        let ok = set_of(vec![jwk("ec-256")]);
        let cases: Vec<(Value, JwksMode, Result<usize, &str>, &str)> = vec![
            (ok.clone(), JwksMode::Strict, Ok(1), "one key"),
            (
                json!({"keys": []}),
                JwksMode::Strict,
                Err("keys"),
                "no key at all",
            ),
            (
                json!({"keys": []}),
                JwksMode::REMOTE,
                Err("keys"),
                "no key at all, lenient",
            ),
            (json!([]), JwksMode::REMOTE, Err("keys"), "not an object"),
            (
                json!({"keys": {}}),
                JwksMode::REMOTE,
                Err("keys"),
                "keys not an array",
            ),
            (
                set_of(vec![jwk("ec-256"); MAX_KEYS + 1]),
                JwksMode::REMOTE,
                Err("keys"),
                "too many keys",
            ),
            (
                set_of(vec![jwk("ec-256"), jwk("ec-256")]),
                JwksMode::Strict,
                Err("keys[1].kid"),
                "duplicate kid",
            ),
            (
                set_of(vec![jwk("ec-256"), jwk("ec-256")]),
                JwksMode::REMOTE,
                Ok(2),
                "duplicate kid tolerated remotely",
            ),
            (
                set_of(vec![
                    json!({"kty": "EC", "crv": "secp256k1"}),
                    jwk("ec-256"),
                ]),
                JwksMode::REMOTE,
                Ok(1),
                "skip, keep the rest",
            ),
            (
                set_of(vec![
                    json!({"kty": "EC", "crv": "secp256k1"}),
                    jwk("ec-256"),
                ]),
                JwksMode::Strict,
                Err("keys[0].crv"),
                "strict refuses",
            ),
            (
                set_of(vec![
                    json!({"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB"}),
                    jwk("ec-256"),
                ]),
                JwksMode::REMOTE,
                Err("keys[0].x"),
                "a broken supported key fails even lenient",
            ),
        ];
        for (doc, mode, want, why) in cases {
            let got = parse_jwks(&doc, mode, AlgorithmSet::all())
                .map(|s| s.len())
                .map_err(|e| e[0].path.clone());
            assert_eq!(got, want.map_err(str::to_owned), "{why}");
        }
    }

    #[test]
    fn remote_symmetric_keys_are_skipped_unless_allowed() {
        let doc = set_of(vec![jwk("hmac-1"), jwk("ec-256")]);
        let all = AlgorithmSet::all();
        let set = parse_jwks(&doc, JwksMode::REMOTE, all).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["ec-256"]);
        assert!(!set.algorithms().contains(Algorithm::HS256));
        let symmetric = JwksMode::Lenient {
            symmetric_keys: true,
        };
        let set = parse_jwks(&doc, symmetric, all).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["hmac-1", "ec-256"]);
        // Inline keys are the operator's own: symmetric keys stay allowed there.
        let set = parse_jwks(&doc, JwksMode::Strict, all).unwrap();
        assert!(set.algorithms().contains(Algorithm::HS256));
        // Only symmetric keys remotely: no usable key, the document is refused.
        let errs = parse_jwks(&set_of(vec![jwk("hmac-1")]), JwksMode::REMOTE, all).unwrap_err();
        assert_eq!(errs[0].path, "keys");
    }

    #[test]
    fn every_error_is_reported_and_none_leaks_key_material() {
        let secret = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1hcHBlYXItaW4tbG9ncw";
        let doc = set_of(vec![
            json!({"kty": "oct", "k": secret, "alg": "RS256"}),
            json!({"kty": "RSA", "n": secret, "e": "AQAB", "d": secret}),
            json!({"kty": "oct", "k": "short"}),
        ]);
        let errs = parse_jwks(&doc, JwksMode::Strict, AlgorithmSet::all()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        for e in &errs {
            assert!(
                !e.message.contains(secret) && !e.path.contains(secret),
                "{e:?}"
            );
        }
    }

    #[test]
    fn bytes_table() {
        let good = serde_json::to_vec(&set_of(vec![jwk("ed-1")])).unwrap();
        let mut huge = b"{\"keys\":[], \"pad\": \"".to_vec();
        huge.resize(MAX_JWKS_BYTES + 1, b'x');
        let cases: Vec<(Vec<u8>, Result<usize, &str>, &str)> = vec![
            (good, Ok(1), "valid"),
            (b"{\"keys\": [".to_vec(), Err("not valid JSON"), "truncated"),
            (huge, Err("larger than"), "bounded before parsing"),
        ];
        for (bytes, want, why) in cases {
            let got = parse_jwks_bytes(&bytes, JwksMode::REMOTE, AlgorithmSet::all());
            match (got, want) {
                (Ok(s), Ok(n)) => assert_eq!(s.len(), n, "{why}"),
                (Err(e), Err(msg)) => assert!(e[0].message.contains(msg), "{why}: {e:?}"),
                (got, want) => panic!("{why}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn empty_set() {
        let s = KeySet::empty();
        assert!(s.is_empty() && s.kids().next().is_none());
        assert!(s.algorithms().is_empty());
    }
}
