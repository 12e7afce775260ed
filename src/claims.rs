//! Verified claims handed to the upstream as headers (claim_to_headers, forward_payload_header).

use serde_json::{Map, Value};

/// The header value for the claim at `dotted_path` (`"a.b"` reaches `{"a": {"b": ..}}`), as jwt_authn
/// writes it: strings as they are, numbers and booleans as JSON text. Objects, arrays, null and missing
/// claims give no header. Values with control characters (CR, LF, NUL, ...) give no header either: they
/// could split or truncate headers on the way upstream.
pub fn claim_header_value(payload: &Map<String, Value>, dotted_path: &str) -> Option<String> {
    let value = lookup(payload, dotted_path)?;
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    if text.chars().any(char::is_control) {
        return None;
    }
    Some(text)
}

fn lookup<'a>(payload: &'a Map<String, Value>, dotted_path: &str) -> Option<&'a Value> {
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
