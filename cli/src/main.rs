//! `api-guard`: the api-guard command-line tool.
//!
//! - `api-guard check <config.json>` compiles a plugin configuration with the filter's own
//!   compiler and prints every error with its JSON path.
//! - `api-guard openapi <spec>` turns an OpenAPI 3.0/3.1 document into api-guard policies and
//!   the matching Envoy routes.
//! - `api-guard audit <envoy.yaml>` checks the Envoy configuration around the filter.
//!
//! Arguments are parsed by hand (`args.rs`, shared by the subcommands): three subcommands do not
//! justify clap's build time.

#![forbid(unsafe_code)]
// Stricter than the workspace lint set, like the filter: errors are reported, never panicked.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::indexing_slicing)]

mod args;
mod audit;
mod openapi;

use std::io::{Read, Write};
use std::process::ExitCode;

use args::{Arg, Args};
use openapi::{Options, DEFAULT_CLUSTER};

const USAGE: &str = "\
api-guard: the api-guard command-line tool

Usage:
  api-guard check <config.json | ->
      Compile a plugin configuration with the filter's compiler. Prints every error with its
      JSON path; exit status 1 if there is any.

  api-guard openapi <spec.json | spec.yaml | -> [options]
      Write api-guard policies (one per path) and Envoy routes from an OpenAPI 3.0/3.1 document.
      Warnings (what could not be converted, with its JSON pointer) go to stderr.
    --policies <file | ->          where to write the policies (default: stdout)
    --routes <file | ->            where to write the Envoy routes YAML (default: not written)
    --cluster <name>               the routes' upstream cluster (default: upstream)
    --prefix-policy-name <name>    prefix every policy name with <name>-
    --base-path <path>             prefix every route path (e.g. /v2, the servers' base path)
    --max-body-bytes <n>           set payload.max_body_bytes on every policy with a body
    --no-verify                    do not compile the emitted policies with the filter's compiler

{AUDIT}
  api-guard help | --help | -h
  api-guard --version

Exit status (check, openapi): 0 success, 1 invalid input (errors printed), 2 usage error.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    match command.as_str() {
        "check" => run_check(rest),
        "openapi" => run_openapi(rest),
        "audit" => audit::run(rest),
        "help" | "--help" | "-h" => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        "--version" | "-V" => {
            println!("api-guard {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown command {other:?}")),
    }
}

fn usage() -> String {
    USAGE.replace("{AUDIT}\n", audit::USAGE)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("api-guard: {message}\n(run `api-guard help` for usage)");
    ExitCode::from(2)
}

/// Reads a file, or stdin for `-`.
fn read_input(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
    }
}

/// Writes a file, or stdout for `-`.
fn write_output(path: &str, content: &str) -> Result<(), String> {
    if path == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(content.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write stdout: {e}"))
    } else {
        std::fs::write(path, content).map_err(|e| format!("cannot write {path}: {e}"))
    }
}

fn run_check(args: &[String]) -> ExitCode {
    let [path] = args else {
        return usage_error("check takes exactly one argument: the configuration file");
    };
    if path.starts_with("--") {
        return usage_error(&format!("check: unknown option {path:?}"));
    }
    let bytes = match read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("api-guard: {e}");
            return ExitCode::from(2);
        }
    };
    match api_guard::config::compile_with_env(&bytes, &|name| std::env::var(name).ok()) {
        Ok(guard) => {
            let names: Vec<&str> = guard.policies.iter().map(|p| p.name.as_str()).collect();
            println!(
                "{path}: ok, {} polic{}{}{}",
                names.len(),
                if names.len() == 1 { "y" } else { "ies" },
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{path}: configuration rejected with {} error(s)",
                errors.0.len()
            );
            ExitCode::from(1)
        }
    }
}

/// The parsed arguments of `openapi`.
struct OpenapiArgs {
    spec: String,
    policies: String,
    routes: Option<String>,
    verify: bool,
    options: Options,
}

fn parse_openapi_args(args: &[String]) -> Result<OpenapiArgs, String> {
    let mut spec = None;
    let mut policies = None;
    let mut routes = None;
    let mut verify = true;
    let mut options = Options {
        cluster: DEFAULT_CLUSTER.to_string(),
        prefix: None,
        base_path: String::new(),
        max_body_bytes: None,
    };
    let mut it = Args::new(args);
    while let Some(arg) = it.next() {
        let name = match arg {
            Arg::Positional(arg) => {
                if spec.is_some() {
                    return Err(format!("openapi: unexpected argument {arg:?}"));
                }
                spec = Some(arg.to_string());
                continue;
            }
            Arg::Option(name) => name,
        };
        match name {
            "--policies" => policies = Some(it.value()?),
            "--routes" => routes = Some(it.value()?),
            "--cluster" => options.cluster = it.value()?,
            "--prefix-policy-name" => options.prefix = Some(it.value()?),
            "--base-path" => options.base_path = it.value()?,
            "--max-body-bytes" => options.max_body_bytes = Some(it.number()?),
            "--no-verify" if !it.has_inline_value() => verify = false,
            _ => return Err(it.unknown("openapi")),
        }
    }
    let spec = spec.ok_or("openapi needs the OpenAPI document to read")?;
    let policies = policies.unwrap_or_else(|| "-".to_string());
    if policies == "-" && routes.as_deref() == Some("-") {
        return Err("--policies and --routes cannot both go to stdout".to_string());
    }
    Ok(OpenapiArgs {
        spec,
        policies,
        routes,
        verify,
        options,
    })
}

fn run_openapi(args: &[String]) -> ExitCode {
    let args = match parse_openapi_args(args) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let bytes = match read_input(&args.spec) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("api-guard: {e}");
            return ExitCode::from(2);
        }
    };
    let output = match openapi::convert(&bytes, &args.options) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}: {e}", args.spec);
            return ExitCode::from(1);
        }
    };
    for w in &output.warnings {
        eprintln!("warning: {w}");
    }
    let policies_json = match serde_json::to_string_pretty(&output.config) {
        Ok(s) => s + "\n",
        Err(e) => {
            eprintln!("api-guard: cannot serialise the policies: {e}");
            return ExitCode::from(1);
        }
    };
    let routes_yaml = match openapi::routes_yaml(&output.routes, &args.spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("api-guard: {e}");
            return ExitCode::from(1);
        }
    };
    let mut status = ExitCode::SUCCESS;
    if args.verify {
        // Run the filter's own compiler on what we emit: a configuration Envoy would refuse is
        // an error here, not at deploy time.
        if let Err(errors) = api_guard::config::compile(policies_json.as_bytes()) {
            for e in &errors.0 {
                eprintln!("error: emitted policies: {e}");
            }
            eprintln!(
                "error: the filter's compiler rejects the emitted policies ({} error(s)); \
                 they are written anyway (use --no-verify to skip this check)",
                errors.0.len()
            );
            status = ExitCode::from(1);
        }
    }
    if let Err(e) = write_output(&args.policies, &policies_json) {
        eprintln!("api-guard: {e}");
        return ExitCode::from(1);
    }
    if let Some(routes) = &args.routes {
        if let Err(e) = write_output(routes, &routes_yaml) {
            eprintln!("api-guard: {e}");
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "api-guard: {} polic{} ({}), {} route(s) ({}), {} warning(s)",
        output.routes.len(),
        if output.routes.len() == 1 { "y" } else { "ies" },
        if args.policies == "-" {
            "stdout"
        } else {
            &args.policies
        },
        output.routes.len(),
        args.routes.as_deref().map_or("not written", |r| {
            if r == "-" {
                "stdout"
            } else {
                r
            }
        }),
        output.warnings.len()
    );
    status
}
