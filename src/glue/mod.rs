//! The proxy-wasm glue (wasm32 only): the root context ([`root_context`]), the HTTP context
//! ([`http_context`]), the [`crate::worker::host::Host`] implementation over proxy-wasm and the applying
//! of verdicts ([`proxy_host`]), the raw host calls the SDK would panic on ([`abi`]), the step timing of
//! performance builds ([`phase_timing`]) and the module's `memcmp` ([`memcmp`]).

mod abi;
mod http_context;
mod memcmp;
mod phase_timing;
mod proxy_host;
pub mod root_context;
