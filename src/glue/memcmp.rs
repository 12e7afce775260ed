//! The module's `memcmp`, in place of wasi-libc's. Not a host call: the C library function every byte
//! comparison in the module links to.

/// wasi-libc's `memcmp` (musl's) compares one byte per iteration, and the hot path compares whole
/// tokens (a verified-token cache hit checks all of its ~1 KB key) and header names with it. This one
/// compares eight bytes at a time (wasm loads need no alignment) and is what every `memcmp` (Rust's
/// byte-slice equality and ordering included) links to in the module.
///
/// SAFETY: as C's `memcmp`: `left` and `right` must each be valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(left: *const u8, right: *const u8, len: usize) -> i32 {
    let mut at = 0usize;
    while at + 8 <= len {
        let a = left.add(at).cast::<u64>().read_unaligned();
        let b = right.add(at).cast::<u64>().read_unaligned();
        if a != b {
            break;
        }
        at += 8;
    }
    while at < len {
        let (a, b) = (*left.add(at), *right.add(at));
        if a != b {
            return i32::from(a) - i32::from(b);
        }
        at += 1;
    }
    0
}
