//! One worker's parsed copy of a provider's keys.

use std::rc::Rc;

use crate::jwks::key_set::Jwks;

/// One worker's parsed copy of a provider's current keys.
#[derive(Debug, Clone, Default)]
pub struct WorkerKeys {
    /// The shared version these keys were parsed from (0: none yet).
    pub version: u64,
    pub jwks: Option<Rc<Jwks>>,
    /// Until when these keys may be used (ms since the epoch); local keys never run out.
    pub usable_until_ms: u64,
}

impl WorkerKeys {
    /// The keys, unless they are staler than the policy allows at `now_ms`.
    pub fn usable(&self, now_ms: u64) -> Option<&Rc<Jwks>> {
        self.jwks.as_ref().filter(|_| now_ms < self.usable_until_ms)
    }
}
