//! The HTTP context: thin glue between Envoy's request callbacks and [`crate::request::authenticator`].

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::config::RemoteJwks;
use crate::glue::worker::{
    apply_verdict, count, now_ms, remote_of, shared_data, Released, SharedWorkerState, WaitReason,
    WaitingRequest,
};
use crate::jwks::{backing_off, kid_refetch_allowed, millis, FetchFailure, JwksMeta, SharedKeys};
use crate::metrics;
use crate::request::authenticator::{start, Start, Verdict};
use crate::request::headers::parse_header_pairs;
use crate::request::reply::LocalReply;

/// How much longer than the fetch timeout a request waits for a refetch (the fetch starts on the
/// fetching worker's next tick).
const REFETCH_WAIT_SLACK_MS: u64 = 1000;

pub struct JwtAuthnFilter {
    context_id: u32,
    /// `None` only when the plugin has no valid configuration; such a filter refuses every request.
    state: Option<SharedWorkerState>,
    /// Set once the request is allowed, here or by the root context after a wait for keys.
    released: Released,
}

impl JwtAuthnFilter {
    pub fn new(context_id: u32, state: Option<SharedWorkerState>) -> JwtAuthnFilter {
        JwtAuthnFilter {
            context_id,
            state,
            released: Released::default(),
        }
    }

    /// What body and trailer callbacks answer. Until the request is allowed they hold the stream: a
    /// "continue" there would resume a request paused in its header callback (Envoy passes the body on
    /// during that pause when the plugin sets `allow_on_headers_stop_iteration`) and carry it to the
    /// upstream unverified. Held body data is buffered up to Envoy's buffer limit (413 beyond it).
    fn hold_until_released(&self) -> Action {
        if self.released.get() {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

impl Context for JwtAuthnFilter {}

impl HttpContext for JwtAuthnFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = &self.state else {
            // Envoy refuses a configuration on_configure rejected, so this is a VM without one: fail closed.
            return self.act_now(
                Verdict::Deny(LocalReply {
                    reason: "not_configured",
                    status: 500,
                    body: "jwt-authn-wasm has no valid configuration".to_string(),
                    www_authenticate: Some("Bearer".to_string()),
                    content_type: "text/plain",
                }),
                &Rc::from(metrics::PREFIX),
            );
        };
        let header_map = crate::glue::abi::request_header_map().unwrap_or_default();
        // A map that does not parse (never seen from Envoy) reads as no headers: no token, refused.
        let headers = parse_header_pairs(&header_map).unwrap_or_default();
        let now = now_ms();
        let mut worker = state.borrow_mut();
        let config = worker.config.clone();
        let pending = match start(&config, &headers, now / 1000, &mut worker.token_caches) {
            Start::Decided(verdict) => {
                drop(worker);
                return self.act_now(verdict, &config.metric_prefix);
            }
            Start::NeedsKeys(pending) => pending,
        };
        let needed = pending.providers_needing_keys();
        // This worker's copy may lag the shared one by up to a tick: look again before waiting for
        // keys or asking for a refetch another worker may already have done.
        for &provider in &needed {
            let current = worker
                .keys_of(provider, now)
                .is_some_and(|(_, jwks)| !pending.has_unknown_kid(provider, &jwks));
            if !current {
                worker.sync_from_shared(provider);
            }
        }
        let mut wait = None;
        for &provider in &needed {
            let Some(remote) = remote_of(&config, provider) else {
                continue;
            };
            match worker.keys_of(provider, now) {
                Some((version, jwks))
                    if remote.policy.refetch_on_unknown_kid
                        && pending.has_unknown_kid(provider, &jwks)
                        && ask_for_kid_refetch(
                            remote,
                            &metrics::jwks_unknown_kid_refetch(
                                &config.metric_prefix,
                                config
                                    .providers
                                    .get(provider)
                                    .map_or("", |p| p.name.as_str()),
                            ),
                            now,
                        ) =>
                {
                    let wait_ms = millis(remote.timeout).saturating_add(REFETCH_WAIT_SLACK_MS);
                    wait = Some((
                        provider,
                        WaitReason::UnknownKid,
                        version.saturating_add(1),
                        wait_ms,
                    ));
                    break;
                }
                Some(_) => {}
                // No keys yet (the first fetch is under way, or they went too stale): wait, bounded by
                // the fetch timeout, rather than refuse. The root context resumes or refuses this request.
                None => {
                    wait = Some((provider, WaitReason::FirstKeys, 1, millis(remote.timeout)));
                    break;
                }
            }
        }
        let Some((provider, reason, min_version, wait_ms)) = wait else {
            let keys = worker.keys_snapshot(now);
            let verdict = pending.finish(
                &config,
                &|p| keys.get(p).cloned().flatten(),
                &mut worker.token_caches,
            );
            drop(worker);
            return self.act_now(verdict, &config.metric_prefix);
        };
        worker.waiting.push(WaitingRequest {
            context_id: self.context_id,
            released: self.released.clone(),
            pending,
            provider,
            started_at_ms: now,
            deadline_ms: now.saturating_add(wait_ms),
            min_version,
            reason,
        });
        Action::Pause
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.hold_until_released()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.hold_until_released()
    }
}

impl JwtAuthnFilter {
    fn act_now(&self, verdict: Verdict, metric_prefix: &Rc<str>) -> Action {
        apply_verdict(verdict, &self.released, false, metric_prefix);
        self.hold_until_released()
    }
}

/// Asks for a refetch of `remote` because a token named an unknown kid (counted in `refetch_counter`
/// when this call asks). Returns whether the request should wait for one: a refetch already asked
/// for since the last fetch, or this one, if the rate limit allows it and the JWKS is not in a failure
/// back-off.
fn ask_for_kid_refetch(remote: &RemoteJwks, refetch_counter: &str, now: u64) -> bool {
    let keys = SharedKeys::for_uri(&remote.uri);
    let Ok((current, cas)) = hostcalls::get_shared_data(&keys.kid_refetch) else {
        return false;
    };
    let last_requested = current
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok());
    let meta = shared_data(&keys.meta).and_then(|m| JwksMeta::decode(&m));
    let last_fetch = meta.map_or(0, |m| m.fetched_at_ms);
    let failure = shared_data(&keys.failure).and_then(|f| FetchFailure::decode(&f));
    if backing_off(failure.as_ref(), last_fetch, now) {
        return false;
    }
    let wait_limit = millis(remote.timeout).saturating_add(REFETCH_WAIT_SLACK_MS);
    if last_requested.is_some_and(|at| at > last_fetch && now < at.saturating_add(wait_limit)) {
        return true;
    }
    if !kid_refetch_allowed(
        last_requested,
        now,
        remote.policy.unknown_kid_refetch_interval,
    ) {
        return false;
    }
    let asked =
        hostcalls::set_shared_data(&keys.kid_refetch, Some(now.to_string().as_bytes()), cas);
    if asked.is_ok() {
        count(refetch_counter);
    }
    // A compare-and-swap mismatch means another worker asked at the same moment: wait for that one.
    true
}

impl Drop for JwtAuthnFilter {
    fn drop(&mut self) {
        // A client that goes away while its request waits for keys must not stay in the queue.
        if let Some(state) = &self.state {
            if let Ok(mut worker) = state.try_borrow_mut() {
                worker.waiting.retain(|w| w.context_id != self.context_id);
            }
        }
    }
}
