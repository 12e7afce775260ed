//! Real servers on 127.0.0.1 for the Envoy tests: a JWKS server the test can fault, and an upstream that
//! echoes the request it received. Plain std threads and HTTP/1.1 with `Connection: close`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the JWKS server answers.
#[derive(Debug, Clone)]
pub struct JwksResponse {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

/// Serves a JWKS (any path) and, optionally, other documents on given paths (OIDC discovery).
pub struct JwksServer {
    pub port: u16,
    response: Arc<Mutex<JwksResponse>>,
    routes: Arc<Mutex<BTreeMap<String, JwksResponse>>>,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl JwksServer {
    pub fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind JWKS server");
        let port = listener.local_addr().expect("addr").port();
        let response = Arc::new(Mutex::new(JwksResponse {
            status: 200,
            body,
            delay: Duration::ZERO,
        }));
        let requests = Arc::new(AtomicUsize::new(0));
        let routes: Arc<Mutex<BTreeMap<String, JwksResponse>>> = Arc::default();
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (resp, count, stopping) = (response.clone(), requests.clone(), stop.clone());
        let (routes_in, paths_in) = (routes.clone(), paths.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (resp, count) = (resp.clone(), count.clone());
                let (routes, paths) = (routes_in.clone(), paths_in.clone());
                thread::spawn(move || {
                    let Some((request_line, _)) = read_request(&stream) else {
                        return;
                    };
                    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
                    paths.lock().expect("lock").push(path.clone());
                    let routed = routes.lock().expect("lock").get(&path).cloned();
                    if routed.is_none() {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    let current = routed.unwrap_or_else(|| resp.lock().expect("lock").clone());
                    thread::sleep(current.delay);
                    write_response(
                        stream,
                        current.status,
                        "application/json",
                        current.body.as_bytes(),
                    );
                });
            }
        });
        JwksServer {
            port,
            response,
            routes,
            requests,
            paths,
            stop,
        }
    }

    /// Serves `body` on `path` (exact, query included) instead of the JWKS.
    pub fn route(&self, path: &str, body: &str) {
        let response = JwksResponse {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        };
        self.routes
            .lock()
            .expect("lock")
            .insert(path.to_string(), response);
    }

    /// Every path requested so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().expect("lock").clone()
    }

    pub fn set(&self, status: u16, body: &str) {
        let mut r = self.response.lock().expect("lock");
        r.status = status;
        r.body = body.to_string();
    }

    pub fn set_delay(&self, delay: Duration) {
        self.response.lock().expect("lock").delay = delay;
    }

    /// JWKS requests served so far (requests to routed paths are not counted).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/jwks.json", self.port)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// An upstream that answers 200 with a JSON body: {"path": ..., "headers": {name: [values]}}.
pub struct EchoUpstream {
    pub port: u16,
}

impl EchoUpstream {
    pub fn start() -> EchoUpstream {
        EchoUpstream::start_on(0)
    }

    /// On a given port (0: any free one).
    pub fn start_on(port: u16) -> EchoUpstream {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                thread::spawn(move || {
                    let Some((request_line, headers)) = read_request(&stream) else {
                        return;
                    };
                    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for (name, value) in headers {
                        map.entry(name.to_ascii_lowercase())
                            .or_default()
                            .push(value);
                    }
                    let body = serde_json::json!({"path": path, "headers": map}).to_string();
                    write_response(stream, 200, "application/json", body.as_bytes());
                });
            }
        });
        EchoUpstream { port }
    }
}

/// Reads a request head (and discards any body announced by content-length).
pub fn read_request(stream: &TcpStream) -> Option<(String, Vec<(String, String)>)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    if request_line.is_empty() {
        return None;
    }
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut raw = Vec::new();
        reader.read_until(b'\n', &mut raw).ok()?;
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().to_string();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            }
            headers.push((name.to_string(), value));
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line.trim_end().to_string(), headers))
}

pub fn write_response(mut stream: TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// A response as the test client read it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers the echo upstream received (when the request got through).
    pub fn upstream_headers(&self) -> serde_json::Value {
        let echoed: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("upstream echo is JSON, got {:?}", self.body));
        echoed["headers"].clone()
    }

    pub fn upstream_path(&self) -> String {
        let echoed: serde_json::Value = serde_json::from_str(&self.body).expect("echo JSON");
        echoed["path"].as_str().unwrap_or_default().to_string()
    }
}

/// Sends one HTTP/1.1 request with raw header bytes (so tests can send non-UTF-8 values and repeated
/// headers) and reads the whole response.
pub fn http_request(port: u16, path: &str, headers: &[(&str, &[u8])]) -> HttpResponse {
    http_request_with_method(port, "GET", path, headers)
}

/// [`http_request`] with another method.
pub fn http_request_with_method(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
) -> HttpResponse {
    http_request_with_body(port, method, path, headers, b"")
}

/// [`http_request_with_method`] with a body (sent with a content-length, in the same write as the head
/// when it is small, as clients do).
pub fn http_request_with_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Envoy");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: test.local\r\nconnection: close\r\n")
            .into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() {
        request.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    stream.write_all(&request).expect("send request");
    parse_response(&read_response(&mut stream))
}

/// Reads one response: the head, then content-length bytes (or to EOF without one). Reading to EOF
/// regardless would wait out Envoy's delayed close after local replies (1 s).
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(length) = length {
                if raw.len() >= head_end + 4 + length {
                    return raw;
                }
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// GET with an `Authorization: Bearer <token>` header.
pub fn get_with_token(port: u16, path: &str, token: &str) -> HttpResponse {
    let value = format!("Bearer {token}");
    http_request(port, path, &[("authorization", value.as_bytes())])
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
