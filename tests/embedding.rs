//! The embedding API end to end: the service mounted in a plain hyper server and in an axum router, a Unix socket, and an embedder's own clock, random source and log sink.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vouch_mcp::log::{LogRecord, LogSink};
use vouch_mcp::{Clock, RandomError, RandomSource, Server};

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

/// A clock stopped at a chosen moment.
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// Counts the random bytes asked for, and hands out a recognisable pattern.
#[derive(Default)]
struct CountingRandom(AtomicU64);

impl RandomSource for CountingRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        self.0.fetch_add(dest.len() as u64, Ordering::Relaxed);
        dest.fill(0xAB);
        Ok(())
    }
}

/// Keeps every line.
#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl LogSink for Collect {
    fn write(&self, record: LogRecord) {
        self.0.lock().unwrap().push(record.message);
    }
}

#[tokio::test]
async fn the_embedders_clock_random_source_and_log_sink_are_the_ones_used() {
    let resource = "http://localhost:3000/mcp";
    let random = Arc::new(CountingRandom::default());
    let sink = Arc::new(Collect::default());
    // Two hours from now: a token valid for one hour has expired by this clock.
    let later = SystemTime::now() + Duration::from_secs(7200);
    let (r2, s2) = (random.clone(), sink.clone());
    let (server, issuer) = build(
        Options {
            configure: Some(Box::new(move |b| {
                b.clock(Arc::new(FixedClock(later)))
                    .random_source(r2)
                    .log_sink(s2)
            })),
            ..Options::default()
        },
        resource,
    );
    assert_eq!(
        random.0.load(Ordering::Relaxed),
        32,
        "the sealing key came from it"
    );
    let svc = server.service();
    let call = |token: String| {
        let svc = svc.clone();
        async move {
            let req = Request::post("/mcp")
                .header("host", "localhost:3000")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                        "protocolVersion":"2025-11-25","capabilities":{},
                        "clientInfo":{"name":"t","version":"0"}}})
                    .to_string(),
                )))
                .unwrap();
            svc.call(req).await.unwrap()
        }
    };
    let fresh = token(&issuer, resource);
    let resp = call(fresh).await;
    assert_eq!(
        resp.status(),
        401,
        "the server's clock, not the system's, judged expiry"
    );
    let iat = later.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let valid_then = issuer.mint(&issuer.claims(resource, "alice", "a@x", false, iat, 60));
    let resp = call(valid_then).await;
    assert_eq!(resp.status(), 200);
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // 24 bytes of 0xAB, base64url: the session id came from the embedder's source.
    assert_eq!(session, "q6urq6urq6urq6urq6urq6urq6urq6ur");
    assert_eq!(random.0.load(Ordering::Relaxed), 32 + 24);
    // The sink is process-wide and the first one installed wins; this test binary installs
    // no other, so every request line of this test is in it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lines = sink.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("request method=POST path=/mcp status=401")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rpc=initialize") && l.contains("sub=alice")),
        "{lines:#?}"
    );
}
