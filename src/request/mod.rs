//! The per-request steps, free of any host call: read the headers ([`headers`]), pick the rule
//! ([`rule_match`]), find the tokens ([`extract`]), check them and walk the requirement tree
//! ([`authenticator`], with `candidates`, `evaluation` and `conclusion`), remember verified tokens ([`token_cache`]), authorize ([`authorization`]),
//! forward claims ([`claims`]) and refuse ([`reply`]); certificate-bound tokens are checked in
//! [`cert_binding`].

pub mod authenticator;
pub mod authorization;
mod candidates;
pub mod cert_binding;
pub mod claims;
mod conclusion;
mod evaluation;
pub mod extract;
pub mod headers;
pub mod reply;
pub mod rule_match;
pub mod token_cache;
