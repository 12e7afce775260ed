//! The root context: parses the configuration once, and on every tick keeps each remote JWKS fresh.
//!
//! Workers coordinate through shared data (see [`crate::jwks_cache`]): whichever worker first finds the
//! document due takes the fetch lease with compare-and-swap and fetches it through the configured cluster;
//! every worker picks the new version up from shared data on its next tick. Requests paused for keys are
//! resumed here, in the fetching worker as soon as the response arrives and in the others on their tick.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::auth_error::AuthError;
use crate::config::{FilterConfig, JwksSource, ProviderId, RemoteJwks};
use crate::filter::JwtAuthnFilter;
use crate::jwks::{parse_jwks, MAX_JWKS_BYTES};
use crate::jwks_cache::{
    encode_doc, fetch_due, millis, FetchFailure, FetchLease, JwksMeta, SharedKeys,
};
use crate::worker::{
    apply_verdict_to, finish_waiting, now_ms, shared_data, SharedWorkerState, WorkerState,
};

/// How often each worker checks shared data for new keys, due fetches and waiting requests.
const TICK_PERIOD: Duration = Duration::from_millis(100);
/// Shared-data key of the counter that hands out worker ids (lease holders).
const WORKER_COUNTER_KEY: &str = "jwt_authn_wasm.v1|worker_counter";

pub struct JwksFetcherRoot {
    context_id: u32,
    worker_id: u64,
    state: Option<SharedWorkerState>,
    /// Callouts in flight: token → (provider, JWKS URI).
    in_flight: HashMap<u32, (ProviderId, String)>,
}

impl JwksFetcherRoot {
    pub fn new(context_id: u32) -> JwksFetcherRoot {
        JwksFetcherRoot {
            context_id,
            worker_id: 0,
            state: None,
            in_flight: HashMap::new(),
        }
    }

    fn config(&self) -> Option<Rc<FilterConfig>> {
        self.state.as_ref().map(|s| s.borrow().config.clone())
    }

    /// Starts a fetch of `remote` if it is due and this worker wins the lease.
    fn maybe_fetch(&mut self, provider: ProviderId, remote: &RemoteJwks, now: u64) {
        if self.in_flight.values().any(|(_, uri)| uri == &remote.uri) {
            return;
        }
        let keys = SharedKeys::for_uri(&remote.uri);
        let meta = shared_data(&keys.meta).and_then(|m| JwksMeta::decode(&m));
        let failure = shared_data(&keys.failure).and_then(|f| FetchFailure::decode(&f));
        if !fetch_due(meta.as_ref(), failure.as_ref(), remote.cache_duration, now) {
            return;
        }
        if !self.take_lease(&keys.lease, remote.timeout, now) {
            return;
        }
        let headers = vec![
            (":method", "GET"),
            (":path", remote.path.as_str()),
            (":authority", remote.authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "jwt-authn-wasm"),
        ];
        match hostcalls::dispatch_http_call(&remote.cluster, headers, None, vec![], remote.timeout)
        {
            Ok(token) => {
                self.in_flight.insert(token, (provider, remote.uri.clone()));
            }
            Err(status) => {
                let reason = format!(
                    "cannot call cluster \"{}\" ({status:?}); is it defined in Envoy?",
                    remote.cluster
                );
                self.record_failure(&keys, failure.as_ref(), now, reason, &remote.uri);
            }
        }
    }

    /// Takes the fetch lease of a URI with compare-and-swap, then reads it back: the swap is not enforced
    /// on a key that does not exist yet, and the read-back settles that first race.
    fn take_lease(&self, lease_key: &str, timeout: Duration, now: u64) -> bool {
        let (current, cas) = match hostcalls::get_shared_data(lease_key) {
            Ok(found) => found,
            Err(_) => return false,
        };
        let current = current.and_then(|bytes| FetchLease::decode(&bytes));
        if !FetchLease::is_free_for(current.as_ref(), now) {
            return false;
        }
        let lease = FetchLease {
            holder: self.worker_id,
            // The callout ends by its timeout; a second of slack covers a worker that dies holding it.
            expires_at_ms: now.saturating_add(millis(timeout)).saturating_add(1000),
        };
        if hostcalls::set_shared_data(lease_key, Some(&lease.encode()), cas).is_err() {
            return false;
        }
        shared_data(lease_key).and_then(|b| FetchLease::decode(&b)) == Some(lease)
    }

    fn release_lease(&self, lease_key: &str) {
        let _ = hostcalls::set_shared_data(lease_key, Some(b""), None);
    }

    fn record_failure(
        &self,
        keys: &SharedKeys,
        previous: Option<&FetchFailure>,
        now: u64,
        reason: String,
        uri: &str,
    ) {
        let failure = FetchFailure::next(previous, now, reason);
        log::warn!(
            "jwt-authn-wasm: JWKS fetch from {uri} failed ({} in a row): {}; keeping the last good keys, next try in {} ms",
            failure.consecutive,
            failure.reason,
            failure.retry_at_ms.saturating_sub(now)
        );
        let _ = hostcalls::set_shared_data(&keys.failure, Some(&failure.encode()), None);
        self.release_lease(&keys.lease);
    }

    fn store_document(&self, keys: &SharedKeys, document: &[u8], now: u64) {
        let previous = shared_data(&keys.meta)
            .and_then(|m| JwksMeta::decode(&m))
            .map_or(0, |m| m.version);
        let meta = JwksMeta {
            version: previous.saturating_add(1),
            fetched_at_ms: now,
        };
        // The document goes first: a worker that sees the new meta must find a document at least as new.
        let _ =
            hostcalls::set_shared_data(&keys.doc, Some(&encode_doc(meta.version, document)), None);
        let _ = hostcalls::set_shared_data(&keys.meta, Some(&meta.encode()), None);
        let _ = hostcalls::set_shared_data(&keys.failure, Some(b""), None);
        self.release_lease(&keys.lease);
    }

    /// Resumes requests whose keys are here, refuses those whose fetch failed or whose wait ran out.
    fn settle_waiting(&self, now: u64) {
        let Some(state) = &self.state else { return };
        let (config, waiting) = {
            let mut worker = state.borrow_mut();
            if worker.waiting.is_empty() {
                return;
            }
            let providers: Vec<ProviderId> =
                worker.waiting.iter().map(|w| w.pending.provider).collect();
            for provider in providers {
                worker.sync_from_shared(provider);
            }
            (worker.config.clone(), std::mem::take(&mut worker.waiting))
        };
        let mut still_waiting = Vec::new();
        for waiting in waiting {
            let jwks = state.borrow().keys_of(waiting.pending.provider);
            let waiting = match finish_waiting(&config, waiting, jwks.as_deref()) {
                Ok(()) => continue,
                Err(waiting) => waiting,
            };
            let failed_since_arrival = match config
                .providers
                .get(waiting.pending.provider)
                .map(|p| &p.jwks_source)
            {
                Some(JwksSource::Remote(remote)) => {
                    shared_data(&SharedKeys::for_uri(&remote.uri).failure)
                        .and_then(|f| FetchFailure::decode(&f))
                        .is_some_and(|f| f.failed_at_ms >= waiting.started_at_ms)
                }
                _ => true,
            };
            if failed_since_arrival || now >= waiting.deadline_ms {
                let verdict = waiting.pending.fail(AuthError::JwksFetchFailed);
                apply_verdict_to(waiting.context_id, verdict);
            } else {
                still_waiting.push(waiting);
            }
        }
        state.borrow_mut().waiting.extend(still_waiting);
        // Callouts and later host calls must act for the root again, not for the last resumed stream.
        let _ = hostcalls::set_effective_context(self.context_id);
    }
}

impl Context for JwksFetcherRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some((provider, uri)) = self.in_flight.remove(&token) else {
            return;
        };
        let now = now_ms();
        let keys = SharedKeys::for_uri(&uri);
        let status = hostcalls::get_map_value_bytes(
            proxy_wasm::types::MapType::HttpCallResponseHeaders,
            ":status",
        )
        .ok()
        .flatten()
        .and_then(|s| String::from_utf8(s).ok());
        let outcome = match status.as_deref() {
            None => Err("no response (timeout, connection refused or reset)".to_string()),
            Some("200") if body_size > MAX_JWKS_BYTES => Err(format!(
                "body of {body_size} bytes is over the limit of {MAX_JWKS_BYTES}"
            )),
            Some("200") => {
                let body = hostcalls::get_buffer(
                    proxy_wasm::types::BufferType::HttpCallResponseBody,
                    0,
                    body_size,
                )
                .ok()
                .flatten()
                .unwrap_or_default();
                parse_jwks(&body)
                    .map(|jwks| (jwks, body))
                    .map_err(|e| e.to_string())
            }
            Some(other) => Err(format!("HTTP status {other}")),
        };
        match outcome {
            Ok((jwks, body)) => {
                for skipped in &jwks.skipped {
                    log::info!("jwt-authn-wasm: JWKS from {uri}: skipped {skipped}");
                }
                log::info!(
                    "jwt-authn-wasm: fetched JWKS from {uri}: {} usable key(s)",
                    jwks.keys.len()
                );
                self.store_document(&keys, &body, now);
                if let Some(state) = &self.state {
                    state.borrow_mut().sync_from_shared(provider);
                }
            }
            Err(reason) => {
                let previous = shared_data(&keys.failure).and_then(|f| FetchFailure::decode(&f));
                self.record_failure(&keys, previous.as_ref(), now, reason, &uri);
            }
        }
        self.settle_waiting(now);
    }
}

impl RootContext for JwksFetcherRoot {
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
