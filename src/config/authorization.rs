//! A rule's claim-based `authorization` (this filter's extension): the scopes and claim values a
//! verified token must carry. Checking a token is [`crate::request::authorization`]'s.

use crate::config::raw::RawAuthorization;
use crate::config::{error, ConfigError};

/// What a rule requires of a verified token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Every one of these must be among the token's scopes: the space-delimited `scope` claim (RFC 8693)
    /// or `scp` (a string or a list, as Azure AD and Okta send it).
    pub scopes: Vec<String>,
    /// Each claim (dotted path) must have one of its allowed values; for a list claim, one element must.
    pub claims: Vec<ClaimRequirement>,
}

/// One claim and the values it may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequirement {
    pub name: String,
    pub values: Vec<String>,
}

pub(super) fn compile_authorization(
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
