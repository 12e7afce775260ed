//! Any bytes as the plugin configuration: refused with the field named, or compiled; never a panic.
#![no_main]

use jwt_authn_wasm::config::FilterConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = FilterConfig::parse(data) {
        assert!(!error.to_string().is_empty());
    }
});
