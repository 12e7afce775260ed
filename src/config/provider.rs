//! Providers: one issuer each, with where its keys come from, where its tokens are, which claims are
//! checked and which are forwarded.

use std::rc::Rc;

use crate::config::cert_binding::{compile_certificate_binding, CertificateBinding};
use crate::config::duration::parse_duration;
use crate::config::raw::{RawClaimToHeader, RawDataSource, RawHeaderLocation, RawProvider};
use crate::config::remote_jwks::{compile_remote_jwks, RemoteJwks};
use crate::config::string_matcher::StringMatcher;
use crate::config::tenant::{compile_tenant_issuer, TenantIssuer};
use crate::config::token_type::compile_accepted_types;
use crate::config::{checked_header_name, error, ConfigError};
use crate::jwks::key_set::{parse_local_jwks, Jwks};

/// jwt_authn's default `jwt_cache_config.jwt_cache_size`.
pub const DEFAULT_CACHE_SIZE: usize = 100;
/// jwt_authn's default `jwt_cache_config.jwt_max_token_size`: larger tokens are not cached.
pub const DEFAULT_MAX_CACHED_TOKEN_BYTES: usize = 4096;
/// Ceiling for `jwt_cache_config.jwt_cache_size`: bounds each worker's memory.
const MAX_CACHE_SIZE: usize = 100_000;
/// jwt_authn's default `clock_skew_seconds`.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;

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
    /// Tokens sender-constrained with DPoP (RFC 9449; this filter's extension).
    pub dpop: Option<crate::config::dpop::DpopConfig>,
    /// Tokens must be bound to the client certificate (RFC 8705 §3; this filter's extension).
    pub certificate_bound: Option<CertificateBinding>,
    /// A multi-tenant issuer template instead of `issuer` (this filter's extension).
    pub tenant_issuer: Option<TenantIssuer>,
    /// `typ` header values accepted, normalised media types (this filter's extension); empty accepts any
    /// token, with or without `typ`.
    pub accepted_types: Vec<String>,
}

/// How a token's `iss` fits a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerMatch<'i> {
    /// `iss` equals the provider's `issuer`.
    Exact,
    /// The provider has neither `issuer` nor a template: any `iss`, or none, fits.
    Any,
    /// `iss` fits the provider's `tenant_issuer` template, naming this (allowed) tenant.
    Tenant(&'i str),
}

impl IssuerMatch<'_> {
    /// Whether the provider names this issuer (exactly or by its template), rather than accepting any.
    pub fn is_specific(self) -> bool {
        !matches!(self, IssuerMatch::Any)
    }
}

impl Provider {
    /// How the token's `iss` (`None` when it has none) fits this provider; `None` when it does not.
    pub fn matches_issuer<'i>(&self, iss: Option<&'i str>) -> Option<IssuerMatch<'i>> {
        match (&self.issuer, &self.tenant_issuer) {
            (Some(issuer), _) => (iss == Some(issuer.as_str())).then_some(IssuerMatch::Exact),
            (None, Some(template)) => iss
                .and_then(|iss| template.tenant_of(iss))
                .map(IssuerMatch::Tenant),
            (None, None) => Some(IssuerMatch::Any),
        }
    }
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

/// Where a provider's keys come from.
#[derive(Debug)]
pub enum JwksSource {
    Remote(Box<RemoteJwks>),
    Local(Jwks),
}

/// Copy one claim into a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Shared with every verified token's claim headers, not copied into each.
    pub header_name: Rc<str>,
    pub claim: ClaimLocation,
}

/// Where a claim is in the payload: jwt_authn's two ways of naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimLocation {
    /// `claim_name`: a dotted path reaches nested objects (`"org.team"`); a claim whose own name has
    /// dots is found by its whole name first.
    DottedName(String),
    /// `claim_path`: one object key per segment, taken literally, so names with dots or slashes
    /// (`"https://example.com/roles"`) need no escaping.
    Path(Vec<String>),
}

/// A header that may carry a token, and the text in front of it (`"Bearer "` for Authorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLocation {
    /// Lower-case header name (HTTP/2 and Envoy's header map use lower case). Shared, not copied, by
    /// every token found there and every header removal naming it.
    pub name: Rc<str>,
    /// Text in front of the token; empty means the whole value is the token.
    pub value_prefix: String,
}

/// All the places one provider reads its tokens from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLocations {
    pub headers: Vec<HeaderLocation>,
    pub params: Vec<Rc<str>>,
    /// Cookie names (jwt_authn's `from_cookies`).
    pub cookies: Vec<Rc<str>>,
}

impl TokenLocations {
    /// jwt_authn's default locations, used when a provider configures none of from_headers, from_params
    /// and from_cookies: `Authorization: Bearer <token>` and the `access_token` query parameter.
    pub fn jwt_authn_default() -> TokenLocations {
        TokenLocations {
            headers: vec![HeaderLocation {
                name: "authorization".into(),
                value_prefix: "Bearer ".to_string(),
            }],
            params: vec!["access_token".into()],
            cookies: Vec::new(),
        }
    }
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

/// jwt_authn fields a wasm filter cannot honour: each is refused with a pointer to what to use instead.
const METADATA_REFUSAL: &str = "a wasm filter cannot write dynamic metadata; use \"payload_in_filter_state\" (read as filter state wasm.<name>)";

pub(super) fn compile_provider(
    name: String,
    mut raw: RawProvider,
) -> Result<Provider, ConfigError> {
    let field = format!("providers.{name}");
    let jwks_source = match (raw.remote_jwks.take(), raw.local_jwks.take()) {
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
    let dpop = match raw.dpop.take() {
        Some(dpop) => Some(crate::config::dpop::compile_dpop(
            &format!("{field}.dpop"),
            dpop,
        )?),
        None => None,
    };
    let mut locations = compile_locations(
        &field,
        std::mem::take(&mut raw.from_headers),
        std::mem::take(&mut raw.from_params),
        std::mem::take(&mut raw.from_cookies),
    )?;
    if dpop.is_some() {
        crate::config::dpop::add_dpop_location(&mut locations);
    }
    refuse_metadata_fields(&field, &raw)?;
    let payload_in_filter_state = compile_filter_state_name(&field, raw.payload_in_filter_state)?;
    let subjects = match &raw.subjects {
        None => None,
        Some(matcher) => Some(
            StringMatcher::compile(matcher)
                .map_err(|reason| error(format!("{field}.subjects"), reason))?,
        ),
    };
    let lifetime = compile_lifetime(&field, raw.max_lifetime, raw.require_expiration)?;
    let claim_to_headers = compile_claim_to_headers(&field, raw.claim_to_headers)?;
    let forward_payload_header = if raw.forward_payload_header.is_empty() {
        None
    } else {
        Some(checked_header_name(
            &format!("{field}.forward_payload_header"),
            &raw.forward_payload_header,
        )?)
    };
    let certificate_bound = compile_certificate_binding(&field, raw.certificate_bound.take())?;
    let tenant_issuer = match raw.tenant_issuer.take() {
        None => None,
        Some(_) if !raw.issuer.is_empty() => {
            return Err(error(
                format!("{field}.tenant_issuer"),
                "give either \"issuer\" or \"tenant_issuer\", not both",
            ))
        }
        Some(template) => Some(compile_tenant_issuer(&field, template)?),
    };
    let accepted_types = compile_accepted_types(&field, raw.accepted_types.take())?;
    let cache_config = raw.jwt_cache_config;
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
        dpop,
        certificate_bound,
        tenant_issuer,
        accepted_types,
    })
}

/// jwt_authn's dynamic-metadata fields, which a wasm filter cannot write.
fn refuse_metadata_fields(field: &str, raw: &RawProvider) -> Result<(), ConfigError> {
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
            return Err(error(format!("{field}.{name}"), METADATA_REFUSAL));
        }
    }
    Ok(())
}

/// from_headers, from_params and from_cookies; jwt_authn's defaults when all three are empty.
fn compile_locations(
    field: &str,
    from_headers: Vec<RawHeaderLocation>,
    from_params: Vec<String>,
    from_cookies: Vec<String>,
) -> Result<TokenLocations, ConfigError> {
    let mut locations = TokenLocations {
        headers: Vec::new(),
        params: Vec::new(),
        cookies: Vec::new(),
    };
    for (index, header) in from_headers.into_iter().enumerate() {
        let header_name =
            checked_header_name(&format!("{field}.from_headers[{index}].name"), &header.name)?;
        locations.headers.push(HeaderLocation {
            name: header_name.into(),
            value_prefix: header.value_prefix,
        });
    }
    for (index, param) in from_params.into_iter().enumerate() {
        if param.is_empty() {
            return Err(error(
                format!("{field}.from_params[{index}]"),
                "must not be empty",
            ));
        }
        locations.params.push(param.into());
    }
    for (index, cookie) in from_cookies.into_iter().enumerate() {
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
        locations.cookies.push(cookie.into());
    }
    if locations.headers.is_empty() && locations.params.is_empty() && locations.cookies.is_empty() {
        locations = TokenLocations::jwt_authn_default();
    }
    Ok(locations)
}

/// `payload_in_filter_state`: the name becomes part of a filter state key (`wasm.<name>`).
fn compile_filter_state_name(
    field: &str,
    name: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match name {
        Some(name)
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
        {
            Err(error(
                format!("{field}.payload_in_filter_state"),
                "use letters, digits, '_', '-' and '.'",
            ))
        }
        Some(name) if name == crate::config::dpop::NONCE_FILTER_STATE => Err(error(
            format!("{field}.payload_in_filter_state"),
            format!("\"{name}\" is reserved for the DPoP server nonce; choose another name"),
        )),
        other => Ok(other),
    }
}

/// `max_lifetime` (which implies an `exp`) or `require_expiration`.
fn compile_lifetime(
    field: &str,
    max_lifetime: Option<String>,
    require_expiration: bool,
) -> Result<Lifetime, ConfigError> {
    match max_lifetime {
        Some(text) => {
            let max = parse_duration(&text)
                .map_err(|reason| error(format!("{field}.max_lifetime"), reason))?;
            if max.is_zero() {
                return Err(error(
                    format!("{field}.max_lifetime"),
                    "must be greater than 0s",
                ));
            }
            Ok(Lifetime::AtMost(max.as_secs().max(1)))
        }
        None if require_expiration => Ok(Lifetime::ExpirationRequired),
        None => Ok(Lifetime::Unbounded),
    }
}

fn compile_claim_to_headers(
    field: &str,
    raw: Vec<RawClaimToHeader>,
) -> Result<Vec<ClaimToHeader>, ConfigError> {
    let mut claim_to_headers = Vec::new();
    for (index, claim) in raw.into_iter().enumerate() {
        let claim_field = format!("{field}.claim_to_headers[{index}]");
        let header_name =
            checked_header_name(&format!("{claim_field}.header_name"), &claim.header_name)?;
        let claim_location = compile_claim_location(&claim_field, claim)?;
        claim_to_headers.push(ClaimToHeader {
            header_name: header_name.into(),
            claim: claim_location,
        });
    }
    Ok(claim_to_headers)
}

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
