//! The MCP protocol core: era rules, method dispatch and result shaping; sans-IO.
//!
//! The HTTP shell hands it parsed messages plus the facts it needs (the revision, the caller,
//! the client's capabilities, `now`) and gets back a decision: a result to send, a handler to
//! run (the shell awaits it and hands the output back to [`Core::finish`]), or an error. It
//! never reads a socket, a clock or a random source.
//!
//! * [`version`]: revisions and negotiation.
//! * [`headers`]: the 2026-07-28 header rules.
//! * [`error`]: the error enum and its one wire mapping.
//! * [`tool`], [`prompt`], [`resource`]: what servers register.
//! * [`context`]: what handlers see; [`schema`]: argument checks; [`mrtr`]: input_required and sealed state.
//! * [`notify`]: change notifications.
//! * [`pending`]: a handler run the shell performs, and how its output becomes a result.

pub mod context;
pub mod error;
pub mod headers;
pub mod mrtr;
pub mod notify;
pub mod pending;
pub mod prompt;
pub mod resource;
pub mod schema;
pub mod tool;
pub mod version;

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::jsonrpc::Id;
use context::LogLevel;
pub use error::RequestError;
use mrtr::{params_digest, StateSealer};
pub use pending::{HandlerOutput, Pending, Target};
use prompt::Prompt;
use resource::{Resource, ResourceTemplate};
use tool::{CallToolResult, Tool};
use version::Version;

/// `_meta` key carrying the request's protocol revision (2026-07-28).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities (2026-07-28).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key carrying the requested log level (2026-07-28).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key carrying server info on results (2026-07-28).
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key carrying a subscription id on `subscriptions/listen` frames (2026-07-28).
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Most completion values returned at once (spec limit).
const MAX_COMPLETIONS: usize = 100;

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

impl ListenFilter {
    /// Whether this stream delivers `change`.
    pub fn wants(&self, change: &notify::Change) -> bool {
        match change {
            notify::Change::Tools => self.tools,
            notify::Change::Prompts => self.prompts,
            notify::Change::Resources => self.resources,
            notify::Change::ResourceUpdated(uri) => self.resource_uris.iter().any(|u| u == uri),
        }
    }

    /// The honoured subset, as sent in the acknowledgement.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        for (k, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                m.insert(k.into(), json!(true));
            }
        }
        if !self.resource_uris.is_empty() {
            m.insert("resourceSubscriptions".into(), json!(self.resource_uris));
        }
        Value::Object(m)
    }
}

/// What a client asked `subscriptions/listen` to deliver (2026-07-28).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenFilter {
    /// `notifications/tools/list_changed`.
    pub tools: bool,
    /// `notifications/prompts/list_changed`.
    pub prompts: bool,
    /// `notifications/resources/list_changed`.
    pub resources: bool,
    /// `notifications/resources/updated` for these URIs.
    pub resource_uris: Vec<String>,
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
    /// Legacy `resources/subscribe` (true) or `unsubscribe` (false): record it, then send `{}`.
    Subscribe(String, bool),
    /// 2026-07-28 `subscriptions/listen`: open the notification stream with this filter.
    Listen(ListenFilter),
    /// Run a handler.
    Run(Pending),
}

/// What the shell does for a notification: always 202, plus possibly this.
#[derive(Debug, PartialEq)]
pub enum NotificationAction {
    /// Nothing to do.
    None,
    /// Legacy `notifications/cancelled`: cancel this in-flight request of the session.
    Cancel(Id),
}

/// Which list-changed notifications the server will send (advertised as `listChanged`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListChanged {
    /// Tools.
    pub tools: bool,
    /// Prompts.
    pub prompts: bool,
    /// Resources.
    pub resources: bool,
}

/// Everything the server offers; built once, shared by every request.
#[derive(Debug)]
pub struct Core {
    info: ServerInfo,
    server_info: Value,
    tools: Vec<Arc<Tool>>,
    tool_index: HashMap<String, usize>,
    prompts: Vec<Arc<Prompt>>,
    resources: Vec<Arc<Resource>>,
    templates: Vec<Arc<ResourceTemplate>>,
    list_changed: ListChanged,
    logging: bool,
    page_size: usize,
    list_ttl_ms: u64,
    sealer: StateSealer,
}

/// Per-request facts the core needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The revision this request is served at.
    pub version: Version,
    /// The verified caller.
    pub principal: &'a Principal,
    /// What the client declared (initialize, or this request's `_meta`).
    pub client_capabilities: &'a Value,
    /// Unix seconds, for sealed state.
    pub now: u64,
}

/// The registry a server is built from.
#[derive(Debug, Default)]
pub struct Registry {
    /// Tools, in listing order.
    pub tools: Vec<Tool>,
    /// Prompts, in listing order.
    pub prompts: Vec<Prompt>,
    /// Resources, in listing order.
    pub resources: Vec<Resource>,
    /// Templates, in listing order.
    pub templates: Vec<ResourceTemplate>,
    /// Offer the `logging` capability (handlers' `log` messages reach clients that ask).
    pub logging: bool,
}

impl Core {
    /// Builds the core. `state_key` seals `requestState` (32 random bytes, passed in).
    pub fn new(
        info: ServerInfo,
        registry: Registry,
        list_changed: ListChanged,
        page_size: usize,
        list_ttl_ms: u64,
        state_key: &[u8; 32],
    ) -> Self {
        let mut server_info = Map::new();
        server_info.insert("name".into(), json!(info.name));
        server_info.insert("version".into(), json!(info.version));
        if let Some(t) = &info.title {
            server_info.insert("title".into(), json!(t));
        }
        let tools: Vec<Arc<Tool>> = registry.tools.into_iter().map(Arc::new).collect();
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
            prompts: registry.prompts.into_iter().map(Arc::new).collect(),
            resources: registry.resources.into_iter().map(Arc::new).collect(),
            templates: registry.templates.into_iter().map(Arc::new).collect(),
            list_changed,
            logging: registry.logging,
            page_size: page_size.max(1),
            list_ttl_ms,
            sealer: StateSealer::new(state_key, mrtr::DEFAULT_STATE_TTL_SECS),
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

    fn has_resources(&self) -> bool {
        !self.resources.is_empty() || !self.templates.is_empty()
    }

    fn has_completions(&self) -> bool {
        self.prompts.iter().any(|p| p.completions().is_some())
            || self.templates.iter().any(|t| t.completions().is_some())
    }

    fn has_subscribable(&self) -> bool {
        self.resources.iter().any(|r| r.is_subscribable())
    }

    /// Whether `subscriptions/listen` has anything to deliver.
    fn has_listenable(&self) -> bool {
        let lc = self.list_changed;
        lc.tools || lc.prompts || lc.resources || self.has_subscribable()
    }

    fn capabilities(&self) -> Value {
        let mut caps = Map::new();
        if !self.tools.is_empty() {
            caps.insert(
                "tools".into(),
                json!({"listChanged": self.list_changed.tools}),
            );
        }
        if !self.prompts.is_empty() {
            caps.insert(
                "prompts".into(),
                json!({"listChanged": self.list_changed.prompts}),
            );
        }
        if self.has_resources() {
            caps.insert(
                "resources".into(),
                json!({"subscribe": self.has_subscribable(), "listChanged": self.list_changed.resources}),
            );
        }
        if self.has_completions() {
            caps.insert("completions".into(), json!({}));
        }
        if self.logging {
            caps.insert("logging".into(), json!({}));
        }
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
        let not_found = || RequestError::MethodNotFound(method.to_owned());
        let result = match method {
            "initialize" if !modern => return Ok(self.initialize(params)),
            "ping" if !modern => json!({}),
            "logging/setLevel" if !modern && self.logging => {
                let level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .and_then(LogLevel::parse)
                    .ok_or_else(|| {
                        RequestError::InvalidParams("level must be a valid log level".into(), None)
                    })?;
                return Ok(Outcome::SetLogLevel(level));
            }
            "server/discover" if modern => self.discover(),
            "tools/list" if !self.tools.is_empty() => self.list_tools(facts, params)?,
            "tools/call" if !self.tools.is_empty() => return self.call_tool(facts, params),
            "prompts/list" if !self.prompts.is_empty() => {
                let page = self.page(params, &self.prompts, |p| p.definition(), "prompts")?;
                self.with_cache_fields(facts, page, "public")
            }
            "prompts/get" if !self.prompts.is_empty() => return self.get_prompt(facts, params),
            "resources/list" if self.has_resources() => {
                let page = self.page(params, &self.resources, |r| r.definition(), "resources")?;
                self.with_cache_fields(facts, page, "public")
            }
            "resources/templates/list" if self.has_resources() => {
                let page = self.page(
                    params,
                    &self.templates,
                    |t| t.definition(),
                    "resourceTemplates",
                )?;
                self.with_cache_fields(facts, page, "public")
            }
            "resources/read" if self.has_resources() => return self.read_resource(facts, params),
            "resources/subscribe" | "resources/unsubscribe"
                if !modern && self.has_subscribable() =>
            {
                let uri = params.get("uri").and_then(Value::as_str).ok_or_else(|| {
                    RequestError::InvalidParams("params.uri must be a string".into(), None)
                })?;
                if !self.is_subscribable(uri) {
                    return Err(RequestError::ResourceNotFound(uri.to_owned()));
                }
                return Ok(Outcome::Subscribe(
                    uri.to_owned(),
                    method == "resources/subscribe",
                ));
            }
            "completion/complete" if self.has_completions() => self.complete(params)?,
            "subscriptions/listen" if modern && self.has_listenable() => {
                return Ok(Outcome::Listen(self.listen_filter(params)))
            }
            _ => return Err(not_found()),
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

    /// 2026-07-28 list and read results carry cache hints.
    fn with_cache_fields(&self, facts: RequestFacts<'_>, mut page: Value, scope: &str) -> Value {
        if facts.version.is_modern() {
            page["ttlMs"] = json!(self.list_ttl_ms);
            page["cacheScope"] = json!(scope);
        }
        page
    }

    /// One page of `items` under `key`, with `nextCursor` unless it is the last.
    fn page<T>(
        &self,
        params: &Map<String, Value>,
        items: &[Arc<T>],
        def: impl Fn(&T) -> Value,
        key: &str,
    ) -> Result<Value, RequestError> {
        let visible: Vec<&Arc<T>> = items.iter().collect();
        self.page_of(params, &visible, def, key)
    }

    fn page_of<T>(
        &self,
        params: &Map<String, Value>,
        visible: &[&Arc<T>],
        def: impl Fn(&T) -> Value,
        key: &str,
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
        if start > visible.len() {
            return Err(RequestError::InvalidParams(
                "cursor is out of range".into(),
                None,
            ));
        }
        let end = (start + self.page_size).min(visible.len());
        let mut m = Map::new();
        m.insert(
            key.into(),
            visible[start..end].iter().map(|t| def(t)).collect(),
        );
        if end < visible.len() {
            m.insert("nextCursor".into(), json!(encode_cursor(end)));
        }
        Ok(Value::Object(m))
    }

    fn list_tools(
        &self,
        facts: RequestFacts<'_>,
        params: &Map<String, Value>,
    ) -> Result<Value, RequestError> {
        // Tools the caller's scopes do not allow are not listed ("you cannot see what you cannot use").
        let visible: Vec<&Arc<Tool>> = self
            .tools
            .iter()
            .filter(|t| t.scopes().iter().all(|s| facts.principal.has_scope(s)))
            .collect();
        let page = self.page_of(params, &visible, |t| t.definition(), "tools")?;
        // The list depends on the token's scopes, so shared caches must not serve it to others.
        Ok(self.with_cache_fields(facts, page, "private"))
    }

    fn call_tool(
        &self,
        facts: RequestFacts<'_>,
        params: &Map<String, Value>,
    ) -> Result<Outcome, RequestError> {
        let name = string_param(params, "name")?;
        let tool = self
            .tool(name)
            .ok_or_else(|| RequestError::InvalidParams(format!("unknown tool: {name}"), None))?;
        let arguments = arguments(params)?;
        if let Err(why) = schema::validate(tool.schema(), &Value::Object(arguments.clone())) {
            // Input-validation failures are tool errors the model can correct (SEP-1303), not protocol errors.
            let result = CallToolResult::error(format!("Invalid arguments: {why}"));
            let value = result.to_value(facts.version.allows_non_object_structured_content());
            return Ok(Outcome::Result(self.decorate(facts.version, value)));
        }
        self.pending(
            facts,
            "tools/call",
            params,
            Target::Tool(tool.clone(), arguments),
        )
    }

    fn get_prompt(
        &self,
        facts: RequestFacts<'_>,
        params: &Map<String, Value>,
    ) -> Result<Outcome, RequestError> {
        let name = string_param(params, "name")?;
        let prompt = self
            .prompts
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| RequestError::InvalidParams(format!("unknown prompt: {name}"), None))?;
        let arguments = arguments(params)?;
        prompt
            .validate(&arguments)
            .map_err(|why| RequestError::InvalidParams(why, None))?;
        self.pending(
            facts,
            "prompts/get",
            params,
            Target::Prompt(prompt.clone(), arguments),
        )
    }

    fn read_resource(
        &self,
        facts: RequestFacts<'_>,
        params: &Map<String, Value>,
    ) -> Result<Outcome, RequestError> {
        let uri = string_param(params, "uri")?;
        if let Some(r) = self.resources.iter().find(|r| r.uri() == uri) {
            return self.pending(facts, "resources/read", params, Target::Resource(r.clone()));
        }
        for t in &self.templates {
            if let Some(vars) = t.matches(uri) {
                return self.pending(
                    facts,
                    "resources/read",
                    params,
                    Target::Template(t.clone(), uri.to_owned(), vars),
                );
            }
        }
        Err(RequestError::ResourceNotFound(uri.to_owned()))
    }

    fn complete(&self, params: &Map<String, Value>) -> Result<Value, RequestError> {
        let bad = |m: &str| RequestError::InvalidParams(m.to_owned(), None);
        let reference = params
            .get("ref")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("params.ref must be an object"))?;
        let argument = params
            .get("argument")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("params.argument must be an object"))?;
        let arg_name = argument
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("argument.name must be a string"))?;
        let value = argument.get("value").and_then(Value::as_str).unwrap_or("");
        let completer = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("ref.name must be a string"))?;
                let prompt = self
                    .prompts
                    .iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| bad("unknown prompt"))?;
                prompt.completions().cloned()
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("ref.uri must be a string"))?;
                let t = self
                    .templates
                    .iter()
                    .find(|t| t.uri_template() == uri)
                    .ok_or_else(|| bad("unknown resource template"))?;
                t.completions().cloned()
            }
            _ => return Err(bad("ref.type must be ref/prompt or ref/resource")),
        };
        let mut values = completer.map(|c| c(arg_name, value)).unwrap_or_default();
        let total = values.len();
        values.truncate(MAX_COMPLETIONS);
        Ok(
            json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}}),
        )
    }

    fn listen_filter(&self, params: &Map<String, Value>) -> ListenFilter {
        let n = params.get("notifications").and_then(Value::as_object);
        let flag = |k: &str| {
            n.and_then(|n| n.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        // Only what this server can actually send is honoured; the acknowledgement says which.
        ListenFilter {
            tools: flag("toolsListChanged") && self.list_changed.tools,
            prompts: flag("promptsListChanged") && self.list_changed.prompts,
            resources: flag("resourcesListChanged") && self.list_changed.resources,
            resource_uris: n
                .and_then(|n| n.get("resourceSubscriptions"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter(|u| {
                            self.resources
                                .iter()
                                .any(|r| r.uri() == *u && r.is_subscribable())
                        })
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Prepares a handler run; opens a returned `requestState` first (2026-07-28).
    fn pending(
        &self,
        facts: RequestFacts<'_>,
        method: &'static str,
        params: &Map<String, Value>,
        target: Target,
    ) -> Result<Outcome, RequestError> {
        let meta = params.get("_meta").and_then(Value::as_object);
        let progress_token = meta
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.as_i64().is_some() || t.as_u64().is_some())
            .cloned();
        let modern = facts.version.is_modern();
        let log_level = match meta.and_then(|m| m.get(META_LOG_LEVEL)) {
            Some(v) if modern => Some(v.as_str().and_then(LogLevel::parse).ok_or_else(|| {
                RequestError::InvalidParams(
                    format!("_meta {META_LOG_LEVEL} is not a valid log level"),
                    None,
                )
            })?),
            _ => None,
        }; // Without the logging capability a valid level is ignored: nothing will be sent.
        let log_level = log_level.filter(|_| self.logging);

        let digest = params_digest(params);
        let principal_key = principal_key(facts.principal);
        let request_state = match params.get("requestState") {
            Some(Value::String(sealed)) if modern => Some(
                self.sealer
                    .open(&principal_key, method, &digest, sealed, facts.now)
                    .map_err(|e| {
                        RequestError::BadRequestState(match e {
                            mrtr::StateError::Invalid => "is not valid for this request",
                            mrtr::StateError::Expired => "has expired",
                        })
                    })?,
            ),
            Some(Value::String(_)) | None => None,
            Some(_) => {
                return Err(RequestError::InvalidParams(
                    "requestState must be a string".into(),
                    None,
                ))
            }
        };
        let input_responses = match params.get("inputResponses") {
            None => None,
            Some(Value::Object(m)) if m.values().all(Value::is_object) => modern.then(|| m.clone()),
            Some(_) => {
                return Err(RequestError::InvalidParams(
                    "inputResponses must be an object whose values are result objects".into(),
                    None,
                ))
            }
        };
        Ok(Outcome::Run(Pending {
            target,
            method,
            digest,
            principal_key,
            progress_token,
            log_level,
            request_state,
            input_responses,
        }))
    }

    /// Turns a finished handler's output into the result (or error) to send.
    pub fn finish(
        &self,
        facts: RequestFacts<'_>,
        pending: &Pending,
        output: Result<HandlerOutput, ()>,
    ) -> Result<Value, RequestError> {
        let result = pending.result(self, facts, output)?;
        Ok(self.decorate(facts.version, result))
    }

    /// Adds the 2026-07-28 per-result fields; legacy results are left as they are.
    fn decorate(&self, version: Version, mut result: Value) -> Value {
        if version.is_modern() {
            if let Value::Object(m) = &mut result {
                m.entry("resultType").or_insert_with(|| json!("complete"));
                let meta = m.entry("_meta").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    meta.insert(META_SERVER_INFO.into(), self.server_info.clone());
                }
            }
        }
        result
    }

    /// The sealer for `requestState`.
    pub(crate) fn sealer(&self) -> &StateSealer {
        &self.sealer
    }

    /// Which list-changed notifications are advertised.
    pub fn list_changed(&self) -> ListChanged {
        self.list_changed
    }

    /// A subscribable resource with this URI exists.
    pub fn is_subscribable(&self, uri: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.uri() == uri && r.is_subscribable())
    }
}

/// A required string member of `params`.
fn string_param<'p>(params: &'p Map<String, Value>, name: &str) -> Result<&'p str, RequestError> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::InvalidParams(format!("params.{name} must be a string"), None))
}

/// `params.arguments`: absent or null is empty; anything but an object is invalid.
fn arguments(params: &Map<String, Value>) -> Result<Map<String, Value>, RequestError> {
    match params.get("arguments") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(a)) => Ok(a.clone()),
        Some(_) => Err(RequestError::InvalidParams(
            "params.arguments must be an object".into(),
            None,
        )),
    }
}

/// The principal as bound into sealed state.
fn principal_key(p: &Principal) -> String {
    format!("{}\u{0}{}", p.issuer, p.subject.as_deref().unwrap_or(""))
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("o:")?
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
