//! `api-guard-ratelimit`: Envoy's rate limit service (RLS v3, gRPC) on Limitador + Redis.
//!
//! ```text
//! api-guard-ratelimit --config limits.yaml [--redis redis://127.0.0.1:6379]
//!     [--grpc 127.0.0.1:8089] [--http 127.0.0.1:8090] [--address-file PATH]
//! ```
//!
//! `--address-file` receives `grpc=<addr>` and `http=<addr>` lines once both listeners are
//! bound (give port 0 to let the system choose). Exit codes: 0 after SIGTERM/SIGINT, 1 when
//! it cannot start (Redis unreachable for 10 s, a port taken), 2 for a bad command line or
//! configuration (every problem is printed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use limitador::storage::redis::AsyncRedisStorage;
use limitador::AsyncRateLimiter;
use ratelimit_service::config::Config;
use ratelimit_service::http::{self, Admin};
use ratelimit_service::metrics::Metrics;
use ratelimit_service::service::RateLimiter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::net::TcpListener;

/// How long start-up waits for Redis before giving up.
const REDIS_STARTUP_WAIT: Duration = Duration::from_secs(10);

struct Args {
    config: PathBuf,
    redis: String,
    grpc: SocketAddr,
    http: SocketAddr,
    address_file: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut config = None;
    let mut redis = "redis://127.0.0.1:6379".to_string();
    let mut grpc = SocketAddr::from(([127, 0, 0, 1], 8089));
    let mut http = SocketAddr::from(([127, 0, 0, 1], 8090));
    let mut address_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--config" => config = Some(PathBuf::from(value()?)),
            "--redis" => redis = value()?,
            "--grpc" => grpc = value()?.parse().map_err(|_| "--grpc: not an IP:port")?,
            "--http" => http = value()?.parse().map_err(|_| "--http: not an IP:port")?,
            "--address-file" => address_file = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        config: config.ok_or("--config FILE is required")?,
        redis,
        grpc,
        http,
        address_file,
    })
}

/// Connects to Redis, retrying until [`REDIS_STARTUP_WAIT`]; the manager reconnects by itself
/// afterwards (every failed call meanwhile is an error to Envoy).
async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|_| "--redis: not a redis:// URL".to_string())?;
    let settings = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_millis(500))
        .set_response_timeout(timeout)
        .set_number_of_retries(2)
        .set_max_delay(500);
    let started = Instant::now();
    loop {
        match ConnectionManager::new_with_config(client.clone(), settings.clone()).await {
            Ok(manager) => return Ok(manager),
            Err(e) if started.elapsed() > REDIS_STARTUP_WAIT => {
                return Err(format!("redis at {url}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn run(args: Args) -> Result<(), (u8, String)> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| (2, format!("{}: {e}", args.config.display())))?;
    let config = Config::from_yaml(&text).map_err(|problems| {
        (
            2,
            format!("{}:\n  {}", args.config.display(), problems.join("\n  ")),
        )
    })?;
    let redis = connect(&args.redis, config.storage_timeout())
        .await
        .map_err(|e| (1, e))?;
    let storage = AsyncRedisStorage::new_with_conn_manager(redis.clone())
        .await
        .map_err(|e| (1, format!("redis: {e}")))?;
    let metrics = Arc::new(Metrics::new(
        config.limits.iter().map(|l| l.name.clone()).collect(),
    ));
    let engine = AsyncRateLimiter::new_with_storage(Box::new(storage));
    let service = RateLimiter::new(&config, engine, metrics.clone()).map_err(|e| (2, e))?;

    let grpc = TcpListener::bind(args.grpc)
        .await
        .map_err(|e| (1, format!("--grpc {}: {e}", args.grpc)))?;
    let admin = TcpListener::bind(args.http)
        .await
        .map_err(|e| (1, format!("--http {}: {e}", args.http)))?;
    let (grpc_addr, http_addr) = (
        grpc.local_addr().map_err(|e| (1, e.to_string()))?,
        admin.local_addr().map_err(|e| (1, e.to_string()))?,
    );
    if let Some(path) = &args.address_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("grpc={grpc_addr}\nhttp={http_addr}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| (1, format!("{}: {e}", path.display())))?;
    }
    eprintln!(
        "api-guard-ratelimit: domain {:?}, {} limits, admission {:?}; gRPC on {grpc_addr}, health and metrics on http://{http_addr}",
        config.domain,
        config.limits.len(),
        config.admission
    );
    let admin_task = tokio::spawn(http::serve(
        admin,
        Admin {
            metrics,
            redis,
            timeout: config.storage_timeout(),
        },
    ));
    // One service: served without tonic's router (which would build axum).
    let served = tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(
            RateLimitServiceServer::new(service),
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            shutdown(),
        )
        .await;
    admin_task.abort();
    served.map_err(|e| (1, format!("gRPC server: {e}")))
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("api-guard-ratelimit: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("api-guard-ratelimit: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("api-guard-ratelimit: {message}");
            ExitCode::from(code)
        }
    }
}
