//! Public key material, and the signature check each kind of key can make.

use jwt_compact::alg::{Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::{Algorithm, AlgorithmSignature};

use crate::crypto::algorithm::JwsAlgorithm;
use crate::crypto::ecdsa::{Es256, Es384, Es512, P256Key, P384Key, P521Key};
use crate::crypto::eddsa::EdDsa;
use crate::crypto::rsa::{FastRsa, PreparedRsaKey};

/// Public key material of a usable key (or, for `oct` keys from local_jwks, the shared secret).
#[derive(Clone, PartialEq)]
pub enum KeyMaterial {
    /// Prepared once here for fast verification (see `crate::crypto::rsa`).
    Rsa(PreparedRsaKey),
    /// A point checked to be on P-256, with its verification tables.
    P256(P256Key),
    /// A point checked to be on P-384.
    P384(P384Key),
    /// A point checked to be on P-521.
    P521(P521Key),
    /// An Ed25519 point, not of small order.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// An HMAC secret; only ever from the filter's own configuration (local_jwks).
    Hmac(Vec<u8>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Rsa(key) => write!(f, "Rsa({} bits)", key.modulus_bits()),
            KeyMaterial::P256(_) => f.write_str("P256"),
            KeyMaterial::P384(_) => f.write_str("P384"),
            KeyMaterial::P521(_) => f.write_str("P521"),
            KeyMaterial::Ed25519(_) => f.write_str("Ed25519"),
            // Secrets stay out of logs.
            KeyMaterial::Hmac(secret) => write!(f, "Hmac({} bytes)", secret.len()),
        }
    }
}

impl KeyMaterial {
    /// Whether this key can verify `alg`: an RSA key serves RS* and PS*, a P-256 key ES256, a P-384 key
    /// ES384, a P-521 key ES512, an Ed25519 key EdDSA, a secret HS*. Nothing else, whatever a token says.
    pub fn serves(&self, alg: JwsAlgorithm) -> bool {
        match self {
            KeyMaterial::Rsa(_) => matches!(
                alg,
                JwsAlgorithm::Rs256
                    | JwsAlgorithm::Rs384
                    | JwsAlgorithm::Rs512
                    | JwsAlgorithm::Ps256
                    | JwsAlgorithm::Ps384
                    | JwsAlgorithm::Ps512
            ),
            KeyMaterial::P256(_) => alg == JwsAlgorithm::Es256,
            KeyMaterial::P384(_) => alg == JwsAlgorithm::Es384,
            KeyMaterial::P521(_) => alg == JwsAlgorithm::Es512,
            KeyMaterial::Ed25519(_) => alg == JwsAlgorithm::EdDsa,
            KeyMaterial::Hmac(_) => matches!(
                alg,
                JwsAlgorithm::Hs256 | JwsAlgorithm::Hs384 | JwsAlgorithm::Hs512
            ),
        }
    }
}

impl KeyMaterial {
    /// The signature check proper, through jwt-compact's `Algorithm` trait with this filter's fast RSA
    /// (`crate::crypto::rsa`). `alg` was chosen from the key and the algorithms this filter supports,
    /// never built from the token's text; `token_alg` is the token's header `alg`, which must name
    /// exactly the same algorithm. `signed_data` is `header.payload` as received.
    pub fn verifies(
        &self,
        alg: JwsAlgorithm,
        token_alg: &str,
        signature: &[u8],
        signed_data: &[u8],
    ) -> bool {
        match (self, alg) {
            (KeyMaterial::Rsa(key), _) => {
                algorithm_checks(FastRsa(alg), key, token_alg, signature, signed_data)
            }
            (KeyMaterial::P256(key), JwsAlgorithm::Es256) => {
                algorithm_checks(Es256, key, token_alg, signature, signed_data)
            }
            (KeyMaterial::P384(key), JwsAlgorithm::Es384) => {
                algorithm_checks(Es384, key, token_alg, signature, signed_data)
            }
            (KeyMaterial::P521(key), JwsAlgorithm::Es512) => {
                algorithm_checks(Es512, key, token_alg, signature, signed_data)
            }
            (KeyMaterial::Ed25519(key), JwsAlgorithm::EdDsa) => {
                algorithm_checks(EdDsa, key, token_alg, signature, signed_data)
            }
            (KeyMaterial::Hmac(secret), JwsAlgorithm::Hs256) => {
                let key = Hs256Key::new(secret);
                algorithm_checks(Hs256, &key, token_alg, signature, signed_data)
            }
            (KeyMaterial::Hmac(secret), JwsAlgorithm::Hs384) => {
                let key = Hs384Key::new(secret);
                algorithm_checks(Hs384, &key, token_alg, signature, signed_data)
            }
            (KeyMaterial::Hmac(secret), JwsAlgorithm::Hs512) => {
                let key = Hs512Key::new(secret);
                algorithm_checks(Hs512, &key, token_alg, signature, signed_data)
            }
            _ => false,
        }
    }
}

/// One jwt-compact algorithm's check: the token names exactly this algorithm, the signature has the
/// algorithm's length and form, and it verifies over `signed_data` with `key`.
fn algorithm_checks<A: Algorithm>(
    algorithm: A,
    key: &A::VerifyingKey,
    token_alg: &str,
    signature: &[u8],
    signed_data: &[u8],
) -> bool {
    if algorithm.name() != token_alg {
        return false;
    }
    if A::Signature::LENGTH.is_some_and(|length| length.get() != signature.len()) {
        return false;
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => algorithm.verify_signature(&signature, key, signed_data),
        Err(_) => false,
    }
}
