//! Fast RSA signature verification for JWS (RS256/384/512, PS256/384/512), behind jwt-compact's
//! `Algorithm` trait.
//!
//! Why not the `rsa` crate: in Envoy's V8 one RSA-2048 verification with rsa 0.9 (num-bigint-dig) costs
//! about 1 ms, which caps a worker near 1k fresh tokens per second. Verification only needs the public
//! exponent, so each key is prepared once when the JWKS is parsed — the modulus as 32-bit limbs
//! (wasm has no 64×64→128-bit multiply, 32×32→64 is native), −n⁻¹ mod 2³² and R² mod n for Montgomery
//! multiplication — and a signature costs one exponentiation by e (16 squarings and one multiply for
//! 65537) plus the padding check. Nothing here handles secrets, so constant time is not needed.

use std::borrow::Cow;

use jwt_compact::{Algorithm, AlgorithmSignature};
use sha2::digest::{Digest, FixedOutputReset};
use sha2::{Sha256, Sha384, Sha512};

use crate::jwks::JwsAlgorithm;

/// An RSA public key prepared for fast verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRsaKey {
    /// Modulus, little-endian 32-bit limbs.
    n: Vec<u32>,
    /// −n⁻¹ mod 2³².
    n0_inv: u32,
    /// R² mod n, R = 2^(32·limbs), little-endian limbs.
    r2: Vec<u32>,
    e: u32,
    /// Length of the modulus in bytes (k in RFC 8017).
    modulus_bytes: usize,
    modulus_bits: usize,
}

impl PreparedRsaKey {
    /// Prepares a key from its big-endian modulus and exponent. `None` for an even or zero modulus,
    /// or an exponent that is even, 1, or wider than 32 bits.
    pub fn new(modulus_be: &[u8], exponent: u32) -> Option<PreparedRsaKey> {
        let modulus_be = strip_leading_zeros(modulus_be);
        let n = limbs_from_be(modulus_be, modulus_be.len().div_ceil(4));
        let n0 = *n.first()?;
        if n0 & 1 == 0 || exponent < 3 || exponent & 1 == 0 {
            return None;
        }
        // Newton's iteration doubles the correct low bits each step: 1 → 2 → 4 → ... → 32.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let modulus_bits = modulus_be.first().map_or(0, |top| {
            (modulus_be.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        });
        let mut key = PreparedRsaKey {
            r2: Vec::new(),
            n0_inv: inv.wrapping_neg(),
            e: exponent,
            modulus_bytes: modulus_be.len(),
            modulus_bits,
            n,
        };
        key.r2 = key.r_squared();
        Some(key)
    }

    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// R² mod n by doubling 1 modulo n, 64·limbs times.
    fn r_squared(&self) -> Vec<u32> {
        let limbs = self.n.len();
        let mut x = vec![0u32; limbs];
        if let Some(low) = x.first_mut() {
            *low = 1;
        }
        for _ in 0..64 * limbs {
            let carry = shift_left_one(&mut x);
            if carry || !less_than(&x, &self.n) {
                sub_in_place(&mut x, &self.n);
            }
        }
        x
    }

    /// Montgomery product a·b·R⁻¹ mod n: CIOS with both products fused into one pass per limb, on a
    /// window that slides one limb per step instead of shifting the accumulator.
    fn mont_mul(&self, a: &[u32], b: &[u32], scratch: &mut Vec<u32>) -> Vec<u32> {
        let limbs = self.n.len();
        scratch.clear();
        scratch.resize(2 * limbs + 2, 0);
        let (Some((&b0, b_rest)), Some((&n0, n_rest))) = (b.split_first(), self.n.split_first())
        else {
            return vec![0; limbs];
        };
        for (i, &ai) in a.iter().enumerate() {
            let Some(window) = scratch.get_mut(i..) else {
                break;
            };
            let Some((w0, rest)) = window.split_first_mut() else {
                break;
            };
            // Column 0 decides m so that the window's lowest limb becomes zero.
            let first = u64::from(*w0) + u64::from(ai) * u64::from(b0);
            let m = (first as u32).wrapping_mul(self.n0_inv);
            let mut carry_ab = first >> 32;
            let mut carry_mn = (u64::from(first as u32) + u64::from(m) * u64::from(n0)) >> 32;
            *w0 = 0;
            for ((w, &bj), &nj) in rest.iter_mut().zip(b_rest).zip(n_rest) {
                let ab = u64::from(*w) + u64::from(ai) * u64::from(bj) + carry_ab;
                carry_ab = ab >> 32;
                let mn = u64::from(ab as u32) + u64::from(m) * u64::from(nj) + carry_mn;
                carry_mn = mn >> 32;
                *w = mn as u32;
            }
            add_carry(rest.get_mut(limbs - 1..), carry_ab + carry_mn);
        }
        // The result is below 2n, one limb wider than n.
        self.reduce_once(scratch.get(limbs..=2 * limbs).unwrap_or_default())
    }

    /// Montgomery square a²·R⁻¹ mod n: each cross product aᵢ·aⱼ is computed once and doubled, which
    /// saves about a quarter of the multiplications of [`Self::mont_mul`]; then one reduction pass.
    fn mont_sqr(&self, a: &[u32], scratch: &mut Vec<u32>) -> Vec<u32> {
        let limbs = self.n.len();
        scratch.clear();
        scratch.resize(2 * limbs + 1, 0);
        // Cross products aᵢ·aⱼ (j > i) land at i + j. Rows go in pairs (i, i + 1) with two carry
        // chains in one pass, as in the reduction; a last row that has no partner goes alone.
        let mut i = 0;
        while i + 3 <= limbs {
            self.cross_product_pair(a, i, scratch);
            i += 2;
        }
        while i + 1 < limbs {
            let (Some(&ai), Some(row), Some(higher)) =
                (a.get(i), scratch.get_mut(2 * i + 1..), a.get(i + 1..))
            else {
                break;
            };
            let mut carry = 0u64;
            for (t, &aj) in row.iter_mut().zip(higher) {
                let sum = u64::from(*t) + u64::from(ai) * u64::from(aj) + carry;
                *t = sum as u32;
                carry = sum >> 32;
            }
            add_carry(row.get_mut(higher.len()..), carry);
            i += 1;
        }
        if let Some(product) = scratch.get_mut(..2 * limbs) {
            shift_left_one(product);
        }
        // Squares aᵢ² on the diagonal, at 2i and 2i + 1.
        let mut carry = 0u64;
        for (pair, &ai) in scratch.chunks_exact_mut(2).zip(a) {
            if let [low, high] = pair {
                let square = u64::from(ai) * u64::from(ai);
                let sum_low = u64::from(*low) + (square & 0xffff_ffff) + carry;
                *low = sum_low as u32;
                let sum_high = u64::from(*high) + (square >> 32) + (sum_low >> 32);
                *high = sum_high as u32;
                carry = sum_high >> 32;
            }
        }
        add_carry(scratch.get_mut(2 * limbs..), carry);
        self.reduce_in_place(scratch);
        self.reduce_once(scratch.get(limbs..=2 * limbs).unwrap_or_default())
    }

    /// Cross products of rows i and i + 1 of a squaring (needs i + 3 <= limbs): row i adds aᵢ·aⱼ at
    /// i + j for j > i, row i + 1 adds aᵢ₊₁·aⱼ at i + 1 + j for j > i + 1.
    fn cross_product_pair(&self, a: &[u32], i: usize, scratch: &mut [u32]) {
        let limbs = a.len();
        let (Some(&x), Some(&y), Some(&a_next), Some(&a_last)) =
            (a.get(i), a.get(i + 1), a.get(i + 1), a.last())
        else {
            return;
        };
        let Some(row) = scratch.get_mut(2 * i + 1..) else {
            return;
        };
        // Positions 2i + 1 and 2i + 2: row i only (aᵢ·aᵢ₊₁, aᵢ·aᵢ₊₂); row i + 1 starts at 2i + 3.
        let (Some(&a_after_next), Some([t0, t1])) = (a.get(i + 2), row.get_mut(..2)) else {
            return;
        };
        let first = u64::from(*t0) + u64::from(x) * u64::from(a_next);
        *t0 = first as u32;
        let second = u64::from(*t1) + u64::from(x) * u64::from(a_after_next) + (first >> 32);
        *t1 = second as u32;
        let mut carry0 = second >> 32;
        let mut carry1 = 0u64;
        // Positions 2i + 3 ..= i + limbs - 1: row i with aⱼ (j = i + 3 ..), row i + 1 with aⱼ₋₁.
        let width = limbs - i - 3;
        let (Some(both), Some(row0_factors), Some(row1_factors)) = (
            row.get_mut(2..2 + width),
            a.get(i + 3..limbs),
            a.get(i + 2..limbs - 1),
        ) else {
            return;
        };
        for ((t, &aj), &aj_minus_1) in both.iter_mut().zip(row0_factors).zip(row1_factors) {
            let sum0 = u64::from(*t) + u64::from(x) * u64::from(aj) + carry0;
            carry0 = sum0 >> 32;
            let sum1 = u64::from(sum0 as u32) + u64::from(y) * u64::from(aj_minus_1) + carry1;
            carry1 = sum1 >> 32;
            *t = sum1 as u32;
        }
        // Position i + limbs: row i's carry, row i + 1's last product.
        let Some(t) = row.get_mut(2 + width) else {
            return;
        };
        let sum0 = u64::from(*t) + carry0;
        let sum1 = u64::from(sum0 as u32) + u64::from(y) * u64::from(a_last) + carry1;
        *t = sum1 as u32;
        add_carry(row.get_mut(3 + width..), (sum0 >> 32) + (sum1 >> 32));
    }

    /// Montgomery reduction of a 2·limbs (+1) product: clears the low limbs with multiples of n, two
    /// limbs per pass. The two rows' carry chains are independent, so a pass over n does twice the work
    /// of a one-row pass for much less than twice the time, and the window is read and written once.
    fn reduce_in_place(&self, scratch: &mut [u32]) {
        let limbs = self.n.len();
        let (Some(&n0), Some(&n_last)) = (self.n.first(), self.n.last()) else {
            return;
        };
        let mut i = 0;
        while i + 2 <= limbs {
            let Some(window) = scratch.get_mut(i..) else {
                return;
            };
            let (Some(&w0), Some(&w1)) = (window.first(), window.get(1)) else {
                return;
            };
            let m0 = w0.wrapping_mul(self.n0_inv);
            let first = u64::from(w0) + u64::from(m0) * u64::from(n0);
            let second = u64::from(w1)
                + u64::from(m0) * u64::from(self.n.get(1).copied().unwrap_or(0))
                + (first >> 32);
            let mut carry0 = second >> 32;
            let w1 = second as u32;
            let m1 = w1.wrapping_mul(self.n0_inv);
            let mut carry1 = (u64::from(w1) + u64::from(m1) * u64::from(n0)) >> 32;
            let (Some(columns), Some(n_hi), Some(n_lo)) = (
                window.get_mut(2..limbs),
                self.n.get(2..),
                self.n.get(1..limbs - 1),
            ) else {
                return;
            };
            for ((w, &n_j), &n_j_minus_1) in columns.iter_mut().zip(n_hi).zip(n_lo) {
                let row0 = u64::from(*w) + u64::from(m0) * u64::from(n_j) + carry0;
                carry0 = row0 >> 32;
                let row1 = u64::from(row0 as u32) + u64::from(m1) * u64::from(n_j_minus_1) + carry1;
                carry1 = row1 >> 32;
                *w = row1 as u32;
            }
            // Column `limbs`: row 0 has only its carry left, row 1 its last product.
            let Some(w) = window.get_mut(limbs) else {
                return;
            };
            let row0 = u64::from(*w) + carry0;
            let row1 = u64::from(row0 as u32) + u64::from(m1) * u64::from(n_last) + carry1;
            *w = row1 as u32;
            add_carry(window.get_mut(limbs + 1..), (row0 >> 32) + (row1 >> 32));
            if let Some(cleared) = window.get_mut(..2) {
                cleared.fill(0);
            }
            i += 2;
        }
        // An odd limb count leaves one row.
        if i < limbs {
            let Some(window) = scratch.get_mut(i..) else {
                return;
            };
            let m = window
                .first()
                .copied()
                .unwrap_or(0)
                .wrapping_mul(self.n0_inv);
            let mut carry = 0u64;
            for (w, &nj) in window.iter_mut().zip(&self.n) {
                let sum = u64::from(*w) + u64::from(m) * u64::from(nj) + carry;
                *w = sum as u32;
                carry = sum >> 32;
            }
            add_carry(window.get_mut(limbs..), carry);
        }
    }

    /// The value of `wide` (limbs + 1 limbs, below 2n) reduced below n.
    fn reduce_once(&self, wide: &[u32]) -> Vec<u32> {
        let mut result = wide.to_vec();
        let top = result.pop().unwrap_or(0);
        if top != 0 || !less_than(&result, &self.n) {
            sub_in_place(&mut result, &self.n);
        }
        result
    }

    /// RSAVP1: sᵉ mod n as k big-endian bytes, or `None` when the signature is not k bytes or not
    /// below n (RFC 8017 §5.2.2, §8.2.2 step 1).
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.modulus_bytes {
            return None;
        }
        let limbs = self.n.len();
        let s = limbs_from_be(signature, limbs);
        if !less_than(&s, &self.n) {
            return None;
        }
        let mut scratch = Vec::with_capacity(2 * limbs + 2);
        let s_mont = self.mont_mul(&s, &self.r2, &mut scratch);
        let mut acc = s_mont.clone();
        let top_bit = 31 - self.e.leading_zeros();
        for bit in (0..top_bit).rev() {
            acc = self.mont_sqr(&acc, &mut scratch);
            if (self.e >> bit) & 1 == 1 {
                acc = self.mont_mul(&acc, &s_mont, &mut scratch);
            }
        }
        // Out of Montgomery form: acc·R⁻¹ is the reduction of acc alone (a product by 1 without the
        // multiplications).
        scratch.clear();
        scratch.extend_from_slice(&acc);
        scratch.resize(2 * limbs + 1, 0);
        self.reduce_in_place(&mut scratch);
        let m = self.reduce_once(scratch.get(limbs..=2 * limbs).unwrap_or_default());
        Some(be_from_limbs(&m, self.modulus_bytes))
    }
}

/// Which padding and hash a JWS RSA algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_DIGEST_INFO: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_DIGEST_INFO: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

impl RsaHash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            RsaHash::Sha256 => Sha256::digest(message).to_vec(),
            RsaHash::Sha384 => Sha384::digest(message).to_vec(),
            RsaHash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    fn digest_info(self) -> &'static [u8] {
        match self {
            RsaHash::Sha256 => SHA256_DIGEST_INFO,
            RsaHash::Sha384 => SHA384_DIGEST_INFO,
            RsaHash::Sha512 => SHA512_DIGEST_INFO,
        }
    }

    fn mgf1_xor(self, seed: &[u8], out: &mut [u8]) {
        match self {
            RsaHash::Sha256 => mgf1_xor::<Sha256>(seed, out),
            RsaHash::Sha384 => mgf1_xor::<Sha384>(seed, out),
            RsaHash::Sha512 => mgf1_xor::<Sha512>(seed, out),
        }
    }
}

/// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of `message`.
pub fn verify_pkcs1v15(
    key: &PreparedRsaKey,
    hash: RsaHash,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Some(em) = key.public_op(signature) else {
        return false;
    };
    let digest_info = hash.digest_info();
    let digest = hash.digest(message);
    let t_len = digest_info.len() + digest.len();
    let k = key.modulus_bytes;
    if k < t_len + 11 {
        return false;
    }
    // EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || DigestInfo || H, compared as a whole.
    let mut expected = Vec::with_capacity(k);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(k - t_len - 1, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(digest_info);
    expected.extend_from_slice(&digest);
    em == expected
}

/// RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS §9.1.2) with MGF1 over the same hash and a salt of
/// `salt_len` bytes (JWS uses the hash length, RFC 7518 §3.5).
pub fn verify_pss(
    key: &PreparedRsaKey,
    hash: RsaHash,
    message: &[u8],
    signature: &[u8],
    salt_len: usize,
) -> bool {
    let Some(em_full) = key.public_op(signature) else {
        return false;
    };
    let em_bits = key.modulus_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    // RSAVP1 gives k bytes; EM is its last emLen bytes, and any byte before must be zero.
    let Some(split) = em_full.len().checked_sub(em_len) else {
        return false;
    };
    let (leading, em) = em_full.split_at(split);
    if leading.iter().any(|&b| b != 0) {
        return false;
    }
    let m_hash = hash.digest(message);
    let h_len = m_hash.len();
    if em_len < h_len + salt_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let Some(h) = rest.get(..h_len) else {
        return false;
    };
    let unused_bits = 8 * em_len - em_bits;
    let top_mask: u8 = if unused_bits == 0 {
        0
    } else {
        0xff << (8 - unused_bits)
    };
    if masked_db.first().is_some_and(|&b| b & top_mask != 0) {
        return false;
    }
    let mut db = masked_db.to_vec();
    hash.mgf1_xor(h, &mut db);
    if let Some(first) = db.first_mut() {
        *first &= !top_mask;
    }
    let padding_len = db_len - salt_len - 1;
    let (padding, marker_and_salt) = db.split_at(padding_len);
    if padding.iter().any(|&b| b != 0) || marker_and_salt.first() != Some(&0x01) {
        return false;
    }
    let salt = marker_and_salt.get(1..).unwrap_or_default();
    let mut m_prime = Vec::with_capacity(8 + h_len + salt_len);
    m_prime.extend_from_slice(&[0u8; 8]);
    m_prime.extend_from_slice(&m_hash);
    m_prime.extend_from_slice(salt);
    hash.digest(&m_prime) == h
}

fn mgf1_xor<D: Digest + FixedOutputReset>(seed: &[u8], out: &mut [u8]) {
    let mut digest = D::new();
    for (counter, chunk) in out.chunks_mut(<D as Digest>::output_size()).enumerate() {
        Digest::update(&mut digest, seed);
        Digest::update(&mut digest, (counter as u32).to_be_bytes());
        let mask = digest.finalize_reset();
        for (byte, m) in chunk.iter_mut().zip(mask.iter()) {
            *byte ^= m;
        }
    }
}

/// A JWS RSA algorithm over prepared keys, for jwt-compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastRsa(pub JwsAlgorithm);

/// An RSA signature's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaSignatureBytes(Vec<u8>);

impl AlgorithmSignature for RsaSignatureBytes {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(RsaSignatureBytes(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// This filter only verifies; there is no signing key, so signing cannot even be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSigningKey {}

impl Algorithm for FastRsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = PreparedRsaKey;
    type Signature = RsaSignatureBytes;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0.name())
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> RsaSignatureBytes {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &RsaSignatureBytes,
        key: &PreparedRsaKey,
        message: &[u8],
    ) -> bool {
        let (hash, pss) = match self.0 {
            JwsAlgorithm::Rs256 => (RsaHash::Sha256, false),
            JwsAlgorithm::Rs384 => (RsaHash::Sha384, false),
            JwsAlgorithm::Rs512 => (RsaHash::Sha512, false),
            JwsAlgorithm::Ps256 => (RsaHash::Sha256, true),
            JwsAlgorithm::Ps384 => (RsaHash::Sha384, true),
            JwsAlgorithm::Ps512 => (RsaHash::Sha512, true),
            // Not an RSA algorithm: an RSA key verifies nothing else.
            JwsAlgorithm::Es256
            | JwsAlgorithm::Es384
            | JwsAlgorithm::EdDsa
            | JwsAlgorithm::Hs256
            | JwsAlgorithm::Hs384
            | JwsAlgorithm::Hs512 => return false,
        };
        if pss {
            let salt_len = hash.digest(b"").len();
            verify_pss(key, hash, message, &signature.0, salt_len)
        } else {
            verify_pkcs1v15(key, hash, message, &signature.0)
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Big-endian bytes to `limbs` little-endian 32-bit limbs (bytes beyond are dropped; callers size it).
fn limbs_from_be(bytes: &[u8], limbs: usize) -> Vec<u32> {
    let mut out = vec![0u32; limbs];
    for (i, &byte) in bytes.iter().rev().enumerate() {
        if let Some(limb) = out.get_mut(i / 4) {
            *limb |= u32::from(byte) << (8 * (i % 4));
        }
    }
    out
}

fn be_from_limbs(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().rev().enumerate() {
        let limb = limbs.get(i / 4).copied().unwrap_or(0);
        *byte = (limb >> (8 * (i % 4))) as u8;
    }
    out
}

/// a < b for equal-length little-endian numbers.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// a −= b (mod 2^(32·len)).
fn sub_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u64;
    for (x, &y) in a.iter_mut().zip(b) {
        let diff = u64::from(*x)
            .wrapping_sub(u64::from(y))
            .wrapping_sub(borrow);
        *x = diff as u32;
        borrow = (diff >> 63) & 1;
    }
}

/// x <<= 1; returns the bit shifted out.
fn shift_left_one(x: &mut [u32]) -> bool {
    let mut carry = 0u32;
    for limb in x.iter_mut() {
        let next = *limb >> 31;
        *limb = (*limb << 1) | carry;
        carry = next;
    }
    carry == 1
}

fn add_carry(limbs: Option<&mut [u32]>, mut carry: u64) {
    let Some(limbs) = limbs else { return };
    for limb in limbs {
        if carry == 0 {
            return;
        }
        let sum = u64::from(*limb) + carry;
        *limb = sum as u32;
        carry = sum >> 32;
    }
}
