//! Real-Envoy scenarios: this filter in Envoy 1.40, most of them beside Envoy's own jwt_authn answering
//! the same requests, each asserting status, body and the headers the upstream received; plus the checks
//! on the built module itself (its exports), the demo, and the shipped Kubernetes manifests (whose
//! patched-in cluster Envoy must accept).

// Test code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

// `pub`, so the shared helpers this binary does not use are not dead code.
#[path = "../common/mod.rs"]
pub mod common;

mod adversarial;
mod cert_bound;
mod cli;
mod config_push;
mod demo;
mod dpop;
mod examples;
mod extensions;
mod failure_choice;
mod field_inventory;
mod https_jwks;
mod jwks;
mod lifecycle;
mod manifests;
mod module_exports;
mod oci_image;
mod parity;
mod parity_tokens;
mod parity_x509;
mod per_route;
mod prometheus;
mod requirements;
mod tenant_typ_mcp;
