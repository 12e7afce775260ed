//! Any bytes as headers and path: token extraction, query parsing and stripping never panic, and
//! stripping a parameter never leaves it in the path. The same bytes read as a host header map never
//! panic either, and a map that parses holds as many headers as it announces, all inside the buffer.
#![no_main]

use jwt_authn_wasm::config::TokenLocations;
use jwt_authn_wasm::request::{extract_tokens, path_without_param, TokenSource};
use jwt_authn_wasm::request::parse_header_pairs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(pairs) = parse_header_pairs(data) {
        let count = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        assert_eq!(pairs.len(), count);
        let announced: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
        assert!(
            4 + 8 * count + announced <= data.len() + 1,
            "a pair read past the buffer"
        );
    }
    let mut parts = data.splitn(3, |&b| b == 0);
    let path = parts.next().unwrap_or_default();
    let auth = parts.next().unwrap_or_default();
    let other = parts.next().unwrap_or_default();
    let headers = vec![
        ("authorization".to_string(), auth.to_vec()),
        ("Authorization".to_string(), other.to_vec()),
    ];
    let locations = TokenLocations::jwt_authn_default();
    for token in extract_tokens(&locations, headers.as_slice(), path) {
        if let TokenSource::Param(name) = token.source {
            let stripped = path_without_param(path, &name);
            let query = stripped
                .splitn(2, |&b| b == b'?')
                .nth(1)
                .unwrap_or_default();
            assert!(
                !query
                    .split(|&b| b == b'&')
                    .any(|pair| pair == name.as_bytes()
                        || pair.starts_with(format!("{name}=").as_bytes())),
                "parameter left in the path"
            );
        }
    }
});
