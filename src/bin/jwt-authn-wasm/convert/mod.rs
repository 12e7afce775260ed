//! `convert`: an Envoy configuration with jwt_authn becomes the same configuration with this filter in
//! each jwt_authn filter's place (`convert/envoy.rs`); an Istio RequestAuthentication becomes a
//! WasmPlugin with the equivalent configuration, plus the ServiceEntry and DestinationRule that make its
//! JWKS cluster exist (`convert/istio.rs`). What cannot carry over is said, with what to use instead.
//! Here: the choice of conversion per document, the output rendering and the JSON helper both share.

mod envoy;
mod istio;

use serde_json::{json, Value};

use super::input::{Format, Input};
use super::locate::{kind, DocumentKind};
use envoy::EnvoyConversion;
use istio::request_authentication;

pub struct Options {
    /// The module's path on the Envoy host (Envoy configurations).
    pub module: String,
    /// The module's image or URL (WasmPlugin `url`).
    pub url: String,
    /// WasmPlugin `sha256` (the image's manifest digest), if known.
    pub sha256: Option<String>,
}

pub struct Converted {
    pub text: String,
    /// One line per thing that did not carry over as it was, with what to use instead.
    pub notes: Vec<String>,
}

/// Converts `input`; `Err` lines say why nothing (or nothing valid) came out.
pub fn convert(input: &Input, options: &Options) -> Result<Converted, Vec<String>> {
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    let mut outputs = Vec::new();
    let mut converted_any = false;
    for (index, document) in input.documents.iter().enumerate() {
        let prefix = input.document_prefix(index);
        match kind(&document.value) {
            DocumentKind::Kubernetes(kind) if kind == "RequestAuthentication" => {
                converted_any = true;
                match request_authentication(&document.value, options, &mut notes) {
                    Ok(objects) => outputs.extend(objects),
                    Err(e) => errors.push(format!("{prefix}{e}")),
                }
            }
            DocumentKind::EnvoyBootstrap | DocumentKind::EnvoyResource => {
                let mut value = document.value.clone();
                let mut context = EnvoyConversion {
                    options,
                    notes: &mut notes,
                    errors: &mut errors,
                    count: 0,
                    prefix: &prefix,
                };
                context.walk(&mut value, "");
                converted_any |= context.count > 0;
                outputs.push(value);
            }
            _ => outputs.push(document.value.clone()),
        }
    }
    if !converted_any {
        errors.push(
            "nothing to convert: no envoy.filters.http.jwt_authn filter and no RequestAuthentication found"
                .to_string(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = render(&outputs, input.format, &notes)?;
    Ok(Converted { text, notes })
}

fn render(outputs: &[Value], format: Format, notes: &[String]) -> Result<String, Vec<String>> {
    let kubernetes = outputs.len() > 1;
    match format {
        Format::Json if !kubernetes => outputs
            .first()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default() + "\n")
            .ok_or_else(|| vec!["nothing to write".to_string()]),
        Format::Json => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": outputs});
            Ok(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n")
        }
        Format::Yaml => {
            let mut text = String::new();
            for note in notes {
                text.push_str(&format!("# jwt-authn-wasm convert: {note}\n"));
            }
            for (index, value) in outputs.iter().enumerate() {
                if index > 0 {
                    text.push_str("---\n");
                }
                let yaml = serde_yaml_ng::to_string(value).map_err(|e| vec![e.to_string()])?;
                text.push_str(&yaml);
            }
            Ok(text)
        }
    }
}

/// Sets `key` on an object (a no-op on anything else, which these builders never make).
pub(super) fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}
