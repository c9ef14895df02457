//! Byte helpers shared by the detectors: ASCII case-insensitive matching without allocation.
//! Every helper is bounds-checked (`get`), so no detector can panic on hostile input.

/// The byte at `i`, if any.
#[inline]
pub fn at(s: &[u8], i: usize) -> Option<u8> {
    s.get(i).copied()
}

/// The byte at `i`, ASCII-lowercased.
#[inline]
pub fn lower_at(s: &[u8], i: usize) -> Option<u8> {
    s.get(i).map(u8::to_ascii_lowercase)
}

/// Whether `s[i..]` starts with `pat` (pattern given in lowercase), ignoring ASCII case.
#[inline]
pub fn starts_ci(s: &[u8], i: usize, pat: &[u8]) -> bool {
    i.checked_add(pat.len())
        .and_then(|end| s.get(i..end))
        .is_some_and(|w| w.eq_ignore_ascii_case(pat))
}

/// First position at or after `from` where `pat` (lowercase) occurs, ignoring ASCII case. The
/// patterns are short constants, so the naive search stays linear in `s`.
pub fn find_ci(s: &[u8], pat: &[u8], from: usize) -> Option<usize> {
    let first = *pat.first()?;
    let mut i = from;
    while i < s.len() {
        if lower_at(s, i) == Some(first) && starts_ci(s, i, pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

pub fn contains_ci(s: &[u8], pat: &[u8]) -> bool {
    find_ci(s, pat, 0).is_some()
}

/// Whitespace as SQL engines, shells and browsers accept it (0xA0: MySQL treats a lone
/// non-breaking-space byte as a separator in latin1).
#[inline]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

/// The first position at or after `i` that is not whitespace.
pub fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while at(s, i).is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// The last position before `i` that is not whitespace, if any.
pub fn prev_non_ws(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while j > 0 {
        j -= 1;
        if !at(s, j).is_some_and(is_ws) {
            return Some(j);
        }
    }
    None
}

/// The length of the run of ASCII letters starting at `i`.
pub fn letters(s: &[u8], i: usize) -> usize {
    s.get(i..).map_or(0, |t| {
        t.iter().take_while(|b| b.is_ascii_alphabetic()).count()
    })
}

/// Whether the `len` bytes at `i` equal one of `words` (lowercase), ignoring case.
pub fn word_in(s: &[u8], i: usize, len: usize, words: &[&[u8]]) -> bool {
    i.checked_add(len)
        .and_then(|end| s.get(i..end))
        .is_some_and(|w| words.iter().any(|x| w.eq_ignore_ascii_case(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_table() {
        assert!(starts_ci(b"xSeLeCt", 1, b"select"));
        assert!(!starts_ci(b"sel", 0, b"select"));
        assert!(!starts_ci(b"select", usize::MAX, b"s"));
        assert_eq!(find_ci(b"a UNION b", b"union", 0), Some(2));
        assert_eq!(find_ci(b"a UNION b", b"union", 3), None);
        assert_eq!(find_ci(b"", b"x", 0), None);
        assert_eq!(skip_ws(b"  x", 0), 2);
        assert_eq!(prev_non_ws(b"a  b", 3), Some(0));
        assert_eq!(prev_non_ws(b"  b", 2), None);
        assert_eq!(letters(b"abc1", 0), 3);
        assert!(word_in(b"xCATy", 1, 3, &[b"cat"]));
    }
}
