//! The local reply that refuses a request: jwt_authn's status, body and `WWW-Authenticate` challenge for
//! a token failure, 403 for an authorization failure, in text or JSON, or stripped; and the one answer
//! that is no refusal, the RFC 9728 metadata document.

use crate::config::{FailureFormat, FilterConfig};
use crate::request::authorization::Denial;
use crate::verify::error::AuthError;

/// A response the filter gives itself that is not a refusal: the protected-resource metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u32,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: String,
}

/// The document of RFC 9728 §3.2, as JSON. Any origin may read it (`Access-Control-Allow-Origin: *`):
/// it is public, carries no credentials, and browser-based MCP clients fetch it cross-origin.
pub fn metadata_document(document: &str) -> Answer {
    Answer {
        status: 200,
        headers: vec![
            ("content-type", "application/json"),
            ("access-control-allow-origin", "*"),
        ],
        body: document.to_string(),
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
/// `strip_failure_response`. With a `resource_metadata` URL (RFC 9728 §5.1), the challenge names it.
pub fn refusal(
    config: &FilterConfig,
    failure: Failure,
    realm: &str,
    resource_metadata: Option<&str>,
) -> LocalReply {
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
    if let (Some(url), Some(challenge)) = (resource_metadata, reply.www_authenticate.as_mut()) {
        challenge.push_str(", resource_metadata=\"");
        challenge.push_str(&escape_quoted(url));
        challenge.push('"');
    }
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

impl Failure {
    /// The metric name of this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Auth(error) => error.reason(),
            Failure::Forbidden(Denial::MissingScopes(_)) => "insufficient_scope",
            Failure::Forbidden(Denial::ClaimNotAllowed(_)) => "claim_not_allowed",
        }
    }
}

/// Escapes `"` and `\` and drops control characters, for a quoted-string header parameter.
pub fn escape_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}
