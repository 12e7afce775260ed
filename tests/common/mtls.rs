//! Mutual TLS in front of Envoy's listener: a CA made for one test (rcgen) issues Envoy's server
//! certificate and client certificates; [`downstream_tls`] puts a TLS transport socket on a listener of
//! the bootstrap; [`https_request`] is a real rustls client that may present a client certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};

use crate::common::servers::HttpResponse;
use crate::common::tls::self_signed_ca;

/// The DNS name on Envoy's server certificate, sent as SNI.
pub const ENVOY_NAME: &str = "envoy.test";

/// A certificate and its private key, in PEM (for Envoy) and DER (for rustls and thumbprints).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

/// A certificate authority made for one test: issues Envoy's certificate and the clients'.
pub struct MtlsCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl MtlsCa {
    pub fn new(common_name: &str) -> MtlsCa {
        MtlsCa {
            issuer: self_signed_ca(common_name),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Envoy's server certificate, for [`ENVOY_NAME`].
    pub fn server(&self) -> Issued {
        self.issue(
            &[ENVOY_NAME],
            ENVOY_NAME,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with this common name.
    pub fn client(&self, common_name: &str) -> Issued {
        self.issue(&[], common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        dns_names: &[&str],
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Issued {
        let names: Vec<String> = dns_names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// Makes the listener named `listener` of an Envoy bootstrap terminate TLS with `server`'s certificate,
/// verifying client certificates against `ca`; `require_client_certificate` false lets clients without
/// one in (a certificate they do present is still verified).
pub fn downstream_tls(
    bootstrap: &mut Value,
    listener: &str,
    server: &Issued,
    ca: &MtlsCa,
    require_client_certificate: bool,
) {
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .expect("listeners");
    let listener = listeners
        .iter_mut()
        .find(|l| l["name"] == listener)
        .unwrap_or_else(|| panic!("no listener {listener}"));
    listener["filter_chains"][0]["transport_socket"] = json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": require_client_certificate,
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"inline_string": server.cert_pem},
                    "private_key": {"inline_string": server.key_pem}
                }],
                "validation_context": {"trusted_ca": {"inline_string": ca.pem()}}
            }
        }
    });
}

/// A copy of the listener named `from` under a new name and port (same filters), added to the
/// bootstrap; returns the copy for further edits.
pub fn copy_listener<'a>(
    bootstrap: &'a mut Value,
    from: &str,
    name: &str,
    port: u16,
) -> &'a mut Value {
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .expect("listeners");
    let mut copy = listeners
        .iter()
        .find(|l| l["name"] == from)
        .unwrap_or_else(|| panic!("no listener {from}"))
        .clone();
    copy["name"] = json!(name);
    copy["address"]["socket_address"]["port_value"] = json!(port);
    copy["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefix"] = json!(name);
    listeners.push(copy);
    listeners.last_mut().expect("just pushed")
}

/// The http_connection_manager settings of a listener (from [`copy_listener`]).
pub fn connection_manager(listener: &mut Value) -> &mut Value {
    &mut listener["filter_chains"][0]["filters"][0]["typed_config"]
}

/// One HTTP/1.1 GET over TLS to Envoy on 127.0.0.1:`port`, trusting `ca` for Envoy's certificate and
/// presenting `client` when given. `Err` when the TLS handshake or the exchange fails (Envoy refusing a
/// client without a certificate, say).
pub fn https_request(
    port: u16,
    path: &str,
    ca: &MtlsCa,
    client: Option<&Issued>,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.issuer.der().clone())
        .map_err(|e| format!("CA: {e}"))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![issued.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.clone())),
            )
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(ENVOY_NAME).map_err(|e| e.to_string())?;
    let connection = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(connection, tcp);
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {ENVOY_NAME}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // Envoy may close without close_notify after its reply; what arrived is the answer.
            Err(_) if !raw.is_empty() => break,
            Err(e) => return Err(format!("read: {e}")),
        }
        if complete(&raw) {
            break;
        }
    }
    parse(&raw).ok_or_else(|| format!("no HTTP response: {:?}", String::from_utf8_lossy(&raw)))
}

/// Whether `raw` holds a head and as many body bytes as its content-length says.
fn complete(raw: &[u8]) -> bool {
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|length| raw.len() >= head_end + 4 + length)
}

fn parse(raw: &[u8]) -> Option<HttpResponse> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&raw[head_end + 4..]).to_string(),
    })
}
