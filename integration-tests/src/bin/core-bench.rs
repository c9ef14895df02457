//! `make bench-core`: the pure decision core, natively, without Envoy: nanoseconds and heap
//! allocations per `decide()` for the benchmark's policy (IP allow-list + API key), with 10 and
//! with 10,000 configured keys. Shows what the core costs per request, as opposed to the wasm
//! runtime and host calls, and that it does not grow with the configuration.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use api_guard::config::compile;
use api_guard::jwt::runtime::TokenRuntime;
use api_guard::pipeline::decide;
use api_guard::request::RequestView;
use api_guard::time::UnixTime;
use api_guard::verdict::Verdict;
use integration_tests::key_digest;

/// Counts allocations so the table can show allocations per request.
struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn config(keys: usize) -> String {
    let clients: serde_json::Map<String, serde_json::Value> = (0..keys)
        .map(|i| {
            let key = if i == 0 {
                "demo-key-123".to_string()
            } else {
                format!("key-{i}")
            };
            (
                format!("client-{i}"),
                serde_json::json!({"keys": [{"id": format!("k{i}"), "sha256": key_digest(&key)}]}),
            )
        })
        .collect();
    serde_json::json!({
        "clients": clients,
        "policies": {"default": {"ip": {"allow": ["127.0.0.0/8"]}, "api_key": {"clients": ["client-0"]}}}
    })
    .to_string()
}

fn main() {
    const ITERATIONS: u32 = 200_000;
    println!("| keys in config | compile | ns per decide() | allocations per decide() |");
    println!("|---:|---:|---:|---:|");
    for keys in [10, 10_000] {
        let json = config(keys);
        let started = Instant::now();
        let guard = match compile(json.as_bytes()) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("config: {e}");
                std::process::exit(1);
            }
        };
        let compile_time = started.elapsed();
        let headers: Vec<(String, Vec<u8>)> = [
            (":method", "GET"),
            (":path", "/bench"),
            (":authority", "127.0.0.1"),
            ("user-agent", "wrk"),
            ("x-api-key", "demo-key-123"),
            ("x-request-id", "7f9e0c1a-4b7e-4c55-9d8a-1b2c3d4e5f60"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
        let view = RequestView {
            headers: &headers,
            client_ip: Some("127.0.0.1".parse().expect("literal address")),
            route_policy: None,
        };
        let mut runtime = TokenRuntime::new(&guard);
        // Warm up, and make sure the benchmark measures admissions.
        for _ in 0..1000 {
            assert!(matches!(
                decide(&guard, &view, UnixTime(1_800_000_000), &mut runtime).verdict,
                Verdict::Allow(_)
            ));
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            black_box(decide(
                black_box(&guard),
                black_box(&view),
                UnixTime(1_800_000_000),
                &mut runtime,
            ));
        }
        let elapsed = started.elapsed();
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        println!(
            "| {keys} | {:.1} ms | {:.0} | {:.1} |",
            compile_time.as_secs_f64() * 1e3,
            elapsed.as_nanos() as f64 / f64::from(ITERATIONS),
            allocations as f64 / f64::from(ITERATIONS),
        );
    }
}
