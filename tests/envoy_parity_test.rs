//! Real Envoy, this filter and Envoy's own jwt_authn side by side with the same provider configuration:
//! every fixture token must get the same verdict and status from both, and the body jwt_authn sends.

mod common;

use common::fixtures::{self, Expect, Keys};
use common::servers::{get_with_token, http_request};
use common::{fixture_config, Scenario};

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
