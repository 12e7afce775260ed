//! The JWKS lifecycle on the fake host: fetch schedule, lease races between two workers, back-off with
//! jitter bounds, stale-key serving, refetch rate limits and resume order. Deterministic and fast: the
//! clock only moves when a test moves it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};

use crate::config::FilterConfig;
use crate::jwks::{FetchFailure, JwksMeta, SharedKeys};
use crate::request::authenticator::{start, Start, Verdict};
use crate::request::headers::HeaderPair;
use crate::worker::fake_host::{FakeHost, FakeProcess};
use crate::worker::fetch::JwksFetcher;
use crate::worker::state::WorkerState;
use crate::worker::wait::{judge_or_wait, Resolution};
use crate::worker::{on_fetch_response, on_tick};

const JWKS_URI: &str = "https://idp.example/jwks";
const START_MS: u64 = 1_700_000_000_000;
const SUCCESS: &str = "jwt_authn_wasm.provider.idp.jwks_fetch_success";
const REFETCHES: &str = "jwt_authn_wasm.provider.idp.jwks_unknown_kid_refetch";

fn config(extra_remote: &str) -> Rc<FilterConfig> {
    let json = format!(
        r#"{{"providers": {{"idp": {{"issuer": "https://idp.example", "remote_jwks": {{
            "http_uri": {{"uri": "{JWKS_URI}", "cluster": "idp", "timeout": "1s"}},
            "cache_duration": "600s" {extra_remote}}}}}}},
          "rules": [{{"match": {{"prefix": "/"}}, "requires": {{"provider_name": "idp"}}}}]}}"#
    );
    Rc::new(FilterConfig::parse(json.as_bytes()).unwrap())
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A JWKS with the Ed25519 key of `seed` under `kid`.
fn jwks(seed: u8, kid: &str) -> Vec<u8> {
    let x = URL_SAFE_NO_PAD.encode(signing_key(seed).verifying_key().as_bytes());
    format!(r#"{{"keys": [{{"kty": "OKP", "crv": "Ed25519", "kid": "{kid}", "x": "{x}"}}]}}"#)
        .into_bytes()
}

/// A token of the issuer, valid for an hour after the tests' start, signed by `seed`'s key.
fn token(seed: u8, kid: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#));
    let exp = START_MS / 1000 + 3600;
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"https://idp.example","exp":{exp}}}"#));
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(signing_key(seed).sign(signed.as_bytes()).to_bytes());
    format!("{signed}.{signature}")
}

/// One worker VM: its host view, state and fetcher.
struct Vm {
    host: FakeHost,
    state: WorkerState,
    fetcher: JwksFetcher,
}

impl Vm {
    fn new(process: &Rc<FakeProcess>, config: &Rc<FilterConfig>, context_id: u32) -> Vm {
        let host = FakeHost::new(process);
        let fetcher = JwksFetcher::new(&host, config.clone(), context_id);
        Vm {
            host,
            state: WorkerState::new(config.clone()),
            fetcher,
        }
    }

    fn now(&self) -> u64 {
        self.host.process.now_ms.get()
    }

    fn tick(&mut self) -> Vec<Resolution> {
        let now = self.now();
        on_tick(&self.host, &mut self.state, &mut self.fetcher, now)
    }

    fn callouts(&self) -> usize {
        self.host.callouts.borrow().len()
    }

    /// Answers the last callout with `status` and `body` (`None`: the callout failed).
    fn answer(&mut self, response: Option<(&str, &[u8])>) -> Vec<Resolution> {
        let token = self.host.callouts.borrow().last().unwrap().token;
        let num_headers = match response {
            Some((status, body)) => {
                self.host.respond(status, &[], body);
                1
            }
            None => 0,
        };
        let body_size = response.map_or(0, |(_, body)| body.len());
        let now = self.now();
        on_fetch_response(
            &self.host,
            &mut self.state,
            &mut self.fetcher,
            token,
            num_headers,
            body_size,
            now,
        )
    }

    /// A request bearing `token` on stream `context_id`: its verdict now, or `None` while it waits.
    fn request(&mut self, token: &str, context_id: u32) -> Option<Verdict> {
        let bearer = format!("Bearer {token}");
        let headers: Vec<HeaderPair<'_>> = vec![
            (b":path", b"/"),
            (b":authority", b"api.example"),
            (b"authorization", bearer.as_bytes()),
        ];
        let now = self.now();
        let config = self.state.config.clone();
        match start(&config, &headers, now / 1000, &mut self.state.token_caches) {
            Start::Decided(verdict) => Some(verdict),
            Start::NeedsKeys(pending) => judge_or_wait(
                &self.host,
                &mut self.state,
                pending,
                context_id,
                &Rc::new(Cell::new(false)),
                now,
            ),
        }
    }
}

fn keys() -> SharedKeys {
    SharedKeys::for_uri(JWKS_URI)
}

fn meta(process: &FakeProcess) -> Option<JwksMeta> {
    JwksMeta::decode(process.shared_text(&keys().meta).as_bytes())
}

fn failure(process: &FakeProcess) -> FetchFailure {
    FetchFailure::decode(process.shared_text(&keys().failure).as_bytes()).unwrap()
}

fn denial_body(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Deny(reply) => &reply.body,
        Verdict::Answer(answer) => &answer.body,
        Verdict::Allow(_) => "allowed",
    }
}

#[test]
fn first_fetch_at_start_then_a_refresh_a_tenth_of_the_ttl_before_expiry() {
    let process = FakeProcess::new(START_MS);
    let mut vm = Vm::new(&process, &config(""), 1);
    vm.tick();
    assert_eq!(vm.callouts(), 1, "no keys yet: the first tick fetches");
    assert_eq!(vm.host.callouts.borrow()[0].path, "/jwks");
    assert_eq!(vm.host.callouts.borrow()[0].cluster, "idp");
    vm.answer(Some(("200", &jwks(1, "k1"))));
    assert_eq!(
        meta(&process),
        Some(JwksMeta {
            version: 1,
            fetched_at_ms: START_MS,
            ttl_ms: 600_000
        })
    );
    assert_eq!(vm.host.counter(SUCCESS), 1);
    assert_eq!(
        process.shared_text(&keys().lease),
        "",
        "the lease is released"
    );
    // A TTL of 600 s is refreshed 60 s before it runs out.
    process.advance(Duration::from_millis(539_999));
    vm.tick();
    assert_eq!(vm.callouts(), 1, "not due before 540 s");
    process.advance(Duration::from_millis(1));
    vm.tick();
    assert_eq!(vm.callouts(), 2, "due at 540 s");
    assert!(vm
        .request(&token(1, "k1"), 9)
        .is_some_and(|v| matches!(v, Verdict::Allow(_))));
}

#[test]
fn two_workers_race_for_one_lease_and_share_the_keys() {
    let process = FakeProcess::new(START_MS);
    let config = config("");
    let mut a = Vm::new(&process, &config, 1);
    let mut b = Vm::new(&process, &config, 1);
    assert_ne!(a.fetcher.worker_id(), b.fetcher.worker_id());
    a.tick();
    b.tick();
    assert_eq!(
        (a.callouts(), b.callouts()),
        (1, 0),
        "one fetch per process"
    );
    // A's callout never comes back: its lease lasts the timeout (1 s) plus 1 s of slack.
    process.advance(Duration::from_millis(1_999));
    b.tick();
    assert_eq!(b.callouts(), 0, "the lease still holds");
    process.advance(Duration::from_millis(1));
    b.tick();
    assert_eq!(b.callouts(), 1, "B takes the expired lease");
    a.tick();
    assert_eq!(
        a.callouts(),
        1,
        "A waits for its own callout, not a second one"
    );
    b.answer(Some(("200", &jwks(1, "k1"))));
    assert_eq!(b.host.counter(SUCCESS), 1);
    assert_eq!(a.host.counter(SUCCESS), 0);
    // A picks the set up from shared data on its next tick, without fetching.
    a.tick();
    assert!(a.state.keys_of(0, a.now()).is_some());
    assert_eq!(a.callouts(), 1);
}

#[test]
fn failed_fetches_back_off_exponentially_within_the_jitter_bounds() {
    let process = FakeProcess::new(START_MS);
    let mut vm = Vm::new(&process, &config(""), 1);
    vm.tick();
    vm.answer(None);
    let first = failure(&process);
    assert_eq!(first.consecutive, 1);
    assert_eq!(first.failed_at_ms, START_MS);
    let delay = first.retry_at_ms - first.failed_at_ms;
    assert!((400..=600).contains(&delay), "500 ms ± 20 %: {delay}");
    assert_eq!(
        vm.host
            .counter("jwt_authn_wasm.provider.idp.jwks_fetch_failed.no_response"),
        1
    );
    process.advance(Duration::from_millis(delay - 1));
    vm.tick();
    assert_eq!(vm.callouts(), 1, "inside the back-off");
    process.advance(Duration::from_millis(1));
    vm.tick();
    assert_eq!(vm.callouts(), 2, "retried at retry_at");
    vm.answer(Some(("503", b"")));
    let second = failure(&process);
    assert_eq!(second.consecutive, 2);
    let delay = second.retry_at_ms - second.failed_at_ms;
    assert!((800..=1200).contains(&delay), "1 s ± 20 %: {delay}");
    assert_eq!(
        vm.host
            .counter("jwt_authn_wasm.provider.idp.jwks_fetch_failed.http_status"),
        1
    );
    // A good fetch clears the record.
    process.advance(Duration::from_millis(delay));
    vm.tick();
    vm.answer(Some(("200", &jwks(1, "k1"))));
    assert_eq!(process.shared_text(&keys().failure), "");
}

#[test]
fn stale_keys_serve_while_refreshes_fail_until_max_staleness() {
    let process = FakeProcess::new(START_MS);
    let mut vm = Vm::new(&process, &config(r#", "max_staleness": "60s""#), 1);
    vm.tick();
    vm.answer(Some(("200", &jwks(1, "k1"))));
    process.advance(Duration::from_secs(540));
    vm.tick();
    vm.answer(None);
    // Past the TTL (600 s), within the staleness (60 s more): the last good keys still verify.
    process.advance(Duration::from_secs(119));
    let verdict = vm.request(&token(1, "k1"), 1).unwrap();
    assert!(matches!(verdict, Verdict::Allow(_)), "{verdict:?}");
    // Beyond it the keys are not used, and the next tick forgets the tokens they verified: the request
    // waits for a fetch, then is refused.
    process.advance(Duration::from_secs(1));
    vm.tick();
    assert!(vm.state.keys_of(0, vm.now()).is_none());
    assert!(vm.request(&token(1, "k1"), 2).is_none());
    assert_eq!(vm.state.waiting.len(), 1);
    process.advance(Duration::from_secs(1));
    let resolutions = vm.tick();
    assert_eq!(resolutions.len(), 1);
    assert_eq!(
        denial_body(&resolutions[0].verdict),
        "Jwks remote fetch is failed"
    );
}

#[test]
fn unknown_kid_refetches_are_rate_limited_for_the_whole_process() {
    let process = FakeProcess::new(START_MS);
    let config = config(r#", "unknown_kid_refetch_interval": "5s""#);
    let mut a = Vm::new(&process, &config, 1);
    let mut b = Vm::new(&process, &config, 1);
    a.tick();
    a.answer(Some(("200", &jwks(1, "k1"))));
    b.tick();
    process.advance(Duration::from_secs(1));
    // A token signed by a key the set does not have yet: one refetch is asked for, and both workers'
    // requests wait for it.
    let rotated = token(2, "k2");
    assert!(a.request(&rotated, 1).is_none());
    assert!(b.request(&rotated, 2).is_none());
    assert_eq!(a.host.counter(REFETCHES) + b.host.counter(REFETCHES), 1);
    a.tick();
    b.tick();
    assert_eq!(
        a.callouts() + b.callouts(),
        2,
        "one refetch after the first fetch"
    );
    // The issuer has published k2 now.
    let fetcher = if a.callouts() == 2 { &mut a } else { &mut b };
    let resolutions = fetcher.answer(Some(("200", &jwks(2, "k2"))));
    assert_eq!(resolutions.len(), 1);
    assert!(matches!(resolutions[0].verdict, Verdict::Allow(_)));
    let other = if a.state.waiting.is_empty() {
        &mut b
    } else {
        &mut a
    };
    let resolutions = other.tick();
    assert_eq!(resolutions.len(), 1);
    assert!(matches!(resolutions[0].verdict, Verdict::Allow(_)));
    // Another unknown kid within the interval: no refetch, judged with the keys at hand.
    process.advance(Duration::from_secs(1));
    let verdict = a.request(&token(3, "k3"), 3).unwrap();
    assert_eq!(
        denial_body(&verdict),
        "Jwks doesn't have key to match kid or alg from Jwt"
    );
    assert_eq!(a.host.counter(REFETCHES) + b.host.counter(REFETCHES), 1);
    // Once the interval has passed, it may ask again.
    process.advance(Duration::from_secs(4));
    assert!(a.request(&token(3, "k3"), 4).is_none());
    assert_eq!(a.host.counter(REFETCHES) + b.host.counter(REFETCHES), 2);
}

#[test]
fn waiting_requests_resume_in_arrival_order_or_are_refused_when_time_runs_out() {
    let process = FakeProcess::new(START_MS);
    let mut vm = Vm::new(&process, &config(""), 1);
    vm.tick();
    let good = token(1, "k1");
    for context_id in [7, 3, 5] {
        assert!(
            vm.request(&good, context_id).is_none(),
            "no keys yet: waits"
        );
    }
    let resolutions = vm.answer(Some(("200", &jwks(1, "k1"))));
    let order: Vec<u32> = resolutions.iter().map(|r| r.context_id).collect();
    assert_eq!(order, [7, 3, 5]);
    assert!(resolutions
        .iter()
        .all(|r| matches!(r.verdict, Verdict::Allow(_))));
    assert!(vm.state.waiting.is_empty());

    // Another process whose first fetch never answers: the wait ends at the fetch timeout (1 s).
    let process = FakeProcess::new(START_MS);
    let mut vm = Vm::new(&process, &config(""), 1);
    vm.tick();
    assert!(vm.request(&good, 1).is_none());
    process.advance(Duration::from_millis(999));
    assert!(vm.tick().is_empty(), "still within the timeout");
    process.advance(Duration::from_millis(1));
    let resolutions = vm.tick();
    assert_eq!(resolutions.len(), 1);
    assert_eq!(resolutions[0].context_id, 1);
    assert_eq!(
        denial_body(&resolutions[0].verdict),
        "Jwks remote fetch is failed"
    );
}

#[test]
fn oidc_discovery_follows_the_jwks_uri_under_one_lease() {
    let process = FakeProcess::new(START_MS);
    let json = r#"{"providers": {"idp": {"issuer": "https://idp.example", "remote_jwks": {
        "http_uri": {"cluster": "idp", "timeout": "1s"}, "oidc_discovery": true}}}}"#;
    let config = Rc::new(FilterConfig::parse(json.as_bytes()).unwrap());
    let discovery = "https://idp.example/.well-known/openid-configuration";
    let mut vm = Vm::new(&process, &config, 1);
    vm.tick();
    assert_eq!(
        vm.host.callouts.borrow()[0].path,
        "/.well-known/openid-configuration"
    );
    vm.answer(Some((
        "200",
        br#"{"issuer": "https://idp.example", "jwks_uri": "https://idp.example/keys"}"#,
    )));
    assert_eq!(vm.callouts(), 2);
    assert_eq!(vm.host.callouts.borrow()[1].path, "/keys");
    let lease = SharedKeys::for_uri(discovery).lease;
    assert!(
        !process.shared_text(&lease).is_empty(),
        "the lease is held for the second callout"
    );
    vm.answer(Some(("200", &jwks(1, "k1"))));
    let stored = JwksMeta::decode(
        process
            .shared_text(&SharedKeys::for_uri(discovery).meta)
            .as_bytes(),
    );
    assert_eq!(stored.map(|m| m.version), Some(1));
    assert_eq!(process.shared_text(&lease), "");
    assert_eq!(vm.host.counter(SUCCESS), 1);
}
