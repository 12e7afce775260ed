//! Token forms where jwt_authn 1.40 and this filter were compared one by one, side by side in one Envoy:
//! jwt_authn's remaining refusal message (`Jwt ED25519 signature is wrong length`), the payload header
//! with several tokens, and the one accept/refuse difference in token decoding (a `=`-padded
//! signature, which jwt_authn accepts and this filter refuses, RFC 7515 §2).

use crate::common;

use common::fixtures::{self, Keys};
use common::servers::{get_with_token, http_request};
use common::{fixture_config, Scenario};
use serde_json::{json, Value};

const ED25519_WRONG_LENGTH: &str = "Jwt ED25519 signature is wrong length";
const SIGNATURE_BAD_BASE64: &str = "Jwt signature is an invalid Base64url encoded";

/// `token` with its signature replaced by `signature`.
fn with_signature(token: &str, signature: &[u8]) -> String {
    let (signed, _) = token.rsplit_once('.').expect("three segments");
    format!("{signed}.{}", fixtures::b64(signature))
}

#[test]
fn ed25519_signatures_of_the_wrong_length_get_jwt_authn_message() {
    let scenario = Scenario::start(1, true, fixture_config);
    let keys = Keys::load();
    let claims = fixtures::good_claims(fixtures::now());
    let good = keys.ec.mint("EdDSA", &claims);
    let no_kid = keys
        .ec
        .sign("EdDSA", &json!({"alg": "EdDSA", "typ": "JWT"}), &claims);
    let cases = [
        (
            "63 bytes",
            with_signature(&good, &[7; 63]),
            ED25519_WRONG_LENGTH,
        ),
        (
            "65 bytes",
            with_signature(&good, &[7; 65]),
            ED25519_WRONG_LENGTH,
        ),
        // Without a kid every key is tried in order; the Ed25519 key stops the search.
        (
            "no kid, 32 bytes",
            with_signature(&no_kid, &[7; 32]),
            ED25519_WRONG_LENGTH,
        ),
        // The right length but not the key's signature: the usual message.
        (
            "64 bytes",
            with_signature(&good, &[7; 64]),
            fixtures::VERIFICATION_FAILS,
        ),
    ];
    for (name, token, body) in cases {
        for (listener, port) in [
            ("ours", scenario.envoy.wasm_port),
            ("jwt_authn", scenario.envoy.native_port),
        ] {
            let response = get_with_token(port, "/api/orders", &token);
            assert_eq!(
                (response.status, response.body.as_str()),
                (401, body),
                "{name}, {listener}"
            );
        }
    }
    for port in [scenario.envoy.wasm_port, scenario.envoy.native_port] {
        assert_eq!(get_with_token(port, "/api/orders", &good).status, 200);
    }
    scenario.envoy.assert_no_vm_failure();
}

/// RFC 7515 §2 defines base64url without padding; jwt_authn's decoder also takes `=` padding on the
/// signature. Kept strict here, and listed as an accept/refuse difference in docs/jwt-authn-fields.md.
#[test]
fn padded_signature_is_accepted_by_jwt_authn_and_refused_here() {
    let scenario = Scenario::start(1, true, fixture_config);
    let good = fixtures::good_token();
    // A 2048-bit RSA signature is 256 bytes: 342 base64url characters, two short of a multiple of 4.
    let signature = good.rsplit_once('.').expect("segments").1;
    assert_eq!(signature.len() % 4, 2);
    let padded = format!("{good}==");
    let ours = get_with_token(scenario.envoy.wasm_port, "/api/orders", &padded);
    let native = get_with_token(scenario.envoy.native_port, "/api/orders", &padded);
    assert_eq!(
        (ours.status, ours.body.as_str()),
        (401, SIGNATURE_BAD_BASE64)
    );
    assert_eq!(native.status, 200, "jwt_authn: {}", native.body);
    assert_eq!(
        native.upstream_headers()["x-jwt-sub"],
        json!([fixtures::SUBJECT])
    );
    assert_eq!(
        get_with_token(scenario.envoy.wasm_port, "/api/orders", &good).status,
        200
    );
    scenario.envoy.assert_no_vm_failure();
}

fn sorted(values: &Value) -> Vec<String> {
    let mut values: Vec<String> = values
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    values.sort();
    values
}

/// Two tokens of one provider (header and query parameter), both verified: jwt_authn adds one
/// forward_payload_header value per token, and so does this filter.
#[test]
fn forward_payload_header_has_one_value_per_token_like_jwt_authn() {
    let scenario = Scenario::start(1, true, fixture_config);
    let keys = Keys::load();
    let alice = fixtures::good_token();
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["sub"] = json!("bob");
    let bob = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    let payload = |token: &str| token.split('.').nth(1).expect("payload").to_string();
    let mut expected = vec![payload(&alice), payload(&bob)];
    expected.sort();
    let path = format!("/api/orders?access_token={bob}");
    let authorization = format!("Bearer {alice}");
    for (listener, port) in [
        ("ours", scenario.envoy.wasm_port),
        ("jwt_authn", scenario.envoy.native_port),
    ] {
        let response = http_request(port, &path, &[("authorization", authorization.as_bytes())]);
        assert_eq!(response.status, 200, "{listener}: {}", response.body);
        let upstream = response.upstream_headers();
        assert_eq!(sorted(&upstream["x-jwt-payload"]), expected, "{listener}");
        assert_eq!(
            sorted(&upstream["x-jwt-sub"]),
            ["alice", "bob"],
            "{listener}"
        );
    }
    // The same token twice (header and query): what each filter forwards.
    let path = format!("/api/orders?access_token={alice}");
    let mut counts = Vec::new();
    for port in [scenario.envoy.wasm_port, scenario.envoy.native_port] {
        let response = http_request(port, &path, &[("authorization", authorization.as_bytes())]);
        assert_eq!(response.status, 200, "{}", response.body);
        counts.push(sorted(&response.upstream_headers()["x-jwt-payload"]).len());
    }
    assert_eq!(
        counts,
        [1, 2],
        "payload values for one token twice: ours, jwt_authn"
    );
    scenario.envoy.assert_no_vm_failure();
}

/// A local_jwks without one usable key is refused at load by both: Envoy 1.40 will not start with it
/// for jwt_authn ("invalid local jwks"), and this filter's configuration is refused naming the field.
/// (jwt_authn's `Jwks doesn't have any valid public key` is so never sent.)
#[test]
fn local_jwks_without_a_usable_key_is_refused_at_load_by_both() {
    use common::envoy::{native_jwt_authn_filter, validate_config_file, TempDir};
    let keys = Keys::load();
    // A P-256 key whose point is not on the curve: skipped by both, leaving no key.
    let mut off_curve = keys.ec.p256_jwk();
    off_curve["y"] = json!(fixtures::b64(&[1; 32]));
    let local = json!({"keys": [off_curve]}).to_string();
    let mut config = fixture_config("http://unused.invalid/");
    let provider = config["providers"]["jwt"]
        .as_object_mut()
        .expect("provider");
    provider.remove("remote_jwks");
    provider.insert("local_jwks".into(), json!({"inline_string": local}));
    let refusal = jwt_authn_wasm::config::FilterConfig::parse(config.to_string().as_bytes())
        .expect_err("this filter refuses the configuration")
        .to_string();
    assert!(
        refusal.contains("providers.jwt.local_jwks.inline_string")
            && refusal.contains("is not a point of P-256"),
        "{refusal}"
    );
    let bootstrap = json!({"static_resources": {"listeners": [{
        "name": "native",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "native",
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200}}
                ]}]},
                "http_filters": [
                    native_jwt_authn_filter(&config),
                    {"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    }}
                ]
            }
        }]}]
    }]}});
    let dir = TempDir::new("local-jwks-no-key");
    let path = dir.0.join("bootstrap.json");
    std::fs::write(&path, bootstrap.to_string()).expect("write bootstrap");
    let (accepted, output) = validate_config_file(&path, &dir.0);
    assert!(!accepted, "Envoy accepted it for jwt_authn:\n{output}");
    assert!(output.contains("invalid local jwks"), "{output}");
    // The same bootstrap with the key on its curve is accepted, so the refusal is the key's.
    let mut good = config.clone();
    good["providers"]["jwt"]["local_jwks"]["inline_string"] =
        json!(json!({"keys": [keys.ec.p256_jwk()]}).to_string());
    let mut good_bootstrap = bootstrap;
    good_bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"][0] = native_jwt_authn_filter(&good);
    std::fs::write(&path, good_bootstrap.to_string()).expect("write bootstrap");
    let (accepted, output) = validate_config_file(&path, &dir.0);
    assert!(accepted, "{output}");
}
