//! Configuration pushes under load, the way Istio and Envoy Gateway deliver a policy change: Envoy takes
//! its listener from a watched LDS file, and the test replaces the filter configuration in it five times
//! (atomic rename) while a client sends valid-token requests without pause. No valid request may be
//! refused, each push must take effect (a new claim header name each time, a new rule once), the JWKS must not be fetched again (the keys live in shared data
//! of the same vm_id, which outlives the plugin), and a configuration the filter refuses must be refused
//! by Envoy while the previous one keeps serving.

use crate::common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::envoy::{free_port, repo_root, Envoy, EnvoySetup, TempDir};
use common::fixture_config;
use common::fixtures::{self, Keys};
use common::servers::{get_with_token, http_request, EchoUpstream, JwksServer};

/// From this push on, a rule opens `/open` to requests without a token.
const OPEN_RULE_VERSION: usize = 3;

/// Configuration number `version`: the fixture provider, with the subject copied into
/// `x-sub-v<version>`, so the upstream shows which configuration handled a request; from
/// [`OPEN_RULE_VERSION`] on, also a rule change.
fn versioned_config(jwks_uri: &str, version: usize) -> Value {
    let mut config = fixture_config(jwks_uri);
    config["providers"]["jwt"]["claim_to_headers"] =
        json!([{"header_name": format!("x-sub-v{version}"), "claim_name": "sub"}]);
    if version >= OPEN_RULE_VERSION {
        let rules = config["rules"].as_array_mut().expect("rules");
        rules.insert(0, json!({"match": {"prefix": "/open"}}));
    }
    config
}

/// The LDS file: a DiscoveryResponse with the one listener of `setup`'s bootstrap.
fn lds_document(setup: &EnvoySetup, listener_port: u16, version: &str) -> Value {
    let bootstrap = setup.bootstrap(0, listener_port, 0, Path::new("/dev/null"));
    let mut listener = bootstrap["static_resources"]["listeners"][0].clone();
    listener["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    json!({"version_info": version, "resources": [listener]})
}

/// Replaces the LDS file the way a control plane's file sync (or `kubectl cp` of a ConfigMap) does:
/// write beside it, then rename over it, so Envoy never reads a half-written file.
fn push(dir: &Path, document: &Value) {
    let staged = dir.join("lds.json.next");
    std::fs::write(&staged, document.to_string()).expect("write staged LDS");
    std::fs::rename(&staged, dir.join("lds.json")).expect("rename LDS");
}

/// One of Envoy's own counters by full name, 0 while undefined.
fn envoy_counter(envoy: &Envoy, name: &str) -> u64 {
    envoy.envoy_stat(name).unwrap_or(0)
}

/// A client sending valid-token requests one after another (no sleep) until stopped or `limit` is
/// reached; it records every refusal and the last `x-sub-v*` header the upstream saw.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<String>>>,
    last_header: Arc<Mutex<String>>,
    handle: std::thread::JoinHandle<()>,
}

impl Traffic {
    fn start(port: u16, limit: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let last_header: Arc<Mutex<String>> = Arc::default();
        let token = fixtures::good_token();
        let (stop_in, sent_in, refused_in, last_in) = (
            stop.clone(),
            sent.clone(),
            refused.clone(),
            last_header.clone(),
        );
        let handle = std::thread::spawn(move || {
            while !stop_in.load(Ordering::SeqCst) && sent_in.load(Ordering::SeqCst) < limit {
                let response = get_with_token(port, "/api", &token);
                sent_in.fetch_add(1, Ordering::SeqCst);
                if response.status != 200 {
                    refused_in
                        .lock()
                        .expect("lock")
                        .push(format!("{} {}", response.status, response.body));
                    continue;
                }
                let headers = response.upstream_headers();
                let seen = headers
                    .as_object()
                    .into_iter()
                    .flat_map(|h| h.keys())
                    .find(|name| name.starts_with("x-sub-v"))
                    .cloned()
                    .unwrap_or_default();
                *last_in.lock().expect("lock") = seen;
            }
        });
        Traffic {
            stop,
            sent,
            refused,
            last_header,
            handle,
        }
    }

    fn last_header(&self) -> String {
        self.last_header.lock().expect("lock").clone()
    }

    fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Waits until the upstream sees `header` on the traffic's requests (up to 20 s).
    fn wait_for_header(&self, header: &str, envoy: &Envoy) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.last_header() == header {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the upstream never saw {header} (last: {:?}); refused so far: {:?}\nEnvoy log:\n{}",
            self.last_header(),
            self.refused.lock().expect("lock"),
            envoy.log_tail()
        );
    }

    /// Stops and returns (sent, refused answers).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("traffic thread");
        let refused = self.refused.lock().expect("lock").clone();
        (self.sent.load(Ordering::SeqCst), refused)
    }
}

#[test]
fn five_config_pushes_under_load_refuse_nothing_take_effect_and_fetch_the_jwks_once() {
    let jwks = JwksServer::start(Keys::load().jwks().to_string());
    let upstream = EchoUpstream::start();
    let setup_for = |version: usize| EnvoySetup {
        filter_config: versioned_config(&jwks.uri(), version),
        native_config: None,
        upstream_port: upstream.port,
        jwks_port: jwks.port,
        native_jwks_port: None,
        concurrency: 2,
    };
    let dir = TempDir::new("config-push");
    let (admin_port, listener_port) = (free_port(), free_port());
    push(&dir.0, &lds_document(&setup_for(0), listener_port, "0"));
    let mut bootstrap =
        setup_for(0).bootstrap(admin_port, listener_port, 0, Path::new("/dev/null"));
    bootstrap["static_resources"]
        .as_object_mut()
        .expect("static_resources")
        .remove("listeners");
    bootstrap["node"] = json!({"id": "config-push-test", "cluster": "test"});
    bootstrap["dynamic_resources"] = json!({"lds_config": {
        "resource_api_version": "V3",
        "path_config_source": {
            "path": dir.0.join("lds.json"),
            "watched_directory": {"path": dir.0}
        }
    }});
    let bootstrap_path = dir.0.join("bootstrap.json");
    std::fs::write(&bootstrap_path, bootstrap.to_string()).expect("write bootstrap");
    let envoy = Envoy::spawn_file(&bootstrap_path, &repo_root(), admin_port, listener_port);
    envoy.wait_ready();

    let traffic = Traffic::start(listener_port, 20_000);
    traffic.wait_for_header("x-sub-v0", &envoy);
    let fetches_at_start = jwks.requests();
    assert_eq!(fetches_at_start, 1, "one fetch for the process");

    // Requests to /open that the filter let through without a token (counted as allowed too).
    let opened = std::cell::Cell::new(0u64);
    let open_status = || {
        let status = http_request(listener_port, "/open", &[]).status;
        if status == 200 {
            opened.set(opened.get() + 1);
        }
        status
    };
    let mut push_times = Vec::new();
    for version in 1..=5 {
        let open_without_token = open_status();
        assert_eq!(
            open_without_token,
            if version > OPEN_RULE_VERSION {
                200
            } else {
                401
            },
            "/open before push {version}"
        );
        let before = traffic.sent();
        let started = Instant::now();
        push(
            &dir.0,
            &lds_document(&setup_for(version), listener_port, &version.to_string()),
        );
        traffic.wait_for_header(&format!("x-sub-v{version}"), &envoy);
        push_times.push(started.elapsed());
        if version == OPEN_RULE_VERSION {
            // The header shows the push reached one worker; every worker serves it shortly after.
            let deadline = Instant::now() + Duration::from_secs(10);
            while open_status() != 200 {
                assert!(Instant::now() < deadline, "the new rule never took effect");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Some requests run on the new configuration before the next push.
        while traffic.sent() < before + 20 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(
        envoy_counter(&envoy, "listener_manager.lds.update_success"),
        6,
        "the first load and five pushes"
    );

    // A configuration the filter's parser refuses (rule naming a provider that does not exist).
    let mut invalid = setup_for(6);
    invalid.filter_config["rules"][1]["requires"]["provider_name"] = json!("no-such-provider");
    let rejected_before = envoy_counter(&envoy, "listener_manager.lds.update_rejected");
    push(&dir.0, &lds_document(&invalid, listener_port, "6-invalid"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while envoy_counter(&envoy, "listener_manager.lds.update_rejected") == rejected_before {
        assert!(
            Instant::now() < deadline,
            "Envoy did not reject the invalid push:\n{}",
            envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent_at_rejection = traffic.sent();
    while traffic.sent() < sent_at_rejection + 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        traffic.last_header(),
        "x-sub-v5",
        "the last good configuration keeps serving"
    );
    assert_eq!(open_status(), 200);
    assert_eq!(http_request(listener_port, "/api", &[]).status, 401);

    let (sent, refused) = traffic.finish();
    println!(
        "FIGURE config pushes: {sent} requests during 5 pushes + 1 rejected, push-to-effect {:?}",
        push_times
    );
    assert!(refused.is_empty(), "valid requests refused: {refused:?}");
    // Allowed requests are added to the counter on a tick; none may be lost when a plugin is replaced.
    std::thread::sleep(Duration::from_millis(500));
    let allowed = envoy.stat("jwt_authn_wasm.allowed").unwrap_or(0);
    println!(
        "FIGURE allowed counter after the pushes: {allowed} ({sent} valid-token + {} /open requests)",
        opened.get()
    );
    assert_eq!(
        allowed,
        sent as u64 + opened.get(),
        "the allowed counter across pushes"
    );
    assert_eq!(
        jwks.requests(),
        fetches_at_start,
        "a configuration push fetched the JWKS again"
    );
    assert_eq!(
        envoy_counter(&envoy, "listener_manager.lds.update_success"),
        6
    );
    assert!(
        envoy.log().contains("no-such-provider"),
        "the refusal names the field's value in Envoy's log:\n{}",
        envoy.log_tail()
    );
    envoy.assert_no_panic();
}
