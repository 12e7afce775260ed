//! Token verification, in jwt_authn's order: parse, issuer, time, audience, then key choice and signature.
//!
//! The types carry the trust level: an [`ExtractedToken`](crate::request::extract::ExtractedToken) is raw bytes,
//! a [`CheckedToken`] has parsed and passed the claim checks but is not yet signed off, and only
//! [`CheckedToken::verify_signature`] makes a [`VerifiedToken`]. The algorithm used for the signature is the
//! one the key allows, never just what the token says.

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use smallvec::SmallVec;

use crate::config::token_type::normalize_media_type;
use crate::config::{normalize_audience, IssuerMatch, Lifetime, Provider};
use crate::crypto::algorithm::JwsAlgorithm;
use crate::crypto::key::KeyMaterial;
use crate::jwks::key_set::Jwks;
use crate::verify::claims::Claims;
use crate::verify::error::AuthError;
use crate::verify::token_json::{check_header_types, decode_claims, HeaderFields};

/// Tokens longer than this are refused before any parsing: no real issuer mints them, and the cap bounds
/// the work one request can cause.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// An Ed25519 signature's length (RFC 8032 5.1.6: R and S, 32 bytes each).
const ED25519_SIGNATURE_BYTES: usize = 64;

/// Every `alg` jwt_authn knows. A name outside this list is refused as not implemented; a name inside it
/// that this filter cannot verify finds no key.
const KNOWN_ALGORITHMS: [&str; 13] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256",
    "HS384", "HS512", "EdDSA",
];

/// A token that parsed and passed the provider's claim checks; its signature is not checked yet.
/// A clone shares the one parse: a token judged by several providers, or kept while a request waits
/// for keys, is not copied.
#[derive(Debug, Clone)]
pub struct CheckedToken(Rc<TokenParts>);

/// What one parse of a token gives.
#[derive(Debug)]
struct TokenParts {
    /// The token as received (valid UTF-8), the one copy kept, shared with the request's token and the
    /// verified-token cache's key: `header.payload`, what the signature covers, is its start up to
    /// `payload_end`, and the payload segment runs from `payload_start` to there.
    text: Rc<[u8]>,
    payload_start: usize,
    payload_end: usize,
    /// The header's `alg`, one of the algorithms jwt_authn knows.
    alg: JwsAlgorithm,
    kid: Option<String>,
    /// Inline up to RSA-4096's 512 bytes: the parse makes no allocation of its own for it.
    signature: SmallVec<[u8; MAX_INLINE_SIGNATURE_BYTES]>,
    payload: Rc<Claims>,
    /// The header's `typ`, if it is a string.
    typ: Option<String>,
}

/// The longest signature kept inline: RSA-4096's.
const MAX_INLINE_SIGNATURE_BYTES: usize = 512;

/// A token whose signature checked against a key of the provider's JWKS. Only
/// [`CheckedToken::verify_signature`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The decoded payload (the claims), shared with the checked token it came from.
    payload: Rc<Claims>,
    /// The token, shared with the checked token, and where its payload segment is (base64url, for
    /// forward_payload_header).
    text: Rc<[u8]>,
    payload_start: usize,
    payload_end: usize,
}

/// Parses `raw` and checks it against `provider` at `now` (Unix seconds), in jwt_authn's order: issuer,
/// nbf and exp with clock skew, the provider's audiences, subjects, lifetime. Everything that can be
/// refused without keys is refused here.
pub fn check_token(raw: &[u8], provider: &Provider, now: u64) -> Result<CheckedToken, AuthError> {
    check_token_for_audiences(raw, provider, &provider.audiences, now)
}

/// [`check_token`] with other audiences (normalised) than the provider's: a requirement's
/// `provider_and_audiences`.
pub fn check_token_for_audiences(
    raw: &[u8],
    provider: &Provider,
    audiences: &[String],
    now: u64,
) -> Result<CheckedToken, AuthError> {
    let token = parse_token(Rc::from(raw))?;
    check_claims(
        &token.0.payload,
        token.0.typ.as_deref(),
        provider,
        audiences,
        now,
    )?;
    Ok(token)
}

/// A token parsed once, before any provider's claim checks: a request reads each of its tokens once,
/// however many providers may judge it. Only [`ParsedToken::check_for_audiences`] makes a
/// [`CheckedToken`] of it.
#[derive(Debug, Clone)]
pub struct ParsedToken(CheckedToken);

/// Parses `raw` (segments, header, payload and claim types), as the first step of [`check_token`]. The
/// parse keeps `raw` itself, not a copy.
pub fn parse(raw: &Rc<[u8]>) -> Result<ParsedToken, AuthError> {
    parse_token(Rc::clone(raw)).map(ParsedToken)
}

impl ParsedToken {
    /// The `iss` claim, if it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.0 .0.payload.get("iss").and_then(Value::as_str)
    }

    /// The rest of [`check_token_for_audiences`]: `provider`'s claim checks with `audiences`.
    pub fn check_for_audiences(
        &self,
        provider: &Provider,
        audiences: &[String],
        now: u64,
    ) -> Result<CheckedToken, AuthError> {
        let parts = &self.0 .0;
        check_claims(
            &parts.payload,
            parts.typ.as_deref(),
            provider,
            audiences,
            now,
        )?;
        Ok(self.0.clone())
    }
}

/// The three segments of a JWS in compact serialization (`header.payload.signature`), or `None` when
/// there are not exactly three. The DPoP proof parser splits proofs with it too.
pub(crate) fn compact_segments(text: &str) -> Option<(&str, &str, &str)> {
    let mut segments = text.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None) => Some((header, payload, signature)),
        _ => None,
    }
}

/// Parses a token once for everything after it: the jwt_authn-compatible checks read the decoded header
/// and payload, the signature check the decoded signature and the signed bytes, which stay in place in
/// the token's one copy (`raw` itself).
fn parse_token(raw: Rc<[u8]>) -> Result<CheckedToken, AuthError> {
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge);
    }
    let text = std::str::from_utf8(&raw).map_err(|_| AuthError::BadFormat)?;
    // Three non-empty segments, as jwt_verify_lib requires (an empty signature is a bad format, so
    // unsigned `alg: none` tokens never get further than this).
    let Some((header_b64, payload_b64, signature_b64)) = compact_segments(text) else {
        return Err(AuthError::BadFormat);
    };
    if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
        return Err(AuthError::BadFormat);
    }

    // One buffer for the decoded header, then the decoded payload: each is parsed and done with
    // before the next is decoded.
    let mut decoded = Vec::with_capacity(decoded_len(header_b64.len().max(payload_b64.len())));
    URL_SAFE_NO_PAD
        .decode_vec(header_b64, &mut decoded)
        .map_err(|_| AuthError::HeaderBadBase64)?;
    let Ok(HeaderFields {
        alg,
        kid,
        typ,
        crit,
        cty,
        mut typed,
    }) = serde_json::from_slice::<HeaderFields>(&decoded)
    else {
        return Err(AuthError::HeaderBadJson);
    };
    let alg = match &alg {
        Some(Value::String(alg)) => alg,
        _ => return Err(AuthError::HeaderAlgMissing),
    };
    if !KNOWN_ALGORITHMS.contains(&alg.as_str()) {
        return Err(AuthError::HeaderAlgNotImplemented);
    }
    let alg = JwsAlgorithm::from_name(alg).ok_or(AuthError::HeaderAlgNotImplemented)?;
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood, and this filter implements
    // none (`b64: false` of RFC 7797 among them), so such a token is refused rather than misread.
    if crit {
        return Err(AuthError::HeaderCritNotSupported);
    }
    let kid = match kid {
        None => None,
        Some(Value::String(kid)) => Some(kid),
        Some(_) => return Err(AuthError::HeaderKidNotString),
    };
    // A string `typ` is what jwt-compact's `Header` takes; anything else goes to its check below.
    let typ = match typ {
        Some(Value::String(typ)) => Some(typ),
        Some(other) => {
            typed.insert("typ".to_string(), other);
            None
        }
        None => None,
    };
    decoded.clear();
    // The buffer becomes the claims' text.
    let payload = decode_claims(
        payload_b64,
        decoded,
        AuthError::PayloadBadBase64,
        AuthError::PayloadBadJson,
    )?;
    check_claim_types(&payload)?;
    let mut signature = SmallVec::new();
    signature.resize(decoded_len(signature_b64.len()), 0);
    let signature_len = URL_SAFE_NO_PAD
        .decode_slice(signature_b64, &mut signature)
        .map_err(|_| AuthError::SignatureBadBase64)?;
    signature.truncate(signature_len);
    check_header_types(cty.as_ref(), typed)?;
    let payload_start = header_b64.len() + 1;
    let payload_end = payload_start + payload_b64.len();
    Ok(CheckedToken(Rc::new(TokenParts {
        text: raw,
        payload_start,
        payload_end,
        alg,
        kid,
        signature,
        payload: Rc::new(payload),
        typ,
    })))
}

/// An upper bound of the bytes `encoded_len` base64 characters decode to (3 for every 4, rounded up).
fn decoded_len(encoded_len: usize) -> usize {
    encoded_len.div_ceil(4).saturating_mul(3)
}

/// The registered claims must have the types RFC 7519 gives them; jwt_authn refuses the token otherwise.
fn check_claim_types(payload: &Claims) -> Result<(), AuthError> {
    let string_claims = [
        ("iss", AuthError::IssNotString),
        ("sub", AuthError::SubNotString),
        ("jti", AuthError::JtiNotString),
    ];
    for (name, error) in string_claims {
        if payload.get(name).is_some_and(|v| !v.is_string()) {
            return Err(error);
        }
    }
    let time_claims = [
        ("exp", AuthError::ExpNotInteger, AuthError::ExpOutOfRange),
        ("nbf", AuthError::NbfNotInteger, AuthError::NbfOutOfRange),
        ("iat", AuthError::IatNotInteger, AuthError::IatOutOfRange),
    ];
    for (name, not_number, out_of_range) in time_claims {
        if let Some(value) = payload.get(name) {
            if !value.is_number() {
                return Err(not_number);
            }
            timestamp(value).ok_or(out_of_range)?;
        }
    }
    match payload.get("aud") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(AuthError::AudNotStringOrArray),
    }
}

/// A NumericDate as whole seconds. Like jwt_authn, any number from 0 to 2^64 is taken (a fraction is
/// dropped: RFC 7519 allows fractional NumericDates); negative or larger numbers are refused.
fn timestamp(value: &Value) -> Option<u64> {
    let number = value.as_number()?;
    if let Some(seconds) = number.as_u64() {
        return Some(seconds);
    }
    let float = number.as_f64()?;
    let in_range = (0.0..18_446_744_073_709_551_616.0).contains(&float);
    // Truncation is the intent here: the fraction of a second is dropped.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    in_range.then_some(float as u64)
}

fn check_claims(
    payload: &Claims,
    typ: Option<&str>,
    provider: &Provider,
    audiences: &[String],
    now: u64,
) -> Result<(), AuthError> {
    let iss = payload.get("iss").and_then(Value::as_str);
    match provider.matches_issuer(iss) {
        None => return Err(AuthError::UnknownIssuer),
        Some(IssuerMatch::Tenant(tenant)) => {
            // One JWKS signs for every tenant, so `iss` alone does not bind the token to its tenant:
            // the issuer's own tenant claim must agree.
            let claim = provider
                .tenant_issuer
                .as_ref()
                .and_then(|t| payload.get(&t.tenant_claim))
                .and_then(Value::as_str);
            if claim != Some(tenant) {
                return Err(AuthError::TenantMismatch);
            }
        }
        Some(IssuerMatch::Exact | IssuerMatch::Any) => {}
    }
    check_type(typ, &provider.accepted_types)?;
    let skew = provider.clock_skew_seconds;
    if let Some(nbf) = payload.get("nbf").and_then(timestamp) {
        if now.saturating_add(skew) < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    let exp = payload
        .get("exp")
        .and_then(timestamp)
        .filter(|&exp| exp > 0);
    if let Some(exp) = exp {
        if now > exp.saturating_add(skew) {
            return Err(AuthError::Expired);
        }
    }
    if !audience_allowed(payload, audiences) {
        return Err(AuthError::AudienceNotAllowed);
    }
    if let Some(subjects) = &provider.subjects {
        let subject = payload.get("sub").and_then(Value::as_str).unwrap_or("");
        if !subjects.matches(subject) {
            return Err(AuthError::SubjectNotAllowed);
        }
    }
    let lifetime_ok = match provider.lifetime {
        Lifetime::Unbounded => true,
        Lifetime::ExpirationRequired => exp.is_some(),
        Lifetime::AtMost(max) => exp.is_some_and(|exp| exp.saturating_sub(now) < max),
    };
    if !lifetime_ok {
        return Err(AuthError::LifetimeNotAllowed);
    }
    Ok(())
}

/// RFC 8725 §3.11 explicit typing: with `accepted` types (normalised media types), the header's `typ`
/// must be one of them, compared as media types.
fn check_type(typ: Option<&str>, accepted: &[String]) -> Result<(), AuthError> {
    if accepted.is_empty() {
        return Ok(());
    }
    let typ = typ.ok_or(AuthError::TypeMissing)?;
    if accepted.contains(&normalize_media_type(typ)) {
        Ok(())
    } else {
        Err(AuthError::TypeNotAllowed)
    }
}

/// Whether the token's `aud` names one of `allowed` (normalised); an empty list allows any token.
pub fn audience_allowed(payload: &Claims, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let is_allowed = |aud: &str| allowed.iter().any(|a| a == normalize_audience(aud));
    match payload.get("aud") {
        Some(Value::String(aud)) => is_allowed(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(is_allowed),
        _ => false,
    }
}

impl VerifiedToken {
    /// The verified claims.
    pub fn payload(&self) -> &Rc<Claims> {
        &self.payload
    }

    /// The payload segment exactly as it was in the token (base64url, unpadded).
    pub fn payload_segment(&self) -> &str {
        // Base64url characters (the parse decoded them), so valid UTF-8: the check cannot fail.
        self.text
            .get(self.payload_start..self.payload_end)
            .and_then(|segment| std::str::from_utf8(segment).ok())
            .unwrap_or_default()
    }

    /// The token's `exp` in Unix seconds, if it has one.
    pub fn expires_at(&self) -> Option<u64> {
        self.payload.get("exp").and_then(timestamp)
    }
}

impl CheckedToken {
    /// The claims, which passed the claim checks but are not signed off yet.
    pub fn unverified_payload(&self) -> &Claims {
        &self.0.payload
    }

    /// The token's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.0.kid.as_deref()
    }

    /// Checks the signature against the keys of `jwks` that fit, the way jwt_verify_lib chooses them:
    /// same kid (when both have one) and the key's `alg` (when it has one) equal to the token's. A fitting
    /// key verifies only if its type serves the algorithm (an RSA key never verifies HS256, whatever the
    /// token says). No fitting key is "Jwks doesn't have key to match kid or alg"; fitting keys that all
    /// fail is "Jwt verification fails".
    pub fn verify_signature(&self, jwks: &Jwks) -> Result<VerifiedToken, AuthError> {
        let parts = &*self.0;
        let alg = parts.alg;
        let token_alg = alg.name();
        // `header.payload`, what the signature covers.
        let signed_data = parts.text.get(..parts.payload_end);
        let signature = parts.signature.as_slice();
        let mut fitting_keys = 0usize;
        for key in jwks.fitting_keys(parts.kid.as_deref()) {
            let alg_fits = key
                .alg
                .as_deref()
                .is_none_or(|key_alg| key_alg == token_alg);
            if !alg_fits {
                continue;
            }
            fitting_keys += 1;
            // jwt_verify_lib stops at the first fitting Ed25519 key when the signature is not 64 bytes
            // (RFC 8032 5.1.6), whatever the token's alg, and says so; the same refusal, same words.
            if matches!(key.material, KeyMaterial::Ed25519(_))
                && signature.len() != ED25519_SIGNATURE_BYTES
            {
                return Err(AuthError::Ed25519SignatureWrongLength);
            }
            let checks = signed_data.is_some_and(|signed_data| {
                key.material
                    .verifies(alg, token_alg, signature, signed_data)
            });
            if key.material.serves(alg) && checks {
                return Ok(VerifiedToken {
                    payload: Rc::clone(&parts.payload),
                    text: Rc::clone(&parts.text),
                    payload_start: parts.payload_start,
                    payload_end: parts.payload_end,
                });
            }
        }
        if fitting_keys == 0 {
            Err(AuthError::KidAlgMismatch)
        } else {
            Err(AuthError::VerificationFails)
        }
    }
}
