//! Strict JWS compact serialization (RFC 7515 section 7.1) and the JOSE header.
//!
//! Strictness is the point: every parser that is lenient somewhere (padding accepted, a stray
//! `+`, a duplicate `alg`) is a place where two implementations can disagree about what a token
//! says. So a token is refused unless it is exactly `b64url(header).b64url(payload).b64url(sig)`
//! with canonical base64url, and a header that names key material or extensions is refused
//! before any key is looked up.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::alg::Algorithm;
use super::problem::TokenProblem;

/// The JOSE header of a JWS, as far as api-guard uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub cty: Option<String>,
}

/// Header members that carry a key or say where to fetch one. Trusting any of them lets the
/// token choose its own verification key, so their mere presence refuses the token.
const EMBEDDED_KEY_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// Strict compact JWS: length <= `max_bytes` checked FIRST; exactly 3 non-empty segments of the
/// base64url alphabet, no `=` padding; header decodes to a JSON object with no duplicate
/// members; `alg` via [`Algorithm::from_name`] (none/unknown -> `AlgorithmNotAllowed`); `crit`
/// present -> `UnknownCritical` (we implement no extensions); `jwk`/`jku`/`x5u`/`x5c` present ->
/// `EmbeddedKey`; `kid`, `typ` and `cty` must be strings if present; `typ`, if present, must be
/// `JWT` or end in `+jwt` (any case), which is also what jwt-simple enforces later.
pub fn parse_jws_header(token: &str, max_bytes: usize) -> Result<JoseHeader, TokenProblem> {
    if token.len() > max_bytes {
        return Err(TokenProblem::TooLarge);
    }
    let (header_b64, _payload_b64, _sig_b64) = split_jws(token).ok_or(TokenProblem::Malformed)?;
    let bytes = decode_segment(header_b64).ok_or(TokenProblem::Malformed)?;
    let header = parse_json_object(&bytes).ok_or(TokenProblem::Malformed)?;

    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            Algorithm::from_name(name).ok_or(TokenProblem::AlgorithmNotAllowed)?
        }
        _ => return Err(TokenProblem::Malformed),
    };
    if header.contains_key("crit") {
        return Err(TokenProblem::UnknownCritical);
    }
    if EMBEDDED_KEY_MEMBERS.iter().any(|m| header.contains_key(*m)) {
        return Err(TokenProblem::EmbeddedKey);
    }
    let kid = optional_string(&header, "kid")?;
    let typ = optional_string(&header, "typ")?;
    let cty = optional_string(&header, "cty")?;
    if let Some(t) = &typ {
        let ok = t.eq_ignore_ascii_case("JWT")
            || t.len() > 4
                && t.get(t.len() - 4..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+jwt"));
        if !ok {
            return Err(TokenProblem::Malformed);
        }
    }
    Ok(JoseHeader { alg, kid, typ, cty })
}

fn optional_string(
    header: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, TokenProblem> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenProblem::Malformed),
    }
}

/// Splits a compact JWS into its three segments, each non-empty and of the canonical base64url
/// alphabet (no padding, no length that no byte string encodes to). Decodes nothing.
pub(crate) fn split_jws(token: &str) -> Option<(&str, &str, &str)> {
    let mut parts = token.split('.');
    let header = parts.next()?;
    let payload = parts.next()?;
    let sig = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    [header, payload, sig]
        .iter()
        .all(|s| is_b64url_segment(s))
        .then_some((header, payload, sig))
}

fn is_b64url_segment(s: &str) -> bool {
    !s.is_empty() && s.len() % 4 != 1 && s.bytes().all(|b| b64_value(b).is_some())
}

fn b64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Strict base64url without padding (RFC 7515 section 2): the URL-safe alphabet only, no `=`,
/// and the unused low bits of the last character must be zero, so every byte string has
/// exactly one encoding (no two spellings of the same signature or key).
pub(crate) fn decode_segment(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut acc: u32 = 0;
        for &c in chunk {
            acc = (acc << 6) | u32::from(b64_value(c)?);
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => {
                // 18 bits: two bytes and 2 unused bits that must be zero.
                if acc & 0b11 != 0 {
                    return None;
                }
                out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
            }
            2 => {
                // 12 bits: one byte and 4 unused bits that must be zero.
                if acc & 0b1111 != 0 {
                    return None;
                }
                out.push((acc >> 4) as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A JSON object whose top-level member names are unique. serde_json's `Value` keeps the last
/// of two duplicates silently, while other parsers keep the first: a header like
/// `{"alg":"HS256","alg":"RS256"}` would mean different things to different verifiers.
struct UniqueObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value: Value = access.next_value()?;
                    if map.insert(key, value).is_some() {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                }
                Ok(UniqueObject(map))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses a JSON object with unique top-level member names; anything else is `None`.
pub(crate) fn parse_json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<UniqueObject>(bytes)
        .ok()
        .map(|o| o.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        // Test-only encoder (the production code only decodes).
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.len();
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=n {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn token(header: &str) -> String {
        format!("{}.{}.c2ln", b64(header.as_bytes()), b64(b"{}"))
    }

    #[test]
    fn decode_segment_table() {
        let cases: &[(&str, Option<&[u8]>, &str)] = &[
            (
                "",
                Some(b""),
                "empty decodes to nothing (callers refuse empty segments)",
            ),
            ("YQ", Some(b"a"), "one byte"),
            ("YWI", Some(b"ab"), "two bytes"),
            ("YWJj", Some(b"abc"), "three bytes"),
            ("-_8", Some(&[0xfb, 0xff]), "URL-safe alphabet"),
            ("YR", None, "non-zero unused bits: a second spelling of 'a'"),
            ("YWJ", None, "non-zero unused bits in a 3-char tail"),
            ("Y", None, "length 1 mod 4 encodes nothing"),
            ("YQ==", None, "padding is not base64url-without-padding"),
            ("+/8", None, "standard alphabet"),
            ("YW I", None, "whitespace"),
        ];
        for (input, want, why) in cases {
            assert_eq!(decode_segment(input).as_deref(), *want, "{why}");
        }
        // Round trip over every length up to a few blocks.
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            assert_eq!(decode_segment(&b64(&data[..n])).unwrap(), &data[..n]);
        }
    }

    #[test]
    fn split_jws_table() {
        let cases: &[(&str, bool, &str)] = &[
            ("a.b.c", false, "length-1 segments encode nothing"),
            ("ab.cd.ef", true, "three minimal segments"),
            ("ab.cd", false, "two segments"),
            ("ab.cd.ef.gh", false, "four segments"),
            (
                "ab.cd.ef.gh.ij",
                false,
                "five segments (a JWE is not a JWS)",
            ),
            ("ab..ef", false, "empty payload"),
            ("ab.cd.", false, "empty signature"),
            (".cd.ef", false, "empty header"),
            ("ab.cd.ef==", false, "padding"),
            ("ab.c+.ef", false, "standard base64 alphabet"),
        ];
        for (input, ok, why) in cases {
            assert_eq!(split_jws(input).is_some(), *ok, "{why}");
        }
    }

    #[test]
    fn parse_jws_header_table() {
        use TokenProblem::*;
        let ok = |alg, kid: Option<&str>, typ: Option<&str>| {
            Ok(JoseHeader {
                alg,
                kid: kid.map(str::to_owned),
                typ: typ.map(str::to_owned),
                cty: None,
            })
        };
        let cases: Vec<(&str, Result<JoseHeader, TokenProblem>, &str)> = vec![
            (
                r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
                ok(Algorithm::RS256, Some("k1"), Some("JWT")),
                "plain",
            ),
            (
                r#"{"alg":"EdDSA"}"#,
                ok(Algorithm::EdDSA, None, None),
                "kid and typ are optional here",
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt"}"#,
                ok(Algorithm::ES256, None, Some("at+jwt")),
                "explicit typing (RFC 9068)",
            ),
            (
                r#"{"alg":"ES256","typ":"jwt"}"#,
                ok(Algorithm::ES256, None, Some("jwt")),
                "typ is case-insensitive",
            ),
            (r#"{"alg":"none"}"#, Err(AlgorithmNotAllowed), "none"),
            (
                r#"{"alg":"NoNe"}"#,
                Err(AlgorithmNotAllowed),
                "none in any case",
            ),
            (
                r#"{"alg":"hs256"}"#,
                Err(AlgorithmNotAllowed),
                "alg names are case-sensitive",
            ),
            (
                r#"{"alg":"ES512"}"#,
                Err(AlgorithmNotAllowed),
                "unsupported algorithm",
            ),
            (r#"{"kid":"k1"}"#, Err(Malformed), "alg missing"),
            (r#"{"alg":256}"#, Err(Malformed), "alg not a string"),
            (
                r#"{"alg":"RS256","crit":["exp"]}"#,
                Err(UnknownCritical),
                "we implement no extension",
            ),
            (
                r#"{"alg":"RS256","crit":[]}"#,
                Err(UnknownCritical),
                "even an empty crit",
            ),
            (
                r#"{"alg":"RS256","jwk":{"kty":"EC"}}"#,
                Err(EmbeddedKey),
                "embedded key",
            ),
            (
                r#"{"alg":"RS256","jku":"https://x"}"#,
                Err(EmbeddedKey),
                "key set URL",
            ),
            (
                r#"{"alg":"RS256","x5u":"https://x"}"#,
                Err(EmbeddedKey),
                "certificate URL",
            ),
            (
                r#"{"alg":"RS256","x5c":["MIIB"]}"#,
                Err(EmbeddedKey),
                "certificate chain",
            ),
            (
                r#"{"alg":"RS256","kid":7}"#,
                Err(Malformed),
                "kid not a string",
            ),
            (
                r#"{"alg":"RS256","typ":"JOSE"}"#,
                Err(Malformed),
                "not a JWT",
            ),
            (
                r#"{"alg":"RS256","typ":"+jwt"}"#,
                Err(Malformed),
                "suffix alone is not a media type",
            ),
            (
                r#"{"alg":"RS256","cty":1}"#,
                Err(Malformed),
                "cty not a string",
            ),
            (
                r#"{"alg":"HS256","alg":"RS256"}"#,
                Err(Malformed),
                "duplicate member",
            ),
            (r#"["RS256"]"#, Err(Malformed), "not an object"),
            ("not json", Err(Malformed), "not JSON"),
            (r#"{"alg":"RS256"} x"#, Err(Malformed), "trailing garbage"),
        ];
        for (header, want, why) in cases {
            assert_eq!(parse_jws_header(&token(header), 8192), want, "{why}");
        }
    }

    #[test]
    fn size_is_checked_before_anything_else() {
        let t = token(r#"{"alg":"RS256"}"#);
        assert_eq!(
            parse_jws_header(&t, t.len()).map(|h| h.alg),
            Ok(Algorithm::RS256)
        );
        assert_eq!(
            parse_jws_header(&t, t.len() - 1),
            Err(TokenProblem::TooLarge)
        );
        // Garbage that is too large says TooLarge, not Malformed: nothing was decoded.
        assert_eq!(
            parse_jws_header(&"%".repeat(100), 99),
            Err(TokenProblem::TooLarge)
        );
        assert_eq!(parse_jws_header("", 0), Err(TokenProblem::Malformed));
    }

    #[test]
    fn parse_json_object_rejects_duplicates_only_at_top_level() {
        assert!(parse_json_object(br#"{"a":{"b":1,"c":2}}"#).is_some());
        assert!(parse_json_object(br#"{"a":1,"a":1}"#).is_none());
        assert!(parse_json_object(b"null").is_none());
    }
}
