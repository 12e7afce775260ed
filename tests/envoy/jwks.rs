//! Real Envoy at --concurrency 4 against a JWKS server the test can fault: one fetch per period for the
//! process, no valid request refused while the JWKS fails, new keys picked up at once, unknown-kid floods
//! rate-limited, OIDC discovery, and the metrics that show all of it.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fixtures::{self, Keys, TestKey};
use common::servers::{get_with_token, http_request, http_request_with_body};
use common::{fixture_config, Scenario};

/// The fixture configuration with a short cache period and fetch timeout.
fn short_lived(uri: &str, cache_duration: &str, extra: Value) -> Value {
    let mut config = fixture_config(uri);
    let remote = &mut config["providers"]["jwt"]["remote_jwks"];
    remote["cache_duration"] = json!(cache_duration);
    remote["http_uri"]["timeout"] = json!("1s");
    for (k, v) in extra.as_object().expect("object") {
        remote[k] = v.clone();
    }
    config
}

/// A key the issuer publishes later, under a kid the filter has never seen.
fn rotated_key(keys: &Keys) -> TestKey {
    TestKey {
        kid: "k-rotated",
        private: keys.rsa2048_other.private.clone(),
    }
}

fn jwks_with(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Sends valid requests from `threads` threads until stopped; collects every non-200 answer.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<String>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(port: u16, threads: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let token = fixtures::good_token();
        let handles = (0..threads)
            .map(|_| {
                let (stop, sent, refused, token) =
                    (stop.clone(), sent.clone(), refused.clone(), token.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let response = get_with_token(port, "/api", &token);
                        sent.fetch_add(1, Ordering::SeqCst);
                        if response.status != 200 {
                            refused
                                .lock()
                                .expect("lock")
                                .push(format!("{} {}", response.status, response.body));
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            sent,
            refused,
            handles,
        }
    }

    /// Stops and returns (sent, refused answers).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in self.handles {
            handle.join().expect("traffic thread");
        }
        let refused = self.refused.lock().expect("lock").clone();
        (self.sent.load(Ordering::SeqCst), refused)
    }
}

#[test]
fn at_most_one_fetch_per_period_for_the_process_at_concurrency_4() {
    let scenario = Scenario::start(4, false, |uri| short_lived(uri, "2s", json!({})));
    let traffic = Traffic::start(scenario.envoy.wasm_port, 2);
    let before = scenario.jwks.requests();
    std::thread::sleep(Duration::from_secs(10));
    let fetches = scenario.jwks.requests() - before;
    let (sent, refused) = traffic.finish();
    println!(
        "FIGURE fetches in 10 s at cache_duration 2s, --concurrency 4: {fetches} ({sent} requests)"
    );
    assert!(refused.is_empty(), "refused: {refused:?}");
    assert!(
        fetches <= 6,
        "{fetches} fetches in 10 s: more than one per 2 s period"
    );
    assert!(fetches >= 4, "refreshes keep to the period: only {fetches}");
}

/// A named change to the JWKS server, and how long it lasts.
type Fault<'a> = (&'static str, Box<dyn Fn() + 'a>, Duration);

#[test]
fn no_valid_request_is_refused_while_the_jwks_endpoint_fails() {
    let keys = Keys::load();
    let scenario = Scenario::start(4, false, |uri| {
        short_lived(
            uri,
            "2s",
            json!({
                "max_jwks_bytes": 16384,
                "retry_policy": {"retry_back_off": {"base_interval": "0.2s", "max_interval": "1s"}}
            }),
        )
    });
    let traffic = Traffic::start(scenario.envoy.wasm_port, 2);
    let oversize = jwks_with(&[
        keys.rsa2048.jwk(None),
        json!({"kty": "oct", "k": "x".repeat(20_000)}),
    ]);
    let faults: [Fault; 5] = [
        (
            "500 for three periods",
            Box::new(|| scenario.jwks.set(500, "down")),
            Duration::from_secs(6),
        ),
        (
            "timeout",
            Box::new(|| {
                scenario.jwks.set(200, &keys.jwks().to_string());
                scenario.jwks.set_delay(Duration::from_secs(2));
            }),
            Duration::from_millis(3500),
        ),
        (
            "invalid JSON",
            Box::new(|| {
                scenario.jwks.set_delay(Duration::ZERO);
                scenario.jwks.set(200, "{\"keys\": [");
            }),
            Duration::from_millis(2500),
        ),
        (
            "empty key set",
            Box::new(|| scenario.jwks.set(200, "{\"keys\": []}")),
            Duration::from_millis(2500),
        ),
        (
            "oversize body",
            Box::new(|| scenario.jwks.set(200, &oversize)),
            Duration::from_millis(2500),
        ),
    ];
    for (name, apply, duration) in &faults {
        println!("fault: {name}");
        apply();
        std::thread::sleep(*duration);
    }
    let (sent, refused) = traffic.finish();
    println!(
        "FIGURE valid requests refused while the JWKS failed for {} s: {} of {sent}",
        17,
        refused.len()
    );
    assert!(
        refused.is_empty(),
        "{} of {sent} valid requests refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    for reason in [
        "http_status",
        "timeout",
        "invalid_json",
        "no_usable_keys",
        "too_large",
    ] {
        let name = format!("jwt_authn_wasm.provider.jwt.jwks_fetch_failed.{reason}");
        assert!(
            scenario.envoy.stat(&name).unwrap_or(0) >= 1,
            "{name} not counted"
        );
    }
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn a_newly_published_kid_is_accepted_at_once_with_one_extra_fetch() {
    let keys = Keys::load();
    let rotated = rotated_key(&keys);
    let scenario = Scenario::start(4, false, |uri| short_lived(uri, "300s", json!({})));
    assert_eq!(
        get_with_token(scenario.envoy.wasm_port, "/api", &fixtures::good_token()).status,
        200
    );
    let before = scenario.jwks.requests();
    scenario.jwks.set(
        200,
        &jwks_with(&[keys.rsa2048.jwk(None), rotated.jwk(None)]),
    );
    let token = fixtures::mint(&rotated, "RS256", &fixtures::good_claims(fixtures::now()));
    let started = Instant::now();
    let response = get_with_token(scenario.envoy.wasm_port, "/api", &token);
    let took = started.elapsed();
    println!("FIGURE token with a newly published kid accepted after {took:?}");
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(
        scenario.jwks.requests() - before,
        1,
        "exactly one extra fetch"
    );
    // Everyone else now has the key too, without more fetches.
    for _ in 0..20 {
        assert_eq!(
            get_with_token(scenario.envoy.wasm_port, "/api", &token).status,
            200
        );
    }
    assert_eq!(scenario.jwks.requests() - before, 1);
    let name = "jwt_authn_wasm.provider.jwt.jwks_unknown_kid_refetch";
    assert_eq!(scenario.envoy.stat(name), Some(1));
}

#[test]
fn a_flood_of_unknown_kids_stays_within_the_refetch_rate_limit() {
    let scenario = Scenario::start(4, false, |uri| short_lived(uri, "300s", json!({})));
    assert_eq!(
        get_with_token(scenario.envoy.wasm_port, "/api", &fixtures::good_token()).status,
        200
    );
    let before = scenario.jwks.requests();
    let payload = fixtures::b64(
        fixtures::good_claims(fixtures::now())
            .to_string()
            .as_bytes(),
    );
    let signature = fixtures::b64(&[7u8; 256]);
    let port = scenario.envoy.wasm_port;
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|thread| {
            let (payload, signature) = (payload.clone(), signature.clone());
            std::thread::spawn(move || {
                let mut bodies = Vec::new();
                for i in 0..125 {
                    let header = json!({"alg": "RS256", "kid": format!("random-{thread}-{i}")});
                    let token = format!(
                        "{}.{payload}.{signature}",
                        fixtures::b64(header.to_string().as_bytes())
                    );
                    let response = get_with_token(port, "/api", &token);
                    bodies.push((response.status, response.body));
                }
                bodies
            })
        })
        .collect();
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.join().expect("flood thread"));
    }
    let took = started.elapsed();
    let fetches = scenario.jwks.requests() - before;
    // One refetch per 5 s (the default unknown_kid_refetch_interval), plus one for a window boundary.
    let allowed = took.as_secs() / 5 + 2;
    println!("FIGURE 1000 random-kid requests in {took:?}: {fetches} fetches (limit {allowed})");
    assert_eq!(answers.len(), 1000);
    assert!(answers
        .iter()
        .all(|(status, body)| *status == 401 && body == fixtures::NO_KEY));
    assert!(fetches >= 1, "the first unknown kid asks for a refetch");
    assert!(
        fetches as u64 <= allowed,
        "{fetches} fetches for the flood, limit {allowed}"
    );
}

#[test]
fn oidc_discovery_finds_the_jwks_uri_and_follows_it_when_it_changes() {
    let keys = Keys::load();
    let rotated = rotated_key(&keys);
    let scenario = Scenario::start(2, false, |uri| {
        let mut config = short_lived(uri, "1s", json!({"oidc_discovery": true}));
        // No uri: it comes from the issuer, https://issuer.example.com/.well-known/openid-configuration,
        // reached through the test's cluster.
        config["providers"]["jwt"]["remote_jwks"]["http_uri"]["uri"] = json!("");
        config
    });
    let base = format!("http://127.0.0.1:{}", scenario.jwks.port);
    let discovery = |jwks_path: &str| {
        json!({"issuer": fixtures::ISSUER, "jwks_uri": format!("{base}{jwks_path}")}).to_string()
    };
    scenario
        .jwks
        .route("/keys/v1", &jwks_with(&[keys.rsa2048.jwk(None)]));
    scenario
        .jwks
        .route("/.well-known/openid-configuration", &discovery("/keys/v1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = get_with_token(scenario.envoy.wasm_port, "/api", &fixtures::good_token());
        if response.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no keys through discovery: {}",
            response.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let paths = scenario.jwks.paths();
    assert!(
        paths.contains(&"/.well-known/openid-configuration".to_string()),
        "{paths:?}"
    );
    assert!(paths.contains(&"/keys/v1".to_string()), "{paths:?}");
    // The issuer moves its keys: discovery now names /keys/v2, which has a new key.
    scenario
        .jwks
        .route("/keys/v2", &jwks_with(&[rotated.jwk(None)]));
    scenario
        .jwks
        .route("/.well-known/openid-configuration", &discovery("/keys/v2"));
    let token = fixtures::mint(&rotated, "RS256", &fixtures::good_claims(fixtures::now()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_with_token(scenario.envoy.wasm_port, "/api", &token).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the new jwks_uri was not followed: {:?}",
            scenario.jwks.paths()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scenario.jwks.paths().contains(&"/keys/v2".to_string()));
}

#[test]
fn metrics_count_verdicts_and_describe_the_keys() {
    let scenario = Scenario::start(2, false, fixture_config);
    let port = scenario.envoy.wasm_port;
    for _ in 0..3 {
        assert_eq!(
            get_with_token(port, "/api", &fixtures::good_token()).status,
            200
        );
    }
    assert_eq!(http_request(port, "/api", &[]).status, 401);
    assert_eq!(get_with_token(port, "/api", "a.b").status, 401);
    std::thread::sleep(Duration::from_millis(300));
    let envoy = &scenario.envoy;
    assert_eq!(envoy.stat("jwt_authn_wasm.allowed"), Some(3));
    assert_eq!(envoy.stat("jwt_authn_wasm.denied.jwt_missing"), Some(1));
    assert_eq!(envoy.stat("jwt_authn_wasm.denied.jwt_bad_format"), Some(1));
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.jwt.jwks_fetch_success"),
        Some(1)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.jwt.keys_in_use"),
        Some(6)
    );
    assert!(envoy
        .stat("jwt_authn_wasm.provider.jwt.jwks_age_seconds")
        .is_some());
    let vm_bytes = envoy.stat("jwt_authn_wasm.vm_memory_bytes").unwrap_or(0);
    assert!(
        (1 << 20..1 << 30).contains(&vm_bytes),
        "a worker VM's linear memory, in bytes: {vm_bytes}"
    );
    let (_, prometheus) =
        common::envoy::admin_get(envoy.admin_port, "/stats/prometheus").expect("prometheus");
    assert!(
        prometheus.contains("jwt_authn_wasm_allowed{} 3"),
        "{prometheus}"
    );
}

/// A request that waits for keys (here: a refetch for an unknown kid) must not be carried past the
/// filter by its body. With the Wasm plugin's `allow_on_headers_stop_iteration: true` (an Envoy setting
/// operators may turn on for other filters of the same plugin), Envoy passes the body on while the
/// header callback's pause holds, and a body callback answering "continue" (the proxy-wasm SDK's
/// default) resumes the whole request. The filter must hold body and trailers until its verdict; by
/// default Envoy holds them itself, and the test runs both ways.
#[test]
fn a_request_body_never_carries_a_waiting_request_past_the_filter() {
    for allow_on_headers_stop_iteration in [true, false] {
        body_of_a_waiting_request(allow_on_headers_stop_iteration);
    }
}

fn body_of_a_waiting_request(allow_on_headers_stop_iteration: bool) {
    let keys = Keys::load();
    let scenario = Scenario::start_edited(
        1,
        false,
        |uri| short_lived(uri, "300s", json!({})),
        |bootstrap| {
            let filter = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]
                ["filters"][0]["typed_config"]["http_filters"][0];
            assert_eq!(filter["name"], "envoy.filters.http.wasm");
            filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] =
                json!(allow_on_headers_stop_iteration);
        },
    );
    let port = scenario.envoy.wasm_port;
    assert_eq!(
        get_with_token(port, "/api", &fixtures::good_token()).status,
        200
    );
    // The refetch the unknown kid asks for takes a while, so the body arrives while the request waits.
    scenario.jwks.set_delay(Duration::from_millis(800));
    let forged = fixtures::sign(
        &keys.rsa2048_other,
        "RS256",
        &json!({"alg": "RS256", "kid": "never-published"}),
        &fixtures::good_claims(fixtures::now()),
    );
    let bearer = format!("Bearer {forged}");
    let body = vec![b'x'; 2000];
    let started = Instant::now();
    let response = http_request_with_body(
        port,
        "POST",
        "/api/upload",
        &[("authorization", bearer.as_bytes())],
        &body,
    );
    assert_eq!(
        response.status, 401,
        "a forged token with a body got through (allow_on_headers_stop_iteration: \
         {allow_on_headers_stop_iteration}): {}",
        response.body
    );
    println!("forged answered after {:?}", started.elapsed());
    assert!(
        response
            .body
            .contains("Jwks doesn't have key to match kid or alg from Jwt"),
        "{}",
        response.body
    );
    // A valid token with a body that waits (a newly published kid) still reaches the upstream, body
    // included.
    let rotated = rotated_key(&keys);
    scenario.jwks.set(
        200,
        &jwks_with(&[keys.rsa2048.jwk(None), rotated.jwk(None)]),
    );
    std::thread::sleep(Duration::from_secs(6)); // past the unknown-kid refetch interval (5 s)
    let token = fixtures::mint(&rotated, "RS256", &fixtures::good_claims(fixtures::now()));
    let bearer = format!("Bearer {token}");
    let response = http_request_with_body(
        port,
        "POST",
        "/api/upload",
        &[("authorization", bearer.as_bytes())],
        &body,
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.upstream_headers()["content-length"],
        json!(["2000"])
    );
    assert_eq!(response.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    scenario.envoy.assert_no_vm_failure();
}
