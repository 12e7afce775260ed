//! jwt-authn-wasm: JWT authentication for Envoy as a proxy-wasm HTTP filter, configured like Envoy's
//! jwt_authn.
//!
//! The logic is host-independent and tested with plain `cargo test`; the proxy-wasm glue is compiled only
//! for wasm32. Request path, in file order:
//! [`config`] (parsed once) → [`rules`] (which requirement) → [`extractor`] (where the tokens are) →
//! [`verifier`] (claims, key choice, signature) → [`authenticator`] (the verdict) →
//! [`auth_error`] (the refusal). Keys: [`jwks`] (parse a key set) and [`jwks_cache`] (the shared,
//! once-per-process fetched copy).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod auth_error;
pub mod authenticator;
pub mod authorization;
pub mod claims;
pub mod config;
pub mod duration;
pub mod ec_verifier;
pub mod extractor;
pub mod jwks;
pub mod jwks_cache;
pub mod metrics;
pub mod rsa_verifier;
pub mod rules;
pub mod string_matcher;
pub mod token_cache;
pub mod verifier;

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod jwks_fetcher;
#[cfg(target_arch = "wasm32")]
mod worker;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(jwks_fetcher::JwksFetcherRoot::new(context_id)));
}}
