//! Filter configuration: the JSON in the wasm plugin's `configuration`, shaped like Envoy's jwt_authn
//! `JwtAuthentication` (same snake_case field names), so a provider moves from jwt_authn by copying it.
//!
//! Parsed and compiled once in on_configure into [`FilterConfig`]. Every error names the field.
//! `raw` is the JSON shape; `provider`, `remote_jwks`, `rules`, `requirement` and
//! `authorization` compile their parts of it.

pub(crate) mod authorization;
pub(crate) mod cert_binding;
pub(crate) mod dpop;
pub(crate) mod duration;
pub(crate) mod provider;
pub(crate) mod provider_index;
mod raw;
pub(crate) mod remote_jwks;
pub(crate) mod requirement;
pub(crate) mod resource_metadata;
pub(crate) mod rules;
pub(crate) mod string_matcher;
pub(crate) mod tenant;
pub(crate) mod token_type;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use crate::jwks::schedule::FetchPolicy;
use crate::metrics;
pub use cert_binding::{BindingMode, CertificateBinding, CertificateSource};
pub use dpop::{DpopConfig, DpopMode};
pub use duration::parse_duration;
use provider::compile_provider;
pub use provider::{
    normalize_audience, ClaimLocation, ClaimToHeader, HeaderLocation, IssuerMatch, JwksSource,
    Lifetime, Provider, TokenLocations, DEFAULT_CACHE_SIZE, DEFAULT_CLOCK_SKEW_SECONDS,
    DEFAULT_MAX_CACHED_TOKEN_BYTES,
};
use provider_index::ProviderIndex;
use raw::RawConfig;
pub use remote_jwks::{
    split_http_uri, RemoteJwks, DEFAULT_CACHE_DURATION, DEFAULT_FETCH_TIMEOUT,
    DEFAULT_MAX_CACHE_DURATION, DEFAULT_MAX_STALENESS, DEFAULT_MIN_CACHE_DURATION,
    DEFAULT_RETRY_INITIAL_INTERVAL, DEFAULT_RETRY_MAX_INTERVAL,
    DEFAULT_UNKNOWN_KID_REFETCH_INTERVAL,
};
pub use requirement::Requirement;
use resource_metadata::{checked_metadata_url, compile_protected_resource, ProtectedResource};
use rules::{compile_per_route, compile_requirement_map, compile_rules};
pub use rules::{PathMatch, Rule};
pub use string_matcher::{RawStringMatcher, StringMatcher};
pub use tenant::is_tenant;
pub use token_type::normalize_media_type;

/// Index of a provider in [`FilterConfig::providers`].
pub type ProviderId = usize;

/// The whole configuration, compiled: what every request is checked against.
#[derive(Debug)]
pub struct FilterConfig {
    pub providers: Vec<Provider>,
    /// The providers by issuer and by the locations they read, compiled once.
    pub provider_index: ProviderIndex,
    /// `rules`, then one rule per `per_route_config` entry (see `route_rules`); only the
    /// first `path_rule_count` are matched against requests.
    pub rules: Vec<Rule>,
    pub path_rule_count: usize,
    /// Envoy route name → index in `rules` of the rule that replaces `rules` on that route (this
    /// filter's `per_route_config`, jwt_authn's `PerRouteConfig` keyed by route name). Empty: the route
    /// name is never read.
    pub route_rules: BTreeMap<String, usize>,
    /// Every header this filter writes from verified claims (claim_to_headers and forward_payload_header,
    /// of every provider). Client copies are removed from every request so nobody can spoof identity.
    pub identity_headers: Vec<Rc<str>>,
    /// Let CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) through unchecked.
    pub bypass_cors_preflight: bool,
    /// Refusals carry no body and no WWW-Authenticate header (jwt_authn's strip_failure_response).
    pub strip_failure_response: bool,
    /// Refusal bodies as jwt_authn's plain text, or as JSON.
    pub failure_format: FailureFormat,
    /// Start of every metric name: `jwt_authn_wasm`, or `jwt_authn_wasm.<stat_prefix>` (jwt_authn's
    /// `stat_prefix`, which keeps two filters' counts apart).
    pub metric_prefix: Rc<str>,
    /// The RFC 9728 protected-resource metadata document this filter serves (this filter's extension).
    pub protected_resource: Option<ProtectedResource>,
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

pub(crate) fn error(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl FilterConfig {
    /// Whether requests need their Envoy route's name (only then is it read from the host).
    pub fn uses_route_names(&self) -> bool {
        !self.route_rules.is_empty()
    }

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
}

fn compile(raw: RawConfig) -> Result<FilterConfig, ConfigError> {
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, raw_provider) in raw.providers {
        providers.push(compile_provider(name, raw_provider)?);
    }
    // Numbers the requirement leaves of all rules (each leaf's tokens are tracked apart while a request
    // waits for keys).
    let mut leaves = 0;
    let requirement_map = compile_requirement_map(&raw.requirement_map, &providers, &mut leaves)?;
    let mut rules = compile_rules(raw.rules, &requirement_map, &providers, &mut leaves)?;
    let path_rule_count = rules.len();
    let mut route_rules = BTreeMap::new();
    for (route, rule) in compile_per_route(raw.per_route_config, &requirement_map)? {
        route_rules.insert(route, rules.len());
        rules.push(rule);
    }
    let protected_resource = match raw.protected_resource {
        None => None,
        Some(raw) => Some(compile_protected_resource(raw, &providers, &rules)?),
    };
    apply_resource_metadata(
        raw.resource_metadata,
        protected_resource.as_ref(),
        raw.strip_failure_response,
        &mut rules,
    )?;
    let identity_headers = identity_headers(&providers);
    let failure_format = failure_format(raw.failure_response_format.as_deref())?;
    let metric_prefix = metric_prefix(&raw.stat_prefix)?;
    Ok(FilterConfig {
        provider_index: ProviderIndex::compile(&providers),
        providers,
        rules,
        path_rule_count,
        route_rules,
        identity_headers,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        strip_failure_response: raw.strip_failure_response,
        failure_format,
        metric_prefix: Rc::from(metric_prefix),
        protected_resource,
    })
}

/// Gives every rule without its own `resource_metadata` the filter's: the configured URL, else the
/// URL of the document this filter serves. A URL with `strip_failure_response` is refused: the
/// challenge that would carry it is stripped.
fn apply_resource_metadata(
    raw: Option<String>,
    protected_resource: Option<&ProtectedResource>,
    strip_failure_response: bool,
    rules: &mut [Rule],
) -> Result<(), ConfigError> {
    let configured = match raw {
        None => None,
        Some(url) => Some(checked_metadata_url("resource_metadata", url)?),
    };
    if strip_failure_response {
        let rule_level = rules.iter().position(|r| r.resource_metadata.is_some());
        let field = match (configured.is_some(), rule_level) {
            (true, _) => Some("resource_metadata".to_string()),
            (false, Some(index)) => Some(format!("rules[{index}].resource_metadata")),
            (false, None) => None,
        };
        if let Some(field) = field {
            return Err(error(
                field,
                "strip_failure_response removes the WWW-Authenticate challenge that would carry it",
            ));
        }
        return Ok(());
    }
    let filter_level = configured.or_else(|| protected_resource.map(|p| p.metadata_url.clone()));
    for rule in rules {
        if rule.resource_metadata.is_none() {
            rule.resource_metadata.clone_from(&filter_level);
        }
    }
    Ok(())
}

/// Every header this filter writes from verified claims, of every provider.
fn identity_headers(providers: &[Provider]) -> Vec<Rc<str>> {
    let mut identity_headers: Vec<String> = Vec::new();
    for provider in providers {
        let names = provider
            .claim_to_headers
            .iter()
            .map(|c| c.header_name.to_string())
            .chain(provider.forward_payload_header.clone())
            .chain(
                provider
                    .tenant_issuer
                    .as_ref()
                    .and_then(|t| t.tenant_header.clone()),
            );
        for name in names {
            if !identity_headers.contains(&name) {
                identity_headers.push(name);
            }
        }
    }
    identity_headers.into_iter().map(Rc::from).collect()
}

fn failure_format(raw: Option<&str>) -> Result<FailureFormat, ConfigError> {
    match raw {
        None | Some("text") => Ok(FailureFormat::Text),
        Some("json") => Ok(FailureFormat::Json),
        Some(other) => Err(error(
            "failure_response_format",
            format!(
                "\"{}\" is neither \"text\" nor \"json\"",
                other.escape_debug()
            ),
        )),
    }
}

/// `jwt_authn_wasm`, or `jwt_authn_wasm.<stat_prefix>`.
fn metric_prefix(stat_prefix: &str) -> Result<String, ConfigError> {
    if stat_prefix.is_empty() {
        Ok(metrics::PREFIX.to_string())
    } else if stat_prefix.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) {
        Ok(format!("{}.{}", metrics::PREFIX, stat_prefix))
    } else {
        Err(error(
            "stat_prefix",
            format!(
                "\"{}\": use letters, digits, '_' and '-', in segments separated by single dots",
                stat_prefix.escape_debug()
            ),
        ))
    }
}

/// Header names are lower-cased (Envoy's header map is) and must be HTTP tokens.
pub(crate) fn checked_header_name(field: &str, name: &str) -> Result<String, ConfigError> {
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
