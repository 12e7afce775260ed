//! The `jti` replay cache's layout in proxy-wasm shared data (one store per Envoy process, shared by its
//! workers): the cache is split into buckets of at most [`ENTRIES_PER_BUCKET`] entries, one shared-data
//! key each, so a check copies a bucket of about 1.5 KB and two workers collide only on the same bucket.
//! An entry is a 16-byte key and the Unix second after which it can go, 24 bytes; expired entries are
//! dropped on each write. The compare-and-swap loop that writes a bucket is the worker's
//! (`worker/dpop.rs`).

/// Bytes per entry: the 16-byte replay key, then `keep_until` as 8 big-endian bytes.
pub const ENTRY_BYTES: usize = 24;
/// Entries per bucket (the bucket count follows from the configured capacity).
pub const ENTRIES_PER_BUCKET: usize = 64;
/// Ceiling on the number of buckets (shared-data keys).
const MAX_BUCKETS: usize = 16_384;

/// The layout for a cache of `capacity` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLayout {
    pub buckets: usize,
    pub per_bucket: usize,
}

impl ReplayLayout {
    pub fn for_capacity(capacity: usize) -> ReplayLayout {
        let buckets = capacity.div_ceil(ENTRIES_PER_BUCKET).clamp(1, MAX_BUCKETS);
        ReplayLayout {
            buckets,
            per_bucket: capacity.div_ceil(buckets).max(1),
        }
    }

    /// The shared-data key of the bucket holding `replay_key`. The layout is part of the name, so two
    /// configurations of different sizes in one process do not read each other's buckets wrongly.
    pub fn bucket_key(&self, replay_key: &[u8; 16]) -> String {
        let mut index_bytes = [0u8; 8];
        index_bytes.copy_from_slice(replay_key.get(..8).unwrap_or(&[0; 8]));
        let index = u64::from_be_bytes(index_bytes) % (self.buckets as u64);
        format!(
            "jwt_authn_wasm.dpop.jti.{}x{}.{index}",
            self.buckets, self.per_bucket
        )
    }
}

/// What recording a key does to a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// The key was not there: write this bucket back.
    Updated(Vec<u8>),
    /// The key is there and not expired: a replay.
    Replayed,
    /// The bucket is full of live entries: refused rather than forget one (which would let it replay).
    Full,
}

/// Records `key` (kept until `keep_until`) in `bucket` at `now`, dropping expired entries.
pub fn insert(
    bucket: &[u8],
    key: &[u8; 16],
    keep_until: u64,
    now: u64,
    per_bucket: usize,
) -> Insert {
    let mut kept = Vec::with_capacity(bucket.len() + ENTRY_BYTES);
    let mut live = 0;
    for entry in bucket.chunks_exact(ENTRY_BYTES) {
        let (entry_key, until) = entry.split_at(16);
        let mut until_bytes = [0u8; 8];
        until_bytes.copy_from_slice(until);
        if u64::from_be_bytes(until_bytes) < now {
            continue;
        }
        if entry_key == key.as_slice() {
            return Insert::Replayed;
        }
        kept.extend_from_slice(entry);
        live += 1;
    }
    if live >= per_bucket {
        return Insert::Full;
    }
    kept.extend_from_slice(key);
    kept.extend_from_slice(&keep_until.to_be_bytes());
    Insert::Updated(kept)
}
