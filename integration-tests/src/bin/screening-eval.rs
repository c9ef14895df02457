//! Measures injection screening against the project's own corpus: detection rate per attack
//! class and false-positive rate on benign API values, at each sensitivity.
//!
//!     cargo run -p integration-tests --release --bin screening-eval
//!
//! Attack payloads are screened as raw query-parameter values (encoded forms stay encoded, as
//! on the wire). Benign values are screened twice: as JSON string values and as properly
//! percent-encoded query values; a value counts as a false positive if either is flagged.
//! "detected" counts any class; "as class" counts findings of the payload's own class.

use api_guard::screening::{Class, ScreeningRule, Sensitivity, ValueKind};

const ATTACKS: [(Class, &str); 4] = [
    (
        Class::Sqli,
        include_str!("../../../filter/src/screening/corpus/attacks/sqli.txt"),
    ),
    (
        Class::Xss,
        include_str!("../../../filter/src/screening/corpus/attacks/xss.txt"),
    ),
    (
        Class::Traversal,
        include_str!("../../../filter/src/screening/corpus/attacks/path_traversal.txt"),
    ),
    (
        Class::CommandInjection,
        include_str!("../../../filter/src/screening/corpus/attacks/command_injection.txt"),
    ),
];

const BENIGN: [(&str, &str); 5] = [
    (
        "names",
        include_str!("../../../filter/src/screening/corpus/benign/names.txt"),
    ),
    (
        "prose",
        include_str!("../../../filter/src/screening/corpus/benign/prose.txt"),
    ),
    (
        "identifiers",
        include_str!("../../../filter/src/screening/corpus/benign/identifiers.txt"),
    ),
    (
        "urls",
        include_str!("../../../filter/src/screening/corpus/benign/urls.txt"),
    ),
    (
        "structured",
        include_str!("../../../filter/src/screening/corpus/benign/structured.txt"),
    ),
];

fn lines(s: &str) -> impl Iterator<Item = &str> {
    s.lines().filter(|l| !l.is_empty())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

fn main() {
    let verbose = std::env::args().any(|a| a == "--verbose" || a == "-v");
    println!("Injection screening quality (command: cargo run -p integration-tests --release --bin screening-eval)");
    println!();
    println!("| class             | sensitivity | payloads | detected | as class | rate    |");
    println!("|-------------------|-------------|---------:|---------:|---------:|--------:|");
    for (class, text) in ATTACKS {
        for sens in Sensitivity::ALL {
            let mut rule = ScreeningRule::default();
            rule.sensitivity = sens;
            let (mut total, mut detected, mut same) = (0, 0, 0);
            for p in lines(text) {
                total += 1;
                match rule.screen_value(p.as_bytes(), ValueKind::Query) {
                    Some((c, _)) => {
                        detected += 1;
                        if c == class {
                            same += 1;
                        }
                    }
                    None if verbose && sens == Sensitivity::Medium => {
                        eprintln!("missed {}: {p}", class.as_str())
                    }
                    None => {}
                }
            }
            println!(
                "| {:<17} | {:<11} | {:>8} | {:>8} | {:>8} | {:>6.1}% |",
                class.as_str(),
                sens.as_str(),
                total,
                detected,
                same,
                pct(detected, total)
            );
        }
    }
    println!();
    println!("| benign values     | sensitivity | values   | false positives | rate    |");
    println!("|-------------------|-------------|---------:|----------------:|--------:|");
    for sens in Sensitivity::ALL {
        let mut rule = ScreeningRule::default();
        rule.sensitivity = sens;
        let (mut total, mut fps) = (0, 0);
        for (file, text) in BENIGN {
            for v in lines(text) {
                total += 1;
                let hit = rule
                    .screen_value(v.as_bytes(), ValueKind::Json)
                    .or_else(|| rule.screen_value(encode(v).as_bytes(), ValueKind::Query));
                if let Some((c, id)) = hit {
                    fps += 1;
                    if verbose {
                        eprintln!(
                            "false positive at {} ({file}): {} {id}: {v}",
                            sens.as_str(),
                            c.as_str()
                        );
                    }
                }
            }
        }
        println!(
            "| {:<17} | {:<11} | {:>8} | {:>15} | {:>6.2}% |",
            "all",
            sens.as_str(),
            total,
            fps,
            pct(fps, total)
        );
    }
}
