//! Tasks through the public API, in process: cancellation reaches the handler, a handler that ignores it is dropped, task ids come from the server's random source, and an initialize-era task's request for the client travels on the `tasks/result` stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::Service as _;
use serde_json::{json, Value};
use vouch_mcp::{
    CallToolResult, InputRequired, McpService, RandomError, RandomSource, RequestContext,
    ServerBuilder, TaskSupport, Tool, ToolError,
};

const URL: &str = "http://localhost:3000/mcp";
const EXT: &str = "io.modelcontextprotocol/tasks";

/// Sets its flag when dropped: shows a handler's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Flags {
    saw_cancel: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

fn server(flags: &Flags, random: Option<Arc<dyn RandomSource>>) -> vouch_mcp::Server {
    let saw = flags.saw_cancel.clone();
    let dropped = flags.dropped.clone();
    let mut b = ServerBuilder::new("t", "1", URL)
        .dangerously_disable_auth()
        .task_cancel_grace(Duration::from_millis(200))
        .tool(
            Tool::new(
                "watches-cancel",
                "Runs until cancelled, and says so",
                move |ctx: RequestContext| {
                    let saw = saw.clone();
                    async move {
                        ctx.cancellation().cancelled().await;
                        saw.store(true, Ordering::SeqCst);
                        Ok(CallToolResult::text("stopped"))
                    }
                },
            )
            .task_support(TaskSupport::Optional),
        )
        .tool(
            Tool::new(
                "ignores-cancel",
                "Never looks at its cancellation",
                move |_ctx: RequestContext| {
                    let guard = DropFlag(dropped.clone());
                    async move {
                        let _guard = guard;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(CallToolResult::text("finally"))
                    }
                },
            )
            .task_support(TaskSupport::Optional),
        )
        .tool(
            Tool::new(
                "asks",
                "Asks for a confirmation",
                |ctx: RequestContext| async move {
                    let schema =
                        json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
                    let a = ctx
                        .ask(InputRequired::new().elicit("ok", "Proceed?", schema))
                        .await
                        .map_err(|e| ToolError::Failed(e.to_string()))?;
                    Ok(CallToolResult::text(format!(
                        "ok={}",
                        a["ok"]["content"]["ok"]
                    )))
                },
            )
            .task_support(TaskSupport::Optional),
        );
    if let Some(r) = random {
        b = b.random_source(r);
    }
    b.metrics().build().unwrap()
}

/// The value of an unlabelled gauge in the server's metrics text.
async fn gauge(s: &vouch_mcp::Server, name: &str) -> f64 {
    let text = s.metrics().await.expect("metrics are on");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

fn flags() -> Flags {
    Flags {
        saw_cancel: Arc::new(AtomicBool::new(false)),
        dropped: Arc::new(AtomicBool::new(false)),
    }
}

fn modern(method: &str, name: &str, mut params: Value) -> http::Request<Full<Bytes>> {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXT: {}}}
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    http::Request::post("/mcp")
        .header("host", "localhost:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn json_of(svc: &McpService, req: http::Request<Full<Bytes>>) -> (http::HeaderMap, Value) {
    let resp = svc.call(req).await.unwrap_or_else(|e| match e {});
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn create(svc: &McpService, tool: &str) -> String {
    let (_, v) = json_of(svc, modern("tools/call", tool, json!({"name": tool}))).await;
    assert_eq!(v["result"]["resultType"], "task", "{v}");
    v["result"]["taskId"].as_str().unwrap().to_owned()
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn cancelling_a_task_fires_its_handlers_cancellation_signal() {
    let f = flags();
    let s = server(&f, None);
    let svc = s.service();
    let id = create(&svc, "watches-cancel").await;
    assert!(!f.saw_cancel.load(Ordering::SeqCst));
    let (_, ack) = json_of(&svc, modern("tasks/cancel", &id, json!({"taskId": id}))).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    wait_for("the handler saw its cancellation", || {
        f.saw_cancel.load(Ordering::SeqCst)
    })
    .await;
    // The handler's own late answer does not undo the cancellation.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, got) = json_of(&svc, modern("tasks/get", &id, json!({"taskId": id}))).await;
    assert_eq!(got["result"]["status"], "cancelled", "{got}");
    assert!(got["result"].get("result").is_none());
}

#[tokio::test]
async fn the_task_gauges_count_a_running_task_and_its_record_after_it_ends() {
    let f = flags();
    let s = server(&f, None);
    let svc = s.service();
    assert_eq!(gauge(&s, "vouch_mcp_tasks").await, 0.0);
    let id = create(&svc, "watches-cancel").await;
    assert_eq!(gauge(&s, "vouch_mcp_tasks").await, 1.0);
    assert_eq!(gauge(&s, "vouch_mcp_tasks_running").await, 1.0);
    json_of(&svc, modern("tasks/cancel", &id, json!({"taskId": id}))).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gauge(&s, "vouch_mcp_tasks_running").await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task kept running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The cancelled record stays readable until its retention ends.
    assert_eq!(gauge(&s, "vouch_mcp_tasks").await, 1.0);
}

#[tokio::test]
async fn a_handler_that_ignores_cancellation_is_dropped_after_the_grace_period() {
    let f = flags();
    let s = server(&f, None);
    let svc = s.service();
    let id = create(&svc, "ignores-cancel").await;
    json_of(&svc, modern("tasks/cancel", &id, json!({"taskId": id}))).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !f.dropped.load(Ordering::SeqCst),
        "within the grace period the handler may still finish"
    );
    wait_for("the handler's future was dropped", || {
        f.dropped.load(Ordering::SeqCst)
    })
    .await;
}

/// Hands out a recognisable pattern.
struct Pattern;

impl RandomSource for Pattern {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = i as u8 ^ 0x5A;
        }
        Ok(())
    }
}

#[tokio::test]
async fn task_ids_are_192_random_bits_from_the_servers_random_source() {
    let f = flags();
    let s = server(&f, Some(Arc::new(Pattern)));
    let id = create(&s.service(), "watches-cancel").await;
    let bytes: Vec<u8> = (0..24u8).map(|i| i ^ 0x5A).collect();
    assert_eq!(id, URL_SAFE_NO_PAD.encode(bytes));
    let f2 = flags();
    let id2 = create(&server(&f2, None).service(), "watches-cancel").await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&id2).unwrap().len(), 24);
    assert_ne!(id2, id);
}

fn legacy(body: Value, session: Option<&str>) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::post("/mcp")
        .header("host", "localhost:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(s) = session {
        b = b
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

#[tokio::test]
async fn a_legacy_tasks_request_for_the_client_travels_on_the_tasks_result_stream() {
    let f = flags();
    let s = server(&f, None);
    let svc = s.service();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "t", "version": "1"}}});
    let (h, _) = json_of(&svc, legacy(init, None)).await;
    let sid = h["mcp-session-id"].to_str().unwrap().to_owned();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    svc.call(legacy(note, Some(&sid))).await.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "asks", "arguments": {}, "task": {"ttl": 60000}}});
    let (_, created) = json_of(&svc, legacy(call, Some(&sid))).await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = json!({"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"taskId": id}});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, g) = json_of(&svc, legacy(get.clone(), Some(&sid))).await;
        if g["result"]["status"] == "input_required" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never input_required: {g}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // tasks/result blocks; over SSE the task's elicitation request comes first, tagged.
    let result =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tasks/result", "params": {"taskId": id}});
    let resp = svc
        .call(legacy(result, Some(&sid)))
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    let mut events: Vec<Value> = Vec::new();
    let mut answered = false;
    while events.iter().all(|e| e.get("id") != Some(&json!(3))) {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(d) = line.strip_prefix("data: ") {
                    events.push(serde_json::from_str(d).unwrap());
                }
            }
        }
        if !answered {
            if let Some(req) = events.iter().find(|e| e["method"] == "elicitation/create") {
                assert_eq!(
                    req["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
                    json!(id)
                );
                assert_eq!(req["params"]["message"], "Proceed?");
                let answer = json!({"jsonrpc": "2.0", "id": req["id"],
                    "result": {"action": "accept", "content": {"ok": true}}});
                let r = svc.call(legacy(answer, Some(&sid))).await.unwrap();
                assert_eq!(r.status(), 202);
                answered = true;
            }
        }
    }
    assert!(answered, "the request came before the result: {events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["result"]["content"][0]["text"], "ok=true", "{last}");
    assert_eq!(
        last["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        json!(id)
    );
}
