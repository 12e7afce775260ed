//! Where this filter's configuration sits in a document: the document itself (our JSON), every Envoy
//! `envoy.filters.http.wasm` filter that runs this module (bootstrap, listener, LDS/ECDS resource,
//! EnvoyFilter or EnvoyPatchPolicy patch), an Istio WasmPlugin's `pluginConfig`, or an Envoy Gateway
//! EnvoyExtensionPolicy's `spec.wasm[].config`.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::Value;

use super::input::{index_path, key_path};

const WASM_FILTER_TYPE: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
const BYTES_VALUE: &str = "type.googleapis.com/google.protobuf.BytesValue";

/// What surrounds a configuration, for the warnings that depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Our JSON on its own.
    Alone,
    /// An Envoy filter. `clusters` is the set a bootstrap defines statically; `None` when clusters may
    /// come from elsewhere (CDS, a listener file, a patch).
    Envoy { clusters: Option<BTreeSet<String>> },
    /// An Istio WasmPlugin: the filter's clusters are the ones istiod makes from ServiceEntries.
    Istio,
    /// An Envoy Gateway EnvoyExtensionPolicy.
    EnvoyGateway,
}

/// One configuration of this filter in a document.
pub struct Found {
    /// Path of the configuration in the document (`spec.pluginConfig`).
    pub location: String,
    /// The bytes the filter receives, or why Envoy cannot hand the filter JSON from what is written.
    pub config: Result<Vec<u8>, String>,
    pub context: Context,
    /// The bytes are JSON this tool wrote from YAML (or a Struct), so a parser's line and column refer to
    /// nothing the user wrote.
    pub reserialized: bool,
}

/// The names by which a filter is recognised as this one (root_id, vm_id, pluginName, module path or
/// image URL containing one of them).
pub struct Names(pub Vec<String>);

impl Names {
    fn matches(&self, text: &str) -> bool {
        self.0.iter().any(|name| text.contains(name.as_str()))
    }
}

/// What a document is, by the keys it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentKind {
    /// A Kubernetes object (`apiVersion` and `kind`): the kind.
    Kubernetes(String),
    /// An Envoy bootstrap (static_resources and the like).
    EnvoyBootstrap,
    /// Some other Envoy resource: a listener, a discovery response, a typed extension config.
    EnvoyResource,
    /// Anything else is taken as this filter's JSON configuration.
    FilterConfig,
}

const BOOTSTRAP_KEYS: &[&str] = &[
    "static_resources",
    "dynamic_resources",
    "admin",
    "node",
    "layered_runtime",
    "overload_manager",
    "cluster_manager",
];
const RESOURCE_KEYS: &[&str] = &[
    "filter_chains",
    "listener_filters",
    "resources",
    "version_info",
    "@type",
    "typed_config",
];

pub fn kind(value: &Value) -> DocumentKind {
    let Some(object) = value.as_object() else {
        return DocumentKind::FilterConfig;
    };
    if let (Some(_), Some(kind)) = (object.get("apiVersion"), object.get("kind")) {
        return DocumentKind::Kubernetes(kind.as_str().unwrap_or_default().to_string());
    }
    if BOOTSTRAP_KEYS.iter().any(|k| object.contains_key(*k)) {
        return DocumentKind::EnvoyBootstrap;
    }
    if RESOURCE_KEYS.iter().any(|k| object.contains_key(*k)) {
        return DocumentKind::EnvoyResource;
    }
    DocumentKind::FilterConfig
}

/// Every configuration of this filter in `value`. `raw_json` is the document's own bytes when the file is
/// one JSON document.
pub fn find(value: &Value, raw_json: Option<&[u8]>, names: &Names) -> Vec<Found> {
    let mut found = Vec::new();
    match kind(value) {
        DocumentKind::FilterConfig => {
            let config = match raw_json {
                Some(bytes) => bytes.to_vec(),
                None => value.to_string().into_bytes(),
            };
            found.push(Found {
                location: "(file)".to_string(),
                config: Ok(config),
                context: Context::Alone,
                reserialized: raw_json.is_none(),
            });
            return found;
        }
        DocumentKind::Kubernetes(kind) => {
            kubernetes(&kind, value, names, &mut found);
            walk(value, "", names, &None, &mut found);
        }
        DocumentKind::EnvoyBootstrap => {
            let clusters = static_clusters(value);
            walk(value, "", names, &clusters, &mut found);
        }
        DocumentKind::EnvoyResource => walk(value, "", names, &None, &mut found),
    }
    found
}

/// The cluster names a bootstrap defines, unless clusters can also come from CDS.
fn static_clusters(bootstrap: &Value) -> Option<BTreeSet<String>> {
    let dynamic = bootstrap.get("dynamic_resources");
    if dynamic
        .is_some_and(|d| d.get("cds_config").is_some() || d.get("cds_resources_locator").is_some())
    {
        return None;
    }
    let clusters = bootstrap
        .pointer("/static_resources/clusters")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(clusters)
}

fn kubernetes(kind: &str, value: &Value, names: &Names, found: &mut Vec<Found>) {
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match kind {
        "WasmPlugin" => {
            let ours = names.matches(&text("/spec/pluginName"))
                || names.matches(&text("/spec/url"))
                || names.matches(&text("/metadata/name"));
            if !ours {
                return;
            }
            let config = match value.pointer("/spec/pluginConfig") {
                // istiod hands pluginConfig to the filter as a JSON string.
                Some(config) => Ok(config.to_string().into_bytes()),
                None => Ok(Vec::new()),
            };
            found.push(Found {
                location: "spec.pluginConfig".to_string(),
                config,
                context: Context::Istio,
                reserialized: true,
            });
        }
        "EnvoyExtensionPolicy" => {
            let Some(wasms) = value.pointer("/spec/wasm").and_then(Value::as_array) else {
                return;
            };
            for (index, wasm) in wasms.iter().enumerate() {
                let field = |pointer: &str| {
                    wasm.pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let ours = names.matches(&field("/name"))
                    || names.matches(&field("/rootID"))
                    || names.matches(&field("/code/image/url"))
                    || names.matches(&field("/code/http/url"));
                if !ours {
                    continue;
                }
                let config = match wasm.get("config") {
                    Some(config) => Ok(config.to_string().into_bytes()),
                    None => Ok(Vec::new()),
                };
                found.push(Found {
                    location: format!("spec.wasm[{index}].config"),
                    config,
                    context: Context::EnvoyGateway,
                    reserialized: true,
                });
            }
        }
        _ => {}
    }
}

/// Finds every Wasm HTTP filter config (`@type` …filters.http.wasm.v3.Wasm) that runs this module.
fn walk(
    value: &Value,
    path: &str,
    names: &Names,
    clusters: &Option<BTreeSet<String>>,
    found: &mut Vec<Found>,
) {
    match value {
        Value::Object(object) => {
            let is_wasm_filter = object
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(WASM_FILTER_TYPE));
            if is_wasm_filter {
                if let Some(config) = object.get("config") {
                    if runs_this_module(config, names) {
                        found.push(Found {
                            location: key_path(&key_path(path, "config"), "configuration"),
                            config: configuration_bytes(config.get("configuration")),
                            context: Context::Envoy {
                                clusters: clusters.clone(),
                            },
                            reserialized: false,
                        });
                    }
                }
                return;
            }
            for (key, child) in object {
                walk(child, &key_path(path, key), names, clusters, found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, &index_path(path, index), names, clusters, found);
            }
        }
        _ => {}
    }
}

fn runs_this_module(config: &Value, names: &Names) -> bool {
    let text = |pointer: &str| {
        config
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    names
        .0
        .iter()
        .any(|n| text("/root_id") == n || text("/vm_config/vm_id") == n)
        || names.matches(text("/vm_config/code/local/filename"))
        || names.matches(text("/vm_config/code/remote/http_uri/uri"))
}

/// The bytes Envoy gives the filter for a PluginConfig `configuration` (Envoy's `anyToBytes`: a
/// StringValue's string, a BytesValue's bytes, and the protobuf encoding of anything else).
fn configuration_bytes(configuration: Option<&Value>) -> Result<Vec<u8>, String> {
    let Some(configuration) = configuration else {
        return Ok(Vec::new());
    };
    let type_url = configuration
        .get("@type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = configuration.get("value");
    match type_url {
        STRING_VALUE => match value {
            None => Ok(Vec::new()),
            Some(Value::String(text)) => Ok(text.clone().into_bytes()),
            Some(_) => Err("a StringValue's \"value\" must be a string holding the JSON".to_string()),
        },
        BYTES_VALUE => {
            let encoded = value.and_then(Value::as_str).unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("a BytesValue's \"value\" must be base64: {e}"))
        }
        "" => Err("the configuration has no \"@type\"; wrap the JSON in a google.protobuf.StringValue".to_string()),
        other => Err(format!(
            "Envoy hands a {other} to the filter in protobuf encoding, not as JSON; give the JSON as a \
             google.protobuf.StringValue"
        )),
    }
}
