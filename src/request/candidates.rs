//! Finding a requirement leaf's candidates: the tokens in the request that a provider judges, each at
//! its first look (the verified-token cache, else the claim checks; signatures come later).

use crate::config::{IssuerMatch, Provider, ProviderId};
use crate::request::cert_binding::{check_binding, presented_thumbprint};
use crate::request::evaluation::{Candidate, CandidateState, Evaluation};
use crate::request::extract::extract_tokens;
use crate::request::headers::HeaderPair;
use crate::verify::error::AuthError;
use crate::verify::token::{check_token_for_audiences, unverified_issuer};

impl Evaluation<'_, '_> {
    /// The tokens in the provider's locations, each at its first look.
    pub(super) fn provider_candidates(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
        audiences: &[String],
        headers: &[HeaderPair<'_>],
        path: &[u8],
        now: u64,
    ) -> Vec<Candidate> {
        extract_tokens(&provider.locations, headers, path)
            .into_iter()
            .map(|token| {
                let state = self.first_look(provider_id, provider, audiences, &token.raw, now);
                Candidate {
                    provider: Some(provider_id),
                    raw: token.raw,
                    source: token.source,
                    state,
                    proof: None,
                }
            })
            .collect()
    }

    /// The tokens in any provider's locations, each judged by the provider whose issuer it names (one
    /// accepting any issuer otherwise), at its first look.
    pub(super) fn issuer_candidates(
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
                // The provider naming this issuer (exactly or by its tenant template), else one that
                // accepts any issuer, among the providers reading this location.
                let fits = |p: &Provider| {
                    extract_tokens(&p.locations, headers, path)
                        .iter()
                        .any(|t| t.raw == token.raw && t.source == token.source)
                };
                let issuer = issuer.as_deref();
                let names_issuer = |p: &Provider| {
                    p.matches_issuer(issuer)
                        .is_some_and(IssuerMatch::is_specific)
                };
                let accepts_any = |p: &Provider| p.matches_issuer(issuer) == Some(IssuerMatch::Any);
                let chosen = config
                    .providers
                    .iter()
                    .enumerate()
                    .skip(provider_id)
                    .find(|(_, p)| names_issuer(p) && fits(p))
                    .or_else(|| {
                        config
                            .providers
                            .iter()
                            .enumerate()
                            .skip(provider_id)
                            .find(|(_, p)| accepts_any(p) && fits(p))
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
                    proof: None,
                });
            }
        }
        candidates
    }

    /// A token's state before any signature check: from the cache, or from its claim checks.
    pub(super) fn first_look(
        &mut self,
        provider_id: ProviderId,
        provider: &Provider,
        audiences: &[String],
        raw: &[u8],
        now: u64,
    ) -> CandidateState {
        let state = if let Some(cached) = self.caches.get(provider_id, raw, now) {
            CandidateState::Verified(cached)
        } else {
            match check_token_for_audiences(raw, provider, audiences, now) {
                Ok(checked) => CandidateState::Unsigned(Box::new(checked)),
                Err(error) => CandidateState::Failed(error),
            }
        };
        self.bound_to_certificate(provider, state)
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
