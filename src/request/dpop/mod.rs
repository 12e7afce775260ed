//! DPoP (RFC 9449) on the request path: a DPoP provider's tokens are bound to the client's key, and each
//! request proves possession of it with a `DPoP` header. Checked on every request, cached token or not:
//! the verified-token cache may skip the access token's signature, never the proof, which is per request.
//!
//! - [`proof`]: the proof's JWS, header, signature and claims (RFC 9449 §4.3);
//! - [`proof_key`]: the proof's `jwk` as a public key, and its RFC 7638 thumbprint;
//! - [`htu`]: the URI comparison (RFC 3986 §6 normalisation);
//! - [`nonce`]: stateless server nonces (§8);
//! - [`replay`]: the `jti` replay cache's records in shared data.
//!
//! What this module decides needs no host: a proof that passes here becomes a [`ProofRecord`] on the
//! admitted token, and the worker (`worker/dpop.rs`) checks its nonce and records its `jti` in the
//! process-wide replay cache before the request goes on.

pub(crate) mod htu;
pub(crate) mod nonce;
pub(crate) mod proof;
pub(crate) mod proof_key;
pub(crate) mod replay;

pub use htu::{normalize_htu, request_htu};
pub use proof::{check_proof, CheckedProof, ProofContext};
pub use proof_key::thumbprint;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::dpop::{DpopConfig, DpopMode};
use crate::config::{FilterConfig, ProviderId};
use crate::request::candidates::RequestTokens;
use crate::request::evaluation::{Candidate, CandidateState};
use crate::request::extract::TokenSource;
use crate::request::headers::{HeaderPair, RequestHeaders};
use crate::verify::dpop_error::DpopError;
use crate::verify::error::AuthError;
use crate::verify::Claims;

/// A proof that passed the stateless checks, to be checked for replay (and its nonce) by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRecord {
    pub provider: ProviderId,
    /// The replay cache's key: SHA-256 over provider, proof key thumbprint and `jti`, first 16 bytes.
    pub replay_key: [u8; 16],
    /// Unix seconds after which the proof's `iat` is out of the window anyway, so the key can go.
    pub keep_until: u64,
    /// The proof's `nonce` claim.
    pub nonce: Option<String>,
}

/// Checks the DPoP binding of every candidate of a DPoP provider that is still in the running (cached
/// or claim-checked): a failing one becomes `Failed`, a passing DPoP-scheme one gets its [`ProofRecord`].
pub(super) fn check_candidates(
    config: &FilterConfig,
    tokens: &RequestTokens,
    candidates: &mut [Candidate],
    headers: &[HeaderPair<'_>],
    now: u64,
) {
    for candidate in candidates.iter_mut() {
        let Some(provider_id) = candidate.provider else {
            continue;
        };
        let Some(dpop) = config
            .providers
            .get(provider_id)
            .and_then(|p| p.dpop.as_ref())
        else {
            continue;
        };
        let payload = match &candidate.state {
            CandidateState::Failed(_) => continue,
            // Its signature is checked before it is admitted, so the cnf.jkt compared here is the signed one.
            CandidateState::Unsigned(checked) => checked.unverified_payload(),
            CandidateState::Verified(verified) => verified.payload(),
        };
        let name = config
            .providers
            .get(provider_id)
            .map_or("", |p| p.name.as_str());
        let raw = tokens.raw(candidate.found);
        let source = tokens.source(candidate.found);
        match check_binding(dpop, name, payload, raw, source, headers, now) {
            Ok(record) => {
                candidate.proof = record.map(|mut record| {
                    record.provider = provider_id;
                    record
                });
            }
            Err(error) => candidate.state = CandidateState::Failed(AuthError::Dpop(error)),
        }
    }
}

/// One token's binding: `Ok(None)` for a Bearer token `optional` mode lets through, `Ok(Some)` for a
/// DPoP-scheme token whose proof passed.
fn check_binding(
    dpop: &DpopConfig,
    provider_name: &str,
    payload: &Claims,
    raw: &[u8],
    source: Option<&TokenSource>,
    headers: &[HeaderPair<'_>],
    now: u64,
) -> Result<Option<ProofRecord>, DpopError> {
    let jkt = payload
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str);
    if !sent_with_dpop_scheme(raw, source, headers) {
        return match (jkt, dpop.mode) {
            (Some(_), _) => Err(DpopError::BoundTokenAsBearer),
            (None, DpopMode::Required) => Err(DpopError::SchemeRequired),
            (None, DpopMode::Optional) => Ok(None),
        };
    }
    let jkt = jkt.ok_or(DpopError::TokenNotBound)?;
    let proof = single_proof(headers)?;
    let first = |name: &str| headers.values(name).first().copied().unwrap_or_default();
    let path = first(":path");
    let htu = htu::request_htu(first(":scheme"), first(":authority"), path);
    let context = ProofContext {
        method: first(":method"),
        htu: htu.as_deref(),
        access_token: raw,
        now,
    };
    let checked = check_proof(proof, dpop, &context)?;
    if checked.jkt != jkt {
        return Err(DpopError::KeyBinding);
    }
    let mut hasher = Sha256::new();
    for part in [provider_name, checked.jkt.as_str(), checked.jti.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut replay_key = [0u8; 16];
    for (slot, byte) in replay_key.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    Ok(Some(ProofRecord {
        provider: 0,
        replay_key,
        keep_until: checked
            .iat
            .saturating_add(dpop.max_proof_age_seconds)
            .saturating_add(dpop.clock_skew_seconds.saturating_mul(2)),
        nonce: checked.nonce,
    }))
}

/// Whether the token came as `Authorization: DPoP <token>`.
fn sent_with_dpop_scheme(
    raw: &[u8],
    source: Option<&TokenSource>,
    headers: &[HeaderPair<'_>],
) -> bool {
    if !matches!(source, Some(TokenSource::Header(name)) if &**name == "authorization") {
        return false;
    }
    headers.values("authorization").iter().any(|value| {
        let value = value.trim_ascii();
        value
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"dpop "))
            && value.ends_with(raw)
    })
}

/// The one `DPoP` header (RFC 9449 §4.3 check 1): none, two, or one holding a list are refused.
fn single_proof<'a>(headers: &'a [HeaderPair<'a>]) -> Result<&'a [u8], DpopError> {
    let values = headers.values("dpop");
    match values.as_slice() {
        [] => Err(DpopError::ProofMissing),
        [value] if value.contains(&b',') => Err(DpopError::ProofMultiple),
        [value] => Ok(value.trim_ascii()),
        _ => Err(DpopError::ProofMultiple),
    }
}
