//! What the server offers, as the core sees it: tool, prompt and resource specs, capabilities, listings and pagination; pure.
//!
//! The public definition types (`Tool`, `Prompt`, `Resource`, `ResourceTemplate`) split at build
//! time into a spec, kept here, and a handler, kept by the runtime at the same index.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::error::ProtocolError;
use super::headers::ParamHeader;
use super::template::UriTemplate;
use super::version::Version;
use super::{ListChanged, META_SERVER_INFO};
use crate::auth::Principal;

/// Most completion values returned at once (spec limit).
const MAX_COMPLETIONS: usize = 100;

/// Suggests values for an argument: `(argument name, partial value) -> candidates`.
pub(crate) type Completer = Arc<dyn Fn(&str, &str) -> Vec<String> + Send + Sync>;

/// Name, version and instructions the server presents.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    /// Machine name.
    pub(crate) name: String,
    /// Version string.
    pub(crate) version: String,
    /// Human title.
    pub(crate) title: Option<String>,
    /// Guidance for the model, sent in initialize/discover.
    pub(crate) instructions: Option<String>,
}

/// A tool as the core needs it.
#[derive(Debug, Clone)]
pub(crate) struct ToolSpec {
    /// The name clients call it by.
    pub(crate) name: String,
    /// The `tools/list` entry.
    pub(crate) definition: Value,
    /// The argument schema's rules.
    pub(crate) input_schema: super::validate::Compiled,
    /// The `structuredContent` schema's rules.
    pub(crate) output_schema: Option<super::validate::Compiled>,
    /// Scopes the token needs besides the server-wide ones.
    pub(crate) scopes: Vec<String>,
    /// Arguments mirrored in `Mcp-Param-*` headers (2026-07-28), read once at build.
    pub(crate) param_headers: Vec<ParamHeader>,
    /// False for a tool declared without arguments: it accepts only `{}`.
    pub(crate) takes_arguments: bool,
    /// What the token's login must satisfy (RFC 9470), checked after the scopes.
    pub(crate) step_up: Option<crate::step_up::StepUp>,
    /// The audit log may record this tool's arguments.
    pub(crate) audit_arguments: bool,
    /// Whether the tool may run as a task.
    pub(crate) task_support: super::tasks::TaskSupport,
}

/// One declared prompt argument.
#[derive(Debug, Clone)]
pub(crate) struct PromptArgSpec {
    /// Name.
    pub(crate) name: String,
    /// Must be supplied.
    pub(crate) required: bool,
}

/// A prompt as the core needs it.
#[derive(Clone)]
pub(crate) struct PromptSpec {
    /// Name.
    pub(crate) name: String,
    /// The `prompts/list` entry.
    pub(crate) definition: Value,
    /// Repeated in the GetPromptResult.
    pub(crate) description: Option<String>,
    /// Declared arguments.
    pub(crate) arguments: Vec<PromptArgSpec>,
    /// Completion for its arguments.
    pub(crate) completer: Option<Completer>,
}

/// A fixed resource as the core needs it.
#[derive(Debug, Clone)]
pub(crate) struct ResourceSpec {
    /// Its URI.
    pub(crate) uri: String,
    /// The `resources/list` entry.
    pub(crate) definition: Value,
    /// Clients may subscribe to its updates.
    pub(crate) subscribable: bool,
}

/// A resource template as the core needs it.
#[derive(Clone)]
pub(crate) struct TemplateSpec {
    /// The parsed template.
    pub(crate) template: UriTemplate,
    /// The `resources/templates/list` entry.
    pub(crate) definition: Value,
    /// Completion for its variables.
    pub(crate) completer: Option<Completer>,
}

macro_rules! debug_named {
    ($t:ty, $field:ident) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field(stringify!($field), &self.$field)
                    .finish_non_exhaustive()
            }
        }
    };
}
debug_named!(PromptSpec, name);
debug_named!(TemplateSpec, template);

/// One change, fanned out to every open GET stream and `subscriptions/listen` stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Change {
    /// The tool list changed.
    Tools,
    /// The prompt list changed.
    Prompts,
    /// The resource list changed.
    Resources,
    /// This resource's content changed.
    ResourceUpdated(String),
}

impl Change {
    /// The notification method.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Tools => "notifications/tools/list_changed",
            Self::Prompts => "notifications/prompts/list_changed",
            Self::Resources => "notifications/resources/list_changed",
            Self::ResourceUpdated(_) => "notifications/resources/updated",
        }
    }

    /// The notification's params, with `extra` members (a subscription id) merged in.
    pub(crate) fn params(&self, extra: Option<(&str, Value)>) -> Value {
        let mut m = Map::new();
        if let Self::ResourceUpdated(uri) = self {
            m.insert("uri".into(), Value::String(uri.clone()));
        }
        if let Some((k, v)) = extra {
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }
}

/// Listing and paging settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listing {
    /// Entries per page.
    pub(crate) page_size: usize,
    /// `ttlMs` on 2026-07-28 list results.
    pub(crate) ttl_ms: u64,
}

/// Everything the server offers; built once, shared by every request.
#[derive(Debug)]
pub(crate) struct Catalog {
    info: ServerInfo,
    server_info: Value,
    /// `,"resultType":"complete","_meta":{serverInfo}}`: the end of every 2026-07-28 tool result,
    /// serialized once.
    modern_result_tail: Vec<u8>,
    tools: Vec<ToolSpec>,
    tool_index: HashMap<String, usize>,
    prompts: Vec<PromptSpec>,
    resources: Vec<ResourceSpec>,
    templates: Vec<TemplateSpec>,
    list_changed: ListChanged,
    logging: bool,
    listing: Listing,
}

/// What a client asked `subscriptions/listen` to deliver (2026-07-28).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListenFilter {
    /// `notifications/tools/list_changed`.
    pub(crate) tools: bool,
    /// `notifications/prompts/list_changed`.
    pub(crate) prompts: bool,
    /// `notifications/resources/list_changed`.
    pub(crate) resources: bool,
    /// `notifications/resources/updated` for these URIs.
    pub(crate) resource_uris: Vec<String>,
}

impl ListenFilter {
    /// Whether this stream delivers `change`.
    pub(crate) fn wants(&self, change: &Change) -> bool {
        match change {
            Change::Tools => self.tools,
            Change::Prompts => self.prompts,
            Change::Resources => self.resources,
            Change::ResourceUpdated(uri) => self.resource_uris.iter().any(|u| u == uri),
        }
    }

    /// The honoured subset, as sent in the acknowledgement.
    pub(crate) fn to_value(&self) -> Value {
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

/// Everything [`Catalog::new`] is built from.
#[derive(Debug)]
pub(crate) struct CatalogParts {
    pub(crate) info: ServerInfo,
    pub(crate) tools: Vec<ToolSpec>,
    pub(crate) prompts: Vec<PromptSpec>,
    pub(crate) resources: Vec<ResourceSpec>,
    pub(crate) templates: Vec<TemplateSpec>,
    pub(crate) list_changed: ListChanged,
    pub(crate) logging: bool,
    pub(crate) listing: Listing,
}

impl Catalog {
    /// Builds the catalog; tool names are already checked unique.
    pub(crate) fn new(parts: CatalogParts) -> Self {
        let info = parts.info;
        let mut server_info = Map::new();
        server_info.insert("name".into(), json!(info.name));
        server_info.insert("version".into(), json!(info.version));
        if let Some(t) = &info.title {
            server_info.insert("title".into(), json!(t));
        }
        let tool_index = parts
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let server_info = Value::Object(server_info);
        let mut modern_result_tail = b",\"resultType\":\"complete\",\"_meta\":{".to_vec();
        serde_json::to_writer(&mut modern_result_tail, META_SERVER_INFO)
            .and_then(|()| {
                modern_result_tail.push(b':');
                serde_json::to_writer(&mut modern_result_tail, &server_info)
            })
            .expect("in-memory JSON serialization cannot fail");
        modern_result_tail.extend_from_slice(b"}}");
        Self {
            info,
            server_info,
            modern_result_tail,
            tools: parts.tools,
            tool_index,
            prompts: parts.prompts,
            resources: parts.resources,
            templates: parts.templates,
            list_changed: parts.list_changed,
            logging: parts.logging,
            listing: Listing {
                page_size: parts.listing.page_size.max(1),
                ..parts.listing
            },
        }
    }

    /// The closing members of a 2026-07-28 tool result: `resultType` and `_meta` with `serverInfo`.
    pub(crate) fn modern_result_tail(&self) -> &[u8] {
        &self.modern_result_tail
    }

    /// The tool at `index`.
    pub(crate) fn tool(&self, index: usize) -> &ToolSpec {
        &self.tools[index]
    }

    /// The index of the tool named `name`.
    pub(crate) fn tool_index(&self, name: &str) -> Option<usize> {
        self.tool_index.get(name).copied()
    }

    /// The name of the tool at `index`, for logs and metrics.
    pub(crate) fn tool_name(&self, index: usize) -> &str {
        &self.tools[index].name
    }

    /// The prompt at `index`.
    pub(crate) fn prompt(&self, index: usize) -> &PromptSpec {
        &self.prompts[index]
    }

    /// The resource at `index`.
    pub(crate) fn resource(&self, index: usize) -> &ResourceSpec {
        &self.resources[index]
    }

    /// The index of the prompt named `name`.
    pub(crate) fn prompt_index(&self, name: &str) -> Option<usize> {
        self.prompts.iter().position(|p| p.name == name)
    }

    /// The resource at `uri`, or the first template that matches it with its variables.
    pub(crate) fn find_resource(&self, uri: &str) -> Option<Found> {
        if let Some(i) = self.resources.iter().position(|r| r.uri == uri) {
            return Some(Found::Resource(i));
        }
        self.templates
            .iter()
            .enumerate()
            .find_map(|(i, t)| t.template.matches(uri).map(|vars| Found::Template(i, vars)))
    }

    pub(crate) fn has_tools(&self) -> bool {
        !self.tools.is_empty()
    }

    pub(crate) fn has_prompts(&self) -> bool {
        !self.prompts.is_empty()
    }

    pub(crate) fn has_resources(&self) -> bool {
        !self.resources.is_empty() || !self.templates.is_empty()
    }

    pub(crate) fn has_completions(&self) -> bool {
        self.prompts.iter().any(|p| p.completer.is_some())
            || self.templates.iter().any(|t| t.completer.is_some())
    }

    /// Some tool may run as a task: the `tasks/*` methods exist.
    pub(crate) fn has_task_tools(&self) -> bool {
        self.tools
            .iter()
            .any(|t| t.task_support != super::tasks::TaskSupport::Forbidden)
    }

    pub(crate) fn has_subscribable(&self) -> bool {
        self.resources.iter().any(|r| r.subscribable)
    }

    /// Whether `subscriptions/listen` has anything to deliver.
    pub(crate) fn has_listenable(&self) -> bool {
        let lc = self.list_changed;
        lc.tools || lc.prompts || lc.resources || self.has_subscribable()
    }

    /// The `logging` capability is offered.
    pub(crate) fn logging(&self) -> bool {
        self.logging
    }

    /// A subscribable resource with this URI exists.
    pub(crate) fn is_subscribable(&self, uri: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.uri == uri && r.subscribable)
    }

    /// Whether an initialize-era GET stream delivers `change` (subscriptions are the session's).
    pub(crate) fn advertises(&self, change: &Change) -> bool {
        match change {
            Change::Tools => self.list_changed.tools,
            Change::Prompts => self.list_changed.prompts,
            Change::Resources => self.list_changed.resources,
            Change::ResourceUpdated(_) => true,
        }
    }

    fn capabilities(&self) -> Value {
        let mut caps = Map::new();
        if self.has_tools() {
            caps.insert(
                "tools".into(),
                json!({"listChanged": self.list_changed.tools}),
            );
        }
        if self.has_prompts() {
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

    /// The InitializeResult for a negotiated `version`.
    pub(crate) fn initialize_result(&self, version: Version) -> Value {
        let mut result = Map::new();
        result.insert("protocolVersion".into(), json!(version.as_str()));
        let mut caps = self.capabilities();
        // 2025-11-25 experimental tasks: task-augmented tools/call, tasks/list and tasks/cancel.
        if version == Version::V2025_11_25 && self.has_task_tools() {
            caps["tasks"] = json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
        }
        result.insert("capabilities".into(), caps);
        result.insert("serverInfo".into(), self.server_info.clone());
        if let Some(i) = &self.info.instructions {
            result.insert("instructions".into(), json!(i));
        }
        Value::Object(result)
    }

    /// The `server/discover` result (2026-07-28). The tasks extension is advertised to a client
    /// that declares it (`tasks_extension`), when some tool may run as a task.
    pub(crate) fn discover(&self, tasks_extension: bool) -> Value {
        let mut m = Map::new();
        m.insert(
            "supportedVersions".into(),
            json!(Version::supported_strings()),
        );
        let mut caps = self.capabilities();
        if tasks_extension && self.has_task_tools() {
            caps["extensions"] = json!({ super::tasks::EXTENSION: {} });
        }
        m.insert("capabilities".into(), caps);
        if let Some(i) = &self.info.instructions {
            m.insert("instructions".into(), json!(i));
        }
        m.insert("ttlMs".into(), json!(self.listing.ttl_ms));
        m.insert("cacheScope".into(), json!("public"));
        Value::Object(m)
    }

    /// 2026-07-28 list results carry cache hints.
    fn with_cache_fields(&self, version: Version, mut page: Value, scope: &str) -> Value {
        if version.is_modern() {
            page["ttlMs"] = json!(self.listing.ttl_ms);
            page["cacheScope"] = json!(scope);
        }
        page
    }

    /// `tools/list`: only the tools the caller's scopes allow ("you cannot see what you cannot use").
    pub(crate) fn list_tools(
        &self,
        version: Version,
        principal: &Principal,
        params: &Map<String, Value>,
    ) -> Result<Value, ProtocolError> {
        let visible: Vec<&Value> = self
            .tools
            .iter()
            .filter(|t| t.scopes.iter().all(|s| principal.has_scope(s)))
            .map(|t| &t.definition)
            .collect();
        let page = self.page(params, &visible, "tools")?;
        // The list depends on the token's scopes, so shared caches must not serve it to others.
        Ok(self.with_cache_fields(version, page, "private"))
    }

    /// `prompts/list`.
    pub(crate) fn list_prompts(
        &self,
        version: Version,
        params: &Map<String, Value>,
    ) -> Result<Value, ProtocolError> {
        let all: Vec<&Value> = self.prompts.iter().map(|p| &p.definition).collect();
        let page = self.page(params, &all, "prompts")?;
        Ok(self.with_cache_fields(version, page, "public"))
    }

    /// `resources/list`.
    pub(crate) fn list_resources(
        &self,
        version: Version,
        params: &Map<String, Value>,
    ) -> Result<Value, ProtocolError> {
        let all: Vec<&Value> = self.resources.iter().map(|r| &r.definition).collect();
        let page = self.page(params, &all, "resources")?;
        Ok(self.with_cache_fields(version, page, "public"))
    }

    /// `resources/templates/list`.
    pub(crate) fn list_templates(
        &self,
        version: Version,
        params: &Map<String, Value>,
    ) -> Result<Value, ProtocolError> {
        let all: Vec<&Value> = self.templates.iter().map(|t| &t.definition).collect();
        let page = self.page(params, &all, "resourceTemplates")?;
        Ok(self.with_cache_fields(version, page, "public"))
    }

    /// One page of `items` under `key`, with `nextCursor` unless it is the last.
    fn page(
        &self,
        params: &Map<String, Value>,
        items: &[&Value],
        key: &str,
    ) -> Result<Value, ProtocolError> {
        let bad = |m: &str| ProtocolError::InvalidParams(m.to_owned(), None);
        let start = match params.get("cursor") {
            None | Some(Value::Null) => 0,
            Some(Value::String(c)) => {
                decode_cursor(c).ok_or_else(|| bad("cursor is not one this server issued"))?
            }
            Some(_) => return Err(bad("cursor must be a string")),
        };
        if start > items.len() {
            return Err(bad("cursor is out of range"));
        }
        let end = (start + self.listing.page_size).min(items.len());
        let mut m = Map::new();
        m.insert(
            key.into(),
            items[start..end].iter().map(|v| (*v).clone()).collect(),
        );
        if end < items.len() {
            m.insert("nextCursor".into(), json!(encode_cursor(end)));
        }
        Ok(Value::Object(m))
    }

    /// `completion/complete` for a prompt argument or a template variable.
    pub(crate) fn complete(&self, params: &Map<String, Value>) -> Result<Value, ProtocolError> {
        let bad = |m: &str| ProtocolError::InvalidParams(m.to_owned(), None);
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
                    .find(|p| p.name == name)
                    .ok_or_else(|| bad("unknown prompt"))?;
                prompt.completer.as_ref()
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("ref.uri must be a string"))?;
                let t = self
                    .templates
                    .iter()
                    .find(|t| t.template.source() == uri)
                    .ok_or_else(|| bad("unknown resource template"))?;
                t.completer.as_ref()
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

    /// What a `subscriptions/listen` stream delivers: only what this server can send; the
    /// acknowledgement says which.
    pub(crate) fn listen_filter(&self, params: &Map<String, Value>) -> ListenFilter {
        let n = params.get("notifications").and_then(Value::as_object);
        let flag = |k: &str| {
            n.and_then(|n| n.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
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
                        .filter(|u| self.is_subscribable(u))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Adds the 2026-07-28 per-result fields; initialize-era results are left as they are.
    pub(crate) fn decorate(&self, version: Version, mut result: Value) -> Value {
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
}

/// A `resources/read` target.
#[derive(Debug)]
pub(crate) enum Found {
    /// A fixed resource.
    Resource(usize),
    /// A template, with the URI's variables.
    Template(usize, Map<String, Value>),
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
