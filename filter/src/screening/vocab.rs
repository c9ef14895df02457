//! Vocabularies as data: file names, shell commands, PowerShell cmdlets, SQL functions and
//! scanner user agents, from the data files in `vocab/` (compiled into the module with
//! `include_str!`) plus a policy's `screening.extra` lists.
//!
//! The built-in lists are indexed once per process, the first time a policy is compiled
//! ([`builtin`], called from `compile_screening`): never per request. A policy's extra lists
//! are indexed when that policy is compiled. An index is a [`PatternSet`]: the lowercased
//! entries, a bitmap of their first two bytes (one load per position rejects almost every
//! position of ordinary text) and the entries of each such pair.

use std::sync::OnceLock;

/// Entries of one vocabulary, indexed by their first two (lowercased) bytes.
///
/// The entries of two or more bytes are sorted by their first two bytes; `pairs` has bit
/// `(a << 8) | b` set for each pair that starts an entry, `rank` counts the set bits before
/// each word of `pairs`, so the pair's run of entries is found with one load and a popcount,
/// no hashing: most positions of ordinary text stop at the bitmap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSet {
    entries: Vec<Box<[u8]>>,
    pairs: Vec<u64>,
    rank: Vec<u32>,
    /// `entries[offsets[k]..offsets[k + 1]]` start with the `k`-th set pair.
    offsets: Vec<u32>,
    /// One-byte entries.
    singles: Vec<Box<[u8]>>,
    /// Bit `(b << 8) | c` for each entry whose second and third bytes are `b`, `c`; bit of
    /// the pair for two-byte entries in `short`: a second load that rules out most positions
    /// the first pair lets through (`mo` of `Mozilla` starts scanner names, `moz` none).
    next_pairs: Vec<u64>,
    short: Vec<u64>,
}

fn lower2(a: u8, b: u8) -> u16 {
    (u16::from(a.to_ascii_lowercase()) << 8) | u16::from(b.to_ascii_lowercase())
}

fn pair_of(e: &[u8]) -> u16 {
    match e {
        [a, b, ..] => lower2(*a, *b),
        _ => 0,
    }
}

/// The bit of the byte pair `a`, `b` in a 65,536-bit pair bitmap.
#[inline]
fn pair_bit(set: &[u64], a: u8, b: u8) -> bool {
    let p = (u16::from(a) << 8) | u16::from(b);
    set.get(usize::from(p >> 6))
        .is_some_and(|w| w & (1u64 << (p & 63)) != 0)
}

impl PatternSet {
    /// Indexes the non-empty, non-comment lines of `text` (lowercased, trimmed, `\` read as
    /// `/`), plus `more`.
    pub fn build<'a>(text: &'a str, more: impl IntoIterator<Item = &'a str>) -> Self {
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let mut all: Vec<Box<[u8]>> = lines
            .chain(more.into_iter().map(str::trim))
            .filter(|e| !e.is_empty())
            .map(|entry| {
                entry
                    .bytes()
                    .map(|b| {
                        if b == b'\\' {
                            b'/'
                        } else {
                            b.to_ascii_lowercase()
                        }
                    })
                    .collect()
            })
            .collect();
        all.sort_by(|x, y| pair_of(x).cmp(&pair_of(y)).then_with(|| x.cmp(y)));
        all.dedup();
        let (singles, entries): (Vec<_>, Vec<_>) = all.into_iter().partition(|e| e.len() == 1);
        let mut pairs = vec![0u64; 1024];
        let mut offsets = Vec::new();
        let mut last = None;
        for (k, e) in entries.iter().enumerate() {
            let p = pair_of(e);
            if last != Some(p) {
                last = Some(p);
                if let Some(w) = pairs.get_mut(usize::from(p >> 6)) {
                    *w |= 1 << (p & 63);
                }
                offsets.push(u32::try_from(k).unwrap_or(u32::MAX));
            }
        }
        offsets.push(u32::try_from(entries.len()).unwrap_or(u32::MAX));
        let mut next_pairs = vec![0u64; 1024];
        let mut short = vec![0u64; 1024];
        for e in &entries {
            let (bits, p) = match e.get(1..3) {
                Some(&[b, c]) => (&mut next_pairs, lower2(b, c)),
                _ => (&mut short, pair_of(e)),
            };
            if let Some(w) = bits.get_mut(usize::from(p >> 6)) {
                *w |= 1 << (p & 63);
            }
        }
        let mut rank = Vec::with_capacity(pairs.len());
        let mut seen = 0u32;
        for w in &pairs {
            rank.push(seen);
            seen += w.count_ones();
        }
        PatternSet {
            entries,
            pairs,
            rank,
            offsets,
            singles,
            next_pairs,
            short,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.singles.is_empty()
    }

    /// Every entry, lowercased, `\\` read as `/`.
    pub fn entries(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().chain(&self.singles).map(|e| &**e)
    }

    pub fn len(&self) -> usize {
        self.entries.len() + self.singles.len()
    }

    /// The entries whose first two bytes are `p`.
    #[inline]
    fn run_of(&self, p: u16) -> &[Box<[u8]>] {
        let w = usize::from(p >> 6);
        let bit = u32::from(p & 63);
        let Some(&word) = self.pairs.get(w) else {
            return &[];
        };
        if word & (1u64 << bit) == 0 {
            return &[];
        }
        let k = self.rank.get(w).copied().unwrap_or(0) + (word & ((1u64 << bit) - 1)).count_ones();
        let k = k as usize;
        match (self.offsets.get(k), self.offsets.get(k + 1)) {
            (Some(&a), Some(&b)) => self.entries.get(a as usize..b as usize).unwrap_or_default(),
            _ => &[],
        }
    }

    /// The entries `s[i..]` starts with, ignoring case (`\` in `s` matches `/`).
    #[inline]
    pub fn prefixes_at<'a>(&'a self, s: &'a [u8], i: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let run = match (s.get(i), s.get(i + 1)) {
            (Some(&a), Some(&b)) => self.run_of(lower2(slash(a), slash(b))),
            _ => &[],
        };
        let singles = if s.get(i).is_some() {
            self.singles.as_slice()
        } else {
            &[]
        };
        run.iter()
            .chain(singles)
            .map(|e| &**e)
            .filter(move |e| matches_at(s, i, e))
    }

    /// Whether `w` as a whole is an entry (ignoring case).
    pub fn contains(&self, w: &[u8]) -> bool {
        match w {
            [] => false,
            [b] => self
                .singles
                .iter()
                .any(|e| e.first() == Some(&b.to_ascii_lowercase())),
            [a, b, ..] => self
                .run_of(lower2(slash(*a), slash(*b)))
                .iter()
                .any(|e| e.len() == w.len() && matches_at(w, 0, e)),
        }
    }

    /// Whether an entry of two or more bytes may start with the (folded) bytes `a`, `b`.
    #[inline]
    pub fn may_start_pair(&self, a: u8, b: u8) -> bool {
        pair_bit(&self.pairs, a, b)
    }

    /// Whether an entry of three or more bytes may start with the (folded) bytes `a`, `b`,
    /// `c`: its first pair and its second pair, two bitmap loads (no entry compared).
    /// Entries shorter than three bytes are not ruled out here (see [`PatternSet::occurs_in`]).
    #[inline]
    pub fn may_start_triple(&self, a: u8, b: u8, c: u8) -> bool {
        self.may_start_pair(a, b) & self.may_continue_pair(b, c)
    }

    /// Whether an entry of three or more bytes has the (folded) bytes `b`, `c` second and
    /// third: the second half of [`PatternSet::may_start_triple`].
    #[inline]
    pub fn may_continue_pair(&self, b: u8, c: u8) -> bool {
        pair_bit(&self.next_pairs, b, c)
    }

    /// Whether some entry is shorter than three bytes ([`PatternSet::may_start_triple`]
    /// cannot rule those out).
    pub fn has_short_entries(&self) -> bool {
        !self.singles.is_empty() || self.short.iter().any(|&w| w != 0)
    }

    /// Whether some entry may start at `s[i..]`: one bitmap load (no entry compared).
    #[inline]
    pub fn may_start(&self, s: &[u8], i: usize) -> bool {
        if !self.singles.is_empty() {
            return true;
        }
        let (Some(&a), Some(&b)) = (s.get(i), s.get(i + 1)) else {
            return false;
        };
        let p = lower2(slash(a), slash(b));
        self.pairs
            .get(usize::from(p >> 6))
            .is_some_and(|w| w & (1u64 << (p & 63)) != 0)
    }

    /// Whether some entry occurs anywhere in `s` (ignoring case): one bitmap test per
    /// position, entries compared only where their first two bytes are.
    pub fn occurs_in(&self, s: &[u8]) -> bool {
        if self.is_empty() {
            return false;
        }
        if !self.singles.is_empty() {
            return (0..s.len()).any(|i| self.prefixes_at(s, i).next().is_some());
        }
        let bit = |set: &[u64], p: u16| {
            set.get(usize::from(p >> 6))
                .is_some_and(|word| word & (1u64 << (p & 63)) != 0)
        };
        // One table load folds each byte (case, `\` as `/`); the pair of the previous and
        // this byte is one bitmap load, the next pair a second one for the few that hit.
        let fold = |b: u8| FOLD.get(usize::from(b)).copied().unwrap_or(b);
        let mut prev = match s.first() {
            Some(&b) => fold(b),
            None => return false,
        };
        for (i, &b) in s.iter().enumerate().skip(1) {
            let cur = fold(b);
            let p = (u16::from(prev) << 8) | u16::from(cur);
            prev = cur;
            if !bit(&self.pairs, p) {
                continue;
            }
            let start = i - 1;
            let next = s.get(i + 1).is_some_and(|&c| {
                bit(&self.next_pairs, (u16::from(cur) << 8) | u16::from(fold(c)))
            });
            if (next || bit(&self.short, p))
                && self.run_of(p).iter().any(|e| matches_at(s, start, e))
            {
                return true;
            }
        }
        false
    }
}

/// Each byte as entries are stored: ASCII lowercase, `\` as `/`.
#[allow(clippy::indexing_slicing)] // constant evaluation: an out-of-bounds index stops the build
const FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = if b as u8 == b'\\' {
            b'/'
        } else {
            (b as u8).to_ascii_lowercase()
        };
        b += 1;
    }
    t
};

/// `b` as entries are stored (ASCII lowercase, `\\` as `/`).
#[inline]
pub fn fold(b: u8) -> u8 {
    FOLD.get(usize::from(b)).copied().unwrap_or(b)
}

fn slash(b: u8) -> u8 {
    if b == b'\\' {
        b'/'
    } else {
        b
    }
}

fn matches_at(s: &[u8], i: usize, e: &[u8]) -> bool {
    s.get(i..i + e.len()).is_some_and(|w| {
        w.iter()
            .zip(e)
            .all(|(&a, &b)| slash(a).to_ascii_lowercase() == b)
    })
}

/// The vocabularies the detectors read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabularies {
    /// Sensitive files and directories (`etc/passwd`, `.ssh/id_rsa`, `web.config`, ...).
    pub files: PatternSet,
    /// Shell commands that are not English words (a value starting with one is a command line).
    pub commands: PatternSet,
    /// PowerShell cmdlets and their aliases (`Invoke-Expression`, `iex`, ...).
    pub cmdlets: PatternSet,
    /// SQL functions and objects that are not English words (`extractvalue`, `sysibm`, ...).
    pub sql_functions: PatternSet,
    /// Scanner and attack-tool user-agent substrings.
    pub scanners: PatternSet,
}

impl Vocabularies {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.commands.is_empty()
            && self.cmdlets.is_empty()
            && self.sql_functions.is_empty()
            && self.scanners.is_empty()
    }
}

const FILES: [&str; 3] = [
    include_str!("vocab/crs-lfi-os-files.data"),
    include_str!("vocab/crs-restricted-files.data"),
    include_str!("vocab/files-extra.txt"),
];

/// The built-in vocabularies, indexed on first use (policy compilation), then shared.
pub fn builtin() -> &'static Vocabularies {
    static BUILTIN: OnceLock<Vocabularies> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let files = FILES.concat();
        Vocabularies {
            files: PatternSet::build(&files, []),
            commands: PatternSet::build(include_str!("vocab/commands.txt"), []),
            cmdlets: PatternSet::build(
                &[
                    include_str!("vocab/crs-windows-powershell-commands.data"),
                    include_str!("vocab/cmdlets-extra.txt"),
                ]
                .concat(),
                [],
            ),
            sql_functions: PatternSet::build(include_str!("vocab/sql-functions.txt"), []),
            scanners: PatternSet::build(
                &[
                    include_str!("vocab/crs-scanners-user-agents.data"),
                    include_str!("vocab/scanners-extra.txt"),
                ]
                .concat(),
                [],
            ),
        }
    })
}

/// The built-in vocabularies and a policy's extra entries, as the detectors see them.
#[derive(Clone, Copy)]
pub struct Vocab<'a> {
    pub base: &'static Vocabularies,
    pub extra: &'a Vocabularies,
}

impl Vocab<'_> {
    /// Entries of the `pick`ed vocabulary that `s[i..]` starts with, built-in then extra.
    pub fn prefixes_at<'s>(
        &'s self,
        pick: fn(&Vocabularies) -> &PatternSet,
        s: &'s [u8],
        i: usize,
    ) -> impl Iterator<Item = &'s [u8]> + 's {
        pick(self.base)
            .prefixes_at(s, i)
            .chain(pick(self.extra).prefixes_at(s, i))
    }

    /// Whether an entry of either list may start at `s[i..]` (bitmaps only).
    #[inline]
    pub fn may_start(&self, pick: fn(&Vocabularies) -> &PatternSet, s: &[u8], i: usize) -> bool {
        pick(self.base).may_start(s, i) || pick(self.extra).may_start(s, i)
    }

    pub fn contains(&self, pick: fn(&Vocabularies) -> &PatternSet, w: &[u8]) -> bool {
        pick(self.base).contains(w) || pick(self.extra).contains(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_set_finds_entries_ignoring_case_and_slashes() {
        let set = PatternSet::build("# comment\netc/passwd\n.ssh/\nx\n\n", ["Web.Config"]);
        assert_eq!(set.len(), 4);
        let s = b"..\\ETC\\passwd";
        assert_eq!(
            set.prefixes_at(s, 3).collect::<Vec<_>>(),
            vec![&b"etc/passwd"[..]]
        );
        assert!(set.contains(b"web.config"));
        assert!(set.contains(b"X"));
        assert!(!set.contains(b"etc/passw"));
        assert!(!set.contains(b""));
        assert!(set.occurs_in(b"a/.SSH/id"));
        assert!(!PatternSet::build("", []).occurs_in(b"anything"));
        // The end of the value cuts a match short, never reads past it.
        assert_eq!(set.prefixes_at(b"etc/pass", 0).count(), 0);
    }

    #[test]
    fn builtin_vocabularies_load() {
        let v = builtin();
        assert!(v.files.len() > 1000, "{}", v.files.len());
        assert!(v.cmdlets.contains(b"invoke-expression"));
        assert!(v
            .scanners
            .occurs_in(b"Mozilla/5.0 (compatible; Nmap Scripting Engine)"));
        assert!(v.commands.contains(b"whoami"));
        assert!(v.sql_functions.contains(b"extractvalue"));
    }
}
