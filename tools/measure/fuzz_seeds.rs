//! Writes the fuzz targets' seed corpora from the shared test fixture: every named token, the fixture
//! JWKS and variants, configurations, and request shapes. `fuzz_seeds DIR` (DIR/<target>/<n>).

// Measurement code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

#[path = "../../tests/common/fixtures.rs"]
pub mod fixtures;

use std::path::Path;

use serde_json::json;

fn write(dir: &Path, target: &str, seeds: &[Vec<u8>]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("seed dir");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("seed file");
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("an output directory");
    let dir = Path::new(&dir);
    let keys = fixtures::Keys::load();
    let now = fixtures::now();
    let tokens: Vec<Vec<u8>> = fixtures::fixtures(&keys, now)
        .into_iter()
        .map(|f| f.token.into_bytes())
        .collect();
    write(dir, "token", &tokens);
    write(dir, "rsa", &tokens);
    let jwks = keys.jwks();
    // The token target's key set: every fixture key, and the HMAC secret (local_jwks allows it).
    let mut fuzz_jwks = jwks.clone();
    fuzz_jwks["keys"]
        .as_array_mut()
        .expect("keys")
        .push(fixtures::hmac_jwks()["keys"][0].clone());
    let fuzz_jwks_path = dir
        .parent()
        .expect("seeds dir has a parent")
        .join("jwks.json");
    std::fs::write(fuzz_jwks_path, fuzz_jwks.to_string()).expect("fuzz jwks");
    let mut tokens = tokens;
    for alg in ["HS256", "HS384", "HS512"] {
        tokens.push(
            fixtures::mint_hmac(alg, fixtures::HMAC_SECRET, &fixtures::good_claims(now))
                .into_bytes(),
        );
    }
    write(dir, "token", &tokens);
    let mut jwks_seeds = vec![jwks.to_string().into_bytes(), b"{\"keys\": []}".to_vec()];
    for key in jwks["keys"].as_array().expect("keys") {
        jwks_seeds.push(json!({"keys": [key]}).to_string().into_bytes());
    }
    jwks_seeds.push(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, {"kty": "oct", "k": "AA"}]}).to_string().into_bytes());
    write(dir, "jwks", &jwks_seeds);
    let provider = fixtures::provider_json("https://issuer.example.com/jwks", "jwks");
    let configs = [
        json!({"providers": {"p": provider}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}),
        json!({"providers": {"p": {"local_jwks": {"inline_string": jwks.to_string()}, "from_headers": [{"name": "x-token", "value_prefix": "Token "}], "from_params": ["jwt"], "jwt_cache_config": {"jwt_cache_size": 10}}}}),
        json!({"providers": {"p": {"issuer": "https://i", "remote_jwks": {"http_uri": {"cluster": "c"}, "oidc_discovery": true, "retry_policy": {"retry_back_off": {"base_interval": "0.5s"}}, "max_staleness": "60s"}}}}),
    ];
    write(
        dir,
        "config",
        &configs
            .iter()
            .map(|c| c.to_string().into_bytes())
            .collect::<Vec<_>>(),
    );
    let token = fixtures::good_token();
    let extraction = vec![
        format!("/api?a=1&access_token={token}&b=2\0Bearer {token}\0bearer x").into_bytes(),
        format!("/p?access_token=%2e%41&access_token=\0Token Bearer {token}\0").into_bytes(),
        b"/?#access_token=x\0\xff\xfe\0BEARER  ".to_vec(),
    ];
    write(dir, "extraction", &extraction);
    // The request target: path, then header values (NUL-separated) in the target's order: :method,
    // authorization, x-token, x-b, cookie, x-env, x-debug, origin, access-control-request-method, x-sub.
    let ec = keys.ec.mint("ES256", &fixtures::good_claims(now));
    let requests = vec![
        format!("/r/abc/x?access_token={token}\0GET\0Bearer {token}\0{ec}").into_bytes(),
        format!("/all\0POST\0Bearer {token}\0\0{ec}\0session={token}").into_bytes(),
        format!("/H/x?m=xx\0GET\0Bearer {ec}\0\0\0\0prod\0").into_bytes(),
        b"/api\0OPTIONS\0\0\0\0\0\0\0https://a\0GET\0spoof".to_vec(),
        format!("/missing\0GET\0Bearer {token}\0\0\0\0\0\0\0\0root").into_bytes(),
        b"/report\0GET\0Bearer a.b.c\0\0\0\0\0\0\0\0root".to_vec(),
    ];
    write(dir, "request", &requests);
    // The cert_binding target: an x-forwarded-client-cert value, NUL, a hex digest.
    let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let xfcc = vec![
        format!("By=spiffe://lb;Hash={hash};Subject=\"CN=a, O=\\\"b\\\";c\";URI=x\0{hash}")
            .into_bytes(),
        format!(
            "Hash={hash},Hash={};DNS=a;DNS=b\0{}",
            hash.to_ascii_uppercase(),
            &hash[2..]
        )
        .into_bytes(),
        b"Hash=\"unterminated,;=\0zz".to_vec(),
    ];
    write(dir, "cert_binding", &xfcc);
}
