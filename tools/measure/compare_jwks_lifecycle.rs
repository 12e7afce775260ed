//! Side-by-side JWKS lifecycle figures: this filter and Envoy's jwt_authn in one Envoy
//! (--concurrency 4), the same provider configuration, each with its own JWKS server so fetches can be
//! counted per filter, under the same traffic. Prints a table; it is a measurement, not a test.
//!
//!   cargo run --release --example compare_jwks_lifecycle      (after ./build.sh)

// Measurement code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

#[path = "../../tests/common/envoy.rs"]
pub mod envoy;
#[path = "../../tests/common/fixtures.rs"]
pub mod fixtures;
#[path = "../../tests/common/servers.rs"]
pub mod servers;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use envoy::{Envoy, EnvoySetup};
use fixtures::{Keys, TestKey};
use servers::{get_with_token, EchoUpstream, JwksServer};

const CONCURRENCY: u32 = 4;

fn config(jwks_uri: &str, cluster: &str, cache_duration: &str) -> Value {
    let mut provider = fixtures::provider_json(jwks_uri, cluster);
    provider["remote_jwks"]["cache_duration"] = json!(cache_duration);
    provider["remote_jwks"]["http_uri"]["timeout"] = json!("1s");
    json!({
        "providers": {"jwt": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}]
    })
}

struct SideBySide {
    ours: JwksServer,
    native: JwksServer,
    envoy: Envoy,
    _upstream: EchoUpstream,
}

impl SideBySide {
    fn start(cache_duration: &str) -> SideBySide {
        let keys = Keys::load();
        let ours = JwksServer::start(keys.jwks().to_string());
        let native = JwksServer::start(keys.jwks().to_string());
        let upstream = EchoUpstream::start();
        let envoy = Envoy::start(&EnvoySetup {
            filter_config: config(&ours.uri(), "jwks", cache_duration),
            native_config: Some(config(&native.uri(), "jwks_native", cache_duration)),
            upstream_port: upstream.port,
            jwks_port: ours.port,
            native_jwks_port: Some(native.port),
            concurrency: CONCURRENCY,
        });
        SideBySide {
            ours,
            native,
            envoy,
            _upstream: upstream,
        }
    }

    fn both<T>(&self, f: impl Fn(u16, &JwksServer) -> T) -> (T, T) {
        (
            f(self.envoy.wasm_port, &self.ours),
            f(self.envoy.native_port, &self.native),
        )
    }

    /// Enough valid requests on new connections that every worker of both filters has its keys
    /// (jwt_authn keeps a JWKS per worker), so later figures are not first-fetch artifacts.
    fn warm_up(&self) {
        let token = fixtures::good_token();
        let _ = self.both(|port, _| {
            for _ in 0..40 {
                assert_eq!(get_with_token(port, "/api", &token).status, 200, "warm-up");
            }
        });
    }

    fn set_both(&self, status: u16, body: &str) {
        self.ours.set(status, body);
        self.native.set(status, body);
    }
}

/// Valid requests on both listeners from `threads` threads each until `stop`; returns (sent, refused) per filter.
fn traffic(
    scene: &SideBySide,
    threads: usize,
    run: impl FnOnce(),
) -> ((usize, usize), (usize, usize)) {
    let stop = Arc::new(AtomicBool::new(false));
    let counters: Vec<(Arc<AtomicUsize>, Arc<AtomicUsize>)> =
        (0..2).map(|_| (Arc::default(), Arc::default())).collect();
    let token = fixtures::good_token();
    let mut handles = Vec::new();
    for (side, port) in [scene.envoy.wasm_port, scene.envoy.native_port]
        .into_iter()
        .enumerate()
    {
        for _ in 0..threads {
            let (stop, token) = (stop.clone(), token.clone());
            let (sent, refused) = (counters[side].0.clone(), counters[side].1.clone());
            handles.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if get_with_token(port, "/api", &token).status != 200 {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
    }
    run();
    stop.store(true, Ordering::SeqCst);
    for handle in handles {
        let _ = handle.join();
    }
    let read = |i: usize| {
        (
            counters[i].0.load(Ordering::SeqCst),
            counters[i].1.load(Ordering::SeqCst),
        )
    };
    (read(0), read(1))
}

fn main() {
    let keys = Keys::load();
    println!(
        "JWKS lifecycle, this filter vs Envoy's jwt_authn, one Envoy --concurrency {CONCURRENCY}\n"
    );
    println!(
        "{:<62} {:>18} {:>18}",
        "measure", "jwt-authn-wasm", "native jwt_authn"
    );

    // 1. Fetches over 10 s of traffic at cache_duration 2s.
    let scene = SideBySide::start("2s");
    scene.warm_up();
    let before = scene.both(|_, server| server.requests());
    traffic(&scene, 2, || std::thread::sleep(Duration::from_secs(10)));
    let after = scene.both(|_, server| server.requests());
    println!(
        "{:<62} {:>18} {:>18}",
        "JWKS fetches in 10 s, cache_duration 2s",
        after.0 - before.0,
        after.1 - before.1
    );

    // 2. Valid requests refused while the JWKS endpoint answers 500, invalid JSON, then an empty set.
    let ((sent_ours, refused_ours), (sent_native, refused_native)) = traffic(&scene, 2, || {
        for body in [None, Some("{\"keys\": ["), Some("{\"keys\": []}")] {
            match body {
                None => scene.set_both(500, "down"),
                Some(body) => scene.set_both(200, body),
            }
            std::thread::sleep(Duration::from_secs(6));
        }
    });
    println!(
        "{:<62} {:>18} {:>18}",
        "valid requests refused: 18 s of 500 / bad JSON / empty keys",
        format!("{refused_ours} of {sent_ours}"),
        format!("{refused_native} of {sent_native}")
    );
    drop(scene);

    // 3. A token signed with a key published after start.
    let scene = SideBySide::start("300s");
    let rotated = TestKey {
        kid: "k-rotated",
        private: keys.rsa2048_other.private.clone(),
    };
    let token = fixtures::mint(&rotated, "RS256", &fixtures::good_claims(fixtures::now()));
    scene.warm_up();
    let before = scene.both(|_, server| server.requests());
    let published = json!({"keys": [keys.rsa2048.jwk(None), rotated.jwk(None)]}).to_string();
    scene.set_both(200, &published);
    let accepted_after = scene.both(|port, _| {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if get_with_token(port, "/api", &token).status == 200 {
                return format!("{:.0?}", started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        "not in 5 s".to_string()
    });
    let after = scene.both(|_, server| server.requests());
    println!(
        "{:<62} {:>18} {:>18}",
        "newly published kid accepted after (polling every 100 ms)",
        accepted_after.0,
        accepted_after.1
    );
    println!(
        "{:<62} {:>18} {:>18}",
        "  extra JWKS fetches for it",
        after.0 - before.0,
        after.1 - before.1
    );

    // 4. 1000 requests with random kids, on a fresh Envoy (the rotation above used this filter's
    // refetch allowance for the next 5 s).
    drop(scene);
    let scene = SideBySide::start("300s");
    scene.warm_up();
    let payload = fixtures::b64(
        fixtures::good_claims(fixtures::now())
            .to_string()
            .as_bytes(),
    );
    let signature = fixtures::b64(&[7u8; 256]);
    let before = scene.both(|_, server| server.requests());
    let took = scene.both(|port, _| {
        let started = Instant::now();
        for i in 0..1000 {
            let header = json!({"alg": "RS256", "kid": format!("random-{i}")});
            let token = format!(
                "{}.{payload}.{signature}",
                fixtures::b64(header.to_string().as_bytes())
            );
            let _ = get_with_token(port, "/api", &token);
        }
        started.elapsed()
    });
    let after = scene.both(|_, server| server.requests());
    println!(
        "{:<62} {:>18} {:>18}",
        "JWKS fetches caused by 1000 random-kid requests",
        format!("{} ({:.1?})", after.0 - before.0, took.0),
        format!("{} ({:.1?})", after.1 - before.1, took.1)
    );
}
