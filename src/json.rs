//! Strict JSON: the one parse of a request body, refusing duplicate member names and bounding what the parse may build; pure.
//!
//! serde_json resolves `{"method":"a","method":"b"}` last-wins, so a proxy that reads the first
//! member and this server would act on different requests. This visitor builds the same
//! `serde_json::Value` and fails on a repeated name at any depth, naming it. The check is one
//! map insert per member, which the plain parse does anyway.
//!
//! A body's parsed form can be many times its size (`[1,1,1,...]` costs about 32 bytes of
//! `Value` per 2 bytes of input), so the parse keeps a running estimate of what it has built
//! and stops at [`Limits::max_bytes`]; a top-level array (a batch) stops at
//! [`Limits::max_batch`] elements, before the rest is even read.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Why bytes are not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not UTF-8 JSON, trailing data, or nested deeper than serde_json's limit (128).
    Syntax(String),
    /// An object names this member twice.
    DuplicateMember(String),
    /// The parsed form would take more than this many bytes.
    TooLarge(usize),
    /// A batch of more than this many messages.
    BatchTooLong(usize),
}

/// What one parse may build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Estimated bytes of `Value` tree (nodes, strings, keys).
    pub(crate) max_bytes: usize,
    /// Elements of a top-level array.
    pub(crate) max_batch: usize,
}

#[cfg(test)]
impl Limits {
    /// No bound beyond serde_json's nesting limit.
    pub(crate) const NONE: Self = Self {
        max_bytes: usize::MAX,
        max_batch: usize::MAX,
    };
}

/// Estimated cost of one node besides its text: the `Value` itself plus its slot in the
/// parent (a `Vec` element, or a map entry with its key's `String`).
const NODE_BYTES: usize = 64;

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(m) => f.write_str(m),
            Self::DuplicateMember(name) => write!(f, "duplicate member name {name:?}"),
            Self::TooLarge(n) => write!(f, "the parsed body would take more than {n} bytes"),
            Self::BatchTooLong(n) => write!(f, "a batch of more than {n} messages"),
        }
    }
}

/// Prefixes of the serde errors this visitor raises; what follows is the detail.
const DUPLICATE: &str = "\u{0}duplicate:";
const TOO_LARGE: &str = "\u{0}too-large";
const BATCH: &str = "\u{0}batch";

/// Parses one JSON value, rejecting duplicate member names at every depth, within `limits`.
pub(crate) fn parse(bytes: &[u8], limits: Limits) -> Result<Value, JsonError> {
    let budget = Budget {
        used: Cell::new(0),
        limits,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = StrictSeed {
        budget: &budget,
        top: true,
    };
    let value = seed.deserialize(&mut de).map_err(|e| classify(e, limits))?;
    de.end().map_err(|e| classify(e, limits))?;
    Ok(value)
}

fn classify(e: serde_json::Error, limits: Limits) -> JsonError {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix(DUPLICATE) {
        // serde_json appends " at line L column C"; the name is what comes before it.
        let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
        return JsonError::DuplicateMember(name.to_owned());
    }
    if text.starts_with(TOO_LARGE) {
        return JsonError::TooLarge(limits.max_bytes);
    }
    if text.starts_with(BATCH) {
        return JsonError::BatchTooLong(limits.max_batch);
    }
    JsonError::Syntax(text)
}

/// The running estimate of what the parse has built.
struct Budget {
    used: Cell<usize>,
    limits: Limits,
}

impl Budget {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let used = self.used.get().saturating_add(bytes);
        self.used.set(used);
        if used > self.limits.max_bytes {
            return Err(E::custom(TOO_LARGE));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct StrictSeed<'b> {
    budget: &'b Budget,
    /// The body's top-level value: an array there is a batch.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor(self))
    }
}

struct StrictVisitor<'b>(StrictSeed<'b>);

impl<'de> Visitor<'de> for StrictVisitor<'_> {
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
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.budget.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.budget.charge(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let StrictSeed { budget, top } = self.0;
        let inner = StrictSeed { budget, top: false };
        let mut out = Vec::new();
        loop {
            if top && out.len() == budget.limits.max_batch {
                // One element more than allowed is an error before it is parsed.
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(BATCH));
                }
                break;
            }
            budget.charge(NODE_BYTES)?;
            match seq.next_element_seed(inner)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let budget = self.0.budget;
        let inner = StrictSeed { budget, top: false };
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            budget.charge(NODE_BYTES + key.len())?;
            // One lookup, as the plain parse does: the entry is either free or the duplicate.
            match out.entry(key) {
                Entry::Occupied(dup) => {
                    return Err(de::Error::custom(format_args!("{DUPLICATE}{}", dup.key())))
                }
                Entry::Vacant(slot) => {
                    let v = map.next_value_seed(inner)?;
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
        let v = parse(br#"{"a":1,"b":{"c":[1,2,{"d":null}]}}"#, Limits::NONE).unwrap();
        assert_eq!(v["b"]["c"][2]["d"], Value::Null);
        assert_eq!(
            parse(b"[1,2]", Limits::NONE).unwrap(),
            serde_json::json!([1, 2])
        );
    }

    #[test]
    fn rejects_duplicate_members_naming_them() {
        assert_eq!(
            parse(
                br#"{"method":"initialize","method":"tools/call"}"#,
                Limits::NONE
            ),
            Err(JsonError::DuplicateMember("method".into()))
        );
        assert_eq!(
            parse(br#"{"params":{"x":[{"a":1,"a":2}]}}"#, Limits::NONE),
            Err(JsonError::DuplicateMember("a".into()))
        );
        // "\u0061" is "a": the duplicate is found after unescaping, as any reader would see it.
        assert_eq!(
            parse(br#"{"a":1,"\u0061":2}"#, Limits::NONE),
            Err(JsonError::DuplicateMember("a".into()))
        );
    }

    #[test]
    fn rejects_syntax_errors_and_trailing_data() {
        assert!(matches!(
            parse(b"{", Limits::NONE),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"{} x", Limits::NONE),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"\xff", Limits::NONE),
            Err(JsonError::Syntax(_))
        ));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(
            parse(deep.as_bytes(), Limits::NONE),
            Err(JsonError::Syntax(_))
        ));
    }

    #[test]
    fn the_parsed_form_is_bounded_while_it_is_built() {
        let small = Limits {
            max_bytes: 10_000,
            max_batch: 64,
        };
        let dense = format!("[{}1]", "1,".repeat(10_000));
        assert_eq!(
            parse(
                dense.as_bytes(),
                Limits {
                    max_batch: usize::MAX,
                    ..small
                }
            ),
            Err(JsonError::TooLarge(10_000))
        );
        let members: String = (0..1000).map(|i| format!("\"k{i}\":1,")).collect();
        let wide = format!("{{{members}\"z\":1}}");
        assert_eq!(
            parse(wide.as_bytes(), small),
            Err(JsonError::TooLarge(10_000))
        );
        let long = format!("\"{}\"", "x".repeat(20_000));
        assert_eq!(
            parse(long.as_bytes(), small),
            Err(JsonError::TooLarge(10_000))
        );
        assert!(parse(b"{\"a\":[1,2,3]}", small).is_ok());
    }

    #[test]
    fn a_batch_stops_at_its_cap_before_the_rest_is_read() {
        let limits = Limits {
            max_bytes: usize::MAX,
            max_batch: 2,
        };
        assert!(parse(b"[{},{}]", limits).is_ok());
        assert_eq!(
            parse(b"[{},{},{}]", limits),
            Err(JsonError::BatchTooLong(2))
        );
        // Only the top level is a batch.
        assert!(parse(b"{\"a\":[1,2,3,4]}", limits).is_ok());
        assert!(parse(b"[[1,2,3],[4]]", limits).is_ok());
    }
}
