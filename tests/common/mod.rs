//! Test support shared by the test binaries (tests/host, tests/verifiers, tests/envoy): the named-token
//! fixture, loopback servers, and a real Envoy. Each binary declares it `pub`, so what one binary does
//! not use is not dead code there.

pub mod decide;
pub mod dpop;
pub mod envoy;
pub mod fixtures;
pub mod servers;
// rustls and rcgen are host-only dev-dependencies (the verifiers binary is also built for wasm32).
#[cfg(not(target_arch = "wasm32"))]
pub mod tls;
// Downstream mutual TLS for the certificate-bound token tests (rustls and rcgen, host-only too).
#[cfg(not(target_arch = "wasm32"))]
pub mod mtls;
// X.509 certificates for the certificate map key-set form (rcgen, host-only too).
#[cfg(not(target_arch = "wasm32"))]
pub mod x509;

use serde_json::{json, Value};

use envoy::{Envoy, EnvoySetup};
use fixtures::{provider_json, Keys};
use servers::{EchoUpstream, JwksServer};

/// A running scenario: JWKS server, echo upstream, and Envoy with this filter (and jwt_authn beside it).
pub struct Scenario {
    pub jwks: JwksServer,
    pub upstream: EchoUpstream,
    pub envoy: Envoy,
}

/// Filter configuration with the fixture provider `jwt` and one rule requiring it on every path.
pub fn fixture_config(jwks_uri: &str) -> Value {
    json!({
        "providers": {"jwt": provider_json(jwks_uri, "jwks")},
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "jwt"}}
        ]
    })
}

impl Scenario {
    /// Starts servers and Envoy; `configure` gets the JWKS URI and returns the configuration both filters
    /// use; `with_native` adds the jwt_authn reference listener.
    pub fn start(
        concurrency: u32,
        with_native: bool,
        configure: impl Fn(&str) -> Value,
    ) -> Scenario {
        Scenario::start_edited(concurrency, with_native, configure, |_| {})
    }

    /// [`Scenario::start`] with Envoy's bootstrap edited before Envoy starts.
    pub fn start_edited(
        concurrency: u32,
        with_native: bool,
        configure: impl Fn(&str) -> Value,
        edit: impl FnOnce(&mut Value),
    ) -> Scenario {
        let keys = Keys::load();
        let jwks = JwksServer::start(keys.jwks().to_string());
        let upstream = EchoUpstream::start();
        let config = configure(&jwks.uri());
        let setup = EnvoySetup {
            filter_config: config.clone(),
            native_config: with_native.then_some(config),
            upstream_port: upstream.port,
            jwks_port: jwks.port,
            native_jwks_port: None,
            concurrency,
        };
        let envoy = Envoy::start_edited(&setup, edit);
        Scenario {
            jwks,
            upstream,
            envoy,
        }
    }
}
