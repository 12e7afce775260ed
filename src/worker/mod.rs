//! What one worker's VM does between callbacks, free of proxy-wasm: it talks to the host through the
//! [`Host`] trait. `state` is what the VM holds (configuration, parsed keys, waiting requests,
//! token caches), `fetch` keeps each remote JWKS fresh for the whole process, and `wait` decides
//! whether a request waits for keys and which waiting requests to resume or refuse. The glue calls the
//! entry points below from its callbacks and applies the [`Resolution`]s they return.

pub(crate) mod dpop;
pub(crate) mod fetch;
pub(crate) mod host;
pub(crate) mod records;
pub(crate) mod state;
pub(crate) mod wait;

// What the glue calls and holds.
pub use dpop::check_proofs;
pub use fetch::JwksFetcher;
pub use host::{Host, SharedDataError, SharedValue};
pub use state::{Released, SharedWorkerState, WorkerState};
pub use wait::{judge_or_wait, Resolution};

#[cfg(test)]
mod dpop_tests;
#[cfg(test)]
mod fake_host;
#[cfg(test)]
mod tests;

use crate::config::JwksSource;
use wait::settle_waiting;

/// A worker's periodic step: pick up keys other workers fetched, start the fetches that are due, settle
/// waiting requests, and forget cached tokens whose keys went stale.
pub fn on_tick(
    host: &dyn Host,
    worker: &mut WorkerState,
    fetcher: &mut JwksFetcher,
    now: u64,
) -> Vec<Resolution> {
    let config = worker.config.clone();
    for (provider, entry) in config.providers.iter().enumerate() {
        if let JwksSource::Remote(remote) = &entry.jwks_source {
            worker.sync_from_shared(host, provider);
            fetcher.maybe_fetch(host, provider, remote, now);
        }
    }
    let resolutions = settle_waiting(host, worker, now);
    worker.drop_stale_caches(now);
    resolutions
}

/// A callout response arrived (`num_headers` 0: the callout failed): store or record it, then settle
/// the requests it may have brought keys for.
pub fn on_fetch_response(
    host: &dyn Host,
    worker: &mut WorkerState,
    fetcher: &mut JwksFetcher,
    token: u32,
    num_headers: usize,
    body_size: usize,
    now: u64,
) -> Vec<Resolution> {
    if fetcher.on_response(host, token, num_headers, body_size, now) {
        settle_waiting(host, worker, now)
    } else {
        Vec::new()
    }
}
