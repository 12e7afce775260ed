//! OAuth 2.0 Protected Resource Metadata (RFC 9728, this filter's extension), which the MCP
//! authorization specification requires of an MCP server: the `resource_metadata` URL every challenge
//! names (§5.1), and the metadata document this filter can serve itself (§3), built once from the
//! configuration.

use serde_json::{json, Map, Value};

use crate::config::raw::RawProtectedResource;
use crate::config::rules::Rule;
use crate::config::{error, ConfigError, Provider};

/// The well-known path segment of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document this filter serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The request path (query left out) the document is served at: [`WELL_KNOWN`], followed by the
    /// resource's path when it has one (RFC 9728 §3.1).
    pub well_known_path: String,
    /// Where clients fetch the document: `https://<host>` + `well_known_path`.
    pub metadata_url: String,
    /// The document, JSON.
    pub document: String,
}

/// A URL that may go into a challenge's `resource_metadata="…"` or a document: `https://` with a host,
/// and nothing that would need escaping in a quoted header parameter.
fn checked_https_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let host = url
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let clean = !url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\\');
    if host.is_none_or(str::is_empty) || !clean {
        return Err(error(
            field,
            format!(
                "\"{}\" is not an https:// URL with a host (without spaces, quotes or backslashes)",
                url.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// A `resource_metadata` URL (filter or rule level).
pub(super) fn checked_metadata_url(field: &str, url: String) -> Result<String, ConfigError> {
    checked_https_url(field, &url)?;
    Ok(url)
}

/// Compiles `protected_resource`: the document, from the configuration unless its fields say
/// otherwise. `providers` give `authorization_servers` (their issuers; a multi-tenant provider's
/// allowed tenants' issuers), `rules` give `scopes_supported` (their authorization scopes), and the
/// providers' token locations give `bearer_methods_supported`.
pub(super) fn compile_protected_resource(
    raw: RawProtectedResource,
    providers: &[Provider],
    rules: &[Rule],
) -> Result<ProtectedResource, ConfigError> {
    let field = "protected_resource";
    let resource_field = format!("{field}.resource");
    checked_https_url(&resource_field, &raw.resource)?;
    if raw.resource.contains(['?', '#']) {
        return Err(error(
            resource_field,
            "a resource identifier has no query or fragment (RFC 9728 §1.2)",
        ));
    }
    let after_scheme = raw.resource.get("https://".len()..).unwrap_or("");
    let (host, path) = match after_scheme.find('/') {
        Some(at) => after_scheme.split_at(at),
        None => (after_scheme, ""),
    };
    // RFC 9728 §3.1: a terminating `/` after the host goes; any other path follows the well-known part.
    let path = if path == "/" { "" } else { path };
    let well_known_path = format!("{WELL_KNOWN}{path}");
    let metadata_url = format!("https://{host}{well_known_path}");

    let authorization_servers = match raw.authorization_servers {
        Some(servers) => {
            let servers_field = format!("{field}.authorization_servers");
            if servers.is_empty() {
                return Err(error(servers_field, "list at least one issuer"));
            }
            for (index, server) in servers.iter().enumerate() {
                checked_https_url(&format!("{servers_field}[{index}]"), server)?;
            }
            servers
        }
        None => derived_authorization_servers(providers),
    };
    if authorization_servers.is_empty() {
        return Err(error(
            format!("{field}.authorization_servers"),
            "no provider has a fixed issuer (or a tenant_issuer with tenants) to list; give them here",
        ));
    }
    let scopes = match raw.scopes_supported {
        Some(scopes) => scopes,
        None => derived_scopes(rules),
    };
    let mut document = Map::new();
    document.insert("resource".to_string(), json!(raw.resource));
    document.insert(
        "authorization_servers".to_string(),
        json!(authorization_servers),
    );
    if !scopes.is_empty() {
        document.insert("scopes_supported".to_string(), json!(scopes));
    }
    let bearer_methods = bearer_methods(providers);
    if !bearer_methods.is_empty() {
        document.insert(
            "bearer_methods_supported".to_string(),
            json!(bearer_methods),
        );
    }
    if let Some(name) = raw.resource_name {
        document.insert("resource_name".to_string(), json!(name));
    }
    Ok(ProtectedResource {
        well_known_path,
        metadata_url,
        document: Value::Object(document).to_string(),
    })
}

/// Each provider's issuer once, in provider order; for a multi-tenant provider, the issuer of each
/// allowed tenant (a template with no allow-list names no one issuer and is left out).
fn derived_authorization_servers(providers: &[Provider]) -> Vec<String> {
    let mut servers: Vec<String> = Vec::new();
    for provider in providers {
        let issuers = match (&provider.issuer, &provider.tenant_issuer) {
            (Some(issuer), _) => vec![issuer.clone()],
            (None, Some(template)) => template
                .tenants
                .iter()
                .map(|t| template.issuer_of(t))
                .collect(),
            (None, None) => Vec::new(),
        };
        for issuer in issuers {
            if !servers.contains(&issuer) {
                servers.push(issuer);
            }
        }
    }
    servers
}

/// The scopes the rules' `authorization` asks for, once each, in rule order.
fn derived_scopes(rules: &[Rule]) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in rules
        .iter()
        .filter_map(|r| r.authorization.as_ref())
        .flat_map(|a| a.scopes.iter())
    {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}

/// RFC 6750's ways of sending a token that some provider reads: `header` (`Authorization: Bearer`),
/// `query` (`access_token`).
fn bearer_methods(providers: &[Provider]) -> Vec<&'static str> {
    let header = providers.iter().any(|p| {
        p.locations
            .headers
            .iter()
            .any(|h| &*h.name == "authorization" && h.value_prefix.eq_ignore_ascii_case("Bearer "))
    });
    let query = providers.iter().any(|p| {
        p.locations
            .params
            .iter()
            .any(|name| &**name == "access_token")
    });
    let mut methods = Vec::new();
    if header {
        methods.push("header");
    }
    if query {
        methods.push("query");
    }
    methods
}
