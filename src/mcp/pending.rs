//! A handler run the shell performs (tool call, prompt, resource read), and how its output becomes a result.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::context::{LogLevel, RequestContext};
use super::mrtr::InputRequired;
use super::prompt::{Prompt, PromptResult};
use super::resource::{ReadResult, Resource, ResourceTemplate};
use super::tool::{CallToolResult, HandlerError, Tool, ToolError, ToolResult};
use super::{schema, Core, RequestError, RequestFacts};
use crate::log;

/// Which handler runs.
#[derive(Debug, Clone)]
pub enum Target {
    /// `tools/call`.
    Tool(Arc<Tool>, Map<String, Value>),
    /// `prompts/get`.
    Prompt(Arc<Prompt>, Map<String, Value>),
    /// `resources/read` of a fixed resource.
    Resource(Arc<Resource>),
    /// `resources/read` through a template, with its variables.
    Template(Arc<ResourceTemplate>, String, Map<String, Value>),
}

/// What a handler produced.
#[derive(Debug)]
pub enum HandlerOutput {
    /// From a tool.
    Tool(ToolResult),
    /// From a prompt.
    Prompt(PromptResult),
    /// From a resource reader.
    Read(ReadResult),
}

/// A handler run the core decided on; the shell starts it and hands the output to [`Core::finish`].
#[derive(Debug)]
pub struct Pending {
    /// The handler.
    pub target: Target,
    pub(super) method: &'static str,
    pub(super) digest: [u8; 32],
    pub(super) principal_key: String,
    /// `_meta.progressToken`, echoed with its JSON type.
    pub progress_token: Option<Value>,
    /// 2026-07-28: `_meta` log level for this request.
    pub log_level: Option<LogLevel>,
    /// 2026-07-28: the verified, unsealed state of the previous round.
    pub request_state: Option<String>,
    /// 2026-07-28: the client's answers to the previous round.
    pub input_responses: Option<Map<String, Value>>,
}

impl Pending {
    /// The tool, when this is a tool call.
    pub fn tool(&self) -> Option<&Arc<Tool>> {
        match &self.target {
            Target::Tool(t, _) => Some(t),
            _ => None,
        }
    }

    /// A short name for logs: the tool, prompt or URI.
    pub fn label(&self) -> String {
        match &self.target {
            Target::Tool(t, _) => t.name().to_owned(),
            Target::Prompt(p, _) => p.name().to_owned(),
            Target::Resource(r) => r.uri().to_owned(),
            Target::Template(_, uri, _) => uri.clone(),
        }
    }

    /// Starts the handler with `ctx`; the shell runs the future on its own task.
    pub fn start(
        &self,
        ctx: RequestContext,
    ) -> Pin<Box<dyn Future<Output = HandlerOutput> + Send>> {
        let ctx = ctx.with_round(self.input_responses.clone(), self.request_state.clone());
        match self.target.clone() {
            Target::Tool(t, args) => {
                Box::pin(async move { HandlerOutput::Tool(t.call(ctx, args).await) })
            }
            Target::Prompt(p, args) => {
                Box::pin(async move { HandlerOutput::Prompt(p.get(ctx, args).await) })
            }
            Target::Resource(r) => Box::pin(async move { HandlerOutput::Read(r.read(ctx).await) }),
            Target::Template(t, uri, vars) => {
                Box::pin(async move { HandlerOutput::Read(t.read(ctx, uri, vars).await) })
            }
        }
    }

    /// The undecorated result for `output`. `Err(())` is a handler panic.
    pub(super) fn result(
        &self,
        core: &Core,
        facts: RequestFacts<'_>,
        output: Result<HandlerOutput, ()>,
    ) -> Result<Value, RequestError> {
        let output = output.map_err(|()| RequestError::Internal)?;
        let version = facts.version;
        match (output, &self.target) {
            (HandlerOutput::Tool(r), Target::Tool(tool, _)) => {
                let result = match r {
                    Ok(result) => check_output(tool, result),
                    Err(ToolError::InputRequired(ir)) => {
                        return self.input_required(core, facts, ir)
                    }
                    // At 2026-07-28 this is a protocol error (-32021); earlier it is a tool error.
                    Err(ToolError::MissingCapability(caps)) if version.is_modern() => {
                        return Err(RequestError::MissingCapability(caps))
                    }
                    Err(e) => CallToolResult::error(e.to_string()),
                };
                Ok(result.to_value(version.allows_non_object_structured_content()))
            }
            (HandlerOutput::Prompt(r), Target::Prompt(prompt, _)) => match r {
                Ok(messages) => {
                    let mut m = Map::new();
                    if let Some(d) = prompt.description_text() {
                        m.insert("description".into(), json!(d));
                    }
                    m.insert("messages".into(), Value::Array(messages));
                    Ok(Value::Object(m))
                }
                Err(e) => self.handler_error(core, facts, e),
            },
            (HandlerOutput::Read(r), Target::Resource(_) | Target::Template(..)) => match r {
                Ok(contents) => {
                    let mut v = json!({ "contents": contents });
                    if version.is_modern() {
                        v["ttlMs"] = json!(0);
                        v["cacheScope"] = json!("private");
                    }
                    Ok(v)
                }
                Err(e) => self.handler_error(core, facts, e),
            },
            _ => Err(RequestError::Internal),
        }
    }

    fn handler_error(
        &self,
        core: &Core,
        facts: RequestFacts<'_>,
        e: HandlerError,
    ) -> Result<Value, RequestError> {
        match e {
            HandlerError::InvalidParams(m) => Err(RequestError::InvalidParams(m, None)),
            HandlerError::NotFound(uri) => Err(RequestError::ResourceNotFound(uri)),
            HandlerError::Failed(m) => {
                log::error(format_args!("{} {} failed: {m}", self.method, self.label()));
                Err(RequestError::Internal)
            }
            HandlerError::InputRequired(ir) => self.input_required(core, facts, ir),
        }
    }

    /// An `input_required` result, after checking the client can answer it and sealing the state.
    fn input_required(
        &self,
        core: &Core,
        facts: RequestFacts<'_>,
        ir: InputRequired,
    ) -> Result<Value, RequestError> {
        if !facts.version.is_modern() {
            log::error(format_args!(
                "{} {} returned input_required, which only 2026-07-28 supports",
                self.method,
                self.label()
            ));
            return Err(RequestError::Internal);
        }
        let missing = ir.missing_capabilities(facts.client_capabilities);
        if !missing.is_empty() {
            return Err(RequestError::MissingCapability(Value::Object(missing)));
        }
        let mut m = Map::new();
        m.insert("resultType".into(), json!("input_required"));
        if !ir.input_requests.is_empty() {
            m.insert("inputRequests".into(), Value::Object(ir.input_requests));
        }
        if let Some(state) = ir.request_state {
            let sealed = core.sealer().seal(
                &self.principal_key,
                self.method,
                &self.digest,
                &state,
                facts.now,
            );
            m.insert("requestState".into(), json!(sealed));
        }
        Ok(Value::Object(m))
    }
}

/// Holds a tool to its output schema: structured content must be present and conform.
fn check_output(tool: &Tool, result: CallToolResult) -> CallToolResult {
    let (Some(schema), false) = (tool.output(), result.is_error) else {
        return result;
    };
    match &result.structured_content {
        Some(out) => match schema::validate(schema, out) {
            Ok(()) => result,
            Err(why) => {
                log::error(format_args!(
                    "tool {} broke its output schema: {why}",
                    tool.name()
                ));
                CallToolResult::error(
                    "the tool produced output that does not match its output schema",
                )
            }
        },
        None => {
            log::error(format_args!(
                "tool {} has an output schema but returned no structured content",
                tool.name()
            ));
            CallToolResult::error("the tool produced no structured output")
        }
    }
}
