//! The `htu` comparison (RFC 9449 §4.3 check 9): the proof's URI and the request's, both without query
//! and fragment, compared after RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation.
//! The request's URI is built from `:scheme`, `:authority` and `:path` as Envoy sees them (so behind a
//! TLS-terminating load balancer that speaks plain HTTP to Envoy, the scheme is `http`).

/// `scheme://authority/path`, normalised; `None` when `uri` is not an absolute http(s) URI with an
/// authority and no userinfo.
pub fn normalize_htu(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority = normalize_authority(&scheme, authority)?;
    let path = remove_dot_segments(&normalize_percent_encoding(path)?);
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    Some(format!("{scheme}://{authority}{path}"))
}

/// The request's own URI from its pseudo-headers, normalised like [`normalize_htu`].
pub fn request_htu(scheme: &[u8], authority: &[u8], path: &[u8]) -> Option<String> {
    let scheme = std::str::from_utf8(scheme).ok()?;
    let scheme = if scheme.is_empty() { "http" } else { scheme };
    let authority = std::str::from_utf8(authority).ok()?;
    let path = std::str::from_utf8(path).ok()?;
    if authority.is_empty() || authority.contains(['/', '?', '#']) {
        return None;
    }
    // An asterisk-form or absolute-form :path is not a path this filter compares.
    if !path.is_empty() && !path.starts_with('/') {
        return None;
    }
    normalize_htu(&format!("{scheme}://{authority}{path}"))
}

/// Lower-case host, no default port, no empty port; userinfo refused.
fn normalize_authority(scheme: &str, authority: &str) -> Option<String> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let lowered = authority.to_ascii_lowercase();
    // The port is after the last ':' outside an IPv6 literal's brackets.
    let port_at = match lowered.rfind(']') {
        Some(close) => lowered.get(close..)?.find(':').map(|at| close + at),
        None => lowered.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(at) => (lowered.get(..at)?, lowered.get(at + 1..)?),
        None => (lowered.as_str(), ""),
    };
    if !valid_host(host) || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let default_port = if scheme == "https" { "443" } else { "80" };
    if port.is_empty() || port == default_port {
        Some(host.to_string())
    } else {
        Some(format!("{host}:{port}"))
    }
}

/// An IPv6 literal in brackets, or a reg-name / IPv4 address (RFC 3986 §3.2.2: unreserved,
/// percent-encoded and sub-delims characters; no ':' outside brackets).
fn valid_host(host: &str) -> bool {
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !literal.is_empty()
            && literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b))
}

/// Percent-escapes in upper case, and escapes of unreserved characters decoded (RFC 3986 §6.2.2.1,
/// §6.2.2.2). `None` for a malformed escape or a non-ASCII path.
fn normalize_percent_encoding(path: &str) -> Option<String> {
    // A request path on the wire is ASCII; anything else does not compare.
    if !path.is_ascii() {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let pair = bytes.get(index + 1..index + 3)?;
            let text = std::str::from_utf8(pair).ok()?;
            let value = u8::from_str_radix(text, 16).ok()?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push_str(&text.to_ascii_uppercase());
            }
            index += 3;
        } else {
            out.push(char::from(byte));
            index += 1;
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4 `remove_dot_segments`.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output: Vec<&str> = Vec::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = input.get(2..).unwrap_or_default();
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = input.get(3..).unwrap_or_default();
            output.pop();
        } else if input == "/.." {
            input = "/";
            output.pop();
        } else if input == "." || input == ".." {
            input = "";
        } else {
            // Move the first segment (with its leading '/', up to the next '/') to the output.
            let start = usize::from(input.starts_with('/'));
            let end = input
                .get(start..)
                .and_then(|tail| tail.find('/'))
                .map_or(input.len(), |at| at + start);
            output.push(input.get(..end).unwrap_or_default());
            input = input.get(end..).unwrap_or_default();
        }
    }
    output.concat()
}
