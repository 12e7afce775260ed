//! A proxy-wasm HTTP filter on the raw ABI (0.2.1) that makes only the host calls a cached-token request
//! needs: read the request headers, read the clock, remove `authorization`, add `x-jwt-sub`. It checks
//! no token. Only `proxy_on_request_headers` is exported among the stream callbacks, so Envoy enters the
//! VM once per request (no `proxy_on_context_create`, no `proxy_on_delete`).
//!
//! With the feature `stream-contexts` it also exports `proxy_on_context_create` and `proxy_on_delete`
//! and keeps the least per-stream record a real filter keeps: which root context (configuration) the
//! stream belongs to, looked up in the header callback. Envoy enters the VM three times per request then.
//! A filter needs both callbacks as soon as it must tell two configurations sharing one VM apart (only
//! `proxy_on_context_create` names a stream's root) or be reconfigured without leaking (Envoy deletes a
//! replaced configuration's root context through `proxy_on_delete`, and once that is exported Envoy calls
//! it for every stream as well). `bench/run.sh` measures this build as `wasm_ceiling_streams`.

use std::ptr::null_mut;

/// proxy-wasm ABI: `MapType::HttpRequestHeaders`.
const HTTP_REQUEST_HEADERS: u32 = 0;
/// proxy-wasm ABI: `Action::Continue`.
const CONTINUE: u32 = 0;
/// proxy-wasm ABI: `Status::Ok`.
const OK: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Where the host writes the header map it returns; taken back as a `Vec` below.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _configuration_size: usize) -> bool {
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root_context_id: u32, _configuration_size: usize) -> bool {
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    _num_headers: usize,
    _end_of_stream: bool,
) -> u32 {
    #[cfg(feature = "stream-contexts")]
    std::hint::black_box(streams::root_of(_context_id));
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    let mut now = 0u64;
    let removed = b"authorization";
    let (name, value) = (b"x-jwt-sub", b"bench-user");
    // SAFETY: every pointer comes from a live local or slice with its length; the header map is an
    // allocation made by `proxy_on_memory_allocate` of exactly `size` bytes, taken back once.
    unsafe {
        if proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, &mut data, &mut size) == OK
            && !data.is_null()
        {
            std::hint::black_box(Vec::from_raw_parts(data, size, size));
        }
        proxy_get_current_time_nanoseconds(&mut now);
        std::hint::black_box(now);
        proxy_remove_header_map_value(HTTP_REQUEST_HEADERS, removed.as_ptr(), removed.len());
        proxy_add_header_map_value(
            HTTP_REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        );
    }
    CONTINUE
}

/// The per-stream record of the `stream-contexts` build: stream context id to root context id.
#[cfg(feature = "stream-contexts")]
mod streams {
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        static ROOT_OF_STREAM: RefCell<HashMap<u32, u32>> = RefCell::new(HashMap::new());
    }

    pub fn root_of(context_id: u32) -> Option<u32> {
        ROOT_OF_STREAM.with(|map| map.borrow().get(&context_id).copied())
    }

    #[no_mangle]
    pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
        if root_context_id != 0 {
            ROOT_OF_STREAM.with(|map| map.borrow_mut().insert(context_id, root_context_id));
        }
    }

    #[no_mangle]
    pub extern "C" fn proxy_on_delete(context_id: u32) {
        ROOT_OF_STREAM.with(|map| map.borrow_mut().remove(&context_id));
    }
}
