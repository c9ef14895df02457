//! GCRA (the generic cell rate algorithm), the bucket math of every rate limit.
//!
//! A limit of `count` requests per `period` with a burst of `burst` has an emission interval
//! `T = ceil(period / count)` (nanoseconds per request) and a tolerance `tau = burst * T`. The
//! whole state of one key is one number, the theoretical arrival time `tat` (Unix nanoseconds):
//! the instant at which the key's bucket is full again. A request at `now`:
//!
//! ```text
//! new_tat = max(tat, now) + T
//! admit   iff new_tat - now <= tau        (then store new_tat)
//! deny    otherwise                       (store nothing; retry after new_tat - tau - now)
//! ```
//!
//! This is a token bucket of `burst` tokens refilled one per `T`, in one `u64`: a fresh key
//! (`tat <= now`) admits `burst` requests at once, then one per `T`. Over any interval of
//! length `e`, a key is never admitted more than `burst + floor(e / T)` times. `T` is rounded
//! up, so rounding only ever makes a limit stricter. A clock that goes backwards cannot refill
//! anything: `tat` never decreases, so a step back only makes the bucket look emptier.

/// The compiled parameters of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// `T`: nanoseconds per request, at least 1.
    pub interval_ns: u64,
    /// `tau = burst * T`.
    pub tolerance_ns: u64,
    pub burst: u64,
}

/// What one request does to one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcraOutcome {
    Allow {
        /// The state to store.
        new_tat: u64,
        /// Requests still admissible right now after this one.
        remaining: u64,
        /// Nanoseconds until the bucket is full again.
        full_in_ns: u64,
    },
    Deny {
        /// Nanoseconds until one request will be admitted.
        retry_after_ns: u64,
        /// Nanoseconds until the bucket is full again.
        full_in_ns: u64,
    },
}

impl Gcra {
    /// `count` requests per `period_ns`, burst `burst`. `None` if a parameter is zero or the
    /// tolerance does not fit in 64 bits (the config compiler reports it).
    pub fn new(count: u64, period_ns: u64, burst: u64) -> Option<Gcra> {
        if count == 0 || period_ns == 0 || burst == 0 {
            return None;
        }
        let interval_ns = period_ns.div_ceil(count).max(1);
        // Keep headroom so that `now + tau` never wraps for any clock before year 2262.
        let tolerance_ns = interval_ns
            .checked_mul(burst)
            .filter(|t| *t <= u64::MAX / 4)?;
        Some(Gcra {
            interval_ns,
            tolerance_ns,
            burst,
        })
    }

    /// Decides one request at `now` (Unix nanoseconds) against the stored `tat`.
    pub fn decide(&self, tat: u64, now: u64) -> GcraOutcome {
        let base = tat.max(now);
        let new_tat = base.saturating_add(self.interval_ns);
        let ahead = new_tat - now; // base >= now
        if ahead <= self.tolerance_ns {
            GcraOutcome::Allow {
                new_tat,
                remaining: (self.tolerance_ns - ahead) / self.interval_ns,
                full_in_ns: ahead,
            }
        } else {
            GcraOutcome::Deny {
                retry_after_ns: ahead - self.tolerance_ns,
                full_in_ns: base - now,
            }
        }
    }

    /// Whether a bucket with this state is full at `now` (its slot may be reclaimed).
    pub fn is_full(tat: u64, now: u64) -> bool {
        tat <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn table() {
        // 10 per second, burst 20.
        let g = Gcra::new(10, S, 20).unwrap();
        assert_eq!(g.interval_ns, S / 10);
        assert_eq!(g.tolerance_ns, 2 * S);
        let now = 1_000 * S;
        let mut tat = 0;
        for i in 0..20 {
            match g.decide(tat, now) {
                GcraOutcome::Allow {
                    new_tat, remaining, ..
                } => {
                    assert_eq!(remaining, 19 - i);
                    tat = new_tat;
                }
                d => panic!("request {i}: {d:?}"),
            }
        }
        assert_eq!(
            g.decide(tat, now),
            GcraOutcome::Deny {
                retry_after_ns: S / 10,
                full_in_ns: 2 * S
            }
        );
        // One interval later exactly one more.
        assert!(matches!(
            g.decide(tat, now + S / 10),
            GcraOutcome::Allow { remaining: 0, .. }
        ));
        // After idling long enough the bucket is full again.
        assert!(Gcra::is_full(tat, now + 2 * S));
        assert!(matches!(
            g.decide(tat, now + 10 * S),
            GcraOutcome::Allow { remaining: 19, .. }
        ));
        // Rates that do not divide evenly round the interval up (stricter, never looser).
        assert_eq!(Gcra::new(3, S, 1).unwrap().interval_ns, 333_333_334);
        for (c, p, b) in [(0, S, 1), (1, 0, 1), (1, S, 0), (1, u64::MAX / 2, 3)] {
            assert_eq!(Gcra::new(c, p, b), None, "{c} {p} {b}");
        }
    }

    proptest! {
        /// Never more than burst + elapsed / T admissions, whatever the arrival pattern; the
        /// bound holds from the first request on.
        #[test]
        fn never_admits_more_than_burst_plus_refill(
            count in 1u64..1000, period_s in 1u64..100, burst in 1u64..50,
            gaps in proptest::collection::vec(0u64..(2 * S), 1..300),
            start in 0u64..(1u64 << 62),
        ) {
            let g = Gcra::new(count, period_s * S, burst).unwrap();
            let mut tat = 0;
            let mut now = start;
            let mut admitted = 0u64;
            for gap in gaps {
                now += gap;
                if let GcraOutcome::Allow { new_tat, .. } = g.decide(tat, now) {
                    tat = new_tat;
                    admitted += 1;
                }
                let elapsed = now - start;
                prop_assert!(admitted <= burst + elapsed / g.interval_ns,
                    "admitted {} burst {} elapsed {} T {}", admitted, burst, elapsed, g.interval_ns);
            }
        }

        /// After idling for burst * T, a key gets its whole burst again.
        #[test]
        fn refills_after_idle(count in 1u64..1000, burst in 1u64..50, used in 0u64..50, now in S..(1u64 << 61)) {
            let g = Gcra::new(count, S, burst).unwrap();
            let mut tat = 0;
            for _ in 0..used {
                if let GcraOutcome::Allow { new_tat, .. } = g.decide(tat, now) { tat = new_tat; }
            }
            let later = now + g.tolerance_ns;
            prop_assert!(Gcra::is_full(tat, later));
            let mut n = 0;
            while let GcraOutcome::Allow { new_tat, .. } = g.decide(tat, later) {
                tat = new_tat;
                n += 1;
            }
            prop_assert_eq!(n, burst);
        }

        /// A clock that jumps backwards never admits more than the burst plus the refill of the
        /// largest time seen (no refill is created by going back).
        #[test]
        fn clock_going_backwards_is_safe(
            burst in 1u64..20,
            times in proptest::collection::vec(0u64..(10 * S), 1..200),
        ) {
            let g = Gcra::new(1, S, burst).unwrap();
            let base = 1u64 << 40;
            let mut tat = 0;
            let mut admitted = 0;
            let mut max_seen = base;
            for t in times {
                let now = base + t;
                max_seen = max_seen.max(now);
                if let GcraOutcome::Allow { new_tat, .. } = g.decide(tat, now) {
                    prop_assert!(new_tat > tat);
                    tat = new_tat;
                    admitted += 1;
                }
                prop_assert!(admitted <= burst + (max_seen - base) / g.interval_ns);
            }
        }
    }
}
