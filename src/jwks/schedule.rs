//! When a remote JWKS is fetched, and how failures back off: the refresh schedule, `Cache-Control`,
//! retry back-off with jitter, and the rate limit on refetches asked for by unknown kids. Pure functions
//! of the shared records ([`crate::jwks::shared_data`]) and the clock.

use std::time::Duration;

use crate::jwks::key_set::JwksLimits;
use crate::jwks::shared_data::{FetchFailure, JwksMeta};

/// For TTLs of at least [`REFRESH_AHEAD_FROM`], a refresh starts this share of the TTL before expiry
/// (at most [`MAX_REFRESH_AHEAD`] before), so keys are replaced before they go stale. Shorter TTLs are
/// refreshed at expiry: the stale keys keep serving during the fetch, and leading would only add fetches.
const REFRESH_AHEAD_DIVISOR: u64 = 10;
const REFRESH_AHEAD_FROM: Duration = Duration::from_secs(60);
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Retry delays are spread by up to this many percent either way, so workers of many Envoys that failed
/// together do not retry together.
const RETRY_JITTER_PERCENT: u64 = 20;

/// How a remote JWKS is kept fresh and what is done when fetching fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    pub max_staleness: Duration,
    pub honor_cache_control: bool,
    pub min_cache_duration: Duration,
    pub max_cache_duration: Duration,
    pub retry_initial_interval: Duration,
    pub retry_max_interval: Duration,
    pub refetch_on_unknown_kid: bool,
    pub unknown_kid_refetch_interval: Duration,
    pub limits: JwksLimits,
}

impl JwksMeta {
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
    (refresh || asked_for) && !backing_off(failure, last_fetch, now_ms)
}

/// Whether fetches wait at `now_ms`: a fetch failed since the last good one (fetched at
/// `last_fetch_ms`) and its retry time has not come.
pub fn backing_off(failure: Option<&FetchFailure>, last_fetch_ms: u64, now_ms: u64) -> bool {
    failure.is_some_and(|f| now_ms < f.retry_at_ms && f.failed_at_ms >= last_fetch_ms)
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
