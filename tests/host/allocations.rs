//! How many heap allocations a request whose token is in the verified-token cache costs in the request
//! logic. Each one is a call into the module's allocator in Envoy, where the hot path's whole budget is
//! a few microseconds: the counts here keep that path from growing new ones unnoticed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;

use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::jwks::parse_local_jwks;
use jwt_authn_wasm::request::{start, HeaderPair, Start, TokenCaches, Verdict};
use serde_json::json;

use crate::common::fixtures::{self, Keys};

/// The system allocator, counting the allocations of the thread that asked for counting (tests run
/// on several threads at once).
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call goes to `System` unchanged; counting touches only thread-local cells.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The allocations `work` makes on this thread, and what it returns.
fn allocations_of<T>(work: impl FnOnce() -> T) -> (usize, T) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let result = work();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get), result)
}

/// `providers` providers under `requires_any` (one alone when 1), each with a claim header, and the
/// headers of a request carrying a valid token of the last one.
fn setup(providers: usize) -> (FilterConfig, Rc<jwt_authn_wasm::jwks::Jwks>, String) {
    let keys = Keys::load();
    let jwks_text = keys.jwks().to_string();
    let jwks = Rc::new(parse_local_jwks(jwks_text.as_bytes()).unwrap());
    let mut configured = serde_json::Map::new();
    for i in 0..providers {
        configured.insert(
            format!("p{i}"),
            json!({
                "issuer": format!("https://issuer{i}.example.com"),
                "audiences": [fixtures::AUDIENCE],
                "local_jwks": {"inline_string": jwks_text},
                "claim_to_headers": [{"header_name": format!("x-p{i}-sub"), "claim_name": "sub"}],
            }),
        );
    }
    let requires = if providers == 1 {
        json!({"provider_name": "p0"})
    } else {
        let children: Vec<_> = (0..providers)
            .map(|i| json!({"provider_name": format!("p{i}")}))
            .collect();
        json!({"requires_any": {"requirements": children}})
    };
    let config = json!({"providers": configured, "rules": [{"match": {"prefix": "/"}, "requires": requires}]});
    let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["iss"] = json!(format!("https://issuer{}.example.com", providers - 1));
    let token = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    (config, jwks, format!("Bearer {token}"))
}

/// The request both counts use: a GET with the token in `authorization`.
fn request_headers(authorization: &str) -> [HeaderPair<'_>; 5] {
    [
        (b":authority", b"api.example.com"),
        (b":path", b"/api/orders?page=2"),
        (b":method", b"GET"),
        (b"authorization", authorization.as_bytes()),
        (b"x-request-id", b"0b1c6d9e-2f57-4c1b-9a39-8d64b0b0a1c3"),
    ]
}

/// The verdict on `headers`, finished with `jwks` when the first look needs keys.
fn decide(
    config: &FilterConfig,
    jwks: &Rc<jwt_authn_wasm::jwks::Jwks>,
    headers: &[HeaderPair],
    now: u64,
    caches: &mut TokenCaches,
) -> Verdict {
    match start(config, headers, now, caches) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(jwks.clone()), caches),
    }
}

/// Allocations of the second look at a request whose token the first look verified and cached.
fn cached_request_allocations(providers: usize) -> usize {
    let (config, jwks, authorization) = setup(providers);
    let headers = request_headers(&authorization);
    let now = fixtures::now();
    let mut caches = TokenCaches::for_config(&config);
    let first = decide(&config, &jwks, &headers, now, &mut caches);
    assert!(matches!(first, Verdict::Allow(_)), "{first:?}");
    let (count, second) = allocations_of(|| start(&config, &headers, now, &mut caches));
    let Start::Decided(Verdict::Allow(mutations)) = second else {
        panic!("the cached token is let through: {second:?}");
    };
    let header = format!("x-p{}-sub", providers - 1);
    assert_eq!(
        mutations.added(),
        vec![(header.as_str(), fixtures::SUBJECT)]
    );
    assert_eq!(mutations.removed(), vec!["authorization"]);
    count
}

#[test]
fn a_cached_token_costs_no_allocation() {
    // The token's bytes are shared with the cache's copy (only a token not cached is copied, for a
    // request waiting for keys outlives its headers); the rest, tokens, candidates, cache hits, header
    // names and claim headers, is inline or shared.
    assert_eq!(cached_request_allocations(1), 0);
}

#[test]
fn a_cached_token_among_ten_providers_costs_what_it_costs_under_one() {
    assert_eq!(
        cached_request_allocations(10),
        cached_request_allocations(1)
    );
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the two tests above against a counter that counts nothing.
    let (count, boxed) = allocations_of(|| Box::new(7u64));
    assert_eq!((count, *boxed), (1, 7));
}

/// Allocations of a request with a token never seen before: the first look (parse, claim checks, cache
/// miss) and the finish with keys at hand (signature, claim headers, cache insert).
fn fresh_request_allocations() -> usize {
    let (config, jwks, authorization) = setup(1);
    let headers = request_headers(&authorization);
    let now = fixtures::now();
    let mut caches = TokenCaches::for_config(&config);
    let (count, verdict) = allocations_of(|| decide(&config, &jwks, &headers, now, &mut caches));
    let Verdict::Allow(mutations) = verdict else {
        panic!("the fresh token is let through: {verdict:?}");
    };
    assert_eq!(mutations.added(), vec![("x-p0-sub", fixtures::SUBJECT)]);
    count
}

#[test]
fn a_fresh_token_allocates_for_its_claims_not_for_copies() {
    // 37 in all (75 before the cold-path pass, 51 with the payload parsed into a map): the token's one
    // copy, the payload's text and the string claims read from it (here iss, sub and aud), the header's
    // alg, kid and typ, the request's origin and path, the RSA check's own, the claim header's value
    // and the cache entry. Not the token again, the parse again, a map of every claim, a header map,
    // or a realm for a request that is let through.
    let count = fresh_request_allocations();
    assert!(
        count <= 37,
        "a fresh token's request made {count} allocations"
    );
}
