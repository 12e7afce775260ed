//! One DPoP proof checked against one request and one access token, per RFC 9449 §4.3: the JWS and its
//! header (typ, alg from the provider's list, a public jwk), the signature by that jwk, then the claims
//! (htm, htu, iat window, ath). Replay (jti) and the server nonce need process-wide state and are checked
//! after this, by the worker (`worker/dpop.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::dpop::DpopConfig;
use crate::crypto::algorithm::JwsAlgorithm;
use crate::request::dpop::htu::normalize_htu;
use crate::request::dpop::proof_key::{thumbprint, KeyRefusal, ProofKey};
use crate::verify::dpop_error::DpopError;
use crate::verify::token::compact_segments;

/// Longer proofs are refused before any decoding (a proof with an RSA-4096 jwk is about 1.5 KB).
pub const MAX_PROOF_BYTES: usize = 8192;

/// What a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// `:method`.
    pub method: &'a [u8],
    /// The request's URI, normalised (`None` when the request's own URI does not parse: no htu matches).
    pub htu: Option<&'a str>,
    /// The access token as sent.
    pub access_token: &'a [u8],
    /// Unix seconds.
    pub now: u64,
}

/// A proof that passed every check that needs no process-wide state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    pub jti: String,
    pub iat: u64,
    pub nonce: Option<String>,
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
}

fn json_object(segment: &[u8]) -> Result<Map<String, Value>, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| DpopError::ProofMalformed)?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::ProofMalformed)
}

fn string_claim<'a>(payload: &'a Map<String, Value>, name: &str) -> Result<&'a str, DpopError> {
    payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or(DpopError::ProofClaims)
}

/// Checks `proof` (the `DPoP` header's value) under `config` in `context`.
pub fn check_proof(
    proof: &[u8],
    config: &DpopConfig,
    context: &ProofContext<'_>,
) -> Result<CheckedProof, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::ProofMalformed);
    }
    // A proof is base64url and dots: anything that is not even UTF-8 is malformed.
    let text = std::str::from_utf8(proof).map_err(|_| DpopError::ProofMalformed)?;
    let Some((header_b64, payload_b64, signature_b64)) = compact_segments(text) else {
        return Err(DpopError::ProofMalformed);
    };
    let (header_b64, payload_b64) = (header_b64.as_bytes(), payload_b64.as_bytes());
    let header = json_object(header_b64)?;
    let payload = json_object(payload_b64)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| DpopError::ProofMalformed)?;
    // §4.3 check 4: typ (media types compare without regard to case, RFC 7515 §4.1.9).
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(DpopError::ProofType);
    }
    if header.contains_key("crit") {
        return Err(DpopError::ProofCritical);
    }
    // §4.3 check 5: an asymmetric algorithm from the list (the list holds no `none` and no HMAC).
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(JwsAlgorithm::from_name)
        .filter(|alg| config.allowed_algs.contains(alg))
        .ok_or(DpopError::ProofAlgorithm)?;
    // §4.3 checks 6 and 7: a public key, of the kind alg uses, that verifies the signature.
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(DpopError::ProofKey)?;
    let key = ProofKey::from_jwk(jwk, alg).map_err(|refusal| match refusal {
        KeyRefusal::Private | KeyRefusal::Unusable => DpopError::ProofKey,
    })?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    let signed_data = proof.get(..signed_len).ok_or(DpopError::ProofMalformed)?;
    if !key.verifies(alg, &signature, signed_data) {
        return Err(DpopError::ProofSignature);
    }
    // §4.3 check 3: the claims, with their types.
    let jti = string_claim(&payload, "jti")?;
    let htm = string_claim(&payload, "htm")?;
    let htu = string_claim(&payload, "htu")?;
    let iat = match payload.get("iat") {
        Some(Value::Number(number)) => number
            .as_u64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.0e15)
                    .map(|f| f as u64)
            })
            .ok_or(DpopError::ProofClaims)?,
        _ => return Err(DpopError::ProofClaims),
    };
    if jti.is_empty() || jti.len() > 256 {
        return Err(DpopError::ProofClaims);
    }
    // §4.3 check 8: the method, case-sensitive (RFC 9110 §9.1).
    if htm.as_bytes() != context.method {
        return Err(DpopError::ProofMethod);
    }
    // §4.3 check 9: the URI, without query and fragment, normalised.
    match (normalize_htu(htu), context.htu) {
        (Some(claimed), Some(actual)) if claimed == actual => {}
        _ => return Err(DpopError::ProofUri),
    }
    // §4.3 check 11: iat in [now - max_age - skew, now + skew].
    let earliest = context
        .now
        .saturating_sub(config.max_proof_age_seconds)
        .saturating_sub(config.clock_skew_seconds);
    let latest = context.now.saturating_add(config.clock_skew_seconds);
    if iat < earliest || iat > latest {
        return Err(DpopError::ProofTime);
    }
    // §4.3 check 12 (with an access token): ath = base64url(SHA-256(access token)).
    let expected_ath = URL_SAFE_NO_PAD.encode(Sha256::digest(context.access_token));
    if payload.get("ath").and_then(Value::as_str) != Some(expected_ath.as_str()) {
        return Err(DpopError::ProofAccessTokenHash);
    }
    let nonce = match payload.get("nonce") {
        None => None,
        Some(Value::String(nonce)) => Some(nonce.clone()),
        Some(_) => return Err(DpopError::ProofClaims),
    };
    let jkt = thumbprint(jwk).ok_or(DpopError::ProofKey)?;
    Ok(CheckedProof {
        jti: jti.to_string(),
        iat,
        nonce,
        jkt,
    })
}
