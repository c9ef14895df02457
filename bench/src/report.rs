//! The tables `make bench` prints: medians of the interleaved rounds, the ratio columns (no
//! filter, reference, floor), CPU time over the floor, built module against earlier ones, and
//! stage costs.

use std::fmt::Write as _;
use std::time::Duration;

use crate::scenario::Scenario;
use crate::wrk::Run;

/// The median of one measure over the runs (each measure's own median, not the median run's).
pub fn median_of<T>(runs: &[T], key: impl Fn(&T) -> f64) -> f64 {
    let values: Vec<f64> = runs.iter().map(key).collect();
    median(&values, |v| *v)
}

/// The middle value by `key` (the upper middle of an even count). Panics on an empty slice: a
/// benchmark always has at least one round.
pub fn median<T: Copy>(values: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted[sorted.len() / 2]
}

/// The value of the row `id` in `values`, which go with `scenarios` one for one.
pub fn row_of<'a, T>(scenarios: &[Scenario], values: &'a [T], id: &str) -> Option<&'a T> {
    scenarios
        .iter()
        .zip(values)
        .find(|(s, _)| s.id == id)
        .map(|(_, v)| v)
}

pub fn table(
    scenarios: &[Scenario],
    results: &[Vec<Run>],
    seconds: u32,
    rounds: u32,
    placement: &str,
) -> String {
    // Median round per scenario, by throughput; its latencies go with it, so a row is one real run.
    let medians: Vec<Run> = results
        .iter()
        .map(|runs| median(runs, |r| r.requests_per_sec))
        .collect();
    let throughput_of = |id: &str| row_of(scenarios, &medians, id).map(|r| r.requests_per_sec);
    let ratio = |value: f64, to: Option<f64>| match to {
        Some(to) if to > 0.0 => format!("{:.2}", value / to),
        _ => "-".to_string(),
    };
    // Envoy CPU time per request: the median over the rounds (each round measured on its own).
    let cpu: Vec<Option<Duration>> = results.iter().map(|runs| median_cpu(runs)).collect();
    let cpu_of = |id: &str| row_of(scenarios, &cpu, id).copied().flatten();
    let mut out = format!(
        "wrk -t1 -c32 -d{seconds}s, Envoy --concurrency 1, {placement}, median of {rounds} interleaved rounds;\n\
         \"vs no filter\": against no filter with the same request (GET, or the same 1 KiB JSON POST);\n\
         \"vs ref\": against the row named in \"ref\": the native filters doing the same job (rate-limit rows: native\n\
         local_ratelimit; JWT rows: jwt_authn with the same token, cold against jwt_authn without cache, warm against\n\
         jwt_authn with jwt_cache_config; full-policy rows: the native chain doing the subset it can), payload rows\n\
         against api-guard with payload checks off, cached introspection against the API-key check, uncached against cached;\n\
         \"vs floor\": against the row named in \"floor\": the do-nothing proxy-wasm module with api-guard's exported callbacks\n\
         sending the same request (post-floor-body: holding, buffering and reading the body, the floor of rows that check it);\n\
         \"cpu us\": CPU time of the Envoy process (all threads, /proc schedstat) per request, median of the rounds;\n\
         \"cpu us over floor\": that minus the floor's: what the row's own work costs per request, robust to other load\n\n\
         | config | req/s | p50 | p99 | cpu us | vs no filter | vs ref | ref | vs floor | cpu us over floor | floor |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|\n"
    );
    for ((scenario, run), cpu) in scenarios.iter().zip(&medians).zip(&cpu) {
        let floor = scenario.floor.as_deref();
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            scenario.name,
            run.requests_per_sec,
            format_latency(run.p50),
            format_latency(run.p99),
            cpu.map_or("-".to_string(), |c| format!("{:.1}", c.as_secs_f64() * 1e6)),
            ratio(run.requests_per_sec, throughput_of(&scenario.baseline)),
            ratio(run.requests_per_sec, throughput_of(&scenario.reference)),
            scenario.reference,
            ratio(run.requests_per_sec, floor.and_then(throughput_of)),
            micros_over(*cpu, floor.and_then(cpu_of)),
            floor.unwrap_or("-"),
        );
    }
    out
}

/// How many microseconds of CPU a row spends per request more than another (`-` without both).
pub fn micros_over(cpu: Option<Duration>, over: Option<Duration>) -> String {
    match (cpu, over) {
        (Some(cpu), Some(over)) => {
            format!("{:+.1}", (cpu.as_secs_f64() - over.as_secs_f64()) * 1e6)
        }
        _ => "-".to_string(),
    }
}

/// The median CPU time per request over the rounds that measured one.
pub fn median_cpu(runs: &[Run]) -> Option<Duration> {
    let measured: Vec<Duration> = runs.iter().filter_map(|r| r.cpu_per_request).collect();
    (!measured.is_empty()).then(|| median(&measured, Duration::as_secs_f64))
}

pub fn format_latency(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The built module against each other module, per api-guard row: the ratio of the median
/// rounds, and the median of the per-round ratios (each round runs them back to back, so drift
/// cancels out).
pub fn before_after(scenarios: &[Scenario], results: &[Vec<Run>]) -> String {
    let mut out = String::from("| config | module | req/s | built module req/s | built / this (medians) | built / this (median of rounds) |\n|---|---|---:|---:|---:|---:|\n");
    for (s, runs) in scenarios.iter().zip(results) {
        let Some(built_runs) = s
            .module
            .as_ref()
            .and_then(|_| row_of(scenarios, results, &s.reference))
        else {
            continue;
        };
        let this = median(runs, |r| r.requests_per_sec).requests_per_sec;
        let built = median(built_runs, |r| r.requests_per_sec).requests_per_sec;
        let per_round: Vec<f64> = built_runs
            .iter()
            .zip(runs)
            .map(|(b, t)| b.requests_per_sec / t.requests_per_sec.max(1.0))
            .collect();
        let stem = s.id.rsplit('@').next().unwrap_or("-");
        let _ = writeln!(
            out,
            "| {} | {stem} | {this:.0} | {built:.0} | {:.3} | {:.3} |",
            s.name.trim_end_matches(&format!(" [{stem}]")),
            built / this.max(1.0),
            median(&per_round, |r| *r),
        );
    }
    out
}

/// With probe modules (`make bench-stages`): per api-guard row, the time per request of no
/// filter, of each probe in the order given (each stops one stage later) and of the built
/// module, from the median rounds, and the difference to the previous line: what each stage
/// costs inside Envoy. On one Envoy worker, time per request is 1 / throughput.
pub fn stage_costs(scenarios: &[Scenario], results: &[Vec<Run>]) -> String {
    let micros = |runs: &Vec<Run>| {
        1e6 / median(runs, |r| r.requests_per_sec)
            .requests_per_sec
            .max(1.0)
    };
    let mut out = String::from(
        "Stage costs (1 / median throughput; each line does everything of the lines above it):\n\n| config | up to | us per request | this stage |\n|---|---|---:|---:|\n",
    );
    for (s, runs) in scenarios.iter().zip(results) {
        if s.module.is_some() || !s.needs_wasm {
            continue;
        }
        let mut lines: Vec<(String, f64)> = Vec::new();
        if let Some(base) = row_of(scenarios, results, &s.baseline) {
            lines.push(("no filter".into(), micros(base)));
        }
        for (t, probe_runs) in scenarios.iter().zip(results) {
            if t.is_probe() && t.reference == s.id {
                let stem = t.id.rsplit('@').next().unwrap_or("-");
                lines.push((stem.to_string(), micros(probe_runs)));
            }
        }
        lines.push(("the built module (everything)".into(), micros(runs)));
        let mut previous = None;
        for (label, us) in lines {
            let delta = previous.map_or("-".to_string(), |p: f64| format!("{:+.1}", us - p));
            let _ = writeln!(out, "| {} | {label} | {us:.1} | {delta} |", s.name);
            previous = Some(us);
        }
    }
    out
}

pub fn env_number(name: &str, default: u32) -> Result<u32, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("{name}={v:?}: expected a positive whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_picks_the_middle_run() {
        let run = |rps| Run {
            requests_per_sec: rps,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            requests: 0,
            cpu_per_request: None,
        };
        assert_eq!(
            median(&[run(3.0), run(1.0), run(2.0)], |r| r.requests_per_sec),
            run(2.0)
        );
    }
}
