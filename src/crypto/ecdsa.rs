//! ECDSA signatures: ES256 (P-256), ES384 (P-384) and ES512 (P-521), behind jwt-compact's `Algorithm`
//! trait like the RSA verifier, with pure-Rust RustCrypto arithmetic. ES256 and ES384 verify with
//! per-key comb tables ([`P256Key`], [`P384Key`]) instead of RustCrypto's generic double-and-add, about
//! 4× faster in V8; ES512 is rare, so [`P521Key`] uses RustCrypto's verification as it is.
//!
//! What is refused, and where:
//! - A JWK whose point is not on its curve (or is the identity) fails to parse, so it never becomes a key.
//! - A signature is the JOSE form `r || s` (RFC 7518 §3.4); `r` or `s` of zero or not below the group
//!   order fails [`jwt_compact::AlgorithmSignature::try_from_slice`], before any curve arithmetic.

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

/// A P-521 public key, checked to be on the curve. A newtype because p521's `VerifyingKey` has neither
/// `PartialEq` nor `Debug`, which key sets need to tell a changed key from the same one.
#[derive(Clone)]
pub struct P521Key(p521::ecdsa::VerifyingKey);

impl PartialEq for P521Key {
    fn eq(&self, other: &P521Key) -> bool {
        self.0.to_encoded_point(false) == other.0.to_encoded_point(false)
    }
}

impl std::fmt::Debug for P521Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P521Key")
    }
}

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

/// Defines an ECDSA public key prepared for fast verification with Lim–Lee comb tables, for a
/// RustCrypto prime-order curve crate `$curve` with hash `$hash` and scalars of 8·`$row_bits` bits.
///
/// RustCrypto's `VerifyingKey::verify` computes u₁·G + u₂·Q with a doubling per scalar bit and fresh
/// constant-time tables per signature (about 1 ms in V8 for P-256). Verification handles only public
/// values, so it may run in variable time: the scalar is read as 8 rows of `$row_bits` bits, and a comb
/// table for a point P holds, for every non-empty set b of rows, Σ 2^(row_bits·j)·P over the rows j in b
/// (255 affine points). With tables for G (one per VM) and for Q (built on the key's first use, shared by
/// clones of the key), u₁·G + u₂·Q costs `$row_bits` − 1 doublings and at most 2·`$row_bits` mixed
/// additions. Same answers as `VerifyingKey::verify` (checked against it on random keys and signatures,
/// and against every Wycheproof vector).
macro_rules! comb_ecdsa_key {
    ($(#[$doc:meta])* $key:ident, $curve:ident, $uint:ident, $hash:ty, $row_bits:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $key {
            key: $curve::ecdsa::VerifyingKey,
            table: std::sync::Arc<std::sync::OnceLock<Vec<$curve::AffinePoint>>>,
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
                use $curve::elliptic_curve::ops::{Invert, Reduce};
                use $curve::elliptic_curve::point::AffineCoordinates;
                use $curve::elliptic_curve::Group;
                use $curve::{ProjectivePoint, Scalar, $uint};
                use sha2::Digest;

                // r and s are non-zero and below n: Signature::from_slice refused anything else.
                let (r, s) = signature.split_scalars();
                let z = <Scalar as Reduce<$uint>>::reduce_bytes(&<$hash>::digest(message));
                let s: Scalar = *s;
                let Some(s_inv) = Option::<Scalar>::from(Invert::invert_vartime(&s)) else {
                    return false;
                };
                let (u1, u2) = (z * s_inv, *r * s_inv);
                static G_TABLE: std::sync::OnceLock<Vec<$curve::AffinePoint>> =
                    std::sync::OnceLock::new();
                let g_table = G_TABLE.get_or_init(|| $key::comb_table(ProjectivePoint::GENERATOR));
                let q_table = self.table.get_or_init(|| {
                    $key::comb_table(ProjectivePoint::from(*self.key.as_affine()))
                });
                let (u1, u2) = ($key::rows(&u1), $key::rows(&u2));
                let mut sum = ProjectivePoint::IDENTITY;
                for bit in (0..$row_bits).rev() {
                    sum = sum.double();
                    for (table, rows) in [(g_table, &u1), (q_table, &u2)] {
                        if let Some(point) = comb_index(rows, bit).and_then(|i| table.get(i)) {
                            sum += point;
                        }
                    }
                }
                if bool::from(sum.is_identity()) {
                    return false;
                }
                <Scalar as Reduce<$uint>>::reduce_bytes(&sum.to_affine().x()) == *r
            }

            fn comb_table(point: $curve::ProjectivePoint) -> Vec<$curve::AffinePoint> {
                use $curve::elliptic_curve::group::Curve;
                use $curve::elliptic_curve::Group;
                use $curve::ProjectivePoint;
                // rows[j] = 2^(row_bits·j)·P.
                let mut rows = Vec::with_capacity(8);
                let mut row = point;
                for _ in 0..8 {
                    rows.push(row);
                    for _ in 0..$row_bits {
                        row = row.double();
                    }
                }
                // sums[b] = Σ rows[j] for the bits j of b: the sum without b's top bit, plus that row.
                let mut sums = vec![ProjectivePoint::IDENTITY; 256];
                for b in 1..256usize {
                    let top = b.ilog2() as usize;
                    let (Some(&rest), Some(&row)) = (sums.get(b ^ (1 << top)), rows.get(top)) else {
                        continue;
                    };
                    if let Some(slot) = sums.get_mut(b) {
                        *slot = rest + row;
                    }
                }
                sums.iter().skip(1).map(Curve::to_affine).collect()
            }

            /// The scalar as 8 rows (row j holds bits row_bits·j .. row_bits·(j + 1)).
            fn rows(k: &$curve::Scalar) -> [u64; 8] {
                let bytes = k.to_bytes();
                let mut rows = [0u64; 8];
                for (row, chunk) in rows.iter_mut().zip(bytes.rchunks_exact($row_bits / 8)) {
                    *row = chunk.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b));
                }
                rows
            }
        }
    };
}

comb_ecdsa_key!(
    /// A P-256 public key prepared for fast ES256 verification (18 KB of tables, built on first use:
    /// about 7.6 ms in V8).
    P256Key,
    p256,
    U256,
    sha2::Sha256,
    32
);

comb_ecdsa_key!(
    /// A P-384 public key prepared for fast ES384 verification (27 KB of tables, built on first use:
    /// about 34 ms in V8).
    P384Key,
    p384,
    U384,
    sha2::Sha384,
    48
);

/// The comb table index for column `bit` (bit `bit` of every row), or `None` when the column is empty.
fn comb_index(rows: &[u64; 8], bit: u32) -> Option<usize> {
    let column = rows.iter().enumerate().fold(0usize, |acc, (j, row)| {
        acc | ((((row >> bit) & 1) as usize) << j)
    });
    column.checked_sub(1)
}

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
