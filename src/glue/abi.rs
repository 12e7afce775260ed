//! Host calls made through the raw proxy-wasm ABI: where the SDK (0.2.5) would panic — and so trap the
//! VM — on a status it does not expect, and where its copies cost the hot path (the request's headers).
//!
//! On the statuses: Envoy answers `BadArgument` for a callout response's headers
//! when the callout failed at the connection level (no response, a response cut off, a body over
//! Envoy's buffer limit), and for filter state it cannot set. Here every status is an ordinary value.

use std::ptr::null_mut;

/// proxy-wasm ABI: `MapType::HttpRequestHeaders`.
const HTTP_REQUEST_HEADERS: u32 = 0;
/// proxy-wasm ABI: `MapType::HttpCallResponseHeaders`.
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
/// proxy-wasm ABI: `BufferType::HttpCallResponseBody`.
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
/// proxy-wasm ABI: `Status::Ok`.
const OK: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    #[cfg(feature = "phase-timing")]
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_header_map_pairs(map_type: u32, map_data: *const u8, map_size: usize) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// Takes ownership of bytes the host wrote into memory it allocated through the SDK's
/// `proxy_on_memory_allocate` (a `Vec<u8>` allocation), as the SDK itself does.
///
/// SAFETY: `data` must be null or the start of such an allocation of exactly `size` bytes.
unsafe fn host_bytes(status: u32, data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if status != OK || data.is_null() {
        return None;
    }
    Some(Vec::from_raw_parts(data, size, size))
}

/// The current request's headers in the host's serialized form, read by
/// [`crate::request::headers::parse_header_pairs`] without a copy per header (the SDK's reader makes a String and
/// a Vec of every name and value, which the hot path measurably pays for).
pub fn request_header_map() -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    // SAFETY: as for `call_response_header`.
    unsafe {
        let status = proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, &mut data, &mut size);
        host_bytes(status, data, size)
    }
}

/// Replaces the current request's headers with `map` (the serialized form
/// [`crate::request::headers::rewritten_header_map`] makes); false when the host refuses.
pub fn set_request_header_map(map: &[u8]) -> bool {
    // SAFETY: `map` is a live buffer of `map.len()` bytes the host only reads during the call.
    unsafe { proxy_set_header_map_pairs(HTTP_REQUEST_HEADERS, map.as_ptr(), map.len()) == OK }
}

/// The host clock in nanoseconds, for [`crate::glue::phase_timing`] only (the filter reads time through
/// the SDK).
#[cfg(feature = "phase-timing")]
pub fn clock_nanos() -> u64 {
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 into a live local.
    unsafe {
        proxy_get_current_time_nanoseconds(&mut nanos);
    }
    nanos
}

/// A header of the current callout response; `None` when absent or when there is no response.
pub fn call_response_header(name: &str) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    // SAFETY: the key slice is live for the call; the host fills `data`/`size` with a fresh
    // allocation (or leaves them null/0), which `host_bytes` takes over.
    unsafe {
        let status = proxy_get_header_map_value(
            HTTP_CALL_RESPONSE_HEADERS,
            name.as_ptr(),
            name.len(),
            &mut data,
            &mut size,
        );
        host_bytes(status, data, size)
    }
}

/// Up to `max_size` bytes of the current callout response's body; `None` when there is none.
pub fn call_response_body(max_size: usize) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    // SAFETY: as for `call_response_header`.
    unsafe {
        let status =
            proxy_get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, max_size, &mut data, &mut size);
        host_bytes(status, data, size)
    }
}

/// Sets Envoy filter state `wasm.<name>` on the current stream; failures are logged, never fatal.
pub fn set_filter_state(name: &str, value: &[u8]) {
    // SAFETY: both pointers come from live slices with their lengths; the host copies the bytes
    // before returning.
    let status =
        unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    if status != OK {
        log::warn!("jwt-authn-wasm: filter state wasm.{name} not set (status {status})");
    }
}

/// The name of the Envoy route the current request matched (`xds.route_name`); `None` when the route
/// has no name, the request matched no route, or the host has no such property.
pub fn route_name() -> Option<Vec<u8>> {
    property(b"xds\0route_name")
}

/// The SHA-256 of the downstream TLS peer certificate's DER, as lowercase hex
/// (`connection.sha256_peer_certificate_digest`): empty on a TLS connection without a client
/// certificate, `None` on a connection without TLS.
pub fn peer_certificate_digest() -> Option<Vec<u8>> {
    property(b"connection\0sha256_peer_certificate_digest")
}

/// A property of the current stream; `path` is its segments joined by NUL.
fn property(path: &[u8]) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    // SAFETY: as for `call_response_header`; the path is a live slice with its length.
    unsafe {
        let status = proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size);
        host_bytes(status, data, size)
    }
}
