//! Explicit typing (RFC 8725 §3.11, this filter's extension): a provider lists the `typ` header values
//! it accepts, so a token minted for another use by the same issuer (an OpenID Connect ID token, `typ`
//! `JWT`) cannot be replayed as an access token (`at+jwt`, RFC 9068 §2.1).
//!
//! `typ` is a media type (RFC 7515 §4.1.9): compared case-insensitively (RFC 2045 §5.1), and a value
//! without `/` stands for `application/<value>`, so `at+jwt` and `application/at+jwt` are one type.

use crate::config::{error, ConfigError};

/// The canonical form of a media type given as a `typ`: lower case, with `application/` prefixed when
/// there is no `/`.
pub fn normalize_media_type(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    if lower.contains('/') {
        lower
    } else {
        format!("application/{lower}")
    }
}

/// RFC 6838 §4.2 restricted-name characters (letters, digits and `!#$&-^_.+`).
fn is_restricted_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 127
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// Compiles `accepted_types` of the provider at `field`: each a media type (`at+jwt`,
/// `application/at+jwt`; no parameters), normalised. `None` checks nothing.
pub(super) fn compile_accepted_types(
    field: &str,
    raw: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let field = format!("{field}.accepted_types");
    if raw.is_empty() {
        return Err(error(
            field,
            "list at least one typ (\"at+jwt\"), or leave the field out to accept any",
        ));
    }
    let mut types = Vec::with_capacity(raw.len());
    for (index, typ) in raw.iter().enumerate() {
        let valid = match typ.split_once('/') {
            Some((kind, subtype)) => is_restricted_name(kind) && is_restricted_name(subtype),
            None => is_restricted_name(typ),
        };
        if !valid {
            return Err(error(
                format!("{field}[{index}]"),
                format!(
                    "\"{}\" is not a media type such as \"at+jwt\" or \"application/at+jwt\" (no parameters)",
                    typ.escape_debug()
                ),
            ));
        }
        let normalized = normalize_media_type(typ);
        if !types.contains(&normalized) {
            types.push(normalized);
        }
    }
    Ok(types)
}
