//! Strict JSON: the one parse of a request body, refusing duplicate member names; pure.
//!
//! serde_json resolves `{"method":"a","method":"b"}` last-wins, so a proxy that reads the first
//! member and this server would act on different requests. This visitor builds the same
//! `serde_json::Value` and fails on a repeated name at any depth, naming it. The check is one
//! map insert per member, which the plain parse does anyway.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Why bytes are not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not UTF-8 JSON, trailing data, or nested deeper than serde_json's limit (128).
    Syntax(String),
    /// An object names this member twice.
    DuplicateMember(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(m) => f.write_str(m),
            Self::DuplicateMember(name) => write!(f, "duplicate member name {name:?}"),
        }
    }
}

/// Prefix of the serde error raised for a duplicate; the member name follows it.
const DUPLICATE: &str = "\u{0}duplicate:";

/// Parses one JSON value, rejecting duplicate member names at every depth.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de).map_err(classify)?.0;
    de.end().map_err(classify)?;
    Ok(value)
}

fn classify(e: serde_json::Error) -> JsonError {
    let text = e.to_string();
    match text.strip_prefix(DUPLICATE) {
        // serde_json appends " at line L column C"; the name is what comes before it.
        Some(rest) => {
            let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
            JsonError::DuplicateMember(name.to_owned())
        }
        None => JsonError::Syntax(text),
    }
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = StrictValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StrictValue, D::Error> {
        StrictValue::deserialize(d)
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
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One lookup, as the plain parse does: the entry is either free or the duplicate.
            match out.entry(key) {
                Entry::Occupied(dup) => {
                    return Err(de::Error::custom(format_args!("{DUPLICATE}{}", dup.key())))
                }
                Entry::Vacant(slot) => {
                    let StrictValue(v) = map.next_value_seed(StrictSeed)?;
                    slot.insert(v);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_values() {
        let v = parse(br#"{"a":1,"b":{"c":[1,2,{"d":null}]}}"#).unwrap();
        assert_eq!(v["b"]["c"][2]["d"], Value::Null);
        assert_eq!(parse(b"[1,2]").unwrap(), serde_json::json!([1, 2]));
    }

    #[test]
    fn rejects_duplicate_members_naming_them() {
        assert_eq!(
            parse(br#"{"method":"initialize","method":"tools/call"}"#),
            Err(JsonError::DuplicateMember("method".into()))
        );
        assert_eq!(
            parse(br#"{"params":{"x":[{"a":1,"a":2}]}}"#),
            Err(JsonError::DuplicateMember("a".into()))
        );
        // "\u0061" is "a": the duplicate is found after unescaping, as any reader would see it.
        assert_eq!(
            parse(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateMember("a".into()))
        );
    }

    #[test]
    fn rejects_syntax_errors_and_trailing_data() {
        assert!(matches!(parse(b"{"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"{} x"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"\xff"), Err(JsonError::Syntax(_))));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse(deep.as_bytes()), Err(JsonError::Syntax(_))));
    }
}
