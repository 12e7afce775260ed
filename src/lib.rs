//! jwt-authn-wasm: JWT authentication for Envoy as a proxy-wasm HTTP filter, configured like Envoy's
//! jwt_authn.
//!
//! The logic is host-independent and tested with plain `cargo test`; the proxy-wasm glue is compiled only
//! for wasm32. Layers, each using only those listed before it:
//! - [`metrics`]: metric names;
//! - [`crypto`]: signature algorithms and key material;
//! - [`jwks`]: key sets, the shared-data records and the fetch schedule;
//! - [`config`]: the configuration, parsed and compiled once;
//! - [`verify`]: one token against one provider (claims, key choice, signature);
//! - [`request`]: one request (rule, tokens, requirement tree, authorization, the verdict or refusal);
//! - [`worker`]: a worker VM's keys, JWKS fetch lifecycle and waiting requests, over the
//!   [`worker::host::Host`] trait;
//! - `glue` (wasm32 only): the proxy-wasm root and HTTP contexts and the `Host` over proxy-wasm.
//!
//! Each layer is a public namespace whose files are private to the crate: what a layer offers is the
//! `pub use` list in its `mod.rs`, and the entry points below. So verified things are built only by
//! verification, and a file can be split or renamed without touching the tests.

pub mod config;
pub mod crypto;
pub mod jwks;
pub mod metrics;
pub mod request;
pub mod verify;
pub mod worker;

#[cfg(target_arch = "wasm32")]
mod glue;

pub use config::FilterConfig;
pub use jwks::{parse_jwks, parse_local_jwks, Jwks};
pub use request::{start, start_on_route, PendingAuth, Start, TokenCaches, Verdict};
pub use verify::{check_token, AuthError};

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(glue::root_context::FilterRoot::new(context_id)));
}}
