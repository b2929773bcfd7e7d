//! vouch-mcp: an MCP server over Streamable HTTP, with every request's OIDC access token verified in-house.
//!
//! Build a [`Server`] with [`ServerBuilder`]: an [`auth::Authenticator`] (issuer policy plus
//! a key source), your [`Tool`]s, [`Prompt`]s and [`Resource`]s. Then either run its own accept
//! loop with [`Server::serve`] on any [`Listener`] (TCP, Unix socket), or mount
//! [`Server::service`], a [`hyper::service::Service`], in your own hyper server or router.
//! Handlers get a [`RequestContext`]: this request's verified principal and claims, a
//! cancellation signal, progress and log messages, and server-to-client requests.
//!
//! ```
//! use std::sync::Arc;
//! use serde::Deserialize;
//! use vouch_mcp::auth::{AudiencePolicy, Authenticator, KeySet, Policy, StaticKeys};
//! use vouch_mcp::{CallToolResult, RequestContext, Schema, ServerBuilder, Tool};
//!
//! #[derive(Deserialize)]
//! struct Add { a: i64, b: i64 }
//!
//! let resource = "http://localhost:3000/mcp";
//! // Pinned keys for the example; a real server uses `JwksCache` on the issuer's JWKS.
//! let (keys, _) = KeySet::parse(br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
//!     "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
//!     "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#).unwrap();
//! let policy = Policy::new("https://issuer.example", AudiencePolicy::OneOf(vec![resource.into()]));
//! let auth = Authenticator::new(policy, Arc::new(StaticKeys(Arc::new(keys))), vec![]);
//!
//! let server = ServerBuilder::new("calculator", "1.0.0", resource)
//!     .authenticator(auth)
//!     .tool(
//!         Tool::new("add", "Adds two integers", |ctx: RequestContext, args: Add| async move {
//!             let who = ctx.principal().subject.as_deref().unwrap_or("someone");
//!             Ok(CallToolResult::text(format!("{who}: {}", args.a + args.b)))
//!         })
//!         .input(Schema::object().required("a", Schema::integer()).required("b", Schema::integer())),
//!     )
//!     .build()
//!     .expect("a valid configuration");
//! assert_eq!(server.resource_url(), resource);
//! ```
//!
//! # Layout
//!
//! * `core`: the protocol core, pure: bytes and facts (headers, principal, session, `now`) in,
//!   a decision out. Every era rule, check order, batch rule and header rule lives there.
//! * `runtime`: the async parts: handlers, cancellation, sessions, event streams, notifications,
//!   behind small store and bus traits with in-memory defaults.
//! * `http`: the thin hyper shell: routing, Host/Origin, body cap, auth, content negotiation,
//!   decisions turned into responses.
//! * [`auth`]: bearer extraction, JWT verification (pure), the JWKS cache, RFC 6750 challenges,
//!   RFC 9728 metadata.
//! * [`Tool`], [`prompt`], [`resource`], [`Schema`], [`RequestContext`], [`Notifier`]: what an
//!   embedder defines and uses; [`ServerBuilder`] and [`Server`]: configuration and serving.
//! * [`Clock`], [`RandomSource`], [`log`]: time, randomness and the log sink, replaceable.
//! * `ops`: request ids, client addresses behind trusted proxies, W3C trace context
//!   ([`TraceContext`]), Prometheus metrics and the [`audit`] log; [`StepUp`]: per-tool step-up
//!   policies (RFC 9470).
//!
//! # I/O
//!
//! ```text
//!  bytes in ──► http (Host/Origin, size, auth, negotiation, body) ──► core::post ──► Decision
//!                       │                                                │
//!           auth::Authenticator ◄── JwksCache ◄── fetch (rustls)         ▼
//!                                                     runtime (handler, session, stream)
//!                                                                         │
//!  bytes out ◄── http (JSON or SSE) ◄── core::finish ◄────────────────────┘
//! ```
//!
//! Only `http`, `runtime`, `serve`, `auth::fetch` and `auth::keys` touch sockets, clocks or tasks.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod auth;
mod body;
mod conn;
/// The binary's dev issuer, for the crate's own tests (which also name the crate `vouch_mcp`,
/// as the file does).
#[cfg(test)]
#[path = "bin/vouch-mcp/dev.rs"]
#[allow(dead_code, missing_docs, missing_debug_implementations)]
mod dev;
#[cfg(test)]
extern crate self as vouch_mcp;
mod core;
pub mod defaults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
mod http;
mod json;
pub mod log;
mod notify;
mod ops;
pub mod prompt;
/// The shared backend that lets several replicas serve one deployment (feature `redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use crate::runtime::redis::{RedisBackend, RedisConfig, RedisError, DEFAULT_PREFIX};
}
pub mod resource;
mod runtime;
mod schema;
mod serve;
mod server;
mod sources;
mod sse;
mod step_up;
mod tls;
mod tool;

pub use crate::core::catalog::Change;
pub use crate::core::headers::AnnotationError;
pub use crate::core::mrtr::InputRequired;
pub use crate::core::tasks::TaskSupport;
pub use crate::core::template::TemplateError;
pub use crate::core::{ListChanged, LogLevel};
pub use crate::http::McpService;
pub use auth::{Authenticator, Principal};
pub use body::Body;
pub use notify::Notifier;
pub use ops::audit;
pub use ops::request::TraceContext;
pub use prompt::Prompt;
pub use resource::{Resource, ResourceTemplate};
pub use runtime::context::{CancelToken, ClientRequestError, RequestContext};
pub use schema::Schema;
pub use serde_json;
pub use serve::Listener;
pub use server::{BuildError, Server, ServerBuilder};
pub use sources::{Clock, RandomError, RandomSource, SystemClock, SystemRandom};
pub use step_up::{StepUp, StepUpDenial};
pub use tls::{TlsConfig, TlsError};
pub use tool::{
    content, CallToolResult, HandlerError, NoArguments, Tool, ToolAnnotations, ToolError,
    ToolHandler, ToolResult,
};

/// The README's code blocks, compiled (and, where not marked `no_run`, run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
