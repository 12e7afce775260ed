//! An RSA public key prepared once for verification, and its public-key operation sᵉ mod n by
//! Montgomery multiplication. In wasm, where the engine's `relaxed_madd` is fused, the key also carries
//! a `FusedFloatKey` and the operation runs there (`fused_float.rs`: about 0.66 of this kernel's time
//! in V8); this integer kernel is the fallback and the host build's.
//!
//! The limbs hold 28 bits, not 32: a product of two limbs is below 2⁵⁶, so a whole column of a product
//! (the sum of every aᵢ·bⱼ with i + j = k) fits a u64 with no carry between its terms. Each column is then
//! a plain dot product, which wasm's SIMD computes two products per instruction
//! (`i64x2.extmul_*_i32x4_u`); carries move once per column, not once per product. Measured in V8 (Node
//! 20) against the 32-bit carry-per-product version this replaces: RSA-2048 52 µs instead of 79, 3072
//! 106 instead of 176, 4096 161 instead of 317.
//!
//! Four neighbouring columns are summed in one pass, which shares the loads of one operand and the
//! loop's fixed cost among them (see `GROUP`). That pass is near what V8's lowering allows: each
//! `extmul` becomes two lane shuffles and one `pmuludq`, so shuffles bound the kernel at about half a
//! cycle per product. Tried and dropped: `f64x2` products of 24-bit limbs (no shuffles, but V8 spills
//! the accumulators and the adds' latency shows), `i64x2.mul` (three multiplies per lane pair),
//! operand scanning into u64 columns (each row's stores, offset by one limb from the next row's loads,
//! defeat store forwarding: 80 µs), and 13-bit limbs in `i32x4.dot_i16x8_s` (no shuffles, but twice
//! the columns and groups: 1.9 to 2.2 times the time).

use crate::crypto::rsa::fused_float::{fused_multiply_add_is_exact, FusedFloatKey};
use crate::crypto::rsa::limbs;
use crate::crypto::rsa::MAX_RSA_BITS;

/// Bits per limb.
const LIMB_BITS: u32 = 28;
const LIMB_MASK: u64 = (1 << LIMB_BITS) - 1;

/// A column sum adds at most `limbs` products below 2⁵⁶ of one kind (a·b, or m·n, kept apart), so it
/// stays below 2⁶⁴ up to 255 limbs; keys stop at `MAX_RSA_BITS`, 147 limbs.
const MAX_LIMBS: usize = 255;
const _: () = assert!(MAX_RSA_BITS / (LIMB_BITS as usize) < MAX_LIMBS);

/// Columns summed in one pass over the operands. Four consecutive columns pair the same ascending limbs
/// with descending limbs one place apart, so a pass loads each ascending group of four once for all
/// four. Measured in V8 (Node 20), RSA-2048: 50.4 µs against 54.7 for one column per pass; eight
/// columns per pass was slower again (V8 runs out of vector registers).
const GROUP: usize = 4;

/// Zero limbs kept before and after every operand buffer. A pass runs over whole groups of four limbs
/// and over the union of its four columns' ranges; every term outside a column's own range then pairs
/// a limb with one of these zeros, so it adds nothing (see [`PreparedRsaKey::reduce`]). A pass reads at
/// most GROUP − 1 limbs beyond a column's descending range (its later columns) and three beyond either
/// end of a range (the rounding to groups of four), on each side.
const PAD: usize = GROUP - 1 + 3;

/// An RSA public key prepared for fast verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRsaKey {
    /// Modulus, little-endian 28-bit limbs, with room for 2n and for any k-byte signature.
    n: Vec<u32>,
    /// The same limbs from the top down, between `PAD` zeros: a column pairs ascending limbs of one
    /// factor with descending limbs of the other, and both then read forwards.
    n_descending: Vec<u32>,
    /// −n⁻¹ mod 2²⁸.
    n0_inv: u32,
    e: u32,
    /// Length of the modulus in bytes (k in RFC 8017).
    modulus_bytes: usize,
    modulus_bits: usize,
    /// What the operation's kernel needs beyond the above: only that kernel's, since preparing R² is
    /// most of a key's preparation.
    constants: KernelConstants,
}

/// The constants of the kernel a key's operation runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KernelConstants {
    /// R² mod n, R = 2^(28·limbs), for this file's integer kernel.
    Integer { r2: Vec<u32> },
    /// The key for the fused multiply-add kernel (`fused_float.rs`): in wasm when the VM's
    /// `relaxed_madd` is fused.
    FusedFloat(FusedFloatKey),
}

/// Which kernel computes the public-key operation: for tests that check each against the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKernel {
    /// 28-bit limbs in integer SIMD (every engine).
    Integer,
    /// 52-bit limbs in doubles by fused multiply-add (`fused_float.rs`; in wasm, only where fused).
    FusedFloat,
}

impl RsaKernel {
    /// The kernel keys prepared here use: the fused one in wasm where it computes exactly, else the
    /// integer one.
    pub fn in_use() -> RsaKernel {
        if cfg!(target_arch = "wasm32") && RsaKernel::FusedFloat.is_available() {
            RsaKernel::FusedFloat
        } else {
            RsaKernel::Integer
        }
    }

    /// Whether this kernel computes exactly here (the fused one needs a fused multiply-add).
    pub fn is_available(self) -> bool {
        match self {
            RsaKernel::Integer => true,
            RsaKernel::FusedFloat => fused_multiply_add_is_exact(),
        }
    }
}

/// Buffers one exponentiation reuses across its multiplications, in one allocation: three of
/// `limbs + 2·PAD` limbs each, with the limbs at `PAD`: the first factor, the second factor from the top
/// down, and the Montgomery multiples of n chosen so far, one per low column (zero until chosen).
struct Workspace {
    buffers: Vec<u32>,
    stride: usize,
}

impl Workspace {
    fn new(limbs: usize) -> Workspace {
        let stride = limbs + 2 * PAD;
        Workspace {
            buffers: vec![0; 3 * stride],
            stride,
        }
    }

    /// (ascending first factor, descending second factor, m).
    fn parts(&mut self) -> (&mut [u32], &mut [u32], &mut [u32]) {
        let stride = self.stride.min(self.buffers.len());
        let (ascending, rest) = self.buffers.split_at_mut(stride);
        let (descending, m) = rest.split_at_mut(stride.min(rest.len()));
        (ascending, descending, m)
    }

    /// Loads a and b (equal lengths, `limbs`) for one product, and forgets the previous m.
    fn load(&mut self, a: &[u32], b: &[u32]) {
        let limbs = a.len();
        let (ascending, descending, m) = self.parts();
        if let Some(slot) = ascending.get_mut(PAD..PAD + limbs) {
            slot.copy_from_slice(a);
        }
        if let Some(slot) = descending.get_mut(PAD..PAD + limbs) {
            for (limb, &x) in slot.iter_mut().zip(b.iter().rev()) {
                *limb = x;
            }
        }
        m.fill(0);
    }
}

impl PreparedRsaKey {
    /// Prepares a key from its big-endian modulus and exponent. `None` for an even or zero modulus, one
    /// wider than `MAX_RSA_BITS`, or an exponent that is even, 1, or wider than 32 bits.
    pub fn new(modulus_be: &[u8], exponent: u32) -> Option<PreparedRsaKey> {
        let modulus_be = strip_leading_zeros(modulus_be);
        let modulus_bits = modulus_be.first().map_or(0, |top| {
            (modulus_be.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        });
        if modulus_bits > MAX_RSA_BITS {
            return None;
        }
        // One limb more than k bytes need: a signature of k bytes always fits (so one not below n is
        // seen as such, never truncated), and so does a Montgomery product below 2n.
        let limbs = 8 * modulus_be.len() / LIMB_BITS as usize + 1;
        let n = limbs::from_be::<u32, LIMB_BITS>(modulus_be, limbs);
        let n0 = *n.first()?;
        if n0 & 1 == 0 || exponent < 3 || exponent & 1 == 0 {
            return None;
        }
        // Newton's iteration doubles the correct low bits each step: 1 → 2 → 4 → ... → 32.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let mut n_descending = vec![0; PAD];
        n_descending.extend(n.iter().rev());
        n_descending.resize(limbs + 2 * PAD, 0);
        let mut key = PreparedRsaKey {
            n0_inv: inv.wrapping_neg() & LIMB_MASK as u32,
            e: exponent,
            modulus_bytes: modulus_be.len(),
            modulus_bits,
            n,
            n_descending,
            // Replaced below: the integer kernel's constants are computed with the key's own products.
            constants: KernelConstants::Integer { r2: Vec::new() },
        };
        // The host build keeps the integer kernel (native u64 products are fast there, and its
        // fused multiply-add may be a library call); tests choose either with `with_kernel`.
        key.constants = key.constants_for(RsaKernel::in_use())?;
        Some(key)
    }

    /// This key with its operation on `kernel`, or `None` where that kernel cannot run exactly.
    pub fn with_kernel(&self, kernel: RsaKernel) -> Option<PreparedRsaKey> {
        let mut key = self.clone();
        if kernel != self.kernel() {
            key.constants = self.constants_for(kernel)?;
        }
        Some(key)
    }

    /// `kernel`'s constants for this key, or `None` where that kernel cannot run exactly.
    fn constants_for(&self, kernel: RsaKernel) -> Option<KernelConstants> {
        match kernel {
            RsaKernel::Integer => {
                let limbs = self.n.len();
                let mut work = Workspace::new(limbs);
                let r2 = limbs::r_squared::<u32, LIMB_BITS>(&self.n, |x| {
                    let mut out = Vec::with_capacity(limbs);
                    self.mont_sqr(x, &mut work, &mut out);
                    out
                });
                Some(KernelConstants::Integer { r2 })
            }
            RsaKernel::FusedFloat if kernel.is_available() => {
                let modulus_be = limbs::to_be::<u32, LIMB_BITS>(&self.n, self.modulus_bytes);
                Some(KernelConstants::FusedFloat(FusedFloatKey::new(
                    &modulus_be,
                    self.e,
                )?))
            }
            RsaKernel::FusedFloat => None,
        }
    }

    /// The kernel this key's operation runs on.
    pub fn kernel(&self) -> RsaKernel {
        match self.constants {
            KernelConstants::Integer { .. } => RsaKernel::Integer,
            KernelConstants::FusedFloat(_) => RsaKernel::FusedFloat,
        }
    }

    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// Length of the modulus in bytes (k in RFC 8017).
    pub fn modulus_bytes(&self) -> usize {
        self.modulus_bytes
    }

    /// The Montgomery product of the factors loaded in `work` (a·a·R⁻¹ when `SQUARE`, with a and b the
    /// same), reduced below n, into `out`.
    ///
    /// Product scanning, column by column from low to high: column k holds every aⱼ·bₖ₋ⱼ and every
    /// mⱼ·nₖ₋ⱼ plus the carry. In each low column (k < limbs) mₖ is chosen so the column's low 28 bits
    /// become zero; the high columns are the result. Columns go four at a time (`GROUP`): one pass sums
    /// the four columns' a·b terms and one their m·n terms, over the union of their ranges, rounded out
    /// to whole groups of four limbs. The terms outside a column's own range pair a limb with a padding
    /// zero: below the range the descending index falls before the limbs, above it either the ascending
    /// index passes the top or the descending one passes the end. In the low columns, the m·n pass sees
    /// m as zero from the group's first column on, since those mⱼ are not chosen yet; each one adds its
    /// terms to the group's later columns once chosen.
    ///
    /// A square counts each cross product aⱼ·aₖ₋ⱼ (j < k − j) once and doubles it, which saves a
    /// quarter of the products. Its pass covers j below h = k₀/2 (k₀, the group's first column, is a
    /// multiple of four), the half of the first column, for all four columns; it is rounded out
    /// downwards (the terms below a column's range pair with zeros again), and the one or two terms
    /// from h up to a later column's half, and the diagonal squares, are added by name.
    ///
    /// A group of four low columns, and one of four high columns, is written out column by column with
    /// its sums in locals, and only a group across the two kinds (or the last, short one) goes through
    /// the general loop: kept in locals, the four columns' carries and m choices cost about a fifth of
    /// the exponentiation less in V8 than with the sums in an array indexed by the loop (which V8 keeps
    /// in memory, with a bounds check and a spill around every use).
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn reduce<const SQUARE: bool>(&self, work: &mut Workspace, out: &mut Vec<u32>) {
        let limbs = self.n.len();
        out.clear();
        out.resize(limbs, 0);
        let (ascending, descending, m) = work.parts();
        // n's lowest limbs: n₀ for each mₖ's own column, n₁ … n₃ for its terms in the group's later
        // columns.
        let n_low: [u64; GROUP] =
            core::array::from_fn(|d| u64::from(self.n.get(d).copied().unwrap_or(0)));
        let [n0, n1, n2, n3] = n_low;
        let n0_inv = self.n0_inv;
        // Column k's value is (term, reduction, carry in) split into 28-bit low parts and the rest, so
        // the sum of three values below 2⁶⁴ cannot overflow.
        let split = |term: u64, reduction: u64, carry: u64| {
            (
                (term & LIMB_MASK) + (reduction & LIMB_MASK) + (carry & LIMB_MASK),
                (term >> LIMB_BITS) + (reduction >> LIMB_BITS) + (carry >> LIMB_BITS),
            )
        };
        // A low column: chooses mₖ and returns it with the carry out.
        let low_column = |term: u64, reduction: u64, carry: u64| {
            let (low, high) = split(term, reduction, carry);
            let mk = u64::from((low as u32).wrapping_mul(n0_inv) & LIMB_MASK as u32);
            (mk, high + ((low + mk * n0) >> LIMB_BITS))
        };
        // A high column: returns the result limb and the carry out.
        let high_column = |term: u64, reduction: u64, carry: u64| {
            let (low, high) = split(term, reduction, carry);
            ((low & LIMB_MASK) as u32, high + (low >> LIMB_BITS))
        };
        let columns = 2 * limbs - 1;
        let mut carry = 0u64;
        for first_column in (0..columns).step_by(GROUP) {
            let start = (first_column + 1).saturating_sub(limbs);
            let end = (first_column + GROUP - 1).min(limbs - 1);
            let quads = (end + 1 - start).div_ceil(4);
            // The first column's descending index at j = start, less GROUP − 1 for the later columns
            // (limbs − 1 + start ≥ first_column: in the high columns start is first_column − limbs + 1).
            let descending_at = PAD + limbs - 1 + start - first_column - (GROUP - 1);
            let ab = if SQUARE {
                // first_column is a multiple of GROUP, so even: its half is first_column / 2.
                let half_end = first_column / 2;
                let half_quads = half_end.saturating_sub(start).div_ceil(4);
                let [h0, h1, h2, h3] = column_sums(
                    ascending
                        .get(PAD + half_end - 4 * half_quads..)
                        .unwrap_or_default(),
                    descending
                        .get(descending_at + half_end - start - 4 * half_quads..)
                        .unwrap_or_default(),
                    half_quads,
                );
                // The cross products from the half up to each later column's half, and the squares
                // on the diagonal of the even columns.
                let [x0, x1, x2, x3] = match ascending.get(PAD + half_end..PAD + half_end + 4) {
                    Some(&[x0, x1, x2, x3]) => [x0, x1, x2, x3].map(u64::from),
                    _ => [0; 4],
                };
                [
                    (h0 << 1) + x0 * x0,
                    (h1 + x0 * x1) << 1,
                    ((h2 + x0 * x2) << 1) + x1 * x1,
                    (h3 + x0 * x3 + x1 * x2) << 1,
                ]
            } else {
                column_sums(
                    ascending.get(PAD + start..).unwrap_or_default(),
                    descending.get(descending_at..).unwrap_or_default(),
                    quads,
                )
            };
            // In a low group the m limbs from the group's first column on are not chosen yet (zero):
            // its pass stops before them.
            let low_group = first_column + GROUP <= limbs;
            let mn_quads = if low_group { first_column / 4 } else { quads };
            let mut mn = column_sums(
                m.get(PAD + start..).unwrap_or_default(),
                self.n_descending.get(descending_at..).unwrap_or_default(),
                mn_quads,
            );
            if low_group {
                // Four low columns. The pass summed this group's own m limbs as zero; each adds its
                // terms to the later columns once chosen.
                let [a0, a1, a2, a3] = ab;
                let [r0, mut r1, mut r2, mut r3] = mn;
                let (m0, c) = low_column(a0, r0, carry);
                r1 += m0 * n1;
                r2 += m0 * n2;
                r3 += m0 * n3;
                let (m1, c) = low_column(a1, r1, c);
                r2 += m1 * n1;
                r3 += m1 * n2;
                let (m2, c) = low_column(a2, r2, c);
                r3 += m2 * n1;
                let (m3, c) = low_column(a3, r3, c);
                carry = c;
                if let Some(slots) = m.get_mut(PAD + first_column..PAD + first_column + GROUP) {
                    for (slot, mk) in slots.iter_mut().zip([m0, m1, m2, m3]) {
                        *slot = mk as u32;
                    }
                }
                continue;
            }
            if first_column >= limbs && first_column + GROUP <= columns {
                let [a0, a1, a2, a3] = ab;
                let [r0, r1, r2, r3] = mn;
                let (o0, c) = high_column(a0, r0, carry);
                let (o1, c) = high_column(a1, r1, c);
                let (o2, c) = high_column(a2, r2, c);
                let (o3, c) = high_column(a3, r3, c);
                carry = c;
                if let Some(slots) = out.get_mut(first_column - limbs..first_column - limbs + GROUP)
                {
                    for (slot, limb) in slots.iter_mut().zip([o0, o1, o2, o3]) {
                        *slot = limb;
                    }
                }
                continue;
            }
            // A group across the low and high columns, or the last one: column by column.
            for t in 0..GROUP {
                let k = first_column + t;
                if k >= columns {
                    break;
                }
                let (term, reduction) = (
                    ab.get(t).copied().unwrap_or(0),
                    mn.get(t).copied().unwrap_or(0),
                );
                if k < limbs {
                    let (mk, c) = low_column(term, reduction, carry);
                    carry = c;
                    if let Some(slot) = m.get_mut(PAD + k) {
                        *slot = mk as u32;
                    }
                    // The group's later columns summed mₖ as zero.
                    for (later, n_limb) in mn.iter_mut().skip(t + 1).zip(n_low.iter().skip(1)) {
                        *later += mk * n_limb;
                    }
                } else {
                    let (limb, c) = high_column(term, reduction, carry);
                    carry = c;
                    if let Some(slot) = out.get_mut(k - limbs) {
                        *slot = limb;
                    }
                }
            }
        }
        // The result is below 2n, which the limbs have room for.
        if let Some(top) = out.last_mut() {
            *top = carry as u32;
        }
        if !limbs::less_than(out, &self.n) {
            limbs::sub_in_place::<u32, LIMB_BITS>(out, &self.n);
        }
    }

    /// Montgomery product a·b·R⁻¹ mod n into `out`.
    fn mont_mul(&self, a: &[u32], b: &[u32], work: &mut Workspace, out: &mut Vec<u32>) {
        work.load(a, b);
        self.reduce::<false>(work, out);
    }

    /// Montgomery square a²·R⁻¹ mod n into `out`.
    fn mont_sqr(&self, a: &[u32], work: &mut Workspace, out: &mut Vec<u32>) {
        work.load(a, a);
        self.reduce::<true>(work, out);
    }

    /// RSAVP1: sᵉ mod n as k big-endian bytes, or `None` when the signature is not k bytes or not
    /// below n (RFC 8017 §5.2.2, §8.2.2 step 1).
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.modulus_bytes {
            return None;
        }
        let limbs = self.n.len();
        let s = limbs::from_be::<u32, LIMB_BITS>(signature, limbs);
        if !limbs::less_than(&s, &self.n) {
            return None;
        }
        let r2 = match &self.constants {
            KernelConstants::Integer { r2 } => r2,
            KernelConstants::FusedFloat(fused) => {
                return Some(fused.public_op(signature, self.modulus_bytes))
            }
        };
        let mut work = Workspace::new(limbs);
        let power = limbs::public_power(&s, r2, self.e, |a, b, out| match b {
            Some(b) => self.mont_mul(a, b, &mut work, out),
            None => self.mont_sqr(a, &mut work, out),
        });
        Some(limbs::to_be::<u32, LIMB_BITS>(&power, self.modulus_bytes))
    }
}

/// `GROUP` column sums: sum t is Σ xⱼ·yⱼ₊GROUP₋₁₋ₜ for j below 4·quads, for limbs below 2²⁸ and at most
/// [`MAX_LIMBS`] terms (no overflow). Zero sums when a slice is shorter than that needs.
/// In wasm: four limbs per step, two u64 lanes of products each (i64x2.extmul_low/high_i32x4_u).
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
fn column_sums(x: &[u32], y: &[u32], quads: usize) -> [u64; GROUP] {
    use core::arch::wasm32::{
        i64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, u64x2_extract_lane,
        u64x2_splat, v128, v128_load,
    };
    let (Some(x), Some(y)) = (x.get(..4 * quads), y.get(..4 * quads + GROUP - 1)) else {
        return [0; GROUP];
    };
    let mut sums = [u64x2_splat(0); GROUP];
    for (xq, window) in x.chunks_exact(4).zip(y.windows(4 + GROUP - 1).step_by(4)) {
        // SAFETY: `xq` is exactly four u32s and `window` exactly GROUP + 3, so each 16-byte load
        // starting at offset 0..GROUP of `window` stays inside it; v128_load has no alignment
        // requirement. (Building the vectors from four lane values instead compiles to lane inserts
        // and makes the exponentiation slower than scalar code in V8.)
        let xv = unsafe { v128_load(xq.as_ptr().cast::<v128>()) };
        for (t, sum) in sums.iter_mut().enumerate() {
            let yv = unsafe { v128_load(window.as_ptr().add(GROUP - 1 - t).cast::<v128>()) };
            *sum = i64x2_add(
                *sum,
                i64x2_add(
                    u64x2_extmul_low_u32x4(xv, yv),
                    u64x2_extmul_high_u32x4(xv, yv),
                ),
            );
        }
    }
    sums.map(|lanes| u64x2_extract_lane::<0>(lanes) + u64x2_extract_lane::<1>(lanes))
}

#[cfg(not(target_arch = "wasm32"))]
fn column_sums(x: &[u32], y: &[u32], quads: usize) -> [u64; GROUP] {
    let mut sums = [0u64; GROUP];
    let x = x.get(..4 * quads).unwrap_or_default();
    for (t, sum) in sums.iter_mut().enumerate() {
        let y = y.get(GROUP - 1 - t..).unwrap_or_default();
        *sum = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| u64::from(a) * u64::from(b))
            .sum();
    }
    sums
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}
