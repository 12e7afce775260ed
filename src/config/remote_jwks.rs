//! `remote_jwks`: where a provider's keys are fetched from, and the policy that keeps them fresh.

use std::time::Duration;

use crate::config::duration::parse_duration;
use crate::config::raw::{RawAsyncFetch, RawRemoteJwks, RawRetryPolicy};
use crate::config::{error, ConfigError};
use crate::jwks::key_set::JwksLimits;
use crate::jwks::schedule::FetchPolicy;

/// jwt_authn's default `remote_jwks.cache_duration`.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
/// `http_uri.timeout` when none is given.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(1);
/// How long past its expiry the last good JWKS is still used while refreshes fail.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
/// Bounds within which a JWKS response's `Cache-Control: max-age` is honoured.
pub const DEFAULT_MIN_CACHE_DURATION: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CACHE_DURATION: Duration = Duration::from_secs(24 * 3600);
/// First retry after a failed fetch; doubles per failure up to the maximum (jwt_authn's
/// `async_fetch.failed_refetch_duration` / `retry_policy.retry_back_off` set them).
pub const DEFAULT_RETRY_INITIAL_INTERVAL: Duration = Duration::from_millis(500);
pub const DEFAULT_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// At most one refetch per this interval per JWKS is triggered by tokens with an unknown kid.
pub const DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Ceilings for the configurable JWKS limits.
const LIMIT_MAX_JWKS_BYTES: usize = 16 * 1024 * 1024;
const LIMIT_MAX_JWKS_KEYS: usize = 10_000;

/// A JWKS fetched over HTTP through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// The JWKS URI; with `oidc_discovery`, the OpenID configuration URI whose `jwks_uri` is followed.
    pub uri: String,
    pub oidc_discovery: bool,
    pub cluster: String,
    /// `:authority` of the fetch: the URI's host and port.
    pub authority: String,
    /// `:path` of the fetch, with the query.
    pub path: String,
    pub timeout: Duration,
    pub cache_duration: Duration,
    pub policy: FetchPolicy,
}

/// Reads the optional duration `name` of `remote_jwks`, or gives `default`.
struct Durations<'f> {
    remote_field: &'f str,
}

impl Durations<'_> {
    fn get(
        &self,
        name: &str,
        value: Option<String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            Some(text) => {
                parse_duration(&text).map_err(|r| error(format!("{}.{name}", self.remote_field), r))
            }
            None => Ok(default),
        }
    }
}

pub(super) fn compile_remote_jwks(
    field: &str,
    issuer: &str,
    raw: RawRemoteJwks,
) -> Result<RemoteJwks, ConfigError> {
    let remote_field = format!("{field}.remote_jwks");
    let uri_field = format!("{remote_field}.http_uri");
    let (uri, authority, path) = remote_uri(&uri_field, issuer, &raw)?;
    let durations = Durations {
        remote_field: &remote_field,
    };
    let timeout = durations.get(
        "http_uri.timeout",
        raw.http_uri.timeout,
        DEFAULT_FETCH_TIMEOUT,
    )?;
    if timeout.is_zero() {
        return Err(error(
            format!("{uri_field}.timeout"),
            "must be greater than 0s",
        ));
    }
    let cache_duration =
        durations.get("cache_duration", raw.cache_duration, DEFAULT_CACHE_DURATION)?;
    if cache_duration < Duration::from_secs(1) {
        return Err(error(
            format!("{remote_field}.cache_duration"),
            "must be at least 1s",
        ));
    }
    let (retry_initial_interval, retry_max_interval) =
        compile_retry(&durations, raw.retry_policy, raw.async_fetch)?;
    let (min_cache_duration, max_cache_duration) =
        compile_cache_bounds(&durations, raw.min_cache_duration, raw.max_cache_duration)?;
    let unknown_kid_refetch_interval = durations.get(
        "unknown_kid_refetch_interval",
        raw.unknown_kid_refetch_interval,
        DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL,
    )?;
    if unknown_kid_refetch_interval < Duration::from_millis(100) {
        return Err(error(
            format!("{remote_field}.unknown_kid_refetch_interval"),
            "must be at least 0.1s (set refetch_on_unknown_kid to false to turn refetching off)",
        ));
    }
    let limits = compile_limits(&remote_field, raw.max_jwks_bytes, raw.max_jwks_keys)?;
    Ok(RemoteJwks {
        uri,
        oidc_discovery: raw.oidc_discovery,
        cluster: raw.http_uri.cluster,
        authority,
        path,
        timeout,
        cache_duration,
        policy: FetchPolicy {
            max_staleness: durations.get(
                "max_staleness",
                raw.max_staleness,
                DEFAULT_MAX_STALENESS,
            )?,
            honor_cache_control: raw.honor_cache_control.unwrap_or(true),
            min_cache_duration,
            max_cache_duration,
            retry_initial_interval,
            retry_max_interval,
            refetch_on_unknown_kid: raw.refetch_on_unknown_kid.unwrap_or(true),
            unknown_kid_refetch_interval,
            limits,
        },
    })
}

/// The URI to fetch (with `oidc_discovery` and no URI, the issuer's OpenID configuration), split into
/// the callout's `:authority` and `:path`; the cluster must be named.
fn remote_uri(
    uri_field: &str,
    issuer: &str,
    raw: &RawRemoteJwks,
) -> Result<(String, String, String), ConfigError> {
    if raw.http_uri.cluster.is_empty() {
        return Err(error(
            format!("{uri_field}.cluster"),
            "must name the Envoy cluster that reaches the JWKS server",
        ));
    }
    let uri = if raw.http_uri.uri.is_empty() && raw.oidc_discovery && !issuer.is_empty() {
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )
    } else {
        raw.http_uri.uri.clone()
    };
    let (authority, path) =
        split_http_uri(&uri).map_err(|reason| error(format!("{uri_field}.uri"), reason))?;
    Ok((uri, authority, path))
}

/// The first and the largest retry interval after failed fetches: jwt_authn's
/// `retry_policy.retry_back_off`, or `async_fetch.failed_refetch_duration` for the first.
fn compile_retry(
    durations: &Durations<'_>,
    retry_policy: Option<RawRetryPolicy>,
    async_fetch: Option<RawAsyncFetch>,
) -> Result<(Duration, Duration), ConfigError> {
    let back_off = retry_policy.and_then(|p| p.retry_back_off);
    let failed_refetch = async_fetch.and_then(|a| a.failed_refetch_duration);
    let (base, max) = match back_off {
        Some(back_off) => (back_off.base_interval, back_off.max_interval),
        None => (None, None),
    };
    let initial = match (base, failed_refetch) {
        (Some(base), _) => durations.get(
            "retry_policy.retry_back_off.base_interval",
            Some(base),
            DEFAULT_RETRY_INITIAL_INTERVAL,
        )?,
        (None, failed) => durations.get(
            "async_fetch.failed_refetch_duration",
            failed,
            DEFAULT_RETRY_INITIAL_INTERVAL,
        )?,
    };
    let max = durations.get(
        "retry_policy.retry_back_off.max_interval",
        max,
        DEFAULT_RETRY_MAX_INTERVAL.max(initial),
    )?;
    if initial < Duration::from_millis(100) || max < initial {
        return Err(error(
            format!("{}.retry_policy.retry_back_off", durations.remote_field),
            "retries need a base interval of at least 0.1s and a max interval no smaller than it",
        ));
    }
    Ok((initial, max))
}

/// The bounds within which `Cache-Control: max-age` is honoured.
fn compile_cache_bounds(
    durations: &Durations<'_>,
    min: Option<String>,
    max: Option<String>,
) -> Result<(Duration, Duration), ConfigError> {
    let min = durations.get("min_cache_duration", min, DEFAULT_MIN_CACHE_DURATION)?;
    let max = durations.get("max_cache_duration", max, DEFAULT_MAX_CACHE_DURATION)?;
    if min < Duration::from_secs(1) || max < min {
        return Err(error(
            format!("{}.min_cache_duration", durations.remote_field),
            "must be at least 1s and no larger than max_cache_duration",
        ));
    }
    Ok((min, max))
}

/// `max_jwks_bytes` and `max_jwks_keys`, within their ceilings.
fn compile_limits(
    remote_field: &str,
    max_bytes: Option<usize>,
    max_keys: Option<usize>,
) -> Result<JwksLimits, ConfigError> {
    let limit = |name: &str, value: Option<usize>, default: usize, ceiling: usize| match value {
        None => Ok(default),
        Some(v) if (1..=ceiling).contains(&v) => Ok(v),
        Some(v) => Err(error(
            format!("{remote_field}.{name}"),
            format!("{v} is outside 1..={ceiling}"),
        )),
    };
    let defaults = JwksLimits::default();
    Ok(JwksLimits {
        max_bytes: limit(
            "max_jwks_bytes",
            max_bytes,
            defaults.max_bytes,
            LIMIT_MAX_JWKS_BYTES,
        )?,
        max_keys: limit(
            "max_jwks_keys",
            max_keys,
            defaults.max_keys,
            LIMIT_MAX_JWKS_KEYS,
        )?,
    })
}

/// Splits `http[s]://host[:port]/path?query` into the callout's `:authority` and `:path`.
pub fn split_http_uri(uri: &str) -> Result<(String, String), String> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "\"{}\" must start with http:// or https://",
                uri.escape_debug()
            )
        })?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(format!("\"{}\" has no usable host", uri.escape_debug()));
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((authority.to_string(), path))
}
