//! The verified-token cache: per worker and provider, the tokens whose signature already checked, so a
//! token seen again skips parsing and RSA. jwt_authn's `jwt_cache_config`, on by default here.
//!
//! Safety rules: the key is the whole token (a hash collision can never admit a different token); an
//! entry ends when its token expires (`exp` plus clock skew); a provider's entries are dropped whenever
//! its key set changes or goes stale; the cache is bounded and forgets its oldest entries first.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::config::{FilterConfig, Provider, ProviderId};
use crate::request::claims::claim_headers;
use crate::verify::token::VerifiedToken;

/// What a verified token contributes to the request: its claim headers, computed once, and its claims
/// (audiences of a requirement and a rule's authorization are checked against them on every use). Made
/// only from a [`VerifiedToken`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    set_headers: Vec<(String, String)>,
    payload: Rc<Map<String, Value>>,
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
                let json = serde_json::to_string(&**verified.payload()).unwrap_or_default();
                (name.clone(), json)
            }),
            payload: verified.payload().clone(),
        }
    }

    /// The headers to add upstream.
    pub fn set_headers(&self) -> &[(String, String)] {
        &self.set_headers
    }

    /// The verified claims.
    pub fn payload(&self) -> &Map<String, Value> {
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
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
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

type TokenMap = HashMap<Rc<[u8]>, Entry, BuildHasherDefault<TokenHasher>>;

struct Entry {
    verdict: Rc<VerifiedClaims>,
    /// Unix seconds; the entry is used while `now <= valid_until`.
    valid_until: u64,
    /// Set by a hit; the entry then survives its next turn at the front of the queue.
    referenced: bool,
    /// Which insertion of this token the entry is: a queue slot of an earlier one (the token expired and
    /// came back) is stale.
    generation: u64,
}

/// One provider's cache. Eviction is CLOCK (second chance): the oldest entry goes first unless a hit
/// marked it since its last turn, in which case it goes to the back unmarked. A hit costs one flag, and
/// under Zipf-distributed users the busy ones stay: with 10,000 users (exponent 1) and 100 entries,
/// 40 % of lookups hit against 34 % for plain insertion order (`tools/measure/cache_model.rs`).
pub struct TokenCache {
    capacity: usize,
    max_token_bytes: usize,
    entries: TokenMap,
    order: VecDeque<(Rc<[u8]>, u64)>,
    next_generation: u64,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens of at most `max_token_bytes` each; capacity 0 caches
    /// nothing.
    pub fn new(capacity: usize, max_token_bytes: usize) -> TokenCache {
        TokenCache {
            capacity,
            max_token_bytes,
            entries: TokenMap::default(),
            order: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// The cached verdict for exactly this token, if it is still valid at `now` (Unix seconds).
    pub fn get(&mut self, token: &[u8], now: u64) -> Option<Rc<VerifiedClaims>> {
        let entry = self.entries.get_mut(token)?;
        if now <= entry.valid_until {
            entry.referenced = true;
            return Some(entry.verdict.clone());
        }
        self.entries.remove(token);
        None
    }

    /// Remembers a verified token until `valid_until` (Unix seconds).
    pub fn put(&mut self, token: &[u8], verdict: Rc<VerifiedClaims>, valid_until: u64) {
        if self.capacity == 0 || token.len() > self.max_token_bytes {
            return;
        }
        if let Some(entry) = self.entries.get_mut(token) {
            entry.verdict = verdict;
            entry.valid_until = valid_until;
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some((oldest, generation)) = self.order.pop_front() else {
                break;
            };
            match self.entries.get_mut(&oldest) {
                Some(entry) if entry.generation == generation && entry.referenced => {
                    entry.referenced = false;
                    self.order.push_back((oldest, generation));
                }
                Some(entry) if entry.generation == generation => {
                    self.entries.remove(&oldest);
                }
                // A slot of an entry that expired (or of an earlier insertion of the same token).
                _ => {}
            }
        }
        // Slots of expired entries may linger in `order`; they are dropped when they reach the front,
        // or here when they pile up.
        if self.order.len() >= self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).is_some_and(|e| e.generation == *g));
        }
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let key: Rc<[u8]> = Rc::from(token);
        self.order.push_back((key.clone(), generation));
        self.entries.insert(
            key,
            Entry {
                verdict,
                valid_until,
                referenced: false,
                generation,
            },
        );
    }

    /// Forgets every token (the provider's keys changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One `TokenCache` per provider, sized by each provider's `jwt_cache_config`.
pub struct TokenCaches {
    per_provider: Vec<TokenCache>,
    /// Lookups in caches that hold tokens (capacity above 0) since [`TokenCaches::take_lookups`]:
    /// found, not found. Counted here and published on the tick, as jwt_authn's `jwt_cache_hit` and
    /// `jwt_cache_miss`, without a host call per request.
    hits: u64,
    misses: u64,
}

impl TokenCaches {
    pub fn for_config(config: &FilterConfig) -> TokenCaches {
        TokenCaches {
            per_provider: config
                .providers
                .iter()
                .map(|p| TokenCache::new(p.jwt_cache_size, p.jwt_max_cached_token_bytes))
                .collect(),
            hits: 0,
            misses: 0,
        }
    }

    /// A cache that never holds anything (for callers that do not cache).
    pub fn disabled() -> TokenCaches {
        TokenCaches {
            per_provider: Vec::new(),
            hits: 0,
            misses: 0,
        }
    }

    pub fn get(
        &mut self,
        provider: ProviderId,
        token: &[u8],
        now: u64,
    ) -> Option<Rc<VerifiedClaims>> {
        let cache = self.per_provider.get_mut(provider)?;
        if cache.capacity == 0 {
            return None;
        }
        let found = cache.get(token, now);
        if found.is_some() {
            self.hits = self.hits.saturating_add(1);
        } else {
            self.misses = self.misses.saturating_add(1);
        }
        found
    }

    /// The (hits, misses) counted since the last call, which starts the count again.
    pub fn take_lookups(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.hits),
            std::mem::take(&mut self.misses),
        )
    }

    pub fn put(
        &mut self,
        provider: ProviderId,
        token: &[u8],
        verdict: Rc<VerifiedClaims>,
        valid_until: u64,
    ) {
        if let Some(cache) = self.per_provider.get_mut(provider) {
            cache.put(token, verdict, valid_until);
        }
    }

    /// Forgets a provider's tokens: its keys changed or went stale.
    pub fn clear(&mut self, provider: ProviderId) {
        if let Some(cache) = self.per_provider.get_mut(provider) {
            cache.clear();
        }
    }

    pub fn len(&self, provider: ProviderId) -> usize {
        self.per_provider.get(provider).map_or(0, TokenCache::len)
    }
}

/// Whole-token keys, expiry, bounds, oldest-first eviction. Here rather than in tests/ because a
/// [`VerifiedClaims`] is made only by verification outside this module.
#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::{TokenCache, VerifiedClaims};

    fn verdict(sub: &str) -> Rc<VerifiedClaims> {
        Rc::new(VerifiedClaims {
            set_headers: vec![("x-jwt-sub".into(), sub.into())],
            payload: Rc::new(serde_json::Map::new()),
            filter_state: None,
        })
    }

    #[test]
    fn hits_need_the_exact_token_and_end_at_valid_until() {
        let mut cache = TokenCache::new(10, 4096);
        cache.put(b"a.b.c", verdict("alice"), 100);
        assert_eq!(cache.get(b"a.b.c", 100).unwrap().set_headers[0].1, "alice");
        assert!(cache.get(b"a.b.C", 50).is_none());
        assert!(cache.get(b"a.b.c ", 50).is_none());
        assert!(cache.get(b"a.b.c", 101).is_none(), "expired");
        assert!(cache.is_empty(), "expired entries are dropped on lookup");
    }

    #[test]
    fn the_oldest_entries_go_first_and_bounds_hold() {
        let mut cache = TokenCache::new(3, 8);
        for token in [&b"t1"[..], b"t2", b"t3", b"t4"] {
            cache.put(token, verdict("x"), u64::MAX);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(b"t1", 0).is_none(), "oldest evicted");
        assert!(cache.get(b"t4", 0).is_some());
        cache.put(b"too-long-token", verdict("x"), u64::MAX);
        assert!(
            cache.get(b"too-long-token", 0).is_none(),
            "over jwt_max_token_size"
        );
        for i in 0..1000u32 {
            cache.put(&i.to_be_bytes(), verdict("x"), 0);
            let _ = cache.get(&i.to_be_bytes(), 1);
        }
        assert!(cache.len() <= 3);
        // A hit gives an entry a second chance: t2 and t3 were looked up, so t4 goes when t5 comes.
        let mut cache = TokenCache::new(3, 8);
        for token in [&b"t2"[..], b"t3", b"t4"] {
            cache.put(token, verdict("x"), u64::MAX);
        }
        assert!(cache.get(b"t2", 0).is_some() && cache.get(b"t3", 0).is_some());
        cache.put(b"t5", verdict("x"), u64::MAX);
        assert!(cache.get(b"t4", 0).is_none(), "the unreferenced entry went");
        assert!(cache.get(b"t2", 0).is_some() && cache.get(b"t3", 0).is_some());
        cache.put(b"t6", verdict("x"), u64::MAX);
        cache.put(b"t7", verdict("x"), u64::MAX);
        assert_eq!(cache.len(), 3);
        // An expired token that comes back is one entry, whatever stale slots it left.
        let mut cache = TokenCache::new(2, 8);
        for round in 0..50u64 {
            cache.put(b"t", verdict("x"), round);
            assert!(cache.get(b"t", round + 1).is_none());
            cache.put(b"u", verdict("x"), u64::MAX);
        }
        assert!(cache.len() <= 2 && cache.order.len() <= 4);
        let mut off = TokenCache::new(0, 4096);
        off.put(b"t", verdict("x"), u64::MAX);
        assert!(off.get(b"t", 0).is_none(), "size 0 caches nothing");
    }
}
