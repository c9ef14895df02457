//! Bad bots: attack tools and scanners by their user agent.
//!
//! Rule ids: `bot.scanner` (the user agent names a known scanner or attack tool) and
//! `bot.missing_user_agent` (no `user-agent`, or an empty / blank one, when the policy
//! requires one). An allow-list entry (a case-insensitive prefix of the user agent) wins over
//! both.

use super::vocab::{PatternSet, Vocab, Vocabularies};

fn scanners(v: &Vocabularies) -> &PatternSet {
    &v.scanners
}

/// Whether the user agent contains one of the scanner substrings (the CRS list in
/// `vocab/crs-scanners-user-agents.data`, `vocab/scanners-extra.txt` and the policy's
/// `extra.scanners`), ignoring case.
fn names_a_scanner(ua: &[u8], v: Vocab<'_>) -> bool {
    scanners(v.base).occurs_in(ua) || scanners(v.extra).occurs_in(ua)
}

pub fn check(
    ua: Option<&[u8]>,
    block_scanners: bool,
    require_ua: bool,
    allow: &[String],
    v: Vocab<'_>,
) -> Option<&'static str> {
    let ua_trim = ua.map(|u| u.trim_ascii());
    if let Some(u) = ua_trim {
        if allow.iter().any(|a| {
            u.len() >= a.len()
                && u.get(..a.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(a.as_bytes()))
        }) {
            return None;
        }
    }
    match ua_trim {
        None | Some([]) => require_ua.then_some("bot.missing_user_agent"),
        Some(u) => (block_scanners && names_a_scanner(u, v)).then_some("bot.scanner"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screening::text::contains_ci;
    use proptest::prelude::*;

    fn v() -> Vocab<'static> {
        static EMPTY: std::sync::OnceLock<Vocabularies> = std::sync::OnceLock::new();
        Vocab {
            base: crate::screening::vocab::builtin(),
            extra: EMPTY.get_or_init(Vocabularies::default),
        }
    }

    proptest! {
        /// The indexed scan finds exactly what a search per scanner entry finds.
        #[test]
        fn indexed_scan_matches_the_naive_search(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(vec!["sqlmap", "nikto", "nuclei", "fuzz faster u fool", "wpscan", "zgrab"]).prop_map(|s| s.to_ascii_uppercase()),
                    proptest::sample::select(vec!["sqlmap", "nikto", "nuclei", "gobuster"]).prop_map(|s| s.chars().skip(1).collect::<String>()),
                    "[ -~]{0,12}",
                ],
                0..6,
            )
        ) {
            let ua = parts.concat();
            let text = [
                include_str!("vocab/crs-scanners-user-agents.data"),
                include_str!("vocab/scanners-extra.txt"),
            ]
            .concat();
            let naive = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .any(|s| contains_ci(ua.replace('\\', "/").as_bytes(), s.to_ascii_lowercase().as_bytes()));
            prop_assert_eq!(names_a_scanner(ua.as_bytes(), v()), naive, "{}", ua);
        }
    }

    /// The compiled-in scanner list is the data files: every entry of
    /// `vocab/crs-scanners-user-agents.data` (OWASP CRS, as Debian ships it) and
    /// `vocab/scanners-extra.txt`, inside an otherwise ordinary user agent, is a scanner; the
    /// index holds exactly those entries, and the CRS file still names its source and licence.
    #[test]
    fn the_compiled_list_is_the_data_files() {
        let crs = include_str!("vocab/crs-scanners-user-agents.data");
        let extra = include_str!("vocab/scanners-extra.txt");
        assert!(crs.contains("OWASP ModSecurity Core Rule Set 3.3.4"));
        assert!(crs.contains("Apache License 2.0"));
        let entries: std::collections::BTreeSet<String> = [crs, extra]
            .concat()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.to_ascii_lowercase().replace('\\', "/"))
            .collect();
        let compiled: std::collections::BTreeSet<String> = v()
            .base
            .scanners
            .entries()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        assert_eq!(compiled, entries);
        assert!(entries.len() > 100, "{}", entries.len());
        for e in &entries {
            let ua = format!("Mozilla/5.0 (X11; Linux x86_64) {e} probe");
            assert_eq!(
                check(Some(ua.as_bytes()), true, false, &[], v()),
                Some("bot.scanner"),
                "{e}"
            );
        }
    }

    #[test]
    fn bots_table() {
        let allow = vec!["curl/".to_string(), "MyMonitor/".to_string()];
        // (user agent, block scanners, require ua, expected)
        let cases: &[(Option<&str>, bool, bool, Option<&str>)] = &[
            (Some("sqlmap/1.7.2#stable (https://sqlmap.org)"), true, false, Some("bot.scanner")),
            (Some("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"), true, false, Some("bot.scanner")),
            (Some("Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)"), true, false, Some("bot.scanner")),
            (Some("Fuzz Faster U Fool v2.1.0"), true, false, Some("bot.scanner")),
            // From the CRS list (vocab/crs-scanners-user-agents.data).
            (Some("Mozilla/5.0 [en] (X11, U; OpenVAS 21.4)"), true, false, Some("bot.scanner")),
            (Some("Mozilla/5.0 (compatible; Detectify) +https://detectify.com/bot/"), true, false, Some("bot.scanner")),
            // Near misses: browsers and ordinary clients.
            (Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"), true, false, None),
            (Some("okhttp/4.12.0"), true, false, None),
            (Some("python-requests/2.32.3"), true, false, None),
            (Some("sqlmap/1.7"), false, false, None),
            (Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"), true, true, None),
            (Some("curl/8.5.0"), true, true, None),
            // The allow list wins, even over a scanner token.
            (Some("MyMonitor/2.0 nuclei-compatible"), true, false, None),
            (Some("mymonitor/2.0 nuclei"), true, false, None),
            (None, true, false, None),
            (None, true, true, Some("bot.missing_user_agent")),
            (Some("   "), true, true, Some("bot.missing_user_agent")),
            (Some(""), true, false, None),
        ];
        for (ua, scanners, require, want) in cases {
            assert_eq!(
                check(ua.map(str::as_bytes), *scanners, *require, &allow, v()),
                *want,
                "{ua:?}"
            );
        }
    }
}
