//! s⁻¹ mod n for ECDSA verification by the binary extended Euclidean algorithm on u64 limbs.
//!
//! RustCrypto's `invert_vartime` runs the same algorithm on its scalar types, whose limbs are u32 on
//! wasm32 (and whose P-384 and P-521 additions go through fiat-crypto code): in V8 about 20 µs for
//! P-256, 117 µs for P-384 and 190 µs for P-521, a sixth to a third of a whole verification. wasm has
//! 64-bit adds and shifts, so u64 limbs halve the work per step. s is public, so variable time is fine.

/// A little-endian integer of `L` u64 limbs.
type Limbs<const L: usize> = [u64; L];

/// The limbs of a big-endian integer that fits `L` limbs (leading bytes beyond them are dropped).
pub(super) fn from_be_bytes<const L: usize>(bytes: &[u8]) -> Limbs<L> {
    let mut limbs = [0u64; L];
    for (index, &byte) in bytes.iter().rev().enumerate() {
        if let Some(limb) = limbs.get_mut(index / 8) {
            *limb |= u64::from(byte) << (8 * (index % 8));
        }
    }
    limbs
}

/// The big-endian bytes of `limbs`, `out.len()` of them (higher bytes are dropped).
pub(super) fn to_be_bytes<const L: usize>(limbs: &Limbs<L>, out: &mut [u8]) {
    for (index, byte) in out.iter_mut().rev().enumerate() {
        *byte = limbs
            .get(index / 8)
            .map_or(0, |limb| (limb >> (8 * (index % 8))) as u8);
    }
}

fn is_one<const L: usize>(a: &Limbs<L>) -> bool {
    let (first, rest) = a.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
    first == 1 && rest.iter().all(|&limb| limb == 0)
}

fn is_even<const L: usize>(a: &Limbs<L>) -> bool {
    a.first().is_none_or(|limb| limb & 1 == 0)
}

/// a ≥ b.
fn at_least<const L: usize>(a: &Limbs<L>, b: &Limbs<L>) -> bool {
    for (x, y) in a.iter().zip(b).rev() {
        if x != y {
            return x > y;
        }
    }
    true
}

/// a += b, returning the carry out.
fn add_assign<const L: usize>(a: &mut Limbs<L>, b: &Limbs<L>) -> bool {
    let mut carry = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (sum, c1) = x.overflowing_add(y);
        let (sum, c2) = sum.overflowing_add(u64::from(carry));
        *x = sum;
        carry = c1 || c2;
    }
    carry
}

/// a −= b, returning the borrow out.
fn sub_assign<const L: usize>(a: &mut Limbs<L>, b: &Limbs<L>) -> bool {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (difference, b1) = x.overflowing_sub(y);
        let (difference, b2) = difference.overflowing_sub(u64::from(borrow));
        *x = difference;
        borrow = b1 || b2;
    }
    borrow
}

/// a = (a + top·2^(64·L)) / 2.
fn halve<const L: usize>(a: &mut Limbs<L>, top: bool) {
    let mut carry = u64::from(top);
    for limb in a.iter_mut().rev() {
        let next = *limb & 1;
        *limb = (*limb >> 1) | (carry << 63);
        carry = next;
    }
}

/// x / 2 mod n for x < n, n odd.
fn halve_mod<const L: usize>(x: &mut Limbs<L>, n: &Limbs<L>) {
    if is_even(x) {
        halve(x, false);
    } else {
        let carry = add_assign(x, n);
        halve(x, carry);
    }
}

/// x − y mod n for x, y < n.
fn sub_mod<const L: usize>(x: &mut Limbs<L>, y: &Limbs<L>, n: &Limbs<L>) {
    if sub_assign(x, y) {
        add_assign(x, n);
    }
}

/// a⁻¹ mod n for an odd n and 0 < a < n with gcd(a, n) = 1 (n prime); `None` otherwise.
pub(super) fn invert<const L: usize>(a: &Limbs<L>, n: &Limbs<L>) -> Option<Limbs<L>> {
    if a.iter().all(|&limb| limb == 0) || is_even(n) || at_least(a, n) {
        return None;
    }
    // Invariants: x1·a ≡ u and x2·a ≡ v (mod n); every step halves u or v, or subtracts the smaller.
    let (mut u, mut v) = (*a, *n);
    let mut x1 = [0u64; L];
    if let Some(first) = x1.first_mut() {
        *first = 1;
    }
    let mut x2 = [0u64; L];
    // Every second round at the latest takes a bit off u or v (a subtraction leaves an even number),
    // and together they start with at most 2·64·L bits.
    for _ in 0..4 * 64 * L + 4 {
        if is_one(&u) {
            return Some(x1);
        }
        if is_one(&v) {
            return Some(x2);
        }
        if u.iter().all(|&limb| limb == 0) || v.iter().all(|&limb| limb == 0) {
            return None;
        }
        if is_even(&u) {
            halve(&mut u, false);
            halve_mod(&mut x1, n);
        } else if is_even(&v) {
            halve(&mut v, false);
            halve_mod(&mut x2, n);
        } else if at_least(&u, &v) {
            sub_assign(&mut u, &v);
            sub_mod(&mut x1, &x2, n);
        } else {
            sub_assign(&mut v, &u);
            sub_mod(&mut x2, &x1, n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against RustCrypto's scalar inversion on random scalars and 1, 2, n − 1, n − 2 of each curve;
    /// 0 and n (and above) are refused.
    macro_rules! agrees_with_rustcrypto {
        ($curve:ident, $limbs:literal) => {{
            use $curve::elliptic_curve::ff::{Field, PrimeField};
            use $curve::Scalar;
            let mut rng = rand::thread_rng();
            let n = (-Scalar::ONE).to_repr();
            let mut n = from_be_bytes::<$limbs>(&n);
            n[0] += 1;
            let mut scalars = vec![Scalar::ONE, Scalar::ONE.double(), -Scalar::ONE];
            scalars.push(-Scalar::ONE.double());
            for _ in 0..200 {
                scalars.push(Scalar::random(&mut rng));
            }
            for s in scalars {
                let bytes = s.to_repr();
                let ours = invert::<$limbs>(&from_be_bytes(&bytes), &n).expect("invertible");
                let mut out = bytes.clone();
                to_be_bytes(&ours, &mut out);
                let theirs = s.invert().unwrap().to_repr();
                assert_eq!(out, theirs);
            }
            assert!(invert::<$limbs>(&[0; $limbs], &n).is_none());
            assert!(invert::<$limbs>(&n, &n).is_none());
            assert!(invert::<$limbs>(&[u64::MAX; $limbs], &n).is_none());
        }};
    }

    #[test]
    fn scalar_inverses_agree_with_rustcrypto() {
        agrees_with_rustcrypto!(p256, 4);
        agrees_with_rustcrypto!(p384, 6);
        agrees_with_rustcrypto!(p521, 9);
    }
}
