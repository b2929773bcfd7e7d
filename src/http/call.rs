//! Running a handler (tool call, prompt, resource read): scope check, the handler on its own task,
//! then a JSON reply or an SSE stream of its messages followed by the result.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::post::{with_session_header, Post};
use super::{json_value, App, Body, LogFields};
use crate::auth::Principal;
use crate::events::StreamHandle;
use crate::jsonrpc::{self, Id};
use crate::log;
use crate::mcp::context::{CancelOnDrop, CancelToken, RequestContext};
use crate::mcp::version::Version;
use crate::mcp::{HandlerOutput, Pending, RequestError, RequestFacts};
use crate::session::Session;
use crate::sse;

/// Room for handler messages not yet written to the client; a slow client slows the handler.
const OUTBOX_CAPACITY: usize = 32;

type Joined = Result<HandlerOutput, tokio::task::JoinError>;

/// Forgets an in-flight request when the call ends, however it ends.
struct Tracked(Option<(Arc<Session>, Id)>);

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some((s, id)) = self.0.take() {
            s.untrack(&id);
        }
    }
}

/// A running handler and what is needed to answer it, owned so it can move into a streaming task.
struct Running {
    app: Arc<App>,
    id: Id,
    version: Version,
    pending: Pending,
    principal: Arc<Principal>,
    caps: Arc<Value>,
    handle: JoinHandle<HandlerOutput>,
    cancel: CancelToken,
    /// Fired by the handler's `close_sse_stream()`.
    close: CancelToken,
    _tracked: Tracked,
}

impl Running {
    fn start(
        post: &Post<'_>,
        id: &Id,
        version: Version,
        pending: Pending,
        caps: Arc<Value>,
        session: Option<&Arc<Session>>,
        outbox: Option<mpsc::Sender<Value>>,
    ) -> Self {
        let cancel = CancelToken::new();
        let tracked = Tracked(session.map(|s| {
            s.track(id.clone(), cancel.clone());
            (s.clone(), id.clone())
        }));
        let log_level = pending
            .log_level
            .or_else(|| session.and_then(|s| s.log_level()));
        let ctx = RequestContext::new(post.principal.clone(), cancel.clone(), caps.clone())
            .with_outbox(outbox)
            .with_reporting(pending.progress_token.clone(), log_level)
            .with_client_requests(session.map(|s| s.client_requests().clone()));
        let close = ctx.close_stream_signal().clone();
        let handle = tokio::spawn(pending.start(ctx));
        Self {
            app: post.app.clone(),
            id: id.clone(),
            version,
            pending,
            principal: post.principal.clone(),
            caps,
            handle,
            cancel,
            close,
            _tracked: tracked,
        }
    }

    /// Waits for the handler. Server shutdown lets it finish within the grace period; only
    /// when that runs out are the remaining calls cancelled (see `Server::serve`).
    async fn join(&mut self) -> Joined {
        (&mut self.handle).await
    }

    /// The JSON-RPC response for the finished handler (a panic becomes -32603 and a log line),
    /// with the HTTP status it gets when sent as a whole JSON reply.
    fn response(&self, joined: Joined) -> (StatusCode, Value) {
        let output = joined.map_err(|e| {
            if e.is_panic() {
                log::error(format_args!(
                    "handler for {} panicked; answered -32603",
                    self.pending.label()
                ));
            }
        });
        let facts = RequestFacts {
            version: self.version,
            principal: &self.principal,
            client_capabilities: &self.caps,
            now: super::unix_now(),
        };
        match self.app.core.finish(facts, &self.pending, output) {
            Ok(result) => (StatusCode::OK, jsonrpc::result_response(&self.id, result)),
            Err(e) => {
                let (status, obj) = e.to_wire(self.version.is_modern());
                (status, jsonrpc::error_response(Some(&self.id), &obj))
            }
        }
    }
}

/// Runs a handler without streaming and returns its JSON-RPC response (batches).
pub(super) async fn run_to_value(
    post: &Post<'_>,
    id: &Id,
    version: Version,
    pending: Pending,
    caps: Arc<Value>,
    session: Option<Arc<Session>>,
) -> Value {
    let scopes = pending.tool().map_or(&[][..], |t| t.scopes());
    if post.app.scope_rejection(&post.principal, scopes).is_some() {
        // Inside a batch there is no per-message HTTP status, so a 403 cannot be expressed.
        let err =
            RequestError::InvalidParams("the token lacks a scope this tool requires".into(), None);
        return jsonrpc::error_response(Some(id), &err.to_wire(false).1);
    }
    let mut running = Running::start(post, id, version, pending, caps, session.as_ref(), None);
    let joined = running.join().await;
    running.response(joined).1
}

enum First {
    Message(Value),
    Close,
    Done(Joined),
    Silent,
}

/// Runs a handler: JSON when it sends nothing first (or SSE is not accepted), else an SSE stream.
pub(super) async fn run(
    post: &Post<'_>,
    id: Id,
    version: Version,
    pending: Pending,
    caps: Arc<Value>,
    session: Option<Arc<Session>>,
    fields: &mut LogFields,
) -> Response<Body> {
    let scopes = pending.tool().map_or(&[][..], |t| t.scopes());
    if let Some(resp) = post.app.scope_rejection(&post.principal, scopes) {
        fields.detail = Some("insufficient scope for tool".into());
        return resp;
    }
    let (tx, mut rx) = if post.accept.sse {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let mut running = Running::start(post, &id, version, pending, caps, session.as_ref(), tx);
    // At 2026-07-28 a client that goes away has cancelled (C9); earlier, a disconnect is not a cancellation (D9).
    let mut on_drop = CancelOnDrop(version.is_modern().then(|| running.cancel.clone()));
    let first = match rx.as_mut() {
        None => First::Silent,
        // Messages win ties: if the handler spoke at all, the client sees it.
        Some(rx) => {
            let close = running.close.clone();
            tokio::select! {
                biased;
                msg = rx.recv() => msg.map_or(First::Silent, First::Message),
                joined = &mut running.handle => First::Done(joined),
                // Asking to close the stream needs a stream: a session's call switches to SSE.
                _ = close.cancelled(), if session.is_some() => First::Close,
            }
        }
    };
    let first = match first {
        First::Message(m) => Some(m),
        First::Close => None,
        First::Done(joined) => {
            return finish_json(&running, joined, &mut on_drop, session.as_ref())
        }
        First::Silent => {
            let joined = running.join().await;
            return finish_json(&running, joined, &mut on_drop, session.as_ref());
        }
    };
    on_drop.0 = None;
    // The handler spoke before finishing: switch to SSE, its messages first, then the result.
    // In a session the stream is recorded, so a client that loses it can resume it.
    let (btx, brx) = mpsc::channel::<Bytes>(OUTBOX_CAPACITY);
    let sink = match &session {
        Some(s) => Sink::Logged {
            stream: s.events().open(Some(btx)),
            prime: s.primes_streams(),
        },
        None => Sink::Direct(btx),
    };
    let keepalive = post.app.config.sse_keepalive;
    let rx = rx.expect("a first message came from the outbox");
    tokio::spawn(forward(running, first, rx, sink, keepalive));
    let resp = super::body::sse_response(brx);
    match &session {
        Some(s) => with_session_header(resp, s),
        None => resp,
    }
}

fn finish_json(
    running: &Running,
    joined: Joined,
    on_drop: &mut CancelOnDrop,
    session: Option<&Arc<Session>>,
) -> Response<Body> {
    on_drop.0 = None;
    let (status, body) = running.response(joined);
    let resp = json_value(status, &body);
    match session {
        Some(s) => with_session_header(resp, s),
        None => resp,
    }
}

/// Where a call's SSE events go.
enum Sink {
    /// 2026-07-28: straight to the response; a closed response is a cancellation.
    Direct(mpsc::Sender<Bytes>),
    /// Initialize era: through the session's event log (ids, replay on resume).
    Logged { stream: StreamHandle, prime: bool },
}

impl Sink {
    /// Sends an event; false when the client is gone and nothing is recorded for it.
    async fn send(&self, json: &Value) -> bool {
        match self {
            Self::Direct(tx) => tx.send(sse::event(None, json)).await.is_ok(),
            Self::Logged { stream, .. } => {
                // Recorded even with no connection attached, so a resumed stream gets it.
                stream.send(json).await;
                true
            }
        }
    }

    async fn keepalive(&self) -> bool {
        let frame = Bytes::from_static(sse::KEEPALIVE);
        match self {
            Self::Direct(tx) => tx.send(frame).await.is_ok(),
            Self::Logged { stream, .. } => {
                stream.deliver(frame).await;
                true
            }
        }
    }

    /// Completes when a direct response was closed by the client (never for logged streams).
    async fn closed(&self) {
        match self {
            Self::Direct(tx) => tx.closed().await,
            Self::Logged { .. } => std::future::pending().await,
        }
    }
}

/// How long a client should wait before resuming a stream the server closed.
const RETRY_MS: u64 = 100;

/// Copies handler messages to the SSE stream until the result is written (or, at 2026-07-28,
/// the client leaves, which cancels the call).
async fn forward(
    mut running: Running,
    first: Option<Value>,
    mut rx: mpsc::Receiver<Value>,
    sink: Sink,
    keepalive: Duration,
) {
    let modern = running.version.is_modern();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let mut outbox_open = true;
    let close = running.close.clone();
    // Closing a 2026-07-28 response would cancel the call, so only logged streams honour it.
    let mut close_served = matches!(sink, Sink::Direct(_));
    if let Sink::Logged {
        stream,
        prime: true,
    } = &sink
    {
        stream.prime().await;
    }
    let mut gone = match &first {
        Some(m) => !sink.send(m).await,
        None => false,
    };
    while !gone {
        tokio::select! {
            biased;
            msg = rx.recv(), if outbox_open => match msg {
                Some(m) => gone = !sink.send(&m).await,
                None => outbox_open = false,
            },
            joined = &mut running.handle => {
                // Messages sent just before the handler returned still go first.
                while let Ok(m) = rx.try_recv() {
                    sink.send(&m).await;
                }
                // A cancelled request gets no response (initialize era, spec 2025-11-25
                // utilities/cancellation); otherwise the stream already answered 200 and an
                // error travels as the JSON-RPC error alone.
                if modern || !running.cancel.is_cancelled() {
                    let (_, response) = running.response(joined);
                    sink.send(&response).await;
                }
                if let Sink::Logged { stream, .. } = &sink {
                    stream.finish();
                }
                return;
            }
            _ = sink.closed() => gone = true,
            _ = close.cancelled(), if !close_served => {
                close_served = true;
                if let Sink::Logged { stream, .. } = &sink {
                    stream.detach(RETRY_MS).await;
                }
            }
            _ = tick.tick() => gone = !sink.keepalive().await,
        }
    }
    // The client went away before the result.
    if modern {
        running.cancel.cancel();
    }
}
