//! Resumable SSE streams in the initialize era: event ids, the priming event, `retry:`, and
//! `Last-Event-ID` replay after the server (or the network) dropped a call's stream.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vouch_mcp::{CallToolResult, RequestContext, Tool};

/// A tool that closes its SSE response at once, then answers after a short pause.
fn reconnecting_tool() -> Tool {
    Tool::new(
        "reconnect",
        "closes its stream mid-call",
        |ctx: RequestContext| async move {
            ctx.close_sse_stream();
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok(CallToolResult::text("done after reconnect"))
        },
    )
}

async fn server() -> TestServer {
    start(Options {
        configure: Some(Box::new(|b| b.tool(reconnecting_tool()))),
        ..Default::default()
    })
    .await
}

/// Sends a request and reads the whole (chunked or not) SSE body until the server ends it.
async fn sse(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut req = format!("{method} /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("the server ends the stream")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

fn ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn closed_stream_is_resumed_with_last_event_id_and_delivers_the_result() {
    let s = server().await;
    let token = s.token("alice", false);
    let sid = initialize(&s, &token, "2025-11-25").await;
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"reconnect"}})
        .to_string();
    let (status, text) = sse(s.addr, "POST", &headers, &call).await;
    assert_eq!(status, 200);
    assert!(text.contains("text/event-stream"), "{text}");
    // The priming event comes first, then retry, and no result on this stream.
    let event_ids = ids(&text);
    assert_eq!(event_ids.len(), 1, "{text}");
    assert!(
        event_ids[0].ends_with("-0"),
        "priming id names the stream: {text}"
    );
    assert!(text.contains("\ndata: \n"), "priming data is empty: {text}");
    assert!(text.contains("retry: "), "{text}");
    assert!(!text.contains("done after reconnect"));

    let get_headers = [
        ("Authorization", auth.as_str()),
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
        ("Last-Event-ID", event_ids[0].as_str()),
    ];
    let (status, text) = sse(s.addr, "GET", &get_headers, "").await;
    assert_eq!(status, 200);
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find(|d| d.contains("\"id\":5"))
        .expect(&text);
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "done after reconnect");
    let stream = event_ids[0].split('-').next().unwrap();
    assert!(
        ids(&text)
            .iter()
            .all(|i| i.starts_with(&format!("{stream}-"))),
        "only that stream is replayed"
    );
}

#[tokio::test]
async fn unknown_or_malformed_last_event_id_is_not_found() {
    let s = server().await;
    let token = s.token("alice", false);
    let sid = initialize(&s, &token, "2025-11-25").await;
    let auth = format!("Bearer {token}");
    for last in ["99-3", "garbage"] {
        let r = raw(
            s.addr,
            "GET",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Accept", "text/event-stream"),
                ("Mcp-Session-Id", &sid),
                ("Last-Event-ID", last),
            ],
            b"",
        )
        .await;
        assert_eq!(r.status, 404, "{last}");
    }
}

#[tokio::test]
async fn another_principal_cannot_resume_a_stream() {
    let s = server().await;
    let token = s.token("alice", false);
    let sid = initialize(&s, &token, "2025-11-25").await;
    let auth = format!("Bearer {token}");
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reconnect"}})
        .to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    let (_, text) = sse(s.addr, "POST", &headers, &call).await;
    let first = ids(&text).remove(0);
    let mallory = format!("Bearer {}", s.token("mallory", false));
    let r = raw(
        s.addr,
        "GET",
        "/mcp",
        &[
            ("Authorization", &mallory),
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("Last-Event-ID", &first),
        ],
        b"",
    )
    .await;
    assert_eq!(
        r.status, 404,
        "the session is invisible to another principal"
    );
}

#[tokio::test]
async fn sessions_at_2025_03_26_get_ids_but_no_priming_event() {
    let s = server().await;
    let token = s.token("alice", false);
    let sid = initialize(&s, &token, "2025-03-26").await;
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reconnect"}})
        .to_string();
    let (_, text) = sse(s.addr, "POST", &headers, &call).await;
    assert!(
        !text.contains("\ndata: \n"),
        "no priming event before 2025-11-25: {text}"
    );
}
