//! The per-request steps, free of any host call: pick the rule, find the tokens its requirement asks
//! for, check them, evaluate the requirement tree, authorize, and say what to do with the request. The
//! proxy-wasm glue (`glue/http_context.rs`) only reads headers, waits for keys and applies the verdict.
//!
//! A request is evaluated twice at most: first without keys ([`start`]: cached tokens, claim checks),
//! which decides it whenever the signatures cannot change the outcome; then, if signatures matter, with
//! the providers' keys ([`PendingAuth::finish`]), possibly in a later callback.

use std::rc::Rc;

use crate::config::requirement::{LeafId, Requirement};
use crate::config::rules::Rule;
use crate::config::{FilterConfig, Provider, ProviderId};
use crate::jwks::key_set::Jwks;
use crate::request::claims::claim_header_value;
use crate::request::extract::{extract_tokens, path_without_param, TokenSource};
use crate::request::headers::{HeaderPair, RequestHeaders};
use crate::request::reply::{escape_quoted, refusal, Failure, LocalReply};
use crate::request::rule_match::RequestView;
use crate::request::token_cache::{TokenCaches, VerifiedClaims};
use crate::verify::error::AuthError;
use crate::verify::token::{
    audience_allowed, check_token_for_audiences, unverified_issuer, CheckedToken, VerifiedToken,
};

/// Header changes to make before the request goes upstream, applied in this order: removals, then sets,
/// then the new path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMutations {
    pub remove_headers: Vec<String>,
    pub set_headers: Vec<(String, String)>,
    pub new_path: Option<Vec<u8>>,
    /// Report-only: the reasons this request would have been refused for (logged and counted).
    pub would_deny: Vec<&'static str>,
    /// Filter state to set for later filters: (name, verified payload JSON).
    pub filter_state: Vec<(String, String)>,
}

/// What becomes of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow(RequestMutations),
    Deny(LocalReply),
}

/// The outcome of the first look at a request.
#[derive(Debug)]
pub enum Start {
    /// Decided without keys: no requirement, cached tokens, or tokens refused by their claims.
    Decided(Verdict),
    /// Signatures decide; they need these providers' keys.
    NeedsKeys(PendingAuth),
}

/// A request waiting for signature checks, with everything needed to finish it later (when a JWKS
/// fetch completes in another callback).
#[derive(Debug)]
pub struct PendingAuth {
    rule: usize,
    /// Tokens found per requirement leaf (indexed by [`LeafId`]); `None` for leaves not reached.
    leaves: Vec<Option<Vec<Candidate>>>,
    realm: String,
    path: Vec<u8>,
    sanitized_headers: Vec<String>,
}

/// One token as one provider sees it.
#[derive(Debug)]
struct Candidate {
    /// `None` when no provider fits the token (an `allow_missing` token naming an unknown issuer).
    provider: Option<ProviderId>,
    raw: Vec<u8>,
    source: TokenSource,
    state: CandidateState,
}

#[derive(Debug)]
enum CandidateState {
    Verified(Rc<VerifiedClaims>),
    Failed(AuthError),
    /// Passed every claim check; the signature is not checked yet.
    Unsigned(Box<CheckedToken>),
}

/// A requirement's outcome so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail(AuthError),
    /// Depends on a signature not checked yet.
    Pending,
}

/// Keys of each provider, for the signature checks.
pub type KeysOf<'k> = dyn Fn(ProviderId) -> Option<Rc<Jwks>> + 'k;

/// Looks at a request: `headers` are all request headers (pseudo-headers included), `now` is Unix
/// seconds.
pub fn start(
    config: &FilterConfig,
    headers: &[HeaderPair<'_>],
    now: u64,
    caches: &mut TokenCaches,
) -> Start {
    let full_path = first_value(headers, ":path");
    // Client copies of identity headers go on every request, whatever the rules say.
    let sanitized_headers: Vec<String> = config
        .identity_headers
        .iter()
        .filter(|name| !headers.values(name).is_empty())
        .cloned()
        .collect();
    let pass_through = || {
        Start::Decided(Verdict::Allow(RequestMutations {
            remove_headers: sanitized_headers.clone(),
            ..RequestMutations::default()
        }))
    };
    if config.bypass_cors_preflight && is_cors_preflight(headers) {
        return pass_through();
    }
    let request = RequestView::new(full_path, headers);
    let Some((rule_index, rule)) = config
        .rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.route_match.matches(&request))
    else {
        return pass_through();
    };
    let Some(requirement) = &rule.requirement else {
        return pass_through();
    };
    let mut evaluation = Evaluation {
        config,
        request: Some((headers, full_path, now)),
        keys: None,
        caches,
        leaves: (0..config.leaf_count).map(|_| None).collect(),
        admitted: Vec::new(),
        would_deny: Vec::new(),
    };
    let outcome = evaluation.evaluate(requirement);
    if outcome == Outcome::Pending {
        let leaves = evaluation.leaves;
        return Start::NeedsKeys(PendingAuth {
            rule: rule_index,
            leaves,
            realm: realm(headers),
            path: full_path.to_vec(),
            sanitized_headers,
        });
    }
    Start::Decided(
        evaluation.verdict(rule, outcome, full_path, sanitized_headers, &|| {
            realm(headers)
        }),
    )
}

impl PendingAuth {
    /// The providers whose keys the pending signature checks need.
    pub fn providers_needing_keys(&self) -> Vec<ProviderId> {
        let mut providers = Vec::new();
        for candidate in self.leaves.iter().flatten().flatten() {
            if let (Some(p), CandidateState::Unsigned(_)) = (candidate.provider, &candidate.state) {
                if !providers.contains(&p) {
                    providers.push(p);
                }
            }
        }
        providers
    }

    /// Whether a token waiting for `provider`'s keys names a kid that `jwks` does not have: the issuer
    /// may have published a new key since the last fetch, so a refetch can be worth waiting for.
    pub fn has_unknown_kid(&self, provider: ProviderId, jwks: &Jwks) -> bool {
        self.leaves.iter().flatten().flatten().any(|candidate| {
            match (&candidate.state, candidate.provider) {
                (CandidateState::Unsigned(checked), Some(p)) if p == provider => checked
                    .kid()
                    .is_some_and(|kid| !jwks.keys.iter().any(|k| k.kid.as_deref() == Some(kid))),
                _ => false,
            }
        })
    }

    /// Checks the pending signatures with the keys `keys_of` gives (a provider without keys makes its
    /// tokens fail with "Jwks remote fetch is failed") and decides the request. Newly verified tokens go
    /// into `caches`.
    pub fn finish(
        mut self,
        config: &FilterConfig,
        keys_of: &KeysOf<'_>,
        caches: &mut TokenCaches,
    ) -> Verdict {
        let Some(rule) = config.rules.get(self.rule) else {
            return Verdict::Deny(refusal(
                config,
                Failure::Auth(AuthError::VerificationFails),
                &self.realm,
            ));
        };
        let Some(requirement) = &rule.requirement else {
            return Verdict::Deny(refusal(
                config,
                Failure::Auth(AuthError::VerificationFails),
                &self.realm,
            ));
        };
        let mut evaluation = Evaluation {
            config,
            request: None,
            keys: Some(keys_of),
            caches,
            leaves: std::mem::take(&mut self.leaves),
            admitted: Vec::new(),
            would_deny: Vec::new(),
        };
        let outcome = evaluation.evaluate(requirement);
        let realm = self.realm;
        evaluation.verdict(rule, outcome, &self.path, self.sanitized_headers, &|| {
            realm.clone()
        })
    }
}

/// The request on its first look: headers, `:path`, and now (Unix seconds).
type FirstLook<'a> = (&'a [HeaderPair<'a>], &'a [u8], u64);

/// Walks a requirement tree over the request's tokens.
struct Evaluation<'a, 'k> {
    config: &'a FilterConfig,
    /// Headers, `:path` and now (Unix seconds) on the first look; `None` when finishing, where leaves not
    /// reached on the first look have no tokens.
    request: Option<FirstLook<'a>>,
    /// `None` on the first look: unchecked signatures are then [`Outcome::Pending`].
    keys: Option<&'a KeysOf<'k>>,
    caches: &'a mut TokenCaches,
    leaves: Vec<Option<Vec<Candidate>>>,
    /// Tokens that passed in a passing part of the tree, as (leaf, index): their claims go upstream.
    admitted: Vec<(LeafId, usize)>,
    would_deny: Vec<&'static str>,
}

impl Evaluation<'_, '_> {
    /// The verdict for the walk's `outcome`, from what the walk found.
    fn verdict(
        self,
        rule: &Rule,
        outcome: Outcome,
        path: &[u8],
        sanitized_headers: Vec<String>,
        realm: &dyn Fn() -> String,
    ) -> Verdict {
        let Evaluation {
            config,
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
                leaves: &leaves,
                admitted: &admitted,
                would_deny,
                path,
                sanitized_headers,
                realm,
            },
        )
    }

    fn evaluate(&mut self, requirement: &Requirement) -> Outcome {
        match requirement {
            Requirement::AllowAll => Outcome::Pass,
            Requirement::Provider {
                leaf,
                provider,
                audiences,
            } => self.provider_leaf(*leaf, *provider, audiences.as_deref()),
            Requirement::AllowMissing { leaf } => self.issuer_leaf(*leaf, false),
            Requirement::AllowMissingOrFailed { leaf } => self.issuer_leaf(*leaf, true),
            Requirement::All(children) => {
                let mut pending = false;
                for child in children {
                    match self.evaluate(child) {
                        Outcome::Pass => {}
                        Outcome::Pending => pending = true,
                        Outcome::Fail(error) => return Outcome::Fail(error),
                    }
                }
                if pending {
                    Outcome::Pending
                } else {
                    Outcome::Pass
                }
            }
            Requirement::Any {
                children,
                allow_missing,
                allow_missing_or_failed,
            } => {
                let mut pending = false;
                let mut failures = Vec::new();
                for child in children {
                    match self.evaluate(child) {
                        Outcome::Pass => return Outcome::Pass,
                        Outcome::Pending => pending = true,
                        Outcome::Fail(error) => failures.push(error),
                    }
                }
                if pending {
                    return Outcome::Pending;
                }
                // jwt_authn's choice: the last "real" failure; missing tokens and tokens of another issuer
                // count only when nothing else failed.
                let mut last = AuthError::Missing;
                for error in failures {
                    let soft = matches!(error, AuthError::Missing | AuthError::UnknownIssuer);
                    if !soft || last == AuthError::Missing {
                        last = error;
                    }
                }
                if *allow_missing_or_failed || (*allow_missing && last == AuthError::Missing) {
                    Outcome::Pass
                } else {
                    Outcome::Fail(last)
                }
            }
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
        if self.leaves.get(leaf).is_some_and(Option::is_none) {
            let candidates = match self.request {
                Some((headers, path, now)) => extract_tokens(&provider.locations, headers, path)
                    .into_iter()
                    .map(|token| {
                        let state =
                            self.first_look(provider_id, provider, audiences, &token.raw, now);
                        Candidate {
                            provider: Some(provider_id),
                            raw: token.raw,
                            source: token.source,
                            state,
                        }
                    })
                    .collect(),
                None => Vec::new(),
            };
            if let Some(slot) = self.leaves.get_mut(leaf) {
                *slot = Some(candidates);
            }
        }
        let count = self.leaf_len(leaf);
        if count == 0 {
            return self.reported(provider, Outcome::Fail(AuthError::Missing));
        }
        let mut outcome = Outcome::Pass;
        let mut passed = Vec::new();
        for index in 0..count {
            match self.resolve(leaf, index, Some(audiences)) {
                Outcome::Pass => passed.push((leaf, index)),
                Outcome::Fail(error) => {
                    outcome = Outcome::Fail(error);
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
    /// claims); otherwise every token found must pass (jwt_authn reports only its last token here;
    /// this filter refuses if any fails).
    fn issuer_leaf(&mut self, leaf: LeafId, failures_pass: bool) -> Outcome {
        if self.leaves.get(leaf).is_some_and(Option::is_none) {
            let candidates = match self.request {
                Some((headers, path, now)) => self.issuer_candidates(headers, path, now),
                None => Vec::new(),
            };
            if let Some(slot) = self.leaves.get_mut(leaf) {
                *slot = Some(candidates);
            }
        }
        let mut outcome = Outcome::Pass;
        for index in 0..self.leaf_len(leaf) {
            match self.resolve(leaf, index, None) {
                Outcome::Pass => self.admitted.push((leaf, index)),
                Outcome::Pending if outcome == Outcome::Pass => outcome = Outcome::Pending,
                Outcome::Fail(error) if !failures_pass && !matches!(outcome, Outcome::Fail(_)) => {
                    outcome = Outcome::Fail(error);
                }
                Outcome::Pending | Outcome::Fail(_) => {}
            }
        }
        outcome
    }

    fn issuer_candidates(
        &mut self,
        headers: &[HeaderPair<'_>],
        path: &[u8],
        now: u64,
    ) -> Vec<Candidate> {
        let config = self.config;
        let mut candidates: Vec<Candidate> = Vec::new();
        for (provider_id, provider) in config.providers.iter().enumerate() {
            for token in extract_tokens(&provider.locations, headers, path) {
                if candidates
                    .iter()
                    .any(|c| c.raw == token.raw && c.source == token.source)
                {
                    continue;
                }
                let issuer = unverified_issuer(&token.raw);
                // The provider naming this issuer exactly, else one that accepts any issuer, among the
                // providers reading this location.
                let fits = |p: &Provider| {
                    extract_tokens(&p.locations, headers, path)
                        .iter()
                        .any(|t| t.raw == token.raw && t.source == token.source)
                };
                let chosen = config
                    .providers
                    .iter()
                    .enumerate()
                    .skip(provider_id)
                    .find(|(_, p)| p.issuer.is_some() && p.issuer == issuer && fits(p))
                    .or_else(|| {
                        config
                            .providers
                            .iter()
                            .enumerate()
                            .skip(provider_id)
                            .find(|(_, p)| p.issuer.is_none() && fits(p))
                    });
                let (provider, state) = match chosen {
                    Some((id, p)) => (
                        Some(id),
                        self.first_look(id, p, &p.audiences, &token.raw, now),
                    ),
                    None => (None, CandidateState::Failed(AuthError::UnknownIssuer)),
                };
                candidates.push(Candidate {
                    provider,
                    raw: token.raw,
                    source: token.source,
                    state,
                });
            }
        }
        candidates
    }

    /// A token's state before any signature check: from the cache, or from its claim checks.
    fn first_look(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
        audiences: &[String],
        raw: &[u8],
        now: u64,
    ) -> CandidateState {
        if let Some(cached) = self.caches.get(provider_id, raw, now) {
            return CandidateState::Verified(cached);
        }
        match check_token_for_audiences(raw, provider, audiences, now) {
            Ok(checked) => CandidateState::Unsigned(Box::new(checked)),
            Err(error) => CandidateState::Failed(error),
        }
    }

    fn leaf_len(&self, leaf: LeafId) -> usize {
        self.leaves
            .get(leaf)
            .and_then(Option::as_ref)
            .map_or(0, Vec::len)
    }

    /// One token's outcome, checking its signature if keys are at hand. `audiences` are re-checked on
    /// cached tokens (another requirement may have cached the token under other audiences).
    fn resolve(&mut self, leaf: LeafId, index: usize, audiences: Option<&[String]>) -> Outcome {
        let config = self.config;
        let keys = self.keys;
        let Some(candidate) = self
            .leaves
            .get_mut(leaf)
            .and_then(Option::as_mut)
            .and_then(|c| c.get_mut(index))
        else {
            return Outcome::Fail(AuthError::Missing);
        };
        let provider_id = candidate.provider;
        let provider = provider_id.and_then(|p| config.providers.get(p));
        if let (CandidateState::Unsigned(checked), Some(keys), Some(p), Some(provider)) =
            (&candidate.state, keys, provider_id, provider)
        {
            candidate.state = match keys(p) {
                None => CandidateState::Failed(AuthError::JwksFetchFailed),
                Some(jwks) => match checked.verify_signature(&jwks) {
                    Err(error) => CandidateState::Failed(error),
                    Ok(verified) => {
                        let verdict = Rc::new(VerifiedClaims {
                            set_headers: claim_headers(provider, &verified),
                            filter_state: provider.payload_in_filter_state.as_ref().map(|name| {
                                let json =
                                    serde_json::to_string(&*verified.payload).unwrap_or_default();
                                (name.clone(), json)
                            }),
                            payload: verified.payload.clone(),
                        });
                        let valid_until = verified.expires_at().map_or(u64::MAX, |exp| {
                            exp.saturating_add(provider.clock_skew_seconds)
                        });
                        self.caches
                            .put(p, &candidate.raw, verdict.clone(), valid_until);
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
                if audiences.is_some_and(|a| !audience_allowed(&verdict.payload, a)) {
                    Outcome::Fail(AuthError::AudienceNotAllowed)
                } else {
                    Outcome::Pass
                }
            }
        }
    }
}

/// What [`conclude`] needs besides the outcome.
struct Conclusion<'a> {
    leaves: &'a [Option<Vec<Candidate>>],
    admitted: &'a [(LeafId, usize)],
    would_deny: Vec<&'static str>,
    path: &'a [u8],
    sanitized_headers: Vec<String>,
    realm: &'a dyn Fn() -> String,
}

/// Turns the requirement's outcome into a verdict: authorization on the admitted tokens' claims, the
/// rule's report-only mode, the claim headers to set and the tokens to strip.
fn conclude(
    config: &FilterConfig,
    rule: &Rule,
    outcome: Outcome,
    conclusion: Conclusion<'_>,
) -> Verdict {
    let admitted: Vec<&Candidate> = conclusion
        .admitted
        .iter()
        .filter_map(|(leaf, index)| conclusion.leaves.get(*leaf)?.as_ref()?.get(*index))
        .collect();
    let failure = match outcome {
        Outcome::Fail(error) => Some(Failure::Auth(error)),
        Outcome::Pending => Some(Failure::Auth(AuthError::JwksFetchFailed)),
        Outcome::Pass => rule.authorization.as_ref().and_then(|authorization| {
            let mut denial = None;
            for candidate in &admitted {
                if let CandidateState::Verified(verdict) = &candidate.state {
                    match authorization.check(&verdict.payload) {
                        Ok(()) => return None,
                        Err(d) => denial = denial.or(Some(d)),
                    }
                }
            }
            Some(match denial {
                Some(denial) => Failure::Forbidden(denial),
                None => Failure::Auth(AuthError::Missing),
            })
        }),
    };
    let mut would_deny = conclusion.would_deny;
    if let Some(failure) = failure {
        if !rule.report_only {
            return Verdict::Deny(refusal(config, failure, &(conclusion.realm)()));
        }
        would_deny.push(failure.reason());
    }
    let mut mutations = RequestMutations {
        remove_headers: conclusion.sanitized_headers,
        would_deny,
        ..RequestMutations::default()
    };
    let mut new_path = conclusion.path.to_vec();
    for candidate in admitted {
        let CandidateState::Verified(verdict) = &candidate.state else {
            continue;
        };
        for header in &verdict.set_headers {
            if !mutations.set_headers.contains(header) {
                mutations.set_headers.push(header.clone());
            }
        }
        if let Some(state) = &verdict.filter_state {
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
            match &candidate.source {
                TokenSource::Header(name) => {
                    if !mutations.remove_headers.contains(name) {
                        mutations.remove_headers.push(name.clone());
                    }
                }
                TokenSource::Param(name) => new_path = path_without_param(&new_path, name),
                // As jwt_authn: a token cookie stays (the Cookie header carries other cookies too).
                TokenSource::Cookie(_) => {}
            }
        }
    }
    if new_path != conclusion.path {
        mutations.new_path = Some(new_path);
    }
    Verdict::Allow(mutations)
}

/// The headers a verified token sets upstream: its claim_to_headers and forward_payload_header.
fn claim_headers(provider: &Provider, verified: &VerifiedToken) -> Vec<(String, String)> {
    let mut set_headers = Vec::new();
    for mapping in &provider.claim_to_headers {
        if let Some(value) = claim_header_value(&verified.payload, &mapping.claim) {
            set_headers.push((mapping.header_name.clone(), value));
        }
    }
    if let Some(header) = &provider.forward_payload_header {
        let mut payload = verified.payload_segment.clone();
        if provider.pad_forward_payload_header {
            // The segment is unpadded base64url (the verifier refuses padding in a token).
            let padding = (4 - payload.len() % 4) % 4;
            payload.extend(std::iter::repeat_n('=', padding));
        }
        set_headers.push((header.clone(), payload));
    }
    set_headers
}

/// jwt_authn's CORS preflight test: `OPTIONS` with non-empty `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight(headers: &[HeaderPair<'_>]) -> bool {
    first_value(headers, ":method") == b"OPTIONS"
        && !first_value(headers, "origin").is_empty()
        && !first_value(headers, "access-control-request-method").is_empty()
}

fn first_value<'a>(headers: &[HeaderPair<'a>], name: &str) -> &'a [u8] {
    headers
        .iter()
        .find(|(key, _)| *key == name.as_bytes())
        .map_or(&[], |&(_, value)| value)
}

/// How much of the path the realm keeps.
const REALM_MAX_PATH_BYTES: usize = 256;

/// `<scheme>://<host><path>` of the request, as jwt_authn puts it in `WWW-Authenticate`; quotes,
/// backslashes and control characters are escaped or dropped so the challenge stays one well-formed header.
fn realm(headers: &[HeaderPair<'_>]) -> String {
    let scheme = first_value(headers, ":scheme");
    let scheme: &[u8] = if scheme.is_empty() { b"http" } else { scheme };
    let mut raw = Vec::new();
    raw.extend_from_slice(scheme);
    raw.extend_from_slice(b"://");
    raw.extend_from_slice(first_value(headers, ":authority"));
    // jwt_authn (Envoy's buildOriginalUri) keeps at most 256 bytes of the path.
    let path = first_value(headers, ":path");
    raw.extend_from_slice(path.get(..REALM_MAX_PATH_BYTES).unwrap_or(path));
    escape_quoted(&String::from_utf8_lossy(&raw))
}
