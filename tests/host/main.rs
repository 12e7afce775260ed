//! Host tests: the filter's units with plain `cargo test`, no Envoy: configuration, rules and
//! requirements, extraction, key sets, the shared-data JWKS protocol, the token cache, and the
//! documentation's examples. One test binary, so tests/common is compiled once.

// `pub`, so the shared helpers each binary does not use are not dead code.
#[path = "../common/mod.rs"]
pub mod common;

mod authenticator;
mod config;
mod docs;
mod extractor;
mod jwks;
mod jwks_cache;
mod layers;
mod requirements;
mod token_parse;
