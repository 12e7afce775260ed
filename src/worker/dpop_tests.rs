//! The DPoP checks that need shared data, on the fake host: two fakes over one process are two workers
//! of one Envoy.

use std::rc::Rc;
use std::time::Duration;

use crate::config::FilterConfig;
use crate::request::authenticator::{RequestMutations, Verdict};
use crate::request::dpop::replay::ReplayLayout;
use crate::request::dpop::ProofRecord;
use crate::worker::dpop::{check_proofs, nonce_secret, NONCE_SECRET_KEY};
use crate::worker::fake_host::{FakeHost, FakeProcess};
use crate::worker::host::Host;

const START_MS: u64 = 1_700_000_000_000;

fn config(dpop: &str) -> FilterConfig {
    let text = format!(
        r#"{{"providers": {{"jwt": {{"issuer": "https://issuer.example.com",
            "local_jwks": {{"inline_string": "{{\"keys\": [{{\"kty\": \"oct\", \"alg\": \"HS256\", \"k\": \"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE\"}}]}}"}}, "dpop": {dpop}}}}}}}"#
    );
    FilterConfig::parse(text.as_bytes()).unwrap()
}

fn record(jti_byte: u8, keep_until: u64, nonce: Option<&str>) -> ProofRecord {
    ProofRecord {
        provider: 0,
        replay_key: [jti_byte; 16],
        keep_until,
        nonce: nonce.map(str::to_string),
    }
}

fn allow(records: Vec<ProofRecord>) -> Verdict {
    Verdict::Allow(RequestMutations {
        dpop_proofs: records,
        ..RequestMutations::default()
    })
}

fn check(host: &FakeHost, config: &FilterConfig, record: ProofRecord) -> Verdict {
    check_proofs(host, config, allow(vec![record]), host.now_ms())
}

fn body(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Deny(reply) => &reply.body,
        _ => "",
    }
}

#[test]
fn a_jti_is_accepted_once_across_workers_until_it_expires() {
    let process = FakeProcess::new(START_MS);
    let (worker_a, worker_b) = (FakeHost::new(&process), FakeHost::new(&process));
    let config = config(r#"{"max_proof_age": "60s"}"#);
    let now = START_MS / 1000;
    assert_eq!(
        check(&worker_a, &config, record(1, now + 65, None)),
        allow(Vec::new())
    );
    for worker in [&worker_a, &worker_b] {
        let verdict = check(worker, &config, record(1, now + 65, None));
        assert_eq!(body(&verdict), "DPoP proof [jti] was already used");
        let Verdict::Deny(reply) = verdict else {
            panic!("a replay is refused")
        };
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.www_authenticate.as_deref(),
            Some("DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof [jti] was already used\", algs=\"ES256 ES384 EdDSA PS256\"")
        );
    }
    // Another jti from the other worker passes.
    assert!(matches!(
        check(&worker_b, &config, record(2, now + 65, None)),
        Verdict::Allow(_)
    ));
    // Once the window is over, the entry goes (the proof's iat is out of the window by then anyway).
    process.advance(Duration::from_secs(70));
    assert!(matches!(
        check(&worker_b, &config, record(1, now + 200, None)),
        Verdict::Allow(_)
    ));
}

#[test]
fn a_full_bucket_refuses_rather_than_forget() {
    let process = FakeProcess::new(START_MS);
    let worker = FakeHost::new(&process);
    let config = config(r#"{"replay_cache_size": 2}"#);
    assert_eq!(ReplayLayout::for_capacity(2).buckets, 1);
    let now = START_MS / 1000;
    for jti in [1, 2] {
        assert!(matches!(
            check(&worker, &config, record(jti, now + 60, None)),
            Verdict::Allow(_)
        ));
    }
    assert_eq!(
        body(&check(&worker, &config, record(3, now + 60, None))),
        "DPoP proof could not be checked for replay"
    );
    process.advance(Duration::from_secs(61));
    assert!(matches!(
        check(&worker, &config, record(3, now + 200, None)),
        Verdict::Allow(_)
    ));
}

#[test]
fn a_report_only_provider_counts_a_replay_and_lets_it_through() {
    let process = FakeProcess::new(START_MS);
    let worker = FakeHost::new(&process);
    let text = r#"{"providers": {"jwt": {"issuer": "https://issuer.example.com", "report_only": true,
        "local_jwks": {"inline_string": "{\"keys\": [{\"kty\": \"oct\", \"alg\": \"HS256\", \"k\": \"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE\"}]}"}, "dpop": {}}}}"#;
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    let now = START_MS / 1000;
    check(&worker, &config, record(1, now + 60, None));
    let Verdict::Allow(mutations) = check(&worker, &config, record(1, now + 60, None)) else {
        panic!("report-only")
    };
    assert_eq!(mutations.would_deny, vec!["dpop_proof_replayed"]);
}

#[test]
fn nonces_are_issued_and_accepted_by_every_worker_of_the_process() {
    let process = FakeProcess::new(START_MS);
    let (worker_a, worker_b) = (FakeHost::new(&process), FakeHost::new(&process));
    let config = config(r#"{"nonce": {"lifetime": "300s"}}"#);
    let now = START_MS / 1000;
    // No nonce: 401 use_dpop_nonce with a fresh DPoP-Nonce.
    let Verdict::Deny(reply) = check(&worker_a, &config, record(1, now + 60, None)) else {
        panic!("a nonce is required")
    };
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body,
        "DPoP proof must carry a nonce from the DPoP-Nonce header"
    );
    assert!(reply
        .www_authenticate
        .as_deref()
        .unwrap()
        .starts_with("DPoP error=\"use_dpop_nonce\""));
    let nonce = reply.dpop_nonce.expect("a DPoP-Nonce to retry with");
    // The refused proof's jti was not recorded, so the retry may reuse nothing but must carry the nonce;
    // the other worker accepts the nonce the first one issued.
    let Verdict::Allow(mutations) = check(&worker_b, &config, record(2, now + 60, Some(&nonce)))
    else {
        panic!("the issued nonce, on another worker")
    };
    assert!(
        mutations.filter_state.is_empty(),
        "a current nonce needs no successor"
    );
    // A forged or stale nonce is refused with a new one.
    let forged = format!("{}.AAAA", now / 300);
    let Verdict::Deny(reply) = check(&worker_b, &config, record(3, now + 60, Some(&forged))) else {
        panic!("forged nonce")
    };
    assert_eq!(
        reply.dpop_nonce.as_deref(),
        Some(nonce.as_str()),
        "same slot, same nonce"
    );
    process.advance(Duration::from_secs(300));
    let later = START_MS / 1000 + 300;
    // Still accepted in the next slot, with that slot's nonce offered for the response (RFC 9449 §8.2).
    let Verdict::Allow(mutations) = check(&worker_a, &config, record(4, later + 60, Some(&nonce)))
    else {
        panic!("still accepted in the next slot")
    };
    let [(name, next)] = mutations.filter_state.as_slice() else {
        panic!("one filter state: {:?}", mutations.filter_state)
    };
    assert_eq!(name, "dpop_nonce");
    assert_ne!(next, &nonce);
    assert!(next.starts_with(&format!("{}.", later / 300)));
    let Verdict::Allow(mutations) = check(&worker_b, &config, record(6, later + 60, Some(next)))
    else {
        panic!("the offered nonce is accepted")
    };
    assert!(mutations.filter_state.is_empty());
    process.advance(Duration::from_secs(300));
    let Verdict::Deny(reply) = check(&worker_a, &config, record(5, later + 400, Some(&nonce)))
    else {
        panic!("a nonce two slots old is stale")
    };
    assert_ne!(reply.dpop_nonce.as_deref(), Some(nonce.as_str()));
    // One secret for the process.
    assert_eq!(nonce_secret(&worker_a), nonce_secret(&worker_b));
    assert!(!process.shared_text(NONCE_SECRET_KEY).is_empty());
}

#[test]
fn verdicts_without_proofs_cost_no_host_call() {
    let process = FakeProcess::new(START_MS);
    let worker = FakeHost::new(&process);
    let config = Rc::new(config("{}"));
    let verdict = check_proofs(&worker, &config, allow(Vec::new()), START_MS);
    assert_eq!(verdict, allow(Vec::new()));
    assert!(process.shared_text(NONCE_SECRET_KEY).is_empty());
}

#[test]
fn a_replay_refusal_names_the_rules_resource_metadata() {
    let process = FakeProcess::new(START_MS);
    let worker = FakeHost::new(&process);
    let config = config(r#"{"max_proof_age": "60s"}"#);
    let now = START_MS / 1000;
    let url = "https://api.example.com/.well-known/oauth-protected-resource";
    let with_metadata = || {
        Verdict::Allow(RequestMutations {
            dpop_proofs: vec![record(7, now + 65, None)],
            resource_metadata: Some(url.to_string()),
            ..RequestMutations::default()
        })
    };
    assert!(matches!(
        check_proofs(&worker, &config, with_metadata(), worker.now_ms()),
        Verdict::Allow(_)
    ));
    let Verdict::Deny(reply) = check_proofs(&worker, &config, with_metadata(), worker.now_ms())
    else {
        panic!("a replay is refused")
    };
    assert_eq!(
        reply.www_authenticate.as_deref(),
        Some(format!("DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof [jti] was already used\", algs=\"ES256 ES384 EdDSA PS256\", resource_metadata=\"{url}\"").as_str())
    );
}
