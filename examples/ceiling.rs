//! The benchmark ceiling: bare hyper answering every POST with a fixed 250-byte JSON-RPC result, nothing else.
//!
//! `benches/request_path.sh` runs the same wrk load against this and against `vouch-mcp --dev`
//! and reports the server's figures as ratios to this one's. To make that ratio mean "cost of
//! the MCP server on top of the HTTP stack", the ceiling does what any server on this stack must
//! do and nothing more, in the same shape as vouch-mcp: a multi-thread tokio runtime, one task
//! per accepted connection, `TCP_NODELAY`, hyper's HTTP/1.1 server with keep-alive and a
//! header-read timeout, and the request body read to the end before answering.
//!
//! ```sh
//! cargo run --release --example ceiling -- 0     # or CEILING_PORT=0; prints `listening on ADDR`
//! ```
//!
//! With `CEILING_JSON=1` it is the *JSON floor* instead: it also parses each body into a
//! `serde_json::Value`, builds a whoami-shaped result as a `Value` (the text block is the
//! structured content pretty-printed, as vouch-mcp's whoami does) and serializes it. That is
//! the least any server does whose requests and results are `serde_json::Value`s, so
//! `benches/instructions.sh` (always) and `benches/request_path.sh` (with `FLOOR=1`) report how
//! much of vouch-mcp's cost above the ceiling that alone takes.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// A whoami-like `tools/call` result, padded to exactly 250 bytes.
const BODY: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"sub\":\"bench\",\"email\":\"be@example.com\",\"hardware_verified\":true}"}],"#,
    r#""isError":false,"structuredContent":{"sub":"bench","email":"be@example.com","hardware_verified":true}}}"#,
);
const _: () = assert!(BODY.len() == 250, "the ceiling's body is 250 bytes");

/// Largest request body read, as a server on the open network would cap it.
const BODY_CAP: usize = 4 * 1024 * 1024;

/// The same header-read timeout vouch-mcp sets, so both run hyper's timer per connection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    // Read the request to the end, as a real handler must before it can answer.
    let limited = http_body_util::Limited::new(req.into_body(), BODY_CAP);
    let Ok(body) = limited.collect().await else {
        return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
    };
    let answer = if json_floor() {
        match json_answer(&body.to_bytes()) {
            Some(bytes) => Bytes::from(bytes),
            None => return Ok(status(StatusCode::BAD_REQUEST)),
        }
    } else {
        Bytes::from_static(BODY.as_bytes())
    };
    let mut resp = Response::new(Full::new(answer));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// `CEILING_JSON=1`: read once, at the first request.
fn json_floor() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("CEILING_JSON").is_ok_and(|v| v == "1"))
}

/// The JSON floor's answer: the request parsed into a `Value`, a whoami-shaped result built
/// and serialized; `None` when the body is not a JSON object.
fn json_answer(body: &[u8]) -> Option<Vec<u8>> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let id = request.get("id")?.clone();
    let structured =
        json!({"email": "bench@example.com", "sub": "bench", "hardware_verified": true});
    let text = serde_json::to_string_pretty(&structured).ok()?;
    let reply = json!({"jsonrpc": "2.0", "id": id, "result": {
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": false,
    }});
    serde_json::to_vec(&reply).ok()
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = code;
    resp
}

/// The port comes from the first argument, else `CEILING_PORT`, else 0 (any free port).
fn port() -> Result<u16, String> {
    let raw = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CEILING_PORT").ok());
    match raw {
        None => Ok(0),
        Some(p) => p
            .parse()
            .map_err(|_| format!("port {p:?} is not a number in 0..=65535")),
    }
}

fn main() -> std::process::ExitCode {
    let port = match port() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ceiling: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ceiling: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(SocketAddr::from(([127, 0, 0, 1], port)))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    // The script reads this line to learn the port; stdout is line-buffered only on a tty.
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin, as vouch-mcp does.
                eprintln!("ceiling: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service_fn(answer));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
