//! Real Envoy with this filter against an adversarial corpus: forged, malformed and oversized tokens,
//! hostile key sets, spoofed identity headers. Every attack must be refused with jwt_authn's status and
//! reason, client-sent identity headers must never reach the upstream, the filter must keep serving valid
//! tokens afterwards, and the wasm VM must never trap or panic.
//!
//! Envoy's own jwt_authn runs beside this filter on the token corpus as a reference: its answers are
//! printed in the table for comparison, never asserted.

use crate::common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::SigningKey as RsaSigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::envoy::{Envoy, EnvoySetup};
use common::fixtures::{
    self, b64, good_claims, hex_bytes, mint, sign, Keys, TestKey, AUDIENCE, BAD_FORMAT, EXPIRED,
    FETCH_FAILED, ISSUER, MISSING, NO_KEY, VERIFICATION_FAILS,
};
use common::servers::{get_with_token, http_request, EchoUpstream, HttpResponse, JwksServer};
use common::{fixture_config, Scenario};

const ALG_NOT_SUPPORTED: &str = "Jwt header [alg] is not supported";
const HEADER_BAD_JSON: &str = "Jwt header is an invalid JSON";
const HEADER_BAD_BASE64: &str = "Jwt header is an invalid Base64url encoded";
const PAYLOAD_BAD_JSON: &str = "Jwt payload is an invalid JSON";
const PAYLOAD_BAD_BASE64: &str = "Jwt payload is an invalid Base64url encoded";
const SIGNATURE_BAD_BASE64: &str = "Jwt signature is an invalid Base64url encoded";
const EXP_NOT_INTEGER: &str = "Jwt payload [exp] field is not an integer";
const EXP_OUT_OF_RANGE: &str = "Jwt payload [exp] field is not a positive 64 bit integer";
const TOO_LARGE: &str = "Jwt is too large";

/// The identity headers the fixture provider writes (claim_to_headers and forward_payload_header).
const IDENTITY_HEADERS: [&str; 4] = ["x-jwt-sub", "x-jwt-team", "x-jwt-level", "x-jwt-payload"];
/// Marker in every identity header a client sends: it must never show up upstream.
const SPOOF: &str = "SPOOFED";

/// This filter's refusal of a `crit` header (RFC 7515 §4.1.11; jwt_authn ignores `crit`).
const CRIT_NOT_SUPPORTED: &str = "Jwt header [crit] is not supported";

/// What the filter must do with a request.
enum Want {
    /// Refused with this status and exactly this body.
    Deny(u16, &'static str),
    /// Let through; the upstream sees exactly these identity headers (`None`: absent).
    Allow(Vec<(&'static str, Option<String>)>),
}

struct Case {
    name: String,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    want: Want,
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fn case(name: impl Into<String>, token: &str, want: Want) -> Case {
    Case {
        name: name.into(),
        path: "/api/orders".to_string(),
        headers: vec![("authorization", bearer(token))],
        want,
    }
}

fn deny(name: impl Into<String>, token: &str, body: &'static str) -> Case {
    case(name, token, Want::Deny(401, body))
}

/// The identity headers the good claims give: sub, org.team, org.level and the payload segment.
fn identity_of(token: &str) -> Vec<(&'static str, Option<String>)> {
    let payload = token
        .split('.')
        .nth(1)
        .expect("payload segment")
        .to_string();
    vec![
        ("x-jwt-sub", Some(fixtures::SUBJECT.to_string())),
        ("x-jwt-team", Some("payments".to_string())),
        ("x-jwt-level", Some("3".to_string())),
        ("x-jwt-payload", Some(payload)),
    ]
}

/// Every identity header, sent by the client with the spoof marker (and a non-UTF-8 byte in one).
fn spoofed_identity() -> Vec<(&'static str, Vec<u8>)> {
    let mut sub = b"\xff\xfe".to_vec();
    sub.extend_from_slice(SPOOF.as_bytes());
    vec![
        ("x-jwt-sub", sub),
        ("x-jwt-team", SPOOF.as_bytes().to_vec()),
        ("x-jwt-level", SPOOF.as_bytes().to_vec()),
        ("x-jwt-payload", SPOOF.as_bytes().to_vec()),
    ]
}

/// `signing_input.signature` with an RS256 signature by `key` over exactly `signing_input`, whatever it
/// holds (duplicate keys, padding, whitespace, the standard base64 alphabet).
fn rs256_over(key: &TestKey, signing_input: &str) -> String {
    let signature =
        RsaSigningKey::<Sha256>::new(key.private.clone()).sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature.to_vec()))
}

/// A token whose header and payload are the given JSON texts, byte for byte, signed RS256 by `key`.
fn rs256_raw(key: &TestKey, header: &str, payload: &str) -> String {
    rs256_over(
        key,
        &format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes())),
    )
}

/// An HS256 token over `header.payload`, keyed with `secret`.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = fixtures::signing_input(header, claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// Base64url with `=` padding; spaces are added to the JSON text until padding is needed.
fn padded_b64(json_text: &str) -> String {
    let mut text = json_text.to_string();
    while text.len().is_multiple_of(3) {
        text.push(' ');
    }
    URL_SAFE.encode(text.as_bytes())
}

/// The URL-safe alphabet's `-`/`_` turned into the standard alphabet's `+`/`/`.
fn standard_alphabet(segment: &str) -> String {
    segment.replace('-', "+").replace('_', "/")
}

fn replace_signature(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').expect("three parts");
    format!("{input}.{}", b64(signature))
}

/// 32 bytes of big-endian `value` (for ECDSA r and s).
fn be32(value: &[u8]) -> Vec<u8> {
    assert!(value.len() <= 32);
    let mut out = vec![0u8; 32 - value.len()];
    out.extend_from_slice(value);
    out
}

/// The adversarial token corpus and header games, for the fixture provider and JWKS.
fn token_corpus(keys: &Keys, now: u64) -> Vec<Case> {
    let good = good_claims(now);
    let good_token = mint(&keys.rsa2048, "RS256", &good);
    let payload_seg = b64(good.to_string().as_bytes());
    let junk_signature = b64(&[7u8; 256]);
    let seg = |text: &str| b64(text.as_bytes());
    let rs_header = r#"{"alg":"RS256","typ":"JWT","kid":"k2048"}"#;
    // Claims written by hand, so odd numbers (1e400, 1.5e9) reach the filter exactly as written.
    let claims_text = |extra: &str| {
        format!(r#"{{"iss":"{ISSUER}","sub":"alice","aud":"{AUDIENCE}","iat":{now}{extra}}}"#)
    };
    let mut cases = Vec::new();

    // alg "none" in any capitalisation, with an empty and with a non-empty signature. An empty signature
    // is not three non-empty sections; a non-empty one names an algorithm that does not exist.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = seg(&json!({"alg": alg, "typ": "JWT", "kid": "k2048"}).to_string());
        cases.push(deny(
            format!("alg_{alg}_empty_sig"),
            &format!("{header}.{payload_seg}."),
            BAD_FORMAT,
        ));
        cases.push(deny(
            format!("alg_{alg}_with_sig"),
            &format!("{header}.{payload_seg}.{junk_signature}"),
            ALG_NOT_SUPPORTED,
        ));
    }
    // A real RS256 signature does not make "none" acceptable either.
    cases.push(deny(
        "alg_none_rs256_signed",
        &rs256_raw(
            &keys.rsa2048,
            r#"{"alg":"none","kid":"k2048"}"#,
            &good.to_string(),
        ),
        ALG_NOT_SUPPORTED,
    ));

    // HS256 keyed with the RSA public key (key confusion). An RSA key fits the kid but never serves HS*:
    // jwt_authn counts a fitting key that fails as "verification fails".
    let hs_header = json!({"alg": "HS256", "typ": "JWT", "kid": "k2048"});
    let pem = keys.rsa2048.public_pem();
    let jwk_text = keys.rsa2048.jwk(None).to_string();
    cases.push(deny(
        "hs256_secret_rsa_pem",
        &hs256(&hs_header, &good, pem.as_bytes()),
        VERIFICATION_FAILS,
    ));
    cases.push(deny(
        "hs256_secret_rsa_pem_trimmed",
        &hs256(&hs_header, &good, pem.trim_end().as_bytes()),
        VERIFICATION_FAILS,
    ));
    cases.push(deny(
        "hs256_secret_rsa_jwk_json",
        &hs256(&hs_header, &good, jwk_text.as_bytes()),
        VERIFICATION_FAILS,
    ));
    cases.push(deny(
        "hs256_secret_rsa_pem_no_kid",
        &hs256(&json!({"alg": "HS256"}), &good, pem.as_bytes()),
        VERIFICATION_FAILS,
    ));
    // The Ed25519 key is published with "alg": "EdDSA", so no key fits an HS256 token under its kid.
    cases.push(deny(
        "hs256_secret_ed25519_raw_key",
        &hs256(
            &json!({"alg": "HS256", "kid": "ked25519"}),
            &good,
            keys.ec.ed25519.verifying_key().as_bytes(),
        ),
        NO_KEY,
    ));
    let p256_point = keys.ec.p256.verifying_key().to_encoded_point(false);
    cases.push(deny(
        "hs256_secret_p256_point",
        &hs256(
            &json!({"alg": "HS256", "kid": "kp256"}),
            &good,
            p256_point.as_bytes(),
        ),
        VERIFICATION_FAILS,
    ));

    // Odd kids, each on a token properly signed by the k2048 key: no published key has that kid.
    let odd_kids = [
        ("kid_path_traversal", "../../etc/passwd".to_string()),
        ("kid_10kb", "k".repeat(10 * 1024)),
        ("kid_rtl_marks", "\u{202E}8402k\u{202C}".to_string()),
        ("kid_k2048_nul", "k2048\u{0}".to_string()),
        ("kid_nul_k2048", "\u{0}k2048".to_string()),
        ("kid_k2048_zero_width", "k2048\u{200B}".to_string()),
        ("kid_emoji", "\u{1F511}".to_string()),
        ("kid_uppercase", "K2048".to_string()),
    ];
    for (name, kid) in odd_kids {
        let token = sign(
            &keys.rsa2048,
            "RS256",
            &json!({"alg": "RS256", "kid": kid}),
            &good,
        );
        cases.push(deny(name, &token, NO_KEY));
    }

    // JWE compact serialization: five parts.
    let jwe_header = seg(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k2048"}"#);
    cases.push(deny(
        "jwe_five_parts",
        &format!(
            "{jwe_header}.{}.{}.{}.{}",
            b64(&[1; 256]),
            b64(&[2; 12]),
            b64(&[3; 64]),
            b64(&[4; 16])
        ),
        BAD_FORMAT,
    ));
    cases.push(deny(
        "jwe_dir_empty_key",
        &format!(
            "{}..{}.{}.{}",
            seg(r#"{"alg":"dir","enc":"A256GCM"}"#),
            b64(&[2; 12]),
            b64(&[3; 64]),
            b64(&[4; 16])
        ),
        BAD_FORMAT,
    ));
    cases.push(deny("many_dots", &".".repeat(10_000), BAD_FORMAT));

    // Base64 variants, each signed over its exact text (a lenient decoder would then accept them).
    let good_claims_text = good.to_string();
    cases.push(deny(
        "header_padded",
        &rs256_over(
            &keys.rsa2048,
            &format!("{}.{}", padded_b64(rs_header), seg(&good_claims_text)),
        ),
        HEADER_BAD_BASE64,
    ));
    cases.push(deny(
        "payload_padded",
        &rs256_over(
            &keys.rsa2048,
            &format!("{}.{}", seg(rs_header), padded_b64(&good_claims_text)),
        ),
        PAYLOAD_BAD_BASE64,
    ));
    cases.push(deny(
        "signature_padded",
        &{
            let token = mint(&keys.rsa2048, "RS256", &good);
            let (input, signature) = token.rsplit_once('.').expect("three parts");
            let padded = URL_SAFE.encode(b64_decode(signature));
            assert!(padded.ends_with('='));
            format!("{input}.{padded}")
        },
        SIGNATURE_BAD_BASE64,
    ));
    let with_space = |segment: &str| {
        let mid = segment.len() / 2;
        format!("{} {}", &segment[..mid], &segment[mid..])
    };
    cases.push(deny(
        "header_with_space",
        &rs256_over(
            &keys.rsa2048,
            &format!("{}.{}", with_space(&seg(rs_header)), seg(&good_claims_text)),
        ),
        HEADER_BAD_BASE64,
    ));
    cases.push(deny(
        "payload_with_tab",
        &rs256_over(
            &keys.rsa2048,
            &format!(
                "{}.{}",
                seg(rs_header),
                seg(&good_claims_text).replacen('J', "J\t", 1)
            ),
        ),
        PAYLOAD_BAD_BASE64,
    ));
    cases.push(deny(
        "signature_with_space",
        &{
            let token = mint(&keys.rsa2048, "RS256", &good);
            let (input, signature) = token.rsplit_once('.').expect("three parts");
            format!("{input}.{}", with_space(signature))
        },
        SIGNATURE_BAD_BASE64,
    ));
    // Standard alphabet: "??????" encodes to '_' in base64url, '/' in standard base64.
    let std_header_text = r#"{"alg":"RS256","kid":"k2048","x":"??????"}"#;
    let mut std_claims = good.clone();
    std_claims["x"] = json!("??????");
    let std_claims_text = std_claims.to_string();
    assert!(seg(std_header_text).contains('_') && seg(&std_claims_text).contains('_'));
    cases.push(deny(
        "header_standard_alphabet",
        &rs256_over(
            &keys.rsa2048,
            &format!(
                "{}.{}",
                standard_alphabet(&seg(std_header_text)),
                seg(&std_claims_text)
            ),
        ),
        HEADER_BAD_BASE64,
    ));
    cases.push(deny(
        "payload_standard_alphabet",
        &rs256_over(
            &keys.rsa2048,
            &format!(
                "{}.{}",
                seg(std_header_text),
                standard_alphabet(&seg(&std_claims_text))
            ),
        ),
        PAYLOAD_BAD_BASE64,
    ));
    cases.push(deny(
        "signature_standard_alphabet",
        &{
            // RS256 is deterministic: vary a claim until the signature has a '-' or '_' to turn.
            let token = (0..)
                .map(|nonce| {
                    let mut claims = good.clone();
                    claims["nonce"] = json!(nonce);
                    mint(&keys.rsa2048, "RS256", &claims)
                })
                .find(|t| {
                    let signature = t.rsplit_once('.').expect("three parts").1;
                    signature.contains('-') || signature.contains('_')
                })
                .expect("a signature with - or _");
            let (input, signature) = token.rsplit_once('.').expect("three parts");
            format!("{input}.{}", standard_alphabet(signature))
        },
        SIGNATURE_BAD_BASE64,
    ));

    // Over the 16 KiB cap, properly signed: in the header and in the query parameter.
    let oversize = {
        let mut claims = good.clone();
        claims["padding"] = json!("x".repeat(20 * 1024));
        mint(&keys.rsa2048, "RS256", &claims)
    };
    assert!(oversize.len() > 20 * 1024);
    cases.push(deny("oversize_20kb", &oversize, TOO_LARGE));
    cases.push(Case {
        name: "oversize_20kb_query".to_string(),
        path: format!("/api/orders?access_token={oversize}"),
        headers: vec![],
        want: Want::Deny(401, TOO_LARGE),
    });

    // Deep nesting (junk signatures). 10,000 levels do not fit under the cap; 5,000 do and must be
    // refused by the JSON reader's depth limit without exhausting the wasm stack.
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    cases.push(deny(
        "payload_nested_10000",
        &format!(
            "{}.{}.{junk_signature}",
            seg(rs_header),
            seg(&claims_text(&format!(r#","deep":{}"#, nested(10_000))))
        ),
        TOO_LARGE,
    ));
    cases.push(deny(
        "payload_nested_5000",
        &format!(
            "{}.{}.{junk_signature}",
            seg(rs_header),
            seg(&claims_text(&format!(r#","deep":{}"#, nested(5_000))))
        ),
        PAYLOAD_BAD_JSON,
    ));
    cases.push(deny(
        "header_nested_5000",
        &format!(
            "{}.{payload_seg}.{junk_signature}",
            seg(&format!(
                r#"{{"alg":"RS256","kid":"k2048","deep":{}}}"#,
                nested(5_000)
            ))
        ),
        HEADER_BAD_JSON,
    ));

    // Odd exp values, properly signed.
    let exp_cases: [(&str, String, &'static str); 6] = [
        ("exp_1e400", "1e400".to_string(), PAYLOAD_BAD_JSON),
        ("exp_string", "\"9999999999\"".to_string(), EXP_NOT_INTEGER),
        ("exp_negative", "-1".to_string(), EXP_OUT_OF_RANGE),
        ("exp_float_1.5e9", "1.5e9".to_string(), EXPIRED),
        ("exp_1e20_beyond_u64", "1e20".to_string(), EXP_OUT_OF_RANGE),
        (
            "exp_2_pow_64",
            "18446744073709551616".to_string(),
            EXP_OUT_OF_RANGE,
        ),
    ];
    for (name, exp, body) in exp_cases {
        let token = rs256_raw(
            &keys.rsa2048,
            rs_header,
            &claims_text(&format!(r#","exp":{exp}"#)),
        );
        cases.push(deny(name, &token, body));
    }

    // ECDSA signatures with r or s zero or out of range (P-256 order n), and other malformed ones.
    let es256 = keys.ec.mint("ES256", &good);
    let real = b64_decode(es256.rsplit_once('.').expect("three parts").1);
    let (real_r, real_s) = real.split_at(32);
    let n = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let n_plus_1 = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632552");
    let zero = be32(&[]);
    let ecdsa_cases: [(&str, Vec<u8>); 8] = [
        ("es256_r0_s0", [zero.clone(), zero.clone()].concat()),
        ("es256_r0", [zero.clone(), real_s.to_vec()].concat()),
        ("es256_s0", [real_r.to_vec(), zero.clone()].concat()),
        ("es256_r_eq_n", [n.clone(), real_s.to_vec()].concat()),
        ("es256_s_eq_n", [real_r.to_vec(), n.clone()].concat()),
        ("es256_r_n_plus_1", [n_plus_1, real_s.to_vec()].concat()),
        ("es256_r_s_all_ff", vec![0xff; 64]),
        ("es256_der_encoded", {
            let signature = p256::ecdsa::Signature::from_slice(&real).expect("signature");
            signature.to_der().as_bytes().to_vec()
        }),
    ];
    for (name, signature) in ecdsa_cases {
        cases.push(deny(
            name,
            &replace_signature(&es256, &signature),
            VERIFICATION_FAILS,
        ));
    }
    let eddsa = keys.ec.mint("EdDSA", &good);
    cases.push(deny(
        "eddsa_all_zero_sig",
        &replace_signature(&eddsa, &[0u8; 64]),
        VERIFICATION_FAILS,
    ));
    cases.push(deny(
        "eddsa_s_plus_l_malleated",
        &{
            // S + L: the same signature to a lax verifier, refused by a strict one (RFC 8032 5.1.7).
            let mut signature = b64_decode(eddsa.rsplit_once('.').expect("3 parts").1);
            let l = hex_bytes("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
            let mut carry = 0u16;
            for (byte, add) in signature[32..].iter_mut().zip(l) {
                let sum = u16::from(*byte) + u16::from(add) + carry;
                *byte = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
            assert_eq!(carry, 0);
            replace_signature(&eddsa, &signature)
        },
        VERIFICATION_FAILS,
    ));

    // Several tokens: every token found must pass.
    let es_good = keys.ec.mint("ES256", &good);
    // A wrong signature that is still canonical base64url: one character in its middle changed.
    let bad = {
        let at = good_token.len() - 20;
        let mut bad = good_token.clone();
        let swap = if &bad[at..at + 1] == "A" { "B" } else { "A" };
        bad.replace_range(at..at + 1, swap);
        bad
    };
    let two_headers = |name: &str, first: &str, second: &str, want: Want| Case {
        name: name.to_string(),
        path: "/api/orders".to_string(),
        headers: vec![
            ("authorization", bearer(first)),
            ("authorization", bearer(second)),
        ],
        want,
    };
    // Envoy joins repeated Authorization headers into one value ("Bearer a,Bearer b"), which is not a
    // token whatever the two hold.
    cases.push(two_headers(
        "two_auth_valid_then_invalid",
        &good_token,
        &bad,
        Want::Deny(401, BAD_FORMAT),
    ));
    cases.push(two_headers(
        "two_auth_invalid_then_valid",
        &bad,
        &good_token,
        Want::Deny(401, BAD_FORMAT),
    ));
    cases.push(two_headers(
        "two_auth_same_valid",
        &good_token,
        &good_token,
        Want::Deny(401, BAD_FORMAT),
    ));
    cases.push(two_headers(
        "two_auth_two_valid",
        &good_token,
        &es_good,
        Want::Deny(401, BAD_FORMAT),
    ));
    cases.push(Case {
        name: "valid_header_invalid_query".to_string(),
        path: format!("/api/orders?access_token={bad}"),
        headers: vec![("authorization", bearer(&good_token))],
        want: Want::Deny(401, VERIFICATION_FAILS),
    });
    cases.push(Case {
        name: "invalid_header_valid_query".to_string(),
        path: format!("/api/orders?access_token={good_token}"),
        headers: vec![("authorization", bearer(&bad))],
        want: Want::Deny(401, VERIFICATION_FAILS),
    });

    // Non-UTF-8 bytes in the Authorization header.
    let mut raw = b"Bearer \xff\xfe\xfd".to_vec();
    cases.push(Case {
        name: "auth_non_utf8".to_string(),
        path: "/api/orders".to_string(),
        headers: vec![("authorization", raw.clone())],
        want: Want::Deny(401, BAD_FORMAT),
    });
    raw = bearer(&good_token);
    raw.push(0xff);
    cases.push(Case {
        name: "auth_valid_then_0xff".to_string(),
        path: "/api/orders".to_string(),
        headers: vec![("authorization", raw)],
        want: Want::Deny(401, BAD_FORMAT),
    });
    let mut raw = b"Bearer".to_vec();
    raw.push(0xa0);
    raw.extend_from_slice(good_token.as_bytes());
    cases.push(Case {
        name: "auth_latin1_nbsp_after_scheme".to_string(),
        path: "/api/orders".to_string(),
        headers: vec![("authorization", raw)],
        want: Want::Deny(401, MISSING),
    });

    // Identity headers sent by the client, with non-UTF-8 bytes: replaced on allowed requests, dropped on
    // requests no rule checks.
    let mut headers = vec![("authorization", bearer(&good_token))];
    headers.extend(spoofed_identity());
    headers.push(("x-other", b"\xff\xfe other".to_vec()));
    cases.push(Case {
        name: "spoofed_identity_valid_token".to_string(),
        path: "/api/orders".to_string(),
        headers,
        want: Want::Allow(identity_of(&good_token)),
    });
    cases.push(Case {
        name: "spoofed_identity_twice_mixed_case".to_string(),
        path: "/api/orders".to_string(),
        headers: vec![
            ("authorization", bearer(&good_token)),
            ("X-JWT-SUB", SPOOF.as_bytes().to_vec()),
            ("x-jwt-sub", b"\xff SPOOFED".to_vec()),
            ("X-Jwt-Team", SPOOF.as_bytes().to_vec()),
        ],
        want: Want::Allow(identity_of(&good_token)),
    });
    cases.push(Case {
        name: "spoofed_identity_public_path".to_string(),
        path: "/public/page".to_string(),
        headers: spoofed_identity(),
        want: Want::Allow(IDENTITY_HEADERS.iter().map(|h| (*h, None)).collect()),
    });

    // Claims with CR, LF or NUL, properly signed: allowed, but no header is written from such a value,
    // and the client's copy is gone all the same.
    let control_claims: [(&str, &str, &str); 6] = [
        ("sub_crlf_injection", "sub", "alice\r\nx-injected: yes"),
        ("sub_lf_injection", "sub", "alice\nx-injected: yes"),
        ("sub_cr", "sub", "alice\rx-injected: yes"),
        ("sub_nul", "sub", "alice\u{0}admin"),
        ("team_crlf_injection", "team", "payments\r\nx-injected: yes"),
        ("team_nul", "team", "pay\u{0}ments"),
    ];
    for (name, claim, value) in control_claims {
        let mut claims = good.clone();
        let (sub, team) = if claim == "sub" {
            claims["sub"] = json!(value);
            (None, Some("payments".to_string()))
        } else {
            claims["org"]["team"] = json!(value);
            (Some(fixtures::SUBJECT.to_string()), None)
        };
        let token = mint(&keys.rsa2048, "RS256", &claims);
        let payload = token.split('.').nth(1).expect("payload").to_string();
        let mut headers = vec![("authorization", bearer(&token))];
        headers.extend(spoofed_identity());
        cases.push(Case {
            name: name.to_string(),
            path: "/api/orders".to_string(),
            headers,
            want: Want::Allow(vec![
                ("x-jwt-sub", sub),
                ("x-jwt-team", team),
                ("x-jwt-level", Some("3".to_string())),
                ("x-jwt-payload", Some(payload)),
            ]),
        });
    }
    cases
}

/// Duplicate names and "crit": tokens only the issuer can sign, where readers of the same token can
/// disagree on what it says. Properly signed over the exact text, so only these features can refuse them.
fn duplicate_and_crit_corpus(keys: &Keys, now: u64) -> Vec<Case> {
    let good = good_claims(now);
    let rs_header = r#"{"alg":"RS256","typ":"JWT","kid":"k2048"}"#;
    let claims_text = |extra: &str| {
        format!(r#"{{"iss":"{ISSUER}","sub":"alice","aud":"{AUDIENCE}","iat":{now}{extra}}}"#)
    };
    let valid_exp = now + 3600;
    let past_exp = now - 3600;
    let mut cases = Vec::new();

    // Duplicate names in the header, signed over the exact text: refused as invalid JSON whichever
    // comes first, as jwt_authn does.
    cases.push(deny(
        "header_dup_alg_rs256_then_none",
        &rs256_raw(
            &keys.rsa2048,
            r#"{"alg":"RS256","alg":"none","kid":"k2048"}"#,
            &good.to_string(),
        ),
        HEADER_BAD_JSON,
    ));
    cases.push(deny(
        "header_dup_alg_none_then_rs256",
        &rs256_raw(
            &keys.rsa2048,
            r#"{"alg":"none","alg":"RS256","kid":"k2048"}"#,
            &good.to_string(),
        ),
        HEADER_BAD_JSON,
    ));
    cases.push(deny(
        "header_dup_kid",
        &rs256_raw(
            &keys.rsa2048,
            r#"{"alg":"RS256","kid":"k4096","kid":"k2048"}"#,
            &good.to_string(),
        ),
        HEADER_BAD_JSON,
    ));
    // Duplicate exp in the payload, signed. jwt_authn refuses any duplicate name ("Jwt payload is an
    // invalid JSON"); an expired exp must never be outvoted by a second one, whichever comes first.
    cases.push(deny(
        "payload_dup_exp_valid_then_expired",
        &rs256_raw(
            &keys.rsa2048,
            rs_header,
            &claims_text(&format!(r#","exp":{valid_exp},"exp":{past_exp}"#)),
        ),
        PAYLOAD_BAD_JSON,
    ));
    cases.push(deny(
        "payload_dup_exp_expired_then_valid",
        &rs256_raw(
            &keys.rsa2048,
            rs_header,
            &claims_text(&format!(r#","exp":{past_exp},"exp":{valid_exp}"#)),
        ),
        PAYLOAD_BAD_JSON,
    ));
    cases.push(deny(
        "payload_dup_nested_name",
        &rs256_raw(
            &keys.rsa2048,
            rs_header,
            &claims_text(&format!(
                r#","exp":{valid_exp},"org":{{"team":"payments","team":"admin"}}"#
            )),
        ),
        PAYLOAD_BAD_JSON,
    ));

    // RFC 7515 section 4.1.11: a recipient MUST refuse a token whose "crit" names an extension it does
    // not understand. Properly signed.
    cases.push(case(
        "crit_unknown_extension",
        &rs256_raw(
            &keys.rsa2048,
            r#"{"alg":"RS256","kid":"k2048","crit":["x-unknown"],"x-unknown":true}"#,
            &good.to_string(),
        ),
        Want::Deny(401, CRIT_NOT_SUPPORTED),
    ));
    // RFC 7797 unencoded payload, which this filter does not implement. With "b64" in "crit" (as RFC 7797
    // requires) the token must be refused: read as RFC 7797 means, its payload is not these claims.
    // Signed over the ordinary encoded segments.
    cases.push(case(
        "b64_false_in_crit",
        &rs256_raw(
            &keys.rsa2048,
            r#"{"alg":"RS256","kid":"k2048","b64":false,"crit":["b64"]}"#,
            &good.to_string(),
        ),
        Want::Deny(401, CRIT_NOT_SUPPORTED),
    ));
    // Without "crit", "b64" is just an unknown header parameter, which RFC 7515 section 4 says to ignore:
    // the token is an ordinary valid one.
    let b64_no_crit = rs256_raw(
        &keys.rsa2048,
        r#"{"alg":"RS256","kid":"k2048","b64":false}"#,
        &good.to_string(),
    );
    cases.push(case(
        "b64_false_without_crit",
        &b64_no_crit,
        Want::Allow(identity_of(&b64_no_crit)),
    ));

    cases
}

fn b64_decode(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(segment).expect("base64url")
}

/// Runs every case against the filter (and, when given, jwt_authn for the table); returns the failures.
fn run_cases(wasm_port: u16, native_port: Option<u16>, cases: &[Case]) -> Vec<String> {
    let short = |response: &HttpResponse| -> String {
        if response.status == 200 {
            return String::new();
        }
        let body: String = response.body.chars().take(58).collect();
        format!("{body:?}")
    };
    println!(
        "{:36} | {:>4} | {:60} | jwt_authn (reference)",
        "case", "ours", "body"
    );
    println!("{}", "-".repeat(140));
    let mut failures = Vec::new();
    for case in cases {
        let headers: Vec<(&str, &[u8])> = case
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_slice()))
            .collect();
        let ours = http_request(wasm_port, &case.path, &headers);
        let native = native_port.map(|port| http_request(port, &case.path, &headers));
        println!(
            "{:36} | {:>4} | {:60} | {}",
            case.name,
            ours.status,
            short(&ours),
            native.map_or(String::new(), |n| format!("{} {}", n.status, short(&n)))
        );
        if let Some(problem) = judge(case, &ours) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    failures
}

/// What is wrong with the filter's answer to `case`, if anything.
fn judge(case: &Case, response: &HttpResponse) -> Option<String> {
    match &case.want {
        Want::Deny(status, body) => {
            if response.status != *status || response.body != *body {
                return Some(format!(
                    "wanted {status} {body:?}, got {} {:?}",
                    response.status, response.body
                ));
            }
            let challenge = response.header("www-authenticate").unwrap_or_default();
            if !challenge.starts_with("Bearer realm=") {
                return Some(format!("WWW-Authenticate {challenge:?}"));
            }
            None
        }
        Want::Allow(expected) => {
            if response.status != 200 {
                return Some(format!(
                    "wanted 200, got {} {:?}",
                    response.status, response.body
                ));
            }
            let upstream = response.upstream_headers();
            let upstream = upstream.as_object().expect("headers object");
            for (name, want) in expected {
                let got = upstream.get(*name);
                let want = want.as_ref().map(|v| json!([v]));
                if got != want.as_ref() {
                    return Some(format!("upstream {name}: wanted {want:?}, got {got:?}"));
                }
            }
            for (name, values) in upstream {
                if values.to_string().contains(SPOOF) && IDENTITY_HEADERS.contains(&name.as_str()) {
                    return Some(format!("client's {name} reached the upstream: {values}"));
                }
            }
            for name in ["x-injected", "authorization"] {
                if upstream.contains_key(name) {
                    return Some(format!("upstream got {name}: {}", upstream[name]));
                }
            }
            None
        }
    }
}

/// After an adversarial run: a valid token still gets through with its identity, and no VM trapped.
fn assert_still_serving(envoy: &Envoy) {
    let token = fixtures::good_token();
    let response = get_with_token(envoy.wasm_port, "/api/after", &token);
    assert_eq!(response.status, 200, "after the corpus: {}", response.body);
    assert_eq!(response.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    envoy.assert_no_vm_failure();
    envoy.assert_no_panic();
}

#[test]
fn adversarial_tokens_and_headers_are_refused_and_the_filter_keeps_serving() {
    let started = Instant::now();
    let scenario = Scenario::start(2, true, fixture_config);
    let keys = Keys::load();
    let cases = token_corpus(&keys, fixtures::now());
    let failures = run_cases(
        scenario.envoy.wasm_port,
        Some(scenario.envoy.native_port),
        &cases,
    );
    println!("{} cases in {:?}", cases.len(), started.elapsed());
    assert_still_serving(&scenario.envoy);
    assert!(
        failures.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// RFC 7519 section 4 lets a reader of duplicate claim names keep the last one, and jwt_authn refuses
/// them; RFC 7515 section 4.1.11 makes refusing an unknown "crit" extension mandatory. Either way an
/// expired exp outvoted by a second one, or a critical extension nobody checked, must not get through.
#[test]
fn duplicate_names_and_crit_extensions_are_refused() {
    let scenario = Scenario::start(1, true, fixture_config);
    let cases = duplicate_and_crit_corpus(&Keys::load(), fixtures::now());
    let failures = run_cases(
        scenario.envoy.wasm_port,
        Some(scenario.envoy.native_port),
        &cases,
    );
    assert_still_serving(&scenario.envoy);
    assert!(
        failures.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The P-256 fixture key with its y coordinate changed: not a point of the curve.
fn p256_off_curve_jwk(keys: &Keys) -> Value {
    let mut jwk = keys.ec.p256_jwk();
    let mut y = b64_decode(jwk["y"].as_str().expect("y"));
    y[31] ^= 1;
    jwk["y"] = json!(b64(&y));
    jwk
}

/// An RSA "signature" valid under e = 1 for `signing_input`: the PKCS#1 v1.5 encoded message itself
/// (s^1 mod n = EM), for a `modulus_bytes`-byte modulus.
fn e1_forgery(signing_input: &str, modulus_bytes: usize) -> Vec<u8> {
    let digest_info = hex_bytes("3031300d060960864801650304020105000420");
    let hash = Sha256::digest(signing_input.as_bytes());
    let t_len = digest_info.len() + hash.len();
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xff, modulus_bytes - t_len - 3));
    em.push(0x00);
    em.extend_from_slice(&digest_info);
    em.extend_from_slice(&hash);
    em
}

#[test]
fn hostile_keys_in_the_jwks_are_never_used() {
    let keys = Keys::load();
    let now = fixtures::now();
    let good = good_claims(now);
    let mut rng = rand::thread_rng();
    // Weak RSA keys, with their private halves so tokens can be signed properly.
    let weak = TestKey {
        kid: "weak",
        private: RsaPrivateKey::new(&mut rng, 1024).expect("1024-bit key"),
    };
    let e3 = TestKey {
        kid: "e3",
        private: RsaPrivateKey::new_with_exp(&mut rng, 2048, &BigUint::from(3u32))
            .expect("e=3 key"),
    };
    // e = 1 cannot be generated (no private exponent exists); the public key is rsa2048's modulus with
    // e = 1, and the "signature" is the encoded message itself, valid for any verifier that takes e = 1.
    let n = keys.rsa2048.private.n().to_bytes_be();
    let e1_jwk = json!({"kty": "RSA", "kid": "e1", "n": b64(&n), "e": b64(&[1])});
    // Ed25519 identity point (y = 1): small order, so (R = identity, S = 0) "verifies" any message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let small_order_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ked-small", "alg": "EdDSA",
                                 "x": b64(&identity)});
    let jwks = json!({"keys": [
        keys.rsa2048.jwk(None),
        keys.rsa3072.jwk(Some("RS256")),
        keys.rsa4096.jwk(None),
        p256_off_curve_jwk(&keys),
        keys.ec.p384_jwk(),
        keys.ec.ed25519_jwk(),
        weak.jwk(None),
        e1_jwk,
        e3.jwk(None),
        small_order_jwk,
    ]});

    let jwks_server = JwksServer::start(jwks.to_string());
    let upstream = EchoUpstream::start();
    let config = fixture_config(&jwks_server.uri());
    let envoy = Envoy::start(&EnvoySetup {
        filter_config: config.clone(),
        native_config: Some(config),
        upstream_port: upstream.port,
        jwks_port: jwks_server.port,
        native_jwks_port: None,
        concurrency: 2,
    });

    let e1_token = {
        let input = fixtures::signing_input(&json!({"alg": "RS256", "kid": "e1"}), &good);
        let signature = e1_forgery(&input, n.len());
        format!("{input}.{}", b64(&signature))
    };
    let ed_small = |signature: &[u8]| {
        let input = fixtures::signing_input(&json!({"alg": "EdDSA", "kid": "ked-small"}), &good);
        format!("{input}.{}", b64(signature))
    };
    let mut identity_forgery = vec![0u8; 64];
    identity_forgery[0] = 1;
    let cases = vec![
        deny("rsa_1024_bit_key", &mint(&weak, "RS256", &good), NO_KEY),
        deny("rsa_e3_key", &mint(&e3, "RS256", &good), NO_KEY),
        deny("rsa_e1_forgery", &e1_token, NO_KEY),
        deny("p256_key_off_curve", &keys.ec.mint("ES256", &good), NO_KEY),
        deny(
            "ed25519_small_order_zero_sig",
            &ed_small(&[0u8; 64]),
            NO_KEY,
        ),
        deny(
            "ed25519_small_order_identity_forgery",
            &ed_small(&identity_forgery),
            NO_KEY,
        ),
    ];
    let failures = run_cases(envoy.wasm_port, Some(envoy.native_port), &cases);
    // The usable keys still serve: RS256 with k2048 and ES384, EdDSA with the good keys.
    for token in [
        fixtures::good_token(),
        keys.ec.mint("ES384", &good),
        keys.ec.mint("EdDSA", &good),
    ] {
        let response = get_with_token(envoy.wasm_port, "/api", &token);
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.jwt.keys_in_use"),
        Some(5),
        "the five sound keys, none of the five hostile ones"
    );
    let log = envoy.log();
    for reason in [
        "kid \"weak\": RSA modulus has 1024 bits",
        "kid \"e1\": RSA public exponent must be odd and between 65537",
        "kid \"e3\": RSA public exponent must be odd and between 65537",
        "kid \"kp256\": EC point (x, y) is not a point of P-256",
        "kid \"ked-small\": OKP \"x\" is not an Ed25519 point of full order",
    ] {
        assert!(
            log.contains(reason),
            "skipped key not logged: {reason}\n{}",
            envoy.log_tail()
        );
    }
    assert_still_serving(&envoy);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A remote provider reading `path` of the test's JWKS cluster: refreshed every second, failures retried
/// within a second, so a test sees several fetches in a few seconds.
fn quick_provider(jwks_port: u16, path: &str, max_jwks_bytes: Option<usize>) -> Value {
    let mut provider =
        fixtures::provider_json(&format!("http://127.0.0.1:{jwks_port}{path}"), "jwks");
    let remote = &mut provider["remote_jwks"];
    remote["cache_duration"] = json!("1s");
    remote["http_uri"]["timeout"] = json!("1s");
    remote["retry_policy"] =
        json!({"retry_back_off": {"base_interval": "0.2s", "max_interval": "1s"}});
    if let Some(max_jwks_bytes) = max_jwks_bytes {
        remote["max_jwks_bytes"] = json!(max_jwks_bytes);
    }
    provider
}

/// Envoy with `providers`, where requests under `/<name>` need provider `<name>` and everything else
/// provider `jwt`.
fn envoy_with_providers(jwks_port: u16, upstream: &EchoUpstream, providers: Value) -> Envoy {
    let mut rules: Vec<Value> = providers
        .as_object()
        .expect("providers")
        .keys()
        .filter(|name| *name != "jwt")
        .map(|name| json!({"match": {"prefix": format!("/{name}")}, "requires": {"provider_name": name}}))
        .collect();
    rules.push(json!({"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}));
    Envoy::start(&EnvoySetup {
        filter_config: json!({"providers": providers, "rules": rules}),
        native_config: None,
        upstream_port: upstream.port,
        jwks_port,
        native_jwks_port: None,
        concurrency: 2,
    })
}

/// Failed JWKS fetches of `provider` so far, whatever the reason.
fn failed_fetches(envoy: &Envoy, provider: &str) -> u64 {
    let prefix = format!("wasmcustom.jwt_authn_wasm.provider.{provider}.jwks_fetch_failed.");
    let Some((_, body)) =
        common::envoy::admin_get(envoy.admin_port, &format!("/stats?filter={prefix}"))
    else {
        return 0;
    };
    body.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
        .sum()
}

/// Waits until `provider` has more than `than` failed fetches; stops at once if a VM trapped.
fn wait_for_failed_fetch(envoy: &Envoy, provider: &str, than: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while failed_fetches(envoy, provider) <= than {
        envoy.assert_no_panic();
        assert!(
            Instant::now() < deadline,
            "no failed fetch of {provider} counted:\n{}",
            envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    envoy.assert_no_panic();
}

/// Sends `token` to `path` and checks the answer; `want` is (status, body), body ignored on 200.
fn expect_answer(envoy: &Envoy, name: &str, (path, token): (&str, &str), want: (u16, &str)) {
    // A trapped VM can leave requests waiting forever: fail with its log instead.
    envoy.assert_no_panic();
    let response = get_with_token(envoy.wasm_port, path, token);
    let body = if response.status == 200 {
        ""
    } else {
        response.body.as_str()
    };
    println!("{name:36} | {:>4} | {body:?}", response.status);
    assert_eq!((response.status, body), want, "{name}");
    if response.status == 200 {
        assert_eq!(response.upstream_headers()["x-jwt-sub"], json!(["alice"]));
    }
}

fn print_table_head() {
    println!("{:36} | {:>4} | body", "case", "ours");
    println!("{}", "-".repeat(100));
}

/// The fixture keys and a key published nowhere else (kid "k-rotated"), followed by `padding` bytes.
fn padded_jwks(keys: &Keys, rotated: &TestKey, padding: usize) -> String {
    let mut published = keys.jwks()["keys"].as_array().expect("keys").clone();
    published.push(rotated.jwk(None));
    format!(
        "{{\"keys\": {}, \"padding\": \"{}\"}}",
        Value::Array(published),
        "x".repeat(padding)
    )
}

fn rotated_key(keys: &Keys) -> TestKey {
    TestKey {
        kid: "k-rotated",
        private: keys.rsa2048_other.private.clone(),
    }
}

#[test]
fn jwks_with_10000_keys_is_refused_keeping_the_previous_keys() {
    let keys = Keys::load();
    let good = good_claims(fixtures::now());
    // 10,000 usable keys: the fixture's, then the P-256 key again under new kids. A token under one of
    // the new kids would verify if the set were taken.
    let mut many = keys.jwks()["keys"].as_array().expect("keys").clone();
    for i in 0..(10_000 - many.len()) {
        let mut jwk = keys.ec.p256_jwk();
        jwk["kid"] = json!(format!("k-many-{i}"));
        many.push(jwk);
    }
    let many = json!({ "keys": many }).to_string();
    // The largest size limit allowed, so the 10,000 keys (1.7 MB) meet the key-count limit (256 by
    // default) rather than the default size limit (512 KiB).
    let max_bytes = 16 * 1024 * 1024;
    assert!(many.len() < max_bytes);

    let jwks = JwksServer::start(keys.jwks().to_string());
    jwks.route("/many.json", &many);
    let upstream = EchoUpstream::start();
    let envoy = envoy_with_providers(
        jwks.port,
        &upstream,
        json!({
            "jwt": quick_provider(jwks.port, "/.well-known/jwks.json", Some(max_bytes)),
            "many": quick_provider(jwks.port, "/many.json", Some(max_bytes)),
        }),
    );
    let good_token = fixtures::good_token();
    let many_kid_token = keys
        .ec
        .sign("ES256", &json!({"alg": "ES256", "kid": "k-many-17"}), &good);
    print_table_head();

    // No keys yet: the first fetch brings 10,000 keys, so requests are refused.
    wait_for_failed_fetch(&envoy, "many", 0);
    expect_answer(
        &envoy,
        "10000_keys_no_previous_keys",
        ("/many/x", &good_token),
        (401, FETCH_FAILED),
    );
    // Previous keys: a refresh brings 10,000 keys; the old keys keep serving, the new ones are unused.
    expect_answer(&envoy, "before_refresh", ("/api", &good_token), (200, ""));
    jwks.set(200, &many);
    let before = failed_fetches(&envoy, "jwt");
    wait_for_failed_fetch(&envoy, "jwt", before);
    expect_answer(
        &envoy,
        "10000_keys_old_keys_serve",
        ("/api", &good_token),
        (200, ""),
    );
    expect_answer(
        &envoy,
        "10000_keys_new_kid_unused",
        ("/api", &many_kid_token),
        (401, NO_KEY),
    );
    for provider in ["jwt", "many"] {
        let name = format!("jwt_authn_wasm.provider.{provider}.jwks_fetch_failed.too_many_keys");
        assert!(envoy.stat(&name).unwrap_or(0) >= 1, "{name} not counted");
    }
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.jwt.keys_in_use"),
        Some(6)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.many.keys_in_use"),
        Some(0)
    );
    assert_still_serving(&envoy);
}

/// 20 MB is over the filter's limit (max_jwks_bytes, 512 KiB by default) but within Envoy's buffer limit
/// for an HTTP callout's response: the filter sees the body size and refuses it. 50 MB is over Envoy's
/// limit too: Envoy logs "the buffer size limit for async client response body has been exceeded",
/// drains the body and reports the callout as failed, with no response headers at all.
#[test]
fn jwks_bodies_of_20_and_50_mb_are_refused_keeping_the_previous_keys() {
    let keys = Keys::load();
    let rotated = rotated_key(&keys);
    let body_20mb = padded_jwks(&keys, &rotated, 20 * 1024 * 1024);
    let body_50mb = padded_jwks(&keys, &rotated, 50 * 1024 * 1024);
    let jwks = JwksServer::start(keys.jwks().to_string());
    jwks.route("/huge.json", &body_20mb);
    let upstream = EchoUpstream::start();
    let envoy = envoy_with_providers(
        jwks.port,
        &upstream,
        json!({
            "jwt": quick_provider(jwks.port, "/.well-known/jwks.json", None),
            "huge": quick_provider(jwks.port, "/huge.json", None),
        }),
    );
    let good_token = fixtures::good_token();
    let rotated_token = mint(&rotated, "RS256", &good_claims(fixtures::now()));
    print_table_head();

    // 20 MB.
    wait_for_failed_fetch(&envoy, "huge", 0);
    expect_answer(
        &envoy,
        "20mb_no_previous_keys",
        ("/huge/x", &good_token),
        (401, FETCH_FAILED),
    );
    expect_answer(&envoy, "before_refresh", ("/api", &good_token), (200, ""));
    jwks.set(200, &body_20mb);
    wait_for_failed_fetch(&envoy, "jwt", 0);
    expect_answer(
        &envoy,
        "20mb_old_keys_serve",
        ("/api", &good_token),
        (200, ""),
    );
    expect_answer(
        &envoy,
        "20mb_new_kid_unused",
        ("/api", &rotated_token),
        (401, NO_KEY),
    );
    assert!(
        envoy
            .stat("jwt_authn_wasm.provider.jwt.jwks_fetch_failed.too_large")
            .unwrap_or(0)
            >= 1
    );

    // 50 MB.
    let before = failed_fetches(&envoy, "jwt");
    jwks.set(200, &body_50mb);
    wait_for_failed_fetch(&envoy, "jwt", before);
    expect_answer(
        &envoy,
        "50mb_old_keys_serve",
        ("/api", &good_token),
        (200, ""),
    );
    expect_answer(
        &envoy,
        "50mb_new_kid_unused",
        ("/api", &rotated_token),
        (401, NO_KEY),
    );
    let before = failed_fetches(&envoy, "huge");
    jwks.route("/huge.json", &body_50mb);
    wait_for_failed_fetch(&envoy, "huge", before);
    expect_answer(
        &envoy,
        "50mb_no_previous_keys",
        ("/huge/x", &good_token),
        (401, FETCH_FAILED),
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.jwt.keys_in_use"),
        Some(6)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.provider.huge.keys_in_use"),
        Some(0)
    );
    assert_still_serving(&envoy);
}

/// A JWKS server that serves `jwks`, except on `/cut.json`, where it announces a body twice as long and
/// closes the connection half-way through it. Returns its port.
fn start_cutting_jwks_server(jwks: String) -> u16 {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let jwks = jwks.clone();
            std::thread::spawn(move || {
                let Some((request_line, _)) = common::servers::read_request(&stream) else {
                    return;
                };
                if request_line.contains("/cut.json") {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        jwks.len() * 2
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&jwks.as_bytes()[..jwks.len() / 2]);
                    let _ = stream.flush();
                } else {
                    common::servers::write_response(
                        stream,
                        200,
                        "application/json",
                        jwks.as_bytes(),
                    );
                }
            });
        }
    });
    port
}

/// The failure behind the 50 MB case without any size: the JWKS response starts (status and headers)
/// and the connection drops before the body is complete, so Envoy fails the callout.
#[test]
fn a_jwks_response_cut_off_mid_body_is_a_failed_fetch() {
    let keys = Keys::load();
    let port = start_cutting_jwks_server(keys.jwks().to_string());
    let upstream = EchoUpstream::start();
    let envoy = envoy_with_providers(
        port,
        &upstream,
        json!({
            "jwt": quick_provider(port, "/.well-known/jwks.json", None),
            "cut": quick_provider(port, "/cut.json", None),
        }),
    );
    print_table_head();
    wait_for_failed_fetch(&envoy, "cut", 0);
    let good_token = fixtures::good_token();
    expect_answer(
        &envoy,
        "cut_body_no_previous_keys",
        ("/cut/x", &good_token),
        (401, FETCH_FAILED),
    );
    expect_answer(
        &envoy,
        "other_provider_serves",
        ("/api", &good_token),
        (200, ""),
    );
    assert_still_serving(&envoy);
}
