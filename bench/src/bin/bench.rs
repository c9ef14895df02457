//! `make bench`: api-guard against no filter and against Envoy's native filters doing the same
//! checks, side by side on this machine.
//!
//! One echo upstream; one Envoy per scenario (`--concurrency 1`), all started up front; wrk drives
//! one Envoy at a time, rounds interleaved (A B C A B C ...) so drift (thermal, noisy neighbours)
//! hits every scenario alike; the table reports the median round. Compare ratios, not absolute
//! numbers. `BENCH_SECONDS` (default 3) and `BENCH_ROUNDS` (default 7) override the run length;
//! `BENCH_ONLY=none,native-jwt-es256` runs only the scenarios whose id contains one of the
//! comma-separated words, or equals a word written `=id` (`BENCH_ONLY==none,=api-guard,post`);
//! a ratio column shows `-` when its reference row did not run. `BENCH_BEFORE_WASM=<module>,...`
//! runs every api-guard row again with each module (an earlier build) in the same interleaved
//! rounds and prints a built / earlier table: how optimisations are measured. Modules named
//! `probe-*` are builds that stop after one stage of the request path, to price the stages
//! inside Envoy (they enforce nothing; their rows skip the access checks).
//!
//! JWT rows: per algorithm (RS256, ES256, EdDSA, HS256), the same fixture token
//! (`filter/src/jwt/testdata/jws.json`, minted by PyJWT) on every request, verified by Envoy's
//! jwt_authn without and with its JWT cache, and by api-guard with its cache off (every request
//! verified: the cold path) and on (one verification, then cache hits: the warm path). api-guard
//! cold is compared with jwt_authn uncached, warm with jwt_authn cached.
//!
//! Payload rows (`post-*`): every request POSTs the same ~1 KiB JSON order ([`ORDER_JSON`], through
//! a wrk Lua script written to a temporary directory), against no filter POSTing it and against
//! api-guard's IP + API-key policy with payload checks off, with the order's JSON Schema, with
//! injection screening, and with both (one Envoy, a policy per route).
//!
//! Introspection rows: IP + RFC 7662 introspection through cluster `auth`, answered by an
//! [`AuthServer`] in this process; one token on every request (cached: one callout, then hits)
//! against a new token on every request (uncached: a callout each, `Bearer t<run>-<n>` from a
//! wrk Lua script), the cached row compared with the API-key check.
//!
//! Full-policy rows (`full-*`): IP + JWT ES256 (warm) or API key + two rate limits + schema +
//! screening on the POSTed order, against no filter POSTing it and against Envoy's native chain
//! (rbac + jwt_authn or api_key_auth + two local_ratelimit) doing the subset it can.
//!
//! Floor rows (`floor`, `post-floor`, `post-floor-body`): a proxy-wasm module that decides nothing
//! (`tools/floor-wasm`, built by `make floor-wasm` to [`FLOOR_MODULE`] with api-guard's SDK,
//! release profile and exported callbacks), in the GET rows' and the POST rows' shape, and once
//! holding, buffering and reading the body as api-guard does to check it. Every api-guard row
//! names its floor and reports its throughput against it and its cost over it in microseconds
//! of Envoy CPU per request: what api-guard's own work costs, above what any such module pays in
//! Envoy. CPU time per request (every Envoy thread, from /proc) is measured for every row: unlike
//! throughput it hardly moves when other processes compete for the machine.
//! `BENCH_ONLY` selects floor rows like any other (`floor` selects every floor row).
//!
//! Every row is checked before it is measured: 200 with its credential, refused without it,
//! and payload rows refuse an invalid body (400) or an injection (403) even with it.
//!
//! On a machine with two or more CPUs, every Envoy is pinned to the last CPU and wrk, the
//! upstream and this process to the others (`taskset`), so each Envoy worker has a core of its
//! own and the load generator does not steal its cycles: throughput then measures what the
//! filter chain costs Envoy. `BENCH_PIN=0` turns pinning off.
//!
//! `BENCH_INSTRUCTIONS=<n>` counts instructions instead of timing (`bench::callgrind`): every
//! Envoy runs under valgrind's callgrind, each row gets `n` unmeasured then `n` counted requests
//! on one connection, counted in windows of `BENCH_INSTRUCTIONS_WINDOW` (default 25) requests,
//! each less the idle Envoy's instructions in as long (the median of `BENCH_INSTRUCTIONS_IDLE`,
//! default 5, one-second windows with no request), and the table gives the median window's
//! instructions per request over `BENCH_ROUNDS` (default 2). The counts hardly move with the
//! machine's load, which the timed rows here do.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use bench::callgrind;
use bench::report::{before_after, env_number, stage_costs, table};
use bench::scenario::{
    check_access_control, scenarios, select, start_auth_service, uses_auth_service,
    with_before_twins, Scenario, FLOOR_CONFIG, FLOOR_MODULE, INTROSPECT_PATH,
};
use bench::wrk::{process_cpu_time, run_counted, run_wrk, Pinning, Run, ScriptDir, WRK};
use integration_tests::{try_envoy_bin, try_wasm_path, Envoy, EnvoyConfig, Upstream};

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
    // `BENCH_INSTRUCTIONS=<requests>`: instructions per request under callgrind instead of wrk's
    // timed runs (see `bench::callgrind`).
    let instructions = match std::env::var("BENCH_INSTRUCTIONS") {
        Ok(_) => Some(env_number("BENCH_INSTRUCTIONS", 1)?),
        Err(_) => None,
    };
    let rounds = env_number("BENCH_ROUNDS", if instructions.is_some() { 2 } else { 7 })?;
    // `BENCH_INSTRUCTIONS_WINDOW=<requests>` (default 25) counted requests per window,
    // `BENCH_INSTRUCTIONS_IDLE=<n>` (default 5, 0 for none) idle windows of a second.
    let windows = Windows {
        chunk: env_number("BENCH_INSTRUCTIONS_WINDOW", 25)?,
        idle: match std::env::var("BENCH_INSTRUCTIONS_IDLE") {
            Err(_) => 5,
            Ok(v) => v.parse().map_err(|_| {
                format!("BENCH_INSTRUCTIONS_IDLE={v:?}: expected a whole number of windows")
            })?,
        },
    };
    let mut scenarios = select(scenarios()?, std::env::var("BENCH_ONLY").ok().as_deref())?;
    let before: Vec<PathBuf> = std::env::var("BENCH_BEFORE_WASM")
        .ok()
        .map(|v| {
            v.split(',')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    if !before.is_empty() {
        scenarios = with_before_twins(scenarios, &before)?;
    }

    try_envoy_bin()?;
    if scenarios.iter().any(|s| s.needs_wasm) {
        try_wasm_path().map_err(|e| format!("the api-guard scenario needs the module: {e}"))?;
    }
    let floor_module = integration_tests::workspace_root().join(FLOOR_MODULE);
    if scenarios.iter().any(|s| s.config == FLOOR_CONFIG) && !floor_module.is_file() {
        return Err(format!(
            "the floor rows need {}: run `make floor-wasm`",
            floor_module.display()
        ));
    }
    Command::new(WRK)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {WRK} ({e}): install it (apt-get install wrk)"))?;

    if instructions.is_some() {
        callgrind::available()?;
    }
    let dumps = ScriptDir::new()?;
    // Instruction counts do not need a CPU of their own, and valgrind runs Envoy's threads one
    // at a time anyway.
    let pinning = match instructions {
        Some(_) => None,
        None => Pinning::detect()?,
    };
    if let Some(pin) = &pinning {
        pin.pin_pid(std::process::id(), &pin.load_cpus)?;
    }
    let upstream = Upstream::start("bench");
    upstream.set_recording(false);
    // One Envoy per bootstrap and module; scenarios on the same ones share it.
    let mut configs: Vec<(&str, Option<&Path>)> = scenarios
        .iter()
        .map(|s| (s.config, s.module.as_deref()))
        .collect();
    configs.sort_unstable();
    configs.dedup();
    let loaded: Vec<EnvoyConfig> = configs
        .iter()
        .map(|&(path, module)| {
            let mut config = EnvoyConfig::load(path)
                .with_upstreams(&[upstream.addr])
                .with_concurrency(1);
            if instructions.is_some() {
                config = config.with_wrapper(callgrind::wrapper(dumps.path()), callgrind::STARTUP);
            }
            match module {
                Some(module) => config.with_wasm_module(module),
                None => config,
            }
        })
        .collect();
    // The introspection service, in this process (pinned with wrk and the upstream).
    let auth = if loaded.iter().any(uses_auth_service) {
        Some(start_auth_service()?)
    } else {
        None
    };
    let envoys: Vec<Envoy> = loaded
        .into_iter()
        .map(|config| {
            let path = config.source().display().to_string();
            let config = match &auth {
                Some(auth) if uses_auth_service(&config) => config.with_auth_service(auth.addr()),
                _ => config,
            };
            Envoy::try_start(config).map_err(|e| format!("{path}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let scripts = ScriptDir::new()?;
    let mut run_count = 0u64;
    if let Some(pin) = &pinning {
        for envoy in &envoys {
            pin.pin_pid(envoy.pid(), &pin.envoy_cpu)?;
        }
    }
    let (ports, pids): (Vec<u16>, Vec<u32>) = scenarios
        .iter()
        .map(|s| {
            let envoy = configs
                .iter()
                .position(|&(c, m)| c == s.config && m == s.module.as_deref())
                .and_then(|i| envoys.get(i))
                .ok_or_else(|| format!("{}: no Envoy for {}", s.name, s.config))?;
            let port = envoy.listener_port(s.listener).ok_or_else(|| {
                format!("{}: {} has no listener {:?}", s.name, s.config, s.listener)
            })?;
            Ok((port, envoy.pid()))
        })
        .collect::<Result<Vec<_>, String>>()?
        .into_iter()
        .unzip();

    for (scenario, &port) in scenarios.iter().zip(&ports) {
        // Probe modules price a stage by stopping early: they enforce nothing by design.
        if !scenario.is_probe() {
            check_access_control(scenario, port)?;
        }
    }

    if let Some(requests) = instructions {
        return count_instructions(
            &scenarios,
            &envoys,
            &ports,
            &pids,
            (requests, rounds, windows),
            &dumps,
            &scripts,
        );
    }

    let mut results: Vec<Vec<Run>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=rounds {
        for (((scenario, &port), &pid), runs) in
            scenarios.iter().zip(&ports).zip(&pids).zip(&mut results)
        {
            eprintln!("round {round}/{rounds}: {} ({seconds} s)", scenario.name);
            run_count += 1;
            let cpu_before = process_cpu_time(pid);
            let mut run = run_wrk(
                scenario,
                port,
                seconds,
                pinning.as_ref(),
                (scripts.path(), run_count),
            )?;
            run.cpu_per_request = cpu_before
                .zip(process_cpu_time(pid))
                .and_then(|(before, after)| after.checked_sub(before))
                .and_then(|spent| spent.checked_div(u32::try_from(run.requests).ok()?));
            runs.push(run);
        }
    }

    if let Some(auth) = &auth {
        eprintln!(
            "introspection callouts answered by the bench's auth service: {}",
            auth.hits(INTROSPECT_PATH)
        );
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
    if !before.is_empty() {
        println!("{}", before_after(&scenarios, &results));
        if scenarios.iter().any(Scenario::is_probe) {
            println!("{}", stage_costs(&scenarios, &results));
        }
    }
    Ok(())
}

/// How `BENCH_INSTRUCTIONS` splits its counting: `chunk` requests per counted window, `idle`
/// windows of a second with no request before them.
#[derive(Debug, Clone, Copy)]
struct Windows {
    chunk: u32,
    idle: u32,
}

/// `BENCH_INSTRUCTIONS`: per round and row, `requests` unmeasured requests, `idle` windows of a
/// second with none (what the Envoy runs on its own: timers, the module's ticks), then
/// `requests` counted ones in windows of `chunk`, each between a zero and a dump of the Envoy's
/// counters and less the median idle window's instructions scaled to its length. The table
/// takes medians over windows: a rare large timer job (the rate-limit census every 10 s) lands
/// in one window and moves no median, where it would add its whole cost to one long window.
fn count_instructions(
    scenarios: &[Scenario],
    envoys: &[Envoy],
    ports: &[u16],
    pids: &[u32],
    (requests, rounds, windows): (u32, u32, Windows),
    dumps: &ScriptDir,
    scripts: &ScriptDir,
) -> Result<(), String> {
    for envoy in envoys {
        callgrind::instrument(envoy.pid())?;
    }
    // Under callgrind a request takes tens of milliseconds; bound each run generously.
    let limit = Duration::from_secs(60 + u64::from(requests));
    let mut results: Vec<Vec<callgrind::Sample>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=rounds {
        for (((scenario, &port), &pid), samples) in
            scenarios.iter().zip(ports).zip(pids).zip(&mut results)
        {
            eprintln!(
                "round {round}/{rounds}: {} ({requests} requests)",
                scenario.name
            );
            run_counted(scenario, port, requests, limit, scripts.path())?;
            let mut idle: Vec<(callgrind::Count, Duration)> = Vec::new();
            for _ in 0..windows.idle {
                callgrind::zero(pid)?;
                let start = Instant::now();
                std::thread::sleep(Duration::from_secs(1));
                let elapsed = start.elapsed();
                idle.push((callgrind::dump(pid, dumps.path())?, elapsed));
            }
            // The median idle window (the upper middle of an even count), by rate.
            let rate = |(c, t): &(callgrind::Count, Duration)| c.total as f64 / t.as_secs_f64();
            idle.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
            let (idle_count, idle_time) = idle
                .get(idle.len() / 2)
                .cloned()
                .unwrap_or((callgrind::Count::default(), Duration::from_secs(1)));
            let mut left = requests;
            while left > 0 {
                let n = left.min(windows.chunk);
                left -= n;
                callgrind::zero(pid)?;
                let start = Instant::now();
                let done = run_counted(scenario, port, n, limit, scripts.path())?;
                let elapsed = start.elapsed();
                let count = callgrind::dump(pid, dumps.path())?;
                samples.push(callgrind::Sample {
                    requests: done,
                    count: count
                        .less_idle(&idle_count, elapsed.as_secs_f64() / idle_time.as_secs_f64()),
                    idle_per_second: idle_count.total as f64 / idle_time.as_secs_f64(),
                });
            }
        }
    }
    println!("\n{}", callgrind::table(scenarios, &results, requests));
    Ok(())
}
