//! Istio: a RequestAuthentication becomes a WasmPlugin running this filter, with the ServiceEntry and
//! DestinationRule that let the proxy reach each JWKS host.

use std::collections::BTreeMap;

use jwt_authn_wasm::config::FilterConfig;
use serde_json::{json, Map, Value};

use super::{set, Options};

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
pub(super) fn request_authentication(
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
