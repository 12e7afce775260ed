//! The signature verifiers and the token checks: RFC examples, Wycheproof vectors, agreement with the
//! reference crates. `./build.sh test` also runs this binary built for wasm32-wasip1 in V8, because the
//! wasm build's SIMD RSA code exists only there.

// Test code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

// `pub`, so the shared helpers this binary does not use are not dead code.
#[path = "../common/mod.rs"]
pub mod common;

mod ec;
mod rsa;
mod token;
