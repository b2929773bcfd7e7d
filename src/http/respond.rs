//! Turning the core's replies, streams and the auth layer's rejections into HTTP responses, plus the fixed responses (metadata, health, CORS).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use tokio::sync::mpsc;

use std::time::Duration;

use crate::auth::Rejection;
use crate::body::Body;
use crate::core::headers::SESSION_ID;
use crate::core::Reply;
use crate::runtime::Opened;

/// A JSON reply from the core (202s carry no body and no content type).
pub(crate) fn reply(reply: Reply) -> Response<Body> {
    let has_body = !reply.body.is_empty();
    let mut resp = crate::body::response(Body::full(reply.body));
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    if has_body {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = reply.allow {
        h.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    resp
}

/// A `200 text/event-stream` response fed by `rx`, with the headers that keep proxies from
/// buffering or caching it.
pub(crate) fn sse(
    rx: mpsc::Receiver<Bytes>,
    guard: Option<crate::ops::OpenStream>,
) -> Response<Body> {
    sse_body(Body::stream(rx).counted(guard))
}

/// A long-lived SSE stream (GET, `subscriptions/listen`): ends cleanly after `lifetime`, and
/// holds the principal's stream slot while it is open.
pub(crate) fn long_sse(
    opened: Opened,
    lifetime: Duration,
    guard: Option<crate::ops::OpenStream>,
) -> Response<Body> {
    sse_body(Body::bounded(opened.frames, lifetime, opened.farewell, opened.permit).counted(guard))
}

fn sse_body(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// 204 with no body.
pub(crate) fn no_content() -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// Adds `Mcp-Session-Id` (the record's value, made once per session).
pub(crate) fn with_session(
    mut resp: Response<Body>,
    session: &crate::runtime::session::SessionRecord,
) -> Response<Body> {
    if let Some(v) = session.id_header() {
        resp.headers_mut().insert(SESSION_ID, v);
    }
    resp
}

/// An auth rejection, exactly as the challenger decided it (status, challenge, Retry-After, body).
pub(crate) fn rejection(r: Rejection) -> Response<Body> {
    let mut resp = Response::new(Body::full(r.body));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(w) = r.www_authenticate {
        h.insert(header::WWW_AUTHENTICATE, w);
    }
    if let Some(secs) = r.retry_after_secs {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// `/healthz`: liveness; it does not touch MCP.
pub(crate) fn health() -> Response<Body> {
    let mut resp = Response::new(Body::full(Bytes::from_static(b"{\"status\":\"ok\"}")));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `/readyz`: 200 `{"status":"ready"}`, or 503 naming what is missing. Never cached.
pub(crate) fn ready(missing: &[&str]) -> Response<Body> {
    let body = if missing.is_empty() {
        Bytes::from_static(b"{\"status\":\"ready\"}")
    } else {
        let v = serde_json::json!({"status": "not_ready", "missing": missing});
        Bytes::from(v.to_string())
    };
    let mut resp = Response::new(Body::full(body));
    if !missing.is_empty() {
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The RFC 9728 document (GET/HEAD) or its CORS preflight (OPTIONS): public, cacheable, any origin.
pub(crate) fn metadata(method: &Method, doc: &Bytes) -> Response<Body> {
    let mut resp = if method == Method::OPTIONS {
        let mut r = no_content();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        let mut r = Response::new(Body::full(doc.clone()));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        r
    };
    // A public document: any browser origin may read it.
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// Request headers a browser may send to the endpoint, besides the per-tool `Mcp-Param-*` ones.
const CORS_ALLOWED_HEADERS: &str = "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Session-Id, Last-Event-ID";

/// The CORS preflight of the endpoint. `Mcp-Param-*` names vary per tool and cannot be
/// wildcarded, so the requested ones are added when they are plain header tokens.
pub(crate) fn preflight(headers: &HeaderMap) -> Response<Body> {
    let mut resp = no_content();
    let mut allowed = String::from(CORS_ALLOWED_HEADERS);
    if let Some(requested) = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        for name in requested.split(',').map(str::trim) {
            let is_param = name.len() > 10
                && name.is_char_boundary(10)
                && name[..10].eq_ignore_ascii_case("mcp-param-");
            if is_param
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                allowed.push_str(", ");
                allowed.push_str(name);
            }
        }
    }
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    if let Ok(v) = HeaderValue::from_str(&allowed) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

/// Grants an (already checked) Origin read access to the response.
pub(crate) fn allow_origin(resp: &mut Response<Body>, origin: HeaderValue) {
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version, X-Request-Id",
        ),
    );
}
