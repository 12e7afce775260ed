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

/// ES256: ECDSA over P-256 with SHA-256.
#[derive(Debug, Clone, Copy, Default)]
pub struct Es256;

/// ES384: ECDSA over P-384 with SHA-384.
#[derive(Debug, Clone, Copy, Default)]
pub struct Es384;

/// EdDSA with Ed25519 (RFC 8037), strict verification.
#[derive(Debug, Clone, Copy, Default)]
pub struct EdDsa;

/// An ES256 signature whose `r` and `s` are in range.
#[derive(Debug, Clone)]
pub struct Es256Signature(p256::ecdsa::Signature);

/// An ES384 signature whose `r` and `s` are in range.
#[derive(Debug, Clone)]
pub struct Es384Signature(p384::ecdsa::Signature);

/// An Ed25519 signature (64 bytes; its scalar is checked to be canonical when verified).
#[derive(Debug, Clone)]
pub struct EdDsaSignature(ed25519_dalek::Signature);

const fn length(bytes: usize) -> Option<NonZeroUsize> {
    NonZeroUsize::new(bytes)
}

impl AlgorithmSignature for Es256Signature {
    const LENGTH: Option<NonZeroUsize> = length(64);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p256::ecdsa::Signature::from_slice(slice)
            .map(Es256Signature)
            .map_err(|_| anyhow!("ES256 signature is not r || s with 0 < r, s < n"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = length(96);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p384::ecdsa::Signature::from_slice(slice)
            .map(Es384Signature)
            .map_err(|_| anyhow!("ES384 signature is not r || s with 0 < r, s < n"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl AlgorithmSignature for EdDsaSignature {
    const LENGTH: Option<NonZeroUsize> = length(64);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        ed25519_dalek::Signature::from_slice(slice)
            .map(EdDsaSignature)
            .map_err(|_| anyhow!("Ed25519 signature is not 64 bytes"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl Algorithm for Es256 {
    type SigningKey = NoSigningKey;
    type VerifyingKey = p256::ecdsa::VerifyingKey;
    type Signature = Es256Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> Es256Signature {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &Es256Signature,
        key: &p256::ecdsa::VerifyingKey,
        message: &[u8],
    ) -> bool {
        key.verify(message, &signature.0).is_ok()
    }
}

impl Algorithm for Es384 {
    type SigningKey = NoSigningKey;
    type VerifyingKey = p384::ecdsa::VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> Es384Signature {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &Es384Signature,
        key: &p384::ecdsa::VerifyingKey,
        message: &[u8],
    ) -> bool {
        key.verify(message, &signature.0).is_ok()
    }
}

impl Algorithm for EdDsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = ed25519_dalek::VerifyingKey;
    type Signature = EdDsaSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("EdDSA")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> EdDsaSignature {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &EdDsaSignature,
        key: &ed25519_dalek::VerifyingKey,
        message: &[u8],
    ) -> bool {
        // verify_strict refuses small-order R and keys, and non-canonical points, which plain verify
        // lets through (malleable signatures).
        key.verify_strict(message, &signature.0).is_ok()
    }
}

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
