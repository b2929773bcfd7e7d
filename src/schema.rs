//! JSON Schemas for tool arguments and structured output, built from code.
//!
//! ```
//! use vouch_mcp::Schema;
//!
//! let schema = Schema::object()
//!     .required("city", Schema::string().description("City name"))
//!     .property("days", Schema::integer().minimum(1.0).maximum(14.0))
//!     .deny_unknown();
//! assert_eq!(
//!     schema.as_json().to_string(),
//!     r#"{"additionalProperties":false,"properties":{"city":{"description":"City name","type":"string"},"days":{"maximum":14.0,"minimum":1.0,"type":"integer"}},"required":["city"],"type":"object"}"#
//! );
//! ```

use serde_json::{json, Map, Value};

/// A JSON Schema (the subset MCP clients and this server's validator understand).
///
/// Every builder method adds one keyword. The server validates arguments against the schema
/// before the handler runs (`type`, `required`, `properties`, `additionalProperties`, `enum`,
/// `const`, `items`, length, item-count and numeric bounds), and lists it in `tools/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema(Value);

impl Schema {
    fn typed(t: &str) -> Self {
        Self(json!({ "type": t }))
    }

    /// An object; add members with [`Schema::property`] and [`Schema::required`].
    pub fn object() -> Self {
        Self::typed("object")
    }

    /// A string.
    pub fn string() -> Self {
        Self::typed("string")
    }

    /// An integer.
    pub fn integer() -> Self {
        Self::typed("integer")
    }

    /// Any number.
    pub fn number() -> Self {
        Self::typed("number")
    }

    /// `true` or `false`.
    pub fn boolean() -> Self {
        Self::typed("boolean")
    }

    /// An array whose items match `items`.
    pub fn array(items: Schema) -> Self {
        Self(json!({ "type": "array", "items": items.0 }))
    }

    /// Any value at all.
    pub fn any() -> Self {
        Self(json!({}))
    }

    /// A schema written elsewhere (generated, or kept in a file). It is listed as given and
    /// validated with the keywords above; others are passed over.
    pub fn from_json(schema: Value) -> Self {
        Self(schema)
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        if let Value::Object(m) = &mut self.0 {
            m.insert(key.into(), value);
        }
        self
    }

    fn members(&mut self) -> &mut Map<String, Value> {
        if !self.0.is_object() {
            self.0 = json!({});
        }
        let m = self.0.as_object_mut().expect("made an object above");
        m.entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("properties is an object")
    }

    /// An optional member of an object.
    pub fn property(mut self, name: impl Into<String>, schema: Schema) -> Self {
        self.members().insert(name.into(), schema.0);
        self
    }

    /// A member the object must have.
    pub fn required(mut self, name: impl Into<String>, schema: Schema) -> Self {
        let name = name.into();
        self.members().insert(name.clone(), schema.0);
        if let Value::Object(m) = &mut self.0 {
            if let Value::Array(list) = m.entry("required").or_insert_with(|| json!([])) {
                list.push(Value::String(name));
            }
        }
        self
    }

    /// Members other than the declared ones are refused (`additionalProperties: false`).
    pub fn deny_unknown(self) -> Self {
        self.set("additionalProperties", Value::Bool(false))
    }

    /// A description for the model.
    pub fn description(self, text: impl Into<String>) -> Self {
        self.set("description", Value::String(text.into()))
    }

    /// A short human title.
    pub fn title(self, text: impl Into<String>) -> Self {
        self.set("title", Value::String(text.into()))
    }

    /// The value assumed when the member is absent (documentation for clients; not applied).
    pub fn default_value(self, value: Value) -> Self {
        self.set("default", value)
    }

    /// The value must be one of these.
    pub fn one_of_values<I, V>(self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.set(
            "enum",
            Value::Array(values.into_iter().map(Into::into).collect()),
        )
    }

    /// The least allowed number.
    pub fn minimum(self, n: f64) -> Self {
        self.set("minimum", json!(n))
    }

    /// The greatest allowed number.
    pub fn maximum(self, n: f64) -> Self {
        self.set("maximum", json!(n))
    }

    /// The least allowed string length, in characters.
    pub fn min_length(self, n: u64) -> Self {
        self.set("minLength", json!(n))
    }

    /// The greatest allowed string length, in characters.
    pub fn max_length(self, n: u64) -> Self {
        self.set("maxLength", json!(n))
    }

    /// The least allowed number of array items.
    pub fn min_items(self, n: u64) -> Self {
        self.set("minItems", json!(n))
    }

    /// The greatest allowed number of array items.
    pub fn max_items(self, n: u64) -> Self {
        self.set("maxItems", json!(n))
    }

    /// A `format` hint (`uri`, `email`, `date-time`, ...); listed, not checked.
    pub fn format(self, format: impl Into<String>) -> Self {
        self.set("format", Value::String(format.into()))
    }

    /// At 2026-07-28, this top-level argument is mirrored in the `Mcp-Param-{name}` request
    /// header so proxies can route on it (`x-mcp-header`); the server checks they agree.
    /// Only string, integer and boolean arguments may carry it.
    pub fn header(self, name: impl Into<String>) -> Self {
        self.set("x-mcp-header", Value::String(name.into()))
    }

    /// Any other keyword.
    pub fn keyword(self, key: &str, value: Value) -> Self {
        self.set(key, value)
    }

    /// The schema as JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// The schema as JSON, owned.
    pub fn into_json(self) -> Value {
        self.0
    }

    /// True when this is an object schema (`"type": "object"`), as tool schemas must be.
    pub(crate) fn is_object_schema(&self) -> bool {
        self.0.get("type").and_then(Value::as_str) == Some("object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_members_are_listed_once_each_in_order() {
        let s = Schema::object()
            .required("a", Schema::string())
            .required("b", Schema::boolean().header("B"))
            .property("c", Schema::array(Schema::integer()).max_items(3));
        assert_eq!(s.as_json()["required"], json!(["a", "b"]));
        assert_eq!(s.as_json()["properties"]["b"]["x-mcp-header"], "B");
        assert_eq!(s.as_json()["properties"]["c"]["items"]["type"], "integer");
        assert!(s.is_object_schema());
        assert!(!Schema::string().is_object_schema());
    }
}
