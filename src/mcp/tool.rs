//! Tools: the definition a server registers, the handler signature, and call results.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::context::RequestContext;

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

/// A handler failure. Both become `isError: true` results: the model sees the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The arguments are unusable (beyond what the schema caught).
    InvalidArguments(String),
    /// The tool could not do its work.
    Failed(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            Self::Failed(m) => f.write_str(m),
        }
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
