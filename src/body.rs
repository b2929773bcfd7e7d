//! The response body of the server's HTTP service: a whole buffer, or a stream of SSE frames.

use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body, as the [`McpService`](crate::McpService) returns it. It implements
/// [`hyper::body::Body`], so it can be sent by hyper directly or converted into another
/// framework's body type.
#[derive(Debug)]
pub struct Body(
    Inner,
    Option<crate::serve::BusyGuard>,
    /// Counts the open stream for metrics while the body lives.
    Option<crate::ops::OpenStream>,
);

/// Headers a response's map has room for from the start. hyper clears a response's header
/// map after writing it and parses the connection's next request into it, so a map sized for
/// a request's headers (eight to twelve from MCP clients) is not regrown on every request.
const RESPONSE_HEADER_ROOM: usize = 16;

/// A response around `body` whose header map has [`RESPONSE_HEADER_ROOM`].
pub(crate) fn response(body: Body) -> http::Response<Body> {
    let mut resp = http::Response::new(body);
    *resp.headers_mut() = http::HeaderMap::with_capacity(RESPONSE_HEADER_ROOM);
    resp
}

#[derive(Debug)]
enum Inner {
    /// The whole body at once (taken on first poll).
    Full(Option<Bytes>),
    /// Frames as a task produces them; ends when every sender is dropped.
    Stream(mpsc::Receiver<Bytes>),
    /// A long-lived stream: ends at its lifetime with a farewell frame, and holds the
    /// principal's stream slot for as long as the response lives.
    Bounded(Box<Bounded>),
}

#[derive(Debug)]
struct Bounded {
    rx: mpsc::Receiver<Bytes>,
    end: Pin<Box<tokio::time::Sleep>>,
    farewell: Option<Bytes>,
    done: bool,
    _permit: crate::runtime::limits::Permit,
}

impl Body {
    /// No body.
    pub fn empty() -> Self {
        Self(Inner::Full(None), None, None)
    }

    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Self::empty();
        }
        Self(Inner::Full(Some(bytes)), None, None)
    }

    /// A body fed frame by frame.
    pub(crate) fn stream(rx: mpsc::Receiver<Bytes>) -> Self {
        Self(Inner::Stream(rx), None, None)
    }

    /// Counts this stream as open (metrics) until the body is dropped.
    pub(crate) fn counted(mut self, guard: Option<crate::ops::OpenStream>) -> Self {
        self.2 = guard;
        self
    }

    /// Marks the connection busy until this body is finished or dropped.
    pub(crate) fn holding(mut self, busy: crate::serve::BusyGuard) -> Self {
        self.1 = Some(busy);
        self
    }

    /// A long-lived stream that ends after `lifetime` with `farewell`, holding `permit` until
    /// it is dropped.
    pub(crate) fn bounded(
        rx: mpsc::Receiver<Bytes>,
        lifetime: std::time::Duration,
        farewell: Option<Bytes>,
        permit: crate::runtime::limits::Permit,
    ) -> Self {
        Self(
            Inner::Bounded(Box::new(Bounded {
                rx,
                end: Box::pin(tokio::time::sleep(lifetime)),
                farewell,
                done: false,
                _permit: permit,
            })),
            None,
            None,
        )
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let polled = poll_inner(&mut this.0, cx);
        if let Poll::Ready(None) = polled {
            // Sent in full: the connection is idle from now, not from when hyper drops the body.
            this.1 = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Stream(_) | Inner::Bounded(_) => SizeHint::default(),
        }
    }
}

fn poll_inner(
    inner: &mut Inner,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    {
        match inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
            Inner::Bounded(s) => {
                if s.done {
                    return Poll::Ready(None);
                }
                if s.end.as_mut().poll(cx).is_ready() {
                    s.done = true;
                    return Poll::Ready(s.farewell.take().map(|b| Ok(Frame::data(b))));
                }
                match s.rx.poll_recv(cx) {
                    Poll::Ready(None) => {
                        s.done = true;
                        Poll::Ready(None)
                    }
                    other => other.map(|b| b.map(|b| Ok(Frame::data(b)))),
                }
            }
        }
    }
}
