//! Why a request was refused, and the local reply that says so.
//!
//! Status codes and body texts are the ones Envoy's jwt_authn sends (they come from jwt_verify_lib's
//! status strings), so clients and dashboards that know jwt_authn keep working.

use std::fmt;

use crate::authenticator::escape_quoted;
use crate::authorization::Denial;
use crate::config::{FailureFormat, FilterConfig};

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
    /// The token is longer than [`crate::extractor::MAX_TOKEN_BYTES`].
    TokenTooLarge,
    /// `sub` does not match the provider's `subjects` (jwt_authn answers "Jwt verification fails").
    SubjectNotAllowed,
    /// No `exp` under `require_expiration` / `max_lifetime`, or `exp` further away than `max_lifetime`
    /// (jwt_authn answers "Jwt verification fails").
    LifetimeNotAllowed,
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
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Why a request is refused: its tokens (401, or 403 for audiences), or a rule's authorization (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Auth(AuthError),
    Forbidden(Denial),
}

/// A response the filter sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// Metric name of the reason (see [`AuthError::reason`]).
    pub reason: &'static str,
    pub status: u32,
    pub body: String,
    /// `None` with strip_failure_response.
    pub www_authenticate: Option<String>,
    pub content_type: &'static str,
}

impl LocalReply {
    /// The reply jwt_authn sends for `error`: the status, the message as a plain-text body, and a
    /// `WWW-Authenticate` challenge naming the request's URL as realm (RFC 6750), with
    /// `error="invalid_token"` whenever a token was present.
    pub fn for_error(error: AuthError, realm: &str) -> LocalReply {
        let www_authenticate = if error == AuthError::Missing {
            format!("Bearer realm=\"{realm}\"")
        } else {
            format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
        };
        LocalReply {
            reason: error.reason(),
            status: error.status(),
            body: error.message().to_string(),
            www_authenticate: Some(www_authenticate),
            content_type: "text/plain",
        }
    }
}

/// The reply for `failure` under the configuration's failure settings: jwt_authn's reply for token
/// failures; 403 with `error="insufficient_scope"` (and the scopes wanted) for authorization failures;
/// a JSON body with `failure_response_format: json`; no body and no challenge with
/// `strip_failure_response`.
pub fn refusal(config: &FilterConfig, failure: Failure, realm: &str) -> LocalReply {
    let mut reply = match &failure {
        Failure::Auth(error) => LocalReply::for_error(*error, realm),
        Failure::Forbidden(denial) => {
            let (body, scope) = match denial {
                Denial::MissingScopes(scopes) => (
                    format!("Jwt does not have the required scope: {}", scopes.join(" ")),
                    format!(", scope=\"{}\"", escape_quoted(&scopes.join(" "))),
                ),
                Denial::ClaimNotAllowed(claim) => {
                    (format!("Jwt claim [{claim}] is not allowed"), String::new())
                }
            };
            LocalReply {
                reason: failure.reason(),
                status: 403,
                body,
                www_authenticate: Some(format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\"{scope}"
                )),
                content_type: "text/plain",
            }
        }
    };
    if config.failure_format == FailureFormat::Json {
        let code = match &failure {
            Failure::Auth(AuthError::Missing) => "missing_token",
            Failure::Auth(_) => "invalid_token",
            Failure::Forbidden(_) => "insufficient_scope",
        };
        reply.body =
            serde_json::json!({"error": code, "error_description": reply.body}).to_string();
        reply.content_type = "application/json";
    }
    if config.strip_failure_response {
        reply.body.clear();
        reply.www_authenticate = None;
    }
    reply
}
