//! Tools: the definition a server registers, the handler it runs, and call results.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::core::catalog::ToolSpec;
use crate::core::headers::{self, AnnotationError};
use crate::core::mrtr::InputRequired;
use crate::core::tasks::TaskSupport;
use crate::runtime::context::RequestContext;
use crate::schema::Schema;
use crate::step_up::StepUp;

/// What a handler returns.
pub type ToolResult = Result<CallToolResult, ToolError>;

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

/// A boxed handler future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A tool handler with its arguments already deserialized; `Err` when they do not fit its type.
pub(crate) type ErasedHandler =
    dyn Fn(RequestContext, &Value) -> Result<BoxFuture<ToolResult>, ToolError> + Send + Sync;

/// A function that can handle a tool call: `Fn(RequestContext) -> impl Future<Output = ToolResult>`
/// for a tool without arguments, or `Fn(RequestContext, A)` where `A: serde::Deserialize` is the
/// arguments' type. Implemented for such closures and functions; not meant to be implemented by hand.
pub trait ToolHandler<Args>: Send + Sync + 'static {
    /// Whether the handler takes arguments.
    #[doc(hidden)]
    fn takes_arguments(&self) -> bool;
    /// Erases the handler's argument type.
    #[doc(hidden)]
    fn erase(self) -> Arc<ErasedHandler>;
}

/// The marker for handlers that take no arguments.
#[derive(Debug, Clone, Copy)]
pub struct NoArguments;

impl<F, Fut> ToolHandler<NoArguments> for F
where
    F: Fn(RequestContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ToolResult> + Send + 'static,
{
    fn takes_arguments(&self) -> bool {
        false
    }

    fn erase(self) -> Arc<ErasedHandler> {
        Arc::new(move |ctx, _args| Ok(Box::pin(self(ctx)) as BoxFuture<ToolResult>))
    }
}

impl<F, Fut, A> ToolHandler<(A,)> for F
where
    F: Fn(RequestContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ToolResult> + Send + 'static,
    A: DeserializeOwned + Send + 'static,
{
    fn takes_arguments(&self) -> bool {
        true
    }

    fn erase(self) -> Arc<ErasedHandler> {
        Arc::new(move |ctx, args| {
            static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
            // Absent arguments are `{}`, so a type whose members are all optional still fits.
            let args = if args.is_null() {
                EMPTY.get_or_init(|| Value::Object(Map::new()))
            } else {
                args
            };
            // Deserialized from the parsed body by reference: the arguments are not cloned.
            let typed =
                A::deserialize(args).map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
            Ok(Box::pin(self(ctx, typed)) as BoxFuture<ToolResult>)
        })
    }
}

/// A tool: its public definition plus the handler that runs it.
///
/// ```
/// use serde::Deserialize;
/// use vouch_mcp::{CallToolResult, RequestContext, Schema, Tool};
///
/// #[derive(Deserialize)]
/// struct Greet {
///     name: String,
/// }
///
/// let greet = Tool::new("greet", "Greets someone by name", |_ctx: RequestContext, args: Greet| async move {
///     Ok(CallToolResult::text(format!("hello, {}", args.name)))
/// })
/// .input(Schema::object().required("name", Schema::string()));
/// assert_eq!(greet.name(), "greet");
///
/// // A tool without arguments accepts only `{}` and says what it got otherwise.
/// let ping = Tool::new("ping", "Answers pong", |_ctx: RequestContext| async {
///     Ok(CallToolResult::text("pong"))
/// });
/// assert_eq!(ping.name(), "ping");
/// ```
#[derive(Clone)]
pub struct Tool {
    name: String,
    title: Option<String>,
    description: String,
    input_schema: Option<Schema>,
    output_schema: Option<Schema>,
    annotations: Option<ToolAnnotations>,
    required_scopes: Vec<String>,
    step_up: Option<StepUp>,
    audit_arguments: bool,
    extra: Map<String, Value>,
    takes_arguments: bool,
    task_support: TaskSupport,
    handler: Arc<ErasedHandler>,
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// A tool named `name` (1-64 of `[A-Za-z0-9_.-]`) run by `handler`.
    ///
    /// A handler that takes arguments gets them deserialized into its argument type; give the
    /// schema clients see with [`Tool::input`] (without one, any object is accepted and the
    /// type's deserialization is the check). A handler without arguments lists the empty schema.
    pub fn new<Args, H: ToolHandler<Args>>(
        name: impl Into<String>,
        description: impl Into<String>,
        handler: H,
    ) -> Self {
        let takes_arguments = handler.takes_arguments();
        Self {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: None,
            output_schema: None,
            annotations: None,
            required_scopes: Vec::new(),
            step_up: None,
            audit_arguments: false,
            extra: Map::new(),
            takes_arguments,
            task_support: TaskSupport::Forbidden,
            handler: handler.erase(),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The schema of the arguments, listed in `tools/list` and checked before the handler runs.
    /// Its root must be an object schema.
    pub fn input(mut self, schema: Schema) -> Self {
        self.input_schema = Some(schema);
        self
    }

    /// The schema of `structuredContent`; results must then carry conforming structured content.
    pub fn output(mut self, schema: Schema) -> Self {
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
    /// Tools a token cannot call are not listed for it.
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A step-up policy (RFC 9470): a call whose token fails it gets HTTP 401
    /// `insufficient_user_authentication` with `acr_values` and `max_age` as the policy sets
    /// them, so the client can log in again more strongly. The tool stays listed.
    pub fn step_up(mut self, policy: StepUp) -> Self {
        self.step_up = Some(policy);
        self
    }

    /// Lets the audit log record this tool's arguments (off by default: arguments may hold
    /// personal or secret data).
    pub fn audit_arguments(mut self) -> Self {
        self.audit_arguments = true;
        self
    }

    /// Whether calls may run as tasks that outlive the request (`execution.taskSupport`);
    /// [`TaskSupport::Forbidden`] by default. See [`RequestContext::ask`] and
    /// [`RequestContext::set_status`] for what a handler can do while it runs as a task.
    ///
    /// * At 2026-07-28 (the `io.modelcontextprotocol/tasks` extension) the server decides: a
    ///   call from a client that declares the extension becomes a task when the handler is not
    ///   done within a short window ([`ServerBuilder::task_immediate`](crate::ServerBuilder::task_immediate))
    ///   or asks the client for input; a `Required` tool's call always does, unless it ends in
    ///   an `input_required` round. A `Required` tool called without the extension gets -32021.
    /// * In 2025-11-25 sessions the client asks with `params.task`; `Required` tools refuse calls
    ///   without it, other tools refuse it (-32601).
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.task_support = support;
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec the core serves and the handler the runtime calls, or why the tool is refused.
    pub(crate) fn into_parts(self) -> Result<(ToolSpec, Arc<ErasedHandler>), ToolDefinitionError> {
        if !is_valid_name(&self.name) {
            return Err(ToolDefinitionError::BadName);
        }
        if let Some(p) = &self.step_up {
            p.check().map_err(ToolDefinitionError::StepUp)?;
        }
        let input = match (self.input_schema, self.takes_arguments) {
            (Some(s), _) if !s.is_object_schema() => {
                return Err(ToolDefinitionError::InputNotAnObject)
            }
            (Some(s), _) => s.into_json(),
            (None, true) => json!({"type": "object"}),
            (None, false) => json!({"type": "object", "additionalProperties": false}),
        };
        let param_headers =
            headers::param_headers(&input).map_err(ToolDefinitionError::ParamHeader)?;
        let output = self.output_schema.map(Schema::into_json);
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(t) = &self.title {
            m.insert("title".into(), json!(t));
        }
        m.insert("description".into(), json!(self.description));
        m.insert("inputSchema".into(), input.clone());
        if let Some(o) = &output {
            m.insert("outputSchema".into(), o.clone());
        }
        if self.task_support != TaskSupport::Forbidden {
            m.insert(
                "execution".into(),
                json!({"taskSupport": self.task_support.as_str()}),
            );
        }
        for (k, v) in self.extra {
            m.insert(k, v);
        }
        if let Some(a) = &self.annotations {
            let mut a = a.to_value();
            if let (Some(t), Value::Object(map)) = (&self.title, &mut a) {
                map.insert("title".into(), json!(t));
            }
            m.insert("annotations".into(), a);
        }
        let spec = ToolSpec {
            name: self.name,
            definition: Value::Object(m),
            input_schema: crate::core::validate::Compiled::new(&input),
            output_schema: output.as_ref().map(crate::core::validate::Compiled::new),
            scopes: self.required_scopes,
            param_headers,
            takes_arguments: self.takes_arguments,
            step_up: self.step_up,
            audit_arguments: self.audit_arguments,
            task_support: self.task_support,
        };
        Ok((spec, self.handler))
    }
}

/// Why a tool definition is refused at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolDefinitionError {
    /// The name is empty, too long, or has characters clients reject.
    BadName,
    /// The input schema's root is not an object schema.
    InputNotAnObject,
    /// An `x-mcp-header` annotation breaks the 2026-07-28 rules.
    ParamHeader(AnnotationError),
    /// The step-up policy cannot be expressed in a challenge.
    StepUp(&'static str),
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
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn definition_carries_title_annotations_icons_and_schemas() {
        let t = Tool::new("t", "d", |_ctx: RequestContext| async {
            Ok(CallToolResult::text("x"))
        })
        .title("T")
        .icons(json!([{"src": "https://example.com/i.png", "mimeType": "image/png"}]))
        .output(Schema::object())
        .annotations(ToolAnnotations {
            read_only: Some(true),
            ..Default::default()
        });
        let (spec, _) = t.into_parts().unwrap();
        let d = spec.definition;
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
        assert!(!spec.takes_arguments);
    }

    #[test]
    fn typed_handlers_take_arguments_and_refuse_what_does_not_fit() {
        #[derive(Deserialize)]
        struct Args {
            #[allow(dead_code)]
            n: u32,
        }
        let t = Tool::new("t", "d", |_ctx: RequestContext, _a: Args| async {
            Ok(CallToolResult::text("x"))
        });
        let (spec, handler) = t.into_parts().unwrap();
        assert!(spec.takes_arguments);
        assert_eq!(spec.definition["inputSchema"], json!({"type": "object"}));
        assert!(handler(RequestContext::default(), &json!({"n": 1})).is_ok());
        let Err(ToolError::InvalidArguments(why)) =
            handler(RequestContext::default(), &json!({"n": "x"}))
        else {
            panic!("a string is not a u32")
        };
        assert!(why.contains("invalid type"), "{why}");
        let bad = Tool::new("t", "d", |_ctx: RequestContext, _a: Args| async {
            Ok(CallToolResult::text("x"))
        })
        .input(Schema::string());
        assert_eq!(
            bad.into_parts().err(),
            Some(ToolDefinitionError::InputNotAnObject)
        );
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
