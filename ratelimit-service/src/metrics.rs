//! Counters for `/metrics` (Prometheus text format), kept in atomics: no lock on the request
//! path. One set per configured limit, fixed at start.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the request duration histogram.
const BUCKETS: [f64; 9] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

#[derive(Debug, Default)]
struct PerLimit {
    ok: AtomicU64,
    over_limit: AtomicU64,
}

/// The answer a whole request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    Ok,
    OverLimit,
    /// Refused before counting (bad request, unknown domain): an error to Envoy.
    Invalid,
    /// Redis failed or was too slow: an error to Envoy, whose failure mode decides.
    StorageError,
}

#[derive(Debug)]
pub struct Metrics {
    names: Vec<String>,
    limits: Vec<PerLimit>,
    unmatched: AtomicU64,
    requests: [AtomicU64; 4],
    buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_micros: AtomicU64,
}

impl Metrics {
    pub fn new(limit_names: Vec<String>) -> Metrics {
        Metrics {
            limits: limit_names.iter().map(|_| PerLimit::default()).collect(),
            names: limit_names,
            unmatched: AtomicU64::new(0),
            requests: Default::default(),
            buckets: Default::default(),
            duration_count: AtomicU64::new(0),
            duration_micros: AtomicU64::new(0),
        }
    }

    pub fn descriptor(&self, limit: usize, over_limit: bool) {
        if let Some(l) = self.limits.get(limit) {
            let counter = if over_limit { &l.over_limit } else { &l.ok };
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn unmatched(&self) {
        self.unmatched.fetch_add(1, Relaxed);
    }

    pub fn request(&self, result: RequestResult, took: Duration) {
        self.requests[result as usize].fetch_add(1, Relaxed);
        let seconds = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.duration_micros.fetch_add(micros, Relaxed);
    }

    /// Requests answered with `result` so far.
    pub fn requests(&self, result: RequestResult) -> u64 {
        self.requests[result as usize].load(Relaxed)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE api_guard_ratelimit_requests_total counter");
        for (result, label) in [
            (RequestResult::Ok, "ok"),
            (RequestResult::OverLimit, "over_limit"),
            (RequestResult::Invalid, "invalid"),
            (RequestResult::StorageError, "storage_error"),
        ] {
            let _ = writeln!(
                out,
                "api_guard_ratelimit_requests_total{{result=\"{label}\"}} {}",
                self.requests(result)
            );
        }
        let _ = writeln!(out, "# TYPE api_guard_ratelimit_descriptors_total counter");
        for (name, l) in self.names.iter().zip(&self.limits) {
            for (label, counter) in [("ok", &l.ok), ("over_limit", &l.over_limit)] {
                let _ = writeln!(
                    out,
                    "api_guard_ratelimit_descriptors_total{{limit=\"{name}\",result=\"{label}\"}} {}",
                    counter.load(Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "api_guard_ratelimit_descriptors_total{{limit=\"\",result=\"unmatched\"}} {}",
            self.unmatched.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE api_guard_ratelimit_request_seconds histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "api_guard_ratelimit_request_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.duration_count.load(Relaxed);
        let _ = writeln!(
            out,
            "api_guard_ratelimit_request_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "api_guard_ratelimit_request_seconds_sum {}",
            self.duration_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "api_guard_ratelimit_request_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_with_its_count() {
        let m = Metrics::new(vec!["per_client".into(), "per_subject".into()]);
        m.descriptor(0, false);
        m.descriptor(0, false);
        m.descriptor(1, true);
        m.descriptor(7, true); // out of range: ignored, not a panic
        m.unmatched();
        m.request(RequestResult::Ok, Duration::from_micros(800));
        m.request(RequestResult::StorageError, Duration::from_millis(200));
        let text = m.render();
        for line in [
            "api_guard_ratelimit_requests_total{result=\"ok\"} 1",
            "api_guard_ratelimit_requests_total{result=\"storage_error\"} 1",
            "api_guard_ratelimit_requests_total{result=\"over_limit\"} 0",
            "api_guard_ratelimit_descriptors_total{limit=\"per_client\",result=\"ok\"} 2",
            "api_guard_ratelimit_descriptors_total{limit=\"per_subject\",result=\"over_limit\"} 1",
            "api_guard_ratelimit_descriptors_total{limit=\"\",result=\"unmatched\"} 1",
            "api_guard_ratelimit_request_seconds_bucket{le=\"0.0005\"} 0",
            "api_guard_ratelimit_request_seconds_bucket{le=\"0.001\"} 1",
            "api_guard_ratelimit_request_seconds_bucket{le=\"0.1\"} 1",
            "api_guard_ratelimit_request_seconds_bucket{le=\"0.5\"} 2",
            "api_guard_ratelimit_request_seconds_bucket{le=\"+Inf\"} 2",
            "api_guard_ratelimit_request_seconds_sum 0.2008",
            "api_guard_ratelimit_request_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
