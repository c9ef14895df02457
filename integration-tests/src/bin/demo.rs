//! `make run`: the api-guard demo. Two echo upstreams (127.0.0.1:8081 `replica-1`, :8082
//! `replica-2`) in this process and Envoy with `envoy/envoy.yaml` exactly as shipped (listeners
//! :10000 and :10443, admin :9901), its log on this terminal.
//!
//! Ctrl-C (or SIGTERM) stops Envoy, then the upstreams. If Envoy exits on its own, the demo exits
//! with Envoy's exit code.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use integration_tests::process::{spawn_in_own_group, terminate_group};
use integration_tests::{client, try_envoy_bin, try_wasm_path, workspace_root, Upstream};
use tokio::signal::unix::{signal, SignalKind};

const CONFIG: &str = "envoy/envoy.yaml";
const ADMIN_PORT: u16 = 9901;
const REPLICAS: [(&str, u16); 2] = [("replica-1", 8081), ("replica-2", 8082)];
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let envoy_bin = try_envoy_bin()?;
    try_wasm_path()?;
    let root = workspace_root();
    for cert in ["target/certs/server.crt", "target/certs/server.key"] {
        if !root.join(cert).is_file() {
            return Err(format!("{cert} is missing: run `make certs`"));
        }
    }

    let mut upstreams = Vec::new();
    for (name, port) in REPLICAS {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let upstream = Upstream::bind(name, addr).map_err(|e| {
            format!("cannot start upstream {name} on {addr}: {e} (is a demo already running?)")
        })?;
        // The demo may run for hours: answer, don't record.
        upstream.set_recording(false);
        upstreams.push(upstream);
    }

    let mut command = Command::new(&envoy_bin);
    command
        .args(["-c", CONFIG, "--concurrency", "2", "--use-dynamic-base-id"])
        .current_dir(&root);
    // Own process group: Ctrl-C reaches only this process, which then stops Envoy in order.
    let mut envoy = spawn_in_own_group(command)
        .map_err(|e| format!("cannot start {}: {e}", envoy_bin.display()))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let code = runtime.block_on(supervise(&mut envoy));
    drop(upstreams);
    Ok(code)
}

/// Waits for Envoy to be ready, prints the banner, then waits for a signal or Envoy's exit.
async fn supervise(envoy: &mut Child) -> ExitCode {
    let (mut interrupt, mut terminate) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("demo: cannot handle signals: {e}");
            terminate_group(envoy, SHUTDOWN_GRACE);
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut ready = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = tick.tick() => {
                if let Ok(Some(status)) = envoy.try_wait() {
                    eprintln!("demo: Envoy exited ({status})");
                    let code = status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1);
                    return ExitCode::from(code);
                }
                if !ready {
                    ready = matches!(
                        client::admin_get(ADMIN_PORT, "/ready", Duration::from_secs(1)),
                        Ok((200, ref body)) if body.trim() == "LIVE"
                    );
                    if ready {
                        print_banner();
                    } else if started.elapsed() > STARTUP_DEADLINE {
                        eprintln!("demo: Envoy is not ready after {STARTUP_DEADLINE:?}; stopping");
                        terminate_group(envoy, SHUTDOWN_GRACE);
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    eprintln!("\ndemo: stopping Envoy and the upstreams");
    terminate_group(envoy, SHUTDOWN_GRACE);
    ExitCode::SUCCESS
}

fn print_banner() {
    println!(
        r#"
==================================================================================
 api-guard demo: Envoy on http://127.0.0.1:10000 and https://localhost:10443
 upstreams replica-1 (127.0.0.1:8081), replica-2 (127.0.0.1:8082); admin on :9901
 Policies: policies/demo.json (embedded in envoy/envoy.yaml). Try:

   # /public: GET and HEAD, no key (round-robin: see x-upstream alternate)
   curl -i http://127.0.0.1:10000/public/hello
   curl -i -X POST http://127.0.0.1:10000/public/hello           # method refused

   # /api: API key required (header or ?api_key=)
   curl -i http://127.0.0.1:10000/api/orders                     # 401
   curl -i -H 'x-api-key: demo-key-123' http://127.0.0.1:10000/api/orders
   curl -i 'http://127.0.0.1:10000/api/orders?api_key=demo-key-123'

   # /internal: loopback only (127.0.0.2 is denied)
   curl -i http://127.0.0.1:10000/internal/status
   curl -i --interface 127.0.0.2 http://127.0.0.1:10000/internal/status
   curl -i -H 'x-forwarded-for: 10.1.2.3' http://127.0.0.1:10000/internal/status   # ignored

   # TLS and HTTP/2
   curl -i --http2 --cacert target/certs/server.crt \
        -H 'x-api-key: demo-key-123' https://localhost:10443/api/orders

   # Metrics
   curl -s http://127.0.0.1:9901/stats/prometheus | grep api_guard

 Ctrl-C stops everything.
=================================================================================="#
    );
}
