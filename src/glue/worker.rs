//! What one Envoy worker's VM holds between callbacks: the configuration, its parsed keys, the requests
//! waiting for keys; and the host calls both contexts share (clock, metrics, applying a verdict).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, MetricType};

use crate::config::{FilterConfig, JwksSource, ProviderId, RemoteJwks};
use crate::jwks::{decode_doc, parse_jwks_with_limits, Jwks, JwksMeta, SharedKeys, WorkerKeys};
use crate::metrics;
use crate::request::authenticator::{PendingAuth, Verdict};
use crate::request::token_cache::TokenCaches;

/// Why a paused request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// No keys yet: refused with "Jwks remote fetch is failed" if none come in time.
    FirstKeys,
    /// A token's kid is not in the set and a refetch was asked for: if it brings nothing in time, the
    /// request is judged with the keys at hand.
    UnknownKid,
}

/// Whether the filter has let a request through. Shared by the request's HTTP context, which holds its
/// body and trailers until then, and the root context, which may decide for it later.
pub type Released = Rc<Cell<bool>>;

/// A paused request waiting for keys.
pub struct WaitingRequest {
    pub context_id: u32,
    pub released: Released,
    pub pending: PendingAuth,
    /// The provider whose keys it waits for now (one at a time, when several are needed).
    pub provider: ProviderId,
    pub started_at_ms: u64,
    pub deadline_ms: u64,
    /// Finish once this worker holds keys of at least this version.
    pub min_version: u64,
    pub reason: WaitReason,
}

/// Per-worker state, shared by the root context and the HTTP contexts of one VM.
pub struct WorkerState {
    pub config: Rc<FilterConfig>,
    /// Parsed keys per provider, indexed by [`ProviderId`].
    pub keys: Vec<WorkerKeys>,
    pub waiting: Vec<WaitingRequest>,
    /// Tokens this worker already verified, per provider.
    pub token_caches: TokenCaches,
}

pub type SharedWorkerState = Rc<RefCell<WorkerState>>;

impl WorkerState {
    pub fn new(config: Rc<FilterConfig>) -> WorkerState {
        let keys = config
            .providers
            .iter()
            .map(|provider| match &provider.jwks_source {
                JwksSource::Local(jwks) => WorkerKeys {
                    version: 1,
                    jwks: Some(Rc::new(jwks.clone())),
                    usable_until_ms: u64::MAX,
                },
                JwksSource::Remote(_) => WorkerKeys::default(),
            })
            .collect();
        WorkerState {
            token_caches: TokenCaches::for_config(&config),
            config,
            keys,
            waiting: Vec::new(),
        }
    }

    /// The provider's usable keys as this worker knows them, with their version.
    pub fn keys_of(&self, provider: ProviderId, now_ms: u64) -> Option<(u64, Rc<Jwks>)> {
        let keys = self.keys.get(provider)?;
        keys.usable(now_ms).map(|jwks| (keys.version, jwks.clone()))
    }

    /// Every provider's usable keys, indexed by [`ProviderId`].
    pub fn keys_snapshot(&self, now_ms: u64) -> Vec<Option<Rc<Jwks>>> {
        (0..self.keys.len())
            .map(|p| self.keys_of(p, now_ms).map(|(_, jwks)| jwks))
            .collect()
    }

    /// Forgets cached tokens of providers whose keys went staler than allowed.
    pub fn drop_stale_caches(&mut self, now_ms: u64) {
        for provider in 0..self.keys.len() {
            if self.keys_of(provider, now_ms).is_none() && self.token_caches.len(provider) > 0 {
                self.token_caches.clear(provider);
            }
        }
    }

    /// Picks up a newer shared JWKS document for `provider`, parsing it once for this worker.
    pub fn sync_from_shared(&mut self, provider: ProviderId) {
        let Some(remote) = remote_of(&self.config, provider).cloned() else {
            return;
        };
        let shared_keys = SharedKeys::for_uri(&remote.uri);
        let Some(meta) = shared_data(&shared_keys.meta).and_then(|m| JwksMeta::decode(&m)) else {
            return;
        };
        let Some(local) = self.keys.get_mut(provider) else {
            return;
        };
        if meta.version <= local.version {
            return;
        }
        let Some(doc) = shared_data(&shared_keys.doc) else {
            return;
        };
        let Some((version, document)) = decode_doc(&doc) else {
            return;
        };
        local.version = version.max(meta.version);
        match parse_jwks_with_limits(document, remote.policy.limits) {
            Ok(jwks) => {
                local.jwks = Some(Rc::new(jwks));
                local.usable_until_ms = meta.usable_until_ms(remote.policy.max_staleness);
                // Tokens verified with the old set must be verified again with the new one.
                self.token_caches.clear(provider);
            }
            Err(error) => {
                // The fetcher stores only documents that parsed, so this is another configuration with
                // tighter limits sharing the vm_id; keep the keys we have.
                log::warn!(
                    "jwt-authn-wasm: shared JWKS for {} refused here: {error}",
                    remote.uri
                );
            }
        }
    }
}

/// The remote JWKS settings of a provider, if its keys are fetched.
pub fn remote_of(config: &FilterConfig, provider: ProviderId) -> Option<&RemoteJwks> {
    match config.providers.get(provider).map(|p| &p.jwks_source) {
        Some(JwksSource::Remote(remote)) => Some(remote),
        _ => None,
    }
}

/// The value under `key` in shared data; empty values (removed keys) count as absent.
pub fn shared_data(key: &str) -> Option<Vec<u8>> {
    match hostcalls::get_shared_data(key) {
        Ok((Some(value), _)) if !value.is_empty() => Some(value),
        _ => None,
    }
}

/// Host time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

thread_local! {
    /// Metric ids of this VM, defined on first use (one VM per thread).
    static METRIC_IDS: RefCell<HashMap<(String, bool), u32>> = RefCell::new(HashMap::new());
}

fn metric_id(name: &str, gauge: bool) -> Option<u32> {
    METRIC_IDS.with(|ids| {
        let mut ids = ids.try_borrow_mut().ok()?;
        if let Some(id) = ids.get(&(name.to_string(), gauge)) {
            return Some(*id);
        }
        let kind = if gauge {
            MetricType::Gauge
        } else {
            MetricType::Counter
        };
        let id = hostcalls::define_metric(kind, name).ok()?;
        ids.insert((name.to_string(), gauge), id);
        Some(id)
    })
}

thread_local! {
    /// Allowed requests not yet added to the `allowed` counter, per metric prefix (one per configuration
    /// in this VM, so a handful at most). Counted here and flushed on a root context's tick (every
    /// 100 ms): a host call per request measurably slows the hot path.
    static ALLOWED_PENDING: RefCell<Vec<(Rc<str>, u64)>> = const { RefCell::new(Vec::new()) };
}

fn count_allowed(metric_prefix: &Rc<str>) {
    ALLOWED_PENDING.with(|pending| {
        let Ok(mut pending) = pending.try_borrow_mut() else {
            return;
        };
        // The same configuration passes the same Rc every time: a pointer comparison finds it.
        match pending
            .iter_mut()
            .find(|(prefix, _)| Rc::ptr_eq(prefix, metric_prefix) || prefix == metric_prefix)
        {
            Some((_, count)) => *count = count.saturating_add(1),
            None => pending.push((metric_prefix.clone(), 1)),
        }
    });
}

/// Adds the allowed requests counted since the last flush to each configuration's `allowed` counter.
pub fn flush_allowed() {
    let pending: Vec<(Rc<str>, u64)> = ALLOWED_PENDING.with(|pending| {
        pending
            .try_borrow_mut()
            .map(|mut pending| {
                pending
                    .iter_mut()
                    .filter(|(_, count)| *count > 0)
                    .map(|(prefix, count)| (prefix.clone(), std::mem::take(count)))
                    .collect()
            })
            .unwrap_or_default()
    });
    for (prefix, count) in pending {
        if let Some(id) = metric_id(&metrics::allowed(&prefix), false) {
            let _ = hostcalls::increment_metric(id, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
}

/// Adds one to a counter.
pub fn count(name: &str) {
    if let Some(id) = metric_id(name, false) {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

/// Sets a gauge.
pub fn gauge(name: &str, value: u64) {
    if let Some(id) = metric_id(name, true) {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// Applies a verdict to the current (effective) HTTP stream and marks it `released` when allowed.
/// `resume` is set when the stream was paused and this runs from another callback; a request that is let
/// through in its own header callback continues by returning `Action::Continue` instead.
pub fn apply_verdict(
    verdict: Verdict,
    released: &Cell<bool>,
    resume: bool,
    metric_prefix: &Rc<str>,
) {
    match verdict {
        Verdict::Allow(mutations) => {
            released.set(true);
            count_allowed(metric_prefix);
            for reason in &mutations.would_deny {
                count(&metrics::would_deny(metric_prefix, reason));
                log::info!("jwt-authn-wasm: report-only: would refuse ({reason})");
            }
            for name in &mutations.remove_headers {
                let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None);
            }
            // Added, not set: client copies were removed above, and two tokens may each bring a value
            // (as jwt_authn adds one per verified token).
            for (name, value) in &mutations.set_headers {
                let _ = hostcalls::add_map_value_bytes(
                    MapType::HttpRequestHeaders,
                    name,
                    value.as_bytes(),
                );
            }
            for (name, payload) in &mutations.filter_state {
                crate::glue::abi::set_filter_state(name, payload.as_bytes());
            }
            if let Some(path) = &mutations.new_path {
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpRequestHeaders,
                    ":path",
                    Some(path.as_slice()),
                );
            }
            if resume {
                let _ = hostcalls::resume_http_request();
            }
        }
        Verdict::Deny(reply) => {
            count(&metrics::denied(metric_prefix, reply.reason));
            let mut headers = Vec::with_capacity(2);
            if let Some(challenge) = &reply.www_authenticate {
                headers.push(("www-authenticate", challenge.as_str()));
            }
            if !reply.body.is_empty() {
                headers.push(("content-type", reply.content_type));
            }
            let _ =
                hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
        }
    }
}

/// Resumes (or refuses) a request paused in another context of this VM. Nothing happens when the
/// stream is gone (the client went away).
pub fn apply_verdict_to(
    context_id: u32,
    released: &Cell<bool>,
    verdict: Verdict,
    metric_prefix: &Rc<str>,
) {
    if hostcalls::set_effective_context(context_id).is_ok() {
        apply_verdict(verdict, released, true, metric_prefix);
    }
}
