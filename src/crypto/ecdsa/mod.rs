//! ECDSA signatures: ES256 (P-256), ES384 (P-384) and ES512 (P-521), behind jwt-compact's `Algorithm`
//! trait like the RSA verifier, with pure-Rust RustCrypto arithmetic. ES256 and ES384 verify with
//! per-key comb tables ([`P256Key`], [`P384Key`]; [`comb`]) over RustCrypto's field elements in Jacobian
//! coordinates ([`jacobian`]) instead of RustCrypto's generic double-and-add: in V8 about 130 µs per
//! ES256 signature instead of ~1 ms (245 µs with comb tables over RustCrypto's complete formulas).
//! ES512 is rare, so [`P521Key`] uses RustCrypto's verification as it is.
//!
//! What is refused, and where:
//! - A JWK whose point is not on its curve (or is the identity) fails to parse, so it never becomes a key.
//! - A signature is the JOSE form `r || s` (RFC 7518 §3.4); `r` or `s` of zero or not below the group
//!   order fails [`jwt_compact::AlgorithmSignature::try_from_slice`], before any curve arithmetic.
//! - A signature whose u₁·G + u₂·Q is the identity fails (RustCrypto's does too: the identity's x is 0).

mod comb;
mod jacobian;
mod nist_p521;

pub use nist_p521::P521Key;

use crate::crypto::algorithm::verify_only_algorithm;

verify_only_algorithm!(
    /// ES256: ECDSA over P-256 with SHA-256, with per-key precomputed tables (`P256Key`).
    Es256,
    "ES256",
    Es256Signature(p256::ecdsa::Signature),
    64,
    p256::ecdsa::Signature::from_slice,
    "ES256 signature is not r || s with 0 < r, s < n",
    P256Key,
    |key, message, signature| key.verify(message, signature)
);

verify_only_algorithm!(
    /// ES384: ECDSA over P-384 with SHA-384, with per-key precomputed tables (`P384Key`).
    Es384,
    "ES384",
    Es384Signature(p384::ecdsa::Signature),
    96,
    p384::ecdsa::Signature::from_slice,
    "ES384 signature is not r || s with 0 < r, s < n",
    P384Key,
    |key, message, signature| key.verify(message, signature)
);

verify_only_algorithm!(
    /// ES512: ECDSA over P-521 with SHA-512 (RFC 7518 §3.4; the signature is r || s, 66 bytes each).
    Es512,
    "ES512",
    Es512Signature(p521::ecdsa::Signature),
    132,
    p521::ecdsa::Signature::from_slice,
    "ES512 signature is not r || s with 0 < r, s < n",
    P521Key,
    |key, message, signature| {
        use p521::ecdsa::signature::Verifier as _;
        key.0.verify(message, signature).is_ok()
    }
);

/// A P-521 public key from a JWK's `x` and `y` (66 bytes each, RFC 7518 §6.2.1.2); `None` if the point
/// is not on the curve.
pub fn p521_key(x: &[u8], y: &[u8]) -> Option<P521Key> {
    if x.len() != 66 || y.len() != 66 {
        return None;
    }
    let point = p521::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    p521::ecdsa::VerifyingKey::from_encoded_point(&point)
        .ok()
        .map(P521Key)
}

/// A P-256 public key from a JWK's `x` and `y` (32 bytes each); `None` if the point is not on the curve.
pub fn p256_key(x: &[u8], y: &[u8]) -> Option<P256Key> {
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let point = p256::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    p256::ecdsa::VerifyingKey::from_encoded_point(&point)
        .ok()
        .map(P256Key::new)
}

/// Defines an ECDSA public key prepared for fast verification with comb tables ([`comb`]) in Jacobian
/// coordinates ([`jacobian`]), for a RustCrypto curve crate `$curve` (curve `$curve_type`, integers
/// `$uint`) with a = −3, hash `$hash` and scalars of 8·`$row_bits` bits.
///
/// RustCrypto's `VerifyingKey::verify` computes u₁·G + u₂·Q with a doubling per scalar bit and fresh
/// constant-time tables per signature (about 1 ms in V8 for P-256). Verification handles only public
/// values, so it may run in variable time: with comb tables for G (one per VM) and for Q (built on the
/// key's first use, shared by clones of the key), u₁·G + u₂·Q costs `$row_bits` − 1 doublings and at
/// most 2·`$row_bits` mixed additions, and the x-coordinate check needs no inversion: x(R) mod n = r
/// exactly when X ≡ r·Z² or, if r + n < p, X ≡ (r + n)·Z² (mod p), as BoringSSL and libsecp256k1 check
/// it. Same answers as `VerifyingKey::verify` (checked against it on random keys and signatures, on
/// constructed r + n < p and doubling cases, and against every Wycheproof vector).
macro_rules! comb_ecdsa_key {
    ($(#[$doc:meta])* $key:ident, $curve:ident, $curve_type:ident, $uint:ident, $hash:ty, $row_bits:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $key {
            key: $curve::ecdsa::VerifyingKey,
            /// `None` only if the table could not be built, which a point of prime order never causes.
            table: std::sync::Arc<std::sync::OnceLock<Option<Vec<jacobian::Affine<$curve::FieldElement>>>>>,
        }

        impl std::fmt::Debug for $key {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // The key, not its 255-point table.
                f.debug_struct(stringify!($key))
                    .field("key", &self.key)
                    .field("table_built", &self.table.get().is_some())
                    .finish()
            }
        }

        impl PartialEq for $key {
            fn eq(&self, other: &$key) -> bool {
                self.key == other.key
            }
        }

        impl $key {
            pub fn new(key: $curve::ecdsa::VerifyingKey) -> $key {
                $key {
                    key,
                    table: std::sync::Arc::default(),
                }
            }

            /// ECDSA verification (SEC 1 §4.1.4) of `message`.
            pub fn verify(&self, message: &[u8], signature: &$curve::ecdsa::Signature) -> bool {
                use $curve::elliptic_curve::bigint::CheckedAdd;
                use $curve::elliptic_curve::ops::{Invert, Reduce};
                use $curve::elliptic_curve::{Curve, FieldBytesEncoding};
                use $curve::{FieldElement, Scalar, $curve_type, $uint};
                use sha2::Digest;
                type Points = jacobian::JacobianCurve<FieldElement>;

                // r and s are non-zero and below n: Signature::from_slice refused anything else.
                let (r, s) = signature.split_scalars();
                let z = <Scalar as Reduce<$uint>>::reduce_bytes(&<$hash>::digest(message));
                let s: Scalar = *s;
                let Some(s_inv) = Option::<Scalar>::from(Invert::invert_vartime(&s)) else {
                    return false;
                };
                let (u1, u2) = (z * s_inv, *r * s_inv);
                static G_TABLE: std::sync::OnceLock<Option<Vec<jacobian::Affine<FieldElement>>>> =
                    std::sync::OnceLock::new();
                let g_table = G_TABLE.get_or_init(|| {
                    $key::affine(&$curve::AffinePoint::GENERATOR)
                        .and_then(|g| comb::table::<Points>(&g, $row_bits))
                });
                let q_table = self.table.get_or_init(|| {
                    $key::affine(self.key.as_affine())
                        .and_then(|q| comb::table::<Points>(&q, $row_bits))
                });
                let (Some(g_table), Some(q_table)) = (g_table, q_table) else {
                    return false;
                };
                let sum = comb::linear_combination::<Points, $row_bits>(
                    g_table,
                    &comb::columns(&u1.to_bytes()),
                    q_table,
                    &comb::columns(&u2.to_bytes()),
                );
                // x(sum) mod n = r: x(sum) is r, or r + n when that is still below p.
                let r_bytes = r.to_bytes();
                let Some(r_field) = Option::<FieldElement>::from(FieldElement::from_bytes(&r_bytes))
                else {
                    return false;
                };
                if sum.has_affine_x(&r_field) {
                    return true;
                }
                let r_uint = <$uint as FieldBytesEncoding<$curve_type>>::decode_field_bytes(&r_bytes);
                Option::<$uint>::from(r_uint.checked_add(&$curve_type::ORDER))
                    .and_then(|r_plus_n| Option::from(FieldElement::from_uint(r_plus_n)))
                    .is_some_and(|r_plus_n| sum.has_affine_x(&r_plus_n))
            }

            /// A point's affine coordinates as field elements; `None` for the identity.
            fn affine(point: &$curve::AffinePoint) -> Option<jacobian::Affine<$curve::FieldElement>> {
                use $curve::elliptic_curve::sec1::ToEncodedPoint;
                use $curve::FieldElement;
                let encoded = point.to_encoded_point(false);
                let x = Option::from(FieldElement::from_bytes(encoded.x()?))?;
                let y = Option::from(FieldElement::from_bytes(encoded.y()?))?;
                Some(jacobian::Affine { x, y })
            }
        }
    };
}

comb_ecdsa_key!(
    /// A P-256 public key prepared for fast ES256 verification (16 KB of tables, built on first use:
    /// about 0.75 ms in V8).
    P256Key,
    p256,
    NistP256,
    U256,
    sha2::Sha256,
    32
);

comb_ecdsa_key!(
    /// A P-384 public key prepared for fast ES384 verification (24 KB of tables, built on first use:
    /// about 4 ms in V8).
    P384Key,
    p384,
    NistP384,
    U384,
    sha2::Sha384,
    48
);

/// A P-384 public key from a JWK's `x` and `y` (48 bytes each); `None` if the point is not on the curve.
pub fn p384_key(x: &[u8], y: &[u8]) -> Option<P384Key> {
    if x.len() != 48 || y.len() != 48 {
        return None;
    }
    let point = p384::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    p384::ecdsa::VerifyingKey::from_encoded_point(&point)
        .ok()
        .map(P384Key::new)
}
