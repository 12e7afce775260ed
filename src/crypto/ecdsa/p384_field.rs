//! Arithmetic modulo the P-384 prime p = 2^384 − 2^128 − 2^96 + 2^32 − 1, for the Jacobian comb
//! verification of ES384.
//!
//! p384's own field (`expose-field`) is fiat-crypto's word-by-word Montgomery multiplication, which in
//! V8 takes about 0.48 µs a product, five times P-256's for 2.25 times the limb products. Here an
//! element is 16 limbs of 24 bits (exactly 384 bits): a limb product is one `i64.mul`, a column of 16
//! of them stays below 2^52, and 2^384 ≡ 2^128 + 2^96 − 2^32 + 1 (limbs 5 (·2^8), 4, 1 (·−2^8) and 0)
//! folds the upper half of a product back with shifts and adds, in signed 64-bit arithmetic. Elements
//! are kept with every limb below 2^24 (the value below 2^384 < 2p, not necessarily below p);
//! [`P384Field::canonical`] reduces fully, for comparisons. Only public values pass through here, so
//! nothing needs to be constant time.

use super::jacobian::Field;
use super::schoolbook;

const LIMBS: usize = 16;
const BITS: u32 = 24;
const MASK: i64 = (1 << BITS) - 1;

/// p, limb by limb.
const P: [i64; LIMBS] = [
    0xff_ffff, 0xff, 0, 0, 0xff_ffff, 0xff_feff, 0xff_ffff, 0xff_ffff, 0xff_ffff, 0xff_ffff,
    0xff_ffff, 0xff_ffff, 0xff_ffff, 0xff_ffff, 0xff_ffff, 0xff_ffff,
];

/// 2p with every limb at least 2^24 − 1 (digits borrowed from the next limb), so that a + 2p − b
/// never goes below zero in any limb.
const TWO_P: [i64; LIMBS] = [
    33_554_430, 16_777_726, 16_777_215, 16_777_215, 33_554_429, 33_553_918, 33_554_430, 33_554_430,
    33_554_430, 33_554_430, 33_554_430, 33_554_430, 33_554_430, 33_554_430, 33_554_430, 33_554_430,
];

/// An element of GF(p), every limb in 0..2^24.
#[derive(Clone, Copy, Debug)]
pub(super) struct P384Field([i64; LIMBS]);

/// Adds `value` to `limbs[at]` (indices past the end cannot occur: the callers' bounds keep them in).
#[inline(always)]
fn add_at<const N: usize>(limbs: &mut [i64; N], at: usize, value: i64) {
    if let Some(limb) = limbs.get_mut(at) {
        *limb += value;
    }
}

/// Adds c·2^384·2^(24·k) ≡ c·2^(24·k)·(2^128 + 2^96 − 2^32 + 1) into `limbs`.
#[inline(always)]
fn fold_into<const N: usize>(limbs: &mut [i64; N], k: usize, c: i64) {
    add_at(limbs, k, c);
    add_at(limbs, k + 1, -(c << 8));
    add_at(limbs, k + 4, c);
    add_at(limbs, k + 5, c << 8);
}

/// One signed carry pass: every limb but the last into 0..2^24, the last keeps the rest.
#[inline(always)]
fn carry_pass<const N: usize>(limbs: &mut [i64; N]) {
    let mut carry = 0i64;
    let last = N - 1;
    for (index, limb) in limbs.iter_mut().enumerate() {
        let value = *limb + carry;
        if index == last {
            *limb = value;
        } else {
            *limb = value & MASK;
            carry = value >> BITS;
        }
    }
}

/// 16 limbs of any size below about 2^61 in magnitude with a non-negative value, reduced to limbs in
/// 0..2^24: carry out of limb 15, fold the carry back, until there is none (at most three rounds).
#[inline(always)]
fn normalize(mut limbs: [i64; LIMBS + 1]) -> P384Field {
    for _ in 0..4 {
        carry_pass(&mut limbs);
        let top = limbs.last().copied().unwrap_or(0);
        if top == 0 {
            break;
        }
        if let Some(last) = limbs.last_mut() {
            *last = 0;
        }
        fold_into(&mut limbs, 0, top);
    }
    let mut out = [0i64; LIMBS];
    for (o, &l) in out.iter_mut().zip(&limbs) {
        *o = l;
    }
    P384Field(out)
}

/// The 31 columns of a product (each below 2^52) reduced mod p.
#[inline(always)]
fn reduce(columns: &[i64; 2 * LIMBS - 1]) -> P384Field {
    // Columns 16 + k fold into limbs k .. k + 5 (up to 19); then limbs 16..20 fold again into 0..9.
    let mut wide = [0i64; LIMBS + 5];
    let (low, high) = columns.split_at(LIMBS);
    for (w, &c) in wide.iter_mut().zip(low) {
        *w = c;
    }
    for (k, &c) in high.iter().enumerate() {
        fold_into(&mut wide, k, c);
    }
    carry_pass(&mut wide);
    let mut limbs = [0i64; LIMBS + 1];
    for (l, &w) in limbs.iter_mut().zip(wide.iter().take(LIMBS)) {
        *l = w;
    }
    for (k, &c) in wide.iter().skip(LIMBS).enumerate() {
        fold_into(&mut limbs, k, c);
    }
    normalize(limbs)
}

impl P384Field {
    /// The fully reduced limbs (the value below p).
    pub(super) fn canonical(&self) -> [i64; LIMBS] {
        let limbs = self.0;
        // The value is below 2^384 < 2p: subtract p once if it is at least p.
        let mut at_least_p = true;
        for (l, p) in limbs.iter().zip(&P).rev() {
            if l != p {
                at_least_p = l > p;
                break;
            }
        }
        if !at_least_p {
            return limbs;
        }
        let mut out = [0i64; LIMBS];
        let mut borrow = 0i64;
        for ((o, &l), &p) in out.iter_mut().zip(&limbs).zip(&P) {
            let value = l - p - borrow;
            *o = value & MASK;
            borrow = i64::from(value < 0);
        }
        out
    }

    /// The big-endian bytes of the reduced value.
    #[cfg(test)]
    pub(super) fn to_be_bytes(self) -> [u8; 48] {
        let limbs = self.canonical();
        let mut bytes = [0u8; 48];
        for (index, byte) in bytes.iter_mut().rev().enumerate() {
            *byte = limbs
                .get(index / 3)
                .map_or(0, |limb| (limb >> (8 * (index % 3))) as u8);
        }
        bytes
    }
}

impl Field for P384Field {
    /// The 16 limbs of 24 bits packed into 48 bytes (little-endian), 3 bytes a limb.
    type Stored = [u8; 48];
    #[inline(always)]
    fn store(&self) -> [u8; 48] {
        let mut bytes = [0u8; 48];
        for (chunk, limb) in bytes.chunks_exact_mut(3).zip(&self.0) {
            for (k, byte) in chunk.iter_mut().enumerate() {
                *byte = (limb >> (8 * k)) as u8;
            }
        }
        bytes
    }
    #[inline(always)]
    fn load(stored: &[u8; 48]) -> P384Field {
        let mut limbs = [0i64; LIMBS];
        for (limb, chunk) in limbs.iter_mut().zip(stored.chunks_exact(3)) {
            *limb = chunk
                .iter()
                .rev()
                .fold(0i64, |acc, &byte| (acc << 8) | i64::from(byte));
        }
        P384Field(limbs)
    }
    const ZERO: P384Field = P384Field([0; LIMBS]);
    const ONE: P384Field = {
        let mut limbs = [0; LIMBS];
        limbs[0] = 1;
        P384Field(limbs)
    };

    /// A big-endian integer of any length (leading zero bytes beyond 48 allowed), below p.
    fn from_be_bytes(bytes: &[u8]) -> Option<P384Field> {
        let mut limbs = [0i64; LIMBS];
        for (index, &byte) in bytes.iter().rev().enumerate() {
            if byte == 0 {
                continue;
            }
            *limbs.get_mut(index / 3)? |= i64::from(byte) << (8 * (index % 3));
        }
        let element = P384Field(limbs);
        (element.canonical() == limbs).then_some(element)
    }

    #[inline(always)]
    fn add(&self, other: &P384Field) -> P384Field {
        let mut sum = [0i64; LIMBS + 1];
        for ((s, a), b) in sum.iter_mut().zip(&self.0).zip(&other.0) {
            *s = a + b;
        }
        normalize(sum)
    }

    #[inline(always)]
    fn sub(&self, other: &P384Field) -> P384Field {
        let mut difference = [0i64; LIMBS + 1];
        for (((d, a), b), two_p) in difference.iter_mut().zip(&self.0).zip(&other.0).zip(&TWO_P) {
            *d = a + two_p - b;
        }
        normalize(difference)
    }

    fn mul(&self, other: &P384Field) -> P384Field {
        let mut columns = [0i64; 2 * LIMBS - 1];
        schoolbook::product(&self.0, &other.0, &mut columns);
        reduce(&columns)
    }

    fn square(&self) -> P384Field {
        // Each cross product once, doubled: 136 products instead of 256.
        let mut columns = [0i64; 2 * LIMBS - 1];
        schoolbook::square(&self.0, &mut columns);
        reduce(&columns)
    }

    fn is_zero(&self) -> bool {
        self.canonical() == [0; LIMBS]
    }

    fn equals(&self, other: &P384Field) -> bool {
        self.canonical() == other.canonical()
    }

    /// self^(p − 2) (Fermat), square-and-multiply over the bits of p − 2.
    fn invert(&self) -> Option<P384Field> {
        if self.is_zero() {
            return None;
        }
        // p − 2, big-endian 64-bit words.
        const P_MINUS_2: [u64; 6] = [
            0xffff_ffff_ffff_ffff,
            0xffff_ffff_ffff_ffff,
            0xffff_ffff_ffff_ffff,
            0xffff_ffff_ffff_fffe,
            0xffff_ffff_0000_0000,
            0x0000_0000_ffff_fffd,
        ];
        let mut result = P384Field::ONE;
        for word in P_MINUS_2 {
            for bit in (0..64).rev() {
                result = result.square();
                if (word >> bit) & 1 == 1 {
                    result = result.mul(self);
                }
            }
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
    use p384::elliptic_curve::bigint::{Encoding, U384};
    use rand::RngCore;

    fn modulus() -> U384 {
        U384::from_be_hex(
            "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
        )
    }

    fn residue(bytes: &[u8; 48]) -> DynResidue<{ U384::LIMBS }> {
        DynResidue::new(
            &U384::from_be_bytes(*bytes),
            DynResidueParams::new(&modulus()),
        )
    }

    fn bytes_of(residue: &DynResidue<{ U384::LIMBS }>) -> [u8; 48] {
        residue.retrieve().to_be_bytes()
    }

    #[test]
    fn the_limb_constants_are_p_and_2p() {
        let value = |limbs: &[i64; LIMBS]| {
            limbs.iter().rev().fold(U384::ZERO, |acc, &l| {
                acc.shl_vartime(24).wrapping_add(&U384::from_u64(l as u64))
            })
        };
        assert_eq!(value(&P), modulus());
        // 2p does not fit U384: compare 2p − p.
        let mut two_p_minus_p = [0i64; LIMBS];
        let mut borrow = 0;
        for ((o, &a), &b) in two_p_minus_p.iter_mut().zip(&TWO_P).zip(&P) {
            let v = a - b + borrow;
            *o = v & MASK;
            borrow = v >> BITS;
        }
        assert_eq!(borrow, 0);
        assert_eq!(value(&two_p_minus_p), modulus());
    }

    #[test]
    fn packing_keeps_the_limbs() {
        let mut bytes = [0u8; 48];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes[0] &= 0x7f;
        let element = P384Field::from_be_bytes(&bytes).unwrap();
        assert_eq!(P384Field::load(&element.store()).0, element.0);
        let minus_one = P384Field::ZERO.sub(&P384Field::ONE);
        assert_eq!(P384Field::load(&minus_one.store()).0, minus_one.0);
    }

    /// Chains of every operation on random and extreme values (0, 1, p − 1, p − 2^32, 2^383)
    /// against crypto-bigint's modular arithmetic.
    #[test]
    fn field_operations_agree_with_modular_integers() {
        let mut rng = rand::thread_rng();
        let p_bytes = modulus().to_be_bytes();
        let minus = |k: u64| modulus().wrapping_sub(&U384::from_u64(k)).to_be_bytes();
        let mut values = vec![[0u8; 48], minus(1), minus(1 << 32), minus(2), [0xff; 48]];
        values[0][47] = 1;
        values[4] = minus(0xffff_ffff_ffff);
        let mut top = [0u8; 48];
        top[0] = 0x80;
        values.push(top);
        for _ in 0..40 {
            let mut bytes = [0u8; 48];
            rng.fill_bytes(&mut bytes);
            if U384::from_be_bytes(bytes) >= modulus() {
                bytes[0] = 0x7f;
            }
            values.push(bytes);
        }
        values.push([0u8; 48]);
        assert!(P384Field::from_be_bytes(&p_bytes).is_none());
        assert!(P384Field::from_be_bytes(&[0xff; 48]).is_none());
        for a in &values {
            let (fa, ra) = (P384Field::from_be_bytes(a).unwrap(), residue(a));
            assert_eq!(fa.to_be_bytes(), *a);
            let mut chain = (fa, ra);
            for b in &values {
                let (fb, rb) = (P384Field::from_be_bytes(b).unwrap(), residue(b));
                assert_eq!(bytes_of(&(ra * rb)), fa.mul(&fb).to_be_bytes());
                assert_eq!(bytes_of(&(ra + rb)), fa.add(&fb).to_be_bytes());
                assert_eq!(bytes_of(&(ra - rb)), fa.sub(&fb).to_be_bytes());
                assert_eq!(a == b, fa.equals(&fb));
                assert_eq!(bytes_of(&rb.square()), fb.square().to_be_bytes(), "square");
                assert_eq!(bytes_of(&(rb + rb)), fb.double().to_be_bytes(), "double");
                let (x, rx) = chain;
                let fx = x.sub(&fb).square().mul(&fb).add(&x).sub(&fb.double());
                let rx = (rx - rb).square() * rb + rx - (rb + rb);
                assert_eq!(bytes_of(&rx), fx.to_be_bytes());
                chain = (fx, rx);
            }
            assert_eq!(bytes_of(&ra.square()), fa.square().to_be_bytes());
            assert_eq!(a.iter().all(|&b| b == 0), fa.is_zero());
            match fa.invert() {
                Some(inverse) => assert!(inverse.mul(&fa).equals(&P384Field::ONE)),
                None => assert!(fa.is_zero()),
            }
        }
    }
}
