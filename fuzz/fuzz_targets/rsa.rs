//! The fast RSA verifier on arbitrary moduli, exponents, messages and signatures: never a panic, and a
//! random signature for the fixture key never verifies.
#![no_main]

use jwt_authn_wasm::crypto::{verify_pkcs1v15, verify_pss, PreparedRsaKey, RsaHash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = rest.len() / 2;
    let (modulus, signature) = rest.split_at(split);
    let exponent = 65537 + 2 * u32::from(selector);
    let Some(key) = PreparedRsaKey::new(modulus, exponent) else {
        return;
    };
    let hash = match selector % 3 {
        0 => RsaHash::Sha256,
        1 => RsaHash::Sha384,
        _ => RsaHash::Sha512,
    };
    let _ = verify_pkcs1v15(&key, hash, b"message", signature);
    let _ = verify_pss(
        &key,
        hash,
        b"message",
        signature,
        usize::from(selector % 70),
    );
    let _ = key.public_op(signature);
});
