//! The root context: parses the configuration once and, on every tick and callout response, hands
//! over to [`crate::worker`], which keeps each remote JWKS fresh and settles the requests waiting for
//! keys. Only the proxy-wasm callbacks are here.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::config::FilterConfig;
use crate::crypto::RsaKernel;
use crate::glue::http_context::JwtAuthnFilter;
use crate::glue::proxy_host::{add_to_counter, apply_resolutions, flush_allowed, ProxyHost};
use crate::metrics;
use crate::worker::fetch::JwksFetcher;
use crate::worker::host::Host;
use crate::worker::state::{SharedWorkerState, WorkerState};
use crate::worker::{on_fetch_response, on_tick};

/// How often each worker checks shared data for new keys, due fetches and waiting requests.
const TICK_PERIOD: Duration = Duration::from_millis(100);

/// A configured worker: its state (shared with its HTTP contexts) and its side of the fetch lifecycle.
struct Configured {
    state: SharedWorkerState,
    fetcher: JwksFetcher,
}

pub struct FilterRoot {
    context_id: u32,
    configured: Option<Configured>,
}

impl FilterRoot {
    pub fn new(context_id: u32) -> FilterRoot {
        FilterRoot {
            context_id,
            configured: None,
        }
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
        let Some(configured) = &mut self.configured else {
            return;
        };
        let host = ProxyHost;
        let now = host.now_ms();
        let mut worker = configured.state.borrow_mut();
        let resolutions = on_fetch_response(
            &host,
            &mut worker,
            &mut configured.fetcher,
            token,
            num_headers,
            body_size,
            now,
        );
        let prefix = worker.config.metric_prefix.clone();
        let (hits, misses) = worker.token_caches.take_lookups();
        drop(worker);
        add_to_counter(&metrics::jwt_cache_hit(&prefix), hits);
        add_to_counter(&metrics::jwt_cache_miss(&prefix), misses);
        apply_resolutions(resolutions, &prefix, self.context_id);
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // Where the engine's relaxed_madd is not fused (no FMA in the CPU), RSA runs on the slower
        // integer kernel: say which, once per configuration.
        log::info!(
            "jwt-authn-wasm: RSA public-key operations on the {:?} kernel",
            RsaKernel::in_use()
        );
        let raw = self.get_plugin_configuration().unwrap_or_default();
        let config = match FilterConfig::parse(&raw) {
            Ok(config) => Rc::new(config),
            Err(error) => {
                log::error!("jwt-authn-wasm: configuration refused: {error}");
                return false;
            }
        };
        // Workers configure before their first tick, so every lease key exists before any contends.
        let fetcher = JwksFetcher::new(&ProxyHost, config.clone(), self.context_id);
        self.configured = Some(Configured {
            state: Rc::new(RefCell::new(WorkerState::new(config))),
            fetcher,
        });
        // The first tick comes quickly so the first fetch starts before traffic does.
        self.set_tick_period(Duration::from_millis(1));
        true
    }

    fn on_tick(&mut self) {
        self.set_tick_period(TICK_PERIOD);
        let Some(configured) = &mut self.configured else {
            return;
        };
        let host = ProxyHost;
        let now = host.now_ms();
        let mut worker = configured.state.borrow_mut();
        let resolutions = on_tick(&host, &mut worker, &mut configured.fetcher, now);
        let prefix = worker.config.metric_prefix.clone();
        let (hits, misses) = worker.token_caches.take_lookups();
        drop(worker);
        add_to_counter(&metrics::jwt_cache_hit(&prefix), hits);
        add_to_counter(&metrics::jwt_cache_miss(&prefix), misses);
        apply_resolutions(resolutions, &prefix, self.context_id);
        // This VM's linear memory: every worker's VM is alike, so the last one written stands for all.
        let pages = core::arch::wasm32::memory_size(0);
        let memory_bytes = u64::try_from(pages).unwrap_or(0).saturating_mul(64 * 1024);
        configured
            .state
            .borrow()
            .publish_gauges(&host, now, memory_bytes);
        flush_allowed();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(JwtAuthnFilter::new(
            context_id,
            self.configured.as_ref().map(|c| c.state.clone()),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
