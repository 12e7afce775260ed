//! The per-request steps, free of any host call: pick the rule, find the tokens its requirement asks
//! for (`request/candidates.rs`), check them and evaluate the requirement tree
//! (`request/evaluation.rs`), authorize and say what to do with the request
//! (`request/conclusion.rs`). The proxy-wasm glue (`glue/http_context.rs`) only reads headers,
//! waits for keys and applies the verdict.
//!
//! A request is evaluated twice at most: first without keys ([`start`]: cached tokens, claim checks),
//! which decides it whenever the signatures cannot change the outcome; then, if signatures matter, with
//! the providers' keys ([`PendingAuth::finish`]), possibly in a later callback.

use std::rc::Rc;

use smallvec::SmallVec;

use crate::config::{FilterConfig, ProviderId};
use crate::jwks::key_set::Jwks;
use crate::request::candidates::RequestTokens;
use crate::request::evaluation::{Admitted, CandidateState, Evaluation, Leaves, Outcome};
use crate::request::headers::{HeaderPair, RequestHeaders};
use crate::request::reply::{
    escape_quoted, metadata_document, refusal, Answer, Failure, LocalReply,
};
use crate::request::rule_match::RequestView;
use crate::request::token_cache::TokenCaches;
use crate::verify::error::AuthError;

/// Header changes to make before the request goes upstream, applied in this order: removals, then sets,
/// then the new path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMutations {
    pub remove_headers: HeaderNames,
    pub set_headers: ClaimHeaders,
    pub new_path: Option<Vec<u8>>,
    /// Report-only: the reasons this request would have been refused for (logged and counted).
    pub would_deny: Vec<&'static str>,
    /// Filter state to set for later filters: (name, verified payload JSON).
    pub filter_state: Vec<(String, String)>,
    /// DPoP proofs of the admitted tokens, whose `jti` (and nonce) the worker checks before the request
    /// goes on.
    pub dpop_proofs: Vec<crate::request::dpop::ProofRecord>,
    /// With `dpop_proofs`: the rule's `resource_metadata` URL, for the challenge of a refusal those
    /// checks make after the rule is left behind.
    pub resource_metadata: Option<String>,
}

impl RequestMutations {
    /// The names of the headers removed, in order.
    pub fn removed(&self) -> Vec<&str> {
        self.remove_headers.iter().map(|name| &**name).collect()
    }

    /// The headers added, as (name, value), in order.
    pub fn added(&self) -> Vec<(&str, &str)> {
        self.set_headers
            .iter()
            .map(|(name, value)| (&**name, &**value))
            .collect()
    }
}

/// Names of headers to remove: the token's header, client copies of identity headers (usually one or
/// two, inline; each shared with the configuration).
pub type HeaderNames = SmallVec<[Rc<str>; 2]>;

/// (name, value) of headers to add upstream, each shared with the verified-token cache's entry.
pub type ClaimHeaders = SmallVec<[(Rc<str>, Rc<str>); 2]>;

/// What becomes of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow(RequestMutations),
    Deny(LocalReply),
    /// Answered by the filter itself, not refused: the protected-resource metadata document.
    Answer(Answer),
}

/// The outcome of the first look at a request.
// A pending request holds its tokens and candidates inline (a request's usual one or two need no
// allocation), so this variant is the larger; a `Start` is matched at once and never stored, and boxing
// it would put an allocation back on the path that waits for keys.
#[allow(clippy::large_enum_variant)]
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
    /// The request's tokens, as read on the first look.
    tokens: RequestTokens,
    /// Tokens found per requirement leaf reached.
    leaves: Leaves,
    /// `<scheme>://<authority><path>` as received: the path, and the realm of a refusal (escaped only
    /// if there is one), in one copy.
    origin_and_path: Vec<u8>,
    /// Where the path starts in `origin_and_path`.
    path_start: usize,
    sanitized_headers: HeaderNames,
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
    start_on_route(config, headers, None, now, caches)
}

/// [`start`] for a request on the Envoy route named `route` (`xds.route_name`; `None` when the host
/// gives none). A route named in `per_route_config` gets that entry's rule instead of `rules`, as
/// jwt_authn's `PerRouteConfig` replaces them; any other route goes by `rules`.
pub fn start_on_route(
    config: &FilterConfig,
    headers: &[HeaderPair<'_>],
    route: Option<&[u8]>,
    now: u64,
    caches: &mut TokenCaches,
) -> Start {
    start_on_connection(config, headers, route, None, now, caches)
}

/// [`start_on_route`] on a connection whose TLS peer certificate has the SHA-256 digest
/// `peer_certificate_digest` (Envoy's `connection.sha256_peer_certificate_digest`, lowercase hex; `None`
/// or empty without one), for providers whose tokens are `certificate_bound` to it.
pub fn start_on_connection(
    config: &FilterConfig,
    headers: &[HeaderPair<'_>],
    route: Option<&[u8]>,
    peer_certificate_digest: Option<&[u8]>,
    now: u64,
    caches: &mut TokenCaches,
) -> Start {
    let full_path = first_value(headers, ":path");
    // Client copies of identity headers go on every request, whatever the rules say.
    let sanitized_headers: HeaderNames = config
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
    if let Some(document) = metadata_request(config, headers, full_path) {
        return Start::Decided(Verdict::Answer(metadata_document(document)));
    }
    if config.bypass_cors_preflight && is_cors_preflight(headers) {
        return pass_through();
    }
    let request = RequestView::new(full_path, headers);
    let route_rule = route
        .and_then(|name| std::str::from_utf8(name).ok())
        .and_then(|name| config.route_rules.get(name))
        .and_then(|&index| Some((index, config.rules.get(index)?)));
    let Some((rule_index, rule)) = route_rule.or_else(|| {
        config
            .rules
            .iter()
            .take(config.path_rule_count)
            .enumerate()
            .find(|(_, rule)| rule.route_match.matches(&request))
    }) else {
        return pass_through();
    };
    let Some(requirement) = &rule.requirement else {
        return pass_through();
    };
    let mut evaluation = Evaluation {
        config,
        request: Some((headers, full_path, now)),
        peer_certificate_digest,
        keys: None,
        caches,
        tokens: RequestTokens::new(config.provider_index.location_count()),
        leaves: Leaves::default(),
        admitted: Admitted::new(),
        would_deny: Vec::new(),
    };
    let outcome = evaluation.evaluate(requirement);
    if outcome == Outcome::Pending {
        return Start::NeedsKeys(PendingAuth {
            rule: rule_index,
            tokens: evaluation.tokens,
            leaves: evaluation.leaves,
            origin_and_path: origin_and_path(headers),
            path_start: origin_len(headers),
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
        for candidate in &self.leaves.candidates {
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
        self.leaves.candidates.iter().any(|candidate| {
            match (&candidate.state, candidate.provider) {
                (CandidateState::Unsigned(checked), Some(p)) if p == provider => {
                    checked.kid().is_some_and(|kid| !jwks.has_kid(kid))
                }
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
                &self.realm(),
                None,
            ));
        };
        let Some(requirement) = &rule.requirement else {
            return Verdict::Deny(refusal(
                config,
                Failure::Auth(AuthError::VerificationFails),
                &self.realm(),
                None,
            ));
        };
        let mut evaluation = Evaluation {
            config,
            request: None,
            peer_certificate_digest: None,
            keys: Some(keys_of),
            caches,
            tokens: std::mem::take(&mut self.tokens),
            leaves: std::mem::take(&mut self.leaves),
            admitted: Admitted::new(),
            would_deny: Vec::new(),
        };
        let outcome = evaluation.evaluate(requirement);
        let sanitized_headers = std::mem::take(&mut self.sanitized_headers);
        let path = self
            .origin_and_path
            .get(self.path_start..)
            .unwrap_or_default();
        evaluation.verdict(rule, outcome, path, sanitized_headers, &|| self.realm())
    }

    /// The realm of a refusal, from the request as read on the first look.
    fn realm(&self) -> String {
        let end = self
            .path_start
            .saturating_add(REALM_MAX_PATH_BYTES)
            .min(self.origin_and_path.len());
        escape_quoted(&String::from_utf8_lossy(
            self.origin_and_path.get(..end).unwrap_or_default(),
        ))
    }
}

/// The metadata document, when the request is a GET of its well-known path (RFC 9728 §3.1; the query
/// is ignored).
fn metadata_request<'c>(
    config: &'c FilterConfig,
    headers: &[HeaderPair<'_>],
    full_path: &[u8],
) -> Option<&'c str> {
    let resource = config.protected_resource.as_ref()?;
    let path = full_path.split(|&b| b == b'?').next().unwrap_or(full_path);
    (first_value(headers, ":method") == b"GET" && path == resource.well_known_path.as_bytes())
        .then_some(resource.document.as_str())
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
    let mut raw = origin_and_path(headers);
    // jwt_authn (Envoy's buildOriginalUri) keeps at most 256 bytes of the path.
    raw.truncate(origin_len(headers).saturating_add(REALM_MAX_PATH_BYTES));
    escape_quoted(&String::from_utf8_lossy(&raw))
}

/// The request's scheme (`http` when it has none).
fn scheme<'a>(headers: &[HeaderPair<'a>]) -> &'a [u8] {
    let scheme = first_value(headers, ":scheme");
    if scheme.is_empty() {
        b"http"
    } else {
        scheme
    }
}

/// `<scheme>://<authority><path>`, unescaped and whole.
fn origin_and_path(headers: &[HeaderPair<'_>]) -> Vec<u8> {
    let authority = first_value(headers, ":authority");
    let path = first_value(headers, ":path");
    let mut raw = Vec::with_capacity(origin_len(headers) + path.len());
    raw.extend_from_slice(scheme(headers));
    raw.extend_from_slice(b"://");
    raw.extend_from_slice(authority);
    raw.extend_from_slice(path);
    raw
}

/// The length of `<scheme>://<authority>`.
fn origin_len(headers: &[HeaderPair<'_>]) -> usize {
    scheme(headers).len() + 3 + first_value(headers, ":authority").len()
}
