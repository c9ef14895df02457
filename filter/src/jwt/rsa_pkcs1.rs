//! RSASSA-PKCS1-v1_5 signature verification (RS256, RS384, RS512) on a modulus prepared once
//! per key.
//!
//! Why not the `rsa` crate that jwt-simple uses: its big integers (num-bigint-dig, with the
//! `u64_digit` feature jwt-simple's backend forces) multiply 64-bit digits into 128-bit
//! products, which wasm32 does not have (every product is several instructions), and it derives
//! the Montgomery parameters of the modulus again on every verification. Here the modulus's
//! Montgomery parameters are computed once, when the JWK is compiled, with crypto-bigint (already
//! in the module through the elliptic-curve crates; 32-bit limbs on wasm32), and the public
//! exponent is applied with plain square-and-multiply (the exponent is public: 17 squarings and
//! one multiplication for e = 65537).
//!
//! Verification follows RFC 8017 section 8.2.2: the signature must be exactly `k` bytes and less
//! than `n`; `m = s^e mod n`; the expected encoding `EM = 0x00 0x01 FF..FF 0x00 DigestInfo(H(M))`
//! is built in full and compared byte for byte with `m` (no parsing of the decrypted block, so
//! none of the padding-parsing forgeries apply).

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use sha2::Digest;

/// Smallest modulus accepted (as jwt-simple and the `rsa` crate: 2048 bits).
pub const MIN_MODULUS_BITS: u32 = 2048;
/// Largest modulus accepted.
pub const MAX_MODULUS_BITS: u32 = 8192;

/// The hash of an RS* algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

impl RsaHash {
    /// The DER `DigestInfo` prefix (RFC 8017 section 9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            RsaHash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            RsaHash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            RsaHash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            RsaHash::Sha256 => sha2::Sha256::digest(message).to_vec(),
            RsaHash::Sha384 => sha2::Sha384::digest(message).to_vec(),
            RsaHash::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }
}

/// A public key ready to verify: modulus parameters precomputed.
#[derive(Clone)]
pub struct RsaPublicKey {
    params: BoxedMontyParams,
    /// `k`: the modulus length in bytes.
    modulus_bytes: usize,
    /// The public exponent's bits, most significant first (public data).
    exponent_bits: Vec<bool>,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("modulus_bytes", &self.modulus_bytes)
            .finish_non_exhaustive()
    }
}

impl RsaPublicKey {
    /// From the big-endian modulus and exponent (JWK `n`, `e`). `None` for a modulus outside
    /// 2048-8192 bits or even, or an exponent that is even, 1, or longer than 64 bits.
    pub fn from_components(n: &[u8], e: &[u8]) -> Option<RsaPublicKey> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = u32::try_from(n.len()).ok()?.checked_mul(8)?;
        let top = n.first()?;
        let n_bits = bits - top.leading_zeros();
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&n_bits) {
            return None;
        }
        if e.is_empty() || e.len() > 8 {
            return None;
        }
        let mut e_word = [0u8; 8];
        e_word.get_mut(8 - e.len()..)?.copy_from_slice(e);
        let e_value = u64::from_be_bytes(e_word);
        if e_value < 3 || e_value % 2 == 0 {
            return None;
        }
        let modulus = Odd::new(BoxedUint::from_be_slice_vartime(n)).into_option()?;
        let exponent_bits = (0..64 - e_value.leading_zeros())
            .rev()
            .map(|i| (e_value >> i) & 1 == 1)
            .collect();
        Some(RsaPublicKey {
            params: BoxedMontyParams::new_vartime(modulus),
            modulus_bytes: n.len(),
            exponent_bits,
        })
    }

    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5 signature of `message` with `hash`.
    pub fn verify(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.modulus_bytes {
            return false;
        }
        let modulus = self.params.modulus();
        let precision = modulus.bits_precision();
        let Ok(s) = BoxedUint::from_be_slice(signature, precision) else {
            return false;
        };
        if s >= **modulus {
            return false;
        }
        let base = BoxedMontyForm::new(s, &self.params);
        let mut acc = base.clone();
        // The leading bit is 1 (e >= 3): start from s and walk the rest.
        for bit in self.exponent_bits.iter().skip(1) {
            acc = acc.square();
            if *bit {
                acc = acc.mul(&base);
            }
        }
        let m = acc.retrieve().to_be_bytes();
        // `to_be_bytes` is as long as the precision (whole limbs): leading zeros first.
        let Some(pad) = m.len().checked_sub(self.modulus_bytes) else {
            return false;
        };
        let (zeros, em) = m.split_at(pad);
        zeros.iter().all(|b| *b == 0) && em == expected_encoding(hash, message, self.modulus_bytes)
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

/// EMSA-PKCS1-v1_5 encoding of `message` in `k` bytes (RFC 8017 section 9.2).
fn expected_encoding(hash: RsaHash, message: &[u8], k: usize) -> Vec<u8> {
    let prefix = hash.digest_info_prefix();
    let digest = hash.digest(message);
    let t_len = prefix.len() + digest.len();
    // k >= 256 for the moduli accepted; t_len <= 83.
    let ps_len = k.saturating_sub(t_len + 3);
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(2 + ps_len, 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(&digest);
    em
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;

    fn fixture_key() -> rsa::RsaPrivateKey {
        let fixture = crate::jwt::verify::tests::fixture();
        let pem = fixture["private_keys"]["rsa-1"].as_str().unwrap();
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
    }

    fn ours(key: &rsa::RsaPrivateKey) -> RsaPublicKey {
        RsaPublicKey::from_components(&key.n().to_bytes_be(), &key.e().to_bytes_be()).unwrap()
    }

    fn sign(key: &rsa::RsaPrivateKey, hash: RsaHash, message: &[u8]) -> Vec<u8> {
        let (scheme, digest) = match hash {
            RsaHash::Sha256 => (
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                hash.digest(message),
            ),
            RsaHash::Sha384 => (
                rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                hash.digest(message),
            ),
            RsaHash::Sha512 => (
                rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                hash.digest(message),
            ),
        };
        key.sign(scheme, &digest).unwrap()
    }

    #[test]
    fn verifies_what_the_rsa_crate_signs_and_nothing_else() {
        let key = fixture_key();
        let pk = ours(&key);
        for hash in [RsaHash::Sha256, RsaHash::Sha384, RsaHash::Sha512] {
            let sig = sign(&key, hash, b"header.payload");
            assert!(pk.verify(hash, b"header.payload", &sig), "{hash:?}");
            assert!(!pk.verify(hash, b"header.payloaD", &sig));
            let other = if hash == RsaHash::Sha256 {
                RsaHash::Sha512
            } else {
                RsaHash::Sha256
            };
            assert!(!pk.verify(other, b"header.payload", &sig));
            let mut flipped = sig.clone();
            flipped[100] ^= 1;
            assert!(!pk.verify(hash, b"header.payload", &flipped));
            // Wrong length (a leading zero added or removed) is refused.
            let mut longer = vec![0u8];
            longer.extend_from_slice(&sig);
            assert!(!pk.verify(hash, b"header.payload", &longer));
            assert!(!pk.verify(hash, b"header.payload", &sig[1..]));
        }
        // s >= n is refused (not reduced).
        let n = key.n().to_bytes_be();
        assert!(!pk.verify(RsaHash::Sha256, b"m", &n));
        assert!(!pk.verify(RsaHash::Sha256, b"m", &vec![0xff; n.len()]));
        assert!(!pk.verify(RsaHash::Sha256, b"m", &vec![0; n.len()]));
    }

    #[test]
    fn key_shapes() {
        let key = fixture_key();
        let n = key.n().to_bytes_be();
        let e = key.e().to_bytes_be();
        let mut padded = vec![0u8, 0];
        padded.extend_from_slice(&n);
        assert!(RsaPublicKey::from_components(&padded, &e).is_some());
        assert!(
            RsaPublicKey::from_components(&n[..128], &e).is_none(),
            "1024 bits"
        );
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert!(RsaPublicKey::from_components(&even, &e).is_none());
        for bad_e in [&[][..], &[1], &[2], &[1, 0, 0, 0, 0, 0, 0, 0, 1]] {
            assert!(
                RsaPublicKey::from_components(&n, bad_e).is_none(),
                "{bad_e:?}"
            );
        }
        assert!(RsaPublicKey::from_components(&[], &e).is_none());
    }

    proptest::proptest! {
        /// Agrees with the rsa crate's verification on arbitrary messages and mangled
        /// signatures.
        #[test]
        fn agrees_with_the_rsa_crate(
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            flip in proptest::option::of((0usize..256, 0u8..8)),
        ) {
            let key = fixture_key();
            let pk = ours(&key);
            let mut sig = sign(&key, RsaHash::Sha256, &message);
            if let Some((i, bit)) = flip {
                sig[i] ^= 1 << bit;
            }
            let theirs = rsa::RsaPublicKey::from(&key)
                .verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &RsaHash::Sha256.digest(&message),
                    &sig,
                )
                .is_ok();
            proptest::prop_assert_eq!(pk.verify(RsaHash::Sha256, &message, &sig), theirs);
        }
    }
}
