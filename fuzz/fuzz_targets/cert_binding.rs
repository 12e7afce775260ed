//! Any bytes as an `x-forwarded-client-cert` value and as Envoy's hex digest: parsing never panics, a
//! thumbprint is always 32 bytes in unpadded base64url whatever the case of the hex digits, and the hash the filter takes is the one `Hash` of the
//! header's last element.
#![no_main]

use jwt_authn_wasm::request::{thumbprint_from_hex, xfcc_elements, xfcc_hash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (xfcc, hex) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    if let Some(thumbprint) = thumbprint_from_hex(hex) {
        assert_eq!(thumbprint.len(), 43, "32 bytes, unpadded");
        assert!(thumbprint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        for case in [hex.to_ascii_lowercase(), hex.to_ascii_uppercase()] {
            assert_eq!(
                thumbprint_from_hex(&case).as_deref(),
                Some(thumbprint.as_str())
            );
        }
    }
    let elements = xfcc_elements(xfcc);
    let headers = [(&b"x-forwarded-client-cert"[..], xfcc)];
    if let Some(thumbprint) = xfcc_hash(&headers) {
        let last = elements
            .as_ref()
            .and_then(|e| e.last())
            .expect("a last element");
        let hashes: Vec<_> = last
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(b"hash"))
            .collect();
        assert_eq!(hashes.len(), 1);
        assert_eq!(
            thumbprint_from_hex(hashes[0].1.trim_ascii()),
            Some(thumbprint)
        );
    }
});
