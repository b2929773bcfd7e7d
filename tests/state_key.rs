//! `requestState` sealed by one instance is accepted by another sharing its `state_key`, and
//! refused by an instance with a different key (multi-instance deployments).

mod support;

use serde_json::json;
use support::*;
use vouch_mcp::{CallToolResult, InputRequired, RequestContext, Tool};

fn asking_tool() -> Tool {
    Tool::new("ask", "asks for a name", |ctx: RequestContext| async move {
        match (ctx.input_responses(), ctx.request_state()) {
            (Some(_), Some("round-1")) => Ok(CallToolResult::text("done")),
            _ => Err(InputRequired::new()
                .elicit(
                    "name",
                    "Name?",
                    json!({"type": "object", "properties": {"n": {"type": "string"}}}),
                )
                .state("round-1")
                .into()),
        }
    })
}

async fn instance(key: [u8; 32]) -> TestServer {
    start(Options {
        configure: Some(Box::new(move |b| b.tool(asking_tool()).state_key(key))),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn state_sealed_by_one_instance_is_accepted_by_another_with_the_same_key() {
    let (a, b, c) = (
        instance([5; 32]).await,
        instance([5; 32]).await,
        instance([6; 32]).await,
    );
    let token = a.token("alice", false);
    let caps = |p: &mut serde_json::Value| {
        p["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    };
    // First round on A.
    let mut params = json!({"name": "ask", "arguments": {}});
    let r = modern_with(&a, &token, json!(1), "tools/call", params.clone(), caps).await;
    let state = r.json()["result"]["requestState"]
        .as_str()
        .expect("sealed state")
        .to_owned();
    // The retry carries the state; the tokens of all three instances verify (same test issuer).
    params["inputResponses"] = json!({"name": {"action": "accept", "content": {"n": "x"}}});
    params["requestState"] = json!(state);
    let r = modern_with(
        &b,
        &b.token("alice", false),
        json!(2),
        "tools/call",
        params.clone(),
        caps,
    )
    .await;
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "done",
        "{}",
        r.text()
    );
    let r = modern_with(
        &c,
        &c.token("alice", false),
        json!(3),
        "tools/call",
        params,
        caps,
    )
    .await;
    assert_eq!(r.json()["error"]["code"], -32602, "{}", r.text());
}

/// Like `support::modern`, with a hook to adjust params after `_meta` is set.
async fn modern_with(
    s: &TestServer,
    token: &str,
    id: serde_json::Value,
    method: &str,
    mut params: serde_json::Value,
    edit: impl Fn(&mut serde_json::Value),
) -> Reply {
    params["_meta"] = modern_meta();
    edit(&mut params);
    let name = params["name"].as_str().unwrap_or("").to_owned();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    let auth = format!("Bearer {token}");
    raw(
        s.addr,
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
            ("Mcp-Name", &name),
        ],
        body.as_bytes(),
    )
    .await
}
