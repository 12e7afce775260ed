//! The HTTP context: thin glue between Envoy's request callbacks and [`crate::authenticator`].

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::auth_error::LocalReply;
use crate::authenticator::{start, Start, Verdict};
use crate::config::JwksSource;
use crate::jwks_cache::millis;
use crate::worker::{apply_verdict, now_ms, SharedWorkerState, WaitingRequest};

pub struct JwtAuthnFilter {
    context_id: u32,
    /// `None` only when the plugin has no valid configuration; such a filter refuses every request.
    state: Option<SharedWorkerState>,
}

impl JwtAuthnFilter {
    pub fn new(context_id: u32, state: Option<SharedWorkerState>) -> JwtAuthnFilter {
        JwtAuthnFilter { context_id, state }
    }
}

impl Context for JwtAuthnFilter {}

impl HttpContext for JwtAuthnFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = &self.state else {
            // Envoy refuses a configuration on_configure rejected, so this is a VM without one: fail closed.
            apply_verdict(
                Verdict::Deny(LocalReply {
                    status: 500,
                    body: "jwt-authn-wasm has no valid configuration".to_string(),
                    www_authenticate: "Bearer".to_string(),
                }),
                false,
            );
            return Action::Pause;
        };
        let headers = self.get_http_request_headers_bytes();
        let now = now_ms();
        let config = state.borrow().config.clone();
        let pending = match start(&config, &headers, now / 1000) {
            Start::Decided(verdict) => return act_now(verdict),
            Start::NeedsKeys(pending) => pending,
        };
        let provider = pending.provider;
        let mut worker = state.borrow_mut();
        let jwks = match worker.keys_of(provider) {
            Some(jwks) => Some(jwks),
            None => {
                worker.sync_from_shared(provider);
                worker.keys_of(provider)
            }
        };
        if let Some(jwks) = jwks {
            drop(worker);
            return act_now(pending.finish(&config, &jwks));
        }
        // No keys yet (the first fetch is under way): wait, bounded by the fetch timeout, rather than
        // refuse. The root context resumes or refuses this request when keys arrive or time runs out.
        let timeout = match config.providers.get(provider).map(|p| &p.jwks_source) {
            Some(JwksSource::Remote(remote)) => remote.timeout,
            _ => std::time::Duration::ZERO,
        };
        worker.waiting.push(WaitingRequest {
            context_id: self.context_id,
            pending,
            started_at_ms: now,
            deadline_ms: now.saturating_add(millis(timeout)),
        });
        Action::Pause
    }
}

fn act_now(verdict: Verdict) -> Action {
    let allowed = matches!(verdict, Verdict::Allow(_));
    apply_verdict(verdict, false);
    if allowed {
        Action::Continue
    } else {
        Action::Pause
    }
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
