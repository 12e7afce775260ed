//! Arithmetic modulo the P-521 prime p = 2^521 − 1, for the Jacobian comb verification of ES512.
//!
//! p521 0.13 does not expose its field element (there is no `expose-field` feature), and its fiat-crypto
//! backend has 64-bit limbs only: every limb product is a u128, which wasm32 has no instruction for (a
//! call to `__multi3` each). Here a field element is 18 limbs of 29 bits (522 bits), so a limb product
//! is one `i64.mul` and a column of them fits a u64; 2^522 ≡ 2 (mod p) folds the upper half of a product
//! back with a doubling. Elements are kept loosely reduced (every limb below 2^29 + 2^7, the value below
//! 2^522 + 2^36, not necessarily below p); [`P521Field::canonical`] reduces fully, for comparisons. A
//! loose limb fits a u32, so an element is stored in 72 bytes (as p521's own) and a comb table of 255
//! affine points takes 36 KB. Only public values pass through here, so nothing needs to be constant
//! time.
//!
//! Bounds: loose limbs are below 2^29.001, a product of two below 2^58.002; a column of the folded
//! product sums at most 35 of them (c_k + 2·c_(k+18): (k + 1) + 2·(17 − k) terms), below 2^63.2.

use super::jacobian::Field;
use super::schoolbook;

const LIMBS: usize = 18;
const BITS: u32 = 29;
const MASK: u64 = (1 << BITS) - 1;
/// The bits of the top limb below 2^521 (521 − 17·29).
const TOP_BITS: u32 = 28;
const TOP_MASK: u64 = (1 << TOP_BITS) - 1;

/// 4p limb by limb (2^523 − 4 = [2^30 − 4, 2^30 − 2, …, 2^30 − 2] in base 2^29): every limb is above
/// any loose limb, so a + 4p − b never goes below zero in any limb.
const FOUR_P: [u64; LIMBS] = {
    let mut limbs = [(1 << 30) - 2; LIMBS];
    limbs[0] = (1 << 30) - 4;
    limbs
};

/// An element of GF(2^521 − 1), loosely reduced, limbs stored as u32 and computed on as u64.
#[derive(Clone, Copy, Debug)]
pub(super) struct P521Field([u32; LIMBS]);

impl P521Field {
    #[inline(always)]
    fn wide(&self) -> [u64; LIMBS] {
        self.0.map(u64::from)
    }
}

/// One carry pass over `limbs` (each below 2^64 − 2^36), the carry out of the top folded into limb 0
/// (2^522 ≡ 2) and on into limb 1: the result is loose.
#[inline(always)]
fn carry(mut limbs: [u64; LIMBS]) -> P521Field {
    let mut carry = 0u64;
    for limb in limbs.iter_mut() {
        let value = *limb + carry;
        *limb = value & MASK;
        carry = value >> BITS;
    }
    let [first, second, ..] = &mut limbs;
    let value = *first + 2 * carry;
    *first = value & MASK;
    *second += value >> BITS;
    // Every limb is now below 2^29 + 2^7.
    P521Field(limbs.map(|limb| limb as u32))
}

impl P521Field {
    /// The element of a big-endian integer of any length, `None` unless it is below p.
    fn from_be_slice(bytes: &[u8]) -> Option<P521Field> {
        let mut limbs = [0u64; LIMBS];
        for (index, &byte) in bytes.iter().rev().enumerate() {
            if byte == 0 {
                continue;
            }
            let position = index * 8;
            let (limb, shift) = (position / BITS as usize, position % BITS as usize);
            let value = u64::from(byte) << shift;
            *limbs.get_mut(limb)? |= value & MASK;
            if value >> BITS != 0 {
                *limbs.get_mut(limb + 1)? |= value >> BITS;
            }
        }
        // Below 2^521, and not p itself.
        let below_2_521 = limbs.last().is_some_and(|top| top >> TOP_BITS == 0);
        let element = P521Field(limbs.map(|limb| limb as u32));
        (below_2_521 && element.canonical() == limbs).then_some(element)
    }

    /// The fully reduced limbs: every limb below 2^29, the value below p.
    pub(super) fn canonical(&self) -> [u64; LIMBS] {
        let mut limbs = self.wide();
        // Carry until every limb is below 2^29 (the value is then below 2^522).
        for _ in 0..3 {
            let mut carry = 0u64;
            for limb in limbs.iter_mut() {
                let value = *limb + carry;
                *limb = value & MASK;
                carry = value >> BITS;
            }
            match limbs.first_mut() {
                Some(first) if carry != 0 => *first += 2 * carry,
                _ => break,
            }
        }
        // Fold bit 521 and above back (2^521 ≡ 1), twice: the first fold can carry into bit 521 again
        // only by making the value exactly 2^521.
        for _ in 0..2 {
            let high = limbs.last().map_or(0, |top| top >> TOP_BITS);
            if high == 0 {
                break;
            }
            if let Some(top) = limbs.last_mut() {
                *top &= TOP_MASK;
            }
            let mut carry = high;
            for limb in limbs.iter_mut() {
                let value = *limb + carry;
                *limb = value & MASK;
                carry = value >> BITS;
            }
        }
        // p itself is 0.
        let (low, top) = limbs.split_at(LIMBS - 1);
        if low.iter().all(|&limb| limb == MASK) && top.iter().all(|&limb| limb == TOP_MASK) {
            limbs = [0; LIMBS];
        }
        limbs
    }

    /// The big-endian bytes of the reduced value (66 of them, as SEC 1 writes P-521 coordinates).
    #[cfg(test)]
    pub(super) fn to_be_bytes(self) -> [u8; 66] {
        let limbs = self.canonical();
        let mut bytes = [0u8; 66];
        for (index, byte) in bytes.iter_mut().rev().enumerate() {
            let position = index * 8;
            let (limb, shift) = (position / BITS as usize, position % BITS as usize);
            let low = limbs.get(limb).map_or(0, |l| l >> shift);
            let high = limbs
                .get(limb + 1)
                .map_or(0, |l| l << (BITS as usize - shift));
            *byte = ((low | high) & 0xff) as u8;
        }
        bytes
    }

    /// self^(2^k).
    fn square_times(&self, k: usize) -> P521Field {
        let mut x = *self;
        for _ in 0..k {
            x = Field::square(&x);
        }
        x
    }
}

impl Field for P521Field {
    // Already 72 bytes (u32 limbs).
    type Stored = P521Field;
    #[inline(always)]
    fn store(&self) -> P521Field {
        *self
    }
    #[inline(always)]
    fn load(stored: &P521Field) -> P521Field {
        *stored
    }
    const ZERO: P521Field = P521Field([0; LIMBS]);
    const ONE: P521Field = {
        let mut limbs = [0; LIMBS];
        limbs[0] = 1;
        P521Field(limbs)
    };

    fn from_be_bytes(bytes: &[u8]) -> Option<P521Field> {
        P521Field::from_be_slice(bytes)
    }

    #[inline(always)]
    fn add(&self, other: &P521Field) -> P521Field {
        let mut sum = [0u64; LIMBS];
        for ((s, a), b) in sum.iter_mut().zip(&self.wide()).zip(&other.wide()) {
            *s = a + b;
        }
        carry(sum)
    }

    #[inline(always)]
    fn sub(&self, other: &P521Field) -> P521Field {
        let mut difference = [0u64; LIMBS];
        for (((d, a), b), four_p) in difference
            .iter_mut()
            .zip(&self.wide())
            .zip(&other.wide())
            .zip(&FOUR_P)
        {
            *d = a + four_p - b;
        }
        carry(difference)
    }

    fn mul(&self, other: &P521Field) -> P521Field {
        let mut columns = [0u64; 2 * LIMBS - 1];
        schoolbook::product(&self.wide(), &other.wide(), &mut columns);
        fold(&columns)
    }

    fn square(&self) -> P521Field {
        // Each cross product once, doubled: 171 products instead of 324.
        let mut columns = [0u64; 2 * LIMBS - 1];
        schoolbook::square(&self.wide(), &mut columns);
        fold(&columns)
    }

    fn is_zero(&self) -> bool {
        self.canonical() == [0; LIMBS]
    }

    fn equals(&self, other: &P521Field) -> bool {
        self.canonical() == other.canonical()
    }

    /// self^(p − 2) (Fermat), p − 2 = 2^521 − 3 = (2^519 − 1)·4 + 1: 520 squarings, 13 multiplications.
    fn invert(&self) -> Option<P521Field> {
        if self.is_zero() {
            return None;
        }
        // x_k = self^(2^k − 1).
        let x1 = *self;
        let x2 = x1.square_times(1).mul(&x1);
        let x3 = x2.square_times(1).mul(&x1);
        let x4 = x2.square_times(2).mul(&x2);
        let x7 = x4.square_times(3).mul(&x3);
        let x8 = x4.square_times(4).mul(&x4);
        let x16 = x8.square_times(8).mul(&x8);
        let x32 = x16.square_times(16).mul(&x16);
        let x64 = x32.square_times(32).mul(&x32);
        let x128 = x64.square_times(64).mul(&x64);
        let x256 = x128.square_times(128).mul(&x128);
        let x512 = x256.square_times(256).mul(&x256);
        let x519 = x512.square_times(7).mul(&x7);
        Some(x519.square_times(2).mul(&x1))
    }
}

/// The 35 columns of a product reduced to 18 loose limbs: column k + 18 weighs 2^522·2^(29k) ≡
/// 2·2^(29k).
#[inline(always)]
fn fold(columns: &[u64; 2 * LIMBS - 1]) -> P521Field {
    let (low, high) = columns.split_at(LIMBS);
    let mut limbs = [0u64; LIMBS];
    for (limb, &l) in limbs.iter_mut().zip(low) {
        *limb = l;
    }
    for (limb, &h) in limbs.iter_mut().zip(high) {
        *limb += 2 * h;
    }
    carry(limbs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p521::elliptic_curve::bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
    use p521::elliptic_curve::bigint::{Encoding, U576};
    use rand::RngCore;

    fn modulus() -> U576 {
        U576::ONE.shl_vartime(521).wrapping_sub(&U576::ONE)
    }

    fn residue(bytes: &[u8; 66]) -> DynResidue<{ U576::LIMBS }> {
        let mut wide = [0u8; 72];
        wide[6..].copy_from_slice(bytes);
        DynResidue::new(
            &U576::from_be_bytes(wide),
            DynResidueParams::new(&modulus()),
        )
    }

    fn bytes_of(residue: &DynResidue<{ U576::LIMBS }>) -> [u8; 66] {
        let wide = residue.retrieve().to_be_bytes();
        wide[6..].try_into().unwrap()
    }

    fn random_below_p(rng: &mut impl RngCore) -> [u8; 66] {
        let mut bytes = [0u8; 66];
        rng.fill_bytes(&mut bytes);
        bytes[0] &= 1;
        if bytes.iter().skip(1).all(|&b| b == 0xff) && bytes[0] == 1 {
            bytes[1] = 0;
        }
        bytes
    }

    /// Chains of every operation on random and extreme values (0, 1, p − 1, loose results of
    /// subtractions) against crypto-bigint's modular arithmetic.
    #[test]
    fn field_operations_agree_with_modular_integers() {
        let mut rng = rand::thread_rng();
        let mut p_minus_1 = [0xffu8; 66];
        p_minus_1[0] = 1;
        p_minus_1[65] = 0xfe;
        let mut values = vec![[0u8; 66], p_minus_1];
        values[0][65] = 1;
        for _ in 0..40 {
            values.push(random_below_p(&mut rng));
        }
        values.push([0u8; 66]);
        for a in &values {
            let (fa, ra) = (P521Field::from_be_bytes(a).unwrap(), residue(a));
            assert_eq!(fa.to_be_bytes(), *a);
            let mut chain = (fa, ra);
            for b in &values {
                let (fb, rb) = (P521Field::from_be_bytes(b).unwrap(), residue(b));
                assert_eq!(bytes_of(&(ra * rb)), fa.mul(&fb).to_be_bytes());
                assert_eq!(bytes_of(&(ra + rb)), fa.add(&fb).to_be_bytes());
                assert_eq!(bytes_of(&(ra - rb)), fa.sub(&fb).to_be_bytes());
                assert_eq!(a == b, fa.equals(&fb));
                // A running value that stays loose: x = (x − b)² · b + x − 2b.
                let (x, rx) = chain;
                let fx = x.sub(&fb).square().mul(&fb).add(&x).sub(&fb.double());
                let rx = (rx - rb).square() * rb + rx - (rb + rb);
                assert_eq!(bytes_of(&rx), fx.to_be_bytes());
                chain = (fx, rx);
            }
            assert_eq!(bytes_of(&ra.square()), fa.square().to_be_bytes());
            assert_eq!(a.iter().all(|&b| b == 0), fa.is_zero());
            match fa.invert() {
                Some(inverse) => assert!(inverse.mul(&fa).equals(&P521Field::ONE)),
                None => assert!(fa.is_zero()),
            }
        }
    }

    #[test]
    fn only_integers_below_p_are_field_elements() {
        let mut p = [0xffu8; 66];
        p[0] = 1;
        assert!(P521Field::from_be_bytes(&p).is_none());
        let mut two_521 = [0u8; 66];
        two_521[0] = 2;
        assert!(P521Field::from_be_bytes(&two_521).is_none());
        let mut wide = [0u8; 72];
        wide[71] = 5;
        let five = P521Field::from_be_bytes(&wide).unwrap();
        assert_eq!(five.to_be_bytes()[65], 5);
        wide[0] = 1;
        assert!(P521Field::from_be_bytes(&wide).is_none());
        // p + 0 as an unreduced sum is 0.
        let p_minus_1 = P521Field::from_be_bytes(&{
            let mut b = p;
            b[65] = 0xfe;
            b
        })
        .unwrap();
        assert!(p_minus_1.add(&P521Field::ONE).is_zero());
    }
}
