//! api-guard: an Envoy proxy-wasm filter that decides, per request and per route, whether a
//! request may reach the upstream.
//!
//! The request flow reads from the module list:
//! `config` compiles the plugin configuration into a [`policy::Guard`]; for each request the
//! adapter builds a [`request::RequestView`], `pipeline` selects the route's policy (`route`)
//! and runs the `checks` in order, producing a [`verdict::Decision`]; `lifecycle` decides,
//! event by event (headers, body, trailers, callout answers), when anything may go on to the
//! upstream; `response` is the single place where rejections become HTTP answers and
//! `metrics` names the decision counters.
//! Only `host` touches proxy-wasm; everything else is plain Rust, tested natively.

// Unsafe code exists only in `host/abi.rs` (raw proxy-wasm host calls) and the SDK's entry point
// in `host/mod.rs`, each allowed there by name; `host/` is compiled for wasm32 only, so every
// native build (unit tests, clippy, fuzzing) forbids unsafe code in the whole crate.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]
#![cfg_attr(target_arch = "wasm32", deny(unsafe_code))]
// Stricter than the workspace lint set: no panics on the request path (clippy.toml allows them
// in tests).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::indexing_slicing)]

pub mod abuse;
pub mod checks;
pub mod cidr;
pub mod config;
pub mod decision_record;
pub mod digest;
pub mod edits;
pub mod introspect;
pub mod jwt;
pub mod lifecycle;
pub mod metrics;
pub mod payload;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod rejection;
pub mod remote;
pub mod request;
pub mod response;
pub mod route;
pub mod screening;
pub mod store;
pub mod time;
pub mod verdict;

#[cfg(target_arch = "wasm32")]
mod host;
