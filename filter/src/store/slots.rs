//! A bounded table of shared-data slots probed from a hash, and the compare-and-swap loop that
//! updates it. Rate limits (`ratelimit::table`) and the introspection cache
//! (`introspect::cache`) keep their state in such tables; each decides what a slot holds, which
//! slot a key takes and what it evicts, and this module fixes what they share:
//!
//! - **Bounded**: a table is exactly the keys `<prefix>.<n>` for `n < slots`, never more
//!   (Envoy's shared data never deletes a key, so a table that grew with its clients would
//!   grow for ever).
//! - **Probing**: a hash `h` probes the [`PROBES`] slots from `h mod slots` on (all of them in a
//!   smaller table). Tables place an entry at the first free probe and never empty a slot
//!   again, so a lookup may stop at the first never-used slot.
//! - **Compare-and-swap**: every write is conditional on the value just read; a concurrent
//!   writer makes the attempt read again, at most [`MAX_CAS_RETRIES`] times ([`cas_loop`]).

/// Slots probed per hash.
pub const PROBES: u32 = 4;
/// Re-reads after a CAS mismatch before an update gives up.
pub const MAX_CAS_RETRIES: u32 = 32;

/// Where a table lives and how many slots it has (a view over the owner's fields: building
/// one per request allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotTable<'a> {
    /// Shared-data key prefix, e.g. `api_guard.rl.api.per_second`.
    pub prefix: &'a str,
    /// At least 1 (a table of 0 slots has 1).
    pub slots: u32,
}

impl<'a> SlotTable<'a> {
    pub fn new(prefix: &'a str, slots: u32) -> SlotTable<'a> {
        SlotTable {
            prefix,
            slots: slots.max(1),
        }
    }

    /// The shared-data key of slot `slot`.
    pub fn key(&self, slot: u32) -> String {
        format!("{}.{slot}", self.prefix)
    }

    /// Every slot key of the table.
    pub fn keys(self) -> impl Iterator<Item = String> + 'a {
        (0..self.slots).map(move |s| self.key(s))
    }

    /// The slot keys `hash` probes, in probe order.
    pub fn probe(self, hash: u64) -> impl Iterator<Item = String> + 'a {
        let max = u64::from(self.slots);
        let start = hash % max;
        (0..u64::from(PROBES).min(max))
            .map(move |i| u32::try_from((start + i) % max).unwrap_or(0))
            .map(move |slot| self.key(slot))
    }
}

/// What one read-decide-write attempt of a [`cas_loop`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    /// Finished: written, nothing to write, or failed for a reason retrying cannot fix.
    Done(T),
    /// A write met a concurrent writer (CAS mismatch): read again. Counts against
    /// [`MAX_CAS_RETRIES`].
    Conflict,
    /// A missing key was just created: read again. Free `creations` times (a table creates at
    /// most a few keys on the request path), then counted as a conflict (a store that keeps
    /// dropping keys must not loop for ever).
    Created,
}

/// Runs `attempt` until it is [`Step::Done`]: the first attempt and at most [`MAX_CAS_RETRIES`]
/// re-reads after conflicts. Returns the result (`None`: every attempt met a concurrent
/// writer) and how many re-reads conflicts forced.
pub fn cas_loop<T>(creations: u32, mut attempt: impl FnMut() -> Step<T>) -> (Option<T>, u32) {
    let mut conflicts = 0;
    let mut created = 0;
    loop {
        match attempt() {
            Step::Done(result) => return (Some(result), conflicts),
            Step::Created if created < creations => created += 1,
            Step::Created | Step::Conflict => {
                if conflicts == MAX_CAS_RETRIES {
                    return (None, conflicts);
                }
                conflicts += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_wrap_around_and_stay_in_the_table() {
        let t = SlotTable::new("p", 10);
        let keys: Vec<String> = t.probe(8).collect();
        assert_eq!(keys, ["p.8", "p.9", "p.0", "p.1"]);
        let small = SlotTable::new("p", 2);
        assert_eq!(small.probe(u64::MAX).collect::<Vec<_>>(), ["p.1", "p.0"]);
        let empty = SlotTable::new("p", 0);
        assert_eq!(empty.keys().collect::<Vec<_>>(), ["p.0"]);
        assert_eq!(empty.probe(7).collect::<Vec<_>>(), ["p.0"]);
        assert_eq!(t.keys().count(), 10);
    }

    #[test]
    fn cas_loop_retries_conflicts_then_gives_up() {
        let mut calls = 0;
        let (r, retries) = cas_loop(0, || {
            calls += 1;
            if calls <= 3 {
                Step::Conflict
            } else {
                Step::Done(calls)
            }
        });
        assert_eq!((r, retries), (Some(4), 3));
        let mut calls = 0;
        let (r, retries) = cas_loop(0, || {
            calls += 1;
            Step::<()>::Conflict
        });
        assert_eq!(r, None);
        assert_eq!(calls, MAX_CAS_RETRIES + 1);
        assert_eq!(retries, MAX_CAS_RETRIES);
    }

    #[test]
    fn creations_are_free_up_to_their_budget() {
        let mut calls = 0;
        let (r, retries) = cas_loop(2, || {
            calls += 1;
            if calls <= 2 {
                Step::Created
            } else {
                Step::Done(())
            }
        });
        assert_eq!((r, retries), (Some(()), 0));
        let mut calls = 0;
        let (r, _) = cas_loop(2, || {
            calls += 1;
            Step::<()>::Created
        });
        assert_eq!(r, None);
        assert_eq!(calls, 2 + MAX_CAS_RETRIES + 1);
    }
}
