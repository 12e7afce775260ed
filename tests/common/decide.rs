//! Deciding a request without Envoy, as the glue does: `start` (or `start_on_connection`), then, when it
//! needs keys, `finish` with one key set for every provider. For the host tests of the request path.

use std::rc::Rc;

use jwt_authn_wasm::request::borrow_header_pairs;
use jwt_authn_wasm::{start, FilterConfig, Jwks, Start, TokenCaches, Verdict};

use crate::common::fixtures;

/// Request headers: `:scheme` https, `:authority` api.test, `:path` `path`, then `extra`.
pub fn request(path: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (":scheme".to_string(), b"https".to_vec()),
        (":authority".to_string(), b"api.test".to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

/// The verdict on `headers` now, with `jwks` as every provider's keys and `caches` as the worker's.
pub fn run(
    config: &FilterConfig,
    jwks: &Jwks,
    headers: &[(String, Vec<u8>)],
    caches: &mut TokenCaches,
) -> Verdict {
    let started = start(
        config,
        &borrow_header_pairs(headers),
        fixtures::now(),
        caches,
    );
    decide(started, config, jwks, caches)
}

/// The verdict of `started`, finishing it with `jwks` as every provider's keys when it waited for them.
pub fn decide(
    started: Start,
    config: &FilterConfig,
    jwks: &Jwks,
    caches: &mut TokenCaches,
) -> Verdict {
    match started {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => {
            let keys = Rc::new(jwks.clone());
            pending.finish(config, &|_| Some(keys.clone()), caches)
        }
    }
}
