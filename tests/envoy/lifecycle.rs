//! Real Envoy: the JWKS lifecycle (first fetch, waiting requests, failures, one fetch per process),
//! local keys, refused configuration, and hostile headers.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::envoy::{Envoy, EnvoySetup};
use common::fixtures::{self, Keys};
use common::servers::{get_with_token, http_request, EchoUpstream, JwksServer};
use common::{fixture_config, Scenario};

#[test]
fn valid_token_sent_the_moment_envoy_is_ready_gets_200() {
    let keys = Keys::load();
    let jwks = JwksServer::start(keys.jwks().to_string());
    // A slow JWKS server: Envoy reports ready long before the first fetch can complete.
    jwks.set_delay(Duration::from_millis(400));
    let upstream = EchoUpstream::start();
    let envoy = Envoy::spawn(&EnvoySetup {
        filter_config: fixture_config(&jwks.uri()),
        native_config: None,
        upstream_port: upstream.port,
        jwks_port: jwks.port,
        native_jwks_port: None,
        concurrency: 4,
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !envoy.is_ready() {
        assert!(
            Instant::now() < deadline,
            "Envoy never became ready:\n{}",
            envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Several at once, so they land on several workers: only one of them fetches, the others must be
    // resumed from shared data.
    let token = fixtures::good_token();
    let port = envoy.wasm_port;
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let token = token.clone();
            std::thread::spawn(move || get_with_token(port, &format!("/api/first/{i}"), &token))
        })
        .collect();
    for request in requests {
        let response = request.join().expect("request thread");
        assert_eq!(response.status, 200, "request at ready: {}", response.body);
        assert_eq!(response.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    }
    assert_eq!(jwks.requests(), 1, "one fetch for the whole process");
    envoy.assert_no_vm_failure();
}

/// A request that needs two remote providers' keys before either has arrived waits for both in turn.
#[test]
fn a_request_needing_two_providers_waits_for_both_key_sets() {
    let keys = Keys::load();
    let jwks = JwksServer::start(keys.jwks().to_string());
    jwks.route("/beta.json", &keys.jwks().to_string());
    // Slow enough that both fetches are still under way when Envoy reports ready.
    jwks.set_delay(Duration::from_millis(1500));
    let upstream = EchoUpstream::start();
    let remote = |path: &str| json!({"http_uri": {"uri": format!("http://127.0.0.1:{}{path}", jwks.port), "cluster": "jwks", "timeout": "5s"}});
    let beta_issuer = "https://beta.example.com";
    let config = json!({
        "providers": {
            "alpha": {"issuer": fixtures::ISSUER, "remote_jwks": remote("/.well-known/jwks.json"),
                      "claim_to_headers": [{"header_name": "x-alpha-sub", "claim_name": "sub"}]},
            "beta": {"issuer": beta_issuer, "remote_jwks": remote("/beta.json"),
                     "from_headers": [{"name": "x-beta-token"}],
                     "claim_to_headers": [{"header_name": "x-beta-sub", "claim_name": "sub"}]}
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "alpha"}, {"provider_name": "beta"}
        ]}}}]
    });
    let envoy = Envoy::spawn(&EnvoySetup {
        filter_config: config,
        native_config: None,
        upstream_port: upstream.port,
        jwks_port: jwks.port,
        native_jwks_port: None,
        concurrency: 2,
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !envoy.is_ready() {
        assert!(
            Instant::now() < deadline,
            "Envoy never became ready:\n{}",
            envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut beta_claims = fixtures::good_claims(fixtures::now());
    beta_claims["iss"] = json!(beta_issuer);
    beta_claims["sub"] = json!("bob");
    let beta = keys.ec.mint("EdDSA", &beta_claims);
    let alpha = format!("Bearer {}", fixtures::good_token());
    let started = Instant::now();
    let response = http_request(
        envoy.wasm_port,
        "/api",
        &[
            ("authorization", alpha.as_bytes()),
            ("x-beta-token", beta.as_bytes()),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let upstream_headers = response.upstream_headers();
    assert_eq!(upstream_headers["x-alpha-sub"], json!(["alice"]));
    assert_eq!(upstream_headers["x-beta-sub"], json!(["bob"]));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the request did wait for the slow key sets"
    );
    let mut paths = jwks.paths();
    paths.sort();
    paths.dedup();
    assert_eq!(paths, vec!["/.well-known/jwks.json", "/beta.json"]);
    envoy.assert_no_vm_failure();
}

#[test]
fn unreachable_jwks_refuses_waiting_requests_like_jwt_authn() {
    let scenario = Scenario::start(2, true, fixture_config);
    // The scenario's JWKS answered the first fetch; make a second Envoy whose JWKS always fails.
    drop(scenario);
    let jwks = JwksServer::start(String::new());
    jwks.set(500, "boom");
    let upstream = EchoUpstream::start();
    let config = fixture_config(&jwks.uri());
    let envoy = Envoy::start(&EnvoySetup {
        filter_config: config.clone(),
        native_config: Some(config),
        upstream_port: upstream.port,
        jwks_port: jwks.port,
        native_jwks_port: None,
        concurrency: 2,
    });
    let started = Instant::now();
    let ours = get_with_token(envoy.wasm_port, "/api", &fixtures::good_token());
    let waited = started.elapsed();
    let native = get_with_token(envoy.native_port, "/api", &fixtures::good_token());
    assert_eq!(
        (ours.status, ours.body.as_str()),
        (401, fixtures::FETCH_FAILED)
    );
    assert_eq!(
        (native.status, native.body.as_str()),
        (401, fixtures::FETCH_FAILED)
    );
    assert!(
        waited < Duration::from_secs(6),
        "bounded by http_uri.timeout (5s): waited {waited:?}"
    );
    // Tokens that fail before keys are needed are refused at once, fetch or no fetch.
    let expired = {
        let mut claims = fixtures::good_claims(fixtures::now());
        claims["exp"] = json!(1);
        fixtures::mint(&Keys::load().rsa2048, "RS256", &claims)
    };
    let response = get_with_token(envoy.wasm_port, "/api", &expired);
    assert_eq!(
        (response.status, response.body.as_str()),
        (401, fixtures::EXPIRED)
    );
    assert!(
        envoy.log().contains("HTTP status 500"),
        "the failure reason is logged"
    );
    envoy.assert_no_vm_failure();
}

#[test]
fn local_jwks_verifies_without_any_fetch() {
    let keys = Keys::load();
    let scenario = Scenario::start(1, true, |_| {
        json!({
            "providers": {"local": {
                "issuer": fixtures::ISSUER,
                "local_jwks": {"inline_string": keys.jwks().to_string()},
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "local"}}]
        })
    });
    let ours = get_with_token(scenario.envoy.wasm_port, "/", &fixtures::good_token());
    assert_eq!(ours.status, 200, "{}", ours.body);
    assert_eq!(ours.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    let bad = get_with_token(
        scenario.envoy.wasm_port,
        "/",
        &format!("{}x", fixtures::good_token()),
    );
    assert_eq!(bad.status, 401);
    assert_eq!(scenario.jwks.requests(), 0, "local_jwks must not fetch");
}

#[test]
fn bad_configuration_is_refused_at_load_with_the_field_named() {
    let jwks = JwksServer::start(String::new());
    let upstream = EchoUpstream::start();
    let mut config = fixture_config(&jwks.uri());
    config["rules"][1]["requires"]["provider_name"] = json!("missing");
    let mut envoy = Envoy::spawn(&EnvoySetup {
        filter_config: config,
        native_config: None,
        upstream_port: upstream.port,
        jwks_port: jwks.port,
        native_jwks_port: None,
        concurrency: 1,
    });
    let status = envoy.wait_exit(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| !s.success()),
        "Envoy must refuse the configuration"
    );
    let log = envoy.log();
    assert!(
        log.contains(
            "configuration refused: rules[1].requires.provider_name: no provider named \"missing\""
        ),
        "the log names the field:\n{}",
        envoy.log_tail()
    );
    envoy.assert_no_panic();
}

#[test]
fn identity_headers_from_clients_never_reach_the_upstream() {
    let scenario = Scenario::start(1, false, fixture_config);
    let spoofed: [(&str, &[u8]); 2] = [
        ("x-jwt-sub", b"mallory"),
        ("x-jwt-payload", b"eyJzdWIiOiJtYWxsb3J5In0"),
    ];
    let public = http_request(scenario.envoy.wasm_port, "/public/x", &spoofed);
    assert_eq!(public.status, 200);
    assert_eq!(public.upstream_headers().get("x-jwt-sub"), None);
    assert_eq!(public.upstream_headers().get("x-jwt-payload"), None);
    let auth = format!("Bearer {}", fixtures::good_token());
    let mut headers = spoofed.to_vec();
    headers.push(("authorization", auth.as_bytes()));
    let api = http_request(scenario.envoy.wasm_port, "/api", &headers);
    assert_eq!(api.status, 200);
    assert_eq!(api.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    assert_eq!(
        api.upstream_headers().get("authorization"),
        None,
        "forward: false strips the token"
    );
}

#[test]
fn non_utf8_and_oversize_headers_are_refused_and_the_filter_keeps_serving() {
    let scenario = Scenario::start(1, false, fixture_config);
    let port = scenario.envoy.wasm_port;
    let hostile: Vec<Vec<(&str, Vec<u8>)>> = vec![
        vec![("authorization", b"Bearer \xff\xfe\xfd".to_vec())],
        vec![("authorization", b"Bearer a.\xc3\x28.b".to_vec())],
        vec![(
            "authorization",
            [b"Bearer ".as_slice(), &vec![b'a'; 40_000]].concat(),
        )],
        vec![
            ("x-jwt-sub", b"\xff".to_vec()),
            ("authorization", b"Bearer x.y.z".to_vec()),
        ],
    ];
    for headers in hostile {
        let borrowed: Vec<(&str, &[u8])> =
            headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let response = http_request(port, "/api", &borrowed);
        assert_eq!(
            response.status, 401,
            "{:?}: {}",
            headers[0].0, response.body
        );
    }
    let good = get_with_token(port, "/api", &fixtures::good_token());
    assert_eq!(good.status, 200, "still serving after hostile input");
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn one_fetch_per_period_for_the_whole_process() {
    let scenario = Scenario::start(4, false, |uri| {
        let mut config = fixture_config(uri);
        config["providers"]["jwt"]["remote_jwks"]["cache_duration"] = json!("1s");
        config
    });
    let token = fixtures::good_token();
    let before = scenario.jwks.requests();
    let window = Duration::from_secs(5);
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < window {
        assert_eq!(
            get_with_token(scenario.envoy.wasm_port, "/api", &token).status,
            200
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let fetches = scenario.jwks.requests() - before;
    // Five periods in the window: at most one fetch per period (plus one for a period boundary).
    assert!(
        fetches <= 6,
        "{fetches} fetches in 5 s at cache_duration 1s with 4 workers"
    );
    assert!(
        fetches >= 3,
        "keys are refreshed on schedule: {fetches} fetches"
    );
    assert!(served > 50);
}

#[test]
fn jwks_outage_keeps_serving_with_the_last_good_keys() {
    let scenario = Scenario::start(2, false, |uri| {
        let mut config = fixture_config(uri);
        config["providers"]["jwt"]["remote_jwks"]["cache_duration"] = json!("1s");
        config
    });
    let token = fixtures::good_token();
    assert_eq!(
        get_with_token(scenario.envoy.wasm_port, "/api", &token).status,
        200
    );
    scenario.jwks.set(500, "down");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let response = get_with_token(scenario.envoy.wasm_port, "/api", &token);
        assert_eq!(
            response.status, 200,
            "refused during outage: {}",
            response.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    scenario.jwks.set(200, "{not json");
    // Retries back off (0.5 s doubling), so wait for the next attempt rather than a fixed time.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !scenario.envoy.log().contains("not a JWK set") {
        assert!(
            Instant::now() < deadline,
            "no retry seen:\n{}",
            scenario.envoy.log_tail()
        );
        let response = get_with_token(scenario.envoy.wasm_port, "/api", &token);
        assert_eq!(
            response.status, 200,
            "refused with invalid JWKS: {}",
            response.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = scenario.envoy.log();
    assert!(log.contains("HTTP status 500"), "outage logged");
    assert!(log.contains("not a JWK set"), "invalid JSON logged");
}
