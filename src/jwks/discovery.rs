//! OpenID Connect Discovery: the JWKS URI an issuer's configuration names.

/// The `jwks_uri` of an OpenID Provider configuration document (OpenID Connect Discovery 1.0 §3).
pub fn discovered_jwks_uri(document: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct ProviderMetadata {
        jwks_uri: Option<String>,
    }
    let metadata: ProviderMetadata = serde_json::from_slice(document)
        .map_err(|e| format!("OpenID configuration is not JSON: {e}"))?;
    let uri = metadata
        .jwks_uri
        .ok_or_else(|| "OpenID configuration has no jwks_uri".to_string())?;
    if !(uri.starts_with("https://") || uri.starts_with("http://")) {
        return Err(format!(
            "jwks_uri \"{}\" is not an http(s) URL",
            uri.escape_debug()
        ));
    }
    Ok(uri)
}
