//! The store port and its in-memory implementation, at the path they had before they moved to
//! `crate::store` (modules of other areas still import them from here; once none does, this
//! file goes).

pub use crate::store::{MemoryStore, SharedStore, StoreError, Versioned};
