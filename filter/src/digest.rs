//! Credential digests. The configuration holds only SHA-256 digests of API keys; a presented key is
//! hashed once and looked up by digest, so plaintext keys never live in memory longer than the
//! request header that carried them.

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest of a credential.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(secret: &[u8]) -> KeyDigest {
        KeyDigest(Sha256::digest(secret).into())
    }

    /// Parses 64 hex digits, either case.
    pub fn from_hex(s: &str) -> Option<KeyDigest> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let hi = hex_value(*pair.first()?)?;
            let lo = hex_value(*pair.get(1)?)?;
            *slot = hi << 4 | lo;
        }
        Some(KeyDigest(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Debug output never shows a digest in full: even digests of weak keys can be brute-forced.
impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

/// The SHA-256 digest of a presented credential: the only form in which a credential reaches
/// shared data. (Separate from `digest::KeyDigest`, whose bytes are private; same hash.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub(crate) [u8; 32]);

impl TokenDigest {
    pub fn of(credential: &[u8]) -> TokenDigest {
        TokenDigest(Sha256::digest(credential).into())
    }

    /// The first 8 bytes as a number: uniform, so it picks the cache slot directly.
    pub(crate) fn slot_hash(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.0.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(b)
    }
}

/// Never printed: a digest of a weak API key can be brute-forced.
impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_known_vector() {
        // printf 'demo-key-123' | sha256sum
        let want = "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873";
        assert_eq!(
            KeyDigest::of(b"demo-key-123"),
            KeyDigest::from_hex(want).unwrap()
        );
        assert_eq!(
            KeyDigest::from_hex(&want.to_uppercase()),
            KeyDigest::from_hex(want)
        );
    }

    #[test]
    fn from_hex_rejects_table() {
        let ok = "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873";
        for bad in [
            "",
            &ok[..63],
            &format!("{ok}0"),
            &format!("g{}", &ok[1..]),
            &format!("é{}", &ok[2..]),
        ] {
            assert!(KeyDigest::from_hex(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_digest() {
        assert_eq!(format!("{:?}", KeyDigest::of(b"x")), "KeyDigest(..)");
    }
}
