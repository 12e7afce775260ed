//! The JSON of a token's segments: the JOSE header read in one pass into the fields this filter and
//! jwt-compact read ([`HeaderFields`]), and the payload as [`Claims`], an object whose names never
//! repeat at any depth ([`decode_claims`]). [`super::token`] parses tokens with them.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use smallvec::SmallVec;

use crate::verify::claims::Claims;
use crate::verify::error::AuthError;

/// The header fields jwt-compact gives a type (`jku`, `x5u`, `typ`: strings; `x5t`, `x5t#S256`:
/// base64url thumbprints) and `cty` (absent or "JSON" in any case: the payload is not CBOR or a nested
/// token) must be of it. jwt-compact's own parser checked this when it parsed the token a second time for
/// the signature; the same deserializer now runs on those of the header's fields it types (`typed`; a
/// string `typ` and `kid` always pass it, and it takes any other field into its flattened `Empty`), and
/// a header it refuses is an invalid header as before. The usual header (`alg`, `kid`, `typ`) has none.
pub(super) fn check_header_types(
    cty: Option<&Value>,
    typed: Map<String, Value>,
) -> Result<(), AuthError> {
    match cty {
        None | Some(Value::Null) => {}
        Some(Value::String(cty)) if cty.eq_ignore_ascii_case("json") => {}
        Some(_) => return Err(AuthError::HeaderBadJson),
    }
    if typed.is_empty() {
        return Ok(());
    }
    jwt_compact::Header::<jwt_compact::Empty>::deserialize(Value::Object(typed))
        .map(|_| ())
        .map_err(|_| AuthError::HeaderBadJson)
}

/// A JOSE header read in one pass, without a map of it: the fields this filter or jwt-compact reads,
/// each as the JSON value it had. Any other field is only checked (valid JSON, no repeated names at any
/// depth) and dropped. Refuses exactly what parsing it as a [`UniqueKeys`] object refuses.
#[derive(Default)]
pub(super) struct HeaderFields {
    pub(super) alg: Option<Value>,
    pub(super) kid: Option<Value>,
    pub(super) typ: Option<Value>,
    /// Whether `crit` is there, whatever its value.
    pub(super) crit: bool,
    pub(super) cty: Option<Value>,
    /// `jku`, `x5u`, `x5t` and `x5t#S256`, for jwt-compact's check.
    pub(super) typed: Map<String, Value>,
}

impl<'de> Deserialize<'de> for HeaderFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HeaderFields, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// The header fields kept as values: those [`HeaderFields`] names, and jwt-compact's typed ones.
const KEPT_HEADER_FIELDS: [&str; 8] = ["alg", "kid", "typ", "cty", "jku", "x5u", "x5t", "x5t#S256"];

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = HeaderFields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object without repeated names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<HeaderFields, A::Error> {
        let mut fields = HeaderFields::default();
        // Names as they are in the header (borrowed unless escaped), to refuse a repeated one.
        let mut names: SmallVec<[Cow<'de, str>; 8]> = SmallVec::new();
        while let Some(ObjectName(name)) = entries.next_key()? {
            if KEPT_HEADER_FIELDS.contains(&&*name) {
                let UniqueKeys(value) = entries.next_value()?;
                match &*name {
                    "alg" => fields.alg = Some(value),
                    "kid" => fields.kid = Some(value),
                    "typ" => fields.typ = Some(value),
                    "cty" => fields.cty = Some(value),
                    _ => {
                        fields.typed.insert(name.to_string(), value);
                    }
                }
            } else {
                // Only checked, as the payload's claims that are not kept are.
                fields.crit |= name == "crit";
                entries.next_value::<UniqueNames>()?;
            }
            names.push(name);
        }
        if has_repeats(&mut names) {
            return Err(de::Error::custom("repeated object name"));
        }
        Ok(fields)
    }
}

/// An object name, borrowed from the JSON text when it has no escapes.
pub(super) struct ObjectName<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for ObjectName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ObjectName<'de>, D::Error> {
        deserializer.deserialize_str(ObjectNameVisitor)
    }
}

struct ObjectNameVisitor;

impl<'de> Visitor<'de> for ObjectNameVisitor {
    type Value = ObjectName<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<ObjectName<'de>, E> {
        Ok(ObjectName(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ObjectName<'de>, E> {
        Ok(ObjectName(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<ObjectName<'de>, E> {
        Ok(ObjectName(Cow::Owned(v)))
    }
}

/// Decodes `segment` into `buffer` (empty), and takes it as the token's claims: a JSON object with
/// unique names.
pub(super) fn decode_claims(
    segment: &str,
    mut buffer: Vec<u8>,
    bad_base64: AuthError,
    bad_json: AuthError,
) -> Result<Claims, AuthError> {
    URL_SAFE_NO_PAD
        .decode_vec(segment, &mut buffer)
        .map_err(|_| bad_base64)?;
    Claims::from_json(buffer).ok_or(bad_json)
}

/// Whether any of `names` repeats (sorts them: O(n log n), so a payload of many members costs no
/// quadratic comparisons).
pub(super) fn has_repeats<T: Ord>(names: &mut [T]) -> bool {
    names.sort_unstable();
    names.windows(2).any(|pair| pair.first() == pair.last())
}

/// Any JSON value whose objects, at any depth, never repeat a name, checked without building it:
/// refuses what [`UniqueKeys`] refuses, and allocates only for a large object's names or escaped ones.
pub(super) struct UniqueNames;

impl<'de> Deserialize<'de> for UniqueNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UniqueNames, D::Error> {
        deserializer.deserialize_any(UniqueNamesVisitor)
    }
}

struct UniqueNamesVisitor;

impl<'de> Visitor<'de> for UniqueNamesVisitor {
    type Value = UniqueNames;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON without repeated object names")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<UniqueNames, E> {
        Ok(UniqueNames)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<UniqueNames, E> {
        Ok(UniqueNames)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<UniqueNames, E> {
        Ok(UniqueNames)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<UniqueNames, E> {
        if v.is_finite() {
            Ok(UniqueNames)
        } else {
            Err(E::custom("not a finite number"))
        }
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<UniqueNames, E> {
        Ok(UniqueNames)
    }

    fn visit_unit<E: de::Error>(self) -> Result<UniqueNames, E> {
        Ok(UniqueNames)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueNames, A::Error> {
        while seq.next_element::<UniqueNames>()?.is_some() {}
        Ok(UniqueNames)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<UniqueNames, A::Error> {
        let mut names: SmallVec<[Cow<'de, str>; 8]> = SmallVec::new();
        while let Some(ObjectName(name)) = entries.next_key()? {
            entries.next_value::<UniqueNames>()?;
            names.push(name);
        }
        if has_repeats(&mut names) {
            return Err(de::Error::custom("repeated object name"));
        }
        Ok(UniqueNames)
    }
}

/// A JSON value whose objects, at any depth, never repeat a name. RFC 7519 lets a parser take the last
/// of two `exp`s or refuse the token; another component reading the same payload may take the first,
/// so two readings of one token could disagree. Refused, as jwt_authn refuses them.
pub(super) struct UniqueKeys(pub(super) Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UniqueKeys, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON without repeated object names")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = entries.next_key::<String>()? {
            let UniqueKeys(value) = entries.next_value()?;
            if map.insert(name, value).is_some() {
                return Err(de::Error::custom("repeated object name"));
            }
        }
        Ok(Value::Object(map))
    }
}
