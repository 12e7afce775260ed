//! The RSA public-key operation in 52-bit limbs held as doubles, multiplied exactly by fused
//! multiply-add (wasm's `f64x2.relaxed_madd`, where the engine fuses it).
//!
//! Why: wasm has no 64×64→128 multiply, and its SIMD integer multiply gives 32×32→64 products through
//! two lane shuffles each in V8 (see `prepared_key.rs`). A fused multiply-add of two integers below
//! 2⁵² gives a 104-bit product exactly in two steps (the split below), two lanes at a time, with no
//! shuffle: 3.4 times the bits per product, and 40 limbs instead of 74 for RSA-2048, so about half
//! the columns and their carries.
//!
//! The split of a·b (a, b < 2⁵²), with C₁ = 2¹⁰⁴ and C₂ = 1.5·2⁵²:
//! - `h = fma(a, b, C₁)` lies in [2¹⁰⁴, 2¹⁰⁵), where doubles are 2⁵² apart: h = C₁ + H·2⁵², H = a·b/2⁵²
//!   rounded to nearest, and h's bits are C₁'s bits plus H.
//! - `l = fma(a, b, C₁ − h) + C₂`: C₁ − h = −H·2⁵² is exact, so is a·b − H·2⁵² (in [−2⁵¹, 2⁵¹]), and so
//!   is the sum with C₂, in [2⁵², 2⁵³] where doubles are 1 apart: l's bits are C₂'s bits plus the low
//!   part.
//!
//! So each product adds its low part's bits to one u64 column sum and its high part's bits to the
//! column above, with no conversion; the constants' bits, added once per product, are subtracted in
//! advance (wrapping arithmetic, and the true sums fit an i64). Low parts can be negative, so columns
//! and carries are signed.
//!
//! The product is operand scanning: a row adds aᵢ·b to the columns from i on, two rows (i and i + 1,
//! one limb apart) in one pass, so each column pair is loaded and stored once for four products and
//! no column is summed across lanes. The Montgomery reduction is rows of mᵢ·n after the product; mᵢ
//! is chosen from column i's low 52 bits, and mᵢ₊₁ from column i + 1's with row i's part in it
//! computed in integers, so the two rows can share a pass too. A square sums each cross product
//! aᵢ·aⱼ (i < j) once, doubles the columns and adds the diagonal squares. Against the same kernel by
//! product scanning (a horizontal sum and a carry chain per column) this is about 0.8 of its time in
//! V8.
//!
//! Relaxed SIMD lets an engine compute `relaxed_madd` unfused (a multiply, rounded, then an add) where
//! the CPU has no fused multiply-add; the split is then wrong. [`fused_multiply_add_is_exact`] checks
//! once per VM, and `PreparedRsaKey` uses this kernel only when it is.

use std::sync::{Arc, Mutex, OnceLock};

use crate::crypto::rsa::limbs;

/// Bits per limb.
const LIMB_BITS: u32 = 52;
const LIMB_MASK: u64 = (1 << LIMB_BITS) - 1;
/// 2¹⁰⁴: the high part's offset.
const HIGH_OFFSET: f64 = 20282409603651670423947251286016.0;
/// 1.5·2⁵²: the low part's offset.
const LOW_OFFSET: f64 = 6755399441055744.0;
/// Zero limbs before each operand: the second row of a pass reads its operand one limb back.
const FRONT: usize = 1;

/// A modulus prepared for this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FusedFloatKey {
    /// The modulus, little-endian 52-bit limbs (one more than k bytes need, as in `PreparedRsaKey`).
    n: Vec<u64>,
    /// The same limbs as doubles (their bits, so the key stays `Eq`) after `FRONT` zeros, then zeros.
    n_float: Vec<u64>,
    /// −n⁻¹ mod 2⁵².
    n0_inv: u64,
    /// R² mod n, R = 2^(52·limbs).
    r2: Vec<u64>,
    e: u32,
    /// Products per row in a pass: limbs + 1 (the second row is one limb longer), rounded up to even.
    width: usize,
    /// Where the column sums start, shared by every key with as many limbs.
    starts: Arc<Starts>,
}

/// The column sums an operation starts from, which cancel the offsets' bits its rows add. They depend
/// only on the number of limbs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Starts {
    /// A product's: minus the offsets its product and reduction rows add.
    product: ColumnSums,
    /// A square's: minus the offsets of its cross rows (it doubles them).
    square: ColumnSums,
    /// Minus the offsets of the reduction rows, added after a square's doubling.
    reduction: ColumnSums,
}

/// Per column, the u64 sums of the low parts' bits and of the high parts' bits (high parts already
/// one column up), wrapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct ColumnSums {
    low: Vec<u64>,
    high: Vec<u64>,
}

/// One operation's operands, as doubles' bits after `FRONT` zeros and then zeros (a row may read past
/// the last limb), and its column sums.
struct Work {
    a: Vec<u64>,
    b: Vec<u64>,
    sums: ColumnSums,
}

/// Whether this VM's `f64x2.relaxed_madd` is fused (one rounding), the condition for this kernel.
/// (2²⁷ + 1)² = 2⁵⁴ + 2²⁸ + 1 needs 55 bits: rounded it loses the 1, which a fused a·b − round(a·b)
/// recovers and an unfused one does not.
pub fn fused_multiply_add_is_exact() -> bool {
    static EXACT: OnceLock<bool> = OnceLock::new();
    *EXACT.get_or_init(|| {
        let x = std::hint::black_box(134_217_729.0f64);
        let rounded = x * x;
        multiply_add(x, x, -rounded) == 1.0
    })
}

#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128,relaxed-simd")]
fn multiply_add(a: f64, b: f64, c: f64) -> f64 {
    use core::arch::wasm32::{f64x2_extract_lane, f64x2_relaxed_madd, f64x2_splat};
    f64x2_extract_lane::<0>(f64x2_relaxed_madd(
        f64x2_splat(a),
        f64x2_splat(b),
        f64x2_splat(c),
    ))
}

#[cfg(not(target_arch = "wasm32"))]
fn multiply_add(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

impl FusedFloatKey {
    /// Prepares `modulus_be` (odd, at most `MAX_RSA_BITS`: `PreparedRsaKey::new` has checked) with room
    /// for `modulus_bytes`-byte signatures.
    pub fn new(modulus_be: &[u8], exponent: u32) -> Option<FusedFloatKey> {
        let limbs = 8 * modulus_be.len() / LIMB_BITS as usize + 1;
        let n = limbs::from_be::<u64, LIMB_BITS>(modulus_be, limbs);
        let n0 = *n.first()?;
        if n0 & 1 == 0 {
            return None;
        }
        // Newton's iteration doubles the correct low bits each step: 1 → 2 → ... → 64.
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let width = (limbs + 1).next_multiple_of(2);
        let mut n_float = vec![0u64; FRONT];
        n_float.extend(n.iter().map(|&x| (x as f64).to_bits()));
        n_float.resize(limbs + 8, 0);
        let mut key = FusedFloatKey {
            n,
            n_float,
            n0_inv: inv.wrapping_neg() & LIMB_MASK,
            r2: Vec::new(),
            e: exponent,
            width,
            starts: Arc::default(),
        };
        key.starts = shared_starts(limbs, || key.find_starts());
        let mut work = key.work();
        key.r2 = limbs::r_squared::<u64, LIMB_BITS>(&key.n, |x| {
            let mut out = Vec::with_capacity(limbs);
            key.square(x, &mut work, &mut out);
            out
        });
        Some(key)
    }

    /// The offsets' bits each kind of pass adds, found by running it on zeros: 0·0 (and 0·nⱼ) adds
    /// exactly them, so no count of products per column is kept by hand.
    fn find_starts(&self) -> Starts {
        let mut work = self.work();
        self.reduction_rows(&mut work, false);
        let reduction = work.sums.negated();
        work.sums.clear();
        self.product_rows(&mut work);
        self.reduction_rows(&mut work, false);
        let product = work.sums.negated();
        work.sums.clear();
        self.cross_rows(&mut work);
        Starts {
            product,
            square: work.sums.negated(),
            reduction,
        }
    }

    /// Zeroed operands and sums, with room for every row's reach (`width` past its first column).
    fn work(&self) -> Work {
        let limbs = self.n.len();
        Work {
            a: vec![0; limbs + 8],
            b: vec![0; limbs + 8],
            sums: ColumnSums {
                low: vec![0; 2 * limbs + 8],
                high: vec![0; 2 * limbs + 8],
            },
        }
    }

    /// sᵉ mod n as `modulus_bytes` big-endian bytes, for s below n (the caller has checked).
    pub fn public_op(&self, signature: &[u8], modulus_bytes: usize) -> Vec<u8> {
        let limbs = self.n.len();
        let s = limbs::from_be::<u64, LIMB_BITS>(signature, limbs);
        let mut work = self.work();
        let power = limbs::public_power(&s, &self.r2, self.e, |a, b, out| match b {
            Some(b) => self.multiply(a, b, &mut work, out),
            None => self.square(a, &mut work, out),
        });
        limbs::to_be::<u64, LIMB_BITS>(&power, modulus_bytes)
    }

    /// Puts a and b into `work` as doubles.
    fn load(&self, work: &mut Work, a: &[u64], b: &[u64]) {
        for (slot, &x) in work.a.iter_mut().skip(FRONT).zip(a) {
            *slot = (x as f64).to_bits();
        }
        for (slot, &x) in work.b.iter_mut().skip(FRONT).zip(b) {
            *slot = (x as f64).to_bits();
        }
    }

    /// The Montgomery product a·b·R⁻¹ mod n into `out`.
    fn multiply(&self, a: &[u64], b: &[u64], work: &mut Work, out: &mut Vec<u64>) {
        self.load(work, a, b);
        work.sums.clone_from(&self.starts.product);
        self.product_rows(work);
        let carry = self.reduction_rows(work, true);
        self.result(work, carry, out);
    }

    /// The Montgomery square a·a·R⁻¹ mod n into `out`: the cross products once, doubled, and the
    /// diagonal squares in integers.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn square(&self, a: &[u64], work: &mut Work, out: &mut Vec<u64>) {
        self.load(work, a, &[]);
        work.sums.clone_from(&self.starts.square);
        self.cross_rows(work);
        let sums = &mut work.sums;
        for (sum, start) in sums.low.iter_mut().zip(&self.starts.reduction.low) {
            *sum = sum.wrapping_mul(2).wrapping_add(*start);
        }
        for (sum, start) in sums.high.iter_mut().zip(&self.starts.reduction.high) {
            *sum = sum.wrapping_mul(2).wrapping_add(*start);
        }
        for (i, &x) in a.iter().enumerate() {
            let (low, high) = wide_product(x, x);
            if let Some(sum) = sums.low.get_mut(2 * i) {
                *sum = sum.wrapping_add(low);
            }
            if let Some(sum) = sums.high.get_mut(2 * i + 1) {
                *sum = sum.wrapping_add(high);
            }
        }
        let carry = self.reduction_rows(work, true);
        self.result(work, carry, out);
    }

    /// a·b into the sums: rows i and i + 1 in one pass, from column i (b's zero before it pairs with
    /// aᵢ₊₁ there).
    fn product_rows(&self, work: &mut Work) {
        let Work { a, b, sums } = work;
        let width = self.width;
        let (Some(y0), Some(y1)) = (
            b.get(FRONT..FRONT + width),
            b.get(FRONT - 1..FRONT - 1 + width),
        ) else {
            return;
        };
        for i in (0..self.n.len()).step_by(2) {
            let (Some(&x0), Some(&x1)) = (a.get(FRONT + i), a.get(FRONT + i + 1)) else {
                return;
            };
            let Some((low, high)) = sums.rows_at(i) else {
                return;
            };
            add_two_rows(low, high, x0, y0, x1, y1);
        }
    }

    /// A square's cross products aᵢ·aⱼ, j > i, once each: row i from column 2i + 1 and row i + 1 from
    /// column 2i + 3 in one pass, after the first two columns, which are row i's alone.
    fn cross_rows(&self, work: &mut Work) {
        let Work { a, sums, .. } = work;
        let limbs = self.n.len();
        for i in (0..limbs).step_by(2) {
            let len = (limbs - i).next_multiple_of(2);
            let (Some(&x0), Some(&x1)) = (a.get(FRONT + i), a.get(FRONT + i + 1)) else {
                return;
            };
            let (Some(y0), Some(y1)) = (
                a.get(FRONT + i + 1..FRONT + i + 1 + len),
                a.get(FRONT + i..FRONT + i + len),
            ) else {
                return;
            };
            let Some((low, high)) = sums.rows_at(2 * i + 1) else {
                return;
            };
            let (Some((y0_first, y0_rest)), Some((y1_first, y1_rest))) =
                (y0.split_at_checked(2), y1.split_at_checked(2))
            else {
                return;
            };
            let (low_first, low_rest) = low.split_at_mut(2);
            let (high_first, high_rest) = high.split_at_mut(2);
            // Row i + 1 would pair with aᵢ and aᵢ₊₁ here: a zero multiplier instead (its offsets are
            // counted like any product's).
            add_two_rows(low_first, high_first, x0, y0_first, 0, y1_first);
            add_two_rows(low_rest, high_rest, x0, y0_rest, x1, y1_rest);
        }
    }

    /// The Montgomery reduction: rows of mᵢ·n from column i, two in one pass, mᵢ making column i's low
    /// 52 bits zero. mᵢ₊₁ comes from column i + 1 before the pass, with row i's part in it (mᵢ·n₁'s
    /// low bits and the carry out of column i with mᵢ·n₀ in it) computed in integers. Returns the carry
    /// into column `limbs`. With `choose` false every m is 0: the pass adds only offsets, which is how
    /// `new` finds them.
    fn reduction_rows(&self, work: &mut Work, choose: bool) -> u64 {
        let limbs = self.n.len();
        let width = self.width;
        let sums = &mut work.sums;
        let (Some(n), Some(n_before)) = (
            self.n_float.get(FRONT..FRONT + width),
            self.n_float.get(FRONT - 1..FRONT - 1 + width),
        ) else {
            return 0;
        };
        let n0 = self.n.first().copied().unwrap_or(0);
        let n1 = self.n.get(1).copied().unwrap_or(0);
        // Before a pass, columns i and i + 1 each lack two products' low parts whose offsets are
        // already subtracted (column i: mᵢ·n₀ and mᵢ₊₁ times n's zero before it; column i + 1: mᵢ·n₁
        // and mᵢ₊₁·n₀), so their bits go back in. A high offset's bits are 0 mod 2⁵².
        let pending = LOW_OFFSET.to_bits().wrapping_mul(2);
        let mut carry = 0u64;
        for i in (0..limbs).step_by(2) {
            let (mut m0, mut m1) = (0, 0);
            if choose {
                let value = sums.column(i).wrapping_add(carry).wrapping_add(pending);
                m0 = (value & LIMB_MASK).wrapping_mul(self.n0_inv) & LIMB_MASK;
                // value + m0·n0 has its low 52 bits zero: its carry is the high parts, plus one when the
                // low parts added up to 2⁵².
                let (_, product_high) = wide_product(m0, n0);
                let carry_out = (((value as i64) >> LIMB_BITS) as u64)
                    .wrapping_add(product_high)
                    .wrapping_add(u64::from(value & LIMB_MASK != 0));
                if i + 1 < limbs {
                    let value = sums
                        .column(i + 1)
                        .wrapping_add(pending)
                        .wrapping_add(m0.wrapping_mul(n1))
                        .wrapping_add(carry_out);
                    m1 = (value & LIMB_MASK).wrapping_mul(self.n0_inv) & LIMB_MASK;
                }
            }
            let Some((low, high)) = sums.rows_at(i) else {
                return 0;
            };
            add_two_rows(
                low,
                high,
                (m0 as f64).to_bits(),
                n,
                (m1 as f64).to_bits(),
                n_before,
            );
            // Columns i and i + 1 are complete now; their low bits are zero.
            carry = ((sums.column(i).wrapping_add(carry) as i64) >> LIMB_BITS) as u64;
            if i + 1 < limbs {
                carry = ((sums.column(i + 1).wrapping_add(carry) as i64) >> LIMB_BITS) as u64;
            }
        }
        carry
    }

    /// The reduced columns from `limbs` on, carried from `carry`: the result, below 2n, which the
    /// limbs have room for.
    fn result(&self, work: &Work, carry: u64, out: &mut Vec<u64>) {
        let limbs = self.n.len();
        let mut carry = carry;
        out.clear();
        for k in limbs..2 * limbs {
            let value = work.sums.column(k).wrapping_add(carry);
            if k + 1 < 2 * limbs {
                out.push(value & LIMB_MASK);
                carry = ((value as i64) >> LIMB_BITS) as u64;
            } else {
                out.push(value);
            }
        }
        if !limbs::less_than(out, &self.n) {
            limbs::sub_in_place::<u64, LIMB_BITS>(out, &self.n);
        }
    }
}

impl ColumnSums {
    fn clear(&mut self) {
        self.low.fill(0);
        self.high.fill(0);
    }

    fn negated(&self) -> ColumnSums {
        ColumnSums {
            low: self.low.iter().map(|x| x.wrapping_neg()).collect(),
            high: self.high.iter().map(|x| x.wrapping_neg()).collect(),
        }
    }

    /// Column k's value (still with the bits of offsets not yet added).
    fn column(&self, k: usize) -> u64 {
        let low = self.low.get(k).copied().unwrap_or(0);
        low.wrapping_add(self.high.get(k).copied().unwrap_or(0))
    }

    /// The sums a row from column k adds to: low parts from k, high parts from k + 1.
    fn rows_at(&mut self, k: usize) -> Option<(&mut [u64], &mut [u64])> {
        Some((self.low.get_mut(k..)?, self.high.get_mut(k + 1..)?))
    }
}

/// The starts for `limbs` limbs, computed by `find` the first time: a JWKS of 256 RSA-2048 keys holds
/// one set of about 4 KB rather than one per key.
fn shared_starts(limbs: usize, find: impl FnOnce() -> Starts) -> Arc<Starts> {
    static BY_LIMBS: Mutex<Vec<(usize, Arc<Starts>)>> = Mutex::new(Vec::new());
    // Poisoned only by a panic elsewhere, which would have trapped the VM: compute unshared then.
    let Ok(mut by_limbs) = BY_LIMBS.lock() else {
        return Arc::new(find());
    };
    if let Some((_, starts)) = by_limbs.iter().find(|(count, _)| *count == limbs) {
        return starts.clone();
    }
    let starts = Arc::new(find());
    by_limbs.push((limbs, starts.clone()));
    starts
}

/// a·b for a, b below 2⁵², as (low 52 bits, the rest), in 26-bit halves (wasm has no wider multiply).
fn wide_product(a: u64, b: u64) -> (u64, u64) {
    const HALF: u64 = (1 << 26) - 1;
    let (a_high, a_low, b_high, b_low) = (a >> 26, a & HALF, b >> 26, b & HALF);
    let middle = a_high * b_low + a_low * b_high;
    let low = a_low * b_low + ((middle & HALF) << 26);
    (
        low & LIMB_MASK,
        a_high * b_high + (middle >> 26) + (low >> LIMB_BITS),
    )
}

/// low[j] += the low parts' bits of x0·y0[j] and x1·y1[j] and high[j] += their high parts' bits
/// (offsets included), for j below the shortest length (even where a row is a whole number of pairs);
/// x0, x1 and the y are doubles' bits.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128,relaxed-simd")]
fn add_two_rows(low: &mut [u64], high: &mut [u64], x0: u64, y0: &[u64], x1: u64, y1: &[u64]) {
    use core::arch::wasm32::{
        f64x2_add, f64x2_relaxed_madd, f64x2_splat, f64x2_sub, i64x2_add, v128, v128_load,
        v128_store,
    };
    let x0 = f64x2_splat(f64::from_bits(x0));
    let x1 = f64x2_splat(f64::from_bits(x1));
    let high_offset = f64x2_splat(HIGH_OFFSET);
    let low_offset = f64x2_splat(LOW_OFFSET);
    let (low_pairs, _) = low.as_chunks_mut::<2>();
    let (high_pairs, _) = high.as_chunks_mut::<2>();
    let (y0_pairs, _) = y0.as_chunks::<2>();
    let (y1_pairs, _) = y1.as_chunks::<2>();
    for (((l, h), y0p), y1p) in low_pairs
        .iter_mut()
        .zip(high_pairs.iter_mut())
        .zip(y0_pairs)
        .zip(y1_pairs)
    {
        // SAFETY: each is two u64s, 16 bytes; v128 loads and stores have no alignment requirement.
        unsafe {
            let y0v = v128_load(y0p.as_ptr().cast::<v128>());
            let y1v = v128_load(y1p.as_ptr().cast::<v128>());
            let high0 = f64x2_relaxed_madd(x0, y0v, high_offset);
            let high1 = f64x2_relaxed_madd(x1, y1v, high_offset);
            let low0 = f64x2_add(
                f64x2_relaxed_madd(x0, y0v, f64x2_sub(high_offset, high0)),
                low_offset,
            );
            let low1 = f64x2_add(
                f64x2_relaxed_madd(x1, y1v, f64x2_sub(high_offset, high1)),
                low_offset,
            );
            let hp = h.as_mut_ptr().cast::<v128>();
            v128_store(hp, i64x2_add(v128_load(hp), i64x2_add(high0, high1)));
            let lp = l.as_mut_ptr().cast::<v128>();
            v128_store(lp, i64x2_add(v128_load(lp), i64x2_add(low0, low1)));
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn add_two_rows(low: &mut [u64], high: &mut [u64], x0: u64, y0: &[u64], x1: u64, y1: &[u64]) {
    let split = |x: f64, y: u64| {
        let y = f64::from_bits(y);
        let product_high = x.mul_add(y, HIGH_OFFSET);
        let product_low = x.mul_add(y, HIGH_OFFSET - product_high) + LOW_OFFSET;
        (product_low.to_bits(), product_high.to_bits())
    };
    let (x0, x1) = (f64::from_bits(x0), f64::from_bits(x1));
    for (((l, h), &y0), &y1) in low.iter_mut().zip(high.iter_mut()).zip(y0).zip(y1) {
        let (low0, high0) = split(x0, y0);
        let (low1, high1) = split(x1, y1);
        *l = l.wrapping_add(low0).wrapping_add(low1);
        *h = h.wrapping_add(high0).wrapping_add(high1);
    }
}
