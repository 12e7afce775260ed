//! Schoolbook products by columns for the fields of small limbs ([`super::p384_field`],
//! [`super::p521_field`]): column k is the sum of the products aᵢ·bⱼ with i + j = k, left unreduced
//! for the field's own folding. The limbs are small enough that no column overflows its integer.

use std::ops::{Add, AddAssign, Mul};

/// `columns[i + j] += a[i]·b[j]` for every i and j (`columns` holds the 2·n − 1 sums of n limbs).
#[inline(always)]
pub(super) fn product<T>(a: &[T], b: &[T], columns: &mut [T])
where
    T: Copy + Mul<Output = T> + AddAssign,
{
    let n = b.len();
    for (i, &x) in a.iter().enumerate() {
        if let Some(row) = columns.get_mut(i..i + n) {
            for (column, &y) in row.iter_mut().zip(b) {
                *column += x * y;
            }
        }
    }
}

/// The columns of a·a, each cross product computed once and doubled: n·(n + 1)/2 products instead of
/// n².
#[inline(always)]
pub(super) fn square<T>(a: &[T], columns: &mut [T])
where
    T: Copy + Add<Output = T> + Mul<Output = T> + AddAssign,
{
    let n = a.len();
    for (i, &x) in a.iter().enumerate() {
        let doubled = x + x;
        if let Some(column) = columns.get_mut(2 * i) {
            *column += x * x;
        }
        if let (Some(row), Some(rest)) = (columns.get_mut(2 * i + 1..i + n), a.get(i + 1..)) {
            for (column, &y) in row.iter_mut().zip(rest) {
                *column += doubled * y;
            }
        }
    }
}
