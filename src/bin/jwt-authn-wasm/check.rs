//! `check`: every configuration of this filter in a file goes through the filter's own parser
//! ([`FilterConfig::parse`]), so the checker cannot disagree with the filter. What loads but is likely a
//! mistake is found on the JSON itself.

use std::collections::BTreeSet;

use jwt_authn_wasm::config::FilterConfig;
use serde_json::Value;

use super::input::Input;
use super::locate::{self, Context, DocumentKind, Names};
use super::report::{Diagnostic, Severity};

pub fn check(input: &Input, names: &Names) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut checked = 0;
    // Whether a configuration of this filter is to be expected here: an Envoy configuration, or a
    // Kubernetes object that carries Wasm filters. A ServiceEntry or a Gateway on its own is not.
    let mut expects_config = false;
    for (index, document) in input.documents.iter().enumerate() {
        expects_config |= match locate::kind(&document.value) {
            DocumentKind::Kubernetes(kind) => {
                matches!(
                    kind.as_str(),
                    "WasmPlugin" | "EnvoyExtensionPolicy" | "EnvoyFilter"
                )
            }
            _ => true,
        };
        let prefix = input.document_prefix(index);
        for found in locate::find(&document.value, document.raw_json.as_deref(), names) {
            checked += 1;
            let location = format!("{prefix}{}", found.location);
            let diagnostic = |field: String, severity, message: String| Diagnostic {
                file: input.name.clone(),
                location: location.clone(),
                field,
                severity,
                message,
            };
            let bytes = match found.config {
                Ok(bytes) => bytes,
                Err(reason) => {
                    diagnostics.push(diagnostic(String::new(), Severity::Error, reason));
                    continue;
                }
            };
            if let Err(error) = FilterConfig::parse(&bytes) {
                let reason = if found.reserialized {
                    without_position(&error.reason)
                } else {
                    error.reason
                };
                diagnostics.push(diagnostic(error.field, Severity::Error, reason));
                continue;
            }
            let Ok(config) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            for (field, message) in warnings(&config, &found.context) {
                diagnostics.push(diagnostic(field, Severity::Warning, message));
            }
        }
    }
    if checked == 0 && expects_config {
        diagnostics.push(Diagnostic {
            file: input.name.clone(),
            location: "(file)".to_string(),
            field: String::new(),
            severity: Severity::Warning,
            message: "no jwt-authn-wasm configuration found (no Wasm filter, WasmPlugin or \
                      EnvoyExtensionPolicy running this module; --name adds a name); nothing checked"
                .to_string(),
        });
    }
    diagnostics
}

/// A JSON parser's message without its trailing " at line N column M".
fn without_position(reason: &str) -> String {
    if let Some((message, position)) = reason.rsplit_once(" at line ") {
        let mut parts = position.split(" column ");
        let numeric = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        if numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none() {
            return message.to_string();
        }
    }
    reason.to_string()
}

/// Things the filter accepts that are likely mistakes, as (field, message). `config` has passed the
/// filter's parser.
pub fn warnings(config: &Value, context: &Context) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let providers = config
        .get("providers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (name, provider) in &providers {
        jwks_warnings(name, provider, context, &mut out);
        forward_warnings(name, provider, &mut out);
    }
    unused_providers(config, &providers, &mut out);
    shadowed_rules(config, &mut out);
    out
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn jwks_warnings(name: &str, provider: &Value, context: &Context, out: &mut Vec<(String, String)>) {
    if provider.get("remote_jwks").is_none() {
        return;
    }
    let cluster = text(provider, "/remote_jwks/http_uri/cluster");
    let cluster_field = format!("providers.{name}.remote_jwks.http_uri.cluster");
    match context {
        Context::Envoy {
            clusters: Some(clusters),
        } if !clusters.contains(cluster) => out.push((
            cluster_field,
            format!(
                "cluster \"{cluster}\" is not defined in this bootstrap's static_resources.clusters; every \
                 JWKS fetch will fail"
            ),
        )),
        Context::Istio if !cluster.starts_with("outbound|") => out.push((
            cluster_field,
            format!(
                "istiod names the cluster of a ServiceEntry host outbound|<port>||<host>; \"{cluster}\" is \
                 probably not defined in the sidecar"
            ),
        )),
        _ => {}
    }
    if *context == Context::Istio {
        istio_cluster_matches_uri(name, provider, cluster, out);
    }
    let mut uri_field = format!("providers.{name}.remote_jwks.http_uri.uri");
    let mut uri = text(provider, "/remote_jwks/http_uri/uri").to_string();
    if uri.is_empty() && provider.pointer("/remote_jwks/oidc_discovery") == Some(&Value::Bool(true))
    {
        uri = text(provider, "/issuer").to_string();
        uri_field = format!("providers.{name}.issuer");
    }
    if let Some(host) = plain_http_host(&uri) {
        if !is_loopback(&host) {
            out.push((
                uri_field,
                format!(
                    "the keys are fetched over plain http:// from {host}, which is not loopback: anyone on the \
                     path can replace them; use https:// and a TLS cluster"
                ),
            ));
        }
    }
}

/// istiod names a ServiceEntry host's cluster `outbound|<port>||<host>`: one for another host or port than
/// the JWKS URI's sends the fetch to the wrong server (or to none).
fn istio_cluster_matches_uri(
    name: &str,
    provider: &Value,
    cluster: &str,
    out: &mut Vec<(String, String)>,
) {
    let uri = text(provider, "/remote_jwks/http_uri/uri");
    let parts: Vec<&str> = cluster.split('|').collect();
    let (Some(port), Some(host)) = (parts.get(1), parts.get(3)) else {
        return;
    };
    if uri.is_empty() || parts.len() != 4 || parts.first() != Some(&"outbound") {
        return;
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let (uri_host, uri_port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (authority, default_port),
    };
    if !uri_host.eq_ignore_ascii_case(host) || uri_port != *port {
        out.push((
            format!("providers.{name}.remote_jwks.http_uri.cluster"),
            format!(
                "cluster \"{cluster}\" is istiod's for {host}:{port}, but the JWKS URI is on {uri_host}:{uri_port} \
                 (its cluster is outbound|{uri_port}||{uri_host})"
            ),
        ));
    }
}

/// The host of an `http://` URI.
fn plain_http_host(uri: &str) -> Option<String> {
    let scheme_end = uri.find("://")?;
    let scheme = uri.get(..scheme_end)?;
    if !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let rest = uri.get(scheme_end + 3..)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    Some(host.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn forward_warnings(name: &str, provider: &Value, out: &mut Vec<(String, String)>) {
    if provider.get("forward") != Some(&Value::Bool(true)) {
        return;
    }
    let list = |key: &str| {
        provider
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (headers, params, cookies) = (
        list("from_headers"),
        list("from_params"),
        list("from_cookies"),
    );
    let token_headers: Vec<String> =
        if headers.is_empty() && params.is_empty() && cookies.is_empty() {
            vec!["Authorization".to_string()]
        } else {
            headers
                .iter()
                .map(|h| text(h, "/name").to_string())
                .collect()
        };
    let mut claim_headers: Vec<(String, String)> = list("claim_to_headers")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                format!("providers.{name}.claim_to_headers[{i}].header_name"),
                text(c, "/header_name").to_string(),
            )
        })
        .collect();
    let payload = text(provider, "/forward_payload_header");
    if !payload.is_empty() {
        claim_headers.push((
            format!("providers.{name}.forward_payload_header"),
            payload.to_string(),
        ));
    }
    for (field, header) in claim_headers {
        if let Some(token) = token_headers
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&header))
        {
            out.push((
                field,
                format!(
                    "\"{header}\" is the header the token is read from (\"{token}\") and forward is true: the \
                     claim replaces the token the upstream was meant to receive"
                ),
            ));
        }
    }
}

/// Providers named by a requirement, and whether some requirement is `allow_missing[_or_failed]`, which
/// checks any token found against the provider of its issuer.
fn referenced(requirement: &Value, names: &mut BTreeSet<String>, any_provider: &mut bool) {
    let Some(object) = requirement.as_object() else {
        return;
    };
    if let Some(name) = object.get("provider_name").and_then(Value::as_str) {
        names.insert(name.to_string());
    }
    if let Some(name) = requirement
        .pointer("/provider_and_audiences/provider_name")
        .and_then(Value::as_str)
    {
        names.insert(name.to_string());
    }
    if object.contains_key("allow_missing") || object.contains_key("allow_missing_or_failed") {
        *any_provider = true;
    }
    for list in ["/requires_any/requirements", "/requires_all/requirements"] {
        for child in requirement
            .pointer(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            referenced(child, names, any_provider);
        }
    }
}

fn unused_providers(
    config: &Value,
    providers: &serde_json::Map<String, Value>,
    out: &mut Vec<(String, String)>,
) {
    let mut names = BTreeSet::new();
    let mut any_provider = false;
    for rule in config
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(requires) = rule.get("requires") {
            referenced(requires, &mut names, &mut any_provider);
        }
    }
    for requirement in config
        .get("requirement_map")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
    {
        referenced(requirement, &mut names, &mut any_provider);
    }
    if any_provider {
        return;
    }
    for name in providers.keys() {
        if !names.contains(name) {
            out.push((
                format!("providers.{name}"),
                "no rule and no requirement_map entry requires this provider, so its tokens are never \
                 required"
                    .to_string(),
            ));
        }
    }
}

#[derive(Debug)]
enum PathMatch {
    Prefix(String),
    Path(String),
    SeparatedPrefix(String),
    Regex(String),
}

struct RuleMatch {
    path: PathMatch,
    case_sensitive: bool,
    headers: Vec<Value>,
    query_parameters: Vec<Value>,
}

fn rule_match(rule: &Value) -> Option<RuleMatch> {
    let m = rule.get("match")?;
    let path = if let Some(p) = m.get("prefix").and_then(Value::as_str) {
        PathMatch::Prefix(p.to_string())
    } else if let Some(p) = m.get("path").and_then(Value::as_str) {
        PathMatch::Path(p.to_string())
    } else if let Some(p) = m.get("path_separated_prefix").and_then(Value::as_str) {
        PathMatch::SeparatedPrefix(p.to_string())
    } else {
        PathMatch::Regex(text(m, "/safe_regex/regex").to_string())
    };
    let list = |key: &str| {
        m.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    Some(RuleMatch {
        path,
        case_sensitive: m.get("case_sensitive") != Some(&Value::Bool(false)),
        headers: list("headers"),
        query_parameters: list("query_parameters"),
    })
}

/// Whether every request `later` matches is matched by `earlier` (so `later` never applies).
fn covers(earlier: &RuleMatch, later: &RuleMatch) -> bool {
    let subset = |a: &[Value], b: &[Value]| a.iter().all(|x| b.contains(x));
    if !subset(&earlier.headers, &later.headers)
        || !subset(&earlier.query_parameters, &later.query_parameters)
    {
        return false;
    }
    // Request paths start with "/": a prefix "/" (or "") matches them all, in any case.
    if let PathMatch::Prefix(p) = &earlier.path {
        if p.is_empty() || p == "/" {
            return true;
        }
    }
    if earlier.case_sensitive && !later.case_sensitive {
        return false;
    }
    let fold = |s: &str| {
        if earlier.case_sensitive {
            s.to_string()
        } else {
            s.to_ascii_lowercase()
        }
    };
    let separated =
        |prefix: &str, path: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    match (&earlier.path, &later.path) {
        (
            PathMatch::Prefix(a),
            PathMatch::Prefix(b) | PathMatch::Path(b) | PathMatch::SeparatedPrefix(b),
        ) => fold(b).starts_with(&fold(a)),
        (PathMatch::Path(a), PathMatch::Path(b)) => fold(a) == fold(b),
        (PathMatch::SeparatedPrefix(a), PathMatch::Path(b) | PathMatch::SeparatedPrefix(b)) => {
            separated(&fold(a), &fold(b))
        }
        (PathMatch::SeparatedPrefix(a), PathMatch::Prefix(b)) => {
            fold(b).starts_with(&format!("{}/", fold(a)))
        }
        (PathMatch::Regex(a), PathMatch::Regex(b)) => a == b,
        _ => false,
    }
}

fn describe(m: &RuleMatch) -> String {
    let path = match &m.path {
        PathMatch::Prefix(p) => format!("prefix \"{p}\""),
        PathMatch::Path(p) => format!("path \"{p}\""),
        PathMatch::SeparatedPrefix(p) => format!("path_separated_prefix \"{p}\""),
        PathMatch::Regex(r) => format!("safe_regex \"{r}\""),
    };
    if m.headers.is_empty() && m.query_parameters.is_empty() {
        path
    } else {
        format!("{path} with its header/query matchers")
    }
}

fn shadowed_rules(config: &Value, out: &mut Vec<(String, String)>) {
    let rules: Vec<Option<RuleMatch>> = config
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(rule_match)
        .collect();
    for (later_index, later) in rules.iter().enumerate() {
        let Some(later) = later else { continue };
        let shadow = rules
            .iter()
            .take(later_index)
            .enumerate()
            .find_map(|(i, earlier)| {
                earlier
                    .as_ref()
                    .filter(|e| covers(e, later))
                    .map(|e| (i, e))
            });
        if let Some((earlier_index, earlier)) = shadow {
            out.push((
                format!("rules[{later_index}].match"),
                format!(
                    "never applies: rules[{earlier_index}] ({}) matches every request this rule matches, and \
                     the first matching rule wins",
                    describe(earlier)
                ),
            ));
        }
    }
}
