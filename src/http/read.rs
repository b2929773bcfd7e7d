//! Reading a request body into one buffer under the size cap and the body timeout.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;

use crate::runtime::limits::{BytePermit, Limit};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// More bytes than the cap.
    TooLarge,
    /// Not received within the timeout.
    Timeout,
    /// The connection failed or the framing was invalid.
    Broken,
    /// The in-flight budget has no room for the rest of the body.
    Budget(Limit),
}

/// Bytes reserved up front when no `Content-Length` is declared (chunked bodies).
const INITIAL_CHUNKED: usize = 1024;
/// A body's reservation covers this many times its length (the body and its parsed form).
const RESERVE_FACTOR: u64 = 8;

/// Reads the whole body, copying each frame into one buffer as it arrives, so no transport
/// read buffer outlives its frame. The buffer is sized from a declared `Content-Length` (never
/// beyond the cap) and the cap is enforced while reading, chunked bodies included.
pub(crate) async fn body<B>(
    mut body: B,
    declared: Option<u64>,
    max: u64,
    timeout: Duration,
    permit: &mut BytePermit,
    budget_wait: Duration,
) -> Result<Bytes, ReadError>
where
    B: hyper::body::Body + Unpin,
{
    let capacity = declared.map_or(INITIAL_CHUNKED, |n| n.min(max) as usize);
    let read = async move {
        let mut buf = Vec::with_capacity(capacity);
        loop {
            // Taken apart at once: nothing of the body's error type lives across an await.
            let Some(frame) = body.frame().await else {
                break;
            };
            let data = match frame.map(hyper::body::Frame::into_data) {
                Ok(Ok(data)) => data,
                Ok(Err(_)) => continue, // trailers carry nothing we use
                Err(_) => return Err(ReadError::Broken),
            };
            let len = (buf.len() + data.remaining_len()) as u64;
            if len > max {
                return Err(ReadError::TooLarge);
            }
            // A body longer than its reservation allows (chunked, or a wrong Content-Length)
            // grows it, doubling so that a long body costs few waits.
            let needed = len.saturating_mul(RESERVE_FACTOR);
            if needed > permit.bytes() {
                let target = needed.max(permit.bytes().saturating_mul(2));
                permit
                    .grow_to(target, budget_wait)
                    .await
                    .map_err(ReadError::Budget)?;
            }
            extend(&mut buf, data);
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ReadError::Timeout)?
}

trait Remaining {
    fn remaining_len(&self) -> usize;
}

impl<T: bytes::Buf> Remaining for T {
    fn remaining_len(&self) -> usize {
        self.remaining()
    }
}

fn extend(buf: &mut Vec<u8>, mut data: impl bytes::Buf) {
    while data.has_remaining() {
        let chunk = data.chunk();
        buf.extend_from_slice(chunk);
        let n = chunk.len();
        data.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    use crate::runtime::limits::ByteBudget;

    async fn permit(capacity: u64) -> BytePermit {
        ByteBudget::new(capacity)
            .reserve(0, Duration::ZERO)
            .await
            .unwrap()
    }

    /// A body that yields these frames one by one.
    fn frames_body(n: usize) -> impl hyper::body::Body + Unpin {
        struct Frames(usize);
        impl hyper::body::Body for Frames {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>>
            {
                if self.0 == 0 {
                    return std::task::Poll::Ready(None);
                }
                self.0 -= 1;
                std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"x")))))
            }
        }
        Frames(n)
    }

    #[tokio::test]
    async fn reads_whole_bodies_and_enforces_the_cap() {
        let (second, none) = (Duration::from_secs(1), Duration::ZERO);
        let mut p = permit(1 << 20).await;
        let hello = Full::new(Bytes::from_static(b"hello"));
        let b = body(hello, Some(5), 5, second, &mut p, none).await;
        assert_eq!(b.unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(p.bytes(), 40, "the reservation grew to cover the body");
        let longer = Full::new(Bytes::from_static(b"hello!"));
        assert_eq!(
            body(longer, None, 5, second, &mut p, none).await,
            Err(ReadError::TooLarge)
        );
    }

    #[tokio::test]
    async fn many_small_frames_become_one_buffer() {
        let mut p = permit(1 << 20).await;
        let b = body(
            frames_body(100),
            None,
            1000,
            Duration::from_secs(1),
            &mut p,
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!(b.len(), 100);
    }

    #[tokio::test]
    async fn a_body_beyond_the_budget_is_refused_while_it_streams() {
        let mut p = permit(100).await;
        let b = body(
            frames_body(100),
            None,
            1000,
            Duration::from_secs(1),
            &mut p,
            Duration::ZERO,
        )
        .await;
        assert_eq!(b, Err(ReadError::Budget(Limit::InflightBytes)));
    }
}
