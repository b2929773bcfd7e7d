//! The accept loop: serving any listener (TCP, Unix sockets), in the clear or over TLS, with HTTP/1.1 (and HTTP/2 with the `http2` feature), the connection cap, idle and write timeouts, and graceful shutdown.
//!
//! Connections are counted; at [`ServerBuilder::max_connections`](crate::ServerBuilder::max_connections)
//! the longest-idle connection (one with no request in flight) is closed to admit the new one,
//! and when none is idle the new one gets 503 at once and is closed, rather than waiting in the
//! backlog. A spare descriptor is kept so that even when `accept` fails with "too many open
//! files" the server can take the pending connection, answer 503 and close it. A connection
//! whose writes make no progress for the write timeout is closed, and so is one idle for the
//! idle timeout.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use crate::body::Body;
use crate::conn::{self, ConnConfig};
use crate::http::error::TransportError;
use crate::log;
use crate::runtime::context::CancelToken;
use crate::server::Server;
use crate::tls::TlsConfig;

/// Something that accepts connections: implemented for tokio's TCP and Unix listeners.
pub trait Listener: Send + 'static {
    /// One accepted connection.
    type Io: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// Waits for the next connection; the peer's address when it has one (TCP).
    fn accept(&mut self)
        -> impl Future<Output = io::Result<(Self::Io, Option<SocketAddr>)>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, Option<SocketAddr>)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Small JSON replies should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok((stream, Some(peer)))
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, Option<SocketAddr>)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((stream, None))
    }
}

/// Pause after a failed accept that is not descriptor exhaustion, so the loop backs off rather than spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long the 503 of a refused connection may take to write.
const REFUSAL_WRITE: Duration = Duration::from_secs(2);
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// True for "too many open files" (the process's or the system's).
fn is_descriptor_exhaustion(e: &io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// The soft limit on open descriptors, when the platform tells.
pub(crate) fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A default connection cap: most of the descriptor limit, leaving room for the JWKS fetch,
/// the log and the listener.
pub(crate) fn default_max_connections() -> usize {
    let limit = descriptor_limit().unwrap_or(1024);
    (limit.saturating_sub(64) * 9 / 10).max(16) as usize
}

/// One connection's state as the loop sees it.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Requests being answered (their response bodies not yet finished).
    busy: AtomicUsize,
    /// When the connection last became idle, in ms since the registry's start.
    idle_since_ms: AtomicU64,
    /// Asks the connection task to close.
    close: Notify,
    /// Already asked to close as the idlest: the next eviction must pick another one.
    evicted: AtomicBool,
    epoch: Instant,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Marks a request begun; the guard marks it done when dropped (with its response body).
    pub(crate) fn begin(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(self.clone())
    }

    fn idle_for(&self, now_ms: u64) -> Option<u64> {
        (self.busy.load(Ordering::Acquire) == 0)
            .then(|| now_ms.saturating_sub(self.idle_since_ms.load(Ordering::Relaxed)))
    }
}

/// Held while a response is being produced and sent.
#[derive(Debug)]
pub(crate) struct BusyGuard(Arc<ConnState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0
            .idle_since_ms
            .store(self.0.now_ms(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections.
#[derive(Debug)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
    epoch: Instant,
}

impl Registry {
    fn add(&self) -> (u64, Arc<ConnState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            close: Notify::new(),
            evicted: AtomicBool::new(false),
            epoch: self.epoch,
        });
        self.conns
            .lock()
            .expect("registry poisoned")
            .insert(id, state.clone());
        (id, state)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("registry poisoned").remove(&id);
    }

    fn len(&self) -> usize {
        self.conns.lock().expect("registry poisoned").len()
    }

    /// Closes the connection idle the longest; false when none is idle.
    ///
    /// A connection asked to close stays registered until its task has run and dropped it, so
    /// it is skipped here: in a burst of accepts, each one evicts a different connection
    /// (picking the same one again let the count, and the descriptors, run past the cap).
    fn evict_idlest(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let conns = self.conns.lock().expect("registry poisoned");
        let idlest = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .filter_map(|c| c.idle_for(now).map(|idle| (idle, c)))
            .max_by_key(|(idle, _)| *idle);
        match idlest {
            Some((_, c)) => {
                c.evicted.store(true, Ordering::Relaxed);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection idle at least `limit`.
    fn close_idle(&self, limit: Duration) -> usize {
        let now = self.epoch.elapsed().as_millis() as u64;
        let limit = limit.as_millis() as u64;
        let conns = self.conns.lock().expect("registry poisoned");
        let mut n = 0;
        for c in conns.values() {
            if c.idle_for(now).is_some_and(|idle| idle >= limit) {
                c.close.notify_one();
                n += 1;
            }
        }
        n
    }
}

/// An I/O wrapper that fails writes which make no progress for `timeout`: a client that never
/// reads cannot hold its connection (and the response or stream behind it) forever.
struct WriteTimeout<T> {
    io: T,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteTimeout<T> {
    fn check<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let timeout = self.timeout;
        let stall = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response in time",
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Answers a connection the server will not serve with a complete 503 and closes it.
fn refuse<Io: AsyncWrite + Send + Unpin + 'static>(mut io: Io, why: TransportError) {
    tokio::spawn(async move {
        let bytes = why.raw_http();
        let _ = tokio::time::timeout(REFUSAL_WRITE, async {
            let _ = io.write_all(&bytes).await;
            let _ = io.shutdown().await;
        })
        .await;
    });
}

impl Server {
    /// Serves connections from `listener` until `shutdown` completes, then stops accepting, ends
    /// SSE streams, gives in-flight requests the grace period to finish, and cancels the rest.
    ///
    /// With the `http2` feature, a connection that opens with the HTTP/2 preface is served as
    /// prior-knowledge h2c; any other as HTTP/1.1.
    pub async fn serve<L: Listener>(
        self,
        listener: L,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        self.accept_loop(listener, None, shutdown).await
    }

    /// As [`Server::serve`], over TLS with the certificate `tls` holds at each handshake (so a
    /// [`TlsConfig::reload`] applies to new connections, and open ones stay as they are). The
    /// handshake runs on the connection's own task, within the header read timeout, and counts
    /// against the connection cap like any open connection. With the `http2` feature, clients
    /// that negotiate ALPN `h2` get HTTP/2.
    pub async fn serve_tls<L: Listener>(
        self,
        listener: L,
        tls: TlsConfig,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let acceptor = TlsAcceptor::from(tls.server_config());
        self.accept_loop(listener, Some(acceptor), shutdown).await
    }

    async fn accept_loop<L: Listener>(
        self,
        mut listener: L,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        if self.auth_disabled() {
            log::warn(format_args!(
                "AUTHORIZATION IS DISABLED: every request is served without a token"
            ));
        }
        let service = self.service();
        let config = Arc::new(ConnConfig {
            tls,
            header_read_timeout: self.header_read_timeout,
        });
        // Fired at shutdown: every connection finishes what it is answering and closes.
        let stopping = CancelToken::new();
        let registry = Arc::new(Registry {
            conns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let max_connections = self.max_connections;
        let sweeper = {
            let (registry, idle) = (Arc::downgrade(&registry), self.idle_timeout);
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval(SWEEP_EVERY.min(idle).max(Duration::from_millis(10)));
                loop {
                    tick.tick().await;
                    let Some(r) = registry.upgrade() else { return };
                    r.close_idle(idle);
                }
            })
        };
        // Kept open so that, when `accept` fails for want of descriptors, closing it frees one
        // to take the pending connection and refuse it cleanly.
        let mut spare = std::fs::File::open("/dev/null").ok();
        tokio::pin!(shutdown);
        loop {
            let (io, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) if is_descriptor_exhaustion(&e) => {
                        log::warn(format_args!("accept failed: {e}; shedding one pending connection"));
                        drop(spare.take());
                        if let Ok((io, _)) = listener.accept().await {
                            refuse(io, TransportError::TooManyConnections);
                        }
                        spare = std::fs::File::open("/dev/null").ok();
                        if spare.is_none() {
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                        }
                        continue;
                    }
                    Err(e) => {
                        log::warn(format_args!("accept failed: {e}"));
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            if registry.len() >= max_connections && !registry.evict_idlest() {
                log::warn(format_args!(
                    "connection refused: {max_connections} connections open, none idle (limit MCP_MAX_CONNECTIONS)"
                ));
                refuse(io, TransportError::TooManyConnections);
                continue;
            }
            let (id, state) = registry.add();
            let io = WriteTimeout {
                io,
                timeout: self.write_timeout,
                stalled: None,
            };
            let service = service.for_connection(peer, state.clone());
            let (registry, stopping, config) = (registry.clone(), stopping.clone(), config.clone());
            tokio::spawn(async move {
                // Evicted as the idlest, closed as idle, or the server stopping: the connection
                // finishes what it is answering and closes (before HTTP, it is dropped).
                let close = async {
                    tokio::select! {
                        () = state.close.notified() => {}
                        () = stopping.cancelled() => {}
                    }
                };
                let result = conn::serve(io, service, &config, close).await;
                registry.remove(id);
                if let Err(e) = result {
                    let peer = peer.map_or_else(String::new, |p| format!(" peer={p}"));
                    log::debug(format_args!("connection ended: {e}{peer}"));
                }
            });
        }
        drop(listener);
        sweeper.abort();
        log::info(format_args!(
            "shutting down: no new connections; ending streams"
        ));
        // Streams (GET, subscriptions/listen, keep-alives) end now; calls in flight may finish.
        self.shutdown();
        stopping.cancel();
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while registry.len() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        if drained.await.is_err() {
            log::warn(format_args!(
                "shutdown grace of {} s ran out with requests still in flight; cancelling them",
                self.shutdown_grace.as_secs()
            ));
        }
        // Past the grace period: cancel what is left and free every session.
        self.close_all();
        Ok(())
    }

    /// Serves the metrics on `listener` until `shutdown` completes: `GET /metrics` is the
    /// Prometheus text exposition, anything else 404 (503 when metrics are off). Give it an
    /// internal address of its own, so the metrics are never reachable through the public
    /// endpoint by accident.
    pub async fn serve_metrics<L: Listener>(
        &self,
        mut listener: L,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let (io, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        log::warn(format_args!("metrics accept failed: {e}"));
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => return Ok(()),
            };
            let server = self.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let server = server.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(metrics_response(&server, &req).await)
                    }
                });
            // Plain HTTP/1.1: the metrics listener is internal and speaks to one scraper.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(self.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    log::debug(format_args!("metrics connection ended: {e}"));
                }
            });
        }
    }
}

async fn metrics_response<B>(server: &Server, req: &hyper::Request<B>) -> hyper::Response<Body> {
    let text = |status: u16, body: String, kind: &'static str| {
        let mut r = hyper::Response::new(Body::full(body));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(kind),
        );
        r
    };
    if req.uri().path() != "/metrics" {
        return text(404, "not found\n".into(), "text/plain; charset=utf-8");
    }
    if !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        return text(405, "GET only\n".into(), "text/plain; charset=utf-8");
    }
    match server.metrics().await {
        Some(m) => text(200, m, "text/plain; version=0.0.4; charset=utf-8"),
        None => text(503, "metrics are off\n".into(), "text/plain; charset=utf-8"),
    }
}
