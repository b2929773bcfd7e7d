//! The hyper shell: routes requests, runs the checks in order, performs the I/O the core decides on.
//!
//! * [`checks`]: Host/Origin, Content-Type, Accept (pure).
//! * [`body`]: the response body and the SSE response builder.
//! * `post`, `stream`, `call`: POST; GET, DELETE and listen streams; running a handler (JSON or SSE).
//! * `dev`: the dev issuer's routes (only with `--dev`).

pub mod body;
mod call;
pub mod checks;
mod dev;
mod post;
mod stream;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;

use crate::auth::metadata::WELL_KNOWN_PREFIX;
use crate::auth::{AuthError, Authenticator, Challenger, Principal};
use crate::dev::DevIssuer;
use crate::jsonrpc::{self, ErrorObject, Id};
use crate::log;
use crate::mcp::context::CancelToken;
use crate::mcp::{Core, RequestError};
use crate::session::SessionStore;
pub use body::Body;
use checks::HostPolicy;

/// How requests are authorized.
#[derive(Debug)]
pub enum AuthMode {
    /// Verify every request's bearer token.
    Jwt {
        /// The verifier.
        authenticator: Authenticator,
        /// Challenge builder.
        challenger: Challenger,
    },
    /// No authorization at all (conformance testing). Named loudly on purpose.
    DangerouslyDisabled,
}

/// Transport limits and switches.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The canonical MCP URL (`resource` in the metadata).
    pub resource_url: String,
    /// The path-inserted metadata URL sent in challenges.
    pub resource_metadata_url: String,
    /// Paths the metadata document is served at.
    pub metadata_paths: Vec<String>,
    /// Host/Origin policy.
    pub hosts: HostPolicy,
    /// Request body cap in bytes. Defaults to 4 MiB.
    pub max_body_bytes: u64,
    /// How long a client may take to send its body. Defaults to 30 s.
    pub body_timeout: Duration,
    /// SSE keep-alive interval. Defaults to 15 s.
    pub sse_keepalive: Duration,
}

/// Everything a request handler needs; shared by `Arc`, never locked as a whole.
pub struct App {
    pub(crate) core: Core,
    pub(crate) notifier: crate::mcp::notify::Notifier,
    pub(crate) auth: AuthMode,
    pub(crate) sessions: SessionStore,
    pub(crate) config: HttpConfig,
    pub(crate) metadata_doc: Bytes,
    pub(crate) dev: Option<Arc<DevIssuer>>,
    pub(crate) shutdown: CancelToken,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the per-request log line reports besides method, path, status and latency.
#[derive(Debug, Default)]
pub(crate) struct LogFields {
    pub(crate) rpc: Option<String>,
    pub(crate) tool: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) detail: Option<String>,
}

/// Seconds since the Unix epoch, read once per request by the shell and passed into the core.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

impl App {
    /// Handles one request and writes its log line.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let mut fields = LogFields::default();
        let resp = self.route(req, &mut fields).await;
        if log::enabled(log::Level::Info) && path != "/healthz" {
            let mut line = String::with_capacity(160);
            log::field(&mut line, "method", method.as_str());
            log::field(&mut line, "path", &path);
            log::field(&mut line, "status", resp.status().as_str());
            log::field(
                &mut line,
                "latency_us",
                &start.elapsed().as_micros().to_string(),
            );
            for (k, v) in [
                ("rpc", &fields.rpc),
                ("tool", &fields.tool),
                ("sub", &fields.sub),
                ("detail", &fields.detail),
            ] {
                if let Some(v) = v {
                    log::field(&mut line, k, v);
                }
            }
            log::info(format_args!("request{line}"));
        }
        Ok(resp)
    }

    async fn route(
        self: &Arc<Self>,
        req: Request<Incoming>,
        fields: &mut LogFields,
    ) -> Response<Body> {
        let path = req.uri().path();
        if path == "/mcp" || path == "/mcp/" {
            return self.mcp(req, fields).await;
        }
        if path == "/healthz" {
            return match *req.method() {
                Method::GET | Method::HEAD => {
                    json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"))
                }
                _ => method_not_allowed("GET, HEAD"),
            };
        }
        if path.starts_with(WELL_KNOWN_PREFIX)
            && self.config.metadata_paths.iter().any(|p| p == path)
        {
            return self.metadata(&req);
        }
        if let Some(dev) = &self.dev {
            if let Some(resp) = dev::route(dev, &self.config, req).await {
                return resp;
            }
            return not_found();
        }
        not_found()
    }

    fn metadata(&self, req: &Request<Incoming>) -> Response<Body> {
        match *req.method() {
            Method::GET | Method::HEAD => {
                let mut resp = json(StatusCode::OK, self.metadata_doc.clone());
                let h = resp.headers_mut();
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                );
                // A public document: any browser origin may read it.
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                resp
            }
            Method::OPTIONS => {
                let mut resp = empty(StatusCode::NO_CONTENT);
                let h = resp.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, OPTIONS"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
                resp
            }
            _ => method_not_allowed("GET, HEAD, OPTIONS"),
        }
    }

    async fn mcp(
        self: &Arc<Self>,
        req: Request<Incoming>,
        fields: &mut LogFields,
    ) -> Response<Body> {
        // 1. DNS-rebinding protection comes before anything else, auth included.
        if let Err(e) = self.config.hosts.check(req.headers()) {
            fields.detail = Some(format!("{e:?}"));
            return rpc_error_response(
                StatusCode::FORBIDDEN,
                None,
                &ErrorObject::new(jsonrpc::ErrorCode::INVALID_REQUEST, e.message()),
            );
        }
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut resp = match *req.method() {
            Method::POST => post::handle(self, req, fields).await,
            Method::GET => stream::get(self, req, fields).await,
            Method::DELETE => stream::delete(self, req, fields).await,
            Method::OPTIONS => preflight(req.headers()),
            _ => method_not_allowed("GET, POST, DELETE, OPTIONS"),
        };
        if let Some(origin) = origin {
            // Origin was checked above, so echoing it grants only allowed origins.
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version"),
            );
        }
        resp
    }

    /// Authenticates or returns the rejection response. With auth disabled, everyone is anonymous.
    pub(crate) async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        fields: &mut LogFields,
    ) -> Result<Arc<Principal>, Response<Body>> {
        let (authenticator, challenger) = match &self.auth {
            AuthMode::DangerouslyDisabled => return Ok(Arc::new(anonymous())),
            AuthMode::Jwt {
                authenticator,
                challenger,
            } => (authenticator, challenger),
        };
        match authenticator.authenticate(headers, None, unix_now()).await {
            Ok(p) => {
                fields.sub = p.subject.clone();
                Ok(p)
            }
            Err(e) => {
                fields.detail = Some(e.to_string());
                Err(auth_rejection(challenger, &e))
            }
        }
    }

    /// Checks a tool's own scopes; `Some` is the 403 response.
    pub(crate) fn scope_rejection(
        &self,
        principal: &Principal,
        scopes: &[String],
    ) -> Option<Response<Body>> {
        match &self.auth {
            AuthMode::DangerouslyDisabled => None,
            AuthMode::Jwt {
                authenticator,
                challenger,
            } => authenticator
                .check_scopes(principal, scopes)
                .err()
                .map(|e| auth_rejection(challenger, &e)),
        }
    }
}

fn auth_rejection(challenger: &Challenger, e: &AuthError) -> Response<Body> {
    let r = challenger.reject(e);
    let mut resp = json(r.status, r.body);
    if let Some(w) = r.www_authenticate {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, w);
    }
    if let Some(secs) = r.retry_after_secs {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Request headers a browser may send to `/mcp`, besides the per-tool `Mcp-Param-*` ones.
const CORS_ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Session-Id, Last-Event-ID";

fn preflight(headers: &http::HeaderMap) -> Response<Body> {
    let mut resp = empty(StatusCode::NO_CONTENT);
    // `Mcp-Param-*` names vary per tool and cannot be wildcarded, so requested ones are added.
    let mut allowed = String::from(CORS_ALLOWED_HEADERS);
    if let Some(requested) = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        for name in requested.split(',').map(str::trim) {
            let is_param = name.len() > 10 && name[..10].eq_ignore_ascii_case("mcp-param-");
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
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_str(&allowed).expect("checked token characters"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON response from a value.
pub(crate) fn json_value(status: StatusCode, value: &Value) -> Response<Body> {
    json(
        status,
        Bytes::from(serde_json::to_vec(value).expect("a Value serializes")),
    )
}

/// A response with no body.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

/// A JSON-RPC error as a whole response.
pub(crate) fn rpc_error_response(
    status: StatusCode,
    id: Option<&Id>,
    error: &ErrorObject,
) -> Response<Body> {
    json_value(status, &jsonrpc::error_response(id, error))
}

/// A [`RequestError`] as a whole response: its one mapping, plus Retry-After where it applies.
pub(crate) fn request_error(
    err: &RequestError,
    modern: bool,
    id: Option<&Id>,
    fields: &mut LogFields,
) -> Response<Body> {
    fields.detail.get_or_insert_with(|| err.to_string());
    let (status, obj) = err.to_wire(modern);
    let mut resp = rpc_error_response(status, id, &obj);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        Bytes::from(format!(
            "{{\"error\":\"method_not_allowed\",\"allow\":\"{allow}\"}}"
        )),
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn not_found() -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        Bytes::from_static(b"{\"error\":\"not_found\"}"),
    )
}
