//! Real Envoy, this filter and jwt_authn side by side: which failure is reported when several tokens
//! or several providers fail. jwt_authn extracts a provider's tokens in its own order (headers by name
//! and prefix, then query parameters, then cookies) and checks them from the last one extracted;
//! `requires_any` reports the last child failure that is neither "missing" nor "issuer not
//! configured"; `requires_all` the first failing child. Each request must get the same status, body
//! and challenge from both filters.

use crate::common;

use serde_json::{json, Value};

use common::fixtures::{self, good_claims, mint, now, sign, Keys};
use common::servers::{http_request, HttpResponse};
use common::Scenario;

const ISS: &str = "https://iss.example.com";
const EXP: &str = "https://exp.example.com";
const SIG: &str = "https://sig.example.com";
const KID: &str = "https://kid.example.com";

fn config(keys: &Keys) -> Value {
    let local = json!({"inline_string": keys.jwks().to_string()});
    let provider = |issuer: &str, header: &str| json!({"issuer": issuer, "local_jwks": local, "from_headers": [{"name": header}]});
    let any = |names: &[&str]| {
        let requirements: Vec<Value> = names
            .iter()
            .map(|name| json!({"provider_name": name}))
            .collect();
        json!({"requires_any": {"requirements": requirements}})
    };
    json!({
        "providers": {
            // Listed out of jwt_authn's order on purpose: it sorts them (x-tok-a before x-tok-b).
            "many": {"issuer": fixtures::ISSUER, "local_jwks": local,
                     "from_headers": [{"name": "x-tok-b"}, {"name": "x-tok-a", "value_prefix": "Bearer "}],
                     "from_params": ["tok"]},
            "p_iss": provider(ISS, "x-iss"),
            "p_exp": provider(EXP, "x-exp"),
            "p_sig": provider(SIG, "x-sig"),
            "p_kid": provider(KID, "x-kid")
        },
        "rules": [
            {"match": {"prefix": "/one"}, "requires": {"provider_name": "many"}},
            {"match": {"prefix": "/any1"}, "requires": any(&["p_iss", "p_exp", "p_sig", "p_kid"])},
            {"match": {"prefix": "/any2"}, "requires": any(&["p_kid", "p_sig", "p_exp", "p_iss"])},
            {"match": {"prefix": "/anymiss"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "p_iss"}, {"provider_name": "p_exp"}, {"allow_missing": {}}
            ]}}},
            {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [
                {"provider_name": "p_exp"}, {"provider_name": "p_sig"}
            ]}}},
            {"match": {"prefix": "/optional"}, "requires": {"allow_missing": {}}}
        ]
    })
}

/// Tokens of `issuer`: good, expired, with a signature by another key, with a kid the JWKS lacks.
struct Tokens {
    good: String,
    expired: String,
    bad_signature: String,
    unknown_kid: String,
}

fn tokens(keys: &Keys, issuer: &str) -> Tokens {
    let t = now();
    let mut claims = good_claims(t);
    claims["iss"] = json!(issuer);
    let mut expired = claims.clone();
    expired["exp"] = json!(t - 3600);
    Tokens {
        good: mint(&keys.rsa2048, "RS256", &claims),
        expired: mint(&keys.rsa2048, "RS256", &expired),
        // Same kid as the published key, other private key.
        bad_signature: mint(&keys.rsa2048_other, "RS256", &claims),
        unknown_kid: sign(
            &keys.rsa2048,
            "RS256",
            &json!({"alg": "RS256", "kid": "not-published"}),
            &claims,
        ),
    }
}

struct Case {
    name: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    /// The body both must give (jwt_authn's), so the corpus checks what it means to check.
    expect: &'static str,
}

fn case(
    name: &'static str,
    path: &str,
    headers: Vec<(&'static str, &String)>,
    expect: &'static str,
) -> Case {
    Case {
        name,
        path: path.to_string(),
        headers: headers
            .into_iter()
            .map(|(k, v)| {
                let value = if k == "x-tok-a" {
                    format!("Bearer {v}")
                } else {
                    v.clone()
                };
                (k, value)
            })
            .collect(),
        expect,
    }
}

fn corpus(keys: &Keys) -> Vec<Case> {
    use fixtures::{EXPIRED, MISSING, NO_KEY, UNKNOWN_ISSUER, VERIFICATION_FAILS};
    let many = tokens(keys, fixtures::ISSUER);
    let exp = tokens(keys, EXP);
    let sig = tokens(keys, SIG);
    let kid = tokens(keys, KID);
    let nobody = tokens(keys, "https://nobody.example.com");
    let ok = "";
    vec![
        // One provider, several tokens: the last extracted is checked first.
        case(
            "one: a expired, b bad signature",
            "/one",
            vec![("x-tok-a", &many.expired), ("x-tok-b", &many.bad_signature)],
            VERIFICATION_FAILS,
        ),
        case(
            "one: a bad signature, b expired",
            "/one",
            vec![("x-tok-a", &many.bad_signature), ("x-tok-b", &many.expired)],
            EXPIRED,
        ),
        case(
            "one: b expired, param unknown kid",
            &format!("/one?tok={}", many.unknown_kid),
            vec![("x-tok-b", &many.expired)],
            NO_KEY,
        ),
        case(
            "one: param expired, a unknown kid",
            &format!("/one?tok={}", many.expired),
            vec![("x-tok-a", &many.unknown_kid)],
            EXPIRED,
        ),
        case(
            "one: a good, b expired",
            "/one",
            vec![("x-tok-a", &many.good), ("x-tok-b", &many.expired)],
            EXPIRED,
        ),
        case(
            "one: a expired, b good",
            "/one",
            vec![("x-tok-a", &many.expired), ("x-tok-b", &many.good)],
            EXPIRED,
        ),
        case(
            "one: a other issuer, b expired",
            "/one",
            vec![("x-tok-a", &nobody.good), ("x-tok-b", &many.expired)],
            EXPIRED,
        ),
        case(
            "one: a expired, b other issuer",
            "/one",
            vec![("x-tok-a", &many.expired), ("x-tok-b", &nobody.good)],
            UNKNOWN_ISSUER,
        ),
        case(
            "one: a and b good",
            "/one",
            vec![("x-tok-a", &many.good), ("x-tok-b", &many.good)],
            ok,
        ),
        // Several providers failing differently under requires_any.
        case(
            "any1: all four fail",
            "/any1",
            vec![
                ("x-iss", &nobody.good),
                ("x-exp", &exp.expired),
                ("x-sig", &sig.bad_signature),
                ("x-kid", &kid.unknown_kid),
            ],
            NO_KEY,
        ),
        case(
            "any2: all four fail",
            "/any2",
            vec![
                ("x-iss", &nobody.good),
                ("x-exp", &exp.expired),
                ("x-sig", &sig.bad_signature),
                ("x-kid", &kid.unknown_kid),
            ],
            EXPIRED,
        ),
        case(
            "any1: wrong issuer and bad signature",
            "/any1",
            vec![("x-iss", &nobody.good), ("x-sig", &sig.bad_signature)],
            VERIFICATION_FAILS,
        ),
        case(
            "any2: bad signature then expired",
            "/any2",
            vec![("x-exp", &exp.expired), ("x-sig", &sig.bad_signature)],
            EXPIRED,
        ),
        case(
            "any1: wrong issuer only",
            "/any1",
            vec![("x-iss", &nobody.good)],
            UNKNOWN_ISSUER,
        ),
        case(
            "any1: token of another provider's issuer",
            "/any1",
            vec![("x-iss", &exp.good)],
            UNKNOWN_ISSUER,
        ),
        case("any1: none", "/any1", vec![], MISSING),
        case(
            "any1: one good among failures",
            "/any1",
            vec![
                ("x-exp", &exp.expired),
                ("x-sig", &sig.good),
                ("x-kid", &kid.unknown_kid),
            ],
            ok,
        ),
        case(
            "anymiss: wrong issuer",
            "/anymiss",
            vec![("x-iss", &nobody.good)],
            UNKNOWN_ISSUER,
        ),
        case(
            "anymiss: expired",
            "/anymiss",
            vec![("x-exp", &exp.expired)],
            EXPIRED,
        ),
        case("anymiss: none", "/anymiss", vec![], ok),
        // requires_all: the first failing child.
        case(
            "all: expired and bad signature",
            "/all",
            vec![("x-exp", &exp.expired), ("x-sig", &sig.bad_signature)],
            EXPIRED,
        ),
        case(
            "all: good and bad signature",
            "/all",
            vec![("x-exp", &exp.good), ("x-sig", &sig.bad_signature)],
            VERIFICATION_FAILS,
        ),
        case(
            "all: bad signature first child, unknown kid second",
            "/all",
            vec![("x-exp", &exp.bad_signature), ("x-sig", &sig.unknown_kid)],
            VERIFICATION_FAILS,
        ),
        // allow_missing over every provider's locations: all tokens fail, the first extracted is
        // reported.
        case(
            "optional: expired and bad signature",
            "/optional",
            vec![("x-exp", &exp.expired), ("x-sig", &sig.bad_signature)],
            EXPIRED,
        ),
        case(
            "optional: unknown kid and bad signature",
            "/optional",
            vec![("x-sig", &sig.bad_signature), ("x-kid", &kid.unknown_kid)],
            NO_KEY,
        ),
        case(
            "optional: unknown issuer and expired",
            "/optional",
            vec![("x-iss", &nobody.good), ("x-exp", &exp.expired)],
            EXPIRED,
        ),
    ]
}

fn send(port: u16, case: &Case) -> HttpResponse {
    let headers: Vec<(&str, &[u8])> = case
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    http_request(port, &case.path, &headers)
}

#[test]
fn the_failure_reported_for_several_tokens_and_providers_is_jwt_authns() {
    let keys = Keys::load();
    let scenario = Scenario::start(1, true, |_| config(&keys));
    let mut mismatches = Vec::new();
    for case in corpus(&keys) {
        let ours = send(scenario.envoy.wasm_port, &case);
        let native = send(scenario.envoy.native_port, &case);
        let body = |r: &HttpResponse| {
            if r.status == 200 {
                String::new()
            } else {
                r.body.clone()
            }
        };
        let line = format!(
            "{:50} ours {} {:?} | native {} {:?}",
            case.name,
            ours.status,
            body(&ours),
            native.status,
            body(&native)
        );
        println!("{line}");
        let expected_status = if case.expect.is_empty() { 200 } else { 401 };
        let same = ours.status == native.status
            && body(&ours) == body(&native)
            && ours.header("www-authenticate") == native.header("www-authenticate");
        if !same || native.status != expected_status || body(&native) != case.expect {
            mismatches.push(format!("{line}\n    expected {:?}", case.expect));
        }
    }
    scenario.envoy.assert_no_vm_failure();
    assert!(
        mismatches.is_empty(),
        "differs from jwt_authn or from the expected answer:\n{}",
        mismatches.join("\n")
    );
}
