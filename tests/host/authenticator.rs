//! The per-request steps without a host: rules, missing tokens, identity-header sanitising, claim
//! headers, token stripping, and the refusal a client sees.

use crate::common;
use crate::common::decide::{request, run as run_cached};

use jwt_authn_wasm::config::{ClaimLocation, FilterConfig};
use jwt_authn_wasm::jwks::{parse_jwks, Jwks};
use jwt_authn_wasm::request::borrow_header_pairs;
use jwt_authn_wasm::request::claim_header_value;
use jwt_authn_wasm::request::LocalReply;
use jwt_authn_wasm::request::TokenCaches;
use jwt_authn_wasm::request::{start, Start, Verdict};
use jwt_authn_wasm::verify::{AuthError, Claims};
use serde_json::{json, Value};

use common::fixtures::{self, Keys, AUDIENCE, ISSUER};

fn config(forward: bool) -> (FilterConfig, Jwks) {
    config_edited(forward, |_| {})
}

/// [`config`] with the `jwt` provider's JSON edited first.
fn config_edited(forward: bool, edit: impl FnOnce(&mut Value)) -> (FilterConfig, Jwks) {
    let keys = Keys::load();
    let mut config = json!({
        "providers": {"jwt": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": keys.jwks().to_string()},
            "forward": forward,
            "claim_to_headers": [
                {"header_name": "x-jwt-sub", "claim_name": "sub"},
                {"header_name": "x-jwt-team", "claim_name": "org.team"},
                {"header_name": "x-jwt-admin", "claim_name": "admin"},
                {"header_name": "x-jwt-missing", "claim_name": "nope"}
            ],
            "forward_payload_header": "x-jwt-payload"
        }},
        "rules": [
            {"match": {"path": "/secret"}, "requires": {"provider_name": "jwt"}},
            {"match": {"prefix": "/public"}},
            {"match": {"path": "/health"}},
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "jwt"}}
        ]
    });
    edit(&mut config["providers"]["jwt"]);
    let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
    (
        config,
        parse_jwks(keys.jwks().to_string().as_bytes()).unwrap(),
    )
}

fn run(config: &FilterConfig, jwks: &Jwks, headers: &[(String, Vec<u8>)]) -> Verdict {
    run_cached(config, jwks, headers, &mut TokenCaches::disabled())
}

#[test]
fn first_matching_rule_decides_and_unmatched_paths_pass() {
    let (config, jwks) = config(false);
    for path in ["/public/x", "/health", "/other", "/health?x=1"] {
        assert!(
            matches!(run(&config, &jwks, &request(path, &[])), Verdict::Allow(_)),
            "{path}"
        );
    }
    let Verdict::Deny(reply) = run(&config, &jwks, &request("/api/x?y=1", &[])) else {
        panic!("/api needs a token")
    };
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, "Jwt is missing");
    assert_eq!(
        reply.www_authenticate.as_deref(),
        Some("Bearer realm=\"https://api.test/api/x?y=1\"")
    );
    for path in ["/secret", "/secret?x=1"] {
        assert!(
            matches!(run(&config, &jwks, &request(path, &[])), Verdict::Deny(_)),
            "{path}"
        );
    }
    for path in ["/secretx", "/secret/x"] {
        assert!(
            matches!(run(&config, &jwks, &request(path, &[])), Verdict::Allow(_)),
            "{path}: path match is exact"
        );
    }
}

#[test]
fn success_sets_claim_headers_and_strips_token_and_spoofed_headers() {
    let (config, jwks) = config(false);
    let auth = format!("Bearer {}", fixtures::good_token());
    let headers = request(
        "/api/x",
        &[
            ("authorization", &auth),
            ("x-jwt-sub", "mallory"),
            ("x-jwt-missing", "spoofed"),
        ],
    );
    let Verdict::Allow(mutations) = run(&config, &jwks, &headers) else {
        panic!("allowed")
    };
    for removed in ["x-jwt-sub", "x-jwt-missing", "authorization"] {
        assert!(mutations.removed().contains(&removed), "{removed} removed");
    }
    let set = mutations.added();
    assert!(set.contains(&("x-jwt-sub", "alice")));
    assert!(set.contains(&("x-jwt-team", "payments")));
    assert!(set.contains(&("x-jwt-admin", "false")));
    assert!(
        !set.iter().any(|(k, _)| *k == "x-jwt-missing"),
        "absent claims set no header"
    );
    let payload = auth.split('.').nth(1).unwrap();
    assert!(set.contains(&("x-jwt-payload", payload)));
}

#[test]
fn pad_forward_payload_header_pads_the_forwarded_payload_like_jwt_authn() {
    let keys = Keys::load();
    let (padded, jwks) = config_edited(false, |p| p["pad_forward_payload_header"] = json!(true));
    let (unpadded, _) = config(false);
    // Payload segments of every length modulo 4 but 1 (which base64 cannot produce).
    let mut lengths_seen = Vec::new();
    for extra in 0..6 {
        let mut claims = fixtures::good_claims(fixtures::now());
        claims["note"] = json!("x".repeat(extra));
        let token = fixtures::mint(&keys.rsa2048, "RS256", &claims);
        let segment = token.split('.').nth(1).unwrap().to_string();
        let headers = request("/api", &[("authorization", &format!("Bearer {token}"))]);
        let forwarded = |config: &FilterConfig| {
            let Verdict::Allow(m) = run(config, &jwks, &headers) else {
                panic!("allowed")
            };
            let (_, value) = m
                .added()
                .into_iter()
                .find(|(name, _)| *name == "x-jwt-payload")
                .expect("x-jwt-payload set");
            value.to_string()
        };
        let expected_padding = "=".repeat((4 - segment.len() % 4) % 4);
        assert_eq!(forwarded(&padded), format!("{segment}{expected_padding}"));
        assert_eq!(forwarded(&unpadded), segment);
        lengths_seen.push(segment.len() % 4);
    }
    for remainder in [0, 2, 3] {
        assert!(lengths_seen.contains(&remainder), "{lengths_seen:?}");
    }
}

#[test]
fn spoofed_identity_headers_are_removed_even_where_no_token_is_required() {
    let (config, jwks) = config(false);
    let headers = request(
        "/public",
        &[("x-jwt-sub", "mallory"), ("x-jwt-payload", "e30")],
    );
    let Verdict::Allow(mutations) = run(&config, &jwks, &headers) else {
        panic!("allowed")
    };
    assert_eq!(mutations.removed(), vec!["x-jwt-sub", "x-jwt-payload"]);
    assert!(mutations.set_headers.is_empty());
}

#[test]
fn forward_true_keeps_the_token_and_param_tokens_are_stripped_from_the_path() {
    let token = fixtures::good_token();
    let (keep, jwks) = config(true);
    let auth = format!("Bearer {token}");
    let Verdict::Allow(m) = run(&keep, &jwks, &request("/api", &[("authorization", &auth)])) else {
        panic!("allowed")
    };
    assert!(!m.removed().contains(&"authorization"));
    let (strip, jwks) = config(false);
    let path = format!("/api?a=1&access_token={token}");
    let Verdict::Allow(m) = run(&strip, &jwks, &request(&path, &[])) else {
        panic!("allowed")
    };
    assert_eq!(m.new_path.as_deref(), Some(b"/api?a=1".as_slice()));
}

#[test]
fn all_tokens_must_be_valid() {
    let (config, jwks) = config(false);
    let good = format!("Bearer {}", fixtures::good_token());
    let path = "/api?access_token=not.a.token";
    let Verdict::Deny(reply) = run(&config, &jwks, &request(path, &[("authorization", &good)]))
    else {
        panic!("one bad token refuses the request")
    };
    assert_eq!(reply.status, 401);
}

#[test]
fn refusals_map_to_jwt_authn_status_and_challenge() {
    let realm = "http://h/p";
    let missing = LocalReply::for_error(AuthError::Missing, realm);
    assert_eq!(
        (missing.status, missing.www_authenticate.as_deref().unwrap()),
        (401, "Bearer realm=\"http://h/p\"")
    );
    let audience = LocalReply::for_error(AuthError::AudienceNotAllowed, realm);
    assert_eq!(audience.status, 403);
    assert_eq!(audience.body, "Audiences in Jwt are not allowed");
    assert_eq!(
        audience.www_authenticate.as_deref(),
        Some("Bearer realm=\"http://h/p\", error=\"invalid_token\"")
    );
    for error in [
        AuthError::Expired,
        AuthError::JwksFetchFailed,
        AuthError::KidAlgMismatch,
        AuthError::TokenTooLarge,
    ] {
        assert_eq!(LocalReply::for_error(error, realm).status, 401, "{error:?}");
    }
}

#[test]
fn realm_escapes_quotes_and_drops_control_characters() {
    let (config, jwks) = config(false);
    let mut headers = request("/api/\"x\\", &[]);
    headers.push(("authorization".into(), b"Bearer \xff".to_vec()));
    headers[1].1 = b"h\x01ost".to_vec();
    let Verdict::Deny(reply) = run(&config, &jwks, &headers) else {
        panic!("refused")
    };
    assert_eq!(
        reply.body,
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
    );
    assert_eq!(
        reply.www_authenticate.as_deref(),
        Some("Bearer realm=\"https://host/api/\\\"x\\\\\", error=\"invalid_token\"")
    );
}

#[test]
fn a_refusal_after_the_signature_check_has_the_realm_of_the_first_look() {
    // The waiting request keeps the scheme, authority and path as read, and makes the realm from them
    // only when it refuses: the same realm (escaped, path cut at 256 bytes) as a refusal on the spot.
    let (config, jwks) = config(false);
    let keys = Keys::load();
    let claims = fixtures::good_claims(fixtures::now());
    // Signed under rsa2048's kid by a key the JWKS does not have: it fails only at the signature.
    let forged = fixtures::mint(&keys.rsa2048_other, "RS256", &claims);
    let path = format!("/api/\"q\\{}", "p".repeat(300));
    let mut headers = request(&path, &[]);
    headers.push((
        "authorization".into(),
        format!("Bearer {forged}").into_bytes(),
    ));
    let Verdict::Deny(after_keys) = run(&config, &jwks, &headers) else {
        panic!("a forged signature is refused")
    };
    assert_eq!(after_keys.body, "Jwt verification fails");
    let Verdict::Deny(on_the_spot) = run(&config, &jwks, &request(&path, &[])) else {
        panic!("no token is refused")
    };
    let realm = format!(
        "Bearer realm=\"https://api.test/api/\\\"q\\\\{}\"",
        "p".repeat(256 - "/api/\"q\\".len())
    );
    assert_eq!(
        on_the_spot.www_authenticate.as_deref(),
        Some(realm.as_str())
    );
    assert_eq!(
        after_keys.www_authenticate,
        Some(format!("{realm}, error=\"invalid_token\""))
    );
}

#[test]
fn claim_values_become_header_text_or_nothing() {
    let payload: Value = json!({
        "s": "text", "n": 42, "f": 1.5, "b": true, "null": null, "list": ["a"], "roles": ["admin", "ops", 7, true], "mixed": ["a", {"x": 1}], "empty": [], "obj": {"deep": {"x": "y"}},
        "crlf": "a\r\nx-admin: true", "nul": "a\u{0}b", "https://example.com/roles": "admin"
    });
    let payload = &Claims::from_json(payload.to_string().into_bytes()).unwrap();
    let get = |path: &str| claim_header_value(payload, &ClaimLocation::DottedName(path.into()));
    assert_eq!(get("s").as_deref(), Some("text"));
    assert_eq!(get("n").as_deref(), Some("42"));
    assert_eq!(get("f").as_deref(), Some("1.5"));
    assert_eq!(get("b").as_deref(), Some("true"));
    assert_eq!(get("obj.deep.x").as_deref(), Some("y"));
    assert_eq!(get("https://example.com/roles").as_deref(), Some("admin"));
    assert_eq!(get("list").as_deref(), Some("a"));
    assert_eq!(
        get("roles").as_deref(),
        Some("admin,ops,7,true"),
        "lists are comma-joined"
    );
    for none in [
        "null",
        "mixed",
        "empty",
        "obj",
        "crlf",
        "nul",
        "missing",
        "s.x",
        "obj.deep.nope",
    ] {
        assert_eq!(get(none), None, "{none}");
    }
}

#[test]
fn claim_path_takes_each_key_literally() {
    let payload: Value = json!({
        "https://example.com/roles": ["admin", "ops"],
        "https://example.com": {"tenant": {"id": "t-1"}},
        "a.b": "whole name", "a": {"b": "nested"}
    });
    let payload = &Claims::from_json(payload.to_string().into_bytes()).unwrap();
    let get = |keys: &[&str]| {
        let path = ClaimLocation::Path(keys.iter().map(|k| k.to_string()).collect());
        claim_header_value(payload, &path)
    };
    assert_eq!(
        get(&["https://example.com/roles"]).as_deref(),
        Some("admin,ops")
    );
    assert_eq!(
        get(&["https://example.com", "tenant", "id"]).as_deref(),
        Some("t-1")
    );
    assert_eq!(get(&["a", "b"]).as_deref(), Some("nested"), "segments nest");
    assert_eq!(
        get(&["a.b"]).as_deref(),
        Some("whole name"),
        "a segment is never split at dots"
    );
    assert_eq!(get(&["https:", "", "example.com", "roles"]), None);
    assert_eq!(
        get(&["https://example.com", "tenant"]),
        None,
        "objects give no header"
    );
    assert_eq!(get(&["missing"]), None);
}

#[test]
fn verified_tokens_are_served_from_the_cache_without_keys() {
    let (config, jwks) = config(false);
    let mut caches = TokenCaches::for_config(&config);
    let auth = format!("Bearer {}", fixtures::good_token());
    let headers = request("/api", &[("authorization", &auth)]);
    let first = run_cached(&config, &jwks, &headers, &mut caches);
    assert_eq!(caches.len(0), 1);
    // The second time the token is decided before any key is needed, with the same result.
    let Start::Decided(second) = start(
        &config,
        &borrow_header_pairs(&headers),
        fixtures::now(),
        &mut caches,
    ) else {
        panic!("a cached token needs no keys")
    };
    assert_eq!(first, second);
    // A different token with the same prefix is not a hit.
    let other = format!("Bearer {}", fixtures::good_token().replace('.', ".x"));
    let headers = request("/api", &[("authorization", &other)]);
    assert!(matches!(
        run_cached(&config, &jwks, &headers, &mut caches),
        Verdict::Deny(_)
    ));
    caches.clear(0);
    assert_eq!(caches.len(0), 0);
}

#[test]
fn refused_tokens_are_never_cached() {
    let (config, jwks) = config(false);
    let mut caches = TokenCaches::for_config(&config);
    for fixture in fixtures::fixtures(&Keys::load(), fixtures::now()) {
        let auth = format!("Bearer {}", fixture.token);
        let verdict = run_cached(
            &config,
            &jwks,
            &request("/api", &[("authorization", &auth)]),
            &mut caches,
        );
        let allowed = matches!(verdict, Verdict::Allow(_));
        assert_eq!(
            allowed,
            fixture.expect == fixtures::Expect::Allow,
            "{}",
            fixture.name
        );
    }
    let allowed = fixtures::fixtures(&Keys::load(), fixtures::now())
        .iter()
        .filter(|f| f.expect == fixtures::Expect::Allow)
        .count();
    assert_eq!(caches.len(0), allowed, "only admitted tokens are cached");
}
