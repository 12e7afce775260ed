//! Verified claims handed to the upstream as headers (claim_to_headers, forward_payload_header).

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value;

use crate::config::{ClaimLocation, IssuerMatch, Provider};
use crate::request::authenticator::ClaimHeaders;
use crate::verify::token::VerifiedToken;
use crate::verify::Claims;

/// The header value for the claim at `claim` (the dotted `"a.b"` reaches `{"a": {"b": ..}}`): strings as they
/// are, numbers and booleans as JSON text, as jwt_authn writes them; a list of those joined with `,`
/// (jwt_authn drops or encodes lists: envoy #30072, istio #58433; a comma-joined list is what upstreams
/// parse, as for any repeated header). Objects, null, empty strings and missing claims give no header.
/// Values with control characters (CR, LF, NUL, ...) give no header either: they could split or
/// truncate headers on the way upstream.
pub fn claim_header_value(payload: &Claims, claim: &ClaimLocation) -> Option<String> {
    claim_header_text(payload, claim).map(|text| text.into_owned())
}

/// [`claim_header_value`], borrowing a string claim rather than copying it.
fn claim_header_text<'a>(payload: &'a Claims, claim: &ClaimLocation) -> Option<Cow<'a, str>> {
    let value = match claim {
        ClaimLocation::DottedName(dotted_path) => lookup(payload, dotted_path)?,
        ClaimLocation::Path(keys) => lookup_keys(payload, keys)?,
    };
    let text = match value {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
            Cow::Owned(parts?.join(","))
        }
        value => Cow::Owned(scalar_text(value)?),
    };
    if text.is_empty() || text.chars().any(char::is_control) {
        return None;
    }
    Some(text)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The claim at `dotted_path`.
pub fn lookup<'a>(payload: &'a Claims, dotted_path: &str) -> Option<&'a Value> {
    // A claim whose own name contains dots ("https://example.com/roles") is found before nesting is tried.
    if let Some(value) = payload.get(dotted_path) {
        return Some(value);
    }
    let mut parts = dotted_path.split('.');
    let mut current = payload.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// The claim reached by taking each key in turn, literally (jwt_authn's `claim_path`).
pub fn lookup_keys<'a>(payload: &'a Claims, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let mut current = payload.get(first)?;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(current)
}

/// The headers a verified token sets upstream: its claim_to_headers and forward_payload_header.
pub fn claim_headers(provider: &Provider, verified: &VerifiedToken) -> ClaimHeaders {
    let mut set_headers = ClaimHeaders::new();
    for mapping in &provider.claim_to_headers {
        // The value goes straight from the claim into its Rc: one allocation, not a String first.
        if let Some(value) = claim_header_text(verified.payload(), &mapping.claim) {
            set_headers.push((Rc::clone(&mapping.header_name), Rc::from(&*value)));
        }
    }
    if let Some(header) = provider
        .tenant_issuer
        .as_ref()
        .and_then(|t| t.tenant_header.as_ref())
    {
        let iss = verified.payload().get("iss").and_then(Value::as_str);
        if let Some(IssuerMatch::Tenant(tenant)) = provider.matches_issuer(iss) {
            set_headers.push((header.as_str().into(), tenant.into()));
        }
    }
    if let Some(header) = &provider.forward_payload_header {
        let mut payload = verified.payload_segment().to_string();
        if provider.pad_forward_payload_header {
            // The segment is unpadded base64url (the verifier refuses padding in a token).
            let padding = (4 - payload.len() % 4) % 4;
            payload.extend(std::iter::repeat_n('=', padding));
        }
        set_headers.push((header.as_str().into(), payload.into()));
    }
    set_headers
}
