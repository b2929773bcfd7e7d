//! HTTP/2 (the `http2` feature): prior-knowledge h2c on plain TCP and ALPN `h2` over TLS, both protocol eras, every shell check with the same answer as over HTTP/1.1, and many SSE streams on one connection.
#![cfg(feature = "http2")]

mod support;
mod tls_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Version;
use http_body_util::BodyExt;
use serde_json::json;
use support::{build, Options};
use tls_support::*;
use tokio::net::{TcpListener, TcpStream};
use vouch_mcp::{CancelToken, ListChanged, Notifier, TlsConfig};

/// A running server of the guide's tools, on h2c or TLS.
struct Running {
    addr: SocketAddr,
    url: String,
    resource: String,
    issuer: support::DevIssuer,
    notifier: Notifier,
    stop: CancelToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Running {
    fn token(&self, sub: &str) -> String {
        self.issuer.mint(&self.issuer.claims(
            &self.resource,
            sub,
            "x@example.com",
            true,
            support::now(),
            3600,
        ))
    }
}

async fn run(tls: Option<TlsConfig>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let resource = format!("{scheme}://localhost:{}/mcp", addr.port());
    let notifier = Arc::new(Mutex::new(None));
    let n2 = notifier.clone();
    let (server, issuer) = build(
        Options {
            configure: Some(Box::new(move |b| {
                *n2.lock().unwrap() = Some(b.notifier());
                b.list_changed(ListChanged {
                    tools: true,
                    prompts: false,
                    resources: false,
                })
                .max_body_bytes(1024)
            })),
            ..Options::default()
        },
        &resource,
    );
    let stop = CancelToken::new();
    let s2 = stop.clone();
    tokio::spawn(async move {
        let shutdown = async move { s2.cancelled().await };
        match tls {
            Some(tls) => server.serve_tls(listener, tls, shutdown).await,
            None => server.serve(listener, shutdown).await,
        }
    });
    let notifier = notifier.lock().unwrap().take().unwrap();
    Running {
        addr,
        url: resource.clone(),
        resource,
        issuer,
        notifier,
        stop,
    }
}

async fn h2c(s: &Running) -> Client {
    Client::http2(TcpStream::connect(s.addr).await.unwrap()).await
}

/// Both eras on one HTTP/2 connection, and a session's SSE stream that receives a notification.
async fn both_eras(s: &Running, c: &mut Client) {
    let v2 = Version::HTTP_2;
    let token = s.token("alice");
    let a = c.send(whoami_modern(v2, &s.url, &token)).await.unwrap();
    assert_eq!((a.status.as_u16(), a.version), (200, v2));
    assert_eq!(a.json()["result"]["structuredContent"]["sub"], "alice");

    let a = c
        .send(legacy_post(v2, &s.url, &token, None, &initialize_body()))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["result"]["protocolVersion"], "2025-11-25");
    let sid = a.header("mcp-session-id").unwrap().to_owned();
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let a = c
        .send(legacy_post(v2, &s.url, &token, Some(&sid), &note))
        .await
        .unwrap();
    assert_eq!(a.status, 202);
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}});
    let a = c
        .send(legacy_post(v2, &s.url, &token, Some(&sid), &call))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["result"]["structuredContent"]["sub"], "alice");

    let mut stream = open_stream(c, s, &token, &sid).await;
    s.notifier.tools_changed();
    read_until(&mut stream, "notifications/tools/list_changed").await;
    drop(stream);

    let del = request(
        v2,
        "DELETE",
        &s.url,
        &[
            ("authorization", &format!("Bearer {token}")),
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        b"",
    );
    assert_eq!(c.send(del).await.unwrap().status, 204);
    let a = c
        .send(legacy_post(v2, &s.url, &token, Some(&sid), &call))
        .await
        .unwrap();
    assert_eq!(a.status, 404, "the deleted session is gone");
}

async fn open_stream(c: &mut Client, s: &Running, token: &str, sid: &str) -> hyper::body::Incoming {
    let get = request(
        Version::HTTP_2,
        "GET",
        &s.url,
        &[
            ("authorization", &format!("Bearer {token}")),
            ("accept", "text/event-stream"),
            ("mcp-session-id", sid),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        b"",
    );
    let resp = c.start(get).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    resp.into_body()
}

async fn read_until(stream: &mut hyper::body::Incoming, want: &str) {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(want) {
        let frame = tokio::time::timeout_at(deadline.into(), stream.frame())
            .await
            .unwrap_or_else(|_| panic!("no {want} within 10 s; saw {seen:?}"))
            .expect("the stream stays open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn h2c_prior_knowledge_serves_both_eras_and_streams() {
    let s = run(None).await;
    let mut c = h2c(&s).await;
    both_eras(&s, &mut c).await;
    // The same port still serves HTTP/1.1.
    let mut h1 = Client::http1(TcpStream::connect(s.addr).await.unwrap()).await;
    let a = h1
        .send(whoami_modern(Version::HTTP_11, &s.url, &s.token("bob")))
        .await
        .unwrap();
    assert_eq!((a.status.as_u16(), a.version), (200, Version::HTTP_11));
}

#[tokio::test]
async fn alpn_h2_over_tls_serves_both_eras_and_http1_clients_still_get_http1() {
    let ca = Ca::new("test CA");
    let pair = ca.leaf();
    let tls = TlsConfig::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap();
    let s = run(Some(tls)).await;
    let (stream, seen) = tls_connect(s.addr, &ca.der(), &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    let mut c = Client::http2(stream).await;
    both_eras(&s, &mut c).await;

    let (stream, seen) = tls_connect(s.addr, &ca.der(), &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let mut h1 = Client::http1(stream).await;
    let a = h1
        .send(whoami_modern(Version::HTTP_11, &s.url, &s.token("bob")))
        .await
        .unwrap();
    assert_eq!((a.status.as_u16(), a.version), (200, Version::HTTP_11));
}

/// Each check of the shell, sent over HTTP/1.1 and over h2c: the same status, the same
/// challenge, the same body.
#[tokio::test]
async fn every_check_answers_the_same_over_http1_and_h2c() {
    let s = run(None).await;
    let token = s.token("alice");
    let bearer = format!("Bearer {token}");
    let port = s.addr.port();
    let ok_body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":"whoami","arguments":{},"_meta": modern_meta()}})
    .to_string();
    let modern_headers: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whoami"),
    ];
    let with = |extra: &[(&'static str, &str)]| {
        let mut h: Vec<(String, String)> = modern_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in extra {
            h.retain(|(n, _)| n != k);
            h.push((k.to_string(), v.to_string()));
        }
        h
    };
    let local = format!("http://localhost:{port}/mcp");
    let foreign = format!("http://evil.example:{port}/mcp");
    let big = "x".repeat(2000);
    let big_body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"pad\":\"{big}\"}}}}"
    );
    struct Case {
        name: &'static str,
        url: String,
        headers: Vec<(String, String)>,
        body: String,
        /// Send the body in chunks with no Content-Length.
        chunked: bool,
        status: u16,
    }
    let cases = vec![
        Case {
            name: "allowed",
            url: local.clone(),
            headers: with(&[("authorization", &bearer)]),
            body: ok_body.clone(),
            chunked: false,
            status: 200,
        },
        Case {
            name: "foreign host",
            url: foreign.clone(),
            headers: with(&[("authorization", &bearer)]),
            body: ok_body.clone(),
            chunked: false,
            status: 403,
        },
        Case {
            name: "foreign origin",
            url: local.clone(),
            headers: with(&[
                ("authorization", &bearer),
                ("origin", "http://evil.example"),
            ]),
            body: ok_body.clone(),
            chunked: false,
            status: 403,
        },
        Case {
            name: "loopback origin",
            url: local.clone(),
            headers: with(&[("authorization", &bearer), ("origin", "http://127.0.0.1:9")]),
            body: ok_body.clone(),
            chunked: false,
            status: 200,
        },
        Case {
            name: "no token",
            url: local.clone(),
            headers: with(&[]),
            body: ok_body.clone(),
            chunked: false,
            status: 401,
        },
        Case {
            name: "bad token",
            url: local.clone(),
            headers: with(&[("authorization", "Bearer not-a-jwt")]),
            body: ok_body.clone(),
            chunked: false,
            status: 401,
        },
        Case {
            name: "declared oversize",
            url: local.clone(),
            headers: with(&[("authorization", &bearer)]),
            body: big_body.clone(),
            chunked: false,
            status: 413,
        },
        Case {
            name: "streamed oversize",
            url: local.clone(),
            headers: with(&[("authorization", &bearer)]),
            body: big_body.clone(),
            chunked: true,
            status: 413,
        },
        Case {
            name: "content type",
            url: local.clone(),
            headers: with(&[("authorization", &bearer), ("content-type", "text/plain")]),
            body: ok_body.clone(),
            chunked: false,
            status: 415,
        },
        Case {
            name: "accept",
            url: local.clone(),
            headers: with(&[("authorization", &bearer), ("accept", "text/html")]),
            body: ok_body.clone(),
            chunked: false,
            status: 406,
        },
        Case {
            name: "header mismatch",
            url: local.clone(),
            headers: with(&[("authorization", &bearer), ("mcp-name", "sensitive-action")]),
            body: ok_body.clone(),
            chunked: false,
            status: 400,
        },
        Case {
            name: "bad json",
            url: local.clone(),
            headers: with(&[("authorization", &bearer)]),
            body: "{".into(),
            chunked: false,
            status: 400,
        },
    ];
    for case in cases {
        let mut answers = Vec::new();
        for version in [Version::HTTP_11, Version::HTTP_2] {
            let io = TcpStream::connect(s.addr).await.unwrap();
            let mut c = if version == Version::HTTP_2 {
                Client::http2(io).await
            } else {
                Client::http1(io).await
            };
            let headers: Vec<(&str, &str)> = case
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let a = if case.chunked {
                let req = request(version, "POST", &case.url, &headers, b"");
                let (parts, _) = req.into_parts();
                let body = Chunked(
                    case.body
                        .as_bytes()
                        .chunks(100)
                        .map(Bytes::copy_from_slice)
                        .collect(),
                );
                send_streamed(s.addr, version, http::Request::from_parts(parts, body)).await
            } else {
                c.send(request(
                    version,
                    "POST",
                    &case.url,
                    &headers,
                    case.body.as_bytes(),
                ))
                .await
                .unwrap()
            };
            assert_eq!(
                a.status,
                case.status,
                "{} over {version:?}: {}",
                case.name,
                String::from_utf8_lossy(&a.body)
            );
            assert_eq!(a.version, version);
            let challenge = a.header("www-authenticate").map(str::to_owned);
            let cors = a.header("access-control-allow-origin").map(str::to_owned);
            let body: serde_json::Value =
                serde_json::from_slice(&a.body).unwrap_or(serde_json::Value::Null);
            answers.push((challenge, cors, body));
        }
        assert_eq!(
            answers[0], answers[1],
            "{}: HTTP/1.1 and h2c differ",
            case.name
        );
    }
}

/// A body of several chunks with no declared length (chunked on HTTP/1.1, no
/// `content-length` on HTTP/2).
struct Chunked(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// Sends a request whose body streams, on a fresh connection of `version`.
async fn send_streamed<B>(addr: SocketAddr, version: Version, req: http::Request<B>) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let resp = if version == Version::HTTP_2 {
        let (mut s, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        s.send_request(req).await.unwrap()
    } else {
        let (mut s, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        s.send_request(req).await.unwrap()
    };
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Answer {
        status: parts.status,
        headers: parts.headers,
        version: parts.version,
        body,
    }
}

/// Browsers allow six HTTP/1.1 connections per origin; over HTTP/2 one connection carries
/// every stream. Twelve sessions, each holding its GET stream open on the same connection,
/// all receive the same notification.
#[tokio::test]
async fn twelve_sse_streams_share_one_h2c_connection() {
    let s = run(None).await;
    let mut c = h2c(&s).await;
    let token = s.token("alice");
    let mut streams = Vec::new();
    for _ in 0..12 {
        let a = c
            .send(legacy_post(
                Version::HTTP_2,
                &s.url,
                &token,
                None,
                &initialize_body(),
            ))
            .await
            .unwrap();
        let sid = a.header("mcp-session-id").unwrap().to_owned();
        streams.push(open_stream(&mut c, &s, &token, &sid).await);
    }
    // The connection still answers calls with every stream open.
    let a = c
        .send(whoami_modern(Version::HTTP_2, &s.url, &token))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    s.notifier.tools_changed();
    for stream in &mut streams {
        read_until(stream, "notifications/tools/list_changed").await;
    }
}

#[tokio::test]
async fn an_h2c_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (server, _) = build(
        Options {
            configure: Some(Box::new(|b| {
                b.header_read_timeout(Duration::from_millis(200))
            })),
            ..Options::default()
        },
        &format!("http://localhost:{}/mcp", addr.port()),
    );
    let stop = CancelToken::new();
    let s2 = stop.clone();
    tokio::spawn(server.serve(listener, async move { s2.cancelled().await }));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("closed within 5 s");
    assert!(matches!(r, Ok(0) | Err(_)));
    stop.cancel();
}
