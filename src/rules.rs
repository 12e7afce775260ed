//! Which requests need which tokens: jwt_authn's `rules`, first match wins.

use crate::config::ProviderId;

/// How a rule matches the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path (query included, as in Envoy's route prefix match) starts with this.
    Prefix(String),
    /// The path without its query string equals this.
    Exact(String),
}

impl PathMatch {
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_bytes()),
            PathMatch::Exact(exact) => {
                let without_query = match path.iter().position(|&b| b == b'?') {
                    Some(at) => path.get(..at).unwrap_or_default(),
                    None => path,
                };
                without_query == exact.as_bytes()
            }
        }
    }
}

/// What a matched request must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A valid token from this provider.
    Provider(ProviderId),
}

/// One entry of `rules`: a match and, optionally, a requirement (none lets matched requests through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path_match: PathMatch,
    pub requirement: Option<Requirement>,
}

/// The requirement of the first rule matching `path`; `None` when no rule matches or the matching rule
/// requires nothing.
pub fn requirement_for<'a>(rules: &'a [Rule], path: &[u8]) -> Option<&'a Requirement> {
    rules
        .iter()
        .find(|rule| rule.path_match.matches(path))
        .and_then(|rule| rule.requirement.as_ref())
}
