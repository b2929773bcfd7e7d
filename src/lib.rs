//! vouch-mcp: an MCP remote server over Streamable HTTP, with strict in-house ES256 token verification.
//!
//! # Layout
//!
//! * [`auth`]: bearer extraction, ES256 JWT verification, the JWKS cache, RFC 6750 challenges,
//!   RFC 9728 metadata. The verifier is pure: token, keys, policy and `now` in; principal out.
//! * [`jsonrpc`]: the JSON-RPC 2.0 envelope (pure).
//! * [`mcp`]: the protocol core (pure): era rules, dispatch, tools, request context.
//! * [`session`]: initialize-era sessions bound to their principal; [`events`]: their resumable SSE streams.
//! * [`sse`]: SSE framing (pure).
//! * [`http`]: the hyper shell: routing, the check order, JSON and SSE responses.
//! * [`server`]: the builder and the accept loop (the embedding API).
//! * [`guide`]: the guide's `whoami` and `sensitive-action` tools.
//! * [`config`]: the binary's settings from env and flags (pure).
//! * [`dev`]: the in-process dev issuer used by `--dev` and tests.
//! * [`launch`]: assembles the guide's server from a `Config`.
//! * [`log`]: line logging to stderr.
//!
//! # I/O
//!
//! ```text
//!  bytes in ──► http (checks, body cap) ──► auth::Authenticator ──► jsonrpc::Message
//!                                                  │                      │
//!                                    keys::JwksCache ◄── fetch (rustls)   ▼
//!                                                              mcp::Core decides
//!                                                                         │
//!  bytes out ◄── http (JSON or SSE) ◄── tool handler task ◄───────────────┘
//! ```
//!
//! Only `http`, `server`, `auth::fetch` and `auth::keys` touch sockets, clocks or tasks.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod auth;
pub mod config;
pub mod dev;
pub mod events;
pub mod guide;
pub mod http;
pub mod jsonrpc;
pub mod launch;
pub mod log;
pub mod mcp;
pub mod server;
pub mod session;
pub mod sse;

pub use auth::{Authenticator, Principal};
pub use mcp::context::{CancelToken, ClientRequestError, LogLevel, RequestContext};
pub use mcp::mrtr::InputRequired;
pub use mcp::notify::Notifier;
pub use mcp::prompt::Prompt;
pub use mcp::resource::{Resource, ResourceTemplate};
pub use mcp::tool::{
    content, CallToolResult, HandlerError, Tool, ToolAnnotations, ToolError, ToolResult,
};
pub use mcp::ListChanged;
pub use server::{BuildError, Server, ServerBuilder};
