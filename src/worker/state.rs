//! What one Envoy worker's VM holds between callbacks: the configuration, its parsed keys, the requests
//! waiting for keys, and the verified-token caches.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::config::{FilterConfig, JwksSource, ProviderId, RemoteJwks};
use crate::jwks::{decode_doc, parse_jwks_with_limits, Jwks, SharedKeys, WorkerKeys};
use crate::metrics;
use crate::request::authenticator::PendingAuth;
use crate::request::token_cache::TokenCaches;
use crate::worker::host::{shared_value, Host};
use crate::worker::records;

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
    pub fn sync_from_shared(&mut self, host: &dyn Host, provider: ProviderId) {
        let Some(remote) = remote_of(&self.config, provider).cloned() else {
            return;
        };
        let shared_keys = SharedKeys::for_uri(&remote.uri);
        let Some(meta) = records::meta(host, &shared_keys) else {
            return;
        };
        let Some(local) = self.keys.get_mut(provider) else {
            return;
        };
        if meta.version <= local.version {
            return;
        }
        let Some(doc) = shared_value(host, &shared_keys.doc) else {
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

    /// Publishes each provider's key count and key age, and this VM's memory (`memory_bytes`).
    pub fn publish_gauges(&self, host: &dyn Host, now: u64, memory_bytes: u64) {
        let config = &self.config;
        host.gauge(
            &metrics::vm_memory_bytes(&config.metric_prefix),
            memory_bytes,
        );
        for (provider, entry) in config.providers.iter().enumerate() {
            let keys = self
                .keys_of(provider, now)
                .map_or(0, |(_, jwks)| jwks.keys.len());
            host.gauge(
                &metrics::keys_in_use(&config.metric_prefix, &entry.name),
                u64::try_from(keys).unwrap_or(u64::MAX),
            );
            if let JwksSource::Remote(remote) = &entry.jwks_source {
                if let Some(meta) = records::meta(host, &SharedKeys::for_uri(&remote.uri)) {
                    host.gauge(
                        &metrics::jwks_age_seconds(&config.metric_prefix, &entry.name),
                        now.saturating_sub(meta.fetched_at_ms) / 1000,
                    );
                }
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
