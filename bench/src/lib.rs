//! The benchmark tooling of api-guard (`make bench`), out of the test harness: the Envoy
//! benchmark's rows ([`scenario`]), driving wrk ([`wrk`]), the tables ([`report`]) and the
//! instruction counts under callgrind ([`callgrind`], `BENCH_INSTRUCTIONS`). The
//! binaries: `bench` (Envoy side by side), `core-bench` (the decision core natively) and
//! `fleet-bench` (the fleet rate limit tier). They use `integration-tests` to boot Envoy, the
//! echo upstream and the introspection server.

pub mod callgrind;
pub mod report;
pub mod scenario;
pub mod wrk;
