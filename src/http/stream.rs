//! GET /mcp (the session's standalone SSE stream) and DELETE /mcp (ending a session).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use super::checks::Accept;
use super::post::{find_session, owner, with_session_header};
use super::{empty, request_error, rpc_error_response, App, Body, LogFields};
use serde_json::{json, Value};

use super::post::Post;
use crate::events::{StreamHandle, RESUME_CHANNEL};
use crate::jsonrpc::{self, ErrorCode, ErrorObject, Id};
use crate::mcp::headers::{self as mcp_headers, PROTOCOL_VERSION, SESSION_ID};
use crate::mcp::notify::Change;
use crate::mcp::version::Version;
use crate::mcp::{ListenFilter, RequestError, META_SUBSCRIPTION_ID};
use crate::session::Session;
use crate::sse::{self, KEEPALIVE as SSE_KEEPALIVE};

fn says_modern(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == Version::V2026_07_28.as_str())
}

fn stateless_405() -> Response<Body> {
    let mut resp = rpc_error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        &ErrorObject::new(
            ErrorCode::INVALID_REQUEST,
            "Method Not Allowed: protocol version 2026-07-28 has no sessions or GET stream; use POST",
        ),
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    resp
}

fn check_version_header(req: &Request<Incoming>) -> Result<(), RequestError> {
    match mcp_headers::single(req.headers(), PROTOCOL_VERSION) {
        Ok(None) => Ok(()),
        Ok(Some(v)) if Version::parse(v).is_some() => Ok(()),
        Ok(Some(v)) => Err(RequestError::UnsupportedVersionHeader(v.to_owned())),
        Err(e) => Err(RequestError::UnsupportedVersionHeader(e)),
    }
}

/// What GET and DELETE share: auth, the 405 for the stateless revision, the version header.
async fn session_operation(
    app: &Arc<App>,
    req: &Request<Incoming>,
    fields: &mut LogFields,
) -> Result<Arc<crate::auth::Principal>, Response<Body>> {
    let principal = app.authenticate(req.headers(), fields).await?;
    if says_modern(req) {
        return Err(stateless_405());
    }
    check_version_header(req).map_err(|e| request_error(&e, false, None, fields))?;
    Ok(principal)
}

pub(super) async fn get(
    app: &Arc<App>,
    req: Request<Incoming>,
    fields: &mut LogFields,
) -> Response<Body> {
    let principal = match session_operation(app, &req, fields).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    if !Accept::from_headers(req.headers()).sse {
        return rpc_error_response(
            StatusCode::NOT_ACCEPTABLE,
            None,
            &ErrorObject::new(
                ErrorCode::INVALID_REQUEST,
                "Not Acceptable: GET needs Accept: text/event-stream",
            ),
        );
    }
    let (parts, _) = req.into_parts();
    let session = match find_session(app, &parts, &principal) {
        Ok(s) => s,
        Err(e) => return request_error(&e, false, None, fields),
    };
    // Resumption (D10): replay what the named stream sent after that event, then go on live.
    if let Some(last) = parts.headers.get("last-event-id") {
        let (tx, rx) = mpsc::channel::<Bytes>(RESUME_CHANNEL);
        let last = last.to_str().unwrap_or("");
        if session.events().resume(last, tx).is_err() {
            let resp = rpc_error_response(
                StatusCode::NOT_FOUND,
                None,
                &ErrorObject::new(
                    ErrorCode::INVALID_REQUEST,
                    "Not Found: no event stream to resume for that Last-Event-ID",
                ),
            );
            return with_session_header(resp, &session);
        }
        fields.detail = Some(format!("resume {last}"));
        return sse_response(rx, &session);
    }
    let (stream, created) = session.standalone_stream();
    if stream.is_live() {
        let resp = rpc_error_response(
            StatusCode::CONFLICT,
            None,
            &ErrorObject::new(
                ErrorCode::INVALID_REQUEST,
                "Conflict: this session already has an open GET stream",
            ),
        );
        return with_session_header(resp, &session);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    stream.attach(tx);
    if session.primes_streams() {
        stream
            .deliver(sse::priming(&format!("{}-0", stream.id())))
            .await;
    }
    if created {
        // Subscribed before the response goes out, so no change announced after it is missed.
        let changes = app.notifier.subscribe();
        tokio::spawn(session_stream(
            app.clone(),
            session.clone(),
            stream,
            changes,
        ));
    }
    sse_response(rx, &session)
}

fn sse_response(rx: mpsc::Receiver<Bytes>, session: &Session) -> Response<Body> {
    with_session_header(super::body::sse_response(rx), session)
}

pub(super) async fn delete(
    app: &Arc<App>,
    req: Request<Incoming>,
    fields: &mut LogFields,
) -> Response<Body> {
    let principal = match session_operation(app, &req, fields).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let id = match mcp_headers::single(req.headers(), SESSION_ID) {
        Ok(Some(id)) if !id.is_empty() => id,
        Ok(_) => return request_error(&RequestError::SessionRequired, false, None, fields),
        Err(_) => return request_error(&RequestError::SessionNotFound, false, None, fields),
    };
    if app.sessions.remove(id, &owner(&principal), Instant::now()) {
        empty(StatusCode::NO_CONTENT)
    } else {
        request_error(&RequestError::SessionNotFound, false, None, fields)
    }
}

/// Feeds a session's standalone stream for as long as the session lives: change notifications it
/// may receive (recorded, so a reconnecting client can resume), and keep-alives to whoever is attached.
async fn session_stream(
    app: Arc<App>,
    session: Arc<Session>,
    stream: StreamHandle,
    mut changes: tokio::sync::broadcast::Receiver<Change>,
) {
    let keepalive = app.config.sse_keepalive;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let advertised = app.core.list_changed();
    let closed = session.closed().clone();
    let shutdown = app.shutdown.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                stream.deliver(Bytes::from_static(SSE_KEEPALIVE)).await;
            }
            change = changes.recv() => {
                let Ok(change) = change else { continue };
                let wanted = match &change {
                    Change::Tools => advertised.tools,
                    Change::Prompts => advertised.prompts,
                    Change::Resources => advertised.resources,
                    Change::ResourceUpdated(uri) => session.is_subscribed(uri),
                };
                if wanted {
                    let params = match &change {
                        Change::ResourceUpdated(uri) => json!({"uri": uri}),
                        _ => json!({}),
                    };
                    stream.send(&jsonrpc::notification(change.method(), params)).await;
                }
            }
            _ = closed.cancelled() => break,
            _ = shutdown.cancelled() => break,
        }
    }
    stream.finish();
}

/// 2026-07-28 `subscriptions/listen`: an SSE stream that opens with an acknowledgement and then
/// carries only the requested change kinds, each tagged with the subscription id (the request id).
pub(super) fn listen(post: &Post<'_>, id: Id, filter: ListenFilter) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    let sub_id = id.to_value();
    let ack = jsonrpc::notification(
        "notifications/subscriptions/acknowledged",
        json!({"notifications": filter.to_value(), "_meta": {META_SUBSCRIPTION_ID: sub_id}}),
    );
    let _ = tx.try_send(sse::event(None, &ack));
    let app = post.app.clone();
    // Subscribed before the acknowledgement can reach the client: nothing after it is missed.
    let mut changes = app.notifier.subscribe();
    tokio::spawn(async move {
        let keepalive = app.config.sse_keepalive;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        let shutdown = app.shutdown.clone();
        loop {
            let frame = tokio::select! {
                _ = tick.tick() => Bytes::from_static(SSE_KEEPALIVE),
                change = changes.recv() => {
                    let Ok(change) = change else { continue };
                    if !filter.wants(&change) {
                        continue;
                    }
                    let mut params = json!({"_meta": {META_SUBSCRIPTION_ID: sub_id}});
                    if let Change::ResourceUpdated(uri) = &change {
                        params["uri"] = Value::String(uri.clone());
                    }
                    sse::event(None, &jsonrpc::notification(change.method(), params))
                }
                _ = tx.closed() => return,
                _ = shutdown.cancelled() => {
                    // A graceful end: the final result names the subscription, then the stream closes.
                    let done = jsonrpc::result_response(&id, json!({"resultType": "complete", "_meta": {META_SUBSCRIPTION_ID: sub_id}}));
                    let _ = tx.send(sse::event(None, &done)).await;
                    return;
                }
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    super::body::sse_response(rx)
}
