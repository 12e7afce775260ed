//! Per-request cost of `requires_any` over N providers with a token for the last one, host-native
//! (not Envoy, not V8): hot (the token in the verified-token cache, `start` alone) and cold (no cache:
//! `start` + `finish`, parsing, claim checks and the RS256 signature). A simple timing loop, the
//! fastest of five passes after a warm-up:
//!
//! `cargo run --release --example provider_scaling`

#![allow(clippy::restriction)]

use std::rc::Rc;
use std::time::Instant;

use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::jwks::parse_local_jwks;
use jwt_authn_wasm::request::{start, HeaderPair, Start, TokenCaches, Verdict};

#[path = "../../tests/common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

const HOT_ROUNDS: u32 = 20_000;
const COLD_ROUNDS: u32 = 300;

fn main() {
    let keys = fixtures::Keys::load();
    let jwks_text = keys.jwks().to_string();
    let jwks = Rc::new(parse_local_jwks(jwks_text.as_bytes()).expect("jwks"));
    println!("| providers | hot µs/request | cold µs/request |");
    println!("|---|---|---|");
    for n in [1usize, 10, 50] {
        let providers: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#""p{i}": {{"issuer": "https://issuer{i}.example.com", "local_jwks": {{"inline_string": {}}},
                       "claim_to_headers": [{{"header_name": "x-sub", "claim_name": "sub"}}]}}"#,
                    serde_json::Value::String(jwks_text.clone())
                )
            })
            .collect();
        let requires = if n == 1 {
            r#"{"provider_name": "p0"}"#.to_string()
        } else {
            let children: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"provider_name": "p{i}"}}"#))
                .collect();
            format!(
                r#"{{"requires_any": {{"requirements": [{}]}}}}"#,
                children.join(",")
            )
        };
        let config = format!(
            r#"{{"providers": {{{}}}, "rules": [{{"match": {{"prefix": "/"}}, "requires": {requires}}}]}}"#,
            providers.join(",")
        );
        let config = FilterConfig::parse(config.as_bytes()).expect("config");
        let now = fixtures::now();
        let mut claims = fixtures::good_claims(now);
        claims["iss"] = serde_json::json!(format!("https://issuer{}.example.com", n - 1));
        let token = fixtures::mint(&keys.rsa2048, "RS256", &claims);
        let authorization = format!("Bearer {token}");
        let headers: [HeaderPair; 3] = [
            (b":path", b"/api"),
            (b":authority", b"api.example.com"),
            (b"authorization", authorization.as_bytes()),
        ];
        let decide = |caches: &mut TokenCaches| match start(&config, &headers, now, caches) {
            Start::Decided(verdict) => verdict,
            Start::NeedsKeys(pending) => pending.finish(&config, &|_| Some(jwks.clone()), caches),
        };
        let (mut hot, mut cold) = (f64::MAX, f64::MAX);
        for pass in 0..6 {
            let mut caches = TokenCaches::for_config(&config);
            assert!(matches!(decide(&mut caches), Verdict::Allow(_)));
            let started = Instant::now();
            for _ in 0..HOT_ROUNDS {
                let decided = start(&config, &headers, now, &mut caches);
                assert!(matches!(decided, Start::Decided(Verdict::Allow(_))));
            }
            let pass_hot = started.elapsed().as_secs_f64() * 1e6 / f64::from(HOT_ROUNDS);
            let started = Instant::now();
            for _ in 0..COLD_ROUNDS {
                let mut caches = TokenCaches::disabled();
                assert!(matches!(decide(&mut caches), Verdict::Allow(_)));
            }
            let pass_cold = started.elapsed().as_secs_f64() * 1e6 / f64::from(COLD_ROUNDS);
            if pass > 0 {
                hot = hot.min(pass_hot);
                cold = cold.min(pass_cold);
            }
        }
        println!("| {n} | {hot:.2} | {cold:.1} |");
    }
}
