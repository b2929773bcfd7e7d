//! The transport's error enum and its single mapping to an HTTP response.
//!
//! Every body is a JSON-RPC error object with a null id, so a client reads one shape whatever
//! failed; the message says what was wrong and, where there is one, which setting to change.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::checks::HostError;
use crate::body::Body;
use crate::core::message::{self, ErrorCode, ErrorObject};

/// Why a request was refused before the protocol core saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransportError {
    /// Host/Origin refused (DNS-rebinding protection, RFC 9112 Host rules).
    Host(HostError),
    /// No such path.
    NotFound,
    /// The path exists; the method does not. The value is the `Allow` list.
    MethodNotAllowed(&'static str),
    /// The declared or received body is over the cap (bytes).
    PayloadTooLarge(u64),
    /// POST without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// POST accepting neither JSON nor SSE.
    NotAcceptable,
    /// GET not accepting `text/event-stream`.
    StreamNotAcceptable,
    /// The body did not arrive in time.
    BodyTimeout,
    /// The body could not be read (the connection broke or the framing was invalid).
    BodyUnreadable,
    /// The server is at its connection cap with none idle.
    TooManyConnections,
}

impl TransportError {
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            Self::Host(e) => match e {
                HostError::MissingHost => (
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the request has no Host header".into(),
                ),
                HostError::RepeatedHost => (
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the request has more than one Host header".into(),
                ),
                HostError::MalformedHost(h) => (
                    StatusCode::BAD_REQUEST,
                    format!("Bad Request: Host {h:?} is not host[:port]"),
                ),
                HostError::ForeignAuthority(a) => (
                    StatusCode::BAD_REQUEST,
                    format!("Bad Request: the request target names host {a:?}, which this server does not serve"),
                ),
                HostError::HostNotAllowed(h) => (
                    StatusCode::FORBIDDEN,
                    format!(
                        "Forbidden: Host {h:?} is not allowed (DNS-rebinding protection); set \
                         MCP_RESOURCE_URL to the public URL or add the host to MCP_ALLOWED_HOSTS"
                    ),
                ),
                HostError::OriginNotAllowed(o) => (
                    StatusCode::FORBIDDEN,
                    format!(
                        "Forbidden: Origin {o:?} is not allowed (DNS-rebinding protection); add \
                         it to MCP_ALLOWED_ORIGINS"
                    ),
                ),
            },
            Self::NotFound => (StatusCode::NOT_FOUND, "Not Found".into()),
            Self::MethodNotAllowed(allow) => (
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method Not Allowed: use {allow}"),
            ),
            Self::PayloadTooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: the body limit is {max} bytes"),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: Content-Type must be application/json".into(),
            ),
            Self::NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable: Accept must allow application/json or text/event-stream".into(),
            ),
            Self::StreamNotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable: GET needs Accept: text/event-stream".into(),
            ),
            Self::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout: the body was not received in time".into(),
            ),
            Self::BodyUnreadable => (
                StatusCode::BAD_REQUEST,
                "Bad Request: the body could not be read".into(),
            ),
            Self::TooManyConnections => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: too many open connections (limit MCP_MAX_CONNECTIONS); retry later"
                    .into(),
            ),
        }
    }

    fn body(&self) -> Vec<u8> {
        let text = self.status_and_message().1;
        message::error(None, &ErrorObject::new(ErrorCode::INVALID_REQUEST, text))
    }

    /// This error as a whole HTTP/1.1 response on the wire, for a connection that gets nothing
    /// else (refused at accept time); it closes the connection.
    pub(crate) fn raw_http(&self) -> Vec<u8> {
        let status = self.status_and_message().0;
        let body = self.body();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// The response for this error: its one mapping to the wire.
    pub(crate) fn response(&self) -> Response<Body> {
        let status = self.status_and_message().0;
        let mut resp = crate::body::response(Body::full(self.body()));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Self::MethodNotAllowed(allow) = self {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if matches!(self, Self::TooManyConnections) {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host(e) => write!(f, "{e}"),
            other => f.write_str(&other.status_and_message().1),
        }
    }
}
