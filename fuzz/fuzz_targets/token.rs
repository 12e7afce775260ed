//! Any bytes as a token, through the whole request path: extraction from `Authorization`, parsing,
//! claim checks, key choice and signature against a fixed JWKS, and the verified-token cache. Must never
//! panic, and must never admit a token (the fuzzer cannot forge an RSA, ECDSA, Ed25519 or HMAC signature).
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
    {
        let config = format!(
            r#"{{"providers": {{"p": {{"issuer": "https://issuer.example.com", "audiences": ["api.example.com"],
                "local_jwks": {{"inline_string": {}}},
                "claim_to_headers": [{{"header_name": "x-sub", "claim_name": "sub"}}, {{"header_name": "x-deep", "claim_name": "a.b.c"}}],
                "forward_payload_header": "x-payload"}}}},
               "rules": [{{"match": {{"prefix": "/"}}, "requires": {{"provider_name": "p"}}}}]}}"#,
            serde_json_string(JWKS.trim())
        );
        let config = FilterConfig::parse(config.as_bytes()).expect("fuzz fixture config");
        let jwks = parse_local_jwks(JWKS.as_bytes()).expect("fuzz fixture jwks");
        (config, Rc::new(jwks))
    }
}

fn serde_json_string(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

// "Now" is in 2096: the seed tokens (valid for an hour from when they were minted) are all expired then,
// so any admitted token would be a forgery.
fuzz_target!(|data: &[u8]| FIXTURE.with(|(config, jwks)| {
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(data);
    let headers = vec![
        (":path".to_string(), b"/api".to_vec()),
        (":authority".to_string(), b"fuzz".to_vec()),
        ("authorization".to_string(), value),
    ];
    let mut caches = TokenCaches::for_config(config);
    let verdict = match start(
        config,
        &borrow_header_pairs(&headers),
        4_000_000_000,
        &mut caches,
    ) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(jwks.clone()), &mut caches),
    };
    assert!(
        matches!(verdict, Verdict::Deny(_)),
        "a fuzzed token was admitted"
    );
}));
