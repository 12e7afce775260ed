//! Whether a rule's `match` fits a request: path (prefix, exact, separated prefix, regex; optionally
//! case-insensitive), headers and query parameters, as Envoy's route matcher decides.

use crate::config::rules::{
    HeaderMatcher, PathMatch, QueryParameterMatcher, RouteMatch, ValueCondition,
};
use crate::request::headers::{HeaderPair, RequestHeaders};

/// The request as rules see it.
pub struct RequestView<'a> {
    /// `:path` without query and fragment.
    pub path: &'a [u8],
    /// The raw query string (after `?`, before `#`).
    pub query: &'a [u8],
    pub headers: &'a [HeaderPair<'a>],
}

impl<'a> RequestView<'a> {
    pub fn new(full_path: &'a [u8], headers: &'a [HeaderPair<'a>]) -> RequestView<'a> {
        let end = full_path
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(full_path.len());
        let path = full_path.get(..end).unwrap_or_default();
        let rest = full_path.get(end..).unwrap_or_default();
        let query = match rest.split_first() {
            Some((b'?', query)) => {
                let end = query.iter().position(|&b| b == b'#').unwrap_or(query.len());
                query.get(..end).unwrap_or_default()
            }
            _ => &[],
        };
        RequestView {
            path,
            query,
            headers,
        }
    }
}

impl RouteMatch {
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.path_matches(request.path)
            && self.headers.iter().all(|h| h.matches(request.headers))
            && self
                .query_parameters
                .iter()
                .all(|q| q.matches(request.query))
    }

    fn path_matches(&self, path: &[u8]) -> bool {
        let same = |a: &[u8], b: &[u8]| {
            if self.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        match &self.path {
            PathMatch::Prefix(prefix) => path
                .get(..prefix.len())
                .is_some_and(|head| same(head, prefix.as_bytes())),
            PathMatch::Exact(exact) => same(path, exact.as_bytes()),
            PathMatch::SeparatedPrefix(prefix) => {
                path.get(..prefix.len())
                    .is_some_and(|head| same(head, prefix.as_bytes()))
                    && matches!(path.get(prefix.len()), None | Some(b'/'))
            }
            PathMatch::Regex(regex) => std::str::from_utf8(path).is_ok_and(|p| regex.is_match(p)),
        }
    }
}

impl HeaderMatcher {
    fn matches(&self, headers: &[HeaderPair<'_>]) -> bool {
        let values = headers.values(&self.name);
        let result = match &self.condition {
            ValueCondition::Present(want) => values.is_empty() != *want,
            ValueCondition::Value(matcher) => {
                !values.is_empty() && matcher.matches_bytes(&values.join(&b","[..]))
            }
        };
        result != self.invert
    }
}

impl QueryParameterMatcher {
    fn matches(&self, query: &[u8]) -> bool {
        let first = query
            .split(|&b| b == b'&')
            .map(|pair| match pair.iter().position(|&b| b == b'=') {
                Some(at) => (
                    pair.get(..at).unwrap_or_default(),
                    pair.get(at + 1..).unwrap_or_default(),
                ),
                None => (pair, &[][..]),
            })
            .find(|(name, _)| *name == self.name.as_bytes());
        match (&self.condition, first) {
            (ValueCondition::Present(want), found) => found.is_some() == *want,
            (ValueCondition::Value(matcher), Some((_, value))) => matcher.matches_bytes(value),
            (ValueCondition::Value(_), None) => false,
        }
    }
}
