//! JWKS parsing: usable keys kept with kid/alg, unusable ones skipped with a reason, bad sets refused.

use crate::common;

use jwt_authn_wasm::jwks::{
    parse_jwks, parse_jwks_with_limits, JwksError, JwksLimits, MAX_JWKS_BYTES, MAX_JWKS_KEYS,
};
use serde_json::json;

use common::fixtures::{Keys, TestKey};

#[test]
fn fixture_jwks_parses_with_kid_and_alg() {
    let keys = Keys::load();
    let jwks = parse_jwks(keys.jwks().to_string().as_bytes()).unwrap();
    let kids: Vec<_> = jwks.keys.iter().map(|k| k.kid.as_deref()).collect();
    assert_eq!(
        kids,
        vec![
            Some("k2048"),
            Some("k3072-rs256"),
            Some("k4096"),
            Some("kp256"),
            Some("kp384"),
            Some("ked25519")
        ]
    );
    assert_eq!(jwks.keys[1].alg.as_deref(), Some("RS256"));
    assert_eq!(jwks.keys[0].alg, None);
    assert!(jwks.skipped.is_empty());
}

#[test]
fn unusable_keys_are_skipped_not_fatal() {
    let keys = Keys::load();
    let weak = TestKey::load("rsa1024.pem", "weak");
    let mut e3 = keys.rsa2048.jwk(None);
    e3["kid"] = json!("e3");
    e3["e"] = json!("Aw");
    let mut e1 = keys.rsa2048.jwk(None);
    e1["kid"] = json!("e1");
    e1["e"] = json!("AQ");
    let mut enc = keys.rsa2048.jwk(None);
    enc["kid"] = json!("enc");
    enc["use"] = json!("enc");
    let mut bad_n = keys.rsa2048.jwk(None);
    bad_n["kid"] = json!("bad-n");
    bad_n["n"] = json!("***");
    let mut hs = keys.rsa2048.jwk(Some("HS256"));
    hs["kid"] = json!("hs-alg");
    let document = json!({"keys": [
        weak.jwk(None),
        e3,
        e1,
        enc,
        bad_n,
        hs,
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
        {"kid": "no-kty"},
        "not an object",
        keys.rsa2048.jwk(None),
    ]});
    let jwks = parse_jwks(document.to_string().as_bytes()).unwrap();
    assert_eq!(jwks.keys.len(), 1, "only the good key is usable");
    assert_eq!(jwks.keys[0].kid.as_deref(), Some("k2048"));
    let skipped = jwks.skipped.join("\n");
    for reason in [
        "kid \"weak\": RSA modulus has 1024 bits",
        "kid \"e3\": RSA public exponent",
        "kid \"e1\": RSA public exponent",
        "kid \"enc\": use \"enc\" is not \"sig\"",
        "kid \"bad-n\": RSA \"n\" is not base64url",
        "kid \"hs-alg\": alg \"HS256\" does not fit a Rsa(2048 bits) key",
        "kid \"ec\": EC point (x, y) is not a point of P-256",
        "kid \"oct\": kty \"oct\" (a shared secret) is accepted only in local_jwks",
        "key 8: not a JWK",
        "key 9: not a JWK",
    ] {
        assert!(
            skipped.contains(reason),
            "missing {reason:?} in:\n{skipped}"
        );
    }
}

#[test]
fn bad_documents_are_refused_with_the_reason() {
    assert!(matches!(
        parse_jwks(b"not json"),
        Err(JwksError::InvalidJson(_))
    ));
    assert!(matches!(
        parse_jwks(b"{\"keys\": {}}"),
        Err(JwksError::InvalidJson(_))
    ));
    assert!(matches!(parse_jwks(b"{}"), Err(JwksError::InvalidJson(_))));
    assert!(matches!(
        parse_jwks(b"{\"keys\": []}"),
        Err(JwksError::NoUsableKeys { .. })
    ));
    let huge = vec![b' '; MAX_JWKS_BYTES + 1];
    let error = parse_jwks(&huge).unwrap_err();
    assert_eq!(
        error,
        JwksError::TooLarge {
            bytes: MAX_JWKS_BYTES + 1,
            limit: MAX_JWKS_BYTES
        }
    );
    assert!(error.to_string().contains("over the limit"));
    let many = json!({"keys": vec![json!({"kty": "oct"}); MAX_JWKS_KEYS + 1]});
    assert_eq!(
        parse_jwks(many.to_string().as_bytes()).unwrap_err(),
        JwksError::TooManyKeys {
            count: MAX_JWKS_KEYS + 1,
            limit: MAX_JWKS_KEYS
        }
    );
    let limits = JwksLimits {
        max_bytes: 100,
        max_keys: 1,
    };
    let two = Keys::load();
    let two = json!({"keys": [two.rsa2048.jwk(None), two.rsa4096.jwk(None)]}).to_string();
    assert!(matches!(
        parse_jwks_with_limits(two.as_bytes(), limits),
        Err(JwksError::TooLarge { limit: 100, .. })
    ));
    let limits = JwksLimits {
        max_bytes: 1 << 20,
        max_keys: 1,
    };
    let error = parse_jwks_with_limits(two.as_bytes(), limits).unwrap_err();
    assert_eq!(error.reason(), "too_many_keys");
    assert!(error.to_string().contains("(max_jwks_keys)"), "{error}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        parse_jwks(deep.as_bytes()),
        Err(JwksError::InvalidJson(_))
    ));
}

#[test]
fn trailing_commas_are_read_as_jwt_authn_reads_them_and_nothing_else_is() {
    let keys = Keys::load();
    let key = keys.rsa2048.jwk(None).to_string();
    // A comma before `]` and before `}`, with white space between.
    let lenient = format!("{{\"keys\": [{key} ,\n ] , }}");
    let jwks = parse_jwks(lenient.as_bytes()).expect("trailing commas are read");
    assert_eq!(jwks.keys.len(), 1);
    // A comma inside a string is data, not syntax: the kid keeps it.
    let mut odd_kid = keys.rsa2048.jwk(None);
    odd_kid["kid"] = json!("a,]");
    let jwks = parse_jwks(format!("{{\"keys\": [{odd_kid},]}}").as_bytes()).unwrap();
    assert_eq!(jwks.keys[0].kid.as_deref(), Some("a,]"));
    // Other broken JSON is still refused.
    for broken in [
        format!("{{\"keys\": [{key},,]}}"),
        format!("{{\"keys\": [,{key}]}}"),
        format!("{{\"keys\": [{key}]"),
    ] {
        assert!(
            matches!(
                parse_jwks(broken.as_bytes()),
                Err(JwksError::InvalidJson(_))
            ),
            "{broken}"
        );
    }
}

#[test]
fn an_ec_key_without_crv_takes_its_curve_from_alg() {
    let keys = Keys::load();
    let mut p384 = keys.ec.p384_jwk();
    p384.as_object_mut().unwrap().remove("crv");
    let jwks = parse_jwks(json!({"keys": [p384.clone()]}).to_string().as_bytes()).unwrap();
    assert_eq!(format!("{:?}", jwks.keys[0].material), "P384");
    // Without alg there is nothing to take it from.
    p384.as_object_mut().unwrap().remove("alg");
    let refused = parse_jwks(json!({"keys": [p384]}).to_string().as_bytes()).unwrap_err();
    assert!(format!("{refused}").contains("no \"crv\""), "{refused}");
    // The point must still lie on the curve alg names: a P-384 point read as P-256 is refused.
    let mut wrong = keys.ec.p384_jwk();
    wrong.as_object_mut().unwrap().remove("crv");
    wrong["alg"] = json!("ES256");
    let refused = parse_jwks(json!({"keys": [wrong]}).to_string().as_bytes()).unwrap_err();
    assert!(
        format!("{refused}").contains("not a point of P-256"),
        "{refused}"
    );
}
