//! Rate limits through the real Envoy (`--concurrency 2`): exact across both workers under
//! concurrent clients, refill, per-client keys, 429 headers, shadow mode, the key-table bound.
//!
//! Load comes from a few threads, each with its own keep-alive connection (a minimal HTTP/1.1
//! client below), so requests land on both workers and race on the same shared-data keys.
//! Every run is bounded in requests and time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use integration_tests::{key_digest, Envoy, EnvoyConfig, Upstream};
use serde_json::{json, Value};

fn config(policies: Value) -> String {
    json!({
        "clients": {
            "acme": {"keys": [{"id": "acme-1", "sha256": key_digest("acme-key")}]},
            "globex": {"keys": [{"id": "globex-1", "sha256": key_digest("globex-key")}]}
        },
        "policies": policies
    })
    .to_string()
}

struct Setup {
    envoy: Envoy,
    _up: Upstream,
}

fn start(policies: Value) -> Setup {
    let up = Upstream::start("rl");
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config(policies))
            .with_upstreams(&[up.addr]),
    );
    Setup { envoy, _up: up }
}

/// A keep-alive HTTP/1.1 connection: just enough client for load with exact counting.
struct Conn {
    port: u16,
    reader: Option<BufReader<TcpStream>>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn new(port: u16) -> Conn {
        Conn { port, reader: None }
    }

    fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        // One reconnect if Envoy closed an idle connection.
        match self.try_get(path, headers) {
            Ok(r) => r,
            Err(_) => {
                self.reader = None;
                self.try_get(path, headers)
                    .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            }
        }
    }

    fn try_get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
        if self.reader.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.set_nodelay(true)?;
            self.reader = Some(BufReader::new(s));
        }
        let reader = self.reader.as_mut().expect("connected above");
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        reader.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        if headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"))
        {
            self.reader = None;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// `threads` clients, each sending `per_thread` requests on its own connection; returns the
/// statuses of every response.
fn hammer(
    port: u16,
    threads: usize,
    per_thread: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> Vec<u16> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut c = Conn::new(port);
                    (0..per_thread)
                        .map(|_| c.get(path, headers).status)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    })
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// The value of the Prometheus sample `name` whose labels include every `labels` pair.
fn prom(envoy: &Envoy, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    let text = envoy.admin_get("/stats/prometheus");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Downstream connections accepted by each worker, over every listener (the test bootstrap
/// binds port 0, so the listener stat names do not carry the real port).
fn worker_connections(envoy: &Envoy) -> Vec<u64> {
    let stats = envoy.admin_get("/stats");
    let mut per_worker = std::collections::BTreeMap::<String, u64>::new();
    for line in stats.lines().filter(|l| l.starts_with("listener.")) {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        let Some(prefix) = name.strip_suffix(".downstream_cx_total") else {
            continue;
        };
        let Some((_, worker)) = prefix.rsplit_once(".worker_") else {
            continue;
        };
        *per_worker.entry(worker.to_string()).or_default() += value.trim().parse().unwrap_or(0);
    }
    per_worker.into_values().collect()
}

#[test]
fn no_refill_admits_exactly_the_burst_across_workers_per_client() {
    let s = start(json!({
        "api": {
            "api_key": {},
            "rate_limits": [{"name": "daily", "rate": 1, "per": "day", "burst": 50, "key": "client"}]
        }
    }));
    let port = s.envoy.http_port;
    let started = Instant::now();
    // 8 concurrent connections, 320 requests for one client: exactly 50 pass.
    let statuses = hammer(port, 8, 40, "/api/x", &[("x-api-key", "acme-key")]);
    assert_eq!(statuses.len(), 320);
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 270);
    // Another client is unaffected by acme's exhaustion, and exact too.
    let statuses = hammer(port, 4, 20, "/api/x", &[("x-api-key", "globex-key")]);
    assert_eq!(count(&statuses, 200), 50);
    assert_eq!(count(&statuses, 429), 30);
    assert!(started.elapsed() < Duration::from_secs(20));
    // Both workers served connections: the buckets were shared across threads.
    let per_worker = worker_connections(&s.envoy);
    assert!(
        per_worker.len() == 2 && per_worker.iter().all(|n| *n > 0),
        "connections per worker: {per_worker:?}"
    );
    let labels = [("policy", "api"), ("limit", "daily")];
    assert_eq!(
        prom(&s.envoy, "api_guard_rate_limit_allowed", &labels),
        Some(100)
    );
    assert_eq!(
        prom(&s.envoy, "api_guard_rate_limit_limited", &labels),
        Some(300)
    );
    assert_eq!(
        prom(
            &s.envoy,
            "api_guard_rate_limit_cas_retries_exhausted",
            &labels
        ),
        Some(0)
    );
    assert_eq!(
        prom(
            &s.envoy,
            "api_guard_policy_denied",
            &[("policy", "api"), ("reason", "rate_limited")]
        ),
        Some(300)
    );
    eprintln!(
        "exact: connections per worker {per_worker:?}, CAS re-reads forced by the other worker: {:?}",
        prom(&s.envoy, "api_guard_rate_limit_cas_retries", &labels)
    );
}

#[test]
fn refill_is_within_one_step() {
    // 10 per second (one step = 100 ms), burst 5, one bucket for the policy.
    let s = start(json!({
        "public": {
            "rate_limits": [{"name": "per_second", "rate": 10, "per": "second", "burst": 5, "key": "policy"}]
        }
    }));
    let port = s.envoy.http_port;
    let run_for = Duration::from_millis(2500);
    let started = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || {
                    let mut c = Conn::new(port);
                    let mut out = Vec::new();
                    // Bounded: at most 400 requests per thread.
                    while started.elapsed() < run_for && out.len() < 400 {
                        out.push(c.get("/public/x", &[]).status);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = count(&statuses, 200) as f64;
    assert_eq!(
        count(&statuses, 200) + count(&statuses, 429),
        statuses.len()
    );
    // GCRA: never more than burst + elapsed / T, and with clients always waiting, no less
    // than that minus one step.
    let expected = 5.0 + elapsed * 10.0;
    eprintln!(
        "refill: {} requests in {elapsed:.3}s, admitted {admitted}, bound {expected:.2}",
        statuses.len()
    );
    assert!(admitted <= expected.floor(), "{admitted} > {expected}");
    assert!(
        admitted >= expected.floor() - 1.0,
        "{admitted} < {expected} - 1"
    );
}

#[test]
fn rate_limited_answer_has_headers_and_body() {
    let s = start(json!({
        "api": {
            "api_key": {},
            "rate_limits": [
                {"name": "per_minute", "rate": 1, "per": "minute", "burst": 2, "key": "client"},
                {"name": "per_day", "rate": 1000, "per": "day", "key": "client"}
            ]
        }
    }));
    for _ in 0..2 {
        let r = s
            .envoy
            .request("GET", "/api/x")
            .header("x-api-key", "acme-key")
            .send();
        assert_eq!(r.status, 200);
    }
    let r = s
        .envoy
        .request("GET", "/api/x")
        .header("x-api-key", "acme-key")
        .send();
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"per_minute\";q=2;w=120")
    );
    assert_eq!(r.header("ratelimit"), Some("\"per_minute\";r=0;t=120"));
    let body = r.json();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["request_id"].as_str().is_some());
    // Same over HTTP/2 (the header names go out lowercase either way).
    let r = s
        .envoy
        .request("GET", "/api/x")
        .header("x-api-key", "acme-key")
        .http2()
        .send();
    assert_eq!((r.status, r.header("retry-after")), (429, Some("60")));
    // A denied request did not consume the second limit.
    let labels = [("policy", "api"), ("limit", "per_day")];
    assert_eq!(
        prom(&s.envoy, "api_guard_rate_limit_allowed", &labels),
        Some(2)
    );
}

#[test]
fn shadow_mode_passes_everything_while_counting() {
    let s = start(json!({
        "public": {
            "rate_limits": [{"name": "trial", "rate": 1, "per": "day", "burst": 3, "key": "ip", "mode": "shadow"}]
        }
    }));
    let statuses = hammer(s.envoy.http_port, 4, 10, "/public/x", &[]);
    assert_eq!(count(&statuses, 200), 40);
    let labels = [("policy", "public"), ("limit", "trial")];
    assert_eq!(
        prom(&s.envoy, "api_guard_rate_limit_allowed", &labels),
        Some(3)
    );
    assert_eq!(
        prom(&s.envoy, "api_guard_rate_limit_shadow_limited", &labels),
        Some(37)
    );
    assert_eq!(
        prom(&s.envoy, "api_guard_rate_limit_limited", &labels),
        Some(0)
    );
    assert!(s
        .envoy
        .log()
        .contains("shadow_limited policy=public limit=trial"));
}

#[test]
fn key_table_bound_holds_under_many_distinct_keys() {
    // 8 slots, burst 2, no refill, 50 distinct header values x 3 requests.
    let s = start(json!({
        "public": {
            "rate_limits": [{"name": "tenant", "rate": 1, "per": "day", "burst": 2,
                             "key": {"header": "x-tenant"}, "max_keys": 8}]
        }
    }));
    let mut c = Conn::new(s.envoy.http_port);
    let mut admitted = 0;
    let mut first = Vec::new();
    for i in 0..50 {
        let tenant = format!("tenant-{i}");
        let n = (0..3)
            .filter(|_| c.get("/public/x", &[("x-tenant", &tenant)]).status == 200)
            .count();
        first.push(n);
        admitted += n;
    }
    // The first tenant found an empty table: its own bucket, exactly the burst.
    assert_eq!(first[0], 2);
    // No tenant ever passes its own limit, however often it is pushed out of a slot (its debt
    // moves to an overflow bucket and comes back with it). What a crowd of exhausted tenants
    // leaves in the 8 overflow buckets stops newcomers that hash there: the table stays
    // bounded and keeps limiting.
    assert!(first.iter().all(|n| *n <= 2), "{first:?}");
    // Tenants that came after an exhausted tenant was moved into their overflow bucket start
    // from its debt: far fewer than 50 x 2 are admitted.
    assert!(admitted < 50 * 2, "admitted {admitted}: {first:?}");
    assert!(admitted >= 2 + 2, "admitted {admitted}: {first:?}");
    let labels = [("policy", "public"), ("limit", "tenant")];
    let overflow = prom(&s.envoy, "api_guard_rate_limit_overflow", &labels).unwrap();
    assert!(overflow > 0);
    // A newcomer inherits the debt of its overflow bucket (every one holds an exhausted
    // tenant's by now).
    let r = c.get("/public/x", &[("x-tenant", "tenant-new")]);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert!(!r.body.is_empty());
}
