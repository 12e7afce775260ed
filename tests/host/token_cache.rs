//! The verified-token cache: whole-token keys, expiry, bounds, oldest-first eviction.

use std::rc::Rc;

use jwt_authn_wasm::request::token_cache::{TokenCache, VerifiedClaims};

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
    let mut off = TokenCache::new(0, 4096);
    off.put(b"t", verdict("x"), u64::MAX);
    assert!(off.get(b"t", 0).is_none(), "size 0 caches nothing");
}
