//! Any bytes as a JWKS document: refused with a reason or parsed, never a panic.
#![no_main]

use jwt_authn_wasm::jwks::{parse_jwks_with_limits, JwksLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = JwksLimits {
        max_bytes: 64 * 1024,
        max_keys: 16,
    };
    if let Ok(jwks) = parse_jwks_with_limits(data, limits) {
        assert!(!jwks.keys.is_empty() && jwks.keys.len() <= 16);
    }
});
