//! The port: what the pure core asks of Envoy's shared data (the contract is in [`super`]).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote the key since it was read: read again and retry.
    CasMismatch,
    /// The host refused the call (its raw status, for logs).
    Unavailable(u32),
}

/// A value and its CAS token, as `get` returns them.
pub type Versioned = (Option<Vec<u8>>, Option<u32>);

pub trait SharedStore {
    fn get(&self, key: &str) -> Result<Versioned, StoreError>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}
