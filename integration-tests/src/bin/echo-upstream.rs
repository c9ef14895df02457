//! Standalone echo upstream (docker-compose replicas, manual experiments):
//!
//!     echo-upstream --listen 127.0.0.1:8081 --name replica-1
//!
//! Runs until SIGINT or SIGTERM. Requests are answered but not recorded (no memory growth).

use std::net::SocketAddr;
use std::process::ExitCode;

use integration_tests::Upstream;

const USAGE: &str = "usage: echo-upstream --listen ADDR:PORT --name NAME";

struct Args {
    listen: SocketAddr,
    name: String,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut name) = (None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--name" => name = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        name: name.ok_or("--name is required")?,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let upstream = match Upstream::bind(&args.name, args.listen) {
        Ok(upstream) => upstream,
        Err(e) => {
            eprintln!("echo-upstream: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    upstream.set_recording(false);
    println!(
        "echo-upstream {} listening on {}",
        upstream.name, upstream.addr
    );
    if let Err(e) = wait_for_termination() {
        eprintln!("echo-upstream: {e}");
        return ExitCode::FAILURE;
    }
    drop(upstream);
    ExitCode::SUCCESS
}

/// Blocks until SIGINT or SIGTERM (as PID 1 in a container, SIGTERM is ignored unless handled).
fn wait_for_termination() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    })
}
