//! Embedding vouch-mcp: your own tools behind the same token verification.
//!
//! Run against the dev issuer of a `vouch-mcp --dev` on port 3000:
//!
//! ```sh
//! VOUCH_ISSUER=http://127.0.0.1:3000/dev PORT=4000 cargo run --example embed
//! ```
//!
//! then call it with a token minted by the dev server, whose audience must be this server's
//! resource URL: `curl -X POST http://127.0.0.1:3000/dev/token -d '{"aud":"http://localhost:4000/mcp"}'`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use vouch_mcp::auth::{
    AudiencePolicy, Authenticator, HttpFetcher, JwksCache, Policy, RefreshPolicy,
};
use vouch_mcp::{
    CallToolResult, LogLevel, RequestContext, Schema, ServerBuilder, Tool, ToolAnnotations,
    ToolError,
};

/// The `count` tool's arguments.
#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let issuer = std::env::var("VOUCH_ISSUER").unwrap_or_else(|_| "https://us.vouch.sh".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4000);
    let resource = format!("http://localhost:{port}/mcp");

    // Keys: the issuer's JWKS, fetched in the background, cached, refreshed on rotation.
    let keys = JwksCache::new(
        HttpFetcher::new(
            &format!("{issuer}/oauth/jwks"),
            Duration::from_secs(5),
            1 << 20,
        )?,
        RefreshPolicy::default(),
    );
    keys.spawn_refresher();
    let policy = Policy::new(issuer, AudiencePolicy::OneOf(vec![resource.clone()]));
    let authenticator = Authenticator::new(policy, Arc::new(keys), vec![]);

    // A tool with typed, validated arguments, progress messages and cancellation.
    let count = Tool::new(
        "count",
        "Counts to n, reporting progress.",
        |ctx: RequestContext, args: Count| async move {
            let n = args.n;
            for i in 1..=n {
                if ctx.is_cancelled() {
                    return Err(ToolError::Failed("cancelled".into()));
                }
                ctx.progress(i as f64, Some(n as f64), Some("counting"))
                    .await;
                ctx.log(LogLevel::Info, Some("count"), json!({"at": i}))
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(CallToolResult::structured(json!({"counted": n})))
        },
    )
    .title("Count")
    .input(
        Schema::object()
            .required("n", Schema::integer().minimum(1.0).maximum(20.0))
            .deny_unknown(),
    )
    .output(Schema::object().required("counted", Schema::integer()))
    .annotations(ToolAnnotations {
        read_only: Some(true),
        ..Default::default()
    });

    // A tool that reads any claim of the caller's token.
    let claims = Tool::new(
        "claims",
        "Returns every verified claim of the caller's token.",
        |ctx: RequestContext| async move {
            Ok(CallToolResult::structured(Value::Object(
                ctx.claims().clone(),
            )))
        },
    );

    let server = ServerBuilder::new("embed-example", "1.0.0", resource)
        .instructions("An example of embedding vouch-mcp.")
        .authenticator(authenticator)
        .logging()
        .tool(count)
        .tool(claims)
        .build()?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("serving {} ", server.resource_url());
    server
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
