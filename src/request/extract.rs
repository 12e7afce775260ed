//! Reading tokens out of a request at a provider's locations ([`TokenLocations`]), and stripping a
//! query-parameter token before the upstream.

use std::borrow::Cow;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::config::TokenLocations;
use crate::request::headers::RequestHeaders;

/// Where a token was found, so it can be removed when the provider does not forward it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The configured name, shared with the provider's locations.
    Header(Rc<str>),
    Param(Rc<str>),
    Cookie(Rc<str>),
}

/// A token as it arrived: not yet parsed, not yet trusted. It may hold any bytes the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedToken<'h> {
    /// The token where it stands in the request's headers, or decoded from a query parameter. The
    /// request copies it only when the verified-token cache has no copy of its own (a request waiting
    /// for keys outlives its headers).
    pub raw: Cow<'h, [u8]>,
    pub source: TokenSource,
}

/// The tokens found at a provider's locations: almost always one, kept inline.
pub type ExtractedTokens<'h> = SmallVec<[ExtractedToken<'h>; 1]>;

/// Finds every token the locations name. As in jwt_authn, the prefix may stand anywhere in the header
/// value, and the token is what follows it from the first character that can start a JWT (see
/// `token_after`). Unlike jwt_authn 1.40, the "Bearer" scheme matches in any case, as RFC 7235 makes
/// auth schemes case-insensitive.
pub fn extract_tokens<'h>(
    locations: &TokenLocations,
    headers: &'h (impl RequestHeaders + ?Sized),
    path: &'h [u8],
) -> ExtractedTokens<'h> {
    let mut tokens = ExtractedTokens::new();
    for location in &locations.headers {
        for value in headers.values(&location.name) {
            if let Some(token) = strip_value_prefix(value, &location.value_prefix) {
                tokens.push(ExtractedToken {
                    raw: Cow::Borrowed(token),
                    source: TokenSource::Header(location.name.clone()),
                });
            }
        }
    }
    for param in &locations.params {
        // As jwt_authn: the first value of a repeated parameter.
        if let Some((_, value)) = query_pairs(path).find(|(name, _)| *name == param.as_bytes()) {
            tokens.push(ExtractedToken {
                raw: percent_decode(value),
                source: TokenSource::Param(param.clone()),
            });
        }
    }
    if !locations.cookies.is_empty() {
        let cookie_headers = headers.values("cookie");
        for cookie in &locations.cookies {
            let found = cookie_headers
                .iter()
                .find_map(|value| cookie_value(value, cookie.as_bytes()));
            if let Some(value) = found.filter(|v| !v.is_empty()) {
                tokens.push(ExtractedToken {
                    raw: Cow::Borrowed(value),
                    source: TokenSource::Cookie(cookie.clone()),
                });
            }
        }
    }
    tokens
}

/// The value of cookie `name` in one `Cookie` header, parsed as Envoy does: pairs split on `;`, the name
/// from its first non-space character to `=`, the value after `=` with one pair of surrounding double
/// quotes removed; the first pair with the name wins.
fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let start = pair.iter().position(|&b| b != b' ')?;
        let pair = pair.get(start..)?;
        let at = pair.iter().position(|&b| b == b'=')?;
        if pair.get(..at)? != name {
            return None;
        }
        let value = pair.get(at + 1..)?;
        match value {
            [b'"', inner @ .., b'"'] => Some(inner),
            _ => Some(value),
        }
    })
}

fn strip_value_prefix<'a>(value: &'a [u8], prefix: &str) -> Option<&'a [u8]> {
    let value = value.trim_ascii();
    if prefix.is_empty() {
        return (!value.is_empty()).then_some(value);
    }
    let prefix = prefix.as_bytes();
    let ignore_case = is_bearer_prefix(prefix);
    let at = value.windows(prefix.len()).position(|window| {
        if ignore_case {
            window.eq_ignore_ascii_case(prefix)
        } else {
            window == prefix
        }
    })?;
    let token = token_after(value, at + prefix.len());
    (!token.is_empty()).then_some(token)
}

/// What jwt_authn 1.40 takes as the token after a value prefix ending at `after`: characters that
/// cannot start a JWT are skipped (`Bearer =<jwt>`, `Token "<jwt>`), and the token is everything from
/// the first base64url character or dot on (trailing text stays, and fails verification there too).
/// With no such character, the whole value is the token, as jwt_authn does, and it fails as malformed.
fn token_after(value: &[u8], after: usize) -> &[u8] {
    let is_jwt_char = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let rest = value.get(after..).unwrap_or_default();
    match rest.iter().position(is_jwt_char) {
        Some(start) => rest.get(start..).unwrap_or_default(),
        None => value,
    }
}

/// Auth schemes are case-insensitive (RFC 7235): `Bearer`, and `DPoP` (RFC 9449) for DPoP providers.
fn is_bearer_prefix(prefix: &[u8]) -> bool {
    let scheme = prefix.trim_ascii_end();
    scheme.eq_ignore_ascii_case(b"bearer") || scheme.eq_ignore_ascii_case(b"dpop")
}

/// Splits the query string of `path` into raw (name, value) pairs.
fn query_pairs(path: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let query = match path.iter().position(|&b| b == b'?') {
        Some(at) => path.get(at + 1..).unwrap_or_default(),
        None => &[],
    };
    let query = match query.iter().position(|&b| b == b'#') {
        Some(at) => query.get(..at).unwrap_or_default(),
        None => query,
    };
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => (
                pair.get(..at).unwrap_or_default(),
                pair.get(at + 1..).unwrap_or_default(),
            ),
            None => (pair, &[][..]),
        })
}

fn percent_decode(value: &[u8]) -> Cow<'_, [u8]> {
    // A JWT has neither `%` nor `+`: the value is then the token, as it stands.
    if !value.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            if let Some(decoded) = tail.get(..2).and_then(hex_pair) {
                out.push(decoded);
                rest = tail.get(2..).unwrap_or_default();
                continue;
            }
        }
        out.push(if byte == b'+' { b' ' } else { byte });
        rest = tail;
    }
    Cow::Owned(out)
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// The request path with every query parameter named `param` removed; the rest keeps its order.
pub fn path_without_param(path: &[u8], param: &str) -> Vec<u8> {
    let (base, query) = match path.iter().position(|&b| b == b'?') {
        Some(at) => (
            path.get(..at).unwrap_or_default(),
            path.get(at + 1..).unwrap_or_default(),
        ),
        None => return path.to_vec(),
    };
    let kept: Vec<&[u8]> = query
        .split(|&b| b == b'&')
        .filter(|pair| {
            let name = match pair.iter().position(|&b| b == b'=') {
                Some(at) => pair.get(..at).unwrap_or_default(),
                None => pair,
            };
            !pair.is_empty() && name != param.as_bytes()
        })
        .collect();
    let mut out = base.to_vec();
    if !kept.is_empty() {
        out.push(b'?');
        out.extend_from_slice(&kept.join(&b'&'));
    }
    out
}
