//! envoy/envoy-https-jwks.yaml run for real: Envoy fetches the JWKS over TLS from a rustls server on
//! loopback whose certificates come from a CA the test generates. The right CA passes; a certificate
//! from another CA, for another name, or picked for a wrong SNI fails the fetch (the filter's `jwks_fetch_failed.<reason>` and
//! Envoy's own TLS stats say so) while the last good keys keep serving; with no good fetch ever, a valid
//! token is refused with `Jwks remote fetch is failed`.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use common::envoy::{
    admin_get, free_port, repo_root, validate_config_file, wasm_module, Envoy, TempDir,
};
use common::fixtures::{self, Keys};
use common::servers::{get_with_token, http_request, EchoUpstream};
use common::tls::{ServerCert, TestCa, TlsJwksServer};

const SHIPPED: &str = "envoy/envoy-https-jwks.yaml";
/// The issuer host of the shipped file: its SNI, its certificate name, the callout's :authority.
const ISSUER_HOST: &str = "issuer.example.com";
const PROVIDER: &str = "example";
const CLUSTER: &str = "issuer_example_com";
/// Why a fetch that never got a TLS connection failed: Envoy's async client answers the callout with
/// its own 503 (upstream connect error), which the filter counts as a bad HTTP status.
const TLS_FAILURE_REASON: &str = "http_status";

/// What the test changes in the shipped file: where things listen, the CA bundle, the refresh period.
struct Run {
    ca_path: String,
    cache_duration: &'static str,
    /// Further (text, replacement) edits of the shipped file, each also required to match once.
    edits: Vec<(String, String)>,
}

/// The shipped file with its fixed ports, DNS name and CA bundle pointed at the test's servers and CA.
/// Every replaced text must occur exactly once, so an edit of the shipped file cannot make this test
/// silently run something else.
fn rewritten_config(
    run: &Run,
    jwks_port: u16,
    upstream_port: u16,
    listener_port: u16,
    admin_port: u16,
) -> String {
    let mut yaml = std::fs::read_to_string(repo_root().join(SHIPPED)).expect("read shipped file");
    let replacements = [
        (
            "{ address: issuer.example.com, port_value: 443 }".to_string(),
            format!("{{ address: 127.0.0.1, port_value: {jwks_port} }}"),
        ),
        // Loopback has no DNS name: a STATIC cluster connects to the address as given.
        ("type: LOGICAL_DNS".into(), "type: STATIC".into()),
        (
            "/etc/ssl/certs/ca-certificates.crt".into(),
            run.ca_path.clone(),
        ),
        (
            "\"cache_duration\": \"600s\"".into(),
            format!("\"cache_duration\": \"{}\"", run.cache_duration),
        ),
        // Failed refreshes retried every 0.2-1 s instead of 0.5-30 s, so a test sees several.
        (
            "\"base_interval\": \"0.5s\", \"max_interval\": \"30s\"".into(),
            "\"base_interval\": \"0.2s\", \"max_interval\": \"1s\"".into(),
        ),
        (
            "port_value: 9001 ".into(),
            format!("port_value: {upstream_port} "),
        ),
        (
            "port_value: 10000 ".into(),
            format!("port_value: {listener_port} "),
        ),
        (
            "port_value: 9901 ".into(),
            format!("port_value: {admin_port} "),
        ),
    ];
    for (from, to) in replacements.into_iter().chain(run.edits.iter().cloned()) {
        assert_eq!(
            yaml.matches(from.as_str()).count(),
            1,
            "{SHIPPED} should contain {from:?} exactly once"
        );
        yaml = yaml.replace(from.as_str(), &to);
    }
    yaml
}

/// Envoy on the rewritten shipped file, the CA file and config in `dir`.
struct HttpsScenario {
    envoy: Envoy,
    jwks: TlsJwksServer,
    _upstream: EchoUpstream,
    _dir: TempDir,
}

impl HttpsScenario {
    /// Starts the JWKS server presenting `cert` and Envoy trusting only `trusted`.
    fn start(trusted: &TestCa, cert: &ServerCert, cache_duration: &'static str) -> HttpsScenario {
        HttpsScenario::start_edited(trusted, cert, cache_duration, Vec::new())
    }

    /// [`HttpsScenario::start`] with the shipped file edited further.
    fn start_edited(
        trusted: &TestCa,
        cert: &ServerCert,
        cache_duration: &'static str,
        edits: Vec<(String, String)>,
    ) -> HttpsScenario {
        wasm_module();
        let dir = TempDir::new("https-jwks");
        let ca_path = dir.0.join("trusted-ca.pem");
        std::fs::write(&ca_path, trusted.pem()).expect("write CA");
        let jwks = TlsJwksServer::start(Keys::load().jwks().to_string(), cert);
        let upstream = EchoUpstream::start();
        let (listener_port, admin_port) = (free_port(), free_port());
        let run = Run {
            ca_path: ca_path.display().to_string(),
            cache_duration,
            edits,
        };
        let yaml = rewritten_config(&run, jwks.port, upstream.port, listener_port, admin_port);
        let config = dir.0.join("envoy.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let envoy = Envoy::spawn_file(&config, &repo_root(), admin_port, listener_port);
        envoy.wait_ready();
        HttpsScenario {
            envoy,
            jwks,
            _upstream: upstream,
            _dir: dir,
        }
    }

    fn port(&self) -> u16 {
        self.envoy.wasm_port
    }

    /// A filter metric of provider `example` (`jwks_fetch_failed.http_status`), 0 while undefined.
    fn provider_stat(&self, name: &str) -> u64 {
        self.envoy
            .stat(&format!("jwt_authn_wasm.provider.{PROVIDER}.{name}"))
            .unwrap_or(0)
    }

    fn fetch_failures(&self) -> u64 {
        self.provider_stat(&format!("jwks_fetch_failed.{TLS_FAILURE_REASON}"))
    }

    /// One of Envoy's own stats by its full name (`cluster.issuer_example_com.ssl.handshake`), 0 while
    /// undefined.
    fn envoy_stat(&self, name: &str) -> u64 {
        self.envoy.envoy_stat(name).unwrap_or(0)
    }

    /// Every stat that tells how JWKS fetches went, for failure messages.
    fn fetch_report(&self) -> String {
        let (_, filter) =
            admin_get(self.envoy.admin_port, "/stats?filter=jwks").unwrap_or_default();
        let (_, tls) = admin_get(
            self.envoy.admin_port,
            &format!("/stats?filter=cluster.{CLUSTER}.ssl"),
        )
        .unwrap_or_default();
        format!(
            "{filter}{tls}server: {} requests, {} failed handshakes, SNI {:?}\nEnvoy log:\n{}",
            self.jwks.requests(),
            self.jwks.failed_handshakes(),
            self.jwks.sni_seen(),
            self.envoy.log_tail()
        )
    }

    /// Polls until `done` holds (up to 15 s), panicking with the fetch report otherwise.
    fn wait_for(&self, what: &str, done: impl Fn(&HttpsScenario) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}:\n{}", self.fetch_report());
    }
}

/// A valid token the filter has never seen (its own `sub`), so the verified-token cache cannot answer
/// for it: passing proves the keys themselves are still in use.
fn fresh_token(sub: &str) -> String {
    let mut claims = fixtures::good_claims(fixtures::now());
    claims["sub"] = json!(sub);
    fixtures::mint(&Keys::load().rsa2048, "RS256", &claims)
}

fn assert_valid_token_passes(scenario: &HttpsScenario, sub: &str) {
    let response = get_with_token(scenario.port(), "/api", &fresh_token(sub));
    assert_eq!(
        response.status,
        200,
        "valid token ({sub}) refused: {}\n{}",
        response.body,
        scenario.fetch_report()
    );
    assert_eq!(response.upstream_headers()["x-jwt-sub"], json!([sub]));
}

#[test]
fn shipped_https_config_validates_against_the_built_module() {
    wasm_module();
    assert!(
        Path::new("/etc/ssl/certs/ca-certificates.crt").exists(),
        "{SHIPPED} trusts the system CA bundle: install it with `apt-get install ca-certificates` \
         (`./build.sh setup` does)"
    );
    let (accepted, output) = validate_config_file(&repo_root().join(SHIPPED), &repo_root());
    assert!(
        accepted,
        "envoy --mode validate refused {SHIPPED}:\n{output}"
    );
}

#[test]
fn right_ca_and_name_fetch_the_jwks_over_tls_and_valid_tokens_pass() {
    let ca = TestCa::new("jwt-authn-wasm test CA");
    let scenario = HttpsScenario::start(&ca, &ca.server_cert(&[ISSUER_HOST]), "600s");

    assert_valid_token_passes(&scenario, "alice");
    let missing = http_request(scenario.port(), "/api", &[]);
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (401, fixtures::MISSING)
    );

    assert!(scenario.jwks.requests() >= 1, "{}", scenario.fetch_report());
    assert!(
        scenario
            .jwks
            .sni_seen()
            .iter()
            .all(|sni| sni == ISSUER_HOST),
        "Envoy sends the configured sni on every handshake: {:?}",
        scenario.jwks.sni_seen()
    );
    assert_eq!(scenario.provider_stat("jwks_fetch_success"), 1);
    assert_eq!(scenario.fetch_failures(), 0, "{}", scenario.fetch_report());
    // Gauges are published on the filter's 100 ms tick, so the first may not have run yet.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while scenario.provider_stat("keys_in_use") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(scenario.provider_stat("keys_in_use") > 0);
    assert!(scenario.envoy_stat(&format!("cluster.{CLUSTER}.ssl.handshake")) >= 1);
    assert_eq!(
        scenario.envoy_stat(&format!("cluster.{CLUSTER}.ssl.fail_verify_error")),
        0
    );
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn another_ca_or_another_name_fails_the_refresh_and_the_last_good_keys_keep_serving() {
    let ca = TestCa::new("jwt-authn-wasm test CA");
    let rogue_ca = TestCa::new("some other CA");
    // Refreshed every second, so each phase below sees several refetches.
    let scenario = HttpsScenario::start(&ca, &ca.server_cert(&[ISSUER_HOST]), "1s");
    assert_valid_token_passes(&scenario, "before");
    assert_eq!(scenario.fetch_failures(), 0, "{}", scenario.fetch_report());
    let served_before = scenario.jwks.requests();
    assert!(served_before >= 1);

    // The right name, signed by a CA Envoy does not trust.
    scenario
        .jwks
        .set_cert(&rogue_ca.server_cert(&[ISSUER_HOST]));
    let verify_errors = format!("cluster.{CLUSTER}.ssl.fail_verify_error");
    scenario.wait_for("a refresh refused for the untrusted CA", |s| {
        s.fetch_failures() >= 2 && s.envoy_stat(&verify_errors) >= 2
    });
    let after_ca = scenario.fetch_failures();
    for n in 0..5 {
        assert_valid_token_passes(&scenario, &format!("wrong-ca-{n}"));
    }
    assert!(
        scenario.provider_stat("keys_in_use") > 0,
        "{}",
        scenario.fetch_report()
    );

    // The trusted CA, but a certificate for another host: only match_typed_subject_alt_names refuses it.
    scenario
        .jwks
        .set_cert(&ca.server_cert(&["other.example.org"]));
    let san_errors = format!("cluster.{CLUSTER}.ssl.fail_verify_san");
    scenario.wait_for("a refresh refused for the wrong name", |s| {
        s.fetch_failures() >= after_ca + 2 && s.envoy_stat(&san_errors) >= 2
    });
    for n in 0..5 {
        assert_valid_token_passes(&scenario, &format!("wrong-name-{n}"));
    }
    assert!(scenario.provider_stat("keys_in_use") > 0);
    // No JWKS document was handed to Envoy while the certificate was wrong: every refused handshake
    // ended before a request.
    assert_eq!(
        scenario.jwks.requests(),
        served_before,
        "{}",
        scenario.fetch_report()
    );
    assert!(scenario.jwks.failed_handshakes() >= 4);
    println!(
        "FIGURE https refreshes refused: {} ({} untrusted-CA, {} wrong-SAN handshakes)",
        scenario.fetch_failures(),
        scenario.envoy_stat(&verify_errors),
        scenario.envoy_stat(&san_errors)
    );
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn untrusted_ca_from_the_start_refuses_valid_tokens_with_fetch_failed() {
    let ca = TestCa::new("jwt-authn-wasm test CA");
    let rogue_ca = TestCa::new("some other CA");
    let scenario = HttpsScenario::start(&ca, &rogue_ca.server_cert(&[ISSUER_HOST]), "600s");

    let response = get_with_token(scenario.port(), "/api", &fixtures::good_token());
    assert_eq!(
        (response.status, response.body.as_str()),
        (401, fixtures::FETCH_FAILED),
        "{}",
        scenario.fetch_report()
    );
    assert!(
        scenario.fetch_failures() >= 1,
        "{}",
        scenario.fetch_report()
    );
    assert_eq!(scenario.provider_stat("jwks_fetch_success"), 0);
    assert_eq!(scenario.provider_stat("keys_in_use"), 0);
    assert!(
        scenario
            .envoy
            .stat("jwt_authn_wasm.denied.jwks_fetch_failed")
            .unwrap_or(0)
            >= 1
    );
    assert_eq!(scenario.jwks.requests(), 0, "{}", scenario.fetch_report());
    assert!(scenario.envoy_stat(&format!("cluster.{CLUSTER}.ssl.fail_verify_error")) >= 1);
    // The path that needs no token still works: only the provider is down.
    let public = http_request(scenario.port(), "/public/x", &[]);
    assert_eq!(public.status, 200);
    scenario.envoy.assert_no_vm_failure();
}

/// The shipped cluster's check of the certificate's name, as it appears in the file.
const SAN_MATCHER: &str = "            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: { exact: issuer.example.com }
";

/// Cluster-level HTTP options (YAML at the cluster's indentation), put before its transport_socket.
const AUTO_SNI_OPTIONS: &str = r#"    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true }
        explicit_http_config: { http_protocol_options: {} }
    transport_socket:
"#;

/// The shipped cluster with its fixed `sni` and SAN matcher replaced by Envoy's `auto_sni` and
/// `auto_san_validation`, which take the name from the fetch's `:authority` (the JWKS URI's host).
fn auto_sni_edits() -> Vec<(String, String)> {
    vec![
        ("        sni: issuer.example.com\n".into(), String::new()),
        (SAN_MATCHER.into(), String::new()),
        ("    transport_socket:\n".into(), AUTO_SNI_OPTIONS.into()),
    ]
}

#[test]
fn auto_sni_and_auto_san_validation_take_the_name_from_the_jwks_uri() {
    let ca = TestCa::new("jwt-authn-wasm test CA");
    let scenario =
        HttpsScenario::start_edited(&ca, &ca.server_cert(&[ISSUER_HOST]), "1s", auto_sni_edits());
    assert_valid_token_passes(&scenario, "auto");
    assert!(
        scenario
            .jwks
            .sni_seen()
            .iter()
            .all(|sni| sni == ISSUER_HOST),
        "auto_sni sends the JWKS URI's host: {:?}",
        scenario.jwks.sni_seen()
    );
    assert_eq!(scenario.fetch_failures(), 0, "{}", scenario.fetch_report());

    scenario
        .jwks
        .set_cert(&ca.server_cert(&["other.example.org"]));
    let san_errors = format!("cluster.{CLUSTER}.ssl.fail_verify_san");
    scenario.wait_for("auto_san_validation refusing the wrong name", |s| {
        s.fetch_failures() >= 2 && s.envoy_stat(&san_errors) >= 2
    });
    assert_valid_token_passes(&scenario, "auto-after");
    scenario.envoy.assert_no_vm_failure();
}

#[test]
fn without_a_san_matcher_envoy_accepts_a_trusted_certificate_for_any_name() {
    // Why the shipped cluster has match_typed_subject_alt_names: Envoy checks the chain against
    // trusted_ca but does not compare the certificate's names with `sni` by itself.
    let ca = TestCa::new("jwt-authn-wasm test CA");
    let scenario = HttpsScenario::start_edited(
        &ca,
        &ca.server_cert(&["other.example.org"]),
        "600s",
        vec![(SAN_MATCHER.into(), String::new())],
    );
    assert_valid_token_passes(&scenario, "any-name");
    assert_eq!(scenario.fetch_failures(), 0, "{}", scenario.fetch_report());
    assert!(scenario.jwks.requests() >= 1);
}

#[test]
fn docs_show_the_shipped_jwks_cluster_verbatim() {
    let docs = std::fs::read_to_string(repo_root().join("docs/https-jwks.md")).expect("docs");
    let shipped = std::fs::read_to_string(repo_root().join(SHIPPED)).expect("shipped file");
    let cluster = docs
        .split("```yaml\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("docs/https-jwks.md starts with the cluster's YAML block");
    assert!(
        shipped.contains(cluster),
        "the cluster in docs/https-jwks.md differs from {SHIPPED}:\n{cluster}"
    );
}

#[test]
fn a_wrong_sni_gets_the_servers_default_certificate_and_the_fetch_fails() {
    // A server hosting several names (a CDN) picks the certificate by SNI. The cluster's `sni` is the
    // name the server sees, so a wrong one gets another name's certificate, which the SAN matcher
    // refuses, although the server does hold a good certificate for the issuer's name.
    let ca = TestCa::new("jwt-authn-wasm test CA");
    let scenario = HttpsScenario::start_edited(
        &ca,
        &ca.server_cert(&["default.invalid"]),
        "600s",
        vec![(
            "sni: issuer.example.com".into(),
            "sni: wrong.example.com".into(),
        )],
    );
    scenario
        .jwks
        .set_cert_for_sni(ISSUER_HOST, &ca.server_cert(&[ISSUER_HOST]));
    let response = get_with_token(scenario.port(), "/api", &fixtures::good_token());
    assert_eq!(
        (response.status, response.body.as_str()),
        (401, fixtures::FETCH_FAILED),
        "{}",
        scenario.fetch_report()
    );
    assert!(scenario.fetch_failures() >= 1);
    assert!(
        scenario
            .jwks
            .sni_seen()
            .iter()
            .all(|sni| sni == "wrong.example.com"),
        "{:?}",
        scenario.jwks.sni_seen()
    );
    assert!(scenario.envoy_stat(&format!("cluster.{CLUSTER}.ssl.fail_verify_san")) >= 1);
    assert_eq!(scenario.jwks.requests(), 0);
}
