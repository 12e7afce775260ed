//! The X.509 certificate map form of a key set (Google service accounts, Firebase), read as jwt_authn
//! reads it: real certificates for the fixture keys (tests/common/x509.rs), each member's name as the
//! key's kid, no alg, validity ignored, and one bad certificate refusing the whole map.

use crate::common;

use jwt_authn_wasm::jwks::{
    parse_jwks, parse_jwks_with_limits, parse_local_jwks, JwksError, JwksLimits,
};
use serde_json::{json, Value};

use common::fixtures::{Keys, TestKey};
use common::x509::{
    certificate_pem, current_certificate_pem, p521_certificate_pem, with_bytes_swapped, SubjectKey,
};

const BEGIN: &str = "-----BEGIN CERTIFICATE-----\n";
const END: &str = "\n-----END CERTIFICATE-----\n";

fn map(members: &[(&str, String)]) -> String {
    let object: serde_json::Map<String, Value> = members
        .iter()
        .map(|(kid, pem)| (kid.to_string(), json!(pem)))
        .collect();
    Value::Object(object).to_string()
}

fn refusal(document: &str) -> JwksError {
    parse_jwks(document.as_bytes()).expect_err("map refused")
}

#[test]
fn rcgen_writes_the_exact_form_jwt_authn_recognises() {
    let keys = Keys::load();
    let pem = current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048));
    assert!(pem.starts_with(BEGIN) && pem.ends_with(END), "{pem}");
}

#[test]
fn each_certificate_gives_the_key_its_jwk_gives_under_the_member_name() {
    let keys = Keys::load();
    let document = map(&[
        (
            "rsa",
            current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048)),
        ),
        ("p256", current_certificate_pem(&SubjectKey::p256(&keys.ec))),
        ("p384", current_certificate_pem(&SubjectKey::p384(&keys.ec))),
        (
            "ed",
            current_certificate_pem(&SubjectKey::ed25519(&keys.ec)),
        ),
    ]);
    let from_certificates = parse_jwks(document.as_bytes()).expect("map parses");
    let from_jwks = parse_jwks(keys.jwks().to_string().as_bytes()).expect("jwks parses");
    let jwk_material = |kid: &str| {
        &from_jwks
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .expect("fixture kid")
            .material
    };
    let mut found: Vec<_> = from_certificates
        .keys
        .iter()
        .map(|key| {
            // The certificate form names no algorithm: the key serves every one its type serves.
            assert_eq!(key.alg, None);
            key.kid.clone().expect("kid from the member name")
        })
        .collect();
    found.sort();
    assert_eq!(found, ["ed", "p256", "p384", "rsa"]);
    for (kid, fixture_kid) in [
        ("rsa", "k2048"),
        ("p256", "kp256"),
        ("p384", "kp384"),
        ("ed", "ked25519"),
    ] {
        let key = from_certificates
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .expect("kid");
        assert_eq!(&key.material, jwk_material(fixture_kid), "{kid}");
    }
    assert!(from_certificates.skipped.is_empty());
    // The filter's own configuration reads the same form.
    assert_eq!(
        parse_local_jwks(document.as_bytes()).expect("local map parses"),
        from_certificates
    );
}

#[test]
fn a_p521_certificate_gives_the_key_its_jwk_gives() {
    let keys = Keys::load();
    let document = map(&[("p521", p521_certificate_pem(&keys.ec))]);
    let from_certificate = parse_jwks(document.as_bytes()).expect("map parses");
    let jwks = json!({"keys": [keys.ec.p521_jwk()]}).to_string();
    let from_jwk = parse_jwks(jwks.as_bytes()).expect("jwks parses");
    let (Some(certificate_key), Some(jwk_key)) =
        (from_certificate.keys.first(), from_jwk.keys.first())
    else {
        panic!("one key each");
    };
    assert_eq!(certificate_key.kid.as_deref(), Some("p521"));
    assert_eq!(certificate_key.alg, None);
    assert_eq!(certificate_key.material, jwk_key.material);
}

#[test]
fn validity_is_not_checked_as_jwt_authn_does_not_check_it() {
    let keys = Keys::load();
    let expired = certificate_pem(&SubjectKey::rsa(&keys.rsa2048), (2000, 1, 1), (2001, 1, 1));
    let future = certificate_pem(&SubjectKey::p256(&keys.ec), (2090, 1, 1), (2091, 1, 1));
    let jwks = parse_jwks(map(&[("old", expired), ("new", future)]).as_bytes()).expect("parses");
    assert_eq!(jwks.keys.len(), 2);
}

#[test]
fn one_bad_certificate_refuses_the_whole_map_as_jwt_authn_does() {
    let keys = Keys::load();
    let good = current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048));
    let bad_base64 = format!("{BEGIN}not base64 at all!{END}");
    let error = refusal(&map(&[("a-good", good.clone()), ("b-bad", bad_base64)]));
    assert_eq!(
        error.to_string(),
        "X.509 certificate map refused: certificate \"b-bad\": not PEM (its body is not base64)"
    );
    assert_eq!(error.reason(), "bad_certificate");
    // Base64 of something that is not a certificate.
    let not_der = format!("{BEGIN}aGVsbG8gd29ybGQ={END}");
    assert!(matches!(
        refusal(&map(&[("a-good", good.clone()), ("z", not_der)])),
        JwksError::BadCertificate { kid, reason } if kid == "z" && reason.starts_with("not an X.509 certificate")
    ));
    // A public key (SubjectPublicKeyInfo DER) under certificate lines: DER, but not a certificate.
    let public_key = keys
        .rsa2048
        .public_pem()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    let error = refusal(&map(&[("spki", format!("{BEGIN}{public_key}{END}"))]));
    assert_eq!(
        error.to_string(),
        "X.509 certificate map refused: certificate \"spki\": not an X.509 certificate"
    );
    // A certificate cut short.
    let body: String = good
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let truncated = format!("{BEGIN}{}{END}", &body[..body.len() / 2 / 4 * 4]);
    assert!(matches!(
        refusal(&map(&[("a-good", good.clone()), ("t", truncated)])),
        JwksError::BadCertificate { kid, .. } if kid == "t"
    ));
}

#[test]
fn a_key_type_the_filter_cannot_verify_refuses_the_map() {
    let keys = Keys::load();
    // An Ed25519 certificate with its key's algorithm changed to X25519 (1.3.101.112 → 1.3.101.110, the
    // same length): a well-formed certificate with a key-agreement key. Nobody checks the certificate's
    // signature, so this is what a publisher could serve.
    let ed = current_certificate_pem(&SubjectKey::ed25519(&keys.ec));
    let (ed25519_oid, x25519_oid) = (
        [0x06, 0x03, 0x2b, 0x65, 0x70],
        [0x06, 0x03, 0x2b, 0x65, 0x6e],
    );
    let x25519 = with_bytes_swapped(&ed, &ed25519_oid, &x25519_oid);
    let error = refusal(&map(&[("x", x25519)]));
    assert_eq!(
        error.to_string(),
        "X.509 certificate map refused: certificate \"x\": its key type 1.3.101.110 is not RSA, EC \
         (P-256, P-384, P-521) or Ed25519"
    );
    // A weak RSA key is refused as its JWK would be.
    let weak = TestKey::load("rsa1024.pem", "k1024");
    let error = refusal(&map(&[(
        "weak",
        current_certificate_pem(&SubjectKey::rsa(&weak)),
    )]));
    assert!(
        error.to_string().contains("RSA modulus has 1024 bits"),
        "{error}"
    );
}

#[test]
fn only_the_exact_form_is_read_as_a_certificate_map() {
    let keys = Keys::load();
    let pem = current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048));
    let without_final_newline = pem.trim_end().to_string();
    for (name, document) in [
        ("empty object", "{}".to_string()),
        ("no final newline", map(&[("k", without_final_newline)])),
        ("empty kid", map(&[("", pem.clone())])),
        (
            "a number beside",
            format!("{{\"k\": {}, \"n\": 1}}", json!(pem)),
        ),
        (
            "a keys member",
            map(&[("k", pem.clone()), ("keys", pem.clone())]),
        ),
        ("public key PEM", map(&[("k", keys.rsa2048.public_pem())])),
    ] {
        assert!(
            matches!(refusal(&document), JwksError::InvalidJson(_)),
            "{name}: {:?}",
            parse_jwks(document.as_bytes())
        );
    }
}

#[test]
fn lenient_pem_the_way_boringssl_reads_it() {
    let keys = Keys::load();
    let pem = current_certificate_pem(&SubjectKey::rsa(&keys.rsa2048));
    // CRLF line ends inside, and a chain: the first certificate is the key's, as PEM_read_bio_X509
    // reads the first one.
    let inner = pem
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .expect("PEM");
    let crlf = format!("{BEGIN}{}\r{END}", inner.replace('\n', "\r\n"));
    let chain = format!(
        "{pem}{}",
        current_certificate_pem(&SubjectKey::p256(&keys.ec))
    );
    let jwks = parse_jwks(map(&[("crlf", crlf), ("chain", chain)]).as_bytes()).expect("parses");
    assert_eq!(jwks.keys.len(), 2);
    assert!(jwks
        .keys
        .iter()
        .all(|k| format!("{:?}", k.material) == "Rsa(2048 bits)"));
    // A trailing comma, as for the JWK form.
    let trailing = format!("{{\"k\": {},}}", json!(pem));
    assert_eq!(
        parse_jwks(trailing.as_bytes()).expect("parses").keys.len(),
        1
    );
}

#[test]
fn the_key_count_limit_holds_for_certificate_maps() {
    let keys = Keys::load();
    let pem = current_certificate_pem(&SubjectKey::p256(&keys.ec));
    let members: Vec<(&str, String)> = ["a", "b", "c"].iter().map(|k| (*k, pem.clone())).collect();
    let limits = JwksLimits {
        max_bytes: 1 << 20,
        max_keys: 2,
    };
    assert!(matches!(
        parse_jwks_with_limits(map(&members).as_bytes(), limits),
        Err(JwksError::TooManyKeys { count: 3, limit: 2 })
    ));
}
