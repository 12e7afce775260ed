//! A DPoP proof's own key (the `jwk` of its header): read as a public key, its RFC 7638 thumbprint, and
//! the signature check.
//!
//! Proof keys are client keys, as many as there are clients, and each is used for one request here: no
//! per-key precomputation (the comb tables of `crypto::ecdsa`'s `P256Key` / `P384Key` / `P521Key`) is
//! ever built for them. P-256, P-384 and P-521 verify with `verify_without_table`: u₁·G from the VM's
//! shared table of G, u₂·Q by a window over the signature's own multiples of Q (an ES256 proof about
//! 0.35 ms in V8 with its parse, about 1.1 ms with RustCrypto's `VerifyingKey::verify`); Ed25519 and
//! RSA through [`KeyMaterial`], whose keys of those kinds carry no tables.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crypto::algorithm::JwsAlgorithm;
use crate::crypto::ecdsa::{p256_key, p384_key, p521_key, P256Key, P384Key, P521Key};
use crate::crypto::eddsa::ed25519_key;
use crate::crypto::key::KeyMaterial;
use crate::crypto::rsa::PreparedRsaKey;

/// RSA proof keys below this size are refused (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof's public key, parsed for one signature check.
pub enum ProofKey {
    P256(P256Key),
    P384(P384Key),
    P521(P521Key),
    /// Ed25519 or RSA.
    Material(KeyMaterial),
}

/// Why a `jwk` is not a usable proof key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// It carries private parts: the client leaked its key, or the proof is a confused one.
    Private,
    /// Not a public key of a kind and curve `alg` uses, or not a valid point / modulus.
    Unusable,
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

fn decoded(jwk: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(member(jwk, name)?).ok()
}

impl ProofKey {
    /// The key `jwk` holds, for `alg`: `kty`/`crv` must be the ones `alg` uses (the algorithm comes from
    /// the configuration's list, the key must fit it).
    pub fn from_jwk(jwk: &Map<String, Value>, alg: JwsAlgorithm) -> Result<ProofKey, KeyRefusal> {
        if PRIVATE_MEMBERS.iter().any(|name| jwk.contains_key(*name)) {
            return Err(KeyRefusal::Private);
        }
        let kty = member(jwk, "kty");
        let crv = member(jwk, "crv");
        let key = match (alg, kty, crv) {
            // The JWK parsers of key sets (the point checked to be on the curve); the keys' comb tables
            // are never built here (`verify_without_table`).
            (JwsAlgorithm::Es256, Some("EC"), Some("P-256")) => {
                match (decoded(jwk, "x"), decoded(jwk, "y")) {
                    (Some(x), Some(y)) => p256_key(&x, &y).map(ProofKey::P256),
                    _ => None,
                }
            }
            (JwsAlgorithm::Es384, Some("EC"), Some("P-384")) => {
                match (decoded(jwk, "x"), decoded(jwk, "y")) {
                    (Some(x), Some(y)) => p384_key(&x, &y).map(ProofKey::P384),
                    _ => None,
                }
            }
            (JwsAlgorithm::Es512, Some("EC"), Some("P-521")) => {
                match (decoded(jwk, "x"), decoded(jwk, "y")) {
                    (Some(x), Some(y)) => p521_key(&x, &y).map(ProofKey::P521),
                    _ => None,
                }
            }
            (JwsAlgorithm::EdDsa, Some("OKP"), Some("Ed25519")) => decoded(jwk, "x")
                .and_then(|x| ed25519_key(&x))
                .map(|key| ProofKey::Material(KeyMaterial::Ed25519(key))),
            (
                JwsAlgorithm::Rs256
                | JwsAlgorithm::Rs384
                | JwsAlgorithm::Rs512
                | JwsAlgorithm::Ps256
                | JwsAlgorithm::Ps384
                | JwsAlgorithm::Ps512,
                Some("RSA"),
                _,
            ) => {
                let modulus = decoded(jwk, "n");
                let exponent = decoded(jwk, "e").filter(|e| !e.is_empty() && e.len() <= 4);
                match (modulus, exponent) {
                    (Some(n), Some(e)) => {
                        let exponent = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                        PreparedRsaKey::new(&n, exponent)
                            .filter(|key| key.modulus_bits() >= MIN_RSA_BITS)
                            .map(|key| ProofKey::Material(KeyMaterial::Rsa(key)))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        key.ok_or(KeyRefusal::Unusable)
    }

    /// Whether `signature` (JOSE form) signs `signed_data` (`header.payload` as received) under `alg`.
    pub fn verifies(&self, alg: JwsAlgorithm, signature: &[u8], signed_data: &[u8]) -> bool {
        match self {
            ProofKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_without_table(signed_data, &sig)),
            ProofKey::P384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_without_table(signed_data, &sig)),
            ProofKey::P521(key) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_without_table(signed_data, &sig)),
            ProofKey::Material(material) => {
                material.verifies(alg, alg.name(), signature, signed_data)
            }
        }
    }
}

/// The RFC 7638 JWK SHA-256 thumbprint, base64url: SHA-256 over the key's required members only, in
/// lexicographic order, without whitespace. `None` for a key type without required members defined here
/// or with a required member that is not a string.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let required: &[&str] = match member(jwk, "kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (index, name) in required.iter().enumerate() {
        if index > 0 {
            canonical.push(',');
        }
        // serde_json writes a string with JSON's escapes, as RFC 7638 §3 asks (members are ASCII anyway).
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(member(jwk, name)?).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}
