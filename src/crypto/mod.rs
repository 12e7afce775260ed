//! Signature algorithms and public key material, the bottom layer: RSA (RS*/PS*), ECDSA (ES256, ES384, ES512)
//! and EdDSA behind jwt-compact's `Algorithm` trait, HMAC through jwt-compact, and [`KeyMaterial`],
//! which checks a signature with the algorithm its key serves. Nothing here knows tokens, key sets or
//! configuration.

pub(crate) mod algorithm;
pub(crate) mod ecdsa;
pub(crate) mod eddsa;
pub(crate) mod key;
pub(crate) mod rsa;

// The verifiers, for the Wycheproof and cross-check tests and the RSA fuzz target.
pub use ecdsa::{
    p256_key, p384_key, p521_key, Es256, Es256Signature, Es384, Es384Signature, Es512,
    Es512Signature,
};
pub use eddsa::{EdDsa, EdDsaSignature};
pub use key::KeyMaterial;
pub use rsa::{verify_pkcs1v15, verify_pss, PreparedRsaKey, RsaHash, RsaKernel};
