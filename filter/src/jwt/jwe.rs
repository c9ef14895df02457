//! Nested JWT: a compact JWE (RFC 7516) whose plaintext is a compact JWS.
//!
//! Only what a nested JWT needs is implemented, and nothing is negotiable by the token:
//! key management `dir`, `A128KW`, `A256KW`, `RSA-OAEP`, `RSA-OAEP-256`; content encryption
//! `A128GCM`, `A256GCM`; no compression; `cty` must say `JWT`. The key is chosen by `kid` from
//! the configured private JWKS, and the key's own `alg` pins the token's `alg` (a KEK is never
//! used as a content key, an RSA-OAEP key never with SHA-256 padding, and the other way round).
//!
//! The decrypted JWS is returned as text and then goes through every JWS rule (`verify`):
//! encryption gives confidentiality, never authenticity of the issuer.
//!
//! Error mapping is deliberately coarse for crypto: a wrong key, a tampered segment, an
//! unknown `kid`, a key of another algorithm all give `DecryptFailed` and nothing else, so the
//! answer is no oracle (RFC 7516 section 11.5). The RSA path also runs the content decryption
//! with a dummy key when unwrapping fails, so both failures take about the same time.

use std::fmt;

use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use aes_keywrap::{Aes128KeyWrapAligned, Aes256KeyWrapAligned};
use rsa::rand_core::{OsRng, RngCore};
use rsa::traits::PrivateKeyParts;
use rsa::{BigUint, Oaep, RsaPrivateKey};
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use super::problem::{JwksError, TokenProblem};

/// At most this many decryption keys (a config holds a handful; the bound keeps lookups cheap).
pub const MAX_DECRYPTION_KEYS: usize = 16;
/// RSA moduli outside this range are refused: below 2048 bits is breakable, above 4096 makes
/// every token an expensive private-key operation.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;
/// Longest accepted `kid` (bytes).
const MAX_KID_BYTES: usize = 256;
/// AES-GCM as used by JWE: 96-bit IV, 128-bit tag.
const IV_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// Key management algorithm (`alg` of a JWE header and of a decryption JWK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAlg {
    Dir,
    A128Kw,
    A256Kw,
    RsaOaep,
    RsaOaep256,
}

impl KeyAlg {
    /// Exact, case-sensitive names (RFC 7518 section 4.1); anything else is unsupported.
    fn from_name(name: &str) -> Option<KeyAlg> {
        match name {
            "dir" => Some(KeyAlg::Dir),
            "A128KW" => Some(KeyAlg::A128Kw),
            "A256KW" => Some(KeyAlg::A256Kw),
            "RSA-OAEP" => Some(KeyAlg::RsaOaep),
            "RSA-OAEP-256" => Some(KeyAlg::RsaOaep256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyAlg::Dir => "dir",
            KeyAlg::A128Kw => "A128KW",
            KeyAlg::A256Kw => "A256KW",
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
        }
    }
}

/// Content encryption algorithm (`enc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    A128Gcm,
    A256Gcm,
}

impl Enc {
    fn from_name(name: &str) -> Option<Enc> {
        match name {
            "A128GCM" => Some(Enc::A128Gcm),
            "A256GCM" => Some(Enc::A256Gcm),
            _ => None,
        }
    }

    fn key_bytes(self) -> usize {
        match self {
            Enc::A128Gcm => 16,
            Enc::A256Gcm => 32,
        }
    }
}

/// A content cipher with its key schedule computed once.
enum ContentCipher {
    A128(Box<Aes128Gcm>),
    A256(Box<Aes256Gcm>),
}

impl ContentCipher {
    /// `None` unless `cek` has exactly the length `enc` needs.
    fn new(enc: Enc, cek: &[u8]) -> Option<ContentCipher> {
        if cek.len() != enc.key_bytes() {
            return None;
        }
        match enc {
            Enc::A128Gcm => Aes128Gcm::new_from_slice(cek)
                .ok()
                .map(|c| ContentCipher::A128(Box::new(c))),
            Enc::A256Gcm => Aes256Gcm::new_from_slice(cek)
                .ok()
                .map(|c| ContentCipher::A256(Box::new(c))),
        }
    }

    fn enc(&self) -> Enc {
        match self {
            ContentCipher::A128(_) => Enc::A128Gcm,
            ContentCipher::A256(_) => Enc::A256Gcm,
        }
    }

    /// Authenticated decryption in place; `false` on any failure (tag, lengths).
    fn open(&self, iv: &[u8], aad: &[u8], buffer: &mut [u8], tag: &[u8]) -> bool {
        match self {
            ContentCipher::A128(c) => open_with(c.as_ref(), iv, aad, buffer, tag),
            ContentCipher::A256(c) => open_with(c.as_ref(), iv, aad, buffer, tag),
        }
    }
}

fn open_with<C: AeadInOut>(
    cipher: &C,
    iv: &[u8],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8],
) -> bool {
    let (Ok(nonce), Ok(tag)) = (Nonce::<C>::try_from(iv), Tag::<C>::try_from(tag)) else {
        return false;
    };
    cipher
        .decrypt_inout_detached(&nonce, aad, buffer.into(), &tag)
        .is_ok()
}

/// The compiled form of one decryption JWK.
enum KeyMaterial {
    Direct(ContentCipher),
    A128Kw(Box<Aes128KeyWrapAligned>),
    A256Kw(Box<Aes256KeyWrapAligned>),
    /// RSA private key (validated, CRT values precomputed) and whether OAEP uses SHA-256.
    Rsa {
        key: Box<RsaPrivateKey>,
        sha256: bool,
    },
}

struct DecryptionKey {
    kid: Option<String>,
    alg: KeyAlg,
    material: KeyMaterial,
}

/// The private keys a provider decrypts nested JWTs with. Built only by
/// [`parse_decryption_keys`], so every key in here is well formed and usable.
pub struct DecryptionKeys {
    keys: Vec<DecryptionKey>,
}

impl DecryptionKeys {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some key decrypts with RSA-OAEP (the `rsa` crate's private-key operation, which
    /// is not constant-time: RUSTSEC-2023-0071).
    pub fn has_rsa(&self) -> bool {
        self.keys
            .iter()
            .any(|k| matches!(k.material, KeyMaterial::Rsa { .. }))
    }

    /// The `kid`s of the keys (for logs and config dumps; never key material).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// The key named by `kid`, or the only key when the token names none.
    fn select(&self, kid: Option<&str>) -> Result<&DecryptionKey, TokenProblem> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                // Not UnknownKid: that one makes callers refetch a remote JWKS, and decryption
                // keys are static config. To the client it is just an undecryptable token.
                .ok_or(TokenProblem::DecryptFailed),
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                [] => Err(TokenProblem::DecryptFailed),
                _ => Err(TokenProblem::KidMissing),
            },
        }
    }
}

/// Key material never reaches a log line: only kids and algorithms are shown.
impl fmt::Debug for DecryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| (k.kid.as_deref().unwrap_or("-"), k.alg.name())),
            )
            .finish()
    }
}

/// Compile a JWKS of private keys (config `decryption_keys`). Strict: every problem is
/// reported with its JSON path (`keys[1].k`), messages never contain key material.
///
/// Accepted: `oct` with `alg` `dir` (16 or 32 byte key: A128GCM or A256GCM), `A128KW` (16
/// bytes) or `A256KW` (32 bytes); `RSA` with `alg` `RSA-OAEP` or `RSA-OAEP-256` and members
/// `n`, `e`, `d`, `p`, `q` (`dp`, `dq`, `qi` optional but checked when present), 2048 to 4096
/// bits. `alg` is required (it pins how a token may use the key); `use`, if present, must be
/// `enc`. With more than one key every key needs a distinct `kid`.
pub fn parse_decryption_keys(doc: &Value) -> Result<DecryptionKeys, Vec<JwksError>> {
    let mut errors = Vec::new();
    let Some(object) = doc.as_object() else {
        return Err(vec![JwksError::new(
            "",
            "must be a JSON object with a `keys` array",
        )]);
    };
    let Some(list) = object.get("keys").and_then(Value::as_array) else {
        return Err(vec![JwksError::new("keys", "must be an array of JWKs")]);
    };
    if list.is_empty() {
        return Err(vec![JwksError::new("keys", "must hold at least one key")]);
    }
    if list.len() > MAX_DECRYPTION_KEYS {
        return Err(vec![JwksError::new(
            "keys",
            format!("at most {MAX_DECRYPTION_KEYS} decryption keys"),
        )]);
    }
    let mut keys = Vec::with_capacity(list.len());
    for (index, jwk) in list.iter().enumerate() {
        let path = format!("keys[{index}]");
        match parse_key(jwk, &path) {
            Ok(key) => keys.push(key),
            Err(mut key_errors) => errors.append(&mut key_errors),
        }
    }
    // kid rules are checked on the raw list so a key that failed to parse still counts.
    if list.len() > 1 {
        let mut seen: Vec<&str> = Vec::with_capacity(list.len());
        for (index, jwk) in list.iter().enumerate() {
            match jwk.get("kid").and_then(Value::as_str) {
                None => errors.push(JwksError::new(
                    format!("keys[{index}].kid"),
                    "required when there is more than one decryption key",
                )),
                Some(kid) if seen.contains(&kid) => errors.push(JwksError::new(
                    format!("keys[{index}].kid"),
                    "duplicate kid",
                )),
                Some(kid) => seen.push(kid),
            }
        }
    }
    if errors.is_empty() {
        Ok(DecryptionKeys { keys })
    } else {
        Err(errors)
    }
}

fn parse_key(jwk: &Value, path: &str) -> Result<DecryptionKey, Vec<JwksError>> {
    let err =
        |member: &str, message: &str| vec![JwksError::new(format!("{path}.{member}"), message)];
    let Some(object) = jwk.as_object() else {
        return Err(vec![JwksError::new(path, "must be a JSON object")]);
    };
    let kid = match object.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_BYTES => {
            Some(kid.clone())
        }
        Some(_) => {
            return Err(err(
                "kid",
                "must be a non-empty string of at most 256 bytes",
            ))
        }
    };
    match object.get("use") {
        None => {}
        Some(Value::String(u)) if u == "enc" => {}
        Some(_) => return Err(err("use", "must be \"enc\" for a decryption key")),
    }
    let Some(alg_name) = object.get("alg").and_then(Value::as_str) else {
        return Err(err(
            "alg",
            "required: one of dir, A128KW, A256KW, RSA-OAEP, RSA-OAEP-256",
        ));
    };
    let Some(alg) = KeyAlg::from_name(alg_name) else {
        return Err(err(
            "alg",
            "unsupported: use dir, A128KW, A256KW, RSA-OAEP or RSA-OAEP-256",
        ));
    };
    let material = match object.get("kty").and_then(Value::as_str) {
        Some("oct") => parse_oct(object, alg, path)?,
        Some("RSA") => parse_rsa(object, alg, path)?,
        Some(_) => return Err(err("kty", "unsupported: use oct or RSA")),
        None => return Err(err("kty", "required")),
    };
    Ok(DecryptionKey { kid, alg, material })
}

fn parse_oct(
    object: &Map<String, Value>,
    alg: KeyAlg,
    path: &str,
) -> Result<KeyMaterial, Vec<JwksError>> {
    let err =
        |member: &str, message: &str| vec![JwksError::new(format!("{path}.{member}"), message)];
    let Some(mut k) = object
        .get("k")
        .and_then(Value::as_str)
        .and_then(decode_b64url)
    else {
        return Err(err("k", "required: base64url without padding"));
    };
    let material = match alg {
        KeyAlg::Dir => {
            let enc = match k.len() {
                16 => Some(Enc::A128Gcm),
                32 => Some(Enc::A256Gcm),
                _ => None,
            };
            enc.and_then(|enc| ContentCipher::new(enc, &k))
                .map(KeyMaterial::Direct)
        }
        KeyAlg::A128Kw => <&[u8; 16]>::try_from(k.as_slice())
            .ok()
            .map(|k| KeyMaterial::A128Kw(Box::new(Aes128KeyWrapAligned::new(k)))),
        KeyAlg::A256Kw => <&[u8; 32]>::try_from(k.as_slice())
            .ok()
            .map(|k| KeyMaterial::A256Kw(Box::new(Aes256KeyWrapAligned::new(k)))),
        KeyAlg::RsaOaep | KeyAlg::RsaOaep256 => {
            k.zeroize();
            return Err(err("alg", "an oct key cannot be used with RSA-OAEP"));
        }
    };
    k.zeroize();
    material.ok_or_else(|| {
        err(
            "k",
            match alg {
                KeyAlg::Dir => "must be 16 bytes (A128GCM) or 32 bytes (A256GCM) for dir",
                KeyAlg::A128Kw => "must be 16 bytes for A128KW",
                _ => "must be 32 bytes for A256KW",
            },
        )
    })
}

fn parse_rsa(
    object: &Map<String, Value>,
    alg: KeyAlg,
    path: &str,
) -> Result<KeyMaterial, Vec<JwksError>> {
    let sha256 = match alg {
        KeyAlg::RsaOaep => false,
        KeyAlg::RsaOaep256 => true,
        _ => {
            return Err(vec![JwksError::new(
                format!("{path}.alg"),
                "an RSA key can only be used with RSA-OAEP or RSA-OAEP-256",
            )])
        }
    };
    let mut errors = Vec::new();
    let mut number = |member: &str, required: bool| -> Option<BigUint> {
        match object.get(member) {
            None if !required => None,
            None => {
                errors.push(JwksError::new(
                    format!("{path}.{member}"),
                    "required for an RSA private key",
                ));
                None
            }
            Some(value) => match value.as_str().and_then(decode_b64url) {
                Some(mut bytes) if !bytes.is_empty() => {
                    let n = BigUint::from_bytes_be(&bytes);
                    bytes.zeroize();
                    Some(n)
                }
                _ => {
                    errors.push(JwksError::new(
                        format!("{path}.{member}"),
                        "must be a non-empty base64url string without padding",
                    ));
                    None
                }
            },
        }
    };
    let (n, e, d, p, q) = (
        number("n", true),
        number("e", true),
        number("d", true),
        number("p", true),
        number("q", true),
    );
    let (dp, dq, qi) = (
        number("dp", false),
        number("dq", false),
        number("qi", false),
    );
    if object.contains_key("oth") {
        errors.push(JwksError::new(
            format!("{path}.oth"),
            "multi-prime RSA keys are not supported",
        ));
    }
    let (Some(n), Some(e), Some(d), Some(p), Some(q)) = (n, e, d, p, q) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let err =
        |member: &str, message: &str| vec![JwksError::new(format!("{path}.{member}"), message)];
    let bits = n.bits();
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(err("n", "modulus must be 2048 to 4096 bits"));
    }
    if p == q {
        return Err(err("q", "p and q must differ"));
    }
    // from_components validates: e in range, p*q == n, d*e == 1 mod (p-1) and (q-1).
    let Ok(mut key) = RsaPrivateKey::from_components(n, e, d, vec![p, q]) else {
        return Err(err(
            "d",
            "n, e, d, p, q do not form a consistent RSA private key",
        ));
    };
    if key.precompute().is_err() {
        return Err(err(
            "q",
            "CRT values cannot be computed (p and q not coprime)",
        ));
    }
    if let Some(dp) = dp {
        if key.dp() != Some(&dp) {
            return Err(err("dp", "does not match d mod (p-1)"));
        }
    }
    if let Some(dq) = dq {
        if key.dq() != Some(&dq) {
            return Err(err("dq", "does not match d mod (q-1)"));
        }
    }
    if let Some(qi) = qi {
        if key.crt_coefficient() != Some(qi) {
            return Err(err("qi", "does not match q^-1 mod p"));
        }
    }
    Ok(KeyMaterial::Rsa {
        key: Box::new(key),
        sha256,
    })
}

/// A JSON object parsed with duplicate member names rejected (serde_json would keep the last
/// one silently, and two parsers disagreeing on `alg` is a classic JOSE bypass).
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StrictObject, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(A::Error::custom("duplicate member"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The protected header members that matter, after policy checks.
struct JweHeader {
    alg: KeyAlg,
    enc: Enc,
    kid: Option<String>,
}

fn parse_header(bytes: &[u8]) -> Result<JweHeader, TokenProblem> {
    let StrictObject(header) =
        serde_json::from_slice::<StrictObject>(bytes).map_err(|_| TokenProblem::Malformed)?;
    // We implement no extensions, so any critical one is unknown.
    if header.contains_key("crit") {
        return Err(TokenProblem::UnknownCritical);
    }
    // Keys or key locations chosen by the sender are never trusted.
    if ["jwk", "jku", "x5u", "x5c"]
        .iter()
        .any(|m| header.contains_key(*m))
    {
        return Err(TokenProblem::EmbeddedKey);
    }
    let string = |name: &str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(TokenProblem::Malformed),
    };
    let alg = string("alg")?.ok_or(TokenProblem::Malformed)?;
    let enc = string("enc")?.ok_or(TokenProblem::Malformed)?;
    let alg = KeyAlg::from_name(alg).ok_or(TokenProblem::AlgorithmNotAllowed)?;
    let enc = Enc::from_name(enc).ok_or(TokenProblem::AlgorithmNotAllowed)?;
    // Compression before encryption leaks plaintext through lengths, and inflating is a
    // decompression bomb: unsupported.
    if header.contains_key("zip") {
        return Err(TokenProblem::AlgorithmNotAllowed);
    }
    // Only nested JWTs are accepted (RFC 7519 section 5.2: cty "JWT", compared ignoring case).
    match string("cty")? {
        Some(cty) if cty.eq_ignore_ascii_case("JWT") => {}
        _ => return Err(TokenProblem::Malformed),
    }
    let kid = string("kid")?.map(str::to_owned);
    Ok(JweHeader { alg, enc, kid })
}

/// True when `token` has exactly five dot-separated segments: the compact JWE shape. A cheap
/// router check only; [`decrypt_nested`] does the strict parsing.
pub fn is_jwe(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 4
}

/// Decrypt a nested JWT and return the inner compact JWS (still to be verified).
///
/// Order: size (before anything else) -> five strictly base64url segments -> protected header
/// (JSON object without duplicates; crit -> UnknownCritical; jwk/jku/x5u/x5c -> EmbeddedKey;
/// alg/enc/zip -> AlgorithmNotAllowed; cty JWT) -> segment shapes (encrypted key empty exactly
/// for dir, 12-byte IV, 16-byte tag) -> key by kid (or the single key), whose alg must be the
/// header's -> unwrap CEK -> AES-GCM with the protected header segment as AAD -> the
/// plaintext must be a compact JWS. Every cryptographic failure is `DecryptFailed`.
pub fn decrypt_nested(
    token: &str,
    keys: &DecryptionKeys,
    max_bytes: usize,
) -> Result<String, TokenProblem> {
    if token.len() > max_bytes {
        return Err(TokenProblem::TooLarge);
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(ek_b64), Some(iv_b64), Some(ct_b64), Some(tag_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenProblem::Malformed);
    };
    if header_b64.is_empty() {
        return Err(TokenProblem::Malformed);
    }
    let decode = |s: &str| decode_b64url(s).ok_or(TokenProblem::Malformed);
    let header_bytes = decode(header_b64)?;
    let encrypted_key = decode(ek_b64)?;
    let iv = decode(iv_b64)?;
    let mut buffer = decode(ct_b64)?;
    let tag = decode(tag_b64)?;

    let header = parse_header(&header_bytes)?;
    // dir uses the shared key directly: an encrypted key there is malformed (RFC 7516 5.1
    // step 5); every other alg needs one.
    if (header.alg == KeyAlg::Dir) != encrypted_key.is_empty() {
        return Err(TokenProblem::Malformed);
    }
    if iv.len() != IV_BYTES || tag.len() != TAG_BYTES {
        return Err(TokenProblem::Malformed);
    }

    let key = keys.select(header.kid.as_deref())?;
    if key.alg != header.alg {
        return Err(TokenProblem::DecryptFailed);
    }
    let aad = header_b64.as_bytes();
    let opened = match &key.material {
        KeyMaterial::Direct(cipher) => {
            cipher.enc() == header.enc && cipher.open(&iv, aad, &mut buffer, &tag)
        }
        wrapped => {
            let unwrapped = unwrap_cek(wrapped, &encrypted_key)?;
            open_with_cek(header.enc, unwrapped, &iv, aad, &mut buffer, &tag)
        }
    };
    if !opened {
        return Err(TokenProblem::DecryptFailed);
    }
    let plaintext = String::from_utf8(buffer).map_err(|_| TokenProblem::Malformed)?;
    if !looks_like_jws(&plaintext) {
        return Err(TokenProblem::Malformed);
    }
    Ok(plaintext)
}

/// The content-encryption key from the encrypted key segment. `Ok(None)` when unwrapping
/// failed (the caller still runs the content decryption, see module docs); `Err` only when the
/// random source for RSA blinding is unavailable.
fn unwrap_cek(
    material: &KeyMaterial,
    encrypted_key: &[u8],
) -> Result<Option<Vec<u8>>, TokenProblem> {
    Ok(match material {
        KeyMaterial::Direct(_) => None,
        KeyMaterial::A128Kw(kek) => kek.decapsulate(encrypted_key).ok(),
        KeyMaterial::A256Kw(kek) => kek.decapsulate(encrypted_key).ok(),
        KeyMaterial::Rsa { key, sha256 } => {
            // Blinding needs randomness; OsRng panics if the source fails mid-operation, so
            // probe it first and fail closed instead (a WASI host always provides random_get).
            let mut probe = [0u8; 8];
            if OsRng.try_fill_bytes(&mut probe).is_err() {
                return Err(TokenProblem::DecryptFailed);
            }
            let padding = if *sha256 {
                Oaep::new::<sha2::Sha256>()
            } else {
                Oaep::new::<hmac_sha1_compact::WrappedHash>()
            };
            key.decrypt_blinded(&mut OsRng, padding, encrypted_key).ok()
        }
    })
}

/// AES-GCM with an unwrapped CEK. A missing or wrong-length CEK is replaced by a dummy key so
/// the work done does not reveal whether unwrapping or authentication failed; the result is
/// then `false` whatever the tag says.
fn open_with_cek(
    enc: Enc,
    cek: Option<Vec<u8>>,
    iv: &[u8],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8],
) -> bool {
    let dummy = [0u8; 32];
    let (mut cek, usable) = match cek {
        Some(cek) if cek.len() == enc.key_bytes() => (cek, true),
        Some(mut other) => {
            other.zeroize();
            (
                dummy.get(..enc.key_bytes()).unwrap_or_default().to_vec(),
                false,
            )
        }
        None => (
            dummy.get(..enc.key_bytes()).unwrap_or_default().to_vec(),
            false,
        ),
    };
    let opened = ContentCipher::new(enc, &cek).is_some_and(|c| c.open(iv, aad, buffer, tag));
    cek.zeroize();
    usable && opened
}

/// Three non-empty base64url segments without padding. Only a shape check: the JWS parser
/// (`compact`) decodes and verifies the inner token.
fn looks_like_jws(text: &str) -> bool {
    super::compact::split_jws(text).is_some()
}

/// Strict base64url (RFC 7515 section 2), the same decoder as the JWS parser's: URL-safe
/// alphabet only, no padding, canonical trailing bits, so a token has one spelling only.
fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    super::compact::decode_segment(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE: &str = include_str!("testdata/jwe.json");
    const MAX: usize = 8192;

    fn fixture() -> Value {
        serde_json::from_str(FIXTURE).unwrap()
    }

    fn keys() -> DecryptionKeys {
        parse_decryption_keys(&fixture()["decryption_keys"]).unwrap()
    }

    fn token(name: &str) -> String {
        fixture()["tokens"][name]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn outcome(result: Result<String, TokenProblem>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(problem) => problem.as_str(),
        }
    }

    /// Every case the spec asks for must be in the fixture, so regenerating it with a
    /// script that lost a case fails here rather than silently testing less.
    #[test]
    fn fixture_has_every_required_case() {
        let doc = fixture();
        let required = [
            "dir_a256gcm",
            "dir_a128gcm",
            "a256kw_a256gcm",
            "a128kw_a128gcm",
            "rsa_oaep_a256gcm",
            "rsa_oaep_256_a256gcm",
            "wrong_dir_key_same_kid",
            "wrong_rsa_key_same_kid",
            "tampered_ciphertext",
            "tampered_tag",
            "tampered_iv",
            "tampered_header_aad",
            "zip_def",
            "a192kw_unsupported",
            "cty_missing",
            "four_segments",
            "six_segments",
            "padding_in_iv",
            "oversize",
            "plaintext_claims_json",
        ];
        for name in required {
            assert!(doc["tokens"].get(name).is_some(), "fixture lacks {name}");
        }
        assert!(doc["tokens"].as_object().unwrap().len() >= 60);
    }

    /// The attack/edge table: each fixture token (minted by jwcrypto) with its expected
    /// outcome. Valid ones must yield exactly the inner JWS that Python signed.
    #[test]
    fn decrypt_table() {
        let doc = fixture();
        let keys = keys();
        let inner = doc["inner_jws"].as_str().unwrap();
        let mut failures = Vec::new();
        for (name, case) in doc["tokens"].as_object().unwrap() {
            let token = case["token"].as_str().unwrap();
            let max = case
                .get("max_bytes")
                .map_or(MAX, |m| m.as_u64().unwrap() as usize);
            let expect = case["expect"].as_str().unwrap();
            let result = decrypt_nested(token, &keys, max);
            if let Ok(plain) = &result {
                assert_eq!(plain, inner, "{name}: wrong plaintext");
            }
            let got = outcome(result);
            if got != expect {
                failures.push(format!("{name}: expected {expect}, got {got}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn rsa_keys_are_reported() {
        let doc = fixture();
        assert!(keys().has_rsa(), "the fixture set holds RSA-OAEP keys");
        let symmetric: Vec<Value> = doc["decryption_keys"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kty"] == "oct")
            .cloned()
            .collect();
        assert!(!symmetric.is_empty());
        let symmetric = parse_decryption_keys(&json!({ "keys": symmetric })).unwrap();
        assert!(!symmetric.has_rsa());
    }

    /// A token without kid is decrypted when the set holds a single key, and refused with
    /// KidMissing when several keys could apply (we never try keys in turn).
    #[test]
    fn single_key_needs_no_kid() {
        let doc = fixture();
        let single = json!({ "keys": [doc["decryption_keys"]["keys"][0].clone()] });
        let single = parse_decryption_keys(&single).unwrap();
        let t = token("kid_missing_many_keys");
        assert_eq!(
            decrypt_nested(&t, &single, MAX).unwrap(),
            doc["inner_jws"].as_str().unwrap()
        );
        assert_eq!(
            decrypt_nested(&t, &keys(), MAX),
            Err(TokenProblem::KidMissing)
        );
        // A kid that names no key is a decryption failure even with a single key.
        assert_eq!(
            decrypt_nested(&token("unknown_kid"), &single, MAX),
            Err(TokenProblem::DecryptFailed)
        );
    }

    /// Size comes first: garbage longer than the limit is TooLarge, not Malformed.
    #[test]
    fn size_is_checked_before_parsing() {
        let keys = keys();
        assert_eq!(
            decrypt_nested(&"!".repeat(20), &keys, 10),
            Err(TokenProblem::TooLarge)
        );
        assert_eq!(
            decrypt_nested(&"!".repeat(10), &keys, 10),
            Err(TokenProblem::Malformed)
        );
        assert_eq!(decrypt_nested("", &keys, 10), Err(TokenProblem::Malformed));
        assert_eq!(
            decrypt_nested("....", &keys, 10),
            Err(TokenProblem::Malformed)
        );
    }

    #[test]
    fn is_jwe_counts_segments() {
        let cases: &[(&str, bool)] = &[
            ("a.b.c.d.e", true),
            ("a..c.d.e", true), // dir: empty encrypted key
            ("....", true),     // shape only; decrypt_nested rejects it
            ("a.b.c", false),   // a JWS
            ("a.b.c.d", false),
            ("a.b.c.d.e.f", false),
            ("", false),
        ];
        for (input, expected) in cases {
            assert_eq!(is_jwe(input), *expected, "{input:?}");
        }
        assert!(is_jwe(&token("dir_a256gcm")));
        assert!(!is_jwe(fixture()["inner_jws"].as_str().unwrap()));
    }

    #[test]
    fn base64url_is_strict() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("QQ", Some(b"A")),
            ("QUI", Some(b"AB")),
            ("QUJD", Some(b"ABC")),
            ("-_8", Some(&[0xfb, 0xff])),
            ("QR", None),   // non-canonical: trailing bits set
            ("QUJ", None),  // non-canonical
            ("Q", None),    // length 1 mod 4
            ("QQ==", None), // padding
            ("+/8", None),  // standard alphabet
            ("QU J", None), // whitespace
        ];
        for (input, expected) in cases {
            assert_eq!(decode_b64url(input).as_deref(), *expected, "{input:?}");
        }
    }

    #[test]
    fn jws_shape_check() {
        let cases: &[(&str, bool)] = &[
            ("ab.cd.ef", true),
            // A 1-character segment cannot be base64url (length 1 mod 4).
            ("a.b.c", false),
            ("ab.cd.", false),
            ("ab.cd", false),
            ("ab.cd.ef.gh", false),
            ("ab.cd.ef=", false),
            ("ab.cd.ef gh", false),
        ];
        for (input, expected) in cases {
            assert_eq!(looks_like_jws(input), *expected, "{input:?}");
        }
    }

    /// Duplicate members anywhere at the top level are refused; a well-formed header passes.
    #[test]
    fn header_rejects_duplicates_and_non_objects() {
        let ok = br#"{"alg":"dir","enc":"A256GCM","cty":"JWT"}"#;
        assert!(parse_header(ok).is_ok());
        let cases: &[(&[u8], TokenProblem)] = &[
            (
                br#"{"alg":"dir","enc":"A256GCM","cty":"JWT","cty":"JWT"}"#,
                TokenProblem::Malformed,
            ),
            (br#"[]"#, TokenProblem::Malformed),
            (br#""dir""#, TokenProblem::Malformed),
            (
                br#"{"alg":"dir","enc":"A256GCM","cty":"JWT"} x"#,
                TokenProblem::Malformed,
            ),
            (
                br#"{"alg":"dir","enc":"A256GCM","cty":7}"#,
                TokenProblem::Malformed,
            ),
            (
                br#"{"alg":"RSA1_5","enc":"A256GCM","cty":"JWT"}"#,
                TokenProblem::AlgorithmNotAllowed,
            ),
            (
                br#"{"alg":"dir","enc":"A256GCM","cty":"JWT","zip":"DEF"}"#,
                TokenProblem::AlgorithmNotAllowed,
            ),
            (
                br#"{"alg":"dir","enc":"A256GCM","cty":"JWT","crit":[]}"#,
                TokenProblem::UnknownCritical,
            ),
            (
                br#"{"alg":"dir","enc":"A256GCM","cty":"JWT","x5c":[]}"#,
                TokenProblem::EmbeddedKey,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_header(input).err(),
                Some(*expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// One mutation of a valid key per row; the error path must name the offending member.
    #[test]
    fn parse_decryption_keys_table() {
        let doc = fixture();
        let valid = doc["decryption_keys"]["keys"].as_array().unwrap().clone();
        let rsa = valid[4].clone();
        let with = |index: usize, member: &str, value: Value| {
            let mut keys = valid.clone();
            keys[index][member] = value;
            json!({ "keys": keys })
        };
        let without = |index: usize, member: &str| {
            let mut keys = valid.clone();
            keys[index].as_object_mut().unwrap().remove(member);
            json!({ "keys": keys })
        };
        let single = |key: Value| json!({ "keys": [key] });
        let mut small_rsa = rsa.clone();
        // A tiny modulus (also inconsistent with p and q): the size check must answer first,
        // before any expensive validation.
        small_rsa["n"] = json!("AQAB");
        let mut wrong_dp = rsa.clone();
        wrong_dp["dp"] = rsa["dq"].clone();
        let mut wrong_qi = rsa.clone();
        wrong_qi["qi"] = rsa["dp"].clone();
        let mut wrong_d = rsa.clone();
        wrong_d["d"] = doc["extra_keys"]["keys"][1]["d"].clone();
        let mut same_pq = rsa.clone();
        same_pq["q"] = rsa["p"].clone();
        let mut no_crt = rsa.clone();
        for m in ["dp", "dq", "qi"] {
            no_crt.as_object_mut().unwrap().remove(m);
        }
        let mut public_only = rsa.clone();
        for m in ["d", "p", "q", "dp", "dq", "qi"] {
            public_only.as_object_mut().unwrap().remove(m);
        }
        let too_many: Vec<Value> = (0..=MAX_DECRYPTION_KEYS)
            .map(|i| {
                let mut k = valid[0].clone();
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();

        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            ("whole fixture", json!({ "keys": valid.clone() }), None),
            ("rsa without dp/dq/qi", single(no_crt), None),
            ("not an object", json!([]), Some("")),
            ("keys missing", json!({}), Some("keys")),
            ("keys empty", json!({ "keys": [] }), Some("keys")),
            ("too many keys", json!({ "keys": too_many }), Some("keys")),
            ("key not an object", json!({ "keys": [1] }), Some("keys[0]")),
            (
                "kid missing with several keys",
                without(1, "kid"),
                Some("keys[1].kid"),
            ),
            (
                "duplicate kid",
                with(1, "kid", json!("dir-256")),
                Some("keys[1].kid"),
            ),
            (
                "kid not a string",
                with(0, "kid", json!(1)),
                Some("keys[0].kid"),
            ),
            ("use sig", with(0, "use", json!("sig")), Some("keys[0].use")),
            ("alg missing", without(0, "alg"), Some("keys[0].alg")),
            (
                "alg unknown",
                with(0, "alg", json!("A192KW")),
                Some("keys[0].alg"),
            ),
            (
                "alg wrong case",
                with(0, "alg", json!("DIR")),
                Some("keys[0].alg"),
            ),
            ("kty missing", without(0, "kty"), Some("keys[0].kty")),
            ("kty EC", with(0, "kty", json!("EC")), Some("keys[0].kty")),
            (
                "oct with RSA alg",
                with(0, "alg", json!("RSA-OAEP")),
                Some("keys[0].alg"),
            ),
            (
                "RSA with dir alg",
                with(4, "alg", json!("dir")),
                Some("keys[4].alg"),
            ),
            (
                "dir key of 24 bytes",
                with(0, "k", json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
                Some("keys[0].k"),
            ),
            (
                "A256KW key of 16 bytes",
                with(2, "k", valid[1]["k"].clone()),
                Some("keys[2].k"),
            ),
            (
                "A128KW key of 32 bytes",
                with(3, "k", valid[0]["k"].clone()),
                Some("keys[3].k"),
            ),
            (
                "k padded",
                with(
                    0,
                    "k",
                    json!(format!("{}=", valid[0]["k"].as_str().unwrap())),
                ),
                Some("keys[0].k"),
            ),
            ("k missing", without(0, "k"), Some("keys[0].k")),
            ("rsa public only", single(public_only), Some("keys[0].d")),
            ("rsa p missing", without(4, "p"), Some("keys[4].p")),
            ("rsa too small", single(small_rsa), Some("keys[0].n")),
            ("rsa d of another key", single(wrong_d), Some("keys[0].d")),
            ("rsa p == q", single(same_pq), Some("keys[0].q")),
            ("rsa wrong dp", single(wrong_dp), Some("keys[0].dp")),
            ("rsa wrong qi", single(wrong_qi), Some("keys[0].qi")),
            (
                "rsa multi-prime",
                with(4, "oth", json!([])),
                Some("keys[4].oth"),
            ),
            (
                "rsa n not base64url",
                with(4, "n", json!("+++")),
                Some("keys[4].n"),
            ),
        ];
        for (name, input, expected_path) in cases {
            match (parse_decryption_keys(&input), expected_path) {
                (Ok(_), None) => {}
                (Err(errors), Some(path)) => {
                    assert!(errors.iter().any(|e| e.path == path), "{name}: {errors:?}");
                }
                (Ok(_), Some(path)) => panic!("{name}: accepted, expected error at {path}"),
                (Err(errors), None) => panic!("{name}: rejected: {errors:?}"),
            }
        }
    }

    /// Errors and Debug output never carry key material.
    #[test]
    fn no_key_material_in_errors_or_debug() {
        let doc = fixture();
        let keys = keys();
        let debug = format!("{keys:?}");
        assert!(debug.contains("dir-256") && debug.contains("RSA-OAEP-256"));
        let rsa = &doc["decryption_keys"]["keys"][4];
        let mut bad = rsa.clone();
        bad["dp"] = rsa["dq"].clone();
        let errors = parse_decryption_keys(&json!({ "keys": [bad] })).unwrap_err();
        for secret in [
            &doc["decryption_keys"]["keys"][0]["k"],
            &rsa["d"],
            &rsa["p"],
            &rsa["dq"],
        ] {
            let secret = secret.as_str().unwrap();
            assert!(!debug.contains(secret));
            assert!(errors
                .iter()
                .all(|e| !e.message.contains(secret) && !e.path.contains(secret)));
        }
        assert_eq!(keys.len(), 6);
        assert!(!keys.is_empty());
        assert_eq!(keys.kids().count(), 6);
    }
}
