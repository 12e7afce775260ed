//! P-521 keys for ES512.

/// A P-521 public key, checked to be on the curve. A newtype because p521's `VerifyingKey` has neither
/// `PartialEq` nor `Debug`, which key sets need to tell a changed key from the same one.
#[derive(Clone)]
pub struct P521Key(pub(super) p521::ecdsa::VerifyingKey);

impl PartialEq for P521Key {
    fn eq(&self, other: &P521Key) -> bool {
        self.0.to_encoded_point(false) == other.0.to_encoded_point(false)
    }
}

impl std::fmt::Debug for P521Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P521Key")
    }
}
