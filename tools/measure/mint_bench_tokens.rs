//! Prints N distinct valid tokens (one per line) for the benchmarks, and the JWKS they verify against on
//! demand: `mint_bench_tokens N` writes tokens; `mint_bench_tokens jwks` writes the JWKS. `ALG` picks the
//! algorithm: RS256 (default, 2048-bit), ES256, ES384 or EdDSA.
//!
//! For the scaling and realistic-traffic runs (bench/scaling.sh, bench/realistic.sh):
//! - `ISSUER=URL` gives the tokens that `iss` (a provider other than the first of several);
//! - `USERS=1` gives token i the subject `user-i` (one token per user);
//! - `KEYS=N` (with `jwks`) publishes N keys: N − 1 decoys with kids `decoy-0`… and the signing key,
//!   with its own kid, last. The decoys carry the same public material, so no key generation is needed
//!   and only the kid tells them apart, as the kid lookup must.

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
        let count: usize = std::env::var("KEYS")
            .ok()
            .map_or(1, |n| n.parse().expect("KEYS: a key count"));
        let mut set: Vec<serde_json::Value> = (0..count.saturating_sub(1))
            .map(|i| {
                let mut decoy = jwk.clone();
                decoy["kid"] = json!(format!("decoy-{i}"));
                decoy
            })
            .collect();
        set.push(jwk);
        println!("{}", json!({ "keys": set }));
        return;
    }
    let count: usize = arg.parse().expect("a token count");
    let issuer = std::env::var("ISSUER").ok();
    let users = std::env::var("USERS").is_ok_and(|v| v == "1");
    let now = fixtures::now();
    for i in 0..count {
        let mut claims = fixtures::good_claims(now);
        claims["jti"] = json!(format!("bench-{i}"));
        claims["exp"] = json!(now + 4 * 3600);
        if let Some(issuer) = &issuer {
            claims["iss"] = json!(issuer);
        }
        if users {
            claims["sub"] = json!(format!("user-{i}"));
        }
        let token = match alg.as_str() {
            "RS256" => fixtures::mint(&keys.rsa2048, "RS256", &claims),
            other => keys.ec.mint(other, &claims),
        };
        println!("{token}");
    }
}
