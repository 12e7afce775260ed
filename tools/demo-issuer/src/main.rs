//! The demo's issuer and upstream, for `./build.sh demo`: serves a JWKS and mints tokens with the test
//! fixture's 2048-bit key (a demo key, published in this repository: never trust it anywhere real), and
//! runs the echo upstream.
//!
//!   GET /.well-known/jwks.json              the JWKS
//!   GET /.well-known/openid-configuration   issuer metadata pointing at the JWKS
//!   GET /token?sub=NAME                     a token for NAME, valid for one hour

// The same loopback servers the tests use (std and serde_json only).
#[path = "../../../tests/common/servers.rs"]
pub mod servers;

use std::net::TcpListener;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

/// The fixture key tests/common/fixtures.rs calls `rsa2048`, published under the same kid.
const KEY_PEM: &str = include_str!("../../../tests/fixtures/keys/rsa2048.pem");
const KID: &str = "k2048";

const DEMO_ISSUER: &str = "http://127.0.0.1:9000";

fn port_from_env(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let issuer_port = port_from_env("DEMO_ISSUER_PORT", 9000);
    let upstream_port = port_from_env("DEMO_UPSTREAM_PORT", 9001);
    let upstream = servers::EchoUpstream::start_on(upstream_port);
    let key = RsaPrivateKey::from_pkcs8_pem(KEY_PEM).expect("the fixture key parses");
    let jwks = json!({"keys": [jwk(&key)]}).to_string();
    let listener = TcpListener::bind(("127.0.0.1", issuer_port))
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{issuer_port}: {e}"));
    println!(
        "demo issuer on 127.0.0.1:{issuer_port}, echo upstream on 127.0.0.1:{}",
        upstream.port
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Some((request_line, _)) = servers::read_request(&stream) else {
            continue;
        };
        let target = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        println!("{request_line}");
        match path {
            "/.well-known/jwks.json" => {
                servers::write_response(stream, 200, "application/json", jwks.as_bytes())
            }
            "/.well-known/openid-configuration" => {
                let metadata = json!({
                    "issuer": DEMO_ISSUER,
                    "jwks_uri": format!("{DEMO_ISSUER}/.well-known/jwks.json"),
                    "id_token_signing_alg_values_supported": ["RS256"],
                });
                servers::write_response(
                    stream,
                    200,
                    "application/json",
                    metadata.to_string().as_bytes(),
                )
            }
            "/token" => {
                let subject = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("sub="))
                    .filter(|s| !s.is_empty())
                    .unwrap_or("alice");
                let now = now();
                let claims = json!({
                    "iss": DEMO_ISSUER,
                    "sub": subject,
                    "aud": "demo-api",
                    "iat": now,
                    "exp": now + 3600,
                    "scope": "read write",
                    "org": {"team": "payments"},
                });
                let token = mint_rs256(&key, &claims);
                servers::write_response(stream, 200, "text/plain", token.as_bytes())
            }
            _ => servers::write_response(stream, 404, "text/plain", b"not found"),
        }
    }
}

/// The public JWK, as the fixture publishes it with `"alg": "RS256"`.
fn jwk(key: &RsaPrivateKey) -> Value {
    json!({
        "kty": "RSA",
        "kid": KID,
        "use": "sig",
        "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

/// A compact JWS: header {alg, typ, kid}, the claims, an RS256 signature.
fn mint_rs256(key: &RsaPrivateKey, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_vec())
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
