//! Per-route requirements, side by side: jwt_authn configured with `PerRouteConfig` on each route
//! (`typed_per_filter_config`), this filter with the same entries in `per_route_config` keyed by the
//! route's name; and Envoy's generic `FilterConfig { disabled: true }`, which turns either filter off
//! on a route. Same statuses and bodies from both.

use serde_json::{json, Value};

use crate::common::fixtures::{self, Keys};
use crate::common::servers::{get_with_token, http_request};
use crate::common::{fixture_config, Scenario};

const PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig";
const GENERIC_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

fn config(uri: &str) -> Value {
    let mut config = fixture_config(uri);
    config["requirement_map"] = json!({
        "other_audience": {"provider_and_audiences": {
            "provider_name": "jwt", "audiences": ["other.example.com"]
        }},
        "optional": {"requires_any": {"requirements": [
            {"provider_name": "jwt"}, {"allow_missing": {}}
        ]}}
    });
    config["per_route_config"] = json!({
        "orders": {"requirement_name": "other_audience"},
        "optional": {"requirement_name": "optional"},
        "health": {"disabled": true}
    });
    config
}

/// The routes of both listeners: four named ones with per-route configuration, a named and an unnamed
/// one without.
fn routes(native: bool) -> Value {
    let per_route = |entry: Value| {
        if native {
            let mut typed = entry;
            typed["@type"] = json!(PER_ROUTE_TYPE);
            json!({"envoy.filters.http.jwt_authn": typed})
        } else {
            json!({})
        }
    };
    let filter = if native {
        "envoy.filters.http.jwt_authn"
    } else {
        "envoy.filters.http.wasm"
    };
    let upstream = json!({"cluster": "upstream"});
    json!([
        {"name": "orders", "match": {"prefix": "/orders"}, "route": upstream,
         "typed_per_filter_config": per_route(json!({"requirement_name": "other_audience"}))},
        {"name": "optional", "match": {"prefix": "/optional"}, "route": upstream,
         "typed_per_filter_config": per_route(json!({"requirement_name": "optional"}))},
        {"name": "health", "match": {"prefix": "/health"}, "route": upstream,
         "typed_per_filter_config": per_route(json!({"disabled": true}))},
        {"name": "off", "match": {"prefix": "/off"}, "route": upstream,
         "typed_per_filter_config": {filter: {"@type": GENERIC_TYPE, "disabled": true}}},
        {"match": {"prefix": "/unnamed"}, "route": upstream},
        {"name": "default", "match": {"prefix": "/"}, "route": upstream}
    ])
}

fn edit(bootstrap: &mut Value) {
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .expect("listeners");
    for listener in listeners {
        let native = listener["name"] == "native";
        let manager = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
        manager["route_config"]["virtual_hosts"][0]["routes"] = routes(native);
        if native {
            // per_route_config is this filter's field; jwt_authn has the same entries on its routes.
            let filter = &mut manager["http_filters"][0]["typed_config"];
            filter
                .as_object_mut()
                .expect("jwt_authn config")
                .remove("per_route_config");
        }
    }
}

#[test]
fn per_route_requirements_and_disabled_routes_answer_like_jwt_authn_per_route_config() {
    let scenario = Scenario::start_edited(1, true, config, edit);
    let keys = Keys::load();
    let good = fixtures::good_token();
    let mut expired_claims = fixtures::good_claims(fixtures::now());
    expired_claims["exp"] = json!(fixtures::now() - 3600);
    let expired = fixtures::mint(&keys.rsa2048, "RS256", &expired_claims);
    // (path, token, expected status for both filters)
    let cases: [(&str, Option<&str>, u16); 12] = [
        ("/orders/1", Some(&good), 403),
        ("/orders/1", None, 401),
        ("/optional", None, 200),
        ("/optional", Some(&good), 200),
        ("/optional", Some(&expired), 401),
        ("/health", None, 200),
        ("/health", Some(&expired), 200),
        ("/off", None, 200),
        ("/unnamed", None, 401),
        ("/unnamed", Some(&good), 200),
        ("/api", None, 401),
        ("/api", Some(&good), 200),
    ];
    for (path, token, expected) in cases {
        let (ours, native) = match token {
            Some(token) => (
                get_with_token(scenario.envoy.wasm_port, path, token),
                get_with_token(scenario.envoy.native_port, path, token),
            ),
            None => (
                http_request(scenario.envoy.wasm_port, path, &[]),
                http_request(scenario.envoy.native_port, path, &[]),
            ),
        };
        let what = format!(
            "{path} with {}",
            if token.is_some() {
                "a token"
            } else {
                "no token"
            }
        );
        assert_eq!(
            native.status, expected,
            "jwt_authn, {what}: {}",
            native.body
        );
        assert_eq!(ours.status, expected, "ours, {what}: {}", ours.body);
        if expected != 200 {
            assert_eq!(ours.body, native.body, "{what}");
        }
    }
    // A verified token on the optional route still hands its claims on.
    let optional = get_with_token(scenario.envoy.wasm_port, "/optional", &good);
    assert_eq!(
        optional.upstream_headers()["x-jwt-sub"],
        json!([fixtures::SUBJECT])
    );
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn per_route_config_is_refused_at_load_when_it_names_nothing() {
    use jwt_authn_wasm::config::FilterConfig;
    let refusal = |per_route: Value| {
        let mut config = fixture_config("http://127.0.0.1:1/jwks");
        config["per_route_config"] = per_route;
        FilterConfig::parse(config.to_string().as_bytes())
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        refusal(json!({"orders": {"requirement_name": "nope"}})),
        "per_route_config.orders.requirement_name: no requirement named \"nope\" in requirement_map"
    );
    assert_eq!(
        refusal(json!({"orders": {}})),
        "per_route_config.orders: give exactly one of \"disabled\" or \"requirement_name\""
    );
    assert_eq!(
        refusal(json!({"orders": {"disabled": false}})),
        "per_route_config.orders.disabled: must be true (leave the route out to keep the rules)"
    );
}
