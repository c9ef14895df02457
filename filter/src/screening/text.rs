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
///
/// Inlined so that where `pat` is a literal the position of its first byte that is no letter
/// (see [`find_ci_at`]) is known when compiling: an all-letter pattern pays nothing for it.
#[inline]
pub fn find_ci(s: &[u8], pat: &[u8], from: usize) -> Option<usize> {
    find_ci_at(
        s,
        pat,
        from,
        pat.iter().position(|b| !b.is_ascii_alphabetic()),
    )
}

/// [`find_ci`], told the position of `pat`'s first byte that is no ASCII letter, if any.
fn find_ci_at(s: &[u8], pat: &[u8], from: usize, anchor: Option<usize>) -> Option<usize> {
    let (&first, rest) = pat.split_first()?;
    let hay = s.get(from..)?;
    let starts_here = |k: usize| {
        hay.get(k..)
            .and_then(|t| t.split_first())
            .is_some_and(|(&b, t)| {
                b.to_ascii_lowercase() == first
                    && t.get(..rest.len())
                        .is_some_and(|w| w.eq_ignore_ascii_case(rest))
            })
    };
    // A pattern holding a byte that is no letter (`data:`, `<!--#`, `/dev/`, `${ifs}`): that
    // byte is matched exactly, so candidates are where it occurs, found eight bytes at a time
    // (most values hold it rarely or never), and only those are compared.
    if let Some((off, &anchor)) = anchor.and_then(|off| Some((off, pat.get(off)?))) {
        return find_anchored(hay, anchor, off, starts_here).map(|k| from + k);
    }
    let mut start = 0;
    if let Some(&second) = rest.first() {
        // Most searches run over benign text to its end. Eight positions at a time, a word-wide
        // test (portable: the module is WebAssembly without SIMD) rules out those where the
        // first two bytes cannot match, case folded with `| 0x20` (which keeps every real
        // match), and only the blocks left are checked position by position.
        let heads = ONES * u64::from(first | 0x20);
        let nexts = ONES * u64::from(second | 0x20);
        while let Some(block) = hay.get(start..).and_then(|t| t.first_chunk::<9>()) {
            let (Some(h), Some(n)) = (block.first_chunk::<8>(), block.last_chunk::<8>()) else {
                break;
            };
            let h = u64::from_le_bytes(*h) | CASE_BITS;
            let n = u64::from_le_bytes(*n) | CASE_BITS;
            if zero_bytes(h ^ heads) & zero_bytes(n ^ nexts) != 0 {
                if let Some(k) = (start..start + 8).find(|&k| starts_here(k)) {
                    return Some(from + k);
                }
            }
            start += 8;
        }
    }
    (start..hay.len())
        .find(|&k| starts_here(k))
        .map(|k| from + k)
}

/// The first start `k` (in order) where `hay[k + off]` is `anchor` and `starts_here(k)`.
#[inline]
fn find_anchored(
    hay: &[u8],
    anchor: u8,
    off: usize,
    starts_here: impl Fn(usize) -> bool,
) -> Option<usize> {
    let needle = ONES * u64::from(anchor);
    let mut j = off;
    while let Some(block) = hay.get(j..).and_then(|t| t.first_chunk::<8>()) {
        let mut hits = zero_bytes(u64::from_le_bytes(*block) ^ needle);
        while hits != 0 {
            let k = j + (hits.trailing_zeros() / 8) as usize - off;
            if starts_here(k) {
                return Some(k);
            }
            hits &= hits - 1;
        }
        j += 8;
    }
    (j..hay.len())
        .filter(|&p| hay.get(p) == Some(&anchor))
        .map(|p| p - off)
        .find(|&k| starts_here(k))
}

/// 0x01 in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;

/// The ASCII case bit in every byte of a word.
const CASE_BITS: u64 = ONES * 0x20;

/// The top bit of each byte of `v` that is zero, and nothing else (no borrow between bytes).
#[inline]
fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = ONES * 0x7f;
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

pub fn contains_ci(s: &[u8], pat: &[u8]) -> bool {
    find_ci(s, pat, 0).is_some()
}

/// A set of bytes as a table, for a membership test per byte that is one load: a `matches!`
/// over many bytes compiles to a jump table, costly when run on every byte of a value.
#[derive(Debug)]
pub struct ByteSet([bool; 256]);

impl ByteSet {
    // Indexing is fine here: this only runs in constant evaluation (a `u8` always fits).
    #[allow(clippy::indexing_slicing)]
    pub const fn new(bytes: &[u8]) -> Self {
        let mut set = [false; 256];
        let mut rest = bytes;
        while let [b, tail @ ..] = rest {
            set[*b as usize] = true;
            rest = tail;
        }
        ByteSet(set)
    }

    #[inline]
    pub fn contains(&self, b: u8) -> bool {
        self.0.get(usize::from(b)).copied().unwrap_or(false)
    }
}

/// A list of lowercase patterns (at most 64) indexed at compile time by their first two bytes
/// and their length.
///
/// Bit `k` of an entry stands for `list[k]`. A search for several patterns at once then
/// compares, at each position, only the patterns that start with the two bytes found there
/// (most positions of ordinary text have none), and a whole-word lookup only the patterns of
/// that first byte and length, instead of trying every pattern everywhere.
#[derive(Debug)]
pub struct Words {
    list: &'static [&'static [u8]],
    index: WordIndex,
}

impl Words {
    pub const fn new(list: &'static [&'static [u8]]) -> Self {
        Words {
            list,
            index: WordIndex::of_words(list),
        }
    }

    pub fn list(&self) -> &'static [&'static [u8]] {
        self.list
    }

    /// The patterns `s[i..]` starts with (ignoring case), in list order.
    #[inline]
    pub fn prefixes_at<'a>(
        &'a self,
        s: &'a [u8],
        i: usize,
    ) -> impl Iterator<Item = &'static [u8]> + 'a {
        bits(self.index.starting_at(s, i))
            .filter_map(|k| self.list.get(k).copied())
            .filter(move |p| starts_ci(s, i, p))
    }

    /// The first pattern, in list order, that `s[i..]` starts with (ignoring case).
    #[inline]
    pub fn prefix_at(&self, s: &[u8], i: usize) -> Option<&'static [u8]> {
        self.prefixes_at(s, i).next()
    }

    /// Whether some pattern occurs anywhere in `s` (ignoring case).
    pub fn occurs_in(&self, s: &[u8]) -> bool {
        (0..s.len()).any(|i| self.prefix_at(s, i).is_some())
    }

    /// Whether `w` as a whole equals one of the patterns (ignoring case).
    #[inline]
    pub fn contains_word(&self, w: &[u8]) -> bool {
        bits(self.index.candidates(w))
            .filter_map(|k| self.list.get(k))
            .any(|p| w.eq_ignore_ascii_case(p))
    }
}

/// The bit sets behind [`Words`], also buildable from `(pattern, value)` pairs. Built by a
/// `const fn` in a `const` item, so an empty pattern, a list longer than 64 entries or a
/// pattern of 32 bytes or more fails the build (an assertion, overflow or out of bounds in
/// constant evaluation) rather than a request.
#[derive(Debug)]
pub struct WordIndex {
    /// By the pattern's first byte, lowercased (look up lowercased bytes).
    by_first: [u64; 256],
    /// By the pattern's second byte, lowercased; one-byte patterns are in `single` instead.
    by_second: [u64; 256],
    single: u64,
    by_len: [u64; 32],
}

impl WordIndex {
    const EMPTY: WordIndex = WordIndex {
        by_first: [0; 256],
        by_second: [0; 256],
        single: 0,
        by_len: [0; 32],
    };

    // Indexing is fine here: this only runs in constant evaluation, where an index out of
    // bounds stops the build.
    #[allow(clippy::indexing_slicing)]
    const fn with(mut self, k: usize, word: &[u8]) -> Self {
        assert!(!word.is_empty(), "an empty pattern would match everywhere");
        let bit = 1u64 << k;
        match word {
            [] => {}
            [first] => {
                self.by_first[first.to_ascii_lowercase() as usize] |= bit;
                self.single |= bit;
            }
            [first, second, ..] => {
                self.by_first[first.to_ascii_lowercase() as usize] |= bit;
                self.by_second[second.to_ascii_lowercase() as usize] |= bit;
            }
        }
        self.by_len[word.len()] |= bit;
        self
    }

    pub const fn of_words(list: &[&[u8]]) -> Self {
        let mut index = WordIndex::EMPTY;
        let mut rest = list;
        let mut k = 0;
        while let [word, tail @ ..] = rest {
            index = index.with(k, word);
            k += 1;
            rest = tail;
        }
        index
    }

    pub const fn of_pairs<T>(list: &[(&[u8], T)]) -> Self {
        let mut index = WordIndex::EMPTY;
        let mut rest = list;
        let mut k = 0;
        while let [(word, _), tail @ ..] = rest {
            index = index.with(k, word);
            k += 1;
            rest = tail;
        }
        index
    }

    /// The patterns that may start at a byte `b` (either case).
    #[inline]
    pub fn starting_with(&self, b: u8) -> u64 {
        self.by_first
            .get(usize::from(b.to_ascii_lowercase()))
            .copied()
            .unwrap_or(0)
    }

    /// The patterns `s[i..]` may start with, ignoring case: those of its first two bytes.
    #[inline]
    pub fn starting_at(&self, s: &[u8], i: usize) -> u64 {
        let Some(b) = at(s, i) else {
            return 0;
        };
        let second = at(s, i + 1).map_or(0, |c| {
            self.by_second
                .get(usize::from(c.to_ascii_lowercase()))
                .copied()
                .unwrap_or(0)
        });
        self.starting_with(b) & (second | self.single)
    }

    /// The patterns `w` may equal ignoring case: the same first byte and length.
    #[inline]
    pub fn candidates(&self, w: &[u8]) -> u64 {
        match (w.first(), self.by_len.get(w.len())) {
            (Some(&b), Some(&by_len)) => self.starting_with(b) & by_len,
            _ => 0,
        }
    }
}

/// The indices of the bits set in `m`, lowest first (so in list order).
#[inline]
pub fn bits(mut m: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let k = m.trailing_zeros();
            m &= m - 1;
            k as usize
        })
    })
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
    use proptest::prelude::*;

    /// The straightforward search `find_ci` replaced.
    fn find_ci_reference(s: &[u8], pat: &[u8], from: usize) -> Option<usize> {
        let first = *pat.first()?;
        (from..s.len()).find(|&i| lower_at(s, i) == Some(first) && starts_ci(s, i, pat))
    }

    /// Overlapping patterns (prefixes of one another, shared first bytes, a repeated byte).
    const SAMPLE: Words = Words::new(&[
        b"frame",
        b"frameset",
        b"fr",
        b"a",
        b"abc",
        b"aab",
        b"..",
        b".env",
        b"/*",
        b"x_y",
        b"data:",
        b"<!--#",
        b"b:",
        b"-moz-",
    ]);

    /// Text made of pattern pieces in either case, so that matches and near misses are common.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(SAMPLE.list().to_vec()).prop_map(<[u8]>::to_vec),
                proptest::sample::select(SAMPLE.list().to_vec())
                    .prop_map(|p| p.to_ascii_uppercase()),
                proptest::sample::select(SAMPLE.list().to_vec())
                    .prop_map(|p| p.get(1..).unwrap_or_default().to_vec()),
                proptest::collection::vec(
                    proptest::sample::select(b"abfrmesdtDTABFRME.*/_xy :<!-#\xff".to_vec()),
                    0..20
                ),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn find_ci_agrees_with_the_reference(
            s in text(),
            pat in proptest::sample::select(SAMPLE.list().to_vec()),
            from in 0usize..80,
        ) {
            prop_assert_eq!(find_ci(&s, pat, from), find_ci_reference(&s, pat, from));
        }

        #[test]
        fn words_agree_with_a_search_per_pattern(s in text(), i in 0usize..80) {
            let list = SAMPLE.list();
            prop_assert_eq!(
                SAMPLE.prefixes_at(&s, i).collect::<Vec<_>>(),
                list.iter().copied().filter(|p| starts_ci(&s, i, p)).collect::<Vec<_>>()
            );
            prop_assert_eq!(SAMPLE.prefix_at(&s, i), list.iter().copied().find(|p| starts_ci(&s, i, p)));
            prop_assert_eq!(SAMPLE.occurs_in(&s), list.iter().any(|p| contains_ci(&s, p)));
            let word = s.get(i.min(s.len())..).unwrap_or_default();
            let word = word.get(..word.len().min(i % 9)).unwrap_or_default();
            prop_assert_eq!(SAMPLE.contains_word(word), list.iter().any(|p| word.eq_ignore_ascii_case(p)));
        }
    }

    #[test]
    fn byte_sets() {
        const SET: ByteSet = ByteSet::new(b"'\n;\xff");
        for b in 0..=255u8 {
            assert_eq!(
                SET.contains(b),
                matches!(b, b'\'' | b'\n' | b';' | 0xff),
                "{b}"
            );
        }
    }

    #[test]
    fn zero_bytes_marks_exactly_the_zero_bytes() {
        for (v, want) in [
            (0u64, 0x8080_8080_8080_8080u64),
            (u64::MAX, 0),
            (0x0100_ff80_0001_7f00, 0x0080_0000_8000_0080),
            (0x8000_0000_0000_0001, 0x0080_8080_8080_8000),
        ] {
            assert_eq!(zero_bytes(v), want, "{v:#x}");
        }
    }

    #[test]
    fn find_ci_across_blocks() {
        // Matches at and around the 16-position block edges, after false candidates.
        let mut s = b"ex".repeat(20);
        s.extend_from_slice(b"EXPRESSION");
        assert_eq!(find_ci(&s, b"expression", 0), Some(40));
        assert_eq!(find_ci(&s, b"expression", 41), None);
        for at in 0..40 {
            let mut s = vec![b'e'; 40];
            s.splice(at..at, b"Xp".iter().copied());
            assert_eq!(find_ci(&s, b"xp", 0), Some(at), "{at}");
            assert_eq!(find_ci(&s, b"xp", at + 1), None, "{at}");
        }
    }

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
