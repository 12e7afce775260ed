//! Stateless server nonces (RFC 9449 §8): a nonce is `<slot>.<mac>`, the slot a count of `lifetime`
//! periods since the epoch and the mac HMAC-SHA256 over it with a per-process secret (kept in shared
//! data, so every worker issues and accepts the same nonces). A nonce is accepted in its own slot and the
//! next, so for one to two lifetimes; nothing is stored per nonce.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmSignature};

/// HMAC-SHA256's output length.
const MAC_BYTES: usize = 32;

/// What the mac covers besides the slot, so the secret signs nothing else by accident.
const CONTEXT: &[u8] = b"jwt-authn-wasm dpop nonce ";

fn mac(secret: &[u8], slot: u64) -> Vec<u8> {
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(&slot.to_be_bytes());
    Hs256
        .sign(&Hs256Key::new(secret), &message)
        .as_bytes()
        .to_vec()
}

/// The nonce to hand out at `now` (Unix seconds).
pub fn issue_nonce(secret: &[u8], lifetime_seconds: u64, now: u64) -> String {
    let slot = now / lifetime_seconds.max(1);
    format!("{slot}.{}", URL_SAFE_NO_PAD.encode(mac(secret, slot)))
}

/// How old an accepted nonce is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedNonce {
    /// Issued in the current slot.
    Current,
    /// Issued in the slot before: accepted until the next slot begins, so the response may carry the
    /// current slot's nonce for the client to move to (§8.2) before its own goes stale.
    Previous,
}

/// Whether `nonce` was issued with `secret` in the current slot or the one before, and in which.
pub fn accepted_nonce(
    secret: &[u8],
    lifetime_seconds: u64,
    now: u64,
    nonce: &str,
) -> Option<AcceptedNonce> {
    let current = now / lifetime_seconds.max(1);
    let (slot_text, mac_text) = nonce.split_once('.')?;
    let slot = slot_text.parse::<u64>().ok()?;
    let age = if slot == current {
        AcceptedNonce::Current
    } else if slot.checked_add(1) == Some(current) {
        AcceptedNonce::Previous
    } else {
        return None;
    };
    let presented = URL_SAFE_NO_PAD.decode(mac_text).ok()?;
    // jwt-compact's HMAC signature type panics on a slice of another length.
    if presented.len() != MAC_BYTES {
        return None;
    }
    let signature = <Hs256 as Algorithm>::Signature::try_from_slice(&presented).ok()?;
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(&slot.to_be_bytes());
    // jwt-compact compares the macs in constant time.
    Hs256
        .verify_signature(&signature, &Hs256Key::new(secret), &message)
        .then_some(age)
}
