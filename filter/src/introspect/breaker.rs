//! The circuit breaker in front of the introspection service, shared by every worker of one
//! Envoy through one shared-data key (16 bytes: state u8, 3 zero bytes, consecutive failures
//! u32 LE, a Unix-millisecond time u64 LE), updated with compare-and-swap.
//!
//! - **Closed**: callouts are made ([`Gate::Call`]); each failure adds one, a success resets
//!   the count; `failures` consecutive failures open the breaker.
//! - **Open** until `now + open_ms`: no callouts ([`Gate::Open`]); requests fail per policy.
//! - Then **half-open**: exactly one worker wins the probe ([`Gate::Probe`], taken with CAS,
//!   held until `now + probe_ms`); everyone else still sees `Open`. The probe's success closes
//!   the breaker, its failure re-opens it for `open_ms`. A probe whose result never comes (its
//!   VM died) expires at `probe_ms` and the next request probes again.
//!
//! A result recorded while open (a callout that started before the breaker opened) does not
//! extend the open period; a success in any state closes the breaker (the service answered).

use crate::store::{SharedStore, StoreError};

use super::cache::MAX_CAS_RETRIES;

const BYTES: usize = 16;
const CREATE_CAS: u32 = u32::MAX;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breaker {
    /// Shared-data key, e.g. `api_guard.introspect.breaker`.
    pub key: String,
    /// Consecutive failures that open the breaker (at least 1).
    pub failures: u32,
    pub open_ms: u64,
    /// How long the half-open probe is reserved (the callout timeout plus a margin).
    pub probe_ms: u64,
}

/// May this request call the service?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Call,
    /// This request is the half-open probe: call, and record the result.
    Probe,
    /// No callout: fail per policy (`retry_after_ms`: until the breaker may probe again).
    Open {
        retry_after_ms: u64,
    },
}

/// A state change caused by [`Breaker::record`], for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: u64,
    },
    /// The probe is reserved until `until`.
    HalfOpen {
        until: u64,
    },
}

fn encode(s: State) -> [u8; BYTES] {
    let (tag, failures, time) = match s {
        State::Closed { failures } => (0u8, failures, 0u64),
        State::Open { until } => (1, 0, until),
        State::HalfOpen { until } => (2, 0, until),
    };
    let mut out = [0u8; BYTES];
    out[0] = tag;
    out[4..8].copy_from_slice(&failures.to_le_bytes());
    out[8..16].copy_from_slice(&time.to_le_bytes());
    out
}

/// Missing or unreadable: closed (a new Envoy starts trusting the service).
fn decode(v: Option<&[u8]>) -> State {
    let Some(v) = v.filter(|v| v.len() == BYTES) else {
        return State::Closed { failures: 0 };
    };
    let failures = v
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    let time = v
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    match v.first() {
        Some(1) => State::Open { until: time },
        Some(2) => State::HalfOpen { until: time },
        _ => State::Closed { failures },
    }
}

impl Breaker {
    fn read(&self, store: &dyn SharedStore) -> Result<(State, u32), StoreError> {
        let (v, cas) = store.get(&self.key)?;
        Ok((decode(v.as_deref()), cas.unwrap_or(CREATE_CAS)))
    }

    /// Writes `next` over the state read with `cas`: `Ok(false)` on a CAS mismatch.
    fn write(&self, store: &dyn SharedStore, next: State, cas: u32) -> Result<bool, StoreError> {
        match store.set(&self.key, &encode(next), Some(cas)) {
            Ok(()) => Ok(true),
            Err(StoreError::CasMismatch) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Asks the breaker before a callout. Reads once; writes only to take the half-open probe.
    pub fn allow(&self, store: &dyn SharedStore, now_ms: u64) -> Result<Gate, StoreError> {
        for _ in 0..=MAX_CAS_RETRIES {
            let (state, cas) = self.read(store)?;
            let until = match state {
                State::Closed { .. } => return Ok(Gate::Call),
                State::Open { until } | State::HalfOpen { until } => until,
            };
            if now_ms < until {
                return Ok(Gate::Open {
                    retry_after_ms: until - now_ms,
                });
            }
            let probe = State::HalfOpen {
                until: now_ms.saturating_add(self.probe_ms.max(1)),
            };
            if self.write(store, probe, cas)? {
                return Ok(Gate::Probe);
            }
            // Someone else wrote first (maybe took the probe): decide again.
        }
        Err(StoreError::CasMismatch)
    }

    /// Records a callout's outcome (a 200 with a parseable answer is a success; a timeout, a
    /// 5xx, a cluster failure or an unparseable answer is a failure).
    pub fn record(
        &self,
        store: &dyn SharedStore,
        success: bool,
        now_ms: u64,
    ) -> Result<Transition, StoreError> {
        for _ in 0..=MAX_CAS_RETRIES {
            let (state, cas) = self.read(store)?;
            let (next, transition) = match (state, success) {
                (State::Closed { failures: 0 }, true) => return Ok(Transition::None),
                (State::Closed { .. }, true) => (State::Closed { failures: 0 }, Transition::None),
                (State::Open { .. } | State::HalfOpen { .. }, true) => {
                    (State::Closed { failures: 0 }, Transition::Closed)
                }
                (State::Closed { failures }, false) => {
                    let failures = failures.saturating_add(1);
                    if failures >= self.failures.max(1) {
                        (self.opened(now_ms), Transition::Opened)
                    } else {
                        (State::Closed { failures }, Transition::None)
                    }
                }
                (State::HalfOpen { .. }, false) => (self.opened(now_ms), Transition::Opened),
                (State::Open { .. }, false) => return Ok(Transition::None),
            };
            if self.write(store, next, cas)? {
                return Ok(transition);
            }
        }
        Err(StoreError::CasMismatch)
    }

    fn opened(&self, now_ms: u64) -> State {
        State::Open {
            until: now_ms.saturating_add(self.open_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::sync::Arc;

    const NOW: u64 = 1_800_000_000_000;

    fn breaker() -> Breaker {
        Breaker {
            key: "t.breaker".into(),
            failures: 3,
            open_ms: 10_000,
            probe_ms: 750,
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Allow(u64, Gate),
        Record(bool, u64, Transition),
    }

    #[test]
    fn transitions_table() {
        use Op::*;
        let open = |ms| Gate::Open { retry_after_ms: ms };
        let script = [
            Allow(0, Gate::Call),
            Record(false, 0, Transition::None),
            Record(false, 1, Transition::None),
            // A success resets the consecutive count.
            Record(true, 2, Transition::None),
            Record(false, 3, Transition::None),
            Record(false, 4, Transition::None),
            Allow(4, Gate::Call),
            Record(false, 5, Transition::Opened),
            Allow(5, open(10_000)),
            Allow(10_004, open(1)),
            // A late failure does not extend the open period.
            Record(false, 6_000, Transition::None),
            Allow(10_005, Gate::Probe),
            // Exactly one probe.
            Allow(10_005, open(750)),
            Allow(10_754, open(1)),
            // The probe fails: open again.
            Record(false, 10_700, Transition::Opened),
            Allow(20_699, open(1)),
            Allow(20_700, Gate::Probe),
            // The probe never reports: it expires and another request probes.
            Allow(21_450, Gate::Probe),
            Record(true, 21_500, Transition::Closed),
            Allow(21_500, Gate::Call),
            Record(false, 21_501, Transition::None),
        ];
        let store = MemoryStore::new();
        let b = breaker();
        for (i, op) in script.iter().enumerate() {
            match *op {
                Allow(t, want) => assert_eq!(b.allow(&store, NOW + t), Ok(want), "step {i}"),
                Record(ok, t, want) => {
                    assert_eq!(b.record(&store, ok, NOW + t), Ok(want), "step {i}")
                }
            }
        }
        assert_eq!(store.key_count(), 1);
    }

    #[test]
    fn garbage_reads_closed_and_store_errors_surface() {
        let store = MemoryStore::new();
        let b = breaker();
        store.set(&b.key, b"junk", None).unwrap();
        assert_eq!(b.allow(&store, NOW), Ok(Gate::Call));
        // A success on an unreadable key rewrites nothing (it reads as closed with 0 failures).
        assert_eq!(b.record(&store, true, NOW), Ok(Transition::None));
        let one = Breaker {
            failures: 0,
            ..breaker()
        };
        assert_eq!(one.record(&store, false, NOW), Ok(Transition::Opened));
        store.set_unavailable(true);
        assert!(matches!(
            b.allow(&store, NOW),
            Err(StoreError::Unavailable(_))
        ));
        assert!(b.record(&store, false, NOW).is_err());
    }

    #[test]
    fn cas_conflicts_are_retried() {
        let store = MemoryStore::new();
        let b = breaker();
        for _ in 0..2 {
            store.interfere_with_next_writes(4);
            b.record(&store, false, NOW).unwrap();
        }
        store.interfere_with_next_writes(4);
        assert_eq!(b.record(&store, false, NOW), Ok(Transition::Opened));
        store.interfere_with_next_writes(4);
        assert_eq!(b.allow(&store, NOW + 10_000), Ok(Gate::Probe));
        store.interfere_with_next_writes(MAX_CAS_RETRIES + 1);
        assert_eq!(
            b.record(&store, true, NOW + 10_001),
            Err(StoreError::CasMismatch)
        );
    }

    #[test]
    fn threads_open_once_and_probe_once() {
        let store = Arc::new(MemoryStore::new());
        let b = Arc::new(breaker());
        // 8 threads x 10 failures: the breaker opens exactly once (later failures see Open).
        let opened: usize = (0..8)
            .map(|_| {
                let (store, b) = (store.clone(), b.clone());
                std::thread::spawn(move || {
                    (0..10)
                        .filter(|_| b.record(&*store, false, NOW).unwrap() == Transition::Opened)
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(opened, 1);
        // After open_ms, exactly one of many concurrent requests gets the probe.
        let probes: usize = (0..8)
            .map(|_| {
                let (store, b) = (store.clone(), b.clone());
                std::thread::spawn(move || {
                    (0..20)
                        .filter(|_| b.allow(&*store, NOW + 10_000).unwrap() == Gate::Probe)
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(probes, 1);
    }
}
