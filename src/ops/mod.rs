//! Operations: what the server tells its operator about each request: the request id, client address and trace context, the metrics, and the audit trail.
//!
//! * `request`: the client behind trusted proxies, request ids, W3C trace context (pure).
//! * `metrics`: lock-free counters and the operation histogram, rendered for Prometheus.
//! * [`audit`]: the audit sink and its default writer.
//!
//! The shell asks [`Ops`] to identify each request and reports to it what happened; a handler
//! run carries an [`OpRecord`] that reports its own end, so a streamed call is counted when its
//! result is sent, not when its stream opens.

pub mod audit;
pub(crate) mod metrics;
pub(crate) mod request;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use crate::auth::{AuthError, Principal};
use crate::core::Ending;
use crate::log;
use crate::sources::{Clock, Now};
use audit::AuditSink;
use metrics::{ErrorType, Metrics};
use request::{RequestIds, TraceContext, TrustedProxies};

/// Arguments larger than this are not copied into an audit line (their size is).
const MAX_AUDIT_ARGUMENTS: usize = 4096;

/// The server's operational outputs and the settings they need.
#[derive(Debug)]
pub(crate) struct Ops {
    pub(crate) metrics: Option<Metrics>,
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    pub(crate) proxies: TrustedProxies,
    pub(crate) ids: RequestIds,
}

impl std::fmt::Debug for dyn AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

/// Who one request is: its id, where it comes from, the trace it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Ident {
    /// Generated, or a trusted proxy's `X-Request-Id`; echoed on the response.
    pub(crate) request_id: HeaderValue,
    /// The peer, or the client a trusted proxy names.
    pub(crate) client: Option<IpAddr>,
    /// From the `traceparent` header; a message's `_meta` may name another for its handler.
    pub(crate) trace: Option<TraceContext>,
}

impl Ident {
    /// The request id as text (always visible ASCII).
    pub(crate) fn id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }
}

/// How a tool call or an auth decision ended, as the audit line says it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict<'a> {
    /// Allowed (auth) or completed with a result (tool call).
    Ok,
    /// A tool result with `isError: true`.
    ToolError,
    /// A protocol error with this JSON-RPC code.
    Error(i32),
    /// Refused for this reason (a label such as `insufficient_scope`), with a detail.
    Denied(&'static str, &'a str),
    /// The client left before the result.
    Cancelled,
}

impl Verdict<'_> {
    fn from_ending(e: Ending) -> Self {
        match e {
            Ending::Ok => Self::Ok,
            Ending::ToolError => Self::ToolError,
            Ending::Error(c) => Self::Error(c),
        }
    }

    fn error_type(self) -> ErrorType {
        match self {
            Self::Ok => ErrorType::None,
            Self::ToolError => ErrorType::ToolError,
            Self::Error(c) => ErrorType::Code(c),
            Self::Cancelled => ErrorType::Cancelled,
            Self::Denied("insufficient_scope", _) => ErrorType::InsufficientScope,
            Self::Denied(_, _) => ErrorType::InsufficientUserAuthentication,
        }
    }
}

/// The reason label of an auth failure (bounded; see `metrics::AUTH_REASONS`).
pub(crate) fn auth_reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::NoCredentials => "no_credentials",
        AuthError::InvalidRequest(_) => "invalid_request",
        AuthError::MalformedBearer => "malformed_bearer",
        AuthError::InvalidToken(j) => metrics::jwt_reason(j.description()),
        AuthError::InsufficientScope { .. } => "insufficient_scope",
        AuthError::InsufficientUserAuthentication { .. } => "insufficient_user_authentication",
        AuthError::KeysUnavailable { .. } => "keys_unavailable",
        AuthError::TooManySignatureFailures { .. } => "too_many_signature_failures",
    }
}

impl Ops {
    /// Ops with nothing enabled but request ids.
    pub(crate) fn new(seed: [u8; 8]) -> Self {
        Self {
            metrics: None,
            audit: None,
            proxies: TrustedProxies::default(),
            ids: RequestIds::new(seed),
        }
    }

    /// Names a request: its id, its client, its header trace context.
    pub(crate) fn identify(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Ident {
        let peer_ip = peer.map(|p| p.ip());
        let trusted_peer = peer_ip.is_some_and(|ip| self.proxies.contains(ip));
        let request_id = trusted_peer
            .then(|| request::forwarded_request_id(headers))
            .flatten()
            .unwrap_or_else(|| self.ids.next());
        Ident {
            request_id,
            client: request::client_address(peer_ip, headers, &self.proxies),
            trace: TraceContext::from_headers(headers),
        }
    }

    /// True when anything records operations (so the shell can skip the bookkeeping).
    pub(crate) fn records(&self) -> bool {
        self.metrics.is_some() || self.audit.is_some()
    }

    /// An auth decision that reached the verifier (a request without credentials did not).
    pub(crate) fn auth_decision(
        &self,
        ident: &Ident,
        now: Now,
        outcome: Result<&Principal, &AuthError>,
    ) {
        let reason = outcome.err().map_or("ok", auth_reason);
        if let Some(m) = &self.metrics {
            m.auth(outcome.is_ok(), reason);
        }
        if matches!(outcome, Err(AuthError::NoCredentials)) {
            return;
        }
        if let Some(a) = &self.audit {
            let mut line = Audit::new("auth", now, ident);
            match outcome {
                Ok(p) => {
                    line.principal(p).text("outcome", "allowed");
                }
                Err(e) => {
                    line.text("outcome", "denied")
                        .text("reason", reason)
                        .text("detail", &e.to_string());
                }
            }
            a.write(line.finish());
        }
    }

    /// An operation answered without running a handler (lists, errors, denials).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answered(
        &self,
        ident: &Ident,
        principal: Option<&Principal>,
        method: &'static str,
        tool: Option<(usize, &str)>,
        verdict: Verdict<'_>,
        start: Now,
        end: Now,
    ) {
        let micros = start.micros_until(end);
        if let Some(m) = &self.metrics {
            m.operation(method, tool.map(|t| t.0), verdict.error_type(), micros);
        }
        if method == "tools/call" {
            if let Some(a) = &self.audit {
                a.write(tool_call_line(
                    ident,
                    principal,
                    tool.map(|t| t.1),
                    verdict,
                    end,
                    micros,
                    None,
                ));
            }
        }
    }
}

/// Counts one open SSE response while it lives.
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<Ops>);

impl OpenStream {
    /// Counts a stream when metrics are on.
    pub(crate) fn open(ops: &Arc<Ops>) -> Option<Self> {
        let m = ops.metrics.as_ref()?;
        m.streams(1);
        Some(Self(ops.clone()))
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        if let Some(m) = &self.0.metrics {
            m.streams(-1);
        }
    }
}

/// A handler run in flight. It is recorded once: when its reply is built, or as cancelled
/// when it is dropped before that (the client left).
pub(crate) struct OpRecord {
    ops: Arc<Ops>,
    clock: Arc<dyn Clock>,
    ident: Ident,
    principal: Arc<Principal>,
    method: &'static str,
    /// The tool's index in the catalog (its metrics label).
    tool: Option<usize>,
    /// The tool's name, copied only when the audit log will write it.
    tool_name: Option<Box<str>>,
    arguments: Option<String>,
    start: Now,
    done: bool,
}

impl std::fmt::Debug for OpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpRecord")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl OpRecord {
    /// Starts recording a run of `method` (for `tools/call`, of the tool `tool`); `arguments`
    /// are kept only for a tool that lets the audit log record them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        ops: Arc<Ops>,
        clock: Arc<dyn Clock>,
        ident: Ident,
        principal: Arc<Principal>,
        method: &'static str,
        tool: Option<(usize, &str)>,
        arguments: Option<&serde_json::Value>,
        start: Now,
    ) -> Self {
        if let Some(m) = &ops.metrics {
            m.in_flight(1);
        }
        let arguments = match (&ops.audit, arguments) {
            (Some(_), Some(v)) => serde_json::to_string(v).ok(),
            _ => None,
        };
        let tool_name = match (&ops.audit, tool) {
            (Some(_), Some((_, name))) => Some(name.into()),
            _ => None,
        };
        Self {
            ops,
            clock,
            ident,
            principal,
            method,
            tool: tool.map(|t| t.0),
            tool_name,
            arguments,
            start,
            done: false,
        }
    }

    /// The run ended with this reply; returns the clock reading taken as its end, so the
    /// request's log line can share it instead of reading the clock again.
    pub(crate) fn finish(mut self, ending: Ending) -> Now {
        let end = Now::read(&*self.clock);
        self.record(Verdict::from_ending(ending), end);
        end
    }

    fn record(&mut self, verdict: Verdict<'_>, end: Now) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let micros = self.start.micros_until(end);
        if let Some(m) = &self.ops.metrics {
            m.in_flight(-1);
            m.operation(self.method, self.tool, verdict.error_type(), micros);
        }
        if self.method == "tools/call" {
            if let Some(a) = &self.ops.audit {
                a.write(tool_call_line(
                    &self.ident,
                    Some(&self.principal),
                    self.tool_name.as_deref(),
                    verdict,
                    end,
                    micros,
                    self.arguments.as_deref(),
                ));
            }
        }
    }
}

impl Drop for OpRecord {
    fn drop(&mut self) {
        if !self.done {
            self.record(Verdict::Cancelled, Now::read(&*self.clock));
        }
    }
}

fn tool_call_line(
    ident: &Ident,
    principal: Option<&Principal>,
    tool: Option<&str>,
    verdict: Verdict<'_>,
    end: Now,
    micros: u64,
    arguments: Option<&str>,
) -> String {
    let mut line = Audit::new("tool_call", end, ident);
    if let Some(p) = principal {
        line.principal(p);
    }
    if let Some(t) = tool {
        line.text("tool", t);
    }
    match verdict {
        Verdict::Ok => line.text("outcome", "ok"),
        Verdict::ToolError => line.text("outcome", "tool_error"),
        Verdict::Cancelled => line.text("outcome", "cancelled"),
        Verdict::Error(code) => line
            .text("outcome", "error")
            .number("code", i64::from(code)),
        Verdict::Denied(reason, detail) => line
            .text("outcome", "denied")
            .text("reason", reason)
            .text("detail", detail),
    };
    line.number("duration_us", micros as i64);
    if let Some(args) = arguments {
        if args.len() <= MAX_AUDIT_ARGUMENTS {
            line.raw("arguments", args);
        } else {
            line.number("arguments_bytes", args.len() as i64);
        }
    }
    line.finish()
}

/// One audit line: a JSON object built in place.
struct Audit(String);

impl Audit {
    fn new(event: &str, time: Now, ident: &Ident) -> Self {
        let mut s = String::with_capacity(256);
        s.push_str("{\"ts\":\"");
        log::write_timestamp(&mut s, time.system_time());
        s.push_str("\",\"event\":\"");
        s.push_str(event);
        s.push('"');
        let mut a = Self(s);
        a.text("request_id", ident.id());
        if let Some(c) = ident.client {
            a.text("client", &c.to_string());
        }
        if let Some(t) = &ident.trace {
            a.text("trace_id", t.trace_id());
        }
        a
    }

    fn principal(&mut self, p: &Principal) -> &mut Self {
        self.text("iss", &p.issuer);
        if let Some(sub) = &p.subject {
            self.text("sub", sub);
        }
        self
    }

    fn text(&mut self, key: &str, value: &str) -> &mut Self {
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
        log::json_string(&mut self.0, value);
        self
    }

    fn number(&mut self, key: &str, value: i64) -> &mut Self {
        use std::fmt::Write as _;
        let _ = write!(self.0, ",\"{key}\":{value}");
        self
    }

    /// A member whose value is already JSON (serialized by serde_json).
    fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
        self.0.push_str(json);
        self
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}
