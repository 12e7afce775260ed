//! The per-request steps, free of any host call: pick the requirement, find the tokens, check them, and
//! say what to do with the request. The proxy-wasm glue in `filter.rs` only reads headers, waits for keys
//! and applies the verdict.

use std::rc::Rc;

use crate::auth_error::{AuthError, LocalReply};
use crate::claims::claim_header_value;
use crate::config::{FilterConfig, Provider, ProviderId};
use crate::extractor::{extract_tokens, path_without_param, RequestHeaders, TokenSource};
use crate::jwks::Jwks;
use crate::rules::{requirement_for, Requirement};
use crate::token_cache::{CachedVerdict, TokenCaches};
use crate::verifier::{check_token, CheckedToken, VerifiedToken};

/// Header changes to make before the request goes upstream, applied in this order: removals, then sets,
/// then the new path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMutations {
    pub remove_headers: Vec<String>,
    pub set_headers: Vec<(String, String)>,
    pub new_path: Option<Vec<u8>>,
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
    /// Decided without keys: no requirement, no token, or a token refused by its claims.
    Decided(Verdict),
    /// The tokens passed every check that needs no keys; the signatures need the provider's JWKS.
    NeedsKeys(PendingAuth),
}

/// A request whose tokens wait for a signature check, with everything needed to finish it later (when a
/// JWKS fetch completes in another callback).
#[derive(Debug)]
pub struct PendingAuth {
    pub provider: ProviderId,
    tokens: Vec<PendingToken>,
    realm: String,
    path: Vec<u8>,
    sanitized_headers: Vec<String>,
}

/// One token of a request: either found in the verified-token cache, or checked and awaiting its
/// signature check.
#[derive(Debug)]
struct PendingToken {
    raw: Vec<u8>,
    source: TokenSource,
    state: TokenState,
}

#[derive(Debug)]
enum TokenState {
    Cached(Rc<CachedVerdict>),
    Checked(Box<CheckedToken>),
}

/// Looks at a request: `headers` are all request headers (pseudo-headers included), `now` is Unix
/// seconds. Tokens found in `caches` skip every check; if all tokens are cached the request is decided
/// without keys.
pub fn start(
    config: &FilterConfig,
    headers: &[(String, Vec<u8>)],
    now: u64,
    caches: &mut TokenCaches,
) -> Start {
    let path = first_value(headers, ":path");
    // Client copies of identity headers go on every request, whatever the rules say.
    let sanitized_headers: Vec<String> = config
        .identity_headers
        .iter()
        .filter(|name| !headers.values(name).is_empty())
        .cloned()
        .collect();
    let Some(Requirement::Provider(provider_id)) = requirement_for(&config.rules, path) else {
        return Start::Decided(Verdict::Allow(RequestMutations {
            remove_headers: sanitized_headers,
            ..RequestMutations::default()
        }));
    };
    // The realm names the request in refusals; built only when one is needed.
    let deny = |error| Start::Decided(Verdict::Deny(LocalReply::for_error(error, &realm(headers))));
    let Some(provider) = config.providers.get(*provider_id) else {
        // Rules are compiled against the provider list, so this cannot happen; refuse rather than admit.
        return deny(AuthError::VerificationFails);
    };
    let extracted = extract_tokens(&provider.locations, headers, path);
    if extracted.is_empty() {
        return deny(AuthError::Missing);
    }
    let mut tokens = Vec::with_capacity(extracted.len());
    for token in extracted {
        let state = match caches.get(*provider_id, &token.raw, now) {
            Some(cached) => TokenState::Cached(cached),
            None => match check_token(&token.raw, provider, now) {
                Ok(checked) => TokenState::Checked(Box::new(checked)),
                Err(error) => return deny(error),
            },
        };
        tokens.push(PendingToken {
            raw: token.raw,
            source: token.source,
            state,
        });
    }
    let all_cached = tokens
        .iter()
        .all(|t| matches!(t.state, TokenState::Cached(_)));
    let pending = PendingAuth {
        provider: *provider_id,
        tokens,
        // A request decided from the cache is admitted: it needs no realm.
        realm: if all_cached {
            String::new()
        } else {
            realm(headers)
        },
        path: path.to_vec(),
        sanitized_headers,
    };
    if all_cached {
        return Start::Decided(pending.finish(config, &Jwks::default(), caches));
    }
    Start::NeedsKeys(pending)
}

impl PendingAuth {
    /// Checks every token's signature against `jwks` (cached tokens need none); all must pass. On
    /// success the verdict carries the claim headers to set and the token locations to strip, and the
    /// newly verified tokens go into `caches`.
    pub fn finish(self, config: &FilterConfig, jwks: &Jwks, caches: &mut TokenCaches) -> Verdict {
        let Some(provider) = config.providers.get(self.provider) else {
            return self.fail(AuthError::VerificationFails);
        };
        let mut mutations = RequestMutations {
            remove_headers: self.sanitized_headers.clone(),
            ..RequestMutations::default()
        };
        let mut new_path = self.path.clone();
        for token in &self.tokens {
            let verdict = match &token.state {
                TokenState::Cached(verdict) => verdict.clone(),
                TokenState::Checked(checked) => match checked.verify_signature(jwks) {
                    Ok(verified) => {
                        let verdict = Rc::new(cached_verdict(provider, &verified));
                        let valid_until = verified.expires_at().map_or(u64::MAX, |exp| {
                            exp.saturating_add(provider.clock_skew_seconds)
                        });
                        caches.put(self.provider, &token.raw, verdict.clone(), valid_until);
                        verdict
                    }
                    Err(error) => return self.fail(error),
                },
            };
            mutations
                .set_headers
                .extend(verdict.set_headers.iter().cloned());
            if !provider.forward {
                match &token.source {
                    TokenSource::Header(name) => {
                        if !mutations.remove_headers.contains(name) {
                            mutations.remove_headers.push(name.clone());
                        }
                    }
                    TokenSource::Param(name) => new_path = path_without_param(&new_path, name),
                }
            }
        }
        if new_path != self.path {
            mutations.new_path = Some(new_path);
        }
        Verdict::Allow(mutations)
    }

    /// Whether a token names a kid that `jwks` does not have: the issuer may have published a new key
    /// since the last fetch, so a refetch can be worth waiting for.
    pub fn has_unknown_kid(&self, jwks: &Jwks) -> bool {
        self.tokens.iter().any(|token| match &token.state {
            TokenState::Cached(_) => false,
            TokenState::Checked(checked) => checked
                .kid()
                .is_some_and(|kid| !jwks.keys.iter().any(|key| key.kid.as_deref() == Some(kid))),
        })
    }

    /// The refusal for this request when its keys cannot be had (fetch failed or timed out), or any other
    /// error found after the request was paused.
    pub fn fail(&self, error: AuthError) -> Verdict {
        Verdict::Deny(LocalReply::for_error(error, &self.realm))
    }
}

/// The headers a verified token sets upstream: its claim_to_headers and forward_payload_header.
fn cached_verdict(provider: &Provider, verified: &VerifiedToken) -> CachedVerdict {
    let mut set_headers = Vec::new();
    for mapping in &provider.claim_to_headers {
        if let Some(value) = claim_header_value(&verified.payload, &mapping.claim_name) {
            set_headers.push((mapping.header_name.clone(), value));
        }
    }
    if let Some(header) = &provider.forward_payload_header {
        set_headers.push((header.clone(), verified.payload_segment.clone()));
    }
    CachedVerdict { set_headers }
}

fn first_value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_slice())
        .unwrap_or_default()
}

/// `<scheme>://<host><path>` of the request, as jwt_authn puts it in `WWW-Authenticate`; quotes,
/// backslashes and control characters are escaped or dropped so the challenge stays one well-formed header.
fn realm(headers: &[(String, Vec<u8>)]) -> String {
    let scheme = first_value(headers, ":scheme");
    let scheme: &[u8] = if scheme.is_empty() { b"http" } else { scheme };
    let mut raw = Vec::new();
    raw.extend_from_slice(scheme);
    raw.extend_from_slice(b"://");
    raw.extend_from_slice(first_value(headers, ":authority"));
    raw.extend_from_slice(first_value(headers, ":path"));
    let mut realm = String::with_capacity(raw.len());
    for ch in String::from_utf8_lossy(&raw).chars() {
        match ch {
            '"' | '\\' => {
                realm.push('\\');
                realm.push(ch);
            }
            c if c.is_control() => {}
            c => realm.push(c),
        }
    }
    realm
}
