//! Filter configuration: the JSON in the wasm plugin's `configuration`, shaped like Envoy's jwt_authn
//! `JwtAuthentication` (same snake_case field names), so a provider moves from jwt_authn by copying it.
//!
//! Parsed and compiled once in on_configure into [`FilterConfig`]. Every error names the field.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;

use crate::authorization::{Authorization, ClaimRequirement};
pub use crate::claims::ClaimLocation;
use crate::duration::parse_duration;
use crate::extractor::{HeaderLocation, TokenLocations};
use crate::jwks::{parse_local_jwks, Jwks, JwksLimits};
use crate::rules::{
    HeaderMatcher, PathMatch, QueryParameterMatcher, Requirement, RouteMatch, Rule, ValueCondition,
};
use crate::string_matcher::{RawRegex, RawStringMatcher, StringMatcher};
use crate::token_cache::{DEFAULT_CACHE_SIZE, DEFAULT_MAX_CACHED_TOKEN_BYTES};

/// jwt_authn's default `remote_jwks.cache_duration`.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
/// `http_uri.timeout` when none is given.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(1);
/// How long past its expiry the last good JWKS is still used while refreshes fail.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
/// Bounds within which a JWKS response's `Cache-Control: max-age` is honoured.
pub const DEFAULT_MIN_CACHE_DURATION: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CACHE_DURATION: Duration = Duration::from_secs(24 * 3600);
/// First retry after a failed fetch; doubles per failure up to the maximum (jwt_authn's
/// `async_fetch.failed_refetch_duration` / `retry_policy.retry_back_off` set them).
pub const DEFAULT_RETRY_INITIAL_INTERVAL: Duration = Duration::from_millis(500);
pub const DEFAULT_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// At most one refetch per this interval per JWKS is triggered by tokens with an unknown kid.
pub const DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Ceiling for `jwt_cache_config.jwt_cache_size`: bounds each worker's memory.
const MAX_CACHE_SIZE: usize = 100_000;
/// Ceilings for the configurable JWKS limits.
const LIMIT_MAX_JWKS_BYTES: usize = 16 * 1024 * 1024;
const LIMIT_MAX_JWKS_KEYS: usize = 10_000;
/// jwt_authn's default `clock_skew_seconds`.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;

/// Index of a provider in [`FilterConfig::providers`].
pub type ProviderId = usize;

/// The whole configuration, compiled: what every request is checked against.
#[derive(Debug)]
pub struct FilterConfig {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    /// Every header this filter writes from verified claims (claim_to_headers and forward_payload_header,
    /// of every provider). Client copies are removed from every request so nobody can spoof identity.
    pub identity_headers: Vec<String>,
    /// Let CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) through unchecked.
    pub bypass_cors_preflight: bool,
    /// Refusals carry no body and no WWW-Authenticate header (jwt_authn's strip_failure_response).
    pub strip_failure_response: bool,
    /// Refusal bodies as jwt_authn's plain text, or as JSON.
    pub failure_format: FailureFormat,
    /// Requirement leaves in all rules (each leaf's tokens are tracked separately while a request waits).
    pub leaf_count: usize,
    /// Start of every metric name: `jwt_authn_wasm`, or `jwt_authn_wasm.<stat_prefix>` (jwt_authn's
    /// `stat_prefix`, which keeps two filters' counts apart).
    pub metric_prefix: Rc<str>,
}

/// How refusal bodies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureFormat {
    /// jwt_authn's: the reason as plain text (`Jwt is expired`).
    #[default]
    Text,
    /// `{"error": "invalid_token", "error_description": "Jwt is expired"}` (RFC 6750 error codes).
    Json,
}

/// jwt_authn's `require_expiration` and `max_lifetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Tokens without `exp` are accepted.
    Unbounded,
    /// `require_expiration`: a token needs an `exp`.
    ExpirationRequired,
    /// `max_lifetime` (seconds): a token needs an `exp` less than this far from now.
    AtMost(u64),
}

/// One issuer: where its keys come from, where its tokens are, which claims are checked and forwarded.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    /// Required `iss` when set.
    pub issuer: Option<String>,
    /// Allowed audiences, normalised with [`normalize_audience`]; empty means aud is not checked.
    pub audiences: Vec<String>,
    pub jwks_source: JwksSource,
    /// Keep the token in the request to the upstream (jwt_authn's `forward`, default false).
    pub forward: bool,
    pub locations: TokenLocations,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub forward_payload_header: Option<String>,
    /// Pad the forwarded payload segment with `=` to a multiple of four (jwt_authn's
    /// `pad_forward_payload_header`).
    pub pad_forward_payload_header: bool,
    pub clock_skew_seconds: u64,
    /// Verified tokens remembered per worker (jwt_authn's `jwt_cache_config.jwt_cache_size`).
    pub jwt_cache_size: usize,
    /// Longer tokens are not cached (`jwt_cache_config.jwt_max_token_size`).
    pub jwt_max_cached_token_bytes: usize,
    /// Allowed `sub` values (jwt_authn's `subjects`).
    pub subjects: Option<StringMatcher>,
    pub lifetime: Lifetime,
    /// This provider's refusals are logged and counted, and the request goes on (this filter's extension).
    pub report_only: bool,
    /// Verified payloads (JSON) go into Envoy's filter state under `wasm.<name>`, for later filters
    /// (RBAC's filter_state matcher, Lua, access logs) (this filter's extension).
    pub payload_in_filter_state: Option<String>,
}

/// Where a provider's keys come from.
#[derive(Debug)]
pub enum JwksSource {
    Remote(Box<RemoteJwks>),
    Local(Jwks),
}

/// A JWKS fetched over HTTP through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// The JWKS URI; with `oidc_discovery`, the OpenID configuration URI whose `jwks_uri` is followed.
    pub uri: String,
    pub oidc_discovery: bool,
    pub cluster: String,
    /// `:authority` of the fetch: the URI's host and port.
    pub authority: String,
    /// `:path` of the fetch, with the query.
    pub path: String,
    pub timeout: Duration,
    pub cache_duration: Duration,
    pub policy: FetchPolicy,
}

/// How a remote JWKS is kept fresh and what is done when fetching fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    pub max_staleness: Duration,
    pub honor_cache_control: bool,
    pub min_cache_duration: Duration,
    pub max_cache_duration: Duration,
    pub retry_initial_interval: Duration,
    pub retry_max_interval: Duration,
    pub refetch_on_unknown_kid: bool,
    pub unknown_kid_refetch_interval: Duration,
    pub limits: JwksLimits,
}

/// Copy one claim into a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    pub header_name: String,
    pub claim: ClaimLocation,
}

/// Audiences compare the way jwt_authn compares them: a leading `http://` or `https://` and a trailing
/// `/` do not count.
pub fn normalize_audience(audience: &str) -> &str {
    let audience = audience
        .strip_prefix("https://")
        .or_else(|| audience.strip_prefix("http://"))
        .unwrap_or(audience);
    audience.strip_suffix('/').unwrap_or(audience)
}

/// Why a configuration was refused: the field (a dotted path) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

fn error(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    requirement_map: BTreeMap<String, RawRequirement>,
    #[serde(default)]
    bypass_cors_preflight: bool,
    #[serde(default)]
    strip_failure_response: bool,
    #[serde(default)]
    stat_prefix: String,
    // This filter's extension.
    #[serde(default)]
    failure_response_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    local_jwks: Option<RawDataSource>,
    #[serde(default)]
    forward: bool,
    #[serde(default)]
    from_headers: Vec<RawHeaderLocation>,
    #[serde(default)]
    from_params: Vec<String>,
    #[serde(default)]
    from_cookies: Vec<String>,
    #[serde(default)]
    claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    forward_payload_header: String,
    #[serde(default)]
    pad_forward_payload_header: bool,
    /// Accepted for jwt_authn's sake and always in effect: Envoy's wasm host clears the route cache
    /// whenever a filter changes request headers, so a route is picked again after this filter's changes.
    #[serde(default)]
    #[serde(rename = "clear_route_cache")]
    _clear_route_cache: bool,
    #[serde(default)]
    clock_skew_seconds: Option<u64>,
    #[serde(default)]
    jwt_cache_config: Option<RawJwtCacheConfig>,
    #[serde(default)]
    subjects: Option<RawStringMatcher>,
    #[serde(default)]
    require_expiration: bool,
    #[serde(default)]
    max_lifetime: Option<String>,
    // This filter's extensions.
    #[serde(default)]
    report_only: bool,
    #[serde(default)]
    payload_in_filter_state: Option<String>,
    // jwt_authn fields a wasm filter cannot honour: refused with a pointer to what to use instead.
    #[serde(default)]
    payload_in_metadata: Option<String>,
    #[serde(default)]
    header_in_metadata: Option<String>,
    #[serde(default)]
    failed_status_in_metadata: Option<String>,
    #[serde(default)]
    normalize_payload_in_metadata: Option<serde_json::Value>,
}

/// jwt_authn's `jwt_cache_config`. Zero sizes mean the defaults, as in jwt_authn.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwtCacheConfig {
    #[serde(default)]
    jwt_cache_size: usize,
    #[serde(default)]
    jwt_max_token_size: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    http_uri: RawHttpUri,
    #[serde(default)]
    cache_duration: Option<String>,
    // jwt_authn fields, mapped onto this filter's always-asynchronous fetching.
    #[serde(default)]
    async_fetch: Option<RawAsyncFetch>,
    #[serde(default)]
    retry_policy: Option<RawRetryPolicy>,
    // This filter's extensions.
    #[serde(default)]
    oidc_discovery: bool,
    #[serde(default)]
    max_staleness: Option<String>,
    #[serde(default)]
    honor_cache_control: Option<bool>,
    #[serde(default)]
    min_cache_duration: Option<String>,
    #[serde(default)]
    max_cache_duration: Option<String>,
    #[serde(default)]
    refetch_on_unknown_kid: Option<bool>,
    #[serde(default)]
    unknown_kid_refetch_interval: Option<String>,
    #[serde(default)]
    max_jwks_bytes: Option<usize>,
    #[serde(default)]
    max_jwks_keys: Option<usize>,
}

/// jwt_authn's `async_fetch`: this filter always fetches in the background, so only the retry interval
/// after a failure matters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsyncFetch {
    #[serde(default)]
    #[allow(dead_code)]
    fast_listener: bool,
    #[serde(default)]
    failed_refetch_duration: Option<String>,
}

/// Envoy's RetryPolicy as jwt_authn takes it: the back-off bounds are used; this filter keeps retrying
/// (with back-off) rather than giving up after `num_retries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetryPolicy {
    #[serde(default)]
    retry_back_off: Option<RawBackOff>,
    #[serde(default)]
    #[allow(dead_code)]
    num_retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackOff {
    #[serde(default)]
    base_interval: Option<String>,
    #[serde(default)]
    max_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpUri {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    timeout: Option<String>,
}

/// Envoy's DataSource; a wasm filter cannot read files, so only the inline forms are accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataSource {
    #[serde(default)]
    inline_string: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderLocation {
    name: String,
    #[serde(default)]
    value_prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimToHeader {
    header_name: String,
    // Exactly one of these two, as jwt_authn requires.
    #[serde(default)]
    claim_name: Option<String>,
    #[serde(default)]
    claim_path: Option<Vec<RawClaimPathSegment>>,
}

/// One segment of jwt_authn's `claim_path`: `{"key": "<object key>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimPathSegment {
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    route_match: RawRouteMatch,
    #[serde(default)]
    requires: Option<RawRequirement>,
    #[serde(default)]
    requirement_name: Option<String>,
    // This filter's extensions.
    #[serde(default)]
    authorization: Option<RawAuthorization>,
    #[serde(default)]
    report_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    safe_regex: Option<RawRegex>,
    #[serde(default)]
    path_separated_prefix: Option<String>,
    #[serde(default)]
    case_sensitive: Option<bool>,
    #[serde(default)]
    headers: Vec<RawHeaderMatcher>,
    #[serde(default)]
    query_parameters: Vec<RawQueryParameterMatcher>,
}

/// Envoy's route HeaderMatcher (range_match is not supported).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderMatcher {
    name: String,
    #[serde(default)]
    exact_match: Option<String>,
    #[serde(default)]
    prefix_match: Option<String>,
    #[serde(default)]
    suffix_match: Option<String>,
    #[serde(default)]
    contains_match: Option<String>,
    #[serde(default)]
    safe_regex_match: Option<RawRegex>,
    #[serde(default)]
    present_match: Option<bool>,
    #[serde(default)]
    string_match: Option<RawStringMatcher>,
    #[serde(default)]
    invert_match: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryParameterMatcher {
    name: String,
    #[serde(default)]
    string_match: Option<RawStringMatcher>,
    #[serde(default)]
    present_match: Option<bool>,
}

/// jwt_authn's JwtRequirement: at most one of its fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    #[serde(default)]
    provider_name: Option<String>,
    #[serde(default)]
    provider_and_audiences: Option<RawProviderAndAudiences>,
    #[serde(default)]
    requires_any: Option<RawRequirementList>,
    #[serde(default)]
    requires_all: Option<RawRequirementList>,
    #[serde(default)]
    allow_missing: Option<RawEmpty>,
    #[serde(default)]
    allow_missing_or_failed: Option<RawEmpty>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderAndAudiences {
    provider_name: String,
    #[serde(default)]
    audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirementList {
    requirements: Vec<RawRequirement>,
}

/// `{}` (google.protobuf.Empty).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmpty {}

/// A rule's claim-based authorization (this filter's extension).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    claims: Vec<RawClaimRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimRequirement {
    name: String,
    values: Vec<String>,
}

impl FilterConfig {
    /// Parses and checks the plugin configuration. An empty configuration is refused: a filter with no
    /// providers and no rules would silently let everything through.
    pub fn parse(json: &[u8]) -> Result<FilterConfig, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(error(
                "",
                "the plugin configuration is empty; give providers and rules as JSON",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            error(field, e.into_inner().to_string())
        })?;
        deserializer
            .end()
            .map_err(|e| error("", format!("trailing characters after the JSON: {e}")))?;
        compile(raw)
    }

    /// The provider with this name.
    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.providers.iter().position(|p| p.name == name)
    }
}

fn compile(raw: RawConfig) -> Result<FilterConfig, ConfigError> {
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, raw_provider) in raw.providers {
        providers.push(compile_provider(name, raw_provider)?);
    }
    let mut leaves = 0;
    let mut requirement_map = BTreeMap::new();
    for (name, raw_requirement) in &raw.requirement_map {
        let field = format!("requirement_map.{name}");
        let requirement = compile_requirement(&field, raw_requirement, &providers, &mut leaves)?;
        requirement_map.insert(name.clone(), Rc::new(requirement));
    }
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (index, raw_rule) in raw.rules.into_iter().enumerate() {
        let field = format!("rules[{index}]");
        let route_match = compile_route_match(&format!("{field}.match"), raw_rule.route_match)?;
        let requirement = match (raw_rule.requires, raw_rule.requirement_name) {
            (Some(_), Some(_)) => {
                return Err(error(
                    field,
                    "give at most one of \"requires\" or \"requirement_name\"",
                ))
            }
            (Some(requires), None) => Some(Rc::new(compile_requirement(
                &format!("{field}.requires"),
                &requires,
                &providers,
                &mut leaves,
            )?)),
            (None, Some(name)) => Some(requirement_map.get(&name).cloned().ok_or_else(|| {
                error(
                    format!("{field}.requirement_name"),
                    format!(
                        "no requirement named \"{}\" in requirement_map",
                        name.escape_debug()
                    ),
                )
            })?),
            (None, None) => None,
        };
        let authorization = match raw_rule.authorization {
            None => None,
            Some(raw) => Some(compile_authorization(
                &format!("{field}.authorization"),
                raw,
                requirement.is_some(),
            )?),
        };
        rules.push(Rule {
            route_match,
            requirement,
            authorization,
            report_only: raw_rule.report_only,
        });
    }
    let mut identity_headers: Vec<String> = Vec::new();
    for provider in &providers {
        let names = provider
            .claim_to_headers
            .iter()
            .map(|c| c.header_name.clone())
            .chain(provider.forward_payload_header.clone());
        for name in names {
            if !identity_headers.contains(&name) {
                identity_headers.push(name);
            }
        }
    }
    let failure_format = match raw.failure_response_format.as_deref() {
        None | Some("text") => FailureFormat::Text,
        Some("json") => FailureFormat::Json,
        Some(other) => {
            return Err(error(
                "failure_response_format",
                format!(
                    "\"{}\" is neither \"text\" nor \"json\"",
                    other.escape_debug()
                ),
            ))
        }
    };
    let metric_prefix = if raw.stat_prefix.is_empty() {
        crate::metrics::PREFIX.to_string()
    } else if raw.stat_prefix.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) {
        format!("{}.{}", crate::metrics::PREFIX, raw.stat_prefix)
    } else {
        return Err(error(
            "stat_prefix",
            format!(
                "\"{}\": use letters, digits, '_' and '-', in segments separated by single dots",
                raw.stat_prefix.escape_debug()
            ),
        ));
    };
    Ok(FilterConfig {
        providers,
        rules,
        identity_headers,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        strip_failure_response: raw.strip_failure_response,
        failure_format,
        leaf_count: leaves,
        metric_prefix: Rc::from(metric_prefix),
    })
}

fn compile_route_match(field: &str, raw: RawRouteMatch) -> Result<RouteMatch, ConfigError> {
    let mut paths = Vec::new();
    if let Some(prefix) = raw.prefix {
        paths.push(PathMatch::Prefix(prefix));
    }
    if let Some(path) = raw.path {
        paths.push(PathMatch::Exact(path));
    }
    if let Some(prefix) = raw.path_separated_prefix {
        if prefix.ends_with('/') || prefix.contains(['?', '#']) {
            return Err(error(
                format!("{field}.path_separated_prefix"),
                "must not end with '/' or contain '?' or '#'",
            ));
        }
        paths.push(PathMatch::SeparatedPrefix(prefix));
    }
    if let Some(regex) = raw.safe_regex {
        let compiled = regex
            .compile()
            .map_err(|reason| error(format!("{field}.safe_regex"), reason))?;
        paths.push(PathMatch::Regex(compiled));
    }
    let (Some(path), 1) = (paths.pop(), paths.len() + 1) else {
        return Err(error(
            field,
            "give exactly one of \"prefix\", \"path\", \"path_separated_prefix\" or \"safe_regex\"",
        ));
    };
    let mut headers = Vec::new();
    for (index, raw_header) in raw.headers.into_iter().enumerate() {
        let header_field = format!("{field}.headers[{index}]");
        let name = checked_header_name(&format!("{header_field}.name"), &raw_header.name).or_else(
            |e| {
                // Pseudo-headers (:method, :authority) are matchable too.
                let pseudo = raw_header.name.strip_prefix(':').unwrap_or("");
                checked_header_name(&format!("{header_field}.name"), pseudo)
                    .map(|n| format!(":{n}"))
                    .map_err(|_| e)
            },
        )?;
        let condition = header_condition(&header_field, raw_header_condition(&raw_header))?;
        headers.push(HeaderMatcher {
            name,
            condition,
            invert: raw_header.invert_match,
        });
    }
    let mut query_parameters = Vec::new();
    for (index, raw_query) in raw.query_parameters.into_iter().enumerate() {
        let query_field = format!("{field}.query_parameters[{index}]");
        if raw_query.name.is_empty() {
            return Err(error(format!("{query_field}.name"), "must not be empty"));
        }
        let condition = match (raw_query.string_match, raw_query.present_match) {
            (Some(matcher), None) => ValueCondition::Value(
                StringMatcher::compile(&matcher)
                    .map_err(|r| error(format!("{query_field}.string_match"), r))?,
            ),
            (None, Some(present)) => ValueCondition::Present(present),
            // Envoy: a matcher with neither checks that the parameter is present.
            (None, None) => ValueCondition::Present(true),
            (Some(_), Some(_)) => {
                return Err(error(
                    query_field,
                    "give at most one of \"string_match\" or \"present_match\"",
                ))
            }
        };
        query_parameters.push(QueryParameterMatcher {
            name: raw_query.name,
            condition,
        });
    }
    Ok(RouteMatch {
        path,
        case_sensitive: raw.case_sensitive.unwrap_or(true),
        headers,
        query_parameters,
    })
}

/// The one condition a header matcher gives, as (field name, compiled condition) candidates.
fn raw_header_condition(
    raw: &RawHeaderMatcher,
) -> Vec<(&'static str, Result<ValueCondition, String>)> {
    let text = |kind: &str, value: &str| {
        let raw: Result<RawStringMatcher, _> =
            serde_json::from_value(serde_json::json!({ kind: value }));
        raw.map_err(|e| e.to_string())
            .and_then(|r| StringMatcher::compile(&r))
            .map(ValueCondition::Value)
    };
    let mut found = Vec::new();
    if let Some(v) = &raw.exact_match {
        found.push(("exact_match", text("exact", v)));
    }
    if let Some(v) = &raw.prefix_match {
        found.push(("prefix_match", text("prefix", v)));
    }
    if let Some(v) = &raw.suffix_match {
        found.push(("suffix_match", text("suffix", v)));
    }
    if let Some(v) = &raw.contains_match {
        found.push(("contains_match", text("contains", v)));
    }
    if let Some(v) = &raw.safe_regex_match {
        found.push((
            "safe_regex_match",
            v.compile()
                .map(|r| ValueCondition::Value(StringMatcher::regex(r))),
        ));
    }
    if let Some(v) = raw.present_match {
        found.push(("present_match", Ok(ValueCondition::Present(v))));
    }
    if let Some(v) = &raw.string_match {
        found.push((
            "string_match",
            StringMatcher::compile(v).map(ValueCondition::Value),
        ));
    }
    found
}

fn header_condition(
    field: &str,
    mut found: Vec<(&'static str, Result<ValueCondition, String>)>,
) -> Result<ValueCondition, ConfigError> {
    match (found.pop(), found.is_empty()) {
        // Envoy: a header matcher with no condition checks that the header is present.
        (None, _) => Ok(ValueCondition::Present(true)),
        (Some((name, condition)), true) => {
            condition.map_err(|reason| error(format!("{field}.{name}"), reason))
        }
        (Some(_), false) => Err(error(field, "give at most one match condition")),
    }
}

fn compile_requirement(
    field: &str,
    raw: &RawRequirement,
    providers: &[Provider],
    leaves: &mut usize,
) -> Result<Requirement, ConfigError> {
    let mut next_leaf = || {
        *leaves += 1;
        *leaves - 1
    };
    let provider_id = |field: String, name: &str| {
        providers
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                error(
                    field,
                    format!("no provider named \"{}\" in providers", name.escape_debug()),
                )
            })
    };
    let given = [
        raw.provider_name.is_some(),
        raw.provider_and_audiences.is_some(),
        raw.requires_any.is_some(),
        raw.requires_all.is_some(),
        raw.allow_missing.is_some(),
        raw.allow_missing_or_failed.is_some(),
    ]
    .iter()
    .filter(|&&g| g)
    .count();
    if given > 1 {
        return Err(error(
            field,
            "give one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed",
        ));
    }
    if let Some(name) = &raw.provider_name {
        let provider = provider_id(format!("{field}.provider_name"), name)?;
        return Ok(Requirement::Provider {
            leaf: next_leaf(),
            provider,
            audiences: None,
        });
    }
    if let Some(pa) = &raw.provider_and_audiences {
        let provider = provider_id(
            format!("{field}.provider_and_audiences.provider_name"),
            &pa.provider_name,
        )?;
        // As in jwt_authn, an empty list keeps the provider's own audiences.
        let audiences = (!pa.audiences.is_empty()).then(|| {
            pa.audiences
                .iter()
                .map(|a| normalize_audience(a).to_string())
                .collect()
        });
        return Ok(Requirement::Provider {
            leaf: next_leaf(),
            provider,
            audiences,
        });
    }
    if raw.allow_missing.is_some() {
        return Ok(Requirement::AllowMissing { leaf: next_leaf() });
    }
    if raw.allow_missing_or_failed.is_some() {
        return Ok(Requirement::AllowMissingOrFailed { leaf: next_leaf() });
    }
    for (kind, list) in [
        ("requires_any", &raw.requires_any),
        ("requires_all", &raw.requires_all),
    ] {
        let Some(list) = list else { continue };
        let list_field = format!("{field}.{kind}.requirements");
        if list.requirements.len() < 2 {
            return Err(error(list_field, "needs at least 2 requirements"));
        }
        let mut children = Vec::new();
        let (mut allow_missing, mut allow_missing_or_failed) = (false, false);
        for (index, child) in list.requirements.iter().enumerate() {
            let child_field = format!("{list_field}[{index}]");
            if kind == "requires_any" && child.allow_missing.is_some() {
                allow_missing = true;
            } else if kind == "requires_any" && child.allow_missing_or_failed.is_some() {
                allow_missing_or_failed = true;
            } else {
                children.push(compile_requirement(&child_field, child, providers, leaves)?);
            }
        }
        if kind == "requires_all" {
            return Ok(Requirement::All(children));
        }
        // jwt_authn: with only allow_* children, the node is that allowance itself.
        if children.is_empty() {
            let leaf = {
                *leaves += 1;
                *leaves - 1
            };
            return Ok(if allow_missing_or_failed {
                Requirement::AllowMissingOrFailed { leaf }
            } else {
                Requirement::AllowMissing { leaf }
            });
        }
        return Ok(Requirement::Any {
            children,
            allow_missing,
            allow_missing_or_failed,
        });
    }
    Ok(Requirement::AllowAll)
}

fn compile_authorization(
    field: &str,
    raw: RawAuthorization,
    has_requirement: bool,
) -> Result<Authorization, ConfigError> {
    if !has_requirement {
        return Err(error(
            field,
            "needs a requirement on the same rule (\"requires\" or \"requirement_name\"): claims come from verified tokens",
        ));
    }
    if raw.scopes.is_empty() && raw.claims.is_empty() {
        return Err(error(field, "give \"scopes\" or \"claims\""));
    }
    for (index, scope) in raw.scopes.iter().enumerate() {
        if scope.is_empty()
            || scope.contains([' ', '"', '\\'])
            || scope.chars().any(char::is_control)
        {
            return Err(error(
                format!("{field}.scopes[{index}]"),
                "a scope is a non-empty token without spaces, quotes or backslashes (RFC 6749 3.3)",
            ));
        }
    }
    let mut claims = Vec::new();
    for (index, claim) in raw.claims.into_iter().enumerate() {
        if claim.name.is_empty() {
            return Err(error(
                format!("{field}.claims[{index}].name"),
                "must not be empty",
            ));
        }
        if claim.values.is_empty() {
            return Err(error(
                format!("{field}.claims[{index}].values"),
                "list at least one allowed value",
            ));
        }
        claims.push(ClaimRequirement {
            name: claim.name,
            values: claim.values,
        });
    }
    Ok(Authorization {
        scopes: raw.scopes,
        claims,
    })
}

fn compile_provider(name: String, raw: RawProvider) -> Result<Provider, ConfigError> {
    let field = format!("providers.{name}");
    let jwks_source = match (raw.remote_jwks, raw.local_jwks) {
        (Some(remote), None) => {
            JwksSource::Remote(Box::new(compile_remote_jwks(&field, &raw.issuer, remote)?))
        }
        (None, Some(local)) => JwksSource::Local(compile_local_jwks(&field, local)?),
        _ => {
            return Err(error(
                field,
                "give exactly one of \"remote_jwks\" or \"local_jwks\"",
            ))
        }
    };
    let mut locations = TokenLocations {
        headers: Vec::new(),
        params: Vec::new(),
        cookies: Vec::new(),
    };
    for (index, header) in raw.from_headers.into_iter().enumerate() {
        let header_name =
            checked_header_name(&format!("{field}.from_headers[{index}].name"), &header.name)?;
        locations.headers.push(HeaderLocation {
            name: header_name,
            value_prefix: header.value_prefix,
        });
    }
    for (index, param) in raw.from_params.into_iter().enumerate() {
        if param.is_empty() {
            return Err(error(
                format!("{field}.from_params[{index}]"),
                "must not be empty",
            ));
        }
        locations.params.push(param);
    }
    for (index, cookie) in raw.from_cookies.into_iter().enumerate() {
        let valid = !cookie.is_empty()
            && cookie
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !valid {
            return Err(error(
                format!("{field}.from_cookies[{index}]"),
                format!("\"{}\" is not a valid cookie name", cookie.escape_debug()),
            ));
        }
        locations.cookies.push(cookie);
    }
    if locations.headers.is_empty() && locations.params.is_empty() && locations.cookies.is_empty() {
        locations = TokenLocations::jwt_authn_default();
    }
    for (name, present) in [
        ("payload_in_metadata", raw.payload_in_metadata.is_some()),
        ("header_in_metadata", raw.header_in_metadata.is_some()),
        (
            "failed_status_in_metadata",
            raw.failed_status_in_metadata.is_some(),
        ),
        (
            "normalize_payload_in_metadata",
            raw.normalize_payload_in_metadata.is_some(),
        ),
    ] {
        if present {
            return Err(error(
                format!("{field}.{name}"),
                "a wasm filter cannot write dynamic metadata; use \"payload_in_filter_state\" (read as filter state wasm.<name>)",
            ));
        }
    }
    let payload_in_filter_state = match raw.payload_in_filter_state {
        Some(name)
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
        {
            return Err(error(
                format!("{field}.payload_in_filter_state"),
                "use letters, digits, '_', '-' and '.'",
            ))
        }
        other => other,
    };
    let subjects = match &raw.subjects {
        None => None,
        Some(matcher) => Some(
            StringMatcher::compile(matcher)
                .map_err(|reason| error(format!("{field}.subjects"), reason))?,
        ),
    };
    let lifetime = match raw.max_lifetime {
        Some(text) => {
            let max = parse_duration(&text)
                .map_err(|reason| error(format!("{field}.max_lifetime"), reason))?;
            if max.is_zero() {
                return Err(error(
                    format!("{field}.max_lifetime"),
                    "must be greater than 0s",
                ));
            }
            Lifetime::AtMost(max.as_secs().max(1))
        }
        None if raw.require_expiration => Lifetime::ExpirationRequired,
        None => Lifetime::Unbounded,
    };
    let mut claim_to_headers = Vec::new();
    for (index, claim) in raw.claim_to_headers.into_iter().enumerate() {
        let claim_field = format!("{field}.claim_to_headers[{index}]");
        let header_name =
            checked_header_name(&format!("{claim_field}.header_name"), &claim.header_name)?;
        let claim_location = compile_claim_location(&claim_field, claim)?;
        claim_to_headers.push(ClaimToHeader {
            header_name,
            claim: claim_location,
        });
    }
    let cache_config = raw.jwt_cache_config;
    let forward_payload_header = if raw.forward_payload_header.is_empty() {
        None
    } else {
        Some(checked_header_name(
            &format!("{field}.forward_payload_header"),
            &raw.forward_payload_header,
        )?)
    };
    Ok(Provider {
        name,
        issuer: (!raw.issuer.is_empty()).then_some(raw.issuer),
        audiences: raw
            .audiences
            .iter()
            .map(|a| normalize_audience(a).to_string())
            .collect(),
        jwks_source,
        forward: raw.forward,
        locations,
        claim_to_headers,
        forward_payload_header,
        pad_forward_payload_header: raw.pad_forward_payload_header,
        clock_skew_seconds: raw.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS),
        jwt_cache_size: cache_config
            .as_ref()
            .map(|c| c.jwt_cache_size)
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_CACHE_SIZE)
            .min(MAX_CACHE_SIZE),
        jwt_max_cached_token_bytes: cache_config
            .as_ref()
            .map(|c| c.jwt_max_token_size)
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_CACHED_TOKEN_BYTES),
        subjects,
        lifetime,
        report_only: raw.report_only,
        payload_in_filter_state,
    })
}

fn compile_remote_jwks(
    field: &str,
    issuer: &str,
    raw: RawRemoteJwks,
) -> Result<RemoteJwks, ConfigError> {
    let remote_field = format!("{field}.remote_jwks");
    let uri_field = format!("{remote_field}.http_uri");
    if raw.http_uri.cluster.is_empty() {
        return Err(error(
            format!("{uri_field}.cluster"),
            "must name the Envoy cluster that reaches the JWKS server",
        ));
    }
    let uri = if raw.http_uri.uri.is_empty() && raw.oidc_discovery && !issuer.is_empty() {
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )
    } else {
        raw.http_uri.uri
    };
    let (authority, path) =
        split_http_uri(&uri).map_err(|reason| error(format!("{uri_field}.uri"), reason))?;
    let duration = |name: &str, value: Option<String>, default: Duration| match value {
        Some(text) => parse_duration(&text).map_err(|r| error(format!("{remote_field}.{name}"), r)),
        None => Ok(default),
    };
    let timeout = duration(
        "http_uri.timeout",
        raw.http_uri.timeout,
        DEFAULT_FETCH_TIMEOUT,
    )?;
    if timeout.is_zero() {
        return Err(error(
            format!("{uri_field}.timeout"),
            "must be greater than 0s",
        ));
    }
    let cache_duration = duration("cache_duration", raw.cache_duration, DEFAULT_CACHE_DURATION)?;
    if cache_duration < Duration::from_secs(1) {
        return Err(error(
            format!("{remote_field}.cache_duration"),
            "must be at least 1s",
        ));
    }
    let back_off = raw.retry_policy.and_then(|p| p.retry_back_off);
    let failed_refetch = raw.async_fetch.and_then(|a| a.failed_refetch_duration);
    let (base, max) = match back_off {
        Some(back_off) => (back_off.base_interval, back_off.max_interval),
        None => (None, None),
    };
    let retry_initial_interval = match (base, failed_refetch) {
        (Some(base), _) => duration(
            "retry_policy.retry_back_off.base_interval",
            Some(base),
            DEFAULT_RETRY_INITIAL_INTERVAL,
        )?,
        (None, failed) => duration(
            "async_fetch.failed_refetch_duration",
            failed,
            DEFAULT_RETRY_INITIAL_INTERVAL,
        )?,
    };
    let retry_max_interval = duration(
        "retry_policy.retry_back_off.max_interval",
        max,
        DEFAULT_RETRY_MAX_INTERVAL.max(retry_initial_interval),
    )?;
    if retry_initial_interval < Duration::from_millis(100)
        || retry_max_interval < retry_initial_interval
    {
        return Err(error(
            format!("{remote_field}.retry_policy.retry_back_off"),
            "retries need a base interval of at least 0.1s and a max interval no smaller than it",
        ));
    }
    let min_cache_duration = duration(
        "min_cache_duration",
        raw.min_cache_duration,
        DEFAULT_MIN_CACHE_DURATION,
    )?;
    let max_cache_duration = duration(
        "max_cache_duration",
        raw.max_cache_duration,
        DEFAULT_MAX_CACHE_DURATION,
    )?;
    if min_cache_duration < Duration::from_secs(1) || max_cache_duration < min_cache_duration {
        return Err(error(
            format!("{remote_field}.min_cache_duration"),
            "must be at least 1s and no larger than max_cache_duration",
        ));
    }
    let unknown_kid_refetch_interval = duration(
        "unknown_kid_refetch_interval",
        raw.unknown_kid_refetch_interval,
        DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL,
    )?;
    if unknown_kid_refetch_interval < Duration::from_millis(100) {
        return Err(error(
            format!("{remote_field}.unknown_kid_refetch_interval"),
            "must be at least 0.1s (set refetch_on_unknown_kid to false to turn refetching off)",
        ));
    }
    let limit = |name: &str, value: Option<usize>, default: usize, ceiling: usize| match value {
        None => Ok(default),
        Some(v) if (1..=ceiling).contains(&v) => Ok(v),
        Some(v) => Err(error(
            format!("{remote_field}.{name}"),
            format!("{v} is outside 1..={ceiling}"),
        )),
    };
    let defaults = JwksLimits::default();
    let limits = JwksLimits {
        max_bytes: limit(
            "max_jwks_bytes",
            raw.max_jwks_bytes,
            defaults.max_bytes,
            LIMIT_MAX_JWKS_BYTES,
        )?,
        max_keys: limit(
            "max_jwks_keys",
            raw.max_jwks_keys,
            defaults.max_keys,
            LIMIT_MAX_JWKS_KEYS,
        )?,
    };
    Ok(RemoteJwks {
        uri,
        oidc_discovery: raw.oidc_discovery,
        cluster: raw.http_uri.cluster,
        authority,
        path,
        timeout,
        cache_duration,
        policy: FetchPolicy {
            max_staleness: duration("max_staleness", raw.max_staleness, DEFAULT_MAX_STALENESS)?,
            honor_cache_control: raw.honor_cache_control.unwrap_or(true),
            min_cache_duration,
            max_cache_duration,
            retry_initial_interval,
            retry_max_interval,
            refetch_on_unknown_kid: raw.refetch_on_unknown_kid.unwrap_or(true),
            unknown_kid_refetch_interval,
            limits,
        },
    })
}

fn compile_local_jwks(field: &str, raw: RawDataSource) -> Result<Jwks, ConfigError> {
    let local_field = format!("{field}.local_jwks");
    if raw.filename.is_some() {
        return Err(error(
            format!("{local_field}.filename"),
            "a wasm filter cannot read files; put the JWKS in \"inline_string\"",
        ));
    }
    let document = raw
        .inline_string
        .ok_or_else(|| error(format!("{local_field}.inline_string"), "is required"))?;
    parse_local_jwks(document.as_bytes())
        .map_err(|e| error(format!("{local_field}.inline_string"), e.to_string()))
}

/// Splits `http[s]://host[:port]/path?query` into the callout's `:authority` and `:path`.
fn compile_claim_location(
    claim_field: &str,
    claim: RawClaimToHeader,
) -> Result<ClaimLocation, ConfigError> {
    match (claim.claim_name, claim.claim_path) {
        (Some(name), None) if name.is_empty() => Err(error(
            format!("{claim_field}.claim_name"),
            "must not be empty",
        )),
        (Some(name), None) => Ok(ClaimLocation::DottedName(name)),
        (None, Some(path)) if path.is_empty() => Err(error(
            format!("{claim_field}.claim_path"),
            "must have at least one segment",
        )),
        (None, Some(path)) => {
            let mut keys = Vec::with_capacity(path.len());
            for (index, segment) in path.into_iter().enumerate() {
                if segment.key.is_empty() {
                    return Err(error(
                        format!("{claim_field}.claim_path[{index}].key"),
                        "must not be empty",
                    ));
                }
                keys.push(segment.key);
            }
            Ok(ClaimLocation::Path(keys))
        }
        _ => Err(error(
            claim_field.to_string(),
            "set exactly one of claim_name and claim_path",
        )),
    }
}

pub fn split_http_uri(uri: &str) -> Result<(String, String), String> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "\"{}\" must start with http:// or https://",
                uri.escape_debug()
            )
        })?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(format!("\"{}\" has no usable host", uri.escape_debug()));
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((authority.to_string(), path))
}

/// Header names are lower-cased (Envoy's header map is) and must be HTTP tokens.
fn checked_header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(error(
            field,
            format!(
                "\"{}\" is not a valid HTTP header name",
                name.escape_debug()
            ),
        ));
    }
    Ok(name.to_ascii_lowercase())
}
