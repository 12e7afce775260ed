//! Any request (path, method, headers with any bytes) through rules with every kind of match and
//! requirement tree: never a panic, and never a claim header or filter state on the way out, since no
//! fuzzed token can carry a valid signature. Some rules let requests through without a token
//! (allow_missing, allow_missing_or_failed, report-only); those must still carry no identity.
#![no_main]

use std::rc::Rc;

use jwt_authn_wasm::request::{start, Start, Verdict};
use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::request::borrow_header_pairs;
use jwt_authn_wasm::jwks::{parse_local_jwks, Jwks};
use jwt_authn_wasm::request::TokenCaches;
use libfuzzer_sys::fuzz_target;

const JWKS: &str = include_str!("../jwks.json");

thread_local! {
    static FIXTURE: (FilterConfig, Rc<Jwks>) = fixture();
}

fn fixture() -> (FilterConfig, Rc<Jwks>) {
    let jwks = serde_json::Value::String(JWKS.trim().to_string());
    let config = serde_json::json!({
        "providers": {
            "a": {"issuer": "https://issuer.example.com", "audiences": ["api.example.com"],
                  "local_jwks": {"inline_string": jwks},
                  "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token"}],
                  "from_params": ["access_token"], "from_cookies": ["session"],
                  "subjects": {"prefix": "a"}, "max_lifetime": "86400s",
                  "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"},
                                       {"header_name": "x-roles", "claim_name": "roles"}],
                  "payload_in_filter_state": "p"},
            "b": {"issuer": "https://b.example.com", "local_jwks": {"inline_string": jwks},
                  "from_headers": [{"name": "x-b"}], "require_expiration": true, "report_only": true,
                  "claim_to_headers": [{"header_name": "x-b-sub", "claim_name": "sub"}]}
        },
        "requirement_map": {"ab": {"requires_any": {"requirements": [
            {"provider_name": "a"}, {"provider_name": "b"}, {"allow_missing": {}}]}}},
        "rules": [
            {"match": {"safe_regex": {"regex": "/r/[a-z]+(/.*)?"}}, "requirement_name": "ab"},
            {"match": {"path_separated_prefix": "/all"}, "requires": {"requires_all": {"requirements": [
                {"provider_name": "a"},
                {"requires_any": {"requirements": [{"provider_name": "b"}, {"allow_missing_or_failed": {}}]}}]}}},
            {"match": {"prefix": "/h", "case_sensitive": false,
                       "headers": [{"name": "x-env", "string_match": {"prefix": "p", "ignore_case": true}},
                                   {"name": "x-debug", "present_match": true, "invert_match": true}],
                       "query_parameters": [{"name": "m", "string_match": {"contains": "x"}}]},
             "requires": {"provider_and_audiences": {"provider_name": "a", "audiences": ["other"]}},
             "authorization": {"scopes": ["read"], "claims": [{"name": "roles", "values": ["admin"]}]}},
            {"match": {"prefix": "/missing"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/report"}, "requires": {"provider_name": "a"}, "report_only": true},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}
        ],
        "bypass_cors_preflight": true,
        "failure_response_format": "json"
    });
    let config = FilterConfig::parse(config.to_string().as_bytes()).expect("fuzz fixture config");
    let jwks = parse_local_jwks(JWKS.as_bytes()).expect("fuzz fixture jwks");
    (config, Rc::new(jwks))
}

const NAMES: [&str; 10] = [
    ":method", "authorization", "x-token", "x-b", "cookie", "x-env", "x-debug", "origin",
    "access-control-request-method", "x-sub",
];

// "Now" is in 2096: the seed tokens (valid for an hour from when they were minted) are all expired then.
fuzz_target!(|data: &[u8]| FIXTURE.with(|(config, jwks)| {
    let mut parts = data.split(|&b| b == 0);
    let path = parts.next().unwrap_or_default();
    let mut headers = vec![(":path".to_string(), path.to_vec())];
    for (index, value) in parts.enumerate() {
        let name = NAMES[index % NAMES.len()];
        headers.push((name.to_string(), value.to_vec()));
    }
    let mut caches = TokenCaches::for_config(config);
    let pairs = borrow_header_pairs(&headers);
    let verdict = match start(config, &pairs, 4_000_000_000, &mut caches) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(jwks.clone()), &mut caches),
    };
    if let Verdict::Allow(mutations) = verdict {
        assert!(mutations.set_headers.is_empty(), "identity from a fuzzed token: {mutations:?}");
        assert!(mutations.filter_state.is_empty(), "filter state from a fuzzed token");
        assert!(
            mutations.removed().contains(&"x-sub")
                || !headers.iter().any(|(n, _)| n == "x-sub"),
            "a client x-sub header kept"
        );
    }
}));
