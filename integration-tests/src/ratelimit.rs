//! The fleet rate limit tier as real processes: Debian's `redis-server` and the
//! `api-guard-ratelimit` service (ratelimit-service/), each on loopback, each killable and
//! restartable on the same port (Envoy's `ratelimit` cluster keeps pointing at it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{spawn_in_own_group, terminate_group};
use crate::tempdir::TempDir;
use crate::{free_port, workspace_root};

const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

/// The service binary: `$RATELIMIT_SERVICE_BIN`, else `<root>/target/debug/api-guard-ratelimit`
/// (built by `make integration` with `cargo build -p ratelimit-service`).
pub fn service_bin() -> PathBuf {
    let path = match std::env::var_os("RATELIMIT_SERVICE_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => workspace_root().join("target/debug/api-guard-ratelimit"),
    };
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p ratelimit-service` (make integration does)",
        path.display()
    );
    path
}

/// A `redis-server` on a loopback port, in memory only (no RDB/AOF: a restart starts empty).
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = TempDir::new("api-guard-redis").expect("cannot create a temporary directory");
        let mut redis = Redis {
            port: free_port(),
            child: None,
            dir,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_in_own_group(command).unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): `make setup` installs it")
        });
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers_ping() {
            assert!(
                started.elapsed() < STARTUP_DEADLINE,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the counters are gone with it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::process::signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    fn answers_ping(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `api-guard-ratelimit` with its configuration and log in a private directory.
pub struct RateLimitService {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    redis_url: String,
    child: Option<Child>,
    dir: TempDir,
}

impl RateLimitService {
    /// Starts the service with `config` (YAML) against `redis_url`, on ports it chooses.
    pub fn start(config: &str, redis_url: &str) -> RateLimitService {
        let dir = TempDir::new("api-guard-rls").expect("cannot create a temporary directory");
        std::fs::write(dir.path().join("limits.yaml"), config).expect("cannot write the config");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut service = RateLimitService {
            grpc: any,
            http: any,
            redis_url: redis_url.to_string(),
            child: None,
            dir,
        };
        service.spawn(any, any);
        service
    }

    fn spawn(&mut self, grpc: SocketAddr, http: SocketAddr) {
        let address_file = self.dir.path().join("addresses");
        let _ = std::fs::remove_file(&address_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("cannot open the service log");
        let mut command = Command::new(service_bin());
        command
            .arg("--config")
            .arg(self.dir.path().join("limits.yaml"))
            .args(["--redis", &self.redis_url])
            .args(["--grpc", &grpc.to_string(), "--http", &http.to_string()])
            .arg("--address-file")
            .arg(&address_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot duplicate the log handle"))
            .stderr(log);
        let mut child = spawn_in_own_group(command).expect("cannot start api-guard-ratelimit");
        let started = Instant::now();
        loop {
            if let Some((g, h)) = read_addresses(&address_file) {
                self.grpc = g;
                self.http = h;
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("api-guard-ratelimit exited ({status}):\n{}", self.log());
            }
            assert!(
                started.elapsed() < STARTUP_DEADLINE,
                "api-guard-ratelimit did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Replaces the configuration and restarts on the same ports.
    pub fn restart_with(&mut self, config: &str) {
        std::fs::write(self.dir.path().join("limits.yaml"), config)
            .expect("cannot write the config");
        self.restart();
    }

    /// SIGKILL (no graceful shutdown: what a crash looks like to Envoy).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::process::signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        let (grpc, http) = (self.grpc, self.http);
        self.spawn(grpc, http);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("service.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// (status, body) of a GET on the health/metrics listener.
    pub fn http_get(&self, path: &str) -> Result<(u16, String), String> {
        crate::client::admin_get(self.http.port(), path, Duration::from_secs(5))
    }

    /// The value of one `/metrics` series, e.g.
    /// `api_guard_ratelimit_descriptors_total{limit="per_client",result="ok"}`.
    pub fn metric(&self, series: &str) -> u64 {
        let (status, body) = self.http_get("/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no series {series} in:\n{body}"))
    }
}

impl Drop for RateLimitService {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate_group(&mut child, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!("----- api-guard-ratelimit log -----\n{}\n-----", self.log());
        }
    }
}

fn read_addresses(path: &Path) -> Option<(SocketAddr, SocketAddr)> {
    let text = std::fs::read_to_string(path).ok()?;
    let find = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some((find("grpc")?, find("http")?))
}
