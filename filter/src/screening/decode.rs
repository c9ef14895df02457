//! The prefilter and the decoder every screened value goes through.
//!
//! `scan` is one pass over the raw bytes that sets a bit per "interesting" byte class; a value
//! with no bit set cannot hold any attack the detectors look for and leaves without a copy.
//! `decode` undoes what attackers use to hide a payload from a matcher and a backend decodes
//! anyway: percent-encoding (repeated, for double and triple encoding), `+` as space (query and
//! form), `%uHHHH`, HTML character references, and overlong / fullwidth forms of `.`, `/`, `\`,
//! `<`, `>` and quotes. Each round only ever shrinks the value, so the output is never longer
//! than the input and the work is at most `ROUNDS` linear passes.

use std::borrow::Cow;

/// Decoding rounds: one for the transport encoding, two more for double and triple encoding.
pub const ROUNDS: usize = 3;

pub const QUOTE: u32 = 1 << 0; // ' "
pub const BACKTICK: u32 = 1 << 1;
pub const LT: u32 = 1 << 2;
pub const GT: u32 = 1 << 3;
pub const SEMI: u32 = 1 << 4;
pub const PIPE: u32 = 1 << 5;
pub const AMP: u32 = 1 << 6;
pub const DOLLAR: u32 = 1 << 7;
pub const PAREN: u32 = 1 << 8;
pub const PERCENT: u32 = 1 << 9;
pub const EQ: u32 = 1 << 10;
pub const HASH: u32 = 1 << 11;
pub const SPACE: u32 = 1 << 12;
pub const NEWLINE: u32 = 1 << 13;
pub const SLASH: u32 = 1 << 14;
pub const BACKSLASH: u32 = 1 << 15;
pub const DOT2: u32 = 1 << 16; // ..
pub const DASH2: u32 = 1 << 17; // --
pub const STAR: u32 = 1 << 18; // /* or */
pub const AT2: u32 = 1 << 19; // @@
pub const COLON: u32 = 1 << 20;
pub const BRACE: u32 = 1 << 21;
pub const NUL: u32 = 1 << 22;
pub const HIGH: u32 = 1 << 23; // lead bytes of overlong / fullwidth forms
pub const PLUS: u32 = 1 << 24;

/// The class bit of one byte (a `match`, which the compiler turns into a lookup table).
const fn class(b: u8) -> u32 {
    match b {
        b'\'' | b'"' => QUOTE,
        b'`' => BACKTICK,
        b'<' => LT,
        b'>' => GT,
        b';' => SEMI,
        b'|' => PIPE,
        b'&' => AMP,
        b'$' => DOLLAR,
        b'(' | b')' => PAREN,
        b'%' => PERCENT,
        b'=' => EQ,
        b'#' => HASH,
        b' ' | b'\t' | 0x0b | 0x0c | 0xa0 => SPACE,
        b'\n' | b'\r' => NEWLINE,
        b'/' => SLASH,
        b'\\' => BACKSLASH,
        b':' => COLON,
        b'{' => BRACE,
        0 => NUL,
        0xc0 | 0xc1 | 0xe0 | 0xef => HIGH,
        b'+' => PLUS,
        _ => 0,
    }
}

/// The pairs `scan` reports, as the bit a byte sets when it comes first (at `PAIR_FIRST`) and
/// when it comes second (at `PAIR_SECOND`): a pair is present where a byte's first-bits meet
/// the next byte's second-bits. `PAIR_FIRST` is `PAIR_SECOND + 8`, so that the previous entry
/// shifted right by 8 lines its first-bits up with this entry's second-bits.
const PAIR_DOT2: u64 = 1 << 0;
const PAIR_DASH2: u64 = 1 << 1;
const PAIR_AT2: u64 = 1 << 2;
const PAIR_SLASH_STAR: u64 = 1 << 3;
const PAIR_STAR_SLASH: u64 = 1 << 4;
const PAIR_SECOND: u32 = 40;
const PAIR_FIRST: u32 = PAIR_SECOND + 8;

/// Per byte: its class bit (low 32 bits), its pair roles (at `PAIR_FIRST` and `PAIR_SECOND`).
// Indexing is fine here: constant evaluation, where an index out of bounds stops the build.
#[allow(clippy::indexing_slicing)]
const SCAN_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let (first, second) = match b as u8 {
            b'.' => (PAIR_DOT2, PAIR_DOT2),
            b'-' => (PAIR_DASH2, PAIR_DASH2),
            b'@' => (PAIR_AT2, PAIR_AT2),
            b'/' => (PAIR_SLASH_STAR, PAIR_STAR_SLASH),
            b'*' => (PAIR_STAR_SLASH, PAIR_SLASH_STAR),
            _ => (0, 0),
        };
        table[b] = class(b as u8) as u64 | first << PAIR_FIRST | second << PAIR_SECOND;
        b += 1;
    }
    table
};

/// One pass over `s`: the union of the byte-class bits present, pairs (`..`, `--`, `/*`, `@@`)
/// included.
///
/// Every screened value goes through here, so it is branch-free: one table lookup per byte,
/// and a pair is the previous byte's "first" roles meeting this byte's "second" roles (the
/// previous entry is kept shifted by 8, which lines them up; what else the shifted entry meets
/// in this one, class bits, falls below `PAIR_SECOND` and is dropped at the end).
pub fn scan(s: &[u8]) -> u32 {
    let mut classes = 0u64;
    let mut pairs = 0u64;
    let mut prev = 0u64;
    for &b in s {
        let t = SCAN_TABLE.get(usize::from(b)).copied().unwrap_or(0);
        classes |= t;
        pairs |= prev & t;
        prev = t >> 8;
    }
    let pairs = (pairs >> PAIR_SECOND) & 0xff;
    // Most values hold no pair: their classes are the answer.
    if pairs == 0 {
        return classes as u32;
    }
    let pair_bit = |pair: u64, bit: u32| if pairs & pair != 0 { bit } else { 0 };
    (classes as u32)
        | pair_bit(PAIR_DOT2, DOT2)
        | pair_bit(PAIR_DASH2, DASH2)
        | pair_bit(PAIR_AT2, AT2)
        | pair_bit(PAIR_SLASH_STAR | PAIR_STAR_SLASH, STAR)
}

/// Bits that mean "a decoding round could change this value".
pub fn decode_bits(plus_as_space: bool) -> u32 {
    PERCENT | AMP | HIGH | if plus_as_space { PLUS } else { 0 }
}

/// The value as a backend would finally see it, after up to [`ROUNDS`] decoding rounds. Borrows
/// when nothing needs decoding; never longer than `s`.
pub fn decode(s: &[u8], plus_as_space: bool) -> Cow<'_, [u8]> {
    decode_scanned(s, plus_as_space, scan(s))
}

/// [`decode`] of a value whose [`scan`] is already known (`mask`), so it is not scanned twice.
pub fn decode_scanned(s: &[u8], plus_as_space: bool, mask: u32) -> Cow<'_, [u8]> {
    let bits = decode_bits(plus_as_space);
    if mask & bits == 0 {
        return Cow::Borrowed(s);
    }
    let mut cur = Vec::with_capacity(s.len());
    round(s, plus_as_space, &mut cur);
    // Allocated only for a second round: most encoded values are done after one.
    let mut next = Vec::new();
    for _ in 1..ROUNDS {
        if scan(&cur) & bits == 0 {
            break;
        }
        next.clear();
        next.reserve(cur.len());
        round(&cur, plus_as_space, &mut next);
        if next == cur {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    Cow::Owned(cur)
}

/// Longest value [`decode_short`] decodes on the stack.
pub const SHORT: usize = 128;

/// [`decode_scanned`] of a short value (`mask` its [`scan`]) into `buf`, without allocating,
/// when one round of `%hh` (and, with `plus_as_space`, `+`) is all the decoder would do: no
/// `&`, no `%u`, no overlong or fullwidth lead byte before or after, nothing left to decode
/// after the round. The decoded value and its scan; `None` sends the value to
/// [`decode_scanned`], whose result this always equals (a property test checks it).
pub fn decode_short<'b>(
    s: &[u8],
    plus_as_space: bool,
    mask: u32,
    buf: &'b mut [u8; SHORT],
) -> Option<(&'b [u8], u32)> {
    if mask & (AMP | HIGH) != 0 || s.len() > SHORT {
        return None;
    }
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let (v, used) = match b {
            b'%' => match (s.get(i + 1).copied(), s.get(i + 2).copied()) {
                (Some(b'u' | b'U'), _) => return None,
                (Some(a), Some(c)) => match (hex(a), hex(c)) {
                    (Some(h), Some(l)) => (u8::try_from(h * 16 + l).ok()?, 3),
                    _ => (b'%', 1),
                },
                _ => (b'%', 1),
            },
            b'+' if plus_as_space => (b' ', 1),
            _ => (b, 1),
        };
        *buf.get_mut(n)? = v;
        n += 1;
        i += used;
    }
    let out = buf.get(..n)?;
    let out_mask = scan(out);
    (out_mask & (decode_bits(plus_as_space) | HIGH) == 0).then_some((out, out_mask))
}

fn hex(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

/// `%hh` (one byte) or `%uHHHH` (a code point), with the number of input bytes used.
fn percent(s: &[u8], i: usize) -> Option<(Piece, usize)> {
    let a = s.get(i + 1).copied()?;
    if a == b'u' || a == b'U' {
        let mut cp = 0u32;
        for k in 2..6 {
            cp = cp * 16 + hex(s.get(i + k).copied()?)?;
        }
        return Some((Piece::Char(fold_wide(cp)), 6));
    }
    let v = hex(a)? * 16 + hex(s.get(i + 2).copied()?)?;
    Some((Piece::Byte(u8::try_from(v).ok()?), 3))
}

/// Fullwidth ASCII (U+FF01..U+FF5E) and the slash look-alikes are folded to ASCII, since
/// servers that normalise Unicode (NFKC) turn them into the real characters.
fn fold_wide(cp: u32) -> u32 {
    match cp {
        0xff01..=0xff5e => cp - 0xfee0,
        0x2215 | 0x2044 => u32::from(b'/'),
        0x2216 | 0xfe68 => u32::from(b'\\'),
        _ => cp,
    }
}

enum Piece {
    Byte(u8),
    Char(u32),
}

const NAMED: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"amp", b'&'),
    (b"quot", b'"'),
    (b"apos", b'\''),
    (b"sol", b'/'),
    (b"bsol", b'\\'),
    (b"colon", b':'),
    (b"semi", b';'),
    (b"lpar", b'('),
    (b"rpar", b')'),
    (b"tab", b'\t'),
    (b"newline", b'\n'),
    (b"period", b'.'),
    (b"nbsp", b' '),
    (b"grave", b'`'),
    (b"equals", b'='),
    (b"excl", b'!'),
    (b"num", b'#'),
    (b"dollar", b'$'),
    (b"percnt", b'%'),
    (b"plus", b'+'),
    (b"comma", b','),
    (b"lsqb", b'['),
    (b"rsqb", b']'),
    (b"lcub", b'{'),
    (b"rcub", b'}'),
    (b"verbar", b'|'),
    (b"ast", b'*'),
    (b"hyphen", b'-'),
];

/// An HTML character reference at `s[i] == '&'`: `&#dd;`, `&#xhh;` (the `;` optional, as
/// browsers accept it) or a common named one (`;` required, except the four legacy names).
fn entity(s: &[u8], i: usize) -> Option<(Piece, usize)> {
    let mut j = i + 1;
    if s.get(j) == Some(&b'#') {
        j += 1;
        let radix = if matches!(s.get(j), Some(b'x' | b'X')) {
            j += 1;
            16
        } else {
            10
        };
        let start = j;
        let mut cp = 0u32;
        // At most 12 digits (leading zeros are a known evasion); the value is capped as it grows.
        while let Some(d) = s.get(j).and_then(|&b| char::from(b).to_digit(radix)) {
            if j - start >= 12 {
                return None;
            }
            cp = (cp * radix + d).min(0x11_0000);
            j += 1;
        }
        if j == start {
            return None;
        }
        if s.get(j) == Some(&b';') {
            j += 1;
        }
        return Some((Piece::Char(fold_wide(cp)), j - i));
    }
    let len = s.get(j..).map_or(0, |t| {
        t.iter()
            .take(8)
            .take_while(|b| b.is_ascii_alphabetic())
            .count()
    });
    let name = s.get(j..j + len)?;
    let (_, b) = NAMED.iter().find(|(n, _)| name.eq_ignore_ascii_case(n))?;
    if s.get(j + len) == Some(&b';') {
        return Some((Piece::Byte(*b), len + 2));
    }
    if matches!(*b, b'<' | b'>' | b'&' | b'"') {
        return Some((Piece::Byte(*b), len + 1));
    }
    None
}

fn push_char(out: &mut Vec<u8>, cp: u32, raw: &[u8]) {
    match char::from_u32(cp) {
        Some(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        // Surrogates and out-of-range references stay as written.
        None => out.extend_from_slice(raw),
    }
}

/// One decoding round of `s` into `out` (cleared first). Every construct decoded is at least
/// as long as what it produces, so `out.len() <= s.len()`.
fn round(s: &[u8], plus_as_space: bool, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let decoded = match b {
            b'%' => percent(s, i),
            b'&' => entity(s, i),
            b'+' if plus_as_space => Some((Piece::Byte(b' '), 1)),
            _ => None,
        };
        match decoded {
            Some((Piece::Byte(v), n)) => {
                out.push(v);
                i += n;
            }
            Some((Piece::Char(cp), n)) => {
                push_char(out, cp, s.get(i..i + n).unwrap_or_default());
                i += n;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    fold_overlong(out);
}

/// Folds, in place, the overlong UTF-8 forms of `.`, `/`, `\` (`%c0%ae`, `%c0%af`, `%c1%9c`,
/// `%e0%80%af`, ...) and the fullwidth `．／＼＜＞＂＇` to ASCII. Only shrinks.
fn fold_overlong(v: &mut Vec<u8>) {
    if !v.iter().any(|&b| matches!(b, 0xc0 | 0xc1 | 0xe0 | 0xef)) {
        return;
    }
    let mut r = 0;
    let mut w = 0;
    while let Some(&b) = v.get(r) {
        let b1 = v.get(r + 1).copied();
        let b2 = v.get(r + 2).copied();
        let (out, used) = match (b, b1, b2) {
            (0xc0, Some(0xae), _) => (b'.', 2),
            (0xc0, Some(0xaf | 0x2f), _) | (0xc1, Some(0x1c), _) => (b'/', 2),
            (0xc1, Some(0x9c), _) | (0xc0, Some(0x5c), _) => (b'\\', 2),
            (0xc0, Some(0x80), _) => (0, 2),
            (0xe0, Some(0x80), Some(0xae)) => (b'.', 3),
            (0xe0, Some(0x80), Some(0xaf)) => (b'/', 3),
            (0xef, Some(0xbc), Some(0x8e)) => (b'.', 3),
            (0xef, Some(0xbc), Some(0x8f)) => (b'/', 3),
            (0xef, Some(0xbc), Some(0xbc)) => (b'\\', 3),
            (0xef, Some(0xbc), Some(0x9c)) => (b'<', 3),
            (0xef, Some(0xbc), Some(0x9e)) => (b'>', 3),
            (0xef, Some(0xbc), Some(0x82)) => (b'"', 3),
            (0xef, Some(0xbc), Some(0x87)) => (b'\'', 3),
            _ => (b, 1),
        };
        if let Some(slot) = v.get_mut(w) {
            *slot = out;
        }
        w += 1;
        r += used;
    }
    v.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        // (raw, plus as space, decoded)
        let cases: &[(&str, bool, &[u8])] = &[
            ("plain", true, b"plain"),
            ("a+b", true, b"a b"),
            ("a+b", false, b"a+b"),
            ("%27%20or%201%3D1", true, b"' or 1=1"),
            ("%2527", true, b"'"),
            ("%252527", true, b"'"),
            // A fourth round is not done: the remaining %27 stays.
            ("%25252527", true, b"%27"),
            ("%u003cscript", true, b"<script"),
            ("%uff1cscript", true, b"<script"),
            ("&lt;svg&gt;", true, b"<svg>"),
            ("&#60;&#x3c;&#0000060", true, b"<<<"),
            ("&LT;b", true, b"<b"),
            ("java&Tab;script&colon;", true, b"java\tscript:"),
            ("..%c0%af..%c0%af", true, b"../../"),
            ("%e0%80%ae%e0%80%ae/", true, b"../"),
            ("\u{ff0e}\u{ff0e}\u{ff0f}", true, b"../"),
            ("100%", true, b"100%"),
            ("%zz%4", true, b"%zz%4"),
            ("&unknown; &#xZZ; &", true, b"&unknown; &#xZZ; &"),
            ("&#xD800;", true, b"&#xD800;"),
            ("&#99999999999999;", true, b"&#99999999999999;"),
            ("O&#39;Brien", true, b"O'Brien"),
            ("caf%C3%A9", true, "café".as_bytes()),
            ("%00", true, b"\0"),
        ];
        for (raw, plus, want) in cases {
            assert_eq!(&*decode(raw.as_bytes(), *plus), *want, "{raw}");
        }
    }

    #[test]
    fn clean_values_are_borrowed() {
        for v in ["john", "2024-01-15", "user@example.com", "a+b"] {
            assert!(
                matches!(decode(v.as_bytes(), false), Cow::Borrowed(_)),
                "{v}"
            );
        }
        assert!(matches!(decode(b"a+b", true), Cow::Owned(_)));
    }

    /// The straightforward scan the table-driven one replaced.
    fn scan_reference(s: &[u8]) -> u32 {
        let mut mask = 0u32;
        let mut prev = 0u8;
        for &b in s {
            mask |= class(b);
            mask |= match (prev, b) {
                (b'.', b'.') => DOT2,
                (b'-', b'-') => DASH2,
                (b'/', b'*') | (b'*', b'/') => STAR,
                (b'@', b'@') => AT2,
                _ => 0,
            };
            prev = b;
        }
        mask
    }

    #[test]
    fn scan_table() {
        assert_eq!(scan(b"abc123"), 0);
        assert_eq!(scan(b"a..b"), DOT2);
        assert_eq!(scan(b"a.b"), 0);
        assert_eq!(scan(b"--"), DASH2);
        assert_eq!(scan(b"/*"), SLASH | STAR);
        assert_eq!(scan(b"@@v"), AT2);
        assert_eq!(scan(b"'<"), QUOTE | LT);
        assert_eq!(scan(b"\0"), NUL);
    }

    #[test]
    fn decode_short_answers_only_for_one_plain_round() {
        let mut buf = [0u8; SHORT];
        let mut short = |s: &[u8], plus: bool| {
            decode_short(s, plus, scan(s), &mut buf).map(|(out, _)| out.to_vec())
        };
        assert_eq!(
            short(b"ada%20lovelace", true),
            Some(b"ada lovelace".to_vec())
        );
        assert_eq!(short(b"a+b%2Fc", true), Some(b"a b/c".to_vec()));
        assert_eq!(short(b"a+b", false), Some(b"a+b".to_vec()));
        assert_eq!(short(b"100%", false), None);
        // A second round, `%u`, entities, overlong lead bytes, long values: the full decoder.
        assert_eq!(short(b"%2527", false), None);
        assert_eq!(short(b"%u003c", false), None);
        assert_eq!(short(b"&lt;", false), None);
        assert_eq!(short(b"%c0%ae", false), None);
        assert_eq!(short(&[b'a'; SHORT + 1], false), None);
    }

    proptest::proptest! {
        #[test]
        fn scan_agrees_with_the_reference(s in proptest::collection::vec(proptest::prop_oneof![
            proptest::prelude::any::<u8>(),
            proptest::sample::select(b"./-*@'\"<>;|&$()%=#\\ \t\n:{+\0\xc0\xef\xa0a".to_vec()),
        ], 0..64)) {
            proptest::prop_assert_eq!(scan(&s), scan_reference(&s));
        }

        // The stack decoder is the decoder wherever it answers.
        #[test]
        fn decode_short_equals_decode(s in proptest::collection::vec(proptest::prop_oneof![
            proptest::prelude::any::<u8>(),
            proptest::sample::select(b"%%%+&uU0123456789abcdefABCDEFxg;.c\xc0\xae".to_vec()),
        ], 0..160), plus in proptest::prelude::any::<bool>()) {
            let mask = scan(&s);
            let mut buf = [0u8; SHORT];
            if let Some((out, out_mask)) = decode_short(&s, plus, mask, &mut buf) {
                let full = decode_scanned(&s, plus, mask);
                proptest::prop_assert_eq!(out, &*full);
                proptest::prop_assert_eq!(out_mask, scan(&full));
            }
        }

        // Decoding is bounded: never longer than its input, whatever the bytes.
        #[test]
        fn decode_never_grows(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), plus in proptest::prelude::any::<bool>()) {
            let out = decode(&bytes, plus);
            proptest::prop_assert!(out.len() <= bytes.len());
        }

        #[test]
        fn decode_never_grows_on_encodings(s in "([%&#;xXuU0-9a-fA-F+.]|&lt;|%u[0-9a-f]{4}|&#[0-9]{1,8};?){0,64}") {
            let out = decode(s.as_bytes(), true);
            proptest::prop_assert!(out.len() <= s.len());
        }
    }
}
