//! Test harness for api-guard: boots the real Envoy with the real module and the shipped
//! configuration (`envoy/envoy.yaml`), in front of in-process echo upstreams.
//!
//! - [`echo::Upstream`]: the upstream service; records what it received.
//! - [`EnvoyConfig`]: `envoy/envoy.yaml` (or another bootstrap) with the few edits tests may make.
//! - [`Envoy`]: a running Envoy on free ports; killed on drop, its log printed if a test failed.
//! - [`RequestBuilder`] / [`Response`]: requests through Envoy with curl (TLS, HTTP/2, raw bytes).
//! - [`ratelimit::Redis`] / [`ratelimit::RateLimitService`]: the fleet rate limit tier as processes.
//!
//! Everything talks to loopback only, and every wait is bounded.

pub mod auth_server;
pub mod client;
pub mod config;
pub mod echo;
pub mod envoy;
pub mod jwt_fixtures;
pub mod load;
pub mod process;
pub mod ratelimit;
mod tempdir;
pub mod trailers;

use std::path::{Path, PathBuf};

pub use auth_server::{AuthRequest, AuthServer};
pub use client::{RequestBuilder, Response};
pub use config::EnvoyConfig;
pub use echo::{RecordedRequest, Upstream};
pub use envoy::{Envoy, StartFailure};

/// Where the module is built by `make wasm`, relative to the workspace root.
pub const WASM_RELATIVE_PATH: &str = "target/wasm32-wasip1/release/api_guard.wasm";

/// A loopback port that was free a moment ago (for the rare config that needs to know a
/// listener's port in advance).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free loopback port")
}

/// The workspace root (the repository root): all relative paths in `envoy/*.yaml` start here.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The Envoy binary: `$ENVOY_BIN`, else `<root>/.venv/envoy-bin` (created by `make setup`).
/// Panics with that hint if it is missing.
pub fn envoy_bin() -> PathBuf {
    try_envoy_bin().unwrap_or_else(|hint| panic!("{hint}"))
}

/// [`envoy_bin`], or the hint as an error.
pub fn try_envoy_bin() -> Result<PathBuf, String> {
    let path = match std::env::var_os("ENVOY_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => workspace_root().join(".venv/envoy-bin"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "Envoy binary not found at {} (ENVOY_BIN, else <root>/.venv/envoy-bin): run `make setup`",
            path.display()
        ))
    }
}

/// The built module, `<root>/target/wasm32-wasip1/release/api_guard.wasm`. Panics with a hint
/// (`make wasm`) if it is missing.
pub fn wasm_path() -> PathBuf {
    try_wasm_path().unwrap_or_else(|hint| panic!("{hint}"))
}

/// [`wasm_path`], or the hint as an error.
pub fn try_wasm_path() -> Result<PathBuf, String> {
    let path = workspace_root().join(WASM_RELATIVE_PATH);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "api-guard module not found at {}: run `make wasm`",
            path.display()
        ))
    }
}

/// The hex SHA-256 digest of an API key, as the plugin configuration stores it.
pub fn key_digest(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
