//! End-to-end loopback tests of server behaviours the smoke and fixture tests leave out: handler
//! panics, SSE progress and logging, cancellation, server-to-client requests, MRTR sealed state,
//! session expiry, caps and DELETE, the GET stream and change notifications,
//! `subscriptions/listen`, resources, prompts and completion, `x-mcp-header`, graceful shutdown,
//! and request log lines that never hold a bearer token.
//!
//! Streaming replies are read with [`Conn`], a small client that takes SSE frames off the socket
//! one at a time; every wait is bounded by [`WAIT`].

mod support;

use std::future::Future;
use std::io::Read as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use support::*;
use support::{guide, DevIssuer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vouch_mcp::auth::{AudiencePolicy, Authenticator, Policy, StaticKeys};
use vouch_mcp::prompt;
use vouch_mcp::resource::{blob_contents, text_contents};
use vouch_mcp::{
    content, BuildError, CallToolResult, ClientRequestError, InputRequired, ListChanged, LogLevel,
    Notifier, Prompt, RequestContext, Resource, ResourceTemplate, Schema, Server, ServerBuilder,
    Tool, ToolError, ToolResult,
};

/// The bound on every wait for the server.
const WAIT: Duration = Duration::from_secs(3);
/// Accept value of a client that takes either reply form.
const BOTH: &str = "application/json, text/event-stream";
/// `_meta` keys of 2026-07-28.
const CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const SUB_ID: &str = "io.modelcontextprotocol/subscriptionId";

// ---------------------------------------------------------------------------------------------
// A streaming HTTP/1.1 client.
// ---------------------------------------------------------------------------------------------

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How the response body is delimited.
#[derive(Debug)]
enum Framing {
    Chunked,
    Length(usize),
    Close,
}

/// One SSE block, or why there is none.
#[derive(Debug)]
enum Frame {
    /// Only comment lines (keep-alives).
    Comment(String),
    /// Fields without a JSON message: the priming event (`id:` and empty `data:`) or `retry:`.
    Control,
    /// A `data:` event holding JSON.
    Message(Value),
    /// The body ended.
    End,
    /// Nothing arrived in time.
    Timeout,
}

/// One request on its own connection, whose response body is read incrementally.
struct Conn {
    stream: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    framing: Framing,
    /// Bytes read but not yet de-framed.
    raw: Vec<u8>,
    /// Body bytes not yet consumed.
    body: Vec<u8>,
    done: bool,
}

impl Conn {
    /// Sends the request and reads the response head.
    async fn open(addr: SocketAddr, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Conn {
        let mut req = format!("{method} /mcp HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("Connection: close\r\n\r\n");
        let mut stream = bounded(TcpStream::connect(addr)).await.unwrap();
        stream.write_all(req.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let deadline = Instant::now() + WAIT;
        let mut raw = Vec::new();
        let split = loop {
            if let Some(p) = find(&raw, b"\r\n\r\n") {
                break p;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .expect("response head in time")
                .expect("readable socket");
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let framing = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Framing::Chunked
        } else if let Some(n) = get("content-length") {
            Framing::Length(n.parse().expect("numeric content-length"))
        } else if status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            Framing::Close
        };
        let rest = raw.split_off(split + 4);
        let mut conn = Conn {
            stream,
            status,
            headers,
            framing,
            raw: rest,
            body: Vec::new(),
            done: false,
        };
        conn.decode();
        conn
    }

    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Moves complete body bytes from `raw` to `body`.
    fn decode(&mut self) {
        match &mut self.framing {
            Framing::Length(left) => {
                let n = (*left).min(self.raw.len());
                self.body.extend(self.raw.drain(..n));
                *left -= n;
                if *left == 0 {
                    self.done = true;
                }
            }
            Framing::Close => self.body.append(&mut self.raw),
            Framing::Chunked => {
                while let Some(eol) = find(&self.raw, b"\r\n") {
                    let size_text = String::from_utf8_lossy(&self.raw[..eol]).into_owned();
                    let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
                    let size = usize::from_str_radix(&size_text, 16).expect("chunk size");
                    if size == 0 {
                        self.done = true;
                        self.raw.clear();
                        break;
                    }
                    if self.raw.len() < eol + 2 + size + 2 {
                        break;
                    }
                    self.body
                        .extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
                    self.raw.drain(..eol + 2 + size + 2);
                }
            }
        }
    }

    /// Reads more bytes: `None` on timeout, `Some(false)` at end of connection.
    async fn read_more(&mut self, deadline: Instant) -> Option<bool> {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
            Err(_) => None,
            Ok(Ok(0) | Err(_)) => Some(false),
            Ok(Ok(n)) => {
                self.raw.extend_from_slice(&buf[..n]);
                self.decode();
                Some(true)
            }
        }
    }

    /// The next SSE block within `within`.
    async fn next_frame(&mut self, within: Duration) -> Frame {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = find(&self.body, b"\n\n") {
                let block: Vec<u8> = self.body.drain(..p + 2).collect();
                return parse_block(&String::from_utf8_lossy(&block[..p]));
            }
            if self.done {
                return Frame::End;
            }
            match self.read_more(deadline).await {
                None => return Frame::Timeout,
                Some(false) => self.done = true,
                Some(true) => {}
            }
        }
    }

    /// The next SSE message, skipping keep-alive comments.
    async fn message(&mut self) -> Value {
        loop {
            match self.next_frame(WAIT).await {
                Frame::Comment(_) | Frame::Control => continue,
                Frame::Message(m) => return m,
                other => panic!("expected an SSE message, got {other:?}"),
            }
        }
    }

    /// The next keep-alive comment (messages before it are a failure; control frames are skipped).
    async fn comment(&mut self) -> String {
        loop {
            match self.next_frame(WAIT).await {
                Frame::Comment(c) => return c,
                Frame::Control => continue,
                other => panic!("expected an SSE comment, got {other:?}"),
            }
        }
    }

    /// True when the body ends in time with nothing but comments before the end.
    async fn ends(&mut self) -> bool {
        loop {
            match self.next_frame(WAIT).await {
                Frame::Comment(_) | Frame::Control => continue,
                Frame::End => return true,
                Frame::Timeout => return false,
                Frame::Message(m) => panic!("unexpected message before the end: {m}"),
            }
        }
    }

    /// The whole (non-streamed) body as JSON.
    async fn json(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        while !self.done {
            match self.read_more(deadline).await {
                None => panic!("body not complete in time"),
                Some(false) => self.done = true,
                Some(true) => {}
            }
        }
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A call answered as SSE: its messages before the response, then the response; the stream
    /// must end after the response.
    async fn call(&mut self) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let m = self.message().await;
            if m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some()) {
                assert!(self.ends().await, "the stream goes on after the response");
                return (before, m);
            }
            before.push(m);
        }
    }
}

fn parse_block(block: &str) -> Frame {
    let mut data = Vec::new();
    let mut comments = Vec::new();
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            comments.push(c.trim().to_owned());
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
        }
    }
    let text = data.join("\n");
    if text.trim().is_empty() {
        return if block.lines().all(|l| l.starts_with(':')) {
            Frame::Comment(comments.join("\n"))
        } else {
            Frame::Control
        };
    }
    Frame::Message(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {text}")),
    )
}

/// Awaits `f` for at most [`WAIT`].
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("the server answered in time")
}

// ---------------------------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------------------------

/// A POST to send: headers and a JSON body, adjustable before sending.
#[derive(Debug, Clone)]
struct Req {
    headers: Vec<(String, String)>,
    body: Value,
}

impl Req {
    /// A body with Authorization, Content-Type and Accept (both forms).
    fn plain(token: &str, body: Value) -> Self {
        Self {
            headers: Vec::new(),
            body,
        }
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("Accept", BOTH)
    }

    /// A 2026-07-28 request with every standard header right and no client capabilities.
    fn modern(token: &str, id: Value, method: &str, mut params: Value) -> Self {
        let name = match method {
            "tools/call" | "prompts/get" => params.get("name"),
            "resources/read" => params.get("uri"),
            _ => None,
        }
        .and_then(Value::as_str)
        .map(str::to_owned);
        params["_meta"] = modern_meta();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut req = Self::plain(token, body)
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", method);
        if let Some(n) = name {
            req = req.header("Mcp-Name", &n);
        }
        req
    }

    /// A legacy message on a session.
    fn legacy(token: &str, session: &str, body: Value) -> Self {
        Self::plain(token, body).header("Mcp-Session-Id", session)
    }

    /// Sets a header, replacing any of the same name.
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets `params._meta[key]`.
    fn meta(mut self, key: &str, value: Value) -> Self {
        self.body["params"]["_meta"][key] = value;
        self
    }

    /// Sets the 2026-07-28 declared client capabilities.
    fn caps(self, caps: Value) -> Self {
        self.meta(CAPS, caps)
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Sends and reads the whole reply.
    async fn send(&self, addr: SocketAddr) -> Reply {
        let body = self.body.to_string();
        bounded(raw(addr, "POST", "/mcp", &self.pairs(), body.as_bytes())).await
    }

    /// Sends and reads only the response head; the body is read through the [`Conn`].
    async fn open(&self, addr: SocketAddr) -> Conn {
        let body = self.body.to_string();
        Conn::open(addr, "POST", &self.pairs(), body.as_bytes()).await
    }
}

fn call(id: Value, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

fn rpc(id: Value, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Runs a 2025-11-25 initialize declaring `caps`; returns the session id.
async fn init(addr: SocketAddr, token: &str, caps: Value) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": caps,
        "clientInfo": {"name": "test", "version": "0"}}});
    let r = Req::plain(token, body).send(addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("mcp-session-id").expect("session id").to_owned()
}

/// Opens the session's GET stream.
async fn get_stream(addr: SocketAddr, token: &str, session: &str) -> Conn {
    let auth = format!("Bearer {token}");
    Conn::open(
        addr,
        "GET",
        &[
            ("Authorization", &auth),
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", session),
        ],
        b"",
    )
    .await
}

async fn delete(addr: SocketAddr, token: &str, session: &str) -> Reply {
    let auth = format!("Bearer {token}");
    bounded(raw(
        addr,
        "DELETE",
        "/mcp",
        &[("Authorization", &auth), ("Mcp-Session-Id", session)],
        b"",
    ))
    .await
}

/// The first text block of a tools/call response.
fn text_of(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {response}"))
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error response: {response}"))
}

/// The support server with `configure` applied to its builder.
async fn start_with(
    configure: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
) -> TestServer {
    start(Options {
        configure: Some(Box::new(configure)),
        ..Options::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// A server this file controls (for `Server::session_count` and the shutdown signal).
// ---------------------------------------------------------------------------------------------

struct Own {
    addr: SocketAddr,
    resource: String,
    issuer: DevIssuer,
    server: Server,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<std::io::Result<()>>>,
}

impl Own {
    fn token(&self, sub: &str) -> String {
        let claims = self.issuer.claims(
            &self.resource,
            sub,
            &format!("{sub}@example.com"),
            false,
            now(),
            3600,
        );
        self.issuer.mint(&claims)
    }

    fn shut_down(&mut self) {
        let _ = self.stop.take().expect("not stopped yet").send(());
    }
}

async fn own(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Own {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://localhost:{}/mcp", addr.port());
    let issuer = test_issuer();
    let keys = Arc::new(StaticKeys(Arc::new(issuer.key_set())));
    let policy = Policy::new(ISSUER, AudiencePolicy::OneOf(vec![resource.clone()]));
    let builder = ServerBuilder::new("vouch-mcp", "0.1.0", resource.clone())
        .authenticator(Authenticator::new(policy, keys, Vec::new()))
        .tool(guide::whoami());
    let server = configure(builder).build().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    Own {
        addr,
        resource,
        issuer,
        server,
        stop: Some(stop),
        serving: Some(serving),
    }
}

// ---------------------------------------------------------------------------------------------
// Test tools.
// ---------------------------------------------------------------------------------------------

type Events = mpsc::UnboundedReceiver<String>;

async fn expect_event(events: &mut Events, want: &str) {
    let got = bounded(events.recv()).await.expect("event channel open");
    assert_eq!(got, want);
}

/// Panics, with internals in the panic message.
fn boom() -> Tool {
    Tool::new(
        "boom",
        "Panics.",
        |_ctx: RequestContext, args: Map<String, Value>| async move {
            if args.is_empty() {
                panic!("secret-internal-detail in /srv/db.rs:42");
            }
            Ok(CallToolResult::text("unreachable"))
        },
    )
}

/// Three rising progress reports, an info and a debug log line, then "done".
fn reporter() -> Tool {
    Tool::new(
        "report",
        "Reports progress and logs, then finishes.",
        |ctx: RequestContext| async move {
            for step in 1..=3 {
                ctx.progress(f64::from(step), Some(3.0), Some("working"))
                    .await;
            }
            ctx.log(LogLevel::Info, Some("report"), json!({"note": "info-line"}))
                .await;
            ctx.log(LogLevel::Debug, Some("report"), json!("debug-line"))
                .await;
            Ok(CallToolResult::text("done"))
        },
    )
}

/// Reports progress once, says "started", then waits for cancellation ("cancelled") or 10 s.
fn waiter(events: mpsc::UnboundedSender<String>) -> Tool {
    Tool::new(
        "wait",
        "Waits until cancelled.",
        move |ctx: RequestContext| {
            let events = events.clone();
            async move {
                ctx.progress(1.0, None, Some("waiting")).await;
                let _ = events.send("started".into());
                tokio::select! {
                    _ = ctx.cancellation().cancelled() => {
                        let _ = events.send("cancelled".into());
                        Ok(CallToolResult::error("cancelled"))
                    }
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {
                        let _ = events.send("slept".into());
                        Ok(CallToolResult::text("slept"))
                    }
                }
            }
        },
    )
}

/// Asks the client's model through a server-to-client request; reports failures as events.
fn asker(events: mpsc::UnboundedSender<String>) -> Tool {
    Tool::new(
        "ask",
        "Asks the client's model.",
        move |ctx: RequestContext| {
            let events = events.clone();
            async move {
                let params = json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": "6*7?"}}],
                    "maxTokens": 10
                });
                match ctx.request_client("sampling/createMessage", params).await {
                    Ok(answer) => Ok(CallToolResult::text(format!(
                        "model said {}",
                        answer["content"]["text"].as_str().unwrap_or("?")
                    ))),
                    Err(e) => {
                        let _ = events.send(format!("{e:?}"));
                        match e {
                            ClientRequestError::CapabilityMissing(cap) => {
                                let mut caps = Map::new();
                                caps.insert(cap.into(), json!({}));
                                Err(ToolError::MissingCapability(Value::Object(caps)))
                            }
                            other => Err(ToolError::Failed(other.to_string())),
                        }
                    }
                }
            }
        },
    )
}

/// First round: asks for confirmation with state "step-2 for {item}". Retry: reports the
/// unsealed state it saw (also as an event) and the answer.
fn confirmer(name: &str, seen: mpsc::UnboundedSender<String>) -> Tool {
    Tool::new(
        name,
        "Confirms before acting.",
        move |ctx: RequestContext, args: Map<String, Value>| {
            let seen = seen.clone();
            async move {
                if let (Some(state), Some(answers)) = (ctx.request_state(), ctx.input_responses()) {
                    let _ = seen.send(state.to_owned());
                    let proceed = answers
                        .get("go")
                        .and_then(|a| a["content"]["proceed"].as_bool())
                        .unwrap_or(false);
                    return Ok(CallToolResult::text(format!(
                        "state={state} proceed={proceed}"
                    )));
                }
                let item = args.get("item").and_then(Value::as_str).unwrap_or("");
                let ask = InputRequired::new()
                    .elicit(
                        "go",
                        "Proceed?",
                        json!({"type": "object", "properties": {"proceed": {"type": "boolean"}}}),
                    )
                    .state(format!("step-2 for {item}"));
                Err(ask.into())
            }
        },
    )
    .input(Schema::from_json(json!({
        "type": "object",
        "properties": {"item": {"type": "string"}},
        "required": ["item"]
    })))
}

/// Echoes its header-mirrored arguments.
fn regional() -> Tool {
    Tool::new(
        "regional",
        "Acts in a region.",
        |_ctx: RequestContext, args: Map<String, Value>| async move {
            Ok(CallToolResult::text(format!(
                "{}/{}",
                args.get("region").and_then(Value::as_str).unwrap_or("-"),
                args.get("count").map_or("-".to_owned(), Value::to_string)
            )))
        },
    )
    .input(Schema::from_json(json!({
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"}
        }
    })))
}

// ---------------------------------------------------------------------------------------------
// 1. Handler panics.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn panicking_handler_answers_internal_error_and_the_server_keeps_serving() {
    let s = start_with(|b| b.tool(boom())).await;
    let token = s.token("alice", false);
    let check = |r: &Reply, id: Value| {
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["id"], id);
        assert_eq!(error_code(&v), -32603);
        assert_eq!(v["error"]["message"], "Internal error");
        assert!(v["error"].get("data").is_none(), "{v}");
        let text = r.text();
        for leak in ["secret", "db.rs", "panick"] {
            assert!(!text.contains(leak), "reply leaks {leak:?}: {text}");
        }
    };

    // 2026-07-28.
    let r = Req::modern(&token, json!(1), "tools/call", json!({"name": "boom"}))
        .send(s.addr)
        .await;
    check(&r, json!(1));
    let r = Req::modern(&token, json!(2), "tools/call", json!({"name": "whoami"}))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["structuredContent"]["sub"], "alice");

    // Initialize era.
    let sid = init(s.addr, &token, json!({})).await;
    let r = Req::legacy(&token, &sid, call(json!("b"), "boom", json!({})))
        .send(s.addr)
        .await;
    check(&r, json!("b"));
    let r = Req::legacy(&token, &sid, call(json!(3), "whoami", json!({})))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["structuredContent"]["sub"], "alice");
}

// ---------------------------------------------------------------------------------------------
// 2. SSE progress and logging.
// ---------------------------------------------------------------------------------------------

/// The progress notifications of `messages` carry exactly `token` and rising values.
fn assert_progress(messages: &[Value], token: &Value) {
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{messages:?}");
    let mut last = f64::MIN;
    for p in progress {
        assert!(p.get("id").is_none(), "a notification has no id: {p}");
        assert_eq!(&p["params"]["progressToken"], token, "token type kept: {p}");
        let v = p["params"]["progress"].as_f64().expect("numeric progress");
        assert!(v > last, "progress must rise: {p}");
        last = v;
        assert_eq!(p["params"]["total"], 3.0);
    }
}

#[tokio::test]
async fn progress_switches_the_reply_to_sse_with_the_token_type_kept() {
    let s = start_with(|b| b.tool(reporter())).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let legacy_call = |id: Value, progress: Value| {
        let mut body = call(id, "report", json!({}));
        body["params"]["_meta"] = json!({"progressToken": progress});
        Req::legacy(&token, &sid, body)
    };
    let cases = [
        // A number stays a number, a string stays a string.
        Req::modern(&token, json!(11), "tools/call", json!({"name": "report"}))
            .meta("progressToken", json!(7)),
        Req::modern(&token, json!("s"), "tools/call", json!({"name": "report"}))
            .meta("progressToken", json!("tok-7")),
        legacy_call(json!(12), json!(8)),
        legacy_call(json!(13), json!("tok-8")),
    ];
    for req in cases {
        let id = req.body["id"].clone();
        let progress_token = req.body["params"]["_meta"]["progressToken"].clone();
        let mut conn = req.open(s.addr).await;
        assert_eq!(conn.status, 200);
        assert_eq!(conn.header("content-type"), Some("text/event-stream"));
        assert_eq!(conn.header("x-accel-buffering"), Some("no"));
        let (before, response) = conn.call().await;
        assert_progress(&before, &progress_token);
        // No log level was asked for, so no log lines.
        assert_eq!(before.len(), 3, "{before:?}");
        assert_eq!(response["id"], id);
        assert_eq!(text_of(&response), "done");
    }
}

#[tokio::test]
async fn reply_is_plain_json_without_progress_token_or_sse_accept() {
    let s = start_with(|b| b.tool(reporter())).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let mut legacy_with_token = call(json!(4), "report", json!({}));
    legacy_with_token["params"]["_meta"] = json!({"progressToken": 1});
    let cases = [
        Req::modern(&token, json!(1), "tools/call", json!({"name": "report"})),
        Req::modern(&token, json!(2), "tools/call", json!({"name": "report"}))
            .meta("progressToken", json!(1))
            .header("Accept", "application/json"),
        Req::legacy(&token, &sid, call(json!(3), "report", json!({}))),
        Req::legacy(&token, &sid, legacy_with_token).header("Accept", "application/json"),
    ];
    for req in cases {
        let r = req.send(s.addr).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["id"], req.body["id"]);
        assert_eq!(text_of(&v), "done");
    }
}

#[tokio::test]
async fn log_messages_are_sent_only_when_the_client_asked_for_a_level() {
    let s = start_with(|b| b.tool(reporter()).logging()).await;
    let token = s.token("alice", false);
    let level_of = |m: &Value| m["params"]["level"].as_str().unwrap_or("").to_owned();

    // 2026-07-28: `_meta` logLevel "info" gets the info line only, on this call's stream.
    let mut conn = Req::modern(&token, json!(1), "tools/call", json!({"name": "report"}))
        .meta(LOG_LEVEL, json!("info"))
        .open(s.addr)
        .await;
    assert_eq!(conn.header("content-type"), Some("text/event-stream"));
    let (before, response) = conn.call().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["method"], "notifications/message");
    assert_eq!(level_of(&before[0]), "info");
    assert_eq!(before[0]["params"]["logger"], "report");
    assert_eq!(before[0]["params"]["data"], json!({"note": "info-line"}));
    assert_eq!(text_of(&response), "done");

    // A level above both lines: nothing to stream, so plain JSON.
    let r = Req::modern(&token, json!(2), "tools/call", json!({"name": "report"}))
        .meta(LOG_LEVEL, json!("warning"))
        .send(s.addr)
        .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    // An unknown level is -32602.
    let r = Req::modern(&token, json!(3), "tools/call", json!({"name": "report"}))
        .meta(LOG_LEVEL, json!("loud"))
        .send(s.addr)
        .await;
    assert_eq!(error_code(&r.json()), -32602);

    // Initialize era: nothing before logging/setLevel (a 2026 `_meta` level does not count).
    let sid = init(s.addr, &token, json!({})).await;
    let mut body = call(json!(4), "report", json!({}));
    body["params"]["_meta"] = json!({LOG_LEVEL: "debug"});
    let r = Req::legacy(&token, &sid, body).send(s.addr).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = Req::legacy(
        &token,
        &sid,
        rpc(json!(5), "logging/setLevel", json!({"level": "debug"})),
    )
    .send(s.addr)
    .await;
    assert_eq!(r.json()["result"], json!({}));
    let mut conn = Req::legacy(&token, &sid, call(json!(6), "report", json!({})))
        .open(s.addr)
        .await;
    assert_eq!(conn.header("content-type"), Some("text/event-stream"));
    let (before, response) = conn.call().await;
    let levels: Vec<String> = before.iter().map(level_of).collect();
    assert_eq!(levels, ["info", "debug"]);
    assert_eq!(text_of(&response), "done");
}

// ---------------------------------------------------------------------------------------------
// 3. Cancellation.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn closing_the_sse_reply_cancels_the_handler_at_2026() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(waiter(tx))).await;
    let token = s.token("alice", false);
    let mut conn = Req::modern(&token, json!(1), "tools/call", json!({"name": "wait"}))
        .meta("progressToken", json!(1))
        .open(s.addr)
        .await;
    assert_eq!(conn.header("content-type"), Some("text/event-stream"));
    assert_eq!(conn.message().await["method"], "notifications/progress");
    expect_event(&mut events, "started").await;
    drop(conn);
    expect_event(&mut events, "cancelled").await;
}

#[tokio::test]
async fn abandoning_a_json_reply_cancels_the_handler_at_2026() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(waiter(tx))).await;
    let token = s.token("alice", false);
    // No progress token: the handler says nothing, so the reply would be plain JSON.
    let req = Req::modern(&token, json!(1), "tools/call", json!({"name": "wait"}));
    let body = req.body.to_string();
    let mut head = format!("POST /mcp HTTP/1.1\r\nHost: {}\r\n", s.addr);
    for (k, v) in req.pairs() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut stream = bounded(TcpStream::connect(s.addr)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    expect_event(&mut events, "started").await;
    drop(stream);
    expect_event(&mut events, "cancelled").await;
}

#[tokio::test]
async fn notifications_cancelled_cancels_the_in_flight_call_legacy() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(waiter(tx))).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let req = Req::legacy(&token, &sid, call(json!(5), "wait", json!({})));
    let addr = s.addr;
    let in_flight = tokio::spawn(async move { req.send(addr).await });
    expect_event(&mut events, "started").await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 5, "reason": "user gave up"}});
    let r = Req::legacy(&token, &sid, cancel).send(s.addr).await;
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
    expect_event(&mut events, "cancelled").await;
    // The POST ends (what it carries after a cancellation is not specified here).
    bounded(in_flight).await.unwrap();
}

#[tokio::test]
async fn disconnect_is_not_a_cancellation_legacy() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(waiter(tx))).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let mut body = call(json!(5), "wait", json!({}));
    body["params"]["_meta"] = json!({"progressToken": 1});
    let mut conn = Req::legacy(&token, &sid, body).open(s.addr).await;
    assert_eq!(conn.message().await["method"], "notifications/progress");
    expect_event(&mut events, "started").await;
    drop(conn);
    let next = tokio::time::timeout(Duration::from_millis(500), events.recv()).await;
    assert!(
        next.is_err(),
        "handler saw {next:?} after a legacy disconnect"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Server-to-client requests (initialize era).
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_to_client_request_round_trips_over_the_call_stream() {
    let (tx, _events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(asker(tx))).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({"sampling": {}})).await;
    let mut conn = Req::legacy(&token, &sid, call(json!(3), "ask", json!({})))
        .open(s.addr)
        .await;
    assert_eq!(conn.status, 200);
    assert_eq!(conn.header("content-type"), Some("text/event-stream"));
    assert_eq!(conn.header("mcp-session-id"), Some(sid.as_str()));
    let request = conn.message().await;
    assert_eq!(request["jsonrpc"], "2.0");
    assert_eq!(request["method"], "sampling/createMessage");
    assert_eq!(request["params"]["maxTokens"], 10);
    let server_id = request["id"].clone();
    assert!(server_id.is_string() || server_id.is_number(), "{request}");

    // An answer to an id nobody waits for is still accepted (202) and changes nothing.
    let stray = json!({"jsonrpc": "2.0", "id": "no-such-request", "result": {}});
    assert_eq!(
        Req::legacy(&token, &sid, stray).send(s.addr).await.status,
        202
    );
    let answer = json!({"jsonrpc": "2.0", "id": server_id, "result": {
        "role": "assistant", "content": {"type": "text", "text": "42"},
        "model": "test-model", "stopReason": "endTurn"}});
    let r = Req::legacy(&token, &sid, answer).send(s.addr).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty());

    let (before, response) = conn.call().await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(response["id"], 3);
    assert_eq!(response["result"]["isError"], false);
    assert_eq!(text_of(&response), "model said 42");
}

/// Returns the 2026-07-28 way: MissingCapability unless the request declared sampling.
fn needs_sampling() -> Tool {
    Tool::new(
        "needs-sampling",
        "Needs the client's model.",
        |ctx: RequestContext| async move {
            if ctx.client_capabilities().get("sampling").is_none() {
                return Err(ToolError::MissingCapability(json!({"sampling": {}})));
            }
            Ok(CallToolResult::text("sampling available"))
        },
    )
}

#[tokio::test]
async fn server_to_client_request_needs_the_declared_capability() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(asker(tx)).tool(needs_sampling())).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({"elicitation": {}})).await;
    let r = Req::legacy(&token, &sid, call(json!(3), "ask", json!({})))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(text_of(&v).contains("sampling"), "{v}");
    expect_event(&mut events, "CapabilityMissing(\"sampling\")").await;

    // At 2026-07-28 there are no server-to-client requests at all.
    let r = Req::modern(&token, json!(4), "tools/call", json!({"name": "ask"}))
        .caps(json!({"sampling": {}}))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["isError"], true);
    expect_event(&mut events, "Unsupported").await;

    // A tool's MissingCapability: HTTP 400 / -32021 at 2026-07-28, an isError result earlier.
    let r = Req::modern(
        &token,
        json!(5),
        "tools/call",
        json!({"name": "needs-sampling"}),
    )
    .send(s.addr)
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["id"], 5);
    assert_eq!(error_code(&v), -32021);
    assert_eq!(
        v["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    let r = Req::modern(
        &token,
        json!(6),
        "tools/call",
        json!({"name": "needs-sampling"}),
    )
    .caps(json!({"sampling": {}}))
    .send(s.addr)
    .await;
    assert_eq!(text_of(&r.json()), "sampling available");
    let r = Req::legacy(&token, &sid, call(json!(7), "needs-sampling", json!({})))
        .send(s.addr)
        .await;
    let v = r.json();
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(text_of(&v).contains("sampling"), "{v}");
}

// ---------------------------------------------------------------------------------------------
// 5. MRTR (2026-07-28).
// ---------------------------------------------------------------------------------------------

fn confirm_call(token: &str, id: Value, tool: &str, item: &str) -> Req {
    Req::modern(
        token,
        id,
        "tools/call",
        json!({"name": tool, "arguments": {"item": item}}),
    )
    .caps(json!({"elicitation": {}}))
}

fn retry(req: Req, sealed: &str) -> Req {
    let mut req = req;
    req.body["params"]["inputResponses"] =
        json!({"go": {"action": "accept", "content": {"proceed": true}}});
    req.body["params"]["requestState"] = json!(sealed);
    req
}

/// Round one: the sealed state.
async fn first_round(s: &TestServer, token: &str, tool: &str, item: &str) -> String {
    let r = confirm_call(token, json!(1), tool, item).send(s.addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = r.json()["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{result}");
    result["requestState"]
        .as_str()
        .expect("requestState")
        .to_owned()
}

#[tokio::test]
async fn input_required_round_trip_gives_the_handler_its_unsealed_state() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(confirmer("confirm", tx))).await;
    let token = s.token("alice", false);
    let r = confirm_call(&token, json!(1), "confirm", "a")
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let result = &v["result"];
    assert_eq!(result["resultType"], "input_required");
    assert_eq!(
        result["inputRequests"]["go"]["method"],
        "elicitation/create"
    );
    assert_eq!(
        result["inputRequests"]["go"]["params"]["message"],
        "Proceed?"
    );
    // Caching fields belong to complete results only.
    assert!(result.get("ttlMs").is_none() && result.get("cacheScope").is_none());
    let sealed = result["requestState"].as_str().expect("requestState");
    assert_ne!(sealed, "step-2 for a");
    assert!(sealed.contains('.'), "sealed state is body.mac: {sealed}");

    let r = retry(confirm_call(&token, json!(2), "confirm", "a"), sealed)
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"]["resultType"], "complete");
    assert_eq!(text_of(&v), "state=step-2 for a proceed=true");
    expect_event(&mut seen, "step-2 for a").await;
}

#[tokio::test]
async fn sealed_state_is_refused_when_tampered_replayed_by_another_principal_or_moved() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let s = start_with(move |b| {
        b.tool(confirmer("confirm", tx.clone()))
            .tool(confirmer("confirm-too", tx))
    })
    .await;
    let alice = s.token("alice", false);
    let bob = s.token("bob", false);
    let sealed = first_round(&s, &alice, "confirm", "a").await;
    let mut tampered = sealed.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases = [
        (
            "tampered",
            retry(confirm_call(&alice, json!(2), "confirm", "a"), &tampered),
        ),
        (
            "another principal",
            retry(confirm_call(&bob, json!(3), "confirm", "a"), &sealed),
        ),
        (
            "other params",
            retry(confirm_call(&alice, json!(4), "confirm", "b"), &sealed),
        ),
        (
            "other tool",
            retry(confirm_call(&alice, json!(5), "confirm-too", "a"), &sealed),
        ),
    ];
    for (what, req) in cases {
        let r = req.send(s.addr).await;
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        let v = r.json();
        assert_eq!(v["id"], req.body["id"], "{what}");
        assert_eq!(error_code(&v), -32602, "{what}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("requestState"),
            "{what}: {v}"
        );
    }
    // None of them reached the handler's second round.
    assert!(seen.try_recv().is_err());
    // The genuine retry still works.
    let r = retry(confirm_call(&alice, json!(6), "confirm", "a"), &sealed)
        .send(s.addr)
        .await;
    assert_eq!(text_of(&r.json()), "state=step-2 for a proceed=true");
}

#[tokio::test]
async fn input_required_needing_an_undeclared_capability_is_400_32021() {
    let (tx, _seen) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(confirmer("confirm", tx))).await;
    let token = s.token("alice", false);
    let r = confirm_call(&token, json!("x"), "confirm", "a")
        .caps(json!({"sampling": {}}))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["id"], "x");
    assert_eq!(error_code(&v), -32021);
    assert_eq!(
        v["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Sessions.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn idle_session_expires_then_404_and_a_new_initialize_works() {
    let s = own(|b| b.session_idle_timeout(Duration::from_millis(600))).await;
    let token = s.token("alice");
    let sid = init(s.addr, &token, json!({})).await;
    assert_eq!(s.server.session_count(), 1);
    let ping = |id: i64| Req::legacy(&token, &sid, rpc(json!(id), "ping", json!({})));
    // Use keeps it alive well past the idle timeout.
    for id in 1..=8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = ping(id).send(s.addr).await;
        assert_eq!(r.status, 200, "ping {id}: {}", r.text());
    }
    // Left alone, the sweeper frees it.
    let deadline = Instant::now() + WAIT;
    while s.server.session_count() != 0 {
        assert!(Instant::now() < deadline, "the idle session was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = ping(9).send(s.addr).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(error_code(&r.json()), -32001);
    let fresh = init(s.addr, &token, json!({})).await;
    assert_ne!(fresh, sid);
    assert_eq!(s.server.session_count(), 1);
}

#[tokio::test]
async fn session_cap_answers_503_with_retry_after() {
    let s = own(|b| b.max_sessions(2)).await;
    let token = s.token("alice");
    let a = init(s.addr, &token, json!({})).await;
    let _b = init(s.addr, &s.token("bob"), json!({})).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}});
    let r = Req::plain(&token, body.clone()).send(s.addr).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let retry_after: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("delay-seconds");
    assert!(retry_after > 0);
    assert!(r.header("mcp-session-id").is_none());
    let v = r.json();
    assert_eq!(v["id"], 9);
    assert_eq!(error_code(&v), -32603);
    assert_eq!(s.server.session_count(), 2);
    // A freed slot can be taken again.
    assert_eq!(delete(s.addr, &token, &a).await.status, 204);
    assert_eq!(Req::plain(&token, body).send(s.addr).await.status, 200);
}

#[tokio::test]
async fn delete_cancels_in_flight_calls_and_ends_the_get_stream() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let s = start_with(move |b| b.tool(waiter(tx)).sse_keepalive(Duration::from_millis(100))).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let mut stream = get_stream(s.addr, &token, &sid).await;
    assert_eq!(stream.status, 200);
    let req = Req::legacy(&token, &sid, call(json!(1), "wait", json!({})));
    let addr = s.addr;
    let in_flight = tokio::spawn(async move { req.send(addr).await });
    expect_event(&mut events, "started").await;

    // Another principal cannot delete it.
    assert_eq!(
        delete(s.addr, &s.token("mallory", false), &sid)
            .await
            .status,
        404
    );
    assert_eq!(delete(s.addr, &token, &sid).await.status, 204);
    expect_event(&mut events, "cancelled").await;
    assert!(stream.ends().await, "the GET stream outlived its session");
    bounded(in_flight).await.unwrap();
    let r = Req::legacy(&token, &sid, rpc(json!(2), "ping", json!({})))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(delete(s.addr, &token, &sid).await.status, 404);
}

// ---------------------------------------------------------------------------------------------
// 7. The GET stream.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_stream_is_single_per_session_and_reopens_after_disconnect() {
    let s = start_with(|b| b.sse_keepalive(Duration::from_millis(100))).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let mut first = get_stream(s.addr, &token, &sid).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("text/event-stream"));
    assert_eq!(first.header("x-accel-buffering"), Some("no"));
    assert_eq!(first.header("mcp-session-id"), Some(sid.as_str()));
    // Keep-alive comments flow.
    assert_eq!(first.comment().await, "keep-alive");

    let mut second = get_stream(s.addr, &token, &sid).await;
    assert_eq!(second.status, 409);
    assert_eq!(second.json().await["error"]["code"], -32600);

    drop(first);
    let deadline = Instant::now() + WAIT;
    let mut again = loop {
        let c = get_stream(s.addr, &token, &sid).await;
        if c.status == 200 {
            break c;
        }
        assert_eq!(c.status, 409);
        assert!(
            Instant::now() < deadline,
            "the slot was not freed after the client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(again.comment().await, "keep-alive");

    // A GET that does not accept SSE is 406.
    let auth = format!("Bearer {token}");
    let r = bounded(raw(
        s.addr,
        "GET",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Accept", "application/json"),
            ("Mcp-Session-Id", &sid),
        ],
        b"",
    ))
    .await;
    assert_eq!(r.status, 406);
}

/// Captures the builder's notifier while configuring.
fn capture_notifier(slot: &Arc<Mutex<Option<Notifier>>>, b: ServerBuilder) -> ServerBuilder {
    *slot.lock().unwrap() = Some(b.notifier());
    b
}

fn status_resource(uri: &str) -> Resource {
    Resource::new(uri, uri, |_ctx: RequestContext, uri: String| async move {
        Ok(vec![text_contents(&uri, "text/plain", "ok")])
    })
    .subscribable()
}

#[tokio::test]
async fn change_notifications_reach_the_right_get_streams() {
    let slot = Arc::new(Mutex::new(None));
    let s = {
        let slot = slot.clone();
        start_with(move |b| {
            capture_notifier(&slot, b)
                .list_changed(ListChanged {
                    tools: true,
                    prompts: false,
                    resources: false,
                })
                .resource(status_resource("x://status"))
                .resource(status_resource("x://other"))
                .sse_keepalive(Duration::from_millis(100))
        })
        .await
    };
    let notifier = slot.lock().unwrap().take().expect("notifier captured");
    let alice = s.token("alice", false);
    let bob = s.token("bob", false);
    let sa = init(s.addr, &alice, json!({})).await;
    let sb = init(s.addr, &bob, json!({})).await;
    let subscribe = |id: i64, method: &str, uri: &str| {
        Req::legacy(&alice, &sa, rpc(json!(id), method, json!({"uri": uri})))
    };
    let r = subscribe(1, "resources/subscribe", "x://status")
        .send(s.addr)
        .await;
    assert_eq!(r.json()["result"], json!({}));
    // Only subscribable resources can be subscribed to.
    let r = subscribe(2, "resources/subscribe", "x://nope")
        .send(s.addr)
        .await;
    assert_eq!(error_code(&r.json()), -32002);

    let mut a = get_stream(s.addr, &alice, &sa).await;
    let mut b = get_stream(s.addr, &bob, &sb).await;
    assert_eq!((a.status, b.status), (200, 200));
    // A keep-alive shows each stream's task is running and subscribed. Without this wait a change
    // can be lost (see subscriptions_listen_delivers_a_change_announced_right_after_the_ack).
    a.comment().await;
    b.comment().await;

    notifier.resource_updated("x://other");
    notifier.resource_updated("x://status");
    notifier.prompts_changed(); // not advertised: never sent
    notifier.tools_changed();

    let m = a.message().await;
    assert_eq!(m["method"], "notifications/resources/updated");
    assert_eq!(m["params"], json!({"uri": "x://status"}));
    assert!(m.get("id").is_none());
    assert_eq!(
        a.message().await["method"],
        "notifications/tools/list_changed"
    );
    // Bob did not subscribe: his stream skips straight to the list change.
    assert_eq!(
        b.message().await["method"],
        "notifications/tools/list_changed"
    );

    let r = subscribe(3, "resources/unsubscribe", "x://status")
        .send(s.addr)
        .await;
    assert_eq!(r.json()["result"], json!({}));
    notifier.resource_updated("x://status");
    notifier.tools_changed();
    assert_eq!(
        a.message().await["method"],
        "notifications/tools/list_changed"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. subscriptions/listen (2026-07-28).
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn subscriptions_listen_acknowledges_then_delivers_only_requested_kinds() {
    let slot = Arc::new(Mutex::new(None));
    let s = {
        let slot = slot.clone();
        start_with(move |b| {
            capture_notifier(&slot, b)
                .list_changed(ListChanged {
                    tools: true,
                    prompts: true,
                    resources: false,
                })
                .resource(status_resource("x://status"))
                .sse_keepalive(Duration::from_millis(100))
        })
        .await
    };
    let notifier = slot.lock().unwrap().take().expect("notifier captured");
    let token = s.token("alice", false);
    let listen = |id: Value, filter: Value| {
        Req::modern(
            &token,
            id,
            "subscriptions/listen",
            json!({"notifications": filter}),
        )
    };

    let mut all = listen(
        json!(9),
        json!({"toolsListChanged": true, "promptsListChanged": true,
               "resourcesListChanged": true,
               "resourceSubscriptions": ["x://status", "x://nope"]}),
    )
    .open(s.addr)
    .await;
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some("text/event-stream"));
    assert_eq!(all.header("x-accel-buffering"), Some("no"));
    let ack = all.message().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert!(ack.get("id").is_none());
    assert_eq!(ack["params"]["_meta"][SUB_ID], json!(9));
    // Only what this server can send is honoured.
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "promptsListChanged": true,
               "resourceSubscriptions": ["x://status"]})
    );

    let mut prompts_only = listen(json!("sub-p"), json!({"promptsListChanged": true}))
        .open(s.addr)
        .await;
    let ack = prompts_only.message().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUB_ID], json!("sub-p"));
    assert_eq!(
        ack["params"]["notifications"],
        json!({"promptsListChanged": true})
    );

    // A keep-alive shows each stream's task is running and subscribed. Without this wait a change
    // can be lost (see subscriptions_listen_delivers_a_change_announced_right_after_the_ack).
    all.comment().await;
    prompts_only.comment().await;
    notifier.tools_changed();
    notifier.resource_updated("x://status");
    notifier.prompts_changed();

    let m = all.message().await;
    assert_eq!(m["method"], "notifications/tools/list_changed");
    assert_eq!(m["params"]["_meta"][SUB_ID], json!(9));
    let m = all.message().await;
    assert_eq!(m["method"], "notifications/resources/updated");
    assert_eq!(m["params"]["uri"], "x://status");
    assert_eq!(m["params"]["_meta"][SUB_ID], json!(9));
    let m = all.message().await;
    assert_eq!(m["method"], "notifications/prompts/list_changed");
    assert_eq!(m["params"]["_meta"][SUB_ID], json!(9));

    let m = prompts_only.message().await;
    assert_eq!(m["method"], "notifications/prompts/list_changed");
    assert_eq!(m["params"]["_meta"][SUB_ID], json!("sub-p"));
}

/// A change announced once the client holds the acknowledgement must reach it. The test above
/// waits for a keep-alive first; this one does not, on a multi-threaded runtime. (A session's
/// first GET stream has the same window in `get()`/`session_stream()`, but it loses a change
/// too rarely for a dependable test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_listen_delivers_a_change_announced_right_after_the_ack() {
    let slot = Arc::new(Mutex::new(None));
    let s = {
        let slot = slot.clone();
        start_with(move |b| {
            // No auth: rounds are cheap without ES256 verification in a debug build.
            capture_notifier(&slot, b.dangerously_disable_auth())
                .list_changed(ListChanged {
                    tools: true,
                    prompts: false,
                    resources: false,
                })
                // 40 standing streams and the listener, all of one (anonymous) principal.
                .max_streams_per_principal(64)
        })
        .await
    };
    let notifier = slot.lock().unwrap().take().expect("notifier captured");
    let token = s.token("alice", false);
    // Legacy sessions with GET streams keep the server's workers busy on every change, which is
    // what widens the window between the acknowledgement and the listener's subscription.
    let mut standing = Vec::new();
    for _ in 0..40 {
        let sid = init(s.addr, &token, json!({})).await;
        standing.push(get_stream(s.addr, &token, &sid).await);
    }
    for i in 0..100 {
        let mut conn = Req::modern(
            &token,
            json!(i),
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .open(s.addr)
        .await;
        let ack = conn.message().await;
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        notifier.tools_changed();
        match conn.next_frame(WAIT).await {
            Frame::Message(m) => {
                assert_eq!(m["method"], "notifications/tools/list_changed");
            }
            other => panic!("round {i}: the change after the ack was lost ({other:?})"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Resources, prompts and completion.
// ---------------------------------------------------------------------------------------------

fn library(b: ServerBuilder) -> ServerBuilder {
    b.page_size(1)
        .resource(
            Resource::new(
                "x://a",
                "a",
                |_ctx: RequestContext, uri: String| async move {
                    Ok(vec![text_contents(&uri, "text/plain", "alpha")])
                },
            )
            .mime_type("text/plain"),
        )
        .resource(Resource::new(
            "x://b",
            "b",
            |_ctx: RequestContext, uri: String| async move {
                Ok(vec![blob_contents(
                    &uri,
                    "application/octet-stream",
                    "AAEC",
                )])
            },
        ))
        .resource_template(
            ResourceTemplate::new(
                "x://item/{id}",
                "item",
                |_ctx: RequestContext, uri: String, vars: Map<String, Value>| async move {
                    let id = vars["id"].as_str().unwrap_or("?").to_owned();
                    Ok(vec![text_contents(
                        &uri,
                        "text/plain",
                        format!("item {id}"),
                    )])
                },
            )
            .unwrap(),
        )
        .prompt(
            Prompt::new(
                "greet",
                |_ctx: RequestContext, args: Map<String, Value>| async move {
                    let name = args["name"].as_str().unwrap_or("?").to_owned();
                    Ok(vec![prompt::user(content::text(format!("Hello {name}")))])
                },
            )
            .description("Greets someone.")
            .argument("name", Some("Who to greet"), true)
            .argument("style", None, false)
            .completer(|arg, partial| {
                if arg == "name" {
                    (0..150).map(|i| format!("{partial}{i}")).collect()
                } else {
                    Vec::new()
                }
            }),
        )
}

#[tokio::test]
async fn resources_list_paginates_and_refuses_a_garbage_cursor() {
    let s = start_with(library).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let list = |id: i64, params: Value| {
        Req::legacy(&token, &sid, rpc(json!(id), "resources/list", params))
    };
    let first = list(1, json!({})).send(s.addr).await.json();
    assert_eq!(first["result"]["resources"].as_array().unwrap().len(), 1);
    assert_eq!(first["result"]["resources"][0]["uri"], "x://a");
    assert_eq!(first["result"]["resources"][0]["mimeType"], "text/plain");
    let cursor = first["result"]["nextCursor"].as_str().expect("nextCursor");
    let second = list(2, json!({"cursor": cursor})).send(s.addr).await.json();
    assert_eq!(second["result"]["resources"][0]["uri"], "x://b");
    assert!(second["result"].get("nextCursor").is_none(), "{second}");
    let bad = list(3, json!({"cursor": "garbage"})).send(s.addr).await;
    assert_eq!(bad.status, 200);
    assert_eq!(error_code(&bad.json()), -32602);

    // 2026-07-28 pages carry the caching fields and paginate the same way.
    let r = Req::modern(&token, json!(4), "resources/list", json!({}))
        .send(s.addr)
        .await
        .json();
    assert_eq!(r["result"]["resources"][0]["uri"], "x://a");
    assert!(r["result"]["ttlMs"].is_u64());
    assert!(r["result"]["cacheScope"].is_string());
    assert_eq!(r["result"]["resultType"], "complete");
    let r = Req::modern(&token, json!(5), "resources/list", json!({"cursor": "%%%"}))
        .send(s.addr)
        .await;
    assert_eq!(error_code(&r.json()), -32602);
    let r = Req::modern(&token, json!(6), "resources/templates/list", json!({}))
        .send(s.addr)
        .await
        .json();
    assert_eq!(
        r["result"]["resourceTemplates"][0]["uriTemplate"],
        "x://item/{id}"
    );
}

#[tokio::test]
async fn resources_read_text_blob_and_template_variables() {
    let s = start_with(library).await;
    let token = s.token("alice", false);
    let read =
        |id: i64, uri: &str| Req::modern(&token, json!(id), "resources/read", json!({"uri": uri}));
    let r = read(1, "x://a").send(s.addr).await.json();
    assert_eq!(
        r["result"]["contents"],
        json!([{"uri": "x://a", "mimeType": "text/plain", "text": "alpha"}])
    );
    assert!(r["result"]["ttlMs"].is_u64());
    assert!(r["result"]["cacheScope"].is_string());
    let r = read(2, "x://b").send(s.addr).await.json();
    assert_eq!(r["result"]["contents"][0]["blob"], "AAEC");
    assert!(r["result"]["contents"][0].get("text").is_none());
    let r = read(3, "x://item/42").send(s.addr).await.json();
    assert_eq!(r["result"]["contents"][0]["text"], "item 42");
    assert_eq!(r["result"]["contents"][0]["uri"], "x://item/42");
    let r = read(4, "x://item/a%20b").send(s.addr).await.json();
    assert_eq!(r["result"]["contents"][0]["text"], "item a b");

    // Initialize era, same reader.
    let sid = init(s.addr, &token, json!({})).await;
    let r = Req::legacy(
        &token,
        &sid,
        rpc(json!(5), "resources/read", json!({"uri": "x://item/7"})),
    )
    .send(s.addr)
    .await
    .json();
    assert_eq!(r["result"]["contents"][0]["text"], "item 7");
    assert!(r["result"].get("resultType").is_none());
}

#[tokio::test]
async fn unknown_resource_is_32002_legacy_and_32602_at_2026_with_the_uri() {
    let s = start_with(library).await;
    let token = s.token("alice", false);
    let sid = init(s.addr, &token, json!({})).await;
    let r = Req::legacy(
        &token,
        &sid,
        rpc(json!(1), "resources/read", json!({"uri": "x://nope"})),
    )
    .send(s.addr)
    .await;
    let v = r.json();
    assert_eq!(error_code(&v), -32002);
    assert_eq!(v["error"]["data"]["uri"], "x://nope");
    // The template does not match a URI with an extra segment.
    let r = Req::modern(
        &token,
        json!(2),
        "resources/read",
        json!({"uri": "x://item/1/2"}),
    )
    .send(s.addr)
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(error_code(&v), -32602);
    assert_eq!(v["error"]["data"]["uri"], "x://item/1/2");
}

#[tokio::test]
async fn prompts_get_checks_arguments_and_completion_caps_values() {
    let s = start_with(library).await;
    let token = s.token("alice", false);
    let r = Req::modern(&token, json!(1), "prompts/list", json!({}))
        .send(s.addr)
        .await
        .json();
    let p = &r["result"]["prompts"][0];
    assert_eq!(p["name"], "greet");
    assert_eq!(
        p["arguments"],
        json!([{"name": "name", "description": "Who to greet", "required": true},
               {"name": "style", "required": false}])
    );
    let get = |id: i64, args: Value| {
        Req::modern(
            &token,
            json!(id),
            "prompts/get",
            json!({"name": "greet", "arguments": args}),
        )
    };
    let r = get(2, json!({"style": "warm"})).send(s.addr).await;
    assert_eq!(r.status, 200);
    assert_eq!(error_code(&r.json()), -32602);
    let r = get(3, json!({"name": "Ada"})).send(s.addr).await.json();
    assert_eq!(r["result"]["description"], "Greets someone.");
    assert_eq!(
        r["result"]["messages"],
        json!([{"role": "user", "content": {"type": "text", "text": "Hello Ada"}}])
    );

    let r = Req::modern(
        &token,
        json!(4),
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "greet"},
               "argument": {"name": "name", "value": "x"}}),
    )
    .send(s.addr)
    .await
    .json();
    let completion = &r["result"]["completion"];
    let values = completion["values"].as_array().expect("values");
    assert_eq!(values.len(), 100);
    assert_eq!(values[0], "x0");
    assert_eq!(completion["total"], 150);
    assert_eq!(completion["hasMore"], true);
    let r = Req::modern(
        &token,
        json!(5),
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "nope"},
               "argument": {"name": "name", "value": ""}}),
    )
    .send(s.addr)
    .await;
    assert_eq!(error_code(&r.json()), -32602);
}

// ---------------------------------------------------------------------------------------------
// 10. x-mcp-header (2026-07-28).
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn x_mcp_header_must_mirror_the_argument() {
    let s = start_with(|b| b.tool(regional())).await;
    let token = s.token("alice", false);
    let regional_call = |args: Value| {
        Req::modern(
            &token,
            json!(1),
            "tools/call",
            json!({"name": "regional", "arguments": args}),
        )
    };
    let zurich = format!("=?base64?{}?=", STANDARD.encode("Zürich"));
    let ok = [
        (
            regional_call(json!({"region": "eu-west"})).header("Mcp-Param-Region", "eu-west"),
            "eu-west/-",
        ),
        (
            regional_call(json!({"region": "Zürich"})).header("Mcp-Param-Region", &zurich),
            "Zürich/-",
        ),
        // Integers compare as numbers.
        (
            regional_call(json!({"count": 42})).header("Mcp-Param-Count", "042"),
            "-/42",
        ),
        (regional_call(json!({})), "-/-"),
    ];
    for (req, want) in ok {
        let r = req.send(s.addr).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(text_of(&r.json()), want);
    }
    let refused = [
        ("missing", regional_call(json!({"region": "eu-west"}))),
        (
            "mismatched",
            regional_call(json!({"region": "eu-west"})).header("Mcp-Param-Region", "us-east"),
        ),
        (
            "bad base64",
            regional_call(json!({"region": "eu-west"}))
                .header("Mcp-Param-Region", "=?base64?@@@?="),
        ),
        (
            "other integer",
            regional_call(json!({"count": 42})).header("Mcp-Param-Count", "43"),
        ),
        (
            "header without argument",
            regional_call(json!({})).header("Mcp-Param-Region", "eu-west"),
        ),
    ];
    for (what, req) in refused {
        let r = req.send(s.addr).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        let v = r.json();
        assert_eq!(v["id"], 1, "{what}");
        assert_eq!(error_code(&v), -32020, "{what}: {v}");
    }
}

/// headers.rs says "a header without the argument is a mismatch too"; that holds for
/// `"arguments": {}` (above) but not when `arguments` is left out or null.
#[tokio::test]
async fn x_mcp_header_without_an_arguments_object_is_a_mismatch() {
    let s = start_with(|b| b.tool(regional())).await;
    let token = s.token("alice", false);
    for params in [
        json!({"name": "regional"}),
        json!({"name": "regional", "arguments": null}),
    ] {
        let r = Req::modern(&token, json!(1), "tools/call", params.clone())
            .header("Mcp-Param-Region", "eu-west")
            .send(s.addr)
            .await;
        assert_eq!(r.status, 400, "{params}: {}", r.text());
        assert_eq!(error_code(&r.json()), -32020, "{params}");
    }
}

#[test]
fn build_refuses_bad_x_mcp_header_annotations() {
    let build = |property: Value| {
        ServerBuilder::new("t", "0", "https://mcp.example/mcp")
            .dangerously_disable_auth()
            .tool(
                Tool::new(
                    "bad",
                    "Bad annotation.",
                    |_ctx: RequestContext, _args: Map<String, Value>| async {
                        Ok::<_, ToolError>(CallToolResult::text("x"))
                    },
                )
                .input(Schema::from_json(
                    json!({"type": "object", "properties": {"p": property}}),
                )),
            )
            .build()
    };
    for property in [
        json!({"type": "number", "x-mcp-header": "Price"}),
        json!({"type": "string", "x-mcp-header": "Bad Name"}),
        json!({"type": "string", "x-mcp-header": ""}),
        json!({"type": "object", "x-mcp-header": "Thing"}),
    ] {
        match build(property.clone()) {
            Err(BuildError::BadParamHeader(tool, _why)) => assert_eq!(tool, "bad"),
            other => panic!("{property} was accepted: {other:?}"),
        }
    }
    assert!(build(json!({"type": "boolean", "x-mcp-header": "Dry-Run"})).is_ok());
}

// ---------------------------------------------------------------------------------------------
// 11. Graceful shutdown.
// ---------------------------------------------------------------------------------------------

/// Says "started", takes 300 ms whatever happens, says "finished".
fn slow(events: mpsc::UnboundedSender<String>) -> Tool {
    Tool::new("slow", "Takes a while.", move |_ctx: RequestContext| {
        let events = events.clone();
        async move {
            let _ = events.send("started".into());
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = events.send("finished".into());
            Ok(CallToolResult::text("finished"))
        }
    })
}

/// Says "started", then never finishes.
fn stuck(events: mpsc::UnboundedSender<String>) -> Tool {
    Tool::new("stuck", "Never ends.", move |_ctx: RequestContext| {
        let events = events.clone();
        async move {
            let _ = events.send("started".into());
            std::future::pending::<ToolResult>().await
        }
    })
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_calls_and_ends_streams() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut s = own(move |b| {
        b.tool(slow(tx))
            .shutdown_grace(Duration::from_secs(3))
            .sse_keepalive(Duration::from_millis(100))
    })
    .await;
    let token = s.token("alice");
    let sid = init(s.addr, &token, json!({})).await;
    let mut stream = get_stream(s.addr, &token, &sid).await;
    assert_eq!(stream.status, 200);
    let req = Req::modern(&token, json!(1), "tools/call", json!({"name": "slow"}));
    let addr = s.addr;
    let in_flight = tokio::spawn(async move { req.send(addr).await });
    expect_event(&mut events, "started").await;

    s.shut_down();
    assert!(
        stream.ends().await,
        "the GET stream did not end on shutdown"
    );
    let r = bounded(in_flight).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(text_of(&r.json()), "finished");
    expect_event(&mut events, "finished").await;
    assert!(
        TcpStream::connect(s.addr).await.is_err(),
        "a new connection was accepted after shutdown"
    );
    let served = bounded(s.serving.take().unwrap()).await.unwrap();
    assert!(served.is_ok(), "{served:?}");
    assert_eq!(s.server.session_count(), 0);
}

#[tokio::test]
async fn shutdown_grace_bounds_a_handler_that_never_ends() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut s = own(move |b| b.tool(stuck(tx)).shutdown_grace(Duration::from_millis(200))).await;
    let token = s.token("alice");
    let req = Req::modern(&token, json!(1), "tools/call", json!({"name": "stuck"}));
    let addr = s.addr;
    let hung = tokio::spawn(async move {
        raw(
            addr,
            "POST",
            "/mcp",
            &req.pairs(),
            req.body.to_string().as_bytes(),
        )
        .await
    });
    expect_event(&mut events, "started").await;
    s.shut_down();
    let served = bounded(s.serving.take().unwrap()).await.unwrap();
    assert!(served.is_ok(), "{served:?}");
    hung.abort();
}

// ---------------------------------------------------------------------------------------------
// 12. Request log lines never hold a bearer token.
// ---------------------------------------------------------------------------------------------

/// Set in the child process that [`request_log_lines_never_contain_the_bearer_token`] starts.
const LOG_CHILD: &str = "VOUCH_MCP_TEST_LOG_CHILD";

/// Log lines go straight to the process's stderr, so this test runs [`log_child`] in a child
/// process (this same test binary) and reads what it wrote there.
#[test]
fn request_log_lines_never_contain_the_bearer_token() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "log_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOG_CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the log child did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "log child failed:\n{stdout}\n{stderr}");
    let tokens: Vec<&str> = stdout
        .lines()
        // libtest's "test log_child ... " may share the first line.
        .filter_map(|l| l.split_once("TOKEN ").map(|(_, t)| t))
        .collect();
    assert!(tokens.len() >= 5, "{stdout}");
    let request_lines = stderr.lines().filter(|l| l.contains(" request")).count();
    assert!(request_lines >= 8, "too few request lines:\n{stderr}");
    assert!(stderr.contains("status=401"), "{stderr}");
    assert!(stderr.contains("sub=alice"), "{stderr}");
    assert!(!stderr.contains("Bearer"), "{stderr}");
    for token in tokens {
        for seg in token.split('.').filter(|s| s.len() >= 8) {
            assert!(
                !stderr.contains(seg),
                "log holds token bytes {seg:?}:\n{stderr}"
            );
        }
    }
}

/// The server side of [`request_log_lines_never_contain_the_bearer_token`]: a no-op unless
/// started by it.
#[tokio::test]
#[ignore = "child process of request_log_lines_never_contain_the_bearer_token"]
async fn log_child() {
    if std::env::var_os(LOG_CHILD).is_none() {
        return;
    }
    vouch_mcp::log::set_level(vouch_mcp::log::Level::Debug);
    let s = start(Options::default()).await;
    let good = s.token("alice", true);
    let expired = s.issuer.mint(&s.issuer.claims(
        &s.resource,
        "alice",
        "alice@example.com",
        true,
        now() - 7200,
        60,
    ));
    let mut forged: Vec<&str> = good.split('.').collect();
    let other = other_key().mint(&s.claims("alice", true));
    let other_sig = other.rsplit('.').next().unwrap().to_owned();
    forged[2] = &other_sig;
    let forged = forged.join(".");
    let garbage = "secret-garbage-credential-1234567".to_owned();
    for t in [&good, &expired, &forged, &other, &garbage] {
        println!("TOKEN {t}");
    }

    let whoami =
        |t: &str, id: i64| Req::modern(t, json!(id), "tools/call", json!({"name": "whoami"}));
    assert_eq!(whoami(&good, 1).send(s.addr).await.status, 200);
    for (i, t) in [&expired, &forged, &other, &garbage]
        .into_iter()
        .enumerate()
    {
        let r = whoami(t, 2 + i as i64).send(s.addr).await;
        assert!(matches!(r.status, 400 | 401), "{}", r.text());
    }
    let sid = init(s.addr, &good, json!({})).await;
    let r = Req::legacy(&good, &sid, call(json!(9), "whoami", json!({})))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200);
    // A token in the query string is ignored, and the logged path has no query.
    let body = whoami(&good, 10).body.to_string();
    let path = format!("/mcp?access_token={good}");
    let r = bounded(raw(
        s.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Accept", BOTH),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "whoami"),
        ],
        body.as_bytes(),
    ))
    .await;
    assert_eq!(r.status, 401);
    let stream = get_stream(s.addr, &good, &sid).await;
    assert_eq!(stream.status, 200);
    drop(stream);
    assert_eq!(delete(s.addr, &good, &sid).await.status, 204);
    // The log writer is a thread that does not outlive the process.
    vouch_mcp::log::flush();
}

/// Logging is offered only when the server says so: otherwise no capability is advertised,
/// `logging/setLevel` is an unknown method and handlers' log messages go nowhere.
#[tokio::test]
async fn logging_is_not_advertised_or_sent_unless_offered() {
    let s = start_with(|b| b.tool(reporter())).await;
    let token = s.token("alice", false);
    let r = Req::modern(&token, json!(1), "tools/call", json!({"name": "report"}))
        .meta(LOG_LEVEL, json!("debug"))
        .send(s.addr)
        .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "nothing streamed"
    );
    let sid = initialize(&s, &token, "2025-11-25").await;
    let caps = legacy(
        &s,
        &token,
        &sid,
        json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}}),
    )
    .await;
    assert_eq!(caps.json()["error"]["code"], -32601);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_connection_cap_evicts_a_different_idle_connection_each_time() {
    let s = own(|b| b.max_connections(8)).await;
    // 40 silent connections at once: each one past the cap must close another idle one, so
    // the server ends up holding 8 (picking the same idlest one again let it hold them all).
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let mut open = 0;
        for c in &mut idle {
            let mut byte = [0u8; 1];
            // No data ever comes; a server-closed socket reads end-of-file (or a reset) at once.
            if tokio::time::timeout(Duration::from_millis(20), c.read(&mut byte))
                .await
                .is_err()
            {
                open += 1;
            }
        }
        if open <= 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} of 40 idle connections still open with max_connections(8)"
        );
    }
    // A legitimate request past the cap is served, closing one more idle connection.
    let token = s.token("alice");
    let r = Req::modern(&token, json!(1), "tools/call", json!({"name": "whoami"}))
        .send(s.addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
