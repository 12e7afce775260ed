//! Prints N distinct valid tokens (one per line) for the benchmark's cold runs, and the JWKS they verify
//! against on stderr-free demand: `mint_bench_tokens N` writes tokens; `mint_bench_tokens jwks` writes the
//! JWKS.

#[path = "../common/fixtures.rs"]
mod fixtures;

use serde_json::json;

fn main() {
    let keys = fixtures::Keys::load();
    let arg = std::env::args().nth(1).unwrap_or_else(|| "1".to_string());
    if arg == "jwks" {
        println!("{}", json!({"keys": [keys.rsa2048.jwk(Some("RS256"))]}));
        return;
    }
    let count: usize = arg.parse().expect("a token count");
    let now = fixtures::now();
    for i in 0..count {
        let mut claims = fixtures::good_claims(now);
        claims["jti"] = json!(format!("bench-{i}"));
        claims["exp"] = json!(now + 4 * 3600);
        println!("{}", fixtures::mint(&keys.rsa2048, "RS256", &claims));
    }
}
