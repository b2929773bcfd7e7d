//! Reading a request body into one buffer under the size cap and the body timeout.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// More bytes than the cap.
    TooLarge,
    /// Not received within the timeout.
    Timeout,
    /// The connection failed or the framing was invalid.
    Broken,
}

/// Bytes reserved up front when no `Content-Length` is declared (chunked bodies).
const INITIAL_CHUNKED: usize = 1024;

/// Reads the whole body, copying each frame into one buffer as it arrives, so no transport
/// read buffer outlives its frame. The buffer is sized from a declared `Content-Length` (never
/// beyond the cap) and the cap is enforced while reading, chunked bodies included.
pub(crate) async fn body<B>(
    mut body: B,
    declared: Option<u64>,
    max: u64,
    timeout: Duration,
) -> Result<Bytes, ReadError>
where
    B: hyper::body::Body + Unpin,
{
    let capacity = declared.map_or(INITIAL_CHUNKED, |n| n.min(max) as usize);
    let read = async move {
        let mut buf = Vec::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ReadError::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers carry nothing we use
            };
            if (buf.len() + data.remaining_len()) as u64 > max {
                return Err(ReadError::TooLarge);
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

    #[tokio::test]
    async fn reads_whole_bodies_and_enforces_the_cap() {
        let b = body(
            Full::new(Bytes::from_static(b"hello")),
            Some(5),
            5,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(b.unwrap(), Bytes::from_static(b"hello"));
        let b = body(
            Full::new(Bytes::from_static(b"hello!")),
            None,
            5,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(b, Err(ReadError::TooLarge));
    }

    #[tokio::test]
    async fn many_small_frames_become_one_buffer() {
        let frames: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = (0..100)
            .map(|_| Ok(hyper::body::Frame::data(Bytes::from_static(b"x"))))
            .collect();
        let b = body(frames_body(frames), None, 1000, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(b.len(), 100);
    }

    /// A body that yields these frames one by one.
    fn frames_body<T>(items: Vec<T>) -> impl hyper::body::Body + Unpin
    where
        T: Unpin + Into<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>,
    {
        struct Iter<T>(std::vec::IntoIter<T>);
        impl<T: Unpin + Into<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>>
            hyper::body::Body for Iter<T>
        {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>>
            {
                std::task::Poll::Ready(self.0.next().map(Into::into))
            }
        }
        Iter(items.into_iter())
    }
}
