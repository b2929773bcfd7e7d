//! Operations through the public interfaces: /readyz across a JWKS outage, request ids, client addresses behind trusted proxies, the audit trail, a prefixed mount, step-up challenges (RFC 9470) and the metrics text.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vouch_mcp::audit::AuditSink;
use vouch_mcp::auth::{HttpFetcher, JwksCache, RefreshPolicy};
use vouch_mcp::{CallToolResult, CancelToken, RequestContext, ServerBuilder, StepUp, Tool};

/// Collects audit lines, parsed.
#[derive(Default)]
struct Lines(Mutex<Vec<Value>>);

impl AuditSink for Lines {
    fn write(&self, line: String) {
        let v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        self.0.lock().unwrap().push(v);
    }
}

impl Lines {
    fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
    fn with_id(&self, id: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|l| l["request_id"] == id)
            .collect()
    }
}

/// Polls `cond` until it holds, at most `limit`.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A loopback JWKS endpoint that can go down (503) and come back.
struct Issuer {
    url: String,
    up: Arc<AtomicBool>,
    stop: CancelToken,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn issuer(doc: String, up: bool) -> Issuer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let flag = Arc::new(AtomicBool::new(up));
    let stop = CancelToken::new();
    let (f, s) = (flag.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = tokio::select! {
                a = listener.accept() => a.unwrap(),
                () = s.cancelled() => return,
            };
            let (doc, up) = (doc.clone(), f.load(Ordering::SeqCst));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = if up {
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: max-age=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{doc}", doc.len())
                } else {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Issuer {
        url,
        up: flag,
        stop,
    }
}

#[tokio::test]
async fn readyz_follows_the_key_set_before_during_and_after_a_jwks_outage() {
    let key = test_issuer();
    let doc = json!({"keys": [key.public_jwk()]}).to_string();
    let idp = issuer(doc, false).await;
    let policy = RefreshPolicy {
        default_ttl: Duration::from_millis(100),
        min_ttl: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        ..RefreshPolicy::default()
    };
    let cache = JwksCache::new(
        HttpFetcher::new(&idp.url, Duration::from_secs(2), 1 << 20).unwrap(),
        policy,
    );
    cache.spawn_refresher();
    let keys: Arc<dyn vouch_mcp::auth::KeyProvider> = Arc::new(cache.clone());
    let server = start(Options {
        keys: Some(keys),
        configure: Some(Box::new(|b: ServerBuilder| b.metrics())),
        ..Options::default()
    })
    .await;

    // Before: the issuer has never answered, so no token can be judged.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = raw(
        server.addr,
        "GET",
        "/readyz",
        &[("Host", "anything.example")],
        b"",
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": "not_ready", "missing": ["keys"]})
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let h = raw(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(h.status, 200, "liveness does not depend on the keys");

    // The issuer comes up: ready once the refresher fetched.
    idp.up.store(true, Ordering::SeqCst);
    let mut status = 0;
    for _ in 0..100 {
        status = raw(server.addr, "GET", "/readyz", &[], b"").await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(status, 200);
    let fetched_ok = cache.fetch_count();

    // During an outage the last good set still judges tokens: still ready.
    idp.up.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(3), || cache.fetch_count()
            >= fetched_ok + 2)
        .await,
        "the refresher kept trying"
    );
    let r = raw(server.addr, "GET", "/readyz", &[], b"").await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ready"})));
    let call = modern(
        &server,
        &server.token("alice", false),
        json!(1),
        "tools/call",
        json!({"name": "whoami"}),
    )
    .await;
    assert_eq!(call.status, 200, "{}", call.text());

    // After: the issuer is back; still ready, and the metrics saw both kinds of fetch.
    idp.up.store(true, Ordering::SeqCst);
    let m = server_metrics(&server).await;
    assert!(
        m.contains("vouch_mcp_jwks_fetches_total{outcome=\"ok\"} "),
        "{m}"
    );
    let failed: u64 = scalar(&m, "vouch_mcp_jwks_fetches_total{outcome=\"error\"}");
    assert!(failed >= 2, "{m}");
    assert_eq!(scalar(&m, "vouch_mcp_jwks_keys"), 1);
    assert_eq!(scalar(&m, "vouch_mcp_ready"), 1);
    assert_eq!(
        raw(server.addr, "GET", "/readyz", &[], b"").await.status,
        200
    );
}

/// The metrics text of a [`TestServer`] started with `.metrics()`, fetched over its own
/// metrics listener.
async fn server_metrics(server: &TestServer) -> String {
    let r = raw(
        server.metrics_addr.expect("metrics listener"),
        "GET",
        "/metrics",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.text()
}

fn scalar(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse::<f64>()
        .unwrap() as u64
}

#[tokio::test]
async fn request_ids_are_generated_or_taken_from_a_trusted_proxy_and_echoed() {
    let audit = Arc::new(Lines::default());
    let sink = audit.clone();
    let server = start(Options {
        configure: Some(Box::new(move |b: ServerBuilder| {
            b.trusted_proxies(vec!["127.0.0.1".into()]).audit(sink)
        })),
        ..Options::default()
    })
    .await;
    let token = server.token("alice", true);
    let auth = format!("Bearer {token}");
    let hdrs = |extra: Vec<(&'static str, &'static str)>| {
        let mut h = vec![("Authorization", auth.clone())];
        h.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
        h
    };
    let get = |h: Vec<(&'static str, String)>| {
        let addr = server.addr;
        async move {
            let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            raw(addr, "GET", "/healthz", &refs, b"").await
        }
    };
    let a = get(hdrs(vec![])).await;
    let b = get(hdrs(vec![])).await;
    let (ia, ib) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert_ne!(ia, ib);
    assert!(ia.len() > 17 && ia.as_bytes()[16] == b'-', "{ia}");
    // From a trusted peer (loopback here) a plain id is kept; a bad one is replaced.
    let kept = get(hdrs(vec![("X-Request-Id", "edge-7f3a")])).await;
    assert_eq!(kept.header("x-request-id"), Some("edge-7f3a"));
    let replaced = get(hdrs(vec![("X-Request-Id", "two words")])).await;
    assert_ne!(replaced.header("x-request-id"), Some("two words"));

    // The id reaches the audit trail of a call.
    let r = raw(
        server.addr,
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/list"),
            ("X-Request-Id", "edge-list-1"),
            ("X-Forwarded-For", "203.0.113.50"),
        ],
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta": modern_meta()}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("edge-list-1"));
    assert!(
        eventually(Duration::from_secs(2), || !audit
            .with_id("edge-list-1")
            .is_empty())
        .await
    );
    let line = &audit.with_id("edge-list-1")[0];
    assert_eq!(line["event"], "auth");
    assert_eq!(line["outcome"], "allowed");
    assert_eq!(line["client"], "203.0.113.50");
    assert_eq!(line["sub"], "alice");
}

/// Starts the guide's server on a listener bound to `bind`, trusting `proxies`, auditing to `audit`.
async fn guide_on(bind: &str, proxies: Vec<String>, audit: Arc<Lines>) -> TestServer {
    start(Options {
        bind: Some(bind.to_owned()),
        configure: Some(Box::new(move |b: ServerBuilder| {
            b.trusted_proxies(proxies).audit(audit)
        })),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn forwarded_for_is_honoured_only_from_a_trusted_proxy() {
    async fn client_seen(server: &TestServer, audit: &Lines, xff: &str, id: &str) -> Value {
        let auth = format!("Bearer {}", server.token("bob", false));
        raw(
            server.addr,
            "GET",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("X-Forwarded-For", xff),
                ("X-Request-Id", id),
            ],
            b"",
        )
        .await;
        let got = eventually(Duration::from_secs(2), || {
            audit.all().iter().any(|l| l["event"] == "auth")
        })
        .await;
        assert!(got);
        audit
            .all()
            .into_iter()
            .rev()
            .find(|l| l["event"] == "auth")
            .unwrap()
            .get("client")
            .cloned()
            .unwrap_or(Value::Null)
    }
    // Trusted: the loopback peer is a proxy, so the last untrusted hop is the client.
    let audit = Arc::new(Lines::default());
    let trusted = guide_on("127.0.0.1:0", vec!["127.0.0.0/8".into()], audit.clone()).await;
    assert_eq!(
        client_seen(&trusted, &audit, "198.51.100.7, 127.0.0.9", "x1").await,
        "198.51.100.7"
    );
    // Not trusted: the header is ignored and the peer is the client.
    let audit2 = Arc::new(Lines::default());
    let untrusted = guide_on("127.0.0.1:0", vec!["10.0.0.0/8".into()], audit2.clone()).await;
    assert_eq!(
        client_seen(&untrusted, &audit2, "198.51.100.7", "x2").await,
        "127.0.0.1"
    );
    // A forged id from an untrusted peer is not kept either.
    let r = raw(
        untrusted.addr,
        "GET",
        "/healthz",
        &[("X-Request-Id", "forged")],
        b"",
    )
    .await;
    assert_ne!(r.header("x-request-id"), Some("forged"));
}

#[tokio::test]
async fn audit_lines_for_allowed_denied_and_failed_calls_never_hold_a_token() {
    let audit = Arc::new(Lines::default());
    let sink = audit.clone();
    let server = start(Options {
        configure: Some(Box::new(move |b: ServerBuilder| {
            b.audit(sink)
                .tool(
                    Tool::new("admin", "needs a scope", |_c: RequestContext| async {
                        Ok(CallToolResult::text("ok"))
                    })
                    .required_scopes(["admin"]),
                )
                .tool(
                    Tool::new(
                        "echo",
                        "audits its arguments",
                        |_c: RequestContext, a: Value| async move {
                            Ok(CallToolResult::text(a.to_string()))
                        },
                    )
                    .audit_arguments(),
                )
                .tool(Tool::new(
                    "secret",
                    "keeps its arguments out of the audit",
                    |_c: RequestContext, _a: Value| async move { Ok(CallToolResult::text("done")) },
                ))
        })),
        ..Options::default()
    })
    .await;
    let plain = server.token("carol", false);
    let hw = server.token("carol", true);
    let call = |token: &str, name: &str, args: Value| {
        let token = token.to_owned();
        let name = name.to_owned();
        let server = &server;
        async move {
            modern(
                server,
                &token,
                json!(1),
                "tools/call",
                json!({"name": name, "arguments": args}),
            )
            .await
        }
    };
    assert_eq!(call(&hw, "whoami", json!({})).await.status, 200);
    let tool_error = call(&plain, "sensitive-action", json!({})).await;
    assert_eq!(tool_error.json()["result"]["isError"], true);
    assert_eq!(call(&hw, "admin", json!({})).await.status, 403);
    assert_eq!(
        call(&hw, "echo", json!({"note": "hello"})).await.status,
        200
    );
    assert_eq!(
        call(&hw, "secret", json!({"password": "hunter2"}))
            .await
            .status,
        200
    );
    let bad_args = call(&hw, "whoami", json!({"x": 1})).await;
    assert_eq!(bad_args.json()["result"]["isError"], true);
    let unknown = call(&hw, "nope", json!({})).await;
    assert_eq!(unknown.status, 200);
    // A forged token: denied at auth, and the token bytes never reach a line.
    // One character of the signature changed (still canonical base64url): it no longer verifies.
    let at = hw.rfind('.').unwrap() + 5;
    let swapped = if &hw[at..at + 1] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &hw[..at], &hw[at + 1..]);
    assert_eq!(call(&forged, "whoami", json!({})).await.status, 401);
    assert_eq!(
        raw(
            server.addr,
            "POST",
            "/mcp",
            &[("Content-Type", "application/json")],
            b"{}"
        )
        .await
        .status,
        401
    );

    assert!(
        eventually(Duration::from_secs(3), || audit
            .all()
            .iter()
            .filter(|l| l["event"] == "tool_call")
            .count()
            >= 7)
        .await
    );
    let lines = audit.all();
    let calls: Vec<&Value> = lines.iter().filter(|l| l["event"] == "tool_call").collect();
    let of = |tool: &str| {
        calls
            .iter()
            .filter(|l| l["tool"] == tool)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("whoami")[0]["outcome"], "ok");
    assert_eq!(of("whoami")[1]["outcome"], "tool_error", "schema failure");
    assert_eq!(of("sensitive-action")[0]["outcome"], "tool_error");
    let denied = of("admin")[0];
    assert_eq!(
        (&denied["outcome"], &denied["reason"]),
        (&json!("denied"), &json!("insufficient_scope"))
    );
    assert_eq!(of("echo")[0]["arguments"], json!({"note": "hello"}));
    assert!(of("secret")[0].get("arguments").is_none());
    let unknown_line = calls
        .iter()
        .find(|l| l.get("tool").is_none())
        .expect("the unknown tool's line");
    assert_eq!(
        (&unknown_line["outcome"], &unknown_line["code"]),
        (&json!("error"), &json!(-32602))
    );
    for l in &calls {
        assert_eq!(l["iss"], ISSUER);
        assert_eq!(l["sub"], "carol");
        assert!(l["duration_us"].as_u64().is_some(), "{l}");
        assert!(l["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(l["ts"].as_str().is_some_and(|s| s.ends_with('Z')));
    }
    let auth_denied = lines
        .iter()
        .find(|l| l["event"] == "auth" && l["outcome"] == "denied")
        .expect("the forged token's line");
    assert_eq!(auth_denied["reason"], "signature_invalid");
    assert!(
        auth_denied.get("sub").is_none(),
        "an unverified token names nobody"
    );
    assert!(
        !lines.iter().any(|l| l["reason"] == "no_credentials"),
        "no credentials never reach the verifier"
    );
    let all = serde_json::to_string(&lines).unwrap();
    for secret in [&hw, &plain, &forged] {
        let sig = secret.rsplit('.').next().unwrap();
        assert!(
            !all.contains(sig),
            "a token signature reached the audit log"
        );
        assert!(!all.contains(secret.split('.').nth(1).unwrap()));
    }
    assert!(!all.contains("hunter2"));
}

#[tokio::test]
async fn a_prefixed_resource_url_is_served_at_its_path_with_no_proxy_rewrite() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://localhost:{}/tools/mcp", addr.port());
    let (srv, issuer) = build(Options::default(), &resource);
    assert_eq!(srv.endpoint_paths(), ["/tools/mcp", "/tools/mcp/"]);
    let stop = CancelToken::new();
    let s2 = stop.clone();
    tokio::spawn(async move {
        srv.serve(listener, async move { s2.cancelled().await })
            .await
    });
    let token = issuer.mint(&issuer.claims(&resource, "dana", "d@example.com", true, now(), 600));
    let auth = format!("Bearer {token}");
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":modern_meta()}}).to_string();
    for path in ["/tools/mcp", "/tools/mcp/"] {
        let r = raw(
            addr,
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "whoami"),
            ],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: never a redirect: {}", r.text());
        assert_eq!(r.json()["result"]["structuredContent"]["sub"], "dana");
    }
    let old = raw(addr, "POST", "/mcp", &[("Authorization", &auth)], b"{}").await;
    assert_eq!(old.status, 404, "the endpoint moved with the URL");
    let challenge = raw(addr, "POST", "/tools/mcp", &[], b"{}").await;
    let prm = format!(
        "http://localhost:{}/.well-known/oauth-protected-resource/tools/mcp",
        addr.port()
    );
    assert_eq!(
        challenge.header("www-authenticate"),
        Some(format!(r#"Bearer resource_metadata="{prm}""#).as_str())
    );
    let doc = raw(
        addr,
        "GET",
        "/.well-known/oauth-protected-resource/tools/mcp",
        &[],
        b"",
    )
    .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json()["resource"], resource);
    stop.cancel();
}

#[tokio::test]
async fn a_failed_step_up_policy_is_an_rfc_9470_challenge_and_the_tool_stays_listed() {
    let server = start(Options {
        configure: Some(Box::new(|b: ServerBuilder| {
            b.tool(
                Tool::new("wire", "moves money", |_c: RequestContext| async {
                    Ok(CallToolResult::text("sent"))
                })
                .step_up(
                    StepUp::new()
                        .claim_contains("amr", "hwk")
                        .acr_one_of(["urn:example:gold", "urn:example:silver"])
                        .max_age(300),
                ),
            )
        })),
        ..Options::default()
    })
    .await;
    let mint = |extra: Value| {
        let mut c = server.claims("erin", true);
        for (k, v) in extra.as_object().unwrap() {
            c.insert(k.clone(), v.clone());
        }
        server.issuer.mint(&c)
    };
    let weak = mint(json!({"amr": ["pwd"], "acr": "urn:example:gold", "auth_time": now()}));
    let r = modern(
        &server,
        &weak,
        json!(1),
        "tools/call",
        json!({"name": "wire"}),
    )
    .await;
    assert_eq!(r.status, 401);
    let prm = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        server.url("").trim_end_matches('/')
    )
    .replace(
        &server.addr.to_string(),
        &format!("localhost:{}", server.addr.port()),
    );
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            r#"Bearer error="insufficient_user_authentication", error_description="the amr claim lacks a value this tool requires", acr_values="urn:example:gold urn:example:silver", max_age="300", resource_metadata="{prm}""#
        )
    );
    assert_eq!(
        r.body,
        br#"{"error":"insufficient_user_authentication","error_description":"the amr claim lacks a value this tool requires"}"#
    );
    let stale = mint(json!({"amr": ["hwk"], "acr": "urn:example:gold", "auth_time": now() - 301}));
    let r = modern(
        &server,
        &stale,
        json!(2),
        "tools/call",
        json!({"name": "wire"}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error_description="more recent authentication is required""#));
    let strong =
        mint(json!({"amr": ["pwd", "hwk"], "acr": "urn:example:silver", "auth_time": now() - 10}));
    let ok = modern(
        &server,
        &strong,
        json!(3),
        "tools/call",
        json!({"name": "wire"}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["result"]["content"][0]["text"], "sent");
    // The weak token still sees the tool, so its client knows to step up.
    let list = modern(&server, &weak, json!(4), "tools/list", json!({})).await;
    let listed = list.json();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"wire"), "{names:?}");
    // The initialize era gets the same challenge.
    let sid = initialize(&server, &weak, "2025-11-25").await;
    let r = legacy(
        &server,
        &weak,
        &sid,
        json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"wire"}}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with(r#"Bearer error="insufficient_user_authentication""#));
}

#[tokio::test]
async fn the_guide_keeps_its_tool_error_unless_challenges_are_asked_for() {
    let server = start(Options::default()).await;
    let plain = server.token("fay", false);
    let r = modern(
        &server,
        &plain,
        json!(1),
        "tools/call",
        json!({"name": "sensitive-action"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["isError"], true);
    assert!(r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("hardware_key_required"));

    let challenging = start(Options {
        guide_step_up: true,
        ..Options::default()
    })
    .await;
    let plain = challenging.token("fay", false);
    let r = modern(
        &challenging,
        &plain,
        json!(1),
        "tools/call",
        json!({"name": "sensitive-action"}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with(r#"Bearer error="insufficient_user_authentication", error_description="This action requires hardware_verified=true (log in with a hardware key)", resource_metadata=""#));
    let hw = challenging.token("fay", true);
    let r = modern(
        &challenging,
        &hw,
        json!(2),
        "tools/call",
        json!({"name": "sensitive-action"}),
    )
    .await;
    assert_eq!(r.json()["result"]["isError"], false);
}

#[tokio::test]
async fn handlers_see_the_trace_context_from_meta_before_the_header() {
    let server = start(Options {
        configure: Some(Box::new(|b: ServerBuilder| {
            b.tool(Tool::new(
                "trace",
                "reports its trace",
                |c: RequestContext| async move {
                    let t = c.trace().map(|t| {
                        (
                            t.trace_id().to_owned(),
                            t.parent_id().to_owned(),
                            t.sampled(),
                        )
                    });
                    Ok(CallToolResult::text(
                        json!({"trace": t, "id": c.request_id()}).to_string(),
                    ))
                },
            ))
        })),
        ..Options::default()
    })
    .await;
    let token = server.token("gus", true);
    let auth = format!("Bearer {token}");
    let send = |meta_parent: Option<&str>, header: Option<&str>| {
        let mut meta = modern_meta();
        if let Some(p) = meta_parent {
            meta["traceparent"] = json!(p);
        }
        let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"trace","_meta":meta}}).to_string();
        let mut h = vec![
            ("Authorization", auth.clone()),
            ("Content-Type", "application/json".to_owned()),
            ("Accept", "application/json".to_owned()),
            ("MCP-Protocol-Version", "2026-07-28".to_owned()),
            ("Mcp-Method", "tools/call".to_owned()),
            ("Mcp-Name", "trace".to_owned()),
        ];
        if let Some(v) = header {
            h.push(("traceparent", v.to_owned()));
        }
        let addr = server.addr;
        async move {
            let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = raw(addr, "POST", "/mcp", &refs, body.as_bytes()).await;
            let text = r.json()["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned();
            (
                serde_json::from_str::<Value>(&text).unwrap(),
                r.header("x-request-id").unwrap().to_owned(),
            )
        }
    };
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let meta = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let (v, id) = send(Some(meta), Some(header)).await;
    assert_eq!(
        v["trace"],
        json!([
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
            false
        ])
    );
    assert_eq!(v["id"], id);
    let (v, _) = send(None, Some(header)).await;
    assert_eq!(
        v["trace"],
        json!(["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", true])
    );
    let (v, _) = send(Some("garbage"), None).await;
    assert_eq!(v["trace"], Value::Null);
}

#[tokio::test]
async fn metrics_count_requests_operations_and_auth_decisions() {
    let server = start(Options {
        configure: Some(Box::new(|b: ServerBuilder| b.metrics())),
        ..Options::default()
    })
    .await;
    let hw = server.token("hal", true);
    let plain = server.token("hal", false);
    for _ in 0..3 {
        modern(
            &server,
            &hw,
            json!(1),
            "tools/call",
            json!({"name": "whoami"}),
        )
        .await;
    }
    modern(
        &server,
        &plain,
        json!(1),
        "tools/call",
        json!({"name": "sensitive-action"}),
    )
    .await;
    modern(
        &server,
        &hw,
        json!(1),
        "tools/call",
        json!({"name": "no-such-tool"}),
    )
    .await;
    modern(&server, &hw, json!(1), "tools/list", json!({})).await;
    raw(
        server.addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    raw(server.addr, "GET", "/nothing", &[], b"").await;
    let m = server_metrics(&server).await;
    let op = |labels: &str| {
        scalar(
            &m,
            &format!("mcp_server_operation_duration_seconds_count{{{labels}}}"),
        )
    };
    assert_eq!(
        op(r#"mcp_method_name="tools/call",gen_ai_tool_name="whoami""#),
        3
    );
    assert_eq!(
        op(
            r#"mcp_method_name="tools/call",gen_ai_tool_name="sensitive-action",error_type="tool_error""#
        ),
        1
    );
    assert_eq!(
        op(r#"mcp_method_name="tools/call",gen_ai_tool_name="other",error_type="-32602""#),
        1
    );
    assert_eq!(op(r#"mcp_method_name="tools/list""#), 1);
    assert_eq!(
        scalar(
            &m,
            r#"vouch_mcp_http_requests_total{route="mcp",method="POST",status="200"}"#
        ),
        6
    );
    assert_eq!(
        scalar(
            &m,
            r#"vouch_mcp_http_requests_total{route="mcp",method="POST",status="401"}"#
        ),
        1
    );
    assert_eq!(
        scalar(
            &m,
            r#"vouch_mcp_http_requests_total{route="not_found",method="GET",status="404"}"#
        ),
        1
    );
    assert_eq!(
        scalar(
            &m,
            r#"vouch_mcp_auth_decisions_total{outcome="allowed",reason="ok"}"#
        ),
        6
    );
    assert_eq!(
        scalar(
            &m,
            r#"vouch_mcp_auth_decisions_total{outcome="denied",reason="no_credentials"}"#
        ),
        1
    );
    // Every request verified a token once per connection (Connection: close): two distinct
    // tokens, so two full verifications and four cache hits.
    assert_eq!(
        scalar(&m, r#"vouch_mcp_verification_cache_total{result="miss"}"#),
        2
    );
    assert_eq!(
        scalar(&m, r#"vouch_mcp_verification_cache_total{result="hit"}"#),
        4
    );
    assert!(!m.contains("hal"), "no subject in any label");
}
