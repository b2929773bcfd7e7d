//! Replays every wire fixture in `protocol-fixtures/` against the server's service in process: no socket.
//!
//! The format is described in `protocol-fixtures/README.md`. Each fixture gets its own server
//! (built in microseconds, never bound to a port), so fixtures cannot influence each other. Each
//! request is an `http::Request` handed straight to the `McpService`: the shell's checks, the pure
//! protocol core and the runtime answer it, and the response is read back from the service. What
//! only a socket can show (timeouts, streaming bodies, SSE framing on the wire) is tested in
//! `tests/server_behaviour.rs` and `tests/binary.rs`. Every failure of every fixture is collected
//! and reported together, each with the file name and a diff-like message, before the test fails.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::Service as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use support::*;
use vouch_mcp::prompt::user;
use vouch_mcp::resource::{blob_contents, text_contents};
use vouch_mcp::{
    content, CallToolResult, ClientRequestError, InputRequired, ListChanged, McpService, Prompt,
    RequestContext, Resource, ResourceTemplate, Schema, ServerBuilder, TaskSupport, Tool,
    ToolError,
};

/// The resource URL of every fixture server; nothing listens there, requests go to the service.
const RESOURCE: &str = "http://localhost:3000/mcp";
/// The Host the harness sends unless a fixture gives one.
const HOST: &str = "localhost:3000";

/// A fixture's server: the service to call and the issuer that mints its tokens.
struct FixtureServer {
    service: McpService,
    issuer: DevIssuer,
    /// Kept alive for the service's background tasks.
    _server: vouch_mcp::Server,
    /// For the h2c pass: the loopback address the same server is served on, and its stop signal.
    h2c: Option<(std::net::SocketAddr, vouch_mcp::CancelToken)>,
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        if let Some((_, stop)) = &self.h2c {
            stop.cancel();
        }
    }
}

/// How the harness reaches each fixture's server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `http::Request`s handed straight to the service.
    InProcess,
    /// Over a loopback socket, one prior-knowledge h2c connection per exchange.
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    H2c,
}

impl FixtureServer {
    fn token(&self, sub: &str, hardware_verified: bool) -> String {
        self.issuer.mint(&self.issuer.claims(
            RESOURCE,
            sub,
            &format!("{sub}@example.com"),
            hardware_verified,
            now(),
            3600,
        ))
    }
}

/// The suite must not silently shrink.
const MIN_FIXTURES: usize = 60;
/// Any single exchange taking longer than this is a failure, not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Every placeholder a fixture may use in requests and expectations.
const PLACEHOLDERS: [&str; 11] = [
    "token",
    "token:hw",
    "token:bob",
    "token:expired",
    "token:wrong-aud",
    "token:wrong-iss",
    "token:unknown-kid",
    "host",
    "resource",
    "resource_metadata",
    "session",
];
/// Expectation wildcards: never substituted, interpreted by the matcher.
const WILDCARDS: [&str; 5] = ["any", "string", "uint", "bool", "vchar"];
/// `clientInfo` of the harness's own `initialize` (setup.session).
const SETUP_CLIENT_INFO: &str = r#"{"name":"fixtures","version":"0"}"#;

#[tokio::test]
async fn protocol_fixtures_replay() {
    replay_all(Transport::InProcess).await;
}

/// The same fixtures over a socket, as HTTP/2 with prior knowledge: the fixture's Host becomes
/// `:authority`, every other header and byte is sent as written.
#[cfg(feature = "http2")]
#[tokio::test]
async fn protocol_fixtures_replay_over_h2c() {
    replay_all(Transport::H2c).await;
}

async fn replay_all(transport: Transport) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let started = std::time::Instant::now();
        let errs = run_file(file, &name, transport).await;
        let ms = started.elapsed().as_millis();
        if errs.is_empty() {
            println!("ok    {name} ({ms} ms)");
        } else {
            println!("FAIL  {name} ({ms} ms)");
            failures.push((name, errs));
        }
    }
    let mut report = String::new();
    for (name, errs) in &failures {
        report.push_str(&format!("\n=== {name}\n"));
        for e in errs {
            for line in e.lines() {
                report.push_str(&format!("    {line}\n"));
            }
        }
    }
    println!(
        "{} fixtures, {} passed, {} failed",
        files.len(),
        files.len() - failures.len(),
        failures.len()
    );
    if files.len() < MIN_FIXTURES {
        report.push_str(&format!(
            "\n=== only {} fixtures ran; at least {MIN_FIXTURES} are expected\n",
            files.len()
        ));
    }
    assert!(
        failures.is_empty() && files.len() >= MIN_FIXTURES,
        "{} of {} fixtures failed:{report}",
        failures.len(),
        files.len()
    );
}

// ------------------------------------------------------------------------------------------
// One fixture file
// ------------------------------------------------------------------------------------------

async fn run_file(path: &Path, name: &str, transport: Transport) -> Vec<String> {
    let mut errs = Vec::new();
    if !valid_file_name(name) {
        errs.push(
            "file name must look like NNN-era-short-description.json with era any, 2026 or legacy"
                .into(),
        );
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    let fixture: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("not valid JSON: {e}")],
    };
    let Some(fixture) = fixture.as_object() else {
        return vec!["the fixture must be a JSON object".into()];
    };
    check_keys(
        fixture,
        &["description", "setup", "request", "expect", "steps"],
        "fixture",
        &mut errs,
    );
    let described =
        matches!(fixture.get("description"), Some(Value::String(d)) if !d.trim().is_empty());
    if !described {
        errs.push("`description` (a non-empty string) is required".into());
    }
    let steps: Vec<Value> = match (
        fixture.get("steps"),
        fixture.get("request"),
        fixture.get("expect"),
    ) {
        (Some(Value::Array(steps)), None, None) if !steps.is_empty() => steps.clone(),
        (None, Some(req), Some(exp)) => {
            vec![serde_json::json!({"request": req.clone(), "expect": exp.clone()})]
        }
        _ => {
            errs.push(
                "a fixture has either `request` + `expect`, or a non-empty `steps` array".into(),
            );
            return errs;
        }
    };
    let setup = fixture.get("setup").cloned().unwrap_or(Value::Null);
    let server = match start_server(&setup, transport).await {
        Ok(s) => s,
        Err(e) => {
            errs.push(e);
            return errs;
        }
    };
    let mut vars = placeholders(&server, &text, !setup.is_null());
    if let Err(e) = run_setup(&server, &setup, &mut vars).await {
        errs.push(format!("setup failed: {e}"));
        return errs;
    }
    for (i, step) in steps.iter().enumerate() {
        let label = if steps.len() > 1 {
            format!("step {}: ", i + 1)
        } else {
            String::new()
        };
        let step_errs = run_step(&server, step, &mut vars).await;
        errs.extend(step_errs.into_iter().map(|e| format!("{label}{e}")));
    }
    errs
}

fn valid_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".json") else {
        return false;
    };
    let mut parts = stem.splitn(3, '-');
    let (Some(num), Some(era), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    num.len() == 3
        && num.bytes().all(|b| b.is_ascii_digit())
        && matches!(era, "any" | "2026" | "legacy")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], what: &str, errs: &mut Vec<String>) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            errs.push(format!(
                "unknown key `{k}` in {what} (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Server, tokens, placeholders, setup
// ------------------------------------------------------------------------------------------

/// A harness-only tool that reports progress twice before answering, so SSE responses can be fixtured.
fn progress_demo() -> Tool {
    Tool::new(
        "progress-demo",
        "Test harness tool: sends two progress notifications, then answers.",
        |ctx: RequestContext| async move {
            ctx.progress(1.0, Some(2.0), Some("half")).await;
            ctx.progress(2.0, Some(2.0), None).await;
            Ok(CallToolResult::text("done"))
        },
    )
}

/// A 1x1 PNG, the blob of `test://images/pixel`.
const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// Candidates starting with `prefix` (the harness's completers).
fn starting_with(candidates: &[&str], prefix: &str) -> Vec<String> {
    candidates
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(|c| c.to_string())
        .collect()
}

/// `setup.server.features`: a fixed set of library features registered through the public API,
/// so resources, templates, prompts, completion, MRTR, `x-mcp-header`, server-to-client
/// requests and `subscriptions/listen` can be fixtured. Documented in the README.
fn features(b: ServerBuilder) -> ServerBuilder {
    let b = b.logging();
    let item_template = ResourceTemplate::new("test://items/{id}", "item", |_ctx, uri, vars| {
        let id = vars
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        async move {
            Ok(vec![text_contents(
                &uri,
                "text/plain",
                format!("Item {id}"),
            )])
        }
    })
    .expect("a level-1 template")
    .description("One item by id")
    .mime_type("text/plain")
    .completer(|_arg, value| starting_with(&["apple", "apricot", "banana"], value));
    b.resource(
        Resource::new("test://docs/readme", "readme", |_ctx, uri| async move {
            Ok(vec![text_contents(
                &uri,
                "text/plain",
                "Hello from the readme.",
            )])
        })
        .title("Read me")
        .mime_type("text/plain"),
    )
    .resource(
        Resource::new("test://images/pixel", "pixel", |_ctx, uri| async move {
            Ok(vec![blob_contents(&uri, "image/png", PNG_1X1)])
        })
        .mime_type("image/png"),
    )
    .resource(
        Resource::new("test://status", "status", |_ctx, uri| async move {
            Ok(vec![text_contents(
                &uri,
                "text/plain",
                "All systems nominal.",
            )])
        })
        .description("Subscribable status line")
        .mime_type("text/plain")
        .subscribable(),
    )
    .resource_template(item_template)
    .prompt(
        Prompt::new("greeting", |_ctx, args| async move {
            let get = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_owned);
            let name = get("name").unwrap_or_default();
            let style = get("style").unwrap_or_else(|| "casual".into());
            Ok(vec![user(content::text(format!(
                "Please greet {name} in a {style} way."
            )))])
        })
        .title("Greeting")
        .description("Greets someone by name.")
        .argument("name", Some("Who to greet"), true)
        .argument("style", Some("formal or casual"), false)
        .completer(|arg, value| match arg {
            "name" => starting_with(&["Alice", "Alan", "Bob"], value),
            "style" => starting_with(&["formal", "casual"], value),
            _ => Vec::new(),
        }),
    )
    .prompt(
        Prompt::new("daily-summary", |_ctx, _args| async {
            Ok(vec![user(content::text("Summarise today's activity."))])
        })
        .description("Summarises the day."),
    )
    .tool(ask_name())
    .tool(weather())
    .tool(ask_model())
    .list_changed(ListChanged {
        tools: true,
        prompts: false,
        resources: false,
    })
}

/// Multi-round-trip (2026-07-28): asks for the user's name with an `input_required` result carrying
/// state, and greets them once a retry brings the answer and the state back.
fn ask_name() -> Tool {
    Tool::new(
        "ask-name",
        "Test harness tool: asks the user's name (input_required), then greets them.",
        |ctx: RequestContext| async move {
            let answer = ctx
                .input_responses()
                .and_then(|m| m.get("name"))
                .filter(|r| r["action"] == "accept")
                .and_then(|r| r["content"]["name"].as_str());
            match (answer, ctx.request_state()) {
                (Some(name), Some("awaiting-name")) => {
                    Ok(CallToolResult::text(format!("Hello, {name}!")))
                }
                _ => Err(InputRequired::new()
                    .elicit(
                        "name",
                        "What is your name?",
                        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
                    )
                    .state("awaiting-name")
                    .into()),
            }
        },
    )
}

/// The weather tool's arguments.
#[derive(Deserialize)]
struct Forecast {
    region: String,
}

/// `x-mcp-header` (2026-07-28): `region` is mirrored in `Mcp-Param-Region`.
fn weather() -> Tool {
    Tool::new(
        "weather",
        "Test harness tool: a forecast for a region sent in Mcp-Param-Region too.",
        |_ctx: RequestContext, args: Forecast| async move {
            Ok(CallToolResult::text(format!("Sunny in {}.", args.region)))
        },
    )
    .input(Schema::object().required(
        "region",
        Schema::string().description("Where").header("Region"),
    ))
}

/// Asks the client's model: a server-to-client `sampling/createMessage` request in a session
/// (initialize era); at 2026-07-28, where those do not exist, an `input_required` result instead.
fn ask_model() -> Tool {
    Tool::new(
        "ask-model",
        "Test harness tool: asks the client's model a question.",
        |ctx: RequestContext| async move {
            let params = json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}],
                "maxTokens": 50
            });
            if let Some(r) = ctx.input_responses().and_then(|m| m.get("answer")) {
                let text = r["content"]["text"].as_str().unwrap_or("");
                return Ok(CallToolResult::text(format!("The model said: {text}")));
            }
            match ctx
                .request_client("sampling/createMessage", params.clone())
                .await
            {
                Ok(r) => {
                    let text = r["content"]["text"].as_str().unwrap_or("");
                    Ok(CallToolResult::text(format!("The model said: {text}")))
                }
                Err(ClientRequestError::Unsupported) => {
                    Err(InputRequired::new().sample("answer", params).into())
                }
                Err(ClientRequestError::CapabilityMissing(_)) => {
                    Err(ToolError::MissingCapability(json!({"sampling": {}})))
                }
                Err(e) => Err(ToolError::Failed(e.to_string())),
            }
        },
    )
}

/// `setup.server.tasks`: tools that run as tasks (through the public API; documented in the
/// README), and the task limits a fixture may lower.
fn task_tools(b: ServerBuilder) -> ServerBuilder {
    #[derive(Deserialize)]
    struct Later {
        ms: u64,
    }
    fn confirm() -> Value {
        json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]})
    }
    fn failed(e: ClientRequestError) -> ToolError {
        ToolError::Failed(e.to_string())
    }
    b.tool(
        Tool::new(
            "wait-for-cancel",
            "Runs until it is cancelled",
            |ctx: RequestContext| async move {
                ctx.set_status("waiting to be cancelled").await;
                ctx.cancellation().cancelled().await;
                Ok(CallToolResult::text("stopped"))
            },
        )
        .task_support(TaskSupport::Optional),
    )
    .tool(
        Tool::new(
            "done-later",
            "Answers after `ms` milliseconds",
            |_ctx: RequestContext, a: Later| async move {
                tokio::time::sleep(Duration::from_millis(a.ms.min(10_000))).await;
                Ok(CallToolResult::text(format!("done after {} ms", a.ms)))
            },
        )
        .input(Schema::object().required("ms", Schema::integer()))
        .task_support(TaskSupport::Optional),
    )
    .tool(
        Tool::new(
            "ask-confirm",
            "Asks the user to confirm, then says what they answered",
            |ctx: RequestContext| async move {
                let answers = ctx
                    .ask(InputRequired::new().elicit("confirm", "Go on?", confirm()))
                    .await
                    .map_err(failed)?;
                let yes = answers
                    .get("confirm")
                    .and_then(|a| a["content"]["confirm"].as_bool())
                    .unwrap_or(false);
                Ok(CallToolResult::text(format!("confirmed: {yes}")))
            },
        )
        .task_support(TaskSupport::Optional),
    )
    .tool(
        Tool::new(
            "ask-two",
            "Asks two questions at once",
            |ctx: RequestContext| async move {
                let answers = ctx
                    .ask(
                        InputRequired::new()
                            .elicit("first", "First?", confirm())
                            .elicit("second", "Second?", confirm()),
                    )
                    .await
                    .map_err(failed)?;
                Ok(CallToolResult::text(format!("answers: {}", answers.len())))
            },
        )
        .task_support(TaskSupport::Optional),
    )
    .tool(
        Tool::new(
            "fail-later",
            "Reports a tool error after 150 ms",
            |_ctx: RequestContext| async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Ok(CallToolResult::error("it failed"))
            },
        )
        .task_support(TaskSupport::Optional),
    )
    .tool(
        Tool::new(
            "crash-later",
            "Panics after 150 ms (a protocol error)",
            |_ctx: RequestContext| async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                panic!("crash-later crashes on purpose");
                #[allow(unreachable_code)]
                Ok(CallToolResult::text("unreachable"))
            },
        )
        .task_support(TaskSupport::Optional),
    )
    .tool(
        Tool::new(
            "greet-as-task",
            "Asks for a name (an input_required round), then greets; runs only as a task",
            |ctx: RequestContext| async move {
                let name = ctx
                    .input_responses()
                    .and_then(|m| m.get("name"))
                    .and_then(|r| r["content"]["name"].as_str())
                    .map(str::to_owned);
                match name {
                    Some(n) => Ok(CallToolResult::text(format!("Hello, {n}!"))),
                    None => Err(InputRequired::new()
                        .elicit(
                            "name",
                            "What is your name?",
                            json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
                        )
                        .into()),
                }
            },
        )
        .task_support(TaskSupport::Required),
    )
}

/// Reads `setup.server.tasks`: `true`, or an object of limits.
fn task_options(
    v: &Value,
    errs: &mut Vec<String>,
) -> Option<Box<dyn Fn(ServerBuilder) -> ServerBuilder + Send>> {
    let limits = match v {
        Value::Bool(false) => return None,
        Value::Bool(true) => Map::new(),
        Value::Object(m) => m.clone(),
        _ => {
            errs.push("`setup.server.tasks` must be true or an object of limits".into());
            return None;
        }
    };
    check_keys(
        &limits,
        &["ttl_ms", "max_tasks", "max_tasks_per_principal"],
        "setup.server.tasks",
        errs,
    );
    let get = |k: &str| limits.get(k).and_then(Value::as_u64);
    let (ttl, max, per) = (
        get("ttl_ms"),
        get("max_tasks"),
        get("max_tasks_per_principal"),
    );
    Some(Box::new(move |mut b: ServerBuilder| {
        b = task_tools(b);
        if let Some(ms) = ttl {
            b = b.task_ttl(Duration::from_millis(ms));
        }
        if let Some(n) = max {
            b = b.max_tasks(n as usize);
        }
        if let Some(n) = per {
            b = b.max_tasks_per_principal(n as usize);
        }
        b
    }))
}

async fn start_server(setup: &Value, transport: Transport) -> Result<FixtureServer, String> {
    let mut opts = Options::default();
    let (mut progress, mut with_features) = (false, false);
    let mut with_tasks = None;
    if !setup.is_null() {
        let Some(obj) = setup.as_object() else {
            return Err("`setup` must be an object".into());
        };
        let mut errs = Vec::new();
        check_keys(
            obj,
            &["session", "initialized", "server"],
            "setup",
            &mut errs,
        );
        if let Some(server) = obj.get("server") {
            let Some(server) = server.as_object() else {
                return Err("`setup.server` must be an object".into());
            };
            check_keys(
                server,
                &["required_scopes", "extra_tools", "features", "tasks"],
                "setup.server",
                &mut errs,
            );
            if let Some(scopes) = server.get("required_scopes") {
                opts.required_scopes = string_list(scopes)
                    .ok_or("`setup.server.required_scopes` must be a list of strings")?;
            }
            if let Some(tools) = server.get("extra_tools") {
                let tools = string_list(tools)
                    .ok_or("`setup.server.extra_tools` must be a list of strings")?;
                for t in &tools {
                    if t != "progress-demo" {
                        errs.push(format!(
                            "unknown extra tool `{t}` (the harness offers: progress-demo)"
                        ));
                    }
                }
                progress = !tools.is_empty();
            }
            match server.get("features") {
                None | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) => with_features = true,
                Some(_) => errs.push("`setup.server.features` must be a boolean".into()),
            }
            if let Some(t) = server.get("tasks") {
                with_tasks = task_options(t, &mut errs);
            }
        }
        if !errs.is_empty() {
            return Err(errs.join("\n"));
        }
    }
    if progress || with_features || with_tasks.is_some() {
        opts.configure = Some(Box::new(move |mut b| {
            if progress {
                b = b.tool(progress_demo());
            }
            if with_features {
                b = features(b);
            }
            if let Some(t) = with_tasks {
                b = t(b);
            }
            b
        }));
    }
    let (server, issuer) = build(opts, RESOURCE);
    let h2c = match transport {
        Transport::InProcess => None,
        Transport::H2c => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("bind: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let stop = vouch_mcp::CancelToken::new();
            let s2 = stop.clone();
            tokio::spawn(
                server
                    .clone()
                    .serve(listener, async move { s2.cancelled().await }),
            );
            Some((addr, stop))
        }
    };
    Ok(FixtureServer {
        service: server.service(),
        issuer,
        _server: server,
        h2c,
    })
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Every placeholder a fixture may use (besides `{{session}}`, added by setup). Signing is slow in
/// debug builds, so only the tokens the fixture's text mentions are minted (plus `{{token}}`
/// whenever there is a setup, which may initialize a session with it).
fn placeholders(s: &FixtureServer, text: &str, has_setup: bool) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let used =
        |name: &str| text.contains(&format!("{{{{{name}}}}}")) || (name == "token" && has_setup);
    let issuer = &s.issuer;
    let claims = |sub: &str, hw: bool, iat: u64, aud: &str| {
        issuer.claims(aud, sub, &format!("{sub}@example.com"), hw, iat, 3600)
    };
    let now = now();
    let mut mint = |name: &str, f: &dyn Fn() -> String| {
        if used(name) {
            v.insert(name.to_owned(), f());
        }
    };
    // Default token: sub alice, hardware_verified false.
    mint("token", &|| s.token("alice", false));
    mint("token:hw", &|| s.token("alice", true));
    mint("token:bob", &|| s.token("bob", false));
    // Issued two hours ago for one hour: expired an hour ago, far beyond any leeway.
    mint("token:expired", &|| {
        issuer.mint(&claims("alice", false, now - 7200, RESOURCE))
    });
    mint("token:wrong-aud", &|| {
        issuer.mint(&claims("alice", false, now, "http://localhost:1/other"))
    });
    // Same key and kid as the real issuer, so only the `iss` claim is wrong.
    mint("token:wrong-iss", &|| {
        let evil = DevIssuer::from_secret("https://evil.test", "test-key-1", [7u8; 32]).unwrap();
        evil.mint(&evil.claims(RESOURCE, "alice", "alice@example.com", false, now, 3600))
    });
    // Signed by a key (kid test-key-2) that the server's key set does not hold.
    mint("token:unknown-kid", &|| {
        other_key().mint(&claims("alice", false, now, RESOURCE))
    });
    v.insert("host".into(), HOST.into());
    v.insert("resource".into(), RESOURCE.into());
    // RFC 9728 §3.1: the well-known segment goes between the origin and the resource's path.
    let path_at = RESOURCE.find("://").map_or(0, |i| i + 3);
    let path_at = RESOURCE[path_at..]
        .find('/')
        .map_or(RESOURCE.len(), |i| path_at + i);
    v.insert(
        "resource_metadata".into(),
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            &RESOURCE[..path_at],
            &RESOURCE[path_at..]
        ),
    );
    v
}

/// `setup.session`: initialize with the default token, then (unless `initialized: false`) send
/// `notifications/initialized`; the session id becomes `{{session}}`.
async fn run_setup(
    s: &FixtureServer,
    setup: &Value,
    vars: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(version) = setup.get("session") else {
        return Ok(());
    };
    let version = version
        .as_str()
        .ok_or("`setup.session` must be a version string")?;
    let auth = format!("Bearer {}", vars["token"]);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{SETUP_CLIENT_INFO}}}}}"#
    );
    let headers = vec![
        ("Authorization".to_owned(), auth.clone()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (
            "Accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ),
    ];
    let r = send(s, "POST", "/mcp", &headers, body.as_bytes(), false).await?;
    if r.status != 200 {
        return Err(format!("initialize answered {}: {}", r.status, r.text()));
    }
    let negotiated = r
        .json()
        .ok()
        .and_then(|v| v["result"]["protocolVersion"].as_str().map(str::to_owned));
    if negotiated.as_deref() != Some(version) {
        return Err(format!(
            "initialize negotiated {negotiated:?}, not {version}: {}",
            r.text()
        ));
    }
    let session = r
        .header("mcp-session-id")
        .ok_or("initialize answered without Mcp-Session-Id")?
        .to_owned();
    vars.insert("session".into(), session.clone());
    if setup.get("initialized") == Some(&Value::Bool(false)) {
        return Ok(());
    }
    let mut headers = headers;
    headers.push(("Mcp-Session-Id".to_owned(), session));
    if version != "2025-03-26" && version != "2024-11-05" {
        headers.push(("MCP-Protocol-Version".to_owned(), version.to_owned()));
    }
    let body = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let r = send(s, "POST", "/mcp", &headers, body, false).await?;
    if r.status != 202 {
        return Err(format!(
            "notifications/initialized answered {}: {}",
            r.status,
            r.text()
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Placeholder substitution
// ------------------------------------------------------------------------------------------

/// Replaces `{{name}}` by its value. Wildcards are left alone when `allow_wildcards`, and are an
/// error otherwise (they mean nothing in a request); unknown names are always an error.
fn subst(
    text: &str,
    vars: &BTreeMap<String, String>,
    allow_wildcards: bool,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!("unterminated placeholder in {text:?}"));
        };
        let name = &after[..close];
        if let Some(v) = vars.get(name) {
            out.push_str(v);
        } else if WILDCARDS.contains(&name) && allow_wildcards {
            out.push_str(&rest[open..open + 2 + close + 2]);
        } else if WILDCARDS.contains(&name) {
            return Err(format!(
                "wildcard {{{{{name}}}}} is not allowed in a request"
            ));
        } else if name == "session" {
            return Err("{{session}} needs `setup.session` (a version to initialize)".into());
        } else if name.starts_with("capture:") {
            return Err(format!(
                "{{{{{name}}}}} was not captured by an earlier step (see `capture`)"
            ));
        } else {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}} (known: {})",
                PLACEHOLDERS
                    .iter()
                    .map(|k| format!("{{{{{k}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn subst_json(
    v: &Value,
    vars: &BTreeMap<String, String>,
    allow_wildcards: bool,
) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(subst(s, vars, allow_wildcards)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| subst_json(x, vars, allow_wildcards))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(
                    subst(k, vars, allow_wildcards)?,
                    subst_json(x, vars, allow_wildcards)?,
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

// ------------------------------------------------------------------------------------------
// One request/expect pair
// ------------------------------------------------------------------------------------------

async fn run_step(
    s: &FixtureServer,
    step: &Value,
    vars: &mut BTreeMap<String, String>,
) -> Vec<String> {
    let mut errs = Vec::new();
    let (Some(req), Some(exp)) = (
        step.get("request").and_then(Value::as_object),
        step.get("expect").and_then(Value::as_object),
    ) else {
        return vec!["a step needs `request` and `expect` objects".into()];
    };
    if let Some(obj) = step.as_object() {
        check_keys(
            obj,
            &["request", "expect", "note", "capture", "poll_ms"],
            "step",
            &mut errs,
        );
    }
    let poll = match step.get("poll_ms") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= 10_000 => Some(Duration::from_millis(ms)),
            _ => {
                return vec![
                    "`poll_ms` must be a whole number of milliseconds, at most 10000".into(),
                ]
            }
        },
    };
    check_keys(
        req,
        &["method", "path", "headers", "body", "body_raw", "stream"],
        "request",
        &mut errs,
    );
    check_keys(
        exp,
        &[
            "status",
            "headers",
            "headers_absent",
            "body",
            "body_match",
            "body_empty",
            "body_sse",
        ],
        "expect",
        &mut errs,
    );
    if !errs.is_empty() {
        return errs;
    }
    let built = match build_request(req, vars) {
        Ok(b) => b,
        Err(e) => return vec![e],
    };
    // `poll_ms`: the exchange is repeated (every 20 ms) until its expectation holds, for state
    // that changes on its own (a task finishing, a retention running out).
    let started = std::time::Instant::now();
    let reply = loop {
        let reply = match send(
            s,
            &built.method,
            &built.path,
            &built.headers,
            &built.body,
            built.stream,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return vec![format!("{} {}: {e}", built.method, built.path)],
        };
        let mut found = match check_reply(exp, &reply, vars) {
            Ok(e) => e,
            Err(e) => vec![e],
        };
        match poll {
            Some(limit) if !found.is_empty() && started.elapsed() < limit => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => {
                if !found.is_empty() && poll.is_some() {
                    found.push(format!("(still so after polling for {poll:?})"));
                }
                errs.append(&mut found);
                break reply;
            }
        }
    };
    if let Some(spec) = step.get("capture") {
        match capture_values(spec, &reply) {
            Ok(found) => vars.extend(found),
            Err(e) => errs.push(e),
        }
    }
    if !errs.is_empty() {
        errs.push(format!(
            "request: {} {}\nresponse: {} {}\n{}",
            built.method,
            built.path,
            reply.status,
            reply
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(" | "),
            truncate(&reply.text(), 1500)
        ));
    }
    errs
}

/// A step's `capture`: `{"name": "/json/pointer"}` takes a member of the JSON response body (a
/// string as it is, anything else as its JSON text), `{"name": "header:Header-Name"}` a response
/// header. Later steps (and expectations) use the value as `{{capture:name}}`.
fn capture_values(spec: &Value, reply: &RawReply) -> Result<Vec<(String, String)>, String> {
    let spec = spec
        .as_object()
        .ok_or("`capture` must be an object of name -> \"/json/pointer\" or \"header:Name\"")?;
    let mut out = Vec::new();
    for (name, source) in spec {
        let good_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !good_name {
            return Err(format!(
                "capture name {name:?} must be letters, digits, `_` or `-`"
            ));
        }
        let source = source
            .as_str()
            .ok_or_else(|| format!("capture.{name} must be a string"))?;
        let value = if let Some(header) = source.strip_prefix("header:") {
            reply
                .header(header)
                .map(str::to_owned)
                .ok_or_else(|| format!("capture.{name}: the response has no {header} header"))?
        } else if source.is_empty() || source.starts_with('/') {
            let body = reply
                .json()
                .map_err(|e| format!("capture.{name}: the body is not JSON ({e})"))?;
            match body.pointer(source) {
                Some(Value::String(v)) => v.clone(),
                Some(other) => other.to_string(),
                None => return Err(format!("capture.{name}: nothing at {source:?} in the body")),
            }
        } else {
            return Err(format!(
                "capture.{name}: use a JSON pointer (\"/result/x\") or \"header:Name\""
            ));
        };
        out.push((format!("capture:{name}"), value));
    }
    Ok(out)
}

struct Built {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    stream: bool,
}

fn build_request(
    req: &Map<String, Value>,
    vars: &BTreeMap<String, String>,
) -> Result<Built, String> {
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .ok_or("request.method (a string) is required")?
        .to_owned();
    let path = subst(
        req.get("path")
            .and_then(Value::as_str)
            .ok_or("request.path (a string) is required")?,
        vars,
        false,
    )?;
    let mut headers = Vec::new();
    match req.get("headers") {
        None => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("request header {k} must be a string"))?;
                headers.push((k.clone(), subst(v, vars, false)?));
            }
        }
        Some(_) => return Err("request.headers must be an object of strings".into()),
    }
    let body = match (req.get("body"), req.get("body_raw")) {
        (Some(_), Some(_)) => return Err("request has both `body` and `body_raw`".into()),
        (Some(b), None) => serde_json::to_vec(&subst_json(b, vars, false)?).unwrap(),
        (None, Some(Value::String(raw))) => subst(raw, vars, false)?.into_bytes(),
        (None, Some(_)) => return Err("request.body_raw must be a string".into()),
        (None, None) => Vec::new(),
    };
    let stream = match req.get("stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("request.stream must be a boolean".into()),
    };
    Ok(Built {
        method,
        path,
        headers,
        body,
        stream,
    })
}

fn check_reply(
    exp: &Map<String, Value>,
    reply: &RawReply,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut errs = Vec::new();
    let status = exp
        .get("status")
        .and_then(Value::as_u64)
        .ok_or("expect.status (an integer) is required")?;
    if u64::from(reply.status) != status {
        errs.push(format!("status: expected {status}, got {}", reply.status));
    }
    if let Some(h) = exp.get("headers") {
        let h = h.as_object().ok_or("expect.headers must be an object")?;
        for (name, want) in h {
            let lname = name.to_ascii_lowercase();
            let got: Vec<&str> = reply
                .headers
                .iter()
                .filter(|(k, _)| *k == lname)
                .map(|(_, v)| v.as_str())
                .collect();
            let (pattern, exact) = match want {
                Value::String(s) => (subst(s, vars, false)?, true),
                Value::Object(o) => match o.get("pattern").and_then(Value::as_str) {
                    Some(p) if o.len() == 1 => (subst(p, vars, true)?, false),
                    _ => {
                        return Err(format!(
                            "expect.headers.{name}: use a string or {{\"pattern\": \"...\"}}"
                        ))
                    }
                },
                _ => {
                    return Err(format!(
                        "expect.headers.{name}: use a string or {{\"pattern\": \"...\"}}"
                    ))
                }
            };
            let ok = got.iter().any(|g| {
                if exact {
                    *g == pattern
                } else {
                    glob(&pattern, g)
                }
            });
            if !ok {
                errs.push(format!(
                    "header {name}: expected {}{pattern:?}, got {}",
                    if exact { "" } else { "pattern " },
                    if got.is_empty() {
                        "no such header".to_owned()
                    } else {
                        format!("{got:?}")
                    }
                ));
            }
        }
    }
    if let Some(absent) = exp.get("headers_absent") {
        let absent = string_list(absent).ok_or("expect.headers_absent must be a list of names")?;
        for name in absent {
            if let Some(v) = reply.header(&name) {
                errs.push(format!("header {name} must be absent, got {v:?}"));
            }
        }
    }
    let subset = match exp.get("body_match").map(|v| v.as_str()) {
        None | Some(Some("exact")) => false,
        Some(Some("subset")) => true,
        _ => return Err("expect.body_match must be \"exact\" or \"subset\"".into()),
    };
    if let Some(want) = exp.get("body") {
        let want = subst_json(want, vars, true)?;
        match serde_json::from_slice::<Value>(&reply.body) {
            Ok(got) => match_json(&want, &got, subset, "$", &mut errs),
            Err(e) => errs.push(format!("body: expected JSON, but it does not parse ({e})")),
        }
    }
    if exp.get("body_empty") == Some(&Value::Bool(true)) && !reply.body.is_empty() {
        errs.push(format!(
            "body: expected empty, got {} bytes",
            reply.body.len()
        ));
    }
    if let Some(events) = exp.get("body_sse") {
        let Value::Array(events) = subst_json(events, vars, true)? else {
            return Err(
                "expect.body_sse must be a list of JSON values (one per data event)".into(),
            );
        };
        match parse_sse(&reply.text()) {
            Err(e) => errs.push(format!("body_sse: {e}")),
            Ok(got) => {
                if got.len() != events.len() {
                    errs.push(format!(
                        "body_sse: expected {} data events, got {}",
                        events.len(),
                        got.len()
                    ));
                }
                for (i, (w, g)) in events.iter().zip(&got).enumerate() {
                    match_json(w, g, subset, &format!("event[{i}]"), &mut errs);
                }
            }
        }
    }
    Ok(errs)
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

// ------------------------------------------------------------------------------------------
// Matching
// ------------------------------------------------------------------------------------------

/// Compares `got` with `want`, recording every difference with its JSON path.
/// String wildcards: `"{{any}}"` (any value), `"{{string}}"`, `"{{uint}}"`, `"{{bool}}"`; a
/// string holding `{{any}}` or `{{vchar}}` among other text is a glob. Numbers compare by value.
/// With `subset`, objects may carry extra members; arrays are always compared element by element.
fn match_json(want: &Value, got: &Value, subset: bool, path: &str, errs: &mut Vec<String>) {
    let mismatch = |errs: &mut Vec<String>, what: &str| {
        errs.push(format!(
            "{path}: expected {what}, got {}",
            truncate(&got.to_string(), 300)
        ))
    };
    match want {
        Value::String(w) if w == "{{any}}" => {}
        Value::String(w) if w == "{{string}}" => {
            if !got.is_string() {
                mismatch(errs, "a string");
            }
        }
        Value::String(w) if w == "{{uint}}" => {
            if !got.is_u64() {
                mismatch(errs, "a non-negative integer");
            }
        }
        Value::String(w) if w == "{{bool}}" => {
            if !got.is_boolean() {
                mismatch(errs, "a boolean");
            }
        }
        Value::String(w) if w.contains("{{any}}") || w.contains("{{vchar}}") => match got {
            Value::String(g) if glob(w, g) => {}
            _ => mismatch(errs, &format!("a string matching {w:?}")),
        },
        Value::Number(w) => {
            let same = match got {
                Value::Number(g) => {
                    (w.as_i64().is_some() && w.as_i64() == g.as_i64())
                        || (w.as_u64().is_some() && w.as_u64() == g.as_u64())
                        || (w.is_f64() || g.is_f64()) && w.as_f64() == g.as_f64()
                }
                _ => false,
            };
            if !same {
                mismatch(errs, &w.to_string());
            }
        }
        Value::Array(w) => match got {
            Value::Array(g) => {
                if w.len() != g.len() {
                    errs.push(format!(
                        "{path}: expected {} elements, got {}: {}",
                        w.len(),
                        g.len(),
                        truncate(&got.to_string(), 300)
                    ));
                }
                for (i, (wi, gi)) in w.iter().zip(g).enumerate() {
                    match_json(wi, gi, subset, &format!("{path}[{i}]"), errs);
                }
            }
            _ => mismatch(errs, "an array"),
        },
        Value::Object(w) => match got {
            Value::Object(g) => {
                for (k, wv) in w {
                    match g.get(k) {
                        Some(gv) => match_json(wv, gv, subset, &format!("{path}.{k}"), errs),
                        None => errs.push(format!("{path}.{k}: missing (expected {wv})")),
                    }
                }
                if !subset {
                    for (k, gv) in g {
                        if !w.contains_key(k) {
                            errs.push(format!(
                                "{path}.{k}: unexpected member, got {}",
                                truncate(&gv.to_string(), 200)
                            ));
                        }
                    }
                }
            }
            _ => mismatch(errs, "an object"),
        },
        other => {
            if other != got {
                mismatch(errs, &other.to_string());
            }
        }
    }
}

/// Glob match: `{{any}}` is any run of characters (maybe none), `{{vchar}}` one or more visible
/// ASCII characters (0x21-0x7E); everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    enum Tok<'a> {
        Lit(&'a str),
        Any,
        Vchar,
    }
    let mut toks = Vec::new();
    let mut rest = pattern;
    loop {
        let next = [("{{any}}", 0u8), ("{{vchar}}", 1u8)]
            .iter()
            .filter_map(|(t, k)| rest.find(t).map(|i| (i, t.len(), *k)))
            .min_by_key(|(i, _, _)| *i);
        match next {
            None => {
                if !rest.is_empty() {
                    toks.push(Tok::Lit(rest));
                }
                break;
            }
            Some((i, len, kind)) => {
                if i > 0 {
                    toks.push(Tok::Lit(&rest[..i]));
                }
                toks.push(if kind == 0 { Tok::Any } else { Tok::Vchar });
                rest = &rest[i + len..];
            }
        }
    }
    fn go(toks: &[Tok<'_>], text: &str) -> bool {
        match toks.first() {
            None => text.is_empty(),
            Some(Tok::Lit(l)) => text.strip_prefix(l).is_some_and(|r| go(&toks[1..], r)),
            Some(Tok::Any) => (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .any(|i| go(&toks[1..], &text[i..])),
            Some(Tok::Vchar) => {
                let run = text
                    .bytes()
                    .take_while(|b| (0x21..=0x7e).contains(b))
                    .count();
                (1..=run).any(|i| go(&toks[1..], &text[i..]))
            }
        }
    }
    go(&toks, text)
}

/// The JSON payloads of an SSE body's events, in order; events without data (comments,
/// keep-alives, priming events) are skipped.
fn parse_sse(text: &str) -> Result<Vec<Value>, String> {
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for event in text.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() || data.iter().all(|d| d.is_empty()) {
            continue;
        }
        let joined = data.join("\n");
        out.push(
            serde_json::from_str(&joined)
                .map_err(|e| format!("event data is not JSON ({e}): {joined:?}"))?,
        );
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// The request goes to the service in process; the reply is read back from it
// ------------------------------------------------------------------------------------------

struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Hands the service exactly the given headers, adding `Host` (unless given) and
/// `Content-Length` (unless given, so a fixture can declare a length that differs from the
/// bytes sent), as a raw HTTP/1.1 client would. With `head_only`, takes the status and
/// headers and drops the body (for streams that stay open).
async fn send(
    s: &FixtureServer,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> Result<RawReply, String> {
    #[cfg(feature = "http2")]
    if let Some((addr, _)) = &s.h2c {
        return send_h2c(*addr, method, path, headers, body, head_only).await;
    }
    let service = &s.service;
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut req = http::Request::builder().method(method).uri(path);
    if !has("host") {
        req = req.header("host", HOST);
    }
    for (k, v) in headers {
        let value =
            http::HeaderValue::from_bytes(v.as_bytes()).map_err(|e| format!("header {k}: {e}"))?;
        req = req.header(k.as_str(), value);
    }
    if !has("content-length") && (!body.is_empty() || method == "POST") {
        req = req.header("content-length", body.len());
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("request: {e}"))?;
    let exchange = async {
        let resp = service.call(req).await.unwrap_or_else(|e| match e {});
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = if head_only {
            Vec::new()
        } else {
            let collected = resp.into_body().collect().await;
            collected.unwrap_or_else(|e| match e {}).to_bytes().to_vec()
        };
        RawReply {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no complete response within {REQUEST_TIMEOUT:?}"))
}

/// One exchange on a fresh prior-knowledge h2c connection. The fixture's Host (or the default)
/// is the URI's authority, which hyper sends as `:authority`; HTTP/2 has no other place for it.
#[cfg(feature = "http2")]
async fn send_h2c(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> Result<RawReply, String> {
    let authority = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or(HOST, |(_, v)| v.as_str());
    let mut req = http::Request::builder()
        .method(method)
        .version(http::Version::HTTP_2)
        .uri(format!("http://{authority}{path}"));
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        let value =
            http::HeaderValue::from_bytes(v.as_bytes()).map_err(|e| format!("header {k}: {e}"))?;
        req = req.header(k.as_str(), value);
    }
    if !has("content-length") && (!body.is_empty() || method == "POST") {
        req = req.header("content-length", body.len());
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("request: {e}"))?;
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .map_err(|e| format!("h2c handshake: {e}"))?;
        tokio::spawn(conn);
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("h2c request: {e}"))?;
        if resp.version() != http::Version::HTTP_2 {
            return Err(format!("answered over {:?}", resp.version()));
        }
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = if head_only {
            Vec::new()
        } else {
            resp.into_body()
                .collect()
                .await
                .map_err(|e| format!("h2c body: {e}"))?
                .to_bytes()
                .to_vec()
        };
        Ok(RawReply {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no complete response within {REQUEST_TIMEOUT:?}"))?
}

#[test]
fn glob_matches_wildcards() {
    assert!(glob("abc", "abc"));
    assert!(!glob("abc", "abcd"));
    assert!(glob("a{{any}}d", "abcd"));
    assert!(glob("a{{any}}", "a"));
    assert!(glob("{{vchar}}", "x-Y_9"));
    assert!(!glob("{{vchar}}", ""));
    assert!(!glob("{{vchar}}", "a b"));
    assert!(glob(
        "Bearer {{any}}resource_metadata=\"x\"",
        "Bearer error=\"e\", resource_metadata=\"x\""
    ));
}

#[test]
fn match_json_reports_differences() {
    use serde_json::json;
    let run = |want: Value, got: Value, subset: bool| {
        let mut errs = Vec::new();
        match_json(&want, &got, subset, "$", &mut errs);
        errs
    };
    assert!(run(
        json!({"a": 1, "b": "{{any}}"}),
        json!({"a": 1.0, "b": [1]}),
        false
    )
    .is_empty());
    assert_eq!(run(json!({"id": "7"}), json!({"id": 7}), false).len(), 1);
    assert_eq!(
        run(json!({"a": 1}), json!({"a": 1, "x": 2}), false).len(),
        1
    );
    assert!(run(json!({"a": 1}), json!({"a": 1, "x": 2}), true).is_empty());
    assert_eq!(run(json!([1, 2]), json!([1]), true).len(), 1);
    assert_eq!(
        run(json!({"t": "{{uint}}"}), json!({"t": -1}), false).len(),
        1
    );
    assert_eq!(
        run(json!({"t": "{{string}}"}), json!({"t": null}), false).len(),
        1
    );
    assert!(run(json!("id-{{vchar}}"), json!("id-abc"), false).is_empty());
    assert_eq!(run(json!({"m": "x"}), json!({}), false).len(), 1);
}

#[test]
fn placeholders_are_substituted_or_refused() {
    let mut vars = BTreeMap::new();
    vars.insert("host".to_owned(), "127.0.0.1:1".to_owned());
    assert_eq!(subst("h={{host}}", &vars, false).unwrap(), "h=127.0.0.1:1");
    assert_eq!(subst("{{any}}", &vars, true).unwrap(), "{{any}}");
    assert!(subst("{{any}}", &vars, false).is_err());
    assert!(subst("{{nope}}", &vars, true).is_err());
    assert!(subst("{{session}}", &vars, false).is_err());
    assert!(subst("{{host", &vars, false).is_err());
}

#[test]
fn file_names_follow_the_scheme() {
    assert!(valid_file_name("001-any-healthz.json"));
    assert!(valid_file_name("120-legacy-get-stream-opens.json"));
    assert!(!valid_file_name("1-any-x.json"));
    assert!(!valid_file_name("001-modern-x.json"));
    assert!(!valid_file_name("001-2026-Upper.json"));
}

#[test]
fn capture_reads_body_pointers_and_headers() {
    let reply = RawReply {
        status: 200,
        headers: vec![("mcp-session-id".into(), "abc".into())],
        body: br#"{"result":{"requestState":"s.t","n":3}}"#.to_vec(),
    };
    let got = capture_values(
        &json!({"state": "/result/requestState", "n": "/result/n", "sid": "header:Mcp-Session-Id"}),
        &reply,
    )
    .unwrap();
    let got: BTreeMap<String, String> = got.into_iter().collect();
    assert_eq!(got["capture:state"], "s.t");
    assert_eq!(got["capture:n"], "3");
    assert_eq!(got["capture:sid"], "abc");
    assert!(capture_values(&json!({"x": "/result/missing"}), &reply).is_err());
    assert!(capture_values(&json!({"x": "header:Nope"}), &reply).is_err());
    assert!(capture_values(&json!({"x": "result"}), &reply).is_err());
    let vars = BTreeMap::new();
    assert!(subst("{{capture:state}}", &vars, false).is_err());
}
