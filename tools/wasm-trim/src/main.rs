//! `wasm-trim --drop a,b,c --require x,y [--callbacks-like OTHER] FILE`: removes the named exports
//! from a WebAssembly module, in place, and checks that the required ones are still there (and,
//! with `--callbacks-like`, that FILE now exports exactly the `proxy_on_*` callbacks OTHER does:
//! how the benchmark's floor module is kept in step with api_guard.wasm).
//!
//! Why: Envoy enters the wasm VM for every `proxy_on_*` callback a module exports, on every
//! request, whether or not the filter does anything in it. The Rust proxy-wasm SDK exports all
//! of them. Removing the exports of callbacks api-guard does not implement makes Envoy skip those
//! VM entries (measured on this project's benchmark machine: a do-nothing Rust filter went from
//! 0.81x to 0.92x of Envoy's no-filter throughput). The function bodies stay; only their export
//! entries go, so nothing else in the module changes.

#![forbid(unsafe_code)]

use std::process::ExitCode;

mod module;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-trim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(value: Option<String>, flag: &str) -> Result<Vec<String>, String> {
    let value = value.ok_or(format!("{flag} needs a comma-separated list"))?;
    Ok(value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut drop = Vec::new();
    let mut require = Vec::new();
    let mut file = None;
    let mut like = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--drop" => drop = list(args.next(), "--drop")?,
            "--require" => require = list(args.next(), "--require")?,
            "--callbacks-like" => {
                like = Some(args.next().ok_or("--callbacks-like needs a module")?);
            }
            other if file.is_none() && !other.starts_with('-') => file = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let file =
        file.ok_or("usage: wasm-trim --drop a,b [--require x,y] [--callbacks-like OTHER] FILE")?;
    let bytes = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    let trimmed = module::drop_exports(&bytes, &drop).map_err(|e| format!("{file}: {e}"))?;
    let remaining = module::export_names(&trimmed.bytes).map_err(|e| format!("{file}: {e}"))?;
    let missing: Vec<&String> = require.iter().filter(|r| !remaining.contains(r)).collect();
    if !missing.is_empty() {
        return Err(format!("{file}: required exports missing: {missing:?}"));
    }
    if let Some(other) = like {
        let bytes = std::fs::read(&other).map_err(|e| format!("{other}: {e}"))?;
        let theirs = module::export_names(&bytes).map_err(|e| format!("{other}: {e}"))?;
        if let Some(difference) = callback_difference(&remaining, &theirs) {
            return Err(format!(
                "{file} and {other} export different proxy-wasm callbacks: {difference}"
            ));
        }
    }
    std::fs::write(&file, &trimmed.bytes).map_err(|e| format!("{file}: {e}"))?;
    Ok(format!(
        "{file}: removed {} export(s): {}",
        trimmed.removed.len(),
        trimmed.removed.join(", ")
    ))
}

/// The `proxy_on_*` exports only one of two export lists has, or `None` if they agree: Envoy
/// enters the VM for exactly these on every request, so two modules compared side by side
/// must export the same ones.
fn callback_difference(ours: &[String], theirs: &[String]) -> Option<String> {
    let callbacks = |names: &[String]| -> std::collections::BTreeSet<String> {
        names
            .iter()
            .filter(|n| n.starts_with("proxy_on_"))
            .cloned()
            .collect()
    };
    let (ours, theirs) = (callbacks(ours), callbacks(theirs));
    if ours == theirs {
        return None;
    }
    let only = |a: &std::collections::BTreeSet<String>, b: &std::collections::BTreeSet<String>| {
        a.difference(b).cloned().collect::<Vec<_>>().join(", ")
    };
    Some(format!(
        "only the first: [{}], only the second: [{}]",
        only(&ours, &theirs),
        only(&theirs, &ours)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn callbacks_compare_as_sets_of_proxy_on_exports_only() {
        let a = names(&[
            "memory",
            "proxy_on_tick",
            "proxy_on_request_headers",
            "_initialize",
        ]);
        let b = names(&["proxy_on_request_headers", "proxy_on_tick", "malloc"]);
        assert_eq!(callback_difference(&a, &b), None);
        let c = names(&["proxy_on_request_headers", "proxy_on_request_trailers"]);
        assert_eq!(
            callback_difference(&a, &c).as_deref(),
            Some("only the first: [proxy_on_tick], only the second: [proxy_on_request_trailers]")
        );
    }
}
