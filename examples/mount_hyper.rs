//! Mounting vouch-mcp in your own hyper server: your routes and the MCP endpoint on one port.
//!
//! The server's [`McpService`](vouch_mcp::McpService) is a plain `hyper::service::Service`, so a
//! `service_fn` can route `/api/...` to your handlers and everything else to it.
//!
//! ```sh
//! VOUCH_ISSUER=http://127.0.0.1:3000/dev PORT=4000 cargo run --example mount_hyper
//! curl -s http://127.0.0.1:4000/api/hello         # your route
//! curl -si -X POST http://127.0.0.1:4000/mcp      # the MCP endpoint: 401 with its challenge
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service as _};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use vouch_mcp::auth::{
    AudiencePolicy, Authenticator, HttpFetcher, JwksCache, Policy, RefreshPolicy,
};
use vouch_mcp::{CallToolResult, RequestContext, ServerBuilder, Tool};

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
    let mcp = server.service();

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("serving /api/hello and /mcp on 127.0.0.1:{port}");
    loop {
        let (stream, _) = listener.accept().await?;
        let mcp = mcp.clone();
        let routes = service_fn(move |req: Request<hyper::body::Incoming>| {
            let mcp = mcp.clone();
            async move {
                if req.uri().path().starts_with("/api/") {
                    let body = Full::new(Bytes::from_static(b"{\"hello\":\"from your app\"}"));
                    return Ok::<_, std::convert::Infallible>(Response::new(body.boxed()));
                }
                // Everything else is the MCP server's: its endpoint, metadata and /healthz.
                let resp = mcp.call(req).await?;
                Ok(resp.map(|b| b.boxed()))
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), routes)
                .await;
        });
    }
}
