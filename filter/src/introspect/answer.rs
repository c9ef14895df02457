//! The introspection exchange itself (RFC 7662): the request body sent to the service, the
//! parsing of its JSON answer into an [`Answer`] whose fields are safe to forward upstream, and
//! the compact binary encoding the cache stores answers in.

use serde_json::Value;

use crate::time::UnixTime;

/// Largest answer body parsed; a bigger one is a failed callout.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Largest credential sent to the service (bigger ones are refused before any callout).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Bounds of the identity fields (`sub`, `client_id`, `username`, `token_type`).
pub const MAX_ID_BYTES: usize = 255;
/// Bounds of the granted scopes kept per answer.
pub const MAX_SCOPES: usize = 32;
pub const MAX_SCOPE_BYTES: usize = 128;

pub use crate::digest::TokenDigest;

/// What the service said about one credential, validated. Inactive answers carry nothing but
/// `active: false` (RFC 7662 section 2.2: other members of an inactive answer mean nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub active: bool,
    /// `sub`: visible ASCII, 1-255 bytes (header-safe).
    pub subject: Option<String>,
    /// `client_id`: visible ASCII, 1-255 bytes.
    pub client_id: Option<String>,
    /// `username`: visible ASCII, 1-255 bytes; any other value is dropped (display only).
    pub username: Option<String>,
    /// `token_type`: same rule as `username`.
    pub token_type: Option<String>,
    /// `scope`, split on spaces: RFC 6749 scope-tokens, at most 32 of at most 128 bytes.
    pub scopes: Vec<String>,
    /// `exp` (seconds); an active answer is never used at or after it.
    pub exp: Option<UnixTime>,
}

impl Answer {
    pub fn inactive() -> Answer {
        Answer::default()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Active and not expired at `now_ms`.
    pub fn usable_at(&self, now_ms: u64) -> bool {
        self.active && self.exp.is_none_or(|e| exp_ms(e) > now_ms)
    }
}

/// `exp` in Unix milliseconds (0 for times before the epoch: already expired).
pub(crate) fn exp_ms(exp: UnixTime) -> u64 {
    u64::try_from(exp.0).unwrap_or(0).saturating_mul(1000)
}

/// Whether a credential may be sent to the service at all: 1-4096 visible ASCII bytes. Anything
/// else (control characters, non-ASCII, huge values) is refused locally as an invalid credential.
pub fn acceptable_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_BYTES && token.bytes().all(is_visible)
}

fn is_visible(c: u8) -> bool {
    (0x21..=0x7e).contains(&c)
}

/// The RFC 7662 request body (`application/x-www-form-urlencoded`):
/// `token=<percent-encoded>&token_type_hint=access_token`. Everything but RFC 3986 unreserved
/// characters is percent-encoded, which every form decoder reads back exactly.
pub fn request_body(token: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(token.len() * 3 + 40);
    out.extend_from_slice(b"token=");
    for c in token.bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else {
            out.push(b'%');
            out.push(HEX.get(usize::from(c >> 4)).copied().unwrap_or(b'0'));
            out.push(HEX.get(usize::from(c & 0xf)).copied().unwrap_or(b'0'));
        }
    }
    out.extend_from_slice(b"&token_type_hint=access_token");
    out
}

fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_BYTES && s.bytes().all(is_visible)
}

/// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn scope_token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SCOPE_BYTES
        && s.bytes().all(|c| is_visible(c) && c != b'"' && c != b'\\')
}

/// A required identity member: absent is fine, a non-string or an unsafe value fails the answer
/// (it would be forwarded upstream as who the caller is).
fn strict_id(
    obj: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<String>, BadAnswer> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if id_ok(s) => Ok(Some(s.clone())),
        Some(_) => Err(BadAnswer),
    }
}

/// A display member: anything unsafe is dropped.
fn lenient_id(obj: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match obj.get(name) {
        Some(Value::String(s)) if id_ok(s) => Some(s.clone()),
        _ => None,
    }
}

/// A NumericDate member (seconds; a fraction is truncated). Present but not a number: `Err`.
fn numeric_date(
    obj: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<i64>, BadAnswer> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                // Out-of-range floats saturate: a far-future exp, or an expired one.
                #[allow(clippy::cast_possible_truncation)]
                Ok(Some(f as i64))
            } else {
                Ok(Some(i64::MAX))
            }
        }
        Some(_) => Err(BadAnswer),
    }
}

/// An introspection answer that cannot be used: the callout counts as failed. Carries nothing
/// of the body (it is attacker-influenced and may hold the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAnswer;

/// Parses the service's answer (the body of a 200). `Err(BadAnswer)` means a failed callout: not a
/// JSON object, over 64 KiB, `active` missing or not a boolean, an identity member that is not
/// header-safe, or a `scope` that is not a list of at most 32 valid scope-tokens. Unknown members
/// are ignored (RFC 7662 allows extensions). An active answer whose `exp` is not after `now`, or
/// whose `nbf` is after `now`, is an inactive answer.
pub fn parse_answer(body: &[u8], now: UnixTime) -> Result<Answer, BadAnswer> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(BadAnswer);
    }
    // serde_json bounds nesting (128 levels), so no input recurses without limit.
    let value: Value = serde_json::from_slice(body).map_err(|_| BadAnswer)?;
    let Value::Object(obj) = value else {
        return Err(BadAnswer);
    };
    let Some(Value::Bool(active)) = obj.get("active") else {
        return Err(BadAnswer);
    };
    if !active {
        return Ok(Answer::inactive());
    }
    let subject = strict_id(&obj, "sub")?;
    let client_id = strict_id(&obj, "client_id")?;
    let exp = numeric_date(&obj, "exp")?;
    let nbf = numeric_date(&obj, "nbf")?;
    let scopes = match obj.get("scope") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            let mut scopes: Vec<String> = Vec::new();
            for token in s.split(' ').filter(|t| !t.is_empty()) {
                if !scope_token_ok(token) || scopes.len() >= MAX_SCOPES {
                    return Err(BadAnswer);
                }
                if !scopes.iter().any(|have| have == token) {
                    scopes.push(token.to_string());
                }
            }
            scopes
        }
        Some(_) => return Err(BadAnswer),
    };
    if exp.is_some_and(|e| e <= now.0) || nbf.is_some_and(|n| n > now.0) {
        return Ok(Answer::inactive());
    }
    Ok(Answer {
        active: true,
        subject,
        client_id,
        username: lenient_id(&obj, "username"),
        token_type: lenient_id(&obj, "token_type"),
        scopes,
        exp: exp.map(UnixTime),
    })
}

// ---- compact binary encoding (cache entries) ----
//
// flags u8 (bit 0 active, bit 1 exp present, bits 2-5 sub / client_id / username / token_type
// present), exp i64 LE if present, each present id as u8 length + bytes, then the scope count
// u8 and each scope as u8 length + bytes. At most 1 + 8 + 4 * 256 + 1 + 32 * 129 = 5162 bytes.

pub const MAX_ENCODED_ANSWER: usize = 1 + 8 + 4 * 256 + 1 + MAX_SCOPES * 129;

pub(crate) fn encode_answer(a: &Answer, out: &mut Vec<u8>) {
    let ids = [&a.subject, &a.client_id, &a.username, &a.token_type];
    let mut flags = u8::from(a.active);
    if a.exp.is_some() {
        flags |= 2;
    }
    for (i, id) in ids.iter().enumerate() {
        if id.is_some() {
            flags |= 4 << i;
        }
    }
    out.push(flags);
    if let Some(e) = a.exp {
        out.extend_from_slice(&e.0.to_le_bytes());
    }
    let push_str = |s: &str, max: usize, out: &mut Vec<u8>| {
        // Values are validated on the way in; the cut is a guard against misuse, never hit.
        let b = s.as_bytes().get(..s.len().min(max)).unwrap_or_default();
        out.push(u8::try_from(b.len()).unwrap_or(0));
        out.extend_from_slice(b);
    };
    for s in ids.into_iter().flatten() {
        push_str(s, MAX_ID_BYTES, out);
    }
    let scopes = a
        .scopes
        .get(..a.scopes.len().min(MAX_SCOPES))
        .unwrap_or_default();
    out.push(u8::try_from(scopes.len()).unwrap_or(0));
    for s in scopes {
        push_str(s, MAX_SCOPE_BYTES, out);
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.rest.get(..n)?, self.rest.get(n..)?);
        self.rest = tail;
        Some(head)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::from(self.byte()?);
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Decodes an answer and returns the bytes after it; `None` for anything malformed.
pub(crate) fn decode_answer(bytes: &[u8]) -> Option<(Answer, &[u8])> {
    let mut r = Reader { rest: bytes };
    let flags = r.byte()?;
    let exp = if flags & 2 != 0 {
        let b: [u8; 8] = r.take(8)?.try_into().ok()?;
        Some(UnixTime(i64::from_le_bytes(b)))
    } else {
        None
    };
    let mut ids: [Option<String>; 4] = Default::default();
    for (i, id) in ids.iter_mut().enumerate() {
        if flags & (4 << i) != 0 {
            *id = Some(r.string()?);
        }
    }
    let count = usize::from(r.byte()?);
    if count > MAX_SCOPES {
        return None;
    }
    let mut scopes = Vec::with_capacity(count);
    for _ in 0..count {
        scopes.push(r.string()?);
    }
    let [subject, client_id, username, token_type] = ids;
    Some((
        Answer {
            active: flags & 1 != 0,
            subject,
            client_id,
            username,
            token_type,
            scopes,
            exp,
        },
        r.rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    #[test]
    fn request_body_table() {
        let cases: &[(&str, &str)] = &[
            ("abc", "token=abc&token_type_hint=access_token"),
            ("a.b-c_d~e", "token=a.b-c_d~e&token_type_hint=access_token"),
            (
                "a+b/c=&d%",
                "token=a%2Bb%2Fc%3D%26d%25&token_type_hint=access_token",
            ),
            ("", "token=&token_type_hint=access_token"),
            ("é ", "token=%C3%A9%20&token_type_hint=access_token"),
        ];
        for (token, want) in cases {
            assert_eq!(
                String::from_utf8(request_body(token)).unwrap(),
                *want,
                "{token:?}"
            );
        }
    }

    proptest::proptest! {
        /// Any token survives the form encoding: a form decoder (the crate's own query
        /// parser) reads back exactly the token, and nothing else.
        #[test]
        fn request_body_round_trips(token in "\\PC{0,40}") {
            let mut path = b"/?".to_vec();
            path.extend_from_slice(&request_body(&token));
            let tokens: Vec<Vec<u8>> =
                crate::request::query_values(&path, "token").collect();
            proptest::prop_assert_eq!(tokens, vec![token.as_bytes().to_vec()]);
            let hints: Vec<Vec<u8>> =
                crate::request::query_values(&path, "token_type_hint").collect();
            proptest::prop_assert_eq!(hints, vec![b"access_token".to_vec()]);
        }
    }

    #[test]
    fn acceptable_token_table() {
        let long = "a".repeat(MAX_TOKEN_BYTES);
        let too_long = "a".repeat(MAX_TOKEN_BYTES + 1);
        let cases: &[(&str, bool)] = &[
            ("abc.def", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            ("a b", false),
            ("a\tb", false),
            ("é", false),
            ("a\u{7f}", false),
        ];
        for (t, want) in cases {
            assert_eq!(acceptable_token(t), *want, "{:?}", t.get(..10));
        }
    }

    fn active(f: impl FnOnce(&mut Answer)) -> Result<Answer, BadAnswer> {
        let mut a = Answer {
            active: true,
            ..Answer::default()
        };
        f(&mut a);
        Ok(a)
    }

    #[test]
    fn parse_answer_table() {
        let big = format!(
            "{{\"active\":true,\"x\":\"{}\"}}",
            "a".repeat(MAX_ANSWER_BYTES)
        );
        let many_scopes = format!(
            "{{\"active\":true,\"scope\":\"{}\"}}",
            (0..33)
                .map(|i| format!("s{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let cases: Vec<(&str, Result<Answer, BadAnswer>)> = vec![
            (r#"{"active":false}"#, Ok(Answer::inactive())),
            (
                r#"{"active":false,"sub":"x","scope":"a"}"#,
                Ok(Answer::inactive()),
            ),
            (r#"{"active":true}"#, active(|_| {})),
            (
                r#"{"active":true,"sub":"u1","client_id":"c1","username":"bob","token_type":"Bearer","scope":"read  write read","exp":1800000060,"iat":1,"ext":{"a":[1]}}"#,
                active(|a| {
                    a.subject = Some("u1".into());
                    a.client_id = Some("c1".into());
                    a.username = Some("bob".into());
                    a.token_type = Some("Bearer".into());
                    a.scopes = vec!["read".into(), "write".into()];
                    a.exp = Some(UnixTime(1_800_000_060));
                }),
            ),
            // Expired, expiring now, not yet valid: inactive.
            (
                r#"{"active":true,"exp":1799999999}"#,
                Ok(Answer::inactive()),
            ),
            (
                r#"{"active":true,"exp":1800000000}"#,
                Ok(Answer::inactive()),
            ),
            (
                r#"{"active":true,"nbf":1800000001}"#,
                Ok(Answer::inactive()),
            ),
            (
                r#"{"active":true,"exp":1800000001.9}"#,
                active(|a| a.exp = Some(UnixTime(1_800_000_001))),
            ),
            (
                r#"{"active":true,"exp":1e300}"#,
                active(|a| a.exp = Some(UnixTime(i64::MAX))),
            ),
            // A display name that is not header-safe is dropped, not forwarded.
            (r#"{"active":true,"username":"Zoë"}"#, active(|_| {})),
            (r#"{"active":true,"token_type":7}"#, active(|_| {})),
            // Failures.
            (r#"{"active":"true"}"#, Err(BadAnswer)),
            (r#"{"active":1}"#, Err(BadAnswer)),
            (r#"{}"#, Err(BadAnswer)),
            (r#"[{"active":true}]"#, Err(BadAnswer)),
            (r#"{"active":true"#, Err(BadAnswer)),
            ("", Err(BadAnswer)),
            (r#"{"active":true,"sub":"a b"}"#, Err(BadAnswer)),
            (r#"{"active":true,"sub":""}"#, Err(BadAnswer)),
            (r#"{"active":true,"sub":"a\r\nx-admin: 1"}"#, Err(BadAnswer)),
            (r#"{"active":true,"sub":5}"#, Err(BadAnswer)),
            (r#"{"active":true,"client_id":"Zoë"}"#, Err(BadAnswer)),
            (r#"{"active":true,"scope":["read"]}"#, Err(BadAnswer)),
            (r#"{"active":true,"scope":"re\"ad"}"#, Err(BadAnswer)),
            (r#"{"active":true,"exp":"soon"}"#, Err(BadAnswer)),
            (r#"{"active":true,"nbf":true}"#, Err(BadAnswer)),
            (&many_scopes, Err(BadAnswer)),
            (&big, Err(BadAnswer)),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_answer(body.as_bytes(), NOW),
                want,
                "{:?}",
                body.get(..80)
            );
        }
        let long_sub = format!("{{\"active\":true,\"sub\":\"{}\"}}", "s".repeat(256));
        assert_eq!(parse_answer(long_sub.as_bytes(), NOW), Err(BadAnswer));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_answer(deep.as_bytes(), NOW), Err(BadAnswer));
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let full = Answer {
            active: true,
            subject: Some("s".repeat(MAX_ID_BYTES)),
            client_id: Some("c".into()),
            username: None,
            token_type: Some("Bearer".into()),
            scopes: (0..MAX_SCOPES).map(|i| format!("{i}").repeat(64)).collect(),
            exp: Some(UnixTime(-5)),
        };
        for a in [Answer::inactive(), full] {
            let mut bytes = Vec::new();
            encode_answer(&a, &mut bytes);
            assert!(bytes.len() <= MAX_ENCODED_ANSWER);
            bytes.push(9);
            let (back, rest) = decode_answer(&bytes).unwrap();
            assert_eq!((back, rest), (a, &[9u8][..]));
            // Every truncation is rejected, never misread.
            for n in 0..bytes.len() - 1 {
                assert!(decode_answer(bytes.get(..n).unwrap()).is_none(), "{n}");
            }
        }
        assert!(decode_answer(&[0, 33]).is_none(), "too many scopes");
        assert!(decode_answer(&[4, 2, 0xff, 0xfe, 0]).is_none(), "not UTF-8");
    }

    #[test]
    fn usable_at_respects_exp() {
        let a = Answer {
            active: true,
            exp: Some(UnixTime(10)),
            ..Answer::default()
        };
        assert!(a.usable_at(9_999));
        assert!(!a.usable_at(10_000));
        assert!(!Answer::inactive().usable_at(0));
        assert_eq!(format!("{:?}", TokenDigest::of(b"k")), "TokenDigest(..)");
    }
}
