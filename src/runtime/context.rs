//! What a handler gets besides its arguments: the caller, a cancellation signal, and ways to talk back to the client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use super::tasks::TaskLink;
use crate::auth::Principal;
use crate::core::message::{self, Id};
use crate::core::mrtr::{missing_capability, InputRequired};
use crate::core::tasks::META_RELATED_TASK;
use crate::core::LogLevel;
use crate::ops::request::TraceContext;

/// A cancellation signal shared by the runtime (which fires it) and a handler (which watches it).
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    fired: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// A token that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal; idempotent.
    pub fn cancel(&self) {
        self.inner.fired.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// True once fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Completes when fired (at once if it already was).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// How long a handler waits for the client to answer a server-to-client request.
pub(crate) const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Server-to-client requests awaiting the client's answer (initialize era; one table per session).
///
/// The request goes out on the call's own SSE stream; the client's JSON-RPC response arrives on
/// another POST and is matched here by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientRequests {
    inner: Arc<ClientRequestsInner>,
}

#[derive(Debug, Default)]
struct ClientRequestsInner {
    /// Put before the counter: empty for `srv-N`; with replicas, the replica's id, so an answer
    /// that reaches another replica can be routed to the one that waits (`srv-<replica>-N`).
    prefix: Arc<str>,
    next: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>,
}

impl ClientRequests {
    /// A table whose ids read `srv-<prefix>-N` (`srv-N` with an empty prefix).
    pub(crate) fn with_prefix(prefix: Arc<str>) -> Self {
        Self {
            inner: Arc::new(ClientRequestsInner {
                prefix,
                ..ClientRequestsInner::default()
            }),
        }
    }

    fn register(&self) -> (String, oneshot::Receiver<Result<Value, Value>>) {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed) + 1;
        let id = if self.inner.prefix.is_empty() {
            format!("srv-{n}")
        } else {
            format!("srv-{}-{n}", self.inner.prefix)
        };
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiting
            .lock()
            .expect("client requests lock")
            .insert(id.clone(), tx);
        (id, rx)
    }

    fn forget(&self, id: &str) {
        self.inner
            .waiting
            .lock()
            .expect("client requests lock")
            .remove(id);
    }

    /// Hands the client's answer to the waiting handler. False when nobody waits for `id`.
    pub(crate) fn resolve(&self, id: &Id, outcome: Result<Value, Value>) -> bool {
        let Id::Str(id) = id else {
            return false;
        };
        let waiter = self
            .inner
            .waiting
            .lock()
            .expect("client requests lock")
            .remove(id);
        waiter.is_some_and(|tx| tx.send(outcome).is_ok())
    }
}

/// Why a server-to-client request got no result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientRequestError {
    /// Not possible here: 2026-07-28 outside a task (use an input_required result instead),
    /// or no session.
    Unsupported,
    /// The client did not accept an SSE response, so the request cannot be delivered.
    NoStream,
    /// The client did not declare this capability.
    CapabilityMissing(&'static str),
    /// The client answered with a JSON-RPC error.
    Rejected(Value),
    /// No answer in time.
    Timeout,
    /// The call was cancelled while waiting.
    Cancelled,
}

impl std::fmt::Display for ClientRequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported => {
                f.write_str("server-to-client requests are not available in this protocol version")
            }
            Self::NoStream => f.write_str("the client does not accept an event stream"),
            Self::CapabilityMissing(c) => {
                write!(f, "the client did not declare the {c} capability")
            }
            Self::Rejected(e) => write!(f, "the client answered with an error: {e}"),
            Self::Timeout => f.write_str("the client did not answer in time"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for ClientRequestError {}

/// The per-request context handed to a handler.
///
/// It carries this request's verified principal (never the session's: every request is
/// verified on its own), the client's declared capabilities, a cancellation signal, and the
/// means to send progress, log messages and (initialize era) requests to the client.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    principal: Arc<Principal>,
    cancel: CancelToken,
    outbox: Option<mpsc::Sender<Bytes>>,
    progress_token: Option<Value>,
    log_level: Option<LogLevel>,
    client_capabilities: Arc<Value>,
    input_responses: Option<Map<String, Value>>,
    request_state: Option<String>,
    client_requests: Option<ClientRequests>,
    close_stream: Option<CancelToken>,
    request_id: Option<http::HeaderValue>,
    trace: Option<TraceContext>,
    task: Option<Arc<TaskLink>>,
}

impl RequestContext {
    /// The request's id (generated, or a trusted proxy's `X-Request-Id`), as the server's log
    /// lines and audit records name it.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The W3C trace context of this call: `params._meta.traceparent` (SEP-414) when the
    /// message carries a valid one, else the `traceparent` HTTP header. Parent your own spans
    /// on it.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// The request id and trace context.
    pub(crate) fn with_ids(
        mut self,
        request_id: Option<http::HeaderValue>,
        trace: Option<TraceContext>,
    ) -> Self {
        self.request_id = request_id;
        self.trace = trace;
        self
    }

    /// Built by the runtime for each call.
    pub(crate) fn new(
        principal: Arc<Principal>,
        cancel: CancelToken,
        client_capabilities: Arc<Value>,
    ) -> Self {
        // Every field named: `..Self::default()` would build (and drop) a principal, a cancel
        // token and a capabilities value on every call.
        Self {
            principal,
            cancel,
            outbox: None,
            progress_token: None,
            log_level: None,
            client_capabilities,
            input_responses: None,
            request_state: None,
            client_requests: None,
            close_stream: None,
            request_id: None,
            trace: None,
            task: None,
        }
    }

    /// Where notifications and requests for the client go (the call's SSE stream), if anywhere.
    pub(crate) fn with_outbox(mut self, outbox: Option<mpsc::Sender<Bytes>>) -> Self {
        self.outbox = outbox;
        self
    }

    /// The request's progress token and the log level in force.
    pub(crate) fn with_reporting(
        mut self,
        progress_token: Option<Value>,
        log_level: Option<LogLevel>,
    ) -> Self {
        self.progress_token = progress_token;
        self.log_level = log_level;
        self
    }

    /// 2026-07-28 retry: the client's `inputResponses` and the verified, unsealed `requestState`.
    pub(crate) fn with_round(
        mut self,
        input_responses: Option<Map<String, Value>>,
        request_state: Option<String>,
    ) -> Self {
        self.input_responses = input_responses;
        self.request_state = request_state;
        self
    }

    /// The call may run (or runs) as a task.
    pub(crate) fn with_task(mut self, link: Arc<TaskLink>) -> Self {
        self.task = Some(link);
        self
    }

    /// Initialize era: the session's table for server-to-client requests, and the signal
    /// [`RequestContext::close_sse_stream`] fires.
    pub(crate) fn with_session(mut self, table: ClientRequests, close_stream: CancelToken) -> Self {
        self.client_requests = Some(table);
        self.close_stream = Some(close_stream);
        self
    }

    /// Initialize era (2025-11-25 streams): ends this call's SSE response now, with a `retry:`
    /// hint, while the call goes on; the client reconnects with `GET` + `Last-Event-ID` and
    /// receives the rest, result included. Elsewhere it has no effect (at 2026-07-28 closing the
    /// response would mean cancellation).
    pub fn close_sse_stream(&self) {
        if let Some(c) = &self.close_stream {
            c.cancel();
        }
    }

    /// 2026-07-28: the answers to an earlier `input_required` result, by key.
    pub fn input_responses(&self) -> Option<&Map<String, Value>> {
        self.input_responses.as_ref()
    }

    /// 2026-07-28: the state the handler returned with its last `input_required`, after the
    /// server verified it was not altered and has not expired.
    pub fn request_state(&self) -> Option<&str> {
        self.request_state.as_deref()
    }

    /// Initialize era: sends `method` to the client on this call's SSE stream and waits for the
    /// answer. Only for capabilities the client declared (`sampling`, `elicitation`, `roots`).
    pub async fn request_client(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        self.request_client_within(method, params, Some(CLIENT_REQUEST_TIMEOUT))
            .await
    }

    /// [`RequestContext::request_client`], waiting at most `timeout` (`None`: until answered or
    /// cancelled, as a task waits).
    async fn request_client_within(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, ClientRequestError> {
        let table = self
            .client_requests
            .as_ref()
            .ok_or(ClientRequestError::Unsupported)?;
        let outbox = self.outbox.as_ref().ok_or(ClientRequestError::NoStream)?;
        if let Some((cap, _)) = missing_capability(&self.client_capabilities, method, &params) {
            return Err(ClientRequestError::CapabilityMissing(cap));
        }
        let (id, rx) = table.register();
        let msg = message::request(&Id::Str(id.clone()), method, &params);
        if outbox.send(msg.into()).await.is_err() {
            table.forget(&id);
            return Err(ClientRequestError::Cancelled);
        }
        let timeout = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            r = rx => r.map_err(|_| ClientRequestError::Cancelled),
            () = timeout => Err(ClientRequestError::Timeout),
            _ = self.cancel.cancelled() => Err(ClientRequestError::Cancelled),
        };
        table.forget(&id);
        outcome?.map_err(ClientRequestError::Rejected)
    }

    /// Asks the client for input and waits until every request is answered; the answers come
    /// back by the keys of `requests` (elicitation, sampling and roots results). Its
    /// `requestState` is not used: the handler keeps its own state across the `await`.
    ///
    /// * In a task at 2026-07-28 the task turns `input_required`, `tasks/get` shows the requests
    ///   under `inputRequests`, and the client answers with `tasks/update` (partially, if it
    ///   likes: the task stays `input_required` until every key is answered). A call that may
    ///   become a task ([`Tool::task_support`](crate::Tool::task_support)) becomes one here, and
    ///   the client gets the task at once.
    /// * In the initialize era the requests go to the client as server-to-client requests, in
    ///   parallel: on the call's SSE stream, or for a task on the stream of the client's
    ///   `tasks/result`, tagged with the task; a task waits as long as it takes, a plain call up
    ///   to 60 s.
    /// * Elsewhere (a 2026-07-28 call that cannot become a task) it returns
    ///   [`ClientRequestError::Unsupported`]: return [`InputRequired`] from the handler instead.
    ///
    /// ```
    /// use serde_json::json;
    /// use vouch_mcp::{CallToolResult, InputRequired, RequestContext, TaskSupport, Tool, ToolError};
    ///
    /// let deploy = Tool::new("deploy", "Deploys after a confirmation", |ctx: RequestContext| async move {
    ///     ctx.set_status("waiting for a confirmation").await;
    ///     let schema = json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}});
    ///     let answers = ctx
    ///         .ask(InputRequired::new().elicit("confirm", "Deploy to production?", schema))
    ///         .await
    ///         .map_err(|e| ToolError::Failed(e.to_string()))?;
    ///     if answers.get("confirm").map(|a| a["content"]["confirm"] == true) != Some(true) {
    ///         return Ok(CallToolResult::text("not deployed"));
    ///     }
    ///     ctx.set_status("deploying").await;
    ///     tokio::select! {
    ///         _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
    ///         _ = ctx.cancellation().cancelled() => return Ok(CallToolResult::text("stopped")),
    ///     }
    ///     Ok(CallToolResult::text("deployed"))
    /// })
    /// .task_support(TaskSupport::Optional);
    /// assert_eq!(deploy.name(), "deploy");
    /// ```
    pub async fn ask(
        &self,
        requests: InputRequired,
    ) -> Result<Map<String, Value>, ClientRequestError> {
        match &self.task {
            Some(link) if link.is_modern() => {
                link.ask(
                    &self.cancel,
                    &self.client_capabilities,
                    requests.input_requests,
                )
                .await
            }
            Some(link) => {
                let id = link.id();
                link.set_waiting(true).await;
                let got = self.ask_each(requests.input_requests, id.as_deref()).await;
                link.set_waiting(false).await;
                got
            }
            None if self.client_requests.is_some() => {
                self.ask_each(requests.input_requests, None).await
            }
            None => Err(ClientRequestError::Unsupported),
        }
    }

    /// Initialize era: one server-to-client request per key, all at once; a task's are tagged
    /// with it and wait without a deadline.
    async fn ask_each(
        &self,
        requests: Map<String, Value>,
        task: Option<&str>,
    ) -> Result<Map<String, Value>, ClientRequestError> {
        let mut set = tokio::task::JoinSet::new();
        for (key, request) in requests {
            let ctx = self.clone();
            let method = request
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let mut params = request.get("params").cloned().unwrap_or_else(|| json!({}));
            let timeout = match task {
                Some(id) => {
                    if let Value::Object(p) = &mut params {
                        let meta = p.entry("_meta").or_insert_with(|| json!({}));
                        if let Value::Object(meta) = meta {
                            meta.insert(META_RELATED_TASK.into(), json!({"taskId": id}));
                        }
                    }
                    None
                }
                None => Some(CLIENT_REQUEST_TIMEOUT),
            };
            set.spawn(async move {
                let r = ctx.request_client_within(&method, params, timeout).await;
                (key, r)
            });
        }
        let mut out = Map::new();
        while let Some(joined) = set.join_next().await {
            let (key, r) = joined.map_err(|_| ClientRequestError::Cancelled)?;
            out.insert(key, r?);
        }
        Ok(out)
    }

    /// The id of the task this call runs as, once it is one.
    pub fn task_id(&self) -> Option<String> {
        self.task.as_ref().and_then(|l| l.id())
    }

    /// Sets the task's `statusMessage` (shown by `tasks/get`). Returns false when the call does
    /// not run as a task (yet), or the task already ended.
    pub async fn set_status(&self, message: impl Into<String>) -> bool {
        match &self.task {
            Some(link) => link.set_status(&message.into()).await,
            None => false,
        }
    }

    /// The verified caller of this request (not of the session).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Every verified claim of this request's token.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.principal.claims
    }

    /// The capabilities the client declared (initialize, or this request's `_meta`).
    pub fn client_capabilities(&self) -> &Value {
        &self.client_capabilities
    }

    /// The cancellation signal: the client cancelled, went away (2026-07-28), or the server is stopping.
    pub fn cancellation(&self) -> &CancelToken {
        &self.cancel
    }

    /// True once the request is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Sends `notifications/progress`, only if the request carried a progress token.
    /// `progress` must increase between calls. Returns false when nothing was sent.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) -> bool {
        let Some(token) = &self.progress_token else {
            return false;
        };
        let mut params = Map::new();
        // The token is echoed with its JSON type: a number stays a number.
        params.insert("progressToken".into(), token.clone());
        params.insert("progress".into(), json!(progress));
        if let Some(t) = total {
            params.insert("total".into(), json!(t));
        }
        if let Some(m) = message {
            params.insert("message".into(), json!(m));
        }
        self.send(message::notification("notifications/progress", &params))
            .await
    }

    /// Sends `notifications/message` if the client asked for this level or a lower one.
    pub async fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) -> bool {
        match self.log_level {
            Some(min) if level >= min => {}
            _ => return false,
        }
        let mut params = Map::new();
        params.insert("level".into(), json!(level.as_str()));
        if let Some(l) = logger {
            params.insert("logger".into(), json!(l));
        }
        params.insert("data".into(), data);
        self.send(message::notification("notifications/message", &params))
            .await
    }

    async fn send(&self, message: Vec<u8>) -> bool {
        match &self.outbox {
            Some(tx) if !self.cancel.is_cancelled() => tx.send(message.into()).await.is_ok(),
            _ => false,
        }
    }
}
