//! The module as an OCI image (docs/oci-image.md), with real parts: `./build.sh image` twice gives the same
//! layout and manifest digest; `./build.sh push` (skopeo) puts it into a real registry (Debian's
//! docker-registry, the CNCF distribution server) on 127.0.0.1; skopeo pulls it back into a fresh layout,
//! which holds the printed manifest digest, follows the rules of Istio's and Envoy Gateway's image fetcher,
//! and carries the built module byte for byte; and Envoy serves requests with the pulled module.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::envoy::{free_port, repo_root, wasm_module, TempDir};
use common::fixtures::{good_token, MISSING, SUBJECT};
use common::servers::{get_with_token, http_request};
use common::{fixture_config, Scenario};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const INSTALL: &str = "run `./build.sh setup`, or `apt-get install skopeo docker-registry`";
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

#[test]
fn image_is_reproducible_round_trips_through_a_registry_and_envoy_serves_the_pulled_module() {
    let skopeo = tool("skopeo");
    assert!(
        Path::new(REGISTRY_BIN).is_file(),
        "{REGISTRY_BIN} is missing: this test runs a real registry; {INSTALL}"
    );
    let module = std::fs::read(wasm_module()).expect("read the built module");
    let module_hex = sha256_hex(&module);

    // Two writes of the layout, into target/oci-image and into a scratch directory: the same bytes.
    let first = build_sh(&["image"], &[]);
    let printed = printed_value(&first, "manifest digest:");
    assert_eq!(printed_value(&first, "module sha256:"), module_hex);
    let layout = repo_root().join("target/oci-image");
    assert_eq!(read_trimmed(&layout.join("manifest-digest")), printed);
    assert_eq!(read_trimmed(&layout.join("module-sha256")), module_hex);
    let scratch = TempDir::new("oci-second");
    let second_dir = scratch.0.join("layout");
    let second = build_sh(
        &["image"],
        &[("OCI_IMAGE_DIR", second_dir.to_str().expect("utf-8 path"))],
    );
    assert_eq!(printed_value(&second, "manifest digest:"), printed);
    assert_eq!(tree(&layout), tree(&second_dir), "two image writes differ");
    check_layout(&layout, &printed, &module);

    // Push with `./build.sh push` to a real registry, read the digest the registry reports, pull back.
    let registry = Registry::start();
    let reference = format!("127.0.0.1:{}/jwt-authn-wasm:test", registry.port);
    let pushed = build_sh(&["push", &reference], &[("OCI_PUSH_PLAIN_HTTP", "1")]);
    assert!(
        stdout(&pushed).contains(&format!("{reference}@sha256:{printed}")),
        "push output:\n{}",
        stdout(&pushed)
    );
    let served = http_request(
        registry.port,
        "/v2/jwt-authn-wasm/manifests/test",
        &[("accept", OCI_MANIFEST.as_bytes())],
    );
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(
        served.header("docker-content-digest"),
        Some(format!("sha256:{printed}").as_str()),
        "the registry holds another manifest than the one built"
    );
    assert_eq!(served.header("content-type"), Some(OCI_MANIFEST));

    let pulled_dir = scratch.0.join("pulled");
    let pull = Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:pulled", pulled_dir.display()))
        .output()
        .expect("run skopeo copy");
    assert!(pull.status.success(), "skopeo pull failed: {}", both(&pull));
    let pulled_module = check_layout(&pulled_dir, &printed, &module);

    // Envoy runs the module from the pulled layout's blob file.
    let scenario = Scenario::start_edited(1, false, fixture_config, |bootstrap| {
        let built = wasm_module().display().to_string();
        let replaced = replace_string(bootstrap, &built, &pulled_module.display().to_string());
        assert_eq!(replaced, 1, "the bootstrap names the module once");
    });
    let ok = get_with_token(scenario.envoy.wasm_port, "/api", &good_token());
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.upstream_headers()["x-jwt-sub"],
        serde_json::json!([SUBJECT])
    );
    let missing = http_request(scenario.envoy.wasm_port, "/api", &[]);
    assert_eq!((missing.status, missing.body.as_str()), (401, MISSING));
    scenario.envoy.assert_no_vm_failure();
}

/// Checks an OCI layout against the fetcher rules (istio pkg/wasm/imagefetcher.go, oci variant) and returns
/// the path of the module blob.
fn check_layout(dir: &Path, manifest_hex: &str, module: &[u8]) -> PathBuf {
    let index = json_file(&dir.join("index.json"));
    let entries = index["manifests"].as_array().expect("index manifests");
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(entries[0]["digest"], format!("sha256:{manifest_hex}"));

    let manifest_bytes = blob(dir, &format!("sha256:{manifest_hex}"));
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    // An OCI manifest: the fetcher's Docker branch is not taken.
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG);
    let layers = manifest["layers"].as_array().expect("layers");
    // The oci variant: exactly two layers, one of them the raw module; the config is the other.
    assert_eq!(layers.len(), 2, "{manifest}");
    assert_eq!(layers[0]["mediaType"], WASM_CONFIG);
    assert_eq!(layers[0]["digest"], manifest["config"]["digest"]);
    assert_eq!(layers[1]["mediaType"], WASM_LAYER);
    let config: Value =
        serde_json::from_slice(&blob(dir, str_of(&manifest["config"]["digest"]))).expect("config");
    assert_eq!(config["type"], "envoy_proxy");
    assert_eq!(
        config["config"]["rootIds"],
        serde_json::json!(["jwt_authn_wasm"])
    );

    let module_digest = str_of(&layers[1]["digest"]);
    let pulled = blob(dir, module_digest);
    assert!(pulled.starts_with(b"\0asm"), "the module blob is not wasm");
    assert_eq!(layers[1]["size"], pulled.len());
    assert!(
        pulled == module,
        "the module blob differs from the built module"
    );
    blob_path(dir, module_digest)
}

fn str_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    dir.join("blobs/sha256").join(hex)
}

/// A blob's bytes, checked against its digest.
fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(blob_path(dir, digest))
        .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", dir.display()));
    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), digest);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Every file under `dir` (relative path, bytes), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read layout").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir").to_path_buf();
                files.push((relative, std::fs::read(&path).expect("read file")));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "layout {} is incomplete", dir.display());
    files
}

/// Replaces every string equal to `from` in `value`; returns how many.
fn replace_string(value: &mut Value, from: &str, to: &str) -> usize {
    match value {
        Value::String(s) if s == from => {
            *s = to.to_string();
            1
        }
        Value::Array(items) => items.iter_mut().map(|v| replace_string(v, from, to)).sum(),
        Value::Object(map) => map.values_mut().map(|v| replace_string(v, from, to)).sum(),
        _ => 0,
    }
}

/// Runs `./build.sh ARGS` and returns its output; fails the test when it fails.
fn build_sh(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(repo_root().join("build.sh"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .output()
        .expect("run ./build.sh");
    assert!(
        output.status.success(),
        "./build.sh {} failed: {}",
        args.join(" "),
        both(&output)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn both(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The 64-hex value after `label` in `./build.sh image`'s output.
fn printed_value(output: &Output, label: &str) -> String {
    let text = stdout(output);
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"));
    assert!(
        value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
        "{label} {value:?} is not 64 hex digits"
    );
    value
}

fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is missing: {INSTALL}"))
}

/// Debian's docker-registry (distribution 2.8) on a free loopback port, storage in a temp dir.
struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = dir.0.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.0.join("storage").display()
            ),
        )
        .expect("write registry config");
        let log = std::fs::File::create(dir.0.join("registry.log")).expect("log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REGISTRY_BIN}: {e}; {INSTALL}"));
        let mut registry = Registry {
            child,
            port,
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && http_request(self.port, "/v2/", &[]).status == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer /v2/ in 30 s: {}",
            self.log()
        );
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self._dir.0.join("registry.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
