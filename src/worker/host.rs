//! The host seam: everything the worker logic asks of the proxy. Implemented once over proxy-wasm
//! (`glue/proxy_host.rs`, wasm32 only) and once as a fake for the lifecycle tests. Logging goes through
//! the `log` facade, which proxy-wasm routes to Envoy's log and tests leave silent.

use std::time::Duration;

/// Why the host refused a shared-data write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedDataError {
    /// The compare-and-swap token is stale: another worker wrote first.
    CasMismatch,
    /// Any other refusal.
    Refused,
}

/// A shared-data value (`None`: the key does not exist) and its compare-and-swap token.
pub type SharedValue = (Option<Vec<u8>>, Option<u32>);

/// The host calls the worker logic makes.
pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The value under `key` in the process-wide shared data, with its compare-and-swap token. `Err`
    /// when the host cannot answer.
    fn get_shared_data(&self, key: &str) -> Result<SharedValue, SharedDataError>;

    /// Writes `value` under `key`; with `cas`, only if nobody wrote since that token was read (a
    /// compare-and-swap on a key that does not exist yet is not enforced, as in Envoy).
    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError>;

    /// Starts an HTTP callout through `cluster`; the returned token names its response.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, String>;

    /// A header of the callout response being delivered; `None` when absent or when there is none.
    fn call_response_header(&self, name: &str) -> Option<Vec<u8>>;

    /// Up to `max_size` bytes of the callout response's body being delivered.
    fn call_response_body(&self, max_size: usize) -> Option<Vec<u8>>;

    /// Adds one to the counter `name`.
    fn count(&self, name: &str);

    /// Sets the gauge `name`.
    fn gauge(&self, name: &str, value: u64);
}

/// The value under `key`; empty values (removed keys) count as absent.
pub fn shared_value(host: &dyn Host, key: &str) -> Option<Vec<u8>> {
    match host.get_shared_data(key) {
        Ok((Some(value), _)) if !value.is_empty() => Some(value),
        _ => None,
    }
}
