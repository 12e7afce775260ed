//! EdDSA signatures with Ed25519 (RFC 8037), behind jwt-compact's `Algorithm` trait, with dalek's
//! arithmetic.
//!
//! An Ed25519 key of small order is refused when the key is parsed ([`ed25519_key`]), and signatures are
//! checked with `verify_strict`, which also refuses non-canonical encodings.

use crate::crypto::algorithm::verify_only_algorithm;

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

/// An Ed25519 public key from a JWK's `x` (32 bytes); `None` if it is not a point, or is of small order
/// (such a key "verifies" forged signatures under lax checks).
pub fn ed25519_key(x: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: &[u8; 32] = x.try_into().ok()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).ok()?;
    (!key.is_weak()).then_some(key)
}
