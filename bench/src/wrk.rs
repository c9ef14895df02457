//! Driving wrk: the Lua scripts of a row (POST body, a new token per request, a flood), CPU
//! pinning with taskset, one measured run, and reading wrk's output and Envoy's CPU time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::scenario::{
    fixture_token, Flood, Scenario, FLOOD_ADDRESS, FLOOD_CONNECTIONS, FLOOD_DELAY_MS,
};

/// The load generator (Debian package `wrk`; `make setup` installs it).
pub const WRK: &str = "wrk";

/// What wrk reported for one run, and what the Envoy serving it spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub requests_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Requests completed in the run (wrk's "N requests in").
    pub requests: u64,
    /// CPU time the Envoy process (all its threads) used during the run, per completed request:
    /// unlike throughput, it barely moves when other processes compete for the CPUs, because
    /// only time Envoy actually ran is counted. `None` without /proc.
    pub cpu_per_request: Option<Duration>,
}

/// A private directory for the wrk scripts, removed on drop.
pub struct ScriptDir(PathBuf);

impl ScriptDir {
    pub fn new() -> Result<ScriptDir, String> {
        let path = std::env::temp_dir().join(format!("api-guard-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(ScriptDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Lua long string holding `text` verbatim (a level of `=` the text does not close).
pub fn lua_long_string(text: &str) -> String {
    let mut level = String::new();
    while text.contains(&format!("]{level}]")) {
        level.push('=');
    }
    format!("[{level}[{text}]{level}]")
}

/// The wrk script (`wrk -s`) of one run, if the scenario needs one: the POST body and its
/// content type, and for `distinct_tokens` a new bearer token per request (`t<run>-<n>`: `run`
/// makes every run's tokens new to the cache).
pub fn wrk_script(scenario: &Scenario, run: u64) -> Option<String> {
    if scenario.body.is_none() && !scenario.distinct_tokens {
        return None;
    }
    let mut script = String::new();
    if let Some(body) = &scenario.body {
        let _ = write!(
            script,
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"content-type\"] = \"application/json\"\n",
            lua_long_string(body)
        );
    }
    if scenario.distinct_tokens {
        let _ = write!(
            script,
            "local n = 0\n\
             request = function()\n\
             \x20 n = n + 1\n\
             \x20 local headers = {{}}\n\
             \x20 for k, v in pairs(wrk.headers) do headers[k] = v end\n\
             \x20 headers[\"authorization\"] = \"Bearer t{run}-\" .. n\n\
             \x20 return wrk.format(nil, nil, headers, nil)\n\
             end\n"
        );
    }
    Some(script)
}

/// The wrk script of a flood: every request distinct, from [`FLOOD_ADDRESS`].
pub fn flood_script(flood: Flood, run: u64) -> Result<String, String> {
    let credential = match flood {
        Flood::ForgedEs256 => {
            let token = fixture_token("valid_es256")?;
            let (signed, _) = token
                .rsplit_once('.')
                .ok_or("the ES256 fixture is not a JWS")?;
            // 86 base64url characters: 64 bytes; the last one carries 4 bits (A, Q, g, w).
            format!(
                "local alphabet = \"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_\"\n\
                 local last = {{\"A\", \"Q\", \"g\", \"w\"}}\n\
                 credential = function()\n\
                 \x20 local t = {{}}\n\
                 \x20 for i = 1, 85 do local r = math.random(1, 64); t[i] = alphabet:sub(r, r) end\n\
                 \x20 t[86] = last[math.random(1, 4)]\n\
                 \x20 return \"authorization\", \"Bearer {signed}.\" .. table.concat(t)\n\
                 end\n"
            )
        }
        Flood::RandomKeys => "credential = function()\n\
             \x20 return \"x-api-key\", \"rk-\" .. math.random(1, 1000000000) .. \"-\" .. math.random(1, 1000000000)\n\
             end\n"
            .to_string(),
    };
    Ok(format!(
        "math.randomseed({run})\n{credential}\
         request = function()\n\
         \x20 local name, value = credential()\n\
         \x20 local headers = {{[\"x-forwarded-for\"] = \"{FLOOD_ADDRESS}\"}}\n\
         \x20 headers[name] = value\n\
         \x20 return wrk.format(nil, nil, headers, nil)\n\
         end\n\
         delay = function() return {FLOOD_DELAY_MS} end\n"
    ))
}

/// CPU placement: Envoy on one CPU, everything else on the rest.
pub struct Pinning {
    pub envoy_cpu: String,
    pub load_cpus: String,
}

impl Pinning {
    pub fn detect() -> Result<Option<Pinning>, String> {
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
    pub fn pin_pid(&self, pid: u32, cpus: &str) -> Result<(), String> {
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

/// wrk, on the load CPUs when pinned.
fn wrk_command(pinning: Option<&Pinning>) -> Command {
    match pinning {
        Some(pin) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &pin.load_cpus, WRK]);
            c
        }
        None => Command::new(WRK),
    }
}

/// The scenario's headers (`-H`), its script if it needs one and its URL.
fn add_request(
    command: &mut Command,
    scenario: &Scenario,
    port: u16,
    script: (&Path, u64),
) -> Result<(), String> {
    for (name, value) in &scenario.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let (dir, run) = script;
    if let Some(lua) = wrk_script(scenario, run) {
        let file = dir.join(format!("run-{run}.lua"));
        std::fs::write(&file, lua).map_err(|e| format!("{}: {e}", file.display()))?;
        command.arg("-s").arg(file);
    }
    command.arg(format!("http://127.0.0.1:{port}{}", scenario.path));
    Ok(())
}

/// One wrk run; `script` is the directory for its Lua script and the run's number.
pub fn run_wrk(
    scenario: &Scenario,
    port: u16,
    seconds: u32,
    pinning: Option<&Pinning>,
    script: (&Path, u64),
) -> Result<Run, String> {
    let mut command = wrk_command(pinning);
    command.args(["-t1", "-c32", &format!("-d{seconds}s"), "--latency"]);
    let (dir, run) = script;
    // The flood starts first and outlasts the measured run by a second on each side.
    let mut flood = match scenario.flood {
        None => None,
        Some(kind) => {
            let file = dir.join(format!("flood-{run}.lua"));
            std::fs::write(&file, flood_script(kind, run)?)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let mut c = wrk_command(pinning);
            c.args([
                "-t1",
                &format!("-c{FLOOD_CONNECTIONS}"),
                &format!("-d{}s", seconds + 2),
            ])
            .arg("-s")
            .arg(&file)
            .arg(format!("http://127.0.0.1:{port}{}", scenario.path))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
            let child = c.spawn().map_err(|e| format!("cannot run {WRK}: {e}"))?;
            std::thread::sleep(Duration::from_secs(1));
            Some(child)
        }
    };
    add_request(&mut command, scenario, port, script)?;
    let output = command.output();
    if let Some(child) = &mut flood {
        // wrk ends by itself (-d); waiting bounds the run.
        let _ = child.wait();
    }
    finish(scenario, output)
}

/// Exactly `requests` requests of the scenario, one after another on one kept-alive connection
/// (curl given the URL `requests` times; wrk can only run for a duration), bounded by `limit`:
/// the fixed load of the instruction counts. Fails unless every answer is a 2xx.
pub fn run_counted(
    scenario: &Scenario,
    port: u16,
    requests: u32,
    limit: Duration,
    dir: &Path,
) -> Result<u64, String> {
    if scenario.flood.is_some() || scenario.distinct_tokens {
        return Err(format!(
            "{}: BENCH_INSTRUCTIONS sends one fixed request; this row needs a script",
            scenario.name
        ));
    }
    let mut command = Command::new("curl");
    command.args(["-sS", "-w", "%{http_code}\\n"]);
    command.args(["--max-time", &limit.as_secs().max(1).to_string()]);
    for (name, value) in &scenario.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(body) = &scenario.body {
        let file = dir.join("body.json");
        std::fs::write(&file, body).map_err(|e| format!("{}: {e}", file.display()))?;
        command.args(["-H", "content-type: application/json", "--data-binary"]);
        command.arg(format!("@{}", file.display()));
    }
    let url = format!("http://127.0.0.1:{port}{}", scenario.path);
    // `-o` applies to one URL: each gets its own.
    for _ in 0..requests {
        command.args(["-o", "/dev/null", &url]);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let codes = String::from_utf8_lossy(&output.stdout);
    let answered = codes.lines().filter(|c| c.starts_with('2')).count();
    if !output.status.success() || answered != requests as usize {
        // Which answers, in order of first appearance, with how many of each (`000`: none).
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for code in codes.lines() {
            match seen.iter_mut().find(|(c, _)| *c == code) {
                Some((_, n)) => *n += 1,
                None => seen.push((code, 1)),
            }
        }
        let seen: Vec<String> = seen.iter().map(|(c, n)| format!("{c} x{n}")).collect();
        return Err(format!(
            "{}: {answered} of {requests} requests answered 2xx (statuses {}; {}; {})",
            scenario.name,
            seen.join(", "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(answered as u64)
}

/// wrk's output read, refusing a run with refusals in it (it would measure them).
fn finish(
    scenario: &Scenario,
    output: std::io::Result<std::process::Output>,
) -> Result<Run, String> {
    let output = output.map_err(|e| format!("cannot run {WRK}: {e}"))?;
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

/// Requests/s, the request count and the 50th/99th latency percentiles from `wrk --latency`
/// output (the CPU time is measured by the caller).
pub fn parse_wrk(text: &str) -> Option<Run> {
    let mut requests_per_sec = None;
    let mut requests = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v), _) => requests_per_sec = v.parse().ok(),
            (Some("50%"), Some(v), _) => p50 = parse_latency(v),
            (Some("99%"), Some(v), _) => p99 = parse_latency(v),
            (Some(n), Some("requests"), Some("in")) => requests = n.parse().ok(),
            _ => {}
        }
    }
    Some(Run {
        requests_per_sec: requests_per_sec?,
        p50: p50?,
        p99: p99?,
        requests: requests?,
        cpu_per_request: None,
    })
}

/// The CPU time every thread of a process has run so far: the sum of the first field of
/// `/proc/<pid>/task/*/schedstat` (nanoseconds on a CPU). `None` where /proc does not have it.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut nanos: u64 = 0;
    for task in tasks.flatten() {
        // A thread may exit between the listing and the read: it no longer runs.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            nanos += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(Duration::from_nanos(nanos))
}

/// wrk latencies: `812.00us`, `1.23ms`, `2.01s`, `1.50m`.
pub fn parse_latency(text: &str) -> Option<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{scenarios, NO_FILTER, NO_FILTER_POST, ORDER_JSON};

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
        assert_eq!(run.requests, 146512);
        assert_eq!(run.cpu_per_request, None);
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
    fn wrk_scripts_post_the_body_verbatim() {
        assert_eq!(lua_long_string("a"), "[[a]]");
        assert_eq!(lua_long_string("x]]y"), "[=[x]]y]=]");
        assert_eq!(lua_long_string("]]]=]"), "[==[]]]=]]==]");
        let all = scenarios().unwrap();
        let none = all.iter().find(|s| s.id == NO_FILTER).unwrap();
        assert!(wrk_script(none, 1).is_none());
        let post = all.iter().find(|s| s.id == NO_FILTER_POST).unwrap();
        let script = wrk_script(post, 1).unwrap();
        assert!(script.contains("wrk.method = \"POST\""));
        assert!(script.contains(&format!("wrk.body = [[{ORDER_JSON}]]")));
        assert!(script.contains("wrk.headers[\"content-type\"] = \"application/json\""));
        assert!(!script.contains("request"));
    }
}
