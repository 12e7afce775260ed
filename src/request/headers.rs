//! Request headers as the filter reads them: the host's serialized header map, borrowed pair by pair.

use smallvec::SmallVec;

/// The values of one header: almost always none or one, kept inline (no allocation per lookup).
pub type HeaderValues<'a> = SmallVec<[&'a [u8]; 2]>;

/// Read-only access to the request the filter sees.
pub trait RequestHeaders {
    /// Every value of the header `name` (lower case), in order, as raw bytes.
    fn values<'a>(&'a self, name: &str) -> HeaderValues<'a>;
}

/// A request header as the host hands it over: (name, raw value), both borrowed from the host's buffer.
/// Names are lower case (Envoy's codecs see to that); values may hold any bytes.
pub type HeaderPair<'a> = (&'a [u8], &'a [u8]);

impl RequestHeaders for [HeaderPair<'_>] {
    fn values<'a>(&'a self, name: &str) -> HeaderValues<'a> {
        self.iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, value)| value)
            .collect()
    }
}

/// A request's headers, read in place: up to [`INLINE_HEADERS`] of them need no allocation.
pub type HeaderPairs<'a> = SmallVec<[HeaderPair<'a>; INLINE_HEADERS]>;

/// How many headers [`HeaderPairs`] holds inline: a browser's request has 10 to 20 once Envoy has added
/// its own (`x-request-id`, `x-forwarded-proto`); 16 pairs take 256 bytes of stack in wasm32.
pub const INLINE_HEADERS: usize = 16;

/// Reads the host's serialized header map without copying a header: a little-endian u32 count, then a
/// (name length, value length) u32 pair per header, then each name and value followed by a NUL (the
/// proxy-wasm ABI's map format). `None` for a buffer that does not hold what its sizes announce.
pub fn parse_header_pairs(buffer: &[u8]) -> Option<HeaderPairs<'_>> {
    let read_u32 = |at: usize| -> Option<usize> {
        let bytes = buffer.get(at..at.checked_add(4)?)?;
        let word = u32::from_le_bytes([
            *bytes.first()?,
            *bytes.get(1)?,
            *bytes.get(2)?,
            *bytes.get(3)?,
        ]);
        usize::try_from(word).ok()
    };
    let count = read_u32(0)?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > buffer.len() {
        return None;
    }
    let mut pairs = HeaderPairs::with_capacity(count);
    let mut at = sizes_end;
    let mut take = |len: usize| -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        let bytes = buffer.get(at..end)?;
        at = end.checked_add(1)?;
        Some(bytes)
    };
    for index in 0..count {
        let sizes = index.checked_mul(8)?.checked_add(4)?;
        let name = take(read_u32(sizes)?)?;
        let value = take(read_u32(sizes.checked_add(4)?)?)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// Borrows owned (name, value) headers as [`HeaderPair`]s.
pub fn borrow_header_pairs(headers: &[(String, Vec<u8>)]) -> Vec<HeaderPair<'_>> {
    headers
        .iter()
        .map(|(name, value)| (name.as_bytes(), value.as_slice()))
        .collect()
}

/// Owned (name, raw value) pairs, as tests build them.
impl RequestHeaders for [(String, Vec<u8>)] {
    fn values<'a>(&'a self, name: &str) -> HeaderValues<'a> {
        self.iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
            .collect()
    }
}

/// Whether an allowed request's header changes are written in one host call that replaces the whole
/// map (`proxy_set_header_map_pairs`) rather than one call per change. Each call costs a VM exit and
/// Envoy's per-call work (about 1 µs); the whole-map call costs Envoy a removal and an insertion per
/// header the request has, so it pays only from a few changes on. Measured with `bench/run.sh scaling
/// claims`; see docs/performance.md.
pub fn rewrite_in_one_call(changes: usize) -> bool {
    changes >= ONE_CALL_FROM_CHANGES
}

/// The number of header changes from which [`rewrite_in_one_call`] replaces the whole map.
pub const ONE_CALL_FROM_CHANGES: usize = 3;

/// The request's headers after an allowed verdict's changes, in the proxy-wasm map format
/// ([`parse_header_pairs`] reads it back), for one call that replaces them all. The same result as the
/// calls one by one: every value of each `remove` name gone, `:path` replaced in place by `new_path`,
/// and each of `add` appended in order (after the existing headers, as an added header is).
pub fn rewritten_header_map(
    headers: &[HeaderPair<'_>],
    remove: &[impl AsRef<str>],
    add: &[(impl AsRef<str>, impl AsRef<str>)],
    new_path: Option<&[u8]>,
) -> Vec<u8> {
    let kept = headers
        .iter()
        .filter(|(name, _)| {
            !remove
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r.as_ref().as_bytes()))
        })
        .map(|&(name, value)| match new_path {
            Some(path) if name == b":path" => (name, path),
            _ => (name, value),
        });
    let added = add
        .iter()
        .map(|(name, value)| (name.as_ref().as_bytes(), value.as_ref().as_bytes()));
    let pairs: Vec<(&[u8], &[u8])> = kept.chain(added).collect();
    serialize_header_pairs(&pairs)
}

/// (name, value) pairs in the proxy-wasm map format: a little-endian u32 count, a (name length, value
/// length) u32 pair per header, then each name and value followed by a NUL.
pub fn serialize_header_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let bytes: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 10).sum();
    let mut out = Vec::with_capacity(4 + bytes);
    out.extend_from_slice(&as_u32(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&as_u32(name.len()));
        out.extend_from_slice(&as_u32(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}
