//! The root context: parses the configuration once, and on every tick keeps each remote JWKS fresh.
//!
//! Workers coordinate through shared data (see [`crate::jwks::shared_data`]): whichever worker first finds a
//! JWKS due (refresh time, or a refetch asked for by an unknown kid) takes the fetch lease with
//! compare-and-swap and fetches it through the configured cluster — with `oidc_discovery`, first the
//! OpenID configuration, then the `jwks_uri` it names. Every worker picks the new version up from shared
//! data on its next tick. Requests paused for keys are resumed here: in the fetching worker as soon as
//! the response arrives, in the others on their tick.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::config::{split_http_uri, FilterConfig, JwksSource, ProviderId, RemoteJwks};
use crate::glue::abi::{call_response_body, call_response_header};
use crate::glue::http_context::JwtAuthnFilter;
use crate::glue::worker::{
    apply_verdict_to, count, flush_allowed, gauge, now_ms, remote_of, shared_data,
    SharedWorkerState, WaitReason, WorkerState,
};
use crate::jwks::{
    discovered_jwks_uri, encode_doc, fetch_due, millis, parse_jwks_with_limits, ttl_for_response,
    FetchFailure, FetchLease, JwksMeta, SharedKeys,
};
use crate::metrics;

/// How often each worker checks shared data for new keys, due fetches and waiting requests.
const TICK_PERIOD: Duration = Duration::from_millis(100);
/// Shared-data key of the counter that hands out worker ids (lease holders).
const WORKER_COUNTER_KEY: &str = "jwt_authn_wasm.v2|worker_counter";

/// Which step of a fetch a callout is.
enum FetchStage {
    /// The OpenID configuration, whose `jwks_uri` comes next.
    Discovery,
    /// The JWKS document itself.
    Jwks,
}

struct InFlight {
    provider: ProviderId,
    stage: FetchStage,
}

/// A failed fetch: what to log, and the metric reason.
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

pub struct FilterRoot {
    context_id: u32,
    worker_id: u64,
    state: Option<SharedWorkerState>,
    in_flight: HashMap<u32, InFlight>,
}

impl FilterRoot {
    pub fn new(context_id: u32) -> FilterRoot {
        FilterRoot {
            context_id,
            worker_id: 0,
            state: None,
            in_flight: HashMap::new(),
        }
    }

    fn config(&self) -> Option<Rc<FilterConfig>> {
        self.state.as_ref().map(|s| s.borrow().config.clone())
    }

    fn provider_name(&self, provider: ProviderId) -> String {
        self.config()
            .and_then(|c| c.providers.get(provider).map(|p| p.name.clone()))
            .unwrap_or_default()
    }

    /// This configuration's metric prefix.
    fn metric_prefix(&self) -> Rc<str> {
        self.config()
            .map_or_else(|| Rc::from(metrics::PREFIX), |c| c.metric_prefix.clone())
    }

    /// Starts a fetch of `remote` if it is due and this worker wins the lease.
    fn maybe_fetch(&mut self, provider: ProviderId, remote: &RemoteJwks, now: u64) {
        if self.in_flight.values().any(|f| f.provider == provider) {
            return;
        }
        let keys = SharedKeys::for_uri(&remote.uri);
        let meta = shared_data(&keys.meta).and_then(|m| JwksMeta::decode(&m));
        let failure = shared_data(&keys.failure).and_then(|f| FetchFailure::decode(&f));
        let kid_refetch = shared_data(&keys.kid_refetch)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok());
        if !fetch_due(meta.as_ref(), failure.as_ref(), kid_refetch, now) {
            return;
        }
        if !self.take_lease(&keys.lease, remote.timeout, now) {
            return;
        }
        let stage = if remote.oidc_discovery {
            FetchStage::Discovery
        } else {
            FetchStage::Jwks
        };
        if let Err(error) = self.dispatch(provider, remote, &remote.authority, &remote.path, stage)
        {
            self.record_failure(provider, remote, now, error);
        }
    }

    fn dispatch(
        &mut self,
        provider: ProviderId,
        remote: &RemoteJwks,
        authority: &str,
        path: &str,
        stage: FetchStage,
    ) -> Result<(), FetchError> {
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", "jwt-authn-wasm"),
        ];
        match hostcalls::dispatch_http_call(&remote.cluster, headers, None, vec![], remote.timeout)
        {
            Ok(token) => {
                self.in_flight.insert(token, InFlight { provider, stage });
                Ok(())
            }
            Err(status) => Err(FetchError::new(
                "dispatch_failed",
                format!(
                    "cannot call cluster \"{}\" ({status:?}); is it defined in Envoy?",
                    remote.cluster
                ),
            )),
        }
    }

    /// Takes the fetch lease of a URI with compare-and-swap, then reads it back to be sure.
    fn take_lease(&self, lease_key: &str, timeout: Duration, now: u64) -> bool {
        let (current, cas) = match hostcalls::get_shared_data(lease_key) {
            Ok(found) => found,
            Err(_) => return false,
        };
        let current = current.and_then(|bytes| FetchLease::decode(&bytes));
        if !FetchLease::is_free_for(current.as_ref(), now) {
            return false;
        }
        let lease = self.lease_until(timeout, now);
        if hostcalls::set_shared_data(lease_key, Some(&lease.encode()), cas).is_err() {
            return false;
        }
        shared_data(lease_key).and_then(|b| FetchLease::decode(&b)) == Some(lease)
    }

    /// A lease for one callout: it ends by its timeout; a second of slack covers a worker that dies
    /// holding it. Discovery renews it for the second callout.
    fn lease_until(&self, timeout: Duration, now: u64) -> FetchLease {
        FetchLease {
            holder: self.worker_id,
            expires_at_ms: now.saturating_add(millis(timeout)).saturating_add(1000),
        }
    }

    fn release_lease(&self, lease_key: &str) {
        let _ = hostcalls::set_shared_data(lease_key, Some(b""), None);
    }

    fn record_failure(
        &self,
        provider: ProviderId,
        remote: &RemoteJwks,
        now: u64,
        error: FetchError,
    ) {
        let keys = SharedKeys::for_uri(&remote.uri);
        let previous = shared_data(&keys.failure).and_then(|f| FetchFailure::decode(&f));
        let failure = FetchFailure::next(
            previous.as_ref(),
            now,
            error.detail,
            remote.policy.retry_initial_interval,
            remote.policy.retry_max_interval,
            self.worker_id ^ now,
        );
        let name = self.provider_name(provider);
        count(&metrics::jwks_fetch_failed(
            &self.metric_prefix(),
            &name,
            error.reason,
        ));
        log::warn!(
            "jwt-authn-wasm: provider {name}: JWKS fetch from {} failed ({} in a row): {}; keeping the last good keys, next try in {} ms",
            remote.uri,
            failure.consecutive,
            failure.reason,
            failure.retry_at_ms.saturating_sub(now)
        );
        let _ = hostcalls::set_shared_data(&keys.failure, Some(&failure.encode()), None);
        self.release_lease(&keys.lease);
    }

    fn store_document(&self, remote: &RemoteJwks, document: &[u8], ttl: Duration, now: u64) {
        let keys = SharedKeys::for_uri(&remote.uri);
        let previous = shared_data(&keys.meta)
            .and_then(|m| JwksMeta::decode(&m))
            .map_or(0, |m| m.version);
        let meta = JwksMeta {
            version: previous.saturating_add(1),
            fetched_at_ms: now,
            ttl_ms: millis(ttl),
        };
        // The document goes first: a worker that sees the new meta must find a document at least as new.
        let _ =
            hostcalls::set_shared_data(&keys.doc, Some(&encode_doc(meta.version, document)), None);
        let _ = hostcalls::set_shared_data(&keys.meta, Some(&meta.encode()), None);
        let _ = hostcalls::set_shared_data(&keys.failure, Some(b""), None);
        self.release_lease(&keys.lease);
    }

    /// Handles the JWKS response: validated, stored for every worker, or counted as a failure.
    fn on_jwks_response(
        &self,
        provider: ProviderId,
        remote: &RemoteJwks,
        num_headers: usize,
        body_size: usize,
        now: u64,
    ) -> Result<(), FetchError> {
        let body = response_body(num_headers, body_size, remote.policy.limits.max_bytes)?;
        let jwks = parse_jwks_with_limits(&body, remote.policy.limits)
            .map_err(|e| FetchError::new(e.reason(), e.to_string()))?;
        let name = self.provider_name(provider);
        for skipped in &jwks.skipped {
            log::info!(
                "jwt-authn-wasm: provider {name}: JWKS from {}: skipped {skipped}",
                remote.uri
            );
        }
        let cache_control = call_response_header("cache-control");
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
        count(&metrics::jwks_fetch_success(&self.metric_prefix(), &name));
        self.store_document(remote, &body, ttl, now);
        Ok(())
    }

    /// Handles the OpenID configuration: follows its `jwks_uri` through the same cluster.
    fn on_discovery_response(
        &mut self,
        provider: ProviderId,
        remote: &RemoteJwks,
        num_headers: usize,
        body_size: usize,
        now: u64,
    ) -> Result<(), FetchError> {
        let body = response_body(num_headers, body_size, remote.policy.limits.max_bytes)?;
        let jwks_uri =
            discovered_jwks_uri(&body).map_err(|e| FetchError::new("discovery_failed", e))?;
        let (authority, path) = split_http_uri(&jwks_uri)
            .map_err(|e| FetchError::new("discovery_failed", format!("jwks_uri: {e}")))?;
        let keys = SharedKeys::for_uri(&remote.uri);
        let _ = hostcalls::set_shared_data(
            &keys.lease,
            Some(&self.lease_until(remote.timeout, now).encode()),
            None,
        );
        self.dispatch(provider, remote, &authority, &path, FetchStage::Jwks)
    }

    /// Resumes requests whose keys are here, and settles those whose wait is over.
    fn settle_waiting(&self, now: u64) {
        let Some(state) = &self.state else { return };
        let (config, waiting) = {
            let mut worker = state.borrow_mut();
            if worker.waiting.is_empty() {
                return;
            }
            let mut providers: Vec<ProviderId> =
                worker.waiting.iter().map(|w| w.provider).collect();
            providers.sort_unstable();
            providers.dedup();
            for provider in providers {
                worker.sync_from_shared(provider);
            }
            (worker.config.clone(), std::mem::take(&mut worker.waiting))
        };
        let mut still_waiting = Vec::new();
        for mut waiting in waiting {
            let keys = state.borrow().keys_of(waiting.provider, now);
            let arrived = keys
                .as_ref()
                .is_some_and(|(version, _)| *version >= waiting.min_version);
            let failed_since_arrival = remote_of(&config, waiting.provider).is_none_or(|remote| {
                shared_data(&SharedKeys::for_uri(&remote.uri).failure)
                    .and_then(|f| FetchFailure::decode(&f))
                    .is_some_and(|f| f.failed_at_ms >= waiting.started_at_ms)
            });
            let out_of_time = failed_since_arrival || now >= waiting.deadline_ms;
            if !arrived && !out_of_time {
                still_waiting.push(waiting);
                continue;
            }
            if arrived && !out_of_time {
                // Another provider of the same request may still have no keys: wait for it next.
                let missing = waiting
                    .pending
                    .providers_needing_keys()
                    .into_iter()
                    .find(|&p| {
                        remote_of(&config, p).is_some() && state.borrow().keys_of(p, now).is_none()
                    });
                if let Some(provider) = missing {
                    waiting.provider = provider;
                    waiting.min_version = 1;
                    waiting.reason = WaitReason::FirstKeys;
                    still_waiting.push(waiting);
                    continue;
                }
            }
            // Judge with the keys at hand: a provider without keys fails its tokens with "Jwks remote
            // fetch is failed"; an unknown kid whose refetch brought nothing fails as no key fits.
            let verdict = {
                let mut worker = state.borrow_mut();
                let keys = worker.keys_snapshot(now);
                waiting.pending.finish(
                    &config,
                    &|p| keys.get(p).cloned().flatten(),
                    &mut worker.token_caches,
                )
            };
            apply_verdict_to(
                waiting.context_id,
                &waiting.released,
                verdict,
                &config.metric_prefix,
            );
        }
        state.borrow_mut().waiting.extend(still_waiting);
        // Callouts and later host calls must act for the root again, not for the last resumed stream.
        let _ = hostcalls::set_effective_context(self.context_id);
    }

    /// Publishes each provider's key count and key age.
    fn update_gauges(&self, config: &FilterConfig, now: u64) {
        let Some(state) = &self.state else { return };
        // This VM's linear memory: every worker's VM is alike, so the last one written stands for all.
        let pages = core::arch::wasm32::memory_size(0);
        gauge(
            &metrics::vm_memory_bytes(&config.metric_prefix),
            u64::try_from(pages).unwrap_or(0).saturating_mul(64 * 1024),
        );
        let worker = state.borrow();
        for (provider, entry) in config.providers.iter().enumerate() {
            let keys = worker
                .keys_of(provider, now)
                .map_or(0, |(_, jwks)| jwks.keys.len());
            gauge(
                &metrics::keys_in_use(&config.metric_prefix, &entry.name),
                u64::try_from(keys).unwrap_or(u64::MAX),
            );
            if let JwksSource::Remote(remote) = &entry.jwks_source {
                if let Some(meta) = shared_data(&SharedKeys::for_uri(&remote.uri).meta)
                    .and_then(|m| JwksMeta::decode(&m))
                {
                    gauge(
                        &metrics::jwks_age_seconds(&config.metric_prefix, &entry.name),
                        now.saturating_sub(meta.fetched_at_ms) / 1000,
                    );
                }
            }
        }
    }
}

/// The callout's body, refused when there is no response, the status is not 200 or the body is over
/// `max_bytes`. Read through [`crate::glue::abi`]: the SDK's accessors trap the VM on a failed callout.
fn response_body(
    num_headers: usize,
    body_size: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let status = if num_headers == 0 {
        None
    } else {
        call_response_header(":status")
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
        Some(b"200") => Ok(call_response_body(body_size).unwrap_or_default()),
        // Envoy answers a callout that ran out of time with a local 504.
        Some(b"504") => Err(FetchError::new("timeout", "HTTP status 504 (timeout)")),
        Some(other) => Err(FetchError::new(
            "http_status",
            format!("HTTP status {}", String::from_utf8_lossy(other)),
        )),
    }
}

impl Context for FilterRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(flight) = self.in_flight.remove(&token) else {
            return;
        };
        let now = now_ms();
        let Some(config) = self.config() else { return };
        let Some(remote) = remote_of(&config, flight.provider).cloned() else {
            return;
        };
        let outcome = match flight.stage {
            FetchStage::Discovery => {
                self.on_discovery_response(flight.provider, &remote, num_headers, body_size, now)
            }
            FetchStage::Jwks => {
                self.on_jwks_response(flight.provider, &remote, num_headers, body_size, now)
            }
        };
        if let Err(error) = outcome {
            self.record_failure(flight.provider, &remote, now, error);
        }
        self.settle_waiting(now);
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        let config = match FilterConfig::parse(&raw) {
            Ok(config) => config,
            Err(error) => {
                log::error!("jwt-authn-wasm: configuration refused: {error}");
                return false;
            }
        };
        self.worker_id = allocate_worker_id(self.context_id);
        // Compare-and-swap is only enforced on keys that exist, so create every lease key (free) before
        // any worker contends for it; workers configure before their first tick.
        for provider in &config.providers {
            if let JwksSource::Remote(remote) = &provider.jwks_source {
                let lease_key = SharedKeys::for_uri(&remote.uri).lease;
                if matches!(hostcalls::get_shared_data(&lease_key), Ok((None, _))) {
                    let _ = hostcalls::set_shared_data(&lease_key, Some(b""), None);
                }
            }
        }
        self.state = Some(Rc::new(RefCell::new(WorkerState::new(Rc::new(config)))));
        // The first tick comes quickly so the first fetch starts before traffic does.
        self.set_tick_period(Duration::from_millis(1));
        true
    }

    fn on_tick(&mut self) {
        self.set_tick_period(TICK_PERIOD);
        let Some(config) = self.config() else { return };
        let now = now_ms();
        for (provider, entry) in config.providers.iter().enumerate() {
            if let JwksSource::Remote(remote) = &entry.jwks_source {
                if let Some(state) = &self.state {
                    state.borrow_mut().sync_from_shared(provider);
                }
                self.maybe_fetch(provider, remote, now);
            }
        }
        self.settle_waiting(now);
        if let Some(state) = &self.state {
            state.borrow_mut().drop_stale_caches(now);
        }
        self.update_gauges(&config, now);
        flush_allowed();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(JwtAuthnFilter::new(
            context_id,
            self.state.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A process-unique id for this worker's root context, from a shared counter.
fn allocate_worker_id(context_id: u32) -> u64 {
    for _ in 0..16 {
        let Ok((current, cas)) = hostcalls::get_shared_data(WORKER_COUNTER_KEY) else {
            break;
        };
        let next = current
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_add(1);
        if hostcalls::set_shared_data(WORKER_COUNTER_KEY, Some(next.to_string().as_bytes()), cas)
            .is_ok()
        {
            return (next << 32) | u64::from(context_id);
        }
    }
    (now_ms() << 20) | u64::from(context_id)
}
