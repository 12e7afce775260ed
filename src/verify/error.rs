//! Why a token was refused, with the status code and body text of each reason.
//!
//! Status codes and body texts are the ones Envoy's jwt_authn sends (they come from jwt_verify_lib's
//! status strings), so clients and dashboards that know jwt_authn keep working.

use std::fmt;

/// A reason to refuse a request. Every variant maps to one status code and one body text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token in any location the provider reads.
    Missing,
    /// `exp` plus clock skew is in the past.
    Expired,
    /// `nbf` minus clock skew is in the future.
    NotYetValid,
    /// A key fit the token but the signature did not check against any fitting key.
    VerificationFails,
    /// No key in the JWKS fits the token's kid and alg.
    KidAlgMismatch,
    /// The token's `iss` is not the provider's issuer.
    UnknownIssuer,
    /// Not three dot-separated segments.
    BadFormat,
    /// The JWKS could not be fetched in time.
    JwksFetchFailed,
    /// None of the token's audiences is allowed. The only 403.
    AudienceNotAllowed,
    /// The header segment is not base64url.
    HeaderBadBase64,
    /// The header is not a JSON object with the fields a JWS header needs.
    HeaderBadJson,
    /// The header has no usable `alg`.
    HeaderAlgMissing,
    /// The header's `alg` names an algorithm that does not exist (`none`, or unknown names).
    HeaderAlgNotImplemented,
    /// The header's `kid` is present but not a string.
    HeaderKidNotString,
    /// The header has `crit` (RFC 7515 §4.1.11): extensions this filter does not implement.
    HeaderCritNotSupported,
    /// The payload segment is not base64url.
    PayloadBadBase64,
    /// The payload is not a JSON object.
    PayloadBadJson,
    /// The signature segment is not base64url.
    SignatureBadBase64,
    /// A fitting key is Ed25519 and the signature is not 64 bytes.
    Ed25519SignatureWrongLength,
    /// `iss` present but not a string.
    IssNotString,
    /// `sub` present but not a string.
    SubNotString,
    /// `aud` present but neither a string nor a list of strings.
    AudNotStringOrArray,
    /// `exp` present but not a number.
    ExpNotInteger,
    /// `nbf` present but not a number.
    NbfNotInteger,
    /// `iat` present but not a number.
    IatNotInteger,
    /// `exp` negative or beyond 64 bits.
    ExpOutOfRange,
    /// `nbf` negative or beyond 64 bits.
    NbfOutOfRange,
    /// `iat` negative or beyond 64 bits.
    IatOutOfRange,
    /// `jti` present but not a string.
    JtiNotString,
    /// The token is longer than `crate::verify::token::MAX_TOKEN_BYTES`.
    TokenTooLarge,
    /// `sub` does not match the provider's `subjects` (jwt_authn answers "Jwt verification fails").
    SubjectNotAllowed,
    /// No `exp` under `require_expiration` / `max_lifetime`, or `exp` further away than `max_lifetime`
    /// (jwt_authn answers "Jwt verification fails").
    LifetimeNotAllowed,
    /// A certificate-bound provider (`certificate_bound`, mode required) got a token without a string
    /// `cnf.x5t#S256` (RFC 8705 §3.1), or with a `cnf` that is not an object.
    CertificateBindingMissing,
    /// The token is bound to a certificate, and the request came with none the filter may use.
    ClientCertificateMissing,
    /// The token's `cnf.x5t#S256` is not the SHA-256 thumbprint of the request's client certificate.
    ClientCertificateMismatch,
    /// A multi-tenant provider's token whose tenant claim (`tid`) is missing or names another tenant
    /// than its `iss` (this filter's extension).
    TenantMismatch,
    /// The provider lists `accepted_types` and the header has no `typ` (this filter's extension).
    TypeMissing,
    /// The header's `typ` is not among the provider's `accepted_types` (this filter's extension).
    TypeNotAllowed,
}

impl AuthError {
    /// The HTTP status jwt_authn answers with: 403 only for disallowed audiences, 401 for the rest.
    pub fn status(self) -> u32 {
        match self {
            AuthError::AudienceNotAllowed => 403,
            _ => 401,
        }
    }

    /// The body text, word for word as jwt_authn sends it.
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => "Jwt is missing",
            AuthError::Expired => "Jwt is expired",
            AuthError::NotYetValid => "Jwt not yet valid",
            AuthError::VerificationFails => "Jwt verification fails",
            AuthError::KidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
            AuthError::UnknownIssuer => "Jwt issuer is not configured",
            AuthError::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            AuthError::JwksFetchFailed => "Jwks remote fetch is failed",
            AuthError::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            AuthError::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            AuthError::HeaderBadJson => "Jwt header is an invalid JSON",
            AuthError::HeaderAlgMissing => {
                "Jwt header [alg] field is required and must be a string"
            }
            AuthError::HeaderAlgNotImplemented => "Jwt header [alg] is not supported",
            AuthError::HeaderKidNotString => "Jwt header [kid] field is not a string",
            AuthError::HeaderCritNotSupported => "Jwt header [crit] is not supported",
            AuthError::PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            AuthError::PayloadBadJson => "Jwt payload is an invalid JSON",
            AuthError::SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            AuthError::Ed25519SignatureWrongLength => "Jwt ED25519 signature is wrong length",
            AuthError::IssNotString => "Jwt payload [iss] field is not a string",
            AuthError::SubNotString => "Jwt payload [sub] field is not a string",
            AuthError::AudNotStringOrArray => {
                "Jwt payload [aud] field is not a string or string list"
            }
            AuthError::ExpNotInteger => "Jwt payload [exp] field is not an integer",
            AuthError::NbfNotInteger => "Jwt payload [nbf] field is not an integer",
            AuthError::IatNotInteger => "Jwt payload [iat] field is not an integer",
            AuthError::ExpOutOfRange => "Jwt payload [exp] field is not a positive 64 bit integer",
            AuthError::NbfOutOfRange => "Jwt payload [nbf] field is not a positive 64 bit integer",
            AuthError::IatOutOfRange => "Jwt payload [iat] field is not a positive 64 bit integer",
            AuthError::JtiNotString => "Jwt payload [jti] field is not a string",
            AuthError::TokenTooLarge => "Jwt is too large",
            AuthError::SubjectNotAllowed | AuthError::LifetimeNotAllowed => {
                "Jwt verification fails"
            }
            AuthError::CertificateBindingMissing => {
                "Jwt payload [cnf.x5t#S256] field is required and must be a string"
            }
            AuthError::ClientCertificateMissing => {
                "Jwt is bound to a client certificate but the request presented none"
            }
            AuthError::ClientCertificateMismatch => {
                "Jwt payload [cnf.x5t#S256] does not match the client certificate"
            }
            AuthError::TenantMismatch => "Jwt tenant claim does not match the tenant in [iss]",
            AuthError::TypeMissing => "Jwt header [typ] is required",
            AuthError::TypeNotAllowed => "Jwt header [typ] is not allowed",
        }
    }
}

impl AuthError {
    /// A snake_case name for metrics (`jwt_authn_wasm.denied.<reason>`).
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Missing => "jwt_missing",
            AuthError::Expired => "jwt_expired",
            AuthError::NotYetValid => "jwt_not_yet_valid",
            AuthError::VerificationFails => "jwt_verification_fails",
            AuthError::KidAlgMismatch => "jwks_kid_alg_mismatch",
            AuthError::UnknownIssuer => "jwt_unknown_issuer",
            AuthError::BadFormat => "jwt_bad_format",
            AuthError::JwksFetchFailed => "jwks_fetch_failed",
            AuthError::AudienceNotAllowed => "jwt_audience_not_allowed",
            AuthError::TokenTooLarge => "jwt_too_large",
            AuthError::SubjectNotAllowed => "jwt_subject_not_allowed",
            AuthError::LifetimeNotAllowed => "jwt_lifetime_not_allowed",
            AuthError::CertificateBindingMissing => "jwt_certificate_binding_missing",
            AuthError::ClientCertificateMissing => "client_certificate_missing",
            AuthError::ClientCertificateMismatch => "client_certificate_mismatch",
            AuthError::TenantMismatch => "jwt_tenant_mismatch",
            AuthError::TypeMissing | AuthError::TypeNotAllowed => "jwt_type_not_allowed",
            AuthError::HeaderBadBase64
            | AuthError::HeaderBadJson
            | AuthError::HeaderAlgMissing
            | AuthError::HeaderAlgNotImplemented
            | AuthError::HeaderKidNotString
            | AuthError::HeaderCritNotSupported => "jwt_bad_header",
            AuthError::PayloadBadBase64
            | AuthError::PayloadBadJson
            | AuthError::IssNotString
            | AuthError::SubNotString
            | AuthError::AudNotStringOrArray
            | AuthError::ExpNotInteger
            | AuthError::NbfNotInteger
            | AuthError::IatNotInteger
            | AuthError::ExpOutOfRange
            | AuthError::NbfOutOfRange
            | AuthError::IatOutOfRange
            | AuthError::JtiNotString => "jwt_bad_payload",
            AuthError::SignatureBadBase64 => "jwt_bad_signature_encoding",
            AuthError::Ed25519SignatureWrongLength => "jwt_verification_fails",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}
