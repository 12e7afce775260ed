//! The JWS algorithms (RFC 7518, EdDSA from RFC 8037) this filter verifies, and what every
//! verify-only jwt-compact algorithm here shares.

/// The JWS algorithms this filter verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

impl JwsAlgorithm {
    /// Every algorithm, in the order they are listed in RFC 7518 (EdDSA from RFC 8037 last).
    pub const ALL: [JwsAlgorithm; 12] = [
        JwsAlgorithm::Hs256,
        JwsAlgorithm::Hs384,
        JwsAlgorithm::Hs512,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Rs384,
        JwsAlgorithm::Rs512,
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Ps384,
        JwsAlgorithm::Ps512,
        JwsAlgorithm::EdDsa,
    ];

    /// The algorithm with this exact JWS name (names are case-sensitive, RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<JwsAlgorithm> {
        JwsAlgorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
            JwsAlgorithm::Hs256 => "HS256",
            JwsAlgorithm::Hs384 => "HS384",
            JwsAlgorithm::Hs512 => "HS512",
        }
    }
}

/// This filter only verifies; there is no signing key, so signing cannot even be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSigningKey {}

/// Defines a verify-only jwt-compact algorithm: the unit type, its signature type (parsed from exactly
/// `$length` bytes by `$parse`, refusing what `$parse` refuses) and the check `$verify(key, message,
/// signature)`.
macro_rules! verify_only_algorithm {
    ($(#[$doc:meta])* $alg:ident, $name:literal, $sig:ident($inner:ty), $length:literal,
     $parse:path, $refusal:literal, $key:ty, $verify:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $alg;

        #[doc = concat!("A ", $name, " signature that parsed (", $refusal, " otherwise).")]
        #[derive(Debug, Clone)]
        pub struct $sig($inner);

        impl jwt_compact::AlgorithmSignature for $sig {
            const LENGTH: Option<std::num::NonZeroUsize> = std::num::NonZeroUsize::new($length);

            fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
                $parse(slice).map($sig).map_err(|_| anyhow::anyhow!($refusal))
            }

            fn as_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
                std::borrow::Cow::Owned(self.0.to_bytes().to_vec())
            }
        }

        impl jwt_compact::Algorithm for $alg {
            type SigningKey = $crate::crypto::algorithm::NoSigningKey;
            type VerifyingKey = $key;
            type Signature = $sig;

            fn name(&self) -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }

            fn sign(&self, signing_key: &$crate::crypto::algorithm::NoSigningKey, _message: &[u8]) -> $sig {
                match *signing_key {}
            }

            fn verify_signature(&self, signature: &$sig, key: &$key, message: &[u8]) -> bool {
                let verify: fn(&$key, &[u8], &$inner) -> bool = $verify;
                verify(key, message, &signature.0)
            }
        }
    };
}

pub(crate) use verify_only_algorithm;
