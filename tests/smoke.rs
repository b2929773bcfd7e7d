//! End-to-end smoke tests of the guide's server over loopback HTTP, both eras.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn whoami_returns_this_requests_claims_at_2026() {
    let s = start(Options::default()).await;
    let r = modern(
        &s,
        &s.token("alice", true),
        json!(1),
        "tools/call",
        json!({"name":"whoami","arguments":{}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["result"]["structuredContent"],
        json!({"email":"alice@example.com","sub":"alice","hardware_verified":true})
    );
    assert_eq!(v["result"]["resultType"], "complete");
}

#[tokio::test]
async fn session_of_another_principal_is_not_found() {
    let s = start(Options::default()).await;
    let sid = initialize(&s, &s.token("alice", false), "2025-11-25").await;
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}});
    let r = legacy(&s, &s.token("mallory", false), &sid, body.clone()).await;
    assert_eq!(r.status, 404);
    let r = legacy(&s, &s.token("alice", true), &sid, body).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["result"]["structuredContent"]["hardware_verified"],
        true
    );
}
