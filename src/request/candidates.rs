//! Finding a requirement leaf's candidates: the tokens in the request that a provider judges, each at
//! its first look (the verified-token cache, else the claim checks; signatures come later).
//!
//! Each token location is read once per request and each distinct token is looked up in the
//! verified-token cache once and parsed at most once, however many providers read it
//! ([`RequestTokens`]). A provider whose exact issuer is not the token's judges it "Jwt issuer is not
//! configured" from the issuer alone, without a claim check, so `requires_any` over many providers
//! costs one check of the token, by the provider it names.

use std::rc::Rc;

use serde_json::Value;
use smallvec::SmallVec;

use crate::config::provider_index::{exact_issuer, LocationId};
use crate::config::{Provider, ProviderId};
use crate::request::cert_binding::{check_binding, presented_thumbprint};
use crate::request::evaluation::{Candidate, CandidateState, Evaluation};
use crate::request::extract::{extract_tokens, ExtractedToken, TokenSource};
use crate::request::headers::HeaderPair;
use crate::request::token_cache::{CacheHits, TokenCaches};
use crate::verify::error::AuthError;
use crate::verify::token::{parse, ParsedToken};

/// Index of a distinct token in [`RequestTokens`].
pub(super) type TokenId = usize;
/// Index of one finding (a token at a location) in [`RequestTokens`].
pub(super) type FoundId = usize;

/// A distinct token of the request, read once.
#[derive(Debug)]
struct SeenToken {
    raw: Rc<[u8]>,
    /// The providers that verified it before, from one cache lookup.
    cached: CacheHits,
    /// Its parse, made when a provider first needs it.
    parsed: Option<Result<ParsedToken, AuthError>>,
    /// The providers naming its `iss` exactly, once known (one map lookup per token; almost always one).
    named: Option<SmallVec<[ProviderId; 2]>>,
}

impl SeenToken {
    /// Parses the token the first time a provider needs it (counted, for the work counts).
    fn parse_once(&mut self, caches: &mut TokenCaches) {
        if self.parsed.is_none() {
            caches.count_parse();
            self.parsed = Some(parse(&self.raw));
        }
    }

    /// The token's `iss` when a cached verdict tells it (`Some(None)`: it has none), without parsing.
    fn cached_issuer(&self) -> Option<Option<&str>> {
        let (_, verdict) = self.cached.first()?;
        Some(verdict.payload().get("iss").and_then(Value::as_str))
    }
}

/// A token found at a location.
#[derive(Debug)]
struct Found {
    token: TokenId,
    source: TokenSource,
}

/// The findings at one location: almost always none or one.
type FoundHere = SmallVec<[FoundId; 2]>;

/// The request's tokens: each location read once, each distinct token looked up and parsed once.
/// Stored inline for the usual one or two (no allocation for a request with one token).
#[derive(Debug, Default)]
pub(super) struct RequestTokens {
    tokens: SmallVec<[SeenToken; 1]>,
    found: SmallVec<[Found; 2]>,
    /// Per location of the provider index: what it holds, once read.
    at_location: SmallVec<[Option<FoundHere>; 2]>,
}

impl RequestTokens {
    /// Nothing read yet, for a configuration with `locations` distinct token locations.
    pub(super) fn new(locations: usize) -> RequestTokens {
        RequestTokens {
            tokens: SmallVec::new(),
            found: SmallVec::new(),
            at_location: SmallVec::from_elem(None, locations),
        }
    }

    /// The token bytes of finding `found`.
    pub(super) fn raw(&self, found: FoundId) -> &[u8] {
        self.found
            .get(found)
            .and_then(|f| self.tokens.get(f.token))
            .map_or(&[], |t| &*t.raw)
    }

    /// The request's copy of the token of finding `found`, to share.
    pub(super) fn shared_raw(&self, found: FoundId) -> Option<&Rc<[u8]>> {
        self.found
            .get(found)
            .and_then(|f| self.tokens.get(f.token))
            .map(|t| &t.raw)
    }

    /// Where finding `found` was.
    pub(super) fn source(&self, found: FoundId) -> Option<&TokenSource> {
        self.found.get(found).map(|f| &f.source)
    }
}

impl Evaluation<'_, '_> {
    /// Reads `location` on first use.
    fn read_location(
        &mut self,
        location: LocationId,
        headers: &[HeaderPair<'_>],
        path: &[u8],
        now: u64,
    ) {
        if self
            .tokens
            .at_location
            .get(location)
            .is_some_and(Option::is_some)
        {
            return;
        }
        let Some(locations) = self.config.provider_index.location(location) else {
            return;
        };
        let mut found_here = FoundHere::new();
        for ExtractedToken { raw: bytes, source } in extract_tokens(locations, headers, path) {
            let existing = self.tokens.tokens.iter().position(|t| *t.raw == *bytes);
            let id = match existing {
                Some(id) => id,
                None => {
                    // A cached token shares the cache's copy; only a token not seen before is copied.
                    let (shared, cached) = self.caches.lookup_shared(&bytes, now);
                    let raw = shared.unwrap_or_else(|| Rc::from(&*bytes));
                    self.tokens.tokens.push(SeenToken {
                        raw,
                        cached,
                        parsed: None,
                        named: None,
                    });
                    self.tokens.tokens.len() - 1
                }
            };
            self.tokens.found.push(Found { token: id, source });
            found_here.push(self.tokens.found.len() - 1);
        }
        if let Some(slot) = self.tokens.at_location.get_mut(location) {
            *slot = Some(found_here);
        }
    }

    /// The `nth` finding at `location` (read before).
    fn found_at(&self, location: LocationId, nth: usize) -> Option<FoundId> {
        self.tokens
            .at_location
            .get(location)
            .and_then(Option::as_ref)
            .and_then(|found| found.get(nth))
            .copied()
    }

    fn token_of(&self, found: FoundId) -> TokenId {
        self.tokens.found.get(found).map_or(usize::MAX, |f| f.token)
    }

    /// Pushes the tokens in the provider's locations (jwt_authn's extraction order), each at its first
    /// look, as the candidates of the leaf being reached.
    pub(super) fn provider_candidates(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
        audiences: &[String],
        headers: &[HeaderPair<'_>],
        path: &[u8],
        now: u64,
    ) {
        let config = self.config;
        for &location in config.provider_index.provider_locations(provider_id) {
            self.read_location(location, headers, path, now);
            let mut nth = 0;
            while let Some(found) = self.found_at(location, nth) {
                nth += 1;
                let token = self.token_of(found);
                let state = self.first_look(provider_id, provider, audiences, token, now);
                self.leaves.candidates.push(Candidate {
                    provider: Some(provider_id),
                    found,
                    state,
                    proof: None,
                });
            }
        }
    }

    /// Pushes the tokens in any provider's locations (jwt_authn's extraction order), each judged by the
    /// provider whose issuer it names (one accepting any issuer otherwise), at its first look. A token
    /// that does not parse fails with its parse error, as in jwt_authn.
    pub(super) fn issuer_candidates(&mut self, headers: &[HeaderPair<'_>], path: &[u8], now: u64) {
        let config = self.config;
        let index = &config.provider_index;
        for &location in index.all_locations() {
            self.read_location(location, headers, path, now);
            let mut nth = 0;
            while let Some(found) = self.found_at(location, nth) {
                nth += 1;
                let token = self.token_of(found);
                let judge = self
                    .issuer_of(token)
                    .map(|issuer| index.judge(&config.providers, issuer, location));
                let (provider, state) = match judge {
                    Err(error) => (None, CandidateState::Failed(error)),
                    Ok(None) => (None, CandidateState::Failed(AuthError::UnknownIssuer)),
                    Ok(Some(id)) => match config.providers.get(id) {
                        Some(p) => (Some(id), self.first_look(id, p, &p.audiences, token, now)),
                        None => (None, CandidateState::Failed(AuthError::UnknownIssuer)),
                    },
                };
                self.leaves.candidates.push(Candidate {
                    provider,
                    found,
                    state,
                    proof: None,
                });
            }
        }
    }

    /// The token's `iss`: from a cached verdict, else from its (single) parse.
    fn issuer_of(&mut self, token: TokenId) -> Result<Option<&str>, AuthError> {
        let Some(seen) = self.tokens.tokens.get_mut(token) else {
            return Err(AuthError::Missing);
        };
        if seen.cached_issuer().is_none() {
            seen.parse_once(self.caches);
        }
        if let Some(issuer) = seen.cached_issuer() {
            return Ok(issuer);
        }
        match &seen.parsed {
            Some(Ok(parsed)) => Ok(parsed.issuer()),
            Some(Err(error)) => Err(*error),
            None => Err(AuthError::BadFormat),
        }
    }

    /// Whether the token's `iss` is `provider_id`'s exact issuer, from the providers naming it (looked
    /// up once per token, from a cached verdict's claims or the token's parse). A token that does not
    /// parse names nobody.
    fn names(&mut self, token: TokenId, provider_id: ProviderId) -> bool {
        let config = self.config;
        let Some(seen) = self.tokens.tokens.get_mut(token) else {
            return false;
        };
        if seen.named.is_none() {
            let issuer = seen
                .cached_issuer()
                .or_else(|| match &seen.parsed {
                    Some(Ok(parsed)) => Some(parsed.issuer()),
                    _ => None,
                })
                .flatten();
            let named = issuer.map_or_else(SmallVec::new, |issuer| {
                SmallVec::from_slice(config.provider_index.named(issuer))
            });
            seen.named = Some(named);
        }
        seen.named
            .as_ref()
            .is_some_and(|named| named.contains(&provider_id))
    }

    /// What a `requires_any` child naming this provider would fail with, when that is certain without
    /// looking at its tokens one by one: `Missing` when none of its locations holds a token,
    /// `UnknownIssuer` when every token there parses and names another provider's issuer. `None` when
    /// a token may be the provider's own, fails in another way (it does not parse), or the provider is
    /// report-only or has no exact issuer: the child is then evaluated. This is what keeps
    /// `requires_any` over many providers near the cost of one: only the providers a token names are
    /// looked at. Only on the first look, where the request is at hand.
    pub(super) fn foreign_to(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
    ) -> Option<AuthError> {
        let (headers, path, now) = self.request?;
        if provider.report_only || exact_issuer(provider).is_none() {
            return None;
        }
        let config = self.config;
        let mut any_token = false;
        for &location in config.provider_index.provider_locations(provider_id) {
            self.read_location(location, headers, path, now);
            let mut nth = 0;
            while let Some(found) = self.found_at(location, nth) {
                nth += 1;
                any_token = true;
                let token = self.token_of(found);
                let seen = self.tokens.tokens.get_mut(token)?;
                if seen.cached.is_empty() {
                    seen.parse_once(self.caches);
                }
                let parses = !seen.cached.is_empty() || matches!(seen.parsed, Some(Ok(_)));
                if !parses || self.names(token, provider_id) {
                    return None;
                }
            }
        }
        Some(if any_token {
            AuthError::UnknownIssuer
        } else {
            AuthError::Missing
        })
    }

    /// A token's state for one provider before any signature check, bound to the client certificate
    /// when the provider says so.
    fn first_look(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
        audiences: &[String],
        token: TokenId,
        now: u64,
    ) -> CandidateState {
        let state = self.first_look_unbound(provider_id, provider, audiences, token, now);
        self.bound_to_certificate(provider, state)
    }

    /// A token's state for one provider before any signature check: from the cache, from the issuer
    /// alone when it is not the provider's exact issuer, or from the provider's claim checks.
    fn first_look_unbound(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
        audiences: &[String],
        token: TokenId,
        now: u64,
    ) -> CandidateState {
        let Some(seen) = self.tokens.tokens.get_mut(token) else {
            return CandidateState::Failed(AuthError::Missing);
        };
        if let Some((_, verdict)) = seen.cached.iter().find(|(p, _)| *p == provider_id) {
            return CandidateState::Verified(verdict.clone());
        }
        // jwt_authn parses first: a token that does not parse fails with that, whoever judges it.
        if seen.cached.is_empty() {
            seen.parse_once(self.caches);
        }
        if let Some(Err(error)) = &seen.parsed {
            return CandidateState::Failed(*error);
        }
        // The issuer check comes first among jwt_authn's claim checks: a provider with an exact issuer
        // judges from the providers naming the token's `iss` (looked up once per token) alone.
        if exact_issuer(provider).is_some() && !self.names(token, provider_id) {
            return CandidateState::Failed(AuthError::UnknownIssuer);
        }
        let Some(seen) = self.tokens.tokens.get_mut(token) else {
            return CandidateState::Failed(AuthError::Missing);
        };
        seen.parse_once(self.caches);
        match &seen.parsed {
            Some(Ok(parsed)) => {
                self.caches.count_claim_check();
                match parsed.check_for_audiences(provider, audiences, now) {
                    Ok(checked) => CandidateState::Unsigned(checked),
                    Err(error) => CandidateState::Failed(error),
                }
            }
            Some(Err(error)) => CandidateState::Failed(*error),
            None => CandidateState::Failed(AuthError::BadFormat),
        }
    }

    /// A token of a `certificate_bound` provider must match the request's client certificate, on every
    /// request: a cached token skips the signature, never this check.
    fn bound_to_certificate(&self, provider: &Provider, state: CandidateState) -> CandidateState {
        let (Some(binding), Some((headers, _, _))) = (&provider.certificate_bound, self.request)
        else {
            return state;
        };
        let payload = match &state {
            CandidateState::Verified(verified) => verified.payload(),
            CandidateState::Unsigned(checked) => checked.unverified_payload(),
            CandidateState::Failed(_) => return state,
        };
        let presented = presented_thumbprint(binding.source, self.peer_certificate_digest, headers);
        match check_binding(binding, payload, presented.as_deref()) {
            Ok(()) => state,
            Err(error) => CandidateState::Failed(error),
        }
    }
}
