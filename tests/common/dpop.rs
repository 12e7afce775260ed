//! DPoP (RFC 9449) test clients: proof keys generated in the test (ES256 and EdDSA), proofs minted
//! with any header and claims, RFC 7638 thumbprints computed here by hand, and access tokens bound to a
//! key (`cnf.jkt`) signed by the fixture issuer.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::fixtures::{self, b64, signing_input, Keys};

/// A client's proof key.
pub enum ClientKey {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl ClientKey {
    pub fn es256() -> ClientKey {
        ClientKey::Es256(p256::ecdsa::SigningKey::random(&mut rand::thread_rng()))
    }

    pub fn eddsa() -> ClientKey {
        ClientKey::EdDsa(ed25519_dalek::SigningKey::generate(&mut rand::thread_rng()))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            ClientKey::Es256(_) => "ES256",
            ClientKey::EdDsa(_) => "EdDSA",
        }
    }

    /// The public JWK, as a client puts it in the proof header.
    pub fn public_jwk(&self) -> Value {
        match self {
            ClientKey::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256",
                       "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            ClientKey::EdDsa(key) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.verifying_key().as_bytes())})
            }
        }
    }

    /// The JWK with its private part `d` too (a client bug that leaks the key).
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.public_jwk();
        jwk["d"] = json!(match self {
            ClientKey::Es256(key) => b64(&key.to_bytes()),
            ClientKey::EdDsa(key) => b64(key.as_bytes()),
        });
        jwk
    }

    /// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
    pub fn jkt(&self) -> String {
        let jwk = self.public_jwk();
        let s = |name: &str| jwk[name].as_str().unwrap().to_string();
        let canonical = match self {
            ClientKey::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                s("x"),
                s("y")
            ),
            ClientKey::EdDsa(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, s("x")),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Signs `header.claims` with this key, whatever the header says.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        use p256::ecdsa::signature::Signer as _;
        let input = signing_input(header, claims);
        let signature = match self {
            ClientKey::Es256(key) => {
                let s: p256::ecdsa::Signature = key.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            ClientKey::EdDsa(key) => key.sign(input.as_bytes()).to_bytes().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }

    /// The standard proof header: typ dpop+jwt, this key's alg and public jwk.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.public_jwk()})
    }

    /// A proof with the standard header over `claims` with claim `name` set to `value`: a proof that
    /// breaks one check.
    pub fn sign_with_claim(&self, claims: &Value, name: &str, value: Value) -> String {
        let mut claims = claims.clone();
        claims[name] = value;
        self.sign(&self.header(), &claims)
    }

    /// A proof over `claims` whose standard header has field `name` set to `value`.
    pub fn sign_with_header(&self, claims: &Value, name: &str, value: Value) -> String {
        let mut header = self.header();
        header[name] = value;
        self.sign(&header, claims)
    }

    /// A valid proof for `method` `htu` with `access_token`, issued at `iat`, with a fresh jti.
    pub fn proof(&self, method: &str, htu: &str, access_token: &str, iat: u64) -> String {
        self.sign(
            &self.header(),
            &proof_claims(method, htu, access_token, iat),
        )
    }
}

/// A fresh random `jti`.
pub fn jti() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    b64(&bytes)
}

/// base64url(SHA-256(token)), the `ath` claim.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The claims of a valid proof.
pub fn proof_claims(method: &str, htu: &str, access_token: &str, iat: u64) -> Value {
    json!({"jti": jti(), "htm": method, "htu": htu, "iat": iat, "ath": ath(access_token)})
}

/// An access token of the fixture issuer (RS256, the 2048-bit key) bound to `jkt`.
pub fn bound_token(keys: &Keys, jkt: &str, now: u64) -> String {
    let mut claims = fixtures::good_claims(now);
    claims["cnf"] = json!({"jkt": jkt});
    fixtures::mint(&keys.rsa2048, "RS256", &claims)
}

/// An HS256-signed proof (which a DPoP proof must never be: the key is shared, so it proves nothing).
pub fn sign_hs256(header: &Value, secret: &[u8], claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = signing_input(header, claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}
