//! The verifier on the shared fixture: every named token gets the refusal jwt_authn gives it (or passes),
//! checked without Envoy, plus the claim checks' edges.

use crate::common;

use jwt_authn_wasm::config::{FilterConfig, Provider};
use jwt_authn_wasm::jwks::{parse_jwks, Jwks};
use jwt_authn_wasm::verify::check_token;
use jwt_authn_wasm::verify::AuthError;
use serde_json::{json, Value};

use common::fixtures::{self, Expect, Keys, AUDIENCE, ISSUER};

fn provider_with(overrides: Value) -> (FilterConfig, Jwks) {
    let keys = Keys::load();
    let mut provider = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": keys.jwks().to_string()},
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            provider.as_object_mut().unwrap().remove(k);
        } else {
            provider[k] = v.clone();
        }
    }
    let config =
        FilterConfig::parse(json!({"providers": {"p": provider}}).to_string().as_bytes()).unwrap();
    (
        config,
        parse_jwks(keys.jwks().to_string().as_bytes()).unwrap(),
    )
}

fn verdict(token: &str, provider: &Provider, jwks: &Jwks, now: u64) -> Result<(), AuthError> {
    check_token(token.as_bytes(), provider, now)?
        .verify_signature(jwks)
        .map(|_| ())
}

#[test]
fn every_fixture_gets_its_expected_verdict() {
    let (config, jwks) = provider_with(json!({}));
    let now = fixtures::now();
    for fixture in fixtures::fixtures(&Keys::load(), now) {
        let outcome = verdict(&fixture.token, &config.providers[0], &jwks, now);
        match fixture.expect {
            Expect::Allow => assert_eq!(outcome, Ok(()), "{}", fixture.name),
            Expect::Deny(status, body) => {
                let error = outcome.expect_err(fixture.name);
                assert_eq!(error.status(), u32::from(status), "{}", fixture.name);
                assert_eq!(
                    error.message(),
                    fixture.our_body.unwrap_or(body),
                    "{}",
                    fixture.name
                );
            }
        }
    }
}

#[test]
fn verified_token_carries_payload_and_its_segment() {
    let (config, jwks) = provider_with(json!({}));
    let keys = Keys::load();
    let now = fixtures::now();
    let token = fixtures::mint(&keys.rsa2048, "RS256", &fixtures::good_claims(now));
    let verified = check_token(token.as_bytes(), &config.providers[0], now)
        .unwrap()
        .verify_signature(&jwks)
        .unwrap();
    assert_eq!(verified.payload()["sub"], json!("alice"));
    assert_eq!(verified.payload_segment(), token.split('.').nth(1).unwrap());
}

#[test]
fn clock_skew_bounds_exp_and_nbf() {
    let (config, jwks) = provider_with(json!({"clock_skew_seconds": 10}));
    let keys = Keys::load();
    let now = 1_800_000_000u64;
    let mut claims = fixtures::good_claims(now);
    claims["exp"] = json!(now - 10);
    let at_edge = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    assert_eq!(verdict(&at_edge, &config.providers[0], &jwks, now), Ok(()));
    assert_eq!(
        verdict(&at_edge, &config.providers[0], &jwks, now + 1),
        Err(AuthError::Expired)
    );
    let mut claims = fixtures::good_claims(now);
    claims["nbf"] = json!(now + 10);
    let early = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    assert_eq!(verdict(&early, &config.providers[0], &jwks, now), Ok(()));
    assert_eq!(
        verdict(&early, &config.providers[0], &jwks, now - 1),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn audiences_and_issuer_are_optional_checks() {
    let (config, jwks) = provider_with(json!({"issuer": null, "audiences": null}));
    let keys = Keys::load();
    let now = fixtures::now();
    let mut claims = fixtures::good_claims(now);
    claims["iss"] = json!("anyone");
    claims["aud"] = json!("anything");
    let token = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    assert_eq!(verdict(&token, &config.providers[0], &jwks, now), Ok(()));
}

#[test]
fn audience_comparison_ignores_scheme_and_trailing_slash() {
    let (config, jwks) = provider_with(json!({"audiences": ["https://api.example.com/"]}));
    let keys = Keys::load();
    let now = fixtures::now();
    for (aud, allowed) in [
        (json!("api.example.com"), true),
        (json!("http://api.example.com"), true),
        (json!(["x", "https://api.example.com/"]), true),
        (json!("api.example.com/v2"), false),
        (json!([]), false),
    ] {
        let mut claims = fixtures::good_claims(now);
        claims["aud"] = aud.clone();
        let token = fixtures::mint(&keys.rsa2048, "RS256", &claims);
        let expected = if allowed {
            Ok(())
        } else {
            Err(AuthError::AudienceNotAllowed)
        };
        assert_eq!(
            verdict(&token, &config.providers[0], &jwks, now),
            expected,
            "aud {aud}"
        );
    }
    let mut claims = fixtures::good_claims(now);
    claims.as_object_mut().unwrap().remove("aud");
    let no_aud = fixtures::mint(&keys.rsa2048, "RS256", &claims);
    assert_eq!(
        verdict(&no_aud, &config.providers[0], &jwks, now),
        Err(AuthError::AudienceNotAllowed)
    );
}

#[test]
fn tampering_with_any_segment_fails() {
    let (config, jwks) = provider_with(json!({}));
    let keys = Keys::load();
    let now = fixtures::now();
    let token = fixtures::mint(&keys.rsa2048, "PS256", &fixtures::good_claims(now));
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = fixtures::good_claims(now);
    claims["sub"] = json!("mallory");
    let forged_payload = fixtures::b64(claims.to_string().as_bytes());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        verdict(&forged, &config.providers[0], &jwks, now),
        Err(AuthError::VerificationFails)
    );
    let rs_header = fixtures::b64(
        json!({"alg": "RS256", "typ": "JWT", "kid": "k2048"})
            .to_string()
            .as_bytes(),
    );
    let alg_swapped = format!("{}.{}.{}", rs_header, parts[1], parts[2]);
    assert_eq!(
        verdict(&alg_swapped, &config.providers[0], &jwks, now),
        Err(AuthError::VerificationFails)
    );
    let non_utf8 = [b"eyJ".as_slice(), &[0xff, 0xfe], b".x.y"].concat();
    assert_eq!(
        check_token(&non_utf8, &config.providers[0], now).err(),
        Some(AuthError::BadFormat)
    );
}

/// jwt_verify_lib stops at the first fitting Ed25519 key when the signature is not 64 bytes, whatever the
/// token's alg, with its own message; a 64-byte wrong signature is the usual failure.
#[test]
fn ed25519_signature_of_the_wrong_length_is_jwt_authn_refusal() {
    let (config, jwks) = provider_with(json!({}));
    let keys = Keys::load();
    let now = fixtures::now();
    let claims = fixtures::good_claims(now);
    let token = keys.ec.mint("EdDSA", &claims);
    let signed = token.rsplit_once('.').unwrap().0;
    let provider = &config.providers[0];
    for (length, expected) in [
        (32usize, AuthError::Ed25519SignatureWrongLength),
        (63, AuthError::Ed25519SignatureWrongLength),
        (64, AuthError::VerificationFails),
        (65, AuthError::Ed25519SignatureWrongLength),
    ] {
        let forged = format!("{signed}.{}", fixtures::b64(&vec![7; length]));
        assert_eq!(
            verdict(&forged, provider, &jwks, now),
            Err(expected),
            "{length} bytes"
        );
    }
    assert_eq!(verdict(&token, provider, &jwks, now), Ok(()));
    // A P-256 key fits an EdDSA token without kid first (it has no alg) and cannot verify it; the search
    // goes on to the Ed25519 key, which stops it.
    let no_kid = keys.ec.sign("EdDSA", &json!({"alg": "EdDSA"}), &claims);
    let short = format!(
        "{}.{}",
        no_kid.rsplit_once('.').unwrap().0,
        fixtures::b64(&[7; 10])
    );
    assert_eq!(
        verdict(&short, provider, &jwks, now),
        Err(AuthError::Ed25519SignatureWrongLength)
    );
    // An ES256 token under kid kp256 fits only the P-256 key: the usual failure.
    let es256 = keys.ec.mint("ES256", &claims);
    let es_short = format!(
        "{}.{}",
        es256.rsplit_once('.').unwrap().0,
        fixtures::b64(&[7; 10])
    );
    assert_eq!(
        verdict(&es_short, provider, &jwks, now),
        Err(AuthError::VerificationFails)
    );
}
