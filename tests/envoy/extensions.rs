//! Real Envoy, what this filter adds beyond jwt_authn: claim-based authorization per rule (403 with
//! `error="insufficient_scope"`), report-only rules and providers (let through, counted), JSON refusal
//! bodies, and claims handed on as comma-joined lists.

use crate::common;

use std::time::Duration;

use serde_json::{json, Value};

use common::fixtures::{self, good_claims, mint, now, Keys};
use common::servers::{get_with_token, http_request};
use common::Scenario;

fn config(keys: &Keys) -> Value {
    json!({
        "providers": {
            "jwt": {
                "issuer": fixtures::ISSUER,
                "audiences": [fixtures::AUDIENCE],
                "local_jwks": {"inline_string": keys.jwks().to_string()},
                "claim_to_headers": [
                    {"header_name": "x-jwt-sub", "claim_name": "sub"},
                    {"header_name": "x-jwt-roles", "claim_name": "roles"}
                ],
                "payload_in_filter_state": "jwt_payload"
            },
            "trial": {
                "issuer": "https://trial.example.com",
                "local_jwks": {"inline_string": keys.jwks().to_string()},
                "report_only": true
            }
        },
        "rules": [
            {"match": {"prefix": "/orders"}, "requires": {"provider_name": "jwt"},
             "authorization": {"scopes": ["orders:read"]}},
            {"match": {"prefix": "/payments"}, "requires": {"provider_name": "jwt"},
             "authorization": {"claims": [{"name": "org.team", "values": ["payments"]},
                                          {"name": "roles", "values": ["admin"]}]}},
            {"match": {"prefix": "/rollout"}, "requires": {"provider_name": "jwt"}, "report_only": true},
            {"match": {"prefix": "/trial"}, "requires": {"provider_name": "trial"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}
        ],
        "failure_response_format": "json"
    })
}

fn token(keys: &Keys, changes: Value) -> String {
    let mut claims = good_claims(now());
    for (k, v) in changes.as_object().expect("object") {
        claims[k] = v.clone();
    }
    mint(&keys.rsa2048, "RS256", &claims)
}

fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body, got {body:?}"))
}

#[test]
fn authorization_report_only_and_json_errors_in_envoy() {
    let keys = Keys::load();
    let scenario = Scenario::start(2, false, |_| config(&keys));
    let port = scenario.envoy.wasm_port;

    // Scopes: `scope` (space-delimited) or `scp` (list) must hold every required scope.
    let reader = token(&keys, json!({"scope": "profile orders:read"}));
    let reader_scp = token(&keys, json!({"scp": ["orders:read"]}));
    let writer = token(&keys, json!({"scope": "orders:write"}));
    assert_eq!(get_with_token(port, "/orders/1", &reader).status, 200);
    assert_eq!(get_with_token(port, "/orders/1", &reader_scp).status, 200);
    let refused = get_with_token(port, "/orders/1", &writer);
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"http://test.local/orders/1\", error=\"insufficient_scope\", scope=\"orders:read\"")
    );
    assert_eq!(refused.header("content-type"), Some("application/json"));
    assert_eq!(
        json_body(&refused.body),
        json!({"error": "insufficient_scope", "error_description": "Jwt does not have the required scope: orders:read"})
    );

    // Claims: every listed claim must have an allowed value; for a list claim, one element must.
    let payer = token(&keys, json!({"roles": ["viewer", "admin"]}));
    let viewer = token(&keys, json!({"roles": ["viewer"]}));
    let other_team = token(
        &keys,
        json!({"roles": ["admin"], "org": {"team": "growth"}}),
    );
    let allowed = get_with_token(port, "/payments", &payer);
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.upstream_headers()["x-jwt-roles"],
        json!(["viewer,admin"]),
        "list claims reach the upstream comma-joined"
    );
    for (name, denied) in [("roles", &viewer), ("org.team", &other_team)] {
        let reply = get_with_token(port, "/payments", denied);
        assert_eq!(reply.status, 403, "{name}");
        assert_eq!(
            json_body(&reply.body)["error_description"],
            json!(format!("Jwt claim [{name}] is not allowed"))
        );
    }

    // Token failures keep jwt_authn's status and message, in JSON.
    let missing = http_request(port, "/api", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        json_body(&missing.body),
        json!({"error": "missing_token", "error_description": "Jwt is missing"})
    );
    let expired = token(&keys, json!({"exp": now() - 3600}));
    let reply = get_with_token(port, "/api", &expired);
    assert_eq!(
        (reply.status, json_body(&reply.body)),
        (
            401,
            json!({"error": "invalid_token", "error_description": "Jwt is expired"})
        )
    );

    // Report-only rule: refused tokens go through, counted by reason; good ones get their claims.
    let rollout_missing = http_request(port, "/rollout", &[]);
    assert_eq!(rollout_missing.status, 200);
    assert_eq!(get_with_token(port, "/rollout", &expired).status, 200);
    let rollout_good = get_with_token(port, "/rollout", &reader);
    assert_eq!(
        rollout_good.upstream_headers()["x-jwt-sub"],
        json!([fixtures::SUBJECT])
    );
    // Client-sent identity headers never pass, report-only or not.
    let spoofed = http_request(port, "/rollout", &[("x-jwt-sub", b"root")]);
    assert_eq!(spoofed.upstream_headers()["x-jwt-sub"], Value::Null);

    // Report-only provider: its failures pass too.
    assert_eq!(get_with_token(port, "/trial", &expired).status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let envoy = &scenario.envoy;
    assert_eq!(
        envoy.stat("jwt_authn_wasm.report_only.would_deny.jwt_missing"),
        Some(2)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.report_only.would_deny.jwt_expired"),
        Some(1)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.report_only.would_deny.jwt_unknown_issuer"),
        Some(1),
        "the trial provider refuses tokens of another issuer"
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.insufficient_scope"),
        Some(1)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.claim_not_allowed"),
        Some(2)
    );
    assert!(
        envoy
            .log()
            .contains("report-only: would refuse (jwt_expired)"),
        "report-only verdicts are logged"
    );
    // Later filters see the verified payload as filter state wasm.jwt_payload (here: the access log).
    // (Envoy flushes access log files about once a second.)
    let verified_lines = |log: &str| {
        log.lines()
            .filter(|l| l.starts_with("filter_state={") && l.contains("\"sub\":\"alice\""))
            .count()
    };
    let mut access_log = String::new();
    for _ in 0..50 {
        access_log = std::fs::read_to_string(&envoy.access_log_path).unwrap_or_default();
        if verified_lines(&access_log) >= 4 && access_log.lines().count() >= 13 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        verified_lines(&access_log) == 4,
        "verified payloads in filter state:\n{access_log}"
    );
    assert!(
        access_log.lines().any(|l| l == "filter_state=-"),
        "refused requests carry none:\n{access_log}"
    );
    envoy.assert_no_vm_failure();
}
