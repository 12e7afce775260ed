//! The one parse of a token (src/verify/token.rs): the header fields whose types jwt-compact's parser
//! used to check on its second parse are still checked, a signature that is not base64url is still that
//! error, and a token that passes verifies with the signed bytes and payload segment kept in place.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::jwks::parse_jwks;
use jwt_authn_wasm::verify::check_token;
use jwt_authn_wasm::verify::AuthError;
use serde_json::{json, Value};

use common::fixtures::{self, Keys, AUDIENCE, ISSUER};

fn config() -> FilterConfig {
    let config = json!({
        "providers": {"jwt": {
            "issuer": ISSUER, "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": Keys::load().jwks().to_string()}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}]
    });
    FilterConfig::parse(config.to_string().as_bytes()).unwrap()
}

/// A token with this header and good claims, and a signature segment that decodes (but does not verify).
fn with_header(header: Value) -> String {
    let claims = fixtures::good_claims(fixtures::now());
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

fn check(header: Value) -> Result<(), AuthError> {
    let config = config();
    check_token(
        with_header(header).as_bytes(),
        &config.providers[0],
        fixtures::now(),
    )
    .map(|_| ())
}

#[test]
fn header_fields_keep_their_types() {
    let ok = |extra: Value| {
        let mut header = json!({"alg": "RS256", "kid": "k2048"});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        check(header)
    };
    assert_eq!(ok(json!({})), Ok(()));
    assert_eq!(ok(json!({"typ": "JWT", "cty": "json"})), Ok(()));
    assert_eq!(
        ok(json!({"cty": "JSON"})),
        Ok(()),
        "cty is compared without case"
    );
    assert_eq!(ok(json!({"cty": null, "typ": null})), Ok(()));
    // A SHA-1 thumbprint of 20 bytes and a SHA-256 one of 32.
    let x5t = URL_SAFE_NO_PAD.encode([1u8; 20]);
    let x5t256 = URL_SAFE_NO_PAD.encode([2u8; 32]);
    assert_eq!(ok(json!({"x5t": x5t, "x5t#S256": x5t256})), Ok(()));
    assert_eq!(
        ok(json!({"jku": "https://issuer.test/jwks", "x5u": "https://issuer.test/c"})),
        Ok(())
    );
    for bad in [
        json!({"cty": "JWT"}),
        json!({"cty": "txt"}),
        json!({"cty": 1}),
        json!({"typ": 5}),
        json!({"jku": ["https://issuer.test/jwks"]}),
        json!({"x5u": true}),
        json!({"x5t": "c2hvcnQ"}),
        json!({"x5t#S256": URL_SAFE_NO_PAD.encode([2u8; 20])}),
        json!({"x5t": 20}),
    ] {
        assert_eq!(ok(bad.clone()), Err(AuthError::HeaderBadJson), "{bad}");
    }
}

#[test]
fn header_text_is_refused_as_before_the_one_pass_header_read() {
    // The header is read in one pass without a map of it; what it refuses, and with which error
    // first, is what parsing it into a map refused.
    let config = config();
    let check_text = |header: &str| {
        let claims = fixtures::good_claims(fixtures::now());
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        );
        check_token(token.as_bytes(), &config.providers[0], fixtures::now()).map(|_| ())
    };
    for (header, expected) in [
        (r#"{"alg":"RS256","kid":"k2048"}"#, Ok(())),
        (
            r#" {"alg" : "RS256", "x-other": {"a": [1, {"b": null}]}} "#,
            Ok(()),
        ),
        (
            r#"{"alg":"RS256","alg":"RS256"}"#,
            Err(AuthError::HeaderBadJson),
        ),
        (
            r#"{"alg":"RS256","al\u0067":"RS256"}"#,
            Err(AuthError::HeaderBadJson),
        ),
        (
            r#"{"alg":"RS256","x":1,"x":2}"#,
            Err(AuthError::HeaderBadJson),
        ),
        (
            r#"{"alg":"RS256","x":{"a":1,"a":1}}"#,
            Err(AuthError::HeaderBadJson),
        ),
        (
            r#"{"alg":"RS256","crit":[],"crit":[]}"#,
            Err(AuthError::HeaderBadJson),
        ),
        (r#"{"alg":"RS256"} x"#, Err(AuthError::HeaderBadJson)),
        (r#"{"alg":"RS256""#, Err(AuthError::HeaderBadJson)),
        (r#"["alg","RS256"]"#, Err(AuthError::HeaderBadJson)),
        (r#""RS256""#, Err(AuthError::HeaderBadJson)),
        (r#"{}"#, Err(AuthError::HeaderAlgMissing)),
        (r#"{"alg":5,"crit":[]}"#, Err(AuthError::HeaderAlgMissing)),
        (r#"{"alg":"none"}"#, Err(AuthError::HeaderAlgNotImplemented)),
        (
            r#"{"alg":"RS256","crit":null,"kid":3}"#,
            Err(AuthError::HeaderCritNotSupported),
        ),
        (
            r#"{"alg":"RS256","kid":null}"#,
            Err(AuthError::HeaderKidNotString),
        ),
        (
            r#"{"alg":"RS256","kid":3,"typ":3}"#,
            Err(AuthError::HeaderKidNotString),
        ),
        (r#"{"alg":"RS256","typ":3}"#, Err(AuthError::HeaderBadJson)),
        (
            r#"{"alg":"RS256","ty\u0070":"JWT","x5\u0074":1}"#,
            Err(AuthError::HeaderBadJson),
        ),
    ] {
        assert_eq!(check_text(header), expected, "{header}");
    }
}

#[test]
fn a_signature_that_is_not_base64url_is_that_error() {
    let config = config();
    let token = with_header(json!({"alg": "RS256"}));
    let (signed, _) = token.rsplit_once('.').unwrap();
    for signature in ["a+b/", "YQ==", "a"] {
        let bad = format!("{signed}.{signature}");
        assert_eq!(
            check_token(bad.as_bytes(), &config.providers[0], fixtures::now()).map(|_| ()),
            Err(AuthError::SignatureBadBase64),
            "{signature}"
        );
    }
}

#[test]
fn a_checked_token_verifies_over_its_own_bytes() {
    let config = config();
    let keys = Keys::load();
    let jwks = parse_jwks(keys.jwks().to_string().as_bytes()).unwrap();
    let token = fixtures::good_token();
    let checked = check_token(token.as_bytes(), &config.providers[0], fixtures::now()).unwrap();
    let verified = checked.verify_signature(&jwks).unwrap();
    assert_eq!(verified.payload_segment(), token.split('.').nth(1).unwrap());
    assert_eq!(verified.payload()["iss"], ISSUER);
    // One changed byte of the payload segment, and the signature no longer covers it.
    let mut tampered = token.clone().into_bytes();
    let at = token.find('.').unwrap() + 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    if let Ok(checked) = check_token(&tampered, &config.providers[0], fixtures::now()) {
        assert_eq!(
            checked.verify_signature(&jwks).map(|_| ()),
            Err(AuthError::VerificationFails)
        );
    }
}

#[test]
fn kid_lookup_keeps_jwt_verify_libs_choice() {
    let keys = Keys::load();
    let config = config();
    let token = fixtures::good_token();
    let checked = check_token(token.as_bytes(), &config.providers[0], fixtures::now()).unwrap();
    let jwk = keys.rsa2048.jwk(Some("RS256"));
    let with_kid = |kid: Option<&str>| {
        let mut key = jwk.clone();
        match kid {
            Some(kid) => key["kid"] = json!(kid),
            None => {
                key.as_object_mut().unwrap().remove("kid");
            }
        }
        key
    };
    let set = |keys: Vec<Value>| parse_jwks(json!({"keys": keys}).to_string().as_bytes()).unwrap();
    // 255 decoys and the token's kid last; a key without kid anywhere; only other kids.
    let mut many: Vec<Value> = (0..255).map(|i| with_kid(Some(&format!("d{i}")))).collect();
    many.push(jwk.clone());
    let many = set(many);
    assert!(checked.verify_signature(&many).is_ok());
    assert!(many.has_kid("k2048") && !many.has_kid("d255"));
    assert_eq!(many.fitting_keys(Some("k2048")).count(), 1);
    assert_eq!(many.fitting_keys(None).count(), 256, "no kid: every key");
    let keyless_first = set(vec![with_kid(None), with_kid(Some("other"))]);
    assert!(
        checked.verify_signature(&keyless_first).is_ok(),
        "a key without kid fits"
    );
    assert_eq!(keyless_first.fitting_keys(Some("other")).count(), 2);
    assert_eq!(keyless_first.fitting_keys(Some("unknown")).count(), 1);
    assert_eq!(
        checked
            .verify_signature(&set(vec![with_kid(Some("other"))]))
            .map(|_| ()),
        Err(AuthError::KidAlgMismatch)
    );
}
