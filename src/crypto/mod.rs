//! Signature algorithms and public key material, the bottom layer: RSA (RS*/PS*), ECDSA (ES256, ES384)
//! and EdDSA behind jwt-compact's `Algorithm` trait, HMAC through jwt-compact, and [`key::KeyMaterial`],
//! which checks a signature with the algorithm its key serves. Nothing here knows tokens, key sets or
//! configuration.

pub mod algorithm;
pub mod ecdsa;
pub mod eddsa;
pub mod key;
pub mod rsa;
