//! Which requests need which tokens: jwt_authn's `rules` (first match wins), each with its route match,
//! its requirement ([`crate::config::requirement`]), and this filter's per-rule `authorization` and
//! `report_only`. Matching a request is [`crate::request::rule_match`]'s.

use std::collections::BTreeMap;
use std::rc::Rc;

use regex_lite::Regex;

use crate::config::authorization::{compile_authorization, Authorization};
use crate::config::raw::{
    RawHeaderMatcher, RawPerRouteConfig, RawQueryParameterMatcher, RawRequirement, RawRouteMatch,
    RawRule,
};
use crate::config::requirement::{compile_requirement, Requirement};
use crate::config::resource_metadata::checked_metadata_url;
use crate::config::string_matcher::StringMatcher;
use crate::config::{checked_header_name, error, ConfigError, Provider};

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
    /// The RFC 9728 metadata URL this rule's challenges name: the rule's `resource_metadata`, else the
    /// filter's (this filter's extension).
    pub resource_metadata: Option<String>,
}

/// The requirement `name` of `requirement_map`, which `{field}.requirement_name` refers to.
fn named_requirement(
    field: &str,
    requirement_map: &BTreeMap<String, Rc<Requirement>>,
    name: &str,
) -> Result<Rc<Requirement>, ConfigError> {
    requirement_map.get(name).cloned().ok_or_else(|| {
        error(
            format!("{field}.requirement_name"),
            format!(
                "no requirement named \"{}\" in requirement_map",
                name.escape_debug()
            ),
        )
    })
}

/// `per_route_config`: for each Envoy route name, the rule that replaces `rules` on that route, as
/// jwt_authn's `PerRouteConfig` replaces them (`disabled`: a rule that requires nothing;
/// `requirement_name`: a rule with that requirement). Their match is never consulted.
pub(super) fn compile_per_route(
    raw: BTreeMap<String, RawPerRouteConfig>,
    requirement_map: &BTreeMap<String, Rc<Requirement>>,
) -> Result<Vec<(String, Rule)>, ConfigError> {
    let mut per_route = Vec::with_capacity(raw.len());
    for (route, entry) in raw {
        let field = format!("per_route_config.{route}");
        if route.is_empty() {
            return Err(error(field, "the route name must not be empty"));
        }
        let requirement = match (entry.disabled, entry.requirement_name) {
            (Some(true), None) => None,
            (Some(false), None) => {
                return Err(error(
                    format!("{field}.disabled"),
                    "must be true (leave the route out to keep the rules)",
                ))
            }
            (None, Some(name)) => Some(named_requirement(&field, requirement_map, &name)?),
            _ => {
                return Err(error(
                    field,
                    "give exactly one of \"disabled\" or \"requirement_name\"",
                ))
            }
        };
        per_route.push((
            route,
            Rule {
                route_match: RouteMatch {
                    path: PathMatch::Prefix(String::new()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query_parameters: Vec::new(),
                },
                requirement,
                authorization: None,
                report_only: false,
                resource_metadata: None,
            },
        ));
    }
    Ok(per_route)
}

/// `rules`, with the named requirements of `requirement_map` they may refer to. `leaves` counts the
/// requirement leaves compiled so far (see [`crate::config::requirement::LeafId`]).
pub(super) fn compile_rules(
    raw_rules: Vec<RawRule>,
    requirement_map: &BTreeMap<String, Rc<Requirement>>,
    providers: &[Provider],
    leaves: &mut usize,
) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = Vec::with_capacity(raw_rules.len());
    for (index, raw_rule) in raw_rules.into_iter().enumerate() {
        let field = format!("rules[{index}]");
        let route_match = compile_route_match(&format!("{field}.match"), raw_rule.route_match)?;
        let requirement = match (raw_rule.requires, raw_rule.requirement_name) {
            (Some(_), Some(_)) => {
                return Err(error(
                    field,
                    "give at most one of \"requires\" or \"requirement_name\"",
                ))
            }
            (Some(requires), None) => Some(Rc::new(compile_requirement(
                &format!("{field}.requires"),
                &requires,
                providers,
                leaves,
            )?)),
            (None, Some(name)) => Some(named_requirement(&field, requirement_map, &name)?),
            (None, None) => None,
        };
        let authorization = match raw_rule.authorization {
            None => None,
            Some(raw) => Some(compile_authorization(
                &format!("{field}.authorization"),
                raw,
                requirement.is_some(),
            )?),
        };
        let resource_metadata = match raw_rule.resource_metadata {
            None => None,
            Some(url) => Some(checked_metadata_url(
                &format!("{field}.resource_metadata"),
                url,
            )?),
        };
        rules.push(Rule {
            route_match,
            requirement,
            authorization,
            report_only: raw_rule.report_only,
            resource_metadata,
        });
    }
    Ok(rules)
}

/// Compiles every named requirement of `requirement_map`.
pub(super) fn compile_requirement_map(
    raw: &BTreeMap<String, RawRequirement>,
    providers: &[Provider],
    leaves: &mut usize,
) -> Result<BTreeMap<String, Rc<Requirement>>, ConfigError> {
    let mut requirement_map = BTreeMap::new();
    for (name, raw_requirement) in raw {
        let field = format!("requirement_map.{name}");
        let requirement = compile_requirement(&field, raw_requirement, providers, leaves)?;
        requirement_map.insert(name.clone(), Rc::new(requirement));
    }
    Ok(requirement_map)
}

fn compile_route_match(field: &str, raw: RawRouteMatch) -> Result<RouteMatch, ConfigError> {
    let mut paths = Vec::new();
    if let Some(prefix) = raw.prefix {
        paths.push(PathMatch::Prefix(prefix));
    }
    if let Some(path) = raw.path {
        paths.push(PathMatch::Exact(path));
    }
    if let Some(prefix) = raw.path_separated_prefix {
        if prefix.ends_with('/') || prefix.contains(['?', '#']) {
            return Err(error(
                format!("{field}.path_separated_prefix"),
                "must not end with '/' or contain '?' or '#'",
            ));
        }
        paths.push(PathMatch::SeparatedPrefix(prefix));
    }
    if let Some(regex) = raw.safe_regex {
        let compiled = regex
            .compile()
            .map_err(|reason| error(format!("{field}.safe_regex"), reason))?;
        paths.push(PathMatch::Regex(compiled));
    }
    let (Some(path), 1) = (paths.pop(), paths.len() + 1) else {
        return Err(error(
            field,
            "give exactly one of \"prefix\", \"path\", \"path_separated_prefix\" or \"safe_regex\"",
        ));
    };
    let mut headers = Vec::new();
    for (index, raw_header) in raw.headers.into_iter().enumerate() {
        let header_field = format!("{field}.headers[{index}]");
        let name = checked_header_name(&format!("{header_field}.name"), &raw_header.name).or_else(
            |e| {
                // Pseudo-headers (:method, :authority) are matchable too.
                let pseudo = raw_header.name.strip_prefix(':').unwrap_or("");
                checked_header_name(&format!("{header_field}.name"), pseudo)
                    .map(|n| format!(":{n}"))
                    .map_err(|_| e)
            },
        )?;
        let condition = header_condition(&header_field, raw_header_condition(&raw_header))?;
        headers.push(HeaderMatcher {
            name,
            condition,
            invert: raw_header.invert_match,
        });
    }
    let query_parameters = compile_query_parameters(field, raw.query_parameters)?;
    Ok(RouteMatch {
        path,
        case_sensitive: raw.case_sensitive.unwrap_or(true),
        headers,
        query_parameters,
    })
}

/// A rule's `query_parameters` matchers.
fn compile_query_parameters(
    field: &str,
    raw: Vec<RawQueryParameterMatcher>,
) -> Result<Vec<QueryParameterMatcher>, ConfigError> {
    let mut query_parameters = Vec::new();
    for (index, raw_query) in raw.into_iter().enumerate() {
        let query_field = format!("{field}.query_parameters[{index}]");
        if raw_query.name.is_empty() {
            return Err(error(format!("{query_field}.name"), "must not be empty"));
        }
        let condition = match (raw_query.string_match, raw_query.present_match) {
            (Some(matcher), None) => ValueCondition::Value(
                StringMatcher::compile(&matcher)
                    .map_err(|r| error(format!("{query_field}.string_match"), r))?,
            ),
            (None, Some(present)) => ValueCondition::Present(present),
            // Envoy: a matcher with neither checks that the parameter is present.
            (None, None) => ValueCondition::Present(true),
            (Some(_), Some(_)) => {
                return Err(error(
                    query_field,
                    "give at most one of \"string_match\" or \"present_match\"",
                ))
            }
        };
        query_parameters.push(QueryParameterMatcher {
            name: raw_query.name,
            condition,
        });
    }
    Ok(query_parameters)
}

/// The one condition a header matcher gives, as (field name, compiled condition) candidates.
fn raw_header_condition(
    raw: &RawHeaderMatcher,
) -> Vec<(&'static str, Result<ValueCondition, String>)> {
    let text = |matcher: StringMatcher| Ok(ValueCondition::Value(matcher));
    let mut found = Vec::new();
    if let Some(v) = &raw.exact_match {
        found.push(("exact_match", text(StringMatcher::exact(v))));
    }
    if let Some(v) = &raw.prefix_match {
        found.push(("prefix_match", text(StringMatcher::prefix(v))));
    }
    if let Some(v) = &raw.suffix_match {
        found.push(("suffix_match", text(StringMatcher::suffix(v))));
    }
    if let Some(v) = &raw.contains_match {
        found.push(("contains_match", text(StringMatcher::contains(v))));
    }
    if let Some(v) = &raw.safe_regex_match {
        found.push((
            "safe_regex_match",
            v.compile()
                .map(|r| ValueCondition::Value(StringMatcher::regex(r))),
        ));
    }
    if let Some(v) = raw.present_match {
        found.push(("present_match", Ok(ValueCondition::Present(v))));
    }
    if let Some(v) = &raw.string_match {
        found.push((
            "string_match",
            StringMatcher::compile(v).map(ValueCondition::Value),
        ));
    }
    found
}

fn header_condition(
    field: &str,
    mut found: Vec<(&'static str, Result<ValueCondition, String>)>,
) -> Result<ValueCondition, ConfigError> {
    match (found.pop(), found.is_empty()) {
        // Envoy: a header matcher with no condition checks that the header is present.
        (None, _) => Ok(ValueCondition::Present(true)),
        (Some((name, condition)), true) => {
            condition.map_err(|reason| error(format!("{field}.{name}"), reason))
        }
        (Some(_), false) => Err(error(field, "give at most one match condition")),
    }
}
