//! Migration from the seeds' middleware (docs/migrating-from-middleware.md): the Falcon, CherryPy and
//! Litestar `/protected` apps of examples/, with their JWT code removed, run on real servers behind a real
//! Envoy with this filter, configured by the shipped examples/<app>/filter.json through the shipped
//! generator examples/envoy_config.py. Each must keep its seed's contract: a valid token gets 200 and the
//! user's claims, a missing, expired, wrong-issuer or tampered one gets a JSON 401. The Masonite and
//! Traefik configurations are checked at the echo upstream for the headers their code reads.

use crate::common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use common::envoy::{free_port, repo_root, validate_config_file, wasm_module, Envoy, TempDir};
use common::fixtures::{self, fixtures, Keys, ISSUER};
use common::servers::{get_with_token, http_request, EchoUpstream, HttpResponse, JwksServer};

const INSTALL_HINT: &str = "the example apps need their frameworks in the project's .venv: run \
`./build.sh setup` (it runs `.venv/bin/pip install -r examples/requirements.txt`)";

/// Every example directory with a filter.json.
const EXAMPLES: [&str; 5] = ["falcon", "cherrypy", "litestar", "masonite", "traefik"];

/// The provider name every shipped example configuration uses.
const PROVIDER: &str = "zuplo";

fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: {INSTALL_HINT}",
        python.display()
    );
    python
}

/// Fails (never skips) with the install command when a framework is missing.
fn require_frameworks() {
    let output = Command::new(venv_python())
        .args(["-c", "import falcon, cherrypy, litestar, uvicorn"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run .venv/bin/python: {e}. {INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "{}\n{INSTALL_HINT}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn example_path(example: &str, file: &str) -> PathBuf {
    repo_root().join("examples").join(example).join(file)
}

fn shipped_config(example: &str) -> Value {
    let path = example_path(example, "filter.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shipped configuration with only the Zuplo issuer and its JWKS URI replaced by the fixture's, so the
/// fixture tokens verify; everything the migration is about (rules, claim headers, JSON errors) is kept.
fn rebound_to_fixture(mut config: Value, jwks_uri: &str) -> Value {
    let provider = &mut config["providers"][PROVIDER];
    assert!(provider.is_object(), "provider {PROVIDER} in {config}");
    provider["issuer"] = json!(ISSUER);
    provider["remote_jwks"]["http_uri"]["uri"] = json!(jwks_uri);
    config
}

/// Runs examples/envoy_config.py, as the docs tell users to; returns the bootstrap's path.
fn generate_bootstrap(
    dir: &Path,
    filter_json: &Path,
    app: &str,
    listen: &str,
    admin: &str,
) -> PathBuf {
    let output = Command::new(venv_python())
        .arg(repo_root().join("examples/envoy_config.py"))
        .arg(filter_json)
        .args(["--app", app, "--listen", listen, "--admin", admin])
        .arg("--module")
        .arg(wasm_module())
        .output()
        .expect("run examples/envoy_config.py");
    assert!(
        output.status.success(),
        "envoy_config.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, &output.stdout).expect("write envoy.yaml");
    path
}

/// An example app on a real server (wsgiref, CherryPy's own, uvicorn), killed when dropped.
struct App {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl App {
    fn start(example: &str, dir: &Path) -> App {
        let port = free_port();
        let log = dir.join(format!("{example}.log"));
        let file = std::fs::File::create(&log).expect("app log");
        let child = Command::new(venv_python())
            .arg(example_path(example, "app.py"))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {example} app: {e}. {INSTALL_HINT}"));
        let mut app = App { child, port, log };
        app.wait_listening(example);
        app
    }

    fn wait_listening(&mut self, example: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the {example} app exited ({status}):\n{}\n{INSTALL_HINT}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the {example} app did not listen in 60 s:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JWKS server, Envoy from the generated bootstrap, in front of `app_port`.
struct Proxy {
    envoy: Envoy,
    port: u16,
    _jwks: JwksServer,
}

impl Proxy {
    fn start(example: &str, app_port: u16, dir: &Path) -> Proxy {
        let jwks = JwksServer::start(Keys::load().jwks().to_string());
        let config = rebound_to_fixture(shipped_config(example), &jwks.uri());
        let filter_json = dir.join("filter.json");
        std::fs::write(&filter_json, config.to_string()).expect("write filter.json");
        let (port, admin_port) = (free_port(), free_port());
        let bootstrap = generate_bootstrap(
            dir,
            &filter_json,
            &format!("127.0.0.1:{app_port}"),
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{admin_port}"),
        );
        let envoy = Envoy::spawn_file(&bootstrap, &repo_root(), admin_port, port);
        envoy.wait_ready();
        Proxy {
            envoy,
            port,
            _jwks: jwks,
        }
    }
}

fn token(name: &str) -> String {
    fixtures(&Keys::load(), fixtures::now())
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture named {name}"))
        .token
}

/// The claims a token carries, as the seed's `jwt.decode` returned them.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three segments");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn json_body(response: &HttpResponse, what: &str) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {:?}", response.body))
}

/// A refusal keeps the seed's JSON-401 contract: status 401, a JSON body that says why.
fn assert_json_401(response: &HttpResponse, what: &str, error: &str, description: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(
        json_body(response, what),
        json!({"error": error, "error_description": description}),
        "{what}"
    );
    assert!(
        response.header("www-authenticate").is_some(),
        "{what}: RFC 6750 challenge"
    );
}

/// The seed's contract for its `/protected` app, behind Envoy and the filter.
fn check_seed_contract(example: &str) {
    require_frameworks();
    let dir = TempDir::new(&format!("example-{example}"));
    let app = App::start(example, &dir.0);
    let proxy = Proxy::start(example, app.port, &dir.0);
    let port = proxy.port;

    let valid = token("good_rs256_2048");
    let ok = get_with_token(port, "/protected", &valid);
    assert_eq!(
        ok.status,
        200,
        "{example}: {}\napp log:\n{}",
        ok.body,
        app.log_text()
    );
    let body = json_body(&ok, example);
    assert_eq!(body["message"], "Access granted", "{example}: {body}");
    // The whole verified payload, as python-jose's decode gave the seed's handler.
    assert_eq!(body["user"], claims_of(&valid), "{example}");
    assert_eq!(body["user"]["sub"], "alice", "{example}");

    // A client cannot hand the app claims of its own: the filter replaces the header.
    let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "mallory"}).to_string());
    let bearer = format!("Bearer {valid}");
    let spoofed = http_request(
        port,
        "/protected",
        &[
            ("authorization", bearer.as_bytes()),
            ("x-jwt-payload", forged.as_bytes()),
        ],
    );
    assert_eq!(spoofed.status, 200, "{example}: {}", spoofed.body);
    assert_eq!(
        json_body(&spoofed, example)["user"]["sub"],
        "alice",
        "{example}"
    );

    let missing = http_request(port, "/protected", &[]);
    assert_json_401(
        &missing,
        &format!("{example} missing"),
        "missing_token",
        fixtures::MISSING,
    );
    for (name, description) in [
        ("expired", fixtures::EXPIRED),
        ("wrong_issuer", fixtures::UNKNOWN_ISSUER),
        ("bad_signature", fixtures::VERIFICATION_FAILS),
    ] {
        let refused = get_with_token(port, "/protected", &token(name));
        assert_json_401(
            &refused,
            &format!("{example} {name}"),
            "invalid_token",
            description,
        );
    }
    proxy.envoy.assert_no_vm_failure();
}

#[test]
fn falcon_app_behind_envoy_keeps_the_seed_contract() {
    check_seed_contract("falcon");
}

#[test]
fn cherrypy_app_behind_envoy_keeps_the_seed_contract() {
    check_seed_contract("cherrypy");
}

#[test]
fn litestar_app_behind_envoy_keeps_the_seed_contract() {
    check_seed_contract("litestar");
}

/// Envoy in front of the echo upstream with an example's configuration: what its app would receive.
fn echo_behind(example: &str) -> (Proxy, EchoUpstream, TempDir) {
    let dir = TempDir::new(&format!("example-{example}"));
    let upstream = EchoUpstream::start();
    let proxy = Proxy::start(example, upstream.port, &dir.0);
    (proxy, upstream, dir)
}

#[test]
fn traefik_configuration_hands_the_backend_x_user_sub() {
    let (proxy, _upstream, _dir) = echo_behind("traefik");
    let valid = token("good_rs256_2048");
    let bearer = format!("Bearer {valid}");
    // A client-sent X-User-Sub is dropped; the filter's copy (the verified sub) is the only one.
    let ok = http_request(
        proxy.port,
        "/orders",
        &[
            ("authorization", bearer.as_bytes()),
            ("x-user-sub", b"mallory"),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let headers = ok.upstream_headers();
    assert_eq!(headers["x-user-sub"], json!(["alice"]));
    // The Traefik plugin passes the request on with its Authorization header; `forward: true` does too.
    assert_eq!(headers["authorization"], json!([bearer]));

    let missing = http_request(proxy.port, "/orders", &[("x-user-sub", b"mallory")]);
    assert_json_401(
        &missing,
        "traefik missing",
        "missing_token",
        fixtures::MISSING,
    );
    let wrong_issuer = get_with_token(proxy.port, "/orders", &token("wrong_issuer"));
    assert_json_401(
        &wrong_issuer,
        "traefik wrong issuer",
        "invalid_token",
        fixtures::UNKNOWN_ISSUER,
    );
    proxy.envoy.assert_no_vm_failure();
}

#[test]
fn masonite_configuration_hands_the_controller_the_payload_header() {
    let (proxy, _upstream, _dir) = echo_behind("masonite");
    let valid = token("good_rs256_2048");
    let ok = get_with_token(proxy.port, "/protected", &valid);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let headers = ok.upstream_headers();
    // What the Masonite middleware of the docs decodes into request.user: the whole verified payload.
    let payload = headers["x-jwt-payload"][0].as_str().expect("x-jwt-payload");
    let decoded: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    assert_eq!(decoded, claims_of(&valid));
    assert_eq!(headers["x-user-sub"], json!(["alice"]));
    // The token itself stays at the proxy (`forward: false`): the app has no use for it any more.
    assert!(headers.get("authorization").is_none(), "{headers}");

    let expired = get_with_token(proxy.port, "/protected", &token("expired"));
    assert_json_401(
        &expired,
        "masonite expired",
        "invalid_token",
        fixtures::EXPIRED,
    );

    // Like the seed's route middleware, only /protected needs a token; elsewhere forged claims are dropped.
    let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "mallory"}).to_string());
    let other = http_request(
        proxy.port,
        "/welcome",
        &[
            ("x-jwt-payload", forged.as_bytes()),
            ("x-user-sub", b"mallory"),
        ],
    );
    assert_eq!(other.status, 200, "{}", other.body);
    let headers = other.upstream_headers();
    assert!(headers.get("x-jwt-payload").is_none(), "{headers}");
    assert!(headers.get("x-user-sub").is_none(), "{headers}");
    proxy.envoy.assert_no_vm_failure();
}

/// Every shipped configuration loads in the filter's parser, and the generator's bootstrap for the real
/// (HTTPS) issuer is accepted by `envoy --mode validate` with the built module.
#[test]
fn shipped_configurations_parse_and_generated_bootstrap_validates() {
    for example in EXAMPLES {
        let text = shipped_config(example).to_string();
        if let Err(e) = jwt_authn_wasm::config::FilterConfig::parse(text.as_bytes()) {
            panic!("examples/{example}/filter.json: {e}");
        }
    }
    let dir = TempDir::new("example-validate");
    let bootstrap = generate_bootstrap(
        &dir.0,
        &example_path("falcon", "filter.json"),
        "127.0.0.1:8000",
        "127.0.0.1:10000",
        "127.0.0.1:9901",
    );
    let yaml = std::fs::read_to_string(&bootstrap).expect("bootstrap");
    for expected in [
        "sni: my-api-a32f34.zuplo.api",
        "trusted_ca: { filename: /etc/ssl/certs/ca-certificates.crt }",
        "port_value: 443",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
    let (accepted, output) = validate_config_file(&bootstrap, &repo_root());
    assert!(accepted, "envoy --mode validate refused:\n{output}\n{yaml}");
}

/// Every configuration in the migration guide is one of the shipped files, so the two cannot drift
/// (tests/host/docs.rs parses them).
#[test]
fn migration_guide_configurations_are_the_shipped_ones() {
    let path = repo_root().join("docs/migrating-from-middleware.md");
    let guide = std::fs::read_to_string(&path).expect("docs/migrating-from-middleware.md");
    let shipped: Vec<Value> = EXAMPLES.iter().map(|e| shipped_config(e)).collect();
    let mut examples = 0;
    for block in guide.split("```json").skip(1) {
        let text = block.split("```").next().unwrap_or_default();
        if !text.contains("\"providers\"") {
            continue;
        }
        examples += 1;
        let value: Value = serde_json::from_str(text).expect("JSON");
        assert!(
            shipped.contains(&value),
            "{}: a configuration that is no examples/*/filter.json:\n{text}",
            path.display()
        );
    }
    assert!(examples >= 3, "the guide shows the configurations");
}
