//! The JWKS fetch lifecycle of one worker, over the [`Host`] seam.
//!
//! Workers coordinate through shared data (see [`crate::jwks::shared_data`]): whichever worker first
//! finds a JWKS due (refresh time, or a refetch asked for by an unknown kid; [`fetch_due`]) takes the
//! fetch lease with compare-and-swap and fetches it through the configured cluster — with
//! `oidc_discovery`, first the OpenID configuration, then the `jwks_uri` it names. A good response is
//! stored for every worker; a failed one is recorded with its back-off ([`FetchFailure::next`]).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::config::{split_http_uri, FilterConfig, JwksSource, ProviderId, RemoteJwks};
use crate::jwks::{
    discovered_jwks_uri, encode_doc, fetch_due, millis, parse_jwks_with_limits, ttl_for_response,
    FetchFailure, FetchLease, JwksMeta, SharedKeys,
};
use crate::metrics;
use crate::worker::host::{Host, SharedDataError};
use crate::worker::records;

/// Shared-data key of the counter that hands out worker ids (lease holders).
const WORKER_COUNTER_KEY: &str = "jwt_authn_wasm.v2|worker_counter";
/// A lease outlives its callout's timeout by this much, covering a worker that dies holding it.
const LEASE_SLACK_MS: u64 = 1000;

/// Which step of a fetch a callout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchStage {
    /// The OpenID configuration, whose `jwks_uri` comes next.
    Discovery,
    /// The JWKS document itself.
    Jwks,
}

#[derive(Debug)]
struct InFlight {
    provider: ProviderId,
    stage: FetchStage,
}

/// A failed fetch: what to log, and the metric reason.
#[derive(Debug)]
struct FetchError {
    reason: &'static str,
    detail: String,
}

impl FetchError {
    fn new(reason: &'static str, detail: impl Into<String>) -> FetchError {
        FetchError {
            reason,
            detail: detail.into(),
        }
    }
}

/// One worker's side of the fetch lifecycle: its lease-holder id and its callouts in flight.
#[derive(Debug)]
pub struct JwksFetcher {
    config: Rc<FilterConfig>,
    worker_id: u64,
    in_flight: HashMap<u32, InFlight>,
}

impl JwksFetcher {
    /// A fetcher for `config`. Run once per configuration, before any worker's first tick: it takes a
    /// process-unique worker id and creates every lease key (compare-and-swap is only enforced on keys
    /// that exist, so each must exist before workers contend for it).
    pub fn new(host: &dyn Host, config: Rc<FilterConfig>, context_id: u32) -> JwksFetcher {
        let worker_id = allocate_worker_id(host, context_id);
        for provider in &config.providers {
            if let JwksSource::Remote(remote) = &provider.jwks_source {
                let lease_key = SharedKeys::for_uri(&remote.uri).lease;
                if matches!(host.get_shared_data(&lease_key), Ok((None, _))) {
                    let _ = host.set_shared_data(&lease_key, b"", None);
                }
            }
        }
        JwksFetcher {
            config,
            worker_id,
            in_flight: HashMap::new(),
        }
    }

    /// The id this worker holds leases under.
    pub fn worker_id(&self) -> u64 {
        self.worker_id
    }

    /// Starts a fetch of `remote` if it is due and this worker wins the lease.
    pub fn maybe_fetch(
        &mut self,
        host: &dyn Host,
        provider: ProviderId,
        remote: &RemoteJwks,
        now: u64,
    ) {
        if self.in_flight.values().any(|f| f.provider == provider) {
            return;
        }
        let keys = SharedKeys::for_uri(&remote.uri);
        let meta = records::meta(host, &keys);
        let failure = records::failure(host, &keys);
        let kid_refetch = records::kid_refetch(host, &keys);
        if !fetch_due(meta.as_ref(), failure.as_ref(), kid_refetch, now) {
            return;
        }
        if !self.take_lease(host, &keys, remote.timeout, now) {
            return;
        }
        let stage = if remote.oidc_discovery {
            FetchStage::Discovery
        } else {
            FetchStage::Jwks
        };
        if let Err(error) = self.dispatch(
            host,
            provider,
            remote,
            &remote.authority,
            &remote.path,
            stage,
        ) {
            self.record_failure(host, provider, remote, now, error);
        }
    }

    fn dispatch(
        &mut self,
        host: &dyn Host,
        provider: ProviderId,
        remote: &RemoteJwks,
        authority: &str,
        path: &str,
        stage: FetchStage,
    ) -> Result<(), FetchError> {
        let headers = [
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", "jwt-authn-wasm"),
        ];
        match host.dispatch_http_call(&remote.cluster, &headers, remote.timeout) {
            Ok(token) => {
                self.in_flight.insert(token, InFlight { provider, stage });
                Ok(())
            }
            Err(status) => Err(FetchError::new(
                "dispatch_failed",
                format!(
                    "cannot call cluster \"{}\" ({status}); is it defined in Envoy?",
                    remote.cluster
                ),
            )),
        }
    }

    /// Takes the fetch lease of a URI with compare-and-swap, then reads it back to be sure.
    fn take_lease(&self, host: &dyn Host, keys: &SharedKeys, timeout: Duration, now: u64) -> bool {
        let Ok((current, cas)) = host.get_shared_data(&keys.lease) else {
            return false;
        };
        let current = current.and_then(|bytes| FetchLease::decode(&bytes));
        if !FetchLease::is_free_for(current.as_ref(), now) {
            return false;
        }
        let lease = self.lease_until(timeout, now);
        if host
            .set_shared_data(&keys.lease, &lease.encode(), cas)
            .is_err()
        {
            return false;
        }
        records::lease(host, keys) == Some(lease)
    }

    /// A lease for one callout: it ends by its timeout plus [`LEASE_SLACK_MS`]. Discovery renews it for
    /// the second callout.
    fn lease_until(&self, timeout: Duration, now: u64) -> FetchLease {
        FetchLease {
            holder: self.worker_id,
            expires_at_ms: now
                .saturating_add(millis(timeout))
                .saturating_add(LEASE_SLACK_MS),
        }
    }

    fn provider_name(&self, provider: ProviderId) -> &str {
        self.config
            .providers
            .get(provider)
            .map_or("", |p| p.name.as_str())
    }

    fn record_failure(
        &self,
        host: &dyn Host,
        provider: ProviderId,
        remote: &RemoteJwks,
        now: u64,
        error: FetchError,
    ) {
        let keys = SharedKeys::for_uri(&remote.uri);
        let previous = records::failure(host, &keys);
        let failure = FetchFailure::next(
            previous.as_ref(),
            now,
            error.detail,
            remote.policy.retry_initial_interval,
            remote.policy.retry_max_interval,
            self.worker_id ^ now,
        );
        let name = self.provider_name(provider);
        host.count(&metrics::jwks_fetch_failed(
            &self.config.metric_prefix,
            name,
            error.reason,
        ));
        log::warn!(
            "jwt-authn-wasm: provider {name}: JWKS fetch from {} failed ({} in a row): {}; keeping the last good keys, next try in {} ms",
            remote.uri,
            failure.consecutive,
            failure.reason,
            failure.retry_at_ms.saturating_sub(now)
        );
        let _ = host.set_shared_data(&keys.failure, &failure.encode(), None);
        release_lease(host, &keys);
    }

    fn store_document(
        &self,
        host: &dyn Host,
        remote: &RemoteJwks,
        document: &[u8],
        ttl: Duration,
        now: u64,
    ) {
        let keys = SharedKeys::for_uri(&remote.uri);
        let previous = records::meta(host, &keys).map_or(0, |m| m.version);
        let meta = JwksMeta {
            version: previous.saturating_add(1),
            fetched_at_ms: now,
            ttl_ms: millis(ttl),
        };
        // The document goes first: a worker that sees the new meta must find a document at least as new.
        let _ = host.set_shared_data(&keys.doc, &encode_doc(meta.version, document), None);
        let _ = host.set_shared_data(&keys.meta, &meta.encode(), None);
        let _ = host.set_shared_data(&keys.failure, b"", None);
        release_lease(host, &keys);
    }

    /// Handles the response to callout `token` (`num_headers` 0: the callout failed): stores the new
    /// set for every worker, follows an OpenID configuration to its `jwks_uri`, or records a failure.
    /// `false` when the callout is not one of this fetcher's.
    pub fn on_response(
        &mut self,
        host: &dyn Host,
        token: u32,
        num_headers: usize,
        body_size: usize,
        now: u64,
    ) -> bool {
        let Some(flight) = self.in_flight.remove(&token) else {
            return false;
        };
        let config = self.config.clone();
        let Some(JwksSource::Remote(remote)) = config
            .providers
            .get(flight.provider)
            .map(|p| &p.jwks_source)
        else {
            return false;
        };
        let body = response_body(host, num_headers, body_size, remote.policy.limits.max_bytes);
        let outcome = body.and_then(|body| match flight.stage {
            FetchStage::Discovery => {
                self.on_discovery_response(host, flight.provider, remote, &body, now)
            }
            FetchStage::Jwks => self.on_jwks_response(host, flight.provider, remote, &body, now),
        });
        if let Err(error) = outcome {
            self.record_failure(host, flight.provider, remote, now, error);
        }
        true
    }

    /// Handles the JWKS document: validated and stored for every worker, or refused.
    fn on_jwks_response(
        &self,
        host: &dyn Host,
        provider: ProviderId,
        remote: &RemoteJwks,
        body: &[u8],
        now: u64,
    ) -> Result<(), FetchError> {
        let jwks = parse_jwks_with_limits(body, remote.policy.limits)
            .map_err(|e| FetchError::new(e.reason(), e.to_string()))?;
        let name = self.provider_name(provider);
        for skipped in &jwks.skipped {
            log::info!(
                "jwt-authn-wasm: provider {name}: JWKS from {}: skipped {skipped}",
                remote.uri
            );
        }
        let cache_control = host.call_response_header("cache-control");
        let ttl = ttl_for_response(
            cache_control.as_deref(),
            remote.cache_duration,
            &remote.policy,
        );
        log::info!(
            "jwt-authn-wasm: provider {name}: fetched JWKS from {}: {} usable key(s), fresh for {} s",
            remote.uri,
            jwks.keys.len(),
            ttl.as_secs()
        );
        host.count(&metrics::jwks_fetch_success(
            &self.config.metric_prefix,
            name,
        ));
        self.store_document(host, remote, body, ttl, now);
        Ok(())
    }

    /// Handles the OpenID configuration document: follows its `jwks_uri` through the same cluster.
    fn on_discovery_response(
        &mut self,
        host: &dyn Host,
        provider: ProviderId,
        remote: &RemoteJwks,
        body: &[u8],
        now: u64,
    ) -> Result<(), FetchError> {
        let jwks_uri =
            discovered_jwks_uri(body).map_err(|e| FetchError::new("discovery_failed", e))?;
        let (authority, path) = split_http_uri(&jwks_uri)
            .map_err(|e| FetchError::new("discovery_failed", format!("jwks_uri: {e}")))?;
        let keys = SharedKeys::for_uri(&remote.uri);
        let _ = host.set_shared_data(
            &keys.lease,
            &self.lease_until(remote.timeout, now).encode(),
            None,
        );
        self.dispatch(host, provider, remote, &authority, &path, FetchStage::Jwks)
    }
}

fn release_lease(host: &dyn Host, keys: &SharedKeys) {
    let _ = host.set_shared_data(&keys.lease, b"", None);
}

/// The callout's body, refused when there is no response, the status is not 200 or the body is over
/// `max_bytes`.
fn response_body(
    host: &dyn Host,
    num_headers: usize,
    body_size: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let status = if num_headers == 0 {
        None
    } else {
        host.call_response_header(":status")
    };
    match status.as_deref() {
        None => Err(FetchError::new(
            "no_response",
            "no response (timeout, connection refused or reset)",
        )),
        Some(b"200") if body_size > max_bytes => Err(FetchError::new(
            "too_large",
            format!("body of {body_size} bytes is over the limit of {max_bytes} (max_jwks_bytes)"),
        )),
        Some(b"200") => Ok(host.call_response_body(body_size).unwrap_or_default()),
        // Envoy answers a callout that ran out of time with a local 504.
        Some(b"504") => Err(FetchError::new("timeout", "HTTP status 504 (timeout)")),
        Some(other) => Err(FetchError::new(
            "http_status",
            format!("HTTP status {}", String::from_utf8_lossy(other)),
        )),
    }
}

/// A process-unique id for this worker's root context, from a shared counter.
fn allocate_worker_id(host: &dyn Host, context_id: u32) -> u64 {
    for _ in 0..16 {
        let Ok((current, cas)) = host.get_shared_data(WORKER_COUNTER_KEY) else {
            break;
        };
        let next = current
            .and_then(|b| records::decode_number(&b))
            .unwrap_or(0)
            .saturating_add(1);
        match host.set_shared_data(WORKER_COUNTER_KEY, next.to_string().as_bytes(), cas) {
            Ok(()) => return (next << 32) | u64::from(context_id),
            Err(SharedDataError::CasMismatch | SharedDataError::Refused) => {}
        }
    }
    (host.now_ms() << 20) | u64::from(context_id)
}
