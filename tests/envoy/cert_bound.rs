//! Certificate-bound tokens (RFC 8705 §3) through a real Envoy: listeners with downstream mutual TLS
//! (client certificates from a CA the test makes), a real rustls client, and tokens minted here with the
//! `cnf.x5t#S256` of one client certificate. The bound certificate passes with the claims upstream;
//! another valid certificate of the same CA, no certificate, or a token without `cnf` are refused with
//! 401 `invalid_token` and a body saying why. The `x_forwarded_client_cert` source is shown end to end
//! on the listener settings that make the header trustworthy and on those that do not.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::envoy::free_port;
use common::fixtures::{self, provider_json, Keys, SUBJECT};
use common::mtls::{connection_manager, copy_listener, downstream_tls, https_request, MtlsCa};
use common::servers::{http_request, HttpResponse};
use common::Scenario;

const MISMATCH: &str = "Jwt payload [cnf.x5t#S256] does not match the client certificate";
const NO_CERTIFICATE: &str = "Jwt is bound to a client certificate but the request presented none";
const NOT_BOUND: &str = "Jwt payload [cnf.x5t#S256] field is required and must be a string";

/// Provider `conn` binds to the TLS connection (every path but /xfcc), provider `xfcc` to the
/// `x-forwarded-client-cert` header (/xfcc).
fn configuration(jwks_uri: &str) -> Value {
    let mut conn = provider_json(jwks_uri, "jwks");
    conn["certificate_bound"] = json!({"source": "connection"});
    let mut xfcc = provider_json(jwks_uri, "jwks");
    xfcc["certificate_bound"] = json!({"source": "x_forwarded_client_cert"});
    json!({
        "providers": {"conn": conn, "xfcc": xfcc},
        "rules": [
            {"match": {"prefix": "/xfcc"}, "requires": {"provider_name": "xfcc"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "conn"}}
        ]
    })
}

/// SHA-256 of a certificate's DER as Envoy writes it (lowercase hex) and as `x5t#S256`.
fn digests(der: &[u8]) -> (String, String) {
    let digest = Sha256::digest(der);
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    (hex, URL_SAFE_NO_PAD.encode(digest))
}

fn token_bound_to(thumbprint: Option<&str>) -> String {
    let mut claims = fixtures::good_claims(fixtures::now());
    if let Some(thumbprint) = thumbprint {
        claims["cnf"] = json!({"x5t#S256": thumbprint});
    }
    fixtures::mint(&Keys::load().rsa2048, "RS256", &claims)
}

#[track_caller]
fn assert_admitted(response: &HttpResponse) {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.upstream_headers()["x-jwt-sub"], json!([SUBJECT]));
}

#[track_caller]
fn assert_refused(response: &HttpResponse, body: &str) {
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.body, body);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"")
            && challenge.ends_with(", error=\"invalid_token\""),
        "{challenge}"
    );
}

#[test]
fn certificate_bound_tokens_through_envoy() {
    let ca = MtlsCa::new("jwt-authn-wasm test client CA");
    let server = ca.server();
    let bound = ca.client("bound-client");
    let other = ca.client("other-client");
    let (bound_hex, bound_x5t) = digests(&bound.cert_der);
    let (other_hex, _) = digests(&other.cert_der);
    let (optional_port, trusted_port, default_port, append_port) =
        (free_port(), free_port(), free_port(), free_port());
    let scenario = Scenario::start_edited(1, false, configuration, |bootstrap| {
        // Copies of the plain listener first; then TLS on those that terminate it.
        copy_listener(bootstrap, "wasm", "tls_optional", optional_port);
        let trusted = copy_listener(bootstrap, "wasm", "xfcc_trusted", trusted_port);
        connection_manager(trusted)["forward_client_cert_details"] = json!("ALWAYS_FORWARD_ONLY");
        copy_listener(bootstrap, "wasm", "xfcc_default", default_port);
        let append = copy_listener(bootstrap, "wasm", "xfcc_append", append_port);
        connection_manager(append)["forward_client_cert_details"] = json!("APPEND_FORWARD");
        downstream_tls(bootstrap, "wasm", &server, &ca, true);
        downstream_tls(bootstrap, "tls_optional", &server, &ca, false);
        downstream_tls(bootstrap, "xfcc_append", &server, &ca, true);
    });
    let envoy = &scenario.envoy;
    let token = token_bound_to(Some(&bound_x5t));
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let get = |port, path, client| {
        https_request(port, path, &ca, client, &auth).unwrap_or_else(|e| panic!("{path}: {e}"))
    };

    // Envoy terminates mutual TLS: the bound certificate passes (twice: the second time from the
    // verified-token cache), another certificate of the same CA does not.
    assert_admitted(&get(envoy.wasm_port, "/api", Some(&bound)));
    assert_admitted(&get(envoy.wasm_port, "/api", Some(&bound)));
    assert_refused(&get(envoy.wasm_port, "/api", Some(&other)), MISMATCH);
    let unbound = format!("Bearer {}", token_bound_to(None));
    let response = https_request(
        envoy.wasm_port,
        "/api",
        &ca,
        Some(&bound),
        &[("authorization", unbound.as_str())],
    )
    .unwrap();
    assert_refused(&response, NOT_BOUND);
    // Without a certificate, this listener's TLS refuses the client before any HTTP.
    assert!(
        https_request(envoy.wasm_port, "/api", &ca, None, &auth).is_err(),
        "require_client_certificate lets no client without a certificate in"
    );

    // A TLS listener that lets clients without a certificate in: the filter refuses their bound token.
    assert_refused(&get(optional_port, "/api", None), NO_CERTIFICATE);
    assert_admitted(&get(optional_port, "/api", Some(&bound)));
    // Plain HTTP has no peer certificate at all.
    assert_refused(
        &http_request(
            trusted_port,
            "/api",
            &[("authorization", bearer.as_bytes())],
        ),
        NO_CERTIFICATE,
    );

    // The header source. Behind a TLS-terminating proxy (played here by the test), Envoy's
    // ALWAYS_FORWARD_ONLY passes the proxy's header on, and the filter reads its Hash.
    let with_xfcc = |port, xfcc: String| {
        http_request(
            port,
            "/xfcc",
            &[
                ("authorization", bearer.as_bytes()),
                ("x-forwarded-client-cert", xfcc.as_bytes()),
            ],
        )
    };
    let subject = "Subject=\"CN=bound-client,O=Test, Inc.\"";
    assert_admitted(&with_xfcc(
        trusted_port,
        format!("By=spiffe://lb;Hash={bound_hex};{subject}"),
    ));
    assert_refused(
        &with_xfcc(trusted_port, format!("Hash={other_hex}")),
        MISMATCH,
    );
    // The element the last hop appended decides; an element in front of it does not.
    assert_refused(
        &with_xfcc(trusted_port, format!("Hash={bound_hex},Hash={other_hex}")),
        MISMATCH,
    );
    assert_refused(
        &http_request(
            trusted_port,
            "/xfcc",
            &[("authorization", bearer.as_bytes())],
        ),
        NO_CERTIFICATE,
    );
    // Envoy's default (SANITIZE) drops a header a client forged before any filter sees it.
    assert_refused(
        &with_xfcc(default_port, format!("Hash={bound_hex}")),
        NO_CERTIFICATE,
    );
    // APPEND_FORWARD on mutual TLS: Envoy appends the element of the certificate the client really
    // presented, so the client's own copy in front of it is of no use.
    let forged = format!("Hash={bound_hex}");
    let response = https_request(
        append_port,
        "/xfcc",
        &ca,
        Some(&other),
        &[
            ("authorization", bearer.as_str()),
            ("x-forwarded-client-cert", forged.as_str()),
        ],
    )
    .unwrap();
    assert_refused(&response, MISMATCH);
    // And the element Envoy writes itself carries the bound certificate's hash for the bound client.
    assert_admitted(&get(append_port, "/xfcc", Some(&bound)));
    // The connection source on that listener gives the same answer as the header.
    assert_admitted(&get(append_port, "/api", Some(&bound)));

    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.client_certificate_mismatch"),
        Some(4)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.client_certificate_missing"),
        Some(4)
    );
    assert_eq!(
        envoy.stat("jwt_authn_wasm.denied.jwt_certificate_binding_missing"),
        Some(1)
    );
    envoy.assert_no_panic();
}
