//! JSON Web Key Sets: parsing a JWKS document into the keys the verifier can use.
//!
//! jwt-compact's own `JsonWebKey` drops `kid`, `alg` and `use`, which key selection needs, so the document
//! is read here. Keys this filter cannot use (another kty, `use` other than "sig", weak RSA moduli) are
//! skipped with a reason instead of sinking the whole set.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::crypto::algorithm::JwsAlgorithm;
use crate::crypto::ecdsa::{p256_key, p384_key, p521_key};
use crate::crypto::eddsa::ed25519_key;
use crate::crypto::key::KeyMaterial;
use crate::crypto::rsa::{PreparedRsaKey, MAX_RSA_BITS, MIN_RSA_BITS};
use crate::jwks::x509_map::{certificate_key, certificate_map, CertificateKey};

/// Default limit: documents larger than this are refused before parsing.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;
/// Default limit: sets with more entries than this are refused (real issuers publish a handful).
pub const MAX_JWKS_KEYS: usize = 256;

/// Bounds on a JWKS document, so a hostile or broken issuer cannot make every worker parse megabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksLimits {
    pub max_bytes: usize,
    pub max_keys: usize,
}

impl Default for JwksLimits {
    fn default() -> JwksLimits {
        JwksLimits {
            max_bytes: MAX_JWKS_BYTES,
            max_keys: MAX_JWKS_KEYS,
        }
    }
}

/// One usable key of a set.
#[derive(Debug, Clone, PartialEq)]
pub struct JwksKey {
    pub kid: Option<String>,
    /// The JWK's `alg`, when present: the only algorithm this key may verify.
    pub alg: Option<String>,
    pub material: KeyMaterial,
}

/// A parsed key set: the usable keys, and why the others were skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Jwks {
    pub keys: Vec<JwksKey>,
    pub skipped: Vec<String>,
}

impl JwksError {
    /// A short snake_case name for metrics (`jwks_fetch_failed.<reason>`).
    pub fn reason(&self) -> &'static str {
        match self {
            JwksError::TooLarge { .. } => "too_large",
            JwksError::InvalidJson(_) => "invalid_json",
            JwksError::TooManyKeys { .. } => "too_many_keys",
            JwksError::NoUsableKeys { .. } => "no_usable_keys",
            JwksError::BadCertificate { .. } => "bad_certificate",
        }
    }
}

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    TooLarge {
        bytes: usize,
        limit: usize,
    },
    InvalidJson(String),
    TooManyKeys {
        count: usize,
        limit: usize,
    },
    NoUsableKeys {
        skipped: Vec<String>,
    },
    /// A certificate of an X.509 certificate map that cannot be used: the whole map is refused, as
    /// jwt_authn refuses it.
    BadCertificate {
        kid: String,
        reason: String,
    },
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::TooLarge { bytes, limit } => write!(
                f,
                "JWKS document is {bytes} bytes, over the limit of {limit} (max_jwks_bytes)"
            ),
            JwksError::InvalidJson(reason) => write!(f, "JWKS document is not a JWK set: {reason}"),
            JwksError::TooManyKeys { count, limit } => write!(
                f,
                "JWKS has {count} keys, over the limit of {limit} (max_jwks_keys)"
            ),
            JwksError::NoUsableKeys { skipped } => {
                write!(f, "JWKS has no usable key")?;
                if !skipped.is_empty() {
                    write!(f, " (skipped: {})", skipped.join("; "))?;
                }
                Ok(())
            }
            JwksError::BadCertificate { kid, reason } => write!(
                f,
                "X.509 certificate map refused: certificate \"{}\": {reason}",
                kid.escape_debug()
            ),
        }
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The fields of a JWK this filter reads; the rest (x5c, x5t, ...) is ignored, as RFC 7517 allows.
#[derive(Deserialize)]
struct JwkFields {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    k: Option<String>,
}

/// Whether `oct` (HMAC secret) keys may be in a set: only in the filter's own configuration. A secret in a
/// JWKS served over HTTP is published to anyone who can fetch it, so remote sets never yield HMAC keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrets {
    Allowed,
    Refused,
}

/// Parses a fetched JWKS document. Unusable keys are skipped and listed (`oct` secrets among them); a
/// document with no usable key, or one that is not a JWK set at all, is refused.
pub fn parse_jwks(document: &[u8]) -> Result<Jwks, JwksError> {
    parse_jwks_with_limits(document, JwksLimits::default())
}

/// [`parse_jwks`] with explicit size and key-count limits.
pub fn parse_jwks_with_limits(document: &[u8], limits: JwksLimits) -> Result<Jwks, JwksError> {
    parse_document(document, limits, Secrets::Refused)
}

/// Parses a JWKS from the filter's configuration (local_jwks), where `oct` keys (HS256/384/512 secrets)
/// are allowed as well.
pub fn parse_local_jwks(document: &[u8]) -> Result<Jwks, JwksError> {
    parse_document(document, JwksLimits::default(), Secrets::Allowed)
}

fn parse_document(
    document: &[u8],
    limits: JwksLimits,
    secrets: Secrets,
) -> Result<Jwks, JwksError> {
    if document.len() > limits.max_bytes {
        return Err(JwksError::TooLarge {
            bytes: document.len(),
            limit: limits.max_bytes,
        });
    }
    let parsed: JwksDocument = match serde_json::from_slice(document) {
        Ok(parsed) => parsed,
        // jwt_authn reads JWKS documents with a trailing comma before `]` or `}` (Envoy's own test
        // key set has one, and users copy it); read them too, and nothing else that is not JSON.
        // A document without `keys` may be the X.509 certificate map form, which jwt_authn reads too.
        Err(error) => {
            let fixed = without_trailing_commas(document);
            let text = fixed.as_deref().unwrap_or(document);
            if let Some(parsed) = fixed.as_ref().and_then(|f| serde_json::from_slice(f).ok()) {
                parsed
            } else if let Some(members) = certificate_map(text) {
                if members.len() > limits.max_keys {
                    return Err(JwksError::TooManyKeys {
                        count: members.len(),
                        limit: limits.max_keys,
                    });
                }
                return parse_certificate_map(members);
            } else {
                return Err(JwksError::InvalidJson(error.to_string()));
            }
        }
    };
    if parsed.keys.len() > limits.max_keys {
        return Err(JwksError::TooManyKeys {
            count: parsed.keys.len(),
            limit: limits.max_keys,
        });
    }
    let mut jwks = Jwks::default();
    for (index, value) in parsed.keys.into_iter().enumerate() {
        match parse_key(value, secrets) {
            Ok(key) => jwks.keys.push(key),
            Err(reason) => jwks.skipped.push(format!("key {index}: {reason}")),
        }
    }
    if jwks.keys.is_empty() {
        return Err(JwksError::NoUsableKeys {
            skipped: jwks.skipped,
        });
    }
    Ok(jwks)
}

/// The keys of an X.509 certificate map (see `crate::jwks::x509_map`): one per certificate, its member
/// name as `kid`, no `alg`. The first certificate that cannot be used refuses the whole map, as jwt_authn
/// refuses it.
fn parse_certificate_map(members: Vec<(String, String)>) -> Result<Jwks, JwksError> {
    let mut jwks = Jwks::default();
    for (kid, pem) in members {
        let material = certificate_key(&pem).and_then(|key| match key {
            CertificateKey::Rsa { n, e } => rsa_key(&n, &e),
            CertificateKey::Ec { crv, x, y } => ec_key(crv, &x, &y),
            CertificateKey::Ed25519 { x } => ed25519_material(&x),
        });
        match material {
            Ok(material) => jwks.keys.push(JwksKey {
                kid: Some(kid),
                alg: None,
                material,
            }),
            Err(reason) => return Err(JwksError::BadCertificate { kid, reason }),
        }
    }
    Ok(jwks)
}

/// The document with every comma that directly precedes (white space aside) a `]` or `}` removed,
/// outside strings; `None` when there is no such comma.
fn without_trailing_commas(document: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(document.len());
    let (mut in_string, mut escaped, mut removed) = (false, false, false);
    for (index, &byte) in document.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b',' {
            let next = document
                .get(index + 1..)
                .and_then(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()));
            if matches!(next, Some(b']' | b'}')) {
                removed = true;
                continue;
            }
        }
        out.push(byte);
    }
    removed.then_some(out)
}

fn parse_key(value: serde_json::Value, secrets: Secrets) -> Result<JwksKey, String> {
    let fields: JwkFields = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    let label = match &fields.kid {
        Some(kid) => format!("kid \"{}\"", kid.escape_debug()),
        None => "no kid".to_string(),
    };
    if let Some(use_) = &fields.use_ {
        if use_ != "sig" {
            return Err(format!(
                "{label}: use \"{}\" is not \"sig\"",
                use_.escape_debug()
            ));
        }
    }
    if let Some(alg) = &fields.alg {
        if JwsAlgorithm::from_name(alg).is_none() {
            return Err(format!(
                "{label}: alg \"{}\" is not supported",
                alg.escape_debug()
            ));
        }
    }
    let material = match fields.kty.as_str() {
        "RSA" => parse_rsa(&fields),
        "EC" => parse_ec(&fields),
        "OKP" => parse_okp(&fields),
        "oct" if secrets == Secrets::Allowed => parse_oct(&fields),
        "oct" => Err("kty \"oct\" (a shared secret) is accepted only in local_jwks".to_string()),
        other => Err(format!("kty \"{}\" is not supported", other.escape_debug())),
    }
    .map_err(|reason| format!("{label}: {reason}"))?;
    // A key that names its algorithm must be able to serve it: an "ES384" P-256 key is a broken key, not
    // a key for nothing.
    if let Some(alg) = fields.alg.as_deref().and_then(JwsAlgorithm::from_name) {
        if !material.serves(alg) {
            return Err(format!(
                "{label}: alg \"{}\" does not fit a {:?} key",
                alg.name(),
                material
            ));
        }
    }
    Ok(JwksKey {
        kid: fields.kid,
        alg: fields.alg,
        material,
    })
}

/// The base64url member `name` of a JWK of type `kty`, decoded.
fn member(kty: &str, name: &str, value: &Option<String>) -> Result<Vec<u8>, String> {
    let text = value
        .as_deref()
        .ok_or_else(|| format!("{kty} key has no \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("{kty} \"{name}\" is not base64url"))
}

fn parse_ec(fields: &JwkFields) -> Result<KeyMaterial, String> {
    let x = member("EC", "x", &fields.x)?;
    let y = member("EC", "y", &fields.y)?;
    // Without "crv", the curve follows from "alg" when it names an ECDSA algorithm, as jwt_authn reads
    // such keys: ES256 is only ever P-256, ES384 P-384, ES512 P-521. The point is still checked to lie
    // on that curve.
    let crv = fields.crv.as_deref().or(match fields.alg.as_deref() {
        Some("ES256") => Some("P-256"),
        Some("ES384") => Some("P-384"),
        Some("ES512") => Some("P-521"),
        _ => None,
    });
    match crv {
        Some(crv) => ec_key(crv, &x, &y),
        None => Err("EC key has no \"crv\" (and no ECDSA \"alg\" to take it from)".to_string()),
    }
}

/// The EC public key (`x`, `y`) on the curve named `crv` (JWK names: P-256, P-384, P-521), checked to
/// lie on it.
fn ec_key(crv: &str, x: &[u8], y: &[u8]) -> Result<KeyMaterial, String> {
    let not_on_curve = |crv: &str| format!("EC point (x, y) is not a point of {crv}");
    match crv {
        "P-256" => p256_key(x, y)
            .map(KeyMaterial::P256)
            .ok_or_else(|| not_on_curve("P-256")),
        "P-384" => p384_key(x, y)
            .map(KeyMaterial::P384)
            .ok_or_else(|| not_on_curve("P-384")),
        "P-521" => p521_key(x, y)
            .map(KeyMaterial::P521)
            .ok_or_else(|| not_on_curve("P-521")),
        other => Err(format!(
            "EC crv \"{}\" is not supported (P-256, P-384 and P-521 are)",
            other.escape_debug()
        )),
    }
}

fn parse_okp(fields: &JwkFields) -> Result<KeyMaterial, String> {
    match fields.crv.as_deref() {
        Some("Ed25519") => {
            let x = member("OKP", "x", &fields.x)?;
            ed25519_material(&x)
        }
        Some(other) => Err(format!(
            "OKP crv \"{}\" is not supported (Ed25519 is)",
            other.escape_debug()
        )),
        None => Err("OKP key has no \"crv\"".to_string()),
    }
}

/// The Ed25519 public key `x`, refused when it is not a point of full order.
fn ed25519_material(x: &[u8]) -> Result<KeyMaterial, String> {
    ed25519_key(x)
        .map(KeyMaterial::Ed25519)
        .ok_or_else(|| "OKP \"x\" is not an Ed25519 point of full order".to_string())
}

/// Shortest HMAC secret accepted: RFC 7518 §3.2 asks for at least the hash size; 256 bits is the least
/// of HS256/384/512, and anything shorter is guessable offline from one token.
pub const MIN_HMAC_KEY_BYTES: usize = 32;

fn parse_oct(fields: &JwkFields) -> Result<KeyMaterial, String> {
    let secret = member("oct", "k", &fields.k)?;
    if secret.len() < MIN_HMAC_KEY_BYTES {
        return Err(format!(
            "oct \"k\" has {} bytes; at least {MIN_HMAC_KEY_BYTES} are required (RFC 7518 3.2)",
            secret.len()
        ));
    }
    Ok(KeyMaterial::Hmac(secret))
}

fn parse_rsa(fields: &JwkFields) -> Result<KeyMaterial, String> {
    let n = member("RSA", "n", &fields.n)?;
    let e = member("RSA", "e", &fields.e)?;
    rsa_key(&n, &e)
}

/// The RSA public key with modulus `n` and exponent `e` (big-endian), refused when weak.
fn rsa_key(n: &[u8], e: &[u8]) -> Result<KeyMaterial, String> {
    let e_significant: Vec<u8> = e.iter().copied().skip_while(|&b| b == 0).collect();
    // e = 1 makes every "signature" valid and small exponents invite forgeries on sloppy padding
    // checks; issuers use 65537.
    let exponent = (e_significant.len() <= 4)
        .then(|| {
            e_significant
                .iter()
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
        })
        .filter(|&e| e >= 65537 && e & 1 == 1)
        .ok_or("RSA public exponent must be odd and between 65537 and 2^32")?;
    let key = PreparedRsaKey::new(n, exponent).ok_or("RSA modulus must be odd")?;
    let bits = key.modulus_bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "RSA modulus has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
        ));
    }
    Ok(KeyMaterial::Rsa(key))
}
