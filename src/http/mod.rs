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
use crate::core::{BatchItem, Core, Decision, Facts, Post, ProtocolError, Reply, Step};
use crate::log;
use crate::runtime::limits::ByteBudget;
use crate::runtime::session::{SessionRecord, StoreError};
use crate::runtime::{Call, Outcome, Runtime};
use crate::serve::ConnState;
use crate::sources::{Clock, Now};
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

/// What the request log line reports besides method, path, status and latency.
#[derive(Default)]
struct LogFields<'a> {
    rpc: Option<&'static str>,
    tool: Option<&'a str>,
    conn: Conn,
    principal: Option<Arc<Principal>>,
    detail: Option<String>,
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
            log::emit(log::Level::Info, now.system_time(), l);
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
        let mut fields = LogFields {
            conn,
            ..LogFields::default()
        };
        let resp = self.route(req, now, &mut fields).await;
        if uri.path() != "/healthz" && log::enabled(log::Level::Info) {
            self.log_request(&method, &uri, &resp, now, &fields);
        }
        resp
    }

    fn log_request(
        &self,
        method: &Method,
        uri: &Uri,
        resp: &Response<Body>,
        start: Now,
        fields: &LogFields<'_>,
    ) {
        let end = Now::read(&*self.clock);
        let status = resp.status();
        if status.as_u16() >= 400 {
            let kind = summary::Kind {
                status: status.as_u16(),
                method: method.as_str(),
                path: uri.path(),
                rpc: fields.rpc,
                detail: fields.detail.as_deref(),
            };
            let mut held = |l: String| log::emit(log::Level::Info, end.system_time(), l);
            if self.rejections.admit(&kind, end.unix_secs(), &mut held) == summary::Verdict::Held {
                return;
            }
        }
        let mut line = String::with_capacity(160);
        line.push_str("request");
        log::field(&mut line, "method", method.as_str());
        log::field(&mut line, "path", uri.path());
        log::field(&mut line, "status", status.as_str());
        log::field(
            &mut line,
            "latency_us",
            itoa(start.micros_until(end), &mut [0u8; 20]),
        );
        if let Some(v) = fields.rpc {
            log::field(&mut line, "rpc", v);
        }
        if let Some(v) = fields.tool {
            log::field(&mut line, "tool", v);
        }
        if let Some(sub) = fields.principal.as_ref().and_then(|p| p.subject.as_deref()) {
            log::field(&mut line, "sub", sub);
        }
        if let Some(v) = &fields.detail {
            log::field(&mut line, "detail", v);
        }
        log::emit(log::Level::Info, end.system_time(), line);
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
            return self.endpoint(req, now, fields).await;
        }
        if path == "/healthz" {
            return match *req.method() {
                Method::GET | Method::HEAD => respond::health(),
                _ => TransportError::MethodNotAllowed("GET, HEAD").response(),
            };
        }
        if self.config.metadata_paths.iter().any(|p| p == path) {
            return match *req.method() {
                Method::GET | Method::HEAD | Method::OPTIONS => {
                    respond::metadata(req.method(), &self.metadata_doc)
                }
                _ => TransportError::MethodNotAllowed("GET, HEAD, OPTIONS").response(),
            };
        }
        match &self.fallback {
            Some(f) => {
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
        if let Err(e) = self.config.hosts.check(req.uri(), req.headers()) {
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
        let peer = fields.conn.peer.map(|p| p.ip());
        let memo = fields.conn.memo.clone();
        match authenticator
            .authenticate_on(&parts.headers, peer, now.unix_secs(), memo.as_deref())
            .await
        {
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
        };
        let resp = self.perform(decision, call, fields).await;
        match &session {
            Some(s) => respond::with_session(resp, &s.id),
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
        };
        match decision {
            Decision::Reply(r) => {
                note(fields, &r);
                respond::reply(r)
            }
            Decision::Run(run) => {
                if let crate::core::Target::Tool(i) = run.target {
                    fields.tool = Some(self.core.catalog().tool_name(i));
                }
                let (modern, id) = (run.version.is_modern(), run.id.clone());
                match self.runtime.call(run, call).await {
                    Ok(Outcome::Reply(r)) => {
                        note(fields, &r);
                        respond::reply(r)
                    }
                    Ok(Outcome::Stream(rx)) => respond::sse(rx),
                    Err(limit) => {
                        fields.detail = Some(format!("limit reached: {}", limit.setting()));
                        respond::reply(ProtocolError::Limit(limit).reply(modern, Some(&id)))
                    }
                }
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
                        respond::with_session(respond::reply(reply), &record.id)
                    }
                    Err(e) => {
                        fields.detail = Some(e.to_string());
                        respond::reply(store_error(e).reply(false, Some(&id)))
                    }
                }
            }
            Decision::Update(update, reply) => {
                let Some(session) = &call.session else {
                    return respond::reply(ProtocolError::SessionNotFound.reply(false, None));
                };
                match self.runtime.update_session(session, &update).await {
                    Ok(_) => respond::reply(reply),
                    Err(e) => respond::reply(store_error(e).reply(false, None)),
                }
            }
            Decision::Listen(listen) => {
                let id = listen.id.clone();
                match self.runtime.listen(listen, &call.principal) {
                    Ok(opened) => respond::long_sse(opened, self.runtime.config.stream_lifetime),
                    Err(e) => {
                        fields.detail = Some(e.to_string());
                        respond::reply(e.reply(true, Some(&id)))
                    }
                }
            }
            Decision::Cancel(id) => {
                if let Some(s) = &call.session {
                    self.runtime.cancel(s, &id);
                }
                respond::reply(Reply::accepted())
            }
            Decision::Answer(id, outcome) => {
                self.answer(call.session.as_deref(), &id, outcome, fields);
                respond::reply(Reply::accepted())
            }
            Decision::InsufficientScope(scopes) => {
                fields.detail = Some("insufficient scope for tool".into());
                self.scope_rejection(&call.principal, &scopes)
            }
            Decision::Batch(items) => self.batch(items, call, fields).await,
            Decision::Task(task) => {
                match self
                    .runtime
                    .task_request(task, call.principal.clone(), call.accepts_sse)
                    .await
                {
                    Outcome::Reply(r) => {
                        note(fields, &r);
                        respond::reply(r)
                    }
                    Outcome::Stream(rx) => respond::sse(rx),
                }
            }
        }
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
                    match self.runtime.call_to_reply(run, call.clone()).await {
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
                    .resume(&record, &principal, last)
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
            Ok(opened) => respond::long_sse(opened, self.runtime.config.stream_lifetime),
            Err(r) => {
                note_reply(fields, &r);
                respond::reply(r)
            }
        };
        respond::with_session(resp, &record.id)
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

/// Formats `n` in decimal into `buf` without allocating.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("ascii digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itoa_writes_decimal() {
        assert_eq!(itoa(0, &mut [0; 20]), "0");
        assert_eq!(itoa(412, &mut [0; 20]), "412");
        assert_eq!(itoa(u64::MAX, &mut [0; 20]), "18446744073709551615");
    }
}
