//! Elliptic-curve signatures: ES256 (P-256), ES384 (P-384) and EdDSA (Ed25519), behind jwt-compact's
//! `Algorithm` trait like the RSA verifier, with pure-Rust RustCrypto / dalek arithmetic.
//!
//! What is refused, and where:
//! - A JWK whose point is not on its curve (or is the identity) fails to parse, so it never becomes a key.
//! - An Ed25519 key of small order is refused when the key is parsed ([`ed25519_key`]), and signatures are
//!   checked with `verify_strict`, which also refuses non-canonical encodings.
//! - An ECDSA signature is the JOSE form `r || s` (RFC 7518 §3.4); `r` or `s` of zero or not below the
//!   group order fails [`AlgorithmSignature::try_from_slice`], before any curve arithmetic.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use anyhow::anyhow;
use jwt_compact::{Algorithm, AlgorithmSignature};
use p256::ecdsa::signature::Verifier as _;

use crate::rsa_verifier::NoSigningKey;

/// Defines a verify-only jwt-compact algorithm: the unit type, its signature type (parsed from exactly
/// `$length` bytes by `$parse`, refusing what `$parse` refuses) and the check `$verify(key, message,
/// signature)`.
macro_rules! verify_only_algorithm {
    ($(#[$doc:meta])* $alg:ident, $name:literal, $sig:ident($inner:ty), $length:literal,
     $parse:path, $refusal:literal, $key:ty, $verify:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $alg;

        #[doc = concat!("A ", $name, " signature that parsed (", $refusal, " otherwise).")]
        #[derive(Debug, Clone)]
        pub struct $sig($inner);

        impl AlgorithmSignature for $sig {
            const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new($length);

            fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
                $parse(slice).map($sig).map_err(|_| anyhow!($refusal))
            }

            fn as_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.0.to_bytes().to_vec())
            }
        }

        impl Algorithm for $alg {
            type SigningKey = NoSigningKey;
            type VerifyingKey = $key;
            type Signature = $sig;

            fn name(&self) -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> $sig {
                match *signing_key {}
            }

            fn verify_signature(&self, signature: &$sig, key: &$key, message: &[u8]) -> bool {
                let verify: fn(&$key, &[u8], &$inner) -> bool = $verify;
                verify(key, message, &signature.0)
            }
        }
    };
}

verify_only_algorithm!(
    /// ES256: ECDSA over P-256 with SHA-256.
    Es256,
    "ES256",
    Es256Signature(p256::ecdsa::Signature),
    64,
    p256::ecdsa::Signature::from_slice,
    "ES256 signature is not r || s with 0 < r, s < n",
    p256::ecdsa::VerifyingKey,
    |key, message, signature| key.verify(message, signature).is_ok()
);

verify_only_algorithm!(
    /// ES384: ECDSA over P-384 with SHA-384.
    Es384,
    "ES384",
    Es384Signature(p384::ecdsa::Signature),
    96,
    p384::ecdsa::Signature::from_slice,
    "ES384 signature is not r || s with 0 < r, s < n",
    p384::ecdsa::VerifyingKey,
    |key, message, signature| key.verify(message, signature).is_ok()
);

verify_only_algorithm!(
    /// EdDSA with Ed25519 (RFC 8037). `verify_strict` refuses small-order R and keys and non-canonical
    /// points, which plain `verify` lets through (malleable signatures).
    EdDsa,
    "EdDSA",
    EdDsaSignature(ed25519_dalek::Signature),
    64,
    ed25519_dalek::Signature::from_slice,
    "Ed25519 signature is not 64 bytes",
    ed25519_dalek::VerifyingKey,
    |key, message, signature| key.verify_strict(message, signature).is_ok()
);

/// A P-256 public key from a JWK's `x` and `y` (32 bytes each); `None` if the point is not on the curve.
pub fn p256_key(x: &[u8], y: &[u8]) -> Option<p256::ecdsa::VerifyingKey> {
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let point = p256::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()
}

/// A P-384 public key from a JWK's `x` and `y` (48 bytes each); `None` if the point is not on the curve.
pub fn p384_key(x: &[u8], y: &[u8]) -> Option<p384::ecdsa::VerifyingKey> {
    if x.len() != 48 || y.len() != 48 {
        return None;
    }
    let point = p384::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    p384::ecdsa::VerifyingKey::from_encoded_point(&point).ok()
}

/// An Ed25519 public key from a JWK's `x` (32 bytes); `None` if it is not a point, or is of small order
/// (such a key "verifies" forged signatures under lax checks).
pub fn ed25519_key(x: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: &[u8; 32] = x.try_into().ok()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).ok()?;
    (!key.is_weak()).then_some(key)
}
