//! Tasks on two replicas sharing one Redis, with real tokens: another principal gets the unknown-id answer on every replica, the owner gets its task on either (feature `redis`).
//!
//! Needs a Redis: `VOUCH_TEST_REDIS_URL` names one, or a `redis-server` on PATH is started on a
//! free loopback port (and stopped by its PID). Without either the test is skipped, unless
//! `VOUCH_REQUIRE_REDIS=1` (CI) makes that a failure.
#![cfg(feature = "redis")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::Service as _;
use serde_json::{json, Value};
use vouch_mcp::redis::{RedisBackend, RedisConfig};
use vouch_mcp::{CallToolResult, McpService, RequestContext, TaskSupport, Tool};

const URL: &str = "http://localhost:3000/mcp";

struct TestRedis {
    url: String,
    child: Option<std::process::Child>,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn redis() -> Option<TestRedis> {
    if let Ok(url) = std::env::var("VOUCH_TEST_REDIS_URL") {
        return Some(TestRedis { url, child: None });
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let Ok(child) = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        assert!(
            std::env::var("VOUCH_REQUIRE_REDIS").as_deref() != Ok("1"),
            "VOUCH_REQUIRE_REDIS=1 but no redis-server on PATH and no VOUCH_TEST_REDIS_URL"
        );
        eprintln!("skipped: no redis-server on PATH and no VOUCH_TEST_REDIS_URL");
        return None;
    };
    let r = TestRedis {
        url: format!("redis://127.0.0.1:{port}/0"),
        child: Some(child),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(r)
}

async fn replica(r: &TestRedis, prefix: &str) -> (vouch_mcp::Server, support::DevIssuer) {
    let backend = RedisBackend::connect(RedisConfig::new(r.url.clone()).prefix(prefix))
        .await
        .expect("the test Redis answers");
    support::build(
        support::Options {
            configure: Some(Box::new(move |b| {
                b.tool(
                    Tool::new("wait", "Runs a while", |ctx: RequestContext| async move {
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(30)) => {}
                            () = ctx.cancellation().cancelled() => {}
                        }
                        Ok(CallToolResult::text("waited"))
                    })
                    .task_support(TaskSupport::Optional),
                )
                .redis(backend)
            })),
            ..Default::default()
        },
        URL,
    )
}

async fn post(svc: &McpService, token: &str, method: &str, name: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let req = http::Request::post("/mcp")
        .header("host", "localhost:3000")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = svc.call(req).await.unwrap_or_else(|e| match e {});
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}))
}

#[tokio::test]
async fn another_principal_gets_the_unknown_id_answer_on_every_replica() {
    let Some(r) = redis() else { return };
    let prefix = format!(
        "it{}:",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (a, issuer) = replica(&r, &prefix).await;
    let (b, _) = replica(&r, &prefix).await;
    let (sa, sb) = (a.service(), b.service());
    let token = |sub: &str| {
        issuer.mint(&issuer.claims(
            URL,
            sub,
            &format!("{sub}@example.com"),
            true,
            support::now(),
            3600,
        ))
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let created = post(&sa, &alice, "tools/call", "wait", json!({"name": "wait"})).await;
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let unknown = post(
        &sa,
        &bob,
        "tasks/get",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        json!({"taskId": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    for svc in [&sa, &sb] {
        for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
            let mut params = json!({"taskId": id});
            if method == "tasks/update" {
                params["inputResponses"] = json!({});
            }
            let got = post(svc, &bob, method, &id, params).await;
            assert_eq!(got["error"]["code"], -32602, "{method}: {got}");
            assert_eq!(
                got["error"]["message"], unknown["error"]["message"],
                "{method}: exactly the unknown-id answer"
            );
        }
        let own = post(svc, &alice, "tasks/get", &id, json!({"taskId": id})).await;
        assert_eq!(own["result"]["status"], "working", "{own}");
    }
    let cancelled = post(&sb, &alice, "tasks/cancel", &id, json!({"taskId": id})).await;
    assert!(cancelled.get("error").is_none(), "{cancelled}");
    let got = post(&sa, &alice, "tasks/get", &id, json!({"taskId": id})).await;
    assert_eq!(got["result"]["status"], "cancelled", "{got}");
}
