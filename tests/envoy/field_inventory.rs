//! The jwt_authn field inventory (docs/jwt-authn-fields.md), checked both ways: every row's field is one
//! that Envoy 1.40's jwt_authn really takes (`envoy --mode validate` accepts a configuration that sets
//! it), and this filter's parser does what the row says (takes it, or refuses it naming the field). The
//! document's table must list exactly these rows with these statuses, so neither can drift.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::envoy::{native_jwt_authn_filter, validate_config_file, TempDir};
use crate::common::fixtures::Keys;
use jwt_authn_wasm::config::FilterConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Implemented with jwt_authn's meaning.
    Implemented,
    /// Taken, and without effect here; the document says why.
    Accepted,
    /// Refused at load with the field named; the document says why and what to use.
    Refused,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Accepted => "accepted",
            Status::Refused => "refused",
        }
    }
}

/// One row: the field, what this filter does with it, and a change to the base configuration that sets
/// it (merged into it; `null` removes a key).
struct Row {
    field: &'static str,
    status: Status,
    patch: Value,
}

fn row(field: &'static str, status: Status, patch: Value) -> Row {
    Row {
        field,
        status,
        patch,
    }
}

/// The provider `p` with its keys inline and one rule requiring it.
fn base_config() -> Value {
    json!({
        "providers": {"p": {
            "issuer": "https://issuer.example.com",
            "local_jwks": {"inline_string": Keys::load().jwks().to_string()}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    })
}

fn provider(fields: Value) -> Value {
    json!({"providers": {"p": fields}})
}

fn remote(fields: Value) -> Value {
    let mut remote_jwks = json!({"http_uri": {
        "uri": "http://127.0.0.1/jwks", "cluster": "jwks", "timeout": "1s"
    }});
    merge(&mut remote_jwks, fields);
    provider(json!({"local_jwks": null, "remote_jwks": remote_jwks}))
}

fn rule(fields: Value) -> Value {
    let mut first = json!({"match": {"prefix": "/"}, "requires": {"provider_name": "p"}});
    merge(&mut first, fields);
    json!({"rules": [first]})
}

fn requires(requirement: Value) -> Value {
    json!({"rules": [{"match": {"prefix": "/"}, "requires": requirement}]})
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

fn rows(jwks_file: &Path) -> Vec<Row> {
    use Status::*;
    let any_two = json!([{"provider_name": "p"}, {"provider_name": "q"}]);
    let q = json!({"issuer": "https://q.example.com", "local_jwks": {"inline_string": Keys::load().jwks().to_string()}});
    vec![
        // JwtAuthentication
        row("providers", Implemented, json!({})),
        row("rules", Implemented, json!({})),
        row(
            "requirement_map",
            Implemented,
            json!({
                "requirement_map": {"r": {"provider_name": "p"}},
                "rules": [{"match": {"prefix": "/"}, "requirement_name": "r"}]
            }),
        ),
        row(
            "bypass_cors_preflight",
            Implemented,
            json!({"bypass_cors_preflight": true}),
        ),
        row(
            "strip_failure_response",
            Implemented,
            json!({"strip_failure_response": true}),
        ),
        row("stat_prefix", Implemented, json!({"stat_prefix": "orders"})),
        row(
            "filter_state_rules",
            Refused,
            json!({"filter_state_rules": {
                "name": "selector", "requires": {"a": {"provider_name": "p"}}
            }}),
        ),
        // JwtProvider
        row("issuer", Implemented, json!({})),
        row(
            "audiences",
            Implemented,
            provider(json!({"audiences": ["api"]})),
        ),
        row(
            "subjects",
            Implemented,
            provider(json!({"subjects": {"prefix": "spiffe://"}})),
        ),
        row(
            "require_expiration",
            Implemented,
            provider(json!({"require_expiration": true})),
        ),
        row(
            "max_lifetime",
            Implemented,
            provider(json!({"max_lifetime": "3600s"})),
        ),
        row("remote_jwks", Implemented, remote(json!({}))),
        row("local_jwks.inline_string", Implemented, json!({})),
        row(
            "local_jwks.filename",
            Refused,
            provider(json!({"local_jwks": {
                "inline_string": null, "filename": jwks_file.display().to_string()
            }})),
        ),
        row("forward", Implemented, provider(json!({"forward": true}))),
        row(
            "from_headers",
            Implemented,
            provider(json!({"from_headers": [{"name": "x-jwt"}]})),
        ),
        row(
            "from_params",
            Implemented,
            provider(json!({"from_params": ["jwt"]})),
        ),
        row(
            "from_cookies",
            Implemented,
            provider(json!({"from_cookies": ["session"]})),
        ),
        row(
            "forward_payload_header",
            Implemented,
            provider(json!({"forward_payload_header": "x-payload"})),
        ),
        row(
            "pad_forward_payload_header",
            Implemented,
            provider(json!({
                "forward_payload_header": "x-payload", "pad_forward_payload_header": true
            })),
        ),
        row(
            "payload_in_metadata",
            Refused,
            provider(json!({"payload_in_metadata": "jwt"})),
        ),
        row(
            "header_in_metadata",
            Refused,
            provider(json!({"header_in_metadata": "jwt_header"})),
        ),
        row(
            "failed_status_in_metadata",
            Refused,
            provider(json!({"failed_status_in_metadata": "jwt_failure"})),
        ),
        row(
            "normalize_payload_in_metadata",
            Refused,
            provider(json!({
                "normalize_payload_in_metadata": {"space_delimited_claims": ["scope"]}
            })),
        ),
        row(
            "clock_skew_seconds",
            Implemented,
            provider(json!({"clock_skew_seconds": 30})),
        ),
        row(
            "jwt_cache_config.jwt_cache_size",
            Implemented,
            provider(json!({"jwt_cache_config": {"jwt_cache_size": 50}})),
        ),
        row(
            "jwt_cache_config.jwt_max_token_size",
            Implemented,
            provider(json!({"jwt_cache_config": {"jwt_max_token_size": 2048}})),
        ),
        row(
            "claim_to_headers",
            Implemented,
            provider(json!({"claim_to_headers": [
                {"header_name": "x-sub", "claim_name": "sub"}
            ]})),
        ),
        row(
            "claim_to_headers[].claim_path",
            Implemented,
            provider(json!({"claim_to_headers": [
                {"header_name": "x-roles", "claim_path": [{"key": "https://example.com/roles"}]}
            ]})),
        ),
        row(
            "clear_route_cache",
            Accepted,
            provider(json!({"clear_route_cache": true})),
        ),
        // RemoteJwks
        row("remote_jwks.http_uri", Implemented, remote(json!({}))),
        row(
            "remote_jwks.cache_duration",
            Implemented,
            remote(json!({"cache_duration": "300s"})),
        ),
        row(
            "remote_jwks.async_fetch.fast_listener",
            Accepted,
            remote(json!({"async_fetch": {"fast_listener": true}})),
        ),
        row(
            "remote_jwks.async_fetch.failed_refetch_duration",
            Implemented,
            remote(json!({"async_fetch": {"failed_refetch_duration": "2s"}})),
        ),
        row(
            "remote_jwks.retry_policy.retry_back_off",
            Implemented,
            remote(json!({"retry_policy": {
                "retry_back_off": {"base_interval": "0.5s", "max_interval": "10s"}
            }})),
        ),
        row(
            "remote_jwks.retry_policy.num_retries",
            Accepted,
            remote(json!({"retry_policy": {"num_retries": 3}})),
        ),
        row(
            "remote_jwks.retry_policy.retry_on",
            Refused,
            remote(json!({"retry_policy": {"retry_on": "5xx"}})),
        ),
        // JwtHeader
        row(
            "from_headers[].value_prefix",
            Implemented,
            provider(json!({"from_headers": [
                {"name": "authorization", "value_prefix": "Token "}
            ]})),
        ),
        // JwtRequirement
        row("requires.provider_name", Implemented, json!({})),
        row(
            "requires.provider_and_audiences",
            Implemented,
            requires(json!({
                "provider_and_audiences": {"provider_name": "p", "audiences": ["api"]}
            })),
        ),
        row(
            "requires.requires_any",
            Implemented,
            json!({
                "providers": {"q": q.clone()},
                "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": any_two.clone()}}}]
            }),
        ),
        row(
            "requires.requires_all",
            Implemented,
            json!({
                "providers": {"q": q},
                "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": any_two}}}]
            }),
        ),
        row(
            "requires.allow_missing",
            Implemented,
            requires(json!({"allow_missing": {}})),
        ),
        row(
            "requires.allow_missing_or_failed",
            Implemented,
            requires(json!({"allow_missing_or_failed": {}})),
        ),
        // RequirementRule and its RouteMatch
        row(
            "rules[].requirement_name",
            Implemented,
            json!({
                "requirement_map": {"r": {"provider_name": "p"}},
                "rules": [{"match": {"prefix": "/"}, "requirement_name": "r"}]
            }),
        ),
        row("rules[].match.prefix", Implemented, json!({})),
        row(
            "rules[].match.path",
            Implemented,
            json!({"rules": [{"match": {"path": "/login"}, "requires": {"provider_name": "p"}}]}),
        ),
        row(
            "rules[].match.safe_regex",
            Implemented,
            json!({"rules": [{"match": {"safe_regex": {"regex": "/a/.*"}}, "requires": {"provider_name": "p"}}]}),
        ),
        row(
            "rules[].match.path_separated_prefix",
            Implemented,
            json!({"rules": [{"match": {"path_separated_prefix": "/admin"}, "requires": {"provider_name": "p"}}]}),
        ),
        row(
            "rules[].match.case_sensitive",
            Implemented,
            rule(json!({"match": {"case_sensitive": false}})),
        ),
        row(
            "rules[].match.headers",
            Implemented,
            rule(json!({"match": {"headers": [{"name": ":method", "exact_match": "GET"}]}})),
        ),
        row(
            "rules[].match.query_parameters",
            Implemented,
            rule(
                json!({"match": {"query_parameters": [{"name": "debug", "present_match": true}]}}),
            ),
        ),
        row(
            "rules[].match.grpc",
            Refused,
            rule(json!({"match": {"grpc": {}}})),
        ),
        row(
            "rules[].match.tls_context",
            Refused,
            rule(json!({"match": {"tls_context": {"presented": true}}})),
        ),
        row(
            "rules[].match.dynamic_metadata",
            Refused,
            rule(json!({"match": {"dynamic_metadata": [{
                "filter": "f", "path": [{"key": "k"}], "value": {"present_match": true}
            }]}})),
        ),
        row(
            "rules[].match.runtime_fraction",
            Refused,
            rule(json!({"match": {"runtime_fraction": {
                "default_value": {"numerator": 50}
            }}})),
        ),
    ]
}

/// An Envoy bootstrap with one listener per configuration, each running jwt_authn with it.
fn bootstrap(configs: &[Value]) -> Value {
    let listeners: Vec<Value> = configs
        .iter()
        .enumerate()
        .map(|(index, config)| {
            json!({
                "name": format!("row{index}"),
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 20000 + index}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": format!("row{index}"),
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                            {"match": {"prefix": "/"}, "direct_response": {"status": 200}}
                        ]}]},
                        "http_filters": [
                            native_jwt_authn_filter(config),
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                            }}
                        ]
                    }
                }]}]
            })
        })
        .collect();
    json!({
        "static_resources": {
            "listeners": listeners,
            "clusters": [{
                "name": "jwks", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "jwks", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}}
                }}]}]}
            }]
        }
    })
}

fn validate(dir: &TempDir, name: &str, configs: &[Value]) -> (bool, String) {
    let path = dir.0.join(format!("{name}.json"));
    std::fs::write(&path, bootstrap(configs).to_string()).expect("write bootstrap");
    validate_config_file(&path, &dir.0)
}

fn configured(row: &Row) -> Value {
    let mut config = base_config();
    merge(&mut config, row.patch.clone());
    config
}

/// The last segment of a row's field, as it appears in this filter's refusal.
fn field_name(field: &str) -> &str {
    field.rsplit(['.', ']']).next().unwrap_or(field)
}

#[test]
fn every_row_is_a_jwt_authn_field_and_this_filter_does_what_the_row_says() {
    let dir = TempDir::new("field-inventory");
    let jwks_file = dir.0.join("jwks.json");
    std::fs::write(&jwks_file, Keys::load().jwks().to_string()).expect("write jwks");
    let rows = rows(&jwks_file);
    let configs: Vec<Value> = rows.iter().map(configured).collect();

    // Envoy's jwt_authn takes every row's configuration (one run; on a failure, find the row).
    let (accepted, output) = validate(&dir, "all", &configs);
    if !accepted {
        for (row, config) in rows.iter().zip(&configs) {
            let (ok, output) = validate(&dir, "one", std::slice::from_ref(config));
            assert!(
                ok,
                "jwt_authn 1.40 refuses the row `{}`: {output}",
                row.field
            );
        }
        panic!("jwt_authn refused the rows together but each alone: {output}");
    }

    // This filter does what each row says.
    for (row, config) in rows.iter().zip(&configs) {
        let parsed = FilterConfig::parse(config.to_string().as_bytes());
        match (row.status, parsed) {
            (Status::Implemented | Status::Accepted, Ok(_)) => {}
            (Status::Implemented | Status::Accepted, Err(error)) => {
                panic!("row `{}` should load here: {error}", row.field)
            }
            (Status::Refused, Ok(_)) => panic!("row `{}` should be refused here", row.field),
            (Status::Refused, Err(error)) => {
                let text = error.to_string();
                assert!(
                    text.contains(field_name(row.field)),
                    "the refusal of `{}` names the field: {text}",
                    row.field
                );
            }
        }
    }
}

#[test]
fn the_document_lists_exactly_these_rows() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/jwt-authn-fields.md"
    ))
    .expect("docs/jwt-authn-fields.md");
    let documented: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let field = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((field.to_string(), cells.get(2)?.to_string()))
        })
        .collect();
    let expected: Vec<(String, String)> = rows(Path::new("/jwks.json"))
        .iter()
        .map(|row| (row.field.to_string(), row.status.word().to_string()))
        .collect();
    assert_eq!(documented, expected, "docs/jwt-authn-fields.md rows");
}
