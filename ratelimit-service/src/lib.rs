//! A thin Envoy rate limit service: `envoy.service.ratelimit.v3.RateLimitService` (gRPC) on
//! Limitador's Redis storage, so every Envoy of a fleet counts against one number.
//!
//! - [`config`]: the limits (domain, descriptor pattern, rate, window), checked at start.
//! - [`descriptors`]: which limit counts a descriptor, and under which counter (pure).
//! - [`service`]: the gRPC method: plan, count in Redis through Limitador, answer.
//! - [`metrics`], [`http`]: `/metrics` and `/healthz`.

pub mod config;
pub mod descriptors;
pub mod http;
pub mod metrics;
pub mod service;
