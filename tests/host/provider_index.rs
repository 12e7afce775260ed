//! The provider index: a token for provider k of N is looked up once, parsed once, and checked
//! (claims and signature) only by provider k, under `requires_any` and `allow_missing`, cold and hot;
//! and a provider's several tokens are checked from the last extracted, as jwt_authn does.

use crate::common;

use std::rc::Rc;

use jwt_authn_wasm::config::FilterConfig;
use jwt_authn_wasm::jwks::parse_local_jwks;
use jwt_authn_wasm::request::{
    borrow_header_pairs, start, Start, TokenCaches, Verdict, WorkCounts,
};
use serde_json::{json, Value};

use common::fixtures::{self, good_claims, mint, now, Keys};

fn issuer(i: usize) -> String {
    format!("https://issuer{i}.example.com")
}

/// `n` providers `p0`..`p{n-1}`, each with its own issuer and claim header, all reading the default
/// locations, under `requires`.
fn providers_config(n: usize, requires: Value) -> FilterConfig {
    let keys = Keys::load();
    let local = json!({"inline_string": keys.jwks().to_string()});
    let providers: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"issuer": issuer(i), "local_jwks": local,
                       "claim_to_headers": [{"header_name": format!("x-p{i}-sub"), "claim_name": "sub"}]}),
            )
        })
        .collect();
    let config = json!({
        "providers": providers,
        "rules": [{"match": {"prefix": "/"}, "requires": requires}]
    });
    FilterConfig::parse(config.to_string().as_bytes()).unwrap()
}

fn any_of_all(n: usize) -> Value {
    let requirements: Vec<Value> = (0..n)
        .map(|i| json!({"provider_name": format!("p{i}")}))
        .collect();
    json!({"requires_any": {"requirements": requirements}})
}

fn token_for(i: usize) -> String {
    let mut claims = good_claims(now());
    claims["iss"] = json!(issuer(i));
    mint(&Keys::load().rsa2048, "RS256", &claims)
}

fn decide(config: &FilterConfig, token: &str, caches: &mut TokenCaches) -> Verdict {
    let jwks = Rc::new(parse_local_jwks(Keys::load().jwks().to_string().as_bytes()).unwrap());
    let headers = vec![
        (":path".to_string(), b"/api".to_vec()),
        (
            "authorization".to_string(),
            format!("Bearer {token}").into_bytes(),
        ),
    ];
    match start(config, &borrow_header_pairs(&headers), now(), caches) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(jwks.clone()), caches),
    }
}

fn delta(after: WorkCounts, before: WorkCounts) -> WorkCounts {
    WorkCounts {
        cache_lookups: after.cache_lookups - before.cache_lookups,
        parses: after.parses - before.parses,
        claim_checks: after.claim_checks - before.claim_checks,
        signature_checks: after.signature_checks - before.signature_checks,
    }
}

fn once(signature_checks: u64) -> WorkCounts {
    WorkCounts {
        cache_lookups: 1,
        parses: signature_checks,
        claim_checks: signature_checks,
        signature_checks,
    }
}

/// Admits and sets only provider `k`'s claim header.
fn assert_admitted_by(verdict: &Verdict, k: usize) {
    let Verdict::Allow(mutations) = verdict else {
        panic!("refused: {verdict:?}");
    };
    assert_eq!(
        mutations.added(),
        vec![(format!("x-p{k}-sub").as_str(), fixtures::SUBJECT)]
    );
}

#[test]
fn requires_any_checks_a_token_only_against_the_provider_of_its_issuer() {
    const N: usize = 50;
    let config = providers_config(N, any_of_all(N));
    for k in [0, 17, N - 1] {
        let mut caches = TokenCaches::for_config(&config);
        let token = token_for(k);
        let cold = decide(&config, &token, &mut caches);
        assert_admitted_by(&cold, k);
        assert_eq!(caches.work(), once(1), "cold, token for p{k}");
        let id = config
            .providers
            .iter()
            .position(|p| p.name == format!("p{k}"))
            .unwrap();
        assert_eq!(caches.len(id), 1);
        let before = caches.work();
        let hot = decide(&config, &token, &mut caches);
        assert_admitted_by(&hot, k);
        assert_eq!(delta(caches.work(), before), once(0), "hot, token for p{k}");
    }
}

#[test]
fn allow_missing_checks_a_token_only_against_the_provider_of_its_issuer() {
    const N: usize = 50;
    let config = providers_config(N, json!({"allow_missing": {}}));
    let k = 31;
    let mut caches = TokenCaches::for_config(&config);
    let token = token_for(k);
    assert_admitted_by(&decide(&config, &token, &mut caches), k);
    assert_eq!(caches.work(), once(1));
    let before = caches.work();
    assert_admitted_by(&decide(&config, &token, &mut caches), k);
    assert_eq!(delta(caches.work(), before), once(0));
}

#[test]
fn a_token_of_no_configured_issuer_is_parsed_once_and_checked_by_none() {
    const N: usize = 20;
    let config = providers_config(N, any_of_all(N));
    let mut caches = TokenCaches::for_config(&config);
    let mut claims = good_claims(now());
    claims["iss"] = json!("https://nobody.example.com");
    let token = mint(&Keys::load().rsa2048, "RS256", &claims);
    let Verdict::Deny(reply) = decide(&config, &token, &mut caches) else {
        panic!("admitted");
    };
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (401, fixtures::UNKNOWN_ISSUER)
    );
    assert_eq!(
        caches.work(),
        WorkCounts {
            cache_lookups: 1,
            parses: 1,
            claim_checks: 0,
            signature_checks: 0
        }
    );
}

#[test]
fn a_provider_without_issuer_is_consulted_beside_the_exact_ones() {
    // p0..p9 have issuers; "any" accepts every iss and sits in the fallback list.
    let keys = Keys::load();
    let local = json!({"inline_string": keys.jwks().to_string()});
    let mut providers = serde_json::Map::new();
    let mut requirements = Vec::new();
    for i in 0..10 {
        providers.insert(
            format!("p{i}"),
            json!({"issuer": issuer(i), "local_jwks": local}),
        );
        requirements.push(json!({"provider_name": format!("p{i}")}));
    }
    providers.insert(
        "any".into(),
        json!({"local_jwks": local,
               "claim_to_headers": [{"header_name": "x-any-sub", "claim_name": "sub"}]}),
    );
    requirements.push(json!({"provider_name": "any"}));
    let config = json!({
        "providers": providers,
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": requirements}}}]
    });
    let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
    let mut caches = TokenCaches::for_config(&config);
    let mut claims = good_claims(now());
    claims["iss"] = json!("https://elsewhere.example.com");
    let token = mint(&keys.rsa2048, "RS256", &claims);
    let Verdict::Allow(mutations) = decide(&config, &token, &mut caches) else {
        panic!("refused");
    };
    assert_eq!(mutations.added(), vec![("x-any-sub", fixtures::SUBJECT)]);
    assert_eq!(caches.work(), once(1));
}

/// One provider reading two headers (listed in reverse of jwt_authn's order) and a parameter.
fn many_locations() -> FilterConfig {
    let keys = Keys::load();
    let config = json!({
        "providers": {"many": {
            "issuer": fixtures::ISSUER,
            "local_jwks": {"inline_string": keys.jwks().to_string()},
            "from_headers": [{"name": "x-tok-b"}, {"name": "x-tok-a"}],
            "from_params": ["tok"]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "many"}}]
    });
    FilterConfig::parse(config.to_string().as_bytes()).unwrap()
}

fn refusal(config: &FilterConfig, path: &str, extra: &[(&str, &str)]) -> String {
    let jwks = Rc::new(parse_local_jwks(Keys::load().jwks().to_string().as_bytes()).unwrap());
    let mut headers = vec![(":path".to_string(), path.as_bytes().to_vec())];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    let mut caches = TokenCaches::for_config(config);
    let verdict = match start(config, &borrow_header_pairs(&headers), now(), &mut caches) {
        Start::Decided(verdict) => verdict,
        Start::NeedsKeys(pending) => pending.finish(config, &|_| Some(jwks.clone()), &mut caches),
    };
    match verdict {
        Verdict::Allow(_) => String::new(),
        Verdict::Deny(reply) => reply.body,
        Verdict::Answer(answer) => panic!("answered: {answer:?}"),
    }
}

#[test]
fn a_providers_tokens_are_checked_from_the_last_extracted() {
    let keys = Keys::load();
    let t = now();
    let mut expired_claims = good_claims(t);
    expired_claims["exp"] = json!(t - 3600);
    let expired = mint(&keys.rsa2048, "RS256", &expired_claims);
    let forged = mint(&keys.rsa2048_other, "RS256", &good_claims(t));
    let good = mint(&keys.rsa2048, "RS256", &good_claims(t));
    let config = many_locations();
    // Extracted as x-tok-a, x-tok-b, tok: the last one's failure is reported, even when an earlier
    // one fails its claims before any signature is checked.
    assert_eq!(
        refusal(&config, "/", &[("x-tok-a", &expired), ("x-tok-b", &forged)]),
        fixtures::VERIFICATION_FAILS
    );
    assert_eq!(
        refusal(&config, "/", &[("x-tok-a", &forged), ("x-tok-b", &expired)]),
        fixtures::EXPIRED
    );
    assert_eq!(
        refusal(
            &config,
            &format!("/?tok={forged}"),
            &[("x-tok-b", &expired)]
        ),
        fixtures::VERIFICATION_FAILS
    );
    assert_eq!(
        refusal(&config, "/", &[("x-tok-a", &expired), ("x-tok-b", &good)]),
        fixtures::EXPIRED
    );
    assert_eq!(
        refusal(&config, "/", &[("x-tok-a", &good), ("x-tok-b", &good)]),
        ""
    );
}

#[test]
fn a_tenant_template_provider_is_consulted_from_the_fallback_list() {
    // p0..p19 have exact issuers; "entra" names its issuers by a template.
    let keys = Keys::load();
    let local = json!({"inline_string": keys.jwks().to_string()});
    let mut providers = serde_json::Map::new();
    let mut requirements = Vec::new();
    for i in 0..20 {
        providers.insert(
            format!("p{i}"),
            json!({"issuer": issuer(i), "local_jwks": local}),
        );
        requirements.push(json!({"provider_name": format!("p{i}")}));
    }
    providers.insert(
        "entra".into(),
        json!({"tenant_issuer": {"template": "https://login.example.com/{tenant}/v2.0"},
               "local_jwks": local,
               "claim_to_headers": [{"header_name": "x-entra-sub", "claim_name": "sub"}]}),
    );
    requirements.insert(0, json!({"provider_name": "entra"}));
    for requires in [
        json!({"requires_any": {"requirements": requirements}}),
        json!({"allow_missing": {}}),
    ] {
        let config = json!({
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": requires}]
        });
        let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
        let mut caches = TokenCaches::for_config(&config);
        let mut claims = good_claims(now());
        claims["iss"] = json!("https://login.example.com/acme/v2.0");
        claims["tid"] = json!("acme");
        let token = mint(&keys.rsa2048, "RS256", &claims);
        let Verdict::Allow(mutations) = decide(&config, &token, &mut caches) else {
            panic!("refused under {requires}");
        };
        assert!(mutations
            .added()
            .contains(&("x-entra-sub", fixtures::SUBJECT)));
        assert_eq!(caches.work(), once(1), "under {requires}");
        // A token of an exact issuer is verified by its provider only; the template provider, always
        // consulted, matches its issuer on the one parse and checks no signature.
        let mut caches = TokenCaches::for_config(&config);
        assert!(matches!(
            decide(&config, &token_for(7), &mut caches),
            Verdict::Allow(_)
        ));
        assert_eq!(caches.work().signature_checks, 1, "under {requires}");
    }
}

#[test]
fn requires_any_skips_providers_a_token_cannot_belong_to_and_reports_what_jwt_authn_would() {
    // requires_any skips the providers whose issuer no token names (see `foreign_to`); the failure
    // it reports must stay jwt_authn's: the provider's own failure when a token names it, a parse
    // error for a token that does not parse, "issuer not configured" over "missing", and "missing"
    // when no provider's locations hold a token.
    const N: usize = 30;
    let config = providers_config(N, any_of_all(N));
    let mut expired = good_claims(now());
    expired["iss"] = json!(issuer(17));
    expired["exp"] = json!(now() - 3600);
    let expired = mint(&Keys::load().rsa2048, "RS256", &expired);
    let refused = |token: Option<&str>| -> String {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        refusal(&config, "/api", &headers)
    };
    assert_eq!(refused(Some(&expired)), fixtures::EXPIRED);
    assert_eq!(refused(Some("not.a-token")), fixtures::BAD_FORMAT);
    assert_eq!(refused(None), fixtures::MISSING);
    let mut stranger = good_claims(now());
    stranger["iss"] = json!("https://nobody.example.com");
    let stranger = mint(&Keys::load().rsa2048, "RS256", &stranger);
    assert_eq!(refused(Some(&stranger)), fixtures::UNKNOWN_ISSUER);
    // A token p3 would verify, but signed by another key: p3 is looked at, and its failure reported.
    let mut forged = good_claims(now());
    forged["iss"] = json!(issuer(3));
    let forged = mint(&Keys::load().rsa2048_other, "RS256", &forged);
    assert_eq!(refused(Some(&forged)), fixtures::VERIFICATION_FAILS);
}

#[test]
fn a_token_in_one_providers_header_outranks_missing_tokens_elsewhere() {
    // p0 reads x-token only, p1..p4 the default Authorization header. A token in x-token naming p2's
    // issuer: p0 fails "issuer not configured", p1..p4 fail "missing" (p2 reads no x-token), and
    // jwt_authn reports the former whatever the children's order.
    let keys = Keys::load();
    let local = json!({"inline_string": keys.jwks().to_string()});
    let mut providers = serde_json::Map::new();
    providers.insert(
        "p0".into(),
        json!({"issuer": issuer(0), "local_jwks": local, "from_headers": [{"name": "x-token"}]}),
    );
    for i in 1..5 {
        providers.insert(
            format!("p{i}"),
            json!({"issuer": issuer(i), "local_jwks": local}),
        );
    }
    for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]] {
        let requirements: Vec<Value> = order
            .iter()
            .map(|i| json!({"provider_name": format!("p{i}")}))
            .collect();
        let config = json!({
            "providers": providers,
            "rules": [{"match": {"prefix": "/"},
                       "requires": {"requires_any": {"requirements": requirements}}}]
        });
        let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
        assert_eq!(
            refusal(&config, "/api", &[("x-token", &token_for(2))]),
            fixtures::UNKNOWN_ISSUER,
            "order {order:?}"
        );
    }
}
