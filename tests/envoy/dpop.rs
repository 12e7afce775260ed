//! DPoP (RFC 9449) through a real Envoy, with proof keys (ES256, EdDSA) generated in the test and
//! access tokens bound to them: a valid proof passes with the claims upstream; each check fails on its
//! own with status, body and `WWW-Authenticate`; a replay sent to another worker of the same Envoy
//! (`--concurrency 4`) is caught; the server-nonce flow end to end, and the next nonce offered on a
//! success response through Envoy's `response_headers_to_add`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common;
use common::dpop::{ath, bound_token, proof_claims, sign_hs256, ClientKey};
use common::envoy::admin_get;
use common::fixtures::{self, now, provider_json, Keys};
use common::servers::{http_request_with_method, HttpResponse};
use common::Scenario;

/// The test client sends `host: test.local` over plain HTTP.
const HTU: &str = "http://test.local/api/orders";
const PATH: &str = "/api/orders?page=2";
const ALGS: &str = "ES256 EdDSA";

fn dpop_config(jwks_uri: &str) -> Value {
    let mut required = provider_json(jwks_uri, "jwks");
    required["dpop"] = json!({"mode": "required", "allowed_algs": ["ES256", "EdDSA"],
                              "max_proof_age": "60s", "clock_skew": "5s"});
    let mut with_nonce = provider_json(jwks_uri, "jwks");
    with_nonce["dpop"] = json!({"mode": "required", "allowed_algs": ["ES256", "EdDSA"],
                                "nonce": {"lifetime": "300s"}});
    json!({
        "providers": {"dpop": required, "dpop_nonce": with_nonce},
        "rules": [
            {"match": {"prefix": "/nonce"}, "requires": {"provider_name": "dpop_nonce"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "dpop"}}
        ]
    })
}

/// (name, request headers, body, challenge error).
type Case<'a> = (&'a str, Vec<(&'static str, String)>, &'a str, &'a str);

fn send(port: u16, method: &str, path: &str, headers: &[(&str, String)]) -> HttpResponse {
    let raw: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    http_request_with_method(port, method, path, &raw)
}

fn with_dpop(token: &str, proof: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("DPoP {token}")),
        ("dpop", proof.to_string()),
    ]
}

fn assert_refused(response: &HttpResponse, body: &str, code: &str, case: &str) {
    assert_eq!(response.status, 401, "{case}: {response:?}");
    assert_eq!(response.body, body, "{case}");
    assert_eq!(
        response.header("www-authenticate"),
        Some(
            format!("DPoP error=\"{code}\", error_description=\"{body}\", algs=\"{ALGS}\"")
                .as_str()
        ),
        "{case}"
    );
}

#[test]
fn dpop_proofs_pass_and_each_check_fails_on_its_own() {
    let scenario = Scenario::start(4, false, dpop_config);
    let port = scenario.envoy.wasm_port;
    let keys = Keys::load();
    for client in [ClientKey::es256(), ClientKey::eddsa()] {
        let t = now();
        let token = bound_token(&keys, &client.jkt(), t);
        let proof = client.proof("POST", HTU, &token, t);
        let ok = send(port, "POST", PATH, &with_dpop(&token, &proof));
        assert_eq!(ok.status, 200, "{}: {ok:?}", client.alg());
        assert_eq!(
            ok.upstream_headers()["x-jwt-sub"],
            json!(["alice"]),
            "claims go upstream"
        );
        assert_eq!(
            ok.upstream_headers()["authorization"],
            Value::Null,
            "the token is stripped"
        );
        assert_eq!(
            ok.upstream_headers()["dpop"],
            Value::Null,
            "and its proof with it"
        );
    }

    let client = ClientKey::es256();
    let other = ClientKey::eddsa();
    let t = now();
    let token = bound_token(&keys, &client.jkt(), t);
    let claims = || proof_claims("POST", HTU, &token, t);
    let with_claim = |name: &str, value: Value| client.sign_with_claim(&claims(), name, value);
    let with_header = |name: &str, value: Value| client.sign_with_header(&claims(), name, value);
    let valid = || client.proof("POST", HTU, &token, t);
    let replayed = valid();
    assert_eq!(
        send(port, "POST", PATH, &with_dpop(&token, &replayed)).status,
        200
    );
    let alg_none = {
        let mut h = client.header();
        h["alg"] = json!("none");
        format!(
            "{}.",
            client.sign(&h, &claims()).rsplit_once('.').unwrap().0
        )
    };
    let hmac = sign_hs256(
        &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
        b"secret",
        &claims(),
    );
    let two_headers = {
        let mut h = with_dpop(&token, &valid());
        h.push(("dpop", valid()));
        h
    };
    let cases: Vec<Case> = vec![
        (
            "wrong htm",
            with_dpop(&token, &with_claim("htm", json!("GET"))),
            "DPoP proof [htm] does not match the request method",
            "invalid_dpop_proof",
        ),
        (
            "wrong htu",
            with_dpop(
                &token,
                &with_claim("htu", json!("http://test.local/api/other")),
            ),
            "DPoP proof [htu] does not match the request URI",
            "invalid_dpop_proof",
        ),
        (
            "wrong ath",
            with_dpop(&token, &with_claim("ath", json!(ath("some other token")))),
            "DPoP proof [ath] does not match the access token",
            "invalid_dpop_proof",
        ),
        (
            "wrong jkt",
            with_dpop(&token, &other.proof("POST", HTU, &token, t)),
            "DPoP proof key does not match the token's [cnf.jkt]",
            "invalid_token",
        ),
        (
            "expired iat",
            with_dpop(&token, &with_claim("iat", json!(t - 120))),
            "DPoP proof [iat] is outside the accepted window",
            "invalid_dpop_proof",
        ),
        (
            "replayed jti",
            with_dpop(&token, &replayed),
            "DPoP proof [jti] was already used",
            "invalid_dpop_proof",
        ),
        (
            "private key in jwk",
            with_dpop(&token, &with_header("jwk", client.private_jwk())),
            "DPoP proof [jwk] is not a usable public key",
            "invalid_dpop_proof",
        ),
        (
            "alg none",
            with_dpop(&token, &alg_none),
            "DPoP proof [alg] is not an allowed asymmetric algorithm",
            "invalid_dpop_proof",
        ),
        (
            "HMAC alg",
            with_dpop(&token, &hmac),
            "DPoP proof [alg] is not an allowed asymmetric algorithm",
            "invalid_dpop_proof",
        ),
        (
            "two DPoP headers",
            two_headers,
            "DPoP proof must be exactly one DPoP header",
            "invalid_dpop_proof",
        ),
        (
            "Bearer downgrade",
            vec![
                ("authorization", format!("Bearer {token}")),
                ("dpop", valid()),
            ],
            "DPoP-bound Jwt must use the DPoP scheme",
            "invalid_token",
        ),
        (
            "no proof",
            vec![("authorization", format!("DPoP {token}"))],
            "DPoP proof is missing",
            "invalid_dpop_proof",
        ),
    ];
    for (case, headers, body, code) in cases {
        let response = send(port, "POST", PATH, &headers);
        assert_refused(&response, body, code, case);
    }
    // The same valid request still passes after all that (nothing above poisoned the cache).
    assert_eq!(
        send(port, "POST", PATH, &with_dpop(&token, &valid())).status,
        200
    );
    assert_eq!(
        scenario
            .envoy
            .stat("jwt_authn_wasm.denied.dpop_proof_replayed"),
        Some(1)
    );
    scenario.envoy.assert_no_panic();
}

/// Connections accepted so far by each worker of the wasm listener (Envoy's per-worker listener stats).
fn connections_per_worker(admin_port: u16, listener_port: u16) -> BTreeMap<String, u64> {
    let (_, body) = admin_get(admin_port, "/stats?filter=worker_.*downstream_cx_total").unwrap();
    body.lines()
        .filter(|line| line.contains(&format!("_{listener_port}.worker_")))
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            let worker = name.split('.').find(|part| part.starts_with("worker_"))?;
            Some((worker.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The worker whose count went up between two readings.
fn worker_that_took(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    let grown: Vec<&String> = after
        .iter()
        .filter(|(worker, count)| before.get(*worker).copied().unwrap_or(0) < **count)
        .map(|(worker, _)| worker)
        .collect();
    assert_eq!(
        grown.len(),
        1,
        "one connection, one worker: {before:?} → {after:?}"
    );
    grown[0].clone()
}

#[test]
fn a_replay_to_another_worker_of_the_same_envoy_is_caught() {
    let scenario = Scenario::start(4, false, dpop_config);
    let (port, admin) = (scenario.envoy.wasm_port, scenario.envoy.admin_port);
    let keys = Keys::load();
    let client = ClientKey::eddsa();
    let t = now();
    let token = bound_token(&keys, &client.jkt(), t);
    let proof = client.proof("POST", HTU, &token, t);
    // Warm the workers' keys so the first request is not the one that waits for the JWKS.
    let warm = client.proof("POST", HTU, &token, t);
    assert_eq!(
        send(port, "POST", PATH, &with_dpop(&token, &warm)).status,
        200
    );

    let before = connections_per_worker(admin, port);
    assert_eq!(before.len(), 4, "four workers: {before:?}");
    let first = send(port, "POST", PATH, &with_dpop(&token, &proof));
    assert_eq!(first.status, 200, "{first:?}");
    let mut last = connections_per_worker(admin, port);
    let accepted_on = worker_that_took(&before, &last);
    // The same proof on fresh connections until one lands on another worker: every one is refused.
    let mut other_workers = Vec::new();
    for attempt in 0..40 {
        let replay = send(port, "POST", PATH, &with_dpop(&token, &proof));
        assert_refused(
            &replay,
            "DPoP proof [jti] was already used",
            "invalid_dpop_proof",
            &format!("replay {attempt}"),
        );
        let now_counts = connections_per_worker(admin, port);
        let worker = worker_that_took(&last, &now_counts);
        last = now_counts;
        if worker != accepted_on {
            other_workers.push(worker);
            if other_workers.len() >= 2 {
                break;
            }
        }
    }
    assert!(
        !other_workers.is_empty(),
        "no replay landed on a worker other than {accepted_on} in 40 connections"
    );
    scenario.envoy.assert_no_panic();
}

#[test]
fn the_server_nonce_flow_end_to_end() {
    let scenario = Scenario::start(4, false, dpop_config);
    let port = scenario.envoy.wasm_port;
    let keys = Keys::load();
    let client = ClientKey::es256();
    let htu = "http://test.local/nonce/pay";
    let t = now();
    let token = bound_token(&keys, &client.jkt(), t);
    // 1. Without a nonce: 401 use_dpop_nonce and a DPoP-Nonce to retry with.
    let first = send(
        port,
        "POST",
        "/nonce/pay",
        &with_dpop(&token, &client.proof("POST", htu, &token, t)),
    );
    assert_refused(
        &first,
        "DPoP proof must carry a nonce from the DPoP-Nonce header",
        "use_dpop_nonce",
        "no nonce",
    );
    let nonce = first
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_string();
    // 2. With it: passes, on whichever worker the fresh connections land (the secret is per process).
    for _ in 0..6 {
        let mut claims = proof_claims("POST", htu, &token, now());
        claims["nonce"] = json!(nonce);
        let ok = send(
            port,
            "POST",
            "/nonce/pay",
            &with_dpop(&token, &client.sign(&client.header(), &claims)),
        );
        assert_eq!(ok.status, 200, "{ok:?}");
        assert_eq!(ok.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    }
    // 3. A nonce the filter did not issue: refused again, with the real one.
    let mut claims = proof_claims("POST", htu, &token, now());
    claims["nonce"] = json!(format!("{}.{}", t / 300, fixtures::b64(&[7u8; 32])));
    let forged = send(
        port,
        "POST",
        "/nonce/pay",
        &with_dpop(&token, &client.sign(&client.header(), &claims)),
    );
    assert_refused(
        &forged,
        "DPoP proof must carry a nonce from the DPoP-Nonce header",
        "use_dpop_nonce",
        "forged nonce",
    );
    assert!(forged.header("dpop-nonce").is_some());
    scenario.envoy.assert_no_panic();
}

/// Where Envoy's route configuration sends the next nonce to the client: `DPoP-Nonce` from the filter
/// state `wasm.dpop_nonce`, on the wasm listener's virtual host, as docs/dpop.md tells users to add.
fn with_next_nonce_header(bootstrap: &mut Value) {
    let virtual_host = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]
        ["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0];
    virtual_host["response_headers_to_add"] = json!([{
        "header": {"key": "dpop-nonce", "value": "%FILTER_STATE(wasm.dpop_nonce:PLAIN)%"},
        "keep_empty_value": false
    }]);
}

/// Sleeps until `seconds` past the start of the next `lifetime`-second slot; returns that slot.
fn sleep_into_next_slot(lifetime: u64, seconds: f64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let next = (now / lifetime as f64).floor() + 1.0;
    std::thread::sleep(std::time::Duration::from_secs_f64(
        next * lifetime as f64 + seconds - now,
    ));
    next as u64
}

#[test]
fn a_nonce_from_the_slot_before_passes_and_the_response_carries_the_next() {
    const LIFETIME: u64 = 4;
    let config = |jwks_uri: &str| {
        let mut provider = provider_json(jwks_uri, "jwks");
        provider["dpop"] = json!({"allowed_algs": ["ES256"], "nonce": {"lifetime": "4s"}});
        json!({"providers": {"dpop_nonce": provider},
               "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "dpop_nonce"}}]})
    };
    let scenario = Scenario::start_edited(2, false, config, with_next_nonce_header);
    let port = scenario.envoy.wasm_port;
    let keys = Keys::load();
    let client = ClientKey::es256();
    let htu = "http://test.local/pay";
    let token = bound_token(&keys, &client.jkt(), now());
    let proof_with = |nonce: Option<&str>| {
        let mut claims = proof_claims("POST", htu, &token, now());
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        with_dpop(&token, &client.sign(&client.header(), &claims))
    };
    let nonces = |response: &HttpResponse| -> Vec<String> {
        response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("dpop-nonce"))
            .map(|(_, value)| value.clone())
            .collect()
    };
    // Early in a slot, so the next two requests fall in it.
    let first_slot = sleep_into_next_slot(LIFETIME, 0.2);
    let refused = send(port, "POST", "/pay", &proof_with(None));
    assert_eq!(refused.status, 401, "{refused:?}");
    let issued = nonces(&refused);
    assert_eq!(
        issued.len(),
        1,
        "one DPoP-Nonce on the refusal: {refused:?}"
    );
    let nonce = issued[0].clone();
    assert!(nonce.starts_with(&format!("{first_slot}.")), "{nonce}");
    let current = send(port, "POST", "/pay", &proof_with(Some(&nonce)));
    assert_eq!(current.status, 200, "{current:?}");
    assert_eq!(current.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    assert!(
        nonces(&current).is_empty(),
        "a current nonce gets no successor: {current:?}"
    );
    // In the next slot the nonce still passes, and the response offers that slot's.
    let second_slot = sleep_into_next_slot(LIFETIME, 0.2);
    let previous = send(port, "POST", "/pay", &proof_with(Some(&nonce)));
    assert_eq!(previous.status, 200, "{previous:?}");
    let offered = nonces(&previous);
    assert_eq!(offered.len(), 1, "{previous:?}");
    assert!(
        offered[0].starts_with(&format!("{second_slot}.")) && offered[0] != nonce,
        "{offered:?}"
    );
    assert!(
        previous.upstream_headers().get("dpop-nonce").is_none(),
        "the nonce goes to the client, not upstream"
    );
    let moved_on = send(port, "POST", "/pay", &proof_with(Some(&offered[0])));
    assert_eq!(moved_on.status, 200, "{moved_on:?}");
    assert!(nonces(&moved_on).is_empty(), "{moved_on:?}");
    scenario.envoy.assert_no_panic();
}
