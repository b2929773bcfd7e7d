//! The era rules: which revision a message is served at, and every check made before dispatch, in the specified order.
//!
//! 2026-07-28 (stateless): a message whose `params._meta` claims a protocol version. Order
//! (spec-checklist B1, C10, B2, C11): the `_meta` fields are present (-32602), the version header
//! equals the claim (-32020), the version is served (-32022), then `Mcp-Method`, `Mcp-Name` and
//! `Mcp-Param-*` agree with the body (-32020). No batches, no sessions.
//!
//! Initialize era: `initialize` is judged by its body alone (D7, B10); everything else needs a
//! valid `MCP-Protocol-Version` (when sent) and the caller's session. Batches only in 2025-03-26
//! sessions, never with `initialize`.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::Value;

use super::dispatch::{self, Served};
use super::error::{MetaError, NotAllowed, ProtocolError};
use super::headers::{self, PROTOCOL_VERSION, SESSION_ID};
use super::message::{self, Id, Message, ShapeError};
use super::version::Version;
use super::{
    BatchItem, Core, Decision, Facts, Pending, PendingKind, Post, Reply, SessionFact, Step,
    META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION,
};
use crate::json;

fn decided(e: ProtocolError, modern: bool, id: Option<&Id>) -> Step {
    Step::Decided(Decision::Reply(e.reply(modern, id)))
}

/// The `_meta` protocol-version claim that marks a 2026-07-28 message.
fn claimed_version(value: &Value) -> Option<&Value> {
    claimed_version_in(value.get("params")?)
}

/// The claim in a message's `params`.
fn claimed_version_in(params: &Value) -> Option<&Value> {
    params.get("_meta")?.get(META_PROTOCOL_VERSION)
}

fn header_says_modern(headers: &HeaderMap) -> bool {
    headers
        .get(PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == Version::V2026_07_28.as_str())
}

pub(super) fn post(core: &Core, post: Post<'_>, facts: Facts<'_>) -> (Step, Option<&'static str>) {
    let body = match json::parse_body(post.body, post.limits) {
        Ok(b) => b,
        Err(e) => return (decided(ProtocolError::Json(e), false, None), None),
    };
    match body {
        json::Body::Batch(items) => (batch(post.headers, items), Some("batch")),
        json::Body::Object(env) => {
            let rpc = env
                .method
                .as_ref()
                .and_then(Value::as_str)
                .map(method_name)
                .or_else(|| env.id.as_ref().map(|_| "response"));
            (single(core, post.headers, Some(env), facts), rpc)
        }
        json::Body::Scalar => (single(core, post.headers, None, facts), None),
    }
}

/// The method as a static name for the log line; methods this server does not know are `other`
/// (the log must not carry whatever a client chose to send).
fn method_name(method: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "tasks/get",
        "tasks/update",
        "tasks/cancel",
        "tasks/result",
        "tasks/list",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// One message; `None` for a body that is not an object.
fn single(core: &Core, headers: &HeaderMap, env: Option<json::Envelope>, facts: Facts<'_>) -> Step {
    let Some(env) = env else {
        let modern = header_says_modern(headers);
        return decided(ProtocolError::Shape(ShapeError::NotAnObject), modern, None);
    };
    // Only a short string is copied out; the message itself is moved, never cloned.
    let claim = env
        .params
        .as_ref()
        .and_then(claimed_version_in)
        .map(|c| c.as_str().map(str::to_owned));
    let salvaged = env.id.as_ref().and_then(Id::from_value);
    let modern = claim.is_some() || header_says_modern(headers);
    let msg = match Message::from_envelope(env) {
        Ok(m) => m,
        Err(e) => return decided(ProtocolError::Shape(e), modern, salvaged.as_ref()),
    };
    match claim {
        Some(claim) => Step::Decided(modern_message(core, headers, claim, msg, facts)),
        None if modern => decided(
            ProtocolError::MissingMeta(MetaError::NoVersionClaim),
            true,
            salvaged.as_ref(),
        ),
        None => legacy_message(core, headers, msg),
    }
}

fn modern_message(
    core: &Core,
    headers: &HeaderMap,
    claim: Option<String>,
    msg: Message,
    facts: Facts<'_>,
) -> Decision {
    let (id, method, mut params) = match msg {
        Message::Request { id, method, params } => (id, method, params),
        // Notifications and responses carry nothing to answer at this revision, but the
        // version header must still agree with the body (C10 covers every POST).
        Message::Notification { .. } | Message::Response { .. } => {
            let claimed = claim.as_deref().unwrap_or("");
            return Decision::Reply(match headers::check_version_header(headers, claimed) {
                Ok(()) => Reply::accepted(),
                Err(e) => ProtocolError::HeaderMismatch(e).reply(true, None),
            });
        }
    };
    let fail = |e: ProtocolError| Decision::Reply(e.reply(true, Some(&id)));
    let Some(claimed) = claim else {
        return fail(ProtocolError::MissingMeta(MetaError::VersionNotString));
    };
    let caps = match params
        .get_mut("_meta")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(META_CLIENT_CAPABILITIES))
    {
        Some(c @ Value::Object(_)) => Arc::new(c),
        _ => return fail(ProtocolError::MissingMeta(MetaError::NoClientCapabilities)),
    };
    if let Err(e) = headers::check_version_header(headers, &claimed) {
        return fail(ProtocolError::HeaderMismatch(e));
    }
    if Version::parse(&claimed) != Some(Version::V2026_07_28) {
        return fail(ProtocolError::UnsupportedVersion(claimed));
    }
    if let Err(e) = headers::check_method_headers(headers, &method, &params) {
        return fail(ProtocolError::HeaderMismatch(e));
    }
    let served = Served {
        version: Version::V2026_07_28,
        client_capabilities: caps,
        session_log_level: None,
        param_headers: Some(headers),
        facts,
    };
    dispatch::request(core, &served, id, method, params)
}

/// Reads `MCP-Protocol-Version` in the initialize era: absent is fine, unknown or repeated is 400.
fn legacy_header_version(headers: &HeaderMap) -> Result<Option<Version>, ProtocolError> {
    match headers::single(headers, &PROTOCOL_VERSION) {
        Err(e) => Err(ProtocolError::UnsupportedVersionHeader(e.to_string())),
        Ok(None) => Ok(None),
        Ok(Some(v)) => Version::parse(v)
            .map(Some)
            .ok_or_else(|| ProtocolError::UnsupportedVersionHeader(v.to_owned())),
    }
}

/// The `Mcp-Session-Id` of an initialize-era request: absent or empty is "none", repeated is unknown.
fn session_id(headers: &HeaderMap) -> Result<Option<&str>, ProtocolError> {
    match headers::single(headers, &SESSION_ID) {
        Ok(Some(id)) if !id.is_empty() => Ok(Some(id)),
        Ok(_) => Ok(None),
        Err(_) => Err(ProtocolError::SessionNotFound),
    }
}

fn legacy_message(core: &Core, headers: &HeaderMap, msg: Message) -> Step {
    let id = match &msg {
        Message::Request { id, .. } => Some(id.clone()),
        _ => None,
    };
    let is_initialize = matches!(&msg, Message::Request { method, .. } if method == "initialize");
    if is_initialize {
        // A second initialize on a live session of this caller is refused (B13); the header is
        // only looked at to find out, so a stale or malformed one is ignored.
        return match session_id(headers) {
            Ok(Some(sid)) => {
                Step::NeedSession(Some(sid.to_owned()), Pending(PendingKind::Single(msg)))
            }
            _ => Step::Decided(initialize(core, msg)),
        };
    }
    if let Err(e) = legacy_header_version(headers) {
        return decided(e, false, id.as_ref());
    }
    match session_id(headers) {
        Ok(Some(sid)) => Step::NeedSession(Some(sid.to_owned()), Pending(PendingKind::Single(msg))),
        Ok(None) => decided(ProtocolError::SessionRequired, false, id.as_ref()),
        Err(e) => decided(e, false, id.as_ref()),
    }
}

fn initialize(core: &Core, msg: Message) -> Decision {
    let Message::Request { id, params, .. } = msg else {
        unreachable!("only requests named initialize get here")
    };
    dispatch::initialize(core, &id, params)
}

/// A JSON-RPC batch: initialize era only, and only in a 2025-03-26 session.
fn batch(headers: &HeaderMap, items: Vec<Value>) -> Step {
    let refuse = |why| decided(ProtocolError::NotAllowed(why), false, None);
    if items.is_empty() {
        return refuse(NotAllowed::EmptyBatch);
    }
    if header_says_modern(headers) || items.iter().any(|i| claimed_version(i).is_some()) {
        return refuse(NotAllowed::BatchAtModern);
    }
    if items
        .iter()
        .any(|i| i.get("method").and_then(Value::as_str) == Some("initialize"))
    {
        return refuse(NotAllowed::InitializeInBatch);
    }
    if let Err(e) = legacy_header_version(headers) {
        return decided(e, false, None);
    }
    match session_id(headers) {
        Ok(Some(sid)) => {
            Step::NeedSession(Some(sid.to_owned()), Pending(PendingKind::Batch(items)))
        }
        Ok(None) => decided(ProtocolError::SessionRequired, false, None),
        Err(e) => decided(e, false, None),
    }
}

/// The error for a message whose session lookup found no usable session.
fn missing_session(session: &SessionFact) -> ProtocolError {
    match session {
        SessionFact::Absent => ProtocolError::SessionRequired,
        SessionFact::Unavailable => ProtocolError::SessionStoreUnavailable,
        SessionFact::Unknown | SessionFact::Live(_) => ProtocolError::SessionNotFound,
    }
}

pub(super) fn with_session(
    core: &Core,
    pending: Pending,
    session: SessionFact,
    facts: Facts<'_>,
) -> Decision {
    match pending.0 {
        PendingKind::Single(msg) => single_in_session(core, msg, session, facts),
        PendingKind::Batch(items) => batch_in_session(core, items, session, facts),
    }
}

fn single_in_session(
    core: &Core,
    msg: Message,
    session: SessionFact,
    facts: Facts<'_>,
) -> Decision {
    let is_initialize = matches!(&msg, Message::Request { method, .. } if method == "initialize");
    let live = match session {
        SessionFact::Live(s) => s,
        other if is_initialize && !matches!(other, SessionFact::Unavailable) => {
            return initialize(core, msg)
        }
        other => {
            let id = match &msg {
                Message::Request { id, .. } => Some(id),
                _ => None,
            };
            return Decision::Reply(missing_session(&other).reply(false, id));
        }
    };
    match msg {
        Message::Request { id, .. } if is_initialize => Decision::Reply(
            ProtocolError::NotAllowed(NotAllowed::AlreadyInitialized).reply(false, Some(&id)),
        ),
        Message::Notification { method, params } => {
            match dispatch::notification(&method, &params) {
                Some(target) => Decision::Cancel(target),
                None => Decision::Reply(Reply::accepted()),
            }
        }
        Message::Response { id, outcome } => Decision::Answer(id, outcome),
        Message::Request { id, method, params } => {
            let served = Served::session(&live, facts);
            dispatch::request(core, &served, id, method, params)
        }
    }
}

fn batch_in_session(
    core: &Core,
    items: Vec<Value>,
    session: SessionFact,
    facts: Facts<'_>,
) -> Decision {
    let live = match session {
        SessionFact::Live(s) => s,
        other => return Decision::Reply(missing_session(&other).reply(false, None)),
    };
    if live.version != Version::V2025_03_26 {
        return Decision::Reply(
            ProtocolError::NotAllowed(NotAllowed::BatchOutsideV2025_03_26).reply(false, None),
        );
    }
    let served = Served::session(&live, facts);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let salvaged = message::salvage_id(&item);
        match Message::from_value(item) {
            Err(e) => out.push(BatchItem::Reply(
                ProtocolError::Shape(e).batch_item(salvaged.as_ref()),
            )),
            Ok(Message::Notification { method, params }) => {
                if let Some(target) = dispatch::notification(&method, &params) {
                    out.push(BatchItem::Cancel(target));
                }
            }
            Ok(Message::Response { id, outcome }) => out.push(BatchItem::Answer(id, outcome)),
            Ok(Message::Request { id, method, params }) => {
                let decision = dispatch::request(core, &served, id.clone(), method, params);
                out.push(match decision {
                    Decision::Reply(r) => BatchItem::Reply(r.body.to_vec()),
                    Decision::Run(run) => BatchItem::Run(run),
                    Decision::Update(u, r) => BatchItem::Update(u, r.body.to_vec()),
                    // Inside a batch there is no per-message HTTP status, so a 403 cannot be expressed.
                    Decision::InsufficientScope { .. } => BatchItem::Reply(
                        ProtocolError::InvalidParams(
                            "the token lacks a scope this tool requires".into(),
                            None,
                        )
                        .batch_item(Some(&id)),
                    ),
                    Decision::StepUp { .. } => BatchItem::Reply(
                        ProtocolError::InvalidParams(
                            "the token's login does not meet this tool's step-up policy".into(),
                            None,
                        )
                        .batch_item(Some(&id)),
                    ),
                    // Not produced for initialize-era requests; answered as an internal fault.
                    _ => BatchItem::Reply(ProtocolError::Internal.batch_item(Some(&id))),
                });
            }
        }
    }
    Decision::Batch(out)
}

/// GET and DELETE: the stateless revision has neither (405), and a sent version header must be one we serve.
pub(super) fn stream_preconditions(headers: &HeaderMap) -> Result<(), ProtocolError> {
    if header_says_modern(headers) {
        return Err(ProtocolError::Stateless);
    }
    legacy_header_version(headers).map(|_| ())
}

/// The session a GET or DELETE acts on.
pub(super) fn required_session_id(headers: &HeaderMap) -> Result<&str, ProtocolError> {
    session_id(headers)?.ok_or(ProtocolError::SessionRequired)
}
