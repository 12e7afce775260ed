//! Real Envoy, this filter and jwt_authn side by side with one configuration that uses jwt_authn's
//! requirement and matching fields: requirement_map / requirement_name, requires_any, requires_all
//! (nested), allow_missing, allow_missing_or_failed, provider_and_audiences; rules on prefix, path,
//! path_separated_prefix, safe_regex, case_sensitive, headers and query_parameters; providers with
//! from_headers (value_prefix), from_params, from_cookies, subjects, require_expiration, max_lifetime,
//! ES256 / EdDSA / HS256 keys; bypass_cors_preflight and strip_failure_response. Every request must get
//! the same status and body from both filters, and the same identity headers upstream.

use crate::common;

use serde_json::{json, Value};

use common::fixtures::{self, good_claims, hmac_jwks, mint, mint_hmac, now, Keys, HMAC_SECRET};
use common::servers::{http_request_with_method, HttpResponse};
use common::Scenario;

const BETA: &str = "https://beta.example.com";
const HS: &str = "https://hs.example.com";

fn parity_config(keys: &Keys, strip: bool) -> Value {
    let local = json!({"inline_string": keys.jwks().to_string()});
    json!({
        "providers": {
            "alpha": {
                "issuer": fixtures::ISSUER,
                "audiences": [fixtures::AUDIENCE],
                "local_jwks": local,
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                "from_params": ["access_token"],
                "subjects": {"prefix": "ali"},
                "max_lifetime": "7200s",
                "claim_to_headers": [{"header_name": "x-alpha-sub", "claim_name": "sub"}]
            },
            "beta": {
                "issuer": BETA,
                "local_jwks": local,
                "from_headers": [{"name": "x-beta-token"}],
                "from_cookies": ["beta_session"],
                "require_expiration": true,
                "forward": true,
                "claim_to_headers": [{"header_name": "x-beta-sub", "claim_name": "sub"}]
            },
            "hs": {
                "issuer": HS,
                "local_jwks": {"inline_string": hmac_jwks().to_string()},
                "from_headers": [{"name": "x-hs-token", "value_prefix": "HS "}]
            }
        },
        "requirement_map": {
            "alpha_or_beta": {"requires_any": {"requirements": [
                {"provider_name": "alpha"}, {"provider_name": "beta"}
            ]}}
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"path_separated_prefix": "/either"}, "requirement_name": "alpha_or_beta"},
            {"match": {"prefix": "/both"}, "requires": {"requires_all": {"requirements": [
                {"provider_name": "alpha"}, {"provider_name": "beta"}
            ]}}},
            {"match": {"safe_regex": {"regex": "/optional(/.*)?"}}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/lenient"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"prefix": "/any-or-none"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "alpha"}, {"allow_missing": {}}
            ]}}},
            {"match": {"prefix": "/other-audience"}, "requires": {"provider_and_audiences": {
                "provider_name": "alpha", "audiences": ["https://other.example.com/"]
            }}},
            {"match": {"prefix": "/tenant", "headers": [{"name": "x-tenant", "string_match": {"exact": "acme"}}]},
             "requires": {"provider_name": "beta"}},
            {"match": {"prefix": "/mode", "query_parameters": [{"name": "m", "string_match": {"exact": "beta"}}]},
             "requires": {"provider_name": "beta"}},
            {"match": {"prefix": "/CASE", "case_sensitive": false}, "requires": {"provider_name": "beta"}},
            {"match": {"path": "/hs"}, "requires": {"provider_name": "hs"}},
            {"match": {"prefix": "/nested"}, "requires": {"requires_any": {"requirements": [
                {"requires_all": {"requirements": [{"provider_name": "alpha"}, {"provider_name": "beta"}]}},
                {"provider_name": "hs"}
            ]}}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "alpha"}}
        ],
        "bypass_cors_preflight": true,
        "strip_failure_response": strip
    })
}

/// One request of the corpus.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
}

fn case(name: &'static str, path: &str, headers: Vec<(&'static str, String)>) -> Case {
    Case {
        name,
        method: "GET",
        path: path.to_string(),
        headers,
    }
}

fn corpus(keys: &Keys) -> Vec<Case> {
    let t = now();
    let alpha = mint(&keys.rsa2048, "RS256", &good_claims(t));
    let alpha_ec = keys.ec.mint("ES256", &good_claims(t));
    let with = |base: Value, changes: Value| {
        let mut claims = base;
        for (k, v) in changes.as_object().expect("object") {
            if v.is_null() {
                claims.as_object_mut().expect("object").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let beta_claims = with(
        good_claims(t),
        json!({"iss": BETA, "sub": "bob", "aud": null}),
    );
    let beta = keys.ec.mint("EdDSA", &beta_claims);
    let beta_no_exp = keys
        .ec
        .mint("ES256", &with(beta_claims.clone(), json!({"exp": null})));
    let hs = mint_hmac(
        "HS256",
        HMAC_SECRET,
        &with(good_claims(t), json!({"iss": HS})),
    );
    let hs_forged = mint_hmac(
        "HS256",
        b"not-the-secret-but-long-enough-123",
        &with(good_claims(t), json!({"iss": HS})),
    );
    let expired = mint(
        &keys.rsa2048,
        "RS256",
        &with(good_claims(t), json!({"exp": t - 3600})),
    );
    let mallory = mint(
        &keys.rsa2048,
        "RS256",
        &with(good_claims(t), json!({"sub": "mallory"})),
    );
    let long_lived = mint(
        &keys.rsa2048,
        "RS256",
        &with(good_claims(t), json!({"exp": t + 3 * 3600})),
    );
    let other_aud = mint(
        &keys.rsa2048,
        "RS256",
        &with(good_claims(t), json!({"aud": "other.example.com"})),
    );
    let unknown_iss = mint(
        &keys.rsa2048,
        "RS256",
        &with(good_claims(t), json!({"iss": "https://nobody.example.com"})),
    );
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));
    let beta_header = |token: &str| ("x-beta-token", token.to_string());
    vec![
        case("public without token", "/public/x", vec![]),
        case("either: alpha", "/either", vec![bearer(&alpha)]),
        case("either: beta", "/either/x", vec![beta_header(&beta)]),
        case(
            "either: beta cookie",
            "/either",
            vec![("cookie", format!("a=1; beta_session={beta}"))],
        ),
        case("either: none", "/either", vec![]),
        case("either: expired alpha", "/either", vec![bearer(&expired)]),
        case(
            "either: expired alpha, good beta",
            "/either",
            vec![bearer(&expired), beta_header(&beta)],
        ),
        case(
            "not separated prefix: beta only",
            "/eitherx",
            vec![beta_header(&beta)],
        ),
        case(
            "both: both",
            "/both",
            vec![bearer(&alpha_ec), beta_header(&beta)],
        ),
        case("both: alpha only", "/both", vec![bearer(&alpha)]),
        case(
            "both: bad beta",
            "/both",
            vec![bearer(&alpha), beta_header(&beta_no_exp)],
        ),
        case("optional: none", "/optional", vec![]),
        case("optional: good", "/optional/x", vec![bearer(&alpha)]),
        case("optional: expired", "/optional/x", vec![bearer(&expired)]),
        case(
            "optional: unknown issuer",
            "/optional",
            vec![bearer(&unknown_iss)],
        ),
        case("optional regex does not match", "/optionalx", vec![]),
        case("lenient: garbage", "/lenient", vec![bearer("a.b.c")]),
        case("lenient: good", "/lenient", vec![bearer(&alpha)]),
        case("any-or-none: none", "/any-or-none", vec![]),
        case("any-or-none: good", "/any-or-none", vec![bearer(&alpha)]),
        case(
            "any-or-none: expired",
            "/any-or-none",
            vec![bearer(&expired)],
        ),
        case(
            "any-or-none: other issuer",
            "/any-or-none",
            vec![bearer(&unknown_iss)],
        ),
        case(
            "other-audience: api audience",
            "/other-audience",
            vec![bearer(&alpha)],
        ),
        case(
            "other-audience: other audience",
            "/other-audience",
            vec![bearer(&other_aud)],
        ),
        case(
            "tenant acme: beta",
            "/tenant",
            vec![("x-tenant", "acme".into()), beta_header(&beta)],
        ),
        case(
            "tenant other: falls to alpha",
            "/tenant",
            vec![("x-tenant", "other".into()), beta_header(&beta)],
        ),
        case(
            "mode=beta: beta",
            "/mode?x=1&m=beta",
            vec![beta_header(&beta)],
        ),
        case(
            "mode=alpha: falls to alpha",
            "/mode?m=alpha",
            vec![beta_header(&beta)],
        ),
        case(
            "case-insensitive prefix",
            "/case/x",
            vec![beta_header(&beta)],
        ),
        case("hs256", "/hs", vec![("x-hs-token", format!("HS {hs}"))]),
        case(
            "hs256 forged",
            "/hs",
            vec![("x-hs-token", format!("HS {hs_forged}"))],
        ),
        case(
            "nested: hs",
            "/nested",
            vec![("x-hs-token", format!("HS {hs}"))],
        ),
        // A header that is not one of Envoy's inline headers stays repeated in the header map (Authorization
        // is joined into one value: tests/envoy/adversarial.rs). jwt_authn 1.40 checks each copy as a token
        // of its own, and every one must pass; so does this filter.
        case(
            "repeated header, no prefix: the same token twice",
            "/either",
            vec![beta_header(&beta), beta_header(&beta)],
        ),
        case(
            "repeated header, no prefix: good then expired",
            "/either",
            vec![beta_header(&beta), beta_header(&beta_no_exp)],
        ),
        case(
            "repeated header, prefix: the same token twice",
            "/hs",
            vec![
                ("x-hs-token", format!("HS {hs}")),
                ("x-hs-token", format!("HS {hs}")),
            ],
        ),
        case(
            "repeated header, prefix only in the second",
            "/hs",
            vec![
                ("x-hs-token", "Basic dXNlcjpwYXNz".to_string()),
                ("x-hs-token", format!("HS {hs}")),
            ],
        ),
        case(
            "repeated header, prefix only in the second, forged",
            "/hs",
            vec![
                ("x-hs-token", "Basic dXNlcjpwYXNz".to_string()),
                ("x-hs-token", format!("HS {hs_forged}")),
            ],
        ),
        case("nested: alpha only", "/nested", vec![bearer(&alpha)]),
        case(
            "nested: alpha and beta",
            "/nested",
            vec![bearer(&alpha), beta_header(&beta)],
        ),
        case("subjects: mallory", "/api", vec![bearer(&mallory)]),
        case("max_lifetime exceeded", "/api", vec![bearer(&long_lived)]),
        case(
            "require_expiration",
            "/either",
            vec![beta_header(&beta_no_exp)],
        ),
        case(
            "two tokens, both good",
            &format!("/api?access_token={alpha_ec}"),
            vec![bearer(&alpha)],
        ),
        case(
            "two tokens, one expired",
            &format!("/api?access_token={expired}"),
            vec![bearer(&alpha)],
        ),
        Case {
            name: "cors preflight",
            method: "OPTIONS",
            path: "/api".into(),
            headers: vec![
                ("origin", "https://app.example.com".into()),
                ("access-control-request-method", "GET".into()),
            ],
        },
        Case {
            name: "options without preflight headers",
            method: "OPTIONS",
            path: "/api".into(),
            headers: vec![("origin", "https://app.example.com".into())],
        },
    ]
}

fn send(port: u16, case: &Case) -> HttpResponse {
    let headers: Vec<(&str, &[u8])> = case
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    http_request_with_method(port, case.method, &case.path, &headers)
}

/// Identity headers upstream, each header's values deduplicated (jwt_authn adds one copy per verified
/// token even when two tokens carry the same claim value; this filter adds distinct values once).
fn identity(response: &HttpResponse) -> Vec<(String, Vec<Value>)> {
    let headers = response.upstream_headers();
    ["x-alpha-sub", "x-beta-sub", "authorization", "x-beta-token"]
        .iter()
        .map(|name| {
            let mut values: Vec<Value> = headers[*name].as_array().cloned().unwrap_or_default();
            values.dedup();
            (name.to_string(), values)
        })
        .collect()
}

fn run_parity(strip: bool) -> Vec<String> {
    let keys = Keys::load();
    let scenario = Scenario::start(2, true, |_| parity_config(&keys, strip));
    let mut mismatches = Vec::new();
    let mut statuses = Vec::new();
    for case in corpus(&keys) {
        let ours = send(scenario.envoy.wasm_port, &case);
        let native = send(scenario.envoy.native_port, &case);
        let line = format!(
            "{:36} ours {} {:?} | native {} {:?}",
            case.name,
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
            },
        );
        println!("{line}");
        statuses.push(ours.status);
        let same = ours.status == native.status
            && (ours.status == 200 || ours.body == native.body)
            && ours.header("www-authenticate") == native.header("www-authenticate")
            && (ours.status != 200 || identity(&ours) == identity(&native));
        if !same {
            mismatches.push(format!(
                "{line}\n    ours {:?} {:?}\n  native {:?} {:?}",
                ours.header("www-authenticate"),
                if ours.status == 200 {
                    identity(&ours)
                } else {
                    vec![]
                },
                native.header("www-authenticate"),
                if native.status == 200 {
                    identity(&native)
                } else {
                    vec![]
                },
            ));
        }
    }
    scenario.envoy.assert_no_vm_failure();
    // The corpus has to exercise both verdicts, or agreement means little.
    assert!(statuses.contains(&200) && statuses.contains(&401) && statuses.contains(&403));
    mismatches
}

#[test]
fn every_requirement_and_match_feature_gets_jwt_authn_verdicts() {
    let mismatches = run_parity(false);
    assert!(
        mismatches.is_empty(),
        "differs from jwt_authn:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn strip_failure_response_matches_jwt_authn() {
    let mismatches = run_parity(true);
    assert!(
        mismatches.is_empty(),
        "differs from jwt_authn:\n{}",
        mismatches.join("\n")
    );
}
