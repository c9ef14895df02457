//! Instructions per request inside Envoy (`BENCH_INSTRUCTIONS`): every Envoy runs under
//! valgrind's callgrind, a fixed number of requests is sent on one connection, and the
//! instructions Envoy executed for them (every thread, the module's JIT code included) are read
//! from a callgrind dump. Unlike time, an instruction count hardly depends on what else runs on
//! the machine, so rows a few percent apart can be told apart on a busy shared VM; what it does
//! not see is what an instruction costs (cache misses, a larger module's code), which the timed
//! rows of `make bench` still measure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::scenario::Scenario;

/// How long Envoy may take to become ready under callgrind (V8 compiles the module inside the
/// instrumented process; instrumentation is off until [`instrument`], so this is mostly V8).
pub const STARTUP: Duration = Duration::from_secs(600);

/// The valgrind command line Envoy runs under; dumps go to `dir/cg.<pid>.<n>`. Instrumentation
/// starts off (startup is not measured, and is faster uninstrumented); strings are written out
/// in full in every dump so each dump file can be read on its own.
pub fn wrapper(dir: &Path) -> Vec<String> {
    vec![
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        // V8 writes and rewrites the module's machine code: valgrind must notice.
        "--smc-check=all-non-file".to_string(),
        "--instr-atstart=no".to_string(),
        "--compress-strings=no".to_string(),
        "--compress-pos=no".to_string(),
        format!("--callgrind-out-file={}/cg.%p", dir.display()),
    ]
}

/// Whether valgrind and callgrind_control can be run.
pub fn available() -> Result<(), String> {
    for tool in ["valgrind", "callgrind_control"] {
        Command::new(tool).arg("--version").output().map_err(|e| {
            format!("cannot run {tool} ({e}): install valgrind (apt-get install valgrind)")
        })?;
    }
    Ok(())
}

fn control(pid: u32, args: &[&str]) -> Result<(), String> {
    let output = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {} {pid} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Turns instrumentation on in the Envoy `pid` (after startup and the access checks).
pub fn instrument(pid: u32) -> Result<(), String> {
    control(pid, &["--instr=on"])
}

/// Zeroes the counters of `pid`: what follows is what the next [`dump`] reads.
pub fn zero(pid: u32) -> Result<(), String> {
    control(pid, &["--zero"])
}

/// Dumps the counters of `pid` into `dir` and reads the dump: it is the newest `cg.<pid>.<n>`
/// (waited for: valgrind writes it when the process next runs).
pub fn dump(pid: u32, dir: &Path) -> Result<Count, String> {
    let before = dumps(pid, dir).len();
    control(pid, &["--dump"])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let files = dumps(pid, dir);
        if files.len() > before {
            if let Some(path) = files.last() {
                // Written in one go, but give a partly written file a moment to finish.
                std::thread::sleep(Duration::from_millis(300));
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                return parse(&text).map_err(|e| format!("{}: {e}", path.display()));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no callgrind dump of {pid} in {}", dir.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The numbered dumps of `pid` in `dir`, oldest first.
fn dumps(pid: u32, dir: &Path) -> Vec<PathBuf> {
    let prefix = format!("cg.{pid}.");
    let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, entry.path()))
        })
        .collect();
    numbered.sort();
    numbered.into_iter().map(|(_, path)| path).collect()
}

/// The instructions of one dump: in total, and by the object they ran in (the Envoy binary with
/// V8 inside it, a shared library, or `JIT` for code in no file: the module as V8 compiled it,
/// V8's wasm/host call stubs, and some code Envoy runs without a filter too).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Count {
    pub total: u64,
    pub by_object: BTreeMap<String, u64>,
}

impl Count {
    /// The instructions run in code V8 generated.
    pub fn jit(&self) -> u64 {
        self.by_object.get(JIT).copied().unwrap_or(0)
    }

    /// This count less `idle` times `factor`, object by object and never below zero: a window's
    /// instructions without what the process runs on its own (timers) in as long, `idle` being
    /// counted over a window `1 / factor` as long with no request.
    pub fn less_idle(&self, idle: &Count, factor: f64) -> Count {
        let less =
            |value: u64, idle: u64| value.saturating_sub((idle as f64 * factor).round() as u64);
        let by_object: BTreeMap<String, u64> = self
            .by_object
            .iter()
            .map(|(object, &value)| {
                let idle = idle.by_object.get(object).copied().unwrap_or(0);
                (object.clone(), less(value, idle))
            })
            .collect();
        Count {
            total: by_object.values().sum(),
            by_object,
        }
    }
}

/// One counted window of a row: the requests that completed in it, their instructions with the
/// idle process's share taken out ([`Count::less_idle`]), and that idle rate (instructions a
/// second with no request).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub requests: u64,
    pub count: Count,
    pub idle_per_second: f64,
}

pub const JIT: &str = "JIT";

/// Reads a callgrind dump (the `Ir` event; any number of position columns; names in full or
/// compressed as `(n) name`). A cost line right after `calls=` is the call's inclusive cost and
/// is not the caller's own: it is skipped, so the objects' sums add up to the total.
pub fn parse(text: &str) -> Result<Count, String> {
    let mut positions = 1usize;
    let mut ir_column: Option<usize> = None;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut object = String::new();
    let mut after_call = false;
    let mut count = Count::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("positions:") {
            positions = rest.split_whitespace().count();
        } else if let Some(rest) = line.strip_prefix("events:") {
            ir_column = rest.split_whitespace().position(|e| e == "Ir");
        } else if let Some(rest) = line.strip_prefix("ob=") {
            object = object_name(rest, &mut names);
        } else if line.starts_with("calls=") {
            after_call = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '*')) {
            if std::mem::take(&mut after_call) {
                continue;
            }
            let column = ir_column.ok_or("a cost line before the `events:` line")?;
            let field = line.split_whitespace().nth(positions + column);
            // A cost line may leave out trailing zero events.
            let ir: u64 = match field {
                None => 0,
                Some(f) => f.parse().map_err(|_| format!("bad cost line {line:?}"))?,
            };
            count.total += ir;
            // Looked up first: a dump has a cost line per function and line, few objects.
            match count.by_object.get_mut(&object) {
                Some(sum) => *sum += ir,
                None => {
                    count.by_object.insert(object.clone(), ir);
                }
            }
        }
    }
    if ir_column.is_none() {
        return Err("no `events:` line with Ir".to_string());
    }
    Ok(count)
}

/// `ob=` names: `(n) name` defines `(n)`, `(n)` refers to it; valgrind writes `???` for code
/// outside any file, which is V8's generated code here.
fn object_name(value: &str, names: &mut BTreeMap<String, String>) -> String {
    let value = value.trim();
    let name = match value.strip_prefix('(').and_then(|v| v.split_once(')')) {
        Some((id, rest)) => {
            let rest = rest.trim();
            if rest.is_empty() {
                names.get(id).cloned().unwrap_or_else(|| format!("({id})"))
            } else {
                names.insert(id.to_string(), rest.to_string());
                rest.to_string()
            }
        }
        None => value.to_string(),
    };
    if name == "???" || name.is_empty() {
        JIT.to_string()
    } else {
        name
    }
}

/// The table of `BENCH_INSTRUCTIONS`: per row, the median over the rounds of the instructions
/// per request, the share run in generated code, and the ratios to the row's no-filter and
/// floor rows (fewer instructions is better, so a ratio is the other row's count over this one's,
/// read like throughput).
pub fn table(scenarios: &[Scenario], results: &[Vec<Sample>], requests: u32) -> String {
    let counted = |runs: &[Sample]| -> Vec<Sample> {
        runs.iter().filter(|s| s.requests > 0).cloned().collect()
    };
    let per_request = |runs: &[Sample], key: &dyn Fn(&Count) -> u64| -> Option<f64> {
        let values: Vec<f64> = counted(runs)
            .iter()
            .map(|s| key(&s.count) as f64 / s.requests as f64)
            .collect();
        (!values.is_empty()).then(|| crate::report::median(&values, |v| *v))
    };
    let totals: Vec<Option<f64>> = results
        .iter()
        .map(|r| per_request(r, &|c| c.total))
        .collect();
    let of = |id: &str| {
        crate::report::row_of(scenarios, &totals, id)
            .copied()
            .flatten()
    };
    let mut out = format!(
        "Envoy --concurrency 1 under callgrind; per row and round {requests} requests on one connection (curl)\n\
         after as many unmeasured, counted in windows of a few requests; instructions of the Envoy process\n\
         (every thread) per request, median of the windows of every round (\"windows\": lowest-highest, how many);\n\
         each window is net of the idle Envoy's instructions (timers) over as long a time, from the median of\n\
         one-second windows with no request before it (\"idle / s\");\n\
         \"outside files\": run in anonymous memory, mostly the module as V8 compiled it (no filter has some too:\n\
         compare rows);\n\
         \"vs no filter\" and \"vs floor\": that row's instructions over this row's (read like throughput);\n\
         \"over floor\": this row's instructions per request minus its floor row's\n\n\
         | config | instructions / request | windows | outside files | vs no filter | vs floor | over floor | floor | idle / s |\n\
         |---|---:|---|---:|---:|---:|---:|---|---:|\n"
    );
    for ((scenario, runs), total) in scenarios.iter().zip(results).zip(&totals) {
        let Some(total) = *total else { continue };
        let each: Vec<f64> = counted(runs)
            .iter()
            .map(|s| s.count.total as f64 / s.requests as f64)
            .collect();
        let low = each.iter().copied().fold(f64::INFINITY, f64::min);
        let high = each.iter().copied().fold(0.0, f64::max);
        let windows = format!("{low:.0}-{high:.0} ({})", each.len());
        let idle = crate::report::median_of(&counted(runs), |s| s.idle_per_second);
        let jit = per_request(runs, &|c| c.jit()).unwrap_or(0.0);
        let ratio = |other: Option<f64>| match other {
            Some(o) if total > 0.0 => format!("{:.3}", o / total),
            _ => "-".to_string(),
        };
        let floor = scenario.floor.as_deref().and_then(of);
        let over = floor.map_or("-".to_string(), |f| format!("{:+.0}", total - f));
        out.push_str(&format!(
            "| {} | {:.0} | {} | {:.0} | {} | {} | {} | {} | {:.0} |\n",
            scenario.name,
            total,
            windows,
            jit,
            ratio(of(&scenario.baseline)),
            ratio(floor),
            over,
            scenario.floor.as_deref().unwrap_or("-"),
            idle,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str =
        "version: 1\ncreator: callgrind-3.19.0\npositions: line\nevents: Ir\nsummary: 260\n\
        ob=/usr/bin/envoy\nfn=0x1000\n0 100\n+2 20\ncob=???\ncfn=0x2000\ncalls=1 0\n0 90\n\
        ob=???\nfn=0x2000\n0 90\n\
        ob=(7) /usr/lib/libc.so.6\nfn=memcpy\n0 30\nob=(7)\nfn=memset\n* 20\ntotals: 260\n";

    #[test]
    fn parses_own_costs_by_object_and_skips_inclusive_call_costs() {
        let count = parse(DUMP).unwrap();
        assert_eq!(count.total, 260);
        assert_eq!(count.by_object.get("/usr/bin/envoy"), Some(&120));
        assert_eq!(count.jit(), 90);
        // `(7)` refers back to the name it defined.
        assert_eq!(count.by_object.get("/usr/lib/libc.so.6"), Some(&50));
    }

    #[test]
    fn reads_the_ir_column_among_several_events_and_positions() {
        let text = "positions: instr line\nevents: Dr Ir\nob=a\nfn=f\n0x10 3 7 11\n0x11 4 5\n";
        let count = parse(text).unwrap();
        // Ir is the second event: 11, then left out (zero) on the second line.
        assert_eq!(count.total, 11);
    }

    #[test]
    fn refuses_a_dump_without_the_ir_event() {
        assert!(parse("positions: line\nevents: Dr\nob=a\n0 5\n").is_err());
        assert!(parse("ob=a\n0 5\n").is_err());
    }

    #[test]
    fn takes_the_scaled_idle_count_out_object_by_object_and_never_below_zero() {
        let count = parse(DUMP).unwrap();
        let mut idle = Count::default();
        idle.by_object.insert("/usr/bin/envoy".to_string(), 40);
        idle.by_object.insert(JIT.to_string(), 100);
        idle.by_object.insert("/only/idle".to_string(), 7);
        idle.total = 147;
        // The counted window was twice as long as the idle one.
        let net = count.less_idle(&idle, 2.0);
        assert_eq!(net.by_object.get("/usr/bin/envoy"), Some(&40));
        assert_eq!(net.jit(), 0, "more idle than counted is zero, not a wrap");
        assert_eq!(net.by_object.get("/usr/lib/libc.so.6"), Some(&50));
        assert_eq!(net.by_object.get("/only/idle"), None);
        assert_eq!(net.total, 90);
        // Without an idle window nothing changes.
        assert_eq!(count.less_idle(&Count::default(), 1.0), count);
    }
}
