//! POST /mcp: size, auth, content negotiation, JSON-RPC parsing, era rules, then dispatch.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::HeaderValue;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use super::checks::{self, Accept};
use super::{call, empty, json_value, request_error, stream, unix_now, App, Body, LogFields};
use crate::auth::Principal;
use crate::jsonrpc::{self, Id, Message};
use crate::mcp::headers::{self as mcp_headers, PROTOCOL_VERSION, SESSION_ID};
use crate::mcp::version::{Version, DEFAULT_LEGACY};
use crate::mcp::{
    NotificationAction, Outcome, Pending, RequestError, RequestFacts, META_CLIENT_CAPABILITIES,
    META_PROTOCOL_VERSION,
};
use crate::session::{Owner, Session};

/// What every message of one POST shares.
pub(super) struct Post<'a> {
    pub(super) app: Arc<App>,
    pub(super) parts: &'a Parts,
    pub(super) principal: Arc<Principal>,
    pub(super) accept: Accept,
}

pub(super) async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    fields: &mut LogFields,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let max = app.config.max_body_bytes;
    // 2. A declared oversize body is refused before auth, without reading a byte of it.
    if checks::content_length(&parts.headers).is_some_and(|n| n > max) {
        return too_large(max);
    }
    // 3. Auth. The body is only read for authenticated callers.
    let principal = match app.authenticate(&parts.headers, fields).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    // 4. Content-Type.
    if !checks::is_json_content_type(&parts.headers) {
        return plain_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
        );
    }
    // 5. Accept.
    let accept = Accept::from_headers(&parts.headers);
    if !accept.json && !accept.sse {
        return plain_error(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must allow application/json or text/event-stream",
        );
    }
    // The body cap also holds for chunked bodies, enforced while they stream in.
    let collected = tokio::time::timeout(
        app.config.body_timeout,
        Limited::new(body, max as usize).collect(),
    )
    .await;
    let bytes: Bytes = match collected {
        Err(_) => {
            return plain_error(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout: the body was not received in time",
            )
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(max),
        Ok(Err(_)) => {
            return plain_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: the body could not be read",
            )
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    // 6. JSON.
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return request_error(&RequestError::Parse(e.to_string()), false, None, fields),
    };
    let post = Post {
        app: app.clone(),
        parts: &parts,
        principal,
        accept,
    };
    match value {
        Value::Array(items) => batch(&post, items, fields).await,
        value => single(&post, value, fields).await,
    }
}

fn too_large(max: u64) -> Response<Body> {
    plain_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Payload Too Large: the body limit is {max} bytes"),
    )
}

/// A transport-level error: a JSON-RPC error object with no id.
fn plain_error(status: StatusCode, message: &str) -> Response<Body> {
    let code = crate::jsonrpc::ErrorCode::INVALID_REQUEST;
    super::rpc_error_response(status, None, &jsonrpc::ErrorObject::new(code, message))
}

/// The `_meta` protocol-version claim that marks a 2026-07-28 message.
fn claimed_version(value: &Value) -> Option<&Value> {
    value
        .get("params")?
        .get("_meta")?
        .get(META_PROTOCOL_VERSION)
}

fn header_says_modern(parts: &Parts) -> bool {
    parts
        .headers
        .get(PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == Version::V2026_07_28.as_str())
}

async fn single(post: &Post<'_>, value: Value, fields: &mut LogFields) -> Response<Body> {
    let claim = claimed_version(&value).cloned();
    let salvaged = jsonrpc::salvage_id(&value);
    let modern = claim.is_some() || header_says_modern(post.parts);
    // 7. JSON-RPC shape.
    let msg = match Message::from_value(value) {
        Ok(m) => m,
        Err(e) => {
            return request_error(
                &RequestError::InvalidRequest(e.to_string()),
                modern,
                salvaged.as_ref(),
                fields,
            )
        }
    };
    fields.rpc = msg.method().map(str::to_owned);
    // 8. Era.
    match claim {
        Some(claim) => modern_message(post, claim, msg, fields).await,
        None if modern => {
            let err = RequestError::MissingMeta(format!(
                "MCP-Protocol-Version is 2026-07-28 but params._meta lacks {META_PROTOCOL_VERSION}"
            ));
            request_error(&err, true, salvaged.as_ref(), fields)
        }
        None => legacy_message(post, msg, fields).await,
    }
}

async fn modern_message(
    post: &Post<'_>,
    claim: Value,
    msg: Message,
    fields: &mut LogFields,
) -> Response<Body> {
    let (id, method, params) = match msg {
        Message::Request { id, method, params } => (id, method, params),
        // Notifications and responses carry nothing to answer at this revision, but the
        // version header must still agree with the body (C10 covers every POST).
        Message::Notification { .. } | Message::Response { .. } => {
            let claimed = claim.as_str().unwrap_or("");
            if let Err(why) = mcp_headers::check_version_header(&post.parts.headers, claimed) {
                return request_error(&RequestError::HeaderMismatch(why), true, None, fields);
            }
            return empty(StatusCode::ACCEPTED);
        }
    };
    let fail = |e: RequestError, fields: &mut LogFields| request_error(&e, true, Some(&id), fields);
    // Order (spec-checklist B1, C10, B2, C11): _meta fields present (-32602), header equals the
    // claim (-32020), version served (-32022), then Mcp-Method / Mcp-Name (-32020).
    let Some(claimed) = claim.as_str() else {
        return fail(
            RequestError::MissingMeta(format!("_meta {META_PROTOCOL_VERSION} must be a string")),
            fields,
        );
    };
    let caps = match params
        .get("_meta")
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
    {
        Some(c @ Value::Object(_)) => Arc::new(c.clone()),
        _ => {
            return fail(
                RequestError::MissingMeta(format!(
                    "params._meta must carry {META_CLIENT_CAPABILITIES} (an object)"
                )),
                fields,
            )
        }
    };
    if let Err(why) = mcp_headers::check_version_header(&post.parts.headers, claimed) {
        return fail(RequestError::HeaderMismatch(why), fields);
    }
    if Version::parse(claimed) != Some(Version::V2026_07_28) {
        return fail(RequestError::UnsupportedVersion(claimed.to_owned()), fields);
    }
    if let Err(why) = mcp_headers::check_method_headers(&post.parts.headers, &method, &params) {
        return fail(RequestError::HeaderMismatch(why), fields);
    }
    if method == "tools/call" {
        let tool = params
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| post.app.core.tool(n));
        // No arguments means none is present: a stray Mcp-Param header is then a mismatch.
        let no_args = serde_json::Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => Some(&no_args),
            Some(v) => v.as_object(),
        };
        if let (Some(tool), Some(args)) = (tool, args) {
            if let Err(why) =
                mcp_headers::check_param_headers(&post.parts.headers, tool.schema(), args)
            {
                return fail(RequestError::HeaderMismatch(why), fields);
            }
        }
    }
    let facts = RequestFacts {
        version: Version::V2026_07_28,
        principal: &post.principal,
        client_capabilities: &caps,
        now: unix_now(),
    };
    let outcome = post.app.core.handle_request(facts, &method, &params);
    match outcome {
        Err(e) => fail(e, fields),
        Ok(Outcome::Result(result)) => {
            json_value(StatusCode::OK, &jsonrpc::result_response(&id, result))
        }
        Ok(Outcome::Run(pending)) => {
            fields.tool = Some(pending.label());
            call::run(post, id, Version::V2026_07_28, pending, caps, None, fields).await
        }
        Ok(Outcome::Listen(filter)) => stream::listen(post, id, filter),
        // Not produced for the modern revision; answered as unknown methods would be.
        Ok(Outcome::Initialize { .. } | Outcome::SetLogLevel(_) | Outcome::Subscribe(..)) => {
            fail(RequestError::MethodNotFound(method), fields)
        }
    }
}

pub(super) fn owner(principal: &Principal) -> Owner {
    Owner {
        issuer: principal.issuer.clone(),
        subject: principal.subject.clone().unwrap_or_default(),
    }
}

/// Reads `MCP-Protocol-Version` in the initialize era: absent is fine, unknown or repeated is 400.
fn legacy_header_version(parts: &Parts) -> Result<Option<Version>, RequestError> {
    match mcp_headers::single(&parts.headers, PROTOCOL_VERSION) {
        Err(e) => Err(RequestError::UnsupportedVersionHeader(e)),
        Ok(None) => Ok(None),
        Ok(Some(v)) => match Version::parse(v) {
            Some(version) => Ok(Some(version)),
            None => Err(RequestError::UnsupportedVersionHeader(v.to_owned())),
        },
    }
}

/// Finds the caller's session from `Mcp-Session-Id`.
pub(super) fn find_session(
    app: &App,
    parts: &Parts,
    principal: &Principal,
) -> Result<Arc<Session>, RequestError> {
    let id = match mcp_headers::single(&parts.headers, SESSION_ID) {
        Ok(Some(id)) if !id.is_empty() => id,
        Ok(_) => return Err(RequestError::SessionRequired),
        Err(_) => return Err(RequestError::SessionNotFound),
    };
    app.sessions
        .get(id, &owner(principal), Instant::now())
        .ok_or(RequestError::SessionNotFound)
}

pub(super) fn with_session_header(mut resp: Response<Body>, session: &Session) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(session.id()) {
        resp.headers_mut().insert(SESSION_ID, v);
    }
    resp
}

async fn legacy_message(post: &Post<'_>, msg: Message, fields: &mut LogFields) -> Response<Body> {
    let id = match &msg {
        Message::Request { id, .. } => Some(id.clone()),
        _ => None,
    };
    // initialize itself is not judged by the header: its body carries the version to negotiate (D7, B10).
    if let Message::Request { id, method, params } = &msg {
        if method == "initialize" {
            return initialize(post, id, params, fields);
        }
    }
    if let Err(e) = legacy_header_version(post.parts) {
        return request_error(&e, false, id.as_ref(), fields);
    }
    let session = match find_session(&post.app, post.parts, &post.principal) {
        Ok(s) => s,
        Err(e) => return request_error(&e, false, id.as_ref(), fields),
    };
    let resp = match msg {
        Message::Notification { method, params } => {
            if let NotificationAction::Cancel(target) =
                post.app.core.handle_notification(&method, &params)
            {
                session.cancel(&target);
            }
            empty(StatusCode::ACCEPTED)
        }
        Message::Response { id, outcome } => {
            // The answer to a server-to-client request made on a call's SSE stream.
            if !session.client_requests().resolve(&id, outcome) {
                fields.detail = Some(format!("response to unknown request id {id}"));
            }
            empty(StatusCode::ACCEPTED)
        }
        Message::Request { id, method, params } => {
            legacy_request(post, &session, id, &method, &params, fields).await
        }
    };
    with_session_header(resp, &session)
}

fn initialize(
    post: &Post<'_>,
    id: &Id,
    params: &Map<String, Value>,
    fields: &mut LogFields,
) -> Response<Body> {
    // A second initialize on a live session of this caller is refused (B13); a stale id is ignored.
    if let Ok(existing) = find_session(&post.app, post.parts, &post.principal) {
        let err = RequestError::InvalidRequest(format!(
            "session {} is already initialized",
            existing.id()
        ));
        return request_error(&err, false, Some(id), fields);
    }
    let no_caps = Value::Null;
    let facts = RequestFacts {
        version: DEFAULT_LEGACY,
        principal: &post.principal,
        client_capabilities: &no_caps,
        now: unix_now(),
    };
    let outcome = post.app.core.handle_request(facts, "initialize", params);
    let Ok(Outcome::Initialize {
        version,
        client_capabilities,
        result,
    }) = outcome
    else {
        return request_error(&RequestError::Internal, false, Some(id), fields);
    };
    let created = post.app.sessions.create(
        owner(&post.principal),
        version,
        client_capabilities,
        Instant::now(),
    );
    match created {
        Ok(session) => {
            fields.detail = Some(format!("version={version}"));
            with_session_header(
                json_value(StatusCode::OK, &jsonrpc::result_response(id, result)),
                &session,
            )
        }
        Err(_) => request_error(&RequestError::TooManySessions, false, Some(id), fields),
    }
}

async fn legacy_request(
    post: &Post<'_>,
    session: &Arc<Session>,
    id: Id,
    method: &str,
    params: &Map<String, Value>,
    fields: &mut LogFields,
) -> Response<Body> {
    let version = session.version();
    let outcome = post
        .app
        .core
        .handle_request(session_facts(post, session), method, params);
    match outcome.map(|o| settle(session, o)) {
        Err(e) | Ok(Settled::Reply(Err(e))) => request_error(&e, false, Some(&id), fields),
        Ok(Settled::Reply(Ok(result))) => {
            json_value(StatusCode::OK, &jsonrpc::result_response(&id, result))
        }
        Ok(Settled::Run(pending)) => {
            fields.tool = Some(pending.label());
            let caps = session.client_capabilities().clone();
            call::run(
                post,
                id,
                version,
                pending,
                caps,
                Some(session.clone()),
                fields,
            )
            .await
        }
    }
}

/// The facts of a request served inside `session`.
fn session_facts<'a>(post: &'a Post<'_>, session: &'a Session) -> RequestFacts<'a> {
    RequestFacts {
        version: session.version(),
        principal: &post.principal,
        client_capabilities: session.client_capabilities(),
        now: unix_now(),
    }
}

/// An initialize-era outcome once applied to the session.
enum Settled {
    /// Send this result or error.
    Reply(Result<Value, RequestError>),
    /// Run this handler.
    Run(Pending),
}

/// Applies an initialize-era outcome to the session.
fn settle(session: &Session, outcome: Outcome) -> Settled {
    match outcome {
        Outcome::Result(r) => Settled::Reply(Ok(r)),
        Outcome::SetLogLevel(level) => {
            session.set_log_level(level);
            Settled::Reply(Ok(json!({})))
        }
        Outcome::Subscribe(uri, on) => {
            session.set_subscribed(&uri, on);
            Settled::Reply(Ok(json!({})))
        }
        Outcome::Run(pending) => Settled::Run(pending),
        // initialize is handled before sessions exist, and listen is 2026-07-28 only.
        Outcome::Initialize { .. } | Outcome::Listen(_) => {
            Settled::Reply(Err(RequestError::Internal))
        }
    }
}

/// A JSON-RPC batch: legacy only, and only in a 2025-03-26 session.
async fn batch(post: &Post<'_>, items: Vec<Value>, fields: &mut LogFields) -> Response<Body> {
    fields.rpc = Some("batch".into());
    let refuse = |why: &str, fields: &mut LogFields| {
        request_error(
            &RequestError::InvalidRequest(why.to_owned()),
            false,
            None,
            fields,
        )
    };
    if items.is_empty() {
        return refuse("an empty batch", fields);
    }
    if header_says_modern(post.parts) || items.iter().any(|i| claimed_version(i).is_some()) {
        return refuse(
            "batches are not allowed in protocol version 2026-07-28",
            fields,
        );
    }
    if items
        .iter()
        .any(|i| i.get("method").and_then(Value::as_str) == Some("initialize"))
    {
        return refuse("initialize must not be part of a batch", fields);
    }
    if let Err(e) = legacy_header_version(post.parts) {
        return request_error(&e, false, None, fields);
    }
    let session = match find_session(&post.app, post.parts, &post.principal) {
        Ok(s) => s,
        Err(e) => return request_error(&e, false, None, fields),
    };
    if session.version() != Version::V2025_03_26 {
        return with_session_header(
            refuse(
                "batches are accepted only in protocol version 2025-03-26 sessions",
                fields,
            ),
            &session,
        );
    }
    let mut responses = Vec::new();
    for item in items {
        let salvaged = jsonrpc::salvage_id(&item);
        match Message::from_value(item) {
            Err(e) => {
                let (_, obj) = RequestError::InvalidRequest(e.to_string()).to_wire(false);
                responses.push(jsonrpc::error_response(salvaged.as_ref(), &obj));
            }
            Ok(Message::Notification { method, params }) => {
                if let NotificationAction::Cancel(target) =
                    post.app.core.handle_notification(&method, &params)
                {
                    session.cancel(&target);
                }
            }
            Ok(Message::Response { .. }) => {}
            Ok(Message::Request { id, method, params }) => {
                let version = session.version();
                let outcome =
                    post.app
                        .core
                        .handle_request(session_facts(post, &session), &method, &params);
                let response = match outcome.map(|o| settle(&session, o)) {
                    Err(e) | Ok(Settled::Reply(Err(e))) => {
                        jsonrpc::error_response(Some(&id), &e.to_wire(false).1)
                    }
                    Ok(Settled::Reply(Ok(r))) => jsonrpc::result_response(&id, r),
                    Ok(Settled::Run(pending)) => {
                        let caps = session.client_capabilities().clone();
                        call::run_to_value(post, &id, version, pending, caps, Some(session.clone()))
                            .await
                    }
                };
                responses.push(response);
            }
        }
    }
    let resp = if responses.is_empty() {
        empty(StatusCode::ACCEPTED)
    } else {
        json_value(StatusCode::OK, &Value::Array(responses))
    };
    with_session_header(resp, &session)
}
