//! The shared JWKS cache records and the decisions made from them: when to fetch, how long keys are
//! fresh and usable, back-off with jitter, the lease, unknown-kid refetch limits, OIDC discovery.

use std::time::Duration;

use jwt_authn_wasm::config::{FetchPolicy, FilterConfig, JwksSource};
use jwt_authn_wasm::jwks::{
    decode_doc, discovered_jwks_uri, encode_doc, fetch_due, kid_refetch_allowed, ttl_for_response,
    FetchFailure, FetchLease, JwksMeta, SharedKeys,
};
use serde_json::json;

const SECOND: u64 = 1000;

fn policy(extra: serde_json::Value) -> FetchPolicy {
    let mut remote = json!({"http_uri": {"uri": "https://idp/jwks", "cluster": "idp"}});
    for (k, v) in extra.as_object().unwrap() {
        remote[k] = v.clone();
    }
    let config = json!({"providers": {"p": {"remote_jwks": remote}}});
    let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
    match &config.providers[0].jwks_source {
        JwksSource::Remote(remote) => remote.policy,
        JwksSource::Local(_) => panic!("the configuration has a remote_jwks provider"),
    }
}

fn failure_after(previous: Option<&FetchFailure>, now: u64, seed: u64) -> FetchFailure {
    let p = policy(json!({}));
    FetchFailure::next(
        previous,
        now,
        "x".into(),
        p.retry_initial_interval,
        p.retry_max_interval,
        seed,
    )
}

#[test]
fn records_round_trip_and_garbage_decodes_to_none() {
    let meta = JwksMeta {
        version: 7,
        fetched_at_ms: 1_700_000_000_123,
        ttl_ms: 600 * SECOND,
    };
    assert_eq!(JwksMeta::decode(&meta.encode()), Some(meta));
    let lease = FetchLease {
        holder: 42 << 32 | 3,
        expires_at_ms: 99,
    };
    assert_eq!(FetchLease::decode(&lease.encode()), Some(lease));
    let failure = failure_after(None, 1000, 7);
    assert_eq!(FetchFailure::decode(&failure.encode()), Some(failure));
    let doc = encode_doc(3, b"{\"keys\":[]}\n");
    assert_eq!(decode_doc(&doc), Some((3, b"{\"keys\":[]}\n".as_slice())));
    for garbage in [
        &b""[..],
        b"x",
        b"1",
        b"1 2",
        b"1 2 3 4",
        b"\xff 1 2",
        b"-1 2 3",
    ] {
        assert_eq!(JwksMeta::decode(garbage), None, "{garbage:?}");
    }
    for garbage in [&b""[..], b"x", b"1", b"1 2 3"] {
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
    assert_ne!(a.kid_refetch, b.kid_refetch);
    assert!(a.meta.contains("https://a/jwks"));
}

#[test]
fn refresh_starts_ahead_of_expiry_and_keys_stay_usable_for_max_staleness() {
    let short = JwksMeta {
        version: 1,
        fetched_at_ms: 0,
        ttl_ms: 2 * SECOND,
    };
    assert_eq!(
        short.refresh_at_ms(),
        2 * SECOND,
        "short TTLs refresh at expiry"
    );
    let minute = JwksMeta {
        version: 1,
        fetched_at_ms: 0,
        ttl_ms: 60 * SECOND,
    };
    assert_eq!(
        minute.refresh_at_ms(),
        54 * SECOND,
        "a tenth of the TTL ahead"
    );
    let long = JwksMeta {
        version: 1,
        fetched_at_ms: 0,
        ttl_ms: 3600 * SECOND,
    };
    assert_eq!(
        long.refresh_at_ms(),
        3540 * SECOND,
        "at most a minute ahead"
    );
    assert_eq!(short.usable_until_ms(Duration::from_secs(10)), 12 * SECOND);
}

#[test]
fn fetch_is_due_on_refresh_or_unknown_kid_but_not_while_backing_off() {
    assert!(fetch_due(None, None, None, 0), "never fetched");
    let meta = JwksMeta {
        version: 1,
        fetched_at_ms: 1_000,
        ttl_ms: 10 * SECOND,
    };
    assert!(!fetch_due(Some(&meta), None, None, 10_999));
    assert!(
        fetch_due(Some(&meta), None, None, 11_000),
        "refresh when the TTL runs out"
    );
    assert!(
        fetch_due(Some(&meta), None, Some(2_000), 2_500),
        "an unknown kid asked after the fetch"
    );
    assert!(
        !fetch_due(Some(&meta), None, Some(900), 2_500),
        "asked before the fetch: already served"
    );
    let failure = failure_after(None, 11_000, 1);
    assert!(
        !fetch_due(Some(&meta), Some(&failure), None, 11_100),
        "backing off"
    );
    assert!(
        !fetch_due(Some(&meta), Some(&failure), Some(11_050), 11_100),
        "kid refetch respects back-off"
    );
    assert!(fetch_due(
        Some(&meta),
        Some(&failure),
        None,
        failure.retry_at_ms
    ));
    let old = FetchFailure {
        failed_at_ms: 500,
        retry_at_ms: 20_000,
        consecutive: 1,
        reason: String::new(),
    };
    assert!(
        fetch_due(Some(&meta), Some(&old), None, 11_000),
        "a failure before the last success does not count"
    );
}

#[test]
fn retries_back_off_exponentially_with_bounded_jitter() {
    let mut previous: Option<FetchFailure> = None;
    let mut delays = Vec::new();
    for attempt in 0..12u64 {
        let next = failure_after(previous.as_ref(), 0, attempt * 7919);
        delays.push(next.retry_at_ms);
        previous = Some(next);
    }
    for (attempt, delay) in delays.iter().enumerate() {
        let nominal = (500u64 << attempt.min(16)).min(30_000);
        let spread = nominal / 5;
        assert!(
            (nominal - spread..=nominal + spread).contains(delay),
            "attempt {attempt}: {delay} ms outside {nominal} ± 20%"
        );
    }
    assert_eq!(previous.unwrap().consecutive, 12);
    let spread: std::collections::HashSet<u64> = (0..50)
        .map(|seed| failure_after(None, 0, seed).retry_at_ms)
        .collect();
    assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
}

#[test]
fn jwt_authn_retry_settings_set_the_back_off() {
    let p =
        policy(json!({"async_fetch": {"fast_listener": true, "failed_refetch_duration": "2s"}}));
    assert_eq!(p.retry_initial_interval, Duration::from_secs(2));
    let p = policy(
        json!({"retry_policy": {"num_retries": 3, "retry_back_off": {"base_interval": "0.2s", "max_interval": "5s"}}}),
    );
    assert_eq!(
        (p.retry_initial_interval, p.retry_max_interval),
        (Duration::from_millis(200), Duration::from_secs(5))
    );
}

#[test]
fn cache_control_max_age_sets_the_ttl_within_bounds() {
    let p = policy(json!({}));
    let default = Duration::from_secs(600);
    let ttl = |header: &[u8]| ttl_for_response(Some(header), default, &p);
    assert_eq!(ttl(b"public, max-age=3600"), Duration::from_secs(3600));
    assert_eq!(
        ttl(b"max-age=5"),
        Duration::from_secs(30),
        "raised to min_cache_duration"
    );
    assert_eq!(
        ttl(b"max-age=9999999"),
        Duration::from_secs(86_400),
        "capped at max_cache_duration"
    );
    assert_eq!(ttl(b"no-store"), Duration::from_secs(30));
    assert_eq!(ttl(b"public"), default);
    assert_eq!(ttl(b"max-age=abc"), default);
    assert_eq!(ttl(b"\xff"), default);
    assert_eq!(ttl_for_response(None, default, &p), default);
    let ignoring = policy(json!({"honor_cache_control": false}));
    assert_eq!(
        ttl_for_response(Some(b"max-age=3600"), default, &ignoring),
        default
    );
}

#[test]
fn unknown_kid_refetches_are_rate_limited() {
    let interval = Duration::from_secs(5);
    assert!(kid_refetch_allowed(None, 0, interval));
    assert!(!kid_refetch_allowed(Some(1_000), 5_999, interval));
    assert!(kid_refetch_allowed(Some(1_000), 6_000, interval));
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

#[test]
fn discovery_document_gives_the_jwks_uri() {
    let doc = json!({"issuer": "https://idp", "jwks_uri": "https://idp/keys"}).to_string();
    assert_eq!(
        discovered_jwks_uri(doc.as_bytes()),
        Ok("https://idp/keys".to_string())
    );
    assert!(discovered_jwks_uri(b"{}")
        .unwrap_err()
        .contains("no jwks_uri"));
    assert!(discovered_jwks_uri(b"nope")
        .unwrap_err()
        .contains("not JSON"));
    let ftp = json!({"jwks_uri": "ftp://idp/keys"}).to_string();
    assert!(discovered_jwks_uri(ftp.as_bytes())
        .unwrap_err()
        .contains("not an http(s) URL"));
}
