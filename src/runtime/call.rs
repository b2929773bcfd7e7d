//! Running a handler: polled inline on the request's own task, switched to an SSE stream only when it talks to the client first.
//!
//! A handler that returns without sending anything costs no channel and no spawned task: its
//! future is polled in place, each poll inside `catch_unwind`, so a panic becomes -32603 and a
//! log line. When the client accepts SSE and the call can stream (a progress token, a log level,
//! or a session for server-to-client requests), the handler gets an outbox; its first message
//! turns the response into an SSE stream of its messages followed by the result, and the call
//! moves to a task of its own.
//!
//! Disconnects: at 2026-07-28 a client that goes away has cancelled (C9), so the handler's
//! cancellation signal fires. In the initialize era a disconnect is not a cancellation (D9).
//! Either way the unfinished handler moves to a task of its own and runs to its end, and a
//! session's streamed events stay recorded for resumption.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::context::{CancelToken, RequestContext};
use super::events::{Origin, StreamHandle};
use super::limits::{Limit, Permit};
use super::session::{Live, SessionRecord};
use super::Runtime;
use crate::auth::Principal;
use crate::core::{Facts, HandlerOutput, Reply, Run, Target};
use crate::log;
use crate::ops::OpRecord;
use crate::sources::Now;
use crate::sse;
use crate::tool::BoxFuture;

/// Room for handler messages not yet written to the client; a slow client slows the handler.
const OUTBOX_CAPACITY: usize = 32;
/// How long a client should wait before resuming a stream the server closed.
const RETRY_MS: u64 = 100;

/// Who makes a call and how it may be answered.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// This request's verified principal.
    pub(crate) principal: Arc<Principal>,
    /// The client accepts `text/event-stream`.
    pub(crate) accepts_sse: bool,
    /// The initialize-era session the call runs in.
    pub(crate) session: Option<Arc<SessionRecord>>,
    /// The request's one clock reading.
    pub(crate) now: Now,
    /// The request's id, for the handler's own logs.
    pub(crate) request_id: Option<http::HeaderValue>,
    /// The W3C trace context the handler runs under (`_meta`, else the header).
    pub(crate) trace: Option<crate::ops::request::TraceContext>,
}

/// How the shell answers a call.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// One JSON reply.
    Reply(Reply),
    /// One JSON reply to a run whose end was recorded at this clock reading (for the log line).
    Finished(Reply, Now),
    /// An SSE stream; the frames arrive on this channel.
    Stream(mpsc::Receiver<Bytes>),
}

/// Polls a future inside `catch_unwind`: a panic ends it with `Err(())`.
pub(super) struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// A started handler: its own boxed future, mapped to a [`HandlerOutput`] without another box.
pub(super) enum HandlerFuture {
    Tool(BoxFuture<crate::tool::ToolResult>),
    Prompt(BoxFuture<crate::prompt::PromptResult>),
    Read(BoxFuture<crate::resource::ReadResult>),
    Ready(Option<HandlerOutput>),
}

impl Future for HandlerFuture {
    type Output = HandlerOutput;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HandlerOutput> {
        match &mut *self {
            Self::Tool(f) => f.as_mut().poll(cx).map(HandlerOutput::Tool),
            Self::Prompt(f) => f.as_mut().poll(cx).map(HandlerOutput::Prompt),
            Self::Read(f) => f.as_mut().poll(cx).map(HandlerOutput::Read),
            Self::Ready(o) => Poll::Ready(o.take().expect("a ready handler is polled once")),
        }
    }
}

pub(super) type Handler = CatchUnwind<HandlerFuture>;

/// A handler in flight and what is needed to answer it. Dropped unfinished (the client went
/// away, or the server gave up), it cancels the call or lets it finish on its own task.
struct Running {
    rt: Arc<Runtime>,
    run: Box<Run>,
    call: Call,
    handler: Option<Handler>,
    cancel: CancelToken,
    live: Option<Arc<Live>>,
    /// The principal's in-flight slot, held until the handler ends.
    permit: Option<Permit>,
    /// Reports the run's end to metrics and the audit log (dropped unfinished: cancelled).
    record: Option<OpRecord>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(handler) = self.handler.take() {
            // Unfinished: at 2026-07-28 the client has cancelled; either way the handler finishes
            // on a task of its own, so it can see the signal and clean up (its result has no
            // one left to go to).
            if self.run.version.is_modern() {
                self.cancel.cancel();
            }
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let live = self.live.take();
                let permit = self.permit.take();
                let id = self.run.id.clone();
                rt.spawn(async move {
                    let _ = handler.await;
                    if let Some(l) = live {
                        l.untrack(&id);
                    }
                    drop(permit);
                });
                return;
            }
        }
        if let Some(l) = &self.live {
            l.untrack(&self.run.id);
        }
    }
}

impl Running {
    /// Polls the handler until it finishes.
    async fn join(&mut self) -> HandlerOutput {
        let handler = self.handler.as_mut().expect("joined once");
        let out = handler.await;
        self.handler = None;
        self.output(out)
    }

    fn output(&self, out: Result<HandlerOutput, ()>) -> HandlerOutput {
        out.unwrap_or_else(|()| {
            log::error(format_args!(
                "handler for {} {} panicked; answered -32603",
                self.run.method(),
                self.rt.label(&self.run.target)
            ));
            HandlerOutput::Panicked
        })
    }

    fn reply(&mut self, output: HandlerOutput) -> Reply {
        self.finish(output).0
    }

    /// The reply, and the end of the run when it was recorded.
    fn finish(&mut self, output: HandlerOutput) -> (Reply, Option<Now>) {
        let facts = Facts {
            principal: &self.call.principal,
            now: self.call.now.unix_secs(),
        };
        let reply = self.rt.core.finish(&self.run, output, facts);
        let end = self.record.take().map(|r| r.finish(reply.ending));
        (reply, end)
    }

    fn outcome(&mut self, output: HandlerOutput) -> Outcome {
        match self.finish(output) {
            (reply, Some(end)) => Outcome::Finished(reply, end),
            (reply, None) => Outcome::Reply(reply),
        }
    }
}

enum First {
    Message(Bytes),
    Close,
    Done(Result<HandlerOutput, ()>),
    /// The handler dropped its context but has not finished.
    OutboxClosed,
}

impl Runtime {
    /// A short name for logs: the tool, prompt or URI.
    pub(crate) fn label(&self, target: &Target) -> String {
        let catalog = self.core.catalog();
        match target {
            Target::Tool(i) => catalog.tool_name(*i).to_owned(),
            Target::Prompt(i) => catalog.prompt(*i).name.clone(),
            Target::Resource(i) => catalog.resource(*i).uri.clone(),
            Target::Template(_, uri, _) => uri.clone(),
        }
    }

    /// Calls the handler `run` names; its synchronous part (argument deserialization
    /// included) runs here, inside `catch_unwind`.
    pub(super) fn start(&self, run: &Run, ctx: RequestContext) -> Handler {
        let started = catch_unwind(AssertUnwindSafe(|| match &run.target {
            Target::Tool(i) => match (self.handlers.tools[*i])(ctx, run.arguments()) {
                Ok(fut) => HandlerFuture::Tool(fut),
                Err(e) => HandlerFuture::Ready(Some(HandlerOutput::Tool(Err(e)))),
            },
            Target::Prompt(i) => {
                // Prompt arguments are few short strings; the handler owns its copy.
                let args = run.arguments().as_object().cloned().unwrap_or_default();
                HandlerFuture::Prompt((self.handlers.prompts[*i])(ctx, args))
            }
            Target::Resource(i) => {
                let uri = self.core.catalog().resource(*i).uri.clone();
                HandlerFuture::Read((self.handlers.resources[*i])(ctx, uri))
            }
            Target::Template(i, uri, vars) => HandlerFuture::Read((self.handlers.templates[*i])(
                ctx,
                uri.clone(),
                vars.clone(),
            )),
        }));
        CatchUnwind(started.unwrap_or_else(|_| {
            log::error(format_args!(
                "handler for {} {} panicked; answered -32603",
                run.method(),
                self.label(&run.target)
            ));
            HandlerFuture::Ready(Some(HandlerOutput::Panicked))
        }))
    }

    fn prepare(
        self: &Arc<Self>,
        mut run: Box<Run>,
        call: Call,
        outbox: Option<mpsc::Sender<Bytes>>,
        record: Option<OpRecord>,
    ) -> Result<(Running, Option<CancelToken>), Limit> {
        let permit = match self.limits.call(&call.principal) {
            Ok(p) => p,
            Err(limit) => {
                if let Some(r) = record {
                    let refused = crate::core::ProtocolError::Limit(limit)
                        .reply(run.version.is_modern(), Some(&run.id));
                    r.finish(refused.ending);
                }
                return Err(limit);
            }
        };
        let cancel = CancelToken::new();
        let mut ctx = RequestContext::new(
            call.principal.clone(),
            cancel.clone(),
            run.client_capabilities.clone(),
        )
        .with_outbox(outbox)
        .with_reporting(run.progress_token.clone(), run.log_level)
        .with_round(run.input_responses.take(), run.request_state.take())
        .with_ids(call.request_id.clone(), call.trace.clone());
        let mut close = None;
        let mut live = None;
        if let Some(s) = &call.session {
            let l = s.live(&self.live);
            l.track(run.id.clone(), cancel.clone());
            let c = CancelToken::new();
            ctx = ctx.with_session(l.client_requests().clone(), c.clone());
            close = Some(c);
            live = Some(l);
        }
        let handler = self.start(&run, ctx);
        Ok((
            Running {
                rt: self.clone(),
                run,
                call,
                handler: Some(handler),
                cancel,
                live,
                permit: Some(permit),
                record,
            },
            close,
        ))
    }

    /// Runs a handler without streaming and returns its reply (batch items).
    pub(crate) async fn call_to_reply(
        self: &Arc<Self>,
        run: Box<Run>,
        call: Call,
        record: Option<OpRecord>,
    ) -> Result<Reply, Limit> {
        let (mut running, _) = self.prepare(run, call, None, record)?;
        let out = running.join().await;
        Ok(running.reply(out))
    }

    /// Runs a handler: JSON when it sends nothing first (or SSE is not accepted), else an SSE
    /// stream. Refused when the principal has as many calls in flight as it may.
    pub(crate) async fn call(
        self: &Arc<Self>,
        run: Box<Run>,
        call: Call,
        record: Option<OpRecord>,
    ) -> Result<Outcome, Limit> {
        if run.task != crate::core::tasks::TaskPlan::None {
            // The call slot is held while the request waits; a task, once made, counts against
            // the task caps instead.
            let _permit = self.limits.call(&call.principal)?;
            // Boxed, as the streaming path below: every request's future (and each one that
            // awaits it) would otherwise be as large as the largest path, and is moved whole.
            return Ok(Box::pin(self.call_task(run, call)).await);
        }
        let streamable = call.accepts_sse
            && (run.progress_token.is_some() || run.log_level.is_some() || call.session.is_some());
        if !streamable {
            let (mut running, _) = self.prepare(run, call, None, record)?;
            let out = running.join().await;
            return Ok(running.outcome(out));
        }
        Box::pin(self.call_streamable(run, call, record)).await
    }

    /// A call whose handler may talk to the client first: JSON if it finishes without a word,
    /// else an SSE stream of its messages and then its result.
    async fn call_streamable(
        self: &Arc<Self>,
        run: Box<Run>,
        call: Call,
        record: Option<OpRecord>,
    ) -> Result<Outcome, Limit> {
        let (tx, mut rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (mut running, close) = self.prepare(run, call, Some(tx), record)?;
        let first = {
            let handler = running.handler.as_mut().expect("not started yet");
            let close_wait = async {
                match &close {
                    Some(c) => c.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            // Messages win ties: if the handler spoke at all, the client sees it.
            tokio::select! {
                biased;
                msg = rx.recv() => msg.map_or(First::OutboxClosed, First::Message),
                out = &mut *handler => First::Done(out),
                // Asking to close the stream needs a stream: a session's call switches to SSE.
                () = close_wait => First::Close,
            }
        };
        let mut finished = None;
        let first = match first {
            First::Done(out) => {
                running.handler = None;
                let out = running.output(out);
                match rx.try_recv() {
                    // It spoke and finished within one poll: its messages still go first.
                    Ok(m) => {
                        finished = Some(out);
                        Some(m)
                    }
                    Err(_) => return Ok(running.outcome(out)),
                }
            }
            First::OutboxClosed => {
                let out = running.join().await;
                return Ok(running.outcome(out));
            }
            First::Message(m) => Some(m),
            First::Close => None,
        };
        // The handler spoke before finishing: switch to SSE, its messages first, then the result.
        // In a session the stream is recorded, so a client that loses it can resume it.
        let (btx, brx) = mpsc::channel::<Bytes>(OUTBOX_CAPACITY);
        let sink = match &running.call.session {
            Some(s) => {
                let stream = StreamHandle::open(
                    self.events.clone(),
                    self.streams.clone(),
                    s.id.clone(),
                    self.stream_id(),
                    Origin::Call(running.run.id.to_value()),
                    None,
                )
                .await;
                match stream {
                    Ok(stream) => {
                        stream.attach(btx);
                        Sink::Logged {
                            stream,
                            prime: s.version >= crate::core::version::Version::V2025_11_25,
                        }
                    }
                    Err(e) => {
                        log::warn(format_args!(
                            "event store unavailable ({e}); this stream cannot be resumed"
                        ));
                        Sink::Direct(btx)
                    }
                }
            }
            None => Sink::Direct(btx),
        };
        let keepalive = self.config.sse_keepalive;
        tokio::spawn(forward(
            running, first, finished, rx, sink, close, keepalive,
        ));
        Ok(Outcome::Stream(brx))
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
    async fn send(&self, json: Bytes) -> bool {
        match self {
            Self::Direct(tx) => tx.send(sse::event(None, &json)).await.is_ok(),
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

/// Copies handler messages to the SSE stream until the result is written (or, at 2026-07-28,
/// the client leaves, which cancels the call).
async fn forward(
    mut running: Running,
    first: Option<Bytes>,
    finished: Option<HandlerOutput>,
    mut rx: mpsc::Receiver<Bytes>,
    sink: Sink,
    close: Option<CancelToken>,
    keepalive: Duration,
) {
    let modern = running.run.version.is_modern();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let mut outbox_open = true;
    // Closing a 2026-07-28 response would cancel the call, so only logged streams honour it.
    let mut close_served = matches!(sink, Sink::Direct(_)) || close.is_none();
    if let Sink::Logged {
        stream,
        prime: true,
    } = &sink
    {
        stream.prime().await;
    }
    let mut gone = match first {
        Some(m) => !sink.send(m).await,
        None => false,
    };
    if let Some(out) = finished {
        while let Ok(m) = rx.try_recv() {
            sink.send(m).await;
        }
        sink.send(running.reply(out).body).await;
        if let Sink::Logged { stream, .. } = &sink {
            stream.finish().await;
        }
        return;
    }
    while !gone {
        let handler = running.handler.as_mut().expect("still running");
        let close_wait = async {
            match &close {
                Some(c) if !close_served => c.cancelled().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            msg = rx.recv(), if outbox_open => match msg {
                Some(m) => gone = !sink.send(m).await,
                None => outbox_open = false,
            },
            out = &mut *handler => {
                running.handler = None;
                let out = running.output(out);
                // Messages sent just before the handler returned still go first.
                while let Ok(m) = rx.try_recv() {
                    sink.send(m).await;
                }
                // A cancelled request gets no response (initialize era, spec 2025-11-25
                // utilities/cancellation); otherwise the stream already answered 200 and an
                // error travels as the JSON-RPC error alone.
                if modern || !running.cancel.is_cancelled() {
                    let reply = running.reply(out);
                    sink.send(reply.body).await;
                }
                if let Sink::Logged { stream, .. } = &sink {
                    stream.finish().await;
                }
                return;
            }
            _ = sink.closed() => gone = true,
            () = close_wait => {
                close_served = true;
                if let Sink::Logged { stream, .. } = &sink {
                    stream.detach(RETRY_MS).await;
                }
            }
            _ = tick.tick() => gone = !sink.keepalive().await,
        }
    }
    // The client went away before the result: dropping `running` cancels a 2026-07-28 call.
}
