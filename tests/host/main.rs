//! Host tests: the filter's units with plain `cargo test`, no Envoy: configuration, rules and
//! requirements, extraction, key sets, the shared-data JWKS protocol, the token cache, and the
//! documentation's examples. One test binary, so tests/common is compiled once.

// Test code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

// `pub`, so the shared helpers each binary does not use are not dead code.
#[path = "../common/mod.rs"]
pub mod common;

mod allocations;
mod authenticator;
mod cert_binding;
mod config;
mod docs;
mod dpop;
mod extractor;
mod jwks;
mod jwks_cache;
mod layers;
mod provider_index;
mod requirements;
mod tenant_typ_mcp;
mod token_parse;
mod x509_map;
