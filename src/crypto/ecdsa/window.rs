//! u₁·G + u₂·Q for a key used once (a DPoP proof's): u₁·G from the VM's comb table of G, u₂·Q by a
//! width-5 NAF over the odd multiples Q, 3Q, …, 15Q computed for this signature alone. No per-key
//! table: proof keys are as many as there are clients.
//!
//! The comb's columns of u₁ are added in the last `row_bits` steps of u₂'s doubling chain (column c
//! when c doublings remain), so the two share the doublings: one per bit of u₂, about one addition
//! per 6 bits of u₂ (NAF digits) and at most `row_bits` mixed additions for u₁.

use super::jacobian::{Affine, Entry, Field, Jacobian};

/// NAF width: digits are odd, in −15..=15.
const WIDTH: u32 = 5;

/// The width-5 NAF of the big-endian scalar `scalar`: `digits[i]` weighs 2^i; every non-zero digit is
/// odd and at most 15 in size, and of any 5 consecutive digits at most one is non-zero. One digit more
/// than the scalar has bits, for the final carry.
fn naf(scalar: &[u8]) -> Vec<i8> {
    let len = scalar.len() * 8 + 1;
    let bit = |i: usize| -> u32 {
        scalar
            .len()
            .checked_sub(1 + i / 8)
            .and_then(|at| scalar.get(at))
            .map_or(0, |byte| u32::from(byte >> (i % 8)) & 1)
    };
    let mut digits = vec![0i8; len];
    let (mut carry, mut i) = (0u32, 0usize);
    while i < len {
        if bit(i) == carry {
            i += 1;
            continue;
        }
        // The window's bits plus the carry: odd, since bit i differs from the carry.
        let width = (WIDTH as usize).min(len - i);
        let window = (0..width).fold(0u32, |acc, k| acc | (bit(i + k) << k)) + carry;
        carry = (window >> (WIDTH - 1)) & 1;
        let digit = window as i32 - ((carry << WIDTH) as i32);
        if let Some(slot) = digits.get_mut(i) {
            *slot = digit as i8;
        }
        i += width;
    }
    digits
}

/// u₁·G + u₂·Q from G's comb table (`row_bits`-bit rows) and the columns of u₁, and the point Q with
/// the big-endian u₂.
pub(super) fn linear_combination_once<F: Field, const COLUMNS: usize>(
    g_table: &[Entry<F>],
    u1: &[u8; COLUMNS],
    q: &Affine<F>,
    u2: &[u8],
) -> Jacobian<F> {
    // odd[k] = (2k + 1)·Q.
    let q = Jacobian::from_affine(q);
    let twice = q.double();
    let mut odd = [q; 8];
    let mut previous = q;
    for slot in odd.iter_mut().skip(1) {
        previous = previous.add(&twice);
        *slot = previous;
    }
    let digits = naf(u2);
    let mut sum = Jacobian::IDENTITY;
    for (i, &digit) in digits.iter().enumerate().rev() {
        sum = sum.double();
        let magnitude = usize::from(digit.unsigned_abs() / 2);
        if let Some(multiple) = odd.get(magnitude).filter(|_| digit != 0) {
            sum = if digit > 0 {
                sum.add(multiple)
            } else {
                sum.add(&multiple.neg())
            };
        }
        if let Some(entry) = u1
            .get(i)
            .and_then(|&column| usize::from(column).checked_sub(1))
            .and_then(|index| g_table.get(index))
        {
            sum = sum.add_affine(&entry.affine());
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::naf;

    /// The digits add up to the scalar and have the NAF's shape, for every 16-bit scalar and some
    /// wide ones.
    #[test]
    fn naf_digits_sum_to_the_scalar() {
        let check = |bytes: &[u8]| {
            let digits = naf(bytes);
            let value = digits
                .iter()
                .enumerate()
                .fold(0i128, |acc, (i, &d)| acc + (i128::from(d) << i));
            let expected = bytes
                .iter()
                .fold(0i128, |acc, &b| (acc << 8) | i128::from(b));
            assert_eq!(value, expected, "{bytes:?}");
            for (i, &d) in digits.iter().enumerate() {
                if d != 0 {
                    assert!(d % 2 != 0 && d.abs() <= 15, "{bytes:?}: digit {d}");
                    assert!(digits[i + 1..].iter().take(4).all(|&e| e == 0), "{bytes:?}");
                }
            }
        };
        for k in 0..=u16::MAX {
            check(&k.to_be_bytes());
        }
        check(&[0xff; 15]);
        check(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        check(&[
            0x7b, 0xef, 0xff, 0xf7, 0xbe, 0xef, 0x01, 0xf0, 0x0f, 0xff, 0xaa, 0x55, 0, 0x1f, 0xf1,
        ]);
    }
}
