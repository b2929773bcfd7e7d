//! What a handler gets besides its arguments: the caller, a cancellation signal, and a way to send progress and log messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Notify};

use crate::auth::Principal;
use crate::jsonrpc;

/// A cancellation signal shared by the transport (which fires it) and a handler (which watches it).
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

/// Fires the token when dropped unless disarmed: ties cancellation to a future being dropped.
#[derive(Debug)]
pub struct CancelOnDrop(pub Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// Log severities (RFC 5424), least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// debug
    Debug,
    /// info
    Info,
    /// notice
    Notice,
    /// warning
    Warning,
    /// error
    Error,
    /// critical
    Critical,
    /// alert
    Alert,
    /// emergency
    Emergency,
}

impl LogLevel {
    /// Parses the MCP level name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => Self::Debug,
            "info" => Self::Info,
            "notice" => Self::Notice,
            "warning" => Self::Warning,
            "error" => Self::Error,
            "critical" => Self::Critical,
            "alert" => Self::Alert,
            "emergency" => Self::Emergency,
            _ => return None,
        })
    }

    /// The MCP level name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Alert => "alert",
            Self::Emergency => "emergency",
        }
    }
}

/// The per-request context handed to a handler.
#[derive(Debug, Clone)]
pub struct RequestContext {
    principal: Arc<Principal>,
    cancel: CancelToken,
    outbox: Option<mpsc::Sender<Value>>,
    progress_token: Option<Value>,
    log_level: Option<LogLevel>,
    client_capabilities: Arc<Value>,
}

impl RequestContext {
    /// Built by the transport for each call. `outbox` is `None` when nothing may be streamed back.
    pub fn new(
        principal: Arc<Principal>,
        cancel: CancelToken,
        outbox: Option<mpsc::Sender<Value>>,
        progress_token: Option<Value>,
        log_level: Option<LogLevel>,
        client_capabilities: Arc<Value>,
    ) -> Self {
        Self {
            principal,
            cancel,
            outbox,
            progress_token,
            log_level,
            client_capabilities,
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
        self.send(jsonrpc::notification(
            "notifications/progress",
            Value::Object(params),
        ))
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
        self.send(jsonrpc::notification(
            "notifications/message",
            Value::Object(params),
        ))
        .await
    }

    async fn send(&self, message: Value) -> bool {
        match &self.outbox {
            Some(tx) if !self.cancel.is_cancelled() => tx.send(message).await.is_ok(),
            _ => false,
        }
    }
}
