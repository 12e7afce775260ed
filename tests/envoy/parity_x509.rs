//! The X.509 certificate map form of a key set (Google service accounts, Firebase), served by one JWKS
//! server to this filter and to Envoy's jwt_authn, and given inline as local_jwks to both: the same
//! verdicts and bodies, except the one documented difference (EC and Ed25519 certificates, which
//! jwt_authn refuses with the whole map).

use crate::common;

use common::envoy::{Envoy, EnvoySetup};
use common::fixtures::{self, Keys, FETCH_FAILED, NO_KEY, VERIFICATION_FAILS};
use common::servers::{get_with_token, EchoUpstream, JwksServer};
use common::x509::{certificate_pem, current_certificate_pem, SubjectKey};
use common::{fixture_config, Scenario};
use serde_json::{json, Value};

fn certificate_map(members: &[(&str, String)]) -> String {
    let object: serde_json::Map<String, Value> = members
        .iter()
        .map(|(kid, pem)| (kid.to_string(), json!(pem)))
        .collect();
    Value::Object(object).to_string()
}

/// Envoy with both filters configured by `configure`, the JWKS server serving `document`.
fn start(document: &str, configure: impl Fn(&str) -> Value) -> Scenario {
    let jwks = JwksServer::start(document.to_string());
    let upstream = EchoUpstream::start();
    let config = configure(&jwks.uri());
    let envoy = Envoy::start_edited(
        &EnvoySetup {
            filter_config: config.clone(),
            native_config: Some(config),
            upstream_port: upstream.port,
            jwks_port: jwks.port,
            native_jwks_port: None,
            concurrency: 1,
        },
        |_| {},
    );
    Scenario {
        jwks,
        upstream,
        envoy,
    }
}

fn local_config(document: &str) -> Value {
    let mut config = fixture_config("http://unused.invalid/");
    let provider = config["providers"]["jwt"]
        .as_object_mut()
        .expect("provider");
    provider.remove("remote_jwks");
    provider.insert(
        "local_jwks".into(),
        json!({"inline_string": document.to_string()}),
    );
    config
}

/// Each `(name, token, status, body)` against both listeners: the status from both, and the body
/// (`None`: allowed, the fixture's claims reached the upstream).
fn assert_both(scenario: &Scenario, cases: &[(&str, String, u16, Option<&str>)]) {
    for (name, token, status, body) in cases {
        for (listener, port) in [
            ("ours", scenario.envoy.wasm_port),
            ("jwt_authn", scenario.envoy.native_port),
        ] {
            let response = get_with_token(port, "/api/orders", token);
            assert_eq!(
                response.status, *status,
                "{name}, {listener}: {}",
                response.body
            );
            match body {
                Some(body) => assert_eq!(response.body, *body, "{name}, {listener}"),
                None => assert_eq!(
                    response.upstream_headers()["x-jwt-sub"],
                    json!([fixtures::SUBJECT]),
                    "{name}, {listener}"
                ),
            }
        }
    }
}

/// An RSA-only map (the form Google and Firebase publish), one certificate long expired: read alike by
/// both filters, remote and local.
#[test]
fn rsa_certificate_map_gets_jwt_authn_verdicts_remote_and_local() {
    let keys = Keys::load();
    let claims = fixtures::good_claims(fixtures::now());
    let document = certificate_map(&[
        (
            "k2048",
            current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048)),
        ),
        (
            "k4096",
            certificate_pem(&SubjectKey::rsa(&keys.rsa4096), (2000, 1, 1), (2001, 1, 1)),
        ),
    ]);
    let no_kid = fixtures::sign(
        &keys.rsa4096,
        "RS512",
        &json!({"alg": "RS512", "typ": "JWT"}),
        &claims,
    );
    let cases = [
        ("RS256", fixtures::good_token(), 200, None),
        (
            "PS384 under an expired certificate",
            fixtures::mint(&keys.rsa4096, "PS384", &claims),
            200,
            None,
        ),
        // Signed by the second key (the map's members come in kid order in both).
        ("no kid tries every key", no_kid, 200, None),
        (
            "another key under the kid",
            fixtures::mint(&keys.rsa2048_other, "RS256", &claims),
            401,
            Some(VERIFICATION_FAILS),
        ),
        (
            "kid not in the map",
            fixtures::mint(&keys.rsa3072, "RS256", &claims),
            401,
            Some(NO_KEY),
        ),
        (
            "ES256 token",
            keys.ec.mint("ES256", &claims),
            401,
            Some(NO_KEY),
        ),
    ];
    let remote = start(&document, fixture_config);
    assert_both(&remote, &cases);
    remote.envoy.assert_no_vm_failure();
    drop(remote);
    let local = start(&document, |_| local_config(&document));
    assert_both(&local, &cases);
    local.envoy.assert_no_vm_failure();
}

/// One certificate that cannot be read refuses the whole map in both filters: every request gets
/// "Jwks remote fetch is failed", the good certificate's tokens too.
#[test]
fn a_bad_certificate_refuses_the_whole_map_in_both() {
    let keys = Keys::load();
    let document = certificate_map(&[
        (
            "k2048",
            current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048)),
        ),
        (
            "broken",
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
                .to_string(),
        ),
    ]);
    let scenario = start(&document, fixture_config);
    assert_both(
        &scenario,
        &[(
            "good token, bad map",
            fixtures::good_token(),
            401,
            Some(FETCH_FAILED),
        )],
    );
    assert!(
        scenario
            .envoy
            .stat("jwt_authn_wasm.provider.jwt.jwks_fetch_failed.bad_certificate")
            .is_some_and(|n| n >= 1),
        "the refused map is counted under its reason"
    );
    scenario.envoy.assert_no_vm_failure();
}

/// The documented difference: certificates with EC or Ed25519 keys are read here (as their JWKs are);
/// jwt_authn takes only RSA keys from certificates and refuses the map, RSA tokens included.
#[test]
fn ec_and_ed25519_certificates_are_read_here_where_jwt_authn_refuses_the_map() {
    let keys = Keys::load();
    let claims = fixtures::good_claims(fixtures::now());
    let document = certificate_map(&[
        (
            "k2048",
            current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048)),
        ),
        (
            "kp256",
            current_certificate_pem(&SubjectKey::p256(&keys.ec)),
        ),
        (
            "kp384",
            current_certificate_pem(&SubjectKey::p384(&keys.ec)),
        ),
        (
            "ked25519",
            current_certificate_pem(&SubjectKey::ed25519(&keys.ec)),
        ),
    ]);
    let scenario = start(&document, fixture_config);
    for (alg, token) in [
        ("RS256", fixtures::good_token()),
        ("ES256", keys.ec.mint("ES256", &claims)),
        ("ES384", keys.ec.mint("ES384", &claims)),
        ("EdDSA", keys.ec.mint("EdDSA", &claims)),
    ] {
        let ours = get_with_token(scenario.envoy.wasm_port, "/api", &token);
        assert_eq!(ours.status, 200, "{alg}: {}", ours.body);
        let native = get_with_token(scenario.envoy.native_port, "/api", &token);
        assert_eq!(
            (native.status, native.body.as_str()),
            (401, FETCH_FAILED),
            "{alg}"
        );
    }
    scenario.envoy.assert_no_vm_failure();
}
