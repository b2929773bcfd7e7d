//! Argument checks before a handler runs: a small JSON Schema checker for tools, and the declared-argument rules for prompts; pure.
//!
//! The schema checker is deliberately partial: `type`, `required`, `properties`,
//! `additionalProperties`, `enum`, `const`, `items` and bounds. Keywords it does not know
//! (`$ref`, `allOf`, `if`, formats...) are passed over, never guessed at, and no `$ref` is ever
//! fetched. What it does check turns a call with missing or mistyped arguments into an `isError`
//! result before the tool runs.

use std::fmt;

use serde_json::{Map, Value};

use super::catalog::{PromptSpec, ToolSpec};

/// Nesting beyond this is not descended into: bounds the work an argument object can cause.
const MAX_DEPTH: usize = 32;
/// How much of an unexpected value an error message quotes.
const QUOTE_BYTES: usize = 256;

/// Where in the arguments a rule was broken; rendered only when it is.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("arguments"),
            Self::Key(p, k) => write!(f, "{p}.{k}"),
            Self::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// The rule an argument broke.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    /// Wrong JSON type.
    Type(String),
    /// Not one of the `enum` values.
    OneOf(Value),
    /// Not the `const` value.
    Equal(Value),
    /// A required property is missing.
    Required,
    /// A property the schema does not accept.
    NotAccepted,
    /// Fewer array items than `minItems`.
    MinItems(u64),
    /// More array items than `maxItems`.
    MaxItems(u64),
    /// Shorter than `minLength`.
    MinLength(u64),
    /// Longer than `maxLength`.
    MaxLength(u64),
    /// Below `minimum`.
    Minimum(f64),
    /// Above `maximum`.
    Maximum(f64),
    /// The tool declares no arguments; this is what it got.
    NoArguments(String),
    /// A prompt argument that must be a string.
    NotAString,
    /// A required prompt argument is missing.
    MissingArgument,
    /// A prompt argument that was not declared.
    UnknownArgument,
}

/// An argument that breaks a rule: where, and which rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    path: String,
    rule: Rule,
}

impl Violation {
    fn at(path: &Path<'_>, rule: Rule) -> Self {
        Self {
            path: path.to_string(),
            rule,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.path;
        match &self.rule {
            Rule::Type(t) => write!(f, "{p} must be of type {t}"),
            Rule::OneOf(v) => write!(f, "{p} must be one of {v}"),
            Rule::Equal(v) => write!(f, "{p} must equal {v}"),
            Rule::Required => write!(f, "{p} is required"),
            Rule::NotAccepted => write!(f, "{p} is not an accepted argument"),
            Rule::MinItems(n) => write!(f, "{p} needs at least {n} items"),
            Rule::MaxItems(n) => write!(f, "{p} allows at most {n} items"),
            Rule::MinLength(n) => write!(f, "{p} must be at least {n} characters"),
            Rule::MaxLength(n) => write!(f, "{p} must be at most {n} characters"),
            Rule::Minimum(n) => write!(f, "{p} must be >= {n}"),
            Rule::Maximum(n) => write!(f, "{p} must be <= {n}"),
            Rule::NoArguments(got) => write!(f, "this tool takes no arguments, but got {got}"),
            Rule::NotAString => write!(f, "{p} must be a string"),
            Rule::MissingArgument => write!(f, "missing required argument {p}"),
            Rule::UnknownArgument => write!(f, "unknown argument {p}"),
        }
    }
}

/// A schema read once, when its tool is built, into the rules this checker enforces: checking
/// a value then looks up no keyword by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Compiled {
    /// `type`: the accepted type names (a string, or an array's strings), and the keyword as
    /// written for the message. `None` when absent or of another JSON type (no constraint).
    types: Option<(Vec<String>, String)>,
    /// `enum`, when an array.
    one_of: Option<Vec<Value>>,
    /// `const`.
    equal: Option<Value>,
    /// `required`'s strings, when an array.
    required: Vec<String>,
    /// `properties` (when an object), compiled, sorted by name.
    properties: Vec<(String, Compiled)>,
    /// `additionalProperties`.
    additional: Additional,
    /// `items`.
    items: Option<Box<Compiled>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

/// What `additionalProperties` says of a property `properties` does not name.
#[derive(Debug, Clone, Default, PartialEq)]
enum Additional {
    /// Absent, `true`, or a non-object: anything.
    #[default]
    Any,
    /// `false`.
    Refused,
    /// An object schema.
    Schema(Box<Compiled>),
}

impl Compiled {
    /// The rules of `schema`; a non-object schema (`true`) enforces nothing.
    pub(crate) fn new(schema: &Value) -> Self {
        let Some(schema) = schema.as_object() else {
            return Self::default();
        };
        let types = schema.get("type").and_then(|t| match t {
            Value::String(name) => Some((vec![name.clone()], type_name(t))),
            Value::Array(names) => Some((
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                type_name(t),
            )),
            _ => None,
        });
        // Sorted for `property`'s search. A JSON map iterates in name order only while no crate
        // in the embedder's build turns on serde_json's `preserve_order`, so it is sorted here.
        let mut properties: Vec<(String, Compiled)> = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, sub)| (name.clone(), Self::new(sub)))
            .collect();
        properties.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let additional = match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => Additional::Refused,
            Some(sub @ Value::Object(_)) => Additional::Schema(Box::new(Self::new(sub))),
            _ => Additional::Any,
        };
        Self {
            types,
            one_of: match schema.get("enum") {
                Some(Value::Array(options)) => Some(options.clone()),
                _ => None,
            },
            equal: schema.get("const").cloned(),
            required: match schema.get("required") {
                Some(Value::Array(names)) => names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            },
            properties,
            additional,
            items: schema.get("items").map(|i| Box::new(Self::new(i))),
            min_items: schema.get("minItems").and_then(Value::as_u64),
            max_items: schema.get("maxItems").and_then(Value::as_u64),
            min_length: schema.get("minLength").and_then(Value::as_u64),
            max_length: schema.get("maxLength").and_then(Value::as_u64),
            minimum: schema.get("minimum").and_then(Value::as_f64),
            maximum: schema.get("maximum").and_then(Value::as_f64),
        }
    }

    /// The compiled schema of the property `key`, if `properties` names it.
    fn property(&self, key: &str) -> Option<&Compiled> {
        let i = self
            .properties
            .binary_search_by(|(name, _)| name.as_str().cmp(key))
            .ok()?;
        Some(&self.properties[i].1)
    }
}

/// Checks `value` against `schema`; the error names the argument path and the rule broken.
pub(crate) fn validate(schema: &Compiled, value: &Value) -> Result<(), Violation> {
    check(schema, value, &Path::Root, 0)
}

/// A tool's arguments (absent or null count as `{}`): its schema, or, for a tool declared without
/// arguments, nothing at all.
pub(crate) fn arguments(tool: &ToolSpec, args: &Value) -> Result<(), Violation> {
    static EMPTY: Value = Value::Null;
    let args = if args.is_null() { &EMPTY } else { args };
    if !tool.takes_arguments {
        return match args {
            Value::Null => Ok(()),
            Value::Object(m) if m.is_empty() => Ok(()),
            other => Err(Violation::at(&Path::Root, Rule::NoArguments(quote(other)))),
        };
    }
    match args {
        Value::Null => validate(&tool.input_schema, &Value::Object(Map::new())),
        v => validate(&tool.input_schema, v),
    }
}

/// A prompt's arguments: required ones present, all strings, none undeclared.
pub(crate) fn prompt_arguments(
    prompt: &PromptSpec,
    args: &Map<String, Value>,
) -> Result<(), Violation> {
    let named = |name: &str, rule| Violation {
        path: name.to_owned(),
        rule,
    };
    for a in &prompt.arguments {
        if a.required && !args.contains_key(&a.name) {
            return Err(named(&a.name, Rule::MissingArgument));
        }
    }
    for (k, v) in args {
        if !prompt.arguments.iter().any(|a| &a.name == k) {
            return Err(named(k, Rule::UnknownArgument));
        }
        if !v.is_string() {
            return Err(named(&format!("argument {k}"), Rule::NotAString));
        }
    }
    Ok(())
}

/// A value's compact JSON, cut at a character boundary after [`QUOTE_BYTES`].
fn quote(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > QUOTE_BYTES {
        let mut cut = QUOTE_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn check(schema: &Compiled, value: &Value, path: &Path<'_>, depth: usize) -> Result<(), Violation> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    if let Some((names, label)) = &schema.types {
        if !names.iter().any(|t| is_type(value, t)) {
            return Err(Violation::at(path, Rule::Type(label.clone())));
        }
    }
    if let Some(options) = &schema.one_of {
        if !options.contains(value) {
            return Err(Violation::at(
                path,
                Rule::OneOf(Value::Array(options.clone())),
            ));
        }
    }
    if let Some(c) = &schema.equal {
        if c != value {
            return Err(Violation::at(path, Rule::Equal(c.clone())));
        }
    }
    match value {
        Value::Object(obj) => {
            for name in &schema.required {
                if !obj.contains_key(name) {
                    return Err(Violation::at(&Path::Key(path, name), Rule::Required));
                }
            }
            for (key, v) in obj {
                let here = Path::Key(path, key);
                match schema.property(key) {
                    Some(sub) => check(sub, v, &here, depth + 1)?,
                    None => match &schema.additional {
                        Additional::Refused => return Err(Violation::at(&here, Rule::NotAccepted)),
                        Additional::Schema(sub) => check(sub, v, &here, depth + 1)?,
                        Additional::Any => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &Path::Index(path, i), depth + 1)?;
                }
            }
            if let Some(min) = schema.min_items {
                if (items.len() as u64) < min {
                    return Err(Violation::at(path, Rule::MinItems(min)));
                }
            }
            if let Some(max) = schema.max_items {
                if items.len() as u64 > max {
                    return Err(Violation::at(path, Rule::MaxItems(max)));
                }
            }
        }
        // Characters are counted only when a bound needs them.
        Value::String(s) if schema.min_length.is_some() || schema.max_length.is_some() => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.min_length {
                if len < min {
                    return Err(Violation::at(path, Rule::MinLength(min)));
                }
            }
            if let Some(max) = schema.max_length {
                if len > max {
                    return Err(Violation::at(path, Rule::MaxLength(max)));
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.minimum {
                if x < min {
                    return Err(Violation::at(path, Rule::Minimum(min)));
                }
            }
            if let Some(max) = schema.maximum {
                if x > max {
                    return Err(Violation::at(path, Rule::Maximum(max)));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => true,
    }
}

fn type_name(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(schema: &Value, v: Value) -> String {
        validate(&Compiled::new(schema), &v)
            .unwrap_err()
            .to_string()
    }

    fn ok(schema: &Value, v: Value) -> bool {
        validate(&Compiled::new(schema), &v).is_ok()
    }

    #[test]
    fn checks_required_types_and_extra_keys() {
        let schema = json!({
            "type":"object",
            "properties":{"n":{"type":"integer","minimum":1},"tags":{"type":"array","items":{"type":"string"}}},
            "required":["n"],
            "additionalProperties":false
        });
        assert!(ok(&schema, json!({"n":2,"tags":["a"]})));
        assert_eq!(err(&schema, json!({})), "arguments.n is required");
        assert_eq!(
            err(&schema, json!({"n":"2"})),
            "arguments.n must be of type integer"
        );
        assert_eq!(err(&schema, json!({"n":0})), "arguments.n must be >= 1");
        assert_eq!(
            err(&schema, json!({"n":1,"tags":[1]})),
            "arguments.tags[0] must be of type string"
        );
        assert_eq!(
            err(&schema, json!({"n":1,"x":1})),
            "arguments.x is not an accepted argument"
        );
    }

    #[test]
    fn every_keyword_is_enforced_as_written() {
        let schema = json!({
            "type":"object",
            "properties":{
                "a":{"type":["string","null"],"minLength":2,"maxLength":3},
                "b":{"enum":[1,"x"]},
                "c":{"const":{"k":true}},
                "d":true,
                "e":{"type":"array","items":{"type":"number","maximum":5},"minItems":1,"maxItems":2},
                "f":{"type":[]}
            },
            "additionalProperties":{"type":"integer"}
        });
        assert!(ok(
            &schema,
            json!({"a":"éé","b":"x","c":{"k":true},"d":[1],"e":[5],"z":3})
        ));
        assert!(ok(&schema, json!({"a":null})));
        for (v, why) in [
            (
                json!({"a":"é"}),
                "arguments.a must be at least 2 characters",
            ),
            (
                json!({"a":"abcd"}),
                "arguments.a must be at most 3 characters",
            ),
            (
                json!({"a":1}),
                r#"arguments.a must be of type ["string","null"]"#,
            ),
            (json!({"b":2}), r#"arguments.b must be one of [1,"x"]"#),
            (json!({"c":{}}), r#"arguments.c must equal {"k":true}"#),
            (json!({"e":[]}), "arguments.e needs at least 1 items"),
            (json!({"e":[1,2,3]}), "arguments.e allows at most 2 items"),
            (json!({"e":[6]}), "arguments.e[0] must be <= 5"),
            (json!({"f":1}), "arguments.f must be of type []"),
            (json!({"z":1.5}), "arguments.z must be of type integer"),
            (json!([]), "arguments must be of type object"),
        ] {
            assert_eq!(err(&schema, v.clone()), why, "{v}");
        }
        assert!(ok(&json!(true), json!({"anything": [1]})));
        assert!(ok(
            &json!({"type": 7}),
            json!("a type keyword of another JSON type")
        ));
    }

    #[test]
    fn properties_are_found_whatever_order_the_schema_map_keeps() {
        // Under serde_json's `preserve_order` (which any crate in a build may turn on) this map
        // keeps "z" before "a"; CI runs this test with that feature too.
        let schema = json!({
            "type":"object",
            "properties":{"z":{"type":"string"},"m":{"type":"string"},"a":{"type":"integer"}},
            "additionalProperties":false
        });
        assert!(ok(&schema, json!({"a":1,"m":"x","z":"y"})));
        assert_eq!(
            err(&schema, json!({"a":"1"})),
            "arguments.a must be of type integer"
        );
    }

    #[test]
    fn passes_over_unknown_keywords() {
        let schema =
            json!({"type":"object","allOf":[{"required":["zzz"]}],"$ref":"https://evil.example/s"});
        assert!(ok(&schema, json!({})));
    }

    #[test]
    fn a_tool_without_arguments_says_what_it_got() {
        let tool = ToolSpec {
            task_support: crate::core::tasks::TaskSupport::Forbidden,
            name: "t".into(),
            definition: Value::Null,
            input_schema: Compiled::new(&json!({"type":"object"})),
            output_schema: None,
            scopes: vec![],
            param_headers: vec![],
            takes_arguments: false,
            step_up: None,
            audit_arguments: false,
        };
        assert!(arguments(&tool, &Value::Null).is_ok());
        assert!(arguments(&tool, &json!({})).is_ok());
        assert_eq!(
            arguments(&tool, &json!({"x": 1})).unwrap_err().to_string(),
            r#"this tool takes no arguments, but got {"x":1}"#
        );
        let long = json!({"x": "y".repeat(1000)});
        assert!(arguments(&tool, &long).unwrap_err().to_string().len() < 320);
    }
}
