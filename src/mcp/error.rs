//! The protocol layer's error enum and its single mapping to HTTP status and JSON-RPC error.

use std::fmt;

use http::StatusCode;
use serde_json::{json, Value};

use super::version::Version;
use crate::jsonrpc::{ErrorCode, ErrorObject};

/// Why a message was not served. This enum's [`RequestError::to_wire`] is its only mapping to HTTP and JSON-RPC.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not JSON.
    Parse(String),
    /// Not a valid JSON-RPC message, or not allowed in this position (batch, second initialize).
    InvalidRequest(String),
    /// Unknown method, or one behind a capability that was not advertised.
    MethodNotFound(String),
    /// Bad params for a known method (in-band).
    InvalidParams(String, Option<Value>),
    /// 2026-07-28 `_meta` lacks the protocol version or client capabilities (pre-dispatch).
    MissingMeta(String),
    /// 2026-07-28 standard header missing or disagreeing with the body.
    HeaderMismatch(String),
    /// 2026-07-28 request needs a client capability it did not declare.
    MissingCapability(Value),
    /// 2026-07-28 `_meta` names a revision we do not serve.
    UnsupportedVersion(String),
    /// Initialize era: `MCP-Protocol-Version` names a revision we do not serve.
    UnsupportedVersionHeader(String),
    /// Initialize era: a non-initialize request without `Mcp-Session-Id`.
    SessionRequired,
    /// Initialize era: unknown, expired, deleted, or another principal's session.
    SessionNotFound,
    /// The session table is full.
    TooManySessions,
    /// No resource at this URI.
    ResourceNotFound(String),
    /// 2026-07-28 `requestState` was altered, belongs to another request, or expired.
    BadRequestState(&'static str),
    /// A handler fault; the detail is logged, not sent.
    Internal,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(m) => write!(f, "parse error: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::MethodNotFound(m) => write!(f, "method not found: {m}"),
            Self::InvalidParams(m, _) | Self::MissingMeta(m) => write!(f, "invalid params: {m}"),
            Self::HeaderMismatch(m) => write!(f, "header mismatch: {m}"),
            Self::MissingCapability(c) => write!(f, "missing client capability: {c}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported protocol version: {v}"),
            Self::UnsupportedVersionHeader(v) => {
                write!(f, "unsupported MCP-Protocol-Version header: {v}")
            }
            Self::SessionRequired => f.write_str("Mcp-Session-Id header is required"),
            Self::SessionNotFound => f.write_str("session not found"),
            Self::TooManySessions => f.write_str("too many open sessions"),
            Self::ResourceNotFound(u) => write!(f, "resource not found: {u}"),
            Self::BadRequestState(why) => write!(f, "requestState {why}"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

impl RequestError {
    /// HTTP status and JSON-RPC error for this failure. `modern` selects the 2026-07-28 statuses.
    pub fn to_wire(&self, modern: bool) -> (StatusCode, ErrorObject) {
        use ErrorCode as C;
        let supported = || json!(Version::supported_strings());
        match self {
            Self::Parse(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::PARSE_ERROR, format!("Parse error: {m}"))),
            Self::InvalidRequest(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::INVALID_REQUEST, format!("Invalid request: {m}"))),
            Self::MethodNotFound(m) => (
                if modern { StatusCode::NOT_FOUND } else { StatusCode::OK },
                ErrorObject::new(C::METHOD_NOT_FOUND, format!("Method not found: {m}")),
            ),
            Self::InvalidParams(m, data) => {
                let mut e = ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: {m}"));
                e.data = data.clone();
                (StatusCode::OK, e)
            }
            Self::MissingMeta(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: {m}"))),
            Self::HeaderMismatch(m) => (StatusCode::BAD_REQUEST, ErrorObject::new(C::HEADER_MISMATCH, format!("Header mismatch: {m}"))),
            Self::MissingCapability(caps) => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::MISSING_REQUIRED_CLIENT_CAPABILITY, "Missing required client capability")
                    .with_data(json!({"requiredCapabilities": caps})),
            ),
            Self::UnsupportedVersion(v) => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::UNSUPPORTED_PROTOCOL_VERSION, format!("Unsupported protocol version: {v}"))
                    .with_data(json!({"supported": supported(), "requested": v})),
            ),
            Self::UnsupportedVersionHeader(v) => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_REQUEST, format!("Unsupported MCP-Protocol-Version header: {v}"))
                    .with_data(json!({"supported": supported(), "requested": v})),
            ),
            Self::SessionRequired => (
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_REQUEST, "Mcp-Session-Id header is required; send initialize first"),
            ),
            Self::SessionNotFound => (
                StatusCode::NOT_FOUND,
                ErrorObject::new(
                    C::SESSION_NOT_FOUND,
                    "Session not found: it expired, was deleted, or belongs to another user; initialize a new one \
                     (behind a load balancer, sessions need affinity)",
                ),
            ),
            Self::TooManySessions => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorObject::new(C::INTERNAL_ERROR, "Too many open sessions; retry later"),
            ),
            Self::ResourceNotFound(uri) => (
                StatusCode::OK,
                // 2026-07-28 retired -32002 in favour of -32602 with the uri in data.
                ErrorObject::new(if modern { C::INVALID_PARAMS } else { C::RESOURCE_NOT_FOUND }, format!("Resource not found: {uri}"))
                    .with_data(json!({"uri": uri})),
            ),
            Self::BadRequestState(why) => (
                StatusCode::OK,
                ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: requestState {why}; start the request again without it")),
            ),
            Self::Internal => (StatusCode::OK, ErrorObject::new(C::INTERNAL_ERROR, "Internal error")),
        }
    }
}
