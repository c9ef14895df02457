//! `api-guard audit`: the Envoy configuration around api-guard, checked for the mistakes that
//! turn a correct policy into an open door (docs/audit.md lists every check).

mod checks;
mod envoy;
mod waiver;

use std::process::ExitCode;

use crate::args::Arg;
use checks::{Finding, Settings, Severity, CHECKS};
use envoy::Source;

pub const USAGE: &str = "\
  api-guard audit <envoy.yaml | lds.yaml | rds.yaml | ->... [options]
      Audit an Envoy configuration (bootstrap, or LDS/RDS/CDS resources, YAML or JSON; several
      files are read as one configuration) and the api-guard plugin configuration in it. Each
      finding has an id, a severity, the YAML path and a one-line fix.
    --policy <config.json>          audit this plugin configuration instead of the embedded one
    --format text|json              output format (default: text)
    --fail-on error|warning|info    lowest severity that fails (default: warning)
    --waivers <file>                waivers, one `<ID> <PATH> <REASON>` per line
    --rate-limit-budget-mib <n>     shared-data memory rate-limit slots may take (default 64)
    --list                          print every check id and exit
      Exit status: 0 nothing at or above --fail-on (waived findings do not count), 3 the worst
      is info, 4 warning, 5 error; 2 usage error or unreadable input.
";

const DEFAULT_BUDGET_MIB: u64 = 64;

struct Args {
    files: Vec<String>,
    policy: Option<String>,
    json: bool,
    fail_on: Severity,
    waivers: Option<String>,
    budget_mib: u64,
    list: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        files: Vec::new(),
        policy: None,
        json: false,
        fail_on: Severity::Warning,
        waivers: None,
        budget_mib: DEFAULT_BUDGET_MIB,
        list: false,
    };
    let mut it = crate::args::Args::new(args);
    while let Some(arg) = it.next() {
        let name = match arg {
            Arg::Positional(file) => {
                a.files.push(file.to_string());
                continue;
            }
            Arg::Option(name) => name,
        };
        match name {
            "--policy" => a.policy = Some(it.value()?),
            "--waivers" => a.waivers = Some(it.value()?),
            "--format" => match it.value()?.as_str() {
                "text" => a.json = false,
                "json" => a.json = true,
                other => return Err(format!("--format: expected text or json, not {other:?}")),
            },
            "--fail-on" => {
                let v = it.value()?;
                a.fail_on = Severity::parse(&v).ok_or(format!(
                    "--fail-on: expected error, warning or info, not {v:?}"
                ))?;
            }
            "--rate-limit-budget-mib" => a.budget_mib = it.number()?,
            "--list" if !it.has_inline_value() => a.list = true,
            _ => return Err(it.unknown("audit")),
        }
    }
    if a.files.is_empty() && !a.list {
        return Err("audit needs at least one Envoy configuration file".to_string());
    }
    Ok(a)
}

pub fn run(args: &[String]) -> ExitCode {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => return crate::usage_error(&e),
    };
    if args.list {
        for c in CHECKS {
            println!("{} {:<36} {}", c.id, c.name, c.about);
        }
        return ExitCode::SUCCESS;
    }
    match audit_files(&args) {
        Ok(findings) => report(&args, &findings),
        Err(e) => {
            eprintln!("api-guard: {e}");
            ExitCode::from(2)
        }
    }
}

fn audit_files(args: &Args) -> Result<Vec<Finding>, String> {
    let mut sources = Vec::new();
    let mut waivers = Vec::new();
    for file in &args.files {
        let bytes = crate::read_input(file)?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8"))?;
        // serde_yaml reads JSON too, and resolves anchors and aliases.
        let root: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("{file}: not YAML or JSON: {e}"))?;
        waivers.extend(waiver::inline(file, &text)?);
        sources.push(Source {
            label: file.clone(),
            root,
        });
    }
    if let Some(w) = &args.waivers {
        let bytes = crate::read_input(w)?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{w}: not UTF-8"))?;
        waivers.extend(waiver::file(w, &text)?);
    }
    let policy = match &args.policy {
        Some(p) => Some((p.as_str(), crate::read_input(p)?)),
        None => None,
    };
    let env = |name: &str| std::env::var(name).ok();
    let settings = Settings {
        policy: policy.as_ref().map(|(l, b)| (*l, b.as_slice())),
        rate_limit_budget_bytes: args.budget_mib.saturating_mul(1 << 20),
        env: &env,
    };
    let mut findings = checks::audit(&sources, &settings);
    waiver::apply(&mut findings, &waivers);
    findings.sort_by(|a, b| {
        (
            a.waived.is_some(),
            std::cmp::Reverse(a.severity),
            a.id,
            &a.file,
            &a.path,
        )
            .cmp(&(
                b.waived.is_some(),
                std::cmp::Reverse(b.severity),
                b.id,
                &b.file,
                &b.path,
            ))
    });
    Ok(findings)
}

/// The exit status: the worst finding that is not waived, if it is at or above `fail_on`.
fn status(findings: &[Finding], fail_on: Severity) -> u8 {
    let worst = findings
        .iter()
        .filter(|f| f.waived.is_none())
        .map(|f| f.severity)
        .max();
    match worst {
        Some(s) if s >= fail_on => match s {
            Severity::Info => 3,
            Severity::Warning => 4,
            Severity::Error => 5,
        },
        _ => 0,
    }
}

fn report(args: &Args, findings: &[Finding]) -> ExitCode {
    let code = status(findings, args.fail_on);
    let count = |s: Severity| {
        findings
            .iter()
            .filter(|f| f.waived.is_none() && f.severity == s)
            .count()
    };
    let waived = findings.iter().filter(|f| f.waived.is_some()).count();
    if args.json {
        let list: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "id": f.id,
                    "name": f.name(),
                    "severity": f.severity.as_str(),
                    "file": f.file,
                    "path": f.path,
                    "message": f.message,
                    "fix": f.fix,
                    "waived": f.waived,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "files": args.files,
            "findings": list,
            "counts": {
                "error": count(Severity::Error),
                "warning": count(Severity::Warning),
                "info": count(Severity::Info),
                "waived": waived,
            },
            "exit_status": code,
        });
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("api-guard: cannot serialise the report: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        for f in findings {
            let label = match &f.waived {
                Some(_) => "waived".to_string(),
                None => f.severity.as_str().to_string(),
            };
            let path = if f.path.is_empty() {
                "(the whole file)"
            } else {
                &f.path
            };
            println!("{label:<7} {} {} {}: {path}", f.id, f.name(), f.file);
            println!("        {}", f.message);
            match &f.waived {
                Some(reason) => println!("        waived: {reason}"),
                None => println!("        fix: {}", f.fix),
            }
        }
        println!(
            "{}: {} error(s), {} warning(s), {} info, {} waived",
            args.files.join(" "),
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info),
            waived
        );
    }
    ExitCode::from(code)
}
