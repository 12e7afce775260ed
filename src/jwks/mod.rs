//! JSON Web Key Sets: parsing a set into keys (`key_set`), the shared-data records through which the
//! workers of one Envoy share a fetched set (`shared_data`), when a remote set is fetched and how
//! failures back off (`schedule`), OpenID discovery (`discovery`), a worker's parsed copy
//! (`worker_keys`) and the X.509 certificate map form of a key set (`x509_map`). Pure: no host call, no
//! configuration.

pub(crate) mod discovery;
pub(crate) mod key_set;
pub(crate) mod schedule;
pub(crate) mod shared_data;
pub(crate) mod worker_keys;
pub(crate) mod x509_map;

pub use discovery::discovered_jwks_uri;
pub use key_set::{
    parse_jwks, parse_jwks_with_limits, parse_local_jwks, Jwks, JwksError, JwksKey, JwksLimits,
    MAX_JWKS_BYTES, MAX_JWKS_KEYS, MIN_HMAC_KEY_BYTES,
};
pub use schedule::{
    backing_off, fetch_due, kid_refetch_allowed, millis, ttl_for_response, FetchPolicy,
};
pub use shared_data::{decode_doc, encode_doc, FetchFailure, FetchLease, JwksMeta, SharedKeys};
pub use worker_keys::WorkerKeys;
