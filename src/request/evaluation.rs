//! Evaluating a requirement tree over a request's candidates: each leaf's tokens pass, fail or wait
//! for a signature check; `All` and `Any` combine them as jwt_authn's verifier does. Tokens whose
//! signature checks here become [`VerifiedClaims`] in the token cache.

use std::rc::Rc;

use smallvec::SmallVec;

use crate::config::requirement::{LeafId, Requirement};
use crate::config::rules::Rule;
use crate::config::{FilterConfig, Provider, ProviderId};
use crate::request::authenticator::{KeysOf, Verdict};
use crate::request::candidates::{FoundId, RequestTokens};
use crate::request::conclusion::{conclude, Conclusion};
use crate::request::headers::HeaderPair;
use crate::request::token_cache::{TokenCaches, VerifiedClaims};
use crate::verify::error::AuthError;
use crate::verify::token::{audience_allowed, CheckedToken};

/// One token as one provider sees it.
#[derive(Debug)]
pub(super) struct Candidate {
    /// `None` when no provider fits the token (an `allow_missing` token naming an unknown issuer).
    pub(super) provider: Option<ProviderId>,
    /// The token and where it was, in the request's [`RequestTokens`].
    pub(super) found: FoundId,
    pub(super) state: CandidateState,
    /// A DPoP-scheme token's proof, to be checked for replay before the request goes on.
    pub(super) proof: Option<crate::request::dpop::ProofRecord>,
}

#[derive(Debug)]
pub(super) enum CandidateState {
    Verified(Rc<VerifiedClaims>),
    Failed(AuthError),
    /// Passed every claim check; the signature is not checked yet. One pointer: the parse is shared.
    Unsigned(CheckedToken),
}

/// Every leaf's candidates, in one vector (a request over many providers allocates once, not per
/// leaf): a reached leaf's candidates are contiguous.
#[derive(Debug, Default)]
pub(super) struct Leaves {
    /// The leaves reached, each with where its candidates are in `candidates`: `(leaf, start, end)`. A
    /// short list searched in order: a request reaches few leaves (`requires_any` skips the providers
    /// no token of the request names), however many the tree has.
    reached: SmallVec<[(LeafId, usize, usize); 4]>,
    pub(super) candidates: SmallVec<[Candidate; 2]>,
}

impl Leaves {
    /// Where `leaf`'s candidates are, once reached.
    fn range(&self, leaf: LeafId) -> Option<(usize, usize)> {
        self.reached
            .iter()
            .find(|(reached, _, _)| *reached == leaf)
            .map(|&(_, start, end)| (start, end))
    }

    fn reached(&self, leaf: LeafId) -> bool {
        self.range(leaf).is_some()
    }

    /// Marks `leaf` reached, with the candidates pushed since `start`.
    fn close(&mut self, leaf: LeafId, start: usize) {
        let end = self.candidates.len();
        self.reached.push((leaf, start, end));
    }

    fn len(&self, leaf: LeafId) -> usize {
        self.range(leaf).map_or(0, |(start, end)| end - start)
    }

    /// The `index`th candidate of `leaf`.
    pub(super) fn get(&self, leaf: LeafId, index: usize) -> Option<&Candidate> {
        let (start, end) = self.range(leaf)?;
        let at = start + index;
        if at >= end {
            return None;
        }
        self.candidates.get(at)
    }

    fn get_mut(&mut self, leaf: LeafId, index: usize) -> Option<&mut Candidate> {
        let (start, end) = self.range(leaf)?;
        let at = start + index;
        if at >= end {
            return None;
        }
        self.candidates.get_mut(at)
    }
}

/// A requirement's outcome so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Pass,
    Fail(AuthError),
    /// Depends on a signature not checked yet.
    Pending,
}

/// Tokens that passed, as (leaf, index): usually one, kept inline.
pub(super) type Admitted = SmallVec<[(LeafId, usize); 2]>;

/// The request on its first look: headers, `:path`, and now (Unix seconds).
pub(super) type FirstLook<'a> = (&'a [HeaderPair<'a>], &'a [u8], u64);

/// Walks a requirement tree over the request's tokens.
pub(super) struct Evaluation<'a, 'k> {
    pub(super) config: &'a FilterConfig,
    /// Headers, `:path` and now (Unix seconds) on the first look; `None` when finishing, where leaves not
    /// reached on the first look have no tokens.
    pub(super) request: Option<FirstLook<'a>>,
    /// The downstream connection's peer certificate digest (hex), read only when a provider binds
    /// tokens to it (see `request/cert_binding.rs`).
    pub(super) peer_certificate_digest: Option<&'a [u8]>,
    /// `None` on the first look: unchecked signatures are then [`Outcome::Pending`].
    pub(super) keys: Option<&'a KeysOf<'k>>,
    pub(super) caches: &'a mut TokenCaches,
    /// The request's tokens, each read, looked up and parsed once.
    pub(super) tokens: RequestTokens,
    pub(super) leaves: Leaves,
    /// Tokens that passed in a passing part of the tree, as (leaf, index): their claims go upstream.
    pub(super) admitted: Admitted,
    pub(super) would_deny: Vec<&'static str>,
}

impl Evaluation<'_, '_> {
    /// The verdict for the walk's `outcome`, from what the walk found.
    pub(super) fn verdict(
        self,
        rule: &Rule,
        outcome: Outcome,
        path: &[u8],
        sanitized_headers: crate::request::authenticator::HeaderNames,
        realm: &dyn Fn() -> String,
    ) -> Verdict {
        let Evaluation {
            config,
            tokens,
            leaves,
            admitted,
            would_deny,
            ..
        } = self;
        conclude(
            config,
            rule,
            outcome,
            Conclusion {
                tokens: &tokens,
                leaves: &leaves,
                admitted: &admitted,
                would_deny,
                path,
                sanitized_headers,
                realm,
            },
        )
    }

    /// Walks the requirement tree: a leaf looks at its tokens, `All` and `Any` combine their children.
    pub(super) fn evaluate(&mut self, requirement: &Requirement) -> Outcome {
        match requirement {
            Requirement::AllowAll => Outcome::Pass,
            Requirement::Provider {
                leaf,
                provider,
                audiences,
            } => self.provider_leaf(*leaf, *provider, audiences.as_deref()),
            Requirement::AllowMissing { leaf } => self.issuer_leaf(*leaf, false),
            Requirement::AllowMissingOrFailed { leaf } => self.issuer_leaf(*leaf, true),
            Requirement::All(children) => self.all(children),
            Requirement::Any {
                children,
                allow_missing,
                allow_missing_or_failed,
            } => self.any(children, *allow_missing, *allow_missing_or_failed),
        }
    }

    /// `requires_all`: the first failure fails it; otherwise it waits for any pending child. A failure
    /// after a pending child waits too: jwt_authn, with the keys at hand, would report the pending
    /// child's failure if its signature fails.
    fn all(&mut self, children: &[Requirement]) -> Outcome {
        let mut pending = false;
        for child in children {
            match self.evaluate(child) {
                Outcome::Pass => {}
                Outcome::Pending => pending = true,
                Outcome::Fail(_) if pending => return Outcome::Pending,
                Outcome::Fail(error) => return Outcome::Fail(error),
            }
        }
        if pending {
            Outcome::Pending
        } else {
            Outcome::Pass
        }
    }

    /// `requires_any`: the first pass passes it; with no pass and nothing pending, jwt_authn's choice of
    /// failure, unless its allow_missing / allow_missing_or_failed children let it pass.
    fn any(
        &mut self,
        children: &[Requirement],
        allow_missing: bool,
        allow_missing_or_failed: bool,
    ) -> Outcome {
        let mut pending = false;
        // jwt_authn's choice: the last "real" failure; missing tokens and tokens of another issuer
        // count only when nothing else failed (so children failing that way may be skipped in any
        // order: see `foreign_to`).
        let mut last = AuthError::Missing;
        for child in children {
            let outcome = match child {
                Requirement::Provider { provider, .. } => {
                    match self
                        .config
                        .providers
                        .get(*provider)
                        .and_then(|p| self.foreign_to(*provider, p))
                    {
                        Some(error) => Outcome::Fail(error),
                        None => self.evaluate(child),
                    }
                }
                _ => self.evaluate(child),
            };
            match outcome {
                Outcome::Pass => return Outcome::Pass,
                Outcome::Pending => pending = true,
                Outcome::Fail(error) => {
                    let soft = matches!(error, AuthError::Missing | AuthError::UnknownIssuer);
                    if !soft || last == AuthError::Missing {
                        last = error;
                    }
                }
            }
        }
        if pending {
            return Outcome::Pending;
        }
        if allow_missing_or_failed || (allow_missing && last == AuthError::Missing) {
            Outcome::Pass
        } else {
            Outcome::Fail(last)
        }
    }

    /// `provider_name` / `provider_and_audiences`: the provider's tokens, all of which must pass.
    fn provider_leaf(
        &mut self,
        leaf: LeafId,
        provider_id: ProviderId,
        audiences: Option<&[String]>,
    ) -> Outcome {
        let config = self.config;
        let Some(provider) = config.providers.get(provider_id) else {
            return Outcome::Fail(AuthError::VerificationFails);
        };
        let audiences = audiences.unwrap_or(&provider.audiences);
        if !self.leaves.reached(leaf) {
            let start = self.leaves.candidates.len();
            if let Some((headers, path, now)) = self.request {
                self.provider_candidates(provider_id, provider, audiences, headers, path, now);
                if let Some(found) = self.leaves.candidates.get_mut(start..) {
                    crate::request::dpop::check_candidates(
                        config,
                        &self.tokens,
                        found,
                        headers,
                        now,
                    );
                }
            }
            self.leaves.close(leaf, start);
        }
        let count = self.leaf_len(leaf);
        if count == 0 {
            return self.reported(provider, Outcome::Fail(AuthError::Missing));
        }
        // jwt_authn checks the tokens from the last extracted one and stops at the first failure, which
        // it reports; a failure after a pending token waits for that token's signature.
        let mut outcome = Outcome::Pass;
        let mut passed = Admitted::new();
        for index in (0..count).rev() {
            match self.resolve(leaf, index, Some(audiences)) {
                Outcome::Pass => passed.push((leaf, index)),
                Outcome::Fail(error) => {
                    if outcome != Outcome::Pending {
                        outcome = Outcome::Fail(error);
                    }
                    break;
                }
                Outcome::Pending => outcome = Outcome::Pending,
            }
        }
        if outcome == Outcome::Pass || provider.report_only {
            self.admitted.extend(passed);
        }
        self.reported(provider, outcome)
    }

    /// A report-only provider's failure is recorded and passes.
    fn reported(&mut self, provider: &Provider, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Fail(error) if provider.report_only => {
                self.would_deny.push(error.reason());
                Outcome::Pass
            }
            other => other,
        }
    }

    /// `allow_missing` / `allow_missing_or_failed`: tokens in any provider's locations, each judged by
    /// the provider whose issuer it names. With `failures_pass`, only the verified ones matter (for their
    /// claims); otherwise every token found must pass. jwt_authn checks them all from the last extracted
    /// one and reports only the last it checks (the first extracted); this filter refuses if any fails,
    /// with the failure of the first extracted token that fails, and waits for a pending token extracted
    /// before that one.
    fn issuer_leaf(&mut self, leaf: LeafId, failures_pass: bool) -> Outcome {
        if !self.leaves.reached(leaf) {
            let start = self.leaves.candidates.len();
            if let Some((headers, path, now)) = self.request {
                self.issuer_candidates(headers, path, now);
                if let Some(found) = self.leaves.candidates.get_mut(start..) {
                    crate::request::dpop::check_candidates(
                        self.config,
                        &self.tokens,
                        found,
                        headers,
                        now,
                    );
                }
            }
            self.leaves.close(leaf, start);
        }
        let (mut failure, mut pending, mut pending_before_failure) = (None, false, false);
        for index in (0..self.leaf_len(leaf)).rev() {
            match self.resolve(leaf, index, None) {
                Outcome::Pass => self.admitted.push((leaf, index)),
                Outcome::Pending => {
                    pending = true;
                    pending_before_failure |= failure.is_some();
                }
                Outcome::Fail(error) if !failures_pass => {
                    failure = Some(error);
                    pending_before_failure = false;
                }
                Outcome::Fail(_) => {}
            }
        }
        match failure {
            Some(error) if !pending_before_failure => Outcome::Fail(error),
            _ if pending => Outcome::Pending,
            _ => Outcome::Pass,
        }
    }

    pub(super) fn leaf_len(&self, leaf: LeafId) -> usize {
        self.leaves.len(leaf)
    }

    /// One token's outcome, checking its signature if keys are at hand. `audiences` are re-checked on
    /// cached tokens (another requirement may have cached the token under other audiences).
    fn resolve(&mut self, leaf: LeafId, index: usize, audiences: Option<&[String]>) -> Outcome {
        let config = self.config;
        let keys = self.keys;
        let Some(candidate) = self.leaves.get_mut(leaf, index) else {
            return Outcome::Fail(AuthError::Missing);
        };
        let provider_id = candidate.provider;
        let provider = provider_id.and_then(|p| config.providers.get(p));
        if let (CandidateState::Unsigned(checked), Some(keys), Some(p), Some(provider)) =
            (&candidate.state, keys, provider_id, provider)
        {
            candidate.state = match keys(p) {
                None => CandidateState::Failed(AuthError::JwksFetchFailed),
                Some(jwks) => match self.caches.checked_signature(checked, &jwks) {
                    Err(error) => CandidateState::Failed(error),
                    Ok(verified) => {
                        let verdict = Rc::new(VerifiedClaims::of(provider, &verified));
                        let valid_until = verified.expires_at().map_or(u64::MAX, |exp| {
                            exp.saturating_add(provider.clock_skew_seconds)
                        });
                        if let Some(token) = self.tokens.shared_raw(candidate.found) {
                            self.caches.put(p, token, verdict.clone(), valid_until);
                        }
                        CandidateState::Verified(verdict)
                    }
                },
            };
        }
        match &candidate.state {
            CandidateState::Failed(error) => Outcome::Fail(*error),
            CandidateState::Unsigned(_) => Outcome::Pending,
            CandidateState::Verified(verdict) => {
                let audiences = audiences.or(provider.map(|p| p.audiences.as_slice()));
                if audiences.is_some_and(|a| !audience_allowed(verdict.payload(), a)) {
                    Outcome::Fail(AuthError::AudienceNotAllowed)
                } else {
                    Outcome::Pass
                }
            }
        }
    }
}
