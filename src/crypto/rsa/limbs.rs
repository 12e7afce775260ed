//! Little-endian numbers in limbs of `BITS` bits, for both RSA kernels (28-bit limbs in u32, 52-bit
//! limbs in u64): conversion from and to big-endian bytes, comparison, subtraction and R² mod n. None
//! of this is on a product's inner loop.

/// A limb type: u32 or u64, holding `BITS` < 63 bits.
pub trait Limb: Copy + Ord + Default {
    fn to_u64(self) -> u64;
    /// The low bits of `value` (callers mask to `BITS` first).
    fn from_u64(value: u64) -> Self;
}

impl Limb for u32 {
    fn to_u64(self) -> u64 {
        u64::from(self)
    }

    fn from_u64(value: u64) -> u32 {
        value as u32
    }
}

impl Limb for u64 {
    fn to_u64(self) -> u64 {
        self
    }

    fn from_u64(value: u64) -> u64 {
        value
    }
}

const fn mask(bits: u32) -> u64 {
    (1 << bits) - 1
}

/// Big-endian bytes to `limbs` little-endian limbs (bits beyond are dropped; callers size it).
pub fn from_be<T: Limb, const BITS: u32>(bytes: &[u8], limbs: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(limbs);
    let (mut pending, mut pending_bits) = (0u64, 0u32);
    for &byte in bytes.iter().rev() {
        pending |= u64::from(byte) << pending_bits;
        pending_bits += 8;
        if pending_bits >= BITS {
            out.push(T::from_u64(pending & mask(BITS)));
            pending >>= BITS;
            pending_bits -= BITS;
        }
    }
    if pending_bits > 0 {
        out.push(T::from_u64(pending));
    }
    out.resize(limbs, T::default());
    out
}

/// Little-endian limbs to `len` big-endian bytes.
pub fn to_be<T: Limb, const BITS: u32>(limbs: &[T], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let (mut pending, mut pending_bits) = (0u64, 0u32);
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if pending_bits < 8 {
            pending |= limbs.next().map_or(0, |limb| limb.to_u64()) << pending_bits;
            pending_bits += BITS;
        }
        *byte = pending as u8;
        pending >>= 8;
        pending_bits -= 8;
    }
    out
}

/// a < b for equal-length little-endian numbers.
pub fn less_than<T: Limb>(a: &[T], b: &[T]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// a −= b (mod 2^(BITS·len)), for limbs below 2^BITS.
pub fn sub_in_place<T: Limb, const BITS: u32>(a: &mut [T], b: &[T]) {
    let mut borrow = 0u64;
    for (x, &y) in a.iter_mut().zip(b) {
        let diff = x.to_u64().wrapping_sub(y.to_u64()).wrapping_sub(borrow);
        borrow = diff >> 63;
        *x = T::from_u64(diff & mask(BITS));
    }
}

/// R² mod n, R = 2^(BITS·limbs), with `square` a Montgomery square (x ↦ x²·R⁻¹ mod n, below n).
/// Write BITS·limbs = c·2ʲ (j at most 5): doubling 1 modulo n BITS·limbs + c times gives 2ᶜ·R, the
/// Montgomery form of 2ᶜ, and j Montgomery squares give the form of 2^(c·2ʲ) = R, which is R². That is
/// about half the doublings of doubling all the way (2·BITS·limbs), the bulk of preparing a key.
pub fn r_squared<T: Limb, const BITS: u32>(
    n: &[T],
    mut square: impl FnMut(&[T]) -> Vec<T>,
) -> Vec<T> {
    let bits = BITS as usize * n.len();
    let squares = bits.trailing_zeros().min(5);
    let mut x = power_of_two_mod::<T, BITS>(n, bits + (bits >> squares));
    for _ in 0..squares {
        x = square(&x);
    }
    x
}

/// sᵉ mod n for odd e, by Montgomery products: `product(a, Some(b), out)` puts a·b·R⁻¹ mod n into
/// `out`, `product(a, None, out)` a·a·R⁻¹ mod n. s goes into Montgomery form by a product with R² mod
/// n; the last bit of e multiplies by s itself rather than its Montgomery form, which leaves
/// Montgomery form in the same product (one fewer than a product by 1).
pub fn public_power<T: Limb>(
    s: &[T],
    r2: &[T],
    e: u32,
    mut product: impl FnMut(&[T], Option<&[T]>, &mut Vec<T>),
) -> Vec<T> {
    let mut s_mont = Vec::with_capacity(s.len());
    product(s, Some(r2), &mut s_mont);
    let mut acc = s_mont.clone();
    let mut next = Vec::with_capacity(s.len());
    let top_bit = 31 - e.leading_zeros();
    for bit in (0..top_bit).rev() {
        product(&acc, None, &mut next);
        std::mem::swap(&mut acc, &mut next);
        if bit == 0 {
            product(&acc, Some(s), &mut next);
        } else if (e >> bit) & 1 == 1 {
            product(&acc, Some(&s_mont), &mut next);
            std::mem::swap(&mut acc, &mut next);
        }
    }
    next
}

/// 2^power mod n, by doubling 1 modulo n `power` times.
fn power_of_two_mod<T: Limb, const BITS: u32>(n: &[T], power: usize) -> Vec<T> {
    let mut x = vec![T::default(); n.len()];
    if let Some(low) = x.first_mut() {
        *low = T::from_u64(1);
    }
    for _ in 0..power {
        let mut carry = 0;
        for limb in x.iter_mut() {
            let doubled = (limb.to_u64() << 1) | carry;
            carry = doubled >> BITS;
            *limb = T::from_u64(doubled & mask(BITS));
        }
        if carry != 0 || !less_than(&x, n) {
            sub_in_place::<T, BITS>(&mut x, n);
        }
    }
    x
}
