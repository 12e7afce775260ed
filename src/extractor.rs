//! Where tokens live in a request, how to read them out, and how to strip them before the upstream.
//!
//! jwt_authn's defaults apply when a provider names no location: `Authorization: Bearer <token>` and the
//! `access_token` query parameter.

/// Tokens longer than this are refused before any parsing: no real issuer mints them, and the cap bounds
/// the work one request can cause.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A header that may carry a token, and the text in front of it (`"Bearer "` for Authorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLocation {
    /// Lower-case header name (HTTP/2 and Envoy's header map use lower case).
    pub name: String,
    /// Text in front of the token; empty means the whole value is the token.
    pub value_prefix: String,
}

/// All the places one provider reads its tokens from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLocations {
    pub headers: Vec<HeaderLocation>,
    pub params: Vec<String>,
    /// Cookie names (jwt_authn's `from_cookies`).
    pub cookies: Vec<String>,
}

impl TokenLocations {
    /// jwt_authn's default locations, used when a provider configures neither from_headers nor from_params.
    pub fn jwt_authn_default() -> TokenLocations {
        TokenLocations {
            headers: vec![HeaderLocation {
                name: "authorization".to_string(),
                value_prefix: "Bearer ".to_string(),
            }],
            params: vec!["access_token".to_string()],
            cookies: Vec::new(),
        }
    }
}

/// Where a token was found, so it can be removed when the provider does not forward it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Header(String),
    Param(String),
    Cookie(String),
}

/// A token as it arrived: not yet parsed, not yet trusted. It may hold any bytes the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedToken {
    pub raw: Vec<u8>,
    pub source: TokenSource,
}

/// Read-only access to the request the filter sees.
pub trait RequestHeaders {
    /// Every value of the header `name` (lower case), in order, as raw bytes.
    fn values<'a>(&'a self, name: &str) -> Vec<&'a [u8]>;
}

/// A request header as the host hands it over: (name, raw value), both borrowed from the host's buffer.
/// Names are lower case (Envoy's codecs see to that); values may hold any bytes.
pub type HeaderPair<'a> = (&'a [u8], &'a [u8]);

impl RequestHeaders for [HeaderPair<'_>] {
    fn values<'a>(&'a self, name: &str) -> Vec<&'a [u8]> {
        self.iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, value)| value)
            .collect()
    }
}

/// Reads the host's serialized header map without copying a header: a little-endian u32 count, then a
/// (name length, value length) u32 pair per header, then each name and value followed by a NUL (the
/// proxy-wasm ABI's map format). `None` for a buffer that does not hold what its sizes announce.
pub fn parse_header_pairs(buffer: &[u8]) -> Option<Vec<HeaderPair<'_>>> {
    let read_u32 = |at: usize| -> Option<usize> {
        let bytes = buffer.get(at..at.checked_add(4)?)?;
        let word = u32::from_le_bytes([
            *bytes.first()?,
            *bytes.get(1)?,
            *bytes.get(2)?,
            *bytes.get(3)?,
        ]);
        usize::try_from(word).ok()
    };
    let count = read_u32(0)?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > buffer.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = sizes_end;
    let mut take = |len: usize| -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        let bytes = buffer.get(at..end)?;
        at = end.checked_add(1)?;
        Some(bytes)
    };
    for index in 0..count {
        let sizes = index.checked_mul(8)?.checked_add(4)?;
        let name = take(read_u32(sizes)?)?;
        let value = take(read_u32(sizes.checked_add(4)?)?)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// Borrows owned (name, value) headers as [`HeaderPair`]s.
pub fn borrow_header_pairs(headers: &[(String, Vec<u8>)]) -> Vec<HeaderPair<'_>> {
    headers
        .iter()
        .map(|(name, value)| (name.as_bytes(), value.as_slice()))
        .collect()
}

/// Owned (name, raw value) pairs, as tests build them.
impl RequestHeaders for [(String, Vec<u8>)] {
    fn values<'a>(&'a self, name: &str) -> Vec<&'a [u8]> {
        self.iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
            .collect()
    }
}

/// Finds every token the locations name. As in jwt_authn, the prefix may stand anywhere in the header
/// value and the token is what follows it, trimmed. Unlike jwt_authn 1.40, the "Bearer" scheme matches
/// in any case, as RFC 7235 makes auth schemes case-insensitive.
pub fn extract_tokens(
    locations: &TokenLocations,
    headers: &(impl RequestHeaders + ?Sized),
    path: &[u8],
) -> Vec<ExtractedToken> {
    let mut tokens = Vec::new();
    for location in &locations.headers {
        for value in headers.values(&location.name) {
            if let Some(token) = strip_value_prefix(value, &location.value_prefix) {
                tokens.push(ExtractedToken {
                    raw: token.to_vec(),
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
                    raw: value.to_vec(),
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
    let token = value.get(at + prefix.len()..)?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn is_bearer_prefix(prefix: &[u8]) -> bool {
    prefix.trim_ascii_end().eq_ignore_ascii_case(b"bearer")
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

fn percent_decode(value: &[u8]) -> Vec<u8> {
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
    out
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
