//! Bad bots: attack tools and scanners by their user agent.
//!
//! Rule ids: `bot.scanner` (the user agent names a known scanner or attack tool) and
//! `bot.missing_user_agent` (no `user-agent`, or an empty / blank one, when the policy
//! requires one). An allow-list entry (a case-insensitive prefix of the user agent) wins over
//! both.

use super::text::{bits, starts_ci, WordIndex};

/// Substrings (lowercase) of the user agents that attack tools and scanners send by default.
pub const SCANNERS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nuclei",
    "masscan",
    "zgrab",
    "wpscan",
    "dirbuster",
    "gobuster",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "havij",
    "nmap scripting engine",
    "nmap nse",
    "feroxbuster",
    "fuzz faster u fool",
    "ffuf",
    "wfuzz",
    "arachni",
    "skipfish",
    "netsparker",
    "appscan",
    "webinspect",
    "jorgee",
    "zmeu",
    "morfeus",
    "dirb/",
    "whatweb",
    "commix",
    "xsstrike",
    "sqlninja",
    "paros",
    "grabber",
    "brutus",
    "hydra",
    "zap/",
    "burp",
    "qualys",
    "metasploit",
    "wapiti",
    "vega/",
    "httprint",
    "fimap",
    "bsqlbf",
    "pangolin",
    "absinthe",
    "jaeles",
    "dotdotpwn",
    "sqlsus",
    "mysqloit",
    "webshag",
    "nstealth",
    "cgichk",
    "grendel-scan",
    "wprecon",
    "joomscan",
    "droopescan",
    "cmsmap",
    "xsser",
    "masscan-ng",
    "interactsh",
    "censysinspect",
    "zmap",
];

/// Scanner names by their first two bytes, computed at compile time: one pass over the user
/// agent compares only the names that can start at each position, so a browser user agent
/// costs about two table lookups per byte instead of a search per scanner name.
const SCANNER_INDEX: WordIndex = WordIndex::of_strs(SCANNERS);

/// Whether the user agent contains a scanner name (ASCII case-insensitive).
fn names_a_scanner(ua: &[u8]) -> bool {
    (0..ua.len()).any(|i| {
        bits(SCANNER_INDEX.starting_at(ua, i)).any(|k| {
            SCANNERS
                .get(k)
                .is_some_and(|name| starts_ci(ua, i, name.as_bytes()))
        })
    })
}

/// The bot decision for one user agent (`None`: header absent).
pub fn check(
    ua: Option<&[u8]>,
    block_scanners: bool,
    require_ua: bool,
    allow: &[String],
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
        Some(u) => (block_scanners && names_a_scanner(u)).then_some("bot.scanner"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screening::text::contains_ci;
    use proptest::prelude::*;

    proptest! {
        /// The bucketed scan finds exactly what a search per scanner name finds.
        #[test]
        fn bucketed_scan_matches_the_naive_search(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(SCANNERS.to_vec()).prop_map(|s| s.to_ascii_uppercase()),
                    proptest::sample::select(SCANNERS.to_vec()).prop_map(|s| s.chars().skip(1).collect::<String>()),
                    "[ -~]{0,12}",
                ],
                0..6,
            )
        ) {
            let ua = parts.concat();
            let naive = SCANNERS.iter().any(|s| contains_ci(ua.as_bytes(), s.as_bytes()));
            prop_assert_eq!(names_a_scanner(ua.as_bytes()), naive, "{}", ua);
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
                check(ua.map(str::as_bytes), *scanners, *require, &allow),
                *want,
                "{ua:?}"
            );
        }
    }
}
