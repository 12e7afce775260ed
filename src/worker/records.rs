//! Reading a JWKS URI's shared records ([`crate::jwks::shared_data`]) through the host: one reader per
//! record, so each is decoded in one place.

use crate::jwks::{FetchFailure, FetchLease, JwksMeta, SharedKeys};
use crate::worker::host::{shared_value, Host};

/// Which document is current; `None` before the first good fetch.
pub fn meta(host: &dyn Host, keys: &SharedKeys) -> Option<JwksMeta> {
    shared_value(host, &keys.meta).and_then(|m| JwksMeta::decode(&m))
}

/// The last failed fetch, cleared by a good one.
pub fn failure(host: &dyn Host, keys: &SharedKeys) -> Option<FetchFailure> {
    shared_value(host, &keys.failure).and_then(|f| FetchFailure::decode(&f))
}

/// The fetch lease as it stands.
pub fn lease(host: &dyn Host, keys: &SharedKeys) -> Option<FetchLease> {
    shared_value(host, &keys.lease).and_then(|l| FetchLease::decode(&l))
}

/// When a token with an unknown kid last asked for a refetch (ms since the epoch).
pub fn kid_refetch(host: &dyn Host, keys: &SharedKeys) -> Option<u64> {
    shared_value(host, &keys.kid_refetch).and_then(|b| decode_number(&b))
}

/// A decimal number: the `kid_refetch` record (ms since the epoch) and the worker counter.
pub fn decode_number(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}
