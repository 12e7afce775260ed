//! A real TLS JWKS server on 127.0.0.1 with certificates from a CA the test generates (rcgen), served by
//! rustls. The test can swap the certificate while the server runs (to play an issuer whose certificate
//! changes under Envoy), and sees the SNI each client sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A certificate authority made for one test.
/// A fresh self-signed CA named `common_name`, with a key made for it.
pub fn self_signed_ca(common_name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().expect("CA key");
    CertifiedIssuer::self_signed(params, key).expect("CA certificate")
}

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate (chain of one) and its key, as rustls serves them.
#[derive(Clone)]
pub struct ServerCert(Arc<CertifiedKey>);

impl TestCa {
    pub fn new(common_name: &str) -> TestCa {
        TestCa {
            issuer: self_signed_ca(common_name),
        }
    }

    /// The CA certificate in PEM, for Envoy's `validation_context.trusted_ca`.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `dns_names`, signed by this CA.
    pub fn server_cert(&self, dns_names: &[&str]) -> ServerCert {
        let names: Vec<String> = dns_names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params.distinguished_name.push(
            DnType::CommonName,
            dns_names.first().copied().unwrap_or("server"),
        );
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = provider()
            .key_provider
            .load_private_key(key_der)
            .expect("rustls loads the key");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        ServerCert(Arc::new(CertifiedKey::new(chain, signing)))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Picks the certificate the way a server hosting several names does: the one set for the client's SNI,
/// else the default (whatever the test set last).
#[derive(Debug)]
struct SwappableCert {
    current: Mutex<Arc<CertifiedKey>>,
    by_sni: Mutex<Vec<(String, Arc<CertifiedKey>)>>,
    sni_seen: Mutex<Vec<String>>,
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().unwrap_or("").to_string();
        self.sni_seen.lock().expect("lock").push(sni.clone());
        let for_name = self
            .by_sni
            .lock()
            .expect("lock")
            .iter()
            .find(|(name, _)| *name == sni)
            .map(|(_, cert)| cert.clone());
        Some(for_name.unwrap_or_else(|| self.current.lock().expect("lock").clone()))
    }
}

/// A JWKS over HTTPS (any path), HTTP/1.1 with `Connection: close`.
pub struct TlsJwksServer {
    pub port: u16,
    body: Arc<Mutex<String>>,
    certs: Arc<SwappableCert>,
    requests: Arc<AtomicUsize>,
    failed_handshakes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TlsJwksServer {
    pub fn start(body: String, cert: &ServerCert) -> TlsJwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind TLS JWKS server");
        let port = listener.local_addr().expect("addr").port();
        let certs = Arc::new(SwappableCert {
            current: Mutex::new(cert.0.clone()),
            by_sni: Mutex::default(),
            sni_seen: Mutex::default(),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        // No session resumption: every connection is a full handshake, so a swapped certificate is
        // presented (and checked by Envoy) on the very next fetch.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        let config = Arc::new(config);
        let body = Arc::new(Mutex::new(body));
        let requests = Arc::new(AtomicUsize::new(0));
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (body_in, requests_in, failed_in, stopping) = (
            body.clone(),
            requests.clone(),
            failed_handshakes.clone(),
            stop.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, body) = (config.clone(), body_in.clone());
                let (requests, failed) = (requests_in.clone(), failed_in.clone());
                thread::spawn(move || {
                    if serve(stream, config, &body, &requests).is_none() {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        TlsJwksServer {
            port,
            body,
            certs,
            requests,
            failed_handshakes,
            stop,
        }
    }

    /// Presents `cert` to clients whose SNI is `sni` (other clients get the default certificate).
    pub fn set_cert_for_sni(&self, sni: &str, cert: &ServerCert) {
        self.certs
            .by_sni
            .lock()
            .expect("lock")
            .push((sni.to_string(), cert.0.clone()));
    }

    /// Presents `cert` by default from the next handshake on.
    pub fn set_cert(&self, cert: &ServerCert) {
        *self.certs.current.lock().expect("lock") = cert.0.clone();
    }

    pub fn set_body(&self, body: &str) {
        *self.body.lock().expect("lock") = body.to_string();
    }

    /// JWKS requests answered (each after a completed handshake).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections that ended before a request was read: the client refused the certificate (or closed).
    pub fn failed_handshakes(&self) -> usize {
        self.failed_handshakes.load(Ordering::SeqCst)
    }

    /// The SNI of every ClientHello so far ("" when a client sent none).
    pub fn sni_seen(&self) -> Vec<String> {
        self.certs.sni_seen.lock().expect("lock").clone()
    }
}

impl Drop for TlsJwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection: handshake, read the request head, answer the JWKS. `None` when the handshake or the
/// request failed.
fn serve(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    body: &Mutex<String>,
    requests: &AtomicUsize,
) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let connection = ServerConnection::new(config).ok()?;
    let mut tls = StreamOwned::new(connection, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    if request_line.is_empty() {
        return None;
    }
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim_end().is_empty() {
            break;
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let body = body.lock().expect("lock").clone();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).ok()?;
    tls.write_all(body.as_bytes()).ok()?;
    tls.flush().ok()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Some(())
}
