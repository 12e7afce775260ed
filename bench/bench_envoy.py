"""The Envoy configuration the benchmarks share (bench/run.sh, scaling.sh, realistic.sh, vm_loop.sh):
the bench provider, jwt_authn and this filter on the same JSON, the raw filters without configuration,
and the listeners on direct-response routes. The scripts import it with PYTHONPATH=bench (unlike
examples/envoy_config.py, which writes a deployment's bootstrap in front of an app).

One definition, so the setups a script compares stay alike and a change to the provider reaches every
benchmark."""

import json

# The `iss` of the bench tokens (tools/measure/mint_bench_tokens.rs: the shared fixture's good claims).
ISSUER = "https://issuer.example.com"
AUDIENCE = "api.example.com"
# The one claim header of the hot path: the ceiling filter adds the same header.
SUB_HEADER = [{"header_name": "x-jwt-sub", "claim_name": "sub"}]

ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")
# The route's name, for the per_route_config setup; no other setup reads it.
ROUTE_NAME = "bench_route"


def provider(jwks, issuer=ISSUER, claim_to_headers=None, cache_size=None):
    """A provider with a local JWKS, the bench audience and its claim headers (`x-jwt-sub` unless
    given); `cache_size` adds jwt_authn's `jwt_cache_config` (this filter reads it too)."""
    p = {"issuer": issuer, "audiences": [AUDIENCE], "local_jwks": {"inline_string": jwks},
         "claim_to_headers": SUB_HEADER if claim_to_headers is None else claim_to_headers}
    if cache_size is not None:
        p["jwt_cache_config"] = {"jwt_cache_size": cache_size}
    return p


def requiring(p, name="bench"):
    """A configuration of provider `p` alone, required on every path."""
    return {"providers": {name: p},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": name}}]}


def native(config):
    """Envoy's jwt_authn on `config`, then the router."""
    return [{"name": "envoy.filters.http.jwt_authn",
             "typed_config": dict(config, **{"@type": JWT_AUTHN_TYPE})}, ROUTER]


def wasm(name, filename, configuration=None):
    """A wasm filter in a VM of its own (`vm_id` = `name`); with `configuration`, this filter's root
    context on that JSON, without it a raw filter that takes none (the empty and ceiling filters)."""
    config = {"name": name, "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                                          "code": {"local": {"filename": filename}}}}
    if configuration is not None:
        config["root_id"] = "jwt_authn_wasm"
        config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                   "value": json.dumps(configuration)}
    return [{"name": "envoy.filters.http.wasm", "typed_config": {"@type": WASM_TYPE, "config": config}},
            ROUTER]


def listener(name, port, filters):
    """A loopback listener whose one route answers 200 "ok" itself: no upstream in the measurement."""
    route = {"name": ROUTE_NAME, "match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
    return {"name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                "typed_config": {"@type": HCM_TYPE, "stat_prefix": name,
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                                                        "routes": [route]}]},
                    "http_filters": filters}}]}]}


def write_bootstrap(path, listeners, admin_port):
    """Writes Envoy's bootstrap: the listeners, and the admin interface the scripts read CPU and
    readiness from."""
    with open(path, "w") as out:
        json.dump({"admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                             "port_value": admin_port}}},
                   "static_resources": {"listeners": listeners}}, out)
