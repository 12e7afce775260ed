//! What one Envoy worker's VM holds between callbacks: the configuration, its parsed keys, the requests
//! waiting for keys; and the host calls both contexts share (clock, applying a verdict).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::authenticator::{PendingAuth, Verdict};
use crate::config::{FilterConfig, JwksSource, ProviderId};
use crate::jwks::{parse_jwks, Jwks};
use crate::jwks_cache::{decode_doc, JwksMeta, SharedKeys, WorkerKeys};

/// A paused request waiting for its provider's keys.
pub struct WaitingRequest {
    pub context_id: u32,
    pub pending: PendingAuth,
    pub started_at_ms: u64,
    pub deadline_ms: u64,
}

/// Per-worker state, shared by the root context and the HTTP contexts of one VM.
pub struct WorkerState {
    pub config: Rc<FilterConfig>,
    /// Parsed keys per provider, indexed by [`ProviderId`].
    pub keys: Vec<WorkerKeys>,
    pub waiting: Vec<WaitingRequest>,
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
                },
                JwksSource::Remote(_) => WorkerKeys::default(),
            })
            .collect();
        WorkerState {
            config,
            keys,
            waiting: Vec::new(),
        }
    }

    /// The provider's keys as this worker knows them.
    pub fn keys_of(&self, provider: ProviderId) -> Option<Rc<Jwks>> {
        self.keys.get(provider).and_then(|k| k.jwks.clone())
    }

    /// Picks up a newer shared JWKS document for `provider`, parsing it once for this worker. Returns
    /// whether the keys changed.
    pub fn sync_from_shared(&mut self, provider: ProviderId) -> bool {
        let Some(JwksSource::Remote(remote)) =
            self.config.providers.get(provider).map(|p| &p.jwks_source)
        else {
            return false;
        };
        let shared_keys = SharedKeys::for_uri(&remote.uri);
        let Some(meta) = shared_data(&shared_keys.meta).and_then(|m| JwksMeta::decode(&m)) else {
            return false;
        };
        let Some(local) = self.keys.get_mut(provider) else {
            return false;
        };
        if meta.version <= local.version {
            return false;
        }
        let Some(doc) = shared_data(&shared_keys.doc) else {
            return false;
        };
        let Some((version, document)) = decode_doc(&doc) else {
            return false;
        };
        local.version = version.max(meta.version);
        match parse_jwks(document) {
            Ok(jwks) => {
                local.jwks = Some(Rc::new(jwks));
                true
            }
            Err(error) => {
                // The fetcher only stores documents that parsed, so this is a different build writing
                // the same keys; keep the keys we have.
                log::warn!(
                    "jwt-authn-wasm: shared JWKS for {} does not parse: {error}",
                    remote.uri
                );
                false
            }
        }
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

/// Applies a verdict to the current (effective) HTTP stream. `resume` is set when the stream was paused
/// and this runs from another callback; a request that is let through in its own header callback
/// continues by returning `Action::Continue` instead.
pub fn apply_verdict(verdict: Verdict, resume: bool) {
    match verdict {
        Verdict::Allow(mutations) => {
            for name in &mutations.remove_headers {
                let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None);
            }
            for (name, value) in &mutations.set_headers {
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpRequestHeaders,
                    name,
                    Some(value.as_bytes()),
                );
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
            let headers = vec![
                ("www-authenticate", reply.www_authenticate.as_str()),
                ("content-type", "text/plain"),
            ];
            let _ =
                hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
        }
    }
}

/// Resumes (or refuses) a request paused in another context of this VM. Returns false when the stream
/// is gone (client went away).
pub fn apply_verdict_to(context_id: u32, verdict: Verdict) -> bool {
    if hostcalls::set_effective_context(context_id).is_err() {
        return false;
    }
    apply_verdict(verdict, true);
    true
}

/// Finishes `waiting` with `jwks` when there are keys; otherwise hands it back.
pub fn finish_waiting(
    config: &FilterConfig,
    waiting: WaitingRequest,
    jwks: Option<&Jwks>,
) -> Result<(), WaitingRequest> {
    match jwks {
        Some(jwks) => {
            let context_id = waiting.context_id;
            apply_verdict_to(context_id, waiting.pending.finish(config, jwks));
            Ok(())
        }
        None => Err(waiting),
    }
}
