//! Path traversal and local file inclusion, on the decoded value (`/` and `\` are equivalent).
//!
//! Rule ids (sensitivity at which each applies):
//! - `traversal.dotdot` (low: 3+ levels; medium: 2+ levels, or one level in an evasive form:
//!   `..;/`, a run of 3+ dots used against `../` stripping (`....//`); high: any `../`). A
//!   single `../` is how relative links look ("../images/logo.png"), so medium leaves it to
//!   the sensitive-file rule.
//! - `traversal.sensitive_file` (low+): a well-known system file or directory (`etc/passwd`,
//!   `proc/self/`, `win.ini`, `boot.ini`, `windows/system32`, `.ssh/`, `.htpasswd`, `web-inf/`,
//!   `.git/`, `.env`, ...) after a traversal or as the whole path (`/etc/passwd`, `c:\boot.ini`,
//!   `file:///etc/shadow`), never in prose ("edit your /etc/hosts file" is not reported).
//! - `traversal.file_scheme` (medium+): `file:/` at the start of the value or after `=`, a
//!   quote or `(`; `php://`, `phar://`, `zip://`, `expect://`, `glob://` anywhere.
//! - `traversal.null_byte` (medium+): a NUL byte (`%00`) used to cut off an appended suffix.

use super::sensitivity::Sensitivity;
use super::text::{at, bits, is_ws, lower_at, prev_non_ws, starts_ci, WordIndex};
use super::vocab::{PatternSet, Vocab, Vocabularies};

fn is_sep(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Targets, written with `/`; matching treats `\` as `/`. `true`: must end at a boundary.
/// The first `ALWAYS` entries are reported after any separator in a value without spaces (a
/// path or URL, not prose), e.g. `/home/u/.ssh/authorized_keys`; the others only when the
/// value is anchored at them or a traversal leads to them.
const ALWAYS: usize = 11;
const TARGETS: &[(&[u8], bool)] = &[
    (b"etc/passwd", true),
    (b"etc/shadow", true),
    (b".ssh/", false),
    (b"id_rsa", true),
    (b".htpasswd", true),
    (b"boot.ini", true),
    (b"win.ini", true),
    (b"proc/self/", false),
    (b"web-inf/web.xml", true),
    (b".aws/credentials", true),
    (b".bash_history", true),
    (b"etc/hosts", true),
    (b"etc/group", true),
    (b"etc/issue", true),
    (b"etc/hostname", true),
    (b"etc/motd", true),
    (b"etc/crontab", true),
    (b"etc/sudoers", true),
    (b"etc/apache2/", false),
    (b"etc/nginx/", false),
    (b"etc/mysql/", false),
    (b"etc/ssh/", false),
    (b"proc/version", true),
    (b"proc/cpuinfo", true),
    (b"var/log/", false),
    (b"var/www/", false),
    (b"root/", false),
    (b"windows/win.ini", true),
    (b"windows/system32", false),
    (b"windows/system.ini", true),
    (b"winnt/", false),
    (b"system32/", false),
    (b"inetpub/", false),
    (b".htaccess", true),
    (b"web-inf/", false),
    (b"web.config", true),
    (b".git/", false),
    (b".env", true),
    (b"wp-config.php", true),
];

const TARGET_INDEX: WordIndex = WordIndex::of_pairs(TARGETS);

/// The bits of the first `ALWAYS` targets.
const ALWAYS_BITS: u64 = (1 << ALWAYS) - 1;

/// `s[i..]` equals `pat` with `/` matching either separator, ignoring case.
fn path_eq(s: &[u8], i: usize, pat: &[u8]) -> bool {
    pat.iter()
        .enumerate()
        .all(|(k, &c)| match lower_at(s, i + k) {
            Some(b) if c == b'/' => is_sep(b),
            Some(b) => b == c,
            None => false,
        })
}

fn boundary(b: Option<u8>) -> bool {
    b.is_none_or(|b| {
        is_ws(b)
            || matches!(
                b,
                0 | b'/' | b'\\' | b'?' | b'#' | b'&' | b';' | b'%' | b'"' | b'\'' | b')'
            )
    })
}

/// Whether everything before `p` is path punctuation: separators, dots, a drive letter, a
/// `file:` scheme, spaces. Such a value *is* a path, not prose mentioning one.
fn anchor_len(s: &[u8]) -> usize {
    let mut i = 0;
    while at(s, i).is_some_and(is_ws) {
        i += 1;
    }
    if starts_ci(s, i, b"file:") {
        i += 5;
    }
    if at(s, i).is_some_and(|b| b.is_ascii_alphabetic()) && at(s, i + 1) == Some(b':') {
        i += 2;
    }
    i + s.get(i..).map_or(0, |t| {
        t.iter()
            .take_while(|&&b| is_sep(b) || b == b'.' || b == 0)
            .count()
    })
}

/// Whether a traversal (`..` then a separator) ends right before `p`.
fn after_dotdot(s: &[u8], p: usize) -> bool {
    let mut j = p;
    while j > 0 && at(s, j - 1).is_some_and(is_sep) {
        j -= 1;
    }
    j >= 2 && at(s, j - 1) == Some(b'.') && at(s, j - 2) == Some(b'.') && j < p
}

fn sensitive(s: &[u8]) -> bool {
    let anchor = anchor_len(s);
    let path_like = !s.iter().any(|&b| is_ws(b));
    for (i, &b) in s.iter().enumerate() {
        let after_sep = i > 0 && at(s, i - 1).is_some_and(is_sep);
        if i > 0 && !after_sep {
            continue;
        }
        // Targets never start with a separator, so the byte here picks the candidates; where
        // they are placed does not depend on the target, except for the `ALWAYS` ones.
        let mut candidates = TARGET_INDEX.starting_with(b);
        if candidates == 0 {
            continue;
        }
        if !(i <= anchor || after_dotdot(s, i)) {
            candidates &= if after_sep && path_like {
                ALWAYS_BITS
            } else {
                0
            };
        }
        let hit = bits(candidates).any(|k| {
            TARGETS.get(k).is_some_and(|(t, bounded)| {
                path_eq(s, i, t) && (!bounded || boundary(at(s, i + t.len())))
            })
        });
        if hit {
            return true;
        }
    }
    false
}

/// Counts `../` levels; returns (max consecutive levels, a level at value start, an evasion
/// form seen: `....//`, `..;/`).
fn levels(s: &[u8]) -> (usize, bool, bool) {
    let mut best = 0;
    let mut run = 0;
    let mut at_start = false;
    let mut evasive = false;
    let anchor = anchor_len(s);
    let mut i = 0;
    while i < s.len() {
        let dots = s
            .get(i..)
            .map_or(0, |t| t.iter().take_while(|&&b| b == b'.').count());
        if dots < 2 {
            // `./` inside a traversal run keeps the run going; anything else ends it.
            if dots == 1 && at(s, i + 1).is_some_and(is_sep) {
                i += 2;
                continue;
            }
            if !at(s, i).is_some_and(is_sep) {
                run = 0;
            }
            i += dots.max(1);
            continue;
        }
        let before = i.checked_sub(1).and_then(|p| at(s, p));
        let opens = before.is_none_or(|b| {
            is_sep(b) || is_ws(b) || matches!(b, b'=' | b':' | b';' | b'"' | b'\'' | b'(' | 0)
        });
        let mut j = i + dots;
        let semi = at(s, j) == Some(b';');
        if semi {
            j += 1;
        }
        let seps = s
            .get(j..)
            .map_or(0, |t| t.iter().take_while(|&&b| is_sep(b)).count());
        if opens && (seps > 0 || (j >= s.len() && before.is_some_and(is_sep))) {
            run += 1;
            best = best.max(run);
            if prev_non_ws(s, i).is_none() || (before.is_some_and(is_sep) && i <= anchor) {
                at_start = true;
            }
            if (dots >= 3 && before.is_some_and(is_sep) || dots >= 4)
                || semi
                || (dots >= 3 && seps >= 2)
            {
                evasive = true;
            }
        } else {
            run = 0;
        }
        i = j + seps.max(1);
    }
    (best, at_start, evasive)
}

/// Schemes that read files wherever they appear.
const SCHEMES: [&[u8]; 6] = [
    b"php://",
    b"phar://",
    b"zip://",
    b"expect://",
    b"glob://",
    b"jar:file:",
];

/// A file-reading scheme anywhere, or `file:/` where a URL value starts (the value's start, or
/// after `=`, a quote or `(`). Every scheme holds a `:`, so the search is anchored at the
/// colons (few, or none, in most values): an occurrence starts as far before its first colon
/// as the scheme's own first colon is from its start.
fn file_scheme(s: &[u8]) -> bool {
    let start_by_colon = |colon: usize, scheme: &[u8]| {
        scheme
            .iter()
            .position(|&b| b == b':')
            .and_then(|k| colon.checked_sub(k))
            .filter(|&p| starts_ci(s, p, scheme))
    };
    s.iter()
        .enumerate()
        .filter(|(_, &b)| b == b':')
        .any(|(colon, _)| {
            SCHEMES
                .iter()
                .any(|scheme| start_by_colon(colon, scheme).is_some())
                || start_by_colon(colon, b"file:").is_some_and(|p| {
                    at(s, p + 5).is_some_and(is_sep)
                        && prev_non_ws(s, p)
                            .and_then(|q| at(s, q))
                            .is_none_or(|b| matches!(b, b'=' | b'"' | b'\'' | b'('))
                })
        })
}

/// The words (first word of each entry, see `inert.rs`) without which no rule here reports at
/// `medium` or below, beside the file vocabularies, once `..`, `\` and NUL are ruled out.
pub(super) fn trigger_words() -> [&'static [&'static [u8]]; 3] {
    // Constant evaluation: an index out of bounds stops the build.
    #[allow(clippy::indexing_slicing)]
    const TARGET_WORDS: [&[u8]; TARGETS.len()] = {
        let mut out: [&[u8]; TARGETS.len()] = [b""; TARGETS.len()];
        let mut k = 0;
        while k < TARGETS.len() {
            out[k] = TARGETS[k].0;
            k += 1;
        }
        out
    };
    [&TARGET_WORDS, &SCHEMES, &[b"file:"]]
}

/// The inclusion schemes, which `file_scheme` finds after any byte (`xphp://`).
pub(super) fn substring_triggers() -> &'static [&'static [u8]] {
    &[
        b"file:", b"php:", b"phar:", b"zip:", b"expect:", b"glob:", b"jar:",
    ]
}

/// The rule id of the first traversal pattern in `s` (already decoded), if any.
fn files(v: &Vocabularies) -> &PatternSet {
    &v.files
}

/// Whether a file name can end at `b` (the end, a separator, a terminator or a delimiter of
/// the surrounding syntax).
fn file_end(b: Option<u8>) -> bool {
    b.is_none_or(|b| {
        is_ws(b)
            || matches!(
                b,
                b'/' | b'\\'
                    | 0
                    | b'?'
                    | b'#'
                    | b'&'
                    | b';'
                    | b'\''
                    | b'"'
                    | b'|'
                    | b')'
                    | b'%'
                    | b','
                    | b'>'
                    | b'<'
                    | b'`'
                    | b':'
            )
    })
}

/// A sensitive file of the vocabularies (`vocab/crs-lfi-os-files.data`,
/// `vocab/crs-restricted-files.data`, `vocab/files-extra.txt`, `extra.files`) anywhere in the
/// value, not only after a traversal:
/// - an entry of two or more components (`etc/passwd`, `.ssh/id_rsa`, `proc/self/`) starting
///   the value or a path (after `/`, `\`, a blank, `=`, a quote or `(`) and ending at a
///   component boundary;
/// - a single name (`.htpasswd`, `web.config`, `.bash_history`) as the last component of a
///   value that is one path (no blanks) starting at a root, a home, a drive or `.`, or as the
///   whole value when it is a dotfile.
///
/// `seps`: whether `s` holds a `/` or `\`. Without one, no entry of two or more components
/// can match (their inner `/` matches only a separator) and a single name needs a value
/// without blanks: prose with neither (`Fragile: handle with care.`) is answered here.
fn sensitive_anywhere(s: &[u8], seps: bool, v: Vocab<'_>) -> bool {
    let value = s.trim_ascii();
    let path_like = !value.iter().any(|&b| is_ws(b));
    if !seps && !path_like {
        return false;
    }
    let rooted = matches!(value.first(), Some(b'/' | b'\\' | b'~' | b'.'))
        || (value.get(1) == Some(&b':') && value.first().is_some_and(u8::is_ascii_alphabetic))
        || starts_ci(value, 0, b"file:");
    for i in 0..s.len() {
        let placed = i == 0
            || at(s, i - 1).is_some_and(|b| {
                is_sep(b) || is_ws(b) || matches!(b, b'=' | b'\'' | b'"' | b'(' | b'`')
            });
        if !placed || !v.may_start(files, s, i) {
            continue;
        }
        for e in v.prefixes_at(files, s, i) {
            let end = i + e.len();
            let dir = e.last() == Some(&b'/');
            if !dir && !file_end(at(s, end)) {
                continue;
            }
            let inner = e.iter().take(e.len().saturating_sub(1)).any(|&b| b == b'/');
            // In prose ("edit your /etc/hosts file") a path is followed by a blank; a payload's
            // ends the value or meets a terminator (`%00`, `?`, `&`, a quote).
            if inner && (path_like || !at(s, end).is_some_and(is_ws)) {
                return true;
            }
            // A single name.
            let last = s.get(end..).is_none_or(|t| {
                let t = if dir {
                    t
                } else {
                    t.get(1..).unwrap_or_default()
                };
                !t.iter().any(|&b| is_sep(b))
            });
            let after_sep = i > 0 && at(s, i - 1).is_some_and(is_sep);
            if path_like
                && last
                && ((rooted && after_sep) || (value.len() == e.len() && e.first() == Some(&b'.')))
            {
                return true;
            }
        }
    }
    false
}

pub fn detect(s: &[u8], mask: u32, sens: Sensitivity, v: Vocab<'_>) -> Option<&'static str> {
    use super::decode as d;
    if mask & (d::DOT2 | d::SLASH | d::BACKSLASH | d::NUL | d::COLON) == 0 {
        return None;
    }
    let medium = sens >= Sensitivity::Medium;
    if mask & d::NUL != 0 && medium {
        return Some("traversal.null_byte");
    }
    if mask & d::DOT2 != 0 {
        let (run, start, evasive) = levels(s);
        let hit = match sens {
            Sensitivity::Low => run >= 3,
            Sensitivity::Medium => run >= 2 || (run >= 1 && evasive),
            Sensitivity::High => run >= 1 || start,
        };
        if hit {
            return Some("traversal.dotdot");
        }
    }
    if mask & (d::SLASH | d::BACKSLASH) != 0 && sensitive(s) {
        return Some("traversal.sensitive_file");
    }
    if medium && sensitive_anywhere(s, mask & (d::SLASH | d::BACKSLASH) != 0, v) {
        return Some("traversal.sensitive_file");
    }
    if medium && mask & d::COLON != 0 && file_scheme(s) {
        return Some("traversal.file_scheme");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::decode::scan;
    use super::super::text::find_ci;
    use super::*;
    use proptest::prelude::*;

    /// `sensitive` as it was written before targets were picked by their first byte.
    fn sensitive_reference(s: &[u8]) -> bool {
        let anchor = anchor_len(s);
        let path_like = !s.iter().any(|&b| is_ws(b));
        for (i, _) in s.iter().enumerate() {
            let after_sep = i > 0 && at(s, i - 1).is_some_and(is_sep);
            if i > 0 && !after_sep {
                continue;
            }
            for (k, (t, bounded)) in TARGETS.iter().enumerate() {
                let placed =
                    i <= anchor || after_dotdot(s, i) || (k < ALWAYS && after_sep && path_like);
                if placed && path_eq(s, i, t) && (!bounded || boundary(at(s, i + t.len()))) {
                    return true;
                }
            }
        }
        false
    }

    /// The scheme checks as they were written before they were anchored at colons.
    fn file_scheme_reference(s: &[u8]) -> bool {
        if SCHEMES.iter().any(|scheme| find_ci(s, scheme, 0).is_some()) {
            return true;
        }
        let mut from = 0;
        while let Some(p) = find_ci(s, b"file:", from) {
            from = p + 5;
            let before = prev_non_ws(s, p).and_then(|q| at(s, q));
            if at(s, p + 5).is_some_and(is_sep)
                && before.is_none_or(|b| matches!(b, b'=' | b'"' | b'\'' | b'('))
            {
                return true;
            }
        }
        false
    }

    /// Values made of target and scheme pieces (cut, in either case), separators and dots.
    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let mut words: Vec<Vec<u8>> = TARGETS.iter().map(|(t, _)| t.to_vec()).collect();
        words.extend(SCHEMES.iter().map(|s| s.to_vec()));
        words.extend(
            [
                "file:", "jar:", "php:", ":", "/", "\\", "..", ".", " ", "=", "'", "(", "x", "c:",
                "?", "\0",
            ]
            .iter()
            .map(|w| w.as_bytes().to_vec()),
        );
        let piece = prop_oneof![
            proptest::sample::select(words.clone()),
            proptest::sample::select(words.clone()).prop_map(|w| w.to_ascii_uppercase()),
            (proptest::sample::select(words), 0usize..6)
                .prop_map(|(w, cut)| w.get(cut.min(w.len())..).unwrap_or_default().to_vec()),
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn sensitive_agrees_with_the_reference(s in pieces()) {
            prop_assert_eq!(sensitive(&s), sensitive_reference(&s));
        }

        #[test]
        fn file_scheme_agrees_with_the_reference(s in pieces()) {
            prop_assert_eq!(file_scheme(&s), file_scheme_reference(&s));
        }

        /// The early answer of `sensitive_anywhere` (no separator, a blank) is its answer.
        #[test]
        fn sensitive_anywhere_without_separators_agrees(s in pieces()) {
            let seps = s.iter().any(|&b| is_sep(b));
            prop_assert_eq!(sensitive_anywhere(&s, seps, v()), sensitive_anywhere(&s, true, v()));
        }
    }

    /// Every file entry, alone, in prose and in paths: the early answer agrees.
    #[test]
    fn sensitive_anywhere_early_answer_on_the_vocabulary() {
        for e in v().base.files.entries() {
            let e = String::from_utf8_lossy(e);
            for s in [
                e.to_string(),
                format!(" {e}"),
                format!("{e} "),
                format!("see {e} here"),
                format!("x={e}"),
                format!("/{e}"),
                format!("/home/u/{e}"),
                e.replace('/', "\\"),
                format!("edit {}", e.replace('/', "\\")),
            ] {
                let s = s.as_bytes();
                let seps = s.iter().any(|&b| is_sep(b));
                assert_eq!(
                    sensitive_anywhere(s, seps, v()),
                    sensitive_anywhere(s, true, v()),
                    "{}",
                    String::from_utf8_lossy(s)
                );
            }
        }
    }

    #[test]
    fn targets_start_with_a_name_byte() {
        // `sensitive` picks targets by the byte at a position; a target starting with a
        // separator would also have to match the other separator there.
        for (t, _) in TARGETS {
            assert!(t
                .first()
                .is_some_and(|b| !is_sep(*b) && !b.is_ascii_uppercase()));
        }
    }

    fn check(s: &str, sens: Sensitivity) -> Option<&'static str> {
        detect(s.as_bytes(), scan(s.as_bytes()), sens, v())
    }

    fn v() -> Vocab<'static> {
        static EMPTY: std::sync::OnceLock<Vocabularies> = std::sync::OnceLock::new();
        Vocab {
            base: crate::screening::vocab::builtin(),
            extra: EMPTY.get_or_init(Vocabularies::default),
        }
    }

    #[test]
    fn detects_table() {
        let cases: &[(&str, &str)] = &[
            ("../../etc/passwd", "traversal.dotdot"),
            ("..\\..\\windows\\win.ini", "traversal.dotdot"),
            ("/static/....//....//x", "traversal.dotdot"),
            ("/app/..;/admin", "traversal.dotdot"),
            ("images/../../../x", "traversal.dotdot"),
            ("/etc/passwd", "traversal.sensitive_file"),
            ("C:\\boot.ini", "traversal.sensitive_file"),
            ("file:///etc/shadow", "traversal.sensitive_file"),
            ("/proc/self/environ", "traversal.sensitive_file"),
            ("x/../etc/passwd", "traversal.sensitive_file"),
            ("/.git/config", "traversal.sensitive_file"),
            ("/home/u/.ssh/authorized_keys", "traversal.sensitive_file"),
            (
                "php://filter/convert.base64-encode/resource=index",
                "traversal.file_scheme",
            ),
            ("url=file:/c:/x", "traversal.file_scheme"),
            ("report.pdf\0.jpg", "traversal.null_byte"),
        ];
        for (s, want) in cases {
            assert_eq!(check(s, Sensitivity::Medium), Some(*want), "{s}");
        }
    }

    #[test]
    fn benign_table() {
        for s in [
            "/docs/v1/users",
            "Loading...",
            "See [the guide](../guide.md) for details",
            "Edit your /etc/hosts file",
            "version 1.2..1.4",
            "Wait... what?",
            "2024/01/15",
            "https://example.com/a/b.env.example",
            "The .env file holds settings",
            "https://example.com/app/config.php",
            "https://example.com/root/page",
            "the file at /home/u/.ssh/ is private",
            "Use file: references in the manifest",
        ] {
            assert_eq!(check(s, Sensitivity::Medium), None, "{s}");
        }
    }

    #[test]
    fn sensitivity_changes_reach() {
        assert_eq!(check("a/../../b", Sensitivity::Low), None);
        assert_eq!(
            check("a/../../../b", Sensitivity::Low),
            Some("traversal.dotdot")
        );
        assert_eq!(check("see (../x)", Sensitivity::Medium), None);
        // A single relative level is how ordinary relative links look: high only.
        assert_eq!(check("../images/logo.png", Sensitivity::Medium), None);
        assert_eq!(
            check("../images/logo.png", Sensitivity::High),
            Some("traversal.dotdot")
        );
        assert_eq!(
            check("see (../x)", Sensitivity::High),
            Some("traversal.dotdot")
        );
        assert_eq!(check("a\0", Sensitivity::Low), None);
    }
}
