//! The shared fixture: test keys, the JWKS that publishes them, and the named tokens every test uses.
//!
//! Keys are fixed PKCS#8 files in tests/fixtures/keys (test-only keys, never used elsewhere). Tokens are
//! minted at run time so their exp/nbf are relative to now. Each fixture carries what Envoy's jwt_authn
//! answers for it with [`provider_json`], which this filter must match.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Sha256, Sha384, Sha512};

pub const ISSUER: &str = "https://issuer.example.com";
pub const AUDIENCE: &str = "api.example.com";
pub const SUBJECT: &str = "alice";

/// A test signing key and the kid it is published under.
pub struct TestKey {
    pub kid: &'static str,
    pub private: RsaPrivateKey,
}

pub fn key_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(file)
}

impl TestKey {
    pub fn load(file: &str, kid: &'static str) -> TestKey {
        let pem = std::fs::read_to_string(key_path(file)).expect("fixture key file");
        TestKey {
            kid,
            private: RsaPrivateKey::from_pkcs8_pem(&pem).expect("fixture key parses"),
        }
    }

    /// The public JWK; `alg` is set only when given.
    pub fn jwk(&self, alg: Option<&str>) -> Value {
        let public = self.private.to_public_key();
        let mut jwk = json!({
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    /// The public key as PEM (SubjectPublicKeyInfo), what an HS256 key-confusion attack signs with.
    pub fn public_pem(&self) -> String {
        self.private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("public key encodes")
    }
}

/// The P-521 fixture key's scalar: 0x01, then 65 bytes of 0x44 (below the group order).
const P521_SCALAR: [u8; 66] = {
    let mut scalar = [0x44; 66];
    scalar[0] = 0x01;
    scalar
};

/// Elliptic-curve test keys, derived from fixed seeds (test-only, published nowhere else).
pub struct EcKeys {
    /// kid "kp256", published without alg.
    pub p256: p256::ecdsa::SigningKey,
    /// kid "kp384", published with "alg": "ES384".
    pub p384: p384::ecdsa::SigningKey,
    /// kid "ked25519", published with "alg": "EdDSA".
    pub ed25519: ed25519_dalek::SigningKey,
    /// kid "kp521", published with "alg": "ES512" (not in the fixture JWKS: for ES512 measurements).
    pub p521: p521::ecdsa::SigningKey,
}

impl EcKeys {
    pub fn load() -> EcKeys {
        EcKeys {
            p256: p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("P-256 scalar"),
            p384: p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).expect("P-384 scalar"),
            ed25519: ed25519_dalek::SigningKey::from_bytes(&[0x33; 32]),
            // A P-521 scalar has 521 bits: the first of its 66 bytes holds only the top bit.
            p521: p521::ecdsa::SigningKey::from_slice(&P521_SCALAR).expect("P-521 scalar"),
        }
    }

    pub fn p256_jwk(&self) -> Value {
        let point = self.p256.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "kid": "kp256", "use": "sig",
               "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))})
    }

    pub fn p384_jwk(&self) -> Value {
        let point = self.p384.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-384", "kid": "kp384", "alg": "ES384",
               "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))})
    }

    pub fn p521_jwk(&self) -> Value {
        let point = p521::ecdsa::VerifyingKey::from(&self.p521).to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-521", "kid": "kp521", "alg": "ES512",
               "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))})
    }

    pub fn ed25519_jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "ked25519", "alg": "EdDSA",
               "x": b64(self.ed25519.verifying_key().as_bytes())})
    }

    /// Signs with the key `alg` calls for (ES256, ES384, EdDSA); the kid is set to that key's.
    pub fn mint(&self, alg: &str, claims: &Value) -> String {
        let kid = match alg {
            "ES256" => "kp256",
            "ES384" => "kp384",
            "ES512" => "kp521",
            "EdDSA" => "ked25519",
            other => panic!("no EC fixture key for {other}"),
        };
        self.sign(alg, &json!({"alg": alg, "typ": "JWT", "kid": kid}), claims)
    }

    /// Signs `header.claims` under `alg` whatever the header says.
    pub fn sign(&self, alg: &str, header: &Value, claims: &Value) -> String {
        use p256::ecdsa::signature::Signer as _;
        let input = signing_input(header, claims);
        let message = input.as_bytes();
        let signature: Vec<u8> = match alg {
            "ES256" => {
                let s: p256::ecdsa::Signature = self.p256.sign(message);
                s.to_bytes().to_vec()
            }
            "ES384" => {
                let s: p384::ecdsa::Signature = self.p384.sign(message);
                s.to_bytes().to_vec()
            }
            "ES512" => {
                let s: p521::ecdsa::Signature = self.p521.sign(message);
                s.to_bytes().to_vec()
            }
            "EdDSA" => self.ed25519.sign(message).to_bytes().to_vec(),
            other => panic!("EC fixture signer has no {other}"),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// The 32-byte HMAC secret of the local_jwks HS256/384/512 fixture (kid "khs").
pub const HMAC_SECRET: &[u8] = b"fixture-hmac-secret-32-bytes-long!!";

/// A local_jwks document with the HMAC fixture secret.
pub fn hmac_jwks() -> Value {
    json!({"keys": [{"kty": "oct", "kid": "khs", "k": b64(HMAC_SECRET)}]})
}

/// An HS256/384/512 token signed with `secret` under kid "khs".
pub fn mint_hmac(alg: &str, secret: &[u8], claims: &Value) -> String {
    let input = signing_input(&json!({"alg": alg, "typ": "JWT", "kid": "khs"}), claims);
    let tag = match alg {
        "HS256" => hmac_tag::<Hmac<Sha256>>(secret, &input),
        "HS384" => hmac_tag::<Hmac<Sha384>>(secret, &input),
        "HS512" => hmac_tag::<Hmac<Sha512>>(secret, &input),
        other => panic!("no HMAC {other}"),
    };
    format!("{input}.{}", b64(&tag))
}

fn hmac_tag<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &str) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(secret).expect("hmac key");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `base64url(header).base64url(claims)`: what a signature covers.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// All fixture keys.
pub struct Keys {
    pub ec: EcKeys,
    pub rsa2048: TestKey,
    /// A different 2048-bit key published nowhere, used to sign under rsa2048's kid.
    pub rsa2048_other: TestKey,
    /// Published with `"alg": "RS256"`: may verify RS256 only.
    pub rsa3072: TestKey,
    pub rsa4096: TestKey,
}

impl Keys {
    pub fn load() -> Keys {
        Keys {
            ec: EcKeys::load(),
            rsa2048: TestKey::load("rsa2048.pem", "k2048"),
            rsa2048_other: TestKey::load("rsa2048-other.pem", "k2048"),
            rsa3072: TestKey::load("rsa3072.pem", "k3072-rs256"),
            rsa4096: TestKey::load("rsa4096.pem", "k4096"),
        }
    }

    /// The JWKS the issuer publishes.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [
            self.rsa2048.jwk(None),
            self.rsa3072.jwk(Some("RS256")),
            self.rsa4096.jwk(None),
            self.ec.p256_jwk(),
            self.ec.p384_jwk(),
            self.ec.ed25519_jwk(),
        ]})
    }
}

pub fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.payload` with `key` under JWS algorithm `alg` (RS*/PS*) and returns the compact token.
pub fn sign(key: &TestKey, alg: &str, header: &Value, claims: &Value) -> String {
    let signing_input = signing_input(header, claims);
    let message = signing_input.as_bytes();
    let key = key.private.clone();
    let mut rng = rand::thread_rng();
    let signature: Vec<u8> = match alg {
        "RS256" => SigningKey::<Sha256>::new(key).sign(message).to_vec(),
        "RS384" => SigningKey::<Sha384>::new(key).sign(message).to_vec(),
        "RS512" => SigningKey::<Sha512>::new(key).sign(message).to_vec(),
        "PS256" => BlindedSigningKey::<Sha256>::new(key)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        "PS384" => BlindedSigningKey::<Sha384>::new(key)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        "PS512" => BlindedSigningKey::<Sha512>::new(key)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        other => panic!("fixture signer has no {other}"),
    };
    format!("{signing_input}.{}", b64(&signature))
}

/// A standard RS/PS token: header {alg, typ, kid}.
pub fn mint(key: &TestKey, alg: &str, claims: &Value) -> String {
    sign(
        key,
        alg,
        &json!({"alg": alg, "typ": "JWT", "kid": key.kid}),
        claims,
    )
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims of a token that passes every check at `now`.
pub fn good_claims(now: u64) -> Value {
    json!({
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "email": "alice@example.com",
        "org": {"team": "payments", "level": 3},
        "admin": false,
    })
}

/// The fixture's plain good token: RS256 with the 2048-bit key, valid from now for an hour.
pub fn good_token() -> String {
    mint(&Keys::load().rsa2048, "RS256", &good_claims(now()))
}

/// What jwt_authn answers for a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    /// Status and jwt_authn's body text.
    Deny(u16, &'static str),
}

pub struct Fixture {
    pub name: &'static str,
    pub token: String,
    pub expect: Expect,
    /// This filter's body where it knowingly differs from jwt_authn's (same status), with the reason.
    pub our_body: Option<&'static str>,
}

pub const MISSING: &str = "Jwt is missing";
pub const EXPIRED: &str = "Jwt is expired";
pub const NOT_YET_VALID: &str = "Jwt not yet valid";
pub const VERIFICATION_FAILS: &str = "Jwt verification fails";
pub const NO_KEY: &str = "Jwks doesn't have key to match kid or alg from Jwt";
pub const UNKNOWN_ISSUER: &str = "Jwt issuer is not configured";
pub const BAD_FORMAT: &str =
    "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
pub const FETCH_FAILED: &str = "Jwks remote fetch is failed";
pub const AUDIENCE_NOT_ALLOWED: &str = "Audiences in Jwt are not allowed";

/// Every named token, minted at `now`.
pub fn fixtures(keys: &Keys, now: u64) -> Vec<Fixture> {
    let good = good_claims(now);
    let with = |changes: Value| {
        let mut claims = good.clone();
        for (k, v) in changes.as_object().expect("object").iter() {
            if v.is_null() {
                claims.as_object_mut().expect("object").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let fixture = |name, token, expect| Fixture {
        name,
        token,
        expect,
        our_body: None,
    };
    let deny = |body| Expect::Deny(401, body);

    let good_token = mint(&keys.rsa2048, "RS256", &good);
    let mut bad_signature = good_token.clone();
    // Flip a character in the middle of the signature: still valid base64url, wrong signature.
    let at = bad_signature.len() - 20;
    let replacement = if &bad_signature[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    bad_signature.replace_range(at..at + 1, replacement);

    let header_b64 = |h: Value| b64(h.to_string().as_bytes());
    let payload_b64 = b64(good.to_string().as_bytes());
    let rs_header = header_b64(json!({"alg": "RS256", "kid": "k2048"}));
    let junk_sig = b64(&[7u8; 256]);
    let with_claim = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        format!(
            "{rs_header}.{}.{junk_sig}",
            b64(claims.to_string().as_bytes())
        )
    };
    let malformed = |name, token, body| Fixture {
        name,
        token,
        expect: Expect::Deny(401, body),
        our_body: None,
    };
    let hs256_with_public_key = {
        let input = format!(
            "{}.{}",
            header_b64(json!({"alg": "HS256", "typ": "JWT", "kid": "k2048"})),
            payload_b64
        );
        let mut mac =
            Hmac::<Sha256>::new_from_slice(keys.rsa2048.public_pem().as_bytes()).expect("hmac key");
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let oversize = {
        let mut claims = good.clone();
        claims["padding"] = json!("x".repeat(20 * 1024));
        let token = mint(&keys.rsa2048, "RS256", &claims);
        // Break the signature too, so jwt_authn (which has no size cap) refuses it as well.
        let cut = token.rfind('.').expect("three parts");
        format!("{}.{}", &token[..cut], b64(&[0u8; 256]))
    };

    let es256 = keys.ec.mint("ES256", &good);
    // ECDSA signatures with r or s out of range: (0, s), (r, 0), and (n, s) for P-256.
    let es256_with_signature = |r: &[u8], s: &[u8]| {
        let cut = es256.rfind('.').expect("three parts");
        format!("{}.{}", &es256[..cut], b64(&[r, s].concat()))
    };
    let p256_order = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let eddsa = keys.ec.mint("EdDSA", &good);

    vec![
        fixture("good_es256", es256.clone(), Expect::Allow),
        fixture("good_es384", keys.ec.mint("ES384", &good), Expect::Allow),
        fixture("good_eddsa", eddsa.clone(), Expect::Allow),
        fixture(
            "es256_bad_signature",
            es256_with_signature(&[0x5a; 32], &[0x5a; 32]),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "es256_r_zero",
            es256_with_signature(&[0; 32], &[0x5a; 32]),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "es256_s_zero",
            es256_with_signature(&[0x5a; 32], &[0; 32]),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "es256_r_is_order",
            es256_with_signature(&p256_order, &[0x5a; 32]),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "es256_signature_too_short",
            es256_with_signature(&[0x5a; 31], &[0x5a; 32]),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "es384_under_p256_kid",
            keys.ec
                .sign("ES384", &json!({"alg": "ES384", "kid": "kp256"}), &good),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "eddsa_other_payload",
            {
                let other = keys.ec.mint("EdDSA", &with(json!({"sub": "mallory"})));
                let (head, _) = eddsa.rsplit_once('.').expect("three parts");
                let (_, sig) = other.rsplit_once('.').expect("three parts");
                format!("{head}.{sig}")
            },
            deny(VERIFICATION_FAILS),
        ),
        fixture("good_rs256_2048", good_token.clone(), Expect::Allow),
        fixture(
            "good_rs384_2048",
            mint(&keys.rsa2048, "RS384", &good),
            Expect::Allow,
        ),
        fixture(
            "good_rs512_2048",
            mint(&keys.rsa2048, "RS512", &good),
            Expect::Allow,
        ),
        fixture(
            "good_ps256_2048",
            mint(&keys.rsa2048, "PS256", &good),
            Expect::Allow,
        ),
        fixture(
            "good_ps384_2048",
            mint(&keys.rsa2048, "PS384", &good),
            Expect::Allow,
        ),
        fixture(
            "good_ps512_2048",
            mint(&keys.rsa2048, "PS512", &good),
            Expect::Allow,
        ),
        fixture(
            "good_rs256_3072",
            mint(&keys.rsa3072, "RS256", &good),
            Expect::Allow,
        ),
        fixture(
            "good_rs256_4096",
            mint(&keys.rsa4096, "RS256", &good),
            Expect::Allow,
        ),
        fixture(
            "good_ps512_4096",
            mint(&keys.rsa4096, "PS512", &good),
            Expect::Allow,
        ),
        fixture(
            "expired",
            mint(&keys.rsa2048, "RS256", &with(json!({"exp": now - 3600}))),
            deny(EXPIRED),
        ),
        fixture(
            "expired_within_skew",
            mint(&keys.rsa2048, "RS256", &with(json!({"exp": now - 30}))),
            Expect::Allow,
        ),
        fixture(
            "nbf_in_future",
            mint(&keys.rsa2048, "RS256", &with(json!({"nbf": now + 3600}))),
            deny(NOT_YET_VALID),
        ),
        fixture(
            "wrong_issuer",
            mint(
                &keys.rsa2048,
                "RS256",
                &with(json!({"iss": "https://evil.example.com"})),
            ),
            deny(UNKNOWN_ISSUER),
        ),
        fixture(
            "wrong_audience",
            mint(
                &keys.rsa2048,
                "RS256",
                &with(json!({"aud": "other.example.com"})),
            ),
            Expect::Deny(403, AUDIENCE_NOT_ALLOWED),
        ),
        fixture(
            "audience_list",
            mint(
                &keys.rsa2048,
                "RS256",
                &with(json!({"aud": ["other.example.com", "https://api.example.com/"]})),
            ),
            Expect::Allow,
        ),
        fixture(
            "no_kid",
            sign(
                &keys.rsa4096,
                "RS256",
                &json!({"alg": "RS256", "typ": "JWT"}),
                &good,
            ),
            Expect::Allow,
        ),
        fixture(
            "unknown_kid",
            sign(
                &keys.rsa2048,
                "RS256",
                &json!({"alg": "RS256", "kid": "nope"}),
                &good,
            ),
            deny(NO_KEY),
        ),
        fixture(
            "alg_differs_from_jwk",
            mint(&keys.rsa3072, "PS256", &good),
            deny(NO_KEY),
        ),
        fixture("bad_signature", bad_signature, deny(VERIFICATION_FAILS)),
        fixture(
            "other_key_same_kid",
            mint(&keys.rsa2048_other, "RS256", &good),
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "alg_none",
            format!(
                "{}.{}.",
                header_b64(json!({"alg": "none", "typ": "JWT"})),
                payload_b64
            ),
            deny(BAD_FORMAT),
        ),
        fixture(
            "alg_none_with_signature",
            format!(
                "{}.{}.{}",
                header_b64(json!({"alg": "none"})),
                payload_b64,
                b64(&[1u8; 64])
            ),
            deny("Jwt header [alg] is not supported"),
        ),
        // The kid fits the RSA key, so jwt_authn counts it as a candidate that fails to verify.
        fixture(
            "hs256_with_rsa_public_key",
            hs256_with_public_key,
            deny(VERIFICATION_FAILS),
        ),
        fixture(
            "two_segments",
            good_token
                .rsplit_once('.')
                .expect("three parts")
                .0
                .to_string(),
            deny(BAD_FORMAT),
        ),
        Fixture {
            name: "bad_base64_header",
            // Characters outside base64url inside the header segment: both filters refuse the
            // encoding (at the very start they would be skipped by the extraction after "Bearer ").
            token: format!("{}!!!{}", &good_token[..3], &good_token[6..]),
            expect: deny("Jwt header is an invalid Base64url encoded"),
            our_body: None,
        },
        fixture(
            "payload_not_json",
            format!(
                "{}.{}.{}",
                header_b64(json!({"alg": "RS256", "kid": "k2048"})),
                b64(b"not json"),
                b64(&[1u8; 256])
            ),
            deny("Jwt payload is an invalid JSON"),
        ),
        fixture(
            "missing_issuer",
            mint(&keys.rsa2048, "RS256", &with(json!({"iss": null}))),
            deny(UNKNOWN_ISSUER),
        ),
        // Malformed tokens: each jwt_verify_lib parse error, with jwt_authn's exact text.
        malformed(
            "empty_payload_segment",
            format!("{}..{}", rs_header, junk_sig),
            BAD_FORMAT,
        ),
        malformed(
            "four_segments",
            format!("{}.{}.{}.{}", rs_header, payload_b64, junk_sig, junk_sig),
            BAD_FORMAT,
        ),
        malformed(
            "alg_missing",
            format!(
                "{}.{}.{}",
                header_b64(json!({"kid": "k2048"})),
                payload_b64,
                junk_sig
            ),
            "Jwt header [alg] field is required and must be a string",
        ),
        malformed(
            "alg_not_string",
            format!(
                "{}.{}.{}",
                header_b64(json!({"alg": 5})),
                payload_b64,
                junk_sig
            ),
            "Jwt header [alg] field is required and must be a string",
        ),
        malformed(
            "alg_none_capitalised",
            format!(
                "{}.{}.{}",
                header_b64(json!({"alg": "None"})),
                payload_b64,
                junk_sig
            ),
            "Jwt header [alg] is not supported",
        ),
        malformed(
            "kid_not_string",
            format!(
                "{}.{}.{}",
                header_b64(json!({"alg": "RS256", "kid": 5})),
                payload_b64,
                junk_sig
            ),
            "Jwt header [kid] field is not a string",
        ),
        malformed(
            "header_not_object",
            format!("{}.{}.{}", b64(b"[1]"), payload_b64, junk_sig),
            "Jwt header is an invalid JSON",
        ),
        malformed(
            "header_padded",
            format!("{rs_header}==.{payload_b64}.{junk_sig}"),
            "Jwt header is an invalid Base64url encoded",
        ),
        malformed(
            "iss_not_string",
            with_claim("iss", json!(5)),
            "Jwt payload [iss] field is not a string",
        ),
        malformed(
            "sub_not_string",
            with_claim("sub", json!(5)),
            "Jwt payload [sub] field is not a string",
        ),
        malformed(
            "jti_not_string",
            with_claim("jti", json!(5)),
            "Jwt payload [jti] field is not a string",
        ),
        malformed(
            "exp_string",
            with_claim("exp", json!("123")),
            "Jwt payload [exp] field is not an integer",
        ),
        malformed(
            "nbf_string",
            with_claim("nbf", json!("x")),
            "Jwt payload [nbf] field is not an integer",
        ),
        malformed(
            "iat_string",
            with_claim("iat", json!("x")),
            "Jwt payload [iat] field is not an integer",
        ),
        malformed(
            "exp_negative",
            with_claim("exp", json!(-5)),
            "Jwt payload [exp] field is not a positive 64 bit integer",
        ),
        malformed(
            "exp_fraction_in_past",
            with_claim("exp", json!(1.5)),
            EXPIRED,
        ),
        malformed(
            "aud_not_string",
            with_claim("aud", json!(5)),
            "Jwt payload [aud] field is not a string or string list",
        ),
        malformed(
            "aud_list_not_strings",
            with_claim("aud", json!([5])),
            "Jwt payload [aud] field is not a string or string list",
        ),
        malformed(
            "payload_not_object",
            format!("{rs_header}.{}.{junk_sig}", b64(b"[1]")),
            "Jwt payload is an invalid JSON",
        ),
        malformed(
            "payload_bad_base64",
            format!("{rs_header}.{payload_b64}A.{junk_sig}"),
            "Jwt payload is an invalid Base64url encoded",
        ),
        malformed(
            "signature_bad_base64",
            format!("{rs_header}.{payload_b64}.A"),
            "Jwt signature is an invalid Base64url encoded",
        ),
        Fixture {
            name: "oversize",
            token: oversize,
            expect: deny(VERIFICATION_FAILS),
            our_body: Some("Jwt is too large"),
        },
    ]
}

/// The provider every fixture is judged against, in jwt_authn's JSON shape; `jwks_uri` and `cluster`
/// point at the test's JWKS server.
pub fn provider_json(jwks_uri: &str, cluster: &str) -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "remote_jwks": {
            "http_uri": {"uri": jwks_uri, "cluster": cluster, "timeout": "5s"},
            "cache_duration": "300s"
        },
        "claim_to_headers": [
            {"header_name": "x-jwt-sub", "claim_name": "sub"},
            {"header_name": "x-jwt-team", "claim_name": "org.team"},
            {"header_name": "x-jwt-level", "claim_name": "org.level"}
        ],
        "forward_payload_header": "x-jwt-payload"
    })
}
