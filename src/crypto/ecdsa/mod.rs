//! ECDSA signatures: ES256 (P-256), ES384 (P-384) and ES512 (P-521), behind jwt-compact's `Algorithm`
//! trait like the RSA verifier. Each key verifies with per-key comb tables ([`P256Key`], [`P384Key`],
//! [`P521Key`]; [`comb`]) in Jacobian coordinates ([`jacobian`]) instead of RustCrypto's generic
//! double-and-add: over RustCrypto's field elements for P-256, over [`p384_field`] (24-bit limbs) and
//! [`p521_field`] (29-bit limbs) for P-384 and P-521, whose crates' fields are slow in wasm32 or not
//! exposed; s⁻¹ comes from [`inverse`]. In V8, per signature: ES256 about 110 µs (~1 ms with
//! `VerifyingKey::verify`, 245 µs with comb tables over RustCrypto's points), ES384 about 270 µs
//! (1.45 ms), ES512 about 410 µs (6.4 ms with `VerifyingKey::verify`). Keys used once (DPoP proofs')
//! verify without a table of their own ([`window`]).//!
//! What is refused, and where:
//! - A JWK whose point is not on its curve (or is the identity) fails to parse, so it never becomes a key.
//! - A signature is the JOSE form `r || s` (RFC 7518 §3.4); `r` or `s` of zero or not below the group
//!   order fails [`jwt_compact::AlgorithmSignature::try_from_slice`], before any curve arithmetic.
//! - A signature whose u₁·G + u₂·Q is the identity fails (RustCrypto's does too: the identity's x is 0).

mod comb;
mod inverse;
mod jacobian;
mod p384_field;
mod p521_field;
mod schoolbook;
mod window;

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
    |key, message, signature| key.verify(message, signature)
);

/// Defines an ECDSA public key prepared for fast verification with comb tables ([`comb`]) in Jacobian
/// coordinates ([`jacobian`]) over the field `$field`, for a RustCrypto curve crate `$curve` (curve
/// `$curve_type`, integers `$uint`) with a = −3, hash `$hash`, scalars of at most 8·`$row_bits` bits and
/// of `$limbs` u64 limbs; and `$from_jwk`, the key of a JWK's coordinates.
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
    ($(#[$doc:meta])* $key:ident, $from_jwk:ident, $curve:ident, $curve_type:ident, $uint:ident,
     $field:ty, $hash:ty, $row_bits:literal, $limbs:literal) => {
        #[doc = concat!("A `", stringify!($key), "` from a JWK's `x` and `y` (big-endian, the field's size ",
            "each: RFC 7518 §6.2.1.2); `None` if the point is not on the curve.")]
        pub fn $from_jwk(x: &[u8], y: &[u8]) -> Option<$key> {
            let size = $curve::FieldBytes::default().len();
            if x.len() != size || y.len() != size {
                return None;
            }
            let point = $curve::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
            $curve::ecdsa::VerifyingKey::from_encoded_point(&point)
                .ok()
                .map($key::new)
        }

        $(#[$doc])*
        #[derive(Clone)]
        pub struct $key {
            key: $curve::ecdsa::VerifyingKey,
            /// `None` only if the table could not be built, which a point of prime order never causes.
            table: std::sync::Arc<std::sync::OnceLock<Option<Vec<jacobian::Entry<$field>>>>>,
        }

        impl std::fmt::Debug for $key {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // The key, not its 255-point table.
                f.debug_struct(stringify!($key))
                    .field("key", &self.key.to_encoded_point(false))
                    .field("table_built", &self.table.get().is_some())
                    .finish()
            }
        }

        // By the point: p521's `VerifyingKey` has no `PartialEq`.
        impl PartialEq for $key {
            fn eq(&self, other: &$key) -> bool {
                self.key.to_encoded_point(false) == other.key.to_encoded_point(false)
            }
        }

        impl $key {
            pub fn new(key: $curve::ecdsa::VerifyingKey) -> $key {
                $key {
                    key,
                    table: std::sync::Arc::default(),
                }
            }

            /// ECDSA verification (SEC 1 §4.1.4) of `message`, with the key's comb table (built on the
            /// first call).
            pub fn verify(&self, message: &[u8], signature: &$curve::ecdsa::Signature) -> bool {
                type Points = jacobian::JacobianCurve<$field>;
                let Some((u1, u2)) = $key::scalars(message, signature) else {
                    return false;
                };
                let q_table = self.table.get_or_init(|| {
                    $key::affine(self.key.as_affine())
                        .and_then(|q| comb::table::<Points>(&jacobian::Entry::new(&q), $row_bits))
                });
                let (Some(g_table), Some(q_table)) = ($key::g_table(), q_table) else {
                    return false;
                };
                let sum = comb::linear_combination::<Points, $row_bits>(
                    g_table,
                    &comb::columns(&u1.to_bytes()),
                    q_table,
                    &comb::columns(&u2.to_bytes()),
                );
                $key::x_is_r(&sum, signature)
            }

            /// The same verification without the key's table (never built here), for a key used once:
            /// u₂·Q by a window over this signature's own multiples of Q ([`window`]).
            pub fn verify_without_table(
                &self,
                message: &[u8],
                signature: &$curve::ecdsa::Signature,
            ) -> bool {
                let Some((u1, u2)) = $key::scalars(message, signature) else {
                    return false;
                };
                let (Some(g_table), Some(q)) = ($key::g_table(), $key::affine(self.key.as_affine()))
                else {
                    return false;
                };
                let sum = window::linear_combination_once::<$field, $row_bits>(
                    g_table,
                    &comb::columns(&u1.to_bytes()),
                    &q,
                    &u2.to_bytes(),
                );
                $key::x_is_r(&sum, signature)
            }

            /// u₁ = z/s and u₂ = r/s for the digest z of `message`; `None` if s has no inverse.
            fn scalars(
                message: &[u8],
                signature: &$curve::ecdsa::Signature,
            ) -> Option<($curve::Scalar, $curve::Scalar)> {
                use $curve::elliptic_curve::bigint::ArrayEncoding;
                use $curve::elliptic_curve::ff::PrimeField;
                use $curve::elliptic_curve::ops::Reduce;
                use $curve::elliptic_curve::Curve;
                use $curve::{FieldBytes, Scalar, $curve_type, $uint};
                use sha2::Digest;
                // r and s are non-zero and below n: Signature::from_slice refused anything else.
                let (r, s) = signature.split_scalars();
                // bits2field: the digest, left-padded to the field's size if shorter (SHA-512 on P-521).
                let digest = <$hash>::digest(message);
                let mut z = FieldBytes::default();
                if let Some(low) = z.len().checked_sub(digest.len()).and_then(|at| z.get_mut(at..)) {
                    low.copy_from_slice(&digest);
                }
                let z = <Scalar as Reduce<$uint>>::reduce_bytes(&z);
                // s⁻¹ on u64 limbs ([`inverse`]), several times faster in V8 than `invert_vartime`.
                let n = inverse::from_be_bytes::<$limbs>(&$curve_type::ORDER.to_be_byte_array());
                let s_inv = inverse::invert::<$limbs>(&inverse::from_be_bytes(&s.to_bytes()), &n)?;
                let mut s_inv_bytes = FieldBytes::default();
                inverse::to_be_bytes(&s_inv, &mut s_inv_bytes);
                let s_inv = Option::<Scalar>::from(Scalar::from_repr(s_inv_bytes))?;
                Some((z * s_inv, *r * s_inv))
            }

            /// The generator's comb table, one per VM.
            fn g_table() -> Option<&'static [jacobian::Entry<$field>]> {
                static G_TABLE: std::sync::OnceLock<Option<Vec<jacobian::Entry<$field>>>> =
                    std::sync::OnceLock::new();
                G_TABLE
                    .get_or_init(|| {
                        $key::affine(&$curve::AffinePoint::GENERATOR).and_then(|g| {
                            let g = jacobian::Entry::new(&g);
                            comb::table::<jacobian::JacobianCurve<$field>>(&g, $row_bits)
                        })
                    })
                    .as_deref()
            }

            /// x(sum) mod n = r: x(sum) is r, or r + n when that is still below p; never the identity.
            fn x_is_r(sum: &jacobian::Jacobian<$field>, signature: &$curve::ecdsa::Signature) -> bool {
                use jacobian::Field as _;
                use $curve::elliptic_curve::bigint::{ArrayEncoding, CheckedAdd};
                use $curve::elliptic_curve::{Curve, FieldBytesEncoding};
                use $curve::{$curve_type, $uint};
                let r_bytes = signature.r().to_bytes();
                let Some(r_field) = <$field>::from_be_bytes(&r_bytes) else {
                    return false;
                };
                if sum.has_affine_x(&r_field) {
                    return true;
                }
                let r_uint = <$uint as FieldBytesEncoding<$curve_type>>::decode_field_bytes(&r_bytes);
                Option::<$uint>::from(r_uint.checked_add(&$curve_type::ORDER))
                    .and_then(|r_plus_n| <$field>::from_be_bytes(&r_plus_n.to_be_byte_array()))
                    .is_some_and(|r_plus_n| sum.has_affine_x(&r_plus_n))
            }

            /// A point's affine coordinates as field elements; `None` for the identity.
            fn affine(point: &$curve::AffinePoint) -> Option<jacobian::Affine<$field>> {
                use jacobian::Field as _;
                use $curve::elliptic_curve::sec1::ToEncodedPoint;
                let encoded = point.to_encoded_point(false);
                let x = <$field>::from_be_bytes(encoded.x()?)?;
                let y = <$field>::from_be_bytes(encoded.y()?)?;
                Some(jacobian::Affine { x, y })
            }
        }
    };
}

comb_ecdsa_key!(
    /// A P-256 public key prepared for fast ES256 verification (16 KB of tables, built on first use:
    /// about 0.75 ms in V8).
    P256Key,
    p256_key,
    p256,
    NistP256,
    U256,
    p256::FieldElement,
    sha2::Sha256,
    32,
    4
);

comb_ecdsa_key!(
    /// A P-384 public key prepared for fast ES384 verification (24 KB of tables, packed 48 bytes a
    /// coordinate, built on first use: about 1.5 ms in V8).
    P384Key,
    p384_key,
    p384,
    NistP384,
    U384,
    p384_field::P384Field,
    sha2::Sha384,
    48,
    6
);

comb_ecdsa_key!(
    /// A P-521 public key prepared for fast ES512 verification: rows of 66 bits (8 of them hold a 521-bit
    /// scalar, so the table keeps the 255 entries of the other curves; column indices are bytes, so
    /// rows wider than a u64 cost nothing), over [`p521_field`] since p521 does not expose its field
    /// (36 KB of tables, built on first use: about 1.7 ms in V8; then about 410 µs per signature instead
    /// of 6.4 ms with RustCrypto's `VerifyingKey::verify`).
    P521Key,
    p521_key,
    p521,
    NistP521,
    U576,
    p521_field::P521Field,
    sha2::Sha512,
    66,
    9
);
