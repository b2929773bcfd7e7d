//! End-to-end tests of the real `vouch-mcp` binary: configuration, the dev banner and dev issuer,
//! a local issuer (up and down), logging hygiene, graceful shutdown and Host/Origin checks.
//!
//! Every test spawns the binary on a free loopback port, talks HTTP/1.1 to it over a plain
//! `TcpStream` (`Connection: close`), and always kills it (a guard with `Drop`). Every wait is
//! bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use harness::*;

#[path = "../src/bin/vouch-mcp/dev.rs"]
#[allow(dead_code)]
mod dev;
use dev::DevIssuer;

/// Test-only plumbing: the child process guard, a tiny HTTP client, a tiny JWKS server.
mod harness {
    use super::*;

    pub const BIN: &str = env!("CARGO_BIN_EXE_vouch-mcp");

    /// Every variable the binary reads (plus would-be dev switches): removed from the child's
    /// environment so the developer's shell cannot leak into a test.
    const KNOWN_VARS: &[&str] = &[
        "VOUCH_ISSUER",
        "VOUCH_JWKS_URL",
        "MCP_RESOURCE_URL",
        "VOUCH_AUDIENCE",
        "VOUCH_SKIP_AUDIENCE",
        "VOUCH_REQUIRED_SCOPES",
        "VOUCH_LEEWAY_SECS",
        "VOUCH_REQUIRE_AT_JWT",
        "VOUCH_JWKS_TIMEOUT_SECS",
        "VOUCH_JWKS_REFETCH_SECS",
        "HOST",
        "PORT",
        "MCP_ALLOWED_HOSTS",
        "MCP_ALLOWED_ORIGINS",
        "MCP_MAX_BODY_BYTES",
        "MCP_SESSION_IDLE_SECS",
        "MCP_MAX_SESSIONS",
        "MCP_PAGE_SIZE",
        "MCP_SSE_KEEPALIVE_SECS",
        "MCP_SHUTDOWN_GRACE_SECS",
        "MCP_TLS_CERT_FILE",
        "MCP_TLS_KEY_FILE",
        "MCP_TLS_WATCH_SECS",
        "VOUCH_MCP_LOG",
        "VOUCH_MCP_LOG_FORMAT",
        "MCP_METRICS_ADDR",
        "MCP_TRUSTED_PROXIES",
        "MCP_LISTEN_PATH",
        "VOUCH_MCP_AUDIT",
        "VOUCH_STEP_UP",
        "MCP_STATE_KEY_FILE",
        "VOUCH_DEV",
        "DEV",
    ];

    pub fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Ports this test process has handed out, so two tests (or a test's own binary and its
    /// issuer) never get the same one from the kernel.
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

    /// A loopback listener on a port no other test here has been given.
    pub fn bind_fresh() -> TcpListener {
        loop {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let mut used = HANDED_OUT.lock().unwrap();
            if !used.contains(&port) {
                used.push(port);
                return l;
            }
        }
    }

    /// A port that was free a moment ago (bind :0, read it, drop the listener).
    pub fn free_port() -> u16 {
        bind_fresh().local_addr().unwrap().port()
    }

    type Buf = Arc<Mutex<Vec<u8>>>;

    fn pump(mut from: impl Read + Send + 'static, into: Buf) -> JoinHandle<()> {
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match from.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => into.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
        })
    }

    /// A running (or exited) binary. Dropping it kills the process.
    pub struct Proc {
        child: Child,
        pub port: u16,
        out: Buf,
        err: Buf,
        pumps: Vec<JoinHandle<()>>,
        status: Option<ExitStatus>,
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            if self.status.is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    impl Proc {
        /// Spawns the binary with `args`, a cleaned environment plus `env`, stdout/stderr captured.
        pub fn spawn(args: &[&str], env: &[(&str, &str)], port: u16) -> Proc {
            let mut cmd = Command::new(BIN);
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for v in KNOWN_VARS {
                cmd.env_remove(v);
            }
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("spawn vouch-mcp");
            let out: Buf = Arc::default();
            let err: Buf = Arc::default();
            let pumps = vec![
                pump(child.stdout.take().unwrap(), out.clone()),
                pump(child.stderr.take().unwrap(), err.clone()),
            ];
            Proc {
                child,
                port,
                out,
                err,
                pumps,
                status: None,
            }
        }

        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        pub fn stdout(&self) -> String {
            String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
        }

        pub fn stderr(&self) -> String {
            String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
        }

        /// The exit status if the process has ended (without waiting).
        pub fn exited(&mut self) -> Option<ExitStatus> {
            if self.status.is_none() {
                self.status = self.child.try_wait().unwrap();
            }
            self.status
        }

        /// Waits up to `limit` for the process to end; then drains its output pipes.
        pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if let Some(s) = self.exited() {
                    for p in self.pumps.drain(..) {
                        let _ = p.join();
                    }
                    return Some(s);
                }
                thread::sleep(Duration::from_millis(20));
            }
            None
        }

        /// Polls until stdout contains `needle` (bounded).
        pub fn wait_stdout(&self, needle: &str, limit: Duration) -> String {
            let deadline = Instant::now() + limit;
            loop {
                let s = self.stdout();
                if s.contains(needle) {
                    return s;
                }
                assert!(
                    Instant::now() < deadline,
                    "stdout never contained {needle:?}; stdout:\n{s}\nstderr:\n{}",
                    self.stderr()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// Polls until `pred(stderr)` holds (bounded).
        pub fn wait_stderr(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) {
            let deadline = Instant::now() + limit;
            loop {
                let s = self.stderr();
                if pred(&s) {
                    return;
                }
                assert!(Instant::now() < deadline, "stderr never had {what}:\n{s}");
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// Sends SIGTERM with the `kill` utility (no libc needed).
        pub fn sigterm(&self) {
            let st = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status()
                .expect("run kill");
            assert!(st.success(), "kill -TERM failed: {st}");
        }
    }

    /// Starts the binary on a free port and waits (up to 10 s) for `/healthz`. A port taken
    /// between picking and binding ("cannot bind") is retried once with another port.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Proc {
        for attempt in 0..2 {
            let port = free_port();
            let port_s = port.to_string();
            let mut full: Vec<(&str, &str)> = vec![("PORT", &port_s)];
            if !env.iter().any(|(k, _)| *k == "HOST") {
                full.push(("HOST", "127.0.0.1"));
            }
            full.extend_from_slice(env);
            let mut p = Proc::spawn(args, &full, port);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = p.exited() {
                    let err = p.stderr();
                    if attempt == 0 && err.contains("cannot bind") {
                        break; // the rare race: someone took the port; try another
                    }
                    panic!("vouch-mcp exited early ({status}):\n{err}");
                }
                if let Ok(r) = try_request(port, "GET", "/healthz", &[], b"") {
                    if r.status == 200 {
                        return p;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "vouch-mcp not healthy within 10 s:\n{}",
                    p.stderr()
                );
                thread::sleep(Duration::from_millis(25));
            }
        }
        unreachable!("two attempts failed to bind")
    }

    /// Runs the binary to completion (bounded by 10 s) and returns status, stdout, stderr, time.
    pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
        let mut p = Proc::spawn(args, env, 0);
        let status = p
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{args:?} {env:?} did not exit within 10 s"));
        (status, p.stdout(), p.stderr())
    }

    /// A raw HTTP/1.1 response.
    #[derive(Debug)]
    pub struct Reply {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Reply {
        pub fn header(&self, name: &str) -> Option<&str> {
            let name = name.to_ascii_lowercase();
            self.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
        pub fn json(&self) -> Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
        }
    }

    fn head(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("Connection: close\r\n\r\n");
        req
    }

    fn connect(port: u16) -> std::io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(s)
    }

    /// One request, whole response (Connection: close); errors instead of panicking.
    pub fn try_request(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Reply> {
        let mut s = connect(port)?;
        s.write_all(head(port, method, path, headers, body).as_bytes())?;
        s.write_all(body)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        parse_reply(&buf).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "incomplete response")
        })
    }

    pub fn request(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        try_request(port, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Opens a request whose response is a stream: returns the status, headers and the socket.
    pub fn open_stream(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, TcpStream) {
        let mut s = connect(port).unwrap();
        s.write_all(head(port, method, path, headers, b"").as_bytes())
            .unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut byte).expect("stream head");
            assert!(n == 1, "stream closed before its head: {buf:?}");
            buf.push(byte[0]);
        }
        let r = parse_reply(&buf).expect("head");
        (r.status, r.headers, s)
    }

    fn parse_reply(buf: &[u8]) -> Option<Reply> {
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
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
        Some(Reply {
            status,
            headers,
            body,
        })
    }

    fn dechunk(mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&data[..eol]).into_owned();
            let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            else {
                break;
            };
            data = &data[eol + 2..];
            if size == 0 || data.len() < size {
                break;
            }
            out.extend_from_slice(&data[..size]);
            data = &data[(size + 2).min(data.len())..];
        }
        out
    }

    /// A 2026-07-28 (stateless) `tools/call` with every header and `_meta` set.
    pub fn call_2026(port: u16, token: &str, tool: &str) -> Reply {
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": tool, "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {}
                }
            }
        })
        .to_string();
        let auth = format!("Bearer {token}");
        request(
            port,
            "POST",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", tool),
            ],
            body.as_bytes(),
        )
    }

    /// `initialize` at 2025-11-25; returns the session id.
    pub fn initialize(port: u16, token: &str) -> String {
        let auth = format!("Bearer {token}");
        let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"binary-test","version":"0"}}})
        .to_string();
        let r = request(
            port,
            "POST",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["result"]["protocolVersion"], "2025-11-25");
        r.header("mcp-session-id")
            .expect("Mcp-Session-Id")
            .to_owned()
    }

    /// A request on a 2025-11-25 session.
    pub fn on_session(port: u16, token: &str, sid: &str, body: &Value) -> Reply {
        let auth = format!("Bearer {token}");
        request(
            port,
            "POST",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("MCP-Protocol-Version", "2025-11-25"),
                ("Mcp-Session-Id", sid),
            ],
            body.to_string().as_bytes(),
        )
    }

    /// Calls whoami until the key set is there (503 + Retry-After before that); returns the
    /// first non-503 reply. Bounded by `limit`.
    pub fn whoami_when_ready(port: u16, token: &str, limit: Duration) -> Reply {
        let deadline = Instant::now() + limit;
        loop {
            let r = call_2026(port, token, "whoami");
            if r.status != 503 {
                return r;
            }
            let retry = r.header("retry-after").expect("503 carries Retry-After");
            assert!(retry.parse::<u64>().is_ok_and(|s| s >= 1), "{retry:?}");
            assert!(
                Instant::now() < deadline,
                "still 503 after {limit:?}: {}",
                r.text()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The claims inside a JWT (no verification: only to check what the banner printed).
    pub fn payload(token: &str) -> Value {
        let seg = token.split('.').nth(1).expect("three segments");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).expect("base64url")).unwrap()
    }

    /// `POST /dev/token` with `body`; returns the access token.
    pub fn dev_mint(port: u16, body: &Value) -> String {
        let r = request(
            port,
            "POST",
            "/dev/token",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["token_type"], "Bearer");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A tiny JWKS server on a std thread: `GET /jwks` → the document, anything else 404.
    pub struct JwksServer {
        stop: Arc<AtomicBool>,
        pub hits: Arc<AtomicUsize>,
        handle: Option<JoinHandle<()>>,
    }

    impl Drop for JwksServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }

    impl JwksServer {
        pub fn start(listener: TcpListener, jwks: Value) -> JwksServer {
            listener.set_nonblocking(true).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let hits = Arc::new(AtomicUsize::new(0));
            let body = jwks.to_string();
            let (stop2, hits2) = (stop.clone(), hits.clone());
            let handle = thread::spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    let mut s = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(_) => {
                            thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    };
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut req = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&req).into_owned();
                    let resp = if line.starts_with("GET /jwks ") {
                        hits2.fetch_add(1, Ordering::SeqCst);
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    };
                    let _ = s.write_all(resp.as_bytes());
                }
            });
            JwksServer {
                stop,
                hits,
                handle: Some(handle),
            }
        }
    }

    /// The request lines of a log.
    pub fn request_lines(log: &str) -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(" request method="))
            .map(str::to_owned)
            .collect()
    }
}

/// The banner's parts.
struct Banner {
    text: String,
    plain: String,
    hardware: String,
}

fn read_banner(p: &Proc) -> Banner {
    let text = p.wait_stdout("\"ttl_secs\":600}'", Duration::from_secs(10));
    let token_after = |label: &str| -> String {
        let at = text
            .find(label)
            .unwrap_or_else(|| panic!("banner lacks {label:?}:\n{text}"));
        text[at + label.len()..]
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap()
            .trim()
            .to_owned()
    };
    Banner {
        plain: token_after("Token (hardware_verified=false, valid 1 h):"),
        hardware: token_after("Token (hardware_verified=true, valid 1 h):"),
        text,
    }
}

fn structured(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v.get("error").is_none(), "{v}");
    v["result"]["structuredContent"].clone()
}

/// Runs a shell snippet with curl, bounded by 10 s; returns its stdout.
fn run_sh(script: &str) -> String {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shell snippet did not finish in 10 s:\n{script}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// ---------------------------------------------------------------------------------------------
// 1. --dev: banner, self-fetched JWKS, both tokens, both eras, the printed curl command
// ---------------------------------------------------------------------------------------------

#[test]
fn dev_banner_tokens_work_in_both_eras_and_its_curl_line_runs() {
    let p = start(&["--dev"], &[]);
    let port = p.port;
    let b = read_banner(&p);
    let issuer = format!("http://127.0.0.1:{port}/dev");
    let resource = format!("http://localhost:{port}/mcp");

    // The banner: both tokens, the issuer, the endpoint, a curl example and the mint command.
    assert!(b.text.contains("DEV MODE"), "{}", b.text);
    assert!(b.text.contains(&format!("Issuer:         {issuer}\n")));
    assert!(b
        .text
        .contains(&format!("JWKS:           {issuer}/oauth/jwks\n")));
    assert!(b.text.contains(&format!("MCP endpoint:   {resource}\n")));
    assert!(b
        .text
        .contains(&format!("curl -s http://127.0.0.1:{port}/mcp ")));
    assert!(b.text.contains(&format!(
        "curl -s -X POST {issuer}/token -d '{{\"sub\":\"bob\""
    )));
    assert_ne!(b.plain, b.hardware);
    for (tok, hw) in [(&b.plain, false), (&b.hardware, true)] {
        let c = payload(tok);
        assert_eq!(c["iss"], issuer.as_str());
        assert_eq!(c["aud"], resource.as_str());
        assert_eq!(c["hardware_verified"], hw);
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            3600
        );
    }

    // The server fetches its own JWKS: 503 + Retry-After may come first, then whoami works.
    let r = whoami_when_ready(port, &b.plain, Duration::from_secs(10));
    assert_eq!(
        structured(&r),
        json!({"email":"dev@example.com","sub":"dev-user","hardware_verified":false})
    );
    let v = r.json();
    assert_eq!(v["result"]["resultType"], "complete");
    assert_eq!(
        v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "vouch-mcp"
    );
    let r = call_2026(port, &b.hardware, "whoami");
    assert_eq!(structured(&r)["hardware_verified"], true);

    // sensitive-action: isError with the plain token, success with the hardware one.
    let r = call_2026(port, &b.plain, "sensitive-action");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("hardware_key_required"));
    let r = call_2026(port, &b.hardware, "sensitive-action");
    let v = r.json();
    assert_eq!(v["result"]["isError"], false, "{v}");
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    let inner: Value = serde_json::from_str(text).unwrap();
    assert_eq!(inner["status"], "success");
    assert_eq!(
        inner["hardware_aaguid"],
        "cb69481e-8ff7-4039-93ec-0a2729a154a8"
    );

    // The 2025-11-25 initialize era: a session, a call on it, DELETE ends it.
    let sid = initialize(port, &b.hardware);
    let r = on_session(
        port,
        &b.hardware,
        &sid,
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}),
    );
    assert_eq!(
        structured(&r),
        json!({"email":"dev@example.com","sub":"dev-user","hardware_verified":true})
    );
    let auth = format!("Bearer {}", b.hardware);
    let r = request(
        port,
        "DELETE",
        "/mcp",
        &[("Authorization", &auth), ("Mcp-Session-Id", &sid)],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = on_session(
        port,
        &b.hardware,
        &sid,
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami"}}),
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // The printed curl commands, run as printed.
    if !curl_available() {
        eprintln!("NOTE: curl is not installed; skipping the banner's curl commands");
        return;
    }
    let start = b.text.find("Try it (2026-07-28, stateless):").unwrap();
    let end = b.text.find("Mint more tokens:").unwrap();
    let script: String = b.text[start..end]
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        script.contains("TOKEN=") && script.contains("curl "),
        "{script}"
    );
    let out = run_sh(&script);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        v["result"]["structuredContent"],
        json!({"email":"dev@example.com","sub":"dev-user","hardware_verified":true})
    );
    let mint = b.text[end..].lines().nth(1).unwrap().trim();
    let out = run_sh(mint);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let bob = v["access_token"].as_str().unwrap();
    let r = call_2026(port, bob, "whoami");
    assert_eq!(
        structured(&r),
        json!({"email":"bob@example.com","sub":"bob","hardware_verified":true})
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The dev issuer's endpoints and challenges
// ---------------------------------------------------------------------------------------------

#[test]
fn dev_token_endpoint_metadata_and_challenges() {
    let p = start(&["--dev"], &[]);
    let port = p.port;
    let issuer = format!("http://127.0.0.1:{port}/dev");
    let prm_url = format!("http://localhost:{port}/.well-known/oauth-protected-resource/mcp");

    // A minted token works and carries what was asked for.
    let tok = dev_mint(
        port,
        &json!({"sub":"bob","email":"bob@example.com","hardware_verified":true,
                "ttl_secs":600,"scope":"openid email extra"}),
    );
    let c = payload(&tok);
    assert_eq!(c["scope"], "openid email extra");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 600);
    let r = whoami_when_ready(port, &tok, Duration::from_secs(10));
    assert_eq!(
        structured(&r),
        json!({"email":"bob@example.com","sub":"bob","hardware_verified":true})
    );
    // Defaults: an empty body mints dev-user, not hardware verified.
    let r = request(port, "POST", "/dev/token", &[], b"");
    assert_eq!(r.status, 200);
    let tok = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        structured(&call_2026(port, &tok, "whoami")),
        json!({"email":"dev@example.com","sub":"dev-user","hardware_verified":false})
    );
    // A token for another audience is refused.
    let other = dev_mint(port, &json!({"aud":"https://other.example/mcp"}));
    let r = call_2026(port, &other, "whoami");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error_description="token not issued for this resource""#));

    // No token: 401 with only resource_metadata.
    let r = request(port, "POST", "/mcp", &[], b"");
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap();
    assert_eq!(www, format!(r#"Bearer resource_metadata="{prm_url}""#));
    assert!(!www.contains("error="));

    // The protected-resource metadata names the dev issuer.
    let r = request(
        port,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let prm = r.json();
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    assert_eq!(prm["resource"], format!("http://localhost:{port}/mcp"));

    // The dev authorization-server metadata (both locations) and its JWKS.
    for path in [
        "/.well-known/oauth-authorization-server/dev",
        "/dev/.well-known/openid-configuration",
    ] {
        let r = request(port, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        let md = r.json();
        assert_eq!(md["issuer"], issuer.as_str(), "{path}");
        assert_eq!(md["jwks_uri"], format!("{issuer}/oauth/jwks"), "{path}");
    }
    let r = request(port, "GET", "/dev/oauth/jwks", &[], b"");
    assert_eq!(r.status, 200);
    let jwks = r.json();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert_eq!(jwks["keys"][0]["kid"], "dev-key-1");
    assert!(jwks["keys"][0].get("d").is_none(), "private key leaked");
}

#[test]
fn dev_token_with_negative_ttl_is_expired() {
    let p = start(&["--dev"], &[]);
    let port = p.port;
    let prm_url = format!("http://localhost:{port}/.well-known/oauth-protected-resource/mcp");
    let good = dev_mint(port, &json!({"sub":"eve"}));
    assert_eq!(
        whoami_when_ready(port, &good, Duration::from_secs(10)).status,
        200
    );
    let expired = dev_mint(port, &json!({"sub":"eve","ttl_secs":-120}));
    let c = payload(&expired);
    assert!(
        c["exp"].as_u64().unwrap() < now(),
        "ttl_secs -120 minted exp {} (now {}): not expired",
        c["exp"],
        now()
    );
    let r = call_2026(port, &expired, "whoami");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            r#"Bearer error="invalid_token", error_description="token expired", resource_metadata="{prm_url}""#
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 3. --dev is loopback only, and only a flag
// ---------------------------------------------------------------------------------------------

#[test]
fn dev_refuses_non_loopback_bind() {
    for (args, env) in [
        (vec!["--dev"], vec![("HOST", "0.0.0.0"), ("PORT", "0")]),
        (vec!["--dev", "--host", "192.0.2.1"], vec![("PORT", "0")]),
        (vec!["--dev", "--host=::"], vec![("PORT", "0")]),
    ] {
        let t = Instant::now();
        let (status, out, err) = run_to_exit(&args, &env);
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(err.contains("HOST"), "{args:?}: {err}");
        assert!(err.contains("--dev"), "{args:?}: {err}");
        assert!(!out.contains("Token ("), "printed tokens: {out}");
    }
}

#[test]
fn no_environment_variable_enables_dev_mode() {
    // `--help` presents --dev as a flag only, and no dev variable exists.
    let (status, help, _) = run_to_exit(&["--help"], &[]);
    assert!(status.success());
    let dev_line = help
        .lines()
        .find(|l| l.trim_start().starts_with("--dev"))
        .expect("--help lists --dev");
    assert!(dev_line.contains("flag only"), "{dev_line}");
    assert!(!help.contains("VOUCH_DEV") && !help.contains(" DEV "));

    // Running with would-be switches set gives a normal (non-dev) server.
    let issuer = "http://127.0.0.1:9/issuer";
    let p = start(
        &[],
        &[
            ("VOUCH_DEV", "1"),
            ("DEV", "1"),
            ("VOUCH_ISSUER", issuer),
            ("VOUCH_MCP_LOG", "info"),
        ],
    );
    let port = p.port;
    for path in [
        "/dev/oauth/jwks",
        "/.well-known/oauth-authorization-server/dev",
        "/dev/.well-known/openid-configuration",
    ] {
        assert_eq!(request(port, "GET", path, &[], b"").status, 404, "{path}");
    }
    assert_eq!(request(port, "POST", "/dev/token", &[], b"").status, 404);
    let prm = request(
        port,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        b"",
    )
    .json();
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    assert!(!p.stdout().contains("DEV MODE"), "{}", p.stdout());
    assert!(
        p.stderr().contains(&format!("issuer={issuer}")),
        "{}",
        p.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Configuration errors, --help, --version
// ---------------------------------------------------------------------------------------------

#[test]
fn configuration_errors_exit_2_naming_the_setting() {
    let base = [("HOST", "127.0.0.1"), ("PORT", "0")];
    let cases: Vec<(Vec<&str>, (&str, &str), &str)> = vec![
        (vec![], ("PORT", "abc"), "PORT"),
        (
            vec![],
            ("VOUCH_SKIP_AUDIENCE", "maybe"),
            "VOUCH_SKIP_AUDIENCE",
        ),
        (
            vec![],
            ("VOUCH_REQUIRED_SCOPES", "a\"b"),
            "VOUCH_REQUIRED_SCOPES",
        ),
        (
            vec![],
            ("MCP_RESOURCE_URL", "localhost/mcp"),
            "MCP_RESOURCE_URL",
        ),
        (
            vec![],
            ("VOUCH_JWKS_URL", "http://issuer.example/jwks"),
            "VOUCH_JWKS_URL",
        ),
        (vec![], ("VOUCH_MCP_LOG", "loud"), "VOUCH_MCP_LOG"),
        (vec![], ("MCP_MAX_SESSIONS", "0"), "MCP_MAX_SESSIONS"),
        (vec!["--bogus"], ("VOUCH_MCP_LOG", "info"), "--bogus"),
        (vec!["--port"], ("VOUCH_MCP_LOG", "info"), "--port"),
        (vec!["--port", "x1"], ("PORT", "1"), "--port"),
    ];
    for (args, (k, v), named) in cases {
        let mut env = base.to_vec();
        env.retain(|(n, _)| *n != k);
        env.push((k, v));
        let t = Instant::now();
        let (status, out, err) = run_to_exit(&args, &env);
        let took = t.elapsed();
        assert_eq!(status.code(), Some(2), "{args:?} {k}={v}: {err}");
        assert!(took < Duration::from_secs(5), "{k}={v} took {took:?}");
        assert!(
            err.contains("configuration error") && err.contains(named),
            "{args:?} {k}={v}: stderr does not name {named}: {err}"
        );
        assert!(out.is_empty(), "{out}");
    }
}

/// The README configuration table: (variable, flag, default column).
fn readme_settings() -> Vec<(String, String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("| variable | flag | default | meaning |")
        .nth(1)
        .expect("configuration table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let var = cells.get(1)?.trim_matches('`');
            (!var.is_empty()).then(|| {
                (
                    var.to_owned(),
                    cells[2].trim_matches('`').to_owned(),
                    cells[3].to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn help_lists_every_readme_setting_with_its_default_and_version_prints() {
    let (status, help, err) = run_to_exit(&["--help"], &[]);
    assert_eq!(status.code(), Some(0), "{err}");
    let settings = readme_settings();
    assert!(settings.len() >= 21, "{settings:?}");
    for (var, flag, default) in &settings {
        // README's default column: `x` (possibly followed by a note), "none", or prose.
        let expected = if let Some(rest) = default.strip_prefix('`') {
            rest.split('`').next().unwrap().to_owned()
        } else if default == "none" {
            "(none)".to_owned()
        } else if default == "the resource URL" {
            "{resource url}".to_owned()
        } else {
            panic!("unexpected README default {default:?} for {var}")
        };
        let line = help
            .lines()
            .find(|l| l.split_whitespace().next() == Some(var.as_str()))
            .unwrap_or_else(|| panic!("--help does not list {var}:\n{help}"));
        assert!(line.contains(flag.as_str()), "{var}: {line}");
        assert!(
            line.trim_end().ends_with(&format!("default: {expected}")),
            "{var}: README default {default:?}, --help says {line:?}"
        );
    }
    let (status, _, _) = run_to_exit(&["-h"], &[]);
    assert!(status.success());

    for arg in ["--version", "-V"] {
        let (status, out, _) = run_to_exit(&[arg], &[]);
        assert_eq!(status.code(), Some(0));
        assert_eq!(
            out.trim(),
            format!("vouch-mcp {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Against a local issuer: up, down then up, audience settings
// ---------------------------------------------------------------------------------------------

fn local_issuer(port: u16) -> DevIssuer {
    DevIssuer::from_secret(format!("http://127.0.0.1:{port}"), "local-1", [5u8; 32]).unwrap()
}

fn local_token(iss: &DevIssuer, aud: &str, sub: &str, hw: bool) -> String {
    iss.mint(&iss.claims(aud, sub, &format!("{sub}@example.com"), hw, now(), 600))
}

#[test]
fn local_issuer_down_at_startup_then_up() {
    let jwks_port = free_port();
    let iss = local_issuer(jwks_port);
    let jwks_url = format!("{}/jwks", iss.issuer());
    let p = start(
        &[],
        &[
            ("VOUCH_ISSUER", iss.issuer()),
            ("VOUCH_JWKS_URL", &jwks_url),
        ],
    );
    let port = p.port;
    let token = local_token(&iss, &format!("http://localhost:{port}/mcp"), "carol", true);

    // Issuer down: the server runs, and a request gets 503 + Retry-After.
    let r = call_2026(port, &token, "whoami");
    assert_eq!(r.status, 503, "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    p.wait_stderr("the fetch failure warning", Duration::from_secs(5), |s| {
        s.contains("level=warn") && s.contains(&jwks_url)
    });

    // The issuer comes up: within the backoff (1 s, 2 s, 4 s, ...) the same token works.
    let listener = TcpListener::bind(("127.0.0.1", jwks_port))
        .expect("the JWKS port was taken meanwhile (rare race)");
    let jwks = JwksServer::start(listener, iss.jwks());
    let r = whoami_when_ready(port, &token, Duration::from_secs(15));
    assert_eq!(
        structured(&r),
        json!({"email":"carol@example.com","sub":"carol","hardware_verified":true})
    );
    assert!(jwks.hits.load(Ordering::SeqCst) >= 1);
    // The log is written by its own thread, a moment after the fact.
    p.wait_stderr("the fetch success line", Duration::from_secs(5), |s| {
        s.contains("jwks fetched")
    });

    // A token signed by another key is refused.
    let stranger = DevIssuer::from_secret(iss.issuer(), "local-1", [6u8; 32]).unwrap();
    let forged = local_token(
        &stranger,
        &format!("http://localhost:{port}/mcp"),
        "carol",
        true,
    );
    let r = call_2026(port, &forged, "whoami");
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn local_issuer_audience_settings() {
    let listener = bind_fresh();
    let jwks_port = listener.local_addr().unwrap().port();
    let iss = local_issuer(jwks_port);
    let _jwks = JwksServer::start(listener, iss.jwks());
    let jwks_url = format!("{}/jwks", iss.issuer());
    let base = [
        ("VOUCH_ISSUER", iss.issuer()),
        ("VOUCH_JWKS_URL", &jwks_url),
    ];

    // Default audience = the resource URL.
    let p = start(&[], &base);
    let resource = format!("http://localhost:{}/mcp", p.port);
    let r = whoami_when_ready(
        p.port,
        &local_token(&iss, &resource, "dave", false),
        Duration::from_secs(10),
    );
    assert_eq!(structured(&r)["sub"], "dave");
    let r = call_2026(
        p.port,
        &local_token(&iss, "https://elsewhere.example", "dave", false),
        "whoami",
    );
    assert_eq!(r.status, 401);
    assert!(!p.stderr().contains("audience check DISABLED"));
    drop(p);

    // VOUCH_AUDIENCE other than the resource URL: the default-aud token fails.
    let mut env = base.to_vec();
    env.push(("VOUCH_AUDIENCE", "https://api.example/mcp"));
    let p = start(&[], &env);
    let resource = format!("http://localhost:{}/mcp", p.port);
    let r = whoami_when_ready(
        p.port,
        &local_token(&iss, &resource, "dave", false),
        Duration::from_secs(10),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.contains(
            r#"error="invalid_token", error_description="token not issued for this resource""#
        ),
        "{www}"
    );
    let r = call_2026(
        p.port,
        &local_token(&iss, "https://api.example/mcp", "dave", false),
        "whoami",
    );
    assert_eq!(structured(&r)["sub"], "dave");
    drop(p);

    // VOUCH_SKIP_AUDIENCE=true: any audience is accepted, with a warning on stderr.
    let mut env = base.to_vec();
    env.push(("VOUCH_SKIP_AUDIENCE", "true"));
    let p = start(&[], &env);
    let r = whoami_when_ready(
        p.port,
        &local_token(&iss, "https://unrelated.example/api", "erin", true),
        Duration::from_secs(10),
    );
    assert_eq!(
        structured(&r),
        json!({"email":"erin@example.com","sub":"erin","hardware_verified":true})
    );
    let err = p.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains("level=warn") && l.contains("audience check DISABLED")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Logs: one request line per request; tokens never logged
// ---------------------------------------------------------------------------------------------

#[test]
fn request_logs_have_one_line_per_request_and_never_a_token() {
    let p = start(&["--dev"], &[]);
    let port = p.port;
    let b = read_banner(&p);
    assert_eq!(
        whoami_when_ready(port, &b.plain, Duration::from_secs(10)).status,
        200
    );
    // The readiness call's own line (written before its response) must be in before counting.
    p.wait_stderr("the readiness request line", Duration::from_secs(5), |s| {
        request_lines(s)
            .iter()
            .any(|l| l.contains("status=200") && l.contains("sub=dev-user"))
    });
    let before = request_lines(&p.stderr()).len();

    // Four requests: mint, an authorized call, a token in the query string, a bad signature.
    let token = dev_mint(
        port,
        &json!({"sub":"log-user-7","email":"log7@example.com","hardware_verified":true}),
    );
    let sig = token.rsplit('.').next().unwrap().to_owned();
    assert!(sig.len() > 40);
    let r = call_2026(port, &token, "whoami");
    assert_eq!(structured(&r)["sub"], "log-user-7");
    let r = request(port, "GET", &format!("/mcp?access_token={token}"), &[], b"");
    assert_eq!(r.status, 401);
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'Q' } else { 'A' });
    let r = call_2026(port, &tampered, "whoami");
    assert_eq!(r.status, 401, "{}", r.text());

    p.wait_stderr("four new request lines", Duration::from_secs(5), |s| {
        request_lines(s).len() >= before + 4
    });
    thread::sleep(Duration::from_millis(200));
    let err = p.stderr();
    let lines = request_lines(&err);
    assert_eq!(lines.len(), before + 4, "{err}");
    let new = &lines[before..];
    for l in new {
        for key in [" method=", " path=", " status=", " latency_us="] {
            assert!(l.contains(key), "{key} missing: {l}");
        }
        assert!(l.contains("level=info"), "{l}");
    }
    assert!(
        new[0].contains("method=POST path=/dev/token status=200"),
        "{}",
        new[0]
    );
    assert!(
        new[1].contains("method=POST path=/mcp status=200")
            && new[1].contains("rpc=tools/call")
            && new[1].contains("tool=whoami")
            && new[1].contains("sub=log-user-7"),
        "{}",
        new[1]
    );
    assert!(
        new[2].contains("method=GET path=/mcp status=401"),
        "{}",
        new[2]
    );
    assert!(!new[2].contains("sub="), "{}", new[2]);
    assert!(
        new[3].contains("method=POST path=/mcp status=401"),
        "{}",
        new[3]
    );

    // Neither the never-printed token nor its signature appears anywhere.
    let out = p.stdout();
    let tampered_sig = tampered.rsplit('.').next().unwrap();
    for secret in [token.as_str(), sig.as_str(), tampered_sig] {
        assert!(!err.contains(secret), "stderr holds a token part: {err}");
        assert!(!out.contains(secret), "stdout holds a token part");
    }
    // The banner's own tokens appear in the banner only: never in stderr, and stdout holds
    // nothing but the banner.
    for banner_tok in [&b.plain, &b.hardware] {
        let sig = banner_tok.rsplit('.').next().unwrap();
        assert!(!err.contains(sig), "stderr holds a banner token");
    }
    let rest = out.replacen(&b.text, "", 1);
    assert!(
        !rest.contains(&b.plain) && !rest.contains(&b.hardware),
        "{rest}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Graceful shutdown on SIGTERM
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_exits_zero() {
    let mut p = start(&["--dev"], &[("MCP_SHUTDOWN_GRACE_SECS", "10")]);
    read_banner(&p);
    let t = Instant::now();
    p.sigterm();
    let status = p
        .wait_exit(Duration::from_secs(12))
        .expect("exits within the 10 s grace period");
    assert_eq!(status.code(), Some(0), "{}", p.stderr());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let err = p.stderr();
    assert!(
        err.contains("shutting down") && err.contains("stopped"),
        "{err}"
    );
}

#[test]
fn sigterm_with_an_open_sse_stream_exits_promptly() {
    let mut p = start(&["--dev"], &[("MCP_SHUTDOWN_GRACE_SECS", "10")]);
    let port = p.port;
    let b = read_banner(&p);
    assert_eq!(
        whoami_when_ready(port, &b.plain, Duration::from_secs(10)).status,
        200
    );
    let sid = initialize(port, &b.plain);
    let auth = format!("Bearer {}", b.plain);
    let (status, headers, mut stream) = open_stream(
        port,
        "GET",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
    );
    assert_eq!(status, 200, "{headers:?}");
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")));

    let t = Instant::now();
    p.sigterm();
    let status = p
        .wait_exit(Duration::from_secs(12))
        .expect("exits within the grace period");
    let took = t.elapsed();
    assert_eq!(status.code(), Some(0), "{}", p.stderr());
    // Streams are ended at shutdown rather than waited on for the whole 10 s grace.
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} with an SSE stream open:\n{}",
        p.stderr()
    );
    // The client sees its stream end.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = stream.read_to_end(&mut rest);
    assert!(
        ended.is_ok()
            || ended
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "stream did not end: {ended:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Host / Origin (DNS rebinding)
// ---------------------------------------------------------------------------------------------

#[test]
fn host_and_origin_checks() {
    let p = start(&["--dev"], &[]);
    let r = request(p.port, "POST", "/mcp", &[("Host", "evil.example")], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("MCP_ALLOWED_HOSTS"), "{}", r.text());
    let r = request(
        p.port,
        "POST",
        "/mcp",
        &[("Origin", "https://attacker.example")],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("MCP_ALLOWED_ORIGINS"), "{}", r.text());
    // Loopback Host passes the check (then lacks a token).
    let r = request(p.port, "POST", "/mcp", &[("Host", "localhost")], b"");
    assert_eq!(r.status, 401);
    drop(p);

    let p = start(&["--dev"], &[("MCP_ALLOWED_HOSTS", "evil.example")]);
    let host = format!("evil.example:{}", p.port);
    for h in ["evil.example", host.as_str()] {
        let r = request(p.port, "POST", "/mcp", &[("Host", h)], b"");
        assert_eq!(r.status, 401, "Host {h}: {}", r.text());
        assert!(r.header("www-authenticate").is_some());
    }
    let r = request(p.port, "POST", "/mcp", &[("Host", "other.example")], b"");
    assert_eq!(r.status, 403);
}

// ---------------------------------------------------------------------------------------------
// 10. Operations: --check, a prefixed mount, the metrics listener, JSON logs
// ---------------------------------------------------------------------------------------------

#[test]
fn check_fetches_the_jwks_once_and_exits_0_or_1() {
    let listener = bind_fresh();
    let jwks_port = listener.local_addr().unwrap().port();
    let iss = local_issuer(jwks_port);
    let jwks_url = format!("{}/jwks", iss.issuer());
    let jwks = JwksServer::start(listener, iss.jwks());
    let env = [
        ("VOUCH_ISSUER", iss.issuer()),
        ("VOUCH_JWKS_URL", jwks_url.as_str()),
        ("MCP_RESOURCE_URL", "https://mcp.example/tools/mcp"),
    ];
    let (status, out, err) = run_to_exit(&["--check"], &env);
    assert_eq!(status.code(), Some(0), "{out}{err}");
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        1,
        "one fetch, no background refresh"
    );
    for want in [
        "settings: ok",
        "endpoint paths: /tools/mcp /tools/mcp/",
        "metadata: https://mcp.example/.well-known/oauth-protected-resource/tools/mcp",
        &format!("jwks: {jwks_url}"),
        &format!("jwks keys: 1 usable ({})", iss.kid()),
        "check: ok",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    drop(jwks);
    // The issuer down: exit 1 naming the failure.
    let (status, out, _) = run_to_exit(&["--check"], &env);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("jwks fetch: FAILED"), "{out}");
    // A bad setting: exit 1 too (a preflight says yes or no).
    let (status, _, err) = run_to_exit(&["--check"], &[("MCP_TRUSTED_PROXIES", "not-an-ip")]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("MCP_TRUSTED_PROXIES"), "{err}");
}

#[test]
fn metrics_listener_json_logs_and_a_listen_path() {
    let p = start(
        &["--dev"],
        &[
            ("MCP_METRICS_ADDR", "127.0.0.1:0"),
            ("VOUCH_MCP_LOG_FORMAT", "json"),
            ("MCP_LISTEN_PATH", "/inner/"),
        ],
    );
    let port = p.port;
    let b = read_banner(&p);
    let listening: Value = p
        .stderr()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("listening:"))
        })
        .expect("a JSON listening line");
    let msg = listening["msg"].as_str().unwrap();
    assert!(msg.contains("paths=/inner,/inner/"), "{msg}");
    let metrics: u16 = msg
        .split("metrics=127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the metrics port");
    // The endpoint answers at the listen path; the public one is not served here.
    let auth = format!("Bearer {}", b.hardware);
    let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    assert_eq!(
        request(port, "POST", "/inner", &headers, body.as_bytes()).status,
        200
    );
    assert_eq!(
        request(port, "POST", "/mcp", &headers, body.as_bytes()).status,
        404
    );
    let m = request(metrics, "GET", "/metrics", &[], b"");
    assert_eq!(m.status, 200);
    assert!(
        m.text().contains(
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="initialize"} 1"#
        ),
        "{}",
        m.text()
    );
    assert_eq!(request(metrics, "GET", "/other", &[], b"").status, 404);
    assert_eq!(
        request(port, "GET", "/metrics", &[], b"").status,
        404,
        "never on the public listener"
    );
    p.wait_stderr("JSON request lines", Duration::from_secs(5), |s| {
        s.contains("\"path\":\"/inner\"")
    });
    for line in p.stderr().lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["ts"].is_string() && v["level"].is_string() && v["msg"].is_string(),
            "{line}"
        );
        assert!(!line.contains(&b.hardware), "a token in the log");
    }
}
