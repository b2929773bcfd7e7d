//! The protocol layer's error enum and its single mapping to HTTP status, JSON-RPC error and headers.

use std::fmt;

use http::StatusCode;
use serde_json::{json, Value};

use super::headers::HeaderError;
use super::message::{self, ErrorCode, ErrorObject, Id, ShapeError};
use super::mrtr::StateError;
use super::version::Version;
use super::Reply;
use crate::json::JsonError;

/// Why a message was not served. [`ProtocolError::to_wire`] is its only mapping to the wire.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ProtocolError {
    /// The body is not JSON, or names a member twice.
    Json(JsonError),
    /// Not a JSON-RPC 2.0 message.
    Shape(ShapeError),
    /// A well-formed message that is not allowed here.
    NotAllowed(NotAllowed),
    /// Unknown method, or one behind a capability that was not advertised.
    MethodNotFound(String),
    /// Bad params for a known method (in-band).
    InvalidParams(String, Option<Value>),
    /// 2026-07-28 `_meta` lacks the protocol version or client capabilities (pre-dispatch).
    MissingMeta(MetaError),
    /// 2026-07-28 standard header missing or disagreeing with the body.
    HeaderMismatch(HeaderError),
    /// 2026-07-28 request needs a client capability it did not declare.
    MissingCapability(Value),
    /// 2026-07-28 `_meta` names a revision we do not serve.
    UnsupportedVersion(String),
    /// Initialize era: `MCP-Protocol-Version` names a revision we do not serve, or is unreadable.
    UnsupportedVersionHeader(String),
    /// Initialize era: a non-initialize request without `Mcp-Session-Id`.
    SessionRequired,
    /// Initialize era: unknown, expired, deleted, or another principal's session.
    SessionNotFound,
    /// The session table is full.
    TooManySessions,
    /// This principal has as many sessions open as it may.
    PrincipalSessionCap,
    /// The session store cannot be reached.
    SessionStoreUnavailable,
    /// A resource limit of the principal (429) or of the server (503) is reached.
    Limit(crate::runtime::limits::Limit),
    /// No resource at this URI.
    ResourceNotFound(String),
    /// 2026-07-28 `requestState` was altered, belongs to another request, or expired.
    BadRequestState(StateError),
    /// GET and DELETE do not exist at 2026-07-28.
    Stateless,
    /// A second GET stream on a session that has one open.
    StreamConflict,
    /// `Last-Event-ID` names no stream this session can resume.
    NoStreamToResume,
    /// No task with this id for this principal (unknown, expired, or another principal's).
    TaskNotFound,
    /// A tool that runs only as a task, called in a way that cannot make one (initialize era).
    TaskRequired(String),
    /// 2025-11-25 `params.task` on a tool that does not run as a task.
    TaskForbidden(String),
    /// 2025-11-25 `tasks/cancel` (or `tasks/result` of a task without a result) on a finished task.
    TaskTerminal(&'static str),
    /// The deployment is at its task cap.
    TooManyTasks,
    /// This principal has as many unfinished tasks as it may.
    PrincipalTaskCap,
    /// The task store cannot be reached.
    TaskStoreUnavailable,
    /// A handler fault; the detail is logged, not sent.
    Internal,
}

/// A message that is well-formed but not acceptable where it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotAllowed {
    /// `[]`.
    EmptyBatch,
    /// A batch at 2026-07-28.
    BatchAtModern,
    /// A batch outside a 2025-03-26 session.
    BatchOutsideV2025_03_26,
    /// `initialize` inside a batch.
    InitializeInBatch,
    /// `initialize` on a session that is live.
    AlreadyInitialized,
}

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptyBatch => "an empty batch",
            Self::BatchAtModern => "batches are not allowed in protocol version 2026-07-28",
            Self::BatchOutsideV2025_03_26 => {
                "batches are accepted only in protocol version 2025-03-26 sessions"
            }
            Self::InitializeInBatch => "initialize must not be part of a batch",
            Self::AlreadyInitialized => "this session is already initialized",
        })
    }
}

/// What a 2026-07-28 `_meta` lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaError {
    /// The header says 2026-07-28 but `_meta` carries no protocol version.
    NoVersionClaim,
    /// The protocol version claim is not a string.
    VersionNotString,
    /// No client capabilities object.
    NoClientCapabilities,
    /// The log level is not one of the RFC 5424 names.
    BadLogLevel,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::{META_CLIENT_CAPABILITIES as CAPS, META_LOG_LEVEL, META_PROTOCOL_VERSION};
        match self {
            Self::NoVersionClaim => write!(
                f,
                "MCP-Protocol-Version is 2026-07-28 but params._meta lacks {META_PROTOCOL_VERSION}"
            ),
            Self::VersionNotString => write!(f, "_meta {META_PROTOCOL_VERSION} must be a string"),
            Self::NoClientCapabilities => {
                write!(f, "params._meta must carry {CAPS} (an object)")
            }
            Self::BadLogLevel => write!(f, "_meta {META_LOG_LEVEL} is not a valid log level"),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(JsonError::DuplicateMember(m)) => {
                write!(f, "invalid request: duplicate member name {m:?}")
            }
            Self::Json(e @ (JsonError::TooLarge(_) | JsonError::BatchTooLong(_))) => {
                write!(f, "refused: {e}")
            }
            Self::Json(e) => write!(f, "parse error: {e}"),
            Self::Shape(e) => write!(f, "invalid request: {e}"),
            Self::NotAllowed(e) => write!(f, "invalid request: {e}"),
            Self::MethodNotFound(m) => write!(f, "method not found: {m}"),
            Self::InvalidParams(m, _) => write!(f, "invalid params: {m}"),
            Self::MissingMeta(m) => write!(f, "invalid params: {m}"),
            Self::HeaderMismatch(m) => write!(f, "header mismatch: {m}"),
            Self::MissingCapability(c) => write!(f, "missing client capability: {c}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported protocol version: {v}"),
            Self::UnsupportedVersionHeader(v) => {
                write!(f, "unsupported MCP-Protocol-Version header: {v}")
            }
            Self::SessionRequired => f.write_str("Mcp-Session-Id header is required"),
            Self::SessionNotFound => f.write_str("session not found"),
            Self::TooManySessions => f.write_str("too many open sessions"),
            Self::PrincipalSessionCap => f.write_str("this principal's session cap is reached"),
            Self::SessionStoreUnavailable => f.write_str("session store unavailable"),
            Self::Limit(l) => write!(f, "limit reached: {}", l.setting()),
            Self::ResourceNotFound(u) => write!(f, "resource not found: {u}"),
            Self::BadRequestState(e) => write!(f, "requestState {e}"),
            Self::Stateless => f.write_str("GET/DELETE at 2026-07-28"),
            Self::StreamConflict => f.write_str("a GET stream is already open"),
            Self::NoStreamToResume => f.write_str("no stream to resume"),
            Self::TaskNotFound => f.write_str("task not found"),
            Self::TaskRequired(t) => write!(f, "tool {t} runs only as a task"),
            Self::TaskForbidden(t) => write!(f, "tool {t} does not run as a task"),
            Self::TaskTerminal(s) => write!(f, "task already {s}"),
            Self::TooManyTasks => f.write_str("the task cap is reached"),
            Self::PrincipalTaskCap => f.write_str("this principal's task cap is reached"),
            Self::TaskStoreUnavailable => f.write_str("task store unavailable"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

/// Everything an error puts on the wire besides the body's id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wire {
    /// HTTP status when the error is the whole response.
    pub(crate) status: StatusCode,
    /// The JSON-RPC error object.
    pub(crate) error: ErrorObject,
    /// `Retry-After` seconds, for refusals that pass.
    pub(crate) retry_after: Option<u32>,
    /// `Allow`, for 405.
    pub(crate) allow: Option<&'static str>,
}

/// How long a client should wait before retrying when the server is at a cap.
const RETRY_AFTER_SECS: u32 = 5;

impl ProtocolError {
    /// Status, JSON-RPC error and headers for this failure. `modern` selects the 2026-07-28 rules.
    pub(crate) fn to_wire(&self, modern: bool) -> Wire {
        use ErrorCode as C;
        let supported = || json!(Version::supported_strings());
        let plain = |status, error| Wire {
            status,
            error,
            retry_after: None,
            allow: None,
        };
        match self {
            Self::Json(JsonError::DuplicateMember(m)) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    format!("Invalid request: the body names member {m:?} twice"),
                ),
            ),
            Self::Json(JsonError::TooLarge(n)) => plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    format!(
                        "Payload Too Large: the parsed request would take more than {n} bytes; \
                         send a smaller or less deeply packed body"
                    ),
                ),
            ),
            Self::Json(JsonError::BatchTooLong(n)) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    format!(
                        "Invalid request: a batch may hold at most {n} messages (MCP_MAX_BATCH)"
                    ),
                ),
            ),
            Self::Json(e) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::PARSE_ERROR, format!("Parse error: {e}")),
            ),
            Self::Shape(e) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_REQUEST, format!("Invalid request: {e}")),
            ),
            Self::NotAllowed(e) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_REQUEST, format!("Invalid request: {e}")),
            ),
            Self::MethodNotFound(m) => plain(
                if modern {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::OK
                },
                ErrorObject::new(C::METHOD_NOT_FOUND, format!("Method not found: {m}")),
            ),
            Self::InvalidParams(m, data) => {
                let mut e = ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: {m}"));
                e.data = data.clone();
                plain(StatusCode::OK, e)
            }
            Self::MissingMeta(m) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(C::INVALID_PARAMS, format!("Invalid params: {m}")),
            ),
            Self::HeaderMismatch(m) => plain(
                StatusCode::BAD_REQUEST,
                if modern {
                    ErrorObject::new(C::HEADER_MISMATCH, format!("Header mismatch: {m}"))
                } else {
                    ErrorObject::new(C::INVALID_REQUEST, format!("Invalid request: {m}"))
                },
            ),
            Self::MissingCapability(caps) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    C::MISSING_REQUIRED_CLIENT_CAPABILITY,
                    "Missing required client capability",
                )
                .with_data(json!({"requiredCapabilities": caps})),
            ),
            Self::UnsupportedVersion(v) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    C::UNSUPPORTED_PROTOCOL_VERSION,
                    format!("Unsupported protocol version: {v}"),
                )
                .with_data(json!({"supported": supported(), "requested": v})),
            ),
            Self::UnsupportedVersionHeader(v) => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    format!("Unsupported MCP-Protocol-Version header: {v}"),
                )
                .with_data(json!({"supported": supported(), "requested": v})),
            ),
            Self::SessionRequired => plain(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    "Mcp-Session-Id header is required; send initialize first",
                ),
            ),
            Self::SessionNotFound => plain(
                StatusCode::NOT_FOUND,
                ErrorObject::new(
                    C::SESSION_NOT_FOUND,
                    "Session not found: it expired, was deleted, or belongs to another user; \
                     initialize a new one",
                ),
            ),
            Self::TooManySessions => Wire {
                retry_after: Some(RETRY_AFTER_SECS),
                ..plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorObject::new(C::INTERNAL_ERROR, "Too many open sessions; retry later"),
                )
            },
            Self::PrincipalSessionCap => Wire {
                retry_after: Some(RETRY_AFTER_SECS),
                ..plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorObject::new(
                        C::INVALID_REQUEST,
                        "Too many sessions for this user (limit MCP_MAX_SESSIONS_PER_PRINCIPAL); \
                         delete one or wait for one to expire",
                    ),
                )
            },
            Self::SessionStoreUnavailable => Wire {
                retry_after: Some(RETRY_AFTER_SECS),
                ..plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorObject::new(
                        C::INTERNAL_ERROR,
                        "The session store is unavailable; retry later",
                    ),
                )
            },
            Self::Limit(limit) if limit.is_per_principal() => Wire {
                retry_after: Some(1),
                ..plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorObject::new(
                        C::INVALID_REQUEST,
                        format!("Too Many Requests: {limit} (limit {})", limit.setting()),
                    )
                    .with_data(json!({"limit": limit.setting()})),
                )
            },
            Self::Limit(limit) => Wire {
                retry_after: Some(1),
                ..plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorObject::new(
                        C::INTERNAL_ERROR,
                        format!(
                            "Service Unavailable: {limit} (limit {}); retry later",
                            limit.setting()
                        ),
                    )
                    .with_data(json!({"limit": limit.setting()})),
                )
            },
            Self::ResourceNotFound(uri) => plain(
                StatusCode::OK,
                // 2026-07-28 retired -32002 in favour of -32602 with the uri in data.
                ErrorObject::new(
                    if modern {
                        C::INVALID_PARAMS
                    } else {
                        C::RESOURCE_NOT_FOUND
                    },
                    format!("Resource not found: {uri}"),
                )
                .with_data(json!({"uri": uri})),
            ),
            Self::BadRequestState(why) => plain(
                StatusCode::OK,
                ErrorObject::new(
                    C::INVALID_PARAMS,
                    format!(
                        "Invalid params: requestState {why}; start the request again without it"
                    ),
                ),
            ),
            Self::Stateless => Wire {
                allow: Some("POST"),
                ..plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorObject::new(
                        C::INVALID_REQUEST,
                        "Method Not Allowed: protocol version 2026-07-28 has no sessions or GET \
                         stream; use POST",
                    ),
                )
            },
            Self::StreamConflict => plain(
                StatusCode::CONFLICT,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    "Conflict: this session already has an open GET stream",
                ),
            ),
            Self::NoStreamToResume => plain(
                StatusCode::NOT_FOUND,
                ErrorObject::new(
                    C::INVALID_REQUEST,
                    "Not Found: no event stream to resume for that Last-Event-ID",
                ),
            ),
            Self::TaskNotFound => plain(
                StatusCode::OK,
                ErrorObject::new(C::INVALID_PARAMS, "Failed to retrieve task: Task not found"),
            ),
            // 2025-11-25 tasks: a wrong task mode is -32601 (Method not found), as the spec says.
            Self::TaskRequired(t) => plain(
                StatusCode::OK,
                ErrorObject::new(
                    C::METHOD_NOT_FOUND,
                    format!(
                        "Method not found: tool {t} runs only as a task; call it with params.task \
                         (protocol version 2025-11-25 or later)"
                    ),
                ),
            ),
            Self::TaskForbidden(t) => plain(
                StatusCode::OK,
                ErrorObject::new(
                    C::METHOD_NOT_FOUND,
                    format!("Method not found: tool {t} does not run as a task; call it without params.task"),
                ),
            ),
            Self::TaskTerminal(status) => plain(
                StatusCode::OK,
                ErrorObject::new(
                    C::INVALID_PARAMS,
                    format!("Cannot cancel task: already in terminal status '{status}'"),
                ),
            ),
            Self::TooManyTasks => Wire {
                retry_after: Some(RETRY_AFTER_SECS),
                ..plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorObject::new(
                        C::INTERNAL_ERROR,
                        "Too many tasks on this server (limit MCP_MAX_TASKS); retry later",
                    ),
                )
            },
            Self::PrincipalTaskCap => Wire {
                retry_after: Some(RETRY_AFTER_SECS),
                ..plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorObject::new(
                        C::INVALID_REQUEST,
                        "Too many unfinished tasks for this user (limit MCP_MAX_TASKS_PER_PRINCIPAL); \
                         wait for one to finish or cancel one",
                    ),
                )
            },
            Self::TaskStoreUnavailable => Wire {
                retry_after: Some(RETRY_AFTER_SECS),
                ..plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorObject::new(C::INTERNAL_ERROR, "The task store is unavailable; retry later"),
                )
            },
            Self::Internal => plain(
                StatusCode::OK,
                ErrorObject::new(C::INTERNAL_ERROR, "Internal error"),
            ),
        }
    }

    /// The whole response for this error, echoing `id` when one could be read.
    pub(crate) fn reply(&self, modern: bool, id: Option<&Id>) -> Reply {
        let wire = self.to_wire(modern);
        Reply {
            status: wire.status,
            body: message::error(id, &wire.error).into(),
            retry_after: wire.retry_after,
            allow: wire.allow,
            detail: Some(self.to_string()),
            ending: super::Ending::Error(wire.error.code.0),
            tool: None,
        }
    }

    /// This error as one element of a batch response (no HTTP status of its own).
    pub(crate) fn batch_item(&self, id: Option<&Id>) -> Vec<u8> {
        message::error(id, &self.to_wire(false).error)
    }
}
