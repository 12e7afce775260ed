//! Which requests need which tokens: jwt_authn's `rules` (first match wins) and their requirement trees
//! (`provider_name`, `provider_and_audiences`, `requires_any`, `requires_all`, `allow_missing`,
//! `allow_missing_or_failed`), plus this filter's per-rule `authorization` and `report_only`.

use std::rc::Rc;

use regex_lite::Regex;

use crate::authorization::Authorization;
use crate::config::ProviderId;
use crate::extractor::{HeaderPair, RequestHeaders};
use crate::string_matcher::StringMatcher;

/// How a rule matches the request path. The query string and fragment are not part of the path here,
/// as in jwt_authn's matcher.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// The path starts with this.
    Prefix(String),
    /// The path equals this.
    Exact(String),
    /// The path starts with this, followed by nothing or `/` (`/api` matches `/api` and `/api/x`, not
    /// `/apix`).
    SeparatedPrefix(String),
    /// The whole path matches this regex.
    Regex(Regex),
}

/// A header condition of a rule (Envoy's route HeaderMatcher). Repeated headers are matched as their
/// values joined with `,`, as Envoy does.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    pub name: String,
    pub condition: ValueCondition,
    pub invert: bool,
}

/// A query parameter condition of a rule (Envoy's QueryParameterMatcher); the first value counts.
#[derive(Debug, Clone)]
pub struct QueryParameterMatcher {
    pub name: String,
    pub condition: ValueCondition,
}

/// What a header or query parameter must be.
#[derive(Debug, Clone)]
pub enum ValueCondition {
    /// Present (`true`) or absent (`false`).
    Present(bool),
    /// Present with a value the matcher accepts.
    Value(StringMatcher),
}

/// Everything a rule's `match` checks.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// `case_sensitive: false` makes prefix, path and path_separated_prefix compare case-insensitively.
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatcher>,
    pub query_parameters: Vec<QueryParameterMatcher>,
}

/// Identifies a requirement leaf, so the tokens it extracted and checked are found again when keys
/// arrive.
pub type LeafId = usize;

/// What a matched request must carry: jwt_authn's JwtRequirement.
#[derive(Debug, Clone)]
pub enum Requirement {
    /// Valid tokens from this provider (all tokens it finds must be valid). `audiences`, when set,
    /// replaces the provider's own (`provider_and_audiences`).
    Provider {
        leaf: LeafId,
        provider: ProviderId,
        audiences: Option<Vec<String>>,
    },
    /// At least one child passes. `allow_missing` / `allow_missing_or_failed` children are flags here, as
    /// in jwt_authn: missing tokens (or, with the latter, any failure) then pass.
    Any {
        children: Vec<Requirement>,
        allow_missing: bool,
        allow_missing_or_failed: bool,
    },
    /// Every child passes.
    All(Vec<Requirement>),
    /// No token passes; any token found (in any provider's locations) must be valid for the provider
    /// whose issuer it names.
    AllowMissing { leaf: LeafId },
    /// Always passes; valid tokens still have their claims forwarded.
    AllowMissingOrFailed { leaf: LeafId },
    /// `requires: {}`: nothing is required.
    AllowAll,
}

impl Requirement {
    /// Every provider this requirement can need keys from (`all_providers` for the issuer-chosen leaves).
    pub fn providers(&self, all_providers: usize, into: &mut Vec<ProviderId>) {
        let mut add = |p: ProviderId| {
            if !into.contains(&p) {
                into.push(p);
            }
        };
        match self {
            Requirement::Provider { provider, .. } => add(*provider),
            Requirement::Any { children, .. } | Requirement::All(children) => {
                for child in children {
                    child.providers(all_providers, into);
                }
            }
            Requirement::AllowMissing { .. } | Requirement::AllowMissingOrFailed { .. } => {
                for p in 0..all_providers {
                    add(p);
                }
            }
            Requirement::AllowAll => {}
        }
    }
}

/// One entry of `rules`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub route_match: RouteMatch,
    /// `None` lets matched requests through without looking for tokens.
    pub requirement: Option<Rc<Requirement>>,
    /// Claims and scopes a verified token must have on this rule (this filter's extension).
    pub authorization: Option<Authorization>,
    /// Verify, log and count, but let the request through whatever the verdict (this filter's extension).
    pub report_only: bool,
}

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

/// The first rule matching the request; `None` when no rule matches.
pub fn rule_for<'r>(rules: &'r [Rule], request: &RequestView<'_>) -> Option<&'r Rule> {
    rules.iter().find(|rule| rule.route_match.matches(request))
}
