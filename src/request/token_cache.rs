//! The verified-token cache: per worker and provider, the tokens whose signature already checked, so a
//! token seen again skips parsing and RSA. jwt_authn's `jwt_cache_config`, on by default here.
//!
//! Safety rules: the key is the whole token (a hash collision can never admit a different token); an
//! entry ends when its token expires (`exp` plus clock skew); a provider's entries are dropped whenever
//! its key set changes or goes stale; the cache is bounded per provider.
//!
//! Eviction is CLOCK (second chance): a provider's oldest entry goes first unless a hit marked it since
//! its last turn, in which case it goes to the back unmarked. A hit costs one flag, and under
//! Zipf-distributed users the busy ones stay: with 10,000 users (exponent 1) and 100 entries, 40 % of
//! lookups hit against 34 % for plain insertion order (`tools/measure/cache_model.rs`).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use smallvec::SmallVec;

use crate::config::{FilterConfig, Provider, ProviderId};
use crate::jwks::key_set::Jwks;
use crate::request::authenticator::ClaimHeaders;
use crate::request::claims::claim_headers;
use crate::verify::error::AuthError;
use crate::verify::token::{CheckedToken, VerifiedToken};
use crate::verify::Claims;

/// What a verified token contributes to the request: its claim headers, computed once, and its claims
/// (audiences of a requirement and a rule's authorization are checked against them on every use). Made
/// only from a [`VerifiedToken`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    set_headers: ClaimHeaders,
    payload: Rc<Claims>,
    /// `(name, payload JSON)` for the provider's payload_in_filter_state.
    filter_state: Option<(String, String)>,
}

impl VerifiedClaims {
    /// What `verified` contributes under `provider`: its claim_to_headers and forward_payload_header,
    /// and its payload for payload_in_filter_state.
    pub fn of(provider: &Provider, verified: &VerifiedToken) -> VerifiedClaims {
        VerifiedClaims {
            set_headers: claim_headers(provider, verified),
            filter_state: provider.payload_in_filter_state.as_ref().map(|name| {
                let json = serde_json::to_string(&verified.payload().to_map()).unwrap_or_default();
                (name.clone(), json)
            }),
            payload: verified.payload().clone(),
        }
    }

    /// The headers to add upstream.
    pub fn set_headers(&self) -> &[(Rc<str>, Rc<str>)] {
        &self.set_headers
    }

    /// The verified claims.
    pub fn payload(&self) -> &Claims {
        &self.payload
    }

    /// `(name, payload JSON)` for the provider's payload_in_filter_state.
    pub fn filter_state(&self) -> Option<&(String, String)> {
        self.filter_state.as_ref()
    }
}

/// A fast word-at-a-time hasher for token keys. SipHash would cost microseconds per ~1 KB token in
/// wasm; flooding resistance matters little here because the map is bounded (at most `capacity` entries
/// can collide) and every hit still compares the whole token.
///
/// Of a longer token only its last [`HASHED_TAIL_BYTES`] (and its length) are hashed: they are its
/// signature, which differs between any two tokens an issuer signed, and only verified tokens are ever
/// inserted. Tokens crafted to share a cached token's tail still meet at most the few entries whose
/// tails they share, each compared in full, so a hash collision can never admit a different token.
#[derive(Default)]
struct TokenHasher(u64);

/// How much of a token's end [`TokenHasher`] hashes: far more signature than a 64-bit hash can tell
/// apart, and a lookup or an insert costs the same for any token length.
const HASHED_TAIL_BYTES: usize = 64;

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let bytes = bytes
            .get(bytes.len().saturating_sub(HASHED_TAIL_BYTES)..)
            .unwrap_or(bytes);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The providers that verified a token before, with their verdicts: almost always one, kept inline.
pub type CacheHits = SmallVec<[(ProviderId, Rc<VerifiedClaims>); 1]>;

/// Token → its entries, one per provider that verified it (almost always one, kept inline: an insert
/// allocates nothing for it).
type TokenMap = HashMap<Rc<[u8]>, SmallVec<[Entry; 1]>, BuildHasherDefault<TokenHasher>>;

struct Entry {
    provider: ProviderId,
    verdict: Rc<VerifiedClaims>,
    /// Unix seconds; the entry is used while `now <= valid_until`.
    valid_until: u64,
    /// Hit since the provider's eviction hand last passed it: it gets a second chance. A cell, so a hit
    /// marks it through the map's shared reference.
    referenced: Cell<bool>,
}

/// The verdicts of a token's entries, each marked as hit (for CLOCK eviction).
fn mark_hits(entries: &[Entry]) -> CacheHits {
    entries
        .iter()
        .map(|entry| {
            entry.referenced.set(true);
            (entry.provider, entry.verdict.clone())
        })
        .collect()
}

/// One provider's bounds and its tokens, oldest first.
struct ProviderShare {
    capacity: usize,
    max_token_bytes: usize,
    /// Entries of this provider in the map.
    len: usize,
    /// Keys of this provider's entries, oldest first; keys of entries dropped on expiry may linger
    /// until they reach the front.
    order: VecDeque<Rc<[u8]>>,
}

/// How much work the request path did, for tests and measurements: cache lookups (one per distinct
/// token a request carries), parses, claim checks and signature checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkCounts {
    pub cache_lookups: u64,
    pub parses: u64,
    pub claim_checks: u64,
    pub signature_checks: u64,
}

/// The verified tokens of every provider, each provider bounded by its `jwt_cache_config`. One map
/// for all providers, so a token is found with one lookup whatever the number of providers, and the
/// providers it was verified for come with it.
pub struct TokenCaches {
    entries: TokenMap,
    per_provider: Vec<ProviderShare>,
    /// Whether any provider caches at all (a lookup is skipped otherwise).
    enabled: bool,
    counts: WorkCounts,
    /// Lookups that found the token, and that did not, since [`TokenCaches::take_lookups`]. Counted
    /// here and published on the tick, as jwt_authn's `jwt_cache_hit` and `jwt_cache_miss`, without a
    /// host call per request.
    hits: u64,
    misses: u64,
}

impl TokenCaches {
    pub fn for_config(config: &FilterConfig) -> TokenCaches {
        TokenCaches::with_bounds(
            config
                .providers
                .iter()
                .map(|p| (p.jwt_cache_size, p.jwt_max_cached_token_bytes)),
        )
    }

    /// Caches sized per provider: `(capacity, max_token_bytes)`; capacity 0 caches nothing.
    pub fn with_bounds(bounds: impl IntoIterator<Item = (usize, usize)>) -> TokenCaches {
        let per_provider: Vec<ProviderShare> = bounds
            .into_iter()
            .map(|(capacity, max_token_bytes)| ProviderShare {
                capacity,
                max_token_bytes,
                len: 0,
                order: VecDeque::new(),
            })
            .collect();
        TokenCaches {
            enabled: per_provider.iter().any(|p| p.capacity > 0),
            entries: TokenMap::default(),
            per_provider,
            counts: WorkCounts::default(),
            hits: 0,
            misses: 0,
        }
    }

    /// A cache that never holds anything (for callers that do not cache).
    pub fn disabled() -> TokenCaches {
        TokenCaches::with_bounds([])
    }

    /// Every provider's still valid verdict for exactly this token, with one lookup. Expired entries
    /// are dropped.
    pub fn lookup(&mut self, token: &[u8], now: u64) -> CacheHits {
        self.lookup_shared(token, now).1
    }

    /// [`TokenCaches::lookup`], and on a hit the cache's own copy of the token (its key), so a request
    /// whose token is cached shares that copy instead of making one.
    pub fn lookup_shared(&mut self, token: &[u8], now: u64) -> (Option<Rc<[u8]>>, CacheHits) {
        if !self.enabled {
            return (None, CacheHits::new());
        }
        self.counts.cache_lookups += 1;
        // The usual hit, every entry still valid, takes one lookup through the shared reference: the
        // map has no mutable access that also hands out the key.
        if let Some((key, entries)) = self.entries.get_key_value(token) {
            if entries.iter().all(|entry| now <= entry.valid_until) {
                let found = mark_hits(entries);
                self.hits = self.hits.saturating_add(1);
                return (Some(key.clone()), found);
            }
        }
        let Some(entries) = self.entries.get_mut(token) else {
            self.misses = self.misses.saturating_add(1);
            return (None, CacheHits::new());
        };
        let per_provider = &mut self.per_provider;
        entries.retain(|entry| {
            let valid = now <= entry.valid_until;
            if !valid {
                if let Some(share) = per_provider.get_mut(entry.provider) {
                    share.len = share.len.saturating_sub(1);
                }
            }
            valid
        });
        let found = mark_hits(entries);
        if entries.is_empty() {
            self.entries.remove(token);
        }
        if found.is_empty() {
            self.misses = self.misses.saturating_add(1);
        } else {
            self.hits = self.hits.saturating_add(1);
        }
        // Some entries expired: the request makes its own copy, as on a miss.
        (None, found)
    }

    /// The (hits, misses) counted since the last call, which starts the count again.
    pub fn take_lookups(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.hits),
            std::mem::take(&mut self.misses),
        )
    }

    /// `provider`'s still valid verdict for exactly this token (the request path asks for every
    /// provider's at once with [`TokenCaches::lookup`]).
    #[cfg(test)]
    pub fn get(
        &mut self,
        provider: ProviderId,
        token: &[u8],
        now: u64,
    ) -> Option<Rc<VerifiedClaims>> {
        self.lookup(token, now)
            .into_iter()
            .find_map(|(p, verdict)| (p == provider).then_some(verdict))
    }

    /// Remembers that `provider` verified `token`, until `valid_until` (Unix seconds). The entry's key
    /// is `token` itself, shared with the request that read it, not a copy.
    pub fn put(
        &mut self,
        provider: ProviderId,
        token: &Rc<[u8]>,
        verdict: Rc<VerifiedClaims>,
        valid_until: u64,
    ) {
        let Some(share) = self.per_provider.get_mut(provider) else {
            return;
        };
        if share.capacity == 0 || token.len() > share.max_token_bytes {
            return;
        }
        let new_entry = Entry {
            provider,
            verdict,
            valid_until,
            referenced: Cell::new(false),
        };
        if let Some(entries) = self.entries.get_mut(&**token) {
            if let Some(entry) = entries.iter_mut().find(|e| e.provider == provider) {
                *entry = new_entry;
                return;
            }
        }
        self.make_room(provider);
        // Another provider's entry may hold an equal key already: the map keeps that one.
        self.insert(provider, Rc::clone(token), new_entry);
    }

    /// Drops `provider`'s oldest unmarked entries until one more fits; a marked one loses its mark and
    /// goes to the back. Ends: each turn drops an entry, clears a mark or drops a stale key.
    fn make_room(&mut self, provider: ProviderId) {
        let Some(share) = self.per_provider.get_mut(provider) else {
            return;
        };
        while share.len >= share.capacity {
            let Some(oldest) = share.order.pop_front() else {
                break;
            };
            // Taken out with one lookup, and put back only when something of it stays (a marked entry,
            // another provider's): a full cache evicts on every insert.
            let Some((key, mut entries)) = self.entries.remove_entry(&oldest) else {
                continue;
            };
            if let Some(entry) = entries
                .iter_mut()
                .find(|e| e.provider == provider && e.referenced.get())
            {
                entry.referenced.set(false);
                share.order.push_back(oldest);
                self.entries.insert(key, entries);
                continue;
            }
            let before = entries.len();
            entries.retain(|e| e.provider != provider);
            if entries.len() < before {
                share.len = share.len.saturating_sub(1);
            }
            if !entries.is_empty() {
                self.entries.insert(key, entries);
            }
        }
        if share.order.len() >= share.capacity.saturating_mul(2) {
            let entries = &self.entries;
            share.order.retain(|k| {
                entries
                    .get(k)
                    .is_some_and(|list| list.iter().any(|e| e.provider == provider))
            });
        }
    }

    fn insert(&mut self, provider: ProviderId, key: Rc<[u8]>, entry: Entry) {
        if let Some(share) = self.per_provider.get_mut(provider) {
            share.len += 1;
            share.order.push_back(key.clone());
        }
        self.entries.entry(key).or_default().push(entry);
    }

    /// Forgets a provider's tokens: its keys changed or went stale.
    pub fn clear(&mut self, provider: ProviderId) {
        let Some(share) = self.per_provider.get_mut(provider) else {
            return;
        };
        for key in share.order.drain(..) {
            if let Some(entries) = self.entries.get_mut(&key) {
                entries.retain(|e| e.provider != provider);
                if entries.is_empty() {
                    self.entries.remove(&key);
                }
            }
        }
        share.len = 0;
    }

    /// How many tokens `provider` has cached.
    pub fn len(&self, provider: ProviderId) -> usize {
        self.per_provider.get(provider).map_or(0, |share| share.len)
    }

    /// The work counted so far.
    pub fn work(&self) -> WorkCounts {
        self.counts
    }

    pub(crate) fn count_parse(&mut self) {
        self.counts.parses += 1;
    }

    pub(crate) fn count_claim_check(&mut self) {
        self.counts.claim_checks += 1;
    }

    /// `checked`'s signature against `jwks`, counted.
    pub(crate) fn checked_signature(
        &mut self,
        checked: &CheckedToken,
        jwks: &Jwks,
    ) -> Result<VerifiedToken, AuthError> {
        self.counts.signature_checks += 1;
        checked.verify_signature(jwks)
    }
}

/// Whole-token keys, expiry, bounds, oldest-first eviction. Here rather than in tests/ because a
/// [`VerifiedClaims`] is made only by verification outside this module.
#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::{TokenCaches, VerifiedClaims};
    use crate::verify::Claims;

    fn key(token: &[u8]) -> Rc<[u8]> {
        Rc::from(token)
    }

    fn verdict(sub: &str) -> Rc<VerifiedClaims> {
        Rc::new(VerifiedClaims {
            set_headers: smallvec::smallvec![("x-jwt-sub".into(), sub.into())],
            payload: Rc::new(Claims::from_json(b"{}".to_vec()).unwrap()),
            filter_state: None,
        })
    }

    #[test]
    fn hits_need_the_exact_token_and_end_at_valid_until() {
        let mut cache = TokenCaches::with_bounds([(10, 4096)]);
        cache.put(0, &key(b"a.b.c"), verdict("alice"), 100);
        assert_eq!(
            cache.get(0, b"a.b.c", 100).unwrap().set_headers[0]
                .1
                .as_ref(),
            "alice"
        );
        assert!(cache.get(0, b"a.b.C", 50).is_none());
        assert!(cache.get(0, b"a.b.c ", 50).is_none());
        assert!(cache.get(0, b"a.b.c", 101).is_none(), "expired");
        assert_eq!(cache.len(0), 0, "expired entries are dropped on lookup");
    }

    #[test]
    fn the_oldest_entries_go_first_and_bounds_hold() {
        let mut cache = TokenCaches::with_bounds([(3, 8)]);
        for token in [&b"t1"[..], b"t2", b"t3", b"t4"] {
            cache.put(0, &key(token), verdict("x"), u64::MAX);
        }
        assert_eq!(cache.len(0), 3);
        assert!(cache.get(0, b"t1", 0).is_none(), "oldest evicted");
        assert!(cache.get(0, b"t4", 0).is_some());
        cache.put(0, &key(b"too-long-token"), verdict("x"), u64::MAX);
        assert!(
            cache.get(0, b"too-long-token", 0).is_none(),
            "over jwt_max_token_size"
        );
        for i in 0..1000u32 {
            cache.put(0, &key(&i.to_be_bytes()), verdict("x"), 0);
            let _ = cache.get(0, &i.to_be_bytes(), 1);
        }
        assert!(cache.len(0) <= 3);
        assert!(cache.entries.len() <= 3);
        let mut off = TokenCaches::with_bounds([(0, 4096)]);
        off.put(0, &key(b"t"), verdict("x"), u64::MAX);
        assert!(off.get(0, b"t", 0).is_none(), "size 0 caches nothing");
    }

    #[test]
    fn a_hit_gives_an_entry_a_second_chance() {
        let mut cache = TokenCaches::with_bounds([(3, 8)]);
        for token in [&b"t2"[..], b"t3", b"t4"] {
            cache.put(0, &key(token), verdict("x"), u64::MAX);
        }
        assert!(cache.get(0, b"t2", 0).is_some() && cache.get(0, b"t3", 0).is_some());
        cache.put(0, &key(b"t5"), verdict("x"), u64::MAX);
        assert!(
            cache.get(0, b"t4", 0).is_none(),
            "the unreferenced entry went"
        );
        assert!(cache.get(0, b"t2", 0).is_some() && cache.get(0, b"t3", 0).is_some());
        cache.put(0, &key(b"t6"), verdict("x"), u64::MAX);
        cache.put(0, &key(b"t7"), verdict("x"), u64::MAX);
        assert_eq!(cache.len(0), 3);
        assert_eq!(cache.take_lookups(), (4, 1));
        assert_eq!(cache.take_lookups(), (0, 0), "the count starts again");
        // An expired token that comes back is one entry, whatever stale keys it left.
        let mut cache = TokenCaches::with_bounds([(2, 8)]);
        for round in 0..50u64 {
            cache.put(0, &key(b"t"), verdict("x"), round);
            assert!(cache.get(0, b"t", round + 1).is_none());
            cache.put(0, &key(b"u"), verdict("x"), u64::MAX);
        }
        assert!(cache.len(0) <= 2 && cache.per_provider[0].order.len() <= 4);
    }

    #[test]
    fn providers_share_one_lookup_and_keep_their_own_bounds() {
        let mut cache = TokenCaches::with_bounds([(2, 64), (1, 64)]);
        cache.put(0, &key(b"t"), verdict("zero"), u64::MAX);
        cache.put(1, &key(b"t"), verdict("one"), u64::MAX);
        let found = cache.lookup(b"t", 0);
        assert_eq!(found.len(), 2);
        assert_eq!(cache.work().cache_lookups, 1);
        // Provider 1 holds one token: a second evicts its first, provider 0's entry stays.
        cache.put(1, &key(b"u"), verdict("one"), u64::MAX);
        assert!(cache.get(1, b"t", 0).is_none());
        assert_eq!(
            cache.get(0, b"t", 0).unwrap().set_headers[0].1.as_ref(),
            "zero"
        );
        cache.clear(0);
        assert_eq!(cache.len(0), 0);
        assert!(cache.get(0, b"t", 0).is_none());
        assert!(cache.get(1, b"u", 0).is_some());
        assert_eq!(cache.len(1), 1);
    }
}
