//! The inert-value fast path: one linear pass that proves a (decoded) value holds nothing any
//! detector could report at `low` or `medium`, so the detectors are skipped.
//!
//! Every detector needs either a byte this pass refuses or a word of its vocabularies:
//!
//! - **Bytes.** Accepted are ASCII letters and digits, the space, `-` `.` `_` `,` `;` `=` `/`
//!   `:` `(` `)` `@` `&` `!`, at most one `?`, and UTF-8 bytes of 0x80 and above except the lead
//!   bytes the decoder folds (0xc0, 0xc1, 0xe0, 0xef). Refused are quotes, backticks, `<` `>`
//!   `|` `$` `%` `#` `{` `}` `[` `]` `\` `+` `*` `~` `^`, every control byte (tab, newline,
//!   NUL), and the pairs `..`, `--`, `@@`, `&&`. So no quote breakout, tag, template, shell
//!   substitution, pipe, variable, glob, escape, encoding, traversal or comment can be in the
//!   value.
//! - **Words.** Each run of ASCII letters is looked up in one index of trigger words built
//!   from every detector's lists (shell commands, cmdlets, PHP calls, SQL keywords that anchor
//!   a rule, SQL functions and catalogs, script sinks and schemes, file-inclusion schemes,
//!   sensitive files): the first run of letters of each entry, either alone (`whoami`) or with
//!   the byte that follows it in the entry (`etc/` for `etc/passwd`, `data:` for
//!   `data:text/html`, `win.` for `win.ini`), which a value's run then needs after it too.
//!   Detectors that find their words inside other words (catalog names, `case`, CSS
//!   `expression`) have their lists searched as substrings, in the same pass's index.
//!
//! A value passing both is screened by no detector: the property tests in `tests.rs` check that
//! the full detectors agree on every value this path accepts, over the corpora and generated
//! values built from every list's words. The path is off at `high` (its rules read weaker
//! signals) and for a policy with `extra` vocabularies (their words are not in the index).

use super::vocab::PatternSet;
use crate::payload::VERBATIM_JSON;

// Indexing is fine here: constant evaluation, where an index out of bounds stops the build.
#[allow(clippy::indexing_slicing)]
/// Per byte: 0 refused, 1 accepted, 2 letter (starts or continues a word), 3 `?` (counted).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() {
            2
        } else if c.is_ascii_digit()
            || matches!(
                c,
                b' ' | b'-'
                    | b'.'
                    | b'_'
                    | b','
                    | b';'
                    | b'='
                    | b'/'
                    | b':'
                    | b'('
                    | b')'
                    | b'@'
                    | b'&'
                    | b'!'
            )
        {
            1
        } else if c == b'?' {
            3
        } else if c >= 0x80 && !matches!(c, 0xc0 | 0xc1 | 0xe0 | 0xef) {
            1
        } else {
            0
        };
        b += 1;
    }
    t
};

/// The trigger-word indexes: whole runs of letters (with an optional following byte), and
/// substrings searched anywhere.
#[derive(Debug)]
pub struct Triggers {
    /// By first letter (`a`..`z`): bit `n` set when some word entry has `n` bytes (63 for
    /// longer ones), so most runs of letters are ruled out with one load.
    lengths: [u64; 26],
    call_lengths: [u64; 26],
    /// Per byte, whether [`inert`] can skip it with nothing but this load ([`PLAIN`]; for
    /// `.` `-` `@`, [`PLAIN_UNPAIRED`]: only where the scan has ruled out their doubled
    /// pairs): an accepted byte that is no letter, not `?` or `&`, and that no pair of the
    /// substring table holds (folded), so no substring entry starts across it. For the
    /// letters `a`-`f` (either case), their value 1-6 at bit 2 ([`HEX_SHIFT`]) when
    /// `hex_runs` applies: no substring entry starts with three of those letters.
    plain: [u8; 256],
    /// Runs of one to four letters `a`-`f` (coded in base 7, digits 1-6: [`hex_code`]) that
    /// are a word or call entry, alone or followed by a plain byte: one bit each. Between
    /// plain bytes, a run without its bit is skipped (ids, hashes, UUIDs: `7f9e0c1a`).
    hex_runs: [u64; HEX_WORDS],
    /// Bloom filter of the word and call entries' hashes (FNV-1a of their folded bytes).
    bloom: Box<[u64; BLOOM_WORDS]>,
    /// The substring entries' first three bytes as two bits per pair of folded bytes `p`
    /// (bits `2 * (p % 32)` and the next of word `p / 32`): the pair starts an entry, the pair
    /// is an entry's second and third bytes. One load per byte of [`inert`] (a fixed-size
    /// table: no bounds check) where [`PatternSet::may_start_triple`] takes two.
    triples: Box<[u64; 2048]>,
    words: PatternSet,
    substrings: PatternSet,
    /// Whether `substrings` holds entries shorter than three bytes, which the per-byte
    /// bitmaps of [`inert`] cannot rule out: then every value is searched.
    short_substrings: bool,
    /// SQL function names: only read by the rules when called, so a trigger only in a value
    /// holding `(`.
    calls: PatternSet,
}

/// The first run of letters of `entry`, with the byte after it when the entry goes on (the
/// form a value must hold for the entry to match there).
fn first_word(entry: &[u8]) -> Option<&[u8]> {
    let start = entry.iter().position(u8::is_ascii_alphabetic)?;
    let len = entry
        .get(start..)?
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let end = start + len;
    // Nothing but more letters can follow a run; a digit or punctuation byte narrows the
    // word to where it is followed by that byte.
    entry.get(start..(end + 1).min(entry.len()))
}

impl Triggers {
    /// Indexes the entries of every list a detector reads: `words` (their first word, see
    /// the module documentation), `calls` (SQL function names) and `substrings`.
    pub fn build(words: &[&[u8]], calls: &[&[u8]], substrings: &[&[u8]]) -> Triggers {
        let firsts = |list: &[&[u8]]| -> Vec<Vec<u8>> {
            list.iter()
                .filter_map(|e| first_word(e))
                .map(<[u8]>::to_ascii_lowercase)
                .collect()
        };
        let words = firsts(words);
        let calls: Vec<String> = firsts(calls)
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let text: Vec<String> = words
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let subs: Vec<String> = substrings
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let mut bloom = Box::new([0u64; BLOOM_WORDS]);
        for e in text.iter().chain(&calls) {
            let (w, bit) = bloom_bit(hash_of(e.as_bytes()));
            if let Some(word) = bloom.get_mut(w) {
                *word |= bit;
            }
        }
        let substrings = PatternSet::build("", subs.iter().map(String::as_str));
        let mut triples = Box::new([0u64; 2048]);
        for p in 0..=u16::MAX {
            let [a, b] = p.to_be_bytes();
            let bits = u64::from(substrings.may_start_pair(a, b))
                | u64::from(substrings.may_continue_pair(a, b)) << 1;
            if let Some(w) = triples.get_mut(usize::from(p >> 5)) {
                *w |= bits << ((p & 31) * 2);
            }
        }
        let mut plain = plain_bytes(&triples);
        let (lengths, call_lengths) = (lengths_of(&text), lengths_of(&calls));
        let words = PatternSet::build("", text.iter().map(String::as_str));
        let calls = PatternSet::build("", calls.iter().map(String::as_str));
        let hex_runs = hex_runs(&plain, &words, &lengths, &calls, &call_lengths);
        // The hex runs are skipped only if no substring entry starts with three of their
        // letters (their pairs are then read by nobody): checked here, for these lists.
        let hex = b'a'..=b'f';
        let hex_free = hex.clone().all(|x| {
            hex.clone().all(|y| {
                hex.clone().all(|z| {
                    triple_bit(&triples, x, y) & 1 & (triple_bit(&triples, y, z) >> 1) == 0
                })
            })
        });
        if hex_free {
            for c in (b'a'..=b'f').chain(b'A'..=b'F') {
                if let Some(slot) = plain.get_mut(usize::from(c)) {
                    *slot = ((c | 0x20) - b'a' + 1) << HEX_SHIFT;
                }
            }
        }
        Triggers {
            triples,
            plain,
            short_substrings: substrings.has_short_entries(),
            bloom,
            lengths,
            call_lengths,
            hex_runs,
            words,
            substrings,
            calls,
        }
    }

    /// Whether a run of letters with this hash (`alone`), or it with the byte after it
    /// (`followed`), may be a trigger or call word: one bloom filter bit each, so that most
    /// runs are never compared.
    #[inline]
    fn may_be_trigger(&self, alone: u32, followed: u32) -> bool {
        // `bloom_bit` gives word indexes below BLOOM_WORDS: `get` on the fixed-size table
        // compiles to a plain load.
        let set = |h: u32| {
            let (w, bit) = bloom_bit(h);
            self.bloom.get(w).is_some_and(|word| word & bit != 0)
        };
        set(alone) || set(followed)
    }

    /// Whether the `a`-`f` run of code `code` ([`hex_code`]) may be a word or call entry.
    #[inline]
    fn hex_hit(&self, code: usize) -> bool {
        self.hex_runs
            .get(code / 64)
            .is_some_and(|w| w & (1 << (code % 64)) != 0)
    }

    /// Whether the run of letters `s[start..end]` (or it with the byte after it) is a trigger.
    #[inline]
    fn word_at(&self, s: &[u8], start: usize, end: usize) -> bool {
        in_set(&self.words, &self.lengths, s, start, end)
    }

    /// Whether the run `s[start..end]` is an SQL function name placed as a call reads it:
    /// its identifier (dotted parts and blanks included) before `(`, or a part of a dotted or
    /// underscored name.
    #[inline]
    fn call_at(&self, s: &[u8], start: usize, end: usize) -> bool {
        if !in_set(&self.calls, &self.call_lengths, s, start, end) {
            return false;
        }
        let joined = |b: Option<&u8>| matches!(b, Some(b'.' | b'_'));
        // The rules read the whole identifier before `(` (`sysdummy1 (`, `version.x(`).
        // Bounded: the rules read at most 40 bytes of name and 8 blanks before `(`.
        let called = s.get(end..).and_then(|t| {
            t.iter()
                .take(64)
                .find(|&&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b' ')))
        }) == Some(&b'(');
        called || joined(s.get(end)) || joined(start.checked_sub(1).and_then(|p| s.get(p)))
    }

    /// The two `triples` bits of the folded pair `a`, `b`: bit 0, an entry starts with it;
    /// bit 1, an entry has it second and third. `may_start_triple(a, b, c)` is bit 0 of
    /// `(a, b)` and bit 1 of `(b, c)`.
    #[inline]
    fn triple_bits(&self, a: u8, b: u8) -> u64 {
        let p = (u16::from(a) << 8) | u16::from(b);
        self.triples
            .get(usize::from(p >> 5))
            .map_or(0, |w| (w >> ((p & 31) * 2)) & 3)
    }

    #[cfg(test)]
    pub fn words(&self) -> &PatternSet {
        &self.words
    }
}

/// Whether the run `s[start..end]`, alone or with the byte after it, is an entry of `set`
/// (`lengths`: its entries' lengths by first letter).
#[inline]
fn in_set(set: &PatternSet, lengths: &[u64; 26], s: &[u8], start: usize, end: usize) -> bool {
    {
        let first = s
            .get(start)
            .map_or(0, |b| b.to_ascii_lowercase().wrapping_sub(b'a'));
        let lengths = lengths.get(usize::from(first)).copied().unwrap_or(0);
        let n = end - start;
        if lengths & (3 << n.min(62)) == 0 {
            return false;
        }
        let word = s.get(start..end).unwrap_or_default();
        set.contains(word)
            || s.get(start..end + 1)
                .is_some_and(|w| w.len() > word.len() && set.contains(w))
    }
}

fn lengths_of(words: &[String]) -> [u64; 26] {
    let mut lengths = [0u64; 26];
    for w in words {
        if let Some(slot) = w
            .bytes()
            .next()
            .and_then(|b| lengths.get_mut(usize::from(b.wrapping_sub(b'a'))))
        {
            *slot |= 1 << w.len().min(63);
        }
    }
    lengths
}

/// [`Triggers::plain`]: a byte [`inert`] skips in any value.
const PLAIN: u8 = 1;
/// [`Triggers::plain`]: `.` `-` `@`, skipped where the scan has ruled out `..` `--` `@@`.
const PLAIN_UNPAIRED: u8 = 2;

/// [`Triggers::plain`] for the substring table `triples`: accepted bytes (class 1) other than
/// `&`, whose folded form is in no pair of the table (neither bit, first or second).
fn plain_bytes(triples: &[u64; 2048]) -> [u8; 256] {
    let bits = |a: u8, b: u8| triple_bit(triples, a, b);
    let mut plain = [0u8; 256];
    for (b, slot) in (0..=u8::MAX).zip(plain.iter_mut()) {
        let f = fold(b);
        let neutral = (0..=u8::MAX).all(|x| bits(f, x) == 0 && bits(x, f) == 0);
        if CLASS.get(usize::from(b)) != Some(&1) || b == b'&' || !neutral {
            continue;
        }
        *slot = if matches!(b, b'.' | b'-' | b'@') {
            PLAIN_UNPAIRED
        } else {
            PLAIN
        };
    }
    plain
}

/// The two bits of the folded pair `a`, `b` in a `triples` table ([`Triggers::triple_bits`]).
fn triple_bit(triples: &[u64; 2048], a: u8, b: u8) -> u64 {
    let p = (u16::from(a) << 8) | u16::from(b);
    triples
        .get(usize::from(p >> 5))
        .map_or(0, |w| (w >> ((p & 31) * 2)) & 3)
}

/// Where a letter's value (1-6 for `a`-`f`) sits in [`Triggers::plain`].
const HEX_SHIFT: u32 = 2;
/// Codes of runs of up to four letters `a`-`f`: below 7^4.
const HEX_CODES: usize = 2401;
const HEX_WORDS: usize = HEX_CODES.div_ceil(64);
/// A run's code grows past this with its fifth letter: longer runs go the general way.
const HEX_FOURTH: usize = 343;

/// The base-7 code of a run of the letters `a`-`f` (lowercase), digits 1-6.
fn hex_code(run: &[u8]) -> usize {
    run.iter().fold(0, |code, &c| {
        code * 7 + usize::from(c.wrapping_sub(b'a') + 1)
    })
}

/// [`Triggers::hex_runs`]: every run of one to four lowercase letters `a`-`f` that
/// [`in_set`] finds in `words` or `calls`, alone or followed by some byte of `plain` (case
/// does not matter: the sets ignore it).
fn hex_runs(
    plain: &[u8; 256],
    words: &PatternSet,
    lengths: &[u64; 26],
    calls: &PatternSet,
    call_lengths: &[u64; 26],
) -> [u64; HEX_WORDS] {
    let followers: Vec<u8> = (0..=u8::MAX)
        .filter(|&b| plain.get(usize::from(b)).is_some_and(|&p| p != 0))
        .collect();
    let mut table = [0u64; HEX_WORDS];
    let mut runs: Vec<Vec<u8>> = (b'a'..=b'f').map(|c| vec![c]).collect();
    while let Some(run) = runs.pop() {
        let n = run.len();
        let found =
            |s: &[u8]| in_set(words, lengths, s, 0, n) || in_set(calls, call_lengths, s, 0, n);
        let hit = found(&run)
            || followers.iter().any(|&p| {
                let mut s = run.clone();
                s.push(p);
                found(&s)
            });
        let code = hex_code(&run);
        if hit {
            if let Some(w) = table.get_mut(code / 64) {
                *w |= 1 << (code % 64);
            }
        }
        if n < 4 {
            for c in b'a'..=b'f' {
                let mut longer = run.clone();
                longer.push(c);
                runs.push(longer);
            }
        }
    }
    table
}

/// Bits of [`super::decode::scan`] that only bytes or pairs [`inert`] refuses set: quotes,
/// backticks, `<` `>` `|` `$` `%` `#` `{` `\`, newlines, NUL, the decoder's lead bytes, `+`,
/// `..` `--` `@@` and `/*` `*/`. A value whose scan holds one is not inert, without a pass.
pub const REFUSED: u32 = {
    use super::decode as d;
    d::QUOTE
        | d::BACKTICK
        | d::LT
        | d::GT
        | d::PIPE
        | d::DOLLAR
        | d::PERCENT
        | d::HASH
        | d::NEWLINE
        | d::BACKSLASH
        | d::DOT2
        | d::DASH2
        | d::STAR
        | d::AT2
        | d::BRACE
        | d::NUL
        | d::HIGH
        | d::PLUS
};

/// [`inert`] of a value whose [`super::decode::scan`] is `mask`: the bits of [`REFUSED`]
/// answer first (a quote, `+`, `%`: most values the pass would refuse at some byte).
#[inline]
pub fn inert_scanned(s: &[u8], mask: u32, t: &Triggers) -> bool {
    // Without those bits, `..` `--` `@@` are not in `s`: `.` `-` `@` are skipped like digits.
    mask & REFUSED == 0 && inert_with(s, t, PLAIN | PLAIN_UNPAIRED)
}

/// Whether the decoded value `s` is inert: no byte and no word any detector needs (module
/// documentation). One pass; each run of letters is hashed as it is read and looked up once,
/// where it ends (a bloom filter bit for most).
pub fn inert(s: &[u8], t: &Triggers) -> bool {
    inert_with(s, t, PLAIN)
}

/// [`inert`], skipping the bytes whose [`Triggers::plain`] has a bit of `plain`.
#[inline]
fn inert_with(s: &[u8], t: &Triggers, plain: u8) -> bool {
    let mut prev = 0u8;
    // The folded byte before this one, and whether it and the one before it start a
    // substring entry: a substring trigger may start two bytes back (its first three bytes
    // are the two bits of `triples`); the full search runs at the end only then.
    let mut f1 = 0u8;
    let mut first = t.triple_bits(0, 0) & 1;
    let mut substring = u64::from(t.short_substrings);
    let mut questions = 0u32;
    let mut call_word = false;
    let mut i = 0;
    let is_plain = |b: u8| t.plain.get(usize::from(b)).is_some_and(|&p| p & plain != 0);
    while let Some(&b) = s.get(i) {
        if is_plain(b) {
            // Digits and plain punctuation: no refusal, pair, `?` or substring bit to track
            // (no pair of the substring table holds them), so they are skipped; so are the
            // runs of `a`-`f` between them that are no word (ids, hashes, UUIDs): no
            // substring entry starts with three such letters. The state after the skip is the
            // one its last byte, a plain one, leaves: no entry started, `prev` it. A run that
            // may be a word (alone or followed), is longer than four letters or is followed
            // by another byte than a plain one (or the value's end) is read the general way.
            i += 1;
            let (mut run, mut code) = (i, 0usize);
            loop {
                let Some(&c) = s.get(i) else {
                    if code != 0 && t.hex_hit(code) {
                        i = run;
                    }
                    break;
                };
                let p = t.plain.get(usize::from(c)).copied().unwrap_or(0);
                if p & plain != 0 {
                    if code != 0 && t.hex_hit(code) {
                        i = run;
                        break;
                    }
                    code = 0;
                } else if p >> HEX_SHIFT != 0 && code < HEX_FOURTH {
                    if code == 0 {
                        run = i;
                    }
                    code = code * 7 + usize::from(p >> HEX_SHIFT);
                } else {
                    if code != 0 {
                        i = run;
                    }
                    break;
                }
                i += 1;
            }
            let last = s.get(i - 1).copied().unwrap_or(b);
            (first, f1, prev) = (0, fold(last), last);
            continue;
        }
        let class = CLASS.get(usize::from(b)).copied().unwrap_or(0);
        if class == 2 {
            // A run of letters, read to its end: folded, hashed and fed to the substring
            // bits byte by byte, then looked up alone and with the byte after it.
            let start = i;
            let mut hash = FNV_OFFSET;
            while let Some(&c) = s.get(i) {
                if !c.is_ascii_alphabetic() {
                    break;
                }
                let f = c | 0x20;
                hash = fnv(hash, f);
                let bits = t.triple_bits(f1, f);
                substring |= first & (bits >> 1);
                (first, f1) = (bits & 1, f);
                i += 1;
            }
            let followed = s.get(i).map_or(hash, |&c| fnv(hash, fold(c)));
            if t.may_be_trigger(hash, followed) {
                if t.word_at(s, start, i) {
                    return false;
                }
                call_word = call_word || t.call_at(s, start, i);
            }
            prev = b'a';
            continue;
        }
        if class == 0 || (b == prev && matches!(b, b'.' | b'-' | b'@' | b'&')) {
            return false;
        }
        let f = fold(b);
        let bits = t.triple_bits(f1, f);
        substring |= first & (bits >> 1);
        (first, f1) = (bits & 1, f);
        questions += u32::from(class == 3);
        prev = b;
        i += 1;
    }
    if call_word && s.contains(&b'(') {
        return false;
    }
    // One `?` cannot make a glob of two wildcards; substrings last (rarely reached).
    questions <= 1 && !(substring != 0 && t.substrings.occurs_in(s))
}

const FNV_OFFSET: u32 = 0x811c_9dc5;

#[inline]
fn fnv(h: u32, b: u8) -> u32 {
    (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
}

fn fold(b: u8) -> u8 {
    super::vocab::fold(b)
}

/// Words of the bloom filter (65,536 bits).
const BLOOM_WORDS: usize = 1024;

/// The bloom bit of a hash (65,536 bits).
#[inline]
fn bloom_bit(h: u32) -> (usize, u64) {
    let h = h ^ (h >> 16);
    (usize::from((h >> 6) as u16 & 0x3ff), 1u64 << (h & 63))
}

fn hash_of(word: &[u8]) -> u32 {
    word.iter().fold(FNV_OFFSET, |h, &b| fnv(h, fold(b)))
}

/// Headers whose syntax the fast path reads beyond [`inert`] (the bytes that syntax needs and
/// the generic pass refuses: quotes, `*`, `+`). A value that does not follow its grammar
/// exactly goes to the detectors like any other.
///
/// | header | grammar |
/// |---|---|
/// | `accept`, `content-type` | media ranges: a type of a fixed list (`text`, `application`, `image`, `audio`, `video`, `font`, `multipart`, `message`, `model`, `*`), `/`, a lowercase subtype of `[a-z0-9.+-]` or `*`, parameters `;name=value` with a name of a fixed list (`q`, `v`, `charset`, `level`, `profile`, `version`, `boundary`, `format`) and a value of `[A-Za-z0-9.-]`; ranges separated by `,` and blanks |
/// | `sec-ch-ua`, `sec-ch-ua-full-version-list` | `"brand";v="version"` items separated by `,` and blanks: a brand of letters, digits, blanks, `.`, `_`, `-` whose words pass the trigger index, or Chromium's GREASE brand `Not` + 1 byte + `A` + 1 byte + `Brand`; a version of digits and `.` |
/// | `sec-ch-ua-platform`, `-platform-version`, `-model`, `-arch`, `-bitness`, `-full-version` | one quoted string of the same brand bytes, words passing the index |
/// | `sec-ch-ua-mobile` | `?0` or `?1` |
/// | `if-none-match`, `if-match` | `*`, or entity tags `"..."` / `W/"..."` of `[A-Za-z0-9._:-]` whose words pass the index, separated by `,` and blanks |
pub fn header_inert(name: &[u8], value: &[u8], t: &Triggers) -> bool {
    match name {
        b"accept" | b"content-type" => {
            VERBATIM_JSON.contains(&value)
                || COMMON_MEDIA.contains(&value)
                || media_ranges(value, t)
        }
        b"sec-ch-ua" | b"sec-ch-ua-full-version-list" => brand_list(value, t),
        b"sec-ch-ua-platform"
        | b"sec-ch-ua-platform-version"
        | b"sec-ch-ua-model"
        | b"sec-ch-ua-arch"
        | b"sec-ch-ua-bitness"
        | b"sec-ch-ua-full-version" => quoted(value, 0, brand_byte)
            .is_some_and(|(inner, end)| end == value.len() && words_pass(inner, t)),
        b"sec-ch-ua-mobile" => value == b"?0" || value == b"?1",
        b"if-none-match" | b"if-match" => value == b"*" || entity_tags(value, t),
        _ => false,
    }
}

/// `content-type` and `accept` values that clients send verbatim, answered by one comparison
/// each (with [`VERBATIM_JSON`]) before [`media_ranges`] reads the grammar: each is a value
/// [`media_ranges`] accepts (a test checks it), so this list only saves the reading, it never
/// lets more through.
pub const COMMON_MEDIA: [&[u8]; 5] = [
    b"application/x-www-form-urlencoded",
    b"text/plain",
    b"text/plain; charset=utf-8",
    b"*/*",
    b"application/json, text/plain, */*",
];

const MEDIA_TYPES: [&[u8]; 10] = [
    b"text",
    b"application",
    b"image",
    b"audio",
    b"video",
    b"font",
    b"multipart",
    b"message",
    b"model",
    b"*",
];

const MEDIA_PARAMETERS: [&[u8]; 8] = [
    b"q",
    b"v",
    b"charset",
    b"level",
    b"profile",
    b"version",
    b"boundary",
    b"format",
];

/// Items of `s` split at `sep`, blanks around each trimmed.
fn items(s: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    s.split(move |&b| b == sep).map(|i| i.trim_ascii())
}

fn media_ranges(s: &[u8], t: &Triggers) -> bool {
    !s.is_empty()
        && items(s, b',').all(|range| {
            let mut parts = items(range, b';');
            let Some((ty, sub)) = parts
                .next()
                .and_then(|m| m.iter().position(|&b| b == b'/').map(|p| m.split_at(p)))
            else {
                return false;
            };
            let sub = sub.get(1..).unwrap_or_default();
            MEDIA_TYPES.contains(&ty)
                && (sub == b"*"
                    || (!sub.is_empty()
                        && sub.iter().all(|&b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b".+-".contains(&b)
                        })
                        && sub.split(|&b| b == b'+').all(|w| inert(w, t))))
                && parts.all(|p| {
                    p.iter().position(|&b| b == b'=').is_some_and(|eq| {
                        let (n, v) = p.split_at(eq);
                        let v = v.get(1..).unwrap_or_default();
                        MEDIA_PARAMETERS.contains(&n)
                            && !v.is_empty()
                            && v.iter()
                                .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                            && inert(v, t)
                    })
                })
        })
}

fn brand_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-')
}

/// `"..."` at `i` whose bytes all pass `ok`: the inside and the position after the quote.
fn quoted(s: &[u8], i: usize, ok: fn(u8) -> bool) -> Option<(&[u8], usize)> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    let len = s.get(i + 1..)?.iter().take_while(|&&b| ok(b)).count();
    (s.get(i + 1 + len) == Some(&b'"'))
        .then(|| (s.get(i + 1..i + 1 + len).unwrap_or_default(), i + len + 2))
}

/// Whether the inside of a quoted string (brand, entity tag: bytes the generic pass
/// accepts) is inert.
fn words_pass(s: &[u8], t: &Triggers) -> bool {
    inert(s, t)
}

/// Chromium's GREASE brand: `Not`, one byte, `A`, one byte, `Brand` (the bytes vary).
fn grease(brand: &[u8]) -> bool {
    const GREASE: &[u8] = b" ()-./:;=?_";
    matches!(brand, [b'N', b'o', b't', x, b'A', y, b'B', b'r', b'a', b'n', b'd']
        if GREASE.contains(x) && GREASE.contains(y))
}

fn brand_list(s: &[u8], t: &Triggers) -> bool {
    let mut i = 0;
    loop {
        // The brand: the GREASE one holds bytes the others may not.
        let brand = if s.get(i..i + 13).is_some_and(|q| {
            q.first() == Some(&b'"')
                && q.last() == Some(&b'"')
                && grease(q.get(1..12).unwrap_or_default())
        }) {
            i += 13;
            true
        } else {
            match quoted(s, i, brand_byte) {
                Some((inner, end)) if !inner.is_empty() && words_pass(inner, t) => {
                    i = end;
                    true
                }
                _ => false,
            }
        };
        if !brand || s.get(i..i + 3) != Some(b";v=") {
            return false;
        }
        match quoted(s, i + 3, |b| b.is_ascii_digit() || b == b'.') {
            Some((version, end)) if !version.is_empty() => i = end,
            _ => return false,
        }
        if i == s.len() {
            return true;
        }
        if s.get(i) != Some(&b',') {
            return false;
        }
        i += 1;
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
    }
}

fn etag_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

fn entity_tags(s: &[u8], t: &Triggers) -> bool {
    let mut i = 0;
    loop {
        if s.get(i..i + 2) == Some(b"W/") {
            i += 2;
        }
        match quoted(s, i, etag_byte) {
            Some((tag, end)) if words_pass(tag, t) => i = end,
            _ => return false,
        }
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if i == s.len() {
            return true;
        }
        if s.get(i) != Some(&b',') {
            return false;
        }
        i += 1;
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests;
