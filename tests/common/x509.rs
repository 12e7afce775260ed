//! X.509 certificates for the fixture keys, in the certificate map form Google service accounts and
//! Firebase publish (`{"<kid>": "-----BEGIN CERTIFICATE-----\n…"}`): real DER certificates made by rcgen,
//! signed by a throwaway P-256 issuer (nobody checks that signature: the map is only a wrapping for keys).

use base64::Engine as _;
use rcgen::{
    date_time_ymd, CertificateParams, DnType, Issuer, KeyPair, PublicKeyData, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
};
use rsa::pkcs1::EncodeRsaPublicKey as _;

use crate::common::fixtures::{EcKeys, TestKey};

/// A subject public key: its algorithm (rcgen writes the SubjectPublicKeyInfo algorithm from it) and
/// its subjectPublicKey bits.
pub struct SubjectKey {
    pub algorithm: &'static SignatureAlgorithm,
    pub bits: Vec<u8>,
}

impl PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl SubjectKey {
    /// An RSA fixture key (rsaEncryption, RSAPublicKey).
    pub fn rsa(key: &TestKey) -> SubjectKey {
        let der = key
            .private
            .to_public_key()
            .to_pkcs1_der()
            .expect("RSAPublicKey encodes");
        SubjectKey {
            algorithm: &PKCS_RSA_SHA256,
            bits: der.as_bytes().to_vec(),
        }
    }

    /// The P-256 fixture key (kid "kp256" in the JWKS), an uncompressed point.
    pub fn p256(keys: &EcKeys) -> SubjectKey {
        SubjectKey {
            algorithm: &PKCS_ECDSA_P256_SHA256,
            bits: keys
                .p256
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// The P-384 fixture key.
    pub fn p384(keys: &EcKeys) -> SubjectKey {
        SubjectKey {
            algorithm: &PKCS_ECDSA_P384_SHA384,
            bits: keys
                .p384
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// The Ed25519 fixture key.
    pub fn ed25519(keys: &EcKeys) -> SubjectKey {
        SubjectKey {
            algorithm: &PKCS_ED25519,
            bits: keys.ed25519.verifying_key().as_bytes().to_vec(),
        }
    }
}

/// A certificate for `key` valid from `not_before` to `not_after` (year, month, day), as PEM.
pub fn certificate_pem(
    key: &SubjectKey,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> String {
    let issuer_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("issuer key");
    let mut issuer_params = CertificateParams::new(Vec::new()).expect("issuer params");
    issuer_params
        .distinguished_name
        .push(DnType::CommonName, "securetoken.test");
    let issuer = Issuer::new(issuer_params, issuer_key);
    let mut params = CertificateParams::new(Vec::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "securetoken.test");
    params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    params
        .signed_by(key, &issuer)
        .expect("certificate signs")
        .pem()
}

/// A current certificate for the fixture P-521 key (kid "kp521"). rcgen's ring backend has no P-521
/// algorithm to name the key with, so the certificate is written for a P-384 key holding the P-521
/// point, and the curve OID (in the SubjectPublicKeyInfo; the issuer is P-256) is then changed from
/// secp384r1 to secp521r1.
pub fn p521_certificate_pem(keys: &EcKeys) -> String {
    const SECP384R1: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    const SECP521R1: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
    let key = SubjectKey {
        algorithm: &PKCS_ECDSA_P384_SHA384,
        bits: p521::ecdsa::VerifyingKey::from(&keys.p521)
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
    };
    with_bytes_swapped(&current_certificate_pem(&key), &SECP384R1, &SECP521R1)
}

/// The certificate `pem` with the one occurrence of the DER bytes `from` (an OID, say) replaced by
/// `to`, of the same length so that every DER length stays right, as PEM again. That breaks the issuer's
/// signature, which nobody checks (jwt_authn neither: the map is only a wrapping for keys), so the
/// result is what a publisher could serve.
pub fn with_bytes_swapped(pem: &str, from: &[u8], to: &[u8]) -> String {
    assert_eq!(from.len(), to.len(), "a swap keeps the length");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("a PEM body");
    let at: Vec<usize> = der
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the bytes to swap occur once");
    der[at[0]..at[0] + to.len()].copy_from_slice(to);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&der);
    // 64-character lines, as PEM writers wrap.
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// A certificate for `key` valid now (for ten years from 2025).
pub fn current_certificate_pem(key: &SubjectKey) -> String {
    certificate_pem(key, (2025, 1, 1), (2035, 1, 1))
}
