//! Claim-based authorization per rule (this filter's extension; jwt_authn users bolt it on with RBAC or
//! Lua): a verified token must carry the listed scopes and have allowed values for the listed claims.
//! A token that fails gets 403 with `error="insufficient_scope"` (RFC 6750 §3.1).

use serde_json::{Map, Value};

use crate::claims::lookup;

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

/// Why a token was not authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// These required scopes are missing.
    MissingScopes(Vec<String>),
    /// This claim is absent or has none of the allowed values.
    ClaimNotAllowed(String),
}

impl Authorization {
    /// Checks one token's claims.
    pub fn check(&self, payload: &Map<String, Value>) -> Result<(), Denial> {
        let granted = scopes_of(payload);
        let missing: Vec<String> = self
            .scopes
            .iter()
            .filter(|wanted| !granted.contains(&wanted.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Denial::MissingScopes(missing));
        }
        for claim in &self.claims {
            let allowed =
                |value: &Value| scalar_text(value).is_some_and(|text| claim.values.contains(&text));
            let ok = match lookup(payload, &claim.name) {
                Some(Value::Array(items)) => items.iter().any(allowed),
                Some(value) => allowed(value),
                None => false,
            };
            if !ok {
                return Err(Denial::ClaimNotAllowed(claim.name.clone()));
            }
        }
        Ok(())
    }
}

/// The token's scopes: `scope` split on spaces, plus `scp` (a string split on spaces, or a list).
fn scopes_of(payload: &Map<String, Value>) -> Vec<&str> {
    let mut scopes = Vec::new();
    for name in ["scope", "scp"] {
        match payload.get(name) {
            Some(Value::String(text)) => scopes.extend(text.split(' ').filter(|s| !s.is_empty())),
            Some(Value::Array(items)) => scopes.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    scopes
}

/// Strings as they are, numbers and booleans as JSON text; other values match nothing.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
