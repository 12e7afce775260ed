//! Prints N distinct valid tokens (one per line) for the benchmarks, and the JWKS they verify against on
//! demand: `mint_bench_tokens N` writes tokens; `mint_bench_tokens jwks` writes the JWKS. `ALG` picks the
//! algorithm: RS256 (default, 2048-bit), ES256, ES384, ES512 or EdDSA.
//!
//! For the scaling and realistic-traffic runs (bench/scaling.sh, bench/realistic.sh):
//! - `ISSUER=URL` gives the tokens that `iss` (a provider other than the first of several);
//! - `USERS=1` gives token i the subject `user-i` (one token per user);
//! - `KEYS=N` (with `jwks`) publishes N keys: N − 1 decoys with kids `decoy-0`… and the signing key,
//!   with its own kid, last. The decoys carry the same public material, so no key generation is needed
//!   and only the kid tells them apart, as the kid lookup must.
//!
//! For the DPoP setups of bench/run.sh: `mint_bench_tokens dpop PROOF_ALG N HTU` writes N lines
//! "<access token> <DPoP proof>": one access token (ALG, bound to a fixed client key) and N proofs for
//! `GET HTU` by that key (PROOF_ALG ES256 or EdDSA), each with its own jti, issued now.

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
            "ES512" => keys.ec.p521_jwk(),
            "EdDSA" => keys.ec.ed25519_jwk(),
            other => panic!("ALG={other}: use RS256, ES256, ES384, ES512 or EdDSA"),
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
    if arg == "dpop" {
        let mut args = std::env::args().skip(2);
        let proof_alg = args.next().expect("a proof algorithm");
        let count: usize = args
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a proof count");
        let htu = args.next().expect("an htu");
        dpop_lines(&keys, &alg, &proof_alg, count, &htu);
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

/// The DPoP setups' requests: one bound access token, `count` proofs.
fn dpop_lines(keys: &fixtures::Keys, alg: &str, proof_alg: &str, count: usize, htu: &str) {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    use sha2::Digest as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let p256_key = p256::ecdsa::SigningKey::from_slice(&[0x44; 32]).expect("P-256 scalar");
    let ed_key = ed25519_dalek::SigningKey::from_bytes(&[0x55; 32]);
    let (jwk, canonical) = match proof_alg {
        "ES256" => {
            let point = p256_key.verifying_key().to_encoded_point(false);
            let (x, y) = (b64(point.x().expect("x")), b64(point.y().expect("y")));
            (
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            )
        }
        "EdDSA" => {
            let x = b64(ed_key.verifying_key().as_bytes());
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            )
        }
        other => panic!("proof alg {other}: use ES256 or EdDSA"),
    };
    let now = fixtures::now();
    let mut claims = fixtures::good_claims(now);
    claims["exp"] = json!(now + 4 * 3600);
    claims["cnf"] = json!({"jkt": b64(&sha2::Sha256::digest(canonical.as_bytes()))});
    let token = match alg {
        "RS256" => fixtures::mint(&keys.rsa2048, "RS256", &claims),
        other => keys.ec.mint(other, &claims),
    };
    let ath = b64(&sha2::Sha256::digest(token.as_bytes()));
    let header = json!({"typ": "dpop+jwt", "alg": proof_alg, "jwk": jwk});
    let mut out = String::new();
    for i in 0..count {
        let proof_claims = json!({"jti": format!("bench-{now}-{i}"), "htm": "GET", "htu": htu, "iat": now, "ath": ath});
        let input = fixtures::signing_input(&header, &proof_claims);
        let signature = match proof_alg {
            "ES256" => {
                let s: p256::ecdsa::Signature = p256_key.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            _ => ed_key.sign(input.as_bytes()).to_bytes().to_vec(),
        };
        out.push_str(&format!("{token} {input}.{}\n", b64(&signature)));
    }
    print!("{out}");
}
