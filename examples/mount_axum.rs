//! Mounting vouch-mcp in an axum router, next to your own routes (axum is only a dev-dependency).
//!
//! axum's request body implements `hyper::body::Body`, so the server's service takes axum
//! requests as they are; its response body converts with `axum::body::Body::new`.
//!
//! ```sh
//! VOUCH_ISSUER=http://127.0.0.1:3000/dev PORT=4000 cargo run --example mount_axum
//! curl -s http://127.0.0.1:4000/api/hello         # your route
//! curl -si -X POST http://127.0.0.1:4000/mcp      # the MCP endpoint: 401 with its challenge
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use hyper::service::Service as _;
use vouch_mcp::auth::{
    AudiencePolicy, Authenticator, HttpFetcher, JwksCache, Policy, RefreshPolicy,
};
use vouch_mcp::{CallToolResult, McpService, RequestContext, ServerBuilder, Tool};

/// The routes of an app that also serves MCP: its own, and the MCP server's for the rest.
fn app(mcp: McpService) -> Router {
    Router::new()
        .route("/api/hello", get(|| async { "hello from your app" }))
        // The MCP endpoint, its metadata documents and /healthz.
        .fallback(move |req: Request| {
            let mcp = mcp.clone();
            async move {
                let resp = mcp.call(req).await.unwrap_or_else(|never| match never {});
                resp.map(axum::body::Body::new)
            }
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let issuer = std::env::var("VOUCH_ISSUER").unwrap_or_else(|_| "https://us.vouch.sh".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4000);
    let resource = format!("http://localhost:{port}/mcp");

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
    let server = ServerBuilder::new("mounted", "1.0.0", resource)
        .authenticator(Authenticator::new(policy, Arc::new(keys), vec![]))
        .tool(Tool::new(
            "hello",
            "Greets the caller",
            |ctx: RequestContext| async move {
                let sub = ctx.principal().subject.clone().unwrap_or_default();
                Ok(CallToolResult::text(format!("hello, {sub}")))
            },
        ))
        .build()?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("serving /api/hello and /mcp on 127.0.0.1:{port}");
    axum::serve(listener, app(server.service())).await?;
    Ok(())
}
