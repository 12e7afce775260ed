//! Metric names. Envoy shows them under /stats with a `wasmcustom.` prefix (stripped in
//! /stats/prometheus, where dots become underscores). Every name starts with the configuration's
//! [`crate::config::FilterConfig::metric_prefix`]: `jwt_authn_wasm`, or `jwt_authn_wasm.<stat_prefix>`.

/// The metric prefix of a configuration without `stat_prefix`.
pub const PREFIX: &str = "jwt_authn_wasm";

/// Requests that passed the filter (no requirement, or valid tokens).
pub fn allowed(prefix: &str) -> String {
    format!("{prefix}.allowed")
}

/// Requests refused, by reason (`AuthError::reason` in `crate::verify::error`).
pub fn denied(prefix: &str, reason: &str) -> String {
    format!("{prefix}.denied.{reason}")
}

/// Gauge: linear memory of a worker's VM, in bytes (wasm pages of 64 KiB; all workers' VMs are alike).
pub fn vm_memory_bytes(prefix: &str) -> String {
    format!("{prefix}.vm_memory_bytes")
}

/// Requests a report-only rule or provider let through that would have been refused, by reason.
pub fn would_deny(prefix: &str, reason: &str) -> String {
    format!("{prefix}.report_only.would_deny.{reason}")
}

/// Successful JWKS fetches for a provider (counted once per process: only the fetching worker counts).
pub fn jwks_fetch_success(prefix: &str, provider: &str) -> String {
    format!(
        "{prefix}.provider.{}.jwks_fetch_success",
        sanitize(provider)
    )
}

/// Failed JWKS fetches for a provider, by reason: `http_status`, `timeout`, `no_response`,
/// `dispatch_failed`, `too_large`, `invalid_json`, `too_many_keys`, `no_usable_keys`, `bad_certificate`,
/// `discovery_failed`.
pub fn jwks_fetch_failed(prefix: &str, provider: &str, reason: &str) -> String {
    format!(
        "{prefix}.provider.{}.jwks_fetch_failed.{reason}",
        sanitize(provider)
    )
}

/// Refetches asked for by tokens with an unknown kid.
pub fn jwks_unknown_kid_refetch(prefix: &str, provider: &str) -> String {
    format!(
        "{prefix}.provider.{}.jwks_unknown_kid_refetch",
        sanitize(provider)
    )
}

/// Gauge: usable keys in the provider's current set (0 when none or too stale).
pub fn keys_in_use(prefix: &str, provider: &str) -> String {
    format!("{prefix}.provider.{}.keys_in_use", sanitize(provider))
}

/// Gauge: seconds since the provider's last good fetch.
pub fn jwks_age_seconds(prefix: &str, provider: &str) -> String {
    format!("{prefix}.provider.{}.jwks_age_seconds", sanitize(provider))
}

/// Provider names become one stat-name segment: anything but letters, digits, `_` and `-` turns to `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
