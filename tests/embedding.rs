//! The embedding API end to end: the service mounted in a plain hyper server and in an axum router, a Unix socket, and per-connection auth.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vouch_mcp::Server;

/// A whoami call at 2026-07-28 as raw HTTP/1.1 bytes.
fn whoami_request(host: &str, token: &str) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": modern_meta()}})
    .to_string();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: whoami\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn body_json(raw: &[u8]) -> Value {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    serde_json::from_slice(&raw[at..]).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(raw));
    })
}

async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    buf
}

/// The server of these tests, for `resource`.
fn server(resource: &str) -> (Server, DevIssuer) {
    build(Options::default(), resource)
}

fn token(issuer: &DevIssuer, resource: &str) -> String {
    issuer.mint(&issuer.claims(resource, "alice", "alice@example.com", true, now(), 3600))
}

#[tokio::test]
async fn the_service_mounted_in_a_plain_hyper_server_answers_next_to_your_routes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://localhost:{}/mcp", addr.port());
    let (server, issuer) = server(&resource);
    let mcp = server.service();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let mcp = mcp.clone();
            let routes = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let mcp = mcp.clone();
                async move {
                    if req.uri().path() == "/api/hello" {
                        let body = Full::new(Bytes::from_static(b"{\"app\":true}"));
                        return Ok::<_, std::convert::Infallible>(Response::new(body.boxed()));
                    }
                    Ok(mcp.call(req).await?.map(|b| b.boxed()))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), routes),
            );
        }
    });
    let raw = exchange(
        addr,
        &whoami_request(&addr.to_string(), &token(&issuer, &resource)),
    )
    .await;
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        body_json(&raw)["result"]["structuredContent"]["sub"],
        "alice"
    );
    let raw = exchange(
        addr,
        format!("GET /api/hello HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(body_json(&raw), json!({"app": true}));
    // The MCP server's own paths are its: the challenge names its metadata document.
    let raw = exchange(
        addr,
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(
        text.contains("/.well-known/oauth-protected-resource/mcp"),
        "{text}"
    );
}

#[tokio::test]
async fn the_service_mounted_in_an_axum_router_answers_next_to_your_routes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://localhost:{}/mcp", addr.port());
    let (server, issuer) = server(&resource);
    let mcp = server.service();
    let app = axum::Router::new()
        .route("/api/hello", axum::routing::get(|| async { "from axum" }))
        .fallback(move |req: axum::extract::Request| {
            let mcp = mcp.clone();
            async move {
                let resp = mcp.call(req).await.unwrap_or_else(|never| match never {});
                resp.map(axum::body::Body::new)
            }
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let raw = exchange(
        addr,
        &whoami_request(&addr.to_string(), &token(&issuer, &resource)),
    )
    .await;
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        body_json(&raw)["result"]["structuredContent"]["hardware_verified"],
        true
    );
    let raw = exchange(
        addr,
        format!("GET /api/hello HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(String::from_utf8_lossy(&raw).ends_with("from axum"));
}

#[cfg(unix)]
#[tokio::test]
async fn serve_accepts_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("vouch-mcp-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mcp.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let resource = "http://localhost/mcp";
    let (server, issuer) = server(resource);
    let stop = vouch_mcp::CancelToken::new();
    let s2 = stop.clone();
    let serving = tokio::spawn(server.serve(listener, async move { s2.cancelled().await }));
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(&whoami_request("localhost", &token(&issuer, resource)))
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        body_json(&raw)["result"]["structuredContent"]["email"],
        "alice@example.com"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sends `requests` one after another on one keep-alive connection; returns each status line.
async fn on_one_connection(addr: std::net::SocketAddr, requests: &[Vec<u8>]) -> Vec<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut statuses = Vec::new();
    for req in requests {
        s.write_all(req).await.unwrap();
        // Read one response: head, then Content-Length bytes of body.
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut byte))
                .await
                .expect("answered in time")
                .unwrap();
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.unwrap();
        statuses.push(head.lines().next().unwrap().to_owned());
    }
    statuses
}

#[tokio::test]
async fn each_request_on_a_connection_is_judged_by_its_own_token() {
    let s = start(Options::default()).await;
    let host = s.addr.to_string();
    let good = s.token("alice", true);
    let expired = s.issuer.mint(&s.issuer.claims(
        &s.resource,
        "alice",
        "alice@example.com",
        true,
        now() - 7200,
        3600,
    ));
    let keep_alive = |token: &str| {
        let mut r = whoami_request(&host, token);
        let text = String::from_utf8(r.clone()).unwrap();
        r = text.replace("Connection: close\r\n", "").into_bytes();
        r
    };
    let statuses = on_one_connection(
        s.addr,
        &[
            keep_alive(&good),
            keep_alive(&good),
            keep_alive(&expired),
            keep_alive("not-a-token"),
            keep_alive(&good),
        ],
    )
    .await;
    let codes: Vec<&str> = statuses
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(codes, ["200", "200", "401", "401", "200"], "{statuses:?}");
}
