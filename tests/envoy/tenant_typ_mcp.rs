//! Real Envoy, three extensions jwt_authn has no counterpart for (so no side-by-side answer): a
//! multi-tenant issuer template over one fetched JWKS (the tenant header upstream, `tid` bound to
//! `iss`), explicit typing (`typ` compared as a media type), and RFC 9728 resource metadata (the
//! challenge parameter on every refusal, the document served at its well-known path); and Envoy
//! refusing each kind of bad field at load.

use crate::common;

use std::time::Duration;

use serde_json::{json, Value};

use common::envoy::{Envoy, EnvoySetup};
use common::fixtures::{self, good_claims, mint, now, sign, Keys};
use common::servers::{
    get_with_token, http_request, http_request_with_method, EchoUpstream, JwksServer,
};
use common::Scenario;

const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TENANT_B: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

fn entra_issuer(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/v2.0")
}

fn config(jwks_uri: &str, keys: &Keys) -> Value {
    json!({
        "providers": {
            "entra": {
                "tenant_issuer": {
                    "template": "https://login.microsoftonline.com/{tenant}/v2.0",
                    "tenants": [TENANT_A, TENANT_B],
                    "tenant_header": "x-jwt-tenant"
                },
                "audiences": [fixtures::AUDIENCE],
                "remote_jwks": {"http_uri": {"uri": jwks_uri, "cluster": "jwks", "timeout": "5s"}},
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            },
            "typed": {
                "issuer": fixtures::ISSUER,
                "accepted_types": ["at+jwt"],
                "local_jwks": {"inline_string": keys.jwks().to_string()},
                "from_headers": [{"name": "x-typed-token"}],
                "claim_to_headers": [{"header_name": "x-typed-sub", "claim_name": "sub"}]
            }
        },
        "rules": [
            {"match": {"prefix": "/typed"}, "requires": {"provider_name": "typed"}},
            {"match": {"prefix": "/mcp/tools"}, "requires": {"provider_name": "entra"},
             "authorization": {"scopes": ["mcp:tools"]}},
            {"match": {"prefix": "/other"}, "requires": {"provider_name": "entra"},
             "resource_metadata": "https://other.example.com/.well-known/oauth-protected-resource"},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "entra"}}
        ],
        "protected_resource": {"resource": "https://mcp.example.com/mcp", "resource_name": "Test MCP"}
    })
}

fn entra_token(keys: &Keys, iss: &str, tid: Option<&str>, scope: Option<&str>) -> String {
    let mut claims = good_claims(now());
    claims["iss"] = json!(iss);
    if let Some(tid) = tid {
        claims["tid"] = json!(tid);
    }
    if let Some(scope) = scope {
        claims["scope"] = json!(scope);
    }
    mint(&keys.rsa2048, "RS256", &claims)
}

fn typed_token(keys: &Keys, typ: Option<&str>) -> String {
    let mut header = json!({"alg": "RS256", "kid": keys.rsa2048.kid});
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    sign(&keys.rsa2048, "RS256", &header, &good_claims(now()))
}

fn challenge(realm_path: &str, rest: &str, metadata: &str) -> String {
    format!(
        "Bearer realm=\"http://test.local{realm_path}\"{rest}, resource_metadata=\"{metadata}\""
    )
}

#[test]
fn tenants_types_and_resource_metadata_in_envoy() {
    let keys = Keys::load();
    let scenario = Scenario::start(2, false, |uri| config(uri, &keys));
    let port = scenario.envoy.wasm_port;

    // Multi-tenant issuer: two tenants, one JWKS; the tenant goes upstream, a client's copy never does.
    for tenant in [TENANT_A, TENANT_B] {
        let token = entra_token(&keys, &entra_issuer(tenant), Some(tenant), None);
        let value = format!("Bearer {token}");
        let reply = http_request(
            port,
            "/mcp",
            &[
                ("authorization", value.as_bytes()),
                ("x-jwt-tenant", b"spoofed"),
            ],
        );
        assert_eq!(reply.status, 200, "{tenant}: {}", reply.body);
        assert_eq!(reply.upstream_headers()["x-jwt-tenant"], json!([tenant]));
        assert_eq!(
            reply.upstream_headers()["x-jwt-sub"],
            json!([fixtures::SUBJECT])
        );
    }
    assert_eq!(
        scenario.jwks.requests(),
        1,
        "one JWKS fetch serves every tenant"
    );
    let metadata = METADATA_URL;
    for (token, body) in [
        (
            entra_token(&keys, &entra_issuer(TENANT_A), Some(TENANT_B), None),
            "Jwt tenant claim does not match the tenant in [iss]",
        ),
        (
            entra_token(&keys, &entra_issuer(TENANT_A), None, None),
            "Jwt tenant claim does not match the tenant in [iss]",
        ),
        (
            entra_token(&keys, &entra_issuer("contoso"), Some("contoso"), None),
            "Jwt issuer is not configured",
        ),
    ] {
        let reply = get_with_token(port, "/mcp", &token);
        assert_eq!((reply.status, reply.body.as_str()), (401, body));
        assert_eq!(
            reply.header("www-authenticate"),
            Some(challenge("/mcp", ", error=\"invalid_token\"", metadata).as_str())
        );
    }

    // Explicit typing: at+jwt in any of its spellings passes; an ID token's JWT and no typ do not.
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        let token = typed_token(&keys, Some(typ));
        let reply = http_request(port, "/typed", &[("x-typed-token", token.as_bytes())]);
        assert_eq!(reply.status, 200, "{typ}: {}", reply.body);
        assert_eq!(
            reply.upstream_headers()["x-typed-sub"],
            json!([fixtures::SUBJECT])
        );
    }
    for (typ, body) in [
        (Some("JWT"), "Jwt header [typ] is not allowed"),
        (None, "Jwt header [typ] is required"),
    ] {
        let token = typed_token(&keys, typ);
        let reply = http_request(port, "/typed", &[("x-typed-token", token.as_bytes())]);
        assert_eq!((reply.status, reply.body.as_str()), (401, body), "{typ:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(challenge("/typed", ", error=\"invalid_token\"", metadata).as_str())
        );
    }

    // Every challenge names the metadata URL: missing token, 403 for scopes, and a rule's own URL.
    let missing = http_request(port, "/mcp", &[]);
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (401, "Jwt is missing")
    );
    assert_eq!(
        missing.header("www-authenticate"),
        Some(challenge("/mcp", "", metadata).as_str())
    );
    let no_scope = entra_token(
        &keys,
        &entra_issuer(TENANT_A),
        Some(TENANT_A),
        Some("profile"),
    );
    let reply = get_with_token(port, "/mcp/tools", &no_scope);
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            challenge(
                "/mcp/tools",
                ", error=\"insufficient_scope\", scope=\"mcp:tools\"",
                metadata
            )
            .as_str()
        )
    );
    let tools = entra_token(
        &keys,
        &entra_issuer(TENANT_A),
        Some(TENANT_A),
        Some("mcp:tools"),
    );
    assert_eq!(get_with_token(port, "/mcp/tools", &tools).status, 200);
    let other = http_request(port, "/other", &[]);
    assert_eq!(
        other.header("www-authenticate"),
        Some(
            challenge(
                "/other",
                "",
                "https://other.example.com/.well-known/oauth-protected-resource"
            )
            .as_str()
        )
    );

    // The metadata document, served by the filter without a token, built from the configuration.
    let document = http_request(port, "/.well-known/oauth-protected-resource/mcp", &[]);
    assert_eq!(document.status, 200, "{}", document.body);
    assert_eq!(document.header("content-type"), Some("application/json"));
    assert_eq!(document.header("access-control-allow-origin"), Some("*"));
    assert_eq!(document.header("www-authenticate"), None);
    let served: Value = serde_json::from_str(&document.body).expect("JSON document");
    assert_eq!(
        served,
        json!({
            "resource": "https://mcp.example.com/mcp",
            "authorization_servers": [
                entra_issuer(TENANT_A),
                entra_issuer(TENANT_B),
                fixtures::ISSUER
            ],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header", "query"],
            "resource_name": "Test MCP"
        })
    );
    // Only GET of that exact path; anything else goes by the rules.
    let posted = http_request_with_method(
        port,
        "POST",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
    );
    assert_eq!(posted.status, 401);
    assert_eq!(
        http_request(port, "/.well-known/oauth-protected-resource", &[]).status,
        401
    );

    std::thread::sleep(Duration::from_millis(300));
    let envoy = &scenario.envoy;
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.jwt_tenant_mismatch"),
        Some(2)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.jwt_type_not_allowed"),
        Some(2)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.resource_metadata"),
        None,
        "serving the document is not a refusal"
    );
    envoy.assert_no_vm_failure();
}

/// Envoy will not start with a refused template, typ list or metadata URL, and its log names the field.
#[test]
fn bad_templates_types_and_metadata_urls_stop_envoy_with_the_field_named() {
    let keys = Keys::load();
    let jwks = JwksServer::start(String::new());
    let upstream = EchoUpstream::start();
    // (edit to the good configuration, what Envoy's log must say)
    type Case = (fn(&mut Value), &'static str);
    let cases: [Case; 3] = [
        (
            |c| c["providers"]["entra"]["tenant_issuer"]["template"] = json!("https://{tenant}.example.com/"),
            "configuration refused: providers.entra.tenant_issuer.template: \"https://{tenant}.example.com/\": {tenant} must come after the scheme and host",
        ),
        (
            |c| c["providers"]["typed"]["accepted_types"] = json!(["at+jwt; x=y"]),
            "configuration refused: providers.typed.accepted_types[0]: ",
        ),
        (
            |c| c["rules"][2]["resource_metadata"] = json!("http://other.example.com/"),
            "configuration refused: rules[2].resource_metadata: ",
        ),
    ];
    for (edit, expected) in cases {
        let mut filter_config = config(&jwks.uri(), &keys);
        edit(&mut filter_config);
        let mut envoy = Envoy::spawn(&EnvoySetup {
            filter_config,
            native_config: None,
            upstream_port: upstream.port,
            jwks_port: jwks.port,
            native_jwks_port: None,
            concurrency: 1,
        });
        let status = envoy.wait_exit(Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| !s.success()),
            "Envoy must refuse the configuration ({expected})"
        );
        assert!(
            envoy.log().contains(expected),
            "the log names the field ({expected}):\n{}",
            envoy.log_tail()
        );
        envoy.assert_no_panic();
    }
}
