//! Any bytes as a DPoP proof, request method, request URI and access token: the proof parser and checker
//! never panic, and a proof they accept holds what the checks promise (method and URI match, iat in the
//! window, ath is the token's hash, the thumbprint is its jwk's). The URI normaliser is idempotent.
//! Input: proof, method, request URI and token, NUL-separated.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_authn_wasm::config::dpop::{DpopConfig, DpopMode};
use jwt_authn_wasm::crypto::algorithm::JwsAlgorithm;
use jwt_authn_wasm::request::dpop::htu::normalize_htu;
use jwt_authn_wasm::request::dpop::proof::{check_proof, ProofContext};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// The clock the seeds' proofs were minted for.
const NOW: u64 = 1_700_000_000;

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
    let config = DpopConfig {
        mode: DpopMode::Required,
        max_proof_age_seconds: 60,
        clock_skew_seconds: 5,
        allowed_algs: vec![
            JwsAlgorithm::Es256,
            JwsAlgorithm::Es384,
            JwsAlgorithm::Es512,
            JwsAlgorithm::EdDsa,
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Ps256,
        ],
        algs_text: String::new(),
        nonce_lifetime_seconds: None,
        replay_cache_size: 100,
    };
    let context = ProofContext {
        method,
        htu: htu.as_deref(),
        access_token: token,
        now: NOW,
    };
    if let Ok(checked) = check_proof(proof, &config, &context) {
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
