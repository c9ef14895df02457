//! ES256 (ECDSA over P-256 with SHA-256, RFC 7518 section 3.4) verification with fixed-base
//! tables prepared once per key.
//!
//! Why not jwt-simple's (the `p256`/`ecdsa` crates') verification: it computes `u1·G + u2·Q`
//! with a variable-base method for `Q` (256 doublings plus the additions of each window) on every
//! request, and in wasm that is most of the ≈ 0.5 ms an ES256 token costs. The public key is
//! fixed, so its multiples can be computed once, when the JWK is compiled: for every window `i`
//! of [`WINDOW_BITS`] bits the table holds `j·2^(W·i)·Q` for `j = 1..=2^(W-1)` in affine
//! coordinates, and the scalar is recoded into signed digits in `[-2^(W-1), 2^(W-1)]` (a
//! negative digit adds the negated point, free in affine coordinates). `u2·Q` then costs one
//! mixed addition per non-zero digit and no doubling at all; the same table for the generator
//! `G` is built once per VM. Only the curve arithmetic of `p256` (field, scalar, complete point
//! formulas) is used, the same crate and version jwt-simple already brings in.
//!
//! All inputs are public (key, message, signature), so the code is variable-time on purpose.
//!
//! Verification, as `ecdsa::hazmat::verify_prehashed` (which jwt-simple uses):
//! the signature is exactly 64 bytes `r || s`; `r` and `s` are in `[1, n-1]` (high `s` is
//! accepted: P-256 ECDSA is not normalised, and jwt-simple accepts it too); `e` is SHA-256 of the
//! signing input reduced mod `n`; `w = s⁻¹`, `u1 = e·w`, `u2 = r·w`; `R = u1·G + u2·Q`; valid iff
//! `R` is not the point at infinity and `x(R) mod n == r`.

use std::sync::{Arc, OnceLock};

use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::{BatchNormalize, Field, Group};
use p256::{AffinePoint, FieldBytes, ProjectivePoint, PublicKey, Scalar};
use sha2::Digest;

/// Window width of the fixed-base tables (chosen by measurement, see docs/jwt.md).
pub const WINDOW_BITS: usize = 7;
/// Windows per 256-bit scalar: one more than `256 / W` so that the signed recoding's last carry
/// always has a window.
const WINDOWS: usize = 256 / WINDOW_BITS + 1;
/// Points per window: the multiples `1..=2^(W-1)` (negative digits use the negated point).
const POINTS_PER_WINDOW: usize = 1 << (WINDOW_BITS - 1);

/// Bytes of one table (per key, and once per VM for the generator).
pub const TABLE_BYTES: usize = WINDOWS * POINTS_PER_WINDOW * std::mem::size_of::<AffinePoint>();

/// The fixed-base table of one point: `table[i * POINTS_PER_WINDOW + j - 1] = j·2^(W·i)·P`.
struct FixedBaseTable {
    points: Vec<AffinePoint>,
}

impl FixedBaseTable {
    fn new(base: ProjectivePoint) -> FixedBaseTable {
        let mut projective = Vec::with_capacity(WINDOWS * POINTS_PER_WINDOW);
        let mut window_base = base;
        for _ in 0..WINDOWS {
            let mut multiple = window_base;
            for _ in 0..POINTS_PER_WINDOW {
                projective.push(multiple);
                multiple += window_base;
            }
            // After the loop `multiple` is (2^(W-1) + 1)·base; the next window's base is
            // 2^W·base: double the last pushed point, 2^(W-1)·base.
            window_base = projective
                .last()
                .copied()
                .unwrap_or(ProjectivePoint::IDENTITY)
                .double();
        }
        // One field inversion for the whole table (Montgomery's trick).
        let points = <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(
            projective.as_slice(),
        );
        FixedBaseTable { points }
    }

    /// Adds `digit·2^(W·window)·P` to `acc`.
    fn add_digit(&self, acc: &mut ProjectivePoint, window: usize, digit: i8) {
        let magnitude = usize::from(digit.unsigned_abs());
        if magnitude == 0 {
            return;
        }
        let Some(point) = self.points.get(window * POINTS_PER_WINDOW + magnitude - 1) else {
            return;
        };
        if digit > 0 {
            *acc += point;
        } else {
            *acc -= point;
        }
    }
}

/// The generator's table, built once per VM (each Envoy worker has its own).
fn generator_table() -> &'static FixedBaseTable {
    static TABLE: OnceLock<FixedBaseTable> = OnceLock::new();
    TABLE.get_or_init(|| FixedBaseTable::new(ProjectivePoint::GENERATOR))
}

/// Signed fixed-window recoding of a scalar: `k = Σ digit[i]·2^(W·i)`, every digit in
/// `[-2^(W-1), 2^(W-1)]`.
fn signed_digits(k: &Scalar) -> [i8; WINDOWS] {
    let repr = k.to_repr(); // big-endian
    let bit = |i: usize| -> u16 {
        if i >= 256 {
            return 0;
        }
        let byte = repr.get(31 - i / 8).copied().unwrap_or(0);
        u16::from((byte >> (i % 8)) & 1)
    };
    let mut digits = [0i8; WINDOWS];
    let mut carry: u16 = 0;
    for (window, digit) in digits.iter_mut().enumerate() {
        let start = window * WINDOW_BITS;
        let mut value: u16 = (0..WINDOW_BITS).map(|b| bit(start + b) << b).sum::<u16>() + carry;
        carry = 0;
        if value > (1 << (WINDOW_BITS - 1)) {
            value = (1 << WINDOW_BITS) - value;
            carry = 1;
            *digit = -(value as i8);
        } else {
            *digit = value as i8;
        }
    }
    // `WINDOWS` leaves room for the last carry (the top window holds fewer than W bits of a
    // 256-bit scalar, or none).
    debug_assert_eq!(carry, 0);
    digits
}

/// A P-256 public key ready to verify: its fixed-base table.
#[derive(Clone)]
pub struct Es256Key {
    table: Arc<FixedBaseTable>,
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Key").finish_non_exhaustive()
    }
}

impl Es256Key {
    /// From the uncompressed SEC1 point `04 || x || y`; `None` if it is not a point of P-256
    /// (`p256` checks the curve equation; the identity cannot be encoded this way).
    pub fn from_sec1(point: &[u8]) -> Option<Es256Key> {
        let key = PublicKey::from_sec1_bytes(point).ok()?;
        // The generator's table comes with the first key, so no request pays for it.
        let _ = generator_table();
        Some(Es256Key {
            table: Arc::new(FixedBaseTable::new(ProjectivePoint::from(*key.as_affine()))),
        })
    }

    /// Verifies a JOSE ES256 signature (64 bytes, `r || s`) over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let (r_bytes, s_bytes) = signature.split_at(32);
        let (Some(r), Some(s)) = (nonzero_scalar(r_bytes), nonzero_scalar(s_bytes)) else {
            return false;
        };
        let digest: [u8; 32] = sha2::Sha256::digest(message).into();
        let e = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(digest));
        let Some(w) = Option::<Scalar>::from(s.invert_vartime()) else {
            return false;
        };
        let u1 = signed_digits(&(e * w));
        let u2 = signed_digits(&(r * w));
        let generator = generator_table();
        let mut acc = ProjectivePoint::IDENTITY;
        for (window, (d1, d2)) in u1.into_iter().zip(u2).enumerate() {
            generator.add_digit(&mut acc, window, d1);
            self.table.add_digit(&mut acc, window, d2);
        }
        if bool::from(acc.is_identity()) {
            return false;
        }
        let x = acc.to_affine().x();
        <Scalar as Reduce<FieldBytes>>::reduce(&x) == r
    }
}

/// A scalar in `[1, n-1]` from 32 big-endian bytes; `None` for 0 and for values `>= n`.
fn nonzero_scalar(bytes: &[u8]) -> Option<Scalar> {
    let bytes = FieldBytes::try_from(bytes).ok()?;
    let scalar = Option::<Scalar>::from(Scalar::from_repr(bytes))?;
    (!bool::from(scalar.is_zero())).then_some(scalar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use proptest::prelude::*;

    /// The group order n, big-endian.
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    /// p256's verdict (jwt-simple's: `Signature::try_from` then `verify`).
    fn reference(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|s| key.verify(message, &s).is_ok())
    }

    fn with_r_s(r: &[u8], s: &[u8]) -> Vec<u8> {
        [r, s].concat()
    }

    /// Signatures a forger or a broken issuer could send, derived from a valid one.
    fn variants(signature: &[u8; 64], flip: usize) -> Vec<(&'static str, Vec<u8>)> {
        let (r, s) = signature.split_at(32);
        let zero = [0u8; 32];
        let mut flipped = signature.to_vec();
        if let Some(b) = flipped.get_mut(flip / 8 % 64) {
            *b ^= 1 << (flip % 8);
        }
        let s_scalar = nonzero_scalar(s).unwrap();
        let high_s = (-s_scalar).to_repr().to_vec();
        let mut above_n = ORDER;
        above_n[31] += 1;
        vec![
            ("valid", signature.to_vec()),
            ("flipped bit", flipped),
            ("r = 0", with_r_s(&zero, s)),
            ("s = 0", with_r_s(r, &zero)),
            ("r = n", with_r_s(&ORDER, s)),
            ("s = n", with_r_s(r, &ORDER)),
            ("r > n", with_r_s(&above_n, s)),
            ("s > n", with_r_s(r, &above_n)),
            ("r = 2^256 - 1", with_r_s(&[0xff; 32], s)),
            ("s negated (high/low S swap)", with_r_s(r, &high_s)),
            ("r and s swapped", with_r_s(s, r)),
            ("63 bytes", signature[..63].to_vec()),
            ("65 bytes", [signature.as_slice(), &[0]].concat()),
            ("empty", Vec::new()),
        ]
    }

    proptest! {
        // Each case builds a table (debug build): few cases, every variant in each.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn agrees_with_p256(
            secret in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..80),
            flip in 0usize..512,
        ) {
            let signer = SigningKey::from_slice(&secret);
            prop_assume!(signer.is_ok());
            let signer = signer.unwrap();
            let public = signer.verifying_key();
            let point = public.to_sec1_point(false);
            let ours = Es256Key::from_sec1(point.as_bytes()).unwrap();
            let signature: Signature = signer.sign(&message);
            let bytes: [u8; 64] = signature.to_bytes().into();
            let mut other_message = message.clone();
            other_message.push(0);
            for (why, candidate) in variants(&bytes, flip) {
                for msg in [&message, &other_message] {
                    prop_assert_eq!(
                        ours.verify(msg, &candidate),
                        reference(public, msg, &candidate),
                        "{} (message changed: {})", why, msg.len() != message.len()
                    );
                }
            }
            // The valid signature and its high-S twin verify (P-256 ECDSA is not normalised).
            prop_assert!(ours.verify(&message, &bytes));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // Forged tokens: random `r || s` of any length, through the whole verification (one
        // key, built once), never panic and never verify where p256 would not.
        #[test]
        fn random_signatures_agree_with_p256(
            signature in proptest::collection::vec(any::<u8>(), 0..70),
            message in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let (ours, public) = fixed_key();
            prop_assert_eq!(
                ours.verify(&message, &signature),
                reference(public, &message, &signature)
            );
        }
    }

    fn fixed_key() -> &'static (Es256Key, VerifyingKey) {
        static KEY: OnceLock<(Es256Key, VerifyingKey)> = OnceLock::new();
        KEY.get_or_init(|| {
            let signer = SigningKey::from_slice(&[3; 32]).unwrap();
            let public = *signer.verifying_key();
            let ours = Es256Key::from_sec1(public.to_sec1_point(false).as_bytes()).unwrap();
            (ours, public)
        })
    }

    #[test]
    fn recoding_reproduces_the_scalar() {
        let cases = [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(0x20u64),
            Scalar::from(0x1fu64),
            Scalar::from(u64::MAX),
            -Scalar::from(0x12345u64),
        ];
        for k in cases {
            let digits = signed_digits(&k);
            let mut sum = Scalar::ZERO;
            let mut weight = Scalar::ONE;
            let radix = Scalar::from(1u64 << WINDOW_BITS);
            for d in digits {
                let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                sum += if d < 0 {
                    -magnitude * weight
                } else {
                    magnitude * weight
                };
                assert!(i32::from(d).abs() <= 1 << (WINDOW_BITS - 1), "{d}");
                weight *= radix;
            }
            assert_eq!(sum, k);
        }
    }

    #[test]
    fn key_table() {
        let signer = SigningKey::from_slice(&[7; 32]).unwrap();
        let uncompressed = signer.verifying_key().to_sec1_point(false);
        let compressed = signer.verifying_key().to_sec1_point(true);
        let mut off_curve = uncompressed.as_bytes().to_vec();
        off_curve[64] ^= 1;
        let cases: [(&[u8], bool, &str); 4] = [
            (uncompressed.as_bytes(), true, "uncompressed point"),
            (
                compressed.as_bytes(),
                true,
                "compressed point (p256 accepts it too)",
            ),
            (&off_curve, false, "not on the curve"),
            (&[0], false, "identity encoding"),
        ];
        for (bytes, ok, why) in cases {
            assert_eq!(Es256Key::from_sec1(bytes).is_some(), ok, "{why}");
        }
        // The memory per key that docs/jwt.md states.
        assert_eq!(TABLE_BYTES, 37 * 64 * 72);
    }
}
