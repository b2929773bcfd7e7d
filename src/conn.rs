//! One accepted connection: the optional TLS handshake, then HTTP/1.1 or (with the `http2` feature) HTTP/2 chosen by the connection's first bytes, and a graceful close on request.
//!
//! The accept loop hands each connection here with a `close` future; when it completes, a
//! connection still in its handshake or waiting for its first bytes is dropped, and one serving
//! HTTP finishes what it is answering (HTTP/2: GOAWAY) and closes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use crate::http::McpService;

/// What every connection of one accept loop shares.
#[derive(Clone)]
pub(crate) struct ConnConfig {
    /// TLS, when the loop serves https.
    pub(crate) tls: Option<TlsAcceptor>,
    /// Bounds the TLS handshake, the wait for the first bytes (`http2`) and each HTTP/1.1 head.
    pub(crate) header_read_timeout: Duration,
}

/// Serves one connection until it ends or `close` completes. The error says why it ended early.
pub(crate) async fn serve<I>(
    io: I,
    service: McpService,
    config: &ConnConfig,
    close: impl Future<Output = ()>,
) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    tokio::pin!(close);
    let timeout = config.header_read_timeout;
    let Some(acceptor) = &config.tls else {
        return http(io, service, timeout, close).await;
    };
    let stream = tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(io)) => match r {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("tls handshake failed: {e}")),
            Err(_) => return Err("tls handshake timed out".to_owned()),
        },
        () = &mut close => return Ok(()),
    };
    http(stream, service, timeout, close).await
}

/// HTTP/1.1 only: the crate is built without `http2`.
#[cfg(not(feature = "http2"))]
async fn http<I, C>(
    io: I,
    service: McpService,
    timeout: Duration,
    close: Pin<&mut C>,
) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Future<Output = ()>,
{
    http1(io, service, timeout, close).await
}

/// HTTP/2 when the connection opens with the preface (h2c prior knowledge, or after ALPN `h2`),
/// HTTP/1.1 otherwise. The first bytes must come within the header read timeout.
#[cfg(feature = "http2")]
async fn http<I, C>(
    io: I,
    service: McpService,
    timeout: Duration,
    mut close: Pin<&mut C>,
) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Future<Output = ()>,
{
    let sniffed = tokio::select! {
        r = tokio::time::timeout(timeout, h2c::sniff(io)) => r,
        () = &mut close => return Ok(()),
    };
    match sniffed {
        Err(_) => Err("no request within the header read timeout".to_owned()),
        Ok(Err(e)) => Err(format!("read failed: {e}")),
        Ok(Ok((io, true))) => http2(io, service, close).await,
        Ok(Ok((io, false))) => http1(io, service, timeout, close).await,
    }
}

async fn http1<I, C>(
    io: I,
    service: McpService,
    timeout: Duration,
    close: Pin<&mut C>,
) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Future<Output = ()>,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = close => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    result.map_err(|e| e.to_string())
}

#[cfg(feature = "http2")]
async fn http2<I, C>(io: I, service: McpService, close: Pin<&mut C>) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Future<Output = ()>,
{
    // hyper's defaults: 200 concurrent streams, a 16 KiB header list, reset-flood limits.
    let conn = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = close => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    result.map_err(|e| e.to_string())
}

/// Telling HTTP/2 from HTTP/1.1 by the connection's first bytes, and handing them back.
#[cfg(feature = "http2")]
mod h2c {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::{Buf, Bytes};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

    /// RFC 9113 section 3.4: every HTTP/2 connection opens with these 24 bytes.
    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    /// Reads until the bytes either are the preface or cannot become it (an HTTP/1.1 request
    /// line differs at its first byte, so it costs one read). Returns the connection with
    /// those bytes put back in front, and whether it is HTTP/2.
    pub(super) async fn sniff<I: AsyncRead + Unpin>(mut io: I) -> io::Result<(Prefixed<I>, bool)> {
        let mut seen = Vec::with_capacity(PREFACE.len());
        let mut buf = [0u8; 24];
        loop {
            let want = PREFACE.len() - seen.len();
            let n = io.read(&mut buf[..want]).await?;
            seen.extend_from_slice(&buf[..n]);
            let agrees = PREFACE.starts_with(&seen);
            if n == 0 || !agrees || seen.len() == PREFACE.len() {
                let h2 = agrees && seen.len() == PREFACE.len();
                let prefix = Bytes::from(seen);
                return Ok((Prefixed { prefix, io }, h2));
            }
        }
    }

    /// A connection whose first bytes were already read: they are read again first.
    pub(super) struct Prefixed<I> {
        prefix: Bytes,
        io: I,
    }

    impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.prefix.is_empty() {
                return Pin::new(&mut self.io).poll_read(cx, buf);
            }
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.io).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.io.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use tokio::io::AsyncReadExt;

        async fn run(chunks: &[&[u8]]) -> (bool, Vec<u8>) {
            let reader = Chunks(chunks.iter().map(|c| c.to_vec()).collect());
            let (mut io, h2) = sniff(reader).await.unwrap();
            let mut all = Vec::new();
            io.read_to_end(&mut all).await.unwrap();
            (h2, all)
        }

        /// A reader that yields the given chunks one read at a time.
        struct Chunks(std::collections::VecDeque<Vec<u8>>);

        impl AsyncRead for Chunks {
            fn poll_read(
                mut self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                if let Some(mut c) = self.0.pop_front() {
                    let n = c.len().min(buf.remaining());
                    buf.put_slice(&c[..n]);
                    if n < c.len() {
                        self.0.push_front(c.split_off(n));
                    }
                }
                Poll::Ready(Ok(()))
            }
        }

        #[tokio::test]
        async fn the_preface_in_pieces_is_http2_and_nothing_is_lost() {
            let (h2, all) = run(&[b"PRI * HT", b"TP/2.0\r\n\r\nSM\r\n\r\n", b"\x00\x00"]).await;
            assert!(h2);
            assert_eq!(&all[..24], PREFACE);
            assert_eq!(&all[24..], b"\x00\x00");
        }

        #[tokio::test]
        async fn an_http1_request_is_told_apart_at_once() {
            let (h2, all) = run(&[b"POST /mcp HTTP/1.1\r\n", b"Host: x\r\n\r\n"]).await;
            assert!(!h2);
            assert_eq!(all, b"POST /mcp HTTP/1.1\r\nHost: x\r\n\r\n");
            // `PRI` followed by something else is not the preface either.
            let (h2, all) = run(&[b"PRI * HTTP/1.1\r\n"]).await;
            assert!(!h2);
            assert_eq!(all, b"PRI * HTTP/1.1\r\n");
        }

        #[tokio::test]
        async fn a_connection_closed_early_is_not_http2() {
            let (h2, all) = run(&[b"PRI * "]).await;
            assert!(!h2);
            assert_eq!(all, b"PRI * ");
        }
    }
}
