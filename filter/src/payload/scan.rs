//! A single-pass, iterative JSON well-formedness and structure-limit scanner (RFC 8259).
//!
//! It checks a body for which no tree is needed (no schema) without allocating: the scanner
//! keeps its whole state in fixed-size arrays on the stack (depth is capped at
//! [`MAX_DEPTH_CAP`]), and never recurses. When a schema needs a tree, the parser
//! ([`super::doc`]) applies the same limits as it goes, stopping a JSON bomb (deep nesting,
//! huge arrays, long strings, millions of tiny values) once a limit is passed; the scan then
//! names the first problem in the body, which is the answer the body check gives.
//! Its answer agrees with `serde_json` on well-formedness (a property test checks it), except
//! that `serde_json` also refuses numbers whose magnitude overflows an `f64` (`1e400`); the
//! parser refuses those too, and the body check reports that case as malformed.

/// The deepest nesting any configuration may allow. `serde_json` refuses to build trees deeper
/// than 127 levels, so a higher limit could never validate a schema anyway.
pub const MAX_DEPTH_CAP: u32 = 100;

/// Structural limits on one JSON document. Counts are per container; strings are measured in
/// bytes as they appear in the body (escapes included, which can only over-count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Deepest nesting of arrays and objects; `[]` is depth 1. At most [`MAX_DEPTH_CAP`].
    pub max_depth: u32,
    /// Most members in one object.
    pub max_members: u32,
    /// Most items in one array.
    pub max_array_items: u32,
    /// Longest string (keys included), in raw bytes between the quotes.
    pub max_string_bytes: u32,
    /// Most values in the document: every scalar, array and object counts once (keys do not).
    pub max_total_values: u32,
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits {
            max_depth: 32,
            max_members: 1000,
            max_array_items: 10_000,
            max_string_bytes: 65_536,
            max_total_values: 100_000,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// Not JSON (or not UTF-8). `offset` is the byte position where scanning failed; it is a
    /// position, never content, so it is safe to log.
    Malformed { offset: usize },
    /// Well-formed so far, but a structural limit was passed.
    Limit(JsonLimit),
}

pub use crate::rejection::payload::JsonLimit;

const DEPTH_SLOTS: usize = MAX_DEPTH_CAP as usize;

/// What the scanner expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (document start, after `:` or `,` in an array).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key string or `}` (just after `{`).
    KeyOrClose,
    /// A key string (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the closing bracket of the current container (after a value).
    CommaOrClose,
    /// Only whitespace (the top-level value is complete).
    End,
}

/// Checks that `body` is one well-formed JSON text within `limits`. Allocates nothing.
pub fn scan(body: &[u8], limits: &JsonLimits) -> Result<(), ScanError> {
    scan_counting(body, limits).map(|_| ())
}

/// [`scan`], answering how many values the document holds (every scalar, array and object,
/// as `max_total_values` counts them), so a parser can size its arena once.
pub fn scan_counting(body: &[u8], limits: &JsonLimits) -> Result<u32, ScanError> {
    let max_depth = limits.max_depth.min(MAX_DEPTH_CAP) as usize;
    // Per open container: is it an object, and how many members/items it has so far.
    let mut is_object = [false; DEPTH_SLOTS];
    let mut counts = [0u32; DEPTH_SLOTS];
    let mut depth = 0usize;
    let mut total: u32 = 0;
    let mut expect = Expect::Value;
    let mut i = 0usize;
    let bad = |offset: usize| Err(ScanError::Malformed { offset });

    loop {
        // Whitespace (RFC 8259 §2: space, tab, LF, CR only).
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = body.get(i) {
            i += 1;
        }
        let Some(&c) = body.get(i) else {
            return if expect == Expect::End {
                Ok(total)
            } else {
                bad(i)
            };
        };
        match expect {
            Expect::End => return bad(i),
            Expect::Colon => {
                if c != b':' {
                    return bad(i);
                }
                i += 1;
                expect = Expect::Value;
                continue;
            }
            Expect::CommaOrClose => {
                let top = depth.checked_sub(1).and_then(|d| is_object.get(d).copied());
                match (c, top) {
                    (b',', Some(obj)) => {
                        i += 1;
                        expect = if obj { Expect::Key } else { Expect::Value };
                    }
                    (b'}', Some(true)) | (b']', Some(false)) => {
                        i += 1;
                        depth -= 1;
                        expect = if depth == 0 {
                            Expect::End
                        } else {
                            Expect::CommaOrClose
                        };
                    }
                    _ => return bad(i),
                }
                continue;
            }
            Expect::KeyOrClose | Expect::Key => {
                if c == b'}' && expect == Expect::KeyOrClose {
                    i += 1;
                    depth -= 1;
                    expect = if depth == 0 {
                        Expect::End
                    } else {
                        Expect::CommaOrClose
                    };
                    continue;
                }
                if c != b'"' {
                    return bad(i);
                }
                let count = counts
                    .get_mut(depth.wrapping_sub(1))
                    .ok_or(ScanError::Malformed { offset: i })?;
                *count += 1;
                if *count > limits.max_members {
                    return Err(ScanError::Limit(JsonLimit::Members));
                }
                i = string(body, i, limits.max_string_bytes)?;
                expect = Expect::Colon;
                continue;
            }
            Expect::ValueOrClose if c == b']' => {
                i += 1;
                depth -= 1;
                expect = if depth == 0 {
                    Expect::End
                } else {
                    Expect::CommaOrClose
                };
                continue;
            }
            Expect::Value | Expect::ValueOrClose => {}
        }

        // A value starts here.
        total += 1;
        if total > limits.max_total_values {
            return Err(ScanError::Limit(JsonLimit::TotalValues));
        }
        if let Some(false) = depth.checked_sub(1).and_then(|d| is_object.get(d).copied()) {
            if let Some(count) = counts.get_mut(depth - 1) {
                *count += 1;
                if *count > limits.max_array_items {
                    return Err(ScanError::Limit(JsonLimit::ArrayItems));
                }
            }
        }
        match c {
            b'{' | b'[' => {
                if depth >= max_depth {
                    return Err(ScanError::Limit(JsonLimit::Depth));
                }
                if let (Some(o), Some(n)) = (is_object.get_mut(depth), counts.get_mut(depth)) {
                    *o = c == b'{';
                    *n = 0;
                }
                depth += 1;
                i += 1;
                expect = if c == b'{' {
                    Expect::KeyOrClose
                } else {
                    Expect::ValueOrClose
                };
                continue;
            }
            b'"' => i = string(body, i, limits.max_string_bytes)?,
            b't' => i = literal(body, i, b"true")?,
            b'f' => i = literal(body, i, b"false")?,
            b'n' => i = literal(body, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number(body, i)?,
            _ => return bad(i),
        }
        expect = if depth == 0 {
            Expect::End
        } else {
            Expect::CommaOrClose
        };
    }
}

fn literal(body: &[u8], at: usize, word: &[u8]) -> Result<usize, ScanError> {
    let end = at + word.len();
    if body.get(at..end) == Some(word) {
        Ok(end)
    } else {
        Err(ScanError::Malformed { offset: at })
    }
}

fn digits(body: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = body.get(i) {
        i += 1;
    }
    i
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; returns the index after it.
pub(super) fn number(body: &[u8], at: usize) -> Result<usize, ScanError> {
    let bad = |offset| Err(ScanError::Malformed { offset });
    let mut i = at;
    if body.get(i) == Some(&b'-') {
        i += 1;
    }
    match body.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(body, i + 1),
        _ => return bad(i),
    }
    if body.get(i) == Some(&b'.') {
        let start = i + 1;
        i = digits(body, start);
        if i == start {
            return bad(i);
        }
    }
    if let Some(b'e' | b'E') = body.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = body.get(i) {
            i += 1;
        }
        let start = i;
        i = digits(body, start);
        if i == start {
            return bad(i);
        }
    }
    Ok(i)
}

fn hex4(body: &[u8], at: usize) -> Option<u16> {
    let mut n: u16 = 0;
    for k in 0..4 {
        let d = match body.get(at + k)? {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u16::from(d);
    }
    Some(n)
}

/// A string starting at the opening quote `at`; returns the index after the closing quote.
/// Checks UTF-8, control characters, escapes and surrogate pairing (like `serde_json`, a lone
/// surrogate escape is malformed, since it cannot become a Rust/UTF-8 string).
fn string(body: &[u8], at: usize, max_bytes: u32) -> Result<usize, ScanError> {
    let bad = |offset| Err(ScanError::Malformed { offset });
    let start = at + 1;
    let mut i = start;
    loop {
        // Printable ASCII but `"` and `\` needs no other check: skip a run of it at once. The
        // limit is then checked where the run ends, which answers as checking it on each of
        // its bytes would have.
        while body
            .get(i)
            .is_some_and(|&c| (0x20..=0x7f).contains(&c) && c != b'"' && c != b'\\')
        {
            i += 1;
        }
        if i - start > max_bytes as usize {
            return Err(ScanError::Limit(JsonLimit::StringBytes));
        }
        let Some(&c) = body.get(i) else {
            return bad(i);
        };
        match c {
            b'"' => return Ok(i + 1),
            0x00..=0x1f => return bad(i),
            b'\\' => match body.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let Some(n) = hex4(body, i + 2) else {
                        return bad(i);
                    };
                    i += 6;
                    match n {
                        0xDC00..=0xDFFF => return bad(i),
                        0xD800..=0xDBFF => {
                            let low = if body.get(i..i + 2) == Some(b"\\u") {
                                hex4(body, i + 2)
                            } else {
                                None
                            };
                            match low {
                                Some(0xDC00..=0xDFFF) => i += 6,
                                _ => return bad(i),
                            }
                        }
                        _ => {}
                    }
                }
                _ => return bad(i),
            },
            0x20..=0x7f => i += 1,
            _ => i = utf8(body, i).ok_or(ScanError::Malformed { offset: i })?,
        }
    }
}

/// One multi-byte UTF-8 sequence starting at `i` (RFC 3629: no overlongs, no surrogates, at
/// most U+10FFFF); returns the index after it.
fn utf8(body: &[u8], i: usize) -> Option<usize> {
    let b0 = *body.get(i)?;
    let cont = |k: usize| body.get(i + k).filter(|b| (0x80..=0xBF).contains(*b));
    let (len, lo, hi) = match b0 {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return None,
    };
    let b1 = *body.get(i + 1)?;
    if !(lo..=hi).contains(&b1) {
        return None;
    }
    for k in 2..len {
        cont(k)?;
    }
    Some(i + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big() -> JsonLimits {
        JsonLimits {
            max_depth: MAX_DEPTH_CAP,
            max_members: u32::MAX,
            max_array_items: u32::MAX,
            max_string_bytes: u32::MAX,
            max_total_values: u32::MAX,
        }
    }

    #[test]
    fn well_formedness_table() {
        // (input, well-formed?)
        let cases: &[(&[u8], bool)] = &[
            (b"{}", true),
            (b"[]", true),
            (b" \t\r\n[ 1 , 2 ] \n", true),
            (b"0", true),
            (b"-0.5e+10", true),
            (b"1E-2", true),
            (b"\"a\\u00e9\\ud83d\\ude00\\n\"", true),
            ("\"é😀\"".as_bytes(), true),
            (b"{\"a\":{\"b\":[true,false,null]}}", true),
            (b"", false),
            (b"   ", false),
            (b"{", false),
            (b"[1,]", false),
            (b"{\"a\":1,}", false),
            (b"{\"a\"}", false),
            (b"{\"a\" 1}", false),
            (b"{1:2}", false),
            (b"[1 2]", false),
            (b"01", false),
            (b"1.", false),
            (b".5", false),
            (b"1e", false),
            (b"+1", false),
            (b"-", false),
            (b"NaN", false),
            (b"tru", false),
            (b"nulll", false),
            (b"{} {}", false),
            (b"[] x", false),
            (b"[}", false),
            (b"{]", false),
            (b"\"\x01\"", false),
            (b"\"\\x\"", false),
            (b"\"\\u12\"", false),
            (b"\"\\ud800\"", false),
            (b"\"\\udc00\"", false),
            (b"\"\\ud800\\u0041\"", false),
            (b"\"\xff\"", false),
            (b"\"\xc0\xaf\"", false),
            (b"\"\xed\xa0\x80\"", false),
            (b"\"\xf4\x90\x80\x80\"", false),
            (b"\"unterminated", false),
            (b"\x0c[]", false),
            (b"\xef\xbb\xbf[]", false),
        ];
        for (input, ok) in cases {
            let got = scan(input, &big());
            assert_eq!(
                got.is_ok(),
                *ok,
                "{:?}: {got:?}",
                String::from_utf8_lossy(input)
            );
            let serde = serde_json::from_slice::<serde_json::Value>(input).is_ok();
            assert_eq!(
                serde,
                *ok,
                "serde disagrees on {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits_table() {
        let l = JsonLimits {
            max_depth: 3,
            max_members: 2,
            max_array_items: 3,
            max_string_bytes: 4,
            max_total_values: 6,
        };
        // (input, expected)
        let cases: &[(&str, Result<(), ScanError>)] = &[
            ("[[[]]]", Ok(())),
            ("[[[[]]]]", Err(ScanError::Limit(JsonLimit::Depth))),
            (
                "{\"a\":{\"b\":{\"c\":{}}}}",
                Err(ScanError::Limit(JsonLimit::Depth)),
            ),
            ("{\"a\":1,\"b\":2}", Ok(())),
            (
                "{\"a\":1,\"b\":2,\"c\":3}",
                Err(ScanError::Limit(JsonLimit::Members)),
            ),
            ("[1,2,3]", Ok(())),
            ("[1,2,3,4]", Err(ScanError::Limit(JsonLimit::ArrayItems))),
            ("[[1,2],[1]]", Ok(())),
            ("\"abcd\"", Ok(())),
            ("\"abcde\"", Err(ScanError::Limit(JsonLimit::StringBytes))),
            (
                "{\"abcde\":1}",
                Err(ScanError::Limit(JsonLimit::StringBytes)),
            ),
            ("[1,[2,3],4]", Ok(())),
            (
                "[1,[2,3],4,[]]",
                Err(ScanError::Limit(JsonLimit::TotalValues)),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(scan(input.as_bytes(), &l), *want, "{input}");
        }
    }

    #[test]
    fn bombs_are_refused_without_recursion() {
        // 10k levels must neither overflow the stack nor pass.
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(
            scan(deep.as_bytes(), &JsonLimits::default()),
            Err(ScanError::Limit(JsonLimit::Depth))
        );
        // The depth cap also holds when a config asks for more.
        let mut l = big();
        l.max_depth = u32::MAX;
        assert_eq!(
            scan(deep.as_bytes(), &l),
            Err(ScanError::Limit(JsonLimit::Depth))
        );
        let n = MAX_DEPTH_CAP as usize;
        let ok_deep = "[".repeat(n) + &"]".repeat(n);
        assert_eq!(scan(ok_deep.as_bytes(), &big()), Ok(()));
        assert!(serde_json::from_str::<serde_json::Value>(&ok_deep).is_ok());

        let huge = format!("[{}0]", "0,".repeat(200_000));
        assert_eq!(
            scan(huge.as_bytes(), &JsonLimits::default()),
            Err(ScanError::Limit(JsonLimit::ArrayItems))
        );
        let long = format!("\"{}\"", "a".repeat(1_000_000));
        assert_eq!(
            scan(long.as_bytes(), &JsonLimits::default()),
            Err(ScanError::Limit(JsonLimit::StringBytes))
        );
    }

    proptest::proptest! {
        // The scanner sees attacker bytes: it must never panic, whatever they are.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = scan(&bytes, &JsonLimits::default());
            let _ = scan(&bytes, &big());
        }

        // Agreement with serde_json on UTF-8 inputs built mostly from JSON's own alphabet, so
        // that well-formed documents are actually generated. serde_json additionally refuses
        // numbers that overflow f64; those cannot come from this alphabet (no 3-digit exponent
        // is likely, and we skip the rare case explicitly).
        #[test]
        fn agrees_with_serde(s in "[\\[\\]{}:,\" 0-9.eE+\\-tfrunlsa\\\\/u\u{e9}]{0,40}") {
            let ours = scan(s.as_bytes(), &big()).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&s);
            if ours && theirs.is_err() {
                let msg = theirs.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
                proptest::prop_assert!(msg.contains("number out of range"), "{s:?}: {msg}");
            } else {
                proptest::prop_assert_eq!(ours, theirs.is_ok(), "{:?}", s);
            }
        }

        // Arbitrary Unicode strings too, wrapped as JSON strings and arrays.
        #[test]
        fn agrees_with_serde_on_any_text(s in ".{0,64}") {
            for doc in [s.clone(), format!("\"{s}\""), format!("[{s}]")] {
                let ours = scan(doc.as_bytes(), &big()).is_ok();
                let theirs = serde_json::from_str::<serde_json::Value>(&doc).is_ok();
                proptest::prop_assert_eq!(ours, theirs, "{:?}", doc);
            }
        }
    }
}
