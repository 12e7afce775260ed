//! Multi-tenant issuers (this filter's extension): one provider, one JWKS, and an issuer template such
//! as `https://login.microsoftonline.com/{tenant}/v2.0` that every tenant's `iss` fits (Microsoft Entra
//! ID signs all tenants' tokens with one key set). Matching a token is [`TenantIssuer::tenant_of`];
//! [`crate::config::Provider::matches_issuer`] puts it beside exact issuers.
//!
//! What a template may be, and why:
//! - exactly one `{tenant}`: with none it is a plain `issuer`; with two, one `iss` could split into
//!   tenants in more than one way;
//! - no other `{` or `}`: a misspelt placeholder (`{tid}`) would otherwise be matched literally and no
//!   token would ever pass, silently;
//! - `https://` or `http://`, then a host, and the placeholder after the `/` that ends the host: the
//!   host names the authority that signs, and one JWKS serves all tenants only if one authority signs
//!   for them all. A placeholder in the scheme or host (`https://{tenant}/`) would let the template
//!   stand for any authority.
//!
//! What a tenant may be: 1 to 128 letters, digits, `-`, `_` and `.`, not only dots. Entra tenants are
//! GUIDs; no `/` (a tenant is one path segment), no `%` (nothing is percent-decoded: the comparison is
//! literal), nothing that needs escaping in a header.

use crate::config::raw::RawTenantIssuer;
use crate::config::{checked_header_name, error, ConfigError};

/// Longest tenant matched (a GUID is 36 characters; this leaves room for names).
const MAX_TENANT_BYTES: usize = 128;

/// The claim that must name the same tenant as `iss` unless configured otherwise: Entra's `tid`.
pub const DEFAULT_TENANT_CLAIM: &str = "tid";

/// A compiled issuer template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantIssuer {
    /// The template as configured (for logs and documents).
    pub template: String,
    /// What comes before `{tenant}`.
    prefix: String,
    /// What comes after `{tenant}`.
    suffix: String,
    /// The tenants allowed; empty allows every tenant.
    pub tenants: Vec<String>,
    /// The claim whose string value must equal the tenant matched in `iss`.
    pub tenant_claim: String,
    /// The request header that receives the tenant of a verified token.
    pub tenant_header: Option<String>,
}

impl TenantIssuer {
    /// The tenant `iss` names, when it fits the template and the tenant is allowed.
    pub fn tenant_of<'i>(&self, iss: &'i str) -> Option<&'i str> {
        let tenant = iss
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())?;
        if !is_tenant(tenant) {
            return None;
        }
        if !self.tenants.is_empty() && !self.tenants.iter().any(|t| t == tenant) {
            return None;
        }
        Some(tenant)
    }

    /// The issuer of `tenant` (the template with the tenant put in).
    pub fn issuer_of(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.prefix, self.suffix)
    }
}

/// Whether `text` may be a tenant (see the module documentation).
pub fn is_tenant(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_TENANT_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !text.bytes().all(|b| b == b'.')
}

const PLACEHOLDER: &str = "{tenant}";

/// Compiles `tenant_issuer` of the provider at `field` (`providers.<name>`).
pub(super) fn compile_tenant_issuer(
    field: &str,
    raw: RawTenantIssuer,
) -> Result<TenantIssuer, ConfigError> {
    let field = format!("{field}.tenant_issuer");
    let template_field = format!("{field}.template");
    let template = raw.template;
    let (prefix, suffix) = split_template(&template).map_err(|r| error(&template_field, r))?;
    let mut tenants = Vec::new();
    for (index, tenant) in raw.tenants.unwrap_or_default().into_iter().enumerate() {
        if !is_tenant(&tenant) {
            return Err(error(
                format!("{field}.tenants[{index}]"),
                format!(
                    "\"{}\" is not a tenant: use 1 to {MAX_TENANT_BYTES} letters, digits, '-', '_' and '.'",
                    tenant.escape_debug()
                ),
            ));
        }
        tenants.push(tenant);
    }
    let tenant_claim = raw
        .tenant_claim
        .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_string());
    if tenant_claim.is_empty() {
        return Err(error(
            format!("{field}.tenant_claim"),
            "must not be empty: the token must name its tenant in a claim as well as in iss",
        ));
    }
    let tenant_header = match raw.tenant_header {
        None => None,
        Some(name) => Some(checked_header_name(
            &format!("{field}.tenant_header"),
            &name,
        )?),
    };
    Ok(TenantIssuer {
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
        template,
        tenants,
        tenant_claim,
        tenant_header,
    })
}

/// The text before and after the one `{tenant}` of `template`, or why the template is refused.
fn split_template(template: &str) -> Result<(&str, &str), String> {
    let Some((prefix, suffix)) = template.split_once(PLACEHOLDER) else {
        return Err(format!(
            "\"{}\" has no {PLACEHOLDER}; without one, use \"issuer\"",
            template.escape_debug()
        ));
    };
    if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
        return Err(format!(
            "\"{}\": give exactly one {PLACEHOLDER} and no other braces",
            template.escape_debug()
        ));
    }
    let after_scheme = prefix
        .strip_prefix("https://")
        .or_else(|| prefix.strip_prefix("http://"));
    let host_is_fixed = after_scheme.is_some_and(|rest| {
        rest.split_once('/')
            .is_some_and(|(host, _)| !host.is_empty())
    });
    if !host_is_fixed {
        return Err(format!(
            "\"{}\": {PLACEHOLDER} must come after the scheme and host (https://host/…): the host names the one authority that signs for every tenant",
            template.escape_debug()
        ));
    }
    if template.chars().any(|c| c.is_control() || c == ' ') {
        return Err("must not contain spaces or control characters".to_string());
    }
    Ok((prefix, suffix))
}
