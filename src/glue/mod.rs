//! The proxy-wasm glue (wasm32 only): the root context ([`root_context`]), the HTTP context
//! ([`http_context`]), the [`crate::worker::host::Host`] implementation over proxy-wasm and the applying
//! of verdicts ([`proxy_host`]), and the raw host calls the SDK would panic on ([`abi`]).

mod abi;
mod http_context;
mod phase_timing;
mod proxy_host;
pub mod root_context;
