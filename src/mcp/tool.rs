//! Tools: the definition a server registers, the handler signature, and call results.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::context::RequestContext;
use super::mrtr::InputRequired;

/// What a handler returns.
pub type ToolResult = Result<CallToolResult, ToolError>;

type Handler = dyn Fn(RequestContext, Map<String, Value>) -> Pin<Box<dyn Future<Output = ToolResult> + Send>>
    + Send
    + Sync;

/// Hints about a tool's behaviour (all optional; MCP defaults apply when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolAnnotations {
    /// Does not modify its environment.
    pub read_only: Option<bool>,
    /// May perform destructive updates.
    pub destructive: Option<bool>,
    /// Repeating a call has no further effect.
    pub idempotent: Option<bool>,
    /// Interacts with external entities.
    pub open_world: Option<bool>,
}

impl ToolAnnotations {
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<bool>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::Bool(v));
            }
        };
        put("readOnlyHint", self.read_only);
        put("destructiveHint", self.destructive);
        put("idempotentHint", self.idempotent);
        put("openWorldHint", self.open_world);
        Value::Object(m)
    }
}

/// A tool: its public definition plus the handler that runs it.
#[derive(Clone)]
pub struct Tool {
    name: String,
    title: Option<String>,
    description: String,
    input_schema: Value,
    output_schema: Option<Value>,
    annotations: Option<ToolAnnotations>,
    required_scopes: Vec<String>,
    extra: Map<String, Value>,
    handler: Arc<Handler>,
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// A tool named `name` (1-64 of `[A-Za-z0-9_.-]`) that takes no arguments until
    /// [`Tool::input_schema`] says otherwise.
    pub fn new<F, Fut>(name: impl Into<String>, description: impl Into<String>, handler: F) -> Self
    where
        F: Fn(RequestContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ToolResult> + Send + 'static,
    {
        Self {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: json!({"type": "object", "additionalProperties": false}),
            output_schema: None,
            annotations: None,
            required_scopes: Vec::new(),
            extra: Map::new(),
            handler: Arc::new(move |ctx, args| Box::pin(handler(ctx, args))),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The JSON Schema of the arguments; its root must be `{"type":"object",...}`.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    /// The JSON Schema of `structuredContent`; results then carry it plus a text copy.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// Behaviour hints.
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.annotations = Some(annotations);
        self
    }

    /// Icons for clients to show (`[{"src": ..., "mimeType": ..., "sizes": [...]}]`, 2025-11-25+).
    pub fn icons(self, icons: Value) -> Self {
        self.field("icons", icons)
    }

    /// Any other member of the listed definition (`_meta`, `execution`, ...).
    pub fn field(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// Scopes a token must hold to call this tool (besides the server-wide ones); otherwise 403.
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The argument schema.
    pub fn schema(&self) -> &Value {
        &self.input_schema
    }

    /// The output schema, if any.
    pub fn output(&self) -> Option<&Value> {
        self.output_schema.as_ref()
    }

    /// Scopes needed on top of the server-wide ones.
    pub fn scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// Runs the handler.
    pub fn call(
        &self,
        ctx: RequestContext,
        args: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = ToolResult> + Send>> {
        (self.handler)(ctx, args)
    }

    /// The definition as listed by `tools/list`.
    pub fn definition(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(t) = &self.title {
            m.insert("title".into(), json!(t));
        }
        m.insert("description".into(), json!(self.description));
        m.insert("inputSchema".into(), self.input_schema.clone());
        if let Some(o) = &self.output_schema {
            m.insert("outputSchema".into(), o.clone());
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        if let Some(a) = &self.annotations {
            let mut a = a.to_value();
            if let (Some(t), Value::Object(map)) = (&self.title, &mut a) {
                map.insert("title".into(), json!(t));
            }
            m.insert("annotations".into(), a);
        }
        Value::Object(m)
    }
}

/// A successful call's content (which may still report a tool-level error with `is_error`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallToolResult {
    /// Content blocks (`{"type":"text",...}` and so on).
    pub content: Vec<Value>,
    /// Machine-readable output matching the tool's output schema.
    pub structured_content: Option<Value>,
    /// The tool ran but failed; the model should see the content.
    pub is_error: bool,
}

impl CallToolResult {
    /// Any content blocks.
    pub fn content(content: Vec<Value>) -> Self {
        Self {
            content,
            structured_content: None,
            is_error: false,
        }
    }

    /// One text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![text_block(text.into())],
            structured_content: None,
            is_error: false,
        }
    }

    /// Structured output plus its pretty-printed JSON as a text block for older clients.
    pub fn structured(value: Value) -> Self {
        let text = serde_json::to_string_pretty(&value).expect("a Value serializes");
        Self {
            content: vec![text_block(text)],
            structured_content: Some(value),
            is_error: false,
        }
    }

    /// A tool-level failure shown to the model.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            content: vec![text_block(text.into())],
            structured_content: None,
            is_error: true,
        }
    }

    /// Marks the result as a tool-level failure.
    pub fn into_error(mut self) -> Self {
        self.is_error = true;
        self
    }

    /// The JSON result; non-object structured content is left out for clients that only accept objects.
    pub fn to_value(&self, allow_non_object_structured: bool) -> Value {
        let mut m = Map::new();
        m.insert("content".into(), Value::Array(self.content.clone()));
        if let Some(s) = &self.structured_content {
            if s.is_object() || allow_non_object_structured {
                m.insert("structuredContent".into(), s.clone());
            }
        }
        m.insert("isError".into(), Value::Bool(self.is_error));
        Value::Object(m)
    }
}

fn text_block(text: String) -> Value {
    json!({"type": "text", "text": text})
}

/// Content-block constructors for results and prompt messages.
pub mod content {
    use serde_json::{json, Value};

    /// `{"type":"text"}`.
    pub fn text(text: impl Into<String>) -> Value {
        json!({"type": "text", "text": text.into()})
    }

    /// `{"type":"image"}` with base64 data.
    pub fn image(base64_data: impl Into<String>, mime_type: &str) -> Value {
        json!({"type": "image", "data": base64_data.into(), "mimeType": mime_type})
    }

    /// `{"type":"audio"}` with base64 data.
    pub fn audio(base64_data: impl Into<String>, mime_type: &str) -> Value {
        json!({"type": "audio", "data": base64_data.into(), "mimeType": mime_type})
    }

    /// An embedded text resource.
    pub fn text_resource(uri: &str, mime_type: &str, text: impl Into<String>) -> Value {
        json!({"type": "resource", "resource": {"uri": uri, "mimeType": mime_type, "text": text.into()}})
    }

    /// A link to a resource.
    pub fn resource_link(uri: &str, name: &str, mime_type: Option<&str>) -> Value {
        let mut v = json!({"type": "resource_link", "uri": uri, "name": name});
        if let Some(m) = mime_type {
            v["mimeType"] = json!(m);
        }
        v
    }
}

/// A tool that did not complete. The first two become `isError: true` results (the model sees
/// the message); `InputRequired` becomes a 2026-07-28 `input_required` result.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// The arguments are unusable (beyond what the schema caught).
    InvalidArguments(String),
    /// The tool could not do its work.
    Failed(String),
    /// The tool needs input from the client first (2026-07-28 only).
    InputRequired(InputRequired),
    /// The tool needs a client capability the request did not declare, e.g. `{"sampling":{}}`.
    /// At 2026-07-28 this is HTTP 400 / -32021; earlier revisions get an `isError` result.
    MissingCapability(Value),
}

impl From<InputRequired> for ToolError {
    fn from(i: InputRequired) -> Self {
        Self::InputRequired(i)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            Self::Failed(m) => f.write_str(m),
            Self::InputRequired(_) => f.write_str("input required"),
            Self::MissingCapability(c) => write!(f, "the client lacks a required capability: {c}"),
        }
    }
}

/// A prompt or resource handler that did not complete; mapped to JSON-RPC errors.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerError {
    /// Bad arguments: -32602.
    InvalidParams(String),
    /// No such resource: -32002 (initialize era) or -32602 with `data.uri` (2026-07-28).
    NotFound(String),
    /// A server-side failure: -32603, detail logged only.
    Failed(String),
    /// Needs client input first (2026-07-28 only).
    InputRequired(InputRequired),
}

impl From<InputRequired> for HandlerError {
    fn from(i: InputRequired) -> Self {
        Self::InputRequired(i)
    }
}

impl std::error::Error for ToolError {}

/// True for a name clients accept: 1-64 characters of `[A-Za-z0-9_.-]`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_carries_title_annotations_icons_and_schemas() {
        let t = Tool::new("t", "d", |_ctx, _args| async {
            Ok(CallToolResult::text("x"))
        })
        .title("T")
        .icons(json!([{"src": "https://example.com/i.png", "mimeType": "image/png"}]))
        .output_schema(json!({"type": "object"}))
        .annotations(ToolAnnotations {
            read_only: Some(true),
            ..Default::default()
        });
        let d = t.definition();
        assert_eq!(d["icons"][0]["mimeType"], "image/png");
        assert_eq!(
            d["annotations"],
            json!({"readOnlyHint": true, "title": "T"})
        );
        assert_eq!(
            d["inputSchema"],
            json!({"type": "object", "additionalProperties": false})
        );
        assert_eq!(d["outputSchema"], json!({"type": "object"}));
    }

    #[test]
    fn non_object_structured_content_is_kept_only_where_allowed() {
        let mut r = CallToolResult::text("[1]");
        r.structured_content = Some(json!([1]));
        assert!(r.to_value(false).get("structuredContent").is_none());
        assert_eq!(r.to_value(true)["structuredContent"], json!([1]));
    }

    #[test]
    fn names_follow_the_client_rules() {
        assert!(is_valid_name("sensitive-action"));
        assert!(is_valid_name("a.b_c-1"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name(&"x".repeat(65)));
    }
}
