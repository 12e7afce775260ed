//! Filter configuration: the JSON in the wasm plugin's `configuration`, shaped like Envoy's jwt_authn
//! `JwtAuthentication` (same snake_case field names), so a provider moves from jwt_authn by copying it.
//!
//! Parsed and compiled once in on_configure into [`FilterConfig`]. Every error names the field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_duration;
use crate::extractor::{HeaderLocation, TokenLocations};
use crate::jwks::{parse_local_jwks, Jwks, JwksLimits};
use crate::rules::{PathMatch, Requirement, Rule};
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
    pub clock_skew_seconds: u64,
    /// Verified tokens remembered per worker (jwt_authn's `jwt_cache_config.jwt_cache_size`).
    pub jwt_cache_size: usize,
    /// Longer tokens are not cached (`jwt_cache_config.jwt_max_token_size`).
    pub jwt_max_cached_token_bytes: usize,
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

/// Copy one claim (a dotted path reaches nested objects) into a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    pub header_name: String,
    pub claim_name: String,
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
    claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    forward_payload_header: String,
    #[serde(default)]
    clock_skew_seconds: Option<u64>,
    #[serde(default)]
    jwt_cache_config: Option<RawJwtCacheConfig>,
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
    claim_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    route_match: RawRouteMatch,
    #[serde(default)]
    requires: Option<RawRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    provider_name: String,
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
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (index, raw_rule) in raw.rules.into_iter().enumerate() {
        let field = format!("rules[{index}]");
        let path_match = match (raw_rule.route_match.prefix, raw_rule.route_match.path) {
            (Some(prefix), None) => PathMatch::Prefix(prefix),
            (None, Some(path)) => PathMatch::Exact(path),
            _ => {
                return Err(error(
                    format!("{field}.match"),
                    "give exactly one of \"prefix\" or \"path\"",
                ))
            }
        };
        let requirement = match raw_rule.requires {
            None => None,
            Some(requires) => {
                let id = providers
                    .iter()
                    .position(|p: &Provider| p.name == requires.provider_name)
                    .ok_or_else(|| {
                        error(
                            format!("{field}.requires.provider_name"),
                            format!(
                                "no provider named \"{}\" in providers",
                                requires.provider_name.escape_debug()
                            ),
                        )
                    })?;
                Some(Requirement::Provider(id))
            }
        };
        rules.push(Rule {
            path_match,
            requirement,
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
    Ok(FilterConfig {
        providers,
        rules,
        identity_headers,
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
    if locations.headers.is_empty() && locations.params.is_empty() {
        locations = TokenLocations::jwt_authn_default();
    }
    let mut claim_to_headers = Vec::new();
    for (index, claim) in raw.claim_to_headers.into_iter().enumerate() {
        let claim_field = format!("{field}.claim_to_headers[{index}]");
        let header_name =
            checked_header_name(&format!("{claim_field}.header_name"), &claim.header_name)?;
        if claim.claim_name.is_empty() {
            return Err(error(
                format!("{claim_field}.claim_name"),
                "must not be empty",
            ));
        }
        claim_to_headers.push(ClaimToHeader {
            header_name,
            claim_name: claim.claim_name,
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
