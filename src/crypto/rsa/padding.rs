//! The signature schemes over RSAVP1: RSASSA-PKCS1-v1_5 and RSASSA-PSS with MGF1 (RFC 8017), with the
//! hashes JWS uses.

use sha2::digest::{Digest, FixedOutputReset};
use sha2::{Sha256, Sha384, Sha512};

use crate::crypto::rsa::prepared_key::PreparedRsaKey;

/// Which padding and hash a JWS RSA algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_DIGEST_INFO: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_DIGEST_INFO: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

impl RsaHash {
    pub(super) fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            RsaHash::Sha256 => Sha256::digest(message).to_vec(),
            RsaHash::Sha384 => Sha384::digest(message).to_vec(),
            RsaHash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    fn digest_info(self) -> &'static [u8] {
        match self {
            RsaHash::Sha256 => SHA256_DIGEST_INFO,
            RsaHash::Sha384 => SHA384_DIGEST_INFO,
            RsaHash::Sha512 => SHA512_DIGEST_INFO,
        }
    }

    fn mgf1_xor(self, seed: &[u8], out: &mut [u8]) {
        match self {
            RsaHash::Sha256 => mgf1_xor::<Sha256>(seed, out),
            RsaHash::Sha384 => mgf1_xor::<Sha384>(seed, out),
            RsaHash::Sha512 => mgf1_xor::<Sha512>(seed, out),
        }
    }
}

/// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of `message`.
pub fn verify_pkcs1v15(
    key: &PreparedRsaKey,
    hash: RsaHash,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Some(em) = key.public_op(signature) else {
        return false;
    };
    let digest_info = hash.digest_info();
    let digest = hash.digest(message);
    let t_len = digest_info.len() + digest.len();
    let k = key.modulus_bytes();
    if k < t_len + 11 {
        return false;
    }
    // EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || DigestInfo || H, compared as a whole (in
    // place: each part against its span of EM).
    if em.len() != k {
        return false;
    }
    let (head, tail) = em.split_at(k - t_len);
    let (info, hash) = tail.split_at(digest_info.len());
    head.first() == Some(&0x00)
        && head.get(1) == Some(&0x01)
        && head.last() == Some(&0x00)
        && head
            .get(2..head.len() - 1)
            .is_some_and(|padding| padding.iter().all(|&b| b == 0xff))
        && info == digest_info
        && hash == digest.as_slice()
}

/// RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS §9.1.2) with MGF1 over the same hash and a salt of
/// `salt_len` bytes (JWS uses the hash length, RFC 7518 §3.5).
pub fn verify_pss(
    key: &PreparedRsaKey,
    hash: RsaHash,
    message: &[u8],
    signature: &[u8],
    salt_len: usize,
) -> bool {
    let Some(em_full) = key.public_op(signature) else {
        return false;
    };
    let em_bits = key.modulus_bits().saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    // RSAVP1 gives k bytes; EM is its last emLen bytes, and any byte before must be zero.
    let Some(split) = em_full.len().checked_sub(em_len) else {
        return false;
    };
    let (leading, em) = em_full.split_at(split);
    if leading.iter().any(|&b| b != 0) {
        return false;
    }
    let m_hash = hash.digest(message);
    let h_len = m_hash.len();
    if em_len < h_len + salt_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let Some(h) = rest.get(..h_len) else {
        return false;
    };
    let unused_bits = 8 * em_len - em_bits;
    let top_mask: u8 = if unused_bits == 0 {
        0
    } else {
        0xff << (8 - unused_bits)
    };
    if masked_db.first().is_some_and(|&b| b & top_mask != 0) {
        return false;
    }
    let mut db = masked_db.to_vec();
    hash.mgf1_xor(h, &mut db);
    if let Some(first) = db.first_mut() {
        *first &= !top_mask;
    }
    let padding_len = db_len - salt_len - 1;
    let (padding, marker_and_salt) = db.split_at(padding_len);
    if padding.iter().any(|&b| b != 0) || marker_and_salt.first() != Some(&0x01) {
        return false;
    }
    let salt = marker_and_salt.get(1..).unwrap_or_default();
    let mut m_prime = Vec::with_capacity(8 + h_len + salt_len);
    m_prime.extend_from_slice(&[0u8; 8]);
    m_prime.extend_from_slice(&m_hash);
    m_prime.extend_from_slice(salt);
    hash.digest(&m_prime) == h
}

fn mgf1_xor<D: Digest + FixedOutputReset>(seed: &[u8], out: &mut [u8]) {
    let mut digest = D::new();
    for (counter, chunk) in out.chunks_mut(<D as Digest>::output_size()).enumerate() {
        Digest::update(&mut digest, seed);
        Digest::update(&mut digest, (counter as u32).to_be_bytes());
        let mask = digest.finalize_reset();
        for (byte, m) in chunk.iter_mut().zip(mask.iter()) {
            *byte ^= m;
        }
    }
}
