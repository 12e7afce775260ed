//! The JWKS cache: one fetched document per JWKS URI, shared by every worker of the Envoy process through
//! proxy-wasm shared data, and parsed once per worker per version.
//!
//! Shared-data layout, per URI (shared data is scoped by the plugin's vm_id):
//! - `<prefix>|<uri>|meta`    — `"<version> <fetched_at_ms> <ttl_ms>"`, read on every tick; small.
//! - `<prefix>|<uri>|doc`     — `"<version>\n<document>"`, read only when `meta` shows a new version.
//! - `<prefix>|<uri>|lease`   — `"<holder> <expires_at_ms>"`: the worker allowed to fetch, taken with
//!   compare-and-swap so that one worker fetches for the whole process.
//! - `<prefix>|<uri>|failure` — `"<failed_at_ms> <retry_at_ms> <consecutive> <reason>"` after a failed fetch.
//! - `<prefix>|<uri>|kid_refetch` — `"<requested_at_ms>"`: the last refetch asked for by a token whose kid
//!   was not in the set, rate-limiting such refetches for the whole process.
//!
//! Everything here is pure; the glue in `jwks_fetcher.rs` does the host calls.

use std::rc::Rc;
use std::time::Duration;

use crate::config::FetchPolicy;
use crate::jwks::Jwks;

const SHARED_KEY_PREFIX: &str = "jwt_authn_wasm.v2";
/// For TTLs of at least [`REFRESH_AHEAD_FROM`], a refresh starts this share of the TTL before expiry
/// (at most [`MAX_REFRESH_AHEAD`] before), so keys are replaced before they go stale. Shorter TTLs are
/// refreshed at expiry: the stale keys keep serving during the fetch, and leading would only add fetches.
const REFRESH_AHEAD_DIVISOR: u64 = 10;
const REFRESH_AHEAD_FROM: Duration = Duration::from_secs(60);
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Retry delays are spread by up to this many percent either way, so workers of many Envoys that failed
/// together do not retry together.
const RETRY_JITTER_PERCENT: u64 = 20;

/// The shared-data keys of one JWKS URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeys {
    pub meta: String,
    pub doc: String,
    pub lease: String,
    pub failure: String,
    pub kid_refetch: String,
}

impl SharedKeys {
    pub fn for_uri(uri: &str) -> SharedKeys {
        let base = format!("{SHARED_KEY_PREFIX}|{uri}");
        SharedKeys {
            meta: format!("{base}|meta"),
            doc: format!("{base}|doc"),
            lease: format!("{base}|lease"),
            failure: format!("{base}|failure"),
            kid_refetch: format!("{base}|kid_refetch"),
        }
    }
}

/// Which document is current, when it was fetched and for how long it is fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksMeta {
    pub version: u64,
    pub fetched_at_ms: u64,
    pub ttl_ms: u64,
}

impl JwksMeta {
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {} {}", self.version, self.fetched_at_ms, self.ttl_ms).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<JwksMeta> {
        let [version, fetched_at_ms, ttl_ms] = parse_numbers(bytes)?;
        Some(JwksMeta {
            version,
            fetched_at_ms,
            ttl_ms,
        })
    }

    /// When the next refresh starts: a tenth of the TTL (at most a minute) before it runs out, or at
    /// expiry for TTLs under a minute.
    pub fn refresh_at_ms(&self) -> u64 {
        let ahead = if self.ttl_ms >= millis(REFRESH_AHEAD_FROM) {
            (self.ttl_ms / REFRESH_AHEAD_DIVISOR).min(millis(MAX_REFRESH_AHEAD))
        } else {
            0
        };
        self.fetched_at_ms
            .saturating_add(self.ttl_ms)
            .saturating_sub(ahead)
    }

    /// Until when these keys may be used: their TTL plus the allowed staleness while refreshes fail.
    pub fn usable_until_ms(&self, max_staleness: Duration) -> u64 {
        self.fetched_at_ms
            .saturating_add(self.ttl_ms)
            .saturating_add(millis(max_staleness))
    }
}

/// How long a fetched JWKS stays fresh: the response's `Cache-Control: max-age`, within the policy's
/// bounds, when the policy honours it and the header has one; `no-store`/`no-cache` count as max-age 0
/// (so the lower bound). Otherwise the configured `cache_duration`.
pub fn ttl_for_response(
    cache_control: Option<&[u8]>,
    cache_duration: Duration,
    policy: &FetchPolicy,
) -> Duration {
    if !policy.honor_cache_control {
        return cache_duration;
    }
    let Some(max_age) = cache_control.and_then(max_age_seconds) else {
        return cache_duration;
    };
    Duration::from_secs(max_age).clamp(policy.min_cache_duration, policy.max_cache_duration)
}

fn max_age_seconds(header: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(header).ok()?;
    let mut found = None;
    for directive in text.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        if name.eq_ignore_ascii_case("max-age") {
            found = Some(value.trim().trim_matches('"').parse::<u64>().ok()?);
        } else if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
    }
    found
}

/// The shared `doc` value: the version, a newline, the document as fetched.
pub fn encode_doc(version: u64, document: &[u8]) -> Vec<u8> {
    let mut out = format!("{version}\n").into_bytes();
    out.extend_from_slice(document);
    out
}

/// Splits a shared `doc` value into its version and document.
pub fn decode_doc(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let version = std::str::from_utf8(bytes.get(..newline)?)
        .ok()?
        .parse()
        .ok()?;
    Some((version, bytes.get(newline + 1..)?))
}

/// The right to fetch a URI's JWKS, held by one worker until it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLease {
    pub holder: u64,
    pub expires_at_ms: u64,
}

impl FetchLease {
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {}", self.holder, self.expires_at_ms).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<FetchLease> {
        let [holder, expires_at_ms] = parse_numbers(bytes)?;
        Some(FetchLease {
            holder,
            expires_at_ms,
        })
    }

    /// Whether `worker` may take the lease at `now_ms`: nobody holds it, or the holder's time is up.
    pub fn is_free_for(lease: Option<&FetchLease>, now_ms: u64) -> bool {
        lease.is_none_or(|lease| now_ms >= lease.expires_at_ms)
    }
}

/// The last failed fetch of a URI, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    pub failed_at_ms: u64,
    pub retry_at_ms: u64,
    pub consecutive: u32,
    pub reason: String,
}

impl FetchFailure {
    /// The failure record after another failed fetch at `now_ms`, `previous` being the last one (if the
    /// last fetch failed too): retries back off exponentially from `initial` up to `max`, spread by
    /// ±20% jitter drawn from `jitter_seed`.
    pub fn next(
        previous: Option<&FetchFailure>,
        now_ms: u64,
        reason: String,
        initial: Duration,
        max: Duration,
        jitter_seed: u64,
    ) -> FetchFailure {
        let consecutive = previous.map_or(1, |p| p.consecutive.saturating_add(1));
        let shift = consecutive.saturating_sub(1).min(16);
        let delay = millis(initial.saturating_mul(1u32 << shift).min(max));
        let spread = delay.saturating_mul(RETRY_JITTER_PERCENT) / 100;
        let jitter = if spread == 0 {
            0
        } else {
            mix(jitter_seed) % (2 * spread + 1)
        };
        let delay = delay.saturating_sub(spread).saturating_add(jitter);
        FetchFailure {
            failed_at_ms: now_ms,
            retry_at_ms: now_ms.saturating_add(delay),
            consecutive,
            reason,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {}",
            self.failed_at_ms, self.retry_at_ms, self.consecutive, self.reason
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<FetchFailure> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(4, ' ');
        Some(FetchFailure {
            failed_at_ms: parts.next()?.parse().ok()?,
            retry_at_ms: parts.next()?.parse().ok()?,
            consecutive: parts.next()?.parse().ok()?,
            reason: parts.next().unwrap_or_default().to_string(),
        })
    }
}

/// Whether a URI's JWKS should be fetched now: never fetched, due for refresh, or asked for by a token
/// with an unknown kid since the last fetch — and not inside the back-off window of a failure since.
pub fn fetch_due(
    meta: Option<&JwksMeta>,
    failure: Option<&FetchFailure>,
    kid_refetch_requested_at_ms: Option<u64>,
    now_ms: u64,
) -> bool {
    let last_fetch = meta.map_or(0, |m| m.fetched_at_ms);
    let refresh = meta.is_none_or(|meta| now_ms >= meta.refresh_at_ms());
    let asked_for = kid_refetch_requested_at_ms.is_some_and(|at| at > last_fetch);
    let backing_off =
        failure.is_some_and(|f| now_ms < f.retry_at_ms && f.failed_at_ms >= last_fetch);
    (refresh || asked_for) && !backing_off
}

/// Whether a token with an unknown kid may ask for a refetch at `now_ms`, given the last such request:
/// at most one per `interval` for the whole process.
pub fn kid_refetch_allowed(
    last_requested_at_ms: Option<u64>,
    now_ms: u64,
    interval: Duration,
) -> bool {
    last_requested_at_ms.is_none_or(|last| now_ms >= last.saturating_add(millis(interval)))
}

/// The `jwks_uri` of an OpenID Provider configuration document (OpenID Connect Discovery 1.0 §3).
pub fn discovered_jwks_uri(document: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct ProviderMetadata {
        jwks_uri: Option<String>,
    }
    let metadata: ProviderMetadata = serde_json::from_slice(document)
        .map_err(|e| format!("OpenID configuration is not JSON: {e}"))?;
    let uri = metadata
        .jwks_uri
        .ok_or_else(|| "OpenID configuration has no jwks_uri".to_string())?;
    if !(uri.starts_with("https://") || uri.starts_with("http://")) {
        return Err(format!(
            "jwks_uri \"{}\" is not an http(s) URL",
            uri.escape_debug()
        ));
    }
    Ok(uri)
}

/// One worker's parsed copy of a provider's current keys.
#[derive(Debug, Clone, Default)]
pub struct WorkerKeys {
    /// The shared version these keys were parsed from (0: none yet).
    pub version: u64,
    pub jwks: Option<Rc<Jwks>>,
    /// Until when these keys may be used (ms since the epoch); local keys never run out.
    pub usable_until_ms: u64,
}

impl WorkerKeys {
    /// The keys, unless they are staler than the policy allows at `now_ms`.
    pub fn usable(&self, now_ms: u64) -> Option<&Rc<Jwks>> {
        self.jwks.as_ref().filter(|_| now_ms < self.usable_until_ms)
    }
}

pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// SplitMix64: spreads a seed into well-mixed bits for jitter (not for anything secret).
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn parse_numbers<const N: usize>(bytes: &[u8]) -> Option<[u64; N]> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(' ');
    let mut out = [0u64; N];
    for slot in out.iter_mut() {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}
