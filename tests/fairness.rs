//! Fairness between principals over loopback: one principal at every per-principal cap (open sessions, open streams, calls in flight) gets 429 with Retry-After and a JSON-RPC error naming the limit, while a second principal initializes, calls, opens a stream and gets full service.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use vouch_mcp::{CallToolResult, RequestContext, Tool};

/// The bound on every wait for the server.
const WAIT: Duration = Duration::from_secs(5);

/// A tool that reports it started, then waits for a permit of `gate`: its calls stay in flight
/// until the test releases them.
fn hold(started: mpsc::UnboundedSender<()>, gate: Arc<Semaphore>) -> Tool {
    Tool::new(
        "hold",
        "Waits until the test releases it.",
        move |_ctx: RequestContext| {
            let (started, gate) = (started.clone(), gate.clone());
            async move {
                let _ = started.send(());
                let _permit = gate.acquire().await.expect("gate open");
                Ok(CallToolResult::text("released"))
            }
        },
    )
}

/// Sends a request and reads only the response head; the connection stays open (a stream).
async fn open(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
) -> (TcpStream, u16, String) {
    let mut req = format!("{method} /mcp HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("response head in time")
            .unwrap();
        assert!(n > 0, "closed before the response head");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (stream, status, head.to_ascii_lowercase())
}

async fn get_stream(s: &TestServer, token: &str, session: &str) -> (TcpStream, u16, String) {
    let auth = format!("Bearer {token}");
    open(
        s.addr,
        "GET",
        &[
            ("Authorization", &auth),
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", session),
        ],
    )
    .await
}

/// A refusal of this principal: 429, a positive Retry-After, and a JSON-RPC error naming `limit`.
fn assert_refused_naming(r: &Reply, limit: &str) {
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("delay-seconds");
    assert!(retry > 0);
    let v = r.json();
    assert!(v["error"]["code"].is_i64(), "a JSON-RPC error: {v}");
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains(limit)
            || v["error"]["data"]["limit"] == limit,
        "the error names {limit}: {v}"
    );
}

fn is_whoami_of(v: &Value, sub: &str) -> bool {
    v["result"]["structuredContent"]["sub"] == sub && v["result"]["isError"] == false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_at_every_cap_gets_429_naming_the_limit_while_another_gets_full_service() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let s = {
        let gate = gate.clone();
        start(Options {
            configure: Some(Box::new(move |b| {
                b.tool(hold(started_tx, gate))
                    .max_sessions_per_principal(3)
                    .max_streams_per_principal(2)
                    .max_calls_per_principal(2)
            })),
            ..Options::default()
        })
        .await
    };
    let (alice, bob) = (s.token("alice", true), s.token("bob", true));

    // Alice: every session she may have, then one more.
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(initialize(&s, &alice, "2025-11-25").await);
    }
    let r = try_initialize(&s, &alice, "2025-11-25").await;
    assert_refused_naming(&r, "MCP_MAX_SESSIONS_PER_PRINCIPAL");
    assert!(r.header("mcp-session-id").is_none());

    // Alice: every stream she may hold, then one more (on her third session).
    let mut held = Vec::new();
    for sid in &sessions[..2] {
        let (conn, status, head) = get_stream(&s, &alice, sid).await;
        assert_eq!(status, 200, "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        held.push(conn);
    }
    let auth = format!("Bearer {alice}");
    let r = raw(
        s.addr,
        "GET",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sessions[2]),
        ],
        b"",
    )
    .await;
    assert_refused_naming(&r, "MCP_MAX_STREAMS_PER_PRINCIPAL");

    // Alice: every call she may have in flight, then one more.
    let mut calls = Vec::new();
    for id in 0..2 {
        let (addr, token) = (s.addr, alice.clone());
        calls.push(tokio::spawn(
            async move { hold_call(addr, &token, id).await },
        ));
        tokio::time::timeout(WAIT, started.recv())
            .await
            .expect("the held call started")
            .unwrap();
    }
    let r = modern(
        &s,
        &alice,
        json!(9),
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await;
    assert_refused_naming(&r, "MCP_MAX_CALLS_PER_PRINCIPAL");
    assert_eq!(r.json()["id"], 9, "the refusal answers the request's id");

    // Bob, meanwhile: initialize, a session call, a GET stream, a 2026-07-28 call, DELETE.
    let sid = initialize(&s, &bob, "2025-11-25").await;
    let r = legacy(
        &s,
        &bob,
        &sid,
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(is_whoami_of(&r.json(), "bob"), "{}", r.text());
    let (bob_stream, status, head) = get_stream(&s, &bob, &sid).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let r = modern(
        &s,
        &bob,
        json!(2),
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(is_whoami_of(&r.json(), "bob"), "{}", r.text());
    let r = modern(&s, &bob, json!(3), "tools/list", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    drop(bob_stream);
    let bob_auth = format!("Bearer {bob}");
    let r = raw(
        s.addr,
        "DELETE",
        "/mcp",
        &[("Authorization", &bob_auth), ("Mcp-Session-Id", &sid)],
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());

    // Alice's held calls finish when released, and then she may call again.
    gate.add_permits(2);
    for call in calls {
        let r = tokio::time::timeout(WAIT, call)
            .await
            .expect("released")
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["result"]["content"][0]["text"], "released");
    }
    let r = modern(
        &s,
        &alice,
        json!(10),
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(is_whoami_of(&r.json(), "alice"));
    drop(held);
}

/// A 2026-07-28 call of the `hold` tool.
async fn hold_call(addr: SocketAddr, token: &str, id: i64) -> Reply {
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name":"hold","arguments":{},"_meta":modern_meta()}});
    let auth = format!("Bearer {token}");
    raw(
        addr,
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "hold"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}
