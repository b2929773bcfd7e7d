//! Resumable SSE streams of an initialize-era session: event ids, a bounded replay buffer, the live connection.
//!
//! Every event sent on a session's SSE streams gets an id `<stream>-<seq>`, unique in the
//! session and naming its stream (spec 2025-11-25, Resumability). The last events of each stream
//! are kept, so a client that lost the connection can `GET` with `Last-Event-ID` and receive
//! what it missed from that stream only, then the rest live. The buffers are bounded, and so is
//! the number of streams a session keeps.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::sse;

/// Events kept per stream for replay.
const MAX_EVENTS: usize = 256;
/// Streams kept per session; the oldest finished ones are forgotten first.
const MAX_STREAMS: usize = 16;
/// Room in a resumed connection's channel: the whole replay fits without waiting.
pub const RESUME_CHANNEL: usize = MAX_EVENTS + 16;

#[derive(Debug)]
struct Log {
    next_seq: u64,
    events: VecDeque<(u64, Bytes)>,
    live: Option<mpsc::Sender<Bytes>>,
    done: bool,
}

/// A session's SSE streams.
#[derive(Debug, Default)]
pub struct EventStreams {
    next_stream: AtomicU64,
    logs: Mutex<HashMap<u64, Log>>,
}

/// Why a `Last-Event-ID` could not be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// Not an id this server issues.
    Malformed,
    /// The stream is unknown to this session, or was forgotten.
    UnknownStream,
}

/// The writing end of one stream.
#[derive(Debug, Clone)]
pub struct StreamHandle {
    streams: Arc<EventStreams>,
    id: u64,
}

impl EventStreams {
    /// Opens a new stream whose live connection is `live`.
    pub fn open(self: &Arc<Self>, live: Option<mpsc::Sender<Bytes>>) -> StreamHandle {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed) + 1;
        let mut logs = self.logs.lock().expect("event log lock poisoned");
        if logs.len() >= MAX_STREAMS {
            // Forget the oldest finished stream; if none is finished, the oldest of all.
            let victim = logs
                .iter()
                .filter(|(_, l)| l.done)
                .map(|(k, _)| *k)
                .min()
                .or_else(|| logs.keys().copied().min());
            if let Some(v) = victim {
                logs.remove(&v);
            }
        }
        logs.insert(
            id,
            Log {
                next_seq: 1,
                events: VecDeque::new(),
                live,
                done: false,
            },
        );
        StreamHandle {
            streams: self.clone(),
            id,
        }
    }

    /// Replays the events of the stream named by `last_event_id` that came after it into `live`,
    /// then attaches `live` for what follows (unless the stream has finished).
    pub fn resume(
        &self,
        last_event_id: &str,
        live: mpsc::Sender<Bytes>,
    ) -> Result<(), ResumeError> {
        let (stream, seq) = last_event_id
            .trim()
            .split_once('-')
            .ok_or(ResumeError::Malformed)?;
        let stream: u64 = stream.parse().map_err(|_| ResumeError::Malformed)?;
        let seq: u64 = seq.parse().map_err(|_| ResumeError::Malformed)?;
        let mut logs = self.logs.lock().expect("event log lock poisoned");
        let log = logs.get_mut(&stream).ok_or(ResumeError::UnknownStream)?;
        for (s, frame) in &log.events {
            if *s > seq {
                // The channel holds RESUME_CHANNEL frames, more than a log keeps, so this never waits.
                let _ = live.try_send(frame.clone());
            }
        }
        if !log.done {
            log.live = Some(live);
        }
        Ok(())
    }
}

impl StreamHandle {
    /// The stream's number (the part before `-` in its event ids).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends the priming event (id `<stream>-0`, empty data).
    pub async fn prime(&self) -> bool {
        self.deliver(sse::priming(&format!("{}-0", self.id))).await
    }

    /// Records `json` as the next event and delivers it live if a connection is attached.
    /// Returns whether a live connection took it.
    pub async fn send(&self, json: &Value) -> bool {
        let live = {
            let mut logs = self.streams.logs.lock().expect("event log lock poisoned");
            let Some(log) = logs.get_mut(&self.id) else {
                return false;
            };
            let seq = log.next_seq;
            log.next_seq += 1;
            let frame = sse::event(Some(&format!("{}-{seq}", self.id)), json);
            if log.events.len() == MAX_EVENTS {
                log.events.pop_front();
            }
            log.events.push_back((seq, frame.clone()));
            log.live.clone().map(|tx| (tx, frame))
        };
        match live {
            Some((tx, frame)) => self.deliver_to(tx, frame).await,
            None => false,
        }
    }

    /// Sends bytes that are not recorded (keep-alives, retry) to the live connection only.
    pub async fn deliver(&self, frame: Bytes) -> bool {
        let live = self.live();
        match live {
            Some(tx) => self.deliver_to(tx, frame).await,
            None => false,
        }
    }

    async fn deliver_to(&self, tx: mpsc::Sender<Bytes>, frame: Bytes) -> bool {
        if tx.send(frame).await.is_ok() {
            return true;
        }
        // The client went away: keep recording so it can resume.
        let mut logs = self.streams.logs.lock().expect("event log lock poisoned");
        if let Some(log) = logs.get_mut(&self.id) {
            if log.live.as_ref().is_some_and(|l| l.same_channel(&tx)) {
                log.live = None;
            }
        }
        false
    }

    fn live(&self) -> Option<mpsc::Sender<Bytes>> {
        let logs = self.streams.logs.lock().expect("event log lock poisoned");
        logs.get(&self.id).and_then(|l| l.live.clone())
    }

    /// True when a client connection is attached and open.
    pub fn is_live(&self) -> bool {
        self.live().is_some_and(|tx| !tx.is_closed())
    }

    /// Attaches a connection (a plain GET on the session's standalone stream).
    pub fn attach(&self, live: mpsc::Sender<Bytes>) {
        let mut logs = self.streams.logs.lock().expect("event log lock poisoned");
        if let Some(log) = logs.get_mut(&self.id) {
            log.live = Some(live);
        }
    }

    /// Ends the HTTP response after a `retry:` hint while the stream goes on recording; the
    /// client resumes with `Last-Event-ID`.
    pub async fn detach(&self, retry_ms: u64) {
        self.deliver(sse::retry(retry_ms)).await;
        let mut logs = self.streams.logs.lock().expect("event log lock poisoned");
        if let Some(log) = logs.get_mut(&self.id) {
            log.live = None;
        }
    }

    /// Marks the stream complete and ends the live response; the log stays for late resumption.
    pub fn finish(&self) {
        let mut logs = self.streams.logs.lock().expect("event log lock poisoned");
        if let Some(log) = logs.get_mut(&self.id) {
            log.done = true;
            log.live = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn resume_replays_only_later_events_of_that_stream() {
        let streams = Arc::new(EventStreams::default());
        let (tx, mut rx) = mpsc::channel(8);
        let a = streams.open(Some(tx));
        let b = streams.open(None);
        a.send(&json!(1)).await;
        b.send(&json!("other")).await;
        a.send(&json!(2)).await;
        a.send(&json!(3)).await;
        assert!(rx.recv().await.unwrap().starts_with(b"id: 1-1\n"));
        drop(rx);
        let (tx2, mut rx2) = mpsc::channel(RESUME_CHANNEL);
        streams.resume("1-1", tx2).unwrap();
        let first = rx2.recv().await.unwrap();
        assert!(first.starts_with(b"id: 1-2\n"), "{first:?}");
        assert!(rx2.recv().await.unwrap().starts_with(b"id: 1-3\n"));
        a.send(&json!(4)).await;
        assert!(rx2.recv().await.unwrap().starts_with(b"id: 1-4\n"));
        a.finish();
        assert!(rx2.recv().await.is_none(), "finish ends the live response");
        assert_eq!(
            streams.resume("9-1", mpsc::channel(1).0),
            Err(ResumeError::UnknownStream)
        );
        assert_eq!(
            streams.resume("x", mpsc::channel(1).0),
            Err(ResumeError::Malformed)
        );
    }

    #[test]
    fn keeps_a_bounded_number_of_streams() {
        let streams = Arc::new(EventStreams::default());
        let handles: Vec<_> = (0..MAX_STREAMS + 3).map(|_| streams.open(None)).collect();
        assert_eq!(streams.logs.lock().unwrap().len(), MAX_STREAMS);
        drop(handles);
    }
}
