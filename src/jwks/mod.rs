//! JSON Web Key Sets: parsing a set into keys ([`key_set`]), the shared-data records through which the
//! workers of one Envoy share a fetched set ([`shared_data`]), when a remote set is fetched and how
//! failures back off ([`schedule`]), OpenID discovery ([`discovery`]) and a worker's parsed copy
//! ([`worker_keys`]). Pure: no host call, no configuration.

pub mod discovery;
pub mod key_set;
pub mod schedule;
pub mod shared_data;
pub mod worker_keys;

pub use discovery::discovered_jwks_uri;
pub use key_set::{
    parse_jwks, parse_jwks_with_limits, parse_local_jwks, FittingKeys, Jwks, JwksError, JwksKey,
    JwksLimits, KidIndex, MAX_JWKS_BYTES, MAX_JWKS_KEYS, MIN_HMAC_KEY_BYTES,
};
pub use schedule::{
    backing_off, fetch_due, kid_refetch_allowed, millis, ttl_for_response, FetchPolicy,
};
pub use shared_data::{decode_doc, encode_doc, FetchFailure, FetchLease, JwksMeta, SharedKeys};
pub use worker_keys::WorkerKeys;
