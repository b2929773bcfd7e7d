//! The embedding API: a builder that configures auth, limits and what the server offers, and the server it builds.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use crate::auth::metadata::{self, WELL_KNOWN_PREFIX};
use crate::auth::{Authenticator, Challenger};
use crate::body::Body;
use crate::core::catalog::{Catalog, CatalogParts, Listing, ServerInfo};
use crate::core::headers::AnnotationError;
use crate::core::{Core, ListChanged};
use crate::defaults;
use crate::http::checks::{host_name, HostPolicy};
use crate::http::{AuthMode, Fallback, HttpConfig, McpService, Shared};
use crate::log::{self, LogSink};
use crate::notify::Notifier;
use crate::ops::audit::AuditSink;
use crate::ops::metrics::Metrics;
use crate::ops::Ops;
use crate::prompt::Prompt;
use crate::resource::{Resource, ResourceTemplate};
use crate::runtime::bus::Peers;
use crate::runtime::context::CancelToken;
use crate::runtime::events::{EventStore, LiveStreams, MemoryEvents};
use crate::runtime::limits::{ByteBudget, Caps, PrincipalLimits};
use crate::runtime::session::{LiveSessions, MemorySessions, SessionLimits, SessionStore};
use crate::runtime::tasks::{MemoryTasks, TaskConfig, TaskLimits, TaskShared, TaskStore, Tasks};
use crate::runtime::{Handlers, Runtime, RuntimeConfig};
use crate::sources::{Clock, Now, RandomSource, SystemClock, SystemRandom};
use crate::tool::{Tool, ToolDefinitionError};

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither an authenticator nor the explicit opt-out was given.
    NoAuth,
    /// The resource URL is not an absolute http(s) URL without a fragment.
    BadResourceUrl(String),
    /// A tool name is empty, too long, or has characters clients reject.
    BadToolName(String),
    /// Two tools share a name.
    DuplicateTool(String),
    /// A tool's input schema root is not an object schema.
    InputSchemaNotObject(String),
    /// A tool's `x-mcp-header` annotation breaks the 2026-07-28 rules.
    BadParamHeader(String, AnnotationError),
    /// The random source failed while making the `requestState` sealing key.
    NoRandomness,
    /// A trusted-proxy entry is neither an IP address nor a CIDR block.
    BadTrustedProxy(String),
    /// A tool's step-up policy cannot be sent in a challenge.
    BadStepUp(String, &'static str),
    /// The endpoint path does not start with `/`, or holds `?`, `#` or whitespace.
    BadEndpointPath(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAuth => f.write_str(
                "no authenticator configured (use dangerously_disable_auth to run without one)",
            ),
            Self::BadResourceUrl(u) => {
                write!(f, "resource url {u:?} is not an absolute http(s) url")
            }
            Self::BadToolName(n) => write!(
                f,
                "tool name {n:?} must be 1-64 characters of [A-Za-z0-9_.-]"
            ),
            Self::DuplicateTool(n) => write!(f, "tool {n:?} is registered twice"),
            Self::InputSchemaNotObject(n) => {
                write!(f, "tool {n:?}: the input schema must be an object schema")
            }
            Self::BadParamHeader(n, why) => write!(f, "tool {n:?}: {why}"),
            Self::NoRandomness => f.write_str("the random source failed"),
            Self::BadTrustedProxy(e) => {
                write!(
                    f,
                    "trusted proxy {e:?} is not an IP address or a CIDR block"
                )
            }
            Self::BadStepUp(n, why) => write!(f, "tool {n:?}: {why}"),
            Self::BadEndpointPath(p) => write!(
                f,
                "endpoint path {p:?} must start with / and hold no ?, # or whitespace"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Configures a server. Every setting has a documented default except auth, which must be chosen.
///
/// ```
/// use std::sync::Arc;
/// use vouch_mcp::auth::{AudiencePolicy, Authenticator, KeySet, Policy, StaticKeys};
/// use vouch_mcp::{CallToolResult, RequestContext, ServerBuilder, Tool};
///
/// let resource = "http://localhost:3000/mcp";
/// let keys = KeySet::parse(br#"{"keys":[]}"#).map(|(set, _)| set).unwrap_or_default();
/// let policy = Policy::new("https://issuer.example", AudiencePolicy::OneOf(vec![resource.into()]));
/// let server = ServerBuilder::new("my-server", "1.0.0", resource)
///     .authenticator(Authenticator::new(policy, Arc::new(StaticKeys(Arc::new(keys))), vec![]))
///     .tool(Tool::new("hello", "Greets the caller", |ctx: RequestContext| async move {
///         let sub = ctx.principal().subject.clone().unwrap_or_default();
///         Ok(CallToolResult::text(format!("hello, {sub}")))
///     }))
///     .build()
///     .unwrap();
/// assert_eq!(server.resource_metadata_url(), "http://localhost:3000/.well-known/oauth-protected-resource/mcp");
/// ```
pub struct ServerBuilder {
    info: ServerInfo,
    tools: Vec<Tool>,
    prompts: Vec<Prompt>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    logging: bool,
    list_changed: ListChanged,
    notifier: Notifier,
    auth: Option<AuthMode>,
    resource_url: String,
    resource_name: Option<String>,
    scopes_supported: Vec<String>,
    hosts: HostPolicy,
    max_body_bytes: u64,
    session_idle: Duration,
    max_sessions: usize,
    max_sessions_per_principal: usize,
    max_inflight_bytes: u64,
    max_batch: usize,
    max_calls_per_principal: usize,
    max_streams_per_principal: usize,
    max_streams: usize,
    stream_lifetime: Duration,
    max_connections: usize,
    write_timeout: Duration,
    idle_timeout: Duration,
    page_size: usize,
    list_ttl_ms: u64,
    sse_keepalive: Duration,
    shutdown_grace: Duration,
    header_read_timeout: Duration,
    body_timeout: Duration,
    state_key: Option<[u8; 32]>,
    task_ttl: Duration,
    max_tasks: usize,
    max_tasks_per_principal: usize,
    task_poll_interval: Duration,
    task_lease: Duration,
    task_immediate: Duration,
    task_cancel_grace: Duration,
    task_store: Option<Arc<dyn TaskStore>>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    log_sink: Option<Arc<dyn LogSink>>,
    fallback: Option<Fallback>,
    metrics: bool,
    audit: Option<Arc<dyn AuditSink>>,
    trusted_proxies: Vec<String>,
    endpoint_path: Option<String>,
    #[cfg(feature = "redis")]
    redis: Option<crate::runtime::redis::RedisBackend>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("info", &self.info)
            .field("resource_url", &self.resource_url)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// A server named `name` at `version`, serving `resource_url` (the canonical MCP URL, e.g. `https://h/mcp`).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        resource_url: impl Into<String>,
    ) -> Self {
        Self {
            info: ServerInfo {
                name: name.into(),
                version: version.into(),
                title: None,
                instructions: None,
            },
            tools: Vec::new(),
            prompts: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            logging: false,
            list_changed: ListChanged::default(),
            notifier: Notifier::new(),
            auth: None,
            resource_url: resource_url.into(),
            resource_name: None,
            scopes_supported: Vec::new(),
            hosts: HostPolicy::default(),
            max_body_bytes: defaults::MAX_BODY_BYTES,
            session_idle: defaults::SESSION_IDLE,
            max_sessions: defaults::MAX_SESSIONS,
            max_sessions_per_principal: defaults::MAX_SESSIONS_PER_PRINCIPAL,
            max_inflight_bytes: defaults::MAX_INFLIGHT_BYTES,
            max_batch: defaults::MAX_BATCH,
            max_calls_per_principal: defaults::MAX_CALLS_PER_PRINCIPAL,
            max_streams_per_principal: defaults::MAX_STREAMS_PER_PRINCIPAL,
            max_streams: defaults::MAX_STREAMS,
            stream_lifetime: defaults::STREAM_LIFETIME,
            max_connections: crate::serve::default_max_connections(),
            write_timeout: defaults::WRITE_TIMEOUT,
            idle_timeout: defaults::IDLE_TIMEOUT,
            page_size: defaults::PAGE_SIZE,
            list_ttl_ms: defaults::LIST_TTL_MS,
            sse_keepalive: defaults::SSE_KEEPALIVE,
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            header_read_timeout: defaults::HEADER_READ_TIMEOUT,
            body_timeout: defaults::BODY_TIMEOUT,
            state_key: None,
            task_ttl: defaults::TASK_TTL,
            max_tasks: defaults::MAX_TASKS,
            max_tasks_per_principal: defaults::MAX_TASKS_PER_PRINCIPAL,
            task_poll_interval: defaults::TASK_POLL_INTERVAL,
            task_lease: defaults::TASK_LEASE,
            task_immediate: defaults::TASK_IMMEDIATE,
            task_cancel_grace: defaults::TASK_CANCEL_GRACE,
            task_store: None,
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom::new()),
            log_sink: None,
            fallback: None,
            metrics: false,
            audit: None,
            trusted_proxies: Vec::new(),
            endpoint_path: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Verifies every request with `authenticator`.
    pub fn authenticator(mut self, authenticator: Authenticator) -> Self {
        self.auth = Some(AuthMode::Jwt {
            authenticator,
            challenger: Challenger::new("", &[]),
        });
        self
    }

    /// Runs with no authorization at all. Only for protocol test suites that cannot send tokens;
    /// a warning is logged at startup.
    pub fn dangerously_disable_auth(mut self) -> Self {
        self.auth = Some(AuthMode::DangerouslyDisabled);
        self
    }

    /// A human title for the server.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.info.title = Some(title.into());
        self
    }

    /// Instructions for the model, sent at initialize/discover.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.info.instructions = Some(text.into());
        self
    }

    /// Registers a tool; `tools/list` keeps registration order.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Registers a prompt (advertises the `prompts` capability).
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompts.push(prompt);
        self
    }

    /// Registers a resource (advertises the `resources` capability).
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    /// Registers a resource template.
    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.templates.push(template);
        self
    }

    /// Offers the `logging` capability: `logging/setLevel` (initialize era), `_meta` log levels
    /// (2026-07-28), and handlers' `RequestContext::log` messages for clients that ask for them.
    /// Off by default, so a server advertises only what it offers.
    pub fn logging(mut self) -> Self {
        self.logging = true;
        self
    }

    /// Advertises `listChanged` for the lists the application will announce through [`ServerBuilder::notifier`].
    pub fn list_changed(mut self, list_changed: ListChanged) -> Self {
        self.list_changed = list_changed;
        self
    }

    /// The handle for announcing list changes and resource updates to connected clients.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// `resource_name` in the metadata document. Defaults to the server name.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `scopes_supported` in the metadata document (omitted when empty).
    pub fn scopes_supported(mut self, scopes: Vec<String>) -> Self {
        self.scopes_supported = scopes;
        self
    }

    /// Extra allowed Host names besides the resource URL's host and loopback; `*` allows any.
    pub fn allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        for h in hosts {
            if h == "*" {
                self.hosts.any_host = true;
            } else {
                self.hosts.allowed_hosts.push(host_name(&h));
            }
        }
        self
    }

    /// Extra allowed browser origins (`scheme://host[:port]`).
    pub fn allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.hosts.allowed_origins.extend(origins);
        self
    }

    /// Request body cap in bytes. Defaults to [`defaults::MAX_BODY_BYTES`] (4 MiB).
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Idle time after which a session expires. Defaults to [`defaults::SESSION_IDLE`] (30 min).
    pub fn session_idle_timeout(mut self, d: Duration) -> Self {
        self.session_idle = d;
        self
    }

    /// Most open sessions; beyond it initialize gets 503. Defaults to [`defaults::MAX_SESSIONS`].
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Most open sessions of one principal; beyond it initialize gets 429. Defaults to
    /// [`defaults::MAX_SESSIONS_PER_PRINCIPAL`].
    pub fn max_sessions_per_principal(mut self, n: usize) -> Self {
        self.max_sessions_per_principal = n;
        self
    }

    /// Bytes of request bodies and their parsed form in flight, all requests together; a
    /// request that finds no room waits briefly, then gets 503. Defaults to
    /// [`defaults::MAX_INFLIGHT_BYTES`] (64 MiB).
    pub fn max_inflight_bytes(mut self, n: u64) -> Self {
        self.max_inflight_bytes = n;
        self
    }

    /// Messages in one JSON-RPC batch (2025-03-26 sessions). Defaults to [`defaults::MAX_BATCH`].
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// In-flight calls of one principal; beyond it a call gets 429. Defaults to
    /// [`defaults::MAX_CALLS_PER_PRINCIPAL`].
    pub fn max_calls_per_principal(mut self, n: usize) -> Self {
        self.max_calls_per_principal = n;
        self
    }

    /// Open GET and `subscriptions/listen` streams of one principal; beyond it 429. Defaults to
    /// [`defaults::MAX_STREAMS_PER_PRINCIPAL`].
    pub fn max_streams_per_principal(mut self, n: usize) -> Self {
        self.max_streams_per_principal = n;
        self
    }

    /// Open GET and `subscriptions/listen` streams, all principals; beyond it 503. Defaults to
    /// [`defaults::MAX_STREAMS`].
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    /// How long a GET or `subscriptions/listen` stream stays open before the server ends it
    /// cleanly (GET streams with a `retry:` hint; listen streams with their final result), so
    /// the client reconnects. Defaults to [`defaults::STREAM_LIFETIME`] (1 h).
    pub fn stream_lifetime(mut self, d: Duration) -> Self {
        self.stream_lifetime = d;
        self
    }

    /// Open connections when the server runs its own accept loop ([`Server::serve`]). At the
    /// cap the connection idle the longest is closed to admit a new one; when none is idle the
    /// new one gets 503 and is closed. Defaults to nine tenths of the open-file limit.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a write to a client may make no progress before its connection is closed.
    /// Defaults to [`defaults::WRITE_TIMEOUT`] (30 s).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// How long a connection with no request in flight stays open. Defaults to
    /// [`defaults::IDLE_TIMEOUT`] (60 s).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Entries per list page. Defaults to [`defaults::PAGE_SIZE`].
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n;
        self
    }

    /// `ttlMs` on 2026-07-28 list and discover results. Defaults to 0 (do not cache).
    pub fn list_ttl_ms(mut self, ms: u64) -> Self {
        self.list_ttl_ms = ms;
        self
    }

    /// SSE keep-alive comment interval. Defaults to [`defaults::SSE_KEEPALIVE`] (15 s).
    pub fn sse_keepalive(mut self, d: Duration) -> Self {
        self.sse_keepalive = d;
        self
    }

    /// How long in-flight requests may run after a shutdown signal. Defaults to 10 s.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// How long a connection may take to send a request head, in [`Server::serve`]'s accept
    /// loop; it also bounds the TLS handshake ([`Server::serve_tls`]) and, with the `http2`
    /// feature, the wait for a connection's first bytes. Defaults to
    /// [`defaults::HEADER_READ_TIMEOUT`] (30 s).
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }

    /// How long a client may take to send its body. Defaults to 30 s.
    pub fn body_timeout(mut self, d: Duration) -> Self {
        self.body_timeout = d;
        self
    }

    /// The secret that seals 2026-07-28 `requestState` (HMAC-SHA256). Defaults to 32 random bytes
    /// per process; give every instance behind one load balancer the same secret so a retry may
    /// land on any of them. Keep it secret: it is what makes the state tamper-evident.
    pub fn state_key(mut self, key: [u8; 32]) -> Self {
        self.state_key = Some(key);
        self
    }

    /// Shares sessions, event logs, notifications, server-to-client requests, cancellations,
    /// tasks and the `requestState` key with every replica connected to the same Redis and
    /// prefix, so that any replica behind a plain load balancer can serve any request (feature
    /// `redis`). A key given with [`ServerBuilder::state_key`] wins over the one agreed through
    /// Redis. A task's handler runs on the replica that created it; if that replica dies, the
    /// task fails once its lease ([`ServerBuilder::task_lease`]) lapses.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, backend: crate::runtime::redis::RedisBackend) -> Self {
        self.redis = Some(backend);
        self
    }

    /// How long a finished task, with its result or error, stays readable (`tasks/get`,
    /// `tasks/result`) before it is forgotten. Counted from the moment it finished; clients see
    /// it as `ttl`/`ttlMs` (from creation) once the task is done. Defaults to
    /// [`defaults::TASK_TTL`] (1 h).
    pub fn task_ttl(mut self, d: Duration) -> Self {
        self.task_ttl = d;
        self
    }

    /// Most tasks held, finished ones included until forgotten; beyond it a call that would
    /// become a task gets 503 with `Retry-After`. Defaults to [`defaults::MAX_TASKS`].
    pub fn max_tasks(mut self, n: usize) -> Self {
        self.max_tasks = n;
        self
    }

    /// Most unfinished tasks of one principal; beyond it 429 with `Retry-After`. Defaults to
    /// [`defaults::MAX_TASKS_PER_PRINCIPAL`].
    pub fn max_tasks_per_principal(mut self, n: usize) -> Self {
        self.max_tasks_per_principal = n;
        self
    }

    /// The poll interval suggested to clients (`pollInterval`/`pollIntervalMs`). Defaults to
    /// [`defaults::TASK_POLL_INTERVAL`] (1 s).
    pub fn task_poll_interval(mut self, d: Duration) -> Self {
        self.task_poll_interval = d;
        self
    }

    /// The lease of a running task: the replica running it renews it every third of this; a
    /// task whose replica stopped renewing is reported `failed` once it lapses. Defaults to
    /// [`defaults::TASK_LEASE`] (30 s).
    pub fn task_lease(mut self, d: Duration) -> Self {
        self.task_lease = d;
        self
    }

    /// 2026-07-28: how long a call that may become a task runs inline first; a handler done by
    /// then answers directly (an `Optional` tool) or as a finished task (a `Required` one).
    /// Defaults to [`defaults::TASK_IMMEDIATE`] (100 ms).
    pub fn task_immediate(mut self, d: Duration) -> Self {
        self.task_immediate = d;
        self
    }

    /// How long a cancelled task's handler may take to return before it is dropped. Defaults
    /// to [`defaults::TASK_CANCEL_GRACE`] (5 s).
    pub fn task_cancel_grace(mut self, d: Duration) -> Self {
        self.task_cancel_grace = d;
        self
    }

    /// Keeps task records in `store` (shared by replicas) instead of this process's memory; the
    /// caps are then the store's. For the shared backends and the multi-replica tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn task_store(mut self, store: Arc<dyn TaskStore>) -> Self {
        self.task_store = Some(store);
        self
    }

    /// The clock read once per request (token and state expiry, session idle time, latency).
    /// Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The CSPRNG for session ids, stream ids and the default sealing key. Defaults to the
    /// operating system's, through ring.
    pub fn random_source(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// Where log lines go, process-wide (the first sink installed wins). Defaults to a writer
    /// thread on stderr behind a bounded queue.
    pub fn log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// Requests to paths the server does not serve go to `handler` (with the body read under
    /// the same cap); when it answers `None`, the request gets the usual 404. Useful with the
    /// server's own accept loop ([`Server::serve`]); mounted in another stack, route there instead.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Response<Body>>> + Send + 'static,
    {
        self.fallback = Some(Arc::new(move |req| Box::pin(handler(req))));
        self
    }

    /// Counts requests, operations, auth decisions and the rest for Prometheus (read them with
    /// [`Server::metrics`] or serve them with [`Server::serve_metrics`]). Off by default; on,
    /// it costs a few relaxed atomic additions per request.
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// Writes an audit line for every auth decision that reaches the verifier and every tool
    /// call (see [`audit`](crate::audit)). Off by default.
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Proxies (IP addresses or CIDR blocks) whose `X-Forwarded-For` names the client and whose
    /// `X-Request-Id` is kept. From anyone else both headers are ignored. None by default.
    pub fn trusted_proxies(mut self, proxies: Vec<String>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The path the endpoint is served at, when a proxy strips a prefix of the resource URL's
    /// path. Defaults to the resource URL's path. `/x` and `/x/` are the same endpoint.
    pub fn endpoint_path(mut self, path: impl Into<String>) -> Self {
        self.endpoint_path = Some(path.into());
        self
    }

    /// Checks the configuration and builds the server.
    pub fn build(self) -> Result<Server, BuildError> {
        if let Some(sink) = self.log_sink {
            log::install_sink(sink);
        }
        let bad_url = || BuildError::BadResourceUrl(self.resource_url.clone());
        let (origin, path) = metadata::split_url(&self.resource_url).ok_or_else(bad_url)?;
        let metadata_url = metadata::metadata_url(&self.resource_url).ok_or_else(bad_url)?;
        let resource_host = host_name(origin.split("://").nth(1).unwrap_or(""));
        let listen = match &self.endpoint_path {
            Some(p) if !is_endpoint_path(p) => return Err(BuildError::BadEndpointPath(p.clone())),
            Some(p) => p.clone(),
            None => path.to_owned(),
        };
        let endpoint_paths = endpoint_paths(&listen);
        let metadata_paths = {
            // The path-inserted document follows the resource URL; a prefix-stripping proxy
            // may forward it as the listen path instead.
            let mut p = vec![WELL_KNOWN_PREFIX.to_owned()];
            for base in [path, listen.as_str()] {
                let base = base.trim_end_matches('/');
                let doc = format!("{WELL_KNOWN_PREFIX}{base}");
                if !base.is_empty() && !p.contains(&doc) {
                    p.push(doc);
                }
            }
            p
        };
        let proxies = crate::ops::request::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| BuildError::BadTrustedProxy(e.0))?;

        let mut handlers = Handlers::default();
        let mut tool_specs = Vec::with_capacity(self.tools.len());
        for t in self.tools {
            let name = t.name().to_owned();
            if tool_specs
                .iter()
                .any(|s: &crate::core::catalog::ToolSpec| s.name == name)
            {
                return Err(BuildError::DuplicateTool(name));
            }
            let (spec, handler) = t.into_parts().map_err(|e| match e {
                ToolDefinitionError::BadName => BuildError::BadToolName(name.clone()),
                ToolDefinitionError::InputNotAnObject => {
                    BuildError::InputSchemaNotObject(name.clone())
                }
                ToolDefinitionError::ParamHeader(why) => {
                    BuildError::BadParamHeader(name.clone(), why)
                }
                ToolDefinitionError::StepUp(why) => BuildError::BadStepUp(name.clone(), why),
            })?;
            tool_specs.push(spec);
            handlers.tools.push(handler);
        }
        let mut prompt_specs = Vec::new();
        for p in self.prompts {
            let (spec, h) = p.into_parts();
            prompt_specs.push(spec);
            handlers.prompts.push(h);
        }
        let mut resource_specs = Vec::new();
        for r in self.resources {
            let (spec, h) = r.into_parts();
            resource_specs.push(spec);
            handlers.resources.push(h);
        }
        let mut template_specs = Vec::new();
        for t in self.templates {
            let (spec, h) = t.into_parts();
            template_specs.push(spec);
            handlers.templates.push(h);
        }

        let auth = match self.auth.ok_or(BuildError::NoAuth)? {
            AuthMode::Jwt { authenticator, .. } => {
                let challenger = Challenger::new(&metadata_url, authenticator.required_scopes());
                AuthMode::Jwt {
                    authenticator,
                    challenger,
                }
            }
            AuthMode::DangerouslyDisabled => AuthMode::DangerouslyDisabled,
        };
        let issuer = match &auth {
            AuthMode::Jwt { authenticator, .. } => authenticator.policy().issuer.clone(),
            AuthMode::DangerouslyDisabled => String::new(),
        };
        let resource_name = self.resource_name.unwrap_or_else(|| self.info.name.clone());
        let metadata_doc = metadata::document(
            &self.resource_url,
            &issuer,
            &self.scopes_supported,
            &resource_name,
        );
        #[cfg(feature = "redis")]
        let agreed_key = self.redis.as_ref().map(|b| b.state_key());
        #[cfg(not(feature = "redis"))]
        let agreed_key: Option<[u8; 32]> = None;
        let state_key = match self.state_key.or(agreed_key) {
            Some(k) => k,
            None => {
                let mut key = [0u8; 32];
                self.random
                    .fill(&mut key)
                    .map_err(|_| BuildError::NoRandomness)?;
                key
            }
        };
        let mut ops = Ops::new({
            let mut seed = [0u8; 8];
            self.random
                .fill(&mut seed)
                .map_err(|_| BuildError::NoRandomness)?;
            seed
        });
        ops.proxies = proxies;
        ops.audit = self.audit;
        if self.metrics {
            ops.metrics = Some(Metrics::new(
                tool_specs.iter().map(|t| t.name.clone()).collect(),
            ));
        }
        let catalog = Catalog::new(CatalogParts {
            info: self.info,
            tools: tool_specs,
            prompts: prompt_specs,
            resources: resource_specs,
            templates: template_specs,
            list_changed: self.list_changed,
            logging: self.logging,
            listing: Listing {
                page_size: self.page_size,
                ttl_ms: self.list_ttl_ms,
            },
        });
        let core = Arc::new(Core::new(catalog, &state_key));
        let limits = SessionLimits {
            idle_ms: self.session_idle.as_millis() as u64,
            max_sessions: self.max_sessions,
            max_per_principal: self.max_sessions_per_principal,
        };
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut sessions: Arc<dyn SessionStore> = Arc::new(MemorySessions::new(limits));
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut events: Arc<dyn EventStore> = Arc::new(MemoryEvents::default());
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut live = LiveSessions::default();
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut peers: Option<Arc<dyn Peers>> = None;
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            let (s, e, p, bus) = backend.parts(limits);
            (sessions, events) = (s, e);
            live = LiveSessions::with_request_prefix(backend.replica().into());
            peers = Some(p);
            if !self.notifier.use_bus(bus) {
                log::warn(format_args!(
                    "the notifier was in use before the shared backend was set: its changes stay on this replica"
                ));
            }
        }
        let task_limits = TaskLimits {
            max_tasks: self.max_tasks,
            max_per_principal: self.max_tasks_per_principal,
        };
        // An explicit store wins; with the shared backend, tasks live in Redis too.
        #[cfg(feature = "redis")]
        let task_store = self
            .task_store
            .or_else(|| self.redis.as_ref().map(|b| b.tasks(task_limits)));
        #[cfg(not(feature = "redis"))]
        let task_store = self.task_store;
        let task_store = task_store
            .unwrap_or_else(|| Arc::new(MemoryTasks::new(task_limits)) as Arc<dyn TaskStore>);
        let runtime = Arc::new(Runtime {
            core: core.clone(),
            handlers,
            sessions,
            live,
            events,
            streams: Arc::new(LiveStreams::default()),
            notifier: self.notifier,
            config: RuntimeConfig {
                sse_keepalive: self.sse_keepalive,
                stream_lifetime: self.stream_lifetime,
            },
            shutdown: CancelToken::new(),
            rng: self.random,
            limits: PrincipalLimits::new(Caps {
                calls_per_principal: self.max_calls_per_principal,
                streams_per_principal: self.max_streams_per_principal,
                streams: self.max_streams,
            }),
            peers,
            tasks: Tasks::new(TaskShared {
                store: task_store,
                clock: self.clock.clone(),
                config: TaskConfig {
                    retention: self.task_ttl,
                    poll_interval: self.task_poll_interval,
                    lease: self.task_lease,
                    immediate: self.task_immediate,
                    cancel_grace: self.task_cancel_grace,
                },
            }),
        });
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            backend.install(&runtime);
        }
        let mut hosts = self.hosts;
        hosts.allowed_hosts.push(resource_host);
        let shared = Arc::new(Shared {
            core,
            runtime,
            auth,
            config: HttpConfig {
                resource_url: self.resource_url,
                resource_metadata_url: metadata_url,
                endpoint_paths,
                metadata_paths,
                hosts,
                max_body_bytes: self.max_body_bytes,
                body_timeout: self.body_timeout,
                max_batch: self.max_batch,
                inflight_wait: defaults::INFLIGHT_WAIT,
            },
            metadata_doc,
            clock: self.clock,
            fallback: self.fallback,
            budget: ByteBudget::new(self.max_inflight_bytes),
            rejections: Default::default(),
            ops: Arc::new(ops),
        });
        Ok(Server {
            shared,
            session_idle: self.session_idle,
            shutdown_grace: self.shutdown_grace,
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
            write_timeout: self.write_timeout,
            idle_timeout: self.idle_timeout,
            maintenance: Arc::new(Once::new()),
        })
    }
}

/// `/x` and `/x/` for `/x`; `/` alone for the root.
fn endpoint_paths(path: &str) -> Vec<String> {
    let base = path.trim_end_matches('/');
    if base.is_empty() {
        return vec!["/".to_owned()];
    }
    vec![base.to_owned(), format!("{base}/")]
}

fn is_endpoint_path(p: &str) -> bool {
    p.starts_with('/') && !p.contains(['?', '#']) && !p.chars().any(char::is_whitespace)
}

/// A configured server: serve it with [`Server::serve`], or mount [`Server::service`] in your
/// own hyper stack or framework. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Server {
    pub(crate) shared: Arc<Shared>,
    session_idle: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    maintenance: Arc<Once>,
}

impl Server {
    /// The canonical MCP URL.
    pub fn resource_url(&self) -> &str {
        &self.shared.config.resource_url
    }

    /// The path-inserted metadata URL sent in challenges.
    pub fn resource_metadata_url(&self) -> &str {
        &self.shared.config.resource_metadata_url
    }

    /// The paths the MCP endpoint answers at (the path and its trailing-slash twin).
    pub fn endpoint_paths(&self) -> &[String] {
        &self.shared.config.endpoint_paths
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric, or `None` when
    /// [`ServerBuilder::metrics`] was not called. Mount it on an internal listener, never on
    /// the public one.
    pub async fn metrics(&self) -> Option<String> {
        self.shared.metrics_text().await
    }

    /// True when the server can judge a token: a key set is loaded and the session store
    /// answers (what `/readyz` says).
    pub async fn is_ready(&self) -> bool {
        self.shared.readiness().await.is_empty()
    }

    /// Open sessions right now.
    pub fn session_count(&self) -> usize {
        self.shared.runtime.sessions.count()
    }

    /// Tasks held right now (running, waiting for input, or finished and not yet forgotten).
    pub fn task_count(&self) -> usize {
        self.shared.runtime.tasks.count()
    }

    /// The server as a hyper service, to mount in an existing hyper server or framework router.
    /// Call it inside a tokio runtime: the first call starts the task that expires idle
    /// sessions. Call [`Server::shutdown`] when your server stops.
    pub fn service(&self) -> McpService {
        self.start_maintenance();
        McpService::new(self.shared.clone())
    }

    /// Ends every SSE stream (GET, `subscriptions/listen`), the first step of a shutdown;
    /// calls in flight may still finish. [`Server::serve`] does this itself.
    pub fn shutdown(&self) {
        self.shared.runtime.stop_streams();
    }

    /// After the grace period: cancels the calls still running and frees every session's live state.
    pub(crate) fn close_all(&self) {
        self.shared.runtime.close_all();
        // Rejections held for a summary in the last second would otherwise never be reported.
        self.shared
            .flush_all_rejections(Now::read(&*self.shared.clock));
    }

    /// Starts the idle-session sweeper once; it ends when the server is dropped.
    pub(crate) fn start_maintenance(&self) {
        self.maintenance.call_once(|| {
            let Ok(handle) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let weak = Arc::downgrade(&self.shared);
            // Often enough that an idle session never outlives its timeout by more than half of it.
            let every =
                (self.session_idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
            let summaries = weak.clone();
            handle.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let Some(shared) = summaries.upgrade() else {
                        return;
                    };
                    shared.flush_rejections(Now::read(&*shared.clock));
                }
            });
            handle.spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let Some(shared) = weak.upgrade() else { return };
                    let freed = shared.runtime.sweep(Now::read(&*shared.clock)).await;
                    if freed > 0 {
                        log::info(format_args!("expired {freed} idle sessions"));
                    }
                    let lapsed = shared.runtime.sweep_tasks().await;
                    if lapsed > 0 {
                        log::warn(format_args!(
                            "{lapsed} tasks failed: the replica running them stopped renewing their lease"
                        ));
                    }
                }
            });
        });
    }

    /// True when the server runs without authorization.
    pub(crate) fn auth_disabled(&self) -> bool {
        matches!(self.shared.auth, AuthMode::DangerouslyDisabled)
    }
}
