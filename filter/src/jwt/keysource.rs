//! Moved to [`crate::remote`] (remote documents and client authentication); this path is kept
//! for the modules that still name it (the host adapter).

pub use crate::remote::document::*;
