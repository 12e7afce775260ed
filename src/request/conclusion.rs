//! Concluding a request from its requirement's outcome: authorization on the admitted tokens' claims,
//! the rule's report-only mode, the claim headers to set and the tokens to strip.

use smallvec::SmallVec;

use crate::config::authorization::Authorization;
use crate::config::requirement::LeafId;
use crate::config::rules::Rule;
use crate::config::FilterConfig;
use crate::request::authenticator::{HeaderNames, RequestMutations, Verdict};
use crate::request::candidates::RequestTokens;
use crate::request::evaluation::{Candidate, CandidateState, Leaves, Outcome};
use crate::request::extract::{path_without_param, TokenSource};
use crate::request::reply::{refusal, Failure};
use crate::verify::error::AuthError;

/// What [`conclude`] needs besides the outcome.
pub(super) struct Conclusion<'a> {
    pub(super) tokens: &'a RequestTokens,
    pub(super) leaves: &'a Leaves,
    pub(super) admitted: &'a [(LeafId, usize)],
    pub(super) would_deny: Vec<&'static str>,
    pub(super) path: &'a [u8],
    pub(super) sanitized_headers: HeaderNames,
    pub(super) realm: &'a dyn Fn() -> String,
}

/// Turns the requirement's outcome into a verdict: authorization on the admitted tokens' claims, the
/// rule's report-only mode, the claim headers to set and the tokens to strip.
pub(super) fn conclude(
    config: &FilterConfig,
    rule: &Rule,
    outcome: Outcome,
    conclusion: Conclusion<'_>,
) -> Verdict {
    let admitted: SmallVec<[&Candidate; 2]> = conclusion
        .admitted
        .iter()
        .filter_map(|(leaf, index)| conclusion.leaves.get(*leaf, *index))
        .collect();
    let failure = match outcome {
        Outcome::Fail(error) => Some(Failure::Auth(error)),
        Outcome::Pending => Some(Failure::Auth(AuthError::JwksFetchFailed)),
        Outcome::Pass => rule
            .authorization
            .as_ref()
            .and_then(|authorization| authorization_failure(authorization, &admitted)),
    };
    let mut would_deny = conclusion.would_deny;
    if let Some(failure) = failure {
        if !rule.report_only {
            return Verdict::Deny(refusal(
                config,
                failure,
                &(conclusion.realm)(),
                rule.resource_metadata.as_deref(),
            ));
        }
        would_deny.push(failure.reason());
    }
    let mut mutations = RequestMutations {
        remove_headers: conclusion.sanitized_headers,
        would_deny,
        ..RequestMutations::default()
    };
    // The path is copied only when a query-parameter token comes out of it.
    let mut new_path = None;
    for candidate in admitted {
        admit(
            config,
            candidate,
            conclusion.tokens,
            &mut mutations,
            conclusion.path,
            &mut new_path,
        );
    }
    mutations.new_path = new_path.filter(|path: &Vec<u8>| path != conclusion.path);
    if !mutations.dpop_proofs.is_empty() {
        mutations.resource_metadata = rule.resource_metadata.clone();
    }
    Verdict::Allow(mutations)
}

/// A rule's authorization passes when one verified admitted token satisfies it; otherwise the first
/// denial, or a missing token when none was verified.
fn authorization_failure(
    authorization: &Authorization,
    admitted: &[&Candidate],
) -> Option<Failure> {
    let mut denial = None;
    for candidate in admitted {
        if let CandidateState::Verified(verdict) = &candidate.state {
            match authorization.check(verdict.payload()) {
                Ok(()) => return None,
                Err(d) => denial = denial.or(Some(d)),
            }
        }
    }
    Some(match denial {
        Some(denial) => Failure::Forbidden(denial),
        None => Failure::Auth(AuthError::Missing),
    })
}

/// What an admitted, verified token does to the request: its claim headers and filter state, and the
/// token itself removed unless its provider forwards it.
fn admit(
    config: &FilterConfig,
    candidate: &Candidate,
    tokens: &RequestTokens,
    mutations: &mut RequestMutations,
    path: &[u8],
    new_path: &mut Option<Vec<u8>>,
) {
    let CandidateState::Verified(verdict) = &candidate.state else {
        return;
    };
    if let Some(proof) = &candidate.proof {
        mutations.dpop_proofs.push(proof.clone());
    }
    for header in verdict.set_headers() {
        if !mutations.set_headers.contains(header) {
            mutations.set_headers.push(header.clone());
        }
    }
    if let Some(state) = verdict.filter_state() {
        // One value per name: the first admitted token's.
        if !mutations
            .filter_state
            .iter()
            .any(|(name, _)| *name == state.0)
        {
            mutations.filter_state.push(state.clone());
        }
    }
    let forward = candidate
        .provider
        .and_then(|p| config.providers.get(p))
        .is_none_or(|p| p.forward);
    if !forward {
        // The proof is bound to the token (its `ath`), so it goes where the token goes: it would only
        // tell the upstream about a token it no longer sees.
        if candidate.proof.is_some() && !mutations.remove_headers.iter().any(|h| &**h == "dpop") {
            mutations.remove_headers.push("dpop".into());
        }
        match tokens.source(candidate.found) {
            None => {}
            Some(TokenSource::Header(name)) if !mutations.remove_headers.contains(name) => {
                mutations.remove_headers.push(name.clone());
            }
            Some(TokenSource::Header(_)) => {}
            Some(TokenSource::Param(name)) => {
                let stripped = path_without_param(new_path.as_deref().unwrap_or(path), name);
                *new_path = Some(stripped);
            }
            // As jwt_authn: a token cookie stays (the Cookie header carries other cookies too).
            Some(TokenSource::Cookie(_)) => {}
        }
    }
}
