//! Any bytes as a DPoP proof, request method, request URI and access token: the proof parser and checker
//! never panic, and a proof they accept holds what the checks promise (method and URI match, iat in the
//! window, ath is the token's hash, the thumbprint is its jwk's). The URI normaliser is idempotent.
//! Input: proof, method, request URI and token, NUL-separated.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_authn_wasm::config::DpopConfig;
use jwt_authn_wasm::request::{check_proof, normalize_htu, ProofContext};
use jwt_authn_wasm::FilterConfig;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// The clock the seeds' proofs were minted for.
const NOW: u64 = 1_700_000_000;

/// The `dpop` settings the target checks under: every asymmetric algorithm the filter reads, the
/// default window. Parsed from a configuration, as the filter gets them.
fn dpop_config() -> &'static DpopConfig {
    static CONFIG: std::sync::OnceLock<DpopConfig> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        let json = r#"{"providers": {"p": {"issuer": "https://issuer.example.com",
            "local_jwks": {"inline_string": "{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}"},
            "dpop": {"allowed_algs": ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"]}}}}"#;
        let config = FilterConfig::parse(json.as_bytes()).expect("the fuzz configuration parses");
        config.providers[0].dpop.clone().expect("a dpop provider")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let proof = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let uri = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let token = parts.next().unwrap_or_default();
    let htu = normalize_htu(&uri);
    if let Some(normal) = &htu {
        assert_eq!(normalize_htu(normal).as_ref(), Some(normal), "normalising twice changes {uri:?}");
    }
    let config = dpop_config();
    let context = ProofContext {
        method,
        htu: htu.as_deref(),
        access_token: token,
        now: NOW,
    };
    if let Ok(checked) = check_proof(proof, config, &context) {
        assert!(checked.iat + 65 >= NOW && checked.iat <= NOW + 5, "iat out of the window");
        let payload_b64 = proof.split(|&b| b == b'.').nth(1).unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload_b64).unwrap()).unwrap();
        assert_eq!(payload["htm"].as_str().unwrap().as_bytes(), method);
        assert_eq!(normalize_htu(payload["htu"].as_str().unwrap()), htu);
        assert_eq!(
            payload["ath"].as_str().unwrap(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(token))
        );
        assert!(!checked.jkt.is_empty());
    }
});
