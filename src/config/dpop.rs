//! A provider's `dpop` option: its tokens are sender-constrained with DPoP (RFC 9449). Parsed here,
//! checked per request in `request/dpop/`.
//!
//! ```json
//! "dpop": {"mode": "required", "max_proof_age": "60s", "allowed_algs": ["ES256", "EdDSA"],
//!          "clock_skew": "5s", "nonce": {"lifetime": "300s"}, "replay_cache_size": 10000}
//! ```

use serde::Deserialize;

use crate::config::duration::parse_duration;
use crate::config::{error, ConfigError};
use crate::crypto::algorithm::JwsAlgorithm;

/// How long a proof is accepted after its `iat` when `max_proof_age` is not given.
pub const DEFAULT_MAX_PROOF_AGE_SECONDS: u64 = 60;
/// Leeway for a client clock ahead of or behind the proxy's, when `clock_skew` is not given.
pub const DEFAULT_PROOF_CLOCK_SKEW_SECONDS: u64 = 5;
/// `jti`s remembered per Envoy process when `replay_cache_size` is not given.
pub const DEFAULT_REPLAY_CACHE_SIZE: usize = 10_000;
/// Ceiling for `replay_cache_size`: 24 bytes of shared data per entry.
const MAX_REPLAY_CACHE_SIZE: usize = 1_000_000;
/// Ceiling for `max_proof_age`: a replay window of an hour defeats the purpose.
const MAX_PROOF_AGE_SECONDS: u64 = 3600;
/// The asymmetric algorithms a proof may use when `allowed_algs` is not given.
const DEFAULT_ALGS: [JwsAlgorithm; 4] = [
    JwsAlgorithm::Es256,
    JwsAlgorithm::Es384,
    JwsAlgorithm::EdDsa,
    JwsAlgorithm::Ps256,
];

/// The JSON shape of `dpop`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDpop {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    max_proof_age: Option<String>,
    #[serde(default)]
    allowed_algs: Option<Vec<String>>,
    #[serde(default)]
    clock_skew: Option<String>,
    #[serde(default)]
    nonce: Option<RawDpopNonce>,
    #[serde(default)]
    replay_cache_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDpopNonce {
    #[serde(default)]
    lifetime: Option<String>,
}

/// The filter state (`wasm.dpop_nonce`) that carries a fresh server nonce on an admitted request whose
/// proof used the previous slot's: Envoy's `response_headers_to_add` can send it to the client as
/// `DPoP-Nonce: %FILTER_STATE(wasm.dpop_nonce:PLAIN)%` (RFC 9449 §8.2), which costs no VM entry on
/// the response. Reserved: no provider's `payload_in_filter_state` may take it.
pub const NONCE_FILTER_STATE: &str = "dpop_nonce";

/// Whether the DPoP scheme is required of the provider's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// Every token needs `Authorization: DPoP`, a `cnf.jkt` and a valid proof.
    Required,
    /// A Bearer token without `cnf` also passes; one with `cnf.jkt` sent as Bearer is refused.
    Optional,
}

/// A provider's DPoP settings, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopConfig {
    pub mode: DpopMode,
    /// A proof is accepted for this long after its `iat` (plus `clock_skew_seconds`).
    pub max_proof_age_seconds: u64,
    pub clock_skew_seconds: u64,
    /// Asymmetric algorithms only (HMAC and `none` are refused at configuration time).
    pub allowed_algs: Vec<JwsAlgorithm>,
    /// `allowed_algs` as the challenge's `algs` parameter lists them.
    pub algs_text: String,
    /// Server nonces (§8): a nonce stays valid for one to two lifetimes. `None`: no nonce asked for.
    pub nonce_lifetime_seconds: Option<u64>,
    /// Bound on the `jti`s remembered per Envoy process.
    pub replay_cache_size: usize,
}

/// Compiles `providers.<name>.dpop`; `field` is that path.
pub(super) fn compile_dpop(field: &str, raw: RawDpop) -> Result<DpopConfig, ConfigError> {
    let mode = match raw.mode.as_deref() {
        None | Some("required") => DpopMode::Required,
        Some("optional") => DpopMode::Optional,
        Some(other) => {
            return Err(error(
                format!("{field}.mode"),
                format!(
                    "\"{}\" is not a mode: use \"required\" or \"optional\"",
                    other.escape_debug()
                ),
            ))
        }
    };
    let seconds = |name: &str, text: Option<String>, default: u64| -> Result<u64, ConfigError> {
        match text {
            None => Ok(default),
            Some(text) => parse_duration(&text)
                .map(|d| d.as_secs())
                .map_err(|reason| error(format!("{field}.{name}"), reason)),
        }
    };
    let max_proof_age_seconds = seconds(
        "max_proof_age",
        raw.max_proof_age,
        DEFAULT_MAX_PROOF_AGE_SECONDS,
    )?;
    if max_proof_age_seconds == 0 || max_proof_age_seconds > MAX_PROOF_AGE_SECONDS {
        return Err(error(
            format!("{field}.max_proof_age"),
            format!("must be between 1s and {MAX_PROOF_AGE_SECONDS}s"),
        ));
    }
    let clock_skew_seconds = seconds(
        "clock_skew",
        raw.clock_skew,
        DEFAULT_PROOF_CLOCK_SKEW_SECONDS,
    )?;
    if clock_skew_seconds > MAX_PROOF_AGE_SECONDS {
        return Err(error(
            format!("{field}.clock_skew"),
            format!("must be at most {MAX_PROOF_AGE_SECONDS}s"),
        ));
    }
    let allowed_algs = match raw.allowed_algs {
        None => DEFAULT_ALGS.to_vec(),
        Some(names) if names.is_empty() => {
            return Err(error(
                format!("{field}.allowed_algs"),
                "must list at least one algorithm",
            ))
        }
        Some(names) => {
            let mut algs = Vec::with_capacity(names.len());
            for (index, name) in names.iter().enumerate() {
                let alg = JwsAlgorithm::from_name(name)
                    .filter(|alg| !is_symmetric(*alg))
                    .ok_or_else(|| {
                        error(
                            format!("{field}.allowed_algs[{index}]"),
                            format!(
                                "\"{}\" is not an asymmetric JWS algorithm (RFC 9449 refuses none and HMAC)",
                                name.escape_debug()
                            ),
                        )
                    })?;
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
            algs
        }
    };
    let nonce_lifetime_seconds = match raw.nonce {
        None => None,
        Some(nonce) => {
            let lifetime = seconds("nonce.lifetime", nonce.lifetime, 300)?;
            if lifetime == 0 {
                return Err(error(
                    format!("{field}.nonce.lifetime"),
                    "must be at least 1s",
                ));
            }
            Some(lifetime)
        }
    };
    let replay_cache_size = raw.replay_cache_size.unwrap_or(DEFAULT_REPLAY_CACHE_SIZE);
    if replay_cache_size == 0 || replay_cache_size > MAX_REPLAY_CACHE_SIZE {
        return Err(error(
            format!("{field}.replay_cache_size"),
            format!("must be between 1 and {MAX_REPLAY_CACHE_SIZE}"),
        ));
    }
    let algs_text = allowed_algs
        .iter()
        .map(|alg| alg.name())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(DpopConfig {
        mode,
        max_proof_age_seconds,
        clock_skew_seconds,
        allowed_algs,
        algs_text,
        nonce_lifetime_seconds,
        replay_cache_size,
    })
}

fn is_symmetric(alg: JwsAlgorithm) -> bool {
    matches!(
        alg,
        JwsAlgorithm::Hs256 | JwsAlgorithm::Hs384 | JwsAlgorithm::Hs512
    )
}

/// A DPoP provider also reads `Authorization: DPoP <token>` (RFC 9449 §7.1), besides its other locations.
pub(super) fn add_dpop_location(locations: &mut crate::config::TokenLocations) {
    let dpop = crate::config::HeaderLocation {
        name: "authorization".into(),
        value_prefix: "DPoP ".to_string(),
    };
    if !locations.headers.contains(&dpop) {
        locations.headers.push(dpop);
    }
}
