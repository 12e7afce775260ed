//! The README's first command: envoy/envoy.yaml is a valid Envoy config for the built module, and the demo
//! (issuer, upstream, Envoy with the filter) answers 200 with claims for a minted token and 401 without.

use crate::common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::envoy::{free_port, repo_root, validate_config_file, wasm_module, Envoy, TempDir};
use common::servers::{get_with_token, http_request};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn shipped_envoy_yaml_validates_against_the_built_module() {
    wasm_module();
    let (accepted, output) =
        validate_config_file(&repo_root().join("envoy/envoy.yaml"), &repo_root());
    assert!(
        accepted,
        "envoy --mode validate refused envoy/envoy.yaml:\n{output}"
    );
}

#[test]
fn demo_serves_200_with_claims_and_401_without_a_token() {
    wasm_module();
    let (issuer_port, upstream_port, listener_port, admin_port) =
        (free_port(), free_port(), free_port(), free_port());
    let demo_binary = build_demo_issuer();
    let _demo = KillOnDrop(
        Command::new(&demo_binary)
            .env("DEMO_ISSUER_PORT", issuer_port.to_string())
            .env("DEMO_UPSTREAM_PORT", upstream_port.to_string())
            .spawn()
            .expect("start demo issuer"),
    );
    // The shipped config with its fixed ports moved to free ones, so the test runs beside anything.
    let yaml = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).expect("envoy.yaml");
    let yaml = yaml
        .replace("port_value: 9000 ", &format!("port_value: {issuer_port} "))
        .replace(
            "port_value: 9001 ",
            &format!("port_value: {upstream_port} "),
        )
        .replace(
            "port_value: 10000 ",
            &format!("port_value: {listener_port} "),
        )
        .replace("port_value: 9901 ", &format!("port_value: {admin_port} "));
    let dir = TempDir::new("demo");
    let config = dir.0.join("envoy.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let envoy = Envoy::spawn_file(&config, &repo_root(), admin_port, listener_port);
    envoy.wait_ready();

    let token = fetch_token(issuer_port);
    let ok = get_with_token(listener_port, "/api/hello", &token);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.upstream_headers()["x-jwt-sub"],
        serde_json::json!(["demo-user"])
    );
    assert_eq!(
        ok.upstream_headers()["x-jwt-team"],
        serde_json::json!(["payments"])
    );
    let missing = http_request(listener_port, "/api/hello", &[]);
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (401, "Jwt is missing")
    );
    let public = http_request(listener_port, "/public/hello", &[]);
    assert_eq!(public.status, 200);
    envoy.assert_no_vm_failure();
}

/// Builds tools/demo-issuer as `./build.sh demo` does (its own crate and target directory) and returns the
/// binary.
fn build_demo_issuer() -> std::path::PathBuf {
    let crate_dir = repo_root().join("tools/demo-issuer");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(crate_dir.join("target"))
        .output()
        .expect("run cargo build for tools/demo-issuer");
    assert!(
        output.status.success(),
        "building tools/demo-issuer failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let binary = crate_dir.join("target/debug/demo-issuer");
    assert!(binary.is_file(), "missing {}", binary.display());
    binary
}

fn fetch_token(issuer_port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", issuer_port)) {
            drop(stream);
            let response = http_request(issuer_port, "/token?sub=demo-user", &[]);
            assert_eq!(response.status, 200);
            return response.body;
        }
        assert!(Instant::now() < deadline, "demo issuer did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}
