//! The fixture server for the official MCP conformance suite (`tests/conformance/run.sh` runs it).
//!
//! Built only from the public library API, with authorization switched off (the suite cannot send
//! a token; `dangerously_disable_auth` logs a warning). It registers every fixture the suite calls,
//! under the exact names the suite uses (`shared/docs/conformance.md` §5 and §8.4): tools, resources,
//! a template, prompts, completions, change triggers, server-to-client requests, multi-round-trip
//! tools, the stream-resumption tool, and the tasks fixtures (`greet`, `slow_compute`,
//! `confirm_delete`, `multi_input`, `failing_job`, `protocol_error_job`, `test_tool_with_task`).
//!
//! ```text
//! PORT=0 HOST=127.0.0.1 cargo run --example conformance
//! ```
//!
//! `PORT` (default 3000; 0 picks a free port) and `HOST` (default 127.0.0.1) work as they do for
//! the binary. The first line on stdout is `listening on http://HOST:PORT/mcp`; scripts wait for it.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use vouch_mcp::{
    CallToolResult, ListChanged, LogLevel, Notifier, RequestContext, Schema, ServerBuilder, Tool,
    ToolError, ToolResult,
};

/// The suite's fixtures spell their schemas out exactly, and `tools/list` must return them
/// unchanged, so they are given as JSON here.
trait JsonSchemas {
    fn input_schema(self, schema: Value) -> Self;
}

impl JsonSchemas for Tool {
    fn input_schema(self, schema: Value) -> Self {
        self.input(Schema::from_json(schema))
    }
}

/// A 1x1 PNG (the reference servers' `TEST_IMAGE_BASE64`).
const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// The gap between the log and progress messages of the streaming fixtures.
const STEP: Duration = Duration::from_millis(50);

fn main() -> std::process::ExitCode {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = match std::env::var("PORT").map(|p| p.parse()) {
        Err(_) => 3000,
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("conformance: PORT: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    runtime.block_on(run(host, port))
}

/// `MCP_REDIS_URL` and `MCP_REDIS_PREFIX`, as the binary reads them: several replicas of this
/// example behind a load balancer serve one deployment (needs `--features redis`).
async fn shared(builder: ServerBuilder) -> Result<ServerBuilder, std::process::ExitCode> {
    let Some(url) = std::env::var("MCP_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return Ok(builder);
    };
    #[cfg(feature = "redis")]
    {
        use vouch_mcp::redis::{RedisBackend, RedisConfig, DEFAULT_PREFIX};
        let prefix = std::env::var("MCP_REDIS_PREFIX").unwrap_or_else(|_| DEFAULT_PREFIX.into());
        match RedisBackend::connect(RedisConfig::new(url).prefix(prefix)).await {
            Ok(backend) => Ok(builder.redis(backend)),
            Err(e) => {
                eprintln!("conformance: MCP_REDIS_URL: {e}");
                Err(std::process::ExitCode::FAILURE)
            }
        }
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = (url, builder);
        eprintln!("conformance: MCP_REDIS_URL needs --features redis");
        Err(std::process::ExitCode::from(2))
    }
}

async fn run(host: String, port: u16) -> std::process::ExitCode {
    let listener = match TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("conformance: cannot bind {host}:{port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map_or(port, |a| a.port());
    // The suite only accepts loopback URLs (dns-rebinding-protection), and our Host check allows
    // every loopback name, so the resource URL may name 127.0.0.1 whatever HOST is.
    let url = format!("http://127.0.0.1:{port}/mcp");
    let builder = fixtures(ServerBuilder::new(
        "vouch-mcp-conformance",
        env!("CARGO_PKG_VERSION"),
        &url,
    ))
    .dangerously_disable_auth()
    .logging()
    // Sessions the suite never deletes (0.1.16 sends no DELETE) must not pile up.
    .session_idle_timeout(Duration::from_secs(120));
    // `MCP_TASK_LEASE_SECS`, as the binary reads it: the cluster harness shortens the lease to
    // see a task whose replica died fail quickly.
    let builder = match std::env::var("MCP_TASK_LEASE_SECS").map(|s| s.parse::<u64>()) {
        Err(_) => builder,
        Ok(Ok(secs)) if secs > 0 => builder.task_lease(Duration::from_secs(secs)),
        Ok(_) => {
            eprintln!("conformance: MCP_TASK_LEASE_SECS must be a positive number of seconds");
            return std::process::ExitCode::from(2);
        }
    };
    let builder = match shared(builder).await {
        Ok(b) => b,
        Err(code) => return code,
    };
    let server = match builder.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conformance: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on http://{host}:{port}/mcp");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler installs");
        tokio::select! {
            _ = shutdown => {}
            _ = term.recv() => {}
        }
    };
    match server.serve(listener, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Every fixture the suite calls.
fn fixtures(b: ServerBuilder) -> ServerBuilder {
    let b = b
        .tool(simple_text())
        .tool(image_content())
        .tool(audio_content())
        .tool(embedded_resource())
        .tool(multiple_content_types())
        .tool(tool_with_logging())
        .tool(tool_with_progress())
        .tool(error_handling())
        .tool(json_schema_2020_12_tool())
        .tool(x_mcp_header())
        .tool(logging_tool())
        .tool(streaming_elicitation());

    let notifier = b.notifier();
    let b = b
        .tool(sampling())
        .tool(elicitation())
        .tool(elicitation_sep1034_defaults())
        .tool(elicitation_sep1330_enums())
        .tool(missing_capability())
        .tool(reconnection())
        .tool(trigger_change(
            "test_trigger_tool_change",
            notifier.clone(),
            Notifier::tools_changed,
        ))
        .tool(trigger_change(
            "test_trigger_prompt_change",
            notifier.clone(),
            Notifier::prompts_changed,
        ))
        .tool(trigger_resource_update(notifier))
        .list_changed(ListChanged {
            tools: true,
            prompts: true,
            resources: false,
        });
    let b = mrtr::tools().into_iter().fold(b, ServerBuilder::tool);
    let b = tasks::tools().into_iter().fold(b, ServerBuilder::tool);
    let b = resources::all(b);
    prompts::all(b)
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn image() -> Value {
    json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"})
}

fn content(blocks: Vec<Value>) -> CallToolResult {
    CallToolResult {
        content: blocks,
        structured_content: None,
        is_error: false,
    }
}

/// An object schema with no properties (the suite calls these without arguments).
fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

/// A 44-byte WAV header plus one silent 16-bit mono sample at 8 kHz.
fn wav_base64() -> String {
    let data: [u8; 2] = [0, 0];
    let mut w = Vec::with_capacity(46);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    w.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    w.extend_from_slice(&2u16.to_le_bytes()); // block align
    w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    STANDARD.encode(w)
}

fn simple_text() -> Tool {
    Tool::new(
        "test_simple_text",
        "Tests simple text content response",
        |_ctx: RequestContext, _args: Map<String, Value>| async {
            Ok(CallToolResult::text(
                "This is a simple text response for testing.",
            ))
        },
    )
    .input_schema(no_args())
}

fn image_content() -> Tool {
    Tool::new(
        "test_image_content",
        "Tests image content response",
        |_ctx: RequestContext, _args: Map<String, Value>| async { Ok(content(vec![image()])) },
    )
    .input_schema(no_args())
}

fn audio_content() -> Tool {
    Tool::new(
        "test_audio_content",
        "Tests audio content response",
        |_ctx: RequestContext, _args: Map<String, Value>| async {
            Ok(content(vec![
                json!({"type": "audio", "data": wav_base64(), "mimeType": "audio/wav"}),
            ]))
        },
    )
    .input_schema(no_args())
}

fn embedded_resource() -> Tool {
    Tool::new(
        "test_embedded_resource",
        "Tests embedded resource content response",
        |_ctx: RequestContext, _args: Map<String, Value>| async {
            Ok(content(vec![json!({
                "type": "resource",
                "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content."
                }
            })]))
        },
    )
    .input_schema(no_args())
}

fn multiple_content_types() -> Tool {
    Tool::new(
        "test_multiple_content_types",
        "Tests response with multiple content types (text, image, resource)",
        |_ctx: RequestContext, _args: Map<String, Value>| async {
            Ok(content(vec![
                text("Multiple content types test:"),
                image(),
                json!({
                    "type": "resource",
                    "resource": {
                        "uri": "test://mixed-content-resource",
                        "mimeType": "application/json",
                        "text": "{\"test\":\"data\",\"value\":123}"
                    }
                }),
            ]))
        },
    )
    .input_schema(no_args())
}

async fn with_logging(ctx: RequestContext, _args: Map<String, Value>) -> ToolResult {
    let steps = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, step) in steps.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.log(LogLevel::Info, None, json!(step)).await;
    }
    Ok(CallToolResult::text(
        "Tool with logging executed successfully",
    ))
}

fn tool_with_logging() -> Tool {
    Tool::new(
        "test_tool_with_logging",
        "Tests tool that emits log messages during execution",
        with_logging,
    )
    .input_schema(no_args())
}

async fn with_progress(ctx: RequestContext, _args: Map<String, Value>) -> ToolResult {
    for (i, step) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        let message = format!("Completed step {step} of 100");
        ctx.progress(step, Some(100.0), Some(&message)).await;
    }
    Ok(CallToolResult::text(
        "Tool with progress executed successfully",
    ))
}

fn tool_with_progress() -> Tool {
    Tool::new(
        "test_tool_with_progress",
        "Tests tool that reports progress notifications",
        with_progress,
    )
    .input_schema(no_args())
}

fn error_handling() -> Tool {
    Tool::new(
        "test_error_handling",
        "Tests error response handling",
        |_ctx: RequestContext, _args: Map<String, Value>| async {
            Ok(CallToolResult::error(
                "This tool intentionally returns an error for testing",
            ))
        },
    )
    .input_schema(no_args())
}

/// SEP-1613 / SEP-2106: the schema must come back from tools/list unchanged.
fn json_schema_2020_12_tool() -> Tool {
    Tool::new(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
        |_ctx: RequestContext, args: Map<String, Value>| async move {
            Ok(CallToolResult::text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args)
            )))
        },
    )
    .input_schema(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"}
                }
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {
            "properties": {"contactMethod": {"const": "phone"}},
            "required": ["contactMethod"]
        },
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    }))
}

/// SEP-2243 (http-custom-header-server-validation): `region` is mirrored in `Mcp-Param-Region`.
/// The tool can be declared today; checking the header against the body is a library gap.
fn x_mcp_header() -> Tool {
    Tool::new(
        "test_x_mcp_header",
        "Echoes a region that clients also send in the Mcp-Param-Region header (SEP-2243)",
        |_ctx: RequestContext, args: Map<String, Value>| async move {
            let region = args.get("region").and_then(Value::as_str).unwrap_or("");
            Ok(CallToolResult::text(format!("region={region}")))
        },
    )
    .input_schema(json!({
        "type": "object",
        "properties": {
            "region": {
                "type": "string",
                "description": "A region, mirrored into the Mcp-Param-Region header",
                "x-mcp-header": "Region"
            }
        },
        "required": ["region"]
    }))
}

/// server-stateless (2026-07-28): logs only when the request set `_meta` logLevel.
fn logging_tool() -> Tool {
    Tool::new(
        "test_logging_tool",
        "Diagnostic logging validator tool",
        |ctx: RequestContext, _args: Map<String, Value>| async move {
            ctx.log(
                LogLevel::Info,
                None,
                json!("Diagnostic trace logging activated"),
            )
            .await;
            Ok(CallToolResult::text("Logging evaluated"))
        },
    )
    .input_schema(no_args())
}

/// server-stateless (2026-07-28): the response stream must carry only notifications and the
/// result, never a server→client request (the client declares elicitation; we ask nothing).
fn streaming_elicitation() -> Tool {
    Tool::new(
        "test_streaming_elicitation",
        "Diagnostic tool validating response progress streams",
        |ctx: RequestContext, _args: Map<String, Value>| async move {
            ctx.progress(50.0, Some(100.0), None).await;
            Ok(CallToolResult::text("Streaming complete"))
        },
    )
    .input_schema(no_args())
}

/// tools-call-sampling (2025 wires): asks the client's model on the call's own SSE stream.
fn sampling() -> Tool {
    Tool::new(
        "test_sampling",
        "Tests server-initiated sampling (LLM completion request)",
        |ctx: RequestContext, args: Map<String, Value>| async move {
            let prompt = args.get("prompt").and_then(Value::as_str).unwrap_or("").to_owned();
            let params = json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": 100
            });
            let reply = ctx
                .request_client("sampling/createMessage", params)
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            let text = reply["content"]["text"].as_str().unwrap_or("").to_owned();
            Ok(CallToolResult::text(format!("LLM response: {text}")))
        },
    )
    .input_schema(json!({
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
        "required": ["prompt"]
    }))
}

async fn elicit(ctx: &RequestContext, message: &str, schema: Value) -> Result<Value, ToolError> {
    ctx.request_client(
        "elicitation/create",
        json!({"message": message, "requestedSchema": schema}),
    )
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))
}

fn summary(reply: &Value) -> CallToolResult {
    CallToolResult::text(format!(
        "User response: action={}, content={}",
        reply["action"].as_str().unwrap_or("unknown"),
        reply.get("content").cloned().unwrap_or(Value::Null)
    ))
}

/// tools-call-elicitation (2025 wires).
fn elicitation() -> Tool {
    Tool::new(
        "test_elicitation",
        "Tests server-initiated elicitation (user input request)",
        |ctx: RequestContext, args: Map<String, Value>| async move {
            let message = args.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
            let schema = json!({
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}
                },
                "required": ["username", "email"]
            });
            Ok(summary(&elicit(&ctx, &message, schema).await?))
        },
    )
    .input_schema(json!({
        "type": "object",
        "properties": {"message": {"type": "string", "description": "The message to show the user"}},
        "required": ["message"]
    }))
}

/// elicitation-sep1034-defaults: primitive fields with defaults.
fn elicitation_sep1034_defaults() -> Tool {
    Tool::new(
        "test_elicitation_sep1034_defaults",
        "Tests elicitation with default values per SEP-1034",
        |ctx: RequestContext, _args: Map<String, Value>| async move {
            let schema = json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "description": "Verification status", "default": true}
                }
            });
            Ok(summary(&elicit(&ctx, "Please review and update the form fields with defaults", schema).await?))
        },
    )
    .input_schema(no_args())
}

/// elicitation-sep1330-enums: titled and untitled, single and multi-select enums.
fn elicitation_sep1330_enums() -> Tool {
    Tool::new(
        "test_elicitation_sep1330_enums",
        "Tests elicitation with enum schema improvements per SEP-1330",
        |ctx: RequestContext, _args: Map<String, Value>| async move {
            let titled = |p: &str| -> Value {
                json!([
                    {"const": format!("{p}1"), "title": "First Option"},
                    {"const": format!("{p}2"), "title": "Second Option"},
                    {"const": format!("{p}3"), "title": "Third Option"}
                ])
            };
            let schema = json!({
                "type": "object",
                "properties": {
                    "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": titled("value")},
                    "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "description": "Select multiple options", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "description": "Select multiple options with titles", "items": {"anyOf": titled("value")}}
                }
            });
            Ok(summary(&elicit(&ctx, "Please select options from the enum fields", schema).await?))
        },
    )
    .input_schema(no_args())
}

/// server-stateless (2026-07-28): needs sampling; without it the request is refused with -32021.
fn missing_capability() -> Tool {
    Tool::new(
        "test_missing_capability",
        "Diagnostic tool that requires the sampling capability",
        |ctx: RequestContext, _args: Map<String, Value>| async move {
            if ctx.client_capabilities().get("sampling").is_none() {
                return Err(ToolError::MissingCapability(json!({"sampling": {}})));
            }
            Ok(CallToolResult::text("Success"))
        },
    )
    .input_schema(no_args())
}

/// Announces an update of the resource named `uri` (the replica tests of the cluster harness:
/// a subscribed session's GET stream on another replica must receive it).
fn trigger_resource_update(notifier: Notifier) -> Tool {
    Tool::new(
        "test_trigger_resource_update",
        "Diagnostic tool that announces an update of the resource `uri`",
        move |_ctx: RequestContext, args: Map<String, Value>| {
            let notifier = notifier.clone();
            async move {
                let uri = args
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                notifier.resource_updated(uri);
                Ok(CallToolResult::text("Resource update announced"))
            }
        },
    )
    .input_schema(json!({
        "type": "object",
        "properties": {"uri": {"type": "string"}},
        "required": ["uri"]
    }))
}

/// server-stateless: announces a list change to `subscriptions/listen` streams.
fn trigger_change(name: &'static str, notifier: Notifier, fire: fn(&Notifier)) -> Tool {
    Tool::new(
        name,
        "Diagnostic tool that announces a list change",
        move |_ctx: RequestContext, _args: Map<String, Value>| {
            let notifier = notifier.clone();
            async move {
                fire(&notifier);
                Ok(CallToolResult::text("List change announced"))
            }
        },
    )
    .input_schema(no_args())
}

/// tasks-* (the `io.modelcontextprotocol/tasks` extension at 2026-07-28, and 2025-11-25 tasks):
/// the fixtures the scenario descriptions of conformance 0.2.0-alpha.12 name.
mod tasks {
    use std::time::Duration;

    use serde::Deserialize;
    use serde_json::{json, Map, Value};
    use vouch_mcp::{CallToolResult, InputRequired, RequestContext, TaskSupport, Tool, ToolError};

    use super::JsonSchemas as _;

    #[derive(Deserialize)]
    struct Greet {
        name: String,
    }

    #[derive(Deserialize)]
    struct Compute {
        seconds: f64,
        #[serde(default)]
        label: Option<String>,
    }

    #[derive(Deserialize)]
    struct Delete {
        filename: String,
    }

    /// Sleeps, unless the task is cancelled first (true) .
    async fn sleep_or_cancelled(ctx: &RequestContext, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => false,
            () = ctx.cancellation().cancelled() => true,
        }
    }

    fn confirm_schema() -> Value {
        json!({"type": "object", "properties": {"confirm": {"type": "boolean", "title": "Confirm"}}, "required": ["confirm"]})
    }

    fn accepted(answer: Option<&Value>) -> bool {
        answer.is_some_and(|a| a["action"] == "accept")
    }

    fn failed(e: impl std::fmt::Display) -> ToolError {
        ToolError::Failed(e.to_string())
    }

    pub(super) fn tools() -> Vec<Tool> {
        vec![
            // Sync only: a task never.
            Tool::new("greet", "Greets someone by name (never a task)", |_ctx: RequestContext, a: Greet| async move {
                Ok(CallToolResult::text(format!("Hello, {}!", a.name)))
            })
            .input_schema(json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})),
            // Sleeps `seconds` (0: answers at once), then reports; cancellable.
            Tool::new(
                "slow_compute",
                "Computes for `seconds` seconds; may run as a task",
                |ctx: RequestContext, a: Compute| async move {
                    let label = a.label.unwrap_or_else(|| "job".into());
                    let secs = a.seconds.clamp(0.0, 600.0);
                    ctx.set_status(format!("computing {label} for {secs} s")).await;
                    if sleep_or_cancelled(&ctx, Duration::from_secs_f64(secs)).await {
                        return Ok(CallToolResult::text(format!("{label}: cancelled")));
                    }
                    Ok(CallToolResult::text(format!("{label}: computed after {secs} s")))
                },
            )
            .input_schema(json!({"type": "object", "properties": {
                "seconds": {"type": "number", "minimum": 0, "description": "How long to compute"},
                "label": {"type": "string", "description": "A name for the job"}},
                "required": ["seconds"]}))
            .task_support(TaskSupport::Optional),
            // Asks for a confirmation (elicitation through the task), then answers.
            Tool::new(
                "confirm_delete",
                "Deletes a file after the user confirms; runs as a task while it waits",
                |ctx: RequestContext, a: Delete| async move {
                    let answers = ctx
                        .ask(InputRequired::new().elicit(
                            "confirm",
                            &format!("Delete {}?", a.filename),
                            confirm_schema(),
                        ))
                        .await
                        .map_err(failed)?;
                    let confirm = answers.get("confirm");
                    if accepted(confirm) && confirm.and_then(|c| c["content"]["confirm"].as_bool()) != Some(false) {
                        Ok(CallToolResult::text(format!("Deleted {}", a.filename)))
                    } else {
                        Ok(CallToolResult::text(format!("Kept {}", a.filename)))
                    }
                },
            )
            .input_schema(json!({"type": "object", "properties": {"filename": {"type": "string"}}, "required": ["filename"]}))
            .task_support(TaskSupport::Optional),
            // Two elicitations at once: two keys outstanding together.
            Tool::new(
                "multi_input",
                "Asks two questions at once, then answers",
                |ctx: RequestContext, _a: Map<String, Value>| async move {
                    let name = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
                    let answers = ctx
                        .ask(
                            InputRequired::new()
                                .elicit("name", "What is your name?", name)
                                .elicit("confirm", "Shall I go on?", confirm_schema()),
                        )
                        .await
                        .map_err(failed)?;
                    let who = answers
                        .get("name")
                        .and_then(|a| a["content"]["name"].as_str())
                        .unwrap_or("someone");
                    Ok(CallToolResult::text(format!("Thanks, {who}: {} answers", answers.len())))
                },
            )
            .input_schema(super::no_args())
            .task_support(TaskSupport::Optional),
            // Always a task; fails at the tool level after about a second.
            Tool::new(
                "failing_job",
                "A job that always fails (a tool error) after about a second; runs only as a task",
                |ctx: RequestContext, _a: Map<String, Value>| async move {
                    if sleep_or_cancelled(&ctx, Duration::from_millis(1000)).await {
                        return Ok(CallToolResult::text("cancelled"));
                    }
                    Ok(CallToolResult::error("the job failed: the input was rejected"))
                },
            )
            .input_schema(super::no_args())
            .task_support(TaskSupport::Required),
            // Panics (a protocol error: -32603) after the immediate window, so it is a task.
            Tool::new(
                "protocol_error_job",
                "A job that crashes (a protocol error) after a moment; may run as a task",
                |_ctx: RequestContext, _a: Map<String, Value>| async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    panic!("protocol_error_job crashes on purpose");
                    #[allow(unreachable_code)]
                    Ok(CallToolResult::text("unreachable"))
                },
            )
            .input_schema(super::no_args())
            .task_support(TaskSupport::Optional),
            // Round 1: an input_required round for `user_name`; round 2: a task that greets.
            Tool::new(
                "test_tool_with_task",
                "Asks for a name (input_required), then greets as a task",
                |ctx: RequestContext, _a: Map<String, Value>| async move {
                    let name = ctx
                        .input_responses()
                        .and_then(|m| m.get("user_name"))
                        .and_then(|r| r["content"]["name"].as_str())
                        .map(str::to_owned);
                    let Some(name) = name else {
                        return Err(InputRequired::new()
                            .elicit(
                                "user_name",
                                "What is your name?",
                                json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
                            )
                            .into());
                    };
                    ctx.set_status(format!("greeting {name}")).await;
                    if sleep_or_cancelled(&ctx, Duration::from_millis(300)).await {
                        return Ok(CallToolResult::text("cancelled"));
                    }
                    Ok(CallToolResult::text(format!("Hello, {name}!")))
                },
            )
            .input_schema(super::no_args())
            .task_support(TaskSupport::Required),
        ]
    }
}

/// input-required-result-* (2026-07-28): multi-round-trip tools.
mod mrtr {
    use serde_json::{json, Map, Value};
    use vouch_mcp::{CallToolResult, InputRequired, RequestContext, Tool, ToolResult};

    use super::JsonSchemas as _;

    fn name_schema(field: &str) -> Value {
        json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
    }

    fn answer<'a>(ctx: &'a RequestContext, key: &str) -> Option<&'a Value> {
        ctx.input_responses().and_then(|m| m.get(key))
    }

    fn tool<F, Fut>(name: &'static str, description: &'static str, f: F) -> Tool
    where
        F: Fn(RequestContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ToolResult> + Send + 'static,
    {
        Tool::new(name, description, f).input_schema(super::no_args())
    }

    pub(super) fn tools() -> Vec<Tool> {
        vec![
            tool(
                "test_input_required_result_elicitation",
                "Asks the user for a name, then greets them",
                |ctx, _| async move {
                    match answer(&ctx, "user_name").and_then(|r| r["content"]["name"].as_str()) {
                        Some(name) => Ok(CallToolResult::text(format!("Hello, {name}!"))),
                        None => Err(InputRequired::new()
                            .elicit("user_name", "What is your name?", name_schema("name"))
                            .into()),
                    }
                },
            ),
            tool(
                "test_input_required_result_sampling",
                "Asks the client's model a question",
                |ctx, _| async move {
                    match answer(&ctx, "capital_question").and_then(|r| r["content"]["text"].as_str()) {
                    Some(text) => Ok(CallToolResult::text(format!("Model answered: {text}"))),
                    None => Err(InputRequired::new()
                        .sample("capital_question", json!({
                            "messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}],
                            "maxTokens": 100
                        }))
                        .into()),
                }
                },
            ),
            tool(
                "test_input_required_result_list_roots",
                "Lists the client's roots",
                |ctx, _| async move {
                    match answer(&ctx, "client_roots").and_then(|r| r["roots"].as_array()) {
                        Some(roots) => Ok(CallToolResult::text(format!(
                            "Found {} root(s)",
                            roots.len()
                        ))),
                        None => Err(InputRequired::new().list_roots("client_roots").into()),
                    }
                },
            ),
            // The library refuses altered state before the handler runs, so one handler serves both.
            tool(
                "test_input_required_result_request_state",
                "Carries state between rounds",
                confirm,
            ),
            tool(
                "test_input_required_result_tampered_state",
                "Refuses altered state",
                confirm,
            ),
            tool(
                "test_input_required_result_multiple_inputs",
                "Asks for several inputs at once",
                |ctx, _| async move {
                    let keys = ["user_name", "greeting", "client_roots"];
                    if ctx.request_state() == Some("multi")
                        && keys.iter().all(|k| answer(&ctx, k).is_some())
                    {
                        return Ok(CallToolResult::text("All inputs received"));
                    }
                    Err(InputRequired::new()
                    .elicit("user_name", "What is your name?", name_schema("name"))
                    .sample("greeting", json!({
                        "messages": [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}],
                        "maxTokens": 50
                    }))
                    .list_roots("client_roots")
                    .state("multi")
                    .into())
                },
            ),
            tool(
                "test_input_required_result_multi_round",
                "Asks in two rounds",
                |ctx, _| async move {
                    let state = ctx.request_state().unwrap_or("");
                    if let (Some(name), "r1") = (
                        answer(&ctx, "step1").and_then(|r| r["content"]["name"].as_str()),
                        state,
                    ) {
                        return Err(InputRequired::new()
                            .elicit(
                                "step2",
                                "Step 2: What is your favorite color?",
                                name_schema("color"),
                            )
                            .state(format!("r2:{name}"))
                            .into());
                    }
                    if let (Some(color), Some(name)) = (
                        answer(&ctx, "step2").and_then(|r| r["content"]["color"].as_str()),
                        state.strip_prefix("r2:"),
                    ) {
                        return Ok(CallToolResult::text(format!("{name} likes {color}")));
                    }
                    Err(InputRequired::new()
                        .elicit("step1", "Step 1: What is your name?", name_schema("name"))
                        .state("r1")
                        .into())
                },
            ),
            tool(
                "test_input_required_result_capabilities",
                "Asks only for what the client supports",
                |ctx, _| async move {
                    if ctx.input_responses().is_some_and(|m| !m.is_empty()) {
                        return Ok(CallToolResult::text("Inputs received"));
                    }
                    let caps = ctx.client_capabilities().clone();
                    let mut ir = InputRequired::new();
                    if caps.get("sampling").is_some() {
                        ir = ir.sample("question", json!({
                        "messages": [{"role": "user", "content": {"type": "text", "text": "Say hello"}}],
                        "maxTokens": 20
                    }));
                    }
                    if caps.get("elicitation").is_some() {
                        ir = ir.elicit("user_name", "What is your name?", name_schema("name"));
                    }
                    if caps.get("roots").is_some() {
                        ir = ir.list_roots("client_roots");
                    }
                    if ir.input_requests.is_empty() {
                        return Ok(CallToolResult::text("No client capabilities to ask with"));
                    }
                    Err(ir.into())
                },
            ),
        ]
    }

    async fn confirm(ctx: RequestContext, _args: Map<String, Value>) -> ToolResult {
        match (answer(&ctx, "confirm"), ctx.request_state()) {
            (Some(_), Some("awaiting-confirm")) => Ok(CallToolResult::text("state-ok: confirmed")),
            _ => Err(confirm_request().into()),
        }
    }

    fn confirm_request() -> InputRequired {
        InputRequired::new()
            .elicit(
                "confirm",
                "Please confirm",
                json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}),
            )
            .state("awaiting-confirm")
    }
}

/// resources-* (all wires).
mod resources {
    use serde_json::{json, Value};
    use vouch_mcp::resource::{blob_contents, text_contents};
    use vouch_mcp::{Resource, ResourceTemplate, ServerBuilder};

    pub(super) fn all(b: ServerBuilder) -> ServerBuilder {
        let template = ResourceTemplate::new(
            "test://template/{id}/data",
            "template",
            |_ctx, uri, vars| async move {
                let id = vars
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let body =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                Ok(vec![text_contents(
                    &uri,
                    "application/json",
                    body.to_string(),
                )])
            },
        )
        .expect("a level-1 template")
        .description("A resource template with an id parameter")
        .mime_type("application/json")
        .completer(|_arg, value| {
            ["1", "2", "123"]
                .iter()
                .filter(|c| c.starts_with(value))
                .map(|c| c.to_string())
                .collect()
        });
        b.resource(
            Resource::new("test://static-text", "static-text", |_ctx, uri| async move {
                Ok(vec![text_contents(&uri, "text/plain", "This is the content of the static text resource.")])
            })
            .description("A static text resource for testing")
            .mime_type("text/plain"),
        )
        .resource(
            Resource::new("test://static-binary", "static-binary", |_ctx, uri| async move {
                Ok(vec![blob_contents(&uri, "image/png", super::PNG_1X1)])
            })
            .description("A static binary resource (image) for testing")
            .mime_type("image/png"),
        )
        .resource(
            Resource::new("test://watched-resource", "watched-resource", |_ctx, uri| async move {
                Ok(vec![text_contents(&uri, "text/plain", "Watched resource content")])
            })
            .description("A resource that clients can subscribe to")
            .mime_type("text/plain")
            .subscribable(),
        )
        .resource_template(template)
    }
}

/// prompts-* (all wires) and the 2026 input_required prompt.
mod prompts {
    use serde_json::{json, Map, Value};
    use vouch_mcp::prompt::user;
    use vouch_mcp::RequestContext;
    use vouch_mcp::{content, InputRequired, Prompt, ServerBuilder};

    pub(super) fn all(b: ServerBuilder) -> ServerBuilder {
        b.prompt(
            Prompt::new("test_simple_prompt", |_ctx: RequestContext, _args: Map<String, Value>| async {
                Ok(vec![user(content::text("This is a simple prompt for testing."))])
            })
            .description("A simple prompt without arguments"),
        )
        .prompt(
            Prompt::new("test_prompt_with_arguments", |_ctx: RequestContext, args: Map<String, Value>| async move {
                let get = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                Ok(vec![user(content::text(format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    get("arg1"),
                    get("arg2")
                )))])
            })
            .description("A prompt with required arguments")
            .argument("arg1", Some("First test argument"), true)
            .argument("arg2", Some("Second test argument"), true)
            .completer(|_arg, value| {
                ["testValue1", "testValue2"].iter().filter(|c| c.starts_with(value)).map(|c| c.to_string()).collect()
            }),
        )
        .prompt(
            Prompt::new("test_prompt_with_embedded_resource", |_ctx: RequestContext, args: Map<String, Value>| async move {
                let uri = args.get("resourceUri").and_then(Value::as_str).unwrap_or("").to_owned();
                Ok(vec![
                    user(content::text_resource(&uri, "text/plain", "Embedded resource content for testing.")),
                    user(content::text("Please process the embedded resource above.")),
                ])
            })
            .description("A prompt with an embedded resource")
            .argument("resourceUri", Some("URI of the resource to embed"), true),
        )
        .prompt(
            Prompt::new("test_prompt_with_image", |_ctx: RequestContext, _args: Map<String, Value>| async {
                Ok(vec![
                    user(content::image(super::PNG_1X1, "image/png")),
                    user(content::text("Please analyze the image above.")),
                ])
            })
            .description("A prompt with image content"),
        )
        .prompt(
            Prompt::new("test_input_required_result_prompt", |ctx, _args| async move {
                let context = ctx
                    .input_responses()
                    .and_then(|m| m.get("user_context"))
                    .and_then(|r| r["content"]["context"].as_str())
                    .map(str::to_owned);
                match context {
                    Some(c) => Ok(vec![user(content::text(format!("Prompt with context: {c}")))]),
                    None => Err(InputRequired::new()
                        .elicit(
                            "user_context",
                            "What context should the prompt use?",
                            json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}),
                        )
                        .into()),
                }
            })
            .description("A prompt that asks the client for context first"),
        )
    }
}

/// server-sse-polling (2025-11-25): ends the POST's SSE response mid-call; the client resumes
/// with GET + Last-Event-ID and receives the result from the stream's replay buffer.
fn reconnection() -> Tool {
    Tool::new(
        "test_reconnection",
        "Tests SSE stream disconnection and client reconnection",
        |ctx: RequestContext, _args: Map<String, Value>| async move {
            ctx.log(LogLevel::Info, None, json!("Before disconnect"))
                .await;
            ctx.close_sse_stream();
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok(CallToolResult::text("Reconnection test completed"))
        },
    )
    .input_schema(no_args())
}
