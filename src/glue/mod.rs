//! The proxy-wasm glue (wasm32 only): the root context ([`root_context`]), the HTTP context
//! ([`http_context`]), what one worker's VM holds between callbacks ([`worker`]) and the raw host calls
//! the SDK would panic on ([`abi`]).

mod abi;
mod http_context;
pub mod root_context;
mod worker;
