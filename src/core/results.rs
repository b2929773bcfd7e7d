//! How a finished handler's output becomes the reply: tool results, prompt messages, resource contents, input_required; pure.

use serde_json::{json, Map, Value};

use super::error::ProtocolError;
use super::message;
use super::mrtr::{params_digest, InputRequired};
use super::version::Version;
use super::{Core, Facts, Reply, Run, Target};
use crate::auth::Principal;
use crate::tool::{CallToolResult, HandlerError, ToolError, ToolResult};

/// What a handler produced.
#[derive(Debug)]
pub(crate) enum HandlerOutput {
    /// From a tool.
    Tool(ToolResult),
    /// From a prompt: the `messages`.
    Prompt(Result<Vec<Value>, HandlerError>),
    /// From a resource reader: the `contents`.
    Read(Result<Vec<Value>, HandlerError>),
    /// The handler panicked.
    Panicked,
}

/// The principal as bound into sealed state.
pub(crate) fn principal_key(p: &Principal) -> String {
    format!("{}\u{0}{}", p.issuer, p.subject.as_deref().unwrap_or(""))
}

fn push_json(out: &mut Vec<u8>, v: &impl serde::Serialize) {
    serde_json::to_writer(out, v).expect("in-memory JSON serialization cannot fail");
}

/// Writes a CallToolResult straight into `out`, with the 2026-07-28 fields when `version` needs them.
fn write_tool_result(core: &Core, version: Version, r: &CallToolResult, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"content\":");
    push_json(out, &r.content);
    out.extend_from_slice(if r.is_error {
        b",\"isError\":true"
    } else {
        b",\"isError\":false"
    });
    if let Some(s) = &r.structured_content {
        // Clients before 2026-07-28 accept only objects here.
        if s.is_object() || version.allows_non_object_structured_content() {
            out.extend_from_slice(b",\"structuredContent\":");
            push_json(out, s);
        }
    }
    if version.is_modern() {
        out.extend_from_slice(core.catalog().modern_result_tail());
    } else {
        out.push(b'}');
    }
}

/// An `isError` tool result carrying `text`, serialized for `version`.
pub(crate) fn tool_error(core: &Core, version: Version, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + text.len());
    write_tool_result(core, version, &CallToolResult::error(text), &mut out);
    out
}

pub(super) fn finish(core: &Core, run: &Run, output: HandlerOutput, facts: Facts<'_>) -> Reply {
    let modern = run.version.is_modern();
    match shape(core, run, output, facts) {
        Ok(Shaped::Tool(result, detail)) => {
            let mut reply = Reply::ok(message::result_with(&run.id, |out| {
                write_tool_result(core, run.version, &result, out)
            }));
            reply.detail = detail;
            if result.is_error {
                reply.ending = super::Ending::ToolError;
            }
            reply
        }
        Ok(Shaped::Value(v)) => {
            let v = core.catalog().decorate(run.version, v);
            Reply::ok(message::result(&run.id, &v))
        }
        Err((e, detail)) => {
            let mut reply = e.reply(modern, Some(&run.id));
            if detail.is_some() {
                reply.detail = detail;
            }
            reply
        }
    }
}

enum Shaped {
    Tool(CallToolResult, Option<String>),
    Value(Value),
}

type Failed = (ProtocolError, Option<String>);

fn shape(
    core: &Core,
    run: &Run,
    output: HandlerOutput,
    facts: Facts<'_>,
) -> Result<Shaped, Failed> {
    let version = run.version;
    match (output, &run.target) {
        (HandlerOutput::Panicked, _) => Err((
            ProtocolError::Internal,
            Some(format!(
                "{} handler panicked; answered -32603",
                run.method()
            )),
        )),
        (HandlerOutput::Tool(r), Target::Tool(index)) => match r {
            Ok(result) => Ok(check_output(core, *index, result)),
            Err(ToolError::InputRequired(ir)) => input_required(core, run, facts, ir),
            // At 2026-07-28 this is a protocol error (-32021); earlier it is a tool error.
            Err(ToolError::MissingCapability(caps)) if version.is_modern() => {
                Err((ProtocolError::MissingCapability(caps), None))
            }
            Err(e) => Ok(Shaped::Tool(CallToolResult::error(e.to_string()), None)),
        },
        (HandlerOutput::Prompt(r), Target::Prompt(index)) => match r {
            Ok(messages) => {
                let mut m = Map::new();
                if let Some(d) = &core.catalog().prompt(*index).description {
                    m.insert("description".into(), json!(d));
                }
                m.insert("messages".into(), Value::Array(messages));
                Ok(Shaped::Value(Value::Object(m)))
            }
            Err(e) => handler_error(core, run, facts, e),
        },
        (HandlerOutput::Read(r), Target::Resource(_) | Target::Template(..)) => match r {
            Ok(contents) => {
                let mut v = json!({ "contents": contents });
                if version.is_modern() {
                    v["ttlMs"] = json!(0);
                    v["cacheScope"] = json!("private");
                }
                Ok(Shaped::Value(v))
            }
            Err(e) => handler_error(core, run, facts, e),
        },
        _ => Err((
            ProtocolError::Internal,
            Some("handler output does not match its target".into()),
        )),
    }
}

fn handler_error(
    core: &Core,
    run: &Run,
    facts: Facts<'_>,
    e: HandlerError,
) -> Result<Shaped, Failed> {
    match e {
        HandlerError::InvalidParams(m) => Err((ProtocolError::InvalidParams(m, None), None)),
        HandlerError::NotFound(uri) => Err((ProtocolError::ResourceNotFound(uri), None)),
        HandlerError::Failed(m) => Err((
            ProtocolError::Internal,
            Some(format!("{} failed: {m}", run.method())),
        )),
        HandlerError::InputRequired(ir) => input_required(core, run, facts, ir),
    }
}

/// Holds a tool to its output schema: structured content must be present and conform.
fn check_output(core: &Core, index: usize, result: CallToolResult) -> Shaped {
    let tool = core.catalog().tool(index);
    let (Some(schema), false) = (&tool.output_schema, result.is_error) else {
        return Shaped::Tool(result, None);
    };
    match &result.structured_content {
        Some(out) => match super::validate::validate(schema, out) {
            Ok(()) => Shaped::Tool(result, None),
            Err(why) => Shaped::Tool(
                CallToolResult::error(
                    "the tool produced output that does not match its output schema",
                ),
                Some(format!("tool {} broke its output schema: {why}", tool.name)),
            ),
        },
        None => Shaped::Tool(
            CallToolResult::error("the tool produced no structured output"),
            Some(format!(
                "tool {} has an output schema but returned no structured content",
                tool.name
            )),
        ),
    }
}

/// An `input_required` result, after checking the client can answer it and sealing the state.
fn input_required(
    core: &Core,
    run: &Run,
    facts: Facts<'_>,
    ir: InputRequired,
) -> Result<Shaped, Failed> {
    if !run.version.is_modern() {
        return Err((
            ProtocolError::Internal,
            Some(format!(
                "{} returned input_required, which only 2026-07-28 supports",
                run.method()
            )),
        ));
    }
    let missing = ir.missing_capabilities(&run.client_capabilities);
    if !missing.is_empty() {
        return Err((
            ProtocolError::MissingCapability(Value::Object(missing)),
            None,
        ));
    }
    let mut m = Map::new();
    m.insert("resultType".into(), json!("input_required"));
    if !ir.input_requests.is_empty() {
        m.insert("inputRequests".into(), Value::Object(ir.input_requests));
    }
    if let Some(state) = ir.request_state {
        // The digest is computed only now that state is issued (or was, when state came in).
        let digest = run.digest.unwrap_or_else(|| params_digest(&run.params));
        let sealed = core.sealer.seal(
            &principal_key(facts.principal),
            run.method(),
            &digest,
            &state,
            facts.now,
        );
        m.insert("requestState".into(), json!(sealed));
    }
    Ok(Shaped::Value(Value::Object(m)))
}
