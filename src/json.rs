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
//!
//! [`parse_body`] reads a request body: a top-level object's JSON-RPC members are taken out as
//! they are parsed ([`Envelope`]), so the one message of a non-batch request never becomes a
//! map only to be taken apart again; other members are checked the same way and dropped.

use std::cell::Cell;
use std::collections::HashSet;
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
#[cfg(any(test, feature = "fuzzing"))]
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

/// A request body's top-level value.
#[derive(Debug, PartialEq)]
pub(crate) enum Body {
    /// An array: a batch.
    Batch(Vec<Value>),
    /// An object: its JSON-RPC members.
    Object(Envelope),
    /// A string, number, boolean or null.
    Scalar,
}

/// The JSON-RPC members of a top-level object, each as parsed (absent when not sent).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Envelope {
    /// `jsonrpc` is present and is the string `"2.0"`.
    pub(crate) jsonrpc_2_0: bool,
    /// `id`.
    pub(crate) id: Option<Value>,
    /// `method`.
    pub(crate) method: Option<Value>,
    /// `params`.
    pub(crate) params: Option<Value>,
    /// `result`.
    pub(crate) result: Option<Value>,
    /// `error`.
    pub(crate) error: Option<Value>,
}

impl Body {
    /// What [`parse_body`] makes of the value [`parse`] returned for the same bytes.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn of(value: Value) -> Self {
        match value {
            Value::Array(items) => Self::Batch(items),
            Value::Object(m) => Self::Object(Envelope::from_object(m)),
            _ => Self::Scalar,
        }
    }
}

impl Envelope {
    /// The JSON-RPC members of an already parsed object (a batch item), moved out of it.
    pub(crate) fn from_object(mut m: Map<String, Value>) -> Self {
        Self {
            jsonrpc_2_0: m.get("jsonrpc").and_then(Value::as_str) == Some("2.0"),
            id: m.remove("id"),
            method: m.remove("method"),
            params: m.remove("params"),
            result: m.remove("result"),
            error: m.remove("error"),
        }
    }
}

/// Parses a request body with [`parse`]'s rules, a top-level object into its [`Envelope`].
pub(crate) fn parse_body(bytes: &[u8], limits: Limits) -> Result<Body, JsonError> {
    let budget = Budget {
        used: Cell::new(0),
        limits,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body = de
        .deserialize_any(BodyVisitor(&budget))
        .map_err(|e| classify(e, limits))?;
    de.end().map_err(|e| classify(e, limits))?;
    Ok(body)
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

/// The top-level value of a body: a batch, an envelope, or a scalar.
struct BodyVisitor<'b>(&'b Budget);

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Body, E> {
        Ok(Body::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Body, E> {
        Ok(Body::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Body, E> {
        Ok(Body::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Body, E> {
        Ok(Body::Scalar)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
        self.0.charge(v.len())?;
        Ok(Body::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Body, E> {
        Ok(Body::Scalar)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Body, A::Error> {
        let seed = StrictSeed {
            budget: self.0,
            top: true,
        };
        match StrictVisitor(seed).visit_seq(seq)? {
            Value::Array(items) => Ok(Body::Batch(items)),
            _ => unreachable!("visit_seq builds an array"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let budget = self.0;
        let inner = StrictSeed { budget, top: false };
        let mut env = Envelope::default();
        let mut seen_version = false;
        // Names of members that are not JSON-RPC's, kept only to refuse a repeated one. A set
        // with `HashMap`'s keyed hash: a list searched per member made a 1.2 MB body of distinct
        // names cost the server 11 s of CPU.
        let mut others: HashSet<String> = HashSet::new();
        while let Some(member) = map.next_key_seed(MemberSeed)? {
            let name = member.name();
            budget.charge(NODE_BYTES + name.len())?;
            let duplicate = || de::Error::custom(format_args!("{DUPLICATE}{name}"));
            let slot = match &member {
                Member::Jsonrpc => {
                    if std::mem::replace(&mut seen_version, true) {
                        return Err(duplicate());
                    }
                    env.jsonrpc_2_0 = map.next_value_seed(VersionSeed(inner))?;
                    continue;
                }
                Member::Id => &mut env.id,
                Member::Method => &mut env.method,
                Member::Params => &mut env.params,
                Member::Result => &mut env.result,
                Member::Error => &mut env.error,
                Member::Other(other) => {
                    if others.contains(other) {
                        return Err(duplicate());
                    }
                    map.next_value_seed(inner)?;
                    others.insert(other.clone());
                    continue;
                }
            };
            if slot.is_some() {
                return Err(duplicate());
            }
            *slot = Some(map.next_value_seed(inner)?);
        }
        Ok(Body::Object(env))
    }
}

/// A top-level member name: JSON-RPC's own are matched without being copied.
enum Member {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other(String),
}

impl Member {
    fn name(&self) -> &str {
        match self {
            Self::Jsonrpc => "jsonrpc",
            Self::Id => "id",
            Self::Method => "method",
            Self::Params => "params",
            Self::Result => "result",
            Self::Error => "error",
            Self::Other(s) => s,
        }
    }

    fn of(name: &str) -> Self {
        match name {
            "jsonrpc" => Self::Jsonrpc,
            "id" => Self::Id,
            "method" => Self::Method,
            "params" => Self::Params,
            "result" => Self::Result,
            "error" => Self::Error,
            other => Self::Other(other.to_owned()),
        }
    }
}

struct MemberSeed;

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    // serde_json hands over unescaped text, so `"\u0069d"` is `id`, as any reader sees it.
    fn visit_str<E>(self, v: &str) -> Result<Member, E> {
        Ok(Member::of(v))
    }
}

/// The `jsonrpc` member's value: true for the string `"2.0"`; anything else is parsed as
/// strictly as every other value and answers false.
struct VersionSeed<'b>(StrictSeed<'b>);

impl<'de> DeserializeSeed<'de> for VersionSeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VersionSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.0.budget.charge(v.len())?;
        Ok(v == "2.0")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        StrictVisitor(self.0).visit_seq(seq).map(|_| false)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        StrictVisitor(self.0).visit_map(map).map(|_| false)
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
    fn a_body_parses_as_the_value_would_with_its_envelope_taken_out() {
        let limits = Limits {
            max_bytes: 10_000,
            max_batch: 2,
        };
        let dense = format!("{{\"params\":[{}1]}}", "1,".repeat(200));
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"w","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":"x","result":{"a":[1,{"b":null}]},"x-extra":true}"#,
            r#"{"jsonrpc":"1.0","error":{},"id":null}"#,
            r#"{"jsonrpc":{"v":"2.0"},"method":7}"#,
            r#"{"\u006aso\u006erpc":"2.0","\u0069d":3,"method":"ping"}"#,
            r#"{"id":1,"id":2}"#,
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0"}"#,
            r#"{"x":1,"y":2,"x":3}"#,
            r#"{"params":{"a":1,"a":2}}"#,
            r#"{"jsonrpc":{"a":1,"a":2}}"#,
            r#"[{"jsonrpc":"2.0","method":"a"},{}]"#,
            "[1,2,3]",
            r#""2.0""#,
            "17",
            "null",
            "{",
            "{} x",
            &dense,
        ] {
            for limits in [Limits::NONE, limits] {
                assert_eq!(
                    parse_body(body.as_bytes(), limits),
                    parse(body.as_bytes(), limits).map(Body::of),
                    "{body}"
                );
            }
        }
        assert_eq!(
            parse_body(br#"{"x":1,"x":2}"#, Limits::NONE),
            Err(JsonError::DuplicateMember("x".into()))
        );
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
