//! `pattern` matching (JSON Schema `pattern`, parameter `pattern` rules).
//!
//! Every pattern is compiled by `regex-lite` at configure time, which is the definition of
//! what it means and its only validation. Most patterns in API schemas are, though, a plain
//! sequence of single-character atoms with quantifiers (`^[0-9]{5}$`, `^SKU-[0-9]{4,8}$`,
//! `^[a-z0-9-]{1,32}$`), for which regex-lite's general engine (a PikeVM) is slow: it is the
//! largest cost of a schema check. Those patterns are also compiled into an [`Atoms`]
//! matcher that gives the same answer in one left-to-right pass over the value, a few bit
//! operations per atom and character, without allocating; everything else keeps the regex.
//!
//! What the fast path accepts must mean exactly what regex-lite makes of it (regex-lite
//! 0.1, default flags: no case folding, `.` excludes `\n` only, `^`/`$` anchor the whole
//! haystack, `\d` `\s` `\w` are the ASCII classes `[0-9]`, `[\t\n\x0B\x0C\r ]`,
//! `[0-9A-Za-z_]`, and their negations are complements over all of Unicode). Anything the
//! parser below is not sure about (groups, alternation, flags, assertions, hex escapes,
//! nested or POSIX classes, lazy or stacked quantifiers, ...) falls back to the regex. A
//! property test checks the two agree on generated patterns and strings.

use regex_lite::Regex;

/// Most atoms in a fast-path pattern (the match state is one `u64` per atom, on the stack).
const MAX_ATOMS: usize = 32;
/// Largest repetition count the fast path represents (a bit per count in a `u64`).
const MAX_COUNT: u32 = 63;

/// A compiled pattern: an unanchored search, linear time in the value.
#[derive(Debug)]
pub struct Pattern {
    engine: Engine,
}

#[derive(Debug)]
enum Engine {
    Atoms(Atoms),
    Regex(Box<Regex>),
}

impl Pattern {
    /// Compiles `source`; the error is regex-lite's message.
    pub fn new(source: &str) -> Result<Pattern, String> {
        // Always compiled by regex-lite: it decides what is valid, and is the fallback.
        let regex = regex_lite::RegexBuilder::new(source)
            .size_limit(1 << 20)
            .nest_limit(64)
            .build()
            .map_err(|e| e.to_string())?;
        let engine = match Atoms::parse(source) {
            Some(atoms) => Engine::Atoms(atoms),
            None => Engine::Regex(Box::new(regex)),
        };
        Ok(Pattern { engine })
    }

    /// Whether the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        match &self.engine {
            Engine::Atoms(atoms) => atoms.is_match(s),
            Engine::Regex(re) => re.is_match(s),
        }
    }

    /// Whether the fast path serves this pattern (for tests and benchmarks).
    pub fn is_fast(&self) -> bool {
        matches!(self.engine, Engine::Atoms(_))
    }
}

/// A set of characters: a bitmap for ASCII, ranges for the rest.
#[derive(Debug, Clone, Default)]
struct CharSet {
    ascii: u128,
    /// Non-ASCII ranges (inclusive); their meaning is flipped by `non_ascii_negated`.
    non_ascii: Vec<(char, char)>,
    non_ascii_negated: bool,
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        let code = u32::from(c);
        if code < 128 {
            (self.ascii >> code) & 1 == 1
        } else {
            self.non_ascii_negated
                != self
                    .non_ascii
                    .iter()
                    .any(|&(lo, hi)| (lo..=hi).contains(&c))
        }
    }
}

/// A class being built from the items of `[...]` (or a single escape): a union.
#[derive(Default)]
struct ClassBuilder {
    ascii: u128,
    non_ascii: Vec<(char, char)>,
    /// Some item (`\D`, `\W`, `\S`) covers every non-ASCII character.
    all_non_ascii: bool,
}

impl ClassBuilder {
    fn range(&mut self, lo: char, hi: char) {
        let (lo_code, hi_code) = (u32::from(lo), u32::from(hi));
        let mut code = lo_code;
        while code <= hi_code.min(127) {
            self.ascii |= 1u128 << code;
            code += 1;
        }
        if hi_code >= 128 {
            self.non_ascii.push((lo.max('\u{80}'), hi));
        }
    }

    fn ascii_ranges(&mut self, ranges: &[(u8, u8)], negated: bool) {
        let mut bits = 0u128;
        for &(lo, hi) in ranges {
            for code in lo..=hi {
                bits |= 1u128 << code;
            }
        }
        if negated {
            self.ascii |= !bits;
            self.all_non_ascii = true;
        } else {
            self.ascii |= bits;
        }
    }

    fn finish(self, negated: bool) -> CharSet {
        if negated {
            CharSet {
                ascii: !self.ascii,
                non_ascii: if self.all_non_ascii {
                    Vec::new()
                } else {
                    self.non_ascii
                },
                non_ascii_negated: !self.all_non_ascii,
            }
        } else {
            CharSet {
                ascii: self.ascii,
                non_ascii: if self.all_non_ascii {
                    Vec::new()
                } else {
                    self.non_ascii
                },
                non_ascii_negated: self.all_non_ascii,
            }
        }
    }
}

const DIGIT: &[(u8, u8)] = &[(b'0', b'9')];
const SPACE: &[(u8, u8)] = &[(b'\t', b'\r'), (b' ', b' ')];
const WORD: &[(u8, u8)] = &[(b'0', b'9'), (b'A', b'Z'), (b'_', b'_'), (b'a', b'z')];

/// One atom: a character set repeated `min..=max` times (or `min..` when unbounded).
///
/// Matching state per atom is a bitset of how many characters the atom has consumed on each
/// live path: bit `c` means "inside this atom after `c` characters". Unbounded atoms stop
/// counting at `min` (bit `min` then means "`min` or more").
#[derive(Debug)]
struct Atom {
    set: CharSet,
    /// The character, when the atom is one literal character exactly once.
    literal: Option<char>,
    /// Repetitions: at least `min`, at most `max` (`None`: unbounded).
    min: u32,
    max: Option<u32>,
    /// Every count the atom can be in.
    live: u64,
    /// Counts from which the next atom may start.
    exit: u64,
    /// Counts that stay put on a match (the saturated count of an unbounded atom).
    sticky: u64,
}

impl Atom {
    fn new(set: CharSet, literal: Option<char>, min: u32, max: Option<u32>) -> Option<Atom> {
        let top = max.unwrap_or(min);
        if top > MAX_COUNT || min > top {
            return None;
        }
        let live = u64::MAX >> (MAX_COUNT - top);
        let exit = live & (u64::MAX << min);
        let sticky = if max.is_none() { 1u64 << min } else { 0 };
        Some(Atom {
            set,
            literal: literal.filter(|_| min == 1 && max == Some(1)),
            min,
            max,
            live,
            exit,
            sticky,
        })
    }
}

/// A pattern that is a sequence of quantified single-character atoms, optionally anchored.
#[derive(Debug)]
struct Atoms {
    /// Anchored patterns only: the leading literal characters (`^SKU-`), compared at once;
    /// `atoms` is what follows them.
    prefix: String,
    atoms: Vec<Atom>,
    anchored_start: bool,
    anchored_end: bool,
}

/// A cursor over the pattern's characters.
struct Cursor<'p> {
    chars: std::iter::Peekable<std::str::Chars<'p>>,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<char> {
        self.chars.next()
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn eat(&mut self, c: char) -> bool {
        self.chars.next_if_eq(&c).is_some()
    }

    fn at_end(&mut self) -> bool {
        self.chars.peek().is_none()
    }

    /// A decimal count as `{n,m}` writes it (digits only, no spaces).
    fn count(&mut self) -> Option<u32> {
        let mut n: Option<u32> = None;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            self.next();
            n = Some(n.unwrap_or(0).checked_mul(10)?.checked_add(d)?);
        }
        n
    }
}

/// What a `\` escape stands for in the fast path.
enum Escape {
    Char(char),
    Class(&'static [(u8, u8)], bool),
}

fn escape(c: char) -> Option<Escape> {
    Some(match c {
        'd' => Escape::Class(DIGIT, false),
        'D' => Escape::Class(DIGIT, true),
        's' => Escape::Class(SPACE, false),
        'S' => Escape::Class(SPACE, true),
        'w' => Escape::Class(WORD, false),
        'W' => Escape::Class(WORD, true),
        'n' => Escape::Char('\n'),
        't' => Escape::Char('\t'),
        'r' => Escape::Char('\r'),
        'f' => Escape::Char('\x0C'),
        'v' => Escape::Char('\x0B'),
        'a' => Escape::Char('\x07'),
        // regex-lite takes any ASCII punctuation but `<` `>` (reserved) as itself.
        c if c.is_ascii_punctuation() && c != '<' && c != '>' => Escape::Char(c),
        _ => return None,
    })
}

impl Atoms {
    /// The fast-path form of `source`, or `None` when it is anything else.
    fn parse(source: &str) -> Option<Atoms> {
        let mut cur = Cursor {
            chars: source.chars().peekable(),
        };
        let anchored_start = cur.eat('^');
        let mut anchored_end = false;
        let mut atoms = Vec::new();
        while let Some(c) = cur.next() {
            let mut literal = None;
            let set = match c {
                '$' if cur.at_end() => {
                    anchored_end = true;
                    break;
                }
                '\\' => {
                    let mut class = ClassBuilder::default();
                    match escape(cur.next()?)? {
                        Escape::Char(c) => {
                            literal = Some(c);
                            class.range(c, c);
                        }
                        Escape::Class(ranges, negated) => class.ascii_ranges(ranges, negated),
                    }
                    class.finish(false)
                }
                '[' => Self::class(&mut cur)?,
                '.' => {
                    let mut class = ClassBuilder::default();
                    class.range('\n', '\n');
                    class.finish(true)
                }
                // Meta characters the fast path does not model (`$` inside, groups,
                // alternation, a quantifier with nothing to repeat, ...).
                '^' | '$' | '(' | ')' | '|' | '*' | '+' | '?' | '{' | '}' | ']' => return None,
                c => {
                    literal = Some(c);
                    let mut class = ClassBuilder::default();
                    class.range(c, c);
                    class.finish(false)
                }
            };
            let quantifier = match cur.peek() {
                Some('?') => Some((0, Some(1))),
                Some('*') => Some((0, None)),
                Some('+') => Some((1, None)),
                Some('{') => {
                    cur.next();
                    let min = cur.count()?;
                    let max = if cur.eat(',') {
                        if cur.peek() == Some('}') {
                            None
                        } else {
                            Some(cur.count()?)
                        }
                    } else {
                        Some(min)
                    };
                    Some((min, max))
                }
                _ => None,
            };
            let (min, max) = match quantifier {
                Some(bounds) => {
                    // The quantifier's last character (`?`, `*`, `+` or `}`).
                    if !matches!(cur.next(), Some('?' | '*' | '+' | '}')) {
                        return None;
                    }
                    // Lazy (`+?`) or stacked (`a{2}{3}`, `a**`) quantifiers: leave them to
                    // the regex.
                    if matches!(cur.peek(), Some('?' | '*' | '+' | '{')) {
                        return None;
                    }
                    bounds
                }
                None => (1, Some(1)),
            };
            atoms.push(Atom::new(set, literal, min, max)?);
            if atoms.len() > MAX_ATOMS {
                return None;
            }
        }
        let mut prefix = String::new();
        if anchored_start {
            let literals = atoms.iter().map_while(|a| a.literal).count();
            prefix = atoms.drain(..literals).filter_map(|a| a.literal).collect();
        }
        Some(Atoms {
            prefix,
            atoms,
            anchored_start,
            anchored_end,
        })
    }

    /// A bracketed class, the cursor just past `[`.
    fn class(cur: &mut Cursor<'_>) -> Option<CharSet> {
        let negated = cur.eat('^');
        let mut class = ClassBuilder::default();
        let mut first = true;
        loop {
            let c = cur.next()?;
            let lo = match c {
                ']' if !first => return Some(class.finish(negated)),
                // `[]...]`, nested and POSIX classes, set operations (`&&`, `--`, `~~`), and
                // a `^` that is not the negation: regex-lite's finer points; leave them to it.
                ']' | '[' | '&' | '~' | '^' => return None,
                // Leading `-`s are literal, however many (`[--x]` is `-` or `x`, not a range
                // from `-`); elsewhere a `-` is literal only just before `]`.
                '-' if first => {
                    while cur.eat('-') {}
                    class.range('-', '-');
                    first = false;
                    continue;
                }
                '-' => {
                    if cur.peek() != Some(']') {
                        return None;
                    }
                    '-'
                }
                '\\' => match escape(cur.next()?)? {
                    Escape::Char(c) => c,
                    Escape::Class(ranges, negated) => {
                        class.ascii_ranges(ranges, negated);
                        first = false;
                        continue;
                    }
                },
                c => c,
            };
            first = false;
            // A range `lo-hi`, unless the `-` is the class's last character.
            let mut hi = lo;
            if cur.peek() == Some('-') {
                let mut ahead = cur.chars.clone();
                ahead.next();
                match ahead.peek() {
                    Some(']') => {}
                    Some(_) => {
                        cur.next();
                        hi = match cur.next()? {
                            '\\' => match escape(cur.next()?)? {
                                Escape::Char(c) => c,
                                Escape::Class(..) => return None,
                            },
                            '[' | ']' | '&' | '~' | '^' | '-' => return None,
                            c => c,
                        };
                        if hi < lo {
                            return None;
                        }
                    }
                    None => return None,
                }
            }
            class.range(lo, hi);
        }
    }

    fn is_match(&self, s: &str) -> bool {
        if !self.anchored_start {
            return self.run(s);
        }
        // An inline loop rather than `strip_prefix`: prefixes are a few bytes, and a call to
        // `memcmp` cost more than the rest of the match on short values.
        let prefix = self.prefix.as_bytes();
        let starts =
            s.len() >= prefix.len() && prefix.iter().zip(s.as_bytes()).all(|(p, c)| p == c);
        let Some(rest) = s.get(prefix.len()..).filter(|_| starts) else {
            return false;
        };
        match self.atoms.as_slice() {
            // `^x{m,n}$` (after any prefix), the commonest shape: every character in the set,
            // and as many as allowed.
            [atom] if self.anchored_end => {
                let mut n: u32 = 0;
                for c in rest.chars() {
                    if !atom.set.contains(c) {
                        return false;
                    }
                    n = n.saturating_add(1);
                    if atom.max.is_some_and(|max| n > max) {
                        return false;
                    }
                }
                n >= atom.min
            }
            _ => self.run(rest),
        }
    }

    /// The general simulation, on what follows the prefix.
    fn run(&self, s: &str) -> bool {
        let mut counts = [0u64; MAX_ATOMS];
        let mut chars = s.chars();
        let mut at_start = true;
        loop {
            // Follow the empty transitions: a match may start here (anywhere unless anchored),
            // and each atom that may stop lets the next one start.
            let mut enter = at_start || !self.anchored_start;
            for (atom, count) in self.atoms.iter().zip(counts.iter_mut()) {
                if enter {
                    *count |= 1;
                }
                enter = *count & atom.exit != 0;
            }
            let matched = enter;
            if matched && !self.anchored_end {
                return true;
            }
            let Some(c) = chars.next() else {
                return matched;
            };
            at_start = false;
            let mut alive = 0u64;
            for (atom, count) in self.atoms.iter().zip(counts.iter_mut()) {
                *count = if *count != 0 && atom.set.contains(c) {
                    ((*count << 1) | (*count & atom.sticky)) & atom.live
                } else {
                    0
                };
                alive |= *count;
            }
            // Anchored at the start and no path left: nothing later can match.
            if self.anchored_start && alive == 0 {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn regex(p: &str) -> Regex {
        regex_lite::Regex::new(p).unwrap()
    }

    #[test]
    fn fast_path_table() {
        // (pattern, input, matches)
        let cases: &[(&str, &str, bool)] = &[
            ("^[0-9]{5}$", "10115", true),
            ("^[0-9]{5}$", "1011", false),
            ("^[0-9]{5}$", "101155", false),
            ("^[0-9]{5}$", "10115\n", false),
            ("^[0-9]{5}$", "１０１１５", false),
            ("[0-9]{5}", "ab101155", true),
            ("^SKU-[0-9]{4,8}$", "SKU-001000", true),
            ("^SKU-[0-9]{4,8}$", "SKU-123", false),
            ("^SKU-[0-9]{4,8}$", "SKU-123456789", false),
            ("^SKU-[0-9]{4,8}$", "sku-1234", false),
            ("^[a-z0-9-]{1,32}$", "gift-wrap", true),
            ("^[a-z0-9-]{1,32}$", "", false),
            ("^[a-z0-9-]{1,32}$", "Gift", false),
            ("^\\+?[0-9 ()-]{6,20}$", "+44 20 7946 0958", true),
            ("^\\+?[0-9 ()-]{6,20}$", "++44 20 7946 0958", false),
            ("^C[0-9]{6}$", "C123456", true),
            ("^$", "", true),
            ("^$", "a", false),
            ("", "anything", true),
            ("a*", "", true),
            ("^a*$", "aaa", true),
            ("^a*$", "aab", false),
            ("^a+b?c*$", "aac", true),
            ("^.{2}$", "é😀", true),
            ("^.{2}$", "a\n", false),
            ("^\\D+$", "é\n", true),
            ("^\\w+$", "é", false),
            ("^\\s$", "\u{a0}", false),
            ("^\\S$", "\u{a0}", true),
            ("^[^a-z]$", "é", true),
            ("^[é-ü]+$", "éü", true),
            ("^[a-é]$", "z", true),
            ("abc$", "xxabc", true),
            ("abc$", "abcx", false),
            ("^abc", "abcx", true),
            ("a{0}b", "b", true),
            ("^x{2,}$", "xxxx", true),
            ("^x{2,}$", "x", false),
            ("\\.", "a.b", true),
            ("\\.", "ab", false),
            ("^[\\d\\s]+$", "1 2\t3", true),
            ("^[^\\D]+$", "123", true),
            ("^[^\\D]+$", "12a", false),
            ("^[--x]$", "-", true),
            ("^[--x]$", "x", true),
            ("^[--x]$", "a", false),
            ("^[-]+$", "--", true),
            ("^abc$", "abc", true),
            ("^abc$", "abcd", false),
            ("^abc$", "ab", false),
            ("^ab", "abx", true),
            ("^ab", "a", false),
            ("^a\\.b{2}$", "a.bb", true),
            ("^a\\.b{2}$", "a.bbb", false),
            ("^éx{2}$", "éxx", true),
            ("^C[0-9]{6}$", "C12345", false),
            ("^C[0-9]{6}$", "C1234567", false),
            ("^C[0-9]+$", "C", false),
            ("^C[0-9]*$", "C", true),
        ];
        for (p, s, want) in cases {
            let compiled = Pattern::new(p).unwrap();
            assert!(compiled.is_fast(), "{p} should take the fast path");
            assert_eq!(compiled.is_match(s), *want, "{p} on {s:?}");
            assert_eq!(
                regex(p).is_match(s),
                *want,
                "regex-lite disagrees: {p} on {s:?}"
            );
        }
    }

    #[test]
    fn other_patterns_keep_the_regex() {
        for p in [
            "^(ab)+$",
            "a|b",
            "(?i)abc",
            "\\bword\\b",
            "\\x41",
            "\\u{41}",
            "[[:alpha:]]",
            "[]a]",
            "[a-z-0]",
            "a+?",
            "a{2}{3}",
            "a{2,3}?",
            "^a$b",
            "a^",
            "[^^]",
            "\\p{L}",
            "\\A",
            "a{64}",
            "a{1,100}",
            "\\Qx",
            &"a".repeat(MAX_ATOMS + 1),
        ] {
            let Ok(compiled) = Pattern::new(p) else {
                continue;
            };
            assert!(!compiled.is_fast(), "{p} must not take the fast path");
        }
        // The fallback still answers.
        let p = Pattern::new("^(ab)+$").unwrap();
        assert!(p.is_match("abab"));
        assert!(!p.is_match("aba"));
        assert!(Pattern::new("(unclosed").is_err());
        assert!(Pattern::new("[z-a]").is_err());
    }

    /// Atoms of the fast-path grammar, written as regex-lite reads them.
    const ATOMS: &[&str] = &[
        "a",
        "b",
        "-",
        "é",
        "😀",
        " ",
        "\\.",
        "\\+",
        "\\-",
        "\\$",
        "\\^",
        "\\\\",
        "\\n",
        "\\t",
        "\\d",
        "\\D",
        "\\w",
        "\\W",
        "\\s",
        "\\S",
        ".",
        "[a-c]",
        "[^a-c]",
        "[0-9 ()-]",
        "[-a]",
        "[a-]",
        "[-]",
        "[--a]",
        "[^-a]",
        "[\\d\\s]",
        "[^\\D]",
        "[é-ü]",
        "[^é]",
        "[a-é]",
        "[\\w.-]",
        "[^\\W_]",
        "[\\]x]",
        "[+\\-]",
    ];
    const QUANTIFIERS: &[&str] = &[
        "", "", "", "?", "*", "+", "{2}", "{0,3}", "{1,}", "{2,4}", "{0}", "{0,}", "{3,5}",
    ];

    fn pattern_strategy() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            proptest::collection::vec(
                (
                    proptest::sample::select(ATOMS),
                    proptest::sample::select(QUANTIFIERS),
                ),
                0..6,
            ),
            any::<bool>(),
        )
            .prop_map(|(start, atoms, end)| {
                let mut p = String::new();
                if start {
                    p.push('^');
                }
                for (a, q) in atoms {
                    p.push_str(a);
                    p.push_str(q);
                }
                if end {
                    p.push('$');
                }
                p
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        // Generated fast-path patterns against regex-lite on strings from a matching alphabet
        // (plus newlines, non-ASCII and astral characters).
        #[test]
        fn agrees_with_regex_lite(
            p in pattern_strategy(),
            s in "[abc019 \\-.+$^\\\\\n\t_()\\]xéüöz😀\u{a0}]{0,12}",
        ) {
            let compiled = Pattern::new(&p).unwrap();
            prop_assert!(compiled.is_fast(), "{} should take the fast path", p);
            let Some(atoms) = Atoms::parse(&p) else {
                return Err(TestCaseError::fail("no fast path"));
            };
            prop_assert_eq!(atoms.is_match(&s), regex(&p).is_match(&s), "{:?} on {:?}", p, s);
        }

        // Arbitrary text against the patterns of the bench schema and a few more.
        #[test]
        fn agrees_on_any_text(s in ".{0,40}") {
            for p in [
                "^[0-9]{5}$", "^SKU-[0-9]{4,8}$", "^[a-z0-9-]{1,32}$", "^\\+?[0-9 ()-]{6,20}$",
                "^C[0-9]{6}$", "^\\S+$", "\\d", "^.*$", "^[^<>]*$", "[\\W]{2}", "x*$",
            ] {
                let compiled = Pattern::new(p).unwrap();
                prop_assert!(compiled.is_fast());
                prop_assert_eq!(compiled.is_match(&s), regex(p).is_match(&s), "{:?} on {:?}", p, s);
            }
        }

        // Bracketed classes built from the characters that have special meanings in them.
        #[test]
        fn any_accepted_class_agrees(
            inner in "[\\-a-c^\\]\\[\\\\dDwWs&~xé.]{0,6}",
            quantifier in proptest::sample::select(QUANTIFIERS),
            s in "[a-c\\-\\]\\[\\\\^0-9 _&~xéz\n.]{0,6}",
        ) {
            for p in [format!("^[{inner}]{quantifier}$"), format!("[{inner}]{quantifier}")] {
                if let (Ok(re), Some(atoms)) = (regex_lite::Regex::new(&p), Atoms::parse(&p)) {
                    prop_assert_eq!(atoms.is_match(&s), re.is_match(&s), "{:?} on {:?}", p, s);
                }
            }
        }

        // Arbitrary pattern text: whatever the fast path accepts agrees with regex-lite.
        #[test]
        fn any_accepted_pattern_agrees(
            p in "[\\^$a\\-\\[\\]\\\\dDsw.{},0-9?*+é]{0,10}",
            s in "[a\\-\\]\\\\0-9 é\n]{0,10}",
        ) {
            if let (Ok(re), Some(atoms)) = (regex_lite::Regex::new(&p), Atoms::parse(&p)) {
                prop_assert_eq!(atoms.is_match(&s), re.is_match(&s), "{:?} on {:?}", p, s);
            }
        }
    }
}
