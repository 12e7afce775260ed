//! The shared-data protocol: one fetched document per JWKS URI, shared by every worker of the Envoy
//! process through proxy-wasm shared data, and parsed once per worker per version. This module names
//! the keys and encodes and decodes their records; when to write them is [`crate::jwks::schedule`]'s
//! and the worker's business.
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
//! Everything here is pure: no host call.

const SHARED_KEY_PREFIX: &str = "jwt_authn_wasm.v2";
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

    /// Whether the lease may be taken at `now_ms`: nobody holds it, or the holder's time is up.
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

fn parse_numbers<const N: usize>(bytes: &[u8]) -> Option<[u64; N]> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(' ');
    let mut out = [0u64; N];
    for slot in out.iter_mut() {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}
