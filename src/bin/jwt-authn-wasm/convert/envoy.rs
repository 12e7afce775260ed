//! Envoy configurations: every jwt_authn filter entry becomes this filter with the same providers and
//! rules, its per-route configuration becomes `per_route_config`, and what a wasm filter cannot honour is
//! rewritten or removed with a note.

use jwt_authn_wasm::config::FilterConfig;
use serde_json::{json, Map, Value};

use super::super::input::{index_path, key_path};
use super::{set, Options};

const JWT_AUTHN_TYPE: &str = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
const JWT_AUTHN_NAME: &str = "envoy.filters.http.jwt_authn";

/// The wasm filter entry that runs this module with `config`.
fn wasm_filter(config: &Value, module: &str) -> Value {
    let configuration = serde_json::to_string_pretty(config).unwrap_or_default();
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "jwt_authn_wasm",
                "root_id": "jwt_authn_wasm",
                "vm_config": {
                    "vm_id": "jwt_authn_wasm",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                }
            }
        }
    })
}

pub(super) struct EnvoyConversion<'a> {
    pub(super) options: &'a Options,
    pub(super) notes: &'a mut Vec<String>,
    pub(super) errors: &'a mut Vec<String>,
    pub(super) count: usize,
    pub(super) prefix: &'a str,
}

fn is_jwt_authn(filter: &Value) -> bool {
    filter
        .pointer("/typed_config/@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with(JWT_AUTHN_TYPE))
}

impl EnvoyConversion<'_> {
    /// Finds every http_connection_manager (an object with `http_filters`) and converts its filters.
    pub(super) fn walk(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::Object(object) => {
                if object.get("http_filters").is_some_and(Value::is_array) {
                    self.connection_manager(object, path);
                }
                for (key, child) in object.iter_mut() {
                    if key != "http_filters" {
                        self.walk(child, &key_path(path, key));
                    }
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter_mut().enumerate() {
                    self.walk(child, &index_path(path, index));
                }
            }
            _ => {}
        }
    }

    fn note(&mut self, location: &str, text: String) {
        self.notes
            .push(format!("{}{location}: {text}", self.prefix));
    }

    fn connection_manager(&mut self, hcm: &mut Map<String, Value>, path: &str) {
        let filters_path = key_path(path, "http_filters");
        let names: Vec<String> = hcm
            .get("http_filters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| is_jwt_authn(f))
            .map(|f| {
                f.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(JWT_AUTHN_NAME)
                    .to_string()
            })
            .collect();
        if names.is_empty() {
            return;
        }
        // Per-route jwt_authn configuration becomes rules in front of the filter's own.
        let mut route_rules = Vec::new();
        let mut named_routes = Map::new();
        if let Some(route_config) = hcm.get_mut("route_config") {
            let location = key_path(path, "route_config");
            self.per_route(
                route_config,
                &location,
                &names,
                &mut route_rules,
                &mut named_routes,
            );
        } else if hcm.contains_key("rds") {
            self.note(
                path,
                "routes come from RDS: per-route jwt_authn configuration there (typed_per_filter_config) is \
                 not seen by a wasm filter; express it as rules with requirement_name"
                    .to_string(),
            );
        }
        let Some(filters) = hcm.get_mut("http_filters").and_then(Value::as_array_mut) else {
            return;
        };
        for (index, filter) in filters.iter_mut().enumerate() {
            if !is_jwt_authn(filter) {
                continue;
            }
            let location = index_path(&filters_path, index);
            let mut config = filter
                .get("typed_config")
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let Some(object) = config.as_object_mut() {
                object.remove("@type");
            }
            if !named_routes.is_empty() {
                set(
                    &mut config,
                    "per_route_config",
                    Value::Object(named_routes.clone()),
                );
            }
            if !route_rules.is_empty() {
                let mut rules = route_rules.clone();
                rules.extend(
                    config
                        .get("rules")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
                set(&mut config, "rules", Value::Array(rules));
            }
            match self.carry_over(&mut config, &location) {
                Ok(()) => {
                    let mut replacement = wasm_filter(&config, &self.options.module);
                    for key in ["disabled", "is_optional"] {
                        if let (Some(v), Some(object)) =
                            (filter.get(key), replacement.as_object_mut())
                        {
                            object.insert(key.to_string(), v.clone());
                        }
                    }
                    *filter = replacement;
                    self.count += 1;
                }
                Err(e) => self.errors.push(format!("{}{location}: {e}", self.prefix)),
            }
        }
    }

    /// Removes jwt_authn's per-route configuration from routes and virtual hosts: on a route with a
    /// name it becomes this filter's `per_route_config` entry for that name (the same semantics); on an
    /// unnamed route, a rule with the route's match.
    fn per_route(
        &mut self,
        value: &mut Value,
        path: &str,
        names: &[String],
        rules: &mut Vec<Value>,
        named: &mut Map<String, Value>,
    ) {
        match value {
            Value::Object(object) => {
                let per_route = object
                    .get_mut("typed_per_filter_config")
                    .and_then(Value::as_object_mut)
                    .and_then(|per_filter| {
                        let key = names.iter().find(|n| per_filter.contains_key(*n))?.clone();
                        let config = per_filter.remove(&key);
                        Some((key, config))
                    });
                if let Some((key, Some(config))) = per_route {
                    let location = key_path(&key_path(path, "typed_per_filter_config"), &key);
                    let route_name = object
                        .get("name")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string);
                    match (object.get("match"), route_name) {
                        (Some(_), Some(route_name)) => {
                            let entry = match config.get("requirement_name") {
                                Some(name) => json!({"requirement_name": name}),
                                None => json!({"disabled": true}),
                            };
                            self.note(
                                &location,
                                format!(
                                    "per-route config became per_route_config.{route_name} (this filter reads the \
                                     route's name; same meaning)"
                                ),
                            );
                            named.insert(route_name, entry);
                        }
                        (Some(route_match), None) => {
                            let mut rule = json!({"match": rule_match(route_match)});
                            let what = if let Some(name) = config.get("requirement_name") {
                                set(&mut rule, "requirement_name", name.clone());
                                format!("requirement_name {name}")
                            } else {
                                "disabled (no token required)".to_string()
                            };
                            self.note(
                                &location,
                                format!(
                                    "per-route config ({what}) is not available to a wasm filter; it became rules[{}] \
                                     with this route's match (the virtual host's domains and earlier routes are not \
                                     considered: review it)",
                                    rules.len()
                                ),
                            );
                            rules.push(rule);
                        }
                        (None, _) => self.note(
                            &location,
                            "per-virtual-host config is not available to a wasm filter and was removed; express it \
                             as rules (match on the :authority header for a virtual host's domains)"
                                .to_string(),
                        ),
                    }
                    if object
                        .get("typed_per_filter_config")
                        .and_then(Value::as_object)
                        .is_some_and(Map::is_empty)
                    {
                        object.remove("typed_per_filter_config");
                    }
                }
                for (key, child) in object.iter_mut() {
                    self.per_route(child, &key_path(path, key), names, rules, named);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter_mut().enumerate() {
                    self.per_route(child, &index_path(path, index), names, rules, named);
                }
            }
            _ => {}
        }
    }

    /// Rewrites what a wasm filter cannot do, then runs the filter's parser on the result: a field it still
    /// refuses is an error.
    fn carry_over(&mut self, config: &mut Value, location: &str) -> Result<(), String> {
        if let Some(object) = config.as_object_mut() {
            if object.remove("filter_state_rules").is_some() {
                self.note(
                    &key_path(location, "filter_state_rules"),
                    "not available to a wasm filter (removed); use rules matching a header instead"
                        .to_string(),
                );
            }
        }
        let provider_names: Vec<String> = config
            .get("providers")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for name in provider_names {
            let field = format!("providers.{name}");
            let Some(provider) =
                config.pointer_mut(&format!("/providers/{}", pointer_escape(&name)))
            else {
                continue;
            };
            let mut notes = Vec::new();
            carry_over_provider(provider, &mut notes);
            for (key, text) in notes {
                self.note(&format!("{location} → {field}.{key}"), text);
            }
        }
        let bytes = config.to_string().into_bytes();
        FilterConfig::parse(&bytes).map(|_| ()).map_err(|e| {
            format!(
                "the converted configuration is refused by the filter: {}: {} (change it in the jwt_authn \
                 configuration and convert again)",
                e.field, e.reason
            )
        })
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Provider fields a wasm filter cannot honour, rewritten or removed, each with a (field, note).
fn carry_over_provider(provider: &mut Value, notes: &mut Vec<(String, String)>) {
    let Some(object) = provider.as_object_mut() else {
        return;
    };
    if let Some(name) = object.remove("payload_in_metadata") {
        let already = object.contains_key("payload_in_filter_state");
        if !already {
            object.insert("payload_in_filter_state".to_string(), name.clone());
        }
        notes.push((
            "payload_in_metadata".to_string(),
            format!(
                "a wasm filter cannot write dynamic metadata; the payload is {} filter state wasm.{} \
                 (payload_in_filter_state): change readers of metadata envoy.filters.http.jwt_authn to read it",
                if already { "already in" } else { "now in" },
                name.as_str().unwrap_or_default()
            ),
        ));
    }
    for (key, instead) in [
        (
            "header_in_metadata",
            "no equivalent (removed); read the claims from claim_to_headers or payload_in_filter_state",
        ),
        (
            "failed_status_in_metadata",
            "no equivalent (removed); failures are counted in the jwt_authn_wasm.* metrics and logged",
        ),
        (
            "normalize_payload_in_metadata",
            "no equivalent (removed); the filter state holds the payload as the token has it",
        ),
    ] {
        if object.remove(key).is_some() {
            notes.push((key.to_string(), instead.to_string()));
        }
    }
    if let Some(local) = object.get_mut("local_jwks").and_then(Value::as_object_mut) {
        if let Some(file) = local
            .get("filename")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            match std::fs::read_to_string(&file) {
                Ok(jwks) => {
                    local.remove("filename");
                    local.insert("inline_string".to_string(), Value::String(jwks));
                    notes.push((
                        "local_jwks.filename".to_string(),
                        format!("a wasm filter cannot read files; {file} was inlined as inline_string"),
                    ));
                }
                Err(e) => notes.push((
                    "local_jwks.filename".to_string(),
                    format!("a wasm filter cannot read files and {file} could not be read here ({e}); put the JWKS in inline_string"),
                )),
            }
        }
    }
}

/// The RouteMatch fields jwt_authn rules share with routes.
fn rule_match(route_match: &Value) -> Value {
    let mut out = Map::new();
    for key in [
        "prefix",
        "path",
        "path_separated_prefix",
        "safe_regex",
        "case_sensitive",
        "headers",
        "query_parameters",
    ] {
        if let Some(v) = route_match.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}
