//! The response body of the server's HTTP service: a whole buffer, or a stream of SSE frames.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body, as the [`McpService`](crate::McpService) returns it. It implements
/// [`hyper::body::Body`], so it can be sent by hyper directly or converted into another
/// framework's body type.
#[derive(Debug)]
pub struct Body(Inner);

#[derive(Debug)]
enum Inner {
    /// The whole body at once (taken on first poll).
    Full(Option<Bytes>),
    /// Frames as a task produces them; ends when every sender is dropped.
    Stream(mpsc::Receiver<Bytes>),
}

impl Body {
    /// No body.
    pub fn empty() -> Self {
        Self(Inner::Full(None))
    }

    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Self::empty();
        }
        Self(Inner::Full(Some(bytes)))
    }

    /// A body fed frame by frame.
    pub(crate) fn stream(rx: mpsc::Receiver<Bytes>) -> Self {
        Self(Inner::Stream(rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Stream(_) => SizeHint::default(),
        }
    }
}
