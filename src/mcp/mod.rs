//! The MCP protocol core: era rules, method dispatch and result shaping; sans-IO.
//!
//! The HTTP shell hands it parsed messages plus the facts it needs (the negotiated or claimed
//! revision, the caller, the client's capabilities) and gets back a decision: a result to send,
//! a tool to run (the shell awaits it and hands the outcome back), or an error. It never reads a
//! socket, a clock or a random source.
//!
//! * [`version`]: revisions and negotiation.
//! * [`headers`]: the 2026-07-28 header rules.
//! * [`tool`], [`context`], [`schema`]: what servers register and what handlers see.

pub mod context;
pub mod headers;
pub mod schema;
pub mod tool;
pub mod version;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::jsonrpc::{ErrorCode, ErrorObject, Id};
use context::LogLevel;
use tool::{CallToolResult, Tool, ToolError, ToolResult};
use version::Version;

/// `_meta` key carrying the request's protocol revision (2026-07-28).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities (2026-07-28).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key carrying the requested log level (2026-07-28).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key carrying server info on results (2026-07-28).
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Why a message was not served. This enum's [`RequestError::to_wire`] is its only mapping to HTTP and JSON-RPC.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not JSON.
    Parse(String),
    /// Not a valid JSON-RPC message, or not allowed in this position (batch, second initialize).
    InvalidRequest(String),
    /// Unknown method, or one behind a capability that was not advertised.
    MethodNotFound(String),
    /// Bad params for a known method (in-band).
    InvalidParams(String, Option<Value>),
    /// 2026-07-28 `_meta` lacks the protocol version or client capabilities (pre-dispatch).
    MissingMeta(String),
    /// 2026-07-28 standard header missing or disagreeing with the body.
    HeaderMismatch(String),
    /// 2026-07-28 request needs a client capability it did not declare.
    MissingCapability(Value),
    /// 2026-07-28 `_meta` names a revision we do not serve.
    UnsupportedVersion(String),
    /// Initialize era: `MCP-Protocol-Version` names a revision we do not serve.
    UnsupportedVersionHeader(String),
    /// Initialize era: a non-initialize request without `Mcp-Session-Id`.
    SessionRequired,
    /// Initialize era: unknown, expired, deleted, or another principal's session.
    SessionNotFound,
    /// The session table is full.
    TooManySessions,
    /// A handler fault; the detail is logged, not sent.
    Internal,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(m) => write!(f, "parse error: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::MethodNotFound(m) => write!(f, "method not found: {m}"),
            Self::InvalidParams(m, _) | Self::MissingMeta(m) => write!(f, "invalid params: {m}"),
            Self::HeaderMismatch(m) => write!(f, "header mismatch: {m}"),
            Self::MissingCapability(c) => write!(f, "missing client capability: {c}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported protocol version: {v}"),
            Self::UnsupportedVersionHeader(v) => {
                write!(f, "unsupported MCP-Protocol-Version header: {v}")
            }
            Self::SessionRequired => f.write_str("Mcp-Session-Id header is required"),
            Self::SessionNotFound => f.write_str("session not found"),
            Self::TooManySessions => f.write_str("too many open sessions"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

impl RequestError {
    /// HTTP status and JSON-RPC error for this failure. `modern` selects the 2026-07-28 statuses.
    pub fn to_wire(&self, modern: bool) -> (StatusCode, ErrorObject) {
        use ErrorCode as C;
        let supported = || json!(Version::supported_strings());
        match self {
            Self::Parse(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::PARSE_ERROR, format!("Parse error: {m}"))),
            Self::InvalidRequest(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::INVALID_REQUEST, format!("Invalid request: {m}"))),
            Self::MethodNotFound(m) => (
                if modern { StatusCode::NOT_FOUND } else { StatusCode::OK },
                ErrorObject::new(C::METHOD_NOT_FOUND, format!("Method not found: {m}")),
            ),
            Self::InvalidParams(m, data) => {
                let mut e = ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: {m}"));
                e.data = data.clone();
                (StatusCode::OK, e)
            }
            Self::MissingMeta(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: {m}"))),
            Self::HeaderMismatch(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::HEADER_MISMATCH, format!("Header mismatch: {m}"))),
            Self::MissingCapability(caps) => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::MISSING_REQUIRED_CLIENT_CAPABILITY, "Missing required client capability")
                    .with_data(json!({"requiredCapabilities": caps})),
            ),
            Self::UnsupportedVersion(v) => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::UNSUPPORTED_PROTOCOL_VERSION, format!("Unsupported protocol version: {v}"))
                    .with_data(json!({"supported": supported(), "requested": v})),
            ),
            Self::UnsupportedVersionHeader(v) => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_REQUEST, format!("Unsupported MCP-Protocol-Version header: {v}"))
                    .with_data(json!({"supported": supported(), "requested": v})),
            ),
            Self::SessionRequired => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_REQUEST, "Mcp-Session-Id header is required; send initialize first"),
            ),
            Self::SessionNotFound => (
                StatusCode::NOT_FOUND,
                ErrorObject::new(
                    C::SESSION_NOT_FOUND,
                    "Session not found: it expired, was deleted, or belongs to another user; initialize a new one \
                     (behind a load balancer, sessions need affinity)",
                ),
            ),
            Self::TooManySessions => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorObject::new(C::INTERNAL_ERROR, "Too many open sessions; retry later"),
            ),
            Self::Internal => (StatusCode::OK, ErrorObject::new(C::INTERNAL_ERROR, "Internal error")),
        }
    }
}

/// Name, version and instructions the server presents.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Machine name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Human title.
    pub title: Option<String>,
    /// Guidance for the model, sent in initialize/discover.
    pub instructions: Option<String>,
}

/// A tool call the shell must run, then hand back to [`Core::finish_call`].
#[derive(Debug)]
pub struct PendingCall {
    /// The tool.
    pub tool: Arc<Tool>,
    /// Validated arguments.
    pub arguments: Map<String, Value>,
    /// `_meta.progressToken`, echoed with its JSON type.
    pub progress_token: Option<Value>,
    /// 2026-07-28: `_meta` log level for this request.
    pub log_level: Option<LogLevel>,
}

/// What the shell does next for a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this result.
    Result(Value),
    /// Legacy `initialize`: create a session with these facts, then send `result`.
    Initialize {
        /// Negotiated revision.
        version: Version,
        /// The client's declared capabilities.
        client_capabilities: Value,
        /// The InitializeResult.
        result: Value,
    },
    /// Legacy `logging/setLevel`: store the level on the session, then send `{}`.
    SetLogLevel(LogLevel),
    /// Run a tool.
    CallTool(PendingCall),
}

/// What the shell does for a notification: always 202, plus possibly this.
#[derive(Debug, PartialEq)]
pub enum NotificationAction {
    /// Nothing to do.
    None,
    /// Legacy `notifications/cancelled`: cancel this in-flight request of the session.
    Cancel(Id),
}

/// The registered tools and server identity; built once, shared by every request.
#[derive(Debug)]
pub struct Core {
    info: ServerInfo,
    server_info: Value,
    tools: Vec<Arc<Tool>>,
    tool_index: HashMap<String, usize>,
    page_size: usize,
    list_ttl_ms: u64,
}

/// Per-request facts the core needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The revision this request is served at.
    pub version: Version,
    /// The verified caller.
    pub principal: &'a Principal,
}

impl Core {
    /// `tools` in registration order; `page_size` >= 1 tools per `tools/list` page.
    pub fn new(info: ServerInfo, tools: Vec<Tool>, page_size: usize, list_ttl_ms: u64) -> Self {
        let mut server_info = Map::new();
        server_info.insert("name".into(), json!(info.name));
        server_info.insert("version".into(), json!(info.version));
        if let Some(t) = &info.title {
            server_info.insert("title".into(), json!(t));
        }
        let tools: Vec<Arc<Tool>> = tools.into_iter().map(Arc::new).collect();
        let tool_index = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_owned(), i))
            .collect();
        Self {
            info,
            server_info: Value::Object(server_info),
            tools,
            tool_index,
            page_size: page_size.max(1),
            list_ttl_ms,
        }
    }

    /// The registered tools, in order.
    pub fn tools(&self) -> &[Arc<Tool>] {
        &self.tools
    }

    /// A tool by name.
    pub fn tool(&self, name: &str) -> Option<&Arc<Tool>> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    fn capabilities(&self) -> Value {
        let mut caps = Map::new();
        if !self.tools.is_empty() {
            caps.insert("tools".into(), json!({"listChanged": false}));
        }
        // Handlers may always log through their context, so the capability is always there.
        caps.insert("logging".into(), json!({}));
        Value::Object(caps)
    }

    /// Serves one request.
    pub fn handle_request(
        &self,
        facts: RequestFacts<'_>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Outcome, RequestError> {
        let modern = facts.version.is_modern();
        let result = match (method, modern) {
            ("initialize", false) => return Ok(self.initialize(params)),
            ("ping", false) => json!({}),
            ("logging/setLevel", false) => {
                let level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .and_then(LogLevel::parse)
                    .ok_or_else(|| {
                        RequestError::InvalidParams("level must be a valid log level".into(), None)
                    })?;
                return Ok(Outcome::SetLogLevel(level));
            }
            ("server/discover", true) => self.discover(),
            ("tools/list", _) if !self.tools.is_empty() => self.list_tools(facts, params)?,
            ("tools/call", _) if !self.tools.is_empty() => return self.call_tool(facts, params),
            _ => return Err(RequestError::MethodNotFound(method.to_owned())),
        };
        Ok(Outcome::Result(self.decorate(facts.version, result)))
    }

    /// Classifies a notification. Unknown ones are accepted and ignored, as JSON-RPC requires.
    pub fn handle_notification(
        &self,
        method: &str,
        params: &Map<String, Value>,
    ) -> NotificationAction {
        match method {
            "notifications/cancelled" => params
                .get("requestId")
                .and_then(Id::from_value)
                .map_or(NotificationAction::None, NotificationAction::Cancel),
            _ => NotificationAction::None,
        }
    }

    /// The result for a finished tool call. `Err(())` is a handler panic.
    pub fn finish_call(
        &self,
        version: Version,
        tool: &Tool,
        outcome: Result<ToolResult, ()>,
    ) -> Result<Value, RequestError> {
        let result = match outcome {
            Err(()) => return Err(RequestError::Internal),
            Ok(Ok(result)) => result,
            Ok(Err(e @ ToolError::InvalidArguments(_))) | Ok(Err(e @ ToolError::Failed(_))) => {
                CallToolResult::error(e.to_string())
            }
        };
        let result = match (tool.output(), &result.structured_content, result.is_error) {
            (Some(schema), Some(out), false) => match schema::validate(schema, out) {
                Ok(()) => result,
                Err(why) => {
                    crate::log::error(format_args!(
                        "tool {} broke its output schema: {why}",
                        tool.name()
                    ));
                    CallToolResult::error(
                        "the tool produced output that does not match its output schema",
                    )
                }
            },
            (Some(_), None, false) => {
                crate::log::error(format_args!(
                    "tool {} has an output schema but returned no structured content",
                    tool.name()
                ));
                CallToolResult::error("the tool produced no structured output")
            }
            _ => result,
        };
        let value = result.to_value(version.allows_non_object_structured_content());
        Ok(self.decorate(version, value))
    }

    fn initialize(&self, params: &Map<String, Value>) -> Outcome {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = Version::negotiate(requested);
        let client_capabilities = params
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut result = Map::new();
        result.insert("protocolVersion".into(), json!(version.as_str()));
        result.insert("capabilities".into(), self.capabilities());
        result.insert("serverInfo".into(), self.server_info.clone());
        if let Some(i) = &self.info.instructions {
            result.insert("instructions".into(), json!(i));
        }
        Outcome::Initialize {
            version,
            client_capabilities,
            result: Value::Object(result),
        }
    }

    fn discover(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "supportedVersions".into(),
            json!(Version::supported_strings()),
        );
        m.insert("capabilities".into(), self.capabilities());
        if let Some(i) = &self.info.instructions {
            m.insert("instructions".into(), json!(i));
        }
        m.insert("ttlMs".into(), json!(self.list_ttl_ms));
        m.insert("cacheScope".into(), json!("public"));
        Value::Object(m)
    }

    fn list_tools(
        &self,
        facts: RequestFacts<'_>,
        params: &Map<String, Value>,
    ) -> Result<Value, RequestError> {
        let start = match params.get("cursor") {
            None | Some(Value::Null) => 0,
            Some(Value::String(c)) => decode_cursor(c).ok_or_else(|| {
                RequestError::InvalidParams("cursor is not one this server issued".into(), None)
            })?,
            Some(_) => {
                return Err(RequestError::InvalidParams(
                    "cursor must be a string".into(),
                    None,
                ))
            }
        };
        // Tools the caller's scopes do not allow are not listed ("you cannot see what you cannot use").
        let visible: Vec<&Arc<Tool>> = self
            .tools
            .iter()
            .filter(|t| t.scopes().iter().all(|s| facts.principal.has_scope(s)))
            .collect();
        if start > visible.len() {
            return Err(RequestError::InvalidParams(
                "cursor is out of range".into(),
                None,
            ));
        }
        let end = (start + self.page_size).min(visible.len());
        let page: Vec<Value> = visible[start..end].iter().map(|t| t.definition()).collect();
        let mut m = Map::new();
        m.insert("tools".into(), Value::Array(page));
        if end < visible.len() {
            m.insert("nextCursor".into(), json!(encode_cursor(end)));
        }
        if facts.version.is_modern() {
            m.insert("ttlMs".into(), json!(self.list_ttl_ms));
            // The list depends on the token's scopes, so shared caches must not serve it to others.
            m.insert("cacheScope".into(), json!("private"));
        }
        Ok(Value::Object(m))
    }

    fn call_tool(
        &self,
        facts: RequestFacts<'_>,
        params: &Map<String, Value>,
    ) -> Result<Outcome, RequestError> {
        let name = params.get("name").and_then(Value::as_str).ok_or_else(|| {
            RequestError::InvalidParams("params.name must be a string".into(), None)
        })?;
        let tool = self
            .tool(name)
            .ok_or_else(|| RequestError::InvalidParams(format!("unknown tool: {name}"), None))?;
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(_) => {
                return Err(RequestError::InvalidParams(
                    "params.arguments must be an object".into(),
                    None,
                ))
            }
        };
        let meta = params.get("_meta").and_then(Value::as_object);
        let progress_token = meta
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.as_i64().is_some() || t.as_u64().is_some())
            .cloned();
        let log_level = if facts.version.is_modern() {
            match meta.and_then(|m| m.get(META_LOG_LEVEL)) {
                None => None,
                Some(v) => Some(v.as_str().and_then(LogLevel::parse).ok_or_else(|| {
                    RequestError::InvalidParams(
                        format!("_meta {META_LOG_LEVEL} is not a valid log level"),
                        None,
                    )
                })?),
            }
        } else {
            None
        };
        if let Err(why) = schema::validate(tool.schema(), &Value::Object(arguments.clone())) {
            // Input-validation failures are tool errors the model can correct (SEP-1303), not protocol errors.
            let result = CallToolResult::error(format!("Invalid arguments: {why}"));
            return Ok(Outcome::Result(self.decorate(
                facts.version,
                result.to_value(facts.version.allows_non_object_structured_content()),
            )));
        }
        Ok(Outcome::CallTool(PendingCall {
            tool: tool.clone(),
            arguments,
            progress_token,
            log_level,
        }))
    }

    /// Adds the 2026-07-28 per-result fields; legacy results are left as they are.
    fn decorate(&self, version: Version, mut result: Value) -> Value {
        if version.is_modern() {
            if let Value::Object(m) = &mut result {
                m.insert("resultType".into(), json!("complete"));
                let meta = m.entry("_meta").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    meta.insert(META_SERVER_INFO.into(), self.server_info.clone());
                }
            }
        }
        result
    }
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("tools:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("tools:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(50)), Some(50));
        assert_eq!(decode_cursor("garbage"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
