//! Three extensions without a host: multi-tenant issuer templates (what loads, what a template
//! matches, the tenant claim and header), explicit typing (`typ` as a media type), and RFC 9728
//! resource metadata (the challenge parameter and the served document).

use crate::common;

use std::rc::Rc;

use jwt_authn_wasm::config::is_tenant;
use jwt_authn_wasm::config::normalize_media_type;
use jwt_authn_wasm::config::{FilterConfig, IssuerMatch};
use jwt_authn_wasm::jwks::{parse_jwks, Jwks};
use jwt_authn_wasm::request::borrow_header_pairs;
use jwt_authn_wasm::request::TokenCaches;
use jwt_authn_wasm::request::{start, Start, Verdict};
use serde_json::{json, Value};

use common::fixtures::{self, good_claims, now, sign, Keys};

const TEMPLATE: &str = "https://login.microsoftonline.com/{tenant}/v2.0";
const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TENANT_B: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn entra_issuer(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/v2.0")
}

fn parse(config: &Value) -> Result<FilterConfig, String> {
    FilterConfig::parse(config.to_string().as_bytes()).map_err(|e| e.to_string())
}

/// A configuration with provider `entra` (a tenant template, fields merged from `tenant_issuer`) and
/// provider `corp` (the fixture issuer, `accepted_types` from `types`).
fn config_with(tenant_issuer: Value, types: Option<Value>, top: Value) -> Value {
    let keys = Keys::load();
    let mut template = json!({"template": TEMPLATE});
    for (k, v) in tenant_issuer.as_object().unwrap() {
        template[k] = v.clone();
    }
    let mut corp = json!({
        "issuer": fixtures::ISSUER,
        "local_jwks": {"inline_string": keys.jwks().to_string()},
        "from_headers": [{"name": "x-corp-token"}]
    });
    if let Some(types) = types {
        corp["accepted_types"] = types;
    }
    let mut config = json!({
        "providers": {
            "entra": {
                "tenant_issuer": template,
                "audiences": [fixtures::AUDIENCE],
                "local_jwks": {"inline_string": keys.jwks().to_string()},
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            },
            "corp": corp
        },
        "rules": [
            {"match": {"prefix": "/corp"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/orders"}, "requires": {"provider_name": "entra"},
             "authorization": {"scopes": ["orders:read"]}},
            {"match": {"prefix": "/any"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "entra"}}
        ]
    });
    for (k, v) in top.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

fn entra_token(iss: &str, tid: Option<&str>) -> String {
    let keys = Keys::load();
    let mut claims = good_claims(now());
    claims["iss"] = json!(iss);
    if let Some(tid) = tid {
        claims["tid"] = json!(tid);
    }
    fixtures::mint(&keys.rsa2048, "RS256", &claims)
}

fn typed_token(typ: Option<&str>) -> String {
    let keys = Keys::load();
    let mut header = json!({"alg": "RS256", "kid": keys.rsa2048.kid});
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    sign(&keys.rsa2048, "RS256", &header, &good_claims(now()))
}

fn jwks() -> Jwks {
    parse_jwks(Keys::load().jwks().to_string().as_bytes()).unwrap()
}

fn run(config: &FilterConfig, method: &str, path: &str, extra: &[(&str, &str)]) -> Verdict {
    let mut headers = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
        (":authority".to_string(), b"mcp.test".to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    let mut caches = TokenCaches::disabled();
    let keys = Rc::new(jwks());
    match start(config, &borrow_header_pairs(&headers), now(), &mut caches) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(keys.clone()), &mut caches),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// (status, body, WWW-Authenticate) of a refusal; panics on anything else.
fn refused(verdict: Verdict) -> (u32, String, Option<String>) {
    match verdict {
        Verdict::Deny(reply) => (reply.status, reply.body, reply.www_authenticate),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn allowed_headers(verdict: Verdict) -> Vec<(String, String)> {
    match verdict {
        Verdict::Allow(mutations) => mutations
            .added()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        other => panic!("expected the request through, got {other:?}"),
    }
}

#[test]
fn issuer_templates_refused_at_load_name_the_field_and_say_why() {
    let field = "providers.entra.tenant_issuer.template";
    for (template, why) in [
        (
            "https://login.microsoftonline.com/common/v2.0",
            "has no {tenant}",
        ),
        (
            "https://login.microsoftonline.com/{tenant}/{tenant}",
            "exactly one {tenant}",
        ),
        (
            "https://login.microsoftonline.com/{tenant}/{tid}",
            "no other braces",
        ),
        (
            "https://{tenant}.b2clogin.com/x/v2.0",
            "after the scheme and host",
        ),
        (
            "https://login.{tenant}.com/v2.0",
            "after the scheme and host",
        ),
        ("{tenant}://login.example.com/", "after the scheme and host"),
        ("https://{tenant}", "after the scheme and host"),
        (
            "login.microsoftonline.com/{tenant}/v2.0",
            "after the scheme and host",
        ),
        ("https:///{tenant}", "after the scheme and host"),
    ] {
        let error =
            parse(&config_with(json!({"template": template}), None, json!({}))).unwrap_err();
        assert!(
            error.starts_with(field) && error.contains(why),
            "{template}: {error}"
        );
    }
    let both = {
        let mut config = config_with(json!({}), None, json!({}));
        config["providers"]["entra"]["issuer"] = json!(fixtures::ISSUER);
        parse(&config).unwrap_err()
    };
    assert!(
        both.starts_with("providers.entra.tenant_issuer: give either"),
        "{both}"
    );
    for (tenants, at) in [
        (json!(["ok", "a/b"]), 1),
        (json!([""]), 0),
        (json!([".."]), 0),
    ] {
        let error = parse(&config_with(json!({"tenants": tenants}), None, json!({}))).unwrap_err();
        assert!(
            error.starts_with(&format!("providers.entra.tenant_issuer.tenants[{at}]: ")),
            "{error}"
        );
    }
    let error = parse(&config_with(json!({"tenant_claim": ""}), None, json!({}))).unwrap_err();
    assert!(
        error.starts_with("providers.entra.tenant_issuer.tenant_claim: "),
        "{error}"
    );
    let error = parse(&config_with(
        json!({"tenant_header": "x y"}),
        None,
        json!({}),
    ))
    .unwrap_err();
    assert!(
        error.starts_with("providers.entra.tenant_issuer.tenant_header: "),
        "{error}"
    );
    // A placeholder anywhere after the host is fine: in a path segment, or part of one.
    for template in [
        "https://sts.windows.net/{tenant}/",
        "https://login.example.com/t-{tenant}",
        "http://127.0.0.1:8080/realms/{tenant}",
    ] {
        parse(&config_with(json!({"template": template}), None, json!({})))
            .unwrap_or_else(|e| panic!("{template}: {e}"));
    }
}

#[test]
fn a_template_matches_one_tenant_of_allowed_characters_and_the_allow_list() {
    assert!(is_tenant(TENANT_A));
    assert!(is_tenant("contoso.onmicrosoft.com"));
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a%2Fb",
        "a b",
        "a?b",
        "a#b",
        "ä",
        &"x".repeat(129),
    ] {
        assert!(!is_tenant(bad), "{bad:?}");
    }
    let open = parse(&config_with(json!({}), None, json!({}))).unwrap();
    let entra = open.providers.iter().find(|p| p.name == "entra").unwrap();
    let corp = open.providers.iter().find(|p| p.name == "corp").unwrap();
    let iss_a = entra_issuer(TENANT_A);
    assert_eq!(
        entra.matches_issuer(Some(&iss_a)),
        Some(IssuerMatch::Tenant(TENANT_A))
    );
    for other in [
        "https://login.microsoftonline.com//v2.0".to_string(),
        "https://login.microsoftonline.com/a/b/v2.0".to_string(),
        format!("https://login.microsoftonline.com/{TENANT_A}/v2.0/"),
        format!("http://login.microsoftonline.com/{TENANT_A}/v2.0"),
        format!("https://login.microsoftonline.com.evil/{TENANT_A}/v2.0"),
        fixtures::ISSUER.to_string(),
    ] {
        assert_eq!(entra.matches_issuer(Some(&other)), None, "{other}");
    }
    assert_eq!(entra.matches_issuer(None), None);
    assert_eq!(
        corp.matches_issuer(Some(fixtures::ISSUER)),
        Some(IssuerMatch::Exact)
    );
    assert_eq!(corp.matches_issuer(Some(&iss_a)), None);
    assert!(IssuerMatch::Tenant("t").is_specific() && !IssuerMatch::Any.is_specific());

    let listed = parse(&config_with(
        json!({"tenants": [TENANT_A]}),
        None,
        json!({}),
    ))
    .unwrap();
    let entra = listed.providers.iter().find(|p| p.name == "entra").unwrap();
    assert_eq!(
        entra.matches_issuer(Some(&iss_a)),
        Some(IssuerMatch::Tenant(TENANT_A))
    );
    assert_eq!(entra.matches_issuer(Some(&entra_issuer(TENANT_B))), None);
    // The comparison is literal: Entra writes tenant GUIDs in lower case.
    assert_eq!(
        entra.matches_issuer(Some(&entra_issuer(&TENANT_A.to_uppercase()))),
        None
    );
}

#[test]
fn a_tenant_token_needs_its_tid_to_name_the_tenant_of_its_iss_and_sends_the_tenant_upstream() {
    let config = parse(&config_with(
        json!({"tenants": [TENANT_A, TENANT_B], "tenant_header": "X-Tenant"}),
        None,
        json!({}),
    ))
    .unwrap();
    assert!(config.identity_headers.contains(&"x-tenant".into()));
    let good = entra_token(&entra_issuer(TENANT_A), Some(TENANT_A));
    let headers = allowed_headers(run(
        &config,
        "GET",
        "/api",
        &[("authorization", &bearer(&good))],
    ));
    assert!(
        headers.contains(&("x-tenant".to_string(), TENANT_A.to_string())),
        "{headers:?}"
    );
    assert!(headers.contains(&("x-jwt-sub".to_string(), fixtures::SUBJECT.to_string())));

    for (token, body) in [
        (
            entra_token(&entra_issuer(TENANT_A), Some(TENANT_B)),
            "Jwt tenant claim does not match the tenant in [iss]",
        ),
        (
            entra_token(&entra_issuer(TENANT_A), None),
            "Jwt tenant claim does not match the tenant in [iss]",
        ),
        (
            entra_token(&entra_issuer("not-listed"), Some("not-listed")),
            "Jwt issuer is not configured",
        ),
    ] {
        let (status, text, challenge) = refused(run(
            &config,
            "GET",
            "/api",
            &[("authorization", &bearer(&token))],
        ));
        assert_eq!((status, text.as_str()), (401, body));
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"https://mcp.test/api\", error=\"invalid_token\"")
        );
    }
    // A client's own tenant header never reaches the upstream.
    let Verdict::Allow(mutations) = run(&config, "GET", "/any", &[("x-tenant", TENANT_B)]) else {
        panic!("allow_missing lets a request without a token through");
    };
    assert_eq!(mutations.removed(), vec!["x-tenant"]);
    assert!(mutations.set_headers.is_empty());
}

#[test]
fn a_configurable_tenant_claim_and_allow_missing_picks_the_template_provider() {
    let config = parse(&config_with(
        json!({"tenant_claim": "org_id", "tenant_header": "x-tenant"}),
        None,
        json!({}),
    ))
    .unwrap();
    let mut claims = good_claims(now());
    claims["iss"] = json!(entra_issuer("acme"));
    claims["org_id"] = json!("acme");
    let token = fixtures::mint(&Keys::load().rsa2048, "RS256", &claims);
    // allow_missing judges a token by the provider its issuer names: here the template's.
    let headers = allowed_headers(run(
        &config,
        "GET",
        "/any",
        &[("authorization", &bearer(&token))],
    ));
    assert!(
        headers.contains(&("x-tenant".to_string(), "acme".to_string())),
        "{headers:?}"
    );
    let tid_only = entra_token(&entra_issuer("acme"), Some("acme"));
    let (status, body, _) = refused(run(
        &config,
        "GET",
        "/any",
        &[("authorization", &bearer(&tid_only))],
    ));
    assert_eq!(
        (status, body.as_str()),
        (401, "Jwt tenant claim does not match the tenant in [iss]")
    );
}

#[test]
fn typ_compares_as_a_media_type() {
    assert_eq!(normalize_media_type("at+jwt"), "application/at+jwt");
    assert_eq!(normalize_media_type("AT+JWT"), "application/at+jwt");
    assert_eq!(
        normalize_media_type("Application/AT+JWT"),
        "application/at+jwt"
    );
    assert_eq!(normalize_media_type("JWT"), "application/jwt");

    let config = parse(&config_with(json!({}), Some(json!(["at+jwt"])), json!({}))).unwrap();
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+Jwt",
    ] {
        let token = typed_token(Some(typ));
        assert!(
            matches!(
                run(&config, "GET", "/corp", &[("x-corp-token", &token)]),
                Verdict::Allow(_)
            ),
            "{typ}"
        );
    }
    for (typ, body) in [
        (Some("JWT"), "Jwt header [typ] is not allowed"),
        (Some("application/jwt"), "Jwt header [typ] is not allowed"),
        (Some("text/at+jwt"), "Jwt header [typ] is not allowed"),
        (
            Some("at+jwt; charset=utf-8"),
            "Jwt header [typ] is not allowed",
        ),
        (None, "Jwt header [typ] is required"),
    ] {
        let token = typed_token(typ);
        let (status, text, challenge) =
            refused(run(&config, "GET", "/corp", &[("x-corp-token", &token)]));
        assert_eq!((status, text.as_str()), (401, body), "{typ:?}");
        assert!(challenge.unwrap().ends_with("error=\"invalid_token\""));
    }
    // Without accepted_types any typ, and none, passes (jwt_authn does not look at typ).
    let open = parse(&config_with(json!({}), None, json!({}))).unwrap();
    for typ in [None, Some("JWT"), Some("at+jwt")] {
        let token = typed_token(typ);
        assert!(matches!(
            run(&open, "GET", "/corp", &[("x-corp-token", &token)]),
            Verdict::Allow(_)
        ));
    }
    for (types, field) in [
        (json!([]), "providers.corp.accepted_types: "),
        (
            json!(["at+jwt", "at jwt"]),
            "providers.corp.accepted_types[1]: ",
        ),
        (
            json!(["application/at+jwt; x=y"]),
            "providers.corp.accepted_types[0]: ",
        ),
        (json!(["a/b/c"]), "providers.corp.accepted_types[0]: "),
    ] {
        let error = parse(&config_with(json!({}), Some(types), json!({}))).unwrap_err();
        assert!(error.starts_with(field), "{error}");
    }
}

#[test]
fn challenges_name_the_resource_metadata_url_and_rules_may_name_their_own() {
    let mut raw = config_with(
        json!({}),
        None,
        json!({"resource_metadata": "https://mcp.example.com/.well-known/oauth-protected-resource"}),
    );
    raw["rules"][0]["resource_metadata"] =
        json!("https://corp.example.com/.well-known/oauth-protected-resource/corp");
    let config = parse(&raw).unwrap();
    let (status, _, challenge) = refused(run(&config, "GET", "/api", &[]));
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"https://mcp.test/api\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\"")
    );
    let (_, _, challenge) = refused(run(&config, "GET", "/corp", &[("x-corp-token", "a.b.c")]));
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"https://mcp.test/corp\", error=\"invalid_token\", resource_metadata=\"https://corp.example.com/.well-known/oauth-protected-resource/corp\"")
    );
    let no_scope = entra_token(&entra_issuer(TENANT_A), Some(TENANT_A));
    let (status, _, challenge) = refused(run(
        &config,
        "GET",
        "/orders",
        &[("authorization", &bearer(&no_scope))],
    ));
    assert_eq!(status, 403);
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"https://mcp.test/orders\", error=\"insufficient_scope\", scope=\"orders:read\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\"")
    );

    for (top, field) in [
        (
            json!({"resource_metadata": "http://mcp.example.com/x"}),
            "resource_metadata: ",
        ),
        (
            json!({"resource_metadata": "https://mcp.example.com/\"x"}),
            "resource_metadata: ",
        ),
        (
            json!({"resource_metadata": "https:///x"}),
            "resource_metadata: ",
        ),
        (
            json!({"resource_metadata": "https://mcp.example.com/", "strip_failure_response": true}),
            "resource_metadata: strip_failure_response removes",
        ),
        (
            json!({"protected_resource": {"resource": "https://mcp.example.com/mcp?x=1"}}),
            "protected_resource.resource: ",
        ),
        (
            json!({"protected_resource": {"resource": "mcp.example.com"}}),
            "protected_resource.resource: ",
        ),
        (
            json!({"protected_resource": {"resource": "https://mcp.example.com", "authorization_servers": []}}),
            "protected_resource.authorization_servers: ",
        ),
    ] {
        let error = parse(&config_with(json!({}), None, top.clone())).unwrap_err();
        assert!(error.starts_with(field), "{top}: {error}");
    }
    let mut rule_level = config_with(json!({}), None, json!({"strip_failure_response": true}));
    rule_level["rules"][1]["resource_metadata"] = json!("https://mcp.example.com/x");
    let error = parse(&rule_level).unwrap_err();
    assert!(error.starts_with("rules[1].resource_metadata: "), "{error}");
}

#[test]
fn the_metadata_document_is_built_from_the_configuration_and_served_on_get_only() {
    let config = parse(&config_with(
        json!({"tenants": [TENANT_A]}),
        None,
        json!({"protected_resource": {"resource": "https://mcp.example.com/mcp", "resource_name": "Orders MCP"}}),
    ))
    .unwrap();
    let resource = config.protected_resource.as_ref().unwrap();
    assert_eq!(
        resource.well_known_path,
        "/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        resource.metadata_url,
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );
    let Verdict::Answer(reply) = run(
        &config,
        "GET",
        "/.well-known/oauth-protected-resource/mcp?x",
        &[],
    ) else {
        panic!("the document is served");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers,
        vec![
            ("content-type", "application/json"),
            ("access-control-allow-origin", "*")
        ]
    );
    let document: Value = serde_json::from_str(&reply.body).unwrap();
    // Providers in name order (corp, entra): the fixed issuer, then the allowed tenant's issuer; the
    // rules' scopes; Authorization: Bearer and access_token are entra's default locations.
    assert_eq!(
        document,
        json!({
            "resource": "https://mcp.example.com/mcp",
            "authorization_servers": [fixtures::ISSUER, entra_issuer(TENANT_A)],
            "scopes_supported": ["orders:read"],
            "bearer_methods_supported": ["header", "query"],
            "resource_name": "Orders MCP"
        })
    );
    // Challenges name the served document's URL when no resource_metadata is given.
    let (_, _, challenge) = refused(run(&config, "GET", "/mcp", &[]));
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"https://mcp.test/mcp\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"")
    );
    // Other methods and other paths go by the rules (here: "/" requires a token).
    for (method, path) in [
        ("POST", "/.well-known/oauth-protected-resource/mcp"),
        ("GET", "/.well-known/oauth-protected-resource"),
        ("GET", "/.well-known/oauth-protected-resource/mcp/x"),
    ] {
        assert_eq!(
            refused(run(&config, method, path, &[])).0,
            401,
            "{method} {path}"
        );
    }

    // A resource without a path is served at the bare well-known path; explicit fields win.
    let config = parse(&config_with(
        json!({}),
        None,
        json!({"protected_resource": {
            "resource": "https://mcp.example.com/",
            "authorization_servers": ["https://login.microsoftonline.com/organizations/v2.0"],
            "scopes_supported": []
        }}),
    ))
    .unwrap();
    let Verdict::Answer(reply) = run(&config, "GET", "/.well-known/oauth-protected-resource", &[])
    else {
        panic!("the document is served");
    };
    assert_eq!(
        serde_json::from_str::<Value>(&reply.body).unwrap(),
        json!({
            "resource": "https://mcp.example.com/",
            "authorization_servers": ["https://login.microsoftonline.com/organizations/v2.0"],
            "bearer_methods_supported": ["header", "query"]
        })
    );
    // With no fixed issuer to list, authorization_servers must be given.
    let mut no_issuer = config_with(
        json!({}),
        None,
        json!({"protected_resource": {"resource": "https://mcp.example.com"}}),
    );
    no_issuer["providers"]
        .as_object_mut()
        .unwrap()
        .remove("corp");
    no_issuer["rules"].as_array_mut().unwrap().remove(0);
    let error = parse(&no_issuer).unwrap_err();
    assert!(
        error.starts_with("protected_resource.authorization_servers: no provider"),
        "{error}"
    );
}
