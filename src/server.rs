//! The embedding API: a builder that configures auth, limits and tools, and the accept loop with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::TcpListener;

use crate::auth::metadata::{self, WELL_KNOWN_PREFIX};
use crate::auth::{Authenticator, Challenger};
use crate::dev::DevIssuer;
use crate::http::checks::{host_name, HostPolicy};
use crate::http::{App, AuthMode, HttpConfig};
use crate::log;
use crate::mcp::context::CancelToken;
use crate::mcp::notify::Notifier;
use crate::mcp::prompt::Prompt;
use crate::mcp::resource::{Resource, ResourceTemplate};
use crate::mcp::tool::{is_valid_name, Tool};
use crate::mcp::{Core, ListChanged, Registry, ServerInfo};
use crate::session::SessionStore;

/// Default request body cap: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Default session idle expiry: 30 min.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Default cap on open sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default SSE keep-alive interval (below common 60 s proxy idle limits).
pub const DEFAULT_SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Default `tools/list` page size.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Default time in-flight requests get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time a client gets to send its request headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// Neither an authenticator nor the explicit opt-out was given.
    NoAuth,
    /// The resource URL is not an absolute http(s) URL without a fragment.
    BadResourceUrl(String),
    /// A tool name is empty, too long, or has characters clients reject.
    BadToolName(String),
    /// Two tools share a name.
    DuplicateTool(String),
    /// A tool's `x-mcp-header` annotation breaks the 2026-07-28 rules.
    BadParamHeader(String, String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
            Self::BadParamHeader(n, why) => write!(f, "tool {n:?}: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Configures a server. Every setting has a documented default except auth, which must be chosen.
pub struct ServerBuilder {
    info: ServerInfo,
    registry: Registry,
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
    page_size: usize,
    list_ttl_ms: u64,
    sse_keepalive: Duration,
    shutdown_grace: Duration,
    dev: Option<Arc<DevIssuer>>,
    state_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
            registry: Registry::default(),
            list_changed: ListChanged::default(),
            notifier: Notifier::new(),
            auth: None,
            resource_url: resource_url.into(),
            resource_name: None,
            scopes_supported: Vec::new(),
            hosts: HostPolicy::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            session_idle: DEFAULT_SESSION_IDLE,
            max_sessions: DEFAULT_MAX_SESSIONS,
            page_size: DEFAULT_PAGE_SIZE,
            list_ttl_ms: 0,
            sse_keepalive: DEFAULT_SSE_KEEPALIVE,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            dev: None,
            state_key: None,
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
        self.registry.tools.push(tool);
        self
    }

    /// Registers a prompt (advertises the `prompts` capability).
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.registry.prompts.push(prompt);
        self
    }

    /// Registers a resource (advertises the `resources` capability).
    pub fn resource(mut self, resource: Resource) -> Self {
        self.registry.resources.push(resource);
        self
    }

    /// Registers a resource template.
    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.registry.templates.push(template);
        self
    }

    /// Offers the `logging` capability: `logging/setLevel` (initialize era), `_meta` log levels
    /// (2026-07-28), and handlers' `RequestContext::log` messages for clients that ask for them.
    /// Off by default, so a server advertises only what it offers.
    pub fn logging(mut self) -> Self {
        self.registry.logging = true;
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

    /// Request body cap in bytes. Defaults to 4 MiB.
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Idle time after which a session expires. Defaults to 30 min.
    pub fn session_idle_timeout(mut self, d: Duration) -> Self {
        self.session_idle = d;
        self
    }

    /// Most open sessions; beyond it initialize gets 503. Defaults to 10,000.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Tools per `tools/list` page. Defaults to 50.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n;
        self
    }

    /// `ttlMs` on 2026-07-28 list and discover results. Defaults to 0 (do not cache).
    pub fn list_ttl_ms(mut self, ms: u64) -> Self {
        self.list_ttl_ms = ms;
        self
    }

    /// SSE keep-alive comment interval. Defaults to 15 s.
    pub fn sse_keepalive(mut self, d: Duration) -> Self {
        self.sse_keepalive = d;
        self
    }

    /// How long in-flight requests may run after a shutdown signal. Defaults to 10 s.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// The secret that seals 2026-07-28 `requestState` (HMAC-SHA256). Defaults to 32 random bytes
    /// per process; give every instance behind one load balancer the same secret so a retry may
    /// land on any of them. Keep it secret: it is what makes the state tamper-evident.
    pub fn state_key(mut self, key: [u8; 32]) -> Self {
        self.state_key = Some(key);
        self
    }

    /// Mounts a dev issuer's routes (JWKS, metadata, token minting) under its issuer path.
    pub fn dev_issuer(mut self, dev: Arc<DevIssuer>) -> Self {
        self.dev = Some(dev);
        self
    }

    /// Checks the configuration and builds the server.
    pub fn build(self) -> Result<Server, BuildError> {
        let bad_url = || BuildError::BadResourceUrl(self.resource_url.clone());
        let (origin, path) = metadata::split_url(&self.resource_url).ok_or_else(bad_url)?;
        let metadata_url = metadata::metadata_url(&self.resource_url).ok_or_else(bad_url)?;
        let resource_host = host_name(origin.split("://").nth(1).unwrap_or(""));
        let mut names = std::collections::HashSet::new();
        for t in &self.registry.tools {
            if !is_valid_name(t.name()) {
                return Err(BuildError::BadToolName(t.name().to_owned()));
            }
            if !names.insert(t.name().to_owned()) {
                return Err(BuildError::DuplicateTool(t.name().to_owned()));
            }
            crate::mcp::headers::validate_param_annotations(t.schema())
                .map_err(|why| BuildError::BadParamHeader(t.name().to_owned(), why))?;
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
        let mut metadata_paths = vec![
            WELL_KNOWN_PREFIX.to_owned(),
            format!("{WELL_KNOWN_PREFIX}{path}"),
        ];
        metadata_paths.push(format!("{WELL_KNOWN_PREFIX}/mcp"));
        metadata_paths.dedup();
        let mut hosts = self.hosts;
        hosts.allowed_hosts.push(resource_host);
        let resource_name = self.resource_name.unwrap_or_else(|| self.info.name.clone());
        let metadata_doc = metadata::document(
            &self.resource_url,
            &issuer,
            &self.scopes_supported,
            &resource_name,
        );
        let rng = SystemRandom::new();
        let state_key = self.state_key.unwrap_or_else(|| {
            let mut key = [0u8; 32];
            rng.fill(&mut key).expect("system randomness is available");
            key
        });
        let app = App {
            core: Core::new(
                self.info,
                self.registry,
                self.list_changed,
                self.page_size,
                self.list_ttl_ms,
                &state_key,
            ),
            notifier: self.notifier,
            auth,
            sessions: SessionStore::new(
                self.session_idle,
                self.max_sessions,
                Instant::now(),
                Arc::new(SystemRandom::new()),
            ),
            config: HttpConfig {
                resource_url: self.resource_url,
                resource_metadata_url: metadata_url,
                metadata_paths,
                hosts,
                max_body_bytes: self.max_body_bytes,
                body_timeout: Duration::from_secs(30),
                sse_keepalive: self.sse_keepalive,
            },
            metadata_doc,
            dev: self.dev,
            shutdown: CancelToken::new(),
        };
        Ok(Server {
            app: Arc::new(app),
            shutdown_grace: self.shutdown_grace,
        })
    }
}

/// A configured server.
#[derive(Debug, Clone)]
pub struct Server {
    app: Arc<App>,
    shutdown_grace: Duration,
}

impl Server {
    /// The canonical MCP URL.
    pub fn resource_url(&self) -> &str {
        &self.app.config.resource_url
    }

    /// The path-inserted metadata URL sent in challenges.
    pub fn resource_metadata_url(&self) -> &str {
        &self.app.config.resource_metadata_url
    }

    /// Open sessions right now.
    pub fn session_count(&self) -> usize {
        self.app.sessions.len()
    }

    /// Serves connections from `listener` until `shutdown` completes, then stops accepting, ends
    /// SSE streams and sessions, and gives in-flight requests the grace period to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        if matches!(self.app.auth, AuthMode::DangerouslyDisabled) {
            log::warn(format_args!(
                "AUTHORIZATION IS DISABLED: every request is served without a token"
            ));
        }
        let sweeper = self.spawn_sweeper();
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off briefly rather than spin.
                        log::warn(format_args!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |req| app.clone().handle(req)),
                );
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    log::debug(format_args!("connection ended: {e}"));
                }
            });
        }
        drop(listener);
        log::info(format_args!(
            "shutting down: no new connections; ending streams"
        ));
        // Streams (GET, subscriptions/listen, keep-alives) end now; calls in flight may finish.
        self.app.shutdown.cancel();
        sweeper.abort();
        if tokio::time::timeout(self.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            log::warn(format_args!(
                "shutdown grace of {} s ran out with requests still in flight; cancelling them",
                self.shutdown_grace.as_secs()
            ));
        }
        // Past the grace period: cancel what is left and free every session.
        self.app.sessions.close_all();
        Ok(())
    }

    fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let app = Arc::downgrade(&self.app);
        // Often enough that an idle session never outlives its timeout by more than half of it.
        let every = (self.app.sessions.idle_timeout() / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { return };
                let freed = app.sessions.sweep(Instant::now());
                if freed > 0 {
                    log::info(format_args!("expired {freed} idle sessions"));
                }
            }
        })
    }
}
