//! Certificate-bound tokens (RFC 8705 §3) without a host: Envoy's hex digest as an `x5t#S256`
//! thumbprint, `x-forwarded-client-cert` parsing, the binding check, the option's configuration, and
//! whole requests through `start_on_connection` (a cached token is re-checked on every request).

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::config::{BindingMode, CertificateBinding, CertificateSource};
use jwt_authn_wasm::jwks::{parse_jwks, Jwks};
use jwt_authn_wasm::request::borrow_header_pairs;
use jwt_authn_wasm::request::TokenCaches;
use jwt_authn_wasm::request::{
    check_binding, presented_thumbprint, thumbprint_from_hex, xfcc_elements, xfcc_hash, XfccElement,
};
use jwt_authn_wasm::request::{start_on_connection, Verdict};
use jwt_authn_wasm::verify::{AuthError, Claims};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::decide;
use common::fixtures::{self, Keys, AUDIENCE, ISSUER};

/// SHA-256 of the empty string, as Envoy prints digests (lowercase hex), and the same digest as RFC 8705
/// thumbprint: a vector anyone can check with `printf '' | sha256sum` and a base64url encoder.
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const EMPTY_SHA256_X5T: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";

/// The digest Envoy would print for a certificate whose DER is `der`, and the thumbprint a token
/// bound to it carries, computed independently of the filter.
fn digest_and_thumbprint(der: &[u8]) -> (String, String) {
    let digest = Sha256::digest(der);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (hex, URL_SAFE_NO_PAD.encode(digest))
}

fn strings(elements: Vec<XfccElement>) -> Vec<Vec<(String, String)>> {
    elements
        .into_iter()
        .map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
                .collect()
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn envoy_hex_digest_becomes_the_base64url_thumbprint() {
    assert_eq!(
        thumbprint_from_hex(EMPTY_SHA256_HEX.as_bytes()).as_deref(),
        Some(EMPTY_SHA256_X5T)
    );
    assert_eq!(
        thumbprint_from_hex(EMPTY_SHA256_HEX.to_ascii_uppercase().as_bytes()).as_deref(),
        Some(EMPTY_SHA256_X5T)
    );
    for der in [&b"a certificate"[..], &[0u8, 255, 1, 254, 0x3e, 0x3f]] {
        let (hex, thumbprint) = digest_and_thumbprint(der);
        assert_eq!(thumbprint_from_hex(hex.as_bytes()), Some(thumbprint));
    }
    let not_digests = [
        "",
        &EMPTY_SHA256_HEX[..62],
        &format!("{EMPTY_SHA256_HEX}00"),
        &EMPTY_SHA256_HEX.replace('e', "g"),
        // base64 of the digest is not hex.
        EMPTY_SHA256_X5T,
        // A SHA-1 digest (40 hex digits) is not a SHA-256 one.
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    ];
    for text in not_digests {
        assert_eq!(thumbprint_from_hex(text.as_bytes()), None, "{text:?}");
    }
}

#[test]
fn xfcc_elements_pairs_and_quoted_values() {
    // Envoy's documented example with two elements (two proxies appended in turn).
    let two = "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e;URI=http://frontend.lyft.com";
    assert_eq!(
        strings(xfcc_elements(two.as_bytes()).unwrap()),
        vec![
            pairs(&[
                ("By", "http://frontend.lyft.com"),
                (
                    "Hash",
                    "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"
                ),
                ("URI", "http://testclient.lyft.com"),
            ]),
            pairs(&[
                ("By", "http://backend.lyft.com"),
                (
                    "Hash",
                    "9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e"
                ),
                ("URI", "http://frontend.lyft.com"),
            ]),
        ]
    );
    // A quoted Subject may hold the separators and escaped quotes; they do not split anything.
    let quoted = r#"Hash=aa;Subject="/C=US/O=Lyft, Inc.;x=\"y\"/CN=Test Client";DNS=lyft.com;DNS=www.lyft.com"#;
    assert_eq!(
        strings(xfcc_elements(quoted.as_bytes()).unwrap()),
        vec![pairs(&[
            ("Hash", "aa"),
            ("Subject", r#"/C=US/O=Lyft, Inc.;x="y"/CN=Test Client"#),
            ("DNS", "lyft.com"),
            ("DNS", "www.lyft.com"),
        ])]
    );
    // Blanks after a separator are not part of the next key or value.
    assert_eq!(
        strings(xfcc_elements(b"Hash=aa; By=b, Hash=cc").unwrap()),
        vec![
            pairs(&[("Hash", "aa"), ("By", "b")]),
            pairs(&[("Hash", "cc")])
        ]
    );
    assert_eq!(xfcc_elements(br#"Hash=aa;Subject="never closed"#), None);
}

#[test]
fn the_last_xfcc_element_holds_the_hash_the_filter_uses() {
    let (client_hex, client_x5t) = digest_and_thumbprint(b"client certificate");
    let (forged_hex, _) = digest_and_thumbprint(b"the bound certificate, claimed by the client");
    let headers = |values: &[String]| -> Vec<(String, Vec<u8>)> {
        values
            .iter()
            .map(|v| ("x-forwarded-client-cert".to_string(), v.as_bytes().to_vec()))
            .collect()
    };
    let hash_of = |values: &[String]| xfcc_hash(&borrow_header_pairs(&headers(values)));
    assert_eq!(
        hash_of(&[format!("By=spiffe://front;Hash={client_hex}")]),
        Some(client_x5t.clone())
    );
    // APPEND_FORWARD: whatever the client sent comes first, the element Envoy appended last.
    assert_eq!(
        hash_of(&[format!(
            "Hash={forged_hex};Subject=\"CN=forged, O=x\",Hash={client_hex};By=spiffe://envoy"
        )]),
        Some(client_x5t.clone())
    );
    // Case of the key and blanks around the value do not matter; the case of hex digits neither.
    assert_eq!(
        hash_of(&[format!("hash= {} ", client_hex.to_ascii_uppercase())]),
        Some(client_x5t.clone())
    );
    let refused = [
        // Two header lines: which one a proxy appended to is not known.
        vec![format!("Hash={forged_hex}"), format!("Hash={client_hex}")],
        // The last element has no Hash (an earlier one does not count).
        vec![format!("Hash={client_hex},By=spiffe://envoy")],
        // Two Hash keys in one element.
        vec![format!("Hash={client_hex};Hash={forged_hex}")],
        // A trailing comma leaves an empty last element.
        vec![format!("Hash={client_hex},")],
        // Not a SHA-256 hex digest.
        vec!["Hash=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU".to_string()],
        vec![format!("Hash=\"{client_hex}")],
        vec![],
    ];
    for values in refused {
        assert_eq!(hash_of(&values), None, "{values:?}");
    }
}

fn payload(claims: Value) -> Claims {
    Claims::from_json(claims.to_string().into_bytes()).unwrap()
}

#[test]
fn binding_check_required_and_optional() {
    let required = CertificateBinding {
        source: CertificateSource::Connection,
        mode: BindingMode::Required,
    };
    let optional = CertificateBinding {
        mode: BindingMode::Optional,
        ..required
    };
    let bound = payload(json!({"sub": "a", "cnf": {"x5t#S256": EMPTY_SHA256_X5T}}));
    let other = Some("Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm8");
    for binding in [&required, &optional] {
        assert_eq!(
            check_binding(binding, &bound, Some(EMPTY_SHA256_X5T)),
            Ok(())
        );
        assert_eq!(
            check_binding(binding, &bound, other),
            Err(AuthError::ClientCertificateMismatch)
        );
        assert_eq!(
            check_binding(binding, &bound, None),
            Err(AuthError::ClientCertificateMissing)
        );
        // A padded thumbprint is not the RFC's unpadded base64url.
        let padded = payload(json!({"cnf": {"x5t#S256": format!("{EMPTY_SHA256_X5T}=")}}));
        assert_eq!(
            check_binding(binding, &padded, Some(EMPTY_SHA256_X5T)),
            Err(AuthError::ClientCertificateMismatch)
        );
        for malformed in [
            json!({"cnf": "x"}),
            json!({"cnf": [EMPTY_SHA256_X5T]}),
            json!({"cnf": {"x5t#S256": 1}}),
        ] {
            assert_eq!(
                check_binding(binding, &payload(malformed.clone()), Some(EMPTY_SHA256_X5T)),
                Err(AuthError::CertificateBindingMissing),
                "{malformed}"
            );
        }
    }
    for unbound in [
        json!({"sub": "a"}),
        json!({"cnf": {"jkt": "a DPoP key thumbprint"}}),
    ] {
        let unbound = payload(unbound);
        assert_eq!(
            check_binding(&required, &unbound, Some(EMPTY_SHA256_X5T)),
            Err(AuthError::CertificateBindingMissing)
        );
        assert_eq!(check_binding(&optional, &unbound, None), Ok(()));
    }
    assert_eq!(
        AuthError::ClientCertificateMismatch.message(),
        "Jwt payload [cnf.x5t#S256] does not match the client certificate"
    );
    for error in [
        AuthError::CertificateBindingMissing,
        AuthError::ClientCertificateMissing,
        AuthError::ClientCertificateMismatch,
    ] {
        assert_eq!(error.status(), 401, "{error:?}");
    }
}

#[test]
fn presented_certificate_comes_only_from_the_configured_source() {
    let (hex, x5t) = digest_and_thumbprint(b"cert");
    let headers = vec![(
        "x-forwarded-client-cert".to_string(),
        format!("Hash={hex}").into_bytes(),
    )];
    let headers = borrow_header_pairs(&headers);
    assert_eq!(
        presented_thumbprint(CertificateSource::Connection, Some(hex.as_bytes()), &[]),
        Some(x5t.clone())
    );
    // The connection source never reads the header, and the header source never the connection.
    assert_eq!(
        presented_thumbprint(CertificateSource::Connection, None, &headers),
        None
    );
    assert_eq!(
        presented_thumbprint(CertificateSource::Connection, Some(b""), &headers),
        None
    );
    assert_eq!(
        presented_thumbprint(
            CertificateSource::ForwardedClientCert,
            Some(hex.as_bytes()),
            &[]
        ),
        None
    );
    assert_eq!(
        presented_thumbprint(CertificateSource::ForwardedClientCert, None, &headers),
        Some(x5t)
    );
}

fn config_with(binding: Value) -> Result<FilterConfig, String> {
    let keys = Keys::load();
    let config = json!({
        "providers": {"mtls": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": keys.jwks().to_string()},
            "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
            "certificate_bound": binding
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "mtls"}}]
    });
    FilterConfig::parse(config.to_string().as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn configuration_defaults_and_refusals_name_the_field() {
    let config = config_with(json!({})).unwrap();
    assert_eq!(
        config.providers[0].certificate_bound,
        Some(CertificateBinding {
            source: CertificateSource::Connection,
            mode: BindingMode::Required
        })
    );
    assert!(config.uses_peer_certificate());
    let config =
        config_with(json!({"source": "x_forwarded_client_cert", "mode": "optional"})).unwrap();
    assert_eq!(
        config.providers[0].certificate_bound,
        Some(CertificateBinding {
            source: CertificateSource::ForwardedClientCert,
            mode: BindingMode::Optional
        })
    );
    assert!(
        !config.uses_peer_certificate(),
        "the header source never needs the connection's digest"
    );
    let refusals = [
        (
            json!({"source": "xfcc"}),
            "providers.mtls.certificate_bound.source: \"xfcc\" is neither \"connection\" nor \"x_forwarded_client_cert\"",
        ),
        (
            json!({"mode": "sometimes"}),
            "providers.mtls.certificate_bound.mode: \"sometimes\" is neither \"required\" nor \"optional\"",
        ),
    ];
    for (binding, expected) in refusals {
        assert_eq!(config_with(binding).unwrap_err(), expected);
    }
    let unknown = config_with(json!({"trusted_hops": 1})).unwrap_err();
    assert!(
        unknown.starts_with("providers.mtls.certificate_bound"),
        "{unknown}"
    );
    assert!(unknown.contains("trusted_hops"), "{unknown}");
    let no_option = FilterConfig::parse(
        json!({"providers": {"p": {"local_jwks": {"inline_string": Keys::load().jwks().to_string()}}}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert!(!no_option.uses_peer_certificate());
}

fn run(
    config: &FilterConfig,
    jwks: &Jwks,
    token: &str,
    digest: Option<&str>,
    extra: &[(&str, String)],
    caches: &mut TokenCaches,
) -> Verdict {
    let authorization = format!("Bearer {token}");
    let mut fields: Vec<(&str, &str)> = vec![("authorization", authorization.as_str())];
    fields.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    let headers = decide::request("/api", &fields);
    let started = start_on_connection(
        config,
        &borrow_header_pairs(&headers),
        None,
        digest.map(str::as_bytes),
        fixtures::now(),
        caches,
    );
    decide::decide(started, config, jwks, caches)
}

fn bound_token(thumbprint: &str) -> String {
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["cnf"] = json!({"x5t#S256": thumbprint});
    fixtures::mint(&Keys::load().rsa2048, "RS256", &claims)
}

fn denial(verdict: Verdict) -> (u32, String, String, &'static str) {
    match verdict {
        Verdict::Deny(reply) => (
            reply.status,
            reply.body,
            reply.www_authenticate.unwrap_or_default(),
            reply.reason,
        ),
        Verdict::Allow(mutations) => panic!("allowed: {mutations:?}"),
        Verdict::Answer(answer) => panic!("answered: {}", answer.body),
    }
}

#[test]
fn requests_pass_only_with_the_bound_certificate_even_from_the_cache() {
    let config = config_with(json!({"source": "connection"})).unwrap();
    let jwks = parse_jwks(Keys::load().jwks().to_string().as_bytes()).unwrap();
    let (bound_hex, bound_x5t) = digest_and_thumbprint(b"the bound client certificate");
    let (other_hex, _) = digest_and_thumbprint(b"another certificate of the same CA");
    let token = bound_token(&bound_x5t);
    let mut caches = TokenCaches::for_config(&config);
    let Verdict::Allow(mutations) = run(&config, &jwks, &token, Some(&bound_hex), &[], &mut caches)
    else {
        panic!("the bound certificate passes")
    };
    assert!(mutations
        .added()
        .contains(&("x-jwt-sub", fixtures::SUBJECT)));
    // The token is now cached: the cache skips the signature, never the binding.
    let realm = "Bearer realm=\"https://api.test/api\", error=\"invalid_token\"";
    let expected = [
        (
            Some(other_hex.as_str()),
            "Jwt payload [cnf.x5t#S256] does not match the client certificate",
            "client_certificate_mismatch",
        ),
        (
            None,
            "Jwt is bound to a client certificate but the request presented none",
            "client_certificate_missing",
        ),
        (
            Some(""),
            "Jwt is bound to a client certificate but the request presented none",
            "client_certificate_missing",
        ),
    ];
    for (digest, body, reason) in expected {
        assert_eq!(
            denial(run(&config, &jwks, &token, digest, &[], &mut caches)),
            (401, body.to_string(), realm.to_string(), reason),
            "{digest:?}"
        );
    }
    assert!(matches!(
        run(&config, &jwks, &token, Some(&bound_hex), &[], &mut caches),
        Verdict::Allow(_)
    ));
    // A token without cnf is refused however good the certificate is; so is a forged header when the
    // source is the connection.
    let unbound = fixtures::good_token();
    assert_eq!(
        denial(run(
            &config,
            &jwks,
            &unbound,
            Some(&bound_hex),
            &[],
            &mut TokenCaches::disabled()
        ))
        .1,
        "Jwt payload [cnf.x5t#S256] field is required and must be a string"
    );
    assert_eq!(
        denial(run(
            &config,
            &jwks,
            &token,
            None,
            &[("x-forwarded-client-cert", format!("Hash={bound_hex}"))],
            &mut TokenCaches::disabled()
        ))
        .3,
        "client_certificate_missing"
    );
}

#[test]
fn header_source_reads_the_last_xfcc_element() {
    let config = config_with(json!({"source": "x_forwarded_client_cert"})).unwrap();
    let jwks = parse_jwks(Keys::load().jwks().to_string().as_bytes()).unwrap();
    let (bound_hex, bound_x5t) = digest_and_thumbprint(b"bound");
    let (other_hex, _) = digest_and_thumbprint(b"other");
    let token = bound_token(&bound_x5t);
    let xfcc = |value: String| [("x-forwarded-client-cert", value)];
    let mut caches = TokenCaches::disabled();
    assert!(matches!(
        run(
            &config,
            &jwks,
            &token,
            None,
            &xfcc(format!(
                "By=spiffe://lb;Hash={bound_hex};Subject=\"CN=a,O=b\""
            )),
            &mut caches
        ),
        Verdict::Allow(_)
    ));
    // The connection's digest is not what this source reads.
    assert_eq!(
        denial(run(
            &config,
            &jwks,
            &token,
            Some(&bound_hex),
            &[],
            &mut caches
        ))
        .3,
        "client_certificate_missing"
    );
    // A client's own element in front of the one the proxy appended changes nothing.
    assert_eq!(
        denial(run(
            &config,
            &jwks,
            &token,
            None,
            &xfcc(format!("Hash={bound_hex},Hash={other_hex}")),
            &mut caches
        ))
        .3,
        "client_certificate_mismatch"
    );
}
