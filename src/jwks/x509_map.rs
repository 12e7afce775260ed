//! The X.509 certificate map form of a key set: `{"<kid>": "-----BEGIN CERTIFICATE-----\n…"}`, as Google
//! service accounts and Firebase publish their keys. jwt_authn (jwt_verify_lib's jwks.cc) reads it as a
//! JWKS; so does this filter, with the same rules:
//! - the form is recognised only when the document has no `keys`, has at least one member, and every
//!   member has a non-empty name and a string value that starts with `-----BEGIN CERTIFICATE-----\n` and
//!   ends with `\n-----END CERTIFICATE-----\n`; anything else is read (and refused) as a JWKS;
//! - each member's name is its key's `kid`; the key has no `alg`, so it verifies every algorithm its type
//!   serves;
//! - one certificate that does not parse or whose key cannot be used refuses the whole map (jwt_authn
//!   stops at the first bad certificate and keeps none), where a JWK set only skips a bad key;
//! - nothing of the certificate but its public key is used: neither its validity period nor its issuer
//!   nor its signature is checked. The certificates are only a wrapping for the keys (Google's are
//!   self-signed); the publisher vouches for them by serving them over HTTPS, as for a JWK set.
//!
//! The certificate is read with RustCrypto's DER reader and SubjectPublicKeyInfo: its frame
//! (certificate, tbsCertificate, the fields before the key) is checked to be RFC 5280's, the key is
//! decoded, and the rest is only checked to be well-formed DER.
//!
//! One deliberate difference: jwt_authn takes only RSA keys from certificates and refuses the map for any
//! other; this filter also takes the EC (P-256, P-384, P-521) and Ed25519 keys its JWK form reads.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};
use spki::der::asn1::{AnyRef, BitStringRef, UintRef};
use spki::der::{Decode as _, Reader as _, SliceReader, Tag, TagNumber, Tagged as _};
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};

const BEGIN: &str = "-----BEGIN CERTIFICATE-----\n";
const END: &str = "\n-----END CERTIFICATE-----\n";

/// rsaEncryption (RFC 8017 A.1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (RFC 5480 2.1.1), with the curve as its parameter.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
/// id-Ed25519 (RFC 8410 3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The public key of a certificate, as the parts a JWK of the same key would carry (big-endian).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// `crv` by its JWK name: P-256, P-384 or P-521.
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// The document's `(kid, certificate)` members when it is a certificate map by jwt_verify_lib's test
/// (see the module comment); `None` when it is not one.
pub fn certificate_map(document: &[u8]) -> Option<Vec<(String, String)>> {
    let members: Map<String, Value> = serde_json::from_slice(document).ok()?;
    if members.is_empty() || members.contains_key("keys") {
        return None;
    }
    members
        .into_iter()
        .map(|(kid, value)| match value {
            Value::String(pem)
                if !kid.is_empty() && pem.starts_with(BEGIN) && pem.ends_with(END) =>
            {
                Some((kid, pem))
            }
            _ => None,
        })
        .collect()
}

/// The public key of the first certificate in `pem`, or why it cannot be had.
pub fn certificate_key(pem: &str) -> Result<CertificateKey, String> {
    let der = pem_body(pem)?;
    let spki = subject_public_key_info(&der).map_err(|_| "not an X.509 certificate".to_string())?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or("its subjectPublicKey is not a whole number of bytes")?;
    let algorithm = spki.algorithm.oid;
    if algorithm == RSA_ENCRYPTION {
        let (n, e) = rsa_public_key(key_bytes)
            .map_err(|_| "its RSA key is not an RSAPublicKey".to_string())?;
        return Ok(CertificateKey::Rsa { n, e });
    }
    if algorithm == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .ok()
            .ok_or("its EC key has no named curve")?;
        let (crv, size) = match curve {
            c if c == SECP256R1 => ("P-256", 32),
            c if c == SECP384R1 => ("P-384", 48),
            c if c == SECP521R1 => ("P-521", 66),
            other => {
                return Err(format!(
                    "its EC key is on curve {other}, not P-256, P-384 or P-521"
                ))
            }
        };
        // SEC 1 2.3.3: 0x04, then x and y at the curve's size (issuers publish uncompressed points).
        return match key_bytes.split_first() {
            Some((0x04, point)) if point.len() == 2 * size => {
                let (x, y) = point.split_at(size);
                Ok(CertificateKey::Ec {
                    crv,
                    x: x.to_vec(),
                    y: y.to_vec(),
                })
            }
            _ => Err(format!("its EC key is not an uncompressed {crv} point")),
        };
    }
    if algorithm == ED25519 {
        return Ok(CertificateKey::Ed25519 {
            x: key_bytes.to_vec(),
        });
    }
    Err(format!(
        "its key type {algorithm} is not RSA, EC (P-256, P-384, P-521) or Ed25519"
    ))
}

/// The DER of the first certificate in `pem` (BEGIN line, base64 lines, END line). White space inside
/// the base64 is dropped, as OpenSSL and BoringSSL drop it.
fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    let body = pem
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.split_once("-----END CERTIFICATE-----"))
        .map(|(body, _)| body)
        .ok_or("not PEM")?;
    let base64: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD
        .decode(base64)
        .map_err(|_| "not PEM (its body is not base64)".to_string())
}

/// The subjectPublicKeyInfo of the DER certificate `der` (RFC 5280 4.1): the certificate's outer
/// structure and the tbsCertificate fields before the key are checked to be what RFC 5280 puts there;
/// what follows the key (unique ids, extensions) is only checked to be well-formed DER. Nothing else of
/// the certificate is used, so nothing else is decoded.
fn subject_public_key_info(der: &[u8]) -> spki::der::Result<SubjectPublicKeyInfoRef<'_>> {
    let mut reader = SliceReader::new(der)?;
    let spki = reader.sequence(|certificate| {
        let spki = certificate.sequence(|tbs| {
            // version [0] EXPLICIT, absent for v1.
            if tbs.peek_tag()?
                == (Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber::N0,
                })
            {
                AnyRef::decode(tbs)?;
            }
            // serialNumber (any INTEGER: real certificates carry negative and zero serials).
            AnyRef::decode(tbs)?.tag().assert_eq(Tag::Integer)?;
            AlgorithmIdentifierRef::decode(tbs)?; // signature
            for _ in 0..3 {
                // issuer, validity, subject
                AnyRef::decode(tbs)?.tag().assert_eq(Tag::Sequence)?;
            }
            let spki = SubjectPublicKeyInfoRef::decode(tbs)?;
            while !tbs.is_finished() {
                AnyRef::decode(tbs)?;
            }
            Ok(spki)
        })?;
        AlgorithmIdentifierRef::decode(certificate)?; // signatureAlgorithm
        BitStringRef::decode(certificate)?; // signatureValue
        Ok(spki)
    })?;
    reader.finish(spki)
}

/// RSAPublicKey (RFC 8017 A.1.1): the modulus and public exponent, big-endian.
fn rsa_public_key(der: &[u8]) -> spki::der::Result<(Vec<u8>, Vec<u8>)> {
    let mut reader = SliceReader::new(der)?;
    let key = reader.sequence(|fields| {
        let n = UintRef::decode(fields)?;
        let e = UintRef::decode(fields)?;
        Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
    })?;
    reader.finish(key)
}
