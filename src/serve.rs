//! The accept loop: serving any listener (TCP, Unix sockets) with HTTP/1.1, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::log;
use crate::server::Server;

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

/// Pause after a failed accept (EMFILE and friends), so the loop backs off rather than spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl Server {
    /// Serves connections from `listener` until `shutdown` completes, then stops accepting, ends
    /// SSE streams, gives in-flight requests the grace period to finish, and cancels the rest.
    pub async fn serve<L: Listener>(
        self,
        mut listener: L,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        if self.auth_disabled() {
            log::warn(format_args!(
                "AUTHORIZATION IS DISABLED: every request is served without a token"
            ));
        }
        let service = self.service();
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (io, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        log::warn(format_args!("accept failed: {e}"));
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.header_read_timeout)
                .serve_connection(TokioIo::new(io), service.for_connection(peer));
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
        self.shutdown();
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
        self.close_all();
        Ok(())
    }
}
