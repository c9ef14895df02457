//! [`MemoryStore`]: Envoy's shared-data contract (see [`super`]) over a map, for native tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::port::{SharedStore, StoreError, Versioned};

/// Envoy's shared-data semantics over a `Mutex<HashMap>`, for native tests (also across real
/// threads). Can inject failures: CAS mismatches caused by a simulated concurrent writer, and an
/// unavailable store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    /// The next this many CAS writes meet a concurrent writer first.
    interfere: u32,
    unavailable: bool,
    gets: u64,
    sets: u64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another test thread panicked; the map is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `n` CAS writes find that another worker wrote the key first.
    pub fn interfere_with_next_writes(&self, n: u32) {
        self.lock().interfere = n;
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    /// How many keys exist (keys are never deleted, as in Envoy).
    pub fn key_count(&self) -> usize {
        self.lock().map.len()
    }

    pub fn keys(&self) -> Vec<String> {
        self.lock().map.keys().cloned().collect()
    }

    /// (gets, sets) so far.
    pub fn calls(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.gets, inner.sets)
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Versioned, StoreError> {
        let mut inner = self.lock();
        if inner.unavailable {
            return Err(StoreError::Unavailable(2));
        }
        inner.gets += 1;
        Ok(match inner.map.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.unavailable {
            return Err(StoreError::Unavailable(2));
        }
        inner.sets += 1;
        inner.next_cas = inner.next_cas.wrapping_add(1).max(1);
        let next = inner.next_cas;
        let interfere = cas.is_some() && inner.interfere > 0;
        if interfere {
            inner.interfere -= 1;
        }
        match inner.map.get_mut(key) {
            Some(entry) => {
                if interfere {
                    // Another worker rewrote the key (same bytes, new CAS value).
                    entry.1 = next;
                    return Err(StoreError::CasMismatch);
                }
                if let Some(c) = cas.filter(|c| *c != 0) {
                    if c != entry.1 {
                        return Err(StoreError::CasMismatch);
                    }
                }
                *entry = (value.to_vec(), next);
            }
            None => {
                inner.map.insert(key.to_string(), (value.to_vec(), next));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_envoy_semantics() {
        let s = MemoryStore::new();
        assert_eq!(s.get("k"), Ok((None, None)));
        // Creation ignores the CAS value.
        s.set("k", b"a", Some(12345)).unwrap();
        let (v, cas) = s.get("k").unwrap();
        assert_eq!(v.as_deref(), Some(&b"a"[..]));
        let cas = cas.unwrap();
        s.set("k", b"b", Some(cas)).unwrap();
        assert_eq!(s.set("k", b"c", Some(cas)), Err(StoreError::CasMismatch));
        s.set("k", b"d", None).unwrap();
        assert_eq!(s.get("k").unwrap().0.as_deref(), Some(&b"d"[..]));
        s.interfere_with_next_writes(1);
        let cas = s.get("k").unwrap().1;
        assert_eq!(s.set("k", b"e", cas), Err(StoreError::CasMismatch));
        let cas = s.get("k").unwrap().1;
        s.set("k", b"e", cas).unwrap();
        s.set_unavailable(true);
        assert!(matches!(s.get("k"), Err(StoreError::Unavailable(_))));
        assert_eq!(s.key_count(), 1);
    }
}
