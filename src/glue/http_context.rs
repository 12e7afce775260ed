//! The HTTP context: thin glue between Envoy's request callbacks, [`crate::request::authenticator`]
//! (the verdict) and [`crate::worker::wait`] (whether to wait for keys).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::glue::phase_timing::{mark, Step};
use crate::glue::proxy_host::{apply_verdict, ProxyHost};
use crate::metrics;
use crate::request::authenticator::{start_on_connection, Start, Verdict};
use crate::request::headers::{parse_header_pairs, HeaderPair};
use crate::request::reply::LocalReply;
use crate::worker::dpop::check_proofs;
use crate::worker::host::Host;
use crate::worker::state::{Released, SharedWorkerState};
use crate::worker::wait::judge_or_wait;

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
                    dpop_nonce: None,
                }),
                &Rc::from(metrics::PREFIX),
                None,
            );
        };
        mark(Step::Entered);
        mark(Step::Clock);
        let header_map = crate::glue::abi::request_header_map().unwrap_or_default();
        mark(Step::HeadersRead);
        // A map that does not parse (never seen from Envoy) reads as no headers: no token, refused.
        let headers = parse_header_pairs(&header_map).unwrap_or_default();
        let host = ProxyHost;
        let now = host.now_ms();
        mark(Step::HeadersParsed);
        let mut worker = state.borrow_mut();
        let config = worker.config.clone();
        // The route's name costs a host call, so it is read only when per_route_config names routes.
        let route = config
            .uses_route_names()
            .then(crate::glue::abi::route_name)
            .flatten();
        // Likewise the client certificate's digest, only when a provider binds tokens to it.
        let peer_certificate = config
            .uses_peer_certificate()
            .then(crate::glue::abi::peer_certificate_digest)
            .flatten();
        let pending = match start_on_connection(
            &config,
            &headers,
            route.as_deref(),
            peer_certificate.as_deref(),
            now / 1000,
            &mut worker.token_caches,
        ) {
            Start::Decided(verdict) => {
                drop(worker);
                mark(Step::FirstLook);
                let verdict = check_proofs(&host, &config, verdict, now);
                let action = self.act_now(verdict, &config.metric_prefix, Some(&headers));
                mark(Step::Applied);
                return action;
            }
            Start::NeedsKeys(pending) => pending,
        };
        mark(Step::FirstLook);
        match judge_or_wait(
            &host,
            &mut worker,
            pending,
            self.context_id,
            &self.released,
            now,
        ) {
            Some(verdict) => {
                drop(worker);
                mark(Step::Judged);
                let verdict = check_proofs(&host, &config, verdict, now);
                let action = self.act_now(verdict, &config.metric_prefix, Some(&headers));
                mark(Step::Applied);
                action
            }
            None => Action::Pause,
        }
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.hold_until_released()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.hold_until_released()
    }
}

impl JwtAuthnFilter {
    /// Applies `verdict` in the request's header callback, where its `headers` are at hand.
    fn act_now(
        &self,
        verdict: Verdict,
        metric_prefix: &Rc<str>,
        headers: Option<&[HeaderPair<'_>]>,
    ) -> Action {
        apply_verdict(verdict, &self.released, false, metric_prefix, headers);
        self.hold_until_released()
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
