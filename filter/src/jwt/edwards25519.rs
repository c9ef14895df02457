//! Variable-time edwards25519 arithmetic for EdDSA verification (`jwt/ed25519.rs`): field
//! elements on fiat-crypto's formally verified 32-bit code (ten 25.5-bit limbs, so every
//! product is a 64-bit multiplication wasm32 has natively), points in extended coordinates,
//! point decoding with ed25519-compact's checks, and fixed-base tables of signed-digit windows.
//!
//! Why not curve25519-dalek's: its field element and its affine "Niels" point type are
//! crate-private, so the only tables its public API builds are its constant-time radix-16
//! `EdwardsBasepointTable`s (each lookup scans a row of 8 points; 64 additions and 4 doublings
//! per scalar). With our own points, a table of `j·2^(W·i)·P` for every `W`-bit window `i` and
//! `j = 1..=2^(W-1)` turns a scalar multiplication into one mixed addition per signed digit, no
//! doubling and a direct lookup, as `jwt/ec_p256.rs` does for P-256.
//!
//! Everything here runs on public values (keys, messages, signatures): variable-time on purpose.
//! The formulas are dalek's (the "extended twisted Edwards" ones of Hisil, Wong, Carter and
//! Dawson, complete for edwards25519), checked against dalek by the tests below.

use fiat::{fiat_25519_loose_field_element as Loose, fiat_25519_tight_field_element as Tight};
use fiat_crypto::curve25519_32 as fiat;

/// An element of GF(2^255 - 19) with fiat-crypto's "tight" limb bounds.
#[derive(Clone, Copy)]
pub(super) struct Fe(Tight);

const fn fe(bytes: [u8; 32]) -> Fe {
    let mut out = Tight([0; 10]);
    fiat::fiat_25519_from_bytes(&mut out, &bytes);
    Fe(out)
}

const ZERO: Fe = Fe(Tight([0; 10]));
const ONE: Fe = Fe(Tight([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
/// `d = -121665/121666`, the curve constant.
const D: Fe = fe([
    163, 120, 89, 19, 202, 77, 235, 117, 171, 216, 65, 65, 77, 10, 112, 0, 152, 232, 121, 119, 121,
    64, 199, 140, 115, 254, 111, 43, 238, 108, 3, 82,
]);
/// `2·d`.
const D2: Fe = fe([
    89, 241, 178, 38, 148, 155, 214, 235, 86, 177, 131, 130, 154, 20, 224, 0, 48, 209, 243, 238,
    242, 128, 142, 25, 231, 252, 223, 86, 220, 217, 6, 36,
]);
/// `sqrt(-1) = 2^((p-1)/4)`.
const SQRT_M1: Fe = fe([
    176, 160, 14, 74, 39, 27, 238, 196, 120, 228, 47, 173, 6, 24, 67, 47, 167, 215, 251, 61, 153,
    0, 77, 43, 11, 223, 193, 79, 128, 36, 131, 43,
]);

fn relax(a: &Fe) -> Loose {
    let mut out = Loose([0; 10]);
    fiat::fiat_25519_relax(&mut out, &a.0);
    out
}

fn carry(a: &Loose) -> Fe {
    let mut out = Tight([0; 10]);
    fiat::fiat_25519_carry(&mut out, a);
    Fe(out)
}

fn mul_loose(a: &Loose, b: &Loose) -> Fe {
    let mut out = Tight([0; 10]);
    fiat::fiat_25519_carry_mul(&mut out, a, b);
    Fe(out)
}

fn square_loose(a: &Loose) -> Fe {
    let mut out = Tight([0; 10]);
    fiat::fiat_25519_carry_square(&mut out, a);
    Fe(out)
}

impl Fe {
    /// From 32 little-endian bytes; the top bit is ignored, a value `>= p` is reduced (callers
    /// that need canonical input check the bytes first).
    fn from_bytes(bytes: &[u8; 32]) -> Fe {
        let mut masked = *bytes;
        if let Some(top) = masked.last_mut() {
            *top &= 0x7f;
        }
        fe(masked)
    }

    /// The canonical encoding (`< p`), little-endian.
    pub(super) fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        fiat::fiat_25519_to_bytes(&mut out, &self.0);
        out
    }

    fn add_loose(&self, b: &Fe) -> Loose {
        let mut out = Loose([0; 10]);
        fiat::fiat_25519_add(&mut out, &self.0, &b.0);
        out
    }

    fn sub_loose(&self, b: &Fe) -> Loose {
        let mut out = Loose([0; 10]);
        fiat::fiat_25519_sub(&mut out, &self.0, &b.0);
        out
    }

    fn add(&self, b: &Fe) -> Fe {
        carry(&self.add_loose(b))
    }

    fn sub(&self, b: &Fe) -> Fe {
        carry(&self.sub_loose(b))
    }

    fn neg(&self) -> Fe {
        let mut out = Loose([0; 10]);
        fiat::fiat_25519_opp(&mut out, &self.0);
        carry(&out)
    }

    fn mul(&self, b: &Fe) -> Fe {
        mul_loose(&relax(self), &relax(b))
    }

    fn square(&self) -> Fe {
        square_loose(&relax(self))
    }

    /// `self^(2^n)`.
    fn pow2k(&self, n: u32) -> Fe {
        let mut out = *self;
        for _ in 0..n {
            out = out.square();
        }
        out
    }

    fn is_zero(&self) -> bool {
        self.to_bytes() == [0; 32]
    }

    fn equals(&self, b: &Fe) -> bool {
        self.to_bytes() == b.to_bytes()
    }

    /// Whether the canonical value is odd (the "negative" `x` of RFC 8032's encoding).
    fn is_negative(&self) -> bool {
        self.to_bytes().first().is_some_and(|b| b & 1 == 1)
    }

    /// `(self^(2^250 - 1), self^11)`: the shared part of inversion and square roots (dalek's and
    /// ref10's addition chain).
    fn pow22501(&self) -> (Fe, Fe) {
        let t0 = self.square();
        let t1 = t0.pow2k(2);
        let t2 = self.mul(&t1);
        let t3 = t0.mul(&t2);
        let t4 = t3.square();
        let t5 = t2.mul(&t4);
        let t6 = t5.pow2k(5);
        let t7 = t6.mul(&t5);
        let t8 = t7.pow2k(10);
        let t9 = t8.mul(&t7);
        let t10 = t9.pow2k(20);
        let t11 = t10.mul(&t9);
        let t12 = t11.pow2k(10);
        let t13 = t12.mul(&t7);
        let t14 = t13.pow2k(50);
        let t15 = t14.mul(&t13);
        let t16 = t15.pow2k(100);
        let t17 = t16.mul(&t15);
        let t18 = t17.pow2k(50);
        let t19 = t18.mul(&t13);
        (t19, t3)
    }

    /// `self^(p-2)`, the inverse of a non-zero element (zero maps to zero).
    fn invert(&self) -> Fe {
        let (t19, t3) = self.pow22501();
        t19.pow2k(5).mul(&t3)
    }

    /// `sqrt(u/v)` when it exists (either root), `None` when `u/v` is not a square. `v` must not
    /// be zero (for decoding, `v = d·y² + 1` never is: `-1/d` is not a square).
    fn sqrt_ratio(u: &Fe, v: &Fe) -> Option<Fe> {
        let v3 = v.square().mul(v);
        let v7 = v3.square().mul(v);
        let (t19, _) = u.mul(&v7).pow22501();
        // (u·v^7)^((p-5)/8), then r = u·v^3·(u·v^7)^((p-5)/8).
        let r = u.mul(&v3).mul(&t19.pow2k(2).mul(&u.mul(&v7)));
        let check = v.mul(&r.square());
        if check.equals(u) {
            Some(r)
        } else if check.equals(&u.neg()) {
            Some(r.mul(&SQRT_M1))
        } else {
            None
        }
    }
}

/// A point in extended coordinates: `x = X/Z`, `y = Y/Z`, `x·y = T/Z`.
#[derive(Clone, Copy)]
pub(super) struct Point {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// An affine point prepared for mixed addition: `(y + x, y - x, 2·d·x·y)`.
#[derive(Clone, Copy)]
pub(super) struct Niels {
    y_plus_x: Fe,
    y_minus_x: Fe,
    xy2d: Fe,
}

/// A point in "completed" coordinates, the output of the addition formulas before the final
/// multiplications: `x = X/Z`, `y = Y/T`.
struct Completed {
    x: Loose,
    y: Loose,
    z: Loose,
    t: Loose,
}

impl Completed {
    fn to_extended(&self) -> Point {
        Point {
            x: mul_loose(&self.x, &self.t),
            y: mul_loose(&self.y, &self.z),
            z: mul_loose(&self.z, &self.t),
            t: mul_loose(&self.x, &self.y),
        }
    }
}

impl Point {
    pub(super) const IDENTITY: Point = Point {
        x: ZERO,
        y: ONE,
        z: ONE,
        t: ZERO,
    };

    /// `self + q` (7 multiplications).
    pub(super) fn add_niels(&self, q: &Niels) -> Point {
        let pp = mul_loose(&self.y.add_loose(&self.x), &relax(&q.y_plus_x));
        let mm = mul_loose(&self.y.sub_loose(&self.x), &relax(&q.y_minus_x));
        let txy2d = self.t.mul(&q.xy2d);
        let z2 = self.z.add(&self.z);
        Completed {
            x: pp.sub_loose(&mm),
            y: pp.add_loose(&mm),
            z: z2.add_loose(&txy2d),
            t: z2.sub_loose(&txy2d),
        }
        .to_extended()
    }

    /// `self - q` (7 multiplications): [`Point::add_niels`] of `-q`, whose Niels form swaps
    /// `y+x` and `y-x` and negates `xy2d`; written out so that a negative digit costs no
    /// field negation.
    pub(super) fn sub_niels(&self, q: &Niels) -> Point {
        let pp = mul_loose(&self.y.add_loose(&self.x), &relax(&q.y_minus_x));
        let mm = mul_loose(&self.y.sub_loose(&self.x), &relax(&q.y_plus_x));
        let txy2d = self.t.mul(&q.xy2d);
        let z2 = self.z.add(&self.z);
        Completed {
            x: pp.sub_loose(&mm),
            y: pp.add_loose(&mm),
            z: z2.sub_loose(&txy2d),
            t: z2.add_loose(&txy2d),
        }
        .to_extended()
    }

    /// `self + q` for two extended points (9 multiplications; table building only).
    fn add(&self, q: &Point) -> Point {
        let pp = mul_loose(&self.y.add_loose(&self.x), &q.y.add_loose(&q.x));
        let mm = mul_loose(&self.y.sub_loose(&self.x), &q.y.sub_loose(&q.x));
        let tt2d = self.t.mul(&q.t).mul(&D2);
        let zz = self.z.mul(&q.z);
        let zz2 = zz.add(&zz);
        Completed {
            x: pp.sub_loose(&mm),
            y: pp.add_loose(&mm),
            z: zz2.add_loose(&tt2d),
            t: zz2.sub_loose(&tt2d),
        }
        .to_extended()
    }

    /// `2·self` (4 squarings, 4 multiplications).
    pub(super) fn double(&self) -> Point {
        let xx = self.x.square();
        let yy = self.y.square();
        let zz = self.z.square();
        let zz2 = zz.add(&zz);
        let x_plus_y_sq = square_loose(&self.x.add_loose(&self.y));
        let yy_plus_xx = yy.add(&xx);
        let yy_minus_xx = yy.sub(&xx);
        Completed {
            x: x_plus_y_sq.sub_loose(&yy_plus_xx),
            y: relax(&yy_plus_xx),
            z: relax(&yy_minus_xx),
            t: zz2.sub_loose(&yy_minus_xx),
        }
        .to_extended()
    }

    /// Whether this is the neutral element `(0, 1)`.
    pub(super) fn is_identity(&self) -> bool {
        self.x.is_zero() && self.y.equals(&self.z)
    }

    /// Whether `[8]·self` is the identity (the point has small order).
    pub(super) fn is_small_order(&self) -> bool {
        self.double().double().double().is_identity()
    }

    /// The affine Niels form, for single points such as `R`: one inversion, none for a point
    /// with `Z = 1` (as [`decode_point`] returns them).
    pub(super) fn niels(&self) -> Niels {
        if self.z.equals(&ONE) {
            return affine_niels(&self.x, &self.y);
        }
        let z_inv = self.z.invert();
        affine_niels(&self.x.mul(&z_inv), &self.y.mul(&z_inv))
    }

    /// The 32-byte encoding (RFC 8032 section 5.1.2).
    #[cfg(test)]
    pub(super) fn compress(&self) -> [u8; 32] {
        let z_inv = self.z.invert();
        let x = self.x.mul(&z_inv);
        let mut out = self.y.mul(&z_inv).to_bytes();
        if let Some(top) = out.last_mut() {
            *top |= u8::from(x.is_negative()) << 7;
        }
        out
    }
}

fn affine_niels(x: &Fe, y: &Fe) -> Niels {
    Niels {
        y_plus_x: y.add(x),
        y_minus_x: y.sub(x),
        xy2d: x.mul(y).mul(&D2),
    }
}

/// `p = 2^255 - 19`, little-endian.
pub(super) const FIELD_PRIME: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// ed25519-compact's point decoding (`decode_point_negated`, without the negation): the
/// y-coordinate is canonical (`y < p`), the point is on the curve, the sign bit is not set on a
/// point with `x = 0` (`y = ±1`), and the point is not of small order.
pub(super) fn decode_point(encoded: &[u8; 32]) -> Option<Point> {
    let mut y_bytes = *encoded;
    let sign = y_bytes[31] >> 7 == 1;
    y_bytes[31] &= 0x7f;
    if !less_than_le(&y_bytes, &FIELD_PRIME) {
        return None;
    }
    let y = Fe::from_bytes(&y_bytes);
    let yy = y.square();
    let u = yy.sub(&ONE);
    let v = yy.mul(&D).add(&ONE);
    let mut x = Fe::sqrt_ratio(&u, &v)?;
    if x.is_zero() && sign {
        return None;
    }
    if x.is_negative() != sign {
        x = x.neg();
    }
    let point = Point {
        x,
        y,
        z: ONE,
        t: x.mul(&y),
    };
    if point.is_small_order() {
        return None;
    }
    Some(point)
}

/// `a < b` for little-endian 256-bit numbers.
pub(super) fn less_than_le(a: &[u8; 32], b: &[u8; 32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// The largest number of windows any supported width needs (4-bit windows: 64).
const MAX_WINDOWS: usize = 64;

/// Windows a scalar below `2^253` (every reduced scalar mod `L`) needs at `w` bits: the top
/// window then holds at most `w - 1` bits, so the signed recoding's last carry fits in it.
pub(super) const fn windows(w: usize) -> usize {
    253_usize.div_ceil(w)
}

/// Signed fixed-window recoding of a scalar below `2^253` (32 little-endian bytes): `k = Σ
/// digit[i]·2^(w·i)`, every digit in `[-2^(w-1), 2^(w-1)]`; `w` in `4..=7` (digits fit an `i8`).
pub(super) fn signed_digits(scalar: &[u8; 32], w: usize) -> [i8; MAX_WINDOWS] {
    let bit = |i: usize| -> u16 {
        let byte = scalar.get(i / 8).copied().unwrap_or(0);
        u16::from((byte >> (i % 8)) & 1)
    };
    let mut digits = [0i8; MAX_WINDOWS];
    let mut carry: u16 = 0;
    let half: u16 = 1 << (w - 1);
    for (window, digit) in digits.iter_mut().enumerate().take(windows(w)) {
        let start = window * w;
        let mut value: u16 = (0..w).map(|b| bit(start + b) << b).sum::<u16>() + carry;
        carry = 0;
        if value > half {
            value = (1 << w) - value;
            carry = 1;
            *digit = -(value as i8);
        } else {
            *digit = value as i8;
        }
    }
    debug_assert_eq!(carry, 0);
    digits
}

/// The fixed-base table of one point `P` at `w`-bit windows:
/// `points[i * 2^(w-1) + j - 1] = j·2^(w·i)·P` in affine Niels form.
pub(super) struct FixedBaseTable {
    w: usize,
    points: Vec<Niels>,
}

impl FixedBaseTable {
    /// Builds the table (`w` in `4..=7`): one full addition per entry, one doubling per window,
    /// one field inversion for all of them (Montgomery's trick).
    pub(super) fn new(base: &Point, w: usize) -> FixedBaseTable {
        let per_window = 1usize << (w - 1);
        let count = windows(w) * per_window;
        let mut projective: Vec<Point> = Vec::with_capacity(count);
        let mut window_base = *base;
        for _ in 0..windows(w) {
            let mut multiple = window_base;
            for _ in 0..per_window {
                projective.push(multiple);
                multiple = multiple.add(&window_base);
            }
            // The last pushed point is 2^(w-1)·base of this window; the next window's base is
            // twice that.
            window_base = projective.last().unwrap_or(&Point::IDENTITY).double();
        }
        // Prefix products of the Z coordinates, one inversion, then back to front.
        let mut prefix: Vec<Fe> = Vec::with_capacity(count);
        let mut running = ONE;
        for p in &projective {
            prefix.push(running);
            running = running.mul(&p.z);
        }
        let mut inverse = running.invert();
        let mut points = vec![
            Niels {
                y_plus_x: ONE,
                y_minus_x: ONE,
                xy2d: ZERO,
            };
            count
        ];
        for ((p, before), slot) in projective.iter().zip(&prefix).zip(&mut points).rev() {
            let z_inv = inverse.mul(before);
            inverse = inverse.mul(&p.z);
            *slot = affine_niels(&p.x.mul(&z_inv), &p.y.mul(&z_inv));
        }
        FixedBaseTable { w, points }
    }

    pub(super) fn window_bits(&self) -> usize {
        self.w
    }

    /// Adds `digit·2^(w·window)·P` to `acc`.
    pub(super) fn add_digit(&self, acc: &mut Point, window: usize, digit: i8) {
        let magnitude = usize::from(digit.unsigned_abs());
        if magnitude == 0 {
            return;
        }
        let Some(point) = self.points.get((window << (self.w - 1)) + magnitude - 1) else {
            return;
        };
        *acc = if digit > 0 {
            acc.add_niels(point)
        } else {
            acc.sub_niels(point)
        };
    }

    /// `scalar·P` for a scalar below `2^253` (test helper and reference for the verification
    /// loop, which interleaves two tables).
    #[cfg(test)]
    pub(super) fn mul(&self, scalar: &[u8; 32]) -> Point {
        let digits = signed_digits(scalar, self.w);
        let mut acc = Point::IDENTITY;
        for (window, d) in digits.iter().enumerate().take(windows(self.w)) {
            self.add_digit(&mut acc, window, *d);
        }
        acc
    }
}

/// Bytes of one table at `w`-bit windows.
pub(super) const fn table_bytes(w: usize) -> usize {
    windows(w) * (1 << (w - 1)) * std::mem::size_of::<Niels>()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::Scalar;
    use proptest::prelude::*;

    /// The decoding `jwt/ed25519.rs` used before this module (dalek's decompression with
    /// ed25519-compact's extra checks around it): the reference of [`decode_point`].
    fn dalek_decode(encoded: &[u8; 32]) -> Option<EdwardsPoint> {
        let mut y = *encoded;
        let sign = y[31] >> 7 == 1;
        y[31] &= 0x7f;
        if !less_than_le(&y, &FIELD_PRIME) {
            return None;
        }
        if sign {
            let mut one = [0u8; 32];
            one[0] = 1;
            let mut minus_one = FIELD_PRIME;
            minus_one[0] = 0xec;
            if y == one || y == minus_one {
                return None;
            }
        }
        let point = CompressedEdwardsY(*encoded).decompress()?;
        if point.is_small_order() {
            return None;
        }
        Some(point)
    }

    fn ours(p: &EdwardsPoint) -> Point {
        decode_point(p.compress().as_bytes()).unwrap()
    }

    #[test]
    fn constants() {
        // d·121666 = -121665; sqrt(-1)² = -1; 2d = d + d.
        let n = |v: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&v.to_le_bytes());
            Fe::from_bytes(&b)
        };
        assert!(D.mul(&n(121666)).equals(&n(121665).neg()));
        assert!(SQRT_M1.square().equals(&ONE.neg()));
        assert!(D2.equals(&D.add(&D)));
        assert!(n(12345).mul(&n(12345).invert()).equals(&ONE));
        assert_eq!(
            Point::IDENTITY.compress(),
            EdwardsPoint::default().compress().to_bytes()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Decoding agrees with dalek's decompression plus the checks around it, on random
        /// encodings (about half are points) and on encodings of points with a torsion part.
        #[test]
        fn decoding_agrees_with_dalek(
            bytes in any::<[u8; 32]>(),
            scalar in any::<[u8; 32]>(),
            torsion in 0usize..8,
        ) {
            let mine = decode_point(&bytes).map(|p| p.compress());
            let reference = dalek_decode(&bytes).map(|p| p.compress().to_bytes());
            prop_assert_eq!(mine, reference);
            let point = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(scalar))
                + EIGHT_TORSION[torsion];
            let encoded = point.compress().to_bytes();
            prop_assert_eq!(
                decode_point(&encoded).map(|p| p.compress()),
                dalek_decode(&encoded).map(|p| p.compress().to_bytes())
            );
        }

        /// Addition, subtraction, doubling and the small-order test agree with dalek.
        #[test]
        fn arithmetic_agrees_with_dalek(
            a in any::<[u8; 32]>(),
            b in any::<[u8; 32]>(),
            t1 in 0usize..8,
            t2 in 0usize..8,
        ) {
            let pa = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(a)) + EIGHT_TORSION[t1];
            let pb = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(b)) + EIGHT_TORSION[t2];
            prop_assume!(!pa.is_small_order() && !pb.is_small_order());
            let (qa, qb) = (ours(&pa), ours(&pb));
            prop_assert_eq!(qa.add_niels(&qb.niels()).compress(), (pa + pb).compress().to_bytes());
            prop_assert_eq!(qa.sub_niels(&qb.niels()).compress(), (pa - pb).compress().to_bytes());
            prop_assert_eq!(qa.add(&qb).compress(), (pa + pb).compress().to_bytes());
            // A point with Z != 1 through the inversion of `to_niels`.
            prop_assert_eq!(
                qb.add_niels(&qa.double().niels()).compress(),
                (pb + pa + pa).compress().to_bytes()
            );
            prop_assert_eq!(qa.double().compress(), (pa + pa).compress().to_bytes());
            prop_assert_eq!(qa.add(&qa).compress(), (pa + pa).compress().to_bytes());
            // P + (-P + T) = T, small order; and the identity itself.
            let difference = qa.sub_niels(&qa.niels());
            prop_assert!(difference.is_identity());
            let torsion = qa.add_niels(&ours(&(EIGHT_TORSION[t2] - pa)).niels());
            prop_assert!(torsion.is_small_order());
            prop_assert_eq!(torsion.is_identity(), t2 == 0);
        }

        /// Fixed-base multiplication over a table equals dalek's, at every supported width.
        #[test]
        fn table_multiplication_agrees_with_dalek(
            a in any::<[u8; 32]>(),
            k in any::<[u8; 32]>(),
            torsion in 0usize..8,
            w in 4usize..=7,
        ) {
            let base = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(a)) + EIGHT_TORSION[torsion];
            prop_assume!(!base.is_small_order());
            let k = Scalar::from_bytes_mod_order(k);
            let table = FixedBaseTable::new(&ours(&base), w);
            prop_assert_eq!(table.mul(&k.to_bytes()).compress(), (base * k).compress().to_bytes());
        }
    }

    #[test]
    fn recoding_reproduces_the_scalar() {
        let minus_one = -Scalar::ONE;
        let cases = [
            Scalar::ZERO,
            Scalar::ONE,
            minus_one,
            Scalar::from(0x20u64),
            Scalar::from(0x1fu64),
            Scalar::from(u64::MAX),
            -Scalar::from(0x12345u64),
        ];
        for w in 4..=7 {
            for k in cases {
                let digits = signed_digits(&k.to_bytes(), w);
                let mut sum = Scalar::ZERO;
                let mut weight = Scalar::ONE;
                let radix = Scalar::from(1u64 << w);
                for d in &digits[..windows(w)] {
                    let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                    sum += if *d < 0 {
                        -magnitude * weight
                    } else {
                        magnitude * weight
                    };
                    assert!(i32::from(*d).abs() <= 1 << (w - 1), "{d}");
                    weight *= radix;
                }
                assert!(digits[windows(w)..].iter().all(|d| *d == 0));
                assert_eq!(sum, k, "w = {w}");
            }
        }
    }

    #[test]
    fn base_point_table() {
        let b = ours(&ED25519_BASEPOINT_POINT);
        let table = FixedBaseTable::new(&b, 5);
        let l_minus_one = (-Scalar::ONE).to_bytes();
        assert_eq!(
            table.mul(&l_minus_one).compress(),
            (-ED25519_BASEPOINT_POINT).compress().to_bytes()
        );
        assert!(table.mul(&[0; 32]).is_identity());
        assert_eq!(table.points.len(), windows(5) * 16);
        assert_eq!(std::mem::size_of::<Niels>(), 120);
    }
}
