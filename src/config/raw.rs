//! The configuration's JSON shape, as serde reads it: jwt_authn's field names, unknown fields refused.
//! [`super`] compiles it into the types the filter runs on.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::cert_binding::RawCertificateBound;
use crate::config::string_matcher::{RawRegex, RawStringMatcher};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub(super) rules: Vec<RawRule>,
    #[serde(default)]
    pub(super) requirement_map: BTreeMap<String, RawRequirement>,
    #[serde(default)]
    pub(super) bypass_cors_preflight: bool,
    #[serde(default)]
    pub(super) strip_failure_response: bool,
    #[serde(default)]
    pub(super) stat_prefix: String,
    // This filter's extensions.
    #[serde(default)]
    pub(super) failure_response_format: Option<String>,
    #[serde(default)]
    pub(super) per_route_config: BTreeMap<String, RawPerRouteConfig>,
    #[serde(default)]
    pub(super) resource_metadata: Option<String>,
    #[serde(default)]
    pub(super) protected_resource: Option<RawProtectedResource>,
}

/// RFC 9728 protected-resource metadata served by this filter (this filter's extension).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtectedResource {
    pub(super) resource: String,
    #[serde(default)]
    pub(super) authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(super) resource_name: Option<String>,
}

/// A multi-tenant issuer (this filter's extension): `iss` matches a template with one `{tenant}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenantIssuer {
    pub(super) template: String,
    #[serde(default)]
    pub(super) tenants: Option<Vec<String>>,
    #[serde(default)]
    pub(super) tenant_claim: Option<String>,
    #[serde(default)]
    pub(super) tenant_header: Option<String>,
}

/// jwt_authn's `PerRouteConfig`, keyed here by the Envoy route's `name`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerRouteConfig {
    #[serde(default)]
    pub(super) disabled: Option<bool>,
    #[serde(default)]
    pub(super) requirement_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    #[serde(default)]
    pub(super) issuer: String,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    #[serde(default)]
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    pub(super) local_jwks: Option<RawDataSource>,
    #[serde(default)]
    pub(super) forward: bool,
    #[serde(default)]
    pub(super) from_headers: Vec<RawHeaderLocation>,
    #[serde(default)]
    pub(super) from_params: Vec<String>,
    #[serde(default)]
    pub(super) from_cookies: Vec<String>,
    #[serde(default)]
    pub(super) claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    pub(super) forward_payload_header: String,
    #[serde(default)]
    pub(super) pad_forward_payload_header: bool,
    /// Accepted for jwt_authn's sake and always in effect: Envoy's wasm host clears the route cache
    /// whenever a filter changes request headers, so a route is picked again after this filter's changes.
    #[serde(default)]
    #[serde(rename = "clear_route_cache")]
    pub(super) _clear_route_cache: bool,
    #[serde(default)]
    pub(super) clock_skew_seconds: Option<u64>,
    #[serde(default)]
    pub(super) jwt_cache_config: Option<RawJwtCacheConfig>,
    #[serde(default)]
    pub(super) subjects: Option<RawStringMatcher>,
    #[serde(default)]
    pub(super) require_expiration: bool,
    #[serde(default)]
    pub(super) max_lifetime: Option<String>,
    // This filter's extensions.
    #[serde(default)]
    pub(super) report_only: bool,
    #[serde(default)]
    pub(super) payload_in_filter_state: Option<String>,
    #[serde(default)]
    pub(super) certificate_bound: Option<RawCertificateBound>,
    pub(super) tenant_issuer: Option<RawTenantIssuer>,
    #[serde(default)]
    pub(super) accepted_types: Option<Vec<String>>,
    // jwt_authn fields a wasm filter cannot honour: refused with a pointer to what to use instead.
    #[serde(default)]
    pub(super) payload_in_metadata: Option<String>,
    #[serde(default)]
    pub(super) header_in_metadata: Option<String>,
    #[serde(default)]
    pub(super) failed_status_in_metadata: Option<String>,
    #[serde(default)]
    pub(super) normalize_payload_in_metadata: Option<serde_json::Value>,
}

/// jwt_authn's `jwt_cache_config`. Zero sizes mean the defaults, as in jwt_authn.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwtCacheConfig {
    #[serde(default)]
    pub(super) jwt_cache_size: usize,
    #[serde(default)]
    pub(super) jwt_max_token_size: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteJwks {
    pub(super) http_uri: RawHttpUri,
    #[serde(default)]
    pub(super) cache_duration: Option<String>,
    // jwt_authn fields, mapped onto this filter's always-asynchronous fetching.
    #[serde(default)]
    pub(super) async_fetch: Option<RawAsyncFetch>,
    #[serde(default)]
    pub(super) retry_policy: Option<RawRetryPolicy>,
    // This filter's extensions.
    #[serde(default)]
    pub(super) oidc_discovery: bool,
    #[serde(default)]
    pub(super) max_staleness: Option<String>,
    #[serde(default)]
    pub(super) honor_cache_control: Option<bool>,
    #[serde(default)]
    pub(super) min_cache_duration: Option<String>,
    #[serde(default)]
    pub(super) max_cache_duration: Option<String>,
    #[serde(default)]
    pub(super) refetch_on_unknown_kid: Option<bool>,
    #[serde(default)]
    pub(super) unknown_kid_refetch_interval: Option<String>,
    #[serde(default)]
    pub(super) max_jwks_bytes: Option<usize>,
    #[serde(default)]
    pub(super) max_jwks_keys: Option<usize>,
}

/// jwt_authn's `async_fetch`: this filter always fetches in the background, so only the retry interval
/// after a failure matters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAsyncFetch {
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) fast_listener: bool,
    #[serde(default)]
    pub(super) failed_refetch_duration: Option<String>,
}

/// Envoy's RetryPolicy as jwt_authn takes it: the back-off bounds are used; this filter keeps retrying
/// (with back-off) rather than giving up after `num_retries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetryPolicy {
    #[serde(default)]
    pub(super) retry_back_off: Option<RawBackOff>,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) num_retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackOff {
    #[serde(default)]
    pub(super) base_interval: Option<String>,
    #[serde(default)]
    pub(super) max_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpUri {
    #[serde(default)]
    pub(super) uri: String,
    #[serde(default)]
    pub(super) cluster: String,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

/// Envoy's DataSource; a wasm filter cannot read files, so only the inline forms are accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataSource {
    #[serde(default)]
    pub(super) inline_string: Option<String>,
    #[serde(default)]
    pub(super) filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderLocation {
    pub(super) name: String,
    #[serde(default)]
    pub(super) value_prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimToHeader {
    pub(super) header_name: String,
    // Exactly one of these two, as jwt_authn requires.
    #[serde(default)]
    pub(super) claim_name: Option<String>,
    #[serde(default)]
    pub(super) claim_path: Option<Vec<RawClaimPathSegment>>,
}

/// One segment of jwt_authn's `claim_path`: `{"key": "<object key>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimPathSegment {
    pub(super) key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pub(super) route_match: RawRouteMatch,
    #[serde(default)]
    pub(super) requires: Option<RawRequirement>,
    #[serde(default)]
    pub(super) requirement_name: Option<String>,
    // This filter's extensions.
    #[serde(default)]
    pub(super) authorization: Option<RawAuthorization>,
    #[serde(default)]
    pub(super) report_only: bool,
    #[serde(default)]
    pub(super) resource_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouteMatch {
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) safe_regex: Option<RawRegex>,
    #[serde(default)]
    pub(super) path_separated_prefix: Option<String>,
    #[serde(default)]
    pub(super) case_sensitive: Option<bool>,
    #[serde(default)]
    pub(super) headers: Vec<RawHeaderMatcher>,
    #[serde(default)]
    pub(super) query_parameters: Vec<RawQueryParameterMatcher>,
}

/// Envoy's route HeaderMatcher (range_match is not supported).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderMatcher {
    pub(super) name: String,
    #[serde(default)]
    pub(super) exact_match: Option<String>,
    #[serde(default)]
    pub(super) prefix_match: Option<String>,
    #[serde(default)]
    pub(super) suffix_match: Option<String>,
    #[serde(default)]
    pub(super) contains_match: Option<String>,
    #[serde(default)]
    pub(super) safe_regex_match: Option<RawRegex>,
    #[serde(default)]
    pub(super) present_match: Option<bool>,
    #[serde(default)]
    pub(super) string_match: Option<RawStringMatcher>,
    #[serde(default)]
    pub(super) invert_match: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueryParameterMatcher {
    pub(super) name: String,
    #[serde(default)]
    pub(super) string_match: Option<RawStringMatcher>,
    #[serde(default)]
    pub(super) present_match: Option<bool>,
}

/// jwt_authn's JwtRequirement: at most one of its fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirement {
    #[serde(default)]
    pub(super) provider_name: Option<String>,
    #[serde(default)]
    pub(super) provider_and_audiences: Option<RawProviderAndAudiences>,
    #[serde(default)]
    pub(super) requires_any: Option<RawRequirementList>,
    #[serde(default)]
    pub(super) requires_all: Option<RawRequirementList>,
    #[serde(default)]
    pub(super) allow_missing: Option<RawEmpty>,
    #[serde(default)]
    pub(super) allow_missing_or_failed: Option<RawEmpty>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProviderAndAudiences {
    pub(super) provider_name: String,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirementList {
    pub(super) requirements: Vec<RawRequirement>,
}

/// `{}` (google.protobuf.Empty).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmpty {}

/// A rule's claim-based authorization (this filter's extension).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorization {
    #[serde(default)]
    pub(super) scopes: Vec<String>,
    #[serde(default)]
    pub(super) claims: Vec<RawClaimRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimRequirement {
    pub(super) name: String,
    pub(super) values: Vec<String>,
}
