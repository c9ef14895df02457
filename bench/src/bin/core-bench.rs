//! `make bench-core`: the pure decision core, natively, without Envoy. Prints markdown tables:
//!
//! 1. nanoseconds and heap allocations per `decide()` for the Envoy benchmark's policy (IP
//!    allow-list + API key), with 10 and with 10,000 configured keys;
//! 2. configure time: `config::compile` of generated configurations up to 10,000 API keys,
//!    200 policies, 50 JSON schemas and 4 JWT providers with inline JWKS (median of 5);
//! 3. per-request work of each stage: IP + API key, JWT (ES256 warm cache; ES256, RS256, EdDSA
//!    and HS256 cold), rate limits (in-memory store), payload headers and a ~1 KiB JSON body
//!    against a schema, and the screening module;
//! 4. the same per-request rows against a minimal and against the full configuration (the cost
//!    must not grow with the configuration);
//! 5. memory: live heap of the verified-token cache with 10,000 entries, of the compiled
//!    configuration, and of rate-limit tables (which live in Envoy's shared data, not the VM).
//!
//! Shows what the core costs per request, as opposed to the wasm runtime and host calls. Native
//! x86-64 numbers: wasm runs the same code a small factor slower (more for RSA, see docs/performance.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_guard::config::compile;
use api_guard::jwt::cache::{CacheSettings, TokenCache};
use api_guard::jwt::runtime::TokenRuntime;
use api_guard::jwt::verify::VerifiedToken;
use api_guard::pipeline::{check_body, decide, Env, Events};
use api_guard::policy::Guard;
use api_guard::request::HeaderMap;
use api_guard::request::RequestView;
use api_guard::store::MemoryStore;
use api_guard::time::UnixTime;
use api_guard::verdict::{Decision, Verdict};
use integration_tests::key_digest;
use serde_json::{json, Map, Value};

/// Counts allocations (for allocations per request) and live bytes (for memory tables).
struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Requested bytes currently allocated (allocator overhead not included).
static LIVE: AtomicI64 = AtomicI64::new(0);

fn size_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// SAFETY: delegates to the system allocator; only counts.
#[allow(unsafe_code)] // a GlobalAlloc is an unsafe trait
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(size_i64(layout.size()), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(size_i64(layout.size()), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(
            size_i64(new_size) - size_i64(layout.size()),
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

const NOW: UnixTime = UnixTime(1_800_000_000);
const JWS_FIXTURE: &str = include_str!("../../../filter/src/jwt/testdata/jws.json");

fn fail(what: &str) -> ! {
    eprintln!("core-bench: {what}");
    std::process::exit(1);
}

fn fixture() -> Value {
    serde_json::from_str(JWS_FIXTURE)
        .unwrap_or_else(|e| fail(&format!("jwt/testdata/jws.json: {e}")))
}

fn fixture_token(name: &str) -> String {
    match &fixture()["tokens"][name] {
        Value::String(s) => s.clone(),
        _ => fail(&format!("jwt/testdata/jws.json has no token {name:?}")),
    }
}

fn compile_or_exit(json: &str) -> Guard {
    compile(json.as_bytes()).unwrap_or_else(|e| fail(&format!("config: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Table 1 (the original): ip + api key, 10 vs 10,000 keys
// ---------------------------------------------------------------------------------------------

fn key_config(keys: usize) -> String {
    json!({
        "clients": clients(keys),
        "policies": {"default": {"ip": {"allow": ["127.0.0.0/8"]}, "api_key": {"clients": ["client-0"]}}}
    })
    .to_string()
}

fn clients(keys: usize) -> Map<String, Value> {
    (0..keys)
        .map(|i| {
            let key = if i == 0 {
                "demo-key-123".to_string()
            } else {
                format!("key-{i}")
            };
            (
                format!("client-{i}"),
                json!({"keys": [{"id": format!("k{i}"), "sha256": key_digest(&key)}]}),
            )
        })
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    HeaderMap::from_pairs(pairs).unwrap_or_else(|| fail("headers too long to encode"))
}

fn key_headers() -> HeaderMap {
    headers(&[
        (":method", "GET"),
        (":path", "/bench"),
        (":authority", "127.0.0.1"),
        ("user-agent", "wrk"),
        ("x-api-key", "demo-key-123"),
        ("x-request-id", "7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60"),
    ])
}

fn original_table() {
    const ITERATIONS: u32 = 200_000;
    println!("| keys in config | compile | ns per decide() | allocations per decide() |");
    println!("|---:|---:|---:|---:|");
    for keys in [10, 10_000] {
        let json = key_config(keys);
        let started = Instant::now();
        let guard = compile_or_exit(&json);
        let compile_time = started.elapsed();
        let headers = key_headers();
        let view = RequestView {
            headers: headers.headers(),
            client_ip: Some("127.0.0.1".parse().expect("literal address")),
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        let mut runtime = TokenRuntime::new(&guard);
        // Warm up, and make sure the benchmark measures admissions.
        for _ in 0..1000 {
            assert!(matches!(
                decide_at(&guard, &view, &mut runtime, true,).verdict,
                Verdict::Allow(_)
            ));
        }
        let before = allocations();
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            black_box(decide_at(
                black_box(&guard),
                black_box(&view),
                &mut runtime,
                true,
            ));
        }
        let elapsed = started.elapsed();
        let allocated = allocations() - before;
        println!(
            "| {keys} | {:.1} ms | {:.0} | {:.1} |",
            compile_time.as_secs_f64() * 1e3,
            elapsed.as_nanos() as f64 / f64::from(ITERATIONS),
            allocated as f64 / f64::from(ITERATIONS),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generated configurations
// ---------------------------------------------------------------------------------------------

/// What a generated configuration holds.
#[derive(Clone, Copy)]
struct Shape {
    keys: usize,
    /// Total policies (the named bench policies included).
    policies: usize,
    /// Policies with `payload.schema` (each its own schema document).
    schemas: usize,
    /// JWT providers, each with the fixture's inline JWKS (6 keys: RSA x2, P-256, P-384,
    /// Ed25519, oct).
    providers: usize,
    /// `jwt_cache.max_entries` (`None`: default).
    cache_entries: Option<usize>,
    /// `max_keys` of the `limited` policy's per-client limit.
    limit_keys: u32,
}

const MINIMAL: Shape = Shape {
    keys: 10,
    policies: 1,
    schemas: 0,
    providers: 0,
    cache_entries: None,
    limit_keys: 10_000,
};

const FULL: Shape = Shape {
    keys: 10_000,
    policies: 200,
    schemas: 50,
    providers: 4,
    cache_entries: None,
    limit_keys: 10_000,
};

/// A ~20-property order schema with `$defs`/`$ref`, enums, patterns and formats; `i` varies
/// one property so no two schemas are identical.
fn schema(i: usize) -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "email", "items"],
        "additionalProperties": false,
        "$defs": {
            "address": {
                "type": "object",
                "required": ["street", "city", "country"],
                "additionalProperties": false,
                "properties": {
                    "street": {"type": "string", "minLength": 1, "maxLength": 200},
                    "city": {"type": "string", "minLength": 1, "maxLength": 100},
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                    "country": {"enum": ["US", "DE", "FR", "GB", "JP", "IT", "ES", "NL"]}
                }
            },
            "item": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {
                    "sku": {"type": "string", "pattern": "^SKU-[0-9]{4,8}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "price": {"type": "number", "minimum": 0}
                }
            }
        },
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "email": {"type": "string", "format": "email"},
            "created": {"type": "string", "format": "date-time"},
            "status": {"enum": ["new", "paid", "shipped", "cancelled"]},
            "priority": {"type": "integer", "minimum": 0, "maximum": 9},
            "billing": {"$ref": "#/$defs/address"},
            "shipping": {"$ref": "#/$defs/address"},
            "items": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"$ref": "#/$defs/item"}},
            "notes": {"type": "string", "maxLength": 2000},
            "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"}},
            "currency": {"enum": ["USD", "EUR", "GBP", "JPY"]},
            "total": {"type": "number", "minimum": 0},
            "discount": {"type": "number", "minimum": 0, "maximum": 100},
            "gift": {"type": "boolean"},
            "phone": {"type": "string", "pattern": "^\\+?[0-9 ()-]{6,20}$"},
            "customer_id": {"type": "string", "pattern": "^C[0-9]{6}$"},
            "channel": {"enum": ["web", "app", "pos", "phone"]},
            "metadata": {"type": "object", "maxProperties": 20, "additionalProperties": {"type": "string", "maxLength": 256}},
            format!("ext_{i}"): {"type": "string", "maxLength": 64}
        }
    })
}

/// A ~1 KiB body valid against [`schema`].
fn order_body() -> Vec<u8> {
    let items: Vec<Value> = (0..5)
        .map(|i| json!({"sku": format!("SKU-{:06}", 1000 + i), "qty": i + 1, "price": 9.99 + f64::from(i)}))
        .collect();
    json!({
        "id": "7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "created": "2026-11-23T13:17:31Z",
        "status": "paid",
        "priority": 3,
        "billing": {"street": "12 Analytical Engine Lane", "city": "London", "zip": "10115", "country": "GB"},
        "shipping": {"street": "1 Difference Road", "city": "Berlin", "zip": "10117", "country": "DE"},
        "items": items,
        "notes": "Please deliver between 9 and 5; ring twice. Fragile: contains punched cards and gears. Leave with the neighbour if nobody answers.",
        "tags": ["priority", "gift-wrap", "fragile", "b2b"],
        "currency": "EUR",
        "total": 59.95,
        "discount": 10,
        "gift": false,
        "phone": "+44 20 7946 0958",
        "customer_id": "C123456",
        "channel": "web",
        "metadata": {"campaign": "autumn-2026", "referrer": "newsletter", "ab": "variant-b"}
    })
    .to_string()
    .into_bytes()
}

fn provider(issuer: &str) -> Value {
    let f = fixture();
    json!({"issuer": issuer, "audiences": [f["audience"].clone()], "jwks": f["jwks"].clone()})
}

fn rate_limits(max_keys: u32) -> Value {
    json!([
        {"name": "per_client", "rate": 1_000_000_000u64, "per": "second", "key": "client", "max_keys": max_keys},
        {"name": "per_network", "rate": 1_000_000_000u64, "per": "minute",
         "key": {"ip": {"v4_prefix": 24, "v6_prefix": 64}}}
    ])
}

/// The bench policies are `default` (ip + api key), then, if the shape has room: `jwt`
/// (ip + JWT from `corp`), `body` (ip + api key + schema), `screened` (ip + api key + schema +
/// screening with its defaults), `limited` (ip + api key + 2 rate limits), then fillers `p-<n>`
/// mixing api keys, JWT, methods and schemas.
fn generated_config(shape: Shape) -> String {
    let ip =
        json!({"allow": ["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"], "deny": ["10.9.9.0/24"]});
    let mut policies = Map::new();
    policies.insert(
        "default".into(),
        json!({"ip": ip, "api_key": {"clients": ["client-0"]}}),
    );
    let mut schemas_left = shape.schemas;
    if policies.len() < shape.policies && shape.providers > 0 {
        policies.insert(
            "jwt".into(),
            json!({"ip": ip, "jwt": {"providers": ["corp"]}}),
        );
    }
    if policies.len() < shape.policies && schemas_left > 0 {
        policies.insert(
            "body".into(),
            json!({"ip": ip, "api_key": {"clients": ["client-0"]},
                   "payload": {"max_body_bytes": 65536, "content_types": ["application/json"], "schema": schema(0)}}),
        );
        schemas_left -= 1;
    }
    if policies.len() < shape.policies && schemas_left > 0 {
        policies.insert(
            "screened".into(),
            json!({"ip": ip, "api_key": {"clients": ["client-0"]}, "screening": {},
                   "payload": {"max_body_bytes": 65536, "content_types": ["application/json"], "schema": schema(0)}}),
        );
        schemas_left -= 1;
    }
    if policies.len() < shape.policies {
        policies.insert(
            "limited".into(),
            json!({"ip": ip, "api_key": {"clients": ["client-0"]}, "rate_limits": rate_limits(shape.limit_keys)}),
        );
    }
    let mut n = 0usize;
    while policies.len() < shape.policies {
        let some_clients: Vec<String> = (0..5)
            .map(|j| format!("client-{}", (n * 5 + j) % shape.keys.max(1)))
            .collect();
        let mut p = json!({"ip": ip, "methods": ["GET", "POST", "PUT"]});
        if shape.providers > 0 && n % 3 == 1 {
            let provider = match n % shape.providers {
                0 => "corp".to_string(),
                j => format!("corp-{}", j - 1),
            };
            p["jwt"] = json!({"providers": [provider],
                              "required_scopes": ["orders:read"]});
        } else {
            p["api_key"] = json!({"clients": some_clients});
        }
        if schemas_left > 0 {
            p["payload"] = json!({"max_body_bytes": 65536, "content_types": ["application/json"],
                                  "schema": schema(n + 1)});
            schemas_left -= 1;
        }
        policies.insert(format!("p-{n}"), p);
        n += 1;
    }
    let mut config = json!({"clients": clients(shape.keys), "policies": policies});
    if shape.providers > 0 {
        let mut providers = Map::new();
        providers.insert("corp".into(), provider("https://issuer.test"));
        for j in 0..shape.providers.saturating_sub(1) {
            providers.insert(
                format!("corp-{j}"),
                provider(&format!("https://issuer-{j}.test")),
            );
        }
        config["jwt_providers"] = Value::Object(providers);
    }
    if let Some(max_entries) = shape.cache_entries {
        config["jwt_cache"] = json!({"max_entries": max_entries});
    }
    config.to_string()
}

// ---------------------------------------------------------------------------------------------
// Table 2: configure time
// ---------------------------------------------------------------------------------------------

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn configure_table() {
    const RUNS: usize = 5;
    println!();
    println!("Configure time: `config::compile` of a generated configuration, median of {RUNS} (min-max); the Guard's live heap afterwards");
    println!();
    println!("| configuration | JSON bytes | compile (median) | min-max | allocations | Guard live heap |");
    println!("|---|---:|---:|---:|---:|---:|");
    let rows: [(&str, Shape); 6] = [
        ("10 keys, 1 policy", MINIMAL),
        (
            "10,000 keys, 1 policy",
            Shape {
                keys: 10_000,
                ..MINIMAL
            },
        ),
        (
            "10 keys, 200 policies (no schema, no JWT)",
            Shape {
                policies: 200,
                ..MINIMAL
            },
        ),
        (
            "10 keys, 50 policies with a schema",
            Shape {
                policies: 50,
                schemas: 50,
                ..MINIMAL
            },
        ),
        (
            "10 keys, 4 JWT providers (inline JWKS, 6 keys each), 2 policies",
            Shape {
                policies: 2,
                providers: 4,
                ..MINIMAL
            },
        ),
        (
            "**10,000 keys, 200 policies, 50 schemas, 4 JWT providers**",
            FULL,
        ),
    ];
    for (label, shape) in rows {
        let json = generated_config(shape);
        let mut times = Vec::with_capacity(RUNS);
        let mut allocated = 0;
        let mut retained = 0;
        for _ in 0..RUNS {
            let live_before = live();
            let before = allocations();
            let started = Instant::now();
            let guard = compile_or_exit(&json);
            times.push(started.elapsed().as_secs_f64() * 1e3);
            allocated = allocations() - before;
            retained = live() - live_before;
            drop(black_box(guard));
        }
        let (min, max) = (
            times.iter().copied().fold(f64::INFINITY, f64::min),
            times.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "| {label} | {} | {:.1} ms | {min:.1}-{max:.1} ms | {allocated} | {:.2} MB |",
            json.len(),
            median(&mut times),
            retained as f64 / 1e6,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tables 3 and 4: per-request work
// ---------------------------------------------------------------------------------------------

/// Runs `op` for about 0.25 s three times; the median ns per call, and allocations per call
/// over all runs.
fn measure(mut op: impl FnMut()) -> (f64, f64) {
    // Warm-up and calibration: how many calls fit in 25 ms.
    let mut calibration = 0u64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(25) {
        op();
        calibration += 1;
    }
    let iterations = (calibration * 10).max(20);
    let mut ns = Vec::with_capacity(3);
    let cpu = std::env::var_os("BENCH_CPU_TIME").is_some();
    let before = allocations();
    for _ in 0..3 {
        let started = Instant::now();
        let started_cpu = if cpu { cpu_ns() } else { 0 };
        for _ in 0..iterations {
            op();
        }
        let spent = if cpu {
            cpu_ns().saturating_sub(started_cpu) as f64
        } else {
            started.elapsed().as_nanos() as f64
        };
        ns.push(spent / iterations as f64);
    }
    let allocated = allocations() - before;
    (median(&mut ns), allocated as f64 / (3 * iterations) as f64)
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`, Linux), which
/// `BENCH_CPU_TIME=1` measures instead of wall time: on a shared machine, the time the
/// benchmark waited for a CPU is left out. 0 when it cannot be read.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn row(label: &str, (ns, allocs): (f64, f64)) {
    println!("| {label} | {} | {allocs:.1} |", fmt_ns(ns));
}

fn expect_allow(decision: &Decision<'_>, what: &str) {
    if !matches!(decision.verdict, Verdict::Allow(_)) {
        fail(&format!("{what}: expected an admission, got {decision:?}"));
    }
}

fn client_ip() -> Option<std::net::IpAddr> {
    Some("127.0.0.1".parse().expect("literal address"))
}

/// [`decide`] for policies without rate limits or introspection (they never touch the store):
/// a first decision at `NOW`; `end_of_stream` false when a body follows.
fn decide_at<'g>(
    guard: &'g Guard,
    view: &RequestView<'_>,
    runtime: &mut TokenRuntime,
    end_of_stream: bool,
) -> Decision<'g> {
    static STORE: std::sync::LazyLock<MemoryStore> = std::sync::LazyLock::new(MemoryStore::new);
    let mut env = Env::first(&*STORE, 0, end_of_stream);
    env.now = NOW;
    decide(guard, view, &env, runtime, &mut Events::default())
}

/// `decide()` of `headers` under the named policy, with one runtime reused across calls.
fn bench_decide(guard: &Guard, policy: Option<&str>, headers: &HeaderMap) -> (f64, f64) {
    let view = bench_view(headers, policy);
    let mut runtime = TokenRuntime::new(guard);
    expect_allow(&decide_at(guard, &view, &mut runtime, true), "decide");
    measure(|| {
        black_box(decide_at(
            black_box(guard),
            black_box(&view),
            &mut runtime,
            true,
        ));
    })
}

fn bearer_headers(token: &str) -> HeaderMap {
    headers(&[
        (":method", "GET"),
        (":path", "/bench"),
        (":authority", "127.0.0.1"),
        ("user-agent", "wrk"),
        ("authorization", &format!("Bearer {token}")),
        ("x-request-id", "7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60"),
    ])
}

/// The view the rows decide or screen: `headers` from the bench client's address, under
/// `policy` (the route metadata's policy name) or none.
fn bench_view<'a>(headers: &'a HeaderMap, policy: Option<&'a str>) -> RequestView<'a> {
    RequestView {
        headers: headers.headers(),
        client_ip: client_ip(),
        route_policy: policy,
        route_name: None,
        virtual_host: None,
    }
}

fn post_headers(body_len: usize) -> HeaderMap {
    headers(&[
        (":method", "POST"),
        (":path", "/orders"),
        (":authority", "127.0.0.1"),
        ("user-agent", "wrk"),
        ("x-api-key", "demo-key-123"),
        ("content-type", "application/json"),
        ("content-length", &body_len.to_string()),
        ("x-request-id", "7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60"),
    ])
}

fn stage_table(full: &Guard) {
    println!();
    println!("Per request, by stage (full configuration: 10,000 keys, 200 policies, 50 schemas, 4 JWT providers); ns and heap allocations per call, median of 3 runs of ~0.25 s");
    println!();
    println!("| stage (call) | time per call | allocations per call |");
    println!("|---|---:|---:|");
    row(
        "ip + api key (`decide`)",
        bench_decide(full, None, &key_headers()),
    );
    let es256 = fixture_token("valid_es256");
    row(
        "ip + JWT ES256, warm cache (`decide`)",
        bench_decide(full, Some("jwt"), &bearer_headers(&es256)),
    );
    // Cold: the cache is off, every call verifies the signature.
    let cold = compile_or_exit(&generated_config(Shape {
        policies: 2,
        providers: 1,
        cache_entries: Some(0),
        ..MINIMAL
    }));
    for (alg, token) in [
        ("ES256", "valid_es256"),
        ("RS256 (2048-bit)", "valid_rs256"),
        ("PS256 (2048-bit)", "valid_ps256"),
        ("EdDSA (Ed25519)", "valid_eddsa"),
        ("HS256", "valid_hs256"),
    ] {
        row(
            &format!("ip + JWT {alg}, cold: cache off (`decide`)"),
            bench_decide(&cold, Some("jwt"), &bearer_headers(&fixture_token(token))),
        );
    }

    // Rate limits: two limits against the in-memory store (Envoy's shared data in production:
    // there, each get/set is a host call instead of a mutex + hash map).
    {
        let headers = key_headers();
        let view = bench_view(&headers, Some("limited"));
        let store = MemoryStore::new();
        let mut runtime = TokenRuntime::new(full);
        let mut events = Events::default();
        let mut env = Env {
            store: &store,
            now: NOW,
            now_ns: 1_800_000_000_000_000_000,
            end_of_stream: true,
            attempt: api_guard::lifecycle::Attempt {
                may_wait: true,
                may_refetch: true,
            },
            peer: None,
        };
        expect_allow(
            &decide(full, &view, &env, &mut runtime, &mut events),
            "decide_limited",
        );
        row(
            "ip + api key + 2 rate limits (`decide`, in-memory store)",
            measure(|| {
                env.now_ns += 1_000;
                events.rate_limits.clear();
                black_box(decide(
                    black_box(full),
                    black_box(&view),
                    &env,
                    &mut runtime,
                    &mut events,
                ));
            }),
        );
    }

    payload_and_screening_rows(full);
}

/// The payload and screening rows of [`stage_table`], alone with `core-bench screening` (the
/// rows issue 13's cost budget is about, quick to alternate between two builds).
fn payload_and_screening_rows(full: &Guard) {
    // Payload: the headers phase of a JSON POST, then the body against the schema; then the
    // same with screening (request head, and the JSON body's string values).
    let body = order_body();
    let post = post_headers(body.len());
    for (policy_name, what) in [
        ("body", "ip + api key + payload"),
        ("screened", "ip + api key + payload + screening"),
    ] {
        let view = bench_view(&post, Some(policy_name));
        let mut runtime = TokenRuntime::new(full);
        let decision = decide_at(full, &view, &mut runtime, false);
        let (Some(policy), Verdict::Allow(admission)) = (decision.policy, &decision.verdict) else {
            fail(&format!(
                "POST under {policy_name}: expected an admission, got {decision:?}"
            ));
        };
        let Some(check) = admission.body.clone() else {
            fail(&format!(
                "POST under {policy_name}: the admission asks for no body check"
            ));
        };
        match check_body(full, policy, &check, &body) {
            Ok(None) => {}
            other => fail(&format!("the order body under {policy_name}: {other:?}")),
        }
        row(
            &format!("{what}: headers of a JSON POST (`decide`, body to follow)"),
            measure(|| {
                black_box(decide_at(
                    black_box(full),
                    black_box(&view),
                    &mut runtime,
                    false,
                ));
            }),
        );
        row(
            &format!("{what}: the {} byte JSON body (`check_body`)", body.len()),
            measure(|| {
                black_box(check_body(
                    black_box(full),
                    policy,
                    black_box(&check),
                    black_box(&body),
                ))
                .ok();
            }),
        );
    }
    let browser = browser_headers();
    for (policy_name, what) in [
        ("default", "ip + api key"),
        ("screened", "ip + api key + screening"),
    ] {
        row(
            &format!("{what}: browser-like GET, query + cookies + referer (`decide`)"),
            bench_decide(full, Some(policy_name), &browser),
        );
    }
    row(
        &format!(
            "reference: `serde_json::from_slice::<Value>` of the {} byte body",
            body.len()
        ),
        measure(|| {
            black_box(serde_json::from_slice::<Value>(black_box(&body))).ok();
        }),
    );
    screening_rows(&body);
}

/// A GET as a browser sends it: a query, cookies, a referer and a real user agent.
fn browser_headers() -> HeaderMap {
    headers(&[
        (":method", "GET"),
        (
            ":path",
            "/orders/7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60?page=2&sort=created&q=ada%20lovelace",
        ),
        (":authority", "127.0.0.1"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("referer", "https://shop.example/orders?page=1"),
        ("cookie", "session=3b1f0a9e2c; theme=dark"),
        ("x-api-key", "demo-key-123"),
        ("x-request-id", "7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60"),
    ])
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The GET requests the screening rows measure and `profile-screening` counts: its row name,
/// the table's label and the headers (the method is added by [`get_headers`]).
/// A screened GET: `profile-screening`'s row name, the table's label, the headers.
type ScreenedGet = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

fn screened_gets() -> [ScreenedGet; 6] {
    [
        (
            "wrk",
            "`GET /bench`, user-agent `wrk`",
            vec![(":path", "/bench"), ("user-agent", "wrk")],
        ),
        (
            "firefox",
            "... user-agent Firefox",
            vec![(":path", "/bench"), ("user-agent", FIREFOX)],
        ),
        (
            "uuid-path",
            "... path with a UUID",
            vec![
                (":path", "/orders/7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60"),
                ("user-agent", "wrk"),
            ],
        ),
        (
            "query",
            "... query `page=2&sort=created&q=ada%20lovelace`",
            vec![
                (":path", "/bench?page=2&sort=created&q=ada%20lovelace"),
                ("user-agent", "wrk"),
            ],
        ),
        (
            "cookie",
            "... cookie `session=3b1f0a9e2c; theme=dark`",
            vec![
                (":path", "/bench"),
                ("user-agent", "wrk"),
                ("cookie", "session=3b1f0a9e2c; theme=dark"),
            ],
        ),
        (
            "referer",
            "... referer `https://shop.example/orders?page=1`",
            vec![
                (":path", "/bench"),
                ("user-agent", "wrk"),
                ("referer", "https://shop.example/orders?page=1"),
            ],
        ),
    ]
}

fn get_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut pairs = pairs.to_vec();
    pairs.push((":method", "GET"));
    headers(&pairs)
}

/// Screening, the module called directly on parts of a request: where its time goes.
fn screening_rows(body: &[u8]) {
    let Ok(rule) = api_guard::screening::compile_screening(&json!({}), "screening") else {
        fail("screening: `{}` does not compile");
    };
    println!();
    println!(
        "Screening breakdown (`ScreeningRule` with its defaults, called directly; clean inputs)"
    );
    println!();
    println!("| input | time per call | allocations per call |");
    println!("|---|---:|---:|");
    for (_, label, pairs) in screened_gets() {
        let h = get_headers(&pairs);
        let view = bench_view(&h, None);
        if let Some(d) = rule.screen_request(&view) {
            fail(&format!("screening flags {label}: {d:?}"));
        }
        row(
            &format!("`screen_request`: {label}"),
            measure(|| {
                black_box(rule.screen_request(black_box(&view)));
            }),
        );
    }
    // The user agent is read twice by default: the bot check, and the injection detectors (it
    // is one of the screened headers). With `headers: []`, only the bot check reads it.
    let Ok(bots_only) =
        api_guard::screening::compile_screening(&json!({"headers": []}), "screening")
    else {
        fail("screening: `{\"headers\": []}` does not compile");
    };
    let h = get_headers(&[(":path", "/bench"), ("user-agent", FIREFOX)]);
    let view = bench_view(&h, None);
    row(
        "`screen_request`: ... user-agent Firefox, `headers: []` (bot check only)",
        measure(|| {
            black_box(bots_only.screen_request(black_box(&view)));
        }),
    );
    if let Some(d) = rule.screen_body("application/json", body) {
        fail(&format!("screening flags the order body: {d:?}"));
    }
    row(
        &format!("`screen_body`: the {} byte JSON order body", body.len()),
        measure(|| {
            black_box(rule.screen_body("application/json", black_box(body)));
        }),
    );
}

fn scale_table(minimal_keys: &Guard, full: &Guard) {
    println!();
    println!("Per request vs configuration size (must be flat): ns and allocations per `decide()`");
    println!();
    println!(
        "| configuration | ip + api key: time | allocations | JWT ES256 warm: time | allocations |"
    );
    println!("|---|---:|---:|---:|---:|");
    let es256 = bearer_headers(&fixture_token("valid_es256"));
    let small_jwt = compile_or_exit(&generated_config(Shape {
        policies: 2,
        providers: 1,
        ..MINIMAL
    }));
    let big_keys = compile_or_exit(&generated_config(Shape {
        keys: 10_000,
        policies: 2,
        providers: 1,
        ..MINIMAL
    }));
    let many_policies = compile_or_exit(&generated_config(Shape {
        policies: 200,
        providers: 1,
        ..MINIMAL
    }));
    let rows: [(&str, &Guard, &Guard); 4] = [
        ("10 keys, 1-2 policies", minimal_keys, &small_jwt),
        ("10,000 keys, 1-2 policies", &big_keys, &big_keys),
        ("10 keys, 200 policies", &many_policies, &many_policies),
        (
            "10,000 keys, 200 policies, 50 schemas, 4 providers",
            full,
            full,
        ),
    ];
    for (label, key_guard, jwt_guard) in rows {
        let (kn, ka) = bench_decide(key_guard, None, &key_headers());
        let (jn, ja) = bench_decide(jwt_guard, Some("jwt"), &es256);
        println!(
            "| {label} | {} | {ka:.1} | {} | {ja:.1} |",
            fmt_ns(kn),
            fmt_ns(jn)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Table 5: memory
// ---------------------------------------------------------------------------------------------

/// Claims like the fixture's tokens (iss, aud, sub, iat, exp, jti).
fn fixture_claims(i: usize) -> Map<String, Value> {
    let f = fixture();
    let mut m = Map::new();
    m.insert("iss".into(), f["issuer"].clone());
    m.insert("aud".into(), f["audience"].clone());
    m.insert("sub".into(), json!(format!("user-{i}")));
    m.insert("iat".into(), f["iat"].clone());
    m.insert("exp".into(), f["exp"].clone());
    m.insert("jti".into(), json!(format!("jti-{i:08}")));
    m
}

/// A typical IdP access token: the fixture's claims plus scope, client id, e-mail, name, roles,
/// tenant and auth time.
fn rich_claims(i: usize) -> Map<String, Value> {
    let mut m = fixture_claims(i);
    m.insert(
        "scope".into(),
        json!("openid profile email orders:read orders:write"),
    );
    m.insert("azp".into(), json!("web-frontend"));
    m.insert("email".into(), json!(format!("user-{i}@example.com")));
    m.insert("name".into(), json!(format!("User Number {i}")));
    m.insert("roles".into(), json!(["customer", "beta-tester"]));
    m.insert("tenant".into(), json!("acme-corp"));
    m.insert("auth_time".into(), json!(1_799_999_000));
    m
}

fn verified(claims: Map<String, Value>) -> VerifiedToken {
    let scopes = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    VerifiedToken {
        subject: claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_string),
        jti: claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string),
        expires_at: claims.get("exp").and_then(Value::as_i64),
        scopes,
        claims,
    }
}

/// Live heap of a TokenCache filled with `n` tokens (the values are built and moved in, as
/// the pipeline does; temporaries are freed before the measurement ends).
fn cache_bytes(n: usize, claims: fn(usize) -> Map<String, Value>) -> i64 {
    let before = live();
    let mut cache: TokenCache<VerifiedToken> = TokenCache::new(CacheSettings {
        max_entries: n,
        max_ttl_seconds: 300,
    });
    for i in 0..n {
        let key = TokenCache::<VerifiedToken>::key(0, &format!("token-{i}"));
        let value = verified(claims(i));
        let exp = value.expires_at;
        cache.insert(key, value, exp, NOW);
    }
    assert_eq!(cache.len(), n);
    let bytes = live() - before;
    drop(black_box(cache));
    bytes
}

fn guard_bytes(json: &str) -> i64 {
    let before = live();
    let guard = compile_or_exit(json);
    let bytes = live() - before;
    drop(black_box(guard));
    bytes
}

fn memory_table(full: &Guard) {
    println!();
    println!("Memory: live heap (requested bytes; malloc's per-block overhead not included), measured with the counting allocator");
    println!();
    println!("| what | live heap | per entry |");
    println!("|---|---:|---:|");
    for (label, claims) in [
        (
            "TokenCache, 10,000 tokens, fixture claims (iss aud sub iat exp jti)",
            fixture_claims as fn(usize) -> Map<String, Value>,
        ),
        (
            "TokenCache, 10,000 tokens, 13 claims (+ scope azp email name roles tenant auth_time)",
            rich_claims,
        ),
    ] {
        let bytes = cache_bytes(10_000, claims);
        println!(
            "| {label} | {:.2} MB | {} B |",
            bytes as f64 / 1e6,
            bytes / 10_000
        );
    }
    let before = live();
    let runtime = TokenRuntime::new(full);
    let runtime_bytes = live() - before;
    drop(black_box(runtime));
    println!("| TokenRuntime::new, full configuration (empty cache) | {runtime_bytes} B | |");
    let full_bytes = guard_bytes(&generated_config(FULL));
    println!(
        "| compiled Guard, full configuration (10,000 keys, 200 policies, 50 schemas, 4 providers) | {:.2} MB | |",
        full_bytes as f64 / 1e6
    );
    let limit_small = guard_bytes(&generated_config(Shape {
        policies: 4,
        limit_keys: 10,
        ..MINIMAL
    }));
    let limit_big = guard_bytes(&generated_config(Shape {
        policies: 4,
        limit_keys: 100_000,
        ..MINIMAL
    }));
    println!(
        "| compiled Guard, rate limit `max_keys` 10 vs 100,000 | {limit_small} B vs {limit_big} B | {} B per key |",
        (limit_big - limit_small) / 99_990
    );

    // Rate-limit keys live in Envoy's shared data, not in the VM heap: compute their size.
    let limited = full
        .by_name
        .get("limited")
        .and_then(|id| full.policy(*id))
        .unwrap_or_else(|| fail("no `limited` policy"));
    let table = &limited.rate_limits[0].table;
    let keys = 100_000u32;
    let buckets = table.overflow_buckets;
    let name_bytes: usize = table.all_keys().map(|k| k.len()).sum();
    let entries = keys + buckets;
    let value_bytes = entries as usize * api_guard::ratelimit::table::SLOT_BYTES;
    println!();
    println!(
        "Rate-limit state is in Envoy's shared data (one map per vm_id, shared by all workers), not the VM heap. \
         A limit with `max_keys` = {keys} owns {} shared-data entries (`{}.<n>` + {buckets} `.overflow.<j>`), created on first use: \
         values {} x {} B = {:.2} MB, key names {:.2} MB (avg {:.1} B), plus Envoy's per-entry map overhead (C++ hash-map node, \
         std::string key, value string, CAS); the VM holds none of it (the row above: 0 B per key).",
        entries,
        table.prefix,
        entries,
        api_guard::ratelimit::table::SLOT_BYTES,
        value_bytes as f64 / 1e6,
        name_bytes as f64 / 1e6,
        name_bytes as f64 / f64::from(entries),
    );
}

/// `core-bench profile-screening <row>`: exactly `PROFILE_CALLS` (default 2000) calls of one
/// screening call, to count instructions under `valgrind --tool=callgrind` (deterministic on a
/// loaded machine). Instructions per call: the difference between a run with `PROFILE_CALLS=N`
/// and one with `PROFILE_CALLS=0`, divided by N. Rows: `uuid-path`, `query`, `cookie`,
/// `referer`, `firefox`, `bots-only`, `browser-get` (`screen_request` of the
/// `screening` rows' requests), `post-headers` (`screen_request` of the JSON POST's headers),
/// `plan-body` (its `plan_body`), `screen-document` (the parsed order body),
/// `screen-body` (parse + screen). `ScreeningRule` with its defaults, clean inputs.
/// `value:<text>`: `screen_value` of `<text>` as a JSON string (`PROFILE_RULE`: another
/// `screening` object as JSON, e.g. `{"xss": false}`).
fn profile_screening(row: &str) {
    use api_guard::payload::doc::{Document, Duplicates};
    let calls: usize = std::env::var("PROFILE_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let Ok(rule) = api_guard::screening::compile_screening(&json!({}), "screening") else {
        fail("screening: `{}` does not compile");
    };
    let Ok(bots_only) =
        api_guard::screening::compile_screening(&json!({"headers": []}), "screening")
    else {
        fail("screening: `{\"headers\": []}` does not compile");
    };
    let body = order_body();
    let named = |name: &str| screened_gets().into_iter().find(|(id, _, _)| *id == name);
    let h = match row {
        "browser-get" => browser_headers(),
        "post-headers" | "plan-body" | "screen-document" | "screen-body" => {
            post_headers(body.len())
        }
        "bots-only" => get_headers(&[(":path", "/bench"), ("user-agent", FIREFOX)]),
        other if other.starts_with("value:") => post_headers(body.len()),
        other => match named(other) {
            Some((_, _, pairs)) => get_headers(&pairs),
            None => fail(&format!(
                "unknown row {other:?} (wrk, uuid-path, query, cookie, referer, firefox, bots-only, browser-get, post-headers, plan-body, screen-document, screen-body)"
            )),
        },
    };
    let view = bench_view(&h, None);
    let Ok(doc) = Document::parse(&body, Duplicates::KeepAll) else {
        fail("the order body does not parse");
    };
    let rule = if row == "bots-only" {
        &bots_only
    } else {
        &rule
    };
    if let Some(value) = row.strip_prefix("value:") {
        // One JSON string value alone, optionally under another `screening` object (e.g. one
        // class on, to price each detector): where the body's instructions go, value by value.
        let custom = std::env::var("PROFILE_RULE").ok().map(|r| {
            let Ok(v) = serde_json::from_str::<Value>(&r) else {
                fail("PROFILE_RULE: not JSON");
            };
            let Ok(custom) = api_guard::screening::compile_screening(&v, "screening") else {
                fail("PROFILE_RULE: not a screening object");
            };
            custom
        });
        let rule = custom.as_ref().unwrap_or(rule);
        for _ in 0..calls {
            black_box(rule.screen_value(
                black_box(value.as_bytes()),
                api_guard::screening::ValueKind::Json,
            ));
        }
        return;
    }
    for _ in 0..calls {
        match row {
            "plan-body" => {
                black_box(rule.plan_body(black_box(&view)));
            }
            "screen-document" => {
                black_box(rule.screen_document(black_box(&doc)));
            }
            "screen-body" => {
                black_box(rule.screen_body("application/json", black_box(&body)));
            }
            _ => {
                black_box(rule.screen_request(black_box(&view)));
            }
        }
    }
    if let Some(d) = rule.screen_request(&view) {
        fail(&format!("screening flags {row}: {d:?}"));
    }
    if let Some(d) = rule.screen_document(&doc) {
        fail(&format!("screening flags the order body: {d:?}"));
    }
}

/// `core-bench profile-compile|profile-body|profile-post-headers`: a loop over one operation, to run under
/// `perf record` (e.g. `perf record -g target/release/core-bench profile-compile`; build with
/// `CARGO_PROFILE_RELEASE_STRIP=false` for symbols).
fn profile_loop(what: &str) {
    let json = generated_config(FULL);
    let full = compile_or_exit(&json);
    let started = Instant::now();
    match what {
        "profile-compile" => {
            while started.elapsed() < Duration::from_secs(5) {
                drop(black_box(compile_or_exit(black_box(&json))));
            }
        }
        // `PROFILE_POLICY=screened` profiles the body with screening too.
        "profile-body" => {
            let body = order_body();
            let post = post_headers(body.len());
            let policy_name = std::env::var("PROFILE_POLICY").unwrap_or_else(|_| "body".into());
            let view = bench_view(&post, Some(&policy_name));
            let mut runtime = TokenRuntime::new(&full);
            let decision = decide_at(&full, &view, &mut runtime, false);
            let (Some(policy), Verdict::Allow(admission)) = (decision.policy, &decision.verdict)
            else {
                fail("POST under body: not admitted");
            };
            let Some(check) = admission.body.clone() else {
                fail("POST under body: no body check");
            };
            while started.elapsed() < Duration::from_secs(5) {
                black_box(check_body(&full, policy, &check, black_box(&body))).ok();
            }
        }
        // The headers phase of the same POST (`PROFILE_POLICY=screened`: with screening).
        "profile-post-headers" => {
            let post = post_headers(order_body().len());
            let policy_name = std::env::var("PROFILE_POLICY").unwrap_or_else(|_| "body".into());
            let view = bench_view(&post, Some(&policy_name));
            let mut runtime = TokenRuntime::new(&full);
            while started.elapsed() < Duration::from_secs(5) {
                black_box(decide_at(&full, black_box(&view), &mut runtime, false));
            }
        }
        // The full configuration as JSON, to load into a real Envoy and read the module's
        // "compiled in" log line (configure time inside wasm).
        "print-config" => println!("{json}"),
        other => fail(&format!(
            "unknown mode {other:?} (profile-compile, profile-body, profile-post-headers, profile-screening, print-config, routes, screening)"
        )),
    }
}

fn main() {
    if let Some(mode) = std::env::args().nth(1) {
        // `routes`: only the route matcher table.
        if mode == "routes" {
            route_table();
        } else if mode == "profile-screening" {
            let row = std::env::args().nth(2).unwrap_or_default();
            profile_screening(&row);
        } else if mode == "screening" {
            // `screening`: only the payload and screening rows.
            println!("| stage (call) | time per call | allocations per call |");
            println!("|---|---:|---:|");
            payload_and_screening_rows(&compile_or_exit(&generated_config(FULL)));
        } else {
            profile_loop(&mode);
        }
        return;
    }
    original_table();
    configure_table();
    let full = compile_or_exit(&generated_config(FULL));
    let minimal = compile_or_exit(&key_config(10));
    stage_table(&full);
    scale_table(&minimal, &full);
    route_table();
    memory_table(&full);
}

/// `routes` with `n` matchers, a quarter of each indexed kind (route name, virtual host,
/// host + path prefix, path regex with a literal head); with `scanned`, `n` regexes without a
/// literal head (alternations), which selection must try one by one.
fn route_config(n: usize, scanned: bool) -> String {
    let routes: Vec<Value> = (0..n)
        .map(|i| {
            let policy = format!("p{}", i % 4);
            if scanned {
                return json!({"path_regex": format!("(/a{i:04}|/b{i:04})/x"), "policy": policy});
            }
            match i % 4 {
                0 => json!({"route_name": format!("vs-{i:04}.match"), "policy": policy}),
                1 => json!({"virtual_host": format!("host-{i:04}.example.com:443"), "policy": policy}),
                2 => json!({"authority": format!("host-{i:04}.example.com"), "path_prefix": format!("/svc-{i:04}/"), "policy": policy}),
                _ => json!({"path_regex": format!("/v1/svc-{i:04}/[0-9]+"), "policy": policy}),
            }
        })
        .collect();
    json!({
        "policies": {"p0": {}, "p1": {}, "p2": {}, "p3": {}, "default": {}},
        "routes": routes,
    })
    .to_string()
}

/// A compiled `routes` list, the request's route name, virtual host and headers, and whether a
/// matcher (not `default`) must select it.
type RouteCase<'a> = (Guard, Option<&'a str>, Option<&'a str>, HeaderMap, bool);

/// Policy selection by `routes` matchers, for the last matcher of each kind (a list walked in
/// order would try every matcher before it): must be flat in the number of matchers.
fn route_table() {
    println!();
    println!("Route matchers (`routes`): ns and allocations per `policy::select()`, the request matching the LAST matcher of its kind");
    println!();
    println!("| matchers | route name | virtual host | host + path prefix | path regex (literal head) | no match (-> default) | regex without literal head, last |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [4usize, 20, 52, 200] {
        // The last matcher of each kind: index n-4+k is of kind k.
        let last = |k: usize| n - 4 + k;
        let headers = |host: &str, path: &str| {
            crate::headers(&[
                (":method", "GET"),
                (":authority", host),
                (":path", path),
                ("user-agent", "curl/8.5.0"),
            ])
        };
        let route_name = format!("vs-{:04}.match", last(0));
        let vhost = format!("host-{:04}.example.com:443", last(1));
        let cases: [RouteCase; 6] = [
            (
                compile_or_exit(&route_config(n, false)),
                Some(&route_name),
                Some("other:443"),
                headers("x.example.com", "/x"),
                true,
            ),
            (
                compile_or_exit(&route_config(n, false)),
                Some("unnamed"),
                Some(&vhost),
                headers("x.example.com", "/x"),
                true,
            ),
            (
                compile_or_exit(&route_config(n, false)),
                None,
                None,
                headers(
                    &format!("host-{:04}.example.com", last(2)),
                    &format!("/svc-{:04}/a?b=c", last(2)),
                ),
                true,
            ),
            (
                compile_or_exit(&route_config(n, false)),
                None,
                None,
                headers("x.example.com", &format!("/v1/svc-{:04}/42", last(3))),
                true,
            ),
            (
                compile_or_exit(&route_config(n, false)),
                Some("unnamed"),
                Some("other:443"),
                headers("x.example.com", "/v1/svc-x/42"),
                false,
            ),
            (
                compile_or_exit(&route_config(n, true)),
                None,
                None,
                headers("x.example.com", &format!("/b{:04}/x", n - 1)),
                true,
            ),
        ];
        let mut cells = Vec::new();
        for (guard, route_name, virtual_host, headers, matched) in &cases {
            let view = RequestView {
                headers: headers.headers(),
                client_ip: None,
                route_policy: None,
                route_name: *route_name,
                virtual_host: *virtual_host,
            };
            let selected = api_guard::policy::select(guard, &view);
            let default = api_guard::route::Selection::Policy(guard.by_name["default"]);
            if (selected != default) != *matched {
                fail(&format!(
                    "route table: {n} matchers, {route_name:?} {headers:?}: {selected:?}"
                ));
            }
            let (ns, allocs) = measure(|| {
                black_box(api_guard::policy::select(
                    black_box(guard),
                    black_box(&view),
                ));
            });
            cells.push(format!("{} ({allocs:.1})", fmt_ns(ns)));
        }
        println!("| {n} | {} |", cells.join(" | "));
    }
}
