//! Filter configuration: the JSON in the wasm plugin's `configuration`, shaped like Envoy's jwt_authn
//! `JwtAuthentication` (same snake_case field names), so a provider moves from jwt_authn by copying it.
//!
//! Parsed and compiled once in on_configure into [`FilterConfig`]. Every error names the field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_duration;
use crate::extractor::{HeaderLocation, TokenLocations};
use crate::jwks::{parse_jwks, Jwks};
use crate::rules::{PathMatch, Requirement, Rule};

/// jwt_authn's default `remote_jwks.cache_duration`.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
/// `http_uri.timeout` when none is given.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(1);
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
}

/// Where a provider's keys come from.
#[derive(Debug)]
pub enum JwksSource {
    Remote(RemoteJwks),
    Local(Jwks),
}

/// A JWKS fetched over HTTP through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub uri: String,
    pub cluster: String,
    /// `:authority` of the fetch: the URI's host and port.
    pub authority: String,
    /// `:path` of the fetch, with the query.
    pub path: String,
    pub timeout: Duration,
    pub cache_duration: Duration,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    http_uri: RawHttpUri,
    #[serde(default)]
    cache_duration: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpUri {
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
        (Some(remote), None) => JwksSource::Remote(compile_remote_jwks(&field, remote)?),
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
    })
}

fn compile_remote_jwks(field: &str, raw: RawRemoteJwks) -> Result<RemoteJwks, ConfigError> {
    let uri_field = format!("{field}.remote_jwks.http_uri");
    if raw.http_uri.cluster.is_empty() {
        return Err(error(
            format!("{uri_field}.cluster"),
            "must name the Envoy cluster that reaches the JWKS server",
        ));
    }
    let (authority, path) = split_http_uri(&raw.http_uri.uri)
        .map_err(|reason| error(format!("{uri_field}.uri"), reason))?;
    let timeout = match raw.http_uri.timeout {
        Some(text) => {
            parse_duration(&text).map_err(|r| error(format!("{uri_field}.timeout"), r))?
        }
        None => DEFAULT_FETCH_TIMEOUT,
    };
    if timeout.is_zero() {
        return Err(error(
            format!("{uri_field}.timeout"),
            "must be greater than 0s",
        ));
    }
    let cache_duration = match raw.cache_duration {
        Some(text) => parse_duration(&text)
            .map_err(|r| error(format!("{field}.remote_jwks.cache_duration"), r))?,
        None => DEFAULT_CACHE_DURATION,
    };
    if cache_duration < Duration::from_secs(1) {
        return Err(error(
            format!("{field}.remote_jwks.cache_duration"),
            "must be at least 1s",
        ));
    }
    Ok(RemoteJwks {
        uri: raw.http_uri.uri,
        cluster: raw.http_uri.cluster,
        authority,
        path,
        timeout,
        cache_duration,
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
    parse_jwks(document.as_bytes())
        .map_err(|e| error(format!("{local_field}.inline_string"), e.to_string()))
}

/// Splits `http[s]://host[:port]/path?query` into the callout's `:authority` and `:path`.
fn split_http_uri(uri: &str) -> Result<(String, String), String> {
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
