//! JSON parsing that refuses duplicate member names, which serde_json would silently resolve last-wins.
//!
//! A JOSE header or claim set with two `alg` or two `sub` members is ambiguous: two verifiers
//! can read different values from the same signed bytes (RFC 7515 section 5.2 lets a parser
//! reject such input, and we do). serde_json keeps the last duplicate, so the check is done
//! here with a visitor that builds the same `serde_json::Value` but errors on a repeat.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a byte string was not accepted as a strict JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not UTF-8 JSON at all, or too deeply nested.
    NotJson,
    /// Valid JSON whose top level is not an object.
    NotObject,
    /// An object (at any depth) names the same member twice.
    DuplicateMember,
}

/// Parses `bytes` as one JSON object, rejecting duplicate member names at every depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match StrictValue::deserialize(&mut de) {
        Ok(v) => v.0,
        Err(e) if e.to_string().starts_with(DUPLICATE_MARKER) => {
            return Err(StrictJsonError::DuplicateMember)
        }
        Err(_) => return Err(StrictJsonError::NotJson),
    };
    de.end().map_err(|_| StrictJsonError::NotJson)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::NotObject),
    }
}

/// Prefix of the custom serde error raised for a duplicate; matched above to pick the variant.
const DUPLICATE_MARKER: &str = "duplicate member name";

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE_MARKER));
            }
            let StrictValue(v) = map.next_value_seed(StrictSeed)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = StrictValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StrictValue, D::Error> {
        StrictValue::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_object() {
        let m = parse_object(br#"{"a":1,"b":{"c":[1,2,{"d":null}]}}"#).unwrap();
        assert_eq!(m["b"]["c"][2]["d"], Value::Null);
    }

    #[test]
    fn rejects_duplicate_top_level_member() {
        assert_eq!(
            parse_object(br#"{"alg":"ES256","alg":"none"}"#),
            Err(StrictJsonError::DuplicateMember)
        );
    }

    #[test]
    fn rejects_duplicate_nested_member() {
        assert_eq!(
            parse_object(br#"{"a":[{"x":1,"x":2}]}"#),
            Err(StrictJsonError::DuplicateMember)
        );
    }

    #[test]
    fn rejects_escaped_duplicate_member() {
        // "\u0061" is "a": the duplicate is found after unescaping, as a verifier would read it.
        assert_eq!(
            parse_object(br#"{"a":1,"\u0061":2}"#),
            Err(StrictJsonError::DuplicateMember)
        );
    }

    #[test]
    fn rejects_non_object_and_trailing_data() {
        assert_eq!(parse_object(b"[1]"), Err(StrictJsonError::NotObject));
        assert_eq!(parse_object(b"{} x"), Err(StrictJsonError::NotJson));
        assert_eq!(parse_object(b"\xff"), Err(StrictJsonError::NotJson));
    }
}
