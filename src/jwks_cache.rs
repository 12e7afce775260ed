//! The JWKS cache: one fetched document per JWKS URI, shared by every worker of the Envoy process through
//! proxy-wasm shared data, and parsed once per worker per version.
//!
//! Shared-data layout, per URI (shared data is scoped by the plugin's vm_id):
//! - `<prefix>|<uri>|meta`    — `"<version> <fetched_at_ms>"`, read on every tick; small.
//! - `<prefix>|<uri>|doc`     — `"<version>\n<document>"`, read only when `meta` shows a new version.
//! - `<prefix>|<uri>|lease`   — `"<holder> <expires_at_ms>"`: the worker allowed to fetch, taken with
//!   compare-and-swap so that one worker fetches for the whole process.
//! - `<prefix>|<uri>|failure` — `"<failed_at_ms> <retry_at_ms> <consecutive> <reason>"` after a failed fetch.
//!
//! Everything here is pure; the glue in `jwks_fetcher.rs` does the host calls.

use std::rc::Rc;
use std::time::Duration;

use crate::jwks::Jwks;

const SHARED_KEY_PREFIX: &str = "jwt_authn_wasm.v1";
/// First retry delay after a failed fetch; doubles per consecutive failure up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The shared-data keys of one JWKS URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeys {
    pub meta: String,
    pub doc: String,
    pub lease: String,
    pub failure: String,
}

impl SharedKeys {
    pub fn for_uri(uri: &str) -> SharedKeys {
        let base = format!("{SHARED_KEY_PREFIX}|{uri}");
        SharedKeys {
            meta: format!("{base}|meta"),
            doc: format!("{base}|doc"),
            lease: format!("{base}|lease"),
            failure: format!("{base}|failure"),
        }
    }
}

/// Which document is current, and when it was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksMeta {
    pub version: u64,
    pub fetched_at_ms: u64,
}

impl JwksMeta {
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {}", self.version, self.fetched_at_ms).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<JwksMeta> {
        let [version, fetched_at_ms] = parse_numbers(bytes)?;
        Some(JwksMeta {
            version,
            fetched_at_ms,
        })
    }
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
    /// last fetch failed too): retries back off exponentially.
    pub fn next(previous: Option<&FetchFailure>, now_ms: u64, reason: String) -> FetchFailure {
        let consecutive = previous.map_or(1, |p| p.consecutive.saturating_add(1));
        let shift = consecutive.saturating_sub(1).min(16);
        let delay = FIRST_RETRY_DELAY
            .saturating_mul(1u32 << shift)
            .min(MAX_RETRY_DELAY);
        FetchFailure {
            failed_at_ms: now_ms,
            retry_at_ms: now_ms.saturating_add(millis(delay)),
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

/// Whether a URI's JWKS should be fetched now: never fetched, or older than `cache_duration`, and not
/// inside the back-off window of a recent failure.
pub fn fetch_due(
    meta: Option<&JwksMeta>,
    failure: Option<&FetchFailure>,
    cache_duration: Duration,
    now_ms: u64,
) -> bool {
    let stale =
        meta.is_none_or(|meta| now_ms >= meta.fetched_at_ms.saturating_add(millis(cache_duration)));
    let backing_off = failure.is_some_and(|failure| {
        now_ms < failure.retry_at_ms
            && meta.is_none_or(|meta| failure.failed_at_ms >= meta.fetched_at_ms)
    });
    stale && !backing_off
}

/// One worker's parsed copy of a provider's current keys.
#[derive(Debug, Clone, Default)]
pub struct WorkerKeys {
    /// The shared version these keys were parsed from (0: none yet).
    pub version: u64,
    pub jwks: Option<Rc<Jwks>>,
}

pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
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
