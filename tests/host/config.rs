//! Configuration parsing: jwt_authn's shape and defaults, and refusals that name the field.

use crate::common;

use std::time::Duration;

use jwt_authn_wasm::config::parse_duration;
use jwt_authn_wasm::config::PathMatch;
use jwt_authn_wasm::config::Requirement;
use jwt_authn_wasm::config::TokenLocations;
use jwt_authn_wasm::config::{FilterConfig, JwksSource};
use serde_json::{json, Value};

use common::fixtures::Keys;

fn remote_provider() -> Value {
    json!({
        "issuer": "https://issuer.example.com",
        "remote_jwks": {"http_uri": {"uri": "https://issuer.example.com/jwks?v=1", "cluster": "idp", "timeout": "2.5s"}}
    })
}

fn parse(config: Value) -> Result<FilterConfig, String> {
    FilterConfig::parse(config.to_string().as_bytes()).map_err(|e| e.to_string())
}

fn refusal(config: Value) -> String {
    match parse(config) {
        Ok(_) => panic!("configuration was accepted"),
        Err(e) => e,
    }
}

#[test]
fn remote_provider_gets_jwt_authn_defaults() {
    let config = parse(json!({
        "providers": {"idp": remote_provider()},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]
    }))
    .unwrap();
    let provider = &config.providers[0];
    assert_eq!(provider.name, "idp");
    assert_eq!(
        provider.issuer.as_deref(),
        Some("https://issuer.example.com")
    );
    assert!(!provider.forward, "forward defaults to false");
    assert_eq!(provider.clock_skew_seconds, 60);
    assert_eq!(provider.locations, TokenLocations::jwt_authn_default());
    let JwksSource::Remote(remote) = &provider.jwks_source else {
        panic!("remote")
    };
    assert_eq!(remote.cache_duration, Duration::from_secs(600));
    assert_eq!(remote.timeout, Duration::from_millis(2500));
    assert_eq!(remote.authority, "issuer.example.com");
    assert_eq!(remote.path, "/jwks?v=1");
    assert!(matches!(&config.rules[0].route_match.path, PathMatch::Prefix(p) if p == "/"));
    assert!(matches!(
        config.rules[0].requirement.as_deref(),
        Some(Requirement::Provider {
            provider: 0,
            audiences: None,
            ..
        })
    ));
}

#[test]
fn every_issue_field_is_read() {
    let keys = Keys::load();
    let config = parse(json!({
        "providers": {
            "local": {
                "issuer": "me",
                "audiences": ["https://api.example.com/", "other"],
                "local_jwks": {"inline_string": keys.jwks().to_string()},
                "forward": true,
                "from_headers": [{"name": "X-Token", "value_prefix": "Token "}],
                "from_params": ["jwt"],
                "claim_to_headers": [{"header_name": "X-Sub", "claim_name": "sub"}],
                "forward_payload_header": "X-Payload",
                "pad_forward_payload_header": true,
                "clear_route_cache": true,
                "clock_skew_seconds": 5
            }
        },
        "rules": [{"match": {"path": "/exact"}, "requires": {"provider_name": "local"}}, {"match": {"prefix": "/"}}]
    }))
    .unwrap();
    let p = &config.providers[0];
    assert_eq!(
        p.audiences,
        vec!["api.example.com", "other"],
        "audiences are normalised"
    );
    assert!(p.forward);
    assert_eq!(p.clock_skew_seconds, 5);
    assert_eq!(
        &*p.locations.headers[0].name, "x-token",
        "header names are lower-cased"
    );
    assert_eq!(p.locations.headers[0].value_prefix, "Token ");
    assert_eq!(p.locations.params, vec!["jwt".into()]);
    assert_eq!(&*p.claim_to_headers[0].header_name, "x-sub");
    assert_eq!(p.forward_payload_header.as_deref(), Some("x-payload"));
    assert!(p.pad_forward_payload_header);
    let JwksSource::Local(jwks) = &p.jwks_source else {
        panic!("local")
    };
    assert_eq!(jwks.keys.len(), 6);
    assert_eq!(
        config.identity_headers,
        vec!["x-sub".into(), "x-payload".into()]
    );
    assert!(matches!(&config.rules[0].route_match.path, PathMatch::Exact(p) if p == "/exact"));
    assert!(config.rules[1].requirement.is_none());
    assert_eq!(&*config.metric_prefix, "jwt_authn_wasm");
    let prefixed = parse(json!({"providers": {}, "stat_prefix": "edge.orders-v2"})).unwrap();
    assert_eq!(&*prefixed.metric_prefix, "jwt_authn_wasm.edge.orders-v2");
}

#[test]
fn refusals_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"providers": {"idp": {"issuer": "x", "remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "audiencez": []}}}),
         "providers.idp.audiencez: unknown field `audiencez`, expected one of `issuer`, `audiences`"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/"}}}}}),
         "providers.idp.remote_jwks.http_uri.cluster: must name the Envoy cluster"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}, "cache_duration": "5m"}}}}),
         "providers.idp.remote_jwks.cache_duration: \"5m\" is not a duration"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c", "timeout": "-1s"}}}}}),
         "providers.idp.remote_jwks.http_uri.timeout: \"-1s\" is not a duration"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "ftp://x/", "cluster": "c"}}}}}),
         "providers.idp.remote_jwks.http_uri.uri: \"ftp://x/\" must start with http:// or https://"),
        (json!({"providers": {"idp": remote_provider()}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}]}),
         "rules[0].requires.provider_name: no provider named \"nope\""),
        (json!({"providers": {"idp": remote_provider()}, "rules": [{"match": {"prefix": "/", "path": "/x"}}]}),
         "rules[0].match: give exactly one of \"prefix\", \"path\", \"path_separated_prefix\" or \"safe_regex\""),
        (json!({"providers": {"idp": {"issuer": "x"}}}),
         "providers.idp: give exactly one of \"remote_jwks\" or \"local_jwks\""),
        (json!({"providers": {"idp": {"local_jwks": {"filename": "/etc/jwks.json"}}}}),
         "providers.idp.local_jwks.filename: a wasm filter cannot read files"),
        (json!({"providers": {"idp": {"local_jwks": {"inline_string": "{\"keys\": []}"}}}}),
         "providers.idp.local_jwks.inline_string: JWKS has no usable key"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "claim_to_headers": [{"header_name": "bad header", "claim_name": "sub"}]}}}),
         "providers.idp.claim_to_headers[0].header_name: \"bad header\" is not a valid HTTP header name"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "claim_to_headers": [{"header_name": "x-a", "claim_name": "a", "claim_path": [{"key": "a"}]}]}}}),
         "providers.idp.claim_to_headers[0]: set exactly one of claim_name and claim_path"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "claim_to_headers": [{"header_name": "x-a"}]}}}),
         "providers.idp.claim_to_headers[0]: set exactly one of claim_name and claim_path"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "claim_to_headers": [{"header_name": "x-a", "claim_path": []}]}}}),
         "providers.idp.claim_to_headers[0].claim_path: must have at least one segment"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "claim_to_headers": [{"header_name": "x-a", "claim_path": [{"key": "a"}, {"key": ""}]}]}}}),
         "providers.idp.claim_to_headers[0].claim_path[1].key: must not be empty"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "clock_skew_seconds": -1}}}),
         "providers.idp.clock_skew_seconds: invalid value"),
        (json!({"providers": {}, "rulez": []}), "unknown field `rulez`"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "failed_status_in_metadata": "jwt_status"}}}),
         "providers.idp.failed_status_in_metadata: a wasm filter cannot write dynamic metadata"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "normalize_payload_in_metadata": {"space_delimited_claims": ["scope"]}}}}),
         "providers.idp.normalize_payload_in_metadata: a wasm filter cannot write dynamic metadata"),
        (json!({"providers": {}, "stat_prefix": "a..b"}),
         "stat_prefix: \"a..b\": use letters, digits, '_' and '-', in segments separated by single dots"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "clear_route_cache": "yes"}}}),
         "providers.idp.clear_route_cache: invalid type"),
        (json!({"providers": {"idp": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c"}}, "payload_in_filter_state": "dpop_nonce"}}}),
         "providers.idp.payload_in_filter_state: \"dpop_nonce\" is reserved for the DPoP server nonce; choose another name"),
    ];
    for (config, expected) in cases {
        let error = refusal(config.clone());
        assert!(
            error.contains(expected),
            "for {config}\n  got:  {error}\n  want: {expected}"
        );
    }
}

#[test]
fn malformed_json_and_empty_configuration_are_refused() {
    let not_json = FilterConfig::parse(b"{\"providers\": ")
        .unwrap_err()
        .to_string();
    assert!(not_json.contains("EOF"), "{not_json}");
    let trailing = FilterConfig::parse(b"{} {}").unwrap_err().to_string();
    assert!(trailing.contains("trailing"), "{trailing}");
    let empty = FilterConfig::parse(b"  ").unwrap_err().to_string();
    assert!(empty.contains("empty"), "{empty}");
    let bytes = FilterConfig::parse(&[0xff, 0xfe, 0x00])
        .unwrap_err()
        .to_string();
    assert!(!bytes.is_empty());
}

#[test]
fn durations_follow_proto_json() {
    assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    for bad in [
        "",
        "s",
        "5",
        "5m",
        "-1s",
        "1.s",
        ".5s",
        "1.0000000001s",
        "1e3s",
        " 5s",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn jwks_lifecycle_options_have_defaults_and_bounds() {
    let config = parse(json!({"providers": {"idp": remote_provider()}})).unwrap();
    let JwksSource::Remote(remote) = &config.providers[0].jwks_source else {
        panic!("remote")
    };
    let p = remote.policy;
    assert_eq!(p.max_staleness, Duration::from_secs(86_400));
    assert!(p.honor_cache_control && p.refetch_on_unknown_kid);
    assert_eq!(
        (p.min_cache_duration, p.max_cache_duration),
        (Duration::from_secs(30), Duration::from_secs(86_400))
    );
    assert_eq!(p.unknown_kid_refetch_interval, Duration::from_secs(5));
    assert_eq!((p.limits.max_bytes, p.limits.max_keys), (512 * 1024, 256));
    assert!(!remote.oidc_discovery);

    let mut provider = remote_provider();
    provider["remote_jwks"] = json!({
        "http_uri": {"cluster": "idp"},
        "oidc_discovery": true,
        "max_staleness": "60s",
        "honor_cache_control": false,
        "unknown_kid_refetch_interval": "30s",
        "refetch_on_unknown_kid": false,
        "max_jwks_bytes": 4096,
        "max_jwks_keys": 8
    });
    let config = parse(json!({"providers": {"idp": provider}})).unwrap();
    let JwksSource::Remote(remote) = &config.providers[0].jwks_source else {
        panic!("remote")
    };
    assert_eq!(
        remote.uri, "https://issuer.example.com/.well-known/openid-configuration",
        "from the issuer"
    );
    assert_eq!(remote.path, "/.well-known/openid-configuration");
    assert!(
        remote.oidc_discovery
            && !remote.policy.honor_cache_control
            && !remote.policy.refetch_on_unknown_kid
    );
    assert_eq!(remote.policy.max_staleness, Duration::from_secs(60));
    assert_eq!(
        (
            remote.policy.limits.max_bytes,
            remote.policy.limits.max_keys
        ),
        (4096, 8)
    );

    let remote_with = |extra: Value| {
        let mut provider = remote_provider();
        for (k, v) in extra.as_object().unwrap() {
            provider["remote_jwks"][k] = v.clone();
        }
        refusal(json!({"providers": {"idp": provider}}))
    };
    assert!(remote_with(json!({"max_jwks_bytes": 0}))
        .contains("providers.idp.remote_jwks.max_jwks_bytes: 0 is outside"));
    assert!(remote_with(json!({"max_jwks_keys": 100_000}))
        .contains("providers.idp.remote_jwks.max_jwks_keys"));
    assert!(remote_with(json!({"unknown_kid_refetch_interval": "0s"}))
        .contains("unknown_kid_refetch_interval: must be at least 0.1s"));
    assert!(
        remote_with(json!({"min_cache_duration": "100s", "max_cache_duration": "10s"}))
            .contains("min_cache_duration")
    );
    assert!(
        remote_with(json!({"retry_policy": {"retry_back_off": {"base_interval": "0.01s"}}}))
            .contains("retry_policy.retry_back_off")
    );
    assert!(
        remote_with(json!({"async_fetch": {"failed_refetch_duration": "soon"}}))
            .contains("async_fetch.failed_refetch_duration")
    );
    assert!(remote_with(json!({"retry_policy": {"retry_on": "5xx"}}))
        .contains("unknown field `retry_on`"));
}

#[test]
fn jwt_cache_config_sizes_the_verified_token_cache_like_jwt_authn() {
    let defaults = parse(json!({"providers": {"idp": remote_provider()}})).unwrap();
    assert_eq!(defaults.providers[0].jwt_cache_size, 100);
    assert_eq!(defaults.providers[0].jwt_max_cached_token_bytes, 4096);
    let mut provider = remote_provider();
    provider["jwt_cache_config"] = json!({"jwt_cache_size": 5000, "jwt_max_token_size": 8192});
    let sized = parse(json!({"providers": {"idp": provider}})).unwrap();
    assert_eq!(sized.providers[0].jwt_cache_size, 5000);
    assert_eq!(sized.providers[0].jwt_max_cached_token_bytes, 8192);
    let mut provider = remote_provider();
    provider["jwt_cache_config"] = json!({"jwt_cache_size": 0});
    let zero = parse(json!({"providers": {"idp": provider}})).unwrap();
    assert_eq!(
        zero.providers[0].jwt_cache_size, 100,
        "0 means the default, as in jwt_authn"
    );
    let mut provider = remote_provider();
    provider["jwt_cache_config"] = json!({"size": 1});
    assert!(refusal(json!({"providers": {"idp": provider}})).contains("jwt_cache_config.size"));
}
