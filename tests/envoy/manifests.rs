//! The Kubernetes manifests we ship (deploy/, and every Kubernetes YAML block in docs/*.md) are checked the
//! way a cluster would check them and the way the filter would read them:
//! - tools/manifest-check validates each document against the real CRD schemas (validators generated from
//!   Istio's CRDs and from Envoy Gateway's and Gateway API's types), and refuses broken copies;
//! - each embedded filter configuration (WasmPlugin `pluginConfig`, EnvoyExtensionPolicy `config`) is
//!   parsed by the filter's own parser, as the JSON text Istio and Envoy Gateway hand the filter;
//! - the names that tie the pieces together agree (the JWKS cluster the filter calls is the one the
//!   ServiceEntry/DestinationRule or the EnvoyPatchPolicy creates, with TLS checked), and Envoy accepts
//!   the patched-in cluster;
//! - each shipped configuration, handed to the filter in a real Envoy as JSON text with its JWKS cluster
//!   under the name the manifests give it, answers as docs/istio.md and docs/envoy-gateway.md say;
//! - `deploy/render.sh` writes copies with a real image and digest that pass the same checks.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

use common::envoy::{repo_root, validate_config_file, TempDir};
use jwt_authn_wasm::config::FilterConfig;

const INSTALL_HINT: &str =
    "the manifest checker's npm packages are missing: run `./build.sh setup` \
(it runs `npm ci` in tools/manifest-check; Node.js and npm come from apt)";

const EXAMPLE_IMAGE: &str = "registry.example.com/jwt-authn-wasm:0.1.0";
const EXAMPLE_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One run of tools/manifest-check.
struct Checked {
    success: bool,
    output: String,
    documents: Vec<Value>,
}

impl Checked {
    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.documents
            .iter()
            .filter(move |d| d["object"]["kind"] == kind)
    }

    fn objects_of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.of_kind(kind).map(|d| &d["object"])
    }
}

fn run_checker(files: &[PathBuf], scratch: &Path) -> Checked {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let tool = repo_root().join("tools/manifest-check");
    assert!(
        tool.join("node_modules/@kubernetes-models/istio").is_dir()
            && tool
                .join("node_modules/@kubernetes-models/envoy-gateway")
                .is_dir()
            && tool
                .join("node_modules/@kubernetes-models/gateway-api")
                .is_dir(),
        "{INSTALL_HINT}"
    );
    let summary = scratch.join(format!(
        "summary-{}.json",
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    let output = Command::new("node")
        .arg(tool.join("check.mjs"))
        .arg("--json")
        .arg(&summary)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): {INSTALL_HINT}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(
        &std::fs::read(&summary).unwrap_or_else(|e| panic!("no summary ({e}):\n{text}")),
    )
    .unwrap();
    Checked {
        success: output.status.success(),
        output: text,
        documents: summary["documents"].as_array().unwrap().clone(),
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every manifest under deploy/ and every docs/*.md (the checker takes their Kubernetes YAML blocks).
fn shipped_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = yaml_files(&root.join("deploy"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The shipped files, checked once for all the tests that read them (each node run loads every schema).
fn check_shipped() -> &'static Checked {
    static SHIPPED: OnceLock<Checked> = OnceLock::new();
    let checked = SHIPPED.get_or_init(|| {
        let scratch = TempDir::new("manifests");
        run_checker(&shipped_files(), &scratch.0)
    });
    assert!(
        checked.success,
        "shipped manifests fail the CRD schemas:\n{}",
        checked.output
    );
    checked
}

/// The filter configurations embedded in WasmPlugins and EnvoyExtensionPolicies, with where they are.
fn embedded_configs(checked: &Checked) -> Vec<(String, Value)> {
    let mut configs = Vec::new();
    for doc in checked.of_kind("WasmPlugin") {
        configs.push((where_(doc), doc["object"]["spec"]["pluginConfig"].clone()));
    }
    for doc in checked.of_kind("EnvoyExtensionPolicy") {
        for wasm in doc["object"]["spec"]["wasm"].as_array().unwrap() {
            configs.push((where_(doc), wasm["config"].clone()));
        }
    }
    configs
}

fn where_(doc: &Value) -> String {
    format!("{}#{}", doc["source"].as_str().unwrap(), doc["index"])
}

/// Istio and Envoy Gateway give the filter its configuration as JSON text (Istio marshals the
/// pluginConfig Struct to JSON in a StringValue; Envoy Gateway passes the config's raw JSON): parse that.
fn parse_embedded(config: &Value) -> Result<FilterConfig, String> {
    FilterConfig::parse(&serde_json::to_vec(config).unwrap()).map_err(|e| e.to_string())
}

/// The host of an `https://host[:port]/path` URI.
fn https_host(uri: &str) -> &str {
    let rest = uri
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("the shipped JWKS URI {uri} is not https"));
    rest.split('/').next().unwrap()
}

fn remote_jwks(config: &Value) -> Vec<(String, String)> {
    config["providers"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            let http_uri = &p["remote_jwks"]["http_uri"];
            (
                http_uri["uri"].as_str().unwrap().to_string(),
                http_uri["cluster"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn shipped_manifests_pass_the_crd_schemas() {
    let checked = check_shipped();
    for doc in &checked.documents {
        assert_eq!(doc["ok"], true, "{}", checked.output);
    }
    assert!(checked.documents.len() >= 12, "{}", checked.output);
    for kind in [
        "WasmPlugin",
        "ServiceEntry",
        "DestinationRule",
        "EnvoyExtensionPolicy",
        "EnvoyPatchPolicy",
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "ConfigMap",
    ] {
        assert!(
            checked.of_kind(kind).next().is_some(),
            "no {kind} was checked:\n{}",
            checked.output
        );
    }
    for doc in ["docs/istio.md", "docs/envoy-gateway.md"] {
        let path = repo_root().join(doc).display().to_string();
        assert!(
            checked
                .documents
                .iter()
                .any(|d| d["source"].as_str().unwrap().starts_with(&path)),
            "no Kubernetes YAML of {doc} was checked:\n{}",
            checked.output
        );
    }
    // The shipped files carry the documented example; deploy/render.sh replaces exactly these.
    let wasm_plugin = checked.objects_of_kind("WasmPlugin").next().unwrap();
    assert_eq!(wasm_plugin["spec"]["url"], format!("oci://{EXAMPLE_IMAGE}"));
    assert_eq!(wasm_plugin["spec"]["sha256"], EXAMPLE_DIGEST);
    assert_eq!(wasm_plugin["spec"]["phase"], "AUTHN");
}

#[test]
fn embedded_filter_configurations_parse_with_the_filters_parser() {
    let checked = check_shipped();
    let configs = embedded_configs(checked);
    assert!(configs.len() >= 2, "{configs:?}");
    for (place, config) in &configs {
        let parsed = parse_embedded(config)
            .unwrap_or_else(|e| panic!("{place}: the filter refuses its configuration: {e}"));
        assert!(!parsed.providers.is_empty(), "{place}");
    }
}

#[test]
fn istio_jwks_cluster_is_declared_and_verified() {
    let checked = check_shipped();
    let mut checked_providers = 0;
    for plugin in checked.objects_of_kind("WasmPlugin") {
        assert_eq!(plugin["spec"]["failStrategy"], "FAIL_CLOSE");
        for (uri, cluster) in remote_jwks(&plugin["spec"]["pluginConfig"]) {
            let host = https_host(&uri);
            // Istio's cluster name for port 443 of a host: outbound|<port>|<subset>|<host>.
            assert_eq!(cluster, format!("outbound|443||{host}"), "{uri}");
            assert!(
                checked.objects_of_kind("ServiceEntry").any(|se| {
                    se["spec"]["hosts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|h| h == host)
                        && se["spec"]["ports"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["number"] == 443)
                }),
                "no ServiceEntry declares {host}:443, so Istio builds no cluster {cluster}"
            );
            let tls_checked = checked.objects_of_kind("DestinationRule").any(|dr| {
                if dr["spec"]["host"] != host {
                    return false;
                }
                let policy = &dr["spec"]["trafficPolicy"];
                let mut settings = vec![&policy["tls"]];
                for port in policy["portLevelSettings"].as_array().into_iter().flatten() {
                    if port["port"]["number"] == 443 {
                        settings.push(&port["tls"]);
                    }
                }
                settings.iter().any(|tls| {
                    tls["mode"] == "SIMPLE"
                        && tls["sni"] == host
                        && tls["caCertificates"]
                            .as_str()
                            .is_some_and(|ca| !ca.is_empty())
                        && tls["insecureSkipVerify"] != true
                })
            });
            assert!(
                tls_checked,
                "no DestinationRule originates TLS to {host}:443 with sni and caCertificates"
            );
            checked_providers += 1;
        }
    }
    assert!(checked_providers >= 1);
}

#[test]
fn envoy_gateway_jwks_cluster_is_patched_in_with_tls_and_envoy_accepts_it() {
    let scratch = TempDir::new("manifests-envoy");
    let checked = check_shipped();
    let patched: Vec<(&Value, &Value)> = checked
        .objects_of_kind("EnvoyPatchPolicy")
        .flat_map(|policy| {
            policy["spec"]["jsonPatches"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| {
                    p["type"] == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
                        && p["operation"]["op"] == "add"
                        && p["operation"].get("path").is_none()
                })
                .map(move |p| (policy, p))
        })
        .collect();
    let mut checked_providers = 0;
    for extension in checked.objects_of_kind("EnvoyExtensionPolicy") {
        // The Gateways whose proxies run the filter: targeted directly, or the parents of a targeted
        // HTTPRoute. Each must be shipped.
        let mut gateways = Vec::new();
        for target in extension["spec"]["targetRefs"].as_array().unwrap() {
            let parents: Vec<Value> = match target["kind"].as_str().unwrap() {
                "Gateway" => vec![target["name"].clone()],
                "HTTPRoute" => checked
                    .objects_of_kind("HTTPRoute")
                    .find(|r| r["metadata"]["name"] == target["name"])
                    .unwrap_or_else(|| {
                        panic!("targeted HTTPRoute {} is not shipped", target["name"])
                    })["spec"]["parentRefs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].clone())
                    .collect(),
                other => panic!("unexpected target kind {other}"),
            };
            for gateway in parents {
                assert!(
                    checked
                        .objects_of_kind("Gateway")
                        .any(|g| g["metadata"]["name"] == gateway),
                    "the EnvoyExtensionPolicy runs on Gateway {gateway}, which is not shipped"
                );
                gateways.push(gateway);
            }
        }
        for wasm in extension["spec"]["wasm"].as_array().unwrap() {
            assert_eq!(wasm["code"]["type"], "Image");
            assert_eq!(wasm["failOpen"], false);
            for (uri, cluster) in remote_jwks(&wasm["config"]) {
                let host = https_host(&uri);
                let (policy, patch) = patched
                    .iter()
                    .find(|(_, p)| p["operation"]["value"]["name"] == cluster.as_str())
                    .unwrap_or_else(|| {
                        panic!("no EnvoyPatchPolicy adds cluster {cluster}, which the filter calls")
                    });
                assert_eq!(patch["name"], cluster.as_str());
                assert_eq!(policy["spec"]["targetRef"]["kind"], "Gateway");
                assert!(
                    gateways.contains(&policy["spec"]["targetRef"]["name"]),
                    "the cluster {cluster} is patched into another Gateway than the filter's"
                );
                let value = &patch["operation"]["value"];
                let tls = &value["transport_socket"]["typed_config"];
                assert_eq!(
                    tls["@type"],
                    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
                );
                assert_eq!(tls["sni"], host);
                let validation = &tls["common_tls_context"]["validation_context"];
                assert!(
                    validation["trusted_ca"].is_object(),
                    "cluster {cluster}: without trusted_ca Envoy does not check the certificate"
                );
                assert_eq!(
                    validation["match_typed_subject_alt_names"][0]["matcher"]["exact"],
                    host
                );
                let endpoint = &value["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
                    ["endpoint"]["address"]["socket_address"];
                assert_eq!(endpoint["address"], host);
                assert_eq!(endpoint["port_value"], 443);
                validate_cluster_with_envoy(value, &scratch.0);
                checked_providers += 1;
            }
        }
    }
    assert!(checked_providers >= 1);
    // EnvoyPatchPolicy does nothing unless Envoy Gateway's own configuration enables it.
    let enabled = checked.of_kind("ConfigMap").any(|doc| {
        doc["embedded"].as_array().into_iter().flatten().any(|eg| {
            eg["kind"] == "EnvoyGateway" && eg["extensionApis"]["enableEnvoyPatchPolicy"] == true
        })
    });
    assert!(
        enabled,
        "no shipped EnvoyGateway configuration sets extensionApis.enableEnvoyPatchPolicy: true"
    );
}

/// Envoy Gateway reads the patch value with protojson as an envoy.config.cluster.v3.Cluster; Envoy's
/// validate mode reads it the same way and checks it (names, enums, the TLS context and its CA file).
fn validate_cluster_with_envoy(cluster: &Value, scratch: &Path) {
    let ca = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        ["validation_context"]["trusted_ca"]["filename"]
        .as_str()
        .unwrap();
    assert!(
        Path::new(ca).is_file(),
        "{ca} (the CA bundle the shipped cluster names) is missing: apt-get install ca-certificates"
    );
    let bootstrap = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"clusters": [cluster]}
    });
    let path = scratch.join("patched-cluster-bootstrap.json");
    std::fs::write(&path, bootstrap.to_string()).unwrap();
    let (accepted, output) = validate_config_file(&path, scratch);
    assert!(accepted, "Envoy refuses the patched-in cluster:\n{output}");

    // The same check refuses a cluster Envoy could not load, so it is a check.
    let mut broken = cluster.clone();
    broken["dns_lookup_family"] = json!("V4_PREFERED");
    let bootstrap = json!({"static_resources": {"clusters": [broken]}});
    std::fs::write(&path, bootstrap.to_string()).unwrap();
    let (accepted, output) = validate_config_file(&path, scratch);
    assert!(!accepted, "Envoy accepted a broken cluster:\n{output}");
}

/// One deliberate mistake in a copy of a shipped file, and what the schema must say about it.
struct Breakage {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    /// The instance path (or message) in the checker's error.
    error: &'static str,
}

#[test]
fn broken_copies_are_refused_by_the_schemas() {
    let scratch = TempDir::new("manifests-broken");
    let breakages = [
        // The digest with the prefix some tools print.
        Breakage {
            file: "deploy/istio/wasmplugin.yaml",
            from: "sha256: \"0000",
            to: "sha256: \"sha256:0000",
            error: "/spec/sha256 must match pattern",
        },
        // An unquoted all-digit digest is a YAML number.
        Breakage {
            file: "deploy/istio/wasmplugin.yaml",
            from: "sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"",
            to: "sha256: 0000000000000000000000000000000000000000000000000000000000000000",
            error: "/spec/sha256 must be string",
        },
        Breakage {
            file: "deploy/istio/wasmplugin.yaml",
            from: "phase: AUTHN",
            to: "phase: AUTHENTICATION",
            error: "/spec/phase must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/istio/wasmplugin.yaml",
            from: "failStrategy: FAIL_CLOSE",
            to: "failStrategy: FAIL_CLOSED",
            error: "/spec/failStrategy must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/istio/wasmplugin.yaml",
            from: "  url: oci://",
            to: "  uri: oci://",
            error: "must have required property url",
        },
        Breakage {
            file: "deploy/istio/wasmplugin.yaml",
            from: "apiVersion: extensions.istio.io/v1alpha1",
            to: "apiVersion: extensions.istio.io/v1",
            error: "no schema for apiVersion extensions.istio.io/v1 kind WasmPlugin",
        },
        Breakage {
            file: "deploy/istio/jwks-issuer.yaml",
            from: "mode: SIMPLE",
            to: "mode: TLS",
            error: "/tls/mode must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/istio/jwks-issuer.yaml",
            from: "resolution: DNS",
            to: "resolution: DYNAMIC",
            error: "/spec/resolution must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/envoy-gateway/extension-policy.yaml",
            from: "type: Image",
            to: "type: OCI",
            error: "/code/type must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/envoy-gateway/extension-policy.yaml",
            from: "failOpen: false",
            to: "failOpen: \"no\"",
            error: "/failOpen must be boolean",
        },
        Breakage {
            file: "deploy/envoy-gateway/jwks-cluster.yaml",
            from: "type: JSONPatch",
            to: "type: StrategicMerge",
            error: "/spec/type must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/envoy-gateway/jwks-cluster.yaml",
            from: "op: add",
            to: "op: insert",
            error: "/operation/op must be equal to one of the allowed values",
        },
        Breakage {
            file: "deploy/envoy-gateway/gateway.yaml",
            from: "type: PathPrefix",
            to: "type: Prefix",
            error: "/path/type must be equal to one of the allowed values",
        },
    ];
    let mut files = Vec::new();
    for (n, breakage) in breakages.iter().enumerate() {
        let text = std::fs::read_to_string(repo_root().join(breakage.file)).unwrap();
        assert_eq!(
            text.matches(breakage.from).count(),
            1,
            "{}: expected exactly one {:?} to break",
            breakage.file,
            breakage.from
        );
        let path = scratch.0.join(format!("broken-{n}.yaml"));
        std::fs::write(&path, text.replace(breakage.from, breakage.to)).unwrap();
        files.push(path);
    }
    let checked = run_checker(&files, &scratch.0);
    assert!(!checked.success, "{}", checked.output);
    for (breakage, path) in breakages.iter().zip(&files) {
        let source = path.display().to_string();
        let refused = checked.documents.iter().any(|d| {
            d["source"] == source.as_str()
                && d["ok"] == false
                && d["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().contains(breakage.error))
        });
        assert!(
            refused,
            "{} with {:?} → {:?} was not refused with {:?}:\n{}",
            breakage.file, breakage.from, breakage.to, breakage.error, checked.output
        );
    }
}

#[test]
fn a_broken_embedded_configuration_passes_the_schema_but_not_the_filters_parser() {
    // pluginConfig and config are free-form in the CRDs: only the filter's parser can catch this.
    let scratch = TempDir::new("manifests-broken-config");
    let mut files = Vec::new();
    for (n, (file, from, to)) in [
        (
            "deploy/istio/wasmplugin.yaml",
            "        issuer: https",
            "        isuer: https",
        ),
        (
            "deploy/envoy-gateway/extension-policy.yaml",
            "provider_name: example_issuer\n        authorization",
            "provider_name: example_isuer\n        authorization",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{file}: {from:?}");
        let path = scratch.0.join(format!("broken-config-{n}.yaml"));
        std::fs::write(&path, text.replace(from, to)).unwrap();
        files.push(path);
    }
    let checked = run_checker(&files, &scratch.0);
    assert!(checked.success, "{}", checked.output);
    let configs = embedded_configs(&checked);
    assert_eq!(configs.len(), 2);
    let errors: Vec<String> = configs
        .iter()
        .map(|(place, config)| {
            parse_embedded(config)
                .err()
                .unwrap_or_else(|| panic!("{place}: the filter accepted a broken configuration"))
        })
        .collect();
    assert!(errors[0].contains("isuer"), "{}", errors[0]);
    assert!(errors[1].contains("example_isuer"), "{}", errors[1]);
}

fn render(args: &[&str]) -> (bool, String) {
    let output = Command::new("bash")
        .arg(repo_root().join("deploy/render.sh"))
        .args(args)
        .output()
        .expect("bash");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn rendered_manifests_carry_the_real_image_and_digest_and_pass_every_check() {
    let scratch = TempDir::new("manifests-render");
    // Digits only: unquoted, YAML would read this digest as a number (the render keeps it a string).
    let digest = "1234567890".repeat(7)[..64].to_string();
    let digest_file = scratch.0.join("manifest-digest");
    std::fs::write(&digest_file, format!("{digest}\n")).unwrap();
    let out = scratch.0.join("deploy");
    let image = "registry.test:5000/team/jwt-authn-wasm:1.2.3";
    let (ok, output) = render(&[
        "--image",
        image,
        "--digest-file",
        digest_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");

    let shipped = yaml_files(&repo_root().join("deploy"));
    let rendered = yaml_files(&out);
    assert_eq!(rendered.len(), shipped.len(), "{rendered:?}");
    for file in &rendered {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(!text.contains(EXAMPLE_IMAGE), "{}", file.display());
        assert!(!text.contains(EXAMPLE_DIGEST), "{}", file.display());
    }

    let checked = run_checker(&rendered, &scratch.0);
    assert!(
        checked.success,
        "rendered manifests fail:\n{}",
        checked.output
    );
    let plugin = checked.objects_of_kind("WasmPlugin").next().unwrap();
    assert_eq!(plugin["spec"]["url"], format!("oci://{image}"));
    assert_eq!(plugin["spec"]["sha256"], digest.as_str());
    let extension = checked
        .objects_of_kind("EnvoyExtensionPolicy")
        .next()
        .unwrap();
    let code = &extension["spec"]["wasm"][0]["code"]["image"];
    assert_eq!(code["url"], image);
    // Envoy Gateway's CRD has no pattern on image.sha256 (its marker lacks the +), so check it here.
    assert_eq!(code["sha256"], digest.as_str());
    for (place, config) in embedded_configs(&checked) {
        parse_embedded(&config).unwrap_or_else(|e| panic!("{place}: {e}"));
    }

    // A digest that is not 64 hex, or no image, renders nothing.
    std::fs::write(&digest_file, "sha256:abc\n").unwrap();
    let refused_out = scratch.0.join("refused");
    let (ok, output) = render(&[
        "--image",
        image,
        "--digest-file",
        digest_file.to_str().unwrap(),
        "--out",
        refused_out.to_str().unwrap(),
    ]);
    assert!(!ok, "{output}");
    assert!(output.contains("64 lowercase hex"), "{output}");
    assert!(!refused_out.exists());
    let (ok, output) = render(&["--digest", &digest, "--out", refused_out.to_str().unwrap()]);
    assert!(!ok, "{output}");
    assert!(!refused_out.exists());
}

/// The JWKS cluster a platform would create, here pointing at the loopback JWKS server: Istio's
/// ServiceEntry cluster under its `outbound|443||<host>` name, or Envoy Gateway's patched-in cluster
/// itself. The TLS the platform adds (DestinationRule / transport_socket) is dropped, as the test's JWKS
/// server speaks plain HTTP; the cluster name, which the filter must find, is kept.
fn loopback_jwks_cluster(checked: &Checked, name: &str, port: u16) -> Value {
    let patched = checked
        .objects_of_kind("EnvoyPatchPolicy")
        .flat_map(|p| p["spec"]["jsonPatches"].as_array().unwrap().iter())
        .map(|p| &p["operation"]["value"])
        .find(|cluster| cluster["name"] == name);
    let address = json!({"socket_address": {"address": "127.0.0.1", "port_value": port}});
    match patched {
        Some(cluster) => {
            let mut cluster = cluster.clone();
            let object = cluster.as_object_mut().unwrap();
            object.remove("transport_socket");
            object.insert("type".into(), json!("STATIC"));
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] =
                address;
            cluster
        }
        None => json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": address}}
            ]}]}
        }),
    }
}

#[test]
fn shipped_configurations_authenticate_in_envoy_as_documented() {
    use common::envoy::{Envoy, EnvoySetup};
    use common::fixtures::{good_claims, mint, now, Keys, MISSING};
    use common::servers::{get_with_token, http_request, EchoUpstream, JwksServer};

    let checked = check_shipped();
    let deploy = repo_root().join("deploy").display().to_string();
    let shipped: Vec<(String, Value)> = embedded_configs(checked)
        .into_iter()
        .filter(|(place, _)| place.starts_with(&deploy))
        .collect();
    assert_eq!(
        shipped.len(),
        2,
        "one configuration per platform: {shipped:?}"
    );
    let keys = Keys::load();
    let user = mint(&keys.rsa2048, "RS256", &good_claims(now()));
    let mut admin_claims = good_claims(now());
    admin_claims["roles"] = json!(["ops", "admin"]);
    let admin = mint(&keys.rsa2048, "RS256", &admin_claims);

    for (place, config) in shipped {
        let jwks = JwksServer::start(keys.jwks().to_string());
        let upstream = EchoUpstream::start();
        let clusters: Vec<Value> = remote_jwks(&config)
            .iter()
            .map(|(_, cluster)| loopback_jwks_cluster(checked, cluster, jwks.port))
            .collect();
        // The configuration goes in as JSON text, as Istio and Envoy Gateway hand it over.
        let setup = EnvoySetup {
            filter_config: config.clone(),
            native_config: None,
            upstream_port: upstream.port,
            jwks_port: jwks.port,
            native_jwks_port: None,
            concurrency: 2,
        };
        let envoy = Envoy::start_edited(&setup, |bootstrap| {
            let list = bootstrap["static_resources"]["clusters"]
                .as_array_mut()
                .unwrap();
            list.extend(clusters);
        });

        let ok = get_with_token(envoy.wasm_port, "/api/orders", &user);
        assert_eq!(ok.status, 200, "{place}: {ok:?}\n{}", envoy.log_tail());
        assert_eq!(
            ok.upstream_headers()["x-jwt-sub"],
            json!(["alice"]),
            "{place}"
        );
        assert!(
            ok.upstream_headers().get("authorization").is_none(),
            "{place}"
        );

        let missing = http_request(envoy.wasm_port, "/api/orders", &[]);
        assert_eq!(missing.status, 401, "{place}: {missing:?}");
        let body: Value = serde_json::from_str(&missing.body)
            .unwrap_or_else(|_| panic!("{place}: failure_response_format json: {missing:?}"));
        assert!(body.to_string().contains(MISSING), "{place}: {body}");

        let health = http_request(envoy.wasm_port, "/healthz", &[]);
        assert_eq!(health.status, 200, "{place}: {health:?}");

        let not_admin = get_with_token(envoy.wasm_port, "/admin/users", &user);
        assert_eq!(not_admin.status, 403, "{place}: {not_admin:?}");
        let is_admin = get_with_token(envoy.wasm_port, "/admin/users", &admin);
        assert_eq!(is_admin.status, 200, "{place}: {is_admin:?}");
        assert_eq!(
            is_admin.upstream_headers()["x-jwt-roles"],
            json!(["ops,admin"]),
            "{place}"
        );

        // The keys came through the cluster the manifests name, once.
        assert!(jwks.requests() >= 1, "{place}");
        assert!(
            jwks.paths().iter().all(|p| p == "/.well-known/jwks.json"),
            "{place}: {:?}",
            jwks.paths()
        );
        envoy.assert_no_vm_failure();
    }
}
