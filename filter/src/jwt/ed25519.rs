//! EdDSA (Ed25519, RFC 8032 section 5.1.7; RFC 8037) verification with a fixed-base table
//! prepared once per key.
//!
//! Why not jwt-simple's (ed25519-compact's) verification: on every request it decodes the public
//! key `A` again (a field exponentiation and a small-order check) and computes `[k]A` with a
//! variable-base method (253 doublings plus the additions of a sliding window), on 51-bit limbs
//! whose 128-bit products wasm32 emulates. The key is fixed, so `A` is decoded once and its
//! multiples are tabulated when the JWK is compiled: for every window `i` of
//! [`KEY_WINDOW_BITS`] bits, `j·2^(W·i)·A` for `j = 1..=2^(W-1)` as affine points
//! (`jwt/edwards25519.rs`, variable-time, on fiat-crypto's 32-bit field arithmetic). `k` and `S`
//! are recoded into signed digits, and `[S]B - [k]A` is one mixed addition per non-zero digit and
//! no doubling; the base point `B` has the same kind of table ([`BASE_WINDOW_BITS`]), built once
//! per VM with the first key. Decoding `R` (a square root) and the two small-order checks (three
//! doublings each) are the rest. All inputs are public (key, message, signature): variable-time
//! on purpose.
//!
//! Acceptance is exactly ed25519-compact's (what jwt-simple runs), checked by differential tests:
//! - the signature is 64 bytes `R || S`; `S` is canonical (`S < L`);
//! - `A` and `R` are canonical encodings (`y < p`; no sign bit on a point with `x = 0`) of
//!   curve points that are not of small order (a key that fails this is compiled through
//!   jwt-simple, which then rejects every signature, as before);
//! - `k = SHA-512(R || A || M) mod L` over the encodings as received;
//! - valid iff `[S]B - [k]A - R` has small order, i.e. `[8]([S]B - [k]A - R)` is the identity:
//!   the cofactored equation of RFC 8032 section 5.1.7, which ed25519-compact checks (a key or
//!   an `R` with a torsion component verifies where the cofactorless `[S]B = R + [k]A` would
//!   refuse; `torsion_differences_are_judged_like_ed25519_compact`).

use std::sync::{Arc, OnceLock};

use curve25519_dalek::Scalar;
use sha2::{Digest, Sha512};

use super::edwards25519::{
    decode_point, signed_digits, table_bytes, windows, FixedBaseTable, Point,
};

/// Window width of the per-key tables (chosen by measurement, see docs/jwt.md).
pub const KEY_WINDOW_BITS: usize = 6;
/// Window width of the base point's table (one per VM, so it may be wider).
pub const BASE_WINDOW_BITS: usize = 7;

/// Bytes of one key's table.
pub const TABLE_BYTES: usize = table_bytes(KEY_WINDOW_BITS);
/// Bytes of the base point's table (once per VM).
pub const BASE_TABLE_BYTES: usize = table_bytes(BASE_WINDOW_BITS);

/// The encoding of the base point `B` (`y = 4/5`, `x` even).
const BASE_POINT: [u8; 32] = {
    let mut b = [0x66u8; 32];
    b[0] = 0x58;
    b
};

/// The base point's table, built once per VM (each Envoy worker has its own) with the first key.
/// `None` only if the constant did not decode, which the tests rule out.
fn base_table() -> Option<&'static FixedBaseTable> {
    static TABLE: OnceLock<Option<FixedBaseTable>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            decode_point(&BASE_POINT).map(|b| FixedBaseTable::new(&b, BASE_WINDOW_BITS))
        })
        .as_ref()
}

/// An Ed25519 public key ready to verify: its encoding (hashed into `k`) and the table of `A`.
#[derive(Clone)]
pub struct Ed25519Key {
    encoded: [u8; 32],
    table: Arc<FixedBaseTable>,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key").finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// From the 32-byte encoding; `None` if ed25519-compact would reject it as a public key
    /// (not 32 bytes, not canonical, not a point, small order).
    pub fn from_bytes(encoded: &[u8]) -> Option<Ed25519Key> {
        let encoded: [u8; 32] = encoded.try_into().ok()?;
        let a = decode_point(&encoded)?;
        // The base point's table comes with the first key, so no request pays for it.
        base_table()?;
        Some(Ed25519Key {
            encoded,
            table: Arc::new(FixedBaseTable::new(&a, KEY_WINDOW_BITS)),
        })
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let (r_bytes, s_bytes) = signature.split_at(32);
        let Ok(s_bytes) = <[u8; 32]>::try_from(s_bytes) else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let Ok(r_encoded) = <[u8; 32]>::try_from(r_bytes) else {
            return false;
        };
        let Some(r) = decode_point(&r_encoded) else {
            return false;
        };
        let Some(base) = base_table() else {
            return false;
        };
        let mut hash = Sha512::new();
        hash.update(r_encoded);
        hash.update(self.encoded);
        hash.update(message);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hash.finalize());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        // [S]B - [k]A - R: one mixed addition per non-zero digit of S and of k.
        let s_digits = signed_digits(&s.to_bytes(), base.window_bits());
        let k_digits = signed_digits(&k.to_bytes(), self.table.window_bits());
        let mut acc = Point::IDENTITY;
        let rounds = windows(base.window_bits()).max(windows(self.table.window_bits()));
        for (window, (ds, dk)) in s_digits.iter().zip(&k_digits).enumerate().take(rounds) {
            base.add_digit(&mut acc, window, *ds);
            self.table.add_digit(&mut acc, window, dk.wrapping_neg());
        }
        let check = acc.sub_niels(&r.niels());
        check.is_small_order()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::super::edwards25519::FIELD_PRIME;
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use proptest::prelude::*;

    /// ed25519-compact's verdict (the code jwt-simple runs).
    fn reference(key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_compact::Signature::from_slice(signature) else {
            return false;
        };
        ed25519_compact::PublicKey::new(*key)
            .verify(message, &signature)
            .is_ok()
    }

    fn ours(key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
        Ed25519Key::from_bytes(key).is_some_and(|k| k.verify(message, signature))
    }

    /// `L`, the group order, little-endian.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn add_le(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    /// Adds `p` to the y-coordinate where that still fits in 255 bits (y < 19): the
    /// non-canonical encoding of the same point.
    fn non_canonical(encoded: &[u8; 32]) -> Option<[u8; 32]> {
        let mut y = *encoded;
        let sign = y[31] & 0x80;
        y[31] &= 0x7f;
        if y[1..].iter().any(|&b| b != 0) || y[0] >= 19 {
            return None;
        }
        let mut out = add_le(&y, &FIELD_PRIME);
        out[31] |= sign;
        Some(out)
    }

    /// Signatures derived from a valid one that ed25519-compact must judge like us.
    fn variants(signature: &[u8; 64], flip: usize, torsion: usize) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = vec![("valid", signature.to_vec())];
        let mut flipped = *signature;
        flipped[flip % 64] ^= 1 << (flip % 8);
        out.push(("flipped bit", flipped.to_vec()));
        // s + L: the same scalar, non-canonical.
        let mut s_plus_l = *signature;
        s_plus_l[32..].copy_from_slice(&add_le(&signature[32..], &ORDER));
        out.push(("s + L", s_plus_l.to_vec()));
        let mut s_is_l = *signature;
        s_is_l[32..].copy_from_slice(&ORDER);
        out.push(("s = L", s_is_l.to_vec()));
        // R plus a torsion point: another encoding, hence another k; refused by both (the
        // torsion tolerance itself is `torsion_differences_are_judged_like_ed25519_compact`).
        let r = CompressedEdwardsY(signature[..32].try_into().unwrap())
            .decompress()
            .unwrap();
        let mut with_torsion = *signature;
        with_torsion[..32].copy_from_slice((r + EIGHT_TORSION[torsion % 8]).compress().as_bytes());
        out.push(("R + torsion", with_torsion.to_vec()));
        // Small-order R.
        let mut small_r = *signature;
        small_r[..32].copy_from_slice(EIGHT_TORSION[torsion % 8].compress().as_bytes());
        out.push(("small-order R", small_r.to_vec()));
        out.push(("short", signature[..63].to_vec()));
        let mut long = signature.to_vec();
        long.push(0);
        out.push(("long", long));
        out
    }

    proptest! {
        // Each case signs with a fresh key and builds a table: keep the count modest.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn agrees_with_ed25519_compact(
            seed in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..80),
            flip in 0usize..512,
            torsion in 0usize..8,
        ) {
            let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
            let signature: [u8; 64] = *pair.sk.sign(&message, None);
            let key: [u8; 32] = *pair.pk;
            prop_assert!(ours(&key, &message, &signature));
            for (what, candidate) in variants(&signature, flip, torsion) {
                prop_assert_eq!(
                    ours(&key, &message, &candidate),
                    reference(&key, &message, &candidate),
                    "{}", what
                );
            }
            let mut other = message.clone();
            other.push(0);
            prop_assert!(!ours(&key, &other, &signature));
            prop_assert_eq!(ours(&key, &other, &signature), reference(&key, &other, &signature));
            // The key plus a torsion point: a different encoding (hashed into k) and a point
            // whose torsion part the equation must tolerate exactly as ed25519-compact does.
            let a = CompressedEdwardsY(key).decompress().unwrap();
            let twisted: [u8; 32] = (a + EIGHT_TORSION[torsion]).compress().to_bytes();
            for (what, candidate) in variants(&signature, flip, torsion) {
                prop_assert_eq!(
                    ours(&twisted, &message, &candidate),
                    reference(&twisted, &message, &candidate),
                    "twisted key, {}", what
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random bytes as signature (any length) and as key agree too (almost all rejected;
        /// what matters is that neither side accepts what the other refuses).
        #[test]
        fn random_inputs_agree_with_ed25519_compact(
            key in any::<[u8; 32]>(),
            signature in proptest::collection::vec(any::<u8>(), 0..70),
            message in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            // The same keys refused (about half of random encodings are not on the curve).
            prop_assert_eq!(
                Ed25519Key::from_bytes(&key).is_some(),
                ed25519_compact::PublicKey::new(key).validate().is_ok()
            );
            prop_assert_eq!(
                ours(&key, &message, &signature),
                reference(&key, &message, &signature)
            );
        }
    }

    /// A signature made with a key `A = [a]B + T1` and a nonce point `R = [r]B + T2` (`T1`, `T2`
    /// of small order): `S = r + k·a`, so `[S]B - [k]A - R = -([k]T1 + T2)`, of small order.
    fn torsion_signature(
        a: &Scalar,
        t1: usize,
        r: &Scalar,
        t2: usize,
        message: &[u8],
    ) -> ([u8; 32], [u8; 64], EdwardsPoint) {
        let key_point = EdwardsPoint::mul_base(a) + EIGHT_TORSION[t1];
        let key = key_point.compress().to_bytes();
        let r_point = EdwardsPoint::mul_base(r) + EIGHT_TORSION[t2];
        let r_encoded = r_point.compress().to_bytes();
        let mut hash = Sha512::new();
        hash.update(r_encoded);
        hash.update(key);
        hash.update(message);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hash.finalize());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let s = r + k * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_encoded);
        signature[32..].copy_from_slice(s.as_bytes());
        // What the cofactorless equation would compare to the identity.
        let difference = EdwardsPoint::mul_base(&s) - key_point * k - r_point;
        (key, signature, difference)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Mixed-order keys and nonce points: ed25519-compact accepts the signature whenever
        /// the difference has small order (the cofactored equation), and so do we.
        #[test]
        fn torsion_differences_are_judged_like_ed25519_compact(
            a in any::<[u8; 32]>(),
            r in any::<[u8; 32]>(),
            t1 in 0usize..8,
            t2 in 0usize..8,
            message in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let a = Scalar::from_bytes_mod_order(a);
            let r = Scalar::from_bytes_mod_order(r);
            let (key, signature, difference) = torsion_signature(&a, t1, &r, t2, &message);
            prop_assert!(difference.is_small_order());
            let expected = reference(&key, &message, &signature);
            prop_assert_eq!(ours(&key, &message, &signature), expected);
            // Both refuse only a small-order key or R (a or r = 0 mod L, never at random).
            prop_assert!(expected);
            let mut other = message.clone();
            other.push(1);
            prop_assert!(!ours(&key, &other, &signature));
            prop_assert!(!reference(&key, &other, &signature));
        }
    }

    /// The cofactored equation is the one ed25519-compact uses: signatures the cofactorless
    /// check refuses (the difference is a torsion point other than the identity) verify on both.
    #[test]
    fn cofactorless_failures_verify_on_both() {
        let a = Scalar::from_bytes_mod_order([3; 32]);
        let r = Scalar::from_bytes_mod_order([5; 32]);
        let mut discriminating = 0;
        for (t1, t2) in [(1, 0), (0, 1), (2, 4), (3, 7), (4, 4), (6, 2)] {
            for m in 0u8..4 {
                let message = [m; 8];
                let (key, signature, difference) = torsion_signature(&a, t1, &r, t2, &message);
                assert!(difference.is_small_order());
                if difference != EdwardsPoint::default() {
                    discriminating += 1;
                }
                assert!(reference(&key, &message, &signature), "{t1} {t2} {m}");
                assert!(ours(&key, &message, &signature), "{t1} {t2} {m}");
            }
        }
        // Most cases are ones where the two equations disagree (`[k]T1 + T2` = identity only
        // when it happens to cancel).
        assert!(discriminating >= 12, "{discriminating}");
    }

    #[test]
    fn encodings_ed25519_compact_refuses_we_refuse() {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
        let message = b"header.payload";
        let signature: [u8; 64] = *pair.sk.sign(message, None);
        let key: [u8; 32] = *pair.pk;
        // Every small-order point as key, and as R, in canonical and non-canonical encodings.
        for point in EIGHT_TORSION {
            let encoded = point.compress().to_bytes();
            let mut encodings = vec![encoded];
            encodings.extend(non_canonical(&encoded));
            let mut sign_flipped = encoded;
            sign_flipped[31] ^= 0x80;
            encodings.push(sign_flipped);
            for e in encodings {
                assert!(Ed25519Key::from_bytes(&e).is_none());
                assert_eq!(
                    ours(&e, message, &signature),
                    reference(&e, message, &signature)
                );
                let mut with_r = signature;
                with_r[..32].copy_from_slice(&e);
                assert!(!ours(&key, message, &with_r));
                assert_eq!(
                    ours(&key, message, &with_r),
                    reference(&key, message, &with_r)
                );
            }
        }
        // y = p (non-canonical 0) and y = 2^255 - 1.
        let mut y_is_p = FIELD_PRIME;
        assert!(Ed25519Key::from_bytes(&y_is_p).is_none());
        y_is_p[31] |= 0x80;
        assert!(Ed25519Key::from_bytes(&y_is_p).is_none());
        assert!(Ed25519Key::from_bytes(&[0xff; 32]).is_none());
        assert!(Ed25519Key::from_bytes(&[0; 31]).is_none());
        // The valid signature still verifies.
        assert!(ours(&key, message, &signature));
    }

    /// The memory docs/jwt.md states: a key's table (6-bit windows, 43 × 32 affine Niels points
    /// of 120 bytes) and the base point's, once per VM (7-bit windows, 37 × 64 points).
    #[test]
    fn table_sizes() {
        assert_eq!(windows(KEY_WINDOW_BITS), 43);
        assert_eq!(TABLE_BYTES, 43 * 32 * 120);
        assert_eq!(BASE_TABLE_BYTES, 37 * 64 * 120);
        assert!(base_table().is_some());
    }

    /// RFC 8032 section 7.1, test 2 (one-byte message).
    #[test]
    fn rfc8032_test_vector() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let key: [u8; 32] = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
            .try_into()
            .unwrap();
        let signature = hex(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ));
        let key = Ed25519Key::from_bytes(&key).unwrap();
        assert!(key.verify(&[0x72], &signature));
        assert!(!key.verify(&[0x73], &signature));
        assert!(!key.verify(&[0x72], &signature[..63]));
    }
}
