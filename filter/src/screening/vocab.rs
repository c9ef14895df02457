//! Vocabularies as data: file names, shell commands, PowerShell cmdlets, SQL functions and
//! scanner user agents, from the data files in `vocab/` (compiled into the module with
//! `include_str!`) plus a policy's `screening.extra` lists.
//!
//! The built-in lists are indexed once per process, the first time a policy is compiled
//! ([`builtin`], called from `compile_screening`): never per request. A policy's extra lists
//! are indexed when that policy is compiled. An index is a [`PatternSet`]: the lowercased
//! entries, a bitmap of their first two bytes (one load per position rejects almost every
//! position of ordinary text) and the entries of each such pair.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Entries of one vocabulary, indexed by their first two (lowercased) bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSet {
    entries: Vec<Box<[u8]>>,
    /// Bit `(a << 8) | b` is set when some entry starts with the bytes `a`, `b`.
    pairs: Vec<u64>,
    /// Entry indices by their first two bytes.
    by_pair: HashMap<u16, Vec<u32>>,
    /// One-byte entries.
    singles: Vec<u32>,
}

fn lower2(a: u8, b: u8) -> u16 {
    (u16::from(a.to_ascii_lowercase()) << 8) | u16::from(b.to_ascii_lowercase())
}

impl PatternSet {
    /// Indexes the non-empty, non-comment lines of `text` (lowercased, trimmed, `\` read as
    /// `/`), plus `more`.
    pub fn build<'a>(text: &'a str, more: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = PatternSet {
            pairs: vec![0; 1024],
            ..PatternSet::default()
        };
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        for entry in lines.chain(more.into_iter().map(str::trim)) {
            if entry.is_empty() {
                continue;
            }
            let e: Box<[u8]> = entry
                .bytes()
                .map(|b| {
                    if b == b'\\' {
                        b'/'
                    } else {
                        b.to_ascii_lowercase()
                    }
                })
                .collect();
            if set.entries.contains(&e) {
                continue;
            }
            let k = u32::try_from(set.entries.len()).unwrap_or(u32::MAX);
            match *e {
                [_] => set.singles.push(k),
                [a, b, ..] => {
                    let p = lower2(a, b);
                    if let Some(w) = set.pairs.get_mut(usize::from(p >> 6)) {
                        *w |= 1 << (p & 63);
                    }
                    set.by_pair.entry(p).or_default().push(k);
                }
                [] => continue,
            }
            set.entries.push(e);
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries `s[i..]` starts with, ignoring case (`\` in `s` matches `/`).
    pub fn prefixes_at<'a>(&'a self, s: &'a [u8], i: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let pair = match (s.get(i), s.get(i + 1)) {
            (Some(&a), Some(&b)) => {
                let p = lower2(slash(a), slash(b));
                let hit = self
                    .pairs
                    .get(usize::from(p >> 6))
                    .is_some_and(|w| w & (1 << (p & 63)) != 0);
                if hit {
                    self.by_pair.get(&p).map(Vec::as_slice)
                } else {
                    None
                }
            }
            _ => None,
        };
        let singles = if s.get(i).is_some() {
            self.singles.as_slice()
        } else {
            &[]
        };
        pair.unwrap_or_default()
            .iter()
            .chain(singles)
            .filter_map(|&k| self.entries.get(k as usize))
            .map(|e| &**e)
            .filter(move |e| matches_at(s, i, e))
    }

    /// Whether `w` as a whole is an entry (ignoring case).
    pub fn contains(&self, w: &[u8]) -> bool {
        w.len() >= 2 && self.prefixes_at(w, 0).any(|e| e.len() == w.len())
            || (w.len() == 1 && self.prefixes_at(w, 0).next().is_some())
    }

    /// Whether some entry occurs anywhere in `s` (ignoring case).
    pub fn occurs_in(&self, s: &[u8]) -> bool {
        !self.is_empty() && (0..s.len()).any(|i| self.prefixes_at(s, i).next().is_some())
    }
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
