//! Host tests, one per option of issue 6: requirement trees, rule matching, provider claim options,
//! authorization, report-only, refusal formats, and the configuration refusals that name each field.

use crate::common;

use std::rc::Rc;

use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::config::{RawStringMatcher, StringMatcher};
use jwt_authn_wasm::jwks::parse_local_jwks;
use jwt_authn_wasm::request::borrow_header_pairs;
use jwt_authn_wasm::request::TokenCaches;
use jwt_authn_wasm::request::{start, Start, Verdict};
use serde_json::{json, Value};

use common::fixtures::{self, good_claims, mint, now, Keys};

const BETA: &str = "https://beta.example.com";

fn config(rules: Value, extra: Value) -> FilterConfig {
    let keys = Keys::load();
    let local = json!({"inline_string": keys.jwks().to_string()});
    let mut config = json!({
        "providers": {
            "alpha": {"issuer": fixtures::ISSUER, "audiences": [fixtures::AUDIENCE], "local_jwks": local,
                      "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]},
            "beta": {"issuer": BETA, "local_jwks": local, "from_headers": [{"name": "x-beta"}],
                     "claim_to_headers": [{"header_name": "x-beta-sub", "claim_name": "sub"}]}
        },
        "rules": rules
    });
    for (k, v) in extra.as_object().expect("object") {
        config[k] = v.clone();
    }
    FilterConfig::parse(config.to_string().as_bytes()).unwrap()
}

fn alpha(changes: Value) -> String {
    let mut claims = good_claims(now());
    for (k, v) in changes.as_object().expect("object") {
        claims[k] = v.clone();
    }
    mint(&Keys::load().rsa2048, "RS256", &claims)
}

fn beta() -> String {
    let mut claims = good_claims(now());
    claims["iss"] = json!(BETA);
    claims["sub"] = json!("bob");
    Keys::load().ec.mint("ES256", &claims)
}

fn request(method: &str, path: &str, extra: &[(&str, String)]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":scheme".to_string(), b"http".to_vec()),
        (":authority".to_string(), b"h".to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

/// (status, body) of the verdict; 200 with an empty body when allowed.
fn verdict(config: &FilterConfig, headers: &[(String, Vec<u8>)]) -> (u32, String) {
    match decide(config, headers) {
        Verdict::Allow(_) => (200, String::new()),
        Verdict::Deny(reply) => (reply.status, reply.body),
        Verdict::Answer(answer) => (answer.status, answer.body),
    }
}

fn decide(config: &FilterConfig, headers: &[(String, Vec<u8>)]) -> Verdict {
    let jwks = Rc::new(parse_local_jwks(Keys::load().jwks().to_string().as_bytes()).unwrap());
    let mut caches = TokenCaches::disabled();
    match start(config, &borrow_header_pairs(headers), now(), &mut caches) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(jwks.clone()), &mut caches),
    }
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[test]
fn requires_any_takes_the_last_real_failure_and_allow_missing_flags() {
    let any = |extra: Value| {
        let mut requirements = vec![
            json!({"provider_name": "alpha"}),
            json!({"provider_name": "beta"}),
        ];
        if !extra.is_null() {
            requirements.push(extra);
        }
        config(
            json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": requirements}}}]),
            json!({}),
        )
    };
    let plain = any(Value::Null);
    assert_eq!(
        verdict(&plain, &request("GET", "/", &[bearer(&alpha(json!({})))])).0,
        200
    );
    assert_eq!(
        verdict(&plain, &request("GET", "/", &[("x-beta", beta())])).0,
        200
    );
    assert_eq!(
        verdict(&plain, &request("GET", "/", &[])),
        (401, "Jwt is missing".into())
    );
    // A beta token in alpha's location is "another issuer" for alpha: it counts only if nothing else
    // failed, so with beta's own location empty the answer is the issuer refusal.
    assert_eq!(
        verdict(&plain, &request("GET", "/", &[bearer(&beta())])),
        (401, "Jwt issuer is not configured".into())
    );
    let expired = alpha(json!({"exp": now() - 3600}));
    assert_eq!(
        verdict(&plain, &request("GET", "/", &[bearer(&expired)])),
        (401, "Jwt is expired".into())
    );
    let allow_missing = any(json!({"allow_missing": {}}));
    assert_eq!(verdict(&allow_missing, &request("GET", "/", &[])).0, 200);
    assert_eq!(
        verdict(&allow_missing, &request("GET", "/", &[bearer(&expired)])).0,
        401
    );
    let allow_failed = any(json!({"allow_missing_or_failed": {}}));
    assert_eq!(
        verdict(&allow_failed, &request("GET", "/", &[bearer(&expired)])).0,
        200
    );
}

#[test]
fn requires_all_needs_every_child_and_nests() {
    let config = config(
        json!([{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "alpha"},
            {"requires_any": {"requirements": [{"provider_name": "beta"}, {"allow_missing": {}}]}}
        ]}}}]),
        json!({}),
    );
    let both = request("GET", "/", &[bearer(&alpha(json!({}))), ("x-beta", beta())]);
    let Verdict::Allow(mutations) = decide(&config, &both) else {
        panic!("both tokens pass")
    };
    assert_eq!(
        mutations.added(),
        vec![("x-sub", "alice"), ("x-beta-sub", "bob")],
        "claims of every token that passed go upstream"
    );
    assert_eq!(
        verdict(&config, &request("GET", "/", &[bearer(&alpha(json!({})))])).0,
        200
    );
    assert_eq!(
        verdict(&config, &request("GET", "/", &[("x-beta", beta())])).0,
        401
    );
}

#[test]
fn allow_missing_judges_each_token_by_its_issuer() {
    let config = config(
        json!([{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]),
        json!({}),
    );
    assert_eq!(verdict(&config, &request("GET", "/", &[])).0, 200);
    assert_eq!(
        verdict(&config, &request("GET", "/", &[("x-beta", beta())])).0,
        200
    );
    // A beta token in the Authorization header (alpha's location) names beta's issuer, which no
    // provider reading that header has.
    assert_eq!(
        verdict(&config, &request("GET", "/", &[bearer(&beta())])),
        (401, "Jwt issuer is not configured".into())
    );
    // Unlike jwt_authn, which reports only the last token here, any failing token refuses.
    assert_eq!(
        verdict(
            &config,
            &request(
                "GET",
                "/",
                &[
                    bearer(&alpha(json!({"exp": now() - 3600}))),
                    ("x-beta", beta())
                ]
            )
        )
        .0,
        401
    );
}

#[test]
fn rules_match_paths_headers_and_query_parameters() {
    let config = config(
        json!([
            {"match": {"path_separated_prefix": "/api"}, "requires": {"provider_name": "alpha"}},
            {"match": {"safe_regex": {"regex": "/v[0-9]+/items"}}, "requires": {"provider_name": "alpha"}},
            {"match": {"prefix": "/ADMIN", "case_sensitive": false}, "requires": {"provider_name": "alpha"}},
            {"match": {"prefix": "/h", "headers": [
                {"name": "x-env", "exact_match": "prod"},
                {"name": "x-debug", "present_match": true, "invert_match": true}
            ]}, "requires": {"provider_name": "alpha"}},
            {"match": {"prefix": "/q", "query_parameters": [{"name": "secure", "string_match": {"exact": "1"}}]},
             "requires": {"provider_name": "alpha"}},
            {"match": {"prefix": "/"}}
        ]),
        json!({}),
    );
    let needs_token = |path: &str, headers: &[(&str, String)]| {
        verdict(&config, &request("GET", path, headers)).0 == 401
    };
    assert!(needs_token("/api", &[]));
    assert!(needs_token("/api/x?y", &[]));
    assert!(
        !needs_token("/apix", &[]),
        "path_separated_prefix stops at a segment"
    );
    assert!(needs_token("/v2/items", &[]));
    assert!(
        !needs_token("/v2/items/3", &[]),
        "safe_regex matches the whole path"
    );
    assert!(needs_token("/admin/users", &[]));
    assert!(needs_token("/h", &[("x-env", "prod".into())]));
    assert!(!needs_token("/h", &[("x-env", "dev".into())]));
    assert!(!needs_token(
        "/h",
        &[("x-env", "prod".into()), ("x-debug", "1".into())]
    ));
    assert!(needs_token("/q?a=b&secure=1", &[]));
    assert!(!needs_token("/q?secure=0", &[]));
}

#[test]
fn cors_preflights_bypass_only_when_configured() {
    let rules = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "alpha"}}]);
    let preflight = request(
        "OPTIONS",
        "/",
        &[
            ("origin", "https://app".into()),
            ("access-control-request-method", "POST".into()),
        ],
    );
    assert_eq!(
        verdict(&config(rules.clone(), json!({})), &preflight).0,
        401
    );
    let bypass = config(rules, json!({"bypass_cors_preflight": true}));
    assert_eq!(verdict(&bypass, &preflight).0, 200);
    let not_preflight = request("OPTIONS", "/", &[("origin", "https://app".into())]);
    assert_eq!(verdict(&bypass, &not_preflight).0, 401);
}

#[test]
fn refusal_formats_text_json_and_stripped() {
    let rules = json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "alpha"}}]);
    let refuse =
        |extra: Value| match decide(&config(rules.clone(), extra), &request("GET", "/p", &[])) {
            Verdict::Deny(reply) => reply,
            Verdict::Allow(_) | Verdict::Answer(_) => panic!("refused"),
        };
    let text = refuse(json!({}));
    assert_eq!(
        (text.body.as_str(), text.content_type),
        ("Jwt is missing", "text/plain")
    );
    let json_reply = refuse(json!({"failure_response_format": "json"}));
    assert_eq!(json_reply.content_type, "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&json_reply.body).unwrap(),
        json!({"error": "missing_token", "error_description": "Jwt is missing"})
    );
    let stripped = refuse(json!({"strip_failure_response": true}));
    assert_eq!((stripped.status, stripped.body.as_str()), (401, ""));
    assert_eq!(stripped.www_authenticate, None);
}

#[test]
fn subjects_and_lifetime_options() {
    let keys = Keys::load();
    let provider = |options: Value| {
        let mut p = json!({"issuer": fixtures::ISSUER, "local_jwks": {"inline_string": keys.jwks().to_string()}});
        for (k, v) in options.as_object().unwrap() {
            p[k] = v.clone();
        }
        FilterConfig::parse(
            json!({"providers": {"p": p}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    };
    let get = |config: &FilterConfig, token: String| {
        verdict(config, &request("GET", "/", &[bearer(&token)]))
    };
    let fails = (401, "Jwt verification fails".to_string());
    let suffix = provider(json!({"subjects": {"suffix": "@corp", "ignore_case": true}}));
    assert_eq!(get(&suffix, alpha(json!({"sub": "ann@CORP"}))).0, 200);
    assert_eq!(get(&suffix, alpha(json!({"sub": "ann@other"}))), fails);
    let regex = provider(json!({"subjects": {"safe_regex": {"regex": "svc-[a-z]+"}}}));
    assert_eq!(get(&regex, alpha(json!({"sub": "svc-orders"}))).0, 200);
    assert_eq!(get(&regex, alpha(json!({"sub": "svc-orders-x1"}))), fails);
    let required = provider(json!({"require_expiration": true}));
    let mut no_exp = good_claims(now());
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(get(&required, mint(&keys.rsa2048, "RS256", &no_exp)), fails);
    assert_eq!(get(&required, alpha(json!({}))).0, 200);
    let short = provider(json!({"max_lifetime": "600s"}));
    assert_eq!(get(&short, alpha(json!({}))), fails, "exp is an hour away");
    assert_eq!(get(&short, alpha(json!({"exp": now() + 300}))).0, 200);
}

#[test]
fn string_matchers_follow_envoy() {
    let matcher = |raw: Value| {
        let raw: RawStringMatcher = serde_json::from_value(raw).unwrap();
        StringMatcher::compile(&raw)
    };
    assert!(matcher(json!({"exact": "a"})).unwrap().matches("a"));
    assert!(matcher(json!({"prefix": "Ab", "ignore_case": true}))
        .unwrap()
        .matches("aBc"));
    assert!(matcher(json!({"contains": "mid"}))
        .unwrap()
        .matches("amidst"));
    assert!(!matcher(json!({"safe_regex": {"regex": "a+"}}))
        .unwrap()
        .matches("aab"));
    assert!(matcher(json!({"exact": "a", "prefix": "b"})).is_err());
    assert!(matcher(json!({"safe_regex": {"regex": "a"}, "ignore_case": true})).is_err());
    assert!(matcher(json!({"safe_regex": {"regex": "("}})).is_err());
}

#[test]
fn issue_6_configuration_refusals_name_the_field() {
    let keys = Keys::load();
    let local = json!({"inline_string": keys.jwks().to_string()});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"prefix": "/"}, "requirement_name": "nope"}]}),
            "rules[0].requirement_name: no requirement named \"nope\" in requirement_map",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "p"}]}}}]}),
            "rules[0].requires.requires_any.requirements: needs at least 2 requirements",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [{"provider_name": "p"}, {"provider_name": "q"}]}}}]}),
            "rules[0].requires.requires_all.requirements[1].provider_name: no provider named \"q\" in providers",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"safe_regex": {"regex": "(("}}}]}),
            "rules[0].match.safe_regex: \"((\" is not a valid regex",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local, "subjects": {"exact": "a", "suffix": "b"}}}}),
            "providers.p.subjects: give exactly one of",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local, "max_lifetime": "soon"}}}),
            "providers.p.max_lifetime",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local, "from_cookies": ["a;b"]}}}),
            "providers.p.from_cookies[0]: \"a;b\" is not a valid cookie name",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local, "payload_in_metadata": "x"}}}),
            "providers.p.payload_in_metadata: a wasm filter cannot write dynamic metadata",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"prefix": "/"}, "authorization": {"scopes": ["a"]}}]}),
            "rules[0].authorization: needs a requirement on the same rule",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}, "authorization": {"scopes": ["a b"]}}]}),
            "rules[0].authorization.scopes[0]",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}}, "failure_response_format": "xml"}),
            "failure_response_format: \"xml\" is neither \"text\" nor \"json\"",
        ),
        (
            json!({"providers": {"p": {"local_jwks": local}},
                   "rules": [{"match": {"prefix": "/", "headers": [{"name": "x", "exact_match": "a", "present_match": true}]}}]}),
            "rules[0].match.headers[0]: give at most one match condition",
        ),
    ];
    for (config, want) in cases {
        let got = FilterConfig::parse(config.to_string().as_bytes())
            .expect_err(&config.to_string())
            .to_string();
        assert!(
            got.starts_with(want),
            "for {config}\n  got:  {got}\n  want: {want}"
        );
    }
}
