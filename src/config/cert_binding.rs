//! `certificate_bound`, a provider option (this filter's extension): the provider's tokens must be
//! bound to the client's TLS certificate (RFC 8705 §3), through their `cnf.x5t#S256` claim. The check
//! itself is in `request/cert_binding.rs`; here is only its configuration.
//!
//! ```json
//! "certificate_bound": {"source": "connection", "mode": "required"}
//! ```

use serde::Deserialize;

use crate::config::{error, ConfigError, FilterConfig};

/// The option's JSON shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificateBound {
    #[serde(default)]
    pub(super) source: Option<String>,
    #[serde(default)]
    pub(super) mode: Option<String>,
}

/// How a provider's tokens are bound to the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateBinding {
    pub source: CertificateSource,
    pub mode: BindingMode,
}

/// Where the client certificate's SHA-256 digest comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    /// The downstream TLS connection Envoy itself terminated (`connection.sha256_peer_certificate_digest`).
    Connection,
    /// The `Hash=` field of the last element of `x-forwarded-client-cert`, for TLS that ends in front
    /// of Envoy. Only as trustworthy as Envoy's `forward_client_cert_details` makes the header.
    ForwardedClientCert,
}

/// Whether every token must be certificate-bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingMode {
    /// A token without `cnf.x5t#S256` is refused.
    Required,
    /// A token without `cnf.x5t#S256` passes (a migration step); one with it must match.
    Optional,
}

/// Compiles `<field>.certificate_bound`.
pub(super) fn compile_certificate_binding(
    field: &str,
    raw: Option<RawCertificateBound>,
) -> Result<Option<CertificateBinding>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let field = format!("{field}.certificate_bound");
    let source = match raw.source.as_deref() {
        None | Some("connection") => CertificateSource::Connection,
        Some("x_forwarded_client_cert") => CertificateSource::ForwardedClientCert,
        Some(other) => {
            return Err(error(
                format!("{field}.source"),
                format!(
                    "\"{}\" is neither \"connection\" nor \"x_forwarded_client_cert\"",
                    other.escape_debug()
                ),
            ))
        }
    };
    let mode = match raw.mode.as_deref() {
        None | Some("required") => BindingMode::Required,
        Some("optional") => BindingMode::Optional,
        Some(other) => {
            return Err(error(
                format!("{field}.mode"),
                format!(
                    "\"{}\" is neither \"required\" nor \"optional\"",
                    other.escape_debug()
                ),
            ))
        }
    };
    Ok(Some(CertificateBinding { source, mode }))
}

impl FilterConfig {
    /// Whether a provider binds tokens to the downstream connection's certificate: only then does the
    /// filter ask the host for the peer certificate's digest.
    pub fn uses_peer_certificate(&self) -> bool {
        self.providers.iter().any(|provider| {
            provider
                .certificate_bound
                .is_some_and(|binding| binding.source == CertificateSource::Connection)
        })
    }
}
