//! The HTTP shell: routes, runs Host/Origin, the body cap, auth and content negotiation, hands the rest to the core, and turns decisions into responses.
//!
//! Its files are leaves that never import each other; this one sequences them:
//!
//! * [`checks`]: Host/Origin, Content-Type, Accept, Content-Length (pure);
//! * `read`: the request body into one buffer under the cap;
//! * [`error`]: transport errors and their one mapping to a response;
//! * `respond`: responses for replies, streams, rejections, metadata, CORS.
//!
//! Check order on the endpoint: Host/Origin (400/403) → declared size (413) → auth
//! (401/403/400/503) → Content-Type (415) → Accept (406) → body read under the cap (413) → the
//! core (JSON, JSON-RPC, era rules, dispatch). Nothing is read or allocated for an
//! unauthenticated caller beyond its request head.

pub(crate) mod checks;
pub(crate) mod error;
mod read;
mod respond;
mod summary;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ORIGIN};
use http::request::Parts;
use http::{Method, Request, Response, Uri};

use crate::auth::{AuthError, Authenticator, Challenger, ConnectionMemo, Principal};
use crate::body::Body;
use crate::core::message::Id;
use crate::core::{
    BatchItem, Core, Decision, Ending, Facts, Post, ProtocolError, Reply, Run, Step, Target,
};
use crate::log;
use crate::ops::metrics::Route;
use crate::ops::request::{TraceContext, REQUEST_ID};
use crate::ops::{Ident, OpRecord, OpenStream, Ops, Verdict};
use crate::runtime::limits::ByteBudget;
use crate::runtime::session::{SessionRecord, StoreError};
use crate::runtime::{Call, Outcome, Runtime};
use crate::serve::ConnState;
use crate::sources::{Clock, Now};
use crate::step_up::StepUpDenial;
use checks::{Accept, HostPolicy};
use error::TransportError;

/// How requests are authorized.
#[derive(Debug)]
pub(crate) enum AuthMode {
    /// Verify every request's bearer token.
    Jwt {
        /// The verifier.
        authenticator: Authenticator,
        /// The challenge builder.
        challenger: Challenger,
    },
    /// No authorization at all (conformance testing). Named loudly on purpose.
    DangerouslyDisabled,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub(crate) struct HttpConfig {
    /// The canonical MCP URL (`resource` in the metadata).
    pub(crate) resource_url: String,
    /// The path-inserted metadata URL sent in challenges.
    pub(crate) resource_metadata_url: String,
    /// Paths the endpoint is served at.
    pub(crate) endpoint_paths: Vec<String>,
    /// Paths the metadata document is served at.
    pub(crate) metadata_paths: Vec<String>,
    /// Host/Origin policy.
    pub(crate) hosts: HostPolicy,
    /// Request body cap in bytes.
    pub(crate) max_body_bytes: u64,
    /// How long a client may take to send its body.
    pub(crate) body_timeout: Duration,
    /// Messages in one batch.
    pub(crate) max_batch: usize,
    /// How long a request waits for room in the in-flight byte budget.
    pub(crate) inflight_wait: Duration,
}

/// A handler for paths the server does not serve (`ServerBuilder::fallback`); it gets the body
/// read under the same cap.
pub(crate) type Fallback = Arc<
    dyn Fn(Request<Bytes>) -> Pin<Box<dyn Future<Output = Option<Response<Body>>> + Send>>
        + Send
        + Sync,
>;

/// Everything a request needs; shared by `Arc`, never locked as a whole.
pub(crate) struct Shared {
    pub(crate) core: Arc<Core>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) auth: AuthMode,
    pub(crate) config: HttpConfig,
    pub(crate) metadata_doc: Bytes,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) fallback: Option<Fallback>,
    /// Request bytes in flight (bodies and their parsed form), all requests together.
    pub(crate) budget: Arc<ByteBudget>,
    /// Repeated rejections, summarised rather than logged one by one.
    pub(crate) rejections: summary::Rejections,
    pub(crate) ops: Arc<Ops>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The server as a [`hyper::service::Service`], for any request body type: mount it in your
/// own hyper server, or adapt it for a framework's router. Cheap to clone.
///
/// It answers the MCP endpoint, the RFC 9728 metadata paths and `/healthz`; other paths get
/// 404 (or the [`ServerBuilder::fallback`](crate::ServerBuilder::fallback) handler when the
/// server runs its own accept loop).
#[derive(Debug, Clone)]
pub struct McpService {
    shared: Arc<Shared>,
    /// The connection's peer, when the server's own accept loop knows it.
    peer: Option<SocketAddr>,
    /// The connection's last verification, when the service serves one connection.
    memo: Option<Arc<ConnectionMemo>>,
    /// The accept loop's view of the connection: busy while a response is being sent.
    state: Option<Arc<ConnState>>,
}

impl McpService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            peer: None,
            memo: None,
            state: None,
        }
    }

    /// The service for one connection from `peer` (the server's own accept loop).
    pub(crate) fn for_connection(&self, peer: Option<SocketAddr>, state: Arc<ConnState>) -> Self {
        Self {
            shared: self.shared.clone(),
            peer,
            memo: Some(Arc::default()),
            state: Some(state),
        }
    }
}

impl<B> hyper::service::Service<Request<B>> for McpService
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        let conn = Conn {
            peer: self.peer,
            memo: self.memo.clone(),
        };
        // Taken before any work, so the connection never looks idle while it is answering.
        let busy = self.state.as_ref().map(ConnState::begin);
        Box::pin(async move {
            let resp = shared.handle(req, conn).await;
            Ok(match busy {
                Some(busy) => resp.map(|body| body.holding(busy)),
                None => resp,
            })
        })
    }
}

/// What a request knows of its connection.
#[derive(Debug, Default)]
struct Conn {
    peer: Option<SocketAddr>,
    memo: Option<Arc<ConnectionMemo>>,
}

/// What the request log line, the metrics and the audit log report about a request.
struct LogFields<'a> {
    rpc: Option<&'static str>,
    tool: Option<&'a str>,
    conn: Conn,
    principal: Option<Arc<Principal>>,
    detail: Option<String>,
    route: Route,
    ident: Ident,
    /// How the MCP operation ended, when the shell answered it (a handler run reports itself).
    ending: Option<Ending>,
    /// Why a tool call was refused (a reason label and a detail).
    denied: Option<(&'static str, String)>,
    /// The tool a `tools/call` named, once the core found it.
    op_tool: Option<usize>,
    /// The clock reading a handler run's record took as its end, shared by the log line.
    ended: Option<Now>,
}

/// The principal used when authorization is disabled.
fn anonymous() -> Principal {
    Principal {
        issuer: String::new(),
        subject: None,
        scopes: Vec::new(),
        expires_at: f64::MAX,
        claims: serde_json::Map::new(),
    }
}

impl Shared {
    /// Writes the summaries of rejections held back before `now`'s second (called every second).
    pub(crate) fn flush_rejections(&self, now: Now) {
        self.rejections.flush(now.unix_secs(), &mut |l| {
            log::emit_text(log::Level::Info, now.system_time(), l);
        });
    }

    /// Reports every held rejection, those of the current second too (at shutdown).
    pub(crate) fn flush_all_rejections(&self, now: Now) {
        self.rejections.flush(u64::MAX, &mut |l| {
            log::emit_text(log::Level::Info, now.system_time(), l);
        });
    }

    /// Handles one request and writes its log line.
    async fn handle<B>(self: Arc<Self>, req: Request<B>, conn: Conn) -> Response<Body>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
    {
        let now = Now::read(&*self.clock);
        let method = req.method().clone();
        let uri = req.uri().clone();
        let ident = self.ops.identify(req.headers(), conn.peer);
        let mut fields = LogFields {
            rpc: None,
            tool: None,
            conn,
            principal: None,
            detail: None,
            route: Route::NotFound,
            ident,
            ending: None,
            denied: None,
            op_tool: None,
            ended: None,
        };
        let mut resp = self.route(req, now, &mut fields).await;
        resp.headers_mut()
            .insert(REQUEST_ID, fields.ident.request_id.clone());
        let probe = matches!(fields.route, Route::Healthz | Route::Readyz);
        let log = !probe && log::enabled(log::Level::Info);
        if !log && !self.ops.records() {
            return resp;
        }
        let end = fields.ended.unwrap_or_else(|| Now::read(&*self.clock));
        if let Some(m) = &self.ops.metrics {
            m.http(fields.route, &method, resp.status().as_u16());
        }
        self.report_operation(&fields, now, end);
        if log {
            self.log_request(&method, &uri, &resp, now, end, &fields);
        }
        resp
    }

    /// Reports an MCP operation the shell answered itself (a handler run reports its own end).
    fn report_operation(&self, fields: &LogFields<'_>, start: Now, end: Now) {
        let Some(method) = fields.rpc.filter(|m| *m != "response" && *m != "batch") else {
            return;
        };
        let verdict = match (&fields.denied, fields.ending) {
            (Some((reason, detail)), _) => Verdict::Denied(reason, detail),
            (None, Some(Ending::Ok)) => Verdict::Ok,
            (None, Some(Ending::ToolError)) => Verdict::ToolError,
            (None, Some(Ending::Error(c))) => Verdict::Error(c),
            (None, None) => return,
        };
        let tool = fields
            .op_tool
            .map(|i| (i, self.core.catalog().tool_name(i)));
        self.ops.answered(
            &fields.ident,
            fields.principal.as_deref(),
            method,
            tool,
            verdict,
            start,
            end,
        );
    }

    fn log_request(
        &self,
        method: &Method,
        uri: &Uri,
        resp: &Response<Body>,
        start: Now,
        end: Now,
        fields: &LogFields<'_>,
    ) {
        let status = resp.status();
        if status.as_u16() >= 400 {
            let kind = summary::Kind {
                status: status.as_u16(),
                method: method.as_str(),
                path: uri.path(),
                rpc: fields.rpc,
                detail: fields.detail.as_deref(),
            };
            let mut held = |l: String| log::emit_text(log::Level::Info, end.system_time(), l);
            if self.rejections.admit(&kind, end.unix_secs(), &mut held) == summary::Verdict::Held {
                return;
            }
        }
        let mut line = log::Line::new("request");
        line.field("method", method.as_str())
            .field("path", uri.path())
            .number("status", u64::from(status.as_u16()))
            .number("latency_us", start.micros_until(end))
            .field("request_id", fields.ident.id());
        if let Some(c) = fields.ident.client {
            line.ip("client", c);
        }
        if let Some(t) = &fields.ident.trace {
            line.field("trace_id", t.trace_id());
        }
        if let Some(v) = fields.rpc {
            line.field("rpc", v);
        }
        if let Some(v) = fields.tool {
            line.field("tool", v);
        }
        if let Some(sub) = fields.principal.as_ref().and_then(|p| p.subject.as_deref()) {
            line.field("sub", sub);
        }
        if let Some(v) = &fields.detail {
            line.field("detail", v);
        }
        if let Some(r) = self.runtime.replica() {
            line.field("replica", r);
        }
        line.emit(log::Level::Info, end.system_time());
    }

    /// `/readyz`: 200 when a token can be judged (a key set is loaded) and the session store
    /// answers; 503 naming what is missing.
    pub(crate) async fn readiness(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if let AuthMode::Jwt { authenticator, .. } = &self.auth {
            if authenticator.status().keys.keys.is_none() {
                missing.push("keys");
            }
        }
        let store = tokio::time::timeout(READY_STORE_TIMEOUT, self.runtime.sessions.ready()).await;
        if !matches!(store, Ok(Ok(()))) {
            missing.push("session_store");
        }
        missing
    }

    /// The Prometheus text exposition of this server's metrics (`None` when they are off).
    pub(crate) async fn metrics_text(&self) -> Option<String> {
        let m = self.ops.metrics.as_ref()?;
        let keys = match &self.auth {
            AuthMode::Jwt { authenticator, .. } => {
                let st = authenticator.status();
                let now = std::time::SystemTime::now();
                Some(crate::ops::metrics::KeyGauges {
                    fetches_ok: st.keys.fetches_ok,
                    fetches_failed: st.keys.fetches_failed,
                    keys: st.keys.keys.unwrap_or(0),
                    age_secs: st
                        .keys
                        .fetched_at
                        .and_then(|t| now.duration_since(t).ok())
                        .map(|d| d.as_secs_f64()),
                    cache_hits: st.cache_hits,
                    cache_misses: st.cache_misses,
                })
            }
            AuthMode::DangerouslyDisabled => None,
        };
        let gauges = crate::ops::metrics::Gauges {
            sessions: self.runtime.sessions.count(),
            tasks: self.runtime.tasks.count(),
            tasks_running: self.runtime.tasks.running_here(),
            keys,
            log_dropped: log::dropped_total(),
            audit_dropped: self.ops.audit.as_ref().map(|a| a.dropped()),
            ready: self.readiness().await.is_empty(),
        };
        Some(m.render(&gauges, &crate::ops::metrics::Process::read()))
    }

    async fn route<'a, B>(
        &'a self,
        req: Request<B>,
        now: Now,
        fields: &mut LogFields<'a>,
    ) -> Response<Body>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
    {
        let path = req.uri().path();
        if self.config.endpoint_paths.iter().any(|p| p == path) {
            fields.route = Route::Mcp;
            return self.endpoint(req, now, fields).await;
        }
        if path == "/healthz" {
            fields.route = Route::Healthz;
            return match *req.method() {
                Method::GET | Method::HEAD => respond::health(),
                _ => TransportError::MethodNotAllowed("GET, HEAD").response(),
            };
        }
        if path == "/readyz" {
            fields.route = Route::Readyz;
            return match *req.method() {
                Method::GET | Method::HEAD => respond::ready(&self.readiness().await),
                _ => TransportError::MethodNotAllowed("GET, HEAD").response(),
            };
        }
        if self.config.metadata_paths.iter().any(|p| p == path) {
            fields.route = Route::Metadata;
            return match *req.method() {
                Method::GET | Method::HEAD | Method::OPTIONS => {
                    respond::metadata(req.method(), &self.metadata_doc)
                }
                _ => TransportError::MethodNotAllowed("GET, HEAD, OPTIONS").response(),
            };
        }
        match &self.fallback {
            Some(f) => {
                fields.route = Route::Fallback;
                let (parts, body) = req.into_parts();
                let max = self.config.max_body_bytes;
                let declared = checks::content_length(&parts.headers);
                if declared.is_some_and(|n| n > max) {
                    return TransportError::PayloadTooLarge(max).response();
                }
                let mut permit = match self
                    .budget
                    .reserve(
                        declared.map_or(PARSE_FLOOR, |n| n.min(max)),
                        self.config.inflight_wait,
                    )
                    .await
                {
                    Ok(p) => p,
                    Err(limit) => {
                        return respond::reply(ProtocolError::Limit(limit).reply(false, None))
                    }
                };
                let read = read::body(
                    body,
                    declared,
                    max,
                    self.config.body_timeout,
                    &mut permit,
                    self.config.inflight_wait,
                );
                match read.await {
                    Ok(bytes) => f(Request::from_parts(parts, bytes))
                        .await
                        .unwrap_or_else(|| TransportError::NotFound.response()),
                    Err(e) => read_error(e, max).response(),
                }
            }
            None => TransportError::NotFound.response(),
        }
    }

    async fn endpoint<'a, B>(
        &'a self,
        req: Request<B>,
        now: Now,
        fields: &mut LogFields<'a>,
    ) -> Response<Body>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
    {
        // DNS-rebinding protection comes before anything else, auth included.
        if let Err(e) = self
            .config
            .hosts
            .check_for(req.version(), req.uri(), req.headers())
        {
            fields.detail = Some(e.to_string());
            return TransportError::Host(e).response();
        }
        let origin: Option<HeaderValue> = req.headers().get(ORIGIN).cloned();
        let mut resp = match *req.method() {
            Method::POST => self.post(req, now, fields).await,
            Method::GET => self.get(req, now, fields).await,
            Method::DELETE => self.delete(req, now, fields).await,
            Method::OPTIONS => respond::preflight(req.headers()),
            _ => TransportError::MethodNotAllowed("GET, POST, DELETE, OPTIONS").response(),
        };
        if let Some(origin) = origin {
            // Origin was checked above, so echoing it grants only allowed origins.
            respond::allow_origin(&mut resp, origin);
        }
        resp
    }

    /// Authenticates or returns the rejection. With auth disabled, everyone is anonymous.
    async fn authenticate(
        &self,
        parts: &Parts,
        now: Now,
        fields: &mut LogFields<'_>,
    ) -> Result<Arc<Principal>, Response<Body>> {
        let (authenticator, challenger) = match &self.auth {
            AuthMode::DangerouslyDisabled => return Ok(Arc::new(anonymous())),
            AuthMode::Jwt {
                authenticator,
                challenger,
            } => (authenticator, challenger),
        };
        // The client a trusted proxy names, else the peer: signature failures count against it.
        let client = fields.ident.client;
        let memo = fields.conn.memo.clone();
        let result = authenticator
            .authenticate_on(&parts.headers, client, now.unix_secs(), memo.as_deref())
            .await;
        if self.ops.records() {
            self.ops
                .auth_decision(&fields.ident, now, result.as_deref());
        }
        match result {
            Ok(p) => {
                fields.principal = Some(p.clone());
                Ok(p)
            }
            Err(e) => {
                fields.detail = Some(e.to_string());
                Err(respond::rejection(challenger.reject(&e)))
            }
        }
    }

    /// The 401 for a tool's step-up policy (RFC 9470), through the auth layer's one mapping.
    fn step_up_rejection(&self, denial: StepUpDenial) -> Response<Body> {
        match &self.auth {
            AuthMode::Jwt { challenger, .. } => respond::rejection(challenger.reject(
                &AuthError::InsufficientUserAuthentication {
                    description: denial.description().to_owned(),
                    acr_values: denial.acr_values().map(str::to_owned),
                    max_age: denial.max_age(),
                },
            )),
            // Without auth there is no login to step up; answered like a missing scope.
            AuthMode::DangerouslyDisabled => {
                respond::reply(ProtocolError::Internal.reply(false, None))
            }
        }
    }

    /// The 403 for a tool's scopes, through the auth layer's one mapping.
    fn scope_rejection(&self, principal: &Principal, scopes: &[String]) -> Response<Body> {
        match &self.auth {
            AuthMode::Jwt {
                authenticator,
                challenger,
            } => {
                let e = authenticator
                    .check_scopes(principal, scopes)
                    .err()
                    .unwrap_or(AuthError::InsufficientScope {
                        required: scopes.to_vec(),
                    });
                respond::rejection(challenger.reject(&e))
            }
            // Without auth there are no scopes to lack; the core never asks.
            AuthMode::DangerouslyDisabled => {
                respond::reply(ProtocolError::Internal.reply(false, None))
            }
        }
    }

    async fn post<'a, B>(
        &'a self,
        req: Request<B>,
        now: Now,
        fields: &mut LogFields<'a>,
    ) -> Response<Body>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
    {
        let (parts, body) = req.into_parts();
        let max = self.config.max_body_bytes;
        let declared = checks::content_length(&parts.headers);
        // A declared oversize body is refused before auth, without reading a byte of it.
        if declared.is_some_and(|n| n > max) {
            return TransportError::PayloadTooLarge(max).response();
        }
        // The body is only read for authenticated callers.
        let principal = match self.authenticate(&parts, now, fields).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        if !checks::is_json_content_type(&parts.headers) {
            return TransportError::UnsupportedMediaType.response();
        }
        let accept = Accept::from_headers(&parts.headers);
        if !accept.json && !accept.sse {
            return TransportError::NotAcceptable.response();
        }
        // The body and what its parse may build are reserved against the in-flight budget
        // before a byte is read; a chunked body grows its reservation as it arrives.
        let reserve = declared.map_or(PARSE_FLOOR, |n| reservation(n.min(max)));
        let mut permit = match self
            .budget
            .reserve(reserve, self.config.inflight_wait)
            .await
        {
            Ok(p) => p,
            Err(limit) => {
                fields.detail = Some(format!("limit reached: {}", limit.setting()));
                return respond::reply(ProtocolError::Limit(limit).reply(false, None));
            }
        };
        let read = read::body(
            body,
            declared,
            max,
            self.config.body_timeout,
            &mut permit,
            self.config.inflight_wait,
        )
        .await;
        let bytes = match read {
            Ok(b) => b,
            Err(read::ReadError::Budget(limit)) => {
                fields.detail = Some(format!("limit reached: {}", limit.setting()));
                return respond::reply(ProtocolError::Limit(limit).reply(false, None));
            }
            Err(e) => return read_error(e, max).response(),
        };
        let facts = Facts {
            principal: &principal,
            now: now.unix_secs(),
        };
        let post = Post {
            headers: &parts.headers,
            body: &bytes,
            limits: crate::json::Limits {
                max_bytes: (permit.bytes() as usize).saturating_sub(bytes.len()),
                max_batch: self.config.max_batch,
            },
        };
        let (step, rpc) = self.core.post(post, facts);
        fields.rpc = rpc;
        let (decision, session) = match step {
            Step::Decided(d) => (d, None),
            Step::NeedSession(id, pending) => {
                let (fact, record) = self
                    .runtime
                    .find_session(id.as_deref(), &principal, now)
                    .await;
                (self.core.with_session(pending, fact, facts), record)
            }
        };
        let call = Call {
            principal: principal.clone(),
            accepts_sse: accept.sse,
            session: session.clone(),
            now,
            request_id: Some(fields.ident.request_id.clone()),
            trace: fields.ident.trace.clone(),
        };
        let resp = self.perform(decision, call, fields).await;
        match &session {
            Some(s) => respond::with_session(resp, s),
            None => resp,
        }
    }

    /// Carries out a decision of the core.
    async fn perform<'a>(
        &'a self,
        decision: Decision,
        call: Call,
        fields: &mut LogFields<'a>,
    ) -> Response<Body> {
        let note = |fields: &mut LogFields<'_>, r: &Reply| {
            if r.detail.is_some() {
                fields.detail.clone_from(&r.detail);
            }
            fields.ending = Some(r.ending);
            fields.op_tool = r.tool;
        };
        match decision {
            Decision::Reply(r) => {
                note(fields, &r);
                respond::reply(r)
            }
            Decision::Run(run) => {
                if let Target::Tool(i) = run.target {
                    fields.tool = Some(self.core.catalog().tool_name(i));
                }
                let (modern, id) = (run.version.is_modern(), run.id.clone());
                let (call, record) = self.start_run(&run, call, fields);
                let (r, ended) = match self.runtime.call(run, call, record).await {
                    Ok(Outcome::Reply(r)) => (r, None),
                    Ok(Outcome::Finished(r, end)) => (r, Some(end)),
                    Ok(Outcome::Stream(rx)) => return self.sse(rx),
                    Err(limit) => {
                        fields.detail = Some(format!("limit reached: {}", limit.setting()));
                        return respond::reply(
                            ProtocolError::Limit(limit).reply(modern, Some(&id)),
                        );
                    }
                };
                if r.detail.is_some() {
                    fields.detail.clone_from(&r.detail);
                }
                fields.ended = ended;
                respond::reply(r)
            }
            Decision::Initialize {
                id,
                version,
                client_capabilities,
                reply,
            } => {
                let opened = self
                    .runtime
                    .open_session(&call.principal, version, client_capabilities, call.now)
                    .await;
                match opened {
                    Ok(record) => {
                        note(fields, &reply);
                        respond::with_session(respond::reply(reply), &record)
                    }
                    Err(e) => {
                        fields.detail = Some(e.to_string());
                        let r = store_error(e).reply(false, Some(&id));
                        fields.ending = Some(r.ending);
                        respond::reply(r)
                    }
                }
            }
            Decision::Update(update, reply) => {
                let Some(session) = &call.session else {
                    return respond::reply(ProtocolError::SessionNotFound.reply(false, None));
                };
                let r = match self.runtime.update_session(session, &update).await {
                    Ok(_) => reply,
                    Err(e) => store_error(e).reply(false, None),
                };
                fields.ending = Some(r.ending);
                respond::reply(r)
            }
            Decision::Listen(listen) => {
                let id = listen.id.clone();
                match self.runtime.listen(listen, &call.principal) {
                    Ok(opened) => {
                        fields.ending = Some(Ending::Ok);
                        self.long_sse(opened)
                    }
                    Err(e) => {
                        fields.detail = Some(e.to_string());
                        let r = e.reply(true, Some(&id));
                        fields.ending = Some(r.ending);
                        respond::reply(r)
                    }
                }
            }
            Decision::Cancel(id) => {
                if let Some(s) = &call.session {
                    self.runtime.cancel(s, &id);
                }
                fields.ending = Some(Ending::Ok);
                respond::reply(Reply::accepted())
            }
            Decision::Answer(id, outcome) => {
                self.answer(call.session.as_deref(), &id, outcome, fields);
                respond::reply(Reply::accepted())
            }
            Decision::InsufficientScope { tool, scopes } => {
                fields.detail = Some("insufficient scope for tool".into());
                fields.op_tool = Some(tool);
                fields.tool = Some(self.core.catalog().tool_name(tool));
                fields.denied = Some(("insufficient_scope", format!("needs {}", scopes.join(" "))));
                if let Some(m) = &self.ops.metrics {
                    m.auth(false, "insufficient_scope");
                }
                self.scope_rejection(&call.principal, &scopes)
            }
            Decision::StepUp { tool, denial } => {
                fields.detail = Some(format!("step-up required: {}", denial.description()));
                fields.op_tool = Some(tool);
                fields.tool = Some(self.core.catalog().tool_name(tool));
                fields.denied = Some((
                    "insufficient_user_authentication",
                    denial.description().to_owned(),
                ));
                if let Some(m) = &self.ops.metrics {
                    m.auth(false, "insufficient_user_authentication");
                }
                self.step_up_rejection(denial)
            }
            // Boxed: a batch's future is the largest here, and every request's future (moved
            // whole at each await up the chain) would be as large.
            Decision::Batch(items) => Box::pin(self.batch(items, call, fields)).await,
            Decision::Task(task) => {
                match self
                    .runtime
                    .task_request(task, call.principal.clone(), call.accepts_sse)
                    .await
                {
                    Outcome::Reply(r) | Outcome::Finished(r, _) => {
                        note(fields, &r);
                        respond::reply(r)
                    }
                    Outcome::Stream(rx) => respond::sse(rx, OpenStream::open(&self.ops)),
                }
            }
        }
    }

    /// A handler run's trace context (`_meta` first, SEP-414) and the record of its end.
    fn start_run(
        &self,
        run: &Run,
        mut call: Call,
        fields: &mut LogFields<'_>,
    ) -> (Call, Option<OpRecord>) {
        if let Some(t) = TraceContext::from_meta(&run.params) {
            fields.ident.trace = Some(t.clone());
            call.trace = Some(t);
        }
        if !self.ops.records() {
            return (call, None);
        }
        let catalog = self.core.catalog();
        let (tool, arguments) = match run.target {
            Target::Tool(i) => (
                Some((i, catalog.tool_name(i))),
                catalog.tool(i).audit_arguments.then(|| run.arguments()),
            ),
            _ => (None, None),
        };
        let record = OpRecord::start(
            self.ops.clone(),
            self.clock.clone(),
            fields.ident.clone(),
            call.principal.clone(),
            run.method(),
            tool,
            arguments,
            call.now,
        );
        (call, Some(record))
    }

    /// An SSE response, counted as an open stream while it lives.
    fn sse(&self, rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Response<Body> {
        respond::sse(rx, OpenStream::open(&self.ops))
    }

    /// A long-lived SSE stream (GET, listen), counted as open while it lives.
    fn long_sse(&self, opened: crate::runtime::Opened) -> Response<Body> {
        respond::long_sse(
            opened,
            self.runtime.config.stream_lifetime,
            OpenStream::open(&self.ops),
        )
    }

    fn answer(
        &self,
        session: Option<&SessionRecord>,
        id: &Id,
        outcome: Result<serde_json::Value, serde_json::Value>,
        fields: &mut LogFields<'_>,
    ) {
        let delivered = session.is_some_and(|s| self.runtime.answer(s, id, outcome));
        if !delivered {
            fields.detail = Some(format!("response to unknown request id {id}"));
        }
    }

    /// A 2025-03-26 batch: items in order, handlers run one after another, one array answered.
    async fn batch<'a>(
        &'a self,
        items: Vec<BatchItem>,
        call: Call,
        fields: &mut LogFields<'a>,
    ) -> Response<Body> {
        let mut out: Vec<u8> = Vec::with_capacity(256);
        let mut any = false;
        let mut push = |out: &mut Vec<u8>, body: &[u8]| {
            out.push(if any { b',' } else { b'[' });
            out.extend_from_slice(body);
            any = true;
        };
        for item in items {
            match item {
                BatchItem::Reply(body) => push(&mut out, &body),
                BatchItem::Run(run) => {
                    let id = run.id.clone();
                    let (item_call, record) = self.start_run(&run, call.clone(), fields);
                    match self.runtime.call_to_reply(run, item_call, record).await {
                        Ok(reply) => push(&mut out, &reply.body),
                        Err(limit) => {
                            push(&mut out, &ProtocolError::Limit(limit).batch_item(Some(&id)))
                        }
                    }
                }
                BatchItem::Update(update, body) => {
                    if let Some(s) = &call.session {
                        let _ = self.runtime.update_session(s, &update).await;
                    }
                    push(&mut out, &body);
                }
                BatchItem::Cancel(id) => {
                    if let Some(s) = &call.session {
                        self.runtime.cancel(s, &id);
                    }
                }
                BatchItem::Answer(id, outcome) => {
                    self.answer(call.session.as_deref(), &id, outcome, fields)
                }
            }
        }
        if !any {
            return respond::reply(Reply::accepted());
        }
        out.push(b']');
        respond::reply(Reply::ok(out))
    }

    /// GET: the session's standalone stream, or a resumed one with `Last-Event-ID`.
    async fn get<'a, B>(
        &'a self,
        req: Request<B>,
        now: Now,
        fields: &mut LogFields<'a>,
    ) -> Response<Body> {
        let (parts, _) = req.into_parts();
        let principal = match self.authenticate(&parts, now, fields).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        if let Err(r) = self.core.stream_preconditions(&parts.headers) {
            return respond::reply(r);
        }
        if !Accept::from_headers(&parts.headers).sse {
            return TransportError::StreamNotAcceptable.response();
        }
        let sid = match self.core.session_id(&parts.headers) {
            Ok(s) => s,
            Err(r) => return respond::reply(r),
        };
        let record = match self.runtime.find_session(Some(sid), &principal, now).await {
            (_, Some(r)) => r,
            (fact, None) => return respond::reply(self.core.error_reply(&missing(&fact))),
        };
        let opened = match self.core.last_event_id(&parts.headers) {
            Err(r) => Err(r),
            Ok(Some(last)) => {
                fields.detail = Some(format!("resume {last}"));
                self.runtime
                    .resume(record.clone(), &principal, last)
                    .await
                    .map_err(|e| self.core.error_reply(&e))
            }
            Ok(None) => self
                .runtime
                .standalone(record.clone(), &principal)
                .await
                .map_err(|e| self.core.error_reply(&e)),
        };
        let resp = match opened {
            Ok(opened) => self.long_sse(opened),
            Err(r) => {
                note_reply(fields, &r);
                respond::reply(r)
            }
        };
        respond::with_session(resp, &record)
    }

    /// DELETE: ends the caller's session.
    async fn delete<'a, B>(
        &'a self,
        req: Request<B>,
        now: Now,
        fields: &mut LogFields<'a>,
    ) -> Response<Body> {
        let (parts, _) = req.into_parts();
        let principal = match self.authenticate(&parts, now, fields).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        if let Err(r) = self.core.stream_preconditions(&parts.headers) {
            return respond::reply(r);
        }
        let sid = match self.core.session_id(&parts.headers) {
            Ok(s) => s,
            Err(r) => return respond::reply(r),
        };
        match self.runtime.delete_session(sid, &principal, now).await {
            Ok(true) => respond::no_content(),
            Ok(false) => respond::reply(self.core.error_reply(&ProtocolError::SessionNotFound)),
            Err(e) => respond::reply(self.core.error_reply(&store_error(e))),
        }
    }
}

/// How long `/readyz` waits for the session store before calling it unreachable.
const READY_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The protocol error for a session lookup that found nothing usable.
fn missing(fact: &crate::core::SessionFact) -> ProtocolError {
    match fact {
        crate::core::SessionFact::Unavailable => ProtocolError::SessionStoreUnavailable,
        _ => ProtocolError::SessionNotFound,
    }
}

fn store_error(e: StoreError) -> ProtocolError {
    match e {
        StoreError::Full => ProtocolError::TooManySessions,
        StoreError::PrincipalFull => ProtocolError::PrincipalSessionCap,
        StoreError::Unavailable => ProtocolError::SessionStoreUnavailable,
    }
}

fn read_error(e: read::ReadError, max: u64) -> TransportError {
    match e {
        read::ReadError::TooLarge => TransportError::PayloadTooLarge(max),
        read::ReadError::Timeout => TransportError::BodyTimeout,
        read::ReadError::Broken | read::ReadError::Budget(_) => TransportError::BodyUnreadable,
    }
}

/// What a request reserves before its parse may run: the parsed form of JSON is a few times
/// the text (strings and numbers cost a `Value` each), so the body counts this many times over.
const PARSE_FACTOR: u64 = 8;
/// The least reservation, and a chunked body's first one: small requests never wait on it.
const PARSE_FLOOR: u64 = 16 * 1024;

/// The reservation for a body of `len` bytes.
fn reservation(len: u64) -> u64 {
    len.saturating_mul(PARSE_FACTOR).max(PARSE_FLOOR)
}

/// Copies a reply's log detail into the request's log fields.
fn note_reply(fields: &mut LogFields<'_>, r: &Reply) {
    if r.detail.is_some() {
        fields.detail.clone_from(&r.detail);
    }
}
