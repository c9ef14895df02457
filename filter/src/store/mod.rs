//! Shared data: the store every worker of one Envoy shares (Envoy's shared data in production,
//! one key-value map per `vm_id`), as a port the pure core is written against, an in-memory
//! implementation for tests, and the bounded probed slot table that rate limits and the
//! introspection cache keep their state in.
//!
//! - [`SharedStore`]: the port. The contract is Envoy's, and [`MemoryStore`] mirrors it
//!   exactly:
//!   - `get` of a missing key is `(None, None)`;
//!   - `set(.., Some(cas))` on an existing key fails with [`StoreError::CasMismatch`] unless
//!     `cas` is the key's current CAS value; every successful write gives the key a new CAS
//!     value;
//!   - `set` on a missing key creates it unconditionally, whatever `cas` says (the creation
//!     race the tables are built around), and keys are never deleted.
//! - [`memory`]: [`MemoryStore`], that contract over a map, with injectable failures.
//! - [`slots`]: [`SlotTable`], a fixed set of `<prefix>.<n>` keys probed from a hash, and the
//!   compare-and-swap retry loop every table update runs.

pub mod memory;
mod port;
pub mod slots;

pub use memory::MemoryStore;
pub use port::{SharedStore, StoreError, Versioned};
pub use slots::{cas_loop, SlotTable, Step, MAX_CAS_RETRIES, PROBES};
