//! Prints N distinct valid tokens (one per line) for the benchmark's cold runs, and the JWKS they verify
//! against on stderr-free demand: `mint_bench_tokens N` writes tokens; `mint_bench_tokens jwks` writes the
//! JWKS. `ALG` picks the algorithm: RS256 (default, 2048-bit), ES256, ES384 or EdDSA.

// Measurement code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

#[path = "../../tests/common/fixtures.rs"]
pub mod fixtures;

use serde_json::json;

fn main() {
    let keys = fixtures::Keys::load();
    let arg = std::env::args().nth(1).unwrap_or_else(|| "1".to_string());
    let alg = std::env::var("ALG").unwrap_or_else(|_| "RS256".to_string());
    if arg == "jwks" {
        let jwk = match alg.as_str() {
            "RS256" => keys.rsa2048.jwk(Some("RS256")),
            "ES256" => keys.ec.p256_jwk(),
            "ES384" => keys.ec.p384_jwk(),
            "EdDSA" => keys.ec.ed25519_jwk(),
            other => panic!("ALG={other}: use RS256, ES256, ES384 or EdDSA"),
        };
        println!("{}", json!({ "keys": [jwk] }));
        return;
    }
    let count: usize = arg.parse().expect("a token count");
    let now = fixtures::now();
    for i in 0..count {
        let mut claims = fixtures::good_claims(now);
        claims["jti"] = json!(format!("bench-{i}"));
        claims["exp"] = json!(now + 4 * 3600);
        let token = match alg.as_str() {
            "RS256" => fixtures::mint(&keys.rsa2048, "RS256", &claims),
            other => keys.ec.mint(other, &claims),
        };
        println!("{token}");
    }
}
