//! The proxy-wasm side of the host seam: [`ProxyHost`] implements [`Host`] with the SDK's host calls
//! (and [`crate::glue::abi`] where the SDK would panic), and verdicts are applied to HTTP streams here.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, MetricType, Status};

use crate::metrics;
use crate::request::authenticator::{RequestMutations, Verdict};
use crate::request::headers::{rewrite_in_one_call, rewritten_header_map, HeaderPair};
use crate::worker::host::{Host, SharedDataError, SharedValue};
use crate::worker::wait::Resolution;

/// The host the worker logic runs on inside Envoy.
pub struct ProxyHost;

impl Host for ProxyHost {
    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn get_shared_data(&self, key: &str) -> Result<SharedValue, SharedDataError> {
        hostcalls::get_shared_data(key).map_err(|_| SharedDataError::Refused)
    }

    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(|status| match status {
            Status::CasMismatch => SharedDataError::CasMismatch,
            _ => SharedDataError::Refused,
        })
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), None, vec![], timeout)
            .map_err(|status| format!("{status:?}"))
    }

    fn call_response_header(&self, name: &str) -> Option<Vec<u8>> {
        crate::glue::abi::call_response_header(name)
    }

    fn call_response_body(&self, max_size: usize) -> Option<Vec<u8>> {
        crate::glue::abi::call_response_body(max_size)
    }

    fn count(&self, name: &str) {
        count(name);
    }

    fn gauge(&self, name: &str, value: u64) {
        if let Some(id) = metric_id(name, true) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// Host time in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
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

/// Adds `value` to a counter (nothing for 0, so an idle counter costs no host call).
pub fn add_to_counter(name: &str, value: u64) {
    if value == 0 {
        return;
    }
    if let Some(id) = metric_id(name, false) {
        let _ = hostcalls::increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX));
    }
}

/// Adds one to a counter.
fn count(name: &str) {
    if let Some(id) = metric_id(name, false) {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

/// An allowed request's header changes: removed headers (client copies of identity headers, the token
/// unless forwarded), added claim headers, a `:path` without the token parameter. With the request's
/// `headers` at hand and enough changes, in one call that replaces the whole map; otherwise one call
/// per change.
fn write_header_changes(mutations: &RequestMutations, headers: Option<&[HeaderPair<'_>]>) {
    let changes = mutations.remove_headers.len()
        + mutations.set_headers.len()
        + usize::from(mutations.new_path.is_some());
    if let Some(headers) = headers.filter(|_| rewrite_in_one_call(changes)) {
        let map = rewritten_header_map(
            headers,
            &mutations.remove_headers,
            &mutations.set_headers,
            mutations.new_path.as_deref(),
        );
        if crate::glue::abi::set_request_header_map(&map) {
            return;
        }
    }
    for name in &mutations.remove_headers {
        let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None);
    }
    // Added, not set: client copies were removed above, and two tokens may each bring a value (as
    // jwt_authn adds one per verified token).
    for (name, value) in &mutations.set_headers {
        let _ = hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value.as_bytes());
    }
    if let Some(path) = &mutations.new_path {
        let _ = hostcalls::set_map_value_bytes(
            MapType::HttpRequestHeaders,
            ":path",
            Some(path.as_slice()),
        );
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
    headers: Option<&[HeaderPair<'_>]>,
) {
    match verdict {
        Verdict::Allow(mutations) => {
            released.set(true);
            count_allowed(metric_prefix);
            for reason in &mutations.would_deny {
                count(&metrics::would_deny(metric_prefix, reason));
                log::info!("jwt-authn-wasm: report-only: would refuse ({reason})");
            }
            write_header_changes(&mutations, headers);
            for (name, payload) in &mutations.filter_state {
                crate::glue::abi::set_filter_state(name, payload.as_bytes());
            }
            if resume {
                let _ = hostcalls::resume_http_request();
            }
        }
        Verdict::Answer(answer) => {
            let _ = hostcalls::send_http_response(
                answer.status,
                answer.headers,
                Some(answer.body.as_bytes()),
            );
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
            if let Some(nonce) = &reply.dpop_nonce {
                headers.push(("dpop-nonce", nonce.as_str()));
            }
            let _ =
                hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
        }
    }
}

/// Resumes (or refuses) requests paused in other contexts of this VM, in order, then acts for
/// `root_context_id` again. Nothing happens for a stream that is gone (the client went away).
pub fn apply_resolutions(
    resolutions: Vec<Resolution>,
    metric_prefix: &Rc<str>,
    root_context_id: u32,
) {
    if resolutions.is_empty() {
        return;
    }
    for resolution in resolutions {
        if hostcalls::set_effective_context(resolution.context_id).is_ok() {
            apply_verdict(
                resolution.verdict,
                &resolution.released,
                true,
                metric_prefix,
                // The headers were read in the paused callback, which has returned: one call per change.
                None,
            );
        }
    }
    // Callouts and later host calls must act for the root again, not for the last resumed stream.
    let _ = hostcalls::set_effective_context(root_context_id);
}
