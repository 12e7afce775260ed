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
//! So each product adds its high part's bits to one u64 column sum and its low part's bits to the
//! column below, with no conversion; the constants' bits, added once per product, come off at the end
//! of the column (wrapping arithmetic, and the true sums fit an i64). Low parts can be negative, so
//! columns and carries are signed.
//!
//! Relaxed SIMD lets an engine compute `relaxed_madd` unfused (a multiply, rounded, then an add) where
//! the CPU has no fused multiply-add; the split is then wrong. [`fused_multiply_add_is_exact`] checks
//! once per VM, and `PreparedRsaKey` uses this kernel only when it is.

use std::sync::OnceLock;

use crate::crypto::rsa::limbs;

/// Bits per limb.
const LIMB_BITS: u32 = 52;
const LIMB_MASK: u64 = (1 << LIMB_BITS) - 1;
/// 2¹⁰⁴: the high part's offset.
const HIGH_OFFSET: f64 = 20282409603651670423947251286016.0;
/// 1.5·2⁵²: the low part's offset.
const LOW_OFFSET: f64 = 6755399441055744.0;
/// Zero limbs before and after each operand: a pass over pairs of limbs reads one limb past a
/// column's range, which must pair with a zero.
const PAD: usize = 2;

/// A modulus prepared for this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FusedFloatKey {
    /// The modulus, little-endian 52-bit limbs (one more than k bytes need, as in `PreparedRsaKey`).
    n: Vec<u64>,
    /// The same limbs as doubles (their bits, so the key stays `Eq`), from the top down, between `PAD`
    /// zeros.
    n_descending: Vec<u64>,
    /// −n⁻¹ mod 2⁵².
    n0_inv: u64,
    /// R² mod n, R = 2^(52·limbs).
    r2: Vec<u64>,
    e: u32,
}

/// Operands of one product as doubles' bits between `PAD` zeros: a ascending, b from the top down, and
/// the reduction's m limbs ascending (zero until chosen).
struct Operands {
    a: Vec<u64>,
    b_descending: Vec<u64>,
    m: Vec<u64>,
}

impl Operands {
    fn new(limbs: usize) -> Operands {
        let padded = limbs + 2 * PAD;
        Operands {
            a: vec![0; padded],
            b_descending: vec![0; padded],
            m: vec![0; padded],
        }
    }

    fn load(&mut self, a: &[u64], b: &[u64]) {
        let limbs = a.len();
        if let Some(slot) = self.a.get_mut(PAD..PAD + limbs) {
            for (limb, &x) in slot.iter_mut().zip(a) {
                *limb = (x as f64).to_bits();
            }
        }
        if let Some(slot) = self.b_descending.get_mut(PAD..PAD + limbs) {
            for (limb, &x) in slot.iter_mut().zip(b.iter().rev()) {
                *limb = (x as f64).to_bits();
            }
        }
        self.m.fill(0);
    }
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
        let mut n_descending = vec![0; PAD];
        n_descending.extend(n.iter().rev().map(|&limb| (limb as f64).to_bits()));
        n_descending.resize(limbs + 2 * PAD, 0);
        let mut key = FusedFloatKey {
            n0_inv: inv.wrapping_neg() & LIMB_MASK,
            r2: Vec::new(),
            e: exponent,
            n,
            n_descending,
        };
        let mut operands = Operands::new(limbs);
        key.r2 = limbs::r_squared::<u64, LIMB_BITS>(&key.n, |x| {
            let mut out = Vec::with_capacity(limbs);
            key.product::<true>(x, x, &mut operands, &mut out);
            out
        });
        Some(key)
    }

    /// sᵉ mod n as `modulus_bytes` big-endian bytes, for s below n (the caller has checked).
    pub fn public_op(&self, signature: &[u8], modulus_bytes: usize) -> Vec<u8> {
        let limbs = self.n.len();
        let s = limbs::from_be::<u64, LIMB_BITS>(signature, limbs);
        let mut operands = Operands::new(limbs);
        let mut s_mont = Vec::with_capacity(limbs);
        self.product::<false>(&s, &self.r2, &mut operands, &mut s_mont);
        let mut acc = s_mont.clone();
        let mut next = Vec::with_capacity(limbs);
        let top_bit = 31 - self.e.leading_zeros();
        // As in `PreparedRsaKey::public_op`: the last bit's product by s itself leaves Montgomery form.
        for bit in (0..top_bit).rev() {
            self.product::<true>(&acc, &acc, &mut operands, &mut next);
            std::mem::swap(&mut acc, &mut next);
            if bit == 0 {
                self.product::<false>(&acc, &s, &mut operands, &mut next);
            } else if (self.e >> bit) & 1 == 1 {
                self.product::<false>(&acc, &s_mont, &mut operands, &mut next);
                std::mem::swap(&mut acc, &mut next);
            }
        }
        limbs::to_be::<u64, LIMB_BITS>(&next, modulus_bytes)
    }

    /// The Montgomery product a·b·R⁻¹ mod n into `out` (a·a·R⁻¹ when `SQUARE`, with a and b the
    /// same), by product scanning: column k sums every aⱼ·bₖ₋ⱼ and mⱼ·nₖ₋ⱼ, the high parts of column
    /// k − 1 and the carry. In a low column (k < limbs) mₖ makes the column's low 52 bits zero; the
    /// terms of mₖ·n₀ are added in integers, and the pass over m stops before mₖ. A square sums each
    /// cross product aⱼ·aₖ₋ⱼ (j < k − j) once and doubles it, and adds the diagonal square.
    #[cfg_attr(
        target_arch = "wasm32",
        target_feature(enable = "simd128,relaxed-simd")
    )]
    fn product<const SQUARE: bool>(
        &self,
        a: &[u64],
        b: &[u64],
        operands: &mut Operands,
        out: &mut Vec<u64>,
    ) {
        let limbs = self.n.len();
        operands.load(a, b);
        out.clear();
        out.resize(limbs, 0);
        let n0 = self.n.first().copied().unwrap_or(0);
        let mut carry = 0i64;
        let mut previous_high = 0i64;
        for k in 0..2 * limbs - 1 {
            let start = (k + 1).saturating_sub(limbs);
            let end = k.min(limbs - 1);
            let descending_at = PAD + limbs - 1 + start - k;
            // A square's pass stops at the column's half (j < k − j).
            let ab_end = if SQUARE { k.div_ceil(2) } else { end + 1 };
            let mut sums = ColumnSums::new();
            sums.add_products(
                operands.a.get(PAD + start..).unwrap_or_default(),
                operands
                    .b_descending
                    .get(descending_at..)
                    .unwrap_or_default(),
                ab_end.saturating_sub(start),
            );
            if SQUARE {
                sums = sums.doubled();
            }
            // m from mₖ on is not chosen yet (zero): a low column's pass stops before it.
            let mn_end = if k < limbs { k } else { end + 1 };
            sums.add_products(
                operands.m.get(PAD + start..).unwrap_or_default(),
                self.n_descending.get(descending_at..).unwrap_or_default(),
                mn_end.saturating_sub(start),
            );
            let (mut low, mut high) = sums.finish();
            if SQUARE && k % 2 == 0 {
                // The diagonal square, once.
                let x = a.get(k / 2).copied().unwrap_or(0);
                let (diagonal_low, diagonal_high) = wide_product(x, x);
                low = low.wrapping_add(diagonal_low as i64);
                high = high.wrapping_add(diagonal_high as i64);
            }
            let value = low.wrapping_add(previous_high).wrapping_add(carry);
            previous_high = high;
            let value_low = value as u64 & LIMB_MASK;
            if k < limbs {
                let mk = value_low.wrapping_mul(self.n0_inv) & LIMB_MASK;
                if let Some(slot) = operands.m.get_mut(PAD + k) {
                    *slot = (mk as f64).to_bits();
                }
                // value + mₖ·n₀ has its low 52 bits zero: the carry is the high parts, plus one when
                // the low parts added up to 2⁵².
                let (_, product_high) = wide_product(mk, n0);
                carry = (value >> LIMB_BITS) + product_high as i64 + i64::from(value_low != 0);
            } else {
                if let Some(slot) = out.get_mut(k - limbs) {
                    *slot = value_low;
                }
                carry = value >> LIMB_BITS;
            }
        }
        // The last column holds only the high parts of the one before and the carry; the result is
        // below 2n, which the limbs have room for.
        if let Some(top) = out.last_mut() {
            *top = previous_high.wrapping_add(carry) as u64;
        }
        if !limbs::less_than(out, &self.n) {
            limbs::sub_in_place::<u64, LIMB_BITS>(out, &self.n);
        }
    }
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

/// A column's running sums of split products (as in the module's comment): the bits of the low parts
/// and of the high parts, in two u64 lanes each, and how many products they hold, whose constants'
/// bits come off in `finish`.
#[cfg(target_arch = "wasm32")]
#[derive(Clone, Copy)]
struct ColumnSums {
    low: core::arch::wasm32::v128,
    high: core::arch::wasm32::v128,
    lanes: u64,
}

#[cfg(target_arch = "wasm32")]
impl ColumnSums {
    #[target_feature(enable = "simd128")]
    fn new() -> ColumnSums {
        use core::arch::wasm32::i64x2_splat;
        ColumnSums {
            low: i64x2_splat(0),
            high: i64x2_splat(0),
            lanes: 0,
        }
    }

    /// Adds xⱼ·yⱼ for j below `len` (doubles' bits of integers below 2⁵²); nothing when a slice is
    /// shorter than `len`.
    #[target_feature(enable = "simd128,relaxed-simd")]
    fn add_products(&mut self, x: &[u64], y: &[u64], len: usize) {
        use core::arch::wasm32::{
            f64x2_add, f64x2_relaxed_madd, f64x2_splat, f64x2_sub, i64x2, i64x2_add, v128,
            v128_and, v128_load,
        };
        let (Some(x), Some(y)) = (x.get(..len), y.get(..len)) else {
            return;
        };
        let high_offset = f64x2_splat(HIGH_OFFSET);
        let low_offset = f64x2_splat(LOW_OFFSET);
        let (mut low, mut high) = (self.low, self.high);
        let mut add = |a: v128, b: v128| {
            let product_high = f64x2_relaxed_madd(a, b, high_offset);
            let product_low = f64x2_add(
                f64x2_relaxed_madd(a, b, f64x2_sub(high_offset, product_high)),
                low_offset,
            );
            high = i64x2_add(high, product_high);
            low = i64x2_add(low, product_low);
        };
        let (x_pairs, x_last) = x.as_chunks::<2>();
        let (y_pairs, y_last) = y.as_chunks::<2>();
        for (xp, yp) in x_pairs.iter().zip(y_pairs) {
            // SAFETY: each is two u64s, 16 bytes; v128_load has no alignment requirement.
            let (a, b) = unsafe {
                (
                    v128_load(xp.as_ptr().cast::<v128>()),
                    v128_load(yp.as_ptr().cast::<v128>()),
                )
            };
            add(a, b);
        }
        // An odd length: the last product in lane 0, and 0·0 in lane 1.
        if let (Some(&x_last), Some(&y_last)) = (x_last.first(), y_last.first()) {
            let lane0 = i64x2(-1, 0);
            add(
                v128_and(i64x2(x_last as i64, 0), lane0),
                v128_and(i64x2(y_last as i64, 0), lane0),
            );
        }
        (self.low, self.high) = (low, high);
        self.lanes += 2 * len.div_ceil(2) as u64;
    }

    /// Every product counted twice (a square's cross products).
    #[target_feature(enable = "simd128")]
    fn doubled(self) -> ColumnSums {
        use core::arch::wasm32::i64x2_shl;
        ColumnSums {
            low: i64x2_shl(self.low, 1),
            high: i64x2_shl(self.high, 1),
            lanes: 2 * self.lanes,
        }
    }

    /// (low parts, high parts).
    #[target_feature(enable = "simd128")]
    fn finish(self) -> (i64, i64) {
        use core::arch::wasm32::{i64x2_extract_lane, v128};
        let sum = |lanes_sum: v128, offset: f64| {
            i64x2_extract_lane::<0>(lanes_sum)
                .wrapping_add(i64x2_extract_lane::<1>(lanes_sum))
                .wrapping_sub(self.lanes.wrapping_mul(offset.to_bits()) as i64)
        };
        (sum(self.low, LOW_OFFSET), sum(self.high, HIGH_OFFSET))
    }
}

/// The host build's `ColumnSums`: the same sums one product at a time, by `f64::mul_add`.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy)]
struct ColumnSums {
    low: i64,
    high: i64,
    lanes: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl ColumnSums {
    fn new() -> ColumnSums {
        ColumnSums {
            low: 0,
            high: 0,
            lanes: 0,
        }
    }

    fn add_products(&mut self, x: &[u64], y: &[u64], len: usize) {
        let (Some(x), Some(y)) = (x.get(..len), y.get(..len)) else {
            return;
        };
        for (&a, &b) in x.iter().zip(y) {
            let (a, b) = (f64::from_bits(a), f64::from_bits(b));
            let product_high = a.mul_add(b, HIGH_OFFSET);
            let product_low = a.mul_add(b, HIGH_OFFSET - product_high) + LOW_OFFSET;
            self.high = self.high.wrapping_add(product_high.to_bits() as i64);
            self.low = self.low.wrapping_add(product_low.to_bits() as i64);
        }
        self.lanes += len as u64;
    }

    fn doubled(self) -> ColumnSums {
        ColumnSums {
            low: self.low.wrapping_mul(2),
            high: self.high.wrapping_mul(2),
            lanes: 2 * self.lanes,
        }
    }

    fn finish(self) -> (i64, i64) {
        (
            self.low
                .wrapping_sub(self.lanes.wrapping_mul(LOW_OFFSET.to_bits()) as i64),
            self.high
                .wrapping_sub(self.lanes.wrapping_mul(HIGH_OFFSET.to_bits()) as i64),
        )
    }
}
