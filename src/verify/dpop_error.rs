//! Why a DPoP-bound request (RFC 9449) was refused: one reason per check, each with the body text, the
//! metric name and the RFC 9449 / RFC 6750 error code its `WWW-Authenticate: DPoP` challenge carries.

/// A DPoP refusal. The proof checks are RFC 9449 §4.3's, in its order; the binding checks are §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopError {
    /// `Authorization: DPoP` without a `DPoP` header.
    ProofMissing,
    /// More than one `DPoP` header (or one holding several values).
    ProofMultiple,
    /// Not a compact JWS of JSON objects, or too large.
    ProofMalformed,
    /// Header `typ` is not `dpop+jwt`.
    ProofType,
    /// Header `alg` is not an asymmetric algorithm the provider allows (`none` and HMAC included).
    ProofAlgorithm,
    /// Header `jwk` missing, not a public key this filter reads, not matching `alg`, or with private parts.
    ProofKey,
    /// `crit` in the header: extensions this filter does not implement.
    ProofCritical,
    /// The signature does not check with the header's `jwk`.
    ProofSignature,
    /// `jti`, `htm`, `htu` or `iat` missing or of the wrong type.
    ProofClaims,
    /// `htm` is not the request's method.
    ProofMethod,
    /// `htu` is not the request's URI (without query and fragment, RFC 3986 §6 normalised).
    ProofUri,
    /// `iat` outside the window (`max_proof_age`, `clock_skew`).
    ProofTime,
    /// `ath` missing or not base64url(SHA-256(access token)).
    ProofAccessTokenHash,
    /// The `jti` was seen before within the window.
    ProofReplayed,
    /// The replay cache could not record the `jti` (full, or the host refused): refused rather than risk a
    /// replay.
    ReplayCacheUnavailable,
    /// The provider wants a server nonce and the proof has none, or one this filter did not issue
    /// recently (§8): the reply carries a fresh `DPoP-Nonce`.
    NonceRequired,
    /// The token's `cnf.jkt` is not the proof key's RFC 7638 thumbprint.
    KeyBinding,
    /// `Authorization: DPoP` with a token that has no `cnf.jkt`.
    TokenNotBound,
    /// A token with `cnf.jkt` sent as `Bearer` (a downgrade, §7.2).
    BoundTokenAsBearer,
    /// `mode: required` and the token came without the DPoP scheme.
    SchemeRequired,
}

impl DpopError {
    /// The body text.
    pub fn message(self) -> &'static str {
        match self {
            DpopError::ProofMissing => "DPoP proof is missing",
            DpopError::ProofMultiple => "DPoP proof must be exactly one DPoP header",
            DpopError::ProofMalformed => "DPoP proof is not a well-formed JWT",
            DpopError::ProofType => "DPoP proof [typ] must be dpop+jwt",
            DpopError::ProofAlgorithm => "DPoP proof [alg] is not an allowed asymmetric algorithm",
            DpopError::ProofKey => "DPoP proof [jwk] is not a usable public key",
            DpopError::ProofCritical => "DPoP proof [crit] is not supported",
            DpopError::ProofSignature => "DPoP proof signature does not verify with its [jwk]",
            DpopError::ProofClaims => {
                "DPoP proof needs string [jti], [htm], [htu] and integer [iat]"
            }
            DpopError::ProofMethod => "DPoP proof [htm] does not match the request method",
            DpopError::ProofUri => "DPoP proof [htu] does not match the request URI",
            DpopError::ProofTime => "DPoP proof [iat] is outside the accepted window",
            DpopError::ProofAccessTokenHash => "DPoP proof [ath] does not match the access token",
            DpopError::ProofReplayed => "DPoP proof [jti] was already used",
            DpopError::ReplayCacheUnavailable => "DPoP proof could not be checked for replay",
            DpopError::NonceRequired => "DPoP proof must carry a nonce from the DPoP-Nonce header",
            DpopError::KeyBinding => "DPoP proof key does not match the token's [cnf.jkt]",
            DpopError::TokenNotBound => "Jwt has no [cnf.jkt] for the DPoP scheme",
            DpopError::BoundTokenAsBearer => "DPoP-bound Jwt must use the DPoP scheme",
            DpopError::SchemeRequired => "Jwt must use the DPoP scheme",
        }
    }

    /// The metric name (`jwt_authn_wasm.denied.<reason>`).
    pub fn reason(self) -> &'static str {
        match self {
            DpopError::ProofMissing => "dpop_proof_missing",
            DpopError::ProofReplayed => "dpop_proof_replayed",
            DpopError::ReplayCacheUnavailable => "dpop_replay_cache_unavailable",
            DpopError::NonceRequired => "dpop_nonce_required",
            DpopError::KeyBinding => "dpop_key_binding",
            DpopError::TokenNotBound => "dpop_token_not_bound",
            DpopError::BoundTokenAsBearer => "dpop_downgrade",
            DpopError::SchemeRequired => "dpop_required",
            _ => "dpop_proof_invalid",
        }
    }

    /// The `error` of the `WWW-Authenticate: DPoP` challenge: `use_dpop_nonce` (§8),
    /// `invalid_dpop_proof` (§7.1) for the proof, `invalid_token` (RFC 6750) for the token's binding.
    pub fn challenge_error(self) -> &'static str {
        match self {
            DpopError::NonceRequired => "use_dpop_nonce",
            DpopError::KeyBinding
            | DpopError::TokenNotBound
            | DpopError::BoundTokenAsBearer
            | DpopError::SchemeRequired => "invalid_token",
            _ => "invalid_dpop_proof",
        }
    }
}
