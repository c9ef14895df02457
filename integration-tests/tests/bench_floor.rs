//! The benchmark's floor module (tools/floor-wasm, `envoy/bench/floor.yaml`) does what its rows
//! claim: the `headers` floor passes every request through untouched, the `body` floor passes it
//! through too but holds and buffers the whole body first (so a body past Envoy's buffer limit
//! is refused with 413 there and streamed through on the other listener), and a configuration
//! word it does not know is refused rather than measured as some other floor.

use std::path::PathBuf;
use std::process::Command;

use integration_tests::{envoy_bin, workspace_root, Envoy, EnvoyConfig, Upstream};

const FLOOR_CONFIG: &str = "envoy/bench/floor.yaml";

fn floor_module() -> PathBuf {
    let path = workspace_root().join("target/bench/floor.wasm");
    assert!(
        path.is_file(),
        "{} not found: run `make floor-wasm`",
        path.display()
    );
    path
}

#[test]
fn both_floors_pass_requests_through_and_only_the_body_floor_buffers_the_body() {
    floor_module();
    let upstream = Upstream::start("floor");
    let envoy = Envoy::start(EnvoyConfig::load(FLOOR_CONFIG).with_upstreams(&[upstream.addr]));
    let order = br#"{"order_id":"3f6c2a9e","items":[{"sku":"BK-1042","quantity":1}]}"#.to_vec();

    for listener in ["http", "http-body"] {
        upstream.clear();
        let get = envoy
            .request_on(listener, "GET", "/bench?page=2")
            .header("x-api-key", "demo-key-123")
            .send();
        assert_eq!(get.status, 200, "{listener}: {}", get.text());
        let post = envoy
            .request_on(listener, "POST", "/bench")
            .header("content-type", "application/json")
            .body(order.clone())
            .send();
        assert_eq!(post.status, 200, "{listener}: {}", post.text());

        let recorded = upstream.requests();
        assert_eq!(recorded.len(), 2, "{listener}");
        assert_eq!(recorded[0].method, "GET");
        assert_eq!(recorded[0].path, "/bench?page=2");
        assert_eq!(
            recorded[0].header("x-api-key").as_deref(),
            Some("demo-key-123"),
            "{listener}: the floor must not touch headers"
        );
        assert_eq!(recorded[1].body, order, "{listener}");
    }

    // 2 MiB is past Envoy's default 1 MiB buffer limit: only a filter that keeps the body
    // buffered until its end makes Envoy refuse it.
    let big = vec![b'x'; 2 << 20];
    upstream.clear();
    let streamed = envoy
        .request_on("http", "POST", "/bench")
        .header("content-type", "application/octet-stream")
        .body(big.clone())
        .send();
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert_eq!(upstream.requests().len(), 1);
    assert_eq!(upstream.requests()[0].body.len(), big.len());

    upstream.clear();
    let held = envoy
        .request_on("http-body", "POST", "/bench")
        .header("content-type", "application/octet-stream")
        .body(big)
        .send();
    assert_eq!(held.status, 413, "{}", held.text());
    assert!(upstream.requests().is_empty());
}

#[test]
fn an_unknown_floor_configuration_is_refused() {
    floor_module();
    let text = std::fs::read_to_string(workspace_root().join(FLOOR_CONFIG)).unwrap();
    assert_eq!(text.matches("value: headers").count(), 1);
    let dir = workspace_root().join("target/bench");
    for (name, word) in [("floor-ok.yaml", "headers"), ("floor-bad.yaml", "bodies")] {
        let path = dir.join(format!("{}-{name}", std::process::id()));
        std::fs::write(
            &path,
            text.replace("value: headers", &format!("value: {word}")),
        )
        .unwrap();
        // Validation loads the module and runs its configure step.
        let output = Command::new(envoy_bin())
            .args(["--mode", "validate", "-c"])
            .arg(&path)
            .current_dir(workspace_root())
            .output()
            .expect("cannot run envoy");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            output.status.success(),
            word == "headers",
            "{word}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
