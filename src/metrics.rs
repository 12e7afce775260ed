//! Metric names. Envoy shows them under /stats with a `wasmcustom.` prefix (stripped in
//! /stats/prometheus, where dots become underscores).

/// Every metric name starts with this.
pub const PREFIX: &str = "jwt_authn_wasm";

/// Requests that passed the filter (no requirement, or valid tokens). A constant: it is counted on
/// every request.
pub const ALLOWED: &str = "jwt_authn_wasm.allowed";

/// Requests refused, by reason ([`crate::auth_error::AuthError::reason`]).
pub fn denied(reason: &str) -> String {
    format!("{PREFIX}.denied.{reason}")
}

/// Gauge: linear memory of a worker's VM, in bytes (wasm pages of 64 KiB; all workers' VMs are alike).
pub const VM_MEMORY_BYTES: &str = "jwt_authn_wasm.vm_memory_bytes";

/// Requests a report-only rule or provider let through that would have been refused, by reason.
pub fn would_deny(reason: &str) -> String {
    format!("{PREFIX}.report_only.would_deny.{reason}")
}

/// Successful JWKS fetches for a provider (counted once per process: only the fetching worker counts).
pub fn jwks_fetch_success(provider: &str) -> String {
    format!(
        "{PREFIX}.provider.{}.jwks_fetch_success",
        sanitize(provider)
    )
}

/// Failed JWKS fetches for a provider, by reason: `http_status`, `timeout`, `no_response`,
/// `dispatch_failed`, `too_large`, `invalid_json`, `too_many_keys`, `no_usable_keys`, `discovery_failed`.
pub fn jwks_fetch_failed(provider: &str, reason: &str) -> String {
    format!(
        "{PREFIX}.provider.{}.jwks_fetch_failed.{reason}",
        sanitize(provider)
    )
}

/// Refetches asked for by tokens with an unknown kid.
pub fn jwks_unknown_kid_refetch(provider: &str) -> String {
    format!(
        "{PREFIX}.provider.{}.jwks_unknown_kid_refetch",
        sanitize(provider)
    )
}

/// Gauge: usable keys in the provider's current set (0 when none or too stale).
pub fn keys_in_use(provider: &str) -> String {
    format!("{PREFIX}.provider.{}.keys_in_use", sanitize(provider))
}

/// Gauge: seconds since the provider's last good fetch.
pub fn jwks_age_seconds(provider: &str) -> String {
    format!("{PREFIX}.provider.{}.jwks_age_seconds", sanitize(provider))
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
