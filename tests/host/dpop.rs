//! DPoP (RFC 9449) on the request path, without a host: the `dpop` option, RFC 7638 / RFC 9449 vectors,
//! the htu normalisation, and each proof check failing on its own. The replay cache and nonces, which
//! need shared data, are tested on the fake host in src/worker/dpop_tests.rs.

use jwt_authn_wasm::config::DpopMode;
use jwt_authn_wasm::request::{
    borrow_header_pairs, normalize_htu, request_htu, start, thumbprint, LocalReply, Start,
    TokenCaches, Verdict,
};
use jwt_authn_wasm::{parse_jwks, FilterConfig, Jwks};
use serde_json::{json, Value};

use crate::common::decide::run as run_with;
use crate::common::dpop::{ath, bound_token, proof_claims, ClientKey};
use crate::common::fixtures::{self, Keys};

const HTU: &str = "https://api.test/api/orders";

fn config_with(dpop: Value) -> (FilterConfig, Jwks) {
    parsed(config_json(dpop))
}

fn parsed(config: Value) -> (FilterConfig, Jwks) {
    let keys = Keys::load();
    (
        FilterConfig::parse(config.to_string().as_bytes()).unwrap(),
        parse_jwks(keys.jwks().to_string().as_bytes()).unwrap(),
    )
}

fn config_json(dpop: Value) -> Value {
    let keys = Keys::load();
    json!({
        "providers": {"jwt": {
            "issuer": fixtures::ISSUER,
            "audiences": [fixtures::AUDIENCE],
            "local_jwks": {"inline_string": keys.jwks().to_string()},
            "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
            "dpop": dpop
        }},
        "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "jwt"}}]
    })
}

fn config() -> (FilterConfig, Jwks) {
    config_with(json!({"mode": "required", "allowed_algs": ["ES256", "EdDSA"]}))
}

/// A POST to /api/orders?x=1 with these extra headers.
fn request(extra: &[(&str, String)]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (":method".to_string(), b"POST".to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
        (":authority".to_string(), b"api.test".to_vec()),
        (":path".to_string(), b"/api/orders?x=1".to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

fn run(config: &FilterConfig, jwks: &Jwks, headers: &[(String, Vec<u8>)]) -> Verdict {
    run_with(config, jwks, headers, &mut TokenCaches::disabled())
}

fn refused(verdict: Verdict) -> LocalReply {
    match verdict {
        Verdict::Deny(reply) => reply,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// (name, request headers, body, challenge error).
type Case<'a> = (&'a str, Vec<(String, Vec<u8>)>, &'a str, &'a str);

fn dpop_headers(token: &str, proof: &str) -> Vec<(String, Vec<u8>)> {
    request(&[
        ("authorization", format!("DPoP {token}")),
        ("dpop", proof.to_string()),
    ])
}

#[test]
fn rfc7638_and_rfc9449_vectors() {
    // RFC 7638 §3.1: the RSA key and its thumbprint.
    let rsa = json!({"kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"});
    assert_eq!(
        thumbprint(rsa.as_object().unwrap()).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
    // RFC 9449 §4.1 / §6.1: the example proof's jwk and the cnf.jkt of the token bound to it.
    let ec = json!({"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"});
    assert_eq!(
        thumbprint(ec.as_object().unwrap()).as_deref(),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    );
    // RFC 9449 §7.1: the example access token's ath.
    assert_eq!(
        ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
    // Generated keys: the filter's thumbprint is the one computed by hand in the test.
    for key in [ClientKey::es256(), ClientKey::eddsa()] {
        assert_eq!(
            thumbprint(key.public_jwk().as_object().unwrap()),
            Some(key.jkt())
        );
    }
    // Members beyond the required ones do not count; a symmetric key has no thumbprint here.
    let mut extra = ec.clone();
    extra["kid"] = json!("x");
    extra["use"] = json!("sig");
    assert_eq!(
        thumbprint(extra.as_object().unwrap()),
        thumbprint(ec.as_object().unwrap())
    );
    assert_eq!(
        thumbprint(json!({"kty": "oct", "k": "c2VjcmV0"}).as_object().unwrap()),
        None
    );
}

#[test]
fn htu_normalisation_follows_rfc3986_section_6() {
    let same = [
        "https://api.test/api/orders",
        "HTTPS://API.test/api/orders",
        "https://api.test:443/api/orders",
        "https://api.test/api/./x/../orders",
        "https://api.test/api/%6Frders",
        "https://api.test/api/orders?query=1",
        "https://api.test/api/orders#fragment",
    ];
    for uri in same {
        assert_eq!(
            normalize_htu(uri).as_deref(),
            Some("https://api.test/api/orders"),
            "{uri}"
        );
    }
    assert_eq!(
        normalize_htu("http://api.test:80").as_deref(),
        Some("http://api.test/")
    );
    assert_eq!(
        normalize_htu("http://api.test:8080/a%2fb").as_deref(),
        Some("http://api.test:8080/a%2Fb"),
        "escapes of reserved characters stay, in upper case"
    );
    for different in [
        "http://api.test/api/orders",
        "https://api.test:8443/api/orders",
        "https://api.test/api/Orders",
        "https://api.test/api/orders/",
    ] {
        assert_ne!(
            normalize_htu(different).as_deref(),
            Some("https://api.test/api/orders"),
            "{different}"
        );
    }
    for refused in [
        "api.test/api",
        "ftp://api.test/",
        "https://user@api.test/",
        "https:///x",
        "https://api.test/%zz",
        "https://api.test:x/",
        "https://api.test:4st:443/",
        "https://[::1/",
        "https://a b/",
    ] {
        assert_eq!(normalize_htu(refused), None, "{refused}");
    }
    assert_eq!(
        request_htu(b"https", b"API.test:443", b"/api/orders?x=1").as_deref(),
        Some("https://api.test/api/orders")
    );
    assert_eq!(request_htu(b"https", b"", b"/"), None);
    assert_eq!(
        normalize_htu("http://[::1]:8080/x").as_deref(),
        Some("http://[::1]:8080/x")
    );
}

#[test]
fn a_valid_proof_passes_with_es256_and_eddsa() {
    let (config, jwks) = config();
    let keys = Keys::load();
    for client in [ClientKey::es256(), ClientKey::eddsa()] {
        let now = fixtures::now();
        let token = bound_token(&keys, &client.jkt(), now);
        let proof = client.proof("POST", HTU, &token, now);
        let Verdict::Allow(mutations) = run(&config, &jwks, &dpop_headers(&token, &proof)) else {
            panic!("{}: a valid proof passes", client.alg())
        };
        assert!(mutations
            .added()
            .contains(&("x-jwt-sub", fixtures::SUBJECT)));
        assert_eq!(
            mutations.dpop_proofs.len(),
            1,
            "its jti goes to the replay cache"
        );
        assert!(mutations.removed().contains(&"authorization"));
        assert!(
            mutations.removed().contains(&"dpop"),
            "the proof goes with the token it is bound to"
        );
    }
}

#[test]
fn an_admitted_proof_carries_the_rules_resource_metadata_to_the_replay_check() {
    // The replay and nonce checks refuse after the rule is left behind; their challenge must still name
    // the rule's resource_metadata URL (RFC 9728 §5.1), so the mutations carry it.
    let url = "https://api.test/.well-known/oauth-protected-resource/api";
    let mut raw = config_json(json!({"mode": "required", "allowed_algs": ["ES256"]}));
    raw["rules"][0]["resource_metadata"] = json!(url);
    let (config, jwks) = parsed(raw);
    let keys = Keys::load();
    let client = ClientKey::es256();
    let now = fixtures::now();
    let token = bound_token(&keys, &client.jkt(), now);
    let proof = client.proof("POST", HTU, &token, now);
    let Verdict::Allow(mutations) = run(&config, &jwks, &dpop_headers(&token, &proof)) else {
        panic!("a valid proof passes")
    };
    assert_eq!(mutations.resource_metadata.as_deref(), Some(url));
    // Without proofs there is nothing to carry.
    let (plain, _) = config_with(json!({"mode": "optional"}));
    let bearer = fixtures::good_token();
    let Verdict::Allow(mutations) = run(
        &plain,
        &jwks,
        &request(&[("authorization", format!("Bearer {bearer}"))]),
    ) else {
        panic!("an unbound Bearer token passes in optional mode")
    };
    assert_eq!(mutations.resource_metadata, None);
}

/// Each check, failing on its own: a valid request with one thing changed.
#[test]
fn each_proof_check_fails_on_its_own() {
    let (config, jwks) = config();
    let keys = Keys::load();
    let client = ClientKey::es256();
    let other = ClientKey::es256();
    let now = fixtures::now();
    let token = bound_token(&keys, &client.jkt(), now);
    let claims = || proof_claims("POST", HTU, &token, now);
    let with_claim = |name: &str, value: Value| client.sign_with_claim(&claims(), name, value);
    let with_header = |name: &str, value: Value| client.sign_with_header(&claims(), name, value);
    let valid = client.proof("POST", HTU, &token, now);
    // One character inside the signature changed (the last one only carries padding bits).
    let at = valid.rfind('.').unwrap() + 5;
    let mut tampered = valid.clone();
    let swapped = if &valid[at..at + 1] == "A" { "B" } else { "A" };
    tampered.replace_range(at..at + 1, swapped);
    let cases: Vec<Case> = vec![
        (
            "wrong htm",
            dpop_headers(&token, &with_claim("htm", json!("GET"))),
            "DPoP proof [htm] does not match the request method",
            "invalid_dpop_proof",
        ),
        (
            "wrong htu",
            dpop_headers(
                &token,
                &with_claim("htu", json!("https://api.test/api/other")),
            ),
            "DPoP proof [htu] does not match the request URI",
            "invalid_dpop_proof",
        ),
        (
            "wrong htu scheme",
            dpop_headers(
                &token,
                &with_claim("htu", json!("http://api.test/api/orders")),
            ),
            "DPoP proof [htu] does not match the request URI",
            "invalid_dpop_proof",
        ),
        (
            "wrong ath",
            dpop_headers(&token, &with_claim("ath", json!(ath("another token")))),
            "DPoP proof [ath] does not match the access token",
            "invalid_dpop_proof",
        ),
        (
            "no ath",
            dpop_headers(&token, &{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("ath");
                client.sign(&client.header(), &c)
            }),
            "DPoP proof [ath] does not match the access token",
            "invalid_dpop_proof",
        ),
        (
            "expired iat",
            dpop_headers(&token, &with_claim("iat", json!(now - 600))),
            "DPoP proof [iat] is outside the accepted window",
            "invalid_dpop_proof",
        ),
        (
            "future iat",
            dpop_headers(&token, &with_claim("iat", json!(now + 600))),
            "DPoP proof [iat] is outside the accepted window",
            "invalid_dpop_proof",
        ),
        (
            "no jti",
            dpop_headers(&token, &{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("jti");
                client.sign(&client.header(), &c)
            }),
            "DPoP proof needs string [jti], [htm], [htu] and integer [iat]",
            "invalid_dpop_proof",
        ),
        (
            "private key in jwk",
            dpop_headers(&token, &with_header("jwk", client.private_jwk())),
            "DPoP proof [jwk] is not a usable public key",
            "invalid_dpop_proof",
        ),
        (
            "alg none",
            dpop_headers(&token, &{
                let mut h = client.header();
                h["alg"] = json!("none");
                let signed = client.sign(&h, &claims());
                format!("{}.", signed.rsplit_once('.').unwrap().0)
            }),
            "DPoP proof [alg] is not an allowed asymmetric algorithm",
            "invalid_dpop_proof",
        ),
        (
            "HMAC alg",
            dpop_headers(&token, &{
                let h = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
                crate::common::dpop::sign_hs256(&h, b"secret", &claims())
            }),
            "DPoP proof [alg] is not an allowed asymmetric algorithm",
            "invalid_dpop_proof",
        ),
        (
            "alg not in the list",
            dpop_headers(&token, &with_header("alg", json!("ES384"))),
            "DPoP proof [alg] is not an allowed asymmetric algorithm",
            "invalid_dpop_proof",
        ),
        (
            "wrong typ",
            dpop_headers(&token, &with_header("typ", json!("JWT"))),
            "DPoP proof [typ] must be dpop+jwt",
            "invalid_dpop_proof",
        ),
        (
            "crit",
            dpop_headers(&token, &with_header("crit", json!(["exp"]))),
            "DPoP proof [crit] is not supported",
            "invalid_dpop_proof",
        ),
        (
            "signature by another key",
            dpop_headers(&token, &other.sign(&client.header(), &claims())),
            "DPoP proof signature does not verify with its [jwk]",
            "invalid_dpop_proof",
        ),
        (
            "tampered signature",
            dpop_headers(&token, &tampered),
            "DPoP proof signature does not verify with its [jwk]",
            "invalid_dpop_proof",
        ),
        (
            "jkt of another key",
            dpop_headers(&token, &other.proof("POST", HTU, &token, now)),
            "DPoP proof key does not match the token's [cnf.jkt]",
            "invalid_token",
        ),
        (
            "not a JWT",
            dpop_headers(&token, "not-a-jwt"),
            "DPoP proof is not a well-formed JWT",
            "invalid_dpop_proof",
        ),
        (
            "no DPoP header",
            request(&[("authorization", format!("DPoP {token}"))]),
            "DPoP proof is missing",
            "invalid_dpop_proof",
        ),
        (
            "two DPoP headers",
            {
                let mut h = dpop_headers(&token, &valid);
                h.push(("dpop".to_string(), valid.as_bytes().to_vec()));
                h
            },
            "DPoP proof must be exactly one DPoP header",
            "invalid_dpop_proof",
        ),
        (
            "two proofs in one header",
            dpop_headers(&token, &format!("{valid}, {valid}")),
            "DPoP proof must be exactly one DPoP header",
            "invalid_dpop_proof",
        ),
        (
            "bound token as Bearer (downgrade)",
            request(&[
                ("authorization", format!("Bearer {token}")),
                ("dpop", valid.clone()),
            ]),
            "DPoP-bound Jwt must use the DPoP scheme",
            "invalid_token",
        ),
        (
            "unbound token with the DPoP scheme",
            {
                let unbound = fixtures::mint(&keys.rsa2048, "RS256", &fixtures::good_claims(now));
                dpop_headers(&unbound, &client.proof("POST", HTU, &unbound, now))
            },
            "Jwt has no [cnf.jkt] for the DPoP scheme",
            "invalid_token",
        ),
    ];
    assert!(matches!(
        run(&config, &jwks, &dpop_headers(&token, &valid)),
        Verdict::Allow(_)
    ));
    for (name, headers, body, code) in cases {
        let reply = refused(run(&config, &jwks, &headers));
        assert_eq!(reply.status, 401, "{name}");
        assert_eq!(reply.body, body, "{name}");
        assert_eq!(
            reply.www_authenticate.as_deref(),
            Some(
                format!(
                    "DPoP error=\"{code}\", error_description=\"{body}\", algs=\"ES256 EdDSA\""
                )
                .as_str()
            ),
            "{name}"
        );
    }
}

#[test]
fn the_token_cache_never_skips_the_proof() {
    let (config, jwks) = config();
    let mut caches = TokenCaches::for_config(&config);
    let keys = Keys::load();
    let client = ClientKey::eddsa();
    let now = fixtures::now();
    let token = bound_token(&keys, &client.jkt(), now);
    let first = dpop_headers(&token, &client.proof("POST", HTU, &token, now));
    assert!(matches!(
        run_with(&config, &jwks, &first, &mut caches),
        Verdict::Allow(_)
    ));
    // The token is cached now; a second request with a proof for another method is still refused, and
    // without any keys at all (the token's signature is the cache's, the proof's is checked anew).
    let second = dpop_headers(&token, &client.proof("GET", HTU, &token, now));
    let Start::Decided(verdict) = start(&config, &borrow_header_pairs(&second), now, &mut caches)
    else {
        panic!("a cached token needs no keys")
    };
    assert_eq!(
        refused(verdict).body,
        "DPoP proof [htm] does not match the request method"
    );
    let third = dpop_headers(&token, &client.proof("POST", HTU, &token, now));
    let Start::Decided(Verdict::Allow(mutations)) =
        start(&config, &borrow_header_pairs(&third), now, &mut caches)
    else {
        panic!("a cached token with a fresh proof passes without keys")
    };
    assert_eq!(mutations.dpop_proofs.len(), 1);
}

#[test]
fn optional_mode_lets_unbound_bearer_tokens_through_and_refuses_downgrades() {
    let (optional, jwks) = config_with(json!({"mode": "optional"}));
    let (required, _) = config();
    let keys = Keys::load();
    let now = fixtures::now();
    let plain = fixtures::mint(&keys.rsa2048, "RS256", &fixtures::good_claims(now));
    let bearer = request(&[("authorization", format!("Bearer {plain}"))]);
    let Verdict::Allow(mutations) = run(&optional, &jwks, &bearer) else {
        panic!("optional: an unbound Bearer token passes")
    };
    assert!(mutations.dpop_proofs.is_empty());
    let reply = refused(run(&required, &jwks, &bearer));
    assert_eq!(reply.body, "Jwt must use the DPoP scheme");
    let client = ClientKey::es256();
    let bound = bound_token(&keys, &client.jkt(), now);
    let downgrade = request(&[("authorization", format!("bearer {bound}"))]);
    assert_eq!(
        refused(run(&optional, &jwks, &downgrade)).body,
        "DPoP-bound Jwt must use the DPoP scheme"
    );
    // The scheme is case-insensitive (RFC 7235).
    let proof = client.proof("POST", HTU, &bound, now);
    let lower = request(&[("authorization", format!("dpop {bound}")), ("dpop", proof)]);
    assert!(matches!(run(&optional, &jwks, &lower), Verdict::Allow(_)));
}

#[test]
fn dpop_option_defaults_and_errors_name_the_field() {
    let (config, _) = config_with(json!({}));
    let dpop = config.providers[0].dpop.as_ref().unwrap();
    assert_eq!(dpop.mode, DpopMode::Required);
    assert_eq!(dpop.max_proof_age_seconds, 60);
    assert_eq!(dpop.clock_skew_seconds, 5);
    assert_eq!(dpop.algs_text, "ES256 ES384 EdDSA PS256");
    assert_eq!(dpop.nonce_lifetime_seconds, None);
    let (config, _) = config_with(json!({"nonce": {}, "max_proof_age": "30s", "clock_skew": "1s"}));
    let dpop = config.providers[0].dpop.as_ref().unwrap();
    assert_eq!(
        (
            dpop.nonce_lifetime_seconds,
            dpop.max_proof_age_seconds,
            dpop.clock_skew_seconds
        ),
        (Some(300), 30, 1)
    );
    let keys = Keys::load();
    for (dpop, field, reason) in [
        (
            json!({"mode": "sometimes"}),
            "providers.jwt.dpop.mode",
            "not a mode",
        ),
        (
            json!({"allowed_algs": ["ES256", "HS256"]}),
            "providers.jwt.dpop.allowed_algs[1]",
            "asymmetric",
        ),
        (
            json!({"allowed_algs": ["none"]}),
            "providers.jwt.dpop.allowed_algs[0]",
            "asymmetric",
        ),
        (
            json!({"allowed_algs": []}),
            "providers.jwt.dpop.allowed_algs",
            "at least one",
        ),
        (
            json!({"max_proof_age": "60"}),
            "providers.jwt.dpop.max_proof_age",
            "duration",
        ),
        (
            json!({"max_proof_age": "0s"}),
            "providers.jwt.dpop.max_proof_age",
            "between",
        ),
        (
            json!({"nonce": {"lifetime": "0s"}}),
            "providers.jwt.dpop.nonce.lifetime",
            "at least",
        ),
        (
            json!({"replay_cache_size": 0}),
            "providers.jwt.dpop.replay_cache_size",
            "between",
        ),
    ] {
        let config = json!({"providers": {"jwt": {
            "issuer": fixtures::ISSUER,
            "local_jwks": {"inline_string": keys.jwks().to_string()},
            "dpop": dpop
        }}});
        let error = FilterConfig::parse(config.to_string().as_bytes()).unwrap_err();
        assert_eq!(error.field, field, "{dpop}");
        assert!(error.reason.contains(reason), "{dpop}: {}", error.reason);
    }
    let unknown = json!({"providers": {"jwt": {
        "issuer": fixtures::ISSUER,
        "local_jwks": {"inline_string": keys.jwks().to_string()},
        "dpop": {"max_age": "60s"}
    }}});
    let error = FilterConfig::parse(unknown.to_string().as_bytes()).unwrap_err();
    assert!(error.to_string().contains("max_age"), "{error}");
}
