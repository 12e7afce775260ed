//! Certificate-bound tokens (RFC 8705 §3): a provider with `certificate_bound` admits a token only when
//! its `cnf.x5t#S256` is the base64url SHA-256 of the client certificate's DER, so a stolen token is
//! useless without the client's private key.
//!
//! Envoy never hands a filter the certificate itself, only its digest, as lowercase hex: in
//! `connection.sha256_peer_certificate_digest` (Envoy terminated the TLS), and in the `Hash=` field of
//! `x-forwarded-client-cert` (a hop in front of Envoy did). Both are SHA-256 over the DER, the same bytes
//! `x5t#S256` hashes, so the hex digest re-encoded as unpadded base64url is the thumbprint to compare.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::config::cert_binding::{BindingMode, CertificateBinding, CertificateSource};
use crate::request::headers::{HeaderPair, RequestHeaders};
use crate::verify::error::AuthError;
use crate::verify::Claims;

/// The header a TLS-terminating proxy describes the client certificate in (Envoy's format).
pub const XFCC_HEADER: &str = "x-forwarded-client-cert";

/// A SHA-256 digest is 32 bytes.
const SHA256_BYTES: usize = 32;

/// The `x5t#S256` thumbprint (RFC 8705 §3.1: unpadded base64url of the SHA-256 of the DER) of the
/// certificate whose SHA-256 Envoy gives as `hex`. Either case is taken (Envoy writes lowercase);
/// `None` unless `hex` is exactly 64 hex digits.
pub fn thumbprint_from_hex(hex: &[u8]) -> Option<String> {
    if hex.len() != SHA256_BYTES * 2 {
        return None;
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut digest = [0u8; SHA256_BYTES];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (pair.first().copied()?, pair.get(1).copied()?);
        *byte = (nibble(high)? << 4) | nibble(low)?;
    }
    Some(URL_SAFE_NO_PAD.encode(digest))
}

/// One element of `x-forwarded-client-cert` (one certificate): its `(key, value)` pairs, in order.
pub type XfccElement = Vec<(Vec<u8>, Vec<u8>)>;

/// The elements of an `x-forwarded-client-cert` value, each as its `(key, value)` pairs, values
/// unquoted. Elements are separated by `,`, pairs by `;`, key from value by the first `=`; a value in
/// double quotes may hold `,`, `;` and `=`, and `\"` for a quote (Envoy quotes Subject and any value
/// with those characters). `None` for an unterminated quote.
pub fn xfcc_elements(value: &[u8]) -> Option<Vec<XfccElement>> {
    let mut elements = Vec::new();
    let mut pairs: XfccElement = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    let mut text = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let end_pair = |key: &mut Option<Vec<u8>>, text: &mut Vec<u8>, pairs: &mut XfccElement| {
        let pair = match key.take() {
            Some(key) => (key, std::mem::take(text)),
            None => (std::mem::take(text), Vec::new()),
        };
        if !pair.0.trim_ascii().is_empty() {
            pairs.push((pair.0.trim_ascii().to_vec(), pair.1));
        }
    };
    for &byte in value {
        if quoted {
            match (escaped, byte) {
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {
                    escaped = false;
                    text.push(byte);
                }
            }
            continue;
        }
        match byte {
            b'"' => quoted = true,
            b'=' if key.is_none() => key = Some(std::mem::take(&mut text)),
            b';' => end_pair(&mut key, &mut text, &mut pairs),
            b',' => {
                end_pair(&mut key, &mut text, &mut pairs);
                elements.push(std::mem::take(&mut pairs));
            }
            // Whitespace around a separator (`a=1, b=2`) is not part of a value.
            b' ' | b'\t' if text.is_empty() => {}
            _ => text.push(byte),
        }
    }
    if quoted {
        return None;
    }
    end_pair(&mut key, &mut text, &mut pairs);
    elements.push(pairs);
    Some(elements)
}

/// The `Hash=` of the last element of the request's `x-forwarded-client-cert`: the element the
/// nearest hop wrote (a proxy appends its client's element at the end; anything before it came from
/// further out, possibly from the client itself). `None` when there is no such header, when there are
/// several header lines (an append could have gone to either, so which one is last is not known), or
/// when the last element has no well-formed `Hash`.
pub fn xfcc_hash(headers: &[HeaderPair<'_>]) -> Option<String> {
    let values = headers.values(XFCC_HEADER);
    let [value] = values.as_slice() else {
        return None;
    };
    let elements = xfcc_elements(value)?;
    let last = elements.last()?;
    let mut hashes = last
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(b"hash"));
    match (hashes.next(), hashes.next()) {
        (Some((_, hash)), None) => thumbprint_from_hex(hash.trim_ascii()),
        _ => None,
    }
}

/// The thumbprint of the client certificate the request presents through `source`: from the
/// connection's digest (`peer_certificate_digest`, as the host gave it), or from the headers.
pub fn presented_thumbprint(
    source: CertificateSource,
    peer_certificate_digest: Option<&[u8]>,
    headers: &[HeaderPair<'_>],
) -> Option<String> {
    match source {
        // A TLS connection without a client certificate gives an empty digest.
        CertificateSource::Connection => peer_certificate_digest.and_then(thumbprint_from_hex),
        CertificateSource::ForwardedClientCert => xfcc_hash(headers),
    }
}

/// Whether a token with `payload` is bound to the certificate the request presents (`presented`,
/// from [`presented_thumbprint`]), as `binding` requires.
pub fn check_binding(
    binding: &CertificateBinding,
    payload: &Claims,
    presented: Option<&str>,
) -> Result<(), AuthError> {
    let bound = match payload.get("cnf") {
        None => None,
        Some(Value::Object(cnf)) => match cnf.get("x5t#S256") {
            None => None,
            Some(Value::String(thumbprint)) => Some(thumbprint.as_str()),
            Some(_) => return Err(AuthError::CertificateBindingMissing),
        },
        Some(_) => return Err(AuthError::CertificateBindingMissing),
    };
    match (bound, binding.mode) {
        (None, BindingMode::Optional) => Ok(()),
        (None, BindingMode::Required) => Err(AuthError::CertificateBindingMissing),
        (Some(bound), _) => match presented {
            None => Err(AuthError::ClientCertificateMissing),
            // The thumbprint is no secret (it is in the token and in every TLS handshake), so a plain
            // comparison leaks nothing.
            Some(presented) if presented == bound => Ok(()),
            Some(_) => Err(AuthError::ClientCertificateMismatch),
        },
    }
}
