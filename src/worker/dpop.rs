//! The DPoP checks that need the whole Envoy process: a proof's `jti` is accepted once per window, in
//! a replay cache in shared data (so a replay to another worker of the same Envoy is caught), and a
//! provider that asks for server nonces accepts only those issued with the process's secret (also in
//! shared data, so every worker issues and accepts the same nonces). The stateless checks ran before,
//! on the request path (`request/dpop/`).
//!
//! The limit that remains: the cache is per Envoy process. Behind several proxies a proof can be
//! replayed to another proxy within its window; short windows or server nonces narrow that.

use crate::config::dpop::NONCE_FILTER_STATE;
use crate::config::FilterConfig;
use crate::request::authenticator::Verdict;
use crate::request::dpop::nonce::{accepted_nonce, issue_nonce, AcceptedNonce};
use crate::request::dpop::replay::{insert, Insert, ReplayLayout};
use crate::request::dpop::ProofRecord;
use crate::request::reply::{refusal, Failure};
use crate::verify::dpop_error::DpopError;
use crate::verify::error::AuthError;
use crate::worker::host::{Host, SharedDataError};

/// Shared-data key of the per-process nonce secret.
pub const NONCE_SECRET_KEY: &str = "jwt_authn_wasm.dpop.nonce_secret";
/// Compare-and-swap attempts on one bucket before giving up (refusing).
const CAS_ATTEMPTS: usize = 16;

/// Checks the nonces and records the `jti`s of the verdict's DPoP proofs; a replay, a missing or stale
/// nonce, or a replay cache that cannot answer turns an allowed request into a refusal (a report-only
/// provider's only into a `would_deny`). `now_ms` is the host's clock.
pub fn check_proofs(
    host: &dyn Host,
    config: &FilterConfig,
    verdict: Verdict,
    now_ms: u64,
) -> Verdict {
    let Verdict::Allow(mut mutations) = verdict else {
        return verdict;
    };
    if mutations.dpop_proofs.is_empty() {
        return Verdict::Allow(mutations);
    }
    let now = now_ms / 1000;
    for record in std::mem::take(&mut mutations.dpop_proofs) {
        let Some(provider) = config.providers.get(record.provider) else {
            continue;
        };
        let Some(dpop) = &provider.dpop else {
            continue;
        };
        let outcome = match dpop.nonce_lifetime_seconds {
            Some(lifetime) => check_nonce(host, &record, lifetime, now),
            None => Ok(None),
        }
        .and_then(|next| {
            remember_jti(host, &record, dpop.replay_cache_size, now)?;
            Ok(next)
        });
        let (error, fresh_nonce) = match outcome {
            Ok(next) => {
                if let Some(next) = next {
                    offer_next_nonce(&mut mutations.filter_state, next);
                }
                continue;
            }
            Err(refusal) => refusal,
        };
        if provider.report_only {
            mutations.would_deny.push(error.reason());
            continue;
        }
        // The replay and nonce refusals come after the rule was left behind: its resource_metadata
        // came along in the mutations. (A DPoP challenge names no realm.)
        let mut reply = refusal(
            config,
            Failure::Auth(AuthError::Dpop(error)),
            "",
            mutations.resource_metadata.as_deref(),
        );
        reply.dpop_nonce = fresh_nonce;
        return Verdict::Deny(reply);
    }
    Verdict::Allow(mutations)
}

type Refusal = (DpopError, Option<String>);

/// The proof's nonce must be one this process issued in the current slot or the one before; otherwise
/// the refusal carries a fresh one. One from the slot before passes with the current slot's nonce
/// (`Ok(Some)`), to offer the client before its own goes stale.
fn check_nonce(
    host: &dyn Host,
    record: &ProofRecord,
    lifetime: u64,
    now: u64,
) -> Result<Option<String>, Refusal> {
    let Some(secret) = nonce_secret(host) else {
        return Err((DpopError::ReplayCacheUnavailable, None));
    };
    let accepted = record
        .nonce
        .as_deref()
        .and_then(|nonce| accepted_nonce(&secret, lifetime, now, nonce));
    match accepted {
        Some(AcceptedNonce::Current) => Ok(None),
        Some(AcceptedNonce::Previous) => Ok(Some(issue_nonce(&secret, lifetime, now))),
        None => Err((
            DpopError::NonceRequired,
            Some(issue_nonce(&secret, lifetime, now)),
        )),
    }
}

/// Puts `nonce` in the filter state `wasm.dpop_nonce` for the response (once: with two DPoP providers
/// admitting the request the first offer stands; both come from the one process secret and slot unless
/// their lifetimes differ, and either keeps the client going).
fn offer_next_nonce(filter_state: &mut Vec<(String, String)>, nonce: String) {
    if filter_state
        .iter()
        .all(|(name, _)| name != NONCE_FILTER_STATE)
    {
        filter_state.push((NONCE_FILTER_STATE.to_string(), nonce));
    }
}

/// The process's nonce secret, made by the first worker that needs it. Two workers may race to make
/// it (a compare-and-swap on a key that does not exist yet is not enforced): each uses what the store
/// holds after its write, so at worst a nonce issued in the race is refused once, with a new one.
pub fn nonce_secret(host: &dyn Host) -> Option<Vec<u8>> {
    if let Ok((Some(secret), _)) = host.get_shared_data(NONCE_SECRET_KEY) {
        if secret.len() == 32 {
            return Some(secret);
        }
    }
    let fresh = random_secret(host.now_ms());
    host.set_shared_data(NONCE_SECRET_KEY, &fresh, None).ok()?;
    match host.get_shared_data(NONCE_SECRET_KEY) {
        Ok((Some(secret), _)) if secret.len() == 32 => Some(secret),
        _ => None,
    }
}

/// 32 bytes from the host's randomness: std's `RandomState` keys come from WASI `random_get` on
/// wasm32-wasip1 (the OS on a host build); hashed with the clock so the secret is not the keys.
fn random_secret(now_ms: u64) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = Sha256::new();
    hasher.update(now_ms.to_be_bytes());
    for round in 0u64..4 {
        let mut sip = std::collections::hash_map::RandomState::new().build_hasher();
        sip.write_u64(round);
        hasher.update(sip.finish().to_be_bytes());
    }
    hasher.finalize().to_vec()
}

/// Records the proof's key in its bucket with compare-and-swap; a key already there is a replay.
fn remember_jti(
    host: &dyn Host,
    record: &ProofRecord,
    capacity: usize,
    now: u64,
) -> Result<(), Refusal> {
    let layout = ReplayLayout::for_capacity(capacity);
    let key = layout.bucket_key(&record.replay_key);
    let unavailable = (DpopError::ReplayCacheUnavailable, None);
    for _ in 0..CAS_ATTEMPTS {
        let (value, cas) = host
            .get_shared_data(&key)
            .map_err(|_| unavailable.clone())?;
        let Some(cas) = cas else {
            // The bucket does not exist. No compare-and-swap is enforced on a key that does not exist, so
            // two workers could each write their own entry and one be lost: create it empty with a token
            // no existing key has (Envoy counts tokens up from 1), which fails if another worker created
            // it meanwhile, then insert with compare-and-swap.
            match host.set_shared_data(&key, &[], Some(u32::MAX)) {
                Ok(()) | Err(SharedDataError::CasMismatch) => continue,
                Err(SharedDataError::Refused) => return Err(unavailable),
            }
        };
        let bucket = value.unwrap_or_default();
        match insert(
            &bucket,
            &record.replay_key,
            record.keep_until,
            now,
            layout.per_bucket,
        ) {
            Insert::Replayed => return Err((DpopError::ProofReplayed, None)),
            Insert::Full => return Err(unavailable),
            Insert::Updated(updated) => match host.set_shared_data(&key, &updated, Some(cas)) {
                Ok(()) => return Ok(()),
                Err(SharedDataError::CasMismatch) => continue,
                Err(SharedDataError::Refused) => return Err(unavailable),
            },
        }
    }
    Err(unavailable)
}
