//! Method dispatch: what each MCP method decides, once the era rules have passed; pure.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::catalog::Found;
use super::error::{MetaError, ProtocolError};
use super::headers;
use super::level::LogLevel;
use super::message::{self, Id};
use super::mrtr::params_digest;
use super::results;
use super::validate;
use super::version::Version;
use super::{
    Core, Decision, Facts, Listen, Reply, Run, SessionUpdate, SessionView, Target, META_LOG_LEVEL,
    META_SUBSCRIPTION_ID,
};

/// The revision a request is served at and what the client declared for it.
#[derive(Debug)]
pub(super) struct Served<'a> {
    /// The revision.
    pub(super) version: Version,
    /// From initialize, or this request's `_meta`.
    pub(super) client_capabilities: Arc<Value>,
    /// Initialize era: the level from `logging/setLevel`.
    pub(super) session_log_level: Option<LogLevel>,
    /// 2026-07-28: the headers `Mcp-Param-*` are checked in (tool arguments mirrored in headers).
    pub(super) param_headers: Option<&'a HeaderMap>,
    /// Who and when.
    pub(super) facts: Facts<'a>,
}

impl<'a> Served<'a> {
    /// A request inside an initialize-era session.
    pub(super) fn session(view: &SessionView, facts: Facts<'a>) -> Self {
        Self {
            version: view.version,
            client_capabilities: view.client_capabilities.clone(),
            session_log_level: view.log_level,
            param_headers: None,
            facts,
        }
    }

    fn modern(&self) -> bool {
        self.version.is_modern()
    }
}

/// A required string member of `params`.
fn string_param<'p>(params: &'p Map<String, Value>, name: &str) -> Result<&'p str, ProtocolError> {
    params.get(name).and_then(Value::as_str).ok_or_else(|| {
        ProtocolError::InvalidParams(format!("params.{name} must be a string"), None)
    })
}

/// `params.arguments` is absent, null or an object.
fn check_arguments(params: &Map<String, Value>) -> Result<(), ProtocolError> {
    match params.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(_) => Err(ProtocolError::InvalidParams(
            "params.arguments must be an object".into(),
            None,
        )),
    }
}

/// A successful result, decorated for the revision and serialized once.
fn reply(core: &Core, served: &Served<'_>, id: &Id, result: Value) -> Reply {
    let result = core.catalog().decorate(served.version, result);
    Reply::ok(message::result(id, &result))
}

/// Decides one request.
pub(super) fn request(
    core: &Core,
    served: &Served<'_>,
    id: Id,
    method: String,
    params: Map<String, Value>,
) -> Decision {
    match decide(core, served, &id, &method, params) {
        Ok(d) => d,
        Err(e) => Decision::Reply(e.reply(served.modern(), Some(&id))),
    }
}

fn decide(
    core: &Core,
    served: &Served<'_>,
    id: &Id,
    method: &str,
    params: Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let catalog = core.catalog();
    let modern = served.modern();
    let version = served.version;
    let result = match method {
        "ping" if !modern => json!({}),
        "logging/setLevel" if !modern && catalog.logging() => {
            let level = params
                .get("level")
                .and_then(Value::as_str)
                .and_then(LogLevel::parse)
                .ok_or_else(|| {
                    ProtocolError::InvalidParams("level must be a valid log level".into(), None)
                })?;
            return Ok(Decision::Update(
                SessionUpdate::LogLevel(level),
                reply(core, served, id, json!({})),
            ));
        }
        "server/discover" if modern => catalog.discover(super::tasks::declares_extension(
            &served.client_capabilities,
        )),
        "tools/list" if catalog.has_tools() => {
            catalog.list_tools(version, served.facts.principal, &params)?
        }
        "tools/call" if catalog.has_tools() => return call_tool(core, served, id, params),
        "prompts/list" if catalog.has_prompts() => catalog.list_prompts(version, &params)?,
        "prompts/get" if catalog.has_prompts() => return get_prompt(core, served, id, params),
        "resources/list" if catalog.has_resources() => catalog.list_resources(version, &params)?,
        "resources/templates/list" if catalog.has_resources() => {
            catalog.list_templates(version, &params)?
        }
        "resources/read" if catalog.has_resources() => {
            return read_resource(core, served, id, params)
        }
        "resources/subscribe" | "resources/unsubscribe"
            if !modern && catalog.has_subscribable() =>
        {
            let uri = string_param(&params, "uri")?;
            if !catalog.is_subscribable(uri) {
                return Err(ProtocolError::ResourceNotFound(uri.to_owned()));
            }
            let update = SessionUpdate::Subscribe(uri.to_owned(), method == "resources/subscribe");
            return Ok(Decision::Update(update, reply(core, served, id, json!({}))));
        }
        "completion/complete" if catalog.has_completions() => catalog.complete(&params)?,
        "subscriptions/listen" if modern && catalog.has_listenable() => {
            let filter = catalog.listen_filter(&params);
            let ack = message::notification(
                "notifications/subscriptions/acknowledged",
                &json!({"notifications": filter.to_value(), "_meta": {META_SUBSCRIPTION_ID: id}}),
            );
            return Ok(Decision::Listen(Listen {
                id: id.clone(),
                filter,
                ack,
            }));
        }
        "tasks/get" | "tasks/update" | "tasks/cancel" | "tasks/result" | "tasks/list" => {
            return super::tasks::request(core, served, id, method, &params)
        }
        _ => return Err(ProtocolError::MethodNotFound(method.to_owned())),
    };
    Ok(Decision::Reply(reply(core, served, id, result)))
}

/// Initialize era: negotiates the revision; the shell creates the session.
pub(super) fn initialize(core: &Core, id: &Id, params: Map<String, Value>) -> Decision {
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let version = Version::negotiate(requested);
    let mut params = params;
    let client_capabilities = params.remove("capabilities").unwrap_or_else(|| json!({}));
    let result = core.catalog().initialize_result(version);
    let mut reply = Reply::ok(message::result(id, &result));
    reply.detail = Some(format!("version={version}"));
    Decision::Initialize {
        id: id.clone(),
        version,
        client_capabilities,
        reply,
    }
}

/// The request a `notifications/cancelled` names; other notifications need no action.
pub(super) fn notification(method: &str, params: &Map<String, Value>) -> Option<Id> {
    match method {
        "notifications/cancelled" => params.get("requestId").and_then(Id::from_value),
        _ => None,
    }
}

fn call_tool(
    core: &Core,
    served: &Served<'_>,
    id: &Id,
    params: Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let name = string_param(&params, "name")?;
    let index = core
        .catalog()
        .tool_index(name)
        .ok_or_else(|| ProtocolError::InvalidParams(format!("unknown tool: {name}"), None))?;
    // From here on the reply names the tool it answers (metrics, audit).
    let named = |mut reply: Reply| {
        reply.tool = Some(index);
        Decision::Reply(reply)
    };
    match tool_decision(core, served, id, index, params) {
        Ok(Decision::Reply(r)) => Ok(named(r)),
        Ok(d) => Ok(d),
        Err(e) => Ok(named(e.reply(served.modern(), Some(id)))),
    }
}

fn tool_decision(
    core: &Core,
    served: &Served<'_>,
    id: &Id,
    index: usize,
    params: Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let tool = core.catalog().tool(index);
    if let Some(headers) = served.param_headers {
        // No arguments means none is present: a stray Mcp-Param header is then a mismatch.
        // Non-object arguments are refused just below, as at any revision.
        static NO_ARGS: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => Some(NO_ARGS.get_or_init(Map::new)),
            Some(v) => v.as_object(),
        };
        if let Some(args) = args {
            headers::check_param_headers(headers, &tool.param_headers, args)
                .map_err(ProtocolError::HeaderMismatch)?;
        }
    }
    check_arguments(&params)?;
    // Authorization before anything about the arguments is revealed: scopes, then step-up.
    if !tool
        .scopes
        .iter()
        .all(|s| served.facts.principal.has_scope(s))
    {
        return Ok(Decision::InsufficientScope {
            tool: index,
            scopes: tool.scopes.clone(),
        });
    }
    if let Some(policy) = &tool.step_up {
        if let Err(denial) = policy.evaluate(&served.facts.principal.claims, served.facts.now) {
            return Ok(Decision::StepUp {
                tool: index,
                denial,
            });
        }
    }
    let args = params.get("arguments").unwrap_or(&Value::Null);
    if let Err(why) = validate::arguments(tool, args) {
        // Input-validation failures are tool errors the model can correct (SEP-1303), not protocol errors.
        let result =
            results::tool_error(core, served.version, &format!("Invalid arguments: {why}"));
        let mut reply = Reply::ok(message::result_with(id, |out| {
            out.extend_from_slice(&result)
        }));
        reply.ending = super::Ending::ToolError;
        return Ok(Decision::Reply(reply));
    }
    let plan = super::tasks::plan(
        served.version,
        tool.task_support,
        &served.client_capabilities,
        &params,
        &tool.name,
    )?;
    let mut decision = run(core, served, id.clone(), Target::Tool(index), params)?;
    if let Decision::Run(r) = &mut decision {
        r.task = plan;
    }
    Ok(decision)
}

fn get_prompt(
    core: &Core,
    served: &Served<'_>,
    id: &Id,
    params: Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let name = string_param(&params, "name")?;
    let index = core
        .catalog()
        .prompt_index(name)
        .ok_or_else(|| ProtocolError::InvalidParams(format!("unknown prompt: {name}"), None))?;
    check_arguments(&params)?;
    let empty = Map::new();
    let args = params
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    validate::prompt_arguments(core.catalog().prompt(index), args)
        .map_err(|why| ProtocolError::InvalidParams(why.to_string(), None))?;
    run(core, served, id.clone(), Target::Prompt(index), params)
}

fn read_resource(
    core: &Core,
    served: &Served<'_>,
    id: &Id,
    params: Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let uri = string_param(&params, "uri")?;
    let target = match core.catalog().find_resource(uri) {
        Some(Found::Resource(i)) => Target::Resource(i),
        Some(Found::Template(i, vars)) => Target::Template(i, uri.to_owned(), vars),
        None => return Err(ProtocolError::ResourceNotFound(uri.to_owned())),
    };
    run(core, served, id.clone(), target, params)
}

/// Prepares a handler run; opens a returned `requestState` first (2026-07-28).
fn run(
    core: &Core,
    served: &Served<'_>,
    id: Id,
    target: Target,
    mut params: Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let modern = served.modern();
    let meta = params.get("_meta").and_then(Value::as_object);
    let progress_token = meta
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.as_i64().is_some() || t.as_u64().is_some())
        .cloned();
    let log_level = match meta.and_then(|m| m.get(META_LOG_LEVEL)) {
        Some(v) if modern => Some(v.as_str().and_then(LogLevel::parse).ok_or(
            ProtocolError::InvalidParams(MetaError::BadLogLevel.to_string(), None),
        )?)
        // Without the logging capability a valid level is accepted and ignored: nothing is sent.
        .filter(|_| core.catalog().logging()),
        _ => served.session_log_level,
    };
    let mut digest = None;
    let request_state = match params.get("requestState") {
        Some(Value::String(sealed)) if modern => {
            let d = params_digest(&params);
            digest = Some(d);
            let principal = results::principal_key(served.facts.principal);
            let method = match &target {
                Target::Tool(_) => "tools/call",
                Target::Prompt(_) => "prompts/get",
                Target::Resource(_) | Target::Template(..) => "resources/read",
            };
            Some(
                core.sealer
                    .open(&principal, method, &d, sealed, served.facts.now)
                    .map_err(ProtocolError::BadRequestState)?,
            )
        }
        Some(Value::String(_)) | None => None,
        Some(_) => {
            return Err(ProtocolError::InvalidParams(
                "requestState must be a string".into(),
                None,
            ))
        }
    };
    let input_responses = match params.remove("inputResponses") {
        None => None,
        Some(Value::Object(m)) if m.values().all(Value::is_object) => modern.then_some(m),
        Some(_) => {
            return Err(ProtocolError::InvalidParams(
                "inputResponses must be an object whose values are result objects".into(),
                None,
            ))
        }
    };
    Ok(Decision::Run(Box::new(Run {
        id,
        version: served.version,
        target,
        params,
        client_capabilities: served.client_capabilities.clone(),
        progress_token,
        log_level,
        request_state,
        input_responses,
        digest,
        task: super::tasks::TaskPlan::None,
    })))
}
