//! The `jwt-authn-wasm` command-line tool (src/bin/jwt-authn-wasm): `check` passes every shipped file,
//! names the field of every broken one, and `convert` turns a jwt_authn configuration into one that
//! real Envoy runs with jwt_authn's verdicts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::envoy::{free_port, repo_root, wasm_module, Envoy, TempDir};
use crate::common::fixtures::{self, provider_json, Expect, Keys};
use crate::common::servers::{get_with_token, http_request, EchoUpstream, JwksServer};
use serde_json::{json, Value};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the CLI from the repository root (file names in its output are as given).
fn cli(args: &[&str]) -> Run {
    cli_with_stdin(args, None)
}

fn cli_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwt-authn-wasm"))
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jwt-authn-wasm");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("jwt-authn-wasm output");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "node_modules" || n == "target")
            {
                continue;
            }
            files_under(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
}

/// Whether a shipped YAML/JSON file is something `check` is for: some document is a Kubernetes object
/// (`apiVersion` and `kind`), an Envoy configuration (bootstrap, listener, discovery resource, typed
/// config), or this filter's configuration (`providers` / `rules`). Anything else (package.json, a
/// compose file, a CI workflow) is not, and is skipped.
fn is_checkable(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let documents: Vec<Value> = if let Ok(value) = serde_json::from_str::<Value>(&text) {
        vec![value]
    } else {
        use serde::Deserialize;
        serde_yaml_ng::Deserializer::from_str(&text)
            .filter_map(|d| Value::deserialize(d).ok())
            .collect()
    };
    const MARKERS: &[&str] = &[
        "static_resources",
        "dynamic_resources",
        "admin",
        "filter_chains",
        "resources",
        "@type",
        "typed_config",
        "providers",
        "rules",
    ];
    documents.iter().any(|d| {
        d.as_object().is_some_and(|o| {
            (o.contains_key("apiVersion") && o.contains_key("kind"))
                || MARKERS.iter().any(|k| o.contains_key(*k))
        })
    })
}

/// Every shipped configuration: envoy/, deploy/, examples/ and docs/ (whichever exist).
fn shipped_files() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let root = repo_root();
    let mut all = Vec::new();
    for dir in ["envoy", "deploy", "examples", "docs"] {
        files_under(&root.join(dir), &mut all);
    }
    all.into_iter().partition(|p| is_checkable(p))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_shipped_configuration_passes_check() {
    let (checked, skipped) = shipped_files();
    for path in &skipped {
        println!(
            "skipped (not Kubernetes, Envoy or filter configuration): {}",
            relative(path)
        );
    }
    assert!(
        checked.iter().any(|p| p.ends_with("envoy/envoy.yaml")),
        "envoy/envoy.yaml must be among the checked files: {checked:?}"
    );
    let names: Vec<String> = checked.iter().map(|p| relative(p)).collect();
    let mut args = vec!["check"];
    args.extend(names.iter().map(String::as_str));
    let run = cli(&args);
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "check refused a shipped file:\n{}", run.stdout);
    // Shipped files are clean: not even a warning (a shadowed rule or a missing cluster in a file users
    // copy is a defect).
    assert_eq!(run.stdout, "", "check found warnings in shipped files");
    // The demo configuration is clean: no warning either, and its filter was found.
    let demo = cli(&["check", "envoy/envoy.yaml"]);
    assert_eq!((demo.code, demo.stdout.as_str()), (0, ""));
    assert!(
        demo.stderr.contains("1 file(s), 0 error(s), 0 warning(s)"),
        "{}",
        demo.stderr
    );
}

/// Each broken file fails with exit code 1 and exactly the lines in its `.expected` file, which name the
/// place in the file and the field of the configuration.
#[test]
fn broken_corpus_fails_with_the_field_named() {
    let mut files = Vec::new();
    files_under(&repo_root().join("tests/cli_corpus/broken"), &mut files);
    assert!(files.len() >= 7, "corpus: {files:?}");
    for path in files {
        let name = relative(&path);
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{name} has no .expected file"));
        let run = cli(&["check", &name]);
        assert_eq!(
            run.code, 1,
            "{name}: exit code\n{}{}",
            run.stdout, run.stderr
        );
        assert_eq!(run.stdout, expected, "{name}: output");
        for line in expected.lines() {
            assert!(line.starts_with(&format!("{name}: ")), "{line}");
            assert!(line.contains(" → "), "{line}");
        }
    }
}

#[test]
fn broken_corpus_lines_name_these_fields() {
    // The exact lines live in the .expected files; these pin the field each broken file is about.
    for (file, line) in [
        (
            "tests/cli_corpus/broken/unknown_provider.yaml",
            "tests/cli_corpus/broken/unknown_provider.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration → rules[1].requires.provider_name: no provider named \"demox\" in providers",
        ),
        (
            "tests/cli_corpus/broken/multi_document.yaml",
            "tests/cli_corpus/broken/multi_document.yaml: document 2: spec.pluginConfig → providers.corp.local_jwks.filename: a wasm filter cannot read files; put the JWKS in \"inline_string\"",
        ),
        (
            "tests/cli_corpus/broken/extension_policy_field.yaml",
            "tests/cli_corpus/broken/extension_policy_field.yaml: spec.wasm[0].config → rules[0].requirment_name: unknown field `requirment_name`, expected one of `match`, `requires`, `requirement_name`, `authorization`, `report_only`, `resource_metadata`",
        ),
        (
            "tests/cli_corpus/broken/payload_in_metadata.json",
            "tests/cli_corpus/broken/payload_in_metadata.json: (file) → providers.corp.payload_in_metadata: a wasm filter cannot write dynamic metadata; use \"payload_in_filter_state\" (read as filter state wasm.<name>)",
        ),
    ] {
        let run = cli(&["check", file]);
        assert_eq!(run.code, 1);
        assert_eq!(run.stdout.trim_end(), line);
    }
}

/// Each file of the warnings corpus loads (exit 0) with exactly the warnings in its `.expected` file; an
/// empty one is a configuration with near misses that must raise nothing.
#[test]
fn warnings_corpus_gives_exactly_the_expected_warnings() {
    let mut files = Vec::new();
    files_under(&repo_root().join("tests/cli_corpus/warnings"), &mut files);
    assert!(files.len() >= 3, "corpus: {files:?}");
    for path in files {
        let name = relative(&path);
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{name} has no .expected file"));
        let run = cli(&["check", &name]);
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stdout, expected, "{name}");
    }
}

#[test]
fn likely_mistakes_name_each_field() {
    let run = cli(&["check", "tests/cli_corpus/warnings/likely_mistakes.yaml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let fields: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| {
            let after = l.split(" → ").nth(1).unwrap_or_default();
            after.split(": warning: ").next().unwrap_or_default()
        })
        .collect();
    assert_eq!(
        fields,
        [
            "providers.corp.remote_jwks.http_uri.cluster",
            "providers.corp.remote_jwks.http_uri.uri",
            "providers.corp.claim_to_headers[0].header_name",
            "providers.legacy",
            "rules[1].match",
        ]
    );
    let shadows = cli(&["check", "tests/cli_corpus/warnings/more_shadows.json"]);
    let shadowed: Vec<&str> = shadows
        .stdout
        .lines()
        .filter_map(|l| l.split(" → ").nth(1))
        .filter_map(|l| l.split(": warning: ").next())
        .collect();
    assert_eq!(
        shadowed,
        ["rules[1].match", "rules[3].match", "rules[5].match"]
    );
}

/// A filter under another root_id/vm_id/module name is not checked unless named with --name, and a file
/// without any configuration of this filter says that nothing was checked.
#[test]
fn other_names_are_checked_with_name_flag() {
    let dir = TempDir::new("cli-name");
    let source = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).expect("envoy.yaml");
    let renamed = source
        .replace("jwt_authn_wasm.wasm", "auth.wasm")
        .replace("jwt_authn_wasm", "my_auth")
        .replace(
            "\"provider_name\": \"demo\"",
            "\"provider_name\": \"demox\"",
        );
    assert!(!renamed.contains("jwt_authn_wasm"));
    let path = dir.0.join("renamed.yaml");
    std::fs::write(&path, renamed).expect("write");
    let file = path.display().to_string();
    let unnamed = cli(&["check", &file]);
    assert_eq!(unnamed.code, 0);
    assert!(
        unnamed.stdout.contains("nothing checked"),
        "{}",
        unnamed.stdout
    );
    let named = cli(&["check", "--name", "my_auth", &file]);
    assert_eq!(named.code, 1, "{}", named.stdout);
    assert!(
        named
            .stdout
            .contains("→ rules[1].requires.provider_name: no provider named \"demox\""),
        "{}",
        named.stdout
    );
}

#[test]
fn unreadable_input_exits_2() {
    for file in [
        "tests/cli_corpus/unreadable/bad_syntax.yaml",
        "tests/cli_corpus/unreadable/binary.json",
        "tests/cli_corpus/unreadable/does-not-exist.yaml",
    ] {
        let run = cli(&["check", file, "envoy/envoy.yaml"]);
        assert_eq!(run.code, 2, "{file}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.starts_with(&format!("{file}: cannot read: ")),
            "{}",
            run.stdout
        );
    }
    // Unreadable outranks errors: exit 2 even with a broken file beside it.
    let run = cli(&[
        "check",
        "tests/cli_corpus/broken/unknown_provider.yaml",
        "tests/cli_corpus/unreadable/bad_syntax.yaml",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    // Usage errors are exit 2 as well.
    assert_eq!(cli(&["check"]).code, 2);
    assert_eq!(cli(&["frobnicate"]).code, 2);
}

#[test]
fn json_format_is_a_stable_array() {
    let run = cli(&[
        "check",
        "--format",
        "json",
        "tests/cli_corpus/broken/unknown_provider.yaml",
        "tests/cli_corpus/warnings/likely_mistakes.yaml",
        "tests/cli_corpus/unreadable/bad_syntax.yaml",
        "envoy/envoy.yaml",
    ]);
    assert_eq!(run.code, 2);
    let array: Vec<Value> = serde_json::from_str(&run.stdout).expect("stdout is one JSON array");
    assert_eq!(array.len(), 1 + 5 + 1);
    for item in &array {
        let keys: Vec<&String> = item.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["field", "file", "location", "message", "severity"]);
    }
    assert_eq!(
        array[0],
        json!({
            "file": "tests/cli_corpus/broken/unknown_provider.yaml",
            "location": "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration",
            "field": "rules[1].requires.provider_name",
            "severity": "error",
            "message": "no provider named \"demox\" in providers"
        })
    );
    let severities: Vec<&str> = array
        .iter()
        .map(|d| d["severity"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        severities,
        [
            "error",
            "warning",
            "warning",
            "warning",
            "warning",
            "warning",
            "unreadable"
        ]
    );
    // Clean input: an empty array, exit 0.
    let clean = cli(&["check", "--format", "json", "envoy/envoy.yaml"]);
    assert_eq!((clean.code, clean.stdout.trim()), (0, "[]"));
}

#[test]
fn converted_request_authentication_passes_check_with_istio_semantics() {
    let digest = "0123456789abcdef".repeat(4);
    let run = cli(&[
        "convert",
        "--sha256",
        &digest,
        "tests/cli_corpus/convert/request_authentication.yaml",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("requestPrincipals"), "{}", run.stderr);
    let checked = cli_with_stdin(&["check", "-"], Some(&run.stdout));
    assert_eq!(
        (checked.code, checked.stdout.as_str()),
        (0, ""),
        "{}",
        run.stdout
    );
    // The real CRD schemas (tools/manifest-check, as for deploy/) accept every object.
    let dir = TempDir::new("cli-istio");
    let out = dir.0.join("converted.yaml");
    std::fs::write(&out, &run.stdout).expect("write");
    let schemas = validate_manifests(&out);
    assert!(schemas.contains("5 passed, 0 failed"), "{schemas}");
    // A digest with the "sha256:" prefix is what Istio refuses: so does convert.
    let prefixed = format!("sha256:{digest}");
    let refused = cli(&[
        "convert",
        "--sha256",
        &prefixed,
        "tests/cli_corpus/convert/request_authentication.yaml",
    ]);
    assert_eq!(refused.code, 2);
    use serde::Deserialize;
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&run.stdout)
        .map(|d| Value::deserialize(d).expect("YAML document"))
        .collect();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "WasmPlugin",
            "ServiceEntry",
            "DestinationRule",
            "ServiceEntry",
            "DestinationRule"
        ]
    );
    let plugin = &documents[0];
    assert_eq!(
        plugin["spec"]["selector"],
        json!({"matchLabels": {"app": "api"}})
    );
    assert_eq!(plugin["metadata"]["namespace"], "shop");
    let config = &plugin["spec"]["pluginConfig"];
    let corp = &config["providers"]["origins-0"];
    assert_eq!(
        corp["remote_jwks"]["http_uri"]["cluster"],
        "outbound|443||login.example.com"
    );
    assert_eq!(
        corp["from_headers"],
        json!([{"name": "Authorization", "value_prefix": "Bearer "}])
    );
    assert_eq!(corp["from_params"], json!(["access_token"]));
    assert_eq!(corp["from_cookies"], json!(["session"]));
    assert_eq!(corp["forward"], true);
    assert_eq!(corp["forward_payload_header"], "x-jwt-payload");
    assert_eq!(
        corp["claim_to_headers"],
        json!([{"header_name": "x-jwt-sub", "claim_name": "sub"}])
    );
    assert_eq!(
        config["providers"]["origins-1"]["remote_jwks"]["http_uri"]["cluster"],
        "outbound|8443||keys.partners.example.org"
    );
    // istiod's requirement for two rules: a token, if present, must be valid; none is fine.
    assert_eq!(
        config["rules"][0]["requires"],
        json!({"requires_any": {"requirements": [
            {"provider_name": "origins-0"},
            {"provider_name": "origins-1"},
            {"requires_all": {"requirements": [
                {"requires_any": {"requirements": [{"provider_name": "origins-0"}, {"allow_missing": {}}]}},
                {"requires_any": {"requirements": [{"provider_name": "origins-1"}, {"allow_missing": {}}]}}
            ]}}
        ]}})
    );
    assert_eq!(plugin["spec"]["sha256"], json!(digest));
    let rule = &documents[2];
    assert_eq!(rule["spec"]["host"], "keys.partners.example.org");
    assert_eq!(
        rule["spec"]["trafficPolicy"]["portLevelSettings"],
        json!([{"port": {"number": 8443}, "tls": {
            "mode": "SIMPLE",
            "sni": "keys.partners.example.org",
            "caCertificates": "/etc/ssl/certs/ca-certificates.crt",
            "subjectAltNames": ["keys.partners.example.org"]
        }}])
    );
    assert_eq!(
        documents[1]["spec"]["ports"],
        json!([{"number": 8443, "name": "https", "protocol": "HTTPS"}])
    );
}

/// Runs the CRD schema validators of tools/manifest-check on `file`; panics with the install command when
/// they are missing, and with the output when a document fails.
fn validate_manifests(file: &Path) -> String {
    let tool = repo_root().join("tools/manifest-check");
    assert!(
        tool.join("node_modules/@kubernetes-models/istio").is_dir(),
        "the manifest checker's npm packages are missing: run `./build.sh setup` (npm ci in tools/manifest-check)"
    );
    let output = Command::new("node")
        .arg(tool.join("check.mjs"))
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): run `./build.sh setup`"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "CRD schemas refused {}:\n{text}",
        file.display()
    );
    text
}

#[test]
fn convert_refuses_input_without_jwt_authn() {
    let run = cli(&["convert", "envoy/envoy.yaml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("nothing to convert"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(
        cli(&["convert", "tests/cli_corpus/unreadable/bad_syntax.yaml"]).code,
        2
    );
}

#[test]
fn convert_corpus_output_passes_check() {
    let run = cli(&["convert", "tests/cli_corpus/convert/jwt_authn.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let notes: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(notes.len(), 2, "{}", run.stderr);
    assert!(
        notes[0].contains("per-route config (disabled (no token required))")
            && notes[0].contains("rules[0]")
    );
    assert!(notes[1].contains("payload_in_metadata") && notes[1].contains("wasm.jwt_payload"));
    // The same lines head the YAML output as comments.
    for note in &notes {
        let text = note.split_once(": ").map(|(_, t)| t).unwrap_or_default();
        assert!(
            run.stdout
                .contains(&format!("# jwt-authn-wasm convert: {text}")),
            "{text}"
        );
    }
    assert!(
        !run.stdout.contains("jwt_authn.v3"),
        "jwt_authn left in:\n{}",
        run.stdout
    );
    let checked = cli_with_stdin(&["check", "-"], Some(&run.stdout));
    assert_eq!((checked.code, checked.stdout.as_str()), (0, ""));
}

/// An Envoy bootstrap with jwt_authn in front of the echo upstream, as a user would have it: the fixture
/// provider (with payload_in_metadata), a rule requiring it, and a per-route `disabled` for /public.
fn jwt_authn_bootstrap(admin: u16, listener: u16, upstream: u16, jwks: &JwksServer) -> Value {
    let mut provider = provider_json(&jwks.uri(), "jwks");
    provider["payload_in_metadata"] = json!("jwt_payload");
    let cluster = |name: &str, port: u16| {
        json!({
            "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}
        })
    };
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "main",
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [
                                {"match": {"prefix": "/public"}, "route": {"cluster": "upstream"},
                                 "typed_per_filter_config": {"envoy.filters.http.jwt_authn": {
                                     "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
                                     "disabled": true}}},
                                {"name": "health", "match": {"prefix": "/health"}, "route": {"cluster": "upstream"},
                                 "typed_per_filter_config": {"envoy.filters.http.jwt_authn": {
                                     "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
                                     "disabled": true}}},
                                {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
                            ]
                        }]},
                        "http_filters": [
                            {"name": "envoy.filters.http.jwt_authn", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                                "providers": {"jwt": provider},
                                "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}]
                            }},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}]
            }],
            "clusters": [cluster("upstream", upstream), cluster("jwks", jwks.port)]
        }
    })
}

#[test]
fn converted_jwt_authn_config_runs_in_envoy_with_jwt_authn_verdicts() {
    let module = wasm_module();
    let keys = Keys::load();
    let jwks = JwksServer::start(keys.jwks().to_string());
    let upstream = EchoUpstream::start();
    let dir = TempDir::new("cli-convert");
    let (native_admin, native_port) = (free_port(), free_port());
    let (wasm_admin, wasm_port) = (free_port(), free_port());
    let write_yaml = |name: &str, value: &Value| {
        let path = dir.0.join(name);
        std::fs::write(&path, serde_yaml_ng::to_string(value).expect("YAML")).expect("write");
        path
    };
    let original = write_yaml(
        "original.yaml",
        &jwt_authn_bootstrap(native_admin, native_port, upstream.port, &jwks),
    );
    // The copy to convert is JSON (JSON in, JSON out), the original YAML: both readers are used.
    let to_convert = dir.0.join("to-convert.json");
    std::fs::write(
        &to_convert,
        serde_json::to_string_pretty(&jwt_authn_bootstrap(
            wasm_admin,
            wasm_port,
            upstream.port,
            &jwks,
        ))
        .expect("JSON"),
    )
    .expect("write");
    let module_arg = module.display().to_string();
    let run = cli(&[
        "convert",
        "--module",
        &module_arg,
        &to_convert.display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("became per_route_config.health"),
        "{}",
        run.stderr
    );
    let converted_json: Value = serde_json::from_str(&run.stdout).expect("JSON in, JSON out");
    assert!(!run.stdout.contains("jwt_authn.v3"), "{}", run.stdout);
    let converted = dir.0.join("converted.json");
    std::fs::write(&converted, converted_json.to_string()).expect("write converted");
    let checked = cli(&["check", &converted.display().to_string()]);
    assert_eq!((checked.code, checked.stdout.as_str()), (0, ""));

    let native = Envoy::spawn_file(&original, &repo_root(), native_admin, native_port);
    let wasm = Envoy::spawn_file(&converted, &repo_root(), wasm_admin, wasm_port);
    native.wait_ready();
    wasm.wait_ready();

    let mut mismatches = Vec::new();
    let all = fixtures::fixtures(&keys, fixtures::now());
    assert!(all.len() > 40, "{} fixtures", all.len());
    for fixture in all {
        let ours = get_with_token(wasm_port, "/api/orders?x=1", &fixture.token);
        let theirs = get_with_token(native_port, "/api/orders?x=1", &fixture.token);
        let expected_status = match fixture.expect {
            Expect::Allow => 200,
            Expect::Deny(status, _) => status,
        };
        let same_body =
            ours.status == 200 || fixture.our_body.is_some() || ours.body == theirs.body;
        let body = |r: &crate::common::servers::HttpResponse| {
            if r.status == 200 {
                String::new()
            } else {
                r.body.clone()
            }
        };
        let line = format!(
            "{:28} converted {} {:?} | jwt_authn {} {:?}",
            fixture.name,
            ours.status,
            body(&ours),
            theirs.status,
            body(&theirs)
        );
        println!("{line}");
        if ours.status != theirs.status || theirs.status != expected_status || !same_body {
            mismatches.push(line);
        }
        if ours.status == 200 && theirs.status == 200 {
            let (mine, native_headers) = (ours.upstream_headers(), theirs.upstream_headers());
            assert_eq!(
                mine["x-jwt-sub"], native_headers["x-jwt-sub"],
                "{}",
                fixture.name
            );
            assert_eq!(mine["x-jwt-sub"], json!([fixtures::SUBJECT]));
        }
    }
    // The per-route `disabled` became a rule on the unnamed route, and per_route_config on the named
    // one: /public and /health need no token in either.
    for port in [wasm_port, native_port] {
        assert_eq!(http_request(port, "/public/page", &[]).status, 200);
        assert_eq!(http_request(port, "/health/live", &[]).status, 200);
        let missing = http_request(port, "/api/orders", &[]);
        assert_eq!(
            (missing.status, missing.body.as_str()),
            (401, fixtures::MISSING)
        );
    }
    wasm.assert_no_vm_failure();
    assert!(
        mismatches.is_empty(),
        "verdict mismatches:\n{}",
        mismatches.join("\n")
    );
}
