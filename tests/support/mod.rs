//! Shared test helpers: an in-process server on a loopback port with a test issuer, and a tiny HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vouch_mcp::auth::{AudiencePolicy, Authenticator, KeyProvider, Policy, StaticKeys};
use vouch_mcp::{CancelToken, ServerBuilder};

// The binary's dev issuer and guide tools, compiled into the tests from the same files.
#[path = "../../src/bin/vouch-mcp/dev.rs"]
mod dev;
#[path = "../../src/bin/vouch-mcp/guide.rs"]
pub mod guide;
pub use dev::DevIssuer;

/// Issuer of every test token.
pub const ISSUER: &str = "https://issuer.test";

/// A fixed test key so runs are reproducible (any scalar in [1, n-1] works).
pub fn test_issuer() -> DevIssuer {
    DevIssuer::from_secret(ISSUER, "test-key-1", [7u8; 32]).expect("valid scalar")
}

/// A second issuer key (same issuer name, another kid) for rotation and wrong-key tests.
pub fn other_key() -> DevIssuer {
    DevIssuer::from_secret(ISSUER, "test-key-2", [9u8; 32]).expect("valid scalar")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running in-process server.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The server's metrics listener (`GET /metrics`; 503 unless built with `.metrics()`).
    pub metrics_addr: Option<SocketAddr>,
    pub resource: String,
    pub issuer: DevIssuer,
    stop: CancelToken,
}

impl TestServer {
    /// Claims for a normal token of this server: iss, aud = resource, sub, email, iat, exp (+1 h).
    pub fn claims(&self, sub: &str, hardware_verified: bool) -> Map<String, Value> {
        self.issuer.claims(
            &self.resource,
            sub,
            &format!("{sub}@example.com"),
            hardware_verified,
            now(),
            3600,
        )
    }

    pub fn token(&self, sub: &str, hardware_verified: bool) -> String {
        self.issuer.mint(&self.claims(sub, hardware_verified))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Options for [`start`].
#[derive(Default)]
pub struct Options {
    pub required_scopes: Vec<String>,
    pub keys: Option<Arc<dyn KeyProvider>>,
    pub configure: Option<Box<dyn FnOnce(ServerBuilder) -> ServerBuilder + Send>>,
    /// Bind here instead of 127.0.0.1:0.
    pub bind: Option<String>,
    /// `sensitive-action` answers with an RFC 9470 challenge (`VOUCH_STEP_UP=challenge`).
    pub guide_step_up: bool,
}

/// Builds the guide's server (whoami, sensitive-action) for `resource`, trusting the test issuer's keys.
pub fn build(opts: Options, resource: &str) -> (vouch_mcp::Server, DevIssuer) {
    let issuer = test_issuer();
    let keys = opts
        .keys
        .unwrap_or_else(|| Arc::new(StaticKeys(Arc::new(issuer.key_set()))));
    let policy = Policy::new(ISSUER, AudiencePolicy::OneOf(vec![resource.to_owned()]));
    let auth = Authenticator::new(policy, keys, opts.required_scopes);
    let mut builder = ServerBuilder::new("vouch-mcp", "0.1.0", resource)
        .authenticator(auth)
        .tool(guide::whoami())
        .tool(if opts.guide_step_up {
            guide::sensitive_action_challenge()
        } else {
            guide::sensitive_action()
        });
    if let Some(f) = opts.configure {
        builder = f(builder);
    }
    (builder.build().unwrap(), issuer)
}

/// Starts the guide's server (whoami, sensitive-action) on 127.0.0.1:0 with the test issuer's keys.
pub async fn start(opts: Options) -> TestServer {
    let bind = opts.bind.clone().unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(bind.as_str()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://localhost:{}/mcp", addr.port());
    let (server, issuer) = build(opts, &resource);
    let stop = CancelToken::new();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().ok();
    let (m, s3) = (server.clone(), stop.clone());
    tokio::spawn(async move {
        m.serve_metrics(metrics, async move { s3.cancelled().await })
            .await
    });
    let s2 = stop.clone();
    tokio::spawn(async move {
        server
            .serve(listener, async move { s2.cancelled().await })
            .await
    });
    TestServer {
        addr,
        metrics_addr,
        resource,
        issuer,
        stop,
    }
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request with exactly these headers (plus Host and Content-Length) and reads the
/// whole response (connection: close). Raw, so tests control every byte.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    parse_reply(&buf)
}

fn parse_reply(buf: &[u8]) -> Reply {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..eol])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        data = &data[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

/// `_meta` for a 2026-07-28 request.
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// POSTs a 2026-07-28 request with all the standard headers set correctly.
pub async fn modern(
    server: &TestServer,
    token: &str,
    id: Value,
    method: &str,
    mut params: Value,
) -> Reply {
    params["_meta"] = modern_meta();
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = &name {
        headers.push(("Mcp-Name", n.as_str()));
    }
    raw(server.addr, "POST", "/mcp", &headers, body.as_bytes()).await
}

/// Sends initialize (2025-11-25 unless `version` says otherwise) and returns the reply, refused or not.
pub async fn try_initialize(server: &TestServer, token: &str, version: &str) -> Reply {
    let auth = format!("Bearer {token}");
    let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":version,"capabilities":{},"clientInfo":{"name":"test","version":"0"}}}).to_string();
    raw(
        server.addr,
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        body.as_bytes(),
    )
    .await
}

/// Runs initialize (2025-11-25 unless `version` says otherwise) and returns the session id.
pub async fn initialize(server: &TestServer, token: &str, version: &str) -> String {
    let r = try_initialize(server, token, version).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("mcp-session-id").expect("session id").to_owned()
}

/// POSTs a legacy request on a session.
pub async fn legacy(server: &TestServer, token: &str, session: &str, body: Value) -> Reply {
    let auth = format!("Bearer {token}");
    raw(
        server.addr,
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", session),
        ],
        body.to_string().as_bytes(),
    )
    .await
}
