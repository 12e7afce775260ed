//! Points of a short Weierstrass curve y² = x³ − 3x + b (P-256, P-384, P-521) in Jacobian coordinates
//! over RustCrypto's field elements (p256 `expose-field`) or those of [`super::p384_field`] and
//! [`super::p521_field`], for the comb loop of [`super::comb`].
//!
//! RustCrypto's `ProjectivePoint` uses complete formulas (Renes–Costello–Batina): no special cases, but
//! 11–12 multiplications per addition or doubling, two of them by b. Verification handles public values
//! only, so the textbook formulas with their special cases, tested explicitly, are fine here and cheaper:
//! a doubling costs 3M + 5S (dbl-2001-b, a = −3), a mixed Jacobian + affine addition 7M + 4S
//! (madd-2007-bl). A Jacobian (X, Y, Z) is the affine point (X/Z², Y/Z³); Z = 0 is the identity.

use super::comb::CombCurve;

/// The field operations the formulas need: RustCrypto's for P-256, [`super::p384_field`]'s and
/// [`super::p521_field`]'s for P-384 and P-521.
pub(super) trait Field: Copy {
    /// How a comb table entry stores an element: the element itself, or a packed form where that is
    /// smaller (P-384's limbs take 128 bytes, its 48-byte packing keeps a key's table at 24 KB).
    type Stored: Copy;
    fn store(&self) -> Self::Stored;
    fn load(stored: &Self::Stored) -> Self;
    const ZERO: Self;
    const ONE: Self;
    /// The element of a big-endian integer, `None` unless it is below p (or of a length not accepted).
    fn from_be_bytes(bytes: &[u8]) -> Option<Self>;
    fn add(&self, other: &Self) -> Self;
    fn sub(&self, other: &Self) -> Self;
    fn mul(&self, other: &Self) -> Self;
    fn square(&self) -> Self;
    /// 2·self; fields with a cheaper doubling than an addition override it.
    #[inline(always)]
    fn double(&self) -> Self {
        self.add(self)
    }
    fn is_zero(&self) -> bool;
    fn equals(&self, other: &Self) -> bool;
    fn invert(&self) -> Option<Self>;
}

/// Implements [`Field`] for a RustCrypto field element made by primeorder's `impl_mont_field_element!`.
macro_rules! impl_field {
    ($fe:ty) => {
        impl Field for $fe {
            type Stored = Self;
            #[inline(always)]
            fn store(&self) -> Self {
                *self
            }
            #[inline(always)]
            fn load(stored: &Self) -> Self {
                *stored
            }
            const ZERO: Self = <$fe>::ZERO;
            const ONE: Self = <$fe>::ONE;
            fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
                <$fe>::from_slice(bytes).ok()
            }
            #[inline(always)]
            fn add(&self, other: &Self) -> Self {
                <$fe>::add(self, other)
            }
            #[inline(always)]
            fn sub(&self, other: &Self) -> Self {
                <$fe>::sub(self, other)
            }
            #[inline(always)]
            fn mul(&self, other: &Self) -> Self {
                <$fe>::multiply(self, other)
            }
            #[inline(always)]
            fn square(&self) -> Self {
                <$fe>::square(self)
            }
            #[inline(always)]
            fn double(&self) -> Self {
                <$fe>::double(self)
            }
            #[inline(always)]
            fn is_zero(&self) -> bool {
                bool::from(<$fe>::is_zero(self))
            }
            #[inline(always)]
            fn equals(&self, other: &Self) -> bool {
                self == other
            }
            fn invert(&self) -> Option<Self> {
                Option::from(<$fe>::invert(self))
            }
        }
    };
}

impl_field!(p256::FieldElement);

/// An affine point (x, y), never the identity: a comb table entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Affine<F> {
    pub(super) x: F,
    pub(super) y: F,
}

/// A comb table entry: an affine point (never the identity) as its field stores it.
#[derive(Clone, Copy)]
pub(super) struct Entry<F: Field> {
    x: F::Stored,
    y: F::Stored,
}

impl<F: Field> Entry<F> {
    pub(super) fn new(point: &Affine<F>) -> Entry<F> {
        Entry {
            x: point.x.store(),
            y: point.y.store(),
        }
    }

    #[inline(always)]
    pub(super) fn affine(&self) -> Affine<F> {
        Affine {
            x: F::load(&self.x),
            y: F::load(&self.y),
        }
    }
}

/// A point in Jacobian coordinates; `z` zero is the identity.
#[derive(Clone, Copy, Debug)]
pub(super) struct Jacobian<F> {
    pub(super) x: F,
    pub(super) y: F,
    pub(super) z: F,
}

impl<F: Field> Jacobian<F> {
    pub(super) const IDENTITY: Jacobian<F> = Jacobian {
        x: F::ONE,
        y: F::ONE,
        z: F::ZERO,
    };

    pub(super) fn from_affine(point: &Affine<F>) -> Jacobian<F> {
        Jacobian {
            x: point.x,
            y: point.y,
            z: F::ONE,
        }
    }

    pub(super) fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    /// 2·self (dbl-2001-b for a = −3). The identity stays the identity (Z₃ = 2·Y·Z = 0), and so would a
    /// point with y = 0, which a curve of prime order does not have.
    pub(super) fn double(&self) -> Jacobian<F> {
        if self.is_identity() {
            return *self;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x = alpha.square().sub(&beta4.double());
        let z = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y = alpha.mul(&beta4.sub(&x)).sub(&gamma2_8);
        Jacobian { x, y, z }
    }

    /// self + other (madd-2007-bl), with the cases the formula does not cover handled first: the
    /// identity plus a point, a point plus itself (a doubling) and a point plus its negation.
    pub(super) fn add_affine(&self, other: &Affine<F>) -> Jacobian<F> {
        if self.is_identity() {
            return Jacobian::from_affine(other);
        }
        let z1z1 = self.z.square();
        let u2 = other.x.mul(&z1z1);
        let s2 = other.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y).double();
        if h.is_zero() {
            // Same x: the same point (same y) or its negation.
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h.mul(&i);
        let v = self.x.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&self.y.mul(&j).double());
        let z = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        Jacobian { x, y, z }
    }

    /// −self.
    pub(super) fn neg(&self) -> Jacobian<F> {
        Jacobian {
            x: self.x,
            y: F::ZERO.sub(&self.y),
            z: self.z,
        }
    }

    /// self + other for two Jacobian points (add-2007-bl, 11M + 5S), with the identity, doubling and
    /// negation cases handled first as in [`Jacobian::add_affine`].
    pub(super) fn add(&self, other: &Jacobian<F>) -> Jacobian<F> {
        if self.is_identity() {
            return *other;
        }
        if other.is_identity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = other.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = other.x.mul(&z1z1);
        let s1 = self.y.mul(&other.z).mul(&z2z2);
        let s2 = other.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1).double();
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let i = h.double().square();
        let j = h.mul(&i);
        let v = u1.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&s1.mul(&j).double());
        let z = self.z.add(&other.z).square().sub(&z1z1).sub(&z2z2).mul(&h);
        Jacobian { x, y, z }
    }

    /// Whether the affine x of this point is `x` (X ≡ x·Z²), without inverting Z; never for the identity.
    pub(super) fn has_affine_x(&self, x: &F) -> bool {
        !self.is_identity() && self.x.equals(&x.mul(&self.z.square()))
    }
}

/// The affine forms of `points` with one field inversion (Montgomery's trick); `None` if one of them is
/// the identity.
pub(super) fn to_affine_all<F: Field>(points: &[Jacobian<F>]) -> Option<Vec<Affine<F>>> {
    // prefix[i] = z₀·…·zᵢ₋₁.
    let mut prefix = Vec::with_capacity(points.len());
    let mut product = F::ONE;
    for point in points {
        if point.is_identity() {
            return None;
        }
        prefix.push(product);
        product = product.mul(&point.z);
    }
    // inverse = (z₀·…·zᵢ)⁻¹ going down from the last point.
    let mut inverse = product.invert()?;
    let mut affine = Vec::with_capacity(points.len());
    for (point, before) in points.iter().zip(prefix).rev() {
        let z_inv = inverse.mul(&before);
        inverse = inverse.mul(&point.z);
        let z_inv2 = z_inv.square();
        affine.push(Affine {
            x: point.x.mul(&z_inv2),
            y: point.y.mul(&z_inv2.mul(&z_inv)),
        });
    }
    affine.reverse();
    Some(affine)
}

/// A curve with a = −3 in Jacobian coordinates over `F`, for the comb loop.
pub(super) struct JacobianCurve<F>(std::marker::PhantomData<F>);

impl<F: Field> CombCurve for JacobianCurve<F> {
    type Point = Jacobian<F>;
    type Entry = Entry<F>;

    fn identity() -> Jacobian<F> {
        Jacobian::IDENTITY
    }

    fn double(point: &Jacobian<F>) -> Jacobian<F> {
        point.double()
    }

    fn add(point: &Jacobian<F>, entry: &Entry<F>) -> Jacobian<F> {
        point.add_affine(&entry.affine())
    }

    fn from_entry(entry: &Entry<F>) -> Jacobian<F> {
        Jacobian::from_affine(&entry.affine())
    }

    fn to_entries(points: &[Jacobian<F>]) -> Option<Vec<Entry<F>>> {
        to_affine_all(points).map(|points| points.iter().map(Entry::new).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_point<F: Field>(a: &Jacobian<F>, b: &Jacobian<F>) -> bool {
        match (to_affine_all(&[*a]), to_affine_all(&[*b])) {
            (Some(a), Some(b)) => a
                .iter()
                .zip(&b)
                .all(|(a, b)| a.x.equals(&b.x) && a.y.equals(&b.y)),
            (None, None) => true,
            _ => false,
        }
    }

    /// The full addition's special cases (the DPoP path's window adds Jacobian points), with Z ≠ 1,
    /// against the doubling and the mixed addition: P + P, P + (−P), O + P, P + O, and 2G + 3G = 5G.
    fn full_addition_cases<F: Field>(x: &[u8], y: &[u8]) {
        let g = Affine {
            x: F::from_be_bytes(x).unwrap(),
            y: F::from_be_bytes(y).unwrap(),
        };
        let one = Jacobian::from_affine(&g);
        let two = one.double();
        let three = two.add_affine(&g);
        let five = three.add_affine(&g).add_affine(&g);
        assert!(same_point(&three.add(&three), &three.double()));
        assert!(three.add(&three.neg()).is_identity());
        assert!(same_point(&Jacobian::IDENTITY.add(&three), &three));
        assert!(same_point(&three.add(&Jacobian::IDENTITY), &three));
        assert!(same_point(&two.add(&three), &five));
        assert!(!same_point(&two.add(&three), &three.double()));
        // 3G − G + G − 3G through the mixed addition's negation case and the full one's.
        let minus_g = Affine {
            x: g.x,
            y: F::ZERO.sub(&g.y),
        };
        assert!(three
            .add_affine(&minus_g)
            .add_affine(&g)
            .add(&three.neg())
            .is_identity());
    }

    #[test]
    fn full_addition_handles_doubling_negation_and_identity() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let g = p256::AffinePoint::GENERATOR.to_encoded_point(false);
        full_addition_cases::<p256::FieldElement>(g.x().unwrap(), g.y().unwrap());
        let g = p384::AffinePoint::GENERATOR.to_encoded_point(false);
        full_addition_cases::<super::super::p384_field::P384Field>(g.x().unwrap(), g.y().unwrap());
        let g = p521::AffinePoint::GENERATOR.to_encoded_point(false);
        full_addition_cases::<super::super::p521_field::P521Field>(g.x().unwrap(), g.y().unwrap());
    }
}
