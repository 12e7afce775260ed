//! A paced (open-loop) HTTP load generator for latency at a fixed request rate, which wrk cannot do:
//! `paced_load PORT RATE SECONDS CONNECTIONS TOKENS_FILE` sends `GET /bench` with
//! `Authorization: Bearer <token>` (tokens taken in turn from the file) at RATE requests per second
//! over CONNECTIONS keep-alive connections, and prints `p50_ms p99_ms achieved_rate non_2xx`.
//!
//! Each request has a scheduled send time; its latency runs from that time, not from when it was
//! actually sent, so a stalled server is charged for the requests it delayed (no coordinated omission).
//!
//! With `ZIPF=S` (an exponent, e.g. 1.0) the token of each request is drawn at random with the
//! probability of line i proportional to 1 / (i + 1)^S, independently on every connection, instead of
//! in turn: many users, a few of them busy, each user's token reused across requests and connections
//! (bench/realistic.sh).

// Measurement code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, rate, seconds, connections, tokens_file] = args.as_slice() else {
        eprintln!("usage: paced_load PORT RATE SECONDS CONNECTIONS TOKENS_FILE");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("port");
    let rate: f64 = rate.parse().expect("rate");
    let seconds: f64 = seconds.parse().expect("seconds");
    let connections: usize = connections.parse().expect("connections");
    let tokens: Vec<String> = std::fs::read_to_string(tokens_file)
        .expect("tokens file")
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(!tokens.is_empty(), "no tokens");
    let zipf: Option<Vec<f64>> = std::env::var("ZIPF")
        .ok()
        .map(|s| zipf_cdf(tokens.len(), s.parse().expect("ZIPF: an exponent")));
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let per_connection = (seconds * rate / connections as f64) as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let tokens = tokens.clone();
            let zipf = zipf.clone();
            std::thread::spawn(move || {
                let offset = interval.mul_f64(c as f64 / connections as f64);
                let pick = TokenPick::new(zipf, c);
                run_connection(
                    port,
                    start + offset,
                    interval,
                    per_connection,
                    &tokens,
                    pick,
                )
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut non_2xx = 0usize;
    for worker in workers {
        let (l, bad) = worker.join().expect("worker");
        latencies.extend(l);
        non_2xx += bad;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{:.2} {:.2} {:.0} {}",
        pick(0.50),
        pick(0.99),
        latencies.len() as f64 / elapsed,
        non_2xx
    );
}

fn run_connection(
    port: u16,
    first: Instant,
    interval: Duration,
    count: usize,
    tokens: &[String],
    mut pick: TokenPick,
) -> (Vec<f64>, usize) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut latencies = Vec::with_capacity(count);
    let mut non_2xx = 0;
    for i in 0..count {
        let scheduled = first + interval.mul_f64(i as f64);
        if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let token = &tokens[pick.next(i, tokens.len())];
        let request =
            format!("GET /bench HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\r\n");
        writer.write_all(request.as_bytes()).expect("send");
        let status = read_response(&mut reader);
        if !(200..300).contains(&status) {
            non_2xx += 1;
        }
        latencies.push(scheduled.elapsed().as_secs_f64() * 1000.0);
    }
    (latencies, non_2xx)
}

/// Reads one response (head and content-length body) and returns its status.
fn read_response(reader: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).expect("body");
    status
}

/// The cumulative Zipf distribution over `n` ranks with exponent `s`, normalised to end at 1.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut cdf: Vec<f64> = (1..=n).map(|rank| (rank as f64).powf(-s)).collect();
    let mut total = 0.0;
    for weight in cdf.iter_mut() {
        total += *weight;
        *weight = total;
    }
    for weight in cdf.iter_mut() {
        *weight /= total;
    }
    cdf
}

/// Which token a connection sends next: in turn (a stride through the file), or Zipf-distributed.
struct TokenPick {
    zipf: Option<Vec<f64>>,
    seed: usize,
    /// xorshift64* state: reproducible per connection, no dependency.
    state: u64,
}

impl TokenPick {
    fn new(zipf: Option<Vec<f64>>, seed: usize) -> TokenPick {
        TokenPick {
            zipf,
            seed,
            state: 0x9e37_79b9_7f4a_7c15 ^ (seed as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
        }
    }

    fn next(&mut self, i: usize, len: usize) -> usize {
        let Some(cdf) = &self.zipf else {
            return (self.seed + i * 7919) % len;
        };
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let uniform =
            (self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        cdf.partition_point(|&c| c < uniform).min(len - 1)
    }
}
