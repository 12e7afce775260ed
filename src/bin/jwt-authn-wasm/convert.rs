//! `convert`: an Envoy configuration with jwt_authn becomes the same configuration with this filter in
//! each jwt_authn filter's place; an Istio RequestAuthentication becomes a WasmPlugin with the equivalent
//! configuration, plus the ServiceEntry and DestinationRule that make its JWKS cluster exist. What cannot
//! carry over is said, with what to use instead.
//!
//! Both conversions stay in this one file (about 700 lines) because they share the output rendering, the
//! notes and the JSON helpers (`set`, `uri_host_port`); split it by source if a third one arrives.

use std::collections::BTreeMap;

use jwt_authn_wasm::config::FilterConfig;
use serde_json::{json, Map, Value};

use super::input::{index_path, key_path, Format, Input};
use super::locate::{kind, DocumentKind};

const JWT_AUTHN_TYPE: &str = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
const JWT_AUTHN_NAME: &str = "envoy.filters.http.jwt_authn";

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

struct EnvoyConversion<'a> {
    options: &'a Options,
    notes: &'a mut Vec<String>,
    errors: &'a mut Vec<String>,
    count: usize,
    prefix: &'a str,
}

fn is_jwt_authn(filter: &Value) -> bool {
    filter
        .pointer("/typed_config/@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with(JWT_AUTHN_TYPE))
}

impl EnvoyConversion<'_> {
    /// Finds every http_connection_manager (an object with `http_filters`) and converts its filters.
    fn walk(&mut self, value: &mut Value, path: &str) {
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

/// Sets `key` on an object (a no-op on anything else, which these builders never make).
fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_string(), value);
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

/// host and port of an http(s) URI, and whether it is https.
fn uri_host_port(uri: &str) -> Option<(String, u16, bool)> {
    let (scheme, rest) = uri.split_once("://")?;
    let https = scheme.eq_ignore_ascii_case("https");
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host.to_string(), port.parse().ok()?)
        }
        _ => (authority.to_string(), if https { 443 } else { 80 }),
    };
    Some((host, port, https))
}

/// Istio RequestAuthentication → WasmPlugin (+ ServiceEntry and DestinationRule per JWKS host), with the
/// semantics istiod gives jwt_authn: a request without a token passes, an invalid token is refused.
fn request_authentication(
    value: &Value,
    options: &Options,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>, String> {
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("request-authentication");
    let namespace = value.pointer("/metadata/namespace").cloned();
    let rules = value
        .pointer("/spec/jwtRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rules.is_empty() {
        return Err(format!("RequestAuthentication {name} has no spec.jwtRules"));
    }
    let mut providers = Map::new();
    let mut hosts: BTreeMap<String, (u16, bool)> = BTreeMap::new();
    let known = [
        "issuer",
        "audiences",
        "jwksUri",
        "jwks",
        "fromHeaders",
        "fromParams",
        "fromCookies",
        "outputPayloadToHeader",
        "outputClaimToHeaders",
        "forwardOriginalToken",
        "timeout",
    ];
    for (index, rule) in rules.iter().enumerate() {
        let field = format!("spec.jwtRules[{index}]");
        let issuer = rule
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut provider = json!({"issuer": issuer});
        if let Some(audiences) = rule.get("audiences") {
            set(&mut provider, "audiences", audiences.clone());
        }
        let timeout = rule.get("timeout").and_then(Value::as_str).unwrap_or("5s");
        if let Some(jwks) = rule.get("jwks").and_then(Value::as_str) {
            set(&mut provider, "local_jwks", json!({"inline_string": jwks}));
        } else {
            let (uri, discovery) = match rule.get("jwksUri").and_then(Value::as_str) {
                Some(uri) => (uri.to_string(), false),
                None => {
                    notes.push(format!(
                        "{field}: no jwksUri; istiod discovers it from the issuer, and so does the filter \
                         (remote_jwks.oidc_discovery)"
                    ));
                    (issuer.to_string(), true)
                }
            };
            let (host, port, https) = uri_host_port(&uri)
                .ok_or_else(|| format!("{field}: cannot read a host from \"{uri}\""))?;
            hosts.insert(host.clone(), (port, https));
            let mut remote = json!({
                "http_uri": {"uri": if discovery { String::new() } else { uri }, "cluster": format!("outbound|{port}||{host}"), "timeout": timeout},
                "cache_duration": "300s"
            });
            if discovery {
                set(&mut remote, "oidc_discovery", json!(true));
            }
            set(&mut provider, "remote_jwks", remote);
        }
        if let Some(headers) = rule.get("fromHeaders").and_then(Value::as_array) {
            let from_headers = headers
                .iter()
                .map(|h| {
                    let mut header = json!({"name": h.get("name").cloned().unwrap_or_default()});
                    if let Some(prefix) = h.get("prefix") {
                        set(&mut header, "value_prefix", prefix.clone());
                    }
                    header
                })
                .collect();
            set(&mut provider, "from_headers", from_headers);
        }
        for (from, to) in [
            ("fromParams", "from_params"),
            ("fromCookies", "from_cookies"),
        ] {
            if let Some(list) = rule.get(from) {
                set(&mut provider, to, list.clone());
            }
        }
        if let Some(header) = rule.get("outputPayloadToHeader") {
            set(&mut provider, "forward_payload_header", header.clone());
        }
        if let Some(claims) = rule.get("outputClaimToHeaders").and_then(Value::as_array) {
            let claim_to_headers = claims
                .iter()
                .map(|c| {
                    json!({
                        "header_name": c.get("header").cloned().unwrap_or_default(),
                        "claim_name": c.get("claim").cloned().unwrap_or_default()
                    })
                })
                .collect();
            set(&mut provider, "claim_to_headers", claim_to_headers);
        }
        if let Some(forward) = rule.get("forwardOriginalToken") {
            set(&mut provider, "forward", forward.clone());
        }
        for key in rule.as_object().into_iter().flat_map(|o| o.keys()) {
            if !known.contains(&key.as_str()) {
                notes.push(format!(
                    "{field}.{key}: not carried over (no equivalent in this filter)"
                ));
            }
        }
        providers.insert(format!("origins-{index}"), provider);
    }
    // istiod's requirement: one provider → any{provider, allow_missing}; several →
    // any{P1, …, Pn, all{any{P1, allow_missing}, …}} (a token, if present, must be valid for its issuer).
    let names: Vec<String> = providers.keys().cloned().collect();
    let requirement = if names.len() == 1 {
        json!({"requires_any": {"requirements": [{"provider_name": names.first()}, {"allow_missing": {}}]}})
    } else {
        let mut any: Vec<Value> = names.iter().map(|n| json!({"provider_name": n})).collect();
        let all: Vec<Value> = names
            .iter()
            .map(|n| json!({"requires_any": {"requirements": [{"provider_name": n}, {"allow_missing": {}}]}}))
            .collect();
        any.push(json!({"requires_all": {"requirements": all}}));
        json!({"requires_any": {"requirements": any}})
    };
    let config = json!({
        "providers": providers,
        "rules": [{"match": {"prefix": "/"}, "requires": requirement}],
        "bypass_cors_preflight": true
    });
    FilterConfig::parse(config.to_string().as_bytes()).map_err(|e| {
        format!(
            "RequestAuthentication {name}: the converted configuration is refused: {}: {}",
            e.field, e.reason
        )
    })?;
    notes.push(format!(
        "RequestAuthentication {name}: AuthorizationPolicy requestPrincipals and request.auth.claims read \
         jwt_authn's dynamic metadata, which a wasm filter cannot write; require tokens with this filter's rules \
         (and rule \"authorization\"), or match the claim headers"
    ));
    let mut metadata = json!({"name": format!("{name}-jwt-authn-wasm")});
    if let Some(ns) = &namespace {
        set(&mut metadata, "namespace", ns.clone());
    }
    // Shaped like deploy/istio/wasmplugin.yaml: inbound requests only (RequestAuthentication's scope on a
    // sidecar), and refused when the module cannot run.
    let mut spec = json!({
        "url": options.url,
        "imagePullPolicy": "IfNotPresent",
        "pluginName": "jwt_authn_wasm",
        "phase": "AUTHN",
        "failStrategy": "FAIL_CLOSE",
        "match": [{"mode": "SERVER"}],
        "pluginConfig": config
    });
    if let Some(sha) = &options.sha256 {
        set(&mut spec, "sha256", json!(sha));
    }
    for key in ["selector", "targetRef", "targetRefs"] {
        if let Some(v) = value.pointer(&format!("/spec/{key}")) {
            set(&mut spec, key, v.clone());
        }
    }
    let mut objects = vec![json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": metadata,
        "spec": spec
    })];
    for (host, (port, https)) in hosts {
        let object_name = format!("jwks-{}", host.replace(['.', ':', '[', ']'], "-"));
        let mut metadata = json!({"name": object_name});
        if let Some(ns) = &namespace {
            set(&mut metadata, "namespace", ns.clone());
        }
        let (port_name, protocol) = if https {
            ("https", "HTTPS")
        } else {
            ("http", "HTTP")
        };
        // As deploy/istio/jwks-issuer.yaml: the cluster only for this namespace's proxies, TLS origination
        // on the JWKS port with the certificate checked against the proxy image's CA bundle and the host.
        objects.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": metadata,
            "spec": {
                "hosts": [host],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{"number": port, "name": port_name, "protocol": protocol}],
                "exportTo": ["."]
            }
        }));
        if https {
            objects.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": metadata,
                "spec": {
                    "host": host,
                    "exportTo": ["."],
                    "trafficPolicy": {"portLevelSettings": [{
                        "port": {"number": port},
                        "tls": {
                            "mode": "SIMPLE",
                            "sni": host,
                            "caCertificates": "/etc/ssl/certs/ca-certificates.crt",
                            "subjectAltNames": [host]
                        }
                    }]}
                }
            }));
            notes.push(format!(
                "DestinationRule {object_name}: TLS to {host} is checked against the istio-proxy image's CA \
                 bundle; for a private CA mount its certificate into the proxy and set caCertificates"
            ));
        } else {
            notes.push(format!(
                "{host}: the JWKS comes over plain http://; anyone on the path can replace the keys"
            ));
        }
    }
    if options.sha256.is_none() {
        notes.push(
            "WasmPlugin: set spec.sha256 to the image's manifest digest (./build.sh image prints it), and url \
             with --url"
                .to_string(),
        );
    }
    Ok(objects)
}
