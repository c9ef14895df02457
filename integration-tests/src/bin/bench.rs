//! `make bench`: api-guard against no filter and against Envoy's native filters doing the same
//! checks, side by side on this machine.
//!
//! One echo upstream; one Envoy per scenario (`--concurrency 1`), all started up front; wrk drives
//! one Envoy at a time, rounds interleaved (A B C A B C ...) so drift (thermal, noisy neighbours)
//! hits every scenario alike; the table reports the median round. Compare ratios, not absolute
//! numbers. `BENCH_SECONDS` (default 3) and `BENCH_ROUNDS` (default 7) override the run length.
//!
//! On a machine with two or more CPUs, every Envoy is pinned to the last CPU and wrk, the
//! upstream and this process to the others (`taskset`), so each Envoy worker has a core of its
//! own and the load generator does not steal its cycles: throughput then measures what the
//! filter chain costs Envoy. `BENCH_PIN=0` turns pinning off.

use std::fmt::Write as _;
use std::process::{Command, ExitCode};
use std::time::Duration;

use integration_tests::{try_envoy_bin, try_wasm_path, Envoy, EnvoyConfig, Upstream};

const WRK: &str = "wrk";
const PATH: &str = "/bench";
const API_KEY: (&str, &str) = ("x-api-key", "demo-key-123");

/// The scenarios the ratio columns compare against.
const NO_FILTER: &str = "none";
const NATIVE: &str = "native";
const NATIVE_RATE_LIMIT: &str = "native-rl";

/// One row of the table.
struct Scenario {
    /// Short stable id (the ratio columns refer to [`NO_FILTER`] and [`NATIVE`]).
    id: &'static str,
    name: &'static str,
    /// Bootstrap, relative to the repository root.
    config: &'static str,
    /// Sent with every request (the credential).
    headers: Vec<(&'static str, &'static str)>,
    /// Without `headers`, the scenario must refuse with this status (an access-control sanity
    /// check: a benchmark of a filter that lets everything through is meaningless).
    status_without_headers: u16,
    /// Needs the api-guard module (`make wasm`).
    needs_wasm: bool,
    /// The native scenario doing the same job, for the "vs native" column.
    native_peer: &'static str,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "none",
            name: "no filter",
            config: "envoy/bench/none.yaml",
            headers: vec![API_KEY],
            status_without_headers: 200,
            needs_wasm: false,
            native_peer: NATIVE,
        },
        Scenario {
            id: "native",
            name: "native (rbac + api_key_auth)",
            config: "envoy/bench/native.yaml",
            headers: vec![API_KEY],
            status_without_headers: 401,
            needs_wasm: false,
            native_peer: NATIVE,
        },
        Scenario {
            id: "api-guard",
            name: "api-guard (ip + api key)",
            config: "envoy/bench/api-guard.yaml",
            headers: vec![API_KEY],
            status_without_headers: 401,
            needs_wasm: true,
            native_peer: NATIVE,
        },
        Scenario {
            id: NATIVE_RATE_LIMIT,
            name: "native (rbac + api_key_auth + local_ratelimit)",
            config: "envoy/bench/native-ratelimit.yaml",
            headers: vec![API_KEY],
            status_without_headers: 401,
            needs_wasm: false,
            native_peer: NATIVE_RATE_LIMIT,
        },
        Scenario {
            id: "api-guard-rl1",
            name: "api-guard (ip + api key + 1 limit by client)",
            config: "envoy/bench/api-guard-ratelimit-1.yaml",
            headers: vec![API_KEY],
            status_without_headers: 401,
            needs_wasm: true,
            native_peer: NATIVE_RATE_LIMIT,
        },
        Scenario {
            id: "api-guard-rl3",
            name: "api-guard (ip + api key + 3 limits)",
            config: "envoy/bench/api-guard-ratelimit-3.yaml",
            headers: vec![API_KEY],
            status_without_headers: 401,
            needs_wasm: true,
            native_peer: NATIVE_RATE_LIMIT,
        },
    ]
}

/// What wrk reported for one run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    requests_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let seconds = env_number("BENCH_SECONDS", 3)?;
    let rounds = env_number("BENCH_ROUNDS", 7)?;
    let scenarios = scenarios();

    try_envoy_bin()?;
    if scenarios.iter().any(|s| s.needs_wasm) {
        try_wasm_path().map_err(|e| format!("the api-guard scenario needs the module: {e}"))?;
    }
    Command::new(WRK)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {WRK} ({e}): install it (apt-get install wrk)"))?;

    let pinning = Pinning::detect()?;
    if let Some(pin) = &pinning {
        pin.pin_pid(std::process::id(), &pin.load_cpus)?;
    }
    let upstream = Upstream::start("bench");
    upstream.set_recording(false);
    let envoys: Vec<Envoy> = scenarios
        .iter()
        .map(|s| {
            let config = EnvoyConfig::load(s.config)
                .with_upstreams(&[upstream.addr])
                .with_concurrency(1);
            Envoy::try_start(config).map_err(|e| format!("{}: {e}", s.name))
        })
        .collect::<Result<_, _>>()?;

    for (scenario, envoy) in scenarios.iter().zip(&envoys) {
        if let Some(pin) = &pinning {
            pin.pin_pid(envoy.pid(), &pin.envoy_cpu)?;
        }
        check_access_control(scenario, envoy)?;
    }

    let mut results: Vec<Vec<Run>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=rounds {
        for ((scenario, envoy), runs) in scenarios.iter().zip(&envoys).zip(&mut results) {
            eprintln!("round {round}/{rounds}: {} ({seconds} s)", scenario.name);
            runs.push(run_wrk(
                scenario,
                envoy.http_port,
                seconds,
                pinning.as_ref(),
            )?);
        }
    }

    let placement = match &pinning {
        Some(p) => format!(
            "Envoy pinned to CPU {}, wrk + upstream to CPU {}",
            p.envoy_cpu, p.load_cpus
        ),
        None => "no CPU pinning".to_string(),
    };
    println!(
        "\n{}",
        table(&scenarios, &results, seconds, rounds, &placement)
    );
    Ok(())
}

fn env_number(name: &str, default: u32) -> Result<u32, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("{name}={v:?}: expected a positive whole number")),
    }
}

/// With its headers the scenario answers 200; without them, the expected refusal.
fn check_access_control(scenario: &Scenario, envoy: &Envoy) -> Result<(), String> {
    let with = scenario
        .headers
        .iter()
        .fold(envoy.request("GET", PATH), |r, (n, v)| r.header(n, v))
        .try_send()?;
    if with.status != 200 {
        return Err(format!(
            "{}: expected 200 with the key, got {}: {}",
            scenario.name,
            with.status,
            with.text()
        ));
    }
    let without = envoy.request("GET", PATH).try_send()?;
    if without.status != scenario.status_without_headers {
        return Err(format!(
            "{}: expected {} without the key, got {}: {}",
            scenario.name,
            scenario.status_without_headers,
            without.status,
            without.text()
        ));
    }
    Ok(())
}

/// CPU placement: Envoy on one CPU, everything else on the rest.
struct Pinning {
    envoy_cpu: String,
    load_cpus: String,
}

impl Pinning {
    fn detect() -> Result<Option<Pinning>, String> {
        if std::env::var("BENCH_PIN").is_ok_and(|v| v == "0") {
            return Ok(None);
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            return Ok(None);
        }
        Command::new("taskset")
            .arg("--version")
            .output()
            .map_err(|e| {
                format!("cannot run taskset ({e}); set BENCH_PIN=0 to run without pinning")
            })?;
        Ok(Some(Pinning {
            envoy_cpu: (cpus - 1).to_string(),
            load_cpus: if cpus == 2 {
                "0".to_string()
            } else {
                format!("0-{}", cpus - 2)
            },
        }))
    }

    /// Pins every thread of a process.
    fn pin_pid(&self, pid: u32, cpus: &str) -> Result<(), String> {
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("taskset: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("taskset -a -p -c {cpus} {pid} failed ({status})"))
        }
    }
}

fn run_wrk(
    scenario: &Scenario,
    port: u16,
    seconds: u32,
    pinning: Option<&Pinning>,
) -> Result<Run, String> {
    let mut command = match pinning {
        Some(pin) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &pin.load_cpus, WRK]);
            c
        }
        None => Command::new(WRK),
    };
    command.args(["-t1", "-c32", &format!("-d{seconds}s"), "--latency"]);
    for (name, value) in &scenario.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    command.arg(format!("http://127.0.0.1:{port}{PATH}"));
    let output = command
        .output()
        .map_err(|e| format!("cannot run {WRK}: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{WRK} failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
    {
        return Err(format!(
            "{}: {} (the numbers would measure refusals)",
            scenario.name,
            line.trim()
        ));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
}

/// Requests/s and the 50th/99th latency percentiles from `wrk --latency` output.
fn parse_wrk(text: &str) -> Option<Run> {
    let mut requests_per_sec = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => requests_per_sec = v.parse().ok(),
            (Some("50%"), Some(v)) => p50 = parse_latency(v),
            (Some("99%"), Some(v)) => p99 = parse_latency(v),
            _ => {}
        }
    }
    Some(Run {
        requests_per_sec: requests_per_sec?,
        p50: p50?,
        p99: p99?,
    })
}

/// wrk latencies: `812.00us`, `1.23ms`, `2.01s`, `1.50m`.
fn parse_latency(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

fn median<T: Copy>(values: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted[sorted.len() / 2]
}

fn table(
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
    let throughput_of = |id: &str| {
        scenarios
            .iter()
            .zip(&medians)
            .find(|(s, _)| s.id == id)
            .map(|(_, r)| r.requests_per_sec)
    };
    let baseline = throughput_of(NO_FILTER);
    let ratio = |value: f64, to: Option<f64>| match to {
        Some(to) if to > 0.0 => format!("{:.2}", value / to),
        _ => "-".to_string(),
    };
    let mut out = format!(
        "wrk -t1 -c32 -d{seconds}s, Envoy --concurrency 1, {placement}, median of {rounds} interleaved rounds;\n\
         \"vs native\": against the native filters doing the same job (rate-limit rows: native local_ratelimit)\n\n\
         | config | req/s | p50 | p99 | vs no filter | vs native |\n\
         |---|---:|---:|---:|---:|---:|\n"
    );
    for (scenario, run) in scenarios.iter().zip(&medians) {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} |",
            scenario.name,
            run.requests_per_sec,
            format_latency(run.p50),
            format_latency(run.p99),
            ratio(run.requests_per_sec, baseline),
            ratio(run.requests_per_sec, throughput_of(scenario.native_peer)),
        );
    }
    out
}

fn format_latency(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 5s test @ http://127.0.0.1:4000/bench
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  320.55us   9.87ms   90.12%
    Req/Sec    29.45k     1.20k   31.00k    80.00%
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.31ms
  146512 requests in 5.00s, 40.12MB read
Requests/sec:  29302.40
Transfer/sec:      8.02MB
";

    #[test]
    fn parses_wrk_latency_output() {
        let run = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(run.requests_per_sec, 29302.40);
        assert_eq!(run.p50, Duration::from_micros(812));
        assert_eq!(run.p99, Duration::from_micros(2310));
        assert_eq!(parse_wrk("Requests/sec: 1"), None);
    }

    #[test]
    fn parses_latency_units() {
        assert_eq!(parse_latency("1.50s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_latency("2.00m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_latency("12"), None);
        assert_eq!(parse_latency("3.0h"), None);
    }

    #[test]
    fn median_picks_the_middle_run() {
        let run = |rps| Run {
            requests_per_sec: rps,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        };
        assert_eq!(
            median(&[run(3.0), run(1.0), run(2.0)], |r| r.requests_per_sec),
            run(2.0)
        );
    }

    #[test]
    fn scenarios_point_at_existing_configs() {
        for s in scenarios() {
            assert!(
                integration_tests::workspace_root().join(s.config).is_file(),
                "{}",
                s.config
            );
        }
    }
}
