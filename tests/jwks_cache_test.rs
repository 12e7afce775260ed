//! The shared JWKS cache records and the decisions made from them: when to fetch, back-off, the lease.

use std::time::Duration;

use jwt_authn_wasm::jwks_cache::{
    decode_doc, encode_doc, fetch_due, FetchFailure, FetchLease, JwksMeta, SharedKeys,
    FIRST_RETRY_DELAY, MAX_RETRY_DELAY,
};

#[test]
fn records_round_trip_and_garbage_decodes_to_none() {
    let meta = JwksMeta {
        version: 7,
        fetched_at_ms: 1_700_000_000_123,
    };
    assert_eq!(JwksMeta::decode(&meta.encode()), Some(meta));
    let lease = FetchLease {
        holder: 42 << 32 | 3,
        expires_at_ms: 99,
    };
    assert_eq!(FetchLease::decode(&lease.encode()), Some(lease));
    let failure = FetchFailure::next(None, 1000, "HTTP status 500".into());
    assert_eq!(FetchFailure::decode(&failure.encode()), Some(failure));
    let doc = encode_doc(3, b"{\"keys\":[]}\n");
    assert_eq!(decode_doc(&doc), Some((3, b"{\"keys\":[]}\n".as_slice())));
    for garbage in [&b""[..], b"x", b"1", b"1 2 3", b"\xff 1", b"-1 2"] {
        assert_eq!(JwksMeta::decode(garbage), None, "{garbage:?}");
        assert_eq!(FetchLease::decode(garbage), None, "{garbage:?}");
    }
    assert_eq!(decode_doc(b"no newline"), None);
    assert_eq!(FetchFailure::decode(b""), None);
}

#[test]
fn keys_are_per_uri() {
    let a = SharedKeys::for_uri("https://a/jwks");
    let b = SharedKeys::for_uri("https://b/jwks");
    assert_ne!(a.doc, b.doc);
    assert_ne!(a.lease, b.lease);
    assert!(a.meta.contains("https://a/jwks"));
}

#[test]
fn fetch_is_due_when_missing_or_stale_and_not_backing_off() {
    let period = Duration::from_secs(10);
    assert!(fetch_due(None, None, period, 0), "never fetched");
    let meta = JwksMeta {
        version: 1,
        fetched_at_ms: 1_000,
    };
    assert!(!fetch_due(Some(&meta), None, period, 10_999));
    assert!(fetch_due(Some(&meta), None, period, 11_000));
    let failure = FetchFailure::next(None, 11_000, "timeout".into());
    assert!(
        !fetch_due(Some(&meta), Some(&failure), period, 11_100),
        "backing off"
    );
    assert!(fetch_due(
        Some(&meta),
        Some(&failure),
        period,
        failure.retry_at_ms
    ));
    let old_failure = FetchFailure {
        failed_at_ms: 500,
        retry_at_ms: 20_000,
        consecutive: 1,
        reason: String::new(),
    };
    assert!(
        fetch_due(Some(&meta), Some(&old_failure), period, 11_000),
        "a failure before the last success does not count"
    );
}

#[test]
fn retries_back_off_exponentially_up_to_the_cap() {
    let mut previous: Option<FetchFailure> = None;
    let mut delays = Vec::new();
    for _ in 0..12 {
        let next = FetchFailure::next(previous.as_ref(), 0, "x".into());
        delays.push(next.retry_at_ms);
        previous = Some(next);
    }
    let first = FIRST_RETRY_DELAY.as_millis() as u64;
    assert_eq!(&delays[..3], &[first, first * 2, first * 4]);
    assert_eq!(*delays.last().unwrap(), MAX_RETRY_DELAY.as_millis() as u64);
    assert_eq!(previous.unwrap().consecutive, 12);
}

#[test]
fn lease_is_free_when_absent_or_expired() {
    assert!(FetchLease::is_free_for(None, 5));
    let lease = FetchLease {
        holder: 1,
        expires_at_ms: 100,
    };
    assert!(!FetchLease::is_free_for(Some(&lease), 99));
    assert!(FetchLease::is_free_for(Some(&lease), 100));
}
