//! Real Envoy, this filter and Envoy's own jwt_authn side by side with the same provider configuration:
//! every fixture token must get the same verdict and status from both, and the body jwt_authn sends.

use crate::common;

use common::fixtures::{self, Expect, Keys};
use common::servers::{get_with_token, http_request};
use common::{fixture_config, Scenario};
use serde_json::{json, Value};

#[test]
fn every_fixture_gets_jwt_authn_verdict_status_and_body() {
    let scenario = Scenario::start(2, true, fixture_config);
    let keys = Keys::load();
    let mut mismatches = Vec::new();
    for fixture in fixtures::fixtures(&keys, fixtures::now()) {
        let ours = get_with_token(scenario.envoy.wasm_port, "/api/orders?x=1", &fixture.token);
        let native = get_with_token(
            scenario.envoy.native_port,
            "/api/orders?x=1",
            &fixture.token,
        );
        let (expected_status, expected_body) = match fixture.expect {
            Expect::Allow => (200, None),
            Expect::Deny(status, body) => (status, Some(fixture.our_body.unwrap_or(body))),
        };
        let native_body_expected = match fixture.expect {
            Expect::Allow => None,
            Expect::Deny(_, body) => Some(body),
        };
        let line = format!(
            "{:28} ours {} {:?} | native {} {:?}",
            fixture.name,
            ours.status,
            if ours.status == 200 {
                ""
            } else {
                ours.body.as_str()
            },
            native.status,
            if native.status == 200 {
                ""
            } else {
                native.body.as_str()
            }
        );
        println!("{line}");
        let ours_ok =
            ours.status == expected_status && expected_body.is_none_or(|b| ours.body == b);
        let native_ok = native.status == expected_status
            && native_body_expected.is_none_or(|b| native.body == b);
        if !ours_ok || !native_ok {
            mismatches.push(line.clone());
        }
        if ours.status == 200 && native.status == 200 {
            // Same identity reaches the upstream from both filters, and the token does not.
            let (mine, theirs) = (ours.upstream_headers(), native.upstream_headers());
            for header in ["x-jwt-sub", "x-jwt-team", "x-jwt-level", "x-jwt-payload"] {
                assert_eq!(
                    mine.get(header),
                    theirs.get(header),
                    "{}: {header}",
                    fixture.name
                );
                assert!(
                    mine.get(header).is_some(),
                    "{}: {header} missing upstream",
                    fixture.name
                );
            }
            assert_eq!(mine["x-jwt-sub"], serde_json::json!([fixtures::SUBJECT]));
            assert_eq!(
                mine.get("authorization"),
                None,
                "{}: token forwarded",
                fixture.name
            );
        }
        if ours.status != 200 {
            let challenge = ours.header("www-authenticate").unwrap_or_default();
            assert_eq!(
                Some(challenge),
                native.header("www-authenticate"),
                "{}: WWW-Authenticate differs from jwt_authn's",
                fixture.name
            );
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{}: {challenge}",
                fixture.name
            );
        }
    }
    scenario.envoy.assert_no_vm_failure();
    assert!(
        mismatches.is_empty(),
        "verdict mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn missing_token_is_401_with_plain_challenge_like_jwt_authn() {
    let scenario = Scenario::start(1, true, fixture_config);
    let ours = http_request(scenario.envoy.wasm_port, "/api/orders", &[]);
    let native = http_request(scenario.envoy.native_port, "/api/orders", &[]);
    assert_eq!((ours.status, ours.body.as_str()), (401, fixtures::MISSING));
    assert_eq!(
        (native.status, native.body.as_str()),
        (401, fixtures::MISSING)
    );
    assert_eq!(
        ours.header("www-authenticate"),
        native.header("www-authenticate")
    );
    assert_eq!(
        ours.header("www-authenticate"),
        Some("Bearer realm=\"http://test.local/api/orders\"")
    );
}

/// How the Authorization header is read, next to jwt_authn: the prefix may stand anywhere in the value
/// and the token is what follows. The one deliberate difference: "bearer"/"BEARER" are accepted here
/// (RFC 7235: schemes are case-insensitive), while jwt_authn 1.40 answers "Jwt is missing".
#[test]
fn authorization_header_forms_match_jwt_authn_except_scheme_case() {
    let scenario = Scenario::start(1, true, fixture_config);
    let token = fixtures::good_token();
    let cases = [
        ("Bearer", format!("Bearer {token}"), 200, 200),
        ("two spaces", format!("Bearer  {token}"), 200, 200),
        (
            "prefix after other text",
            format!("Token Bearer {token}"),
            200,
            200,
        ),
        ("no prefix", token.clone(), 401, 401),
        (
            "Basic scheme",
            "Basic YWxpY2U6c2VjcmV0".to_string(),
            401,
            401,
        ),
        ("prefix only", "Bearer ".to_string(), 401, 401),
        ("trailing text", format!("Bearer {token} extra"), 401, 401),
        ("quoted", format!("Bearer \"{token}\""), 401, 401),
        ("after =", format!("Bearer ={token}"), 200, 200),
        ("after a comma", format!("Bearer ,{token}"), 200, 200),
        ("lower-case scheme", format!("bearer {token}"), 200, 401),
        ("upper-case scheme", format!("BEARER {token}"), 200, 401),
    ];
    for (name, value, ours_expected, native_expected) in cases {
        let ours = http_request(
            scenario.envoy.wasm_port,
            "/api",
            &[("authorization", value.as_bytes())],
        );
        let native = http_request(
            scenario.envoy.native_port,
            "/api",
            &[("authorization", value.as_bytes())],
        );
        assert_eq!(
            ours.status, ours_expected,
            "{name}: ours answered {} {}",
            ours.status, ours.body
        );
        assert_eq!(
            native.status, native_expected,
            "{name}: jwt_authn answered {} {}",
            native.status, native.body
        );
    }
}

#[test]
fn access_token_query_parameter_is_read_and_stripped_like_jwt_authn() {
    let scenario = Scenario::start(1, true, fixture_config);
    let token = fixtures::good_token();
    let path = format!("/api?a=1&access_token={token}&b=2");
    let ours = http_request(scenario.envoy.wasm_port, &path, &[]);
    let native = http_request(scenario.envoy.native_port, &path, &[]);
    assert_eq!(
        (ours.status, native.status),
        (200, 200),
        "ours: {}",
        ours.body
    );
    assert_eq!(ours.upstream_path(), "/api?a=1&b=2");
    assert_eq!(ours.upstream_path(), native.upstream_path());
    assert_eq!(
        ours.upstream_headers()["x-jwt-sub"],
        serde_json::json!(["alice"])
    );
}

/// A route that matches on a claim header, ahead of the upstream route, in both listeners.
fn add_claim_route(bootstrap: &mut Value) {
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .expect("listeners");
    for listener in listeners {
        let routes = listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
            ["virtual_hosts"][0]["routes"]
            .as_array_mut()
            .expect("routes");
        routes.insert(
            0,
            json!({
                "match": {"prefix": "/", "headers": [
                    {"name": "x-jwt-sub", "string_match": {"exact": fixtures::SUBJECT}}
                ]},
                "direct_response": {"status": 200, "body": {"inline_string": "routed by claim"}}
            }),
        );
    }
}

#[test]
fn clear_route_cache_routes_on_verified_claims_like_jwt_authn_and_pads_the_payload_header() {
    let scenario = Scenario::start_edited(
        1,
        true,
        |uri| {
            let mut config = fixture_config(uri);
            config["providers"]["jwt"]["clear_route_cache"] = json!(true);
            config["providers"]["jwt"]["pad_forward_payload_header"] = json!(true);
            config
        },
        add_claim_route,
    );
    let keys = Keys::load();
    let alice = fixtures::good_token();
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["sub"] = json!("bob");
    let bob = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    for (listener, port) in [
        ("ours", scenario.envoy.wasm_port),
        ("native", scenario.envoy.native_port),
    ] {
        // The route is picked again after the claim headers are set.
        let routed = get_with_token(port, "/api/orders", &alice);
        assert_eq!(
            (routed.status, routed.body.as_str()),
            (200, "routed by claim"),
            "{listener}"
        );
        let other = get_with_token(port, "/api/orders", &bob);
        assert_eq!(other.status, 200, "{listener}");
        assert_eq!(
            other.upstream_headers()["x-jwt-sub"],
            json!(["bob"]),
            "{listener}"
        );
    }
    // The forwarded payload is padded, as jwt_authn pads it.
    let ours = get_with_token(scenario.envoy.wasm_port, "/api/orders", &bob).upstream_headers();
    let native = get_with_token(scenario.envoy.native_port, "/api/orders", &bob).upstream_headers();
    assert_eq!(ours["x-jwt-payload"], native["x-jwt-payload"]);
    let payload = ours["x-jwt-payload"][0].as_str().expect("payload header");
    assert_eq!(payload.len() % 4, 0, "{payload}");
    // A client's own copy of a claim header never picks the route: this filter drops it, even where no
    // token is required, and the route is picked again without it.
    let forged = http_request(
        scenario.envoy.wasm_port,
        "/public/page",
        &[("x-jwt-sub", fixtures::SUBJECT.as_bytes())],
    );
    assert_eq!(forged.status, 200);
    assert_eq!(forged.upstream_headers().get("x-jwt-sub"), None);
    let native_forged = http_request(
        scenario.envoy.native_port,
        "/public/page",
        &[("x-jwt-sub", fixtures::SUBJECT.as_bytes())],
    );
    // jwt_authn leaves the client's copy in place there, and it picks the route (the README says so).
    assert_eq!(native_forged.body, "routed by claim");
    scenario.envoy.assert_no_vm_failure();
}

/// A counter from Envoy's /stats, by its full name.
#[test]
fn stat_prefix_puts_the_counters_under_their_own_name_like_jwt_authn() {
    let scenario = Scenario::start(1, true, |uri| {
        let mut config = fixture_config(uri);
        config["stat_prefix"] = json!("orders");
        config
    });
    let token = fixtures::good_token();
    for port in [scenario.envoy.wasm_port, scenario.envoy.native_port] {
        assert_eq!(get_with_token(port, "/api/orders", &token).status, 200);
        assert_eq!(http_request(port, "/api/orders", &[]).status, 401);
    }
    // Allowed requests are added to the counter on the next tick (every 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while scenario
        .envoy
        .stat("jwt_authn_wasm.orders.allowed")
        .is_none()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        scenario.envoy.stat("jwt_authn_wasm.orders.allowed"),
        Some(1)
    );
    assert_eq!(
        scenario
            .envoy
            .stat("jwt_authn_wasm.orders.denied.jwt_missing"),
        Some(1)
    );
    assert!(
        scenario
            .envoy
            .stat("jwt_authn_wasm.orders.provider.jwt.jwks_fetch_success")
            .is_some_and(|n| n >= 1),
        "fetch counted under the prefix"
    );
    assert_eq!(scenario.envoy.stat("jwt_authn_wasm.allowed"), None);
    assert_eq!(
        scenario
            .envoy
            .envoy_stat("http.native.jwt_authn.orders.allowed"),
        Some(1)
    );
    assert_eq!(
        scenario
            .envoy
            .envoy_stat("http.native.jwt_authn.orders.denied"),
        Some(1)
    );
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn claim_path_reaches_namespaced_claims_like_jwt_authn() {
    let headers = json!([
        {"header_name": "x-tenant", "claim_path": [{"key": "https://example.com/tenant"}]},
        {"header_name": "x-org-id", "claim_path": [{"key": "https://example.com"}, {"key": "org"}, {"key": "id"}]},
        {"header_name": "x-dotted", "claim_path": [{"key": "a.b"}]},
        {"header_name": "x-absent", "claim_path": [{"key": "org"}, {"key": "nope"}]},
        {"header_name": "x-team", "claim_name": "org.team"}
    ]);
    let scenario = Scenario::start(1, true, |uri| {
        let mut config = fixture_config(uri);
        config["providers"]["jwt"]["claim_to_headers"] = headers.clone();
        config
    });
    let keys = Keys::load();
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["https://example.com/tenant"] = json!("acme");
    claims["https://example.com"] = json!({"org": {"id": 7}});
    claims["a.b"] = json!("whole name");
    claims["a"] = json!({"b": "nested"});
    let token = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    let ours = get_with_token(scenario.envoy.wasm_port, "/api/orders", &token);
    let native = get_with_token(scenario.envoy.native_port, "/api/orders", &token);
    assert_eq!((ours.status, native.status), (200, 200), "{}", ours.body);
    let (ours, native) = (ours.upstream_headers(), native.upstream_headers());
    for (header, expected) in [
        ("x-tenant", json!(["acme"])),
        ("x-org-id", json!(["7"])),
        ("x-dotted", json!(["whole name"])),
        ("x-team", json!(["payments"])),
        ("x-absent", Value::Null),
    ] {
        assert_eq!(ours[header], expected, "ours: {header}");
        assert_eq!(native[header], expected, "jwt_authn: {header}");
    }
}

#[test]
fn es512_tokens_verify_like_jwt_authn() {
    use p521::ecdsa::signature::Signer as _;
    let signing = p521::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = p521::ecdsa::VerifyingKey::from(&signing).to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-521", "alg": "ES512", "kid": "k521",
        "x": fixtures::b64(point.x().expect("x")), "y": fixtures::b64(point.y().expect("y"))});
    let scenario = Scenario::start(1, true, |_| {
        json!({
            "providers": {"jwt": {
                "issuer": fixtures::ISSUER,
                "local_jwks": {"inline_string": json!({"keys": [jwk.clone()]}).to_string()},
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}]
        })
    });
    let sign = |claims: &Value| {
        let header = json!({"alg": "ES512", "typ": "JWT", "kid": "k521"});
        let signed = format!(
            "{}.{}",
            fixtures::b64(header.to_string().as_bytes()),
            fixtures::b64(claims.to_string().as_bytes())
        );
        let signature: p521::ecdsa::Signature = signing.sign(signed.as_bytes());
        format!("{signed}.{}", fixtures::b64(&signature.to_bytes()))
    };
    let good = sign(&fixtures::good_claims(fixtures::now()));
    let mut expired_claims = fixtures::good_claims(fixtures::now());
    expired_claims["exp"] = json!(fixtures::now() - 3600);
    let expired = sign(&expired_claims);
    let tampered = format!("{}x", &good[..good.len() - 1]);
    for (token, status) in [(&good, 200), (&expired, 401), (&tampered, 401)] {
        let ours = get_with_token(scenario.envoy.wasm_port, "/api", token);
        let native = get_with_token(scenario.envoy.native_port, "/api", token);
        assert_eq!(ours.status, native.status, "{}", ours.body);
        assert_eq!(ours.status, status, "{}", ours.body);
        if status != 200 {
            assert_eq!(ours.body, native.body);
        }
    }
    let ours = get_with_token(scenario.envoy.wasm_port, "/api", &good).upstream_headers();
    assert_eq!(ours["x-jwt-sub"], json!([fixtures::SUBJECT]));
}

#[test]
fn lenient_jwks_forms_jwt_authn_reads_are_read_here_too() {
    let keys = Keys::load();
    let mut p384 = keys.ec.p384_jwk();
    p384.as_object_mut().expect("object").remove("crv");
    // A trailing comma in the key list and a P-384 key known only by its alg, as jwt_authn reads them.
    let jwks = format!("{{\"keys\": [{}, {},]}}", keys.rsa2048.jwk(None), p384);
    let scenario = Scenario::start(1, true, |_| {
        json!({
            "providers": {"jwt": {
                "issuer": fixtures::ISSUER,
                "local_jwks": {"inline_string": jwks.clone()}
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}]
        })
    });
    let claims = fixtures::good_claims(fixtures::now());
    for token in [fixtures::good_token(), keys.ec.mint("ES384", &claims)] {
        let ours = get_with_token(scenario.envoy.wasm_port, "/api", &token);
        let native = get_with_token(scenario.envoy.native_port, "/api", &token);
        assert_eq!(
            (ours.status, native.status),
            (200, 200),
            "{} | {}",
            ours.body,
            native.body
        );
    }
}

#[test]
fn many_claim_headers_reach_the_upstream_with_every_other_header_like_jwt_authn() {
    // Eight claim headers, the token removed, a query-parameter token cut from the path: enough
    // changes that the filter replaces the whole header map in one host call
    // (`request::headers::rewrite_in_one_call`). What reaches the upstream must be what jwt_authn sends,
    // header for header, with the client's own headers and their order of values intact.
    let claim_headers: Vec<Value> = ["sub", "iss", "aud", "exp", "iat", "nbf", "team", "scope"]
        .iter()
        .map(|claim| json!({"header_name": format!("x-claim-{claim}"), "claim_name": claim}))
        .collect();
    let scenario = Scenario::start(1, true, |uri| {
        let mut config = fixture_config(uri);
        config["providers"]["jwt"]["claim_to_headers"] = json!(claim_headers.clone());
        config
    });
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["team"] = json!("payments");
    claims["scope"] = json!("read write");
    let token = fixtures::mint(&Keys::load().rsa2048, "RS256", &claims);
    let bearer = format!("Bearer {token}");
    let client_headers: [(&str, &[u8]); 4] = [
        ("authorization", bearer.as_bytes()),
        ("x-custom", b"one"),
        ("x-custom", b"two"),
        ("cookie", b"a=1; b=2"),
    ];
    for (path, headers) in [
        ("/api/orders?q=1".to_string(), &client_headers[..]),
        (
            format!("/api?a=1&access_token={token}&b=2"),
            &client_headers[1..],
        ),
    ] {
        let ours = http_request(scenario.envoy.wasm_port, &path, headers);
        let native = http_request(scenario.envoy.native_port, &path, headers);
        assert_eq!((ours.status, native.status), (200, 200), "{}", ours.body);
        assert_eq!(ours.upstream_path(), native.upstream_path());
        let (ours, native) = (ours.upstream_headers(), native.upstream_headers());
        assert_eq!(ours["x-claim-team"], json!(["payments"]));
        assert_eq!(ours["x-custom"], json!(["one", "two"]));
        assert_eq!(ours["authorization"], Value::Null);
        // Envoy's own per-request headers differ between two requests.
        let comparable = |headers: &Value| -> Value {
            let mut headers = headers.clone();
            if let Some(map) = headers.as_object_mut() {
                map.retain(|name, _| name != "x-request-id");
            }
            headers
        };
        assert_eq!(comparable(&ours), comparable(&native), "path {path}");
    }
}
