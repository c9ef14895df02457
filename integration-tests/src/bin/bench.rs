//! `make bench`: api-guard against no filter and against Envoy's native filters doing the same
//! checks, side by side on this machine.
//!
//! One echo upstream; one Envoy per scenario (`--concurrency 1`), all started up front; wrk drives
//! one Envoy at a time, rounds interleaved (A B C A B C ...) so drift (thermal, noisy neighbours)
//! hits every scenario alike; the table reports the median round. Compare ratios, not absolute
//! numbers. `BENCH_SECONDS` (default 3) and `BENCH_ROUNDS` (default 7) override the run length;
//! `BENCH_ONLY=none,native-jwt-es256` runs only the scenarios whose id contains one of the
//! comma-separated words (a ratio column shows `-` when its reference row did not run).
//!
//! JWT rows: per algorithm (RS256, ES256, EdDSA, HS256), the same fixture token
//! (`filter/src/jwt/testdata/jws.json`, minted by PyJWT) on every request, verified by Envoy's
//! jwt_authn without and with its JWT cache, and by api-guard with its cache off (every request
//! verified: the cold path) and on (one verification, then cache hits: the warm path). api-guard
//! cold is compared with jwt_authn uncached, warm with jwt_authn cached.
//!
//! On a machine with two or more CPUs, every Envoy is pinned to the last CPU and wrk, the
//! upstream and this process to the others (`taskset`), so each Envoy worker has a core of its
//! own and the load generator does not steal its cycles: throughput then measures what the
//! filter chain costs Envoy. `BENCH_PIN=0` turns pinning off.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
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

/// The JWS fixture (keys and tokens minted by PyJWT, `tools/jwt-fixtures/mint_jws.py`); the JWT
/// bench configs carry its public JWKS.
const JWS_FIXTURE: &str = include_str!("../../../filter/src/jwt/testdata/jws.json");
const NATIVE_JWT_CONFIG: &str = "envoy/bench/native-jwt.yaml";
/// The listener of [`NATIVE_JWT_CONFIG`] whose jwt_authn has `jwt_cache_config`.
const NATIVE_JWT_CACHED_LISTENER: &str = "http-cached";
const API_GUARD_JWT_CONFIG: &str = "envoy/bench/api-guard-jwt.yaml";
const API_GUARD_JWT_NOCACHE_CONFIG: &str = "envoy/bench/api-guard-jwt-nocache.yaml";
/// (row label, id suffix, fixture token): one valid token per algorithm family.
const JWT_ALGORITHMS: [(&str, &str, &str); 4] = [
    ("RS256", "rs256", "valid_rs256"),
    ("ES256", "es256", "valid_es256"),
    ("EdDSA", "eddsa", "valid_eddsa"),
    ("HS256", "hs256", "valid_hs256"),
];

/// One row of the table.
struct Scenario {
    /// Short stable id (the ratio columns refer to [`NO_FILTER`] and [`NATIVE`]).
    id: String,
    name: String,
    /// Bootstrap, relative to the repository root. Scenarios with the same bootstrap share one
    /// Envoy.
    config: &'static str,
    /// The listener wrk drives.
    listener: &'static str,
    /// Sent with every request (the credential).
    headers: Vec<(&'static str, String)>,
    /// Without `headers`, the scenario must refuse with this status (an access-control sanity
    /// check: a benchmark of a filter that lets everything through is meaningless).
    status_without_headers: u16,
    /// Needs the api-guard module (`make wasm`).
    needs_wasm: bool,
    /// The native scenario doing the same job, for the "vs native" column.
    native_peer: String,
}

fn scenarios() -> Result<Vec<Scenario>, String> {
    let api_key = || vec![(API_KEY.0, API_KEY.1.to_string())];
    let mut all = vec![
        Scenario {
            id: "none".to_string(),
            name: "no filter".to_string(),
            config: "envoy/bench/none.yaml",
            listener: "http",
            headers: api_key(),
            status_without_headers: 200,
            needs_wasm: false,
            native_peer: NATIVE.to_string(),
        },
        Scenario {
            id: "native".to_string(),
            name: "native (rbac + api_key_auth)".to_string(),
            config: "envoy/bench/native.yaml",
            listener: "http",
            headers: api_key(),
            status_without_headers: 401,
            needs_wasm: false,
            native_peer: NATIVE.to_string(),
        },
        Scenario {
            id: "api-guard".to_string(),
            name: "api-guard (ip + api key)".to_string(),
            config: "envoy/bench/api-guard.yaml",
            listener: "http",
            headers: api_key(),
            status_without_headers: 401,
            needs_wasm: true,
            native_peer: NATIVE.to_string(),
        },
        Scenario {
            id: NATIVE_RATE_LIMIT.to_string(),
            name: "native (rbac + api_key_auth + local_ratelimit)".to_string(),
            config: "envoy/bench/native-ratelimit.yaml",
            listener: "http",
            headers: api_key(),
            status_without_headers: 401,
            needs_wasm: false,
            native_peer: NATIVE_RATE_LIMIT.to_string(),
        },
        Scenario {
            id: "api-guard-rl1".to_string(),
            name: "api-guard (ip + api key + 1 limit by client)".to_string(),
            config: "envoy/bench/api-guard-ratelimit-1.yaml",
            listener: "http",
            headers: api_key(),
            status_without_headers: 401,
            needs_wasm: true,
            native_peer: NATIVE_RATE_LIMIT.to_string(),
        },
        Scenario {
            id: "api-guard-rl3".to_string(),
            name: "api-guard (ip + api key + 3 limits)".to_string(),
            config: "envoy/bench/api-guard-ratelimit-3.yaml",
            listener: "http",
            headers: api_key(),
            status_without_headers: 401,
            needs_wasm: true,
            native_peer: NATIVE_RATE_LIMIT.to_string(),
        },
    ];
    for (alg, suffix, token_name) in JWT_ALGORITHMS {
        let bearer = vec![(
            "authorization",
            format!("Bearer {}", fixture_token(token_name)?),
        )];
        let native = format!("native-jwt-{suffix}");
        let native_cached = format!("native-jwt-cached-{suffix}");
        let row = |id: String, name: String, config, listener, native_peer: &String| Scenario {
            id,
            name,
            config,
            listener,
            headers: bearer.clone(),
            status_without_headers: 401,
            needs_wasm: config != NATIVE_JWT_CONFIG,
            native_peer: native_peer.clone(),
        };
        all.extend([
            row(
                native.clone(),
                format!("native jwt_authn {alg}, no cache"),
                NATIVE_JWT_CONFIG,
                "http",
                &native,
            ),
            row(
                native_cached.clone(),
                format!("native jwt_authn {alg}, jwt_cache_config"),
                NATIVE_JWT_CONFIG,
                NATIVE_JWT_CACHED_LISTENER,
                &native_cached,
            ),
            row(
                format!("api-guard-jwt-cold-{suffix}"),
                format!("api-guard JWT {alg}, cache off (cold)"),
                API_GUARD_JWT_NOCACHE_CONFIG,
                "http",
                &native,
            ),
            row(
                format!("api-guard-jwt-warm-{suffix}"),
                format!("api-guard JWT {alg}, cache on (warm)"),
                API_GUARD_JWT_CONFIG,
                "http",
                &native_cached,
            ),
        ]);
    }
    Ok(all)
}

/// A token of the JWS fixture, by name.
fn fixture_token(name: &str) -> Result<String, String> {
    let fixture: serde_json::Value = serde_json::from_str(JWS_FIXTURE)
        .map_err(|e| format!("filter/src/jwt/testdata/jws.json is not JSON: {e}"))?;
    fixture["tokens"][name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("filter/src/jwt/testdata/jws.json has no token {name:?}"))
}

/// `BENCH_ONLY`: the scenarios whose id contains one of the comma-separated words (all if unset
/// or empty).
fn select(scenarios: Vec<Scenario>, only: Option<&str>) -> Result<Vec<Scenario>, String> {
    let words: Vec<&str> = only
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Ok(scenarios);
    }
    let ids: Vec<String> = scenarios.iter().map(|s| s.id.clone()).collect();
    let selected: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| words.iter().any(|w| s.id.contains(w)))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "BENCH_ONLY={:?} matches no scenario; ids: {}",
            only.unwrap_or(""),
            ids.join(", ")
        ));
    }
    Ok(selected)
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
    let scenarios = select(scenarios()?, std::env::var("BENCH_ONLY").ok().as_deref())?;

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
    // One Envoy per bootstrap; scenarios on the same bootstrap share it.
    let mut configs: Vec<&str> = scenarios.iter().map(|s| s.config).collect();
    configs.sort_unstable();
    configs.dedup();
    let envoys: Vec<Envoy> = configs
        .iter()
        .map(|&path| {
            let config = EnvoyConfig::load(path)
                .with_upstreams(&[upstream.addr])
                .with_concurrency(1);
            Envoy::try_start(config).map_err(|e| format!("{path}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if let Some(pin) = &pinning {
        for envoy in &envoys {
            pin.pin_pid(envoy.pid(), &pin.envoy_cpu)?;
        }
    }
    let ports: Vec<u16> = scenarios
        .iter()
        .map(|s| {
            let envoy = configs
                .iter()
                .position(|&c| c == s.config)
                .and_then(|i| envoys.get(i))
                .ok_or_else(|| format!("{}: no Envoy for {}", s.name, s.config))?;
            envoy
                .listener_port(s.listener)
                .ok_or_else(|| format!("{}: {} has no listener {:?}", s.name, s.config, s.listener))
        })
        .collect::<Result<_, String>>()?;

    for (scenario, &port) in scenarios.iter().zip(&ports) {
        check_access_control(scenario, port)?;
    }

    let mut results: Vec<Vec<Run>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=rounds {
        for ((scenario, &port), runs) in scenarios.iter().zip(&ports).zip(&mut results) {
            eprintln!("round {round}/{rounds}: {} ({seconds} s)", scenario.name);
            runs.push(run_wrk(scenario, port, seconds, pinning.as_ref())?);
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
fn check_access_control(scenario: &Scenario, port: u16) -> Result<(), String> {
    let (status, text) = get(port, &scenario.headers)?;
    if status != 200 {
        return Err(format!(
            "{}: expected 200 with the credential, got {status}: {text}",
            scenario.name
        ));
    }
    let (status, text) = get(port, &[])?;
    if status != scenario.status_without_headers {
        return Err(format!(
            "{}: expected {} without the credential, got {status}: {text}",
            scenario.name, scenario.status_without_headers
        ));
    }
    Ok(())
}

/// `GET PATH` on a loopback port over HTTP/1.1 (any listener, not only `http`): status and the
/// whole response as text.
fn get(port: u16, headers: &[(&str, String)]) -> Result<(u16, String), String> {
    let fail = |e: std::io::Error| format!("GET 127.0.0.1:{port}{PATH}: {e}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(fail)?;
    let mut request = format!("GET {PATH} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(fail)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("GET 127.0.0.1:{port}{PATH}: not an HTTP/1.1 response: {text}"))?;
    Ok((status, text))
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
         \"vs native\": against the native filters doing the same job (rate-limit rows: native local_ratelimit;\n\
         JWT rows: jwt_authn with the same token, cold against jwt_authn without cache, warm against jwt_authn with jwt_cache_config)\n\n\
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
            ratio(run.requests_per_sec, throughput_of(&scenario.native_peer)),
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
        for s in scenarios().unwrap() {
            assert!(
                integration_tests::workspace_root().join(s.config).is_file(),
                "{}",
                s.config
            );
        }
    }

    #[test]
    fn scenario_ids_are_unique_and_ratio_references_exist() {
        let all = scenarios().unwrap();
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!ids[..i].contains(id), "duplicate id {id}");
        }
        assert!(ids.contains(&NO_FILTER));
        for s in &all {
            assert!(
                ids.contains(&s.native_peer.as_str()),
                "{}: {}",
                s.id,
                s.native_peer
            );
            // A scenario's listener must exist in its bootstrap.
            let config = EnvoyConfig::load(s.config);
            let listeners = config.yaml()["static_resources"]["listeners"]
                .as_sequence()
                .unwrap();
            assert!(
                listeners
                    .iter()
                    .any(|l| l["name"].as_str() == Some(s.listener)),
                "{}: no listener {} in {}",
                s.id,
                s.listener,
                s.config
            );
            assert_eq!(
                s.needs_wasm,
                !config.plugin_configs().is_empty(),
                "{}",
                s.id
            );
        }
    }

    #[test]
    fn jwt_rows_compare_cold_with_uncached_and_warm_with_cached_native() {
        let all = scenarios().unwrap();
        let find = |id: &str| all.iter().find(|s| s.id == id).unwrap();
        for (_, suffix, token) in JWT_ALGORITHMS {
            let bearer = format!("Bearer {}", fixture_token(token).unwrap());
            for id in [
                format!("native-jwt-{suffix}"),
                format!("native-jwt-cached-{suffix}"),
                format!("api-guard-jwt-cold-{suffix}"),
                format!("api-guard-jwt-warm-{suffix}"),
            ] {
                let s = find(&id);
                assert_eq!(s.headers, vec![("authorization", bearer.clone())], "{id}");
                assert_eq!(s.status_without_headers, 401, "{id}");
            }
            let cold = find(&format!("api-guard-jwt-cold-{suffix}"));
            assert_eq!(cold.config, API_GUARD_JWT_NOCACHE_CONFIG);
            assert_eq!(cold.native_peer, format!("native-jwt-{suffix}"));
            let warm = find(&format!("api-guard-jwt-warm-{suffix}"));
            assert_eq!(warm.config, API_GUARD_JWT_CONFIG);
            assert_eq!(warm.native_peer, format!("native-jwt-cached-{suffix}"));
        }
        assert!(fixture_token("no-such-token").is_err());
    }

    /// Every `inline_string` under a YAML tree (the jwt_authn providers' local JWKS).
    fn inline_strings(value: &serde_yaml::Value, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        (Some("inline_string"), Some(text)) => out.push(text.to_string()),
                        _ => inline_strings(v, out),
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => {
                items.iter().for_each(|v| inline_strings(v, out));
            }
            _ => {}
        }
    }

    #[test]
    fn jwt_configs_carry_the_fixture_keys_and_claims() {
        let fixture: serde_json::Value = serde_json::from_str(JWS_FIXTURE).unwrap();
        let jwks = &fixture["jwks"];
        assert!(!jwks["keys"].as_array().unwrap().is_empty());

        // Native: both listeners, same JWKS, issuer and audience as the fixture's tokens.
        let native = EnvoyConfig::load(NATIVE_JWT_CONFIG);
        let mut inline = Vec::new();
        inline_strings(native.yaml(), &mut inline);
        assert_eq!(inline.len(), 2, "one local JWKS per listener");
        for text in inline {
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(&doc, jwks, "{NATIVE_JWT_CONFIG} drifted from the fixture");
        }
        let text = serde_yaml::to_string(native.yaml()).unwrap();
        assert_eq!(text.matches("issuer: https://issuer.test").count(), 2);
        assert_eq!(text.matches("jwt_cache_config").count(), 1);

        // api-guard: the same JWKS, issuer and audience; the cache on or off.
        for (path, cache) in [
            (
                API_GUARD_JWT_CONFIG,
                serde_json::json!({"max_entries": 10000, "max_ttl_seconds": 300}),
            ),
            (
                API_GUARD_JWT_NOCACHE_CONFIG,
                serde_json::json!({"max_entries": 0}),
            ),
        ] {
            let configs = EnvoyConfig::load(path).plugin_configs();
            assert_eq!(configs.len(), 1, "{path}");
            let plugin: serde_json::Value = serde_json::from_str(&configs[0]).unwrap();
            let provider = &plugin["jwt_providers"]["bench"];
            assert_eq!(&provider["jwks"], jwks, "{path} drifted from the fixture");
            assert_eq!(provider["issuer"], fixture["issuer"], "{path}");
            assert_eq!(
                provider["audiences"],
                serde_json::json!([fixture["audience"]]),
                "{path}"
            );
            assert_eq!(plugin["jwt_cache"], cache, "{path}");
            assert_eq!(
                plugin["policies"]["default"]["jwt"]["providers"],
                serde_json::json!(["bench"]),
                "{path}"
            );
        }
    }

    #[test]
    fn bench_only_selects_by_id_words() {
        let ids = |only: Option<&str>| -> Result<Vec<String>, String> {
            select(scenarios().unwrap(), only).map(|v| v.into_iter().map(|s| s.id).collect())
        };
        let all = ids(None).unwrap();
        assert_eq!(ids(Some("")).unwrap(), all);
        assert_eq!(ids(Some(" , ")).unwrap(), all);
        assert_eq!(
            ids(Some("none, native-jwt-es256")).unwrap(),
            vec!["none", "native-jwt-es256"]
        );
        assert_eq!(
            ids(Some("jwt-cold")).unwrap(),
            vec![
                "api-guard-jwt-cold-rs256",
                "api-guard-jwt-cold-es256",
                "api-guard-jwt-cold-eddsa",
                "api-guard-jwt-cold-hs256"
            ]
        );
        let err = ids(Some("nothing-like-this")).unwrap_err();
        assert!(
            err.contains("matches no scenario") && err.contains("native-rl"),
            "{err}"
        );
    }
}
