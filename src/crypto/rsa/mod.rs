//! Fast RSA signature verification for JWS (RS256/384/512, PS256/384/512), behind jwt-compact's
//! `Algorithm` trait.
//!
//! Why not the `rsa` crate: in Envoy's V8 one RSA-2048 verification with rsa 0.9 (num-bigint-dig) costs
//! about 1 ms, which caps a worker near 1k fresh tokens per second. Verification only needs the public
//! exponent, so each key is prepared once when the JWKS is parsed — the modulus as limbs, −n⁻¹ and R² mod
//! n for Montgomery multiplication — and a signature costs one exponentiation by e (16 squarings and one
//! multiply for 65537) plus the padding check. Nothing here handles secrets, so constant time is not
//! needed.
//!
//! `prepared_key` holds the key and the exponentiation on 28-bit integer limbs, `fused_float` the same
//! on 52-bit limbs in doubles by fused multiply-add (used in wasm where the engine fuses it),
//! `padding` the PKCS#1 v1.5 and PSS checks.

mod fused_float;
mod limbs;
mod padding;
mod prepared_key;

use std::borrow::Cow;

use jwt_compact::{Algorithm, AlgorithmSignature};

use crate::crypto::algorithm::{JwsAlgorithm, NoSigningKey};

pub use padding::{verify_pkcs1v15, verify_pss, RsaHash};
pub use prepared_key::{PreparedRsaKey, RsaKernel};

/// RSA keys below this many bits are skipped (RFC 7518 §3.3 requires 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, bounding verification cost.
pub const MAX_RSA_BITS: usize = 4096;

/// A JWS RSA algorithm over prepared keys, for jwt-compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastRsa(pub JwsAlgorithm);

/// An RSA signature's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaSignatureBytes(Vec<u8>);

impl AlgorithmSignature for RsaSignatureBytes {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(RsaSignatureBytes(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

impl Algorithm for FastRsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = PreparedRsaKey;
    type Signature = RsaSignatureBytes;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0.name())
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> RsaSignatureBytes {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &RsaSignatureBytes,
        key: &PreparedRsaKey,
        message: &[u8],
    ) -> bool {
        let (hash, pss) = match self.0 {
            JwsAlgorithm::Rs256 => (RsaHash::Sha256, false),
            JwsAlgorithm::Rs384 => (RsaHash::Sha384, false),
            JwsAlgorithm::Rs512 => (RsaHash::Sha512, false),
            JwsAlgorithm::Ps256 => (RsaHash::Sha256, true),
            JwsAlgorithm::Ps384 => (RsaHash::Sha384, true),
            JwsAlgorithm::Ps512 => (RsaHash::Sha512, true),
            // Not an RSA algorithm: an RSA key verifies nothing else.
            JwsAlgorithm::Es256
            | JwsAlgorithm::Es384
            | JwsAlgorithm::Es512
            | JwsAlgorithm::EdDsa
            | JwsAlgorithm::Hs256
            | JwsAlgorithm::Hs384
            | JwsAlgorithm::Hs512 => return false,
        };
        if pss {
            let salt_len = hash.digest(b"").len();
            verify_pss(key, hash, message, &signature.0, salt_len)
        } else {
            verify_pkcs1v15(key, hash, message, &signature.0)
        }
    }
}
