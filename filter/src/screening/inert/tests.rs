//! The inert fast path is sound: every value it accepts is one no detector reports, at `low`
//! and `medium` (the sensitivities it runs at). Checked over the hand-written corpora (attacks
//! and benign, as written and with every byte the generic pass refuses removed, so more of
//! them reach the word check) and over generated values built from every trigger list's words,
//! the SQL keywords left out of the index, single letters, digits and the punctuation the pass
//! accepts. `screening-eval` runs the same check over the public corpus.

use super::{fnv, fold, Triggers, CLASS, FNV_OFFSET};
use crate::screening::tests::{ATTACKS, BENIGN};
use crate::screening::{cmdi, sqli, traversal, vocab, xss};
use crate::screening::{compile_screening, ScreeningRule, Sensitivity, ValueKind};
use proptest::prelude::*;

fn rule(sens: Sensitivity) -> ScreeningRule {
    ScreeningRule {
        sensitivity: sens,
        ..ScreeningRule::default()
    }
}

const KINDS: [ValueKind; 3] = [ValueKind::Query, ValueKind::Header, ValueKind::Json];

/// Panics with the value when the fast path accepts what a detector reports.
fn assert_sound(value: &[u8]) {
    for sens in [Sensitivity::Low, Sensitivity::Medium] {
        let r = rule(sens);
        for kind in KINDS {
            if r.inert_value(value, kind) {
                assert_eq!(
                    r.screen_value_by_detectors(value, kind),
                    None,
                    "the fast path accepts {:?} ({kind:?}, {sens:?})",
                    String::from_utf8_lossy(value)
                );
            }
        }
    }
}

/// Bytes the generic pass refuses, removed: the payload's words and remaining punctuation.
fn refused_removed(s: &str) -> String {
    s.chars()
        .filter(|c| !"'\"`<>|$%#{}[]\\+*~^\t\n\r".contains(*c))
        .collect()
}

#[test]
fn corpora_values_it_accepts_are_clean() {
    let mut accepted = 0;
    let mut seen = 0;
    for text in ATTACKS.iter().map(|(_, t)| *t).chain(BENIGN) {
        for line in text.lines().filter(|l| !l.is_empty()) {
            for v in [line.to_string(), refused_removed(line)] {
                seen += 1;
                if rule(Sensitivity::Medium).inert_value(v.as_bytes(), ValueKind::Json) {
                    accepted += 1;
                }
                assert_sound(v.as_bytes());
            }
        }
    }
    // The check reaches the detectors for a good share of the values, attacks included.
    assert!(accepted > seen / 4, "{accepted} of {seen}");
}

#[test]
fn accepts_ordinary_header_values() {
    let r = rule(Sensitivity::Medium);
    for v in [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "https://shop.example/orders?page=1",
        "gzip, deflate, br, zstd",
        "en-US,en;q=0.9,de;q=0.8",
        "max-age=0",
        "same-origin",
        "navigate",
        "document",
        "/orders/7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60",
        "ada lovelace",
    ] {
        assert!(r.inert_value(v.as_bytes(), ValueKind::Header), "{v}");
    }
    for (name, v) in [
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
        ("accept", "*/*"),
        ("content-type", "application/json; charset=utf-8"),
        ("sec-ch-ua", "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\""),
        ("sec-ch-ua", "\"Not)A;Brand\";v=\"99\", \"Microsoft Edge\";v=\"127\", \"Chromium\";v=\"127\""),
        ("sec-ch-ua-platform", "\"Windows\""),
        ("sec-ch-ua-mobile", "?0"),
        ("if-none-match", "W/\"5e15153d-120f\""),
        ("if-none-match", "\"a\", W/\"b\""),
    ] {
        assert!(r.inert_header(name, v.as_bytes()), "{name}: {v}");
    }
}

/// The common media types answered by comparison are values the grammar accepts and no
/// detector reports; a near miss of each (a byte more) is left to the grammar and the
/// detectors.
#[test]
fn common_media_types_are_grammar_values() {
    let r = rule(Sensitivity::Medium);
    for v in crate::payload::VERBATIM_JSON
        .into_iter()
        .chain(super::COMMON_MEDIA)
    {
        assert!(
            super::media_ranges(v, crate::screening::triggers()),
            "{v:?}"
        );
        assert_sound(v);
        for name in ["accept", "content-type"] {
            assert!(r.inert_header(name, v), "{name}: {v:?}");
            assert_eq!(r.screen_value_by_detectors(v, ValueKind::Header), None);
        }
        // Only these names read the list.
        assert!(!r.inert_header("x-content-type", v), "{v:?}");
    }
    for (v, attack) in [
        (&b"application/json\"><script>alert(1)</script>"[..], true),
        (b"application/json; charset=utf-8' or 1=1--", true),
        (b"text/plain;cat /etc/passwd", true),
        (b"*/*<script>alert(1)</script>", true),
        (b"application/jsonp", false),
        (b"text/plain; charset=us-ascii", false),
    ] {
        assert!(!super::COMMON_MEDIA.contains(&v), "{v:?}");
        assert!(!crate::payload::VERBATIM_JSON.contains(&v), "{v:?}");
        for name in ["accept", "content-type"] {
            assert_eq!(
                r.inert_header(name, v),
                super::media_ranges(v, crate::screening::triggers()),
                "{v:?}"
            );
        }
        assert_eq!(
            r.screen_value_by_detectors(v, ValueKind::Header).is_some(),
            attack,
            "{v:?}"
        );
    }
}

#[test]
fn refuses_what_detectors_need() {
    let r = rule(Sensitivity::Medium);
    for v in [
        "1 or 1=1",
        "x; whoami",
        "uname -a",
        "/etc/passwd",
        "..\\..\\boot.ini",
        "javascript:alert(1)",
        "a'b",
        "<b>",
        "x && y",
        "c?t /e?c",
        "1&&1=1",
        "Invoke-Expression",
        "data:text/html,x",
        "x ADw-script",
        "information_schema",
        "Windows/system32",
    ] {
        assert!(!r.inert_value(v.as_bytes(), ValueKind::Header), "{v}");
    }
    for (name, v) in [
        ("accept", "etc/passwd"),
        ("accept", "text/html;sh=1"),
        ("accept", "Text/Html"),
        ("sec-ch-ua", "\"x or 1=1\";v=\"1\""),
        ("sec-ch-ua", "\"whoami\";v=\"1\""),
        ("sec-ch-ua-platform", "\"Windows\" x"),
        ("if-none-match", "\"a\";id"),
    ] {
        assert!(!r.inert_header(name, v.as_bytes()), "{name}: {v}");
    }
    // Off at `high` and with extra vocabularies.
    assert!(!rule(Sensitivity::High).inert_value(b"plain words", ValueKind::Header));
    let Ok(extra) = compile_screening(
        &serde_json::json!({"extra": {"commands": ["bench"]}}),
        "screening",
    ) else {
        panic!("extra does not compile");
    };
    assert!(!extra.inert_value(b"/bench", ValueKind::Path));
    assert!(extra.screen_value(b"bench -x", ValueKind::Header).is_some());
}

/// Every word of every list the detectors read, triggers or not, and the SQL keywords that
/// are not triggers: the generator's vocabulary.
fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let lists = cmdi::trigger_words()
        .into_iter()
        .chain(sqli::trigger_words())
        .chain(xss::trigger_words())
        .chain(traversal::trigger_words());
    for list in lists {
        for w in list {
            words.push(String::from_utf8_lossy(w).into_owned());
        }
    }
    for w in sqli::substring_triggers()
        .iter()
        .chain(xss::substring_triggers().iter().flat_map(|l| l.iter()))
        .chain(traversal::substring_triggers())
    {
        words.push(String::from_utf8_lossy(w).into_owned());
    }
    let base = vocab::builtin();
    words.extend(
        sqli::call_words()
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned()),
    );
    for set in [&base.commands, &base.cmdlets, &base.sql_functions] {
        words.extend(
            set.entries()
                .map(|e| String::from_utf8_lossy(e).into_owned()),
        );
    }
    words.extend(
        base.files
            .entries()
            .step_by(7)
            .map(|e| String::from_utf8_lossy(e).into_owned()),
    );
    for w in [
        "like",
        "in",
        "is",
        "by",
        "all",
        "distinct",
        "from",
        "set",
        "delay",
        "null",
        "true",
        "false",
        "table",
        "database",
        "schema",
        "view",
        "procedure",
        "function",
        "user",
        "login",
        "index",
        "trigger",
        "rlike",
        "regexp",
        "between",
        "sys",
        "version",
        "char",
        "ascii",
        "concat",
        "substring",
        "if",
        "elt",
        "x",
        "a",
        "e",
        "on",
        "onerror",
        "onload",
        "alert",
        "script",
        "src",
        "href",
        "img",
        "svg",
        "bin",
        "sh",
        "tmp",
        "var",
        "usr",
        "win",
        "ini",
        "cmd",
        "exe",
        "system",
        "bench",
        "orders",
        "Mozilla",
        "Gecko",
        "Windows",
        "NT",
    ] {
        words.push(w.to_string());
    }
    words
}

fn piece() -> impl Strategy<Value = String> {
    let vocab = vocabulary();
    prop_oneof![
        4 => proptest::sample::select(vocab),
        2 => "[a-z]{1,3}",
        1 => "[A-Z][a-z]{0,6}",
        2 => "[0-9]{1,3}",
        1 => "0x[0-9a-f]{2,4}",
        4 => proptest::sample::select(vec![
            " ", " ", ";", "=", "/", ":", "(", ")", ",", ".", "-", "_", "@", "&", "?", "; ",
            " (", ") ", "=(", "/.", ".x", "x.", "-x", "()", "!", "!=", " !",
        ])
        .prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("INERT_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(4000), ..ProptestConfig::default() })]

    /// Values made of the lists' words, glued or spaced with the accepted punctuation: the
    /// fast path may accept only those no detector reports.
    #[test]
    fn generated_values_it_accepts_are_clean(parts in proptest::collection::vec(piece(), 1..9)) {
        assert_sound(parts.concat().as_bytes());
    }

    /// Accept lists, client hints and entity tags with the lists' words as subtypes,
    /// parameter values, brands and tags: the header grammar may accept only clean ones.
    #[test]
    fn header_grammars_accept_only_clean_values(
        words in proptest::collection::vec(proptest::sample::select(vocabulary()), 1..4),
        shape in 0usize..6,
    ) {
        let w = |k: usize| words.get(k % words.len()).cloned().unwrap_or_default();
        let (name, value) = match shape {
            0 => ("accept", format!("text/{},application/{};q=0.{}", w(0), w(1), w(2).len())),
            1 => ("content-type", format!("application/{}; charset={}", w(0), w(1))),
            2 => ("sec-ch-ua", format!("\"{}\";v=\"1\", \"{} {}\";v=\"2\"", w(0), w(1), w(2))),
            3 => ("sec-ch-ua-platform", format!("\"{}\"", w(0))),
            4 => ("if-none-match", format!("W/\"{}-{}\", \"{}\"", w(0), w(1), w(2))),
            _ => ("accept", format!("{}/{};v={}", w(0), w(1), w(2))),
        };
        for sens in [Sensitivity::Low, Sensitivity::Medium] {
            let r = rule(sens);
            if r.inert_header(name, value.as_bytes()) {
                prop_assert_eq!(
                    r.screen_value_by_detectors(value.as_bytes(), ValueKind::Header),
                    None,
                    "{}: {}", name, value
                );
            }
        }
    }
}

/// The pass as it was first written (one byte at a time, a run's lookup where the next byte
/// ends it, substrings gated by their first pair): what [`super::inert`] must answer exactly.
fn inert_reference(s: &[u8], t: &Triggers) -> bool {
    let mut prev = 0u8;
    let mut prev_folded = 0u8;
    let mut questions = 0u32;
    let mut call_word = false;
    let mut substring = false;
    let mut word_start = None;
    let mut hash = FNV_OFFSET;
    for (i, &b) in s.iter().enumerate() {
        let folded = fold(b);
        // A substring trigger may start at the previous byte (its first two bytes): the
        // full search runs at the end only then.
        substring = substring || t.substrings.may_start_pair(prev_folded, folded);
        prev_folded = folded;
        match CLASS.get(usize::from(b)).copied().unwrap_or(0) {
            0 => return false,
            2 => {
                if word_start.is_none() {
                    word_start = Some(i);
                    hash = FNV_OFFSET;
                }
                hash = fnv(hash, folded);
                prev = b;
                continue;
            }
            3 => questions += 1,
            _ => {}
        }
        if let Some(start) = word_start.take() {
            if t.may_be_trigger(hash, fnv(hash, folded)) {
                if t.word_at(s, start, i) {
                    return false;
                }
                call_word = call_word || t.call_at(s, start, i);
            }
        }
        if b == prev && matches!(b, b'.' | b'-' | b'@' | b'&') {
            return false;
        }
        prev = b;
    }
    if let Some(start) = word_start {
        if t.may_be_trigger(hash, hash) {
            if t.word_at(s, start, s.len()) {
                return false;
            }
            call_word = call_word || t.call_at(s, start, s.len());
        }
    }
    if call_word && s.contains(&b'(') {
        return false;
    }
    // One `?` cannot make a glob of two wildcards; substrings last (rarely reached).
    questions <= 1 && !(substring && t.substrings.occurs_in(s))
}

/// Values of any bytes the pass reads differently (letters of trigger words, substring
/// starts, the accepted and refused punctuation), or of the generators' pieces.
fn pass_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(piece(), 1..9).prop_map(|p| p.concat().into_bytes()),
        proptest::collection::vec(
            prop_oneof![
                any::<u8>(),
                proptest::sample::select(
                    b"aAbcdeEfhilmnoOprsStuwxy .-_@&?(=/:;!,'*+%\\0189".to_vec()
                ),
            ],
            0..48,
        ),
        proptest::collection::vec(
            proptest::sample::select(vec![
                "case",
                "CASE",
                "expression",
                "innerHTML",
                ".innerhtml",
                "sysobjects",
                "pg_",
                "file:",
                "zip",
                "jar:",
                "eval(",
                "top",
                "self",
                "etc",
                "passwd",
                "whoami",
                "select",
                "union",
                "ord",
                "a",
                "b",
                "x",
                "(",
                ")",
                ".",
                "-",
                "_",
                "@",
                "&",
                " ",
                "?",
                "/",
                ":",
                "=",
                "9",
            ]),
            1..12,
        )
        .prop_map(|p| p.concat().into_bytes()),
    ]
}

/// The pass, with and without the scan's bits given, answers `s` as the byte-at-a-time pass.
fn answers_as_the_reference(s: &[u8]) -> Result<(), TestCaseError> {
    let t = crate::screening::triggers();
    let expected = inert_reference(s, t);
    prop_assert_eq!(
        super::inert(s, t),
        expected,
        "{:?}",
        String::from_utf8_lossy(s)
    );
    prop_assert_eq!(
        super::inert_scanned(s, crate::screening::decode::scan(s), t),
        expected,
        "{:?}",
        String::from_utf8_lossy(s)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("INERT_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(4000), ..ProptestConfig::default() })]

    /// The run-at-a-time pass, its substring gate of three bytes and its answer from the
    /// scan's bits are the byte-at-a-time pass, on every value.
    #[test]
    fn the_pass_is_its_reference(s in pass_input()) {
        answers_as_the_reference(&s)?;
    }
}

#[test]
fn the_pass_is_its_reference_on_the_corpora() {
    let t = crate::screening::triggers();
    for text in ATTACKS.iter().map(|(_, t)| *t).chain(BENIGN) {
        for line in text.lines() {
            for v in [line.to_string(), refused_removed(line)] {
                let v = v.as_bytes();
                assert_eq!(
                    super::inert(v, t),
                    inert_reference(v, t),
                    "{:?}",
                    String::from_utf8_lossy(v)
                );
            }
        }
    }
}

/// The one-load `triples` table answers as the substring set's two bitmaps, over every
/// triple of the bytes that start or continue a substring entry (and some that do not).
#[test]
fn triple_table_as_the_bitmaps() {
    let t = crate::screening::triggers();
    let mut alphabet: Vec<u8> = (b'a'..=b'z').chain(b'0'..=b'9').collect();
    alphabet.extend_from_slice(b"/._-:;=()@&!? \x00\x80\xff");
    let mut hits = 0;
    for &a in &alphabet {
        for &b in &alphabet {
            for &c in &alphabet {
                let want = t.substrings.may_start_triple(a, b, c);
                let got = (t.triple_bits(a, b) & 1) & (t.triple_bits(b, c) >> 1) == 1;
                assert_eq!(got, want, "{:?}", [a, b, c]);
                hits += usize::from(want);
            }
        }
    }
    // The table is not empty: some triples start entries (a test that cannot pass vacuously).
    assert!(hits > 0);
}

/// Hex-shaped values (ids, hashes, UUIDs) with the `a`-`f` words the detectors read (`cd`,
/// `dd`, `ed`, `bc`, `dc`, `fc`, ...) and runs of every length, between the bytes the pass
/// skips and the ones it does not.
fn hex_input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => proptest::collection::vec(
            proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
            1..12,
        ),
        2 => proptest::sample::select(vec![
            &b"cd"[..], b"dd", b"ed", b"bc", b"dc", b"fc", b"df", b"ab", b"ac", b"ad", b"be",
            b"bee", b"cab", b"dead", b"beef", b"deadbeef", b"face", b"cafe", b"fade", b"bad",
            b"CD", b"Ed", b"c", b"d", b"e", b"f", b"a", b"b", b"abcdef", b"ca", b"cas", b"de",
        ])
        .prop_map(<[u8]>::to_vec),
        3 => proptest::sample::select(b"-/0123456789:;,=()!_ .".to_vec()).prop_map(|b| vec![b]),
        1 => proptest::sample::select(vec![
            &b"g"[..], b"s", b"x", b"orders", b"case", b"se", b"(", b"&", b"?", b"@", b"..",
            b"--", b"'", b"+", b"%20", b"|", b"\\", b"$",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop_oneof![
        proptest::collection::vec(piece, 1..10).prop_map(|p| p.concat()),
        // UUIDs and UUID paths, the hex digits drawn from the words above too.
        proptest::collection::vec(
            proptest::sample::select(b"0123456789abcdefcdedd".to_vec()),
            32..=32,
        )
        .prop_map(|h| {
            let mut v = b"/orders/".to_vec();
            for (i, c) in h.iter().enumerate() {
                if matches!(i, 8 | 12 | 16 | 20) {
                    v.push(b'-');
                }
                v.push(*c);
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("INERT_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(4000), ..ProptestConfig::default() })]

    /// The skip over plain bytes and `a`-`f` runs answers as the byte-at-a-time pass.
    #[test]
    fn the_hex_skip_is_the_reference(s in hex_input()) {
        answers_as_the_reference(&s)?;
    }

    /// Through the whole screening, hex-shaped values are answered as the detectors answer
    /// them, in every location and at every sensitivity.
    #[test]
    fn hex_values_are_answered_as_the_detectors_answer(s in hex_input()) {
        for sens in [Sensitivity::Low, Sensitivity::Medium, Sensitivity::High] {
            let r = rule(sens);
            for kind in [ValueKind::Path, ValueKind::Query, ValueKind::Header, ValueKind::Json] {
                prop_assert_eq!(
                    r.screen_value(&s, kind),
                    r.screen_value_by_detectors(&s, kind),
                    "{:?} {:?} {:?}", sens, kind, String::from_utf8_lossy(&s)
                );
            }
        }
    }
}

/// The skip applies to the built-in lists (what keeps a UUID path cheap): digits, `/`, `:`,
/// `-` (where the scan ruled out `--`) are plain, `a`-`f` carry their value, and the words
/// among their runs are marked.
#[test]
fn digits_and_hex_runs_are_skipped_with_the_builtin_lists() {
    let t = crate::screening::triggers();
    let plain = |b: u8| t.plain.get(usize::from(b)).copied().unwrap_or(0);
    for b in b"0123456789/:=,; ".iter().copied() {
        assert_eq!(plain(b), super::PLAIN, "{:?}", b as char);
    }
    assert_eq!(plain(b'-'), super::PLAIN_UNPAIRED);
    for (b, v) in (b'a'..=b'f').zip(1..) {
        assert_eq!(plain(b) >> super::HEX_SHIFT, v);
        assert_eq!(plain(b.to_ascii_uppercase()) >> super::HEX_SHIFT, v);
    }
    for b in [b'g', b'z', b'.', b'_', b'@', b'&', b'?', b'\'', b'%'] {
        assert_eq!(plain(b), 0, "{:?}", b as char);
    }
    // Every run of one to four letters: an unmarked one passes the byte-at-a-time pass
    // between digits (a marked one is a word or call entry: `ad`, `add`).
    let mut runs: Vec<Vec<u8>> = (b'a'..=b'f').map(|c| vec![c]).collect();
    let mut marked = Vec::new();
    while let Some(run) = runs.pop() {
        let hit = t.hex_hit(super::hex_code(&run));
        let between = [&b"1"[..], &run, b"2"].concat();
        if !hit {
            assert!(
                inert_reference(&between, t),
                "{:?}",
                String::from_utf8_lossy(&run)
            );
        } else {
            marked.push(String::from_utf8_lossy(&run).into_owned());
        }
        if run.len() < 4 {
            runs.extend((b'a'..=b'f').map(|c| [&run[..], &[c]].concat()));
        }
    }
    marked.sort();
    assert_eq!(marked, ["ad", "add"]);
    for w in [&b"f"[..], b"e", b"c", b"a", b"b", b"d", b"beef"] {
        assert!(
            !t.hex_hit(super::hex_code(w)),
            "{:?}",
            String::from_utf8_lossy(w)
        );
    }
}
