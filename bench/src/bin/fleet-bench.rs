//! `make bench` (fleet part): what the fleet rate limit tier costs and how exact it is.
//!
//! 1. Cost, side by side in one run: one Envoy (`--concurrency 2`) with api-guard's per-Envoy
//!    limit alone (envoy/ratelimit-global.yaml without the route's `rate_limits`, so the
//!    `ratelimit` filter never calls out), against the same bootstrap asking the rate limit
//!    service (api-guard-ratelimit on redis-server) with `admission: exact` and `fast`. wrk
//!    (`-t1`, BENCH_CONNECTIONS keep-alive connections, default 32, one API key) drives each for
//!    BENCH_SECONDS (default 3), the rows
//!    interleaved, BENCH_ROUNDS (default 5) rounds; medians. Every limit is far above the load:
//!    this measures the admitted path.
//! 2. Over-admission: three Envoys (`--concurrency 2` each) and a fleet limit of N=100 per
//!    client; 600 requests from 48 threads over fresh connections, round-robin over the three,
//!    for a client never seen before. Admitted minus N, per admission mode, FLEET_BURSTS
//!    (default 3) bursts each.
//!
//! Everything on loopback; the numbers are ratios within one run on a shared machine, not
//! absolutes. The service binary: `$RATELIMIT_SERVICE_BIN` (make bench builds a release one).

use std::process::{Command, ExitCode};

use bench::report::{env_number, median_of};
use bench::wrk::{parse_wrk, Run, WRK};
use integration_tests::load::{burst, Tally};
use integration_tests::ratelimit::{RateLimitService, Redis};
use integration_tests::{key_digest, try_envoy_bin, try_wasm_path, Envoy, EnvoyConfig, Upstream};
use serde_json::json;

const FLEET_LIMIT: usize = 100;
const BURST_REQUESTS: usize = 600;
const CLIENTS: usize = 16;

fn plugin() -> String {
    let clients: serde_json::Map<String, serde_json::Value> = (0..CLIENTS)
        .map(|i| {
            (
                format!("c{i}"),
                json!({"keys": [{"id": format!("c{i}-1"), "sha256": key_digest(&format!("key-{i}"))}]}),
            )
        })
        .collect();
    json!({
        "clients": clients,
        "policies": {"api": {"api_key": {}, "rate_limits": [
            {"name": "node_limit", "rate": 1_000_000_000u64, "per": "second", "key": "client"}]}}
    })
    .to_string()
}

fn limits(admission: &str, rate: usize) -> String {
    format!(
        "domain: api-guard\nadmission: {admission}\nstorage_timeout_ms: 1000\nlimits:\n  - {{name: per_client, descriptor: [{{key: client_id}}], rate: {rate}, per: hour}}\n"
    )
}

/// One wrk run of `seconds` on `connections` keep-alive connections with one API key.
fn wrk(port: u16, seconds: u32, connections: u32, key: &str) -> Result<Run, String> {
    let out = Command::new(WRK)
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args(["-H", &format!("x-api-key: {key}")])
        .arg(format!("http://127.0.0.1:{port}/api/x"))
        .output()
        .map_err(|e| {
            format!("cannot run {WRK} ({e}): make setup installs it (apt-get install wrk)")
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx or 3xx responses") {
        return Err(format!("refusals in a cost run:\n{text}"));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    try_envoy_bin()?;
    try_wasm_path()?;
    let seconds = env_number("BENCH_SECONDS", 3)?;
    let rounds = env_number("BENCH_ROUNDS", 5)?;
    let bursts = env_number("FLEET_BURSTS", 3)?;
    let connections = env_number("BENCH_CONNECTIONS", 32)?;
    let redis = Redis::start();
    let mut service = RateLimitService::start(&limits("exact", 4_000_000_000), &redis.url());
    let up = Upstream::start("fleet-bench");
    up.set_recording(false);
    let base = || {
        EnvoyConfig::load("envoy/ratelimit-global.yaml")
            .with_plugin_config(&plugin())
            .with_upstreams(&[up.addr])
            .with_cluster_endpoints("ratelimit", &[service.grpc])
            .with_filter_field("envoy.filters.http.ratelimit", "timeout", json!("2s"))
    };
    let node_only = Envoy::start(base().without_route_rate_limits());
    let fleet: Vec<Envoy> = (0..3).map(|_| Envoy::start(base())).collect();

    // 1. Cost.
    let rows = [
        "per-Envoy tier only",
        "+ fleet tier, exact",
        "+ fleet tier, fast",
    ];
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); rows.len()];
    // Client c0 for the cost runs; the bursts below take c1, c2, ...: a counter outlives a
    // change of its limit's rate (Limitador's key does not include it).
    for _ in 0..rounds {
        let key = "key-0";
        results[0].push(wrk(node_only.http_port, seconds, connections, key)?);
        results[1].push(wrk(fleet[0].http_port, seconds, connections, key)?);
        service.restart_with(&limits("fast", 4_000_000_000));
        results[2].push(wrk(fleet[0].http_port, seconds, connections, key)?);
        service.restart_with(&limits("exact", 4_000_000_000));
    }
    println!(
        "\nCost of the fleet tier: one Envoy (--concurrency 2), wrk -t1 -c{connections}, {seconds} s x {rounds} rounds, medians"
    );
    println!(
        "| {:<22} | {:>10} | {:>7} | {:>9} | {:>9} |",
        "row", "req/s", "ratio", "p50", "p99"
    );
    println!(
        "|{:-<24}|{:->12}|{:->9}|{:->11}|{:->11}|",
        "", "", "", "", ""
    );
    let base_rps = median_of(&results[0], |r| r.requests_per_sec);
    for (name, runs) in rows.iter().zip(&results) {
        let rps = median_of(runs, |r| r.requests_per_sec);
        println!(
            "| {:<22} | {:>10.0} | {:>6.2}x | {:>7.2}ms | {:>7.2}ms |",
            name,
            rps,
            rps / base_rps,
            median_of(runs, |r| r.p50.as_secs_f64()) * 1e3,
            median_of(runs, |r| r.p99.as_secs_f64()) * 1e3
        );
    }

    // 2. Over-admission under a burst across three Envoys.
    let ports: Vec<u16> = fleet.iter().map(|e| e.http_port).collect();
    println!(
        "\nOver-admission: fleet limit N={FLEET_LIMIT}, {BURST_REQUESTS} requests from 48 threads over 3 Envoys (--concurrency 2), a new client per burst"
    );
    println!("| admission | admitted per burst | over N (max) | refused otherwise |");
    println!("|---|---|---|---|");
    let mut client = 1;
    for admission in ["exact", "fast"] {
        service.restart_with(&limits(admission, FLEET_LIMIT));
        let mut admitted = Vec::new();
        let mut other = 0;
        for _ in 0..bursts {
            let key = format!("key-{}", 1 + (client - 1) % (CLIENTS - 1));
            client += 1;
            let ports = ports.clone();
            let tally: Tally = burst(BURST_REQUESTS, 48, move |i| {
                (
                    ports[i % 3],
                    "/api/x".to_string(),
                    vec![("x-api-key".to_string(), key.clone())],
                )
            });
            admitted.push(tally.get(&200).copied().unwrap_or(0));
            other += tally
                .iter()
                .filter(|(s, _)| **s != 200 && **s != 429)
                .map(|(_, n)| n)
                .sum::<usize>();
        }
        let over = admitted
            .iter()
            .map(|a| a.saturating_sub(FLEET_LIMIT))
            .max()
            .unwrap_or(0);
        println!("| {admission} | {admitted:?} | {over} | {other} |");
    }
    drop(redis);
    Ok(())
}
