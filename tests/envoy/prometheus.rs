//! Envoy's `/stats/prometheus` after allowed and denied requests, read by a real Prometheus text-format
//! parser (prometheus_client's `text_string_to_metric_families`, installed into .venv by
//! `./build.sh setup`): the filter's counters and gauges are there, with their types and values, under
//! the names docs/metrics-prometheus.md gives.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use common::envoy::repo_root;
use common::fixtures::{self, Keys};
use common::servers::{get_with_token, http_request};
use common::{fixture_config, Scenario};

/// Reads the exposition on stdin, prints `{family: {"type": ..., "samples": [[name, labels, value]]}}`.
/// The parser raises on anything that is not valid text format, which fails the test.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(out))
"#;

const INSTALL: &str = "the Prometheus parser is missing: run `./build.sh setup` (installs \
prometheus_client into .venv)";

/// The parsed exposition, by family name.
fn parse_exposition(text: &str) -> BTreeMap<String, Value> {
    let python = repo_root().join(".venv/bin/python");
    assert!(python.exists(), "{INSTALL}: no {}", python.display());
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write exposition");
    let output = child.wait_with_output().expect("parser output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "{INSTALL}"
    );
    assert!(
        output.status.success(),
        "parser refused the output: {stderr}"
    );
    serde_json::from_slice(&output.stdout).expect("parser JSON")
}

/// (type, value) of a family with one sample.
fn single(families: &BTreeMap<String, Value>, name: &str) -> (String, f64) {
    let family = families.get(name).unwrap_or_else(|| {
        let ours: Vec<&String> = families
            .keys()
            .filter(|k| k.starts_with("jwt_authn_wasm"))
            .collect();
        panic!("no family {name}; ours: {ours:?}")
    });
    let samples = family["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 1, "{name}: {samples:?}");
    (
        family["type"].as_str().expect("type").to_string(),
        samples[0][2].as_f64().expect("value"),
    )
}

#[test]
fn prometheus_output_carries_our_counters_and_gauges_with_their_types() {
    let scenario = Scenario::start(2, false, fixture_config);
    let port = scenario.envoy.wasm_port;
    for _ in 0..3 {
        let ok = get_with_token(port, "/api", &fixtures::good_token());
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    for _ in 0..2 {
        let missing = http_request(port, "/api", &[]);
        assert_eq!(missing.status, 401);
    }
    let mut expired_claims = fixtures::good_claims(fixtures::now() - 7200);
    expired_claims["exp"] = serde_json::json!(fixtures::now() - 3600);
    let expired = fixtures::mint(&Keys::load().rsa2048, "RS256", &expired_claims);
    assert_eq!(get_with_token(port, "/api", &expired).status, 401);

    // The scrape goes through the test client, which reads the chunked body the admin endpoint sends.
    // The filter adds up `allowed` and sets its gauges on its 100 ms tick.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let scrape = http_request(scenario.envoy.admin_port, "/stats/prometheus", &[]);
    assert_eq!(scrape.status, 200);
    let text = scrape.body;
    assert!(
        !text.contains("wasmcustom"),
        "Envoy strips the wasmcustom prefix in Prometheus output"
    );
    let families = parse_exposition(&text);

    let expectations = [
        ("jwt_authn_wasm_allowed", "counter", Some(3.0)),
        ("jwt_authn_wasm_denied_jwt_missing", "counter", Some(2.0)),
        ("jwt_authn_wasm_denied_jwt_expired", "counter", Some(1.0)),
        (
            "jwt_authn_wasm_provider_jwt_jwks_fetch_success",
            "counter",
            Some(1.0),
        ),
        // Every key of the fixture JWKS is usable.
        (
            "jwt_authn_wasm_provider_jwt_keys_in_use",
            "gauge",
            Some(Keys::load().jwks()["keys"].as_array().expect("keys").len() as f64),
        ),
        (
            "jwt_authn_wasm_provider_jwt_jwks_age_seconds",
            "gauge",
            None,
        ),
        ("jwt_authn_wasm_vm_memory_bytes", "gauge", None),
    ];
    for (name, kind, value) in expectations {
        let (got_kind, got_value) = single(&families, name);
        assert_eq!(got_kind, kind, "{name}");
        if let Some(value) = value {
            assert_eq!(got_value, value, "{name}");
        }
    }
    assert!(single(&families, "jwt_authn_wasm_vm_memory_bytes").1 >= 65536.0);
    assert!(single(&families, "jwt_authn_wasm_provider_jwt_jwks_age_seconds").1 < 60.0);
    // Envoy's own metrics are in the same scrape, under its envoy_ namespace.
    assert_eq!(
        families
            .get("envoy_cluster_upstream_rq_completed")
            .map(|f| f["type"].clone()),
        Some(Value::from("counter"))
    );
    // The scrape config's `params: { filter: [...] }` (docs/metrics-prometheus.md): the regex applies to
    // the /stats name, so it can tell the filter's metrics from Envoy's own `wasm.jwt_authn_wasm.*`.
    let filtered = http_request(
        scenario.envoy.admin_port,
        "/stats/prometheus?filter=wasmcustom[.]jwt_authn_wasm[.]",
        &[],
    );
    let filtered = parse_exposition(&filtered.body);
    assert!(
        filtered.contains_key("jwt_authn_wasm_allowed"),
        "{filtered:?}"
    );
    assert!(
        filtered.keys().all(|k| k.starts_with("jwt_authn_wasm")),
        "{:?}",
        filtered.keys()
    );
    println!(
        "FIGURE prometheus families: {} in all, {} from this filter",
        families.len(),
        families
            .keys()
            .filter(|k| k.starts_with("jwt_authn_wasm"))
            .count()
    );
}
