//! Claim-based authorization per rule (this filter's extension; jwt_authn users bolt it on with RBAC or
//! Lua): a verified token must carry the rule's scopes ([`Authorization`]) and have allowed values for
//! its claims. A token that fails gets 403 with `error="insufficient_scope"` (RFC 6750 §3.1).

use serde_json::Value;

use crate::config::authorization::Authorization;
use crate::request::claims::lookup;
use crate::verify::Claims;

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
    pub fn check(&self, payload: &Claims) -> Result<(), Denial> {
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
fn scopes_of(payload: &Claims) -> Vec<&str> {
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
