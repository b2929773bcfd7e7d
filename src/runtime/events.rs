//! Resumable SSE streams of initialize-era sessions: the event store (a trait, in memory by default) and the live connections attached to streams.
//!
//! Every event sent on a session's SSE streams gets an id `<stream>-<seq>`: the stream number is
//! random (unique across replicas), the sequence counts from 1 (0 is the priming event). The last
//! [`MAX_EVENTS`] events of each stream are kept, so a client that lost the connection can `GET`
//! with `Last-Event-ID` and receive what it missed from that stream only, then the rest live
//! (spec 2025-11-25, Resumability). A session keeps at most [`MAX_STREAMS`] streams.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::session::{BoxFut, StoreError};
use crate::core::EventId;
use crate::sse;

/// Events kept per stream for replay.
pub(crate) const MAX_EVENTS: usize = 256;
/// Streams kept per session; the oldest finished ones are forgotten first.
pub(crate) const MAX_STREAMS: usize = 16;
/// Room in a resumed connection's channel: the whole replay fits without waiting.
pub(crate) const RESUME_CHANNEL: usize = MAX_EVENTS + 16;

/// What a stream recorded after a given event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Replay {
    /// `(seq, json)` of each later event, in order.
    pub(crate) events: Vec<(u64, Bytes)>,
    /// The stream has ended: nothing more will come.
    pub(crate) finished: bool,
}

/// Where stream events are recorded for resumption.
pub(crate) trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Starts recording stream `stream` of `session`.
    fn open<'a>(&'a self, session: &'a str, stream: u64) -> BoxFut<'a, Result<(), StoreError>>;
    /// Records `json` as the next event of the stream; returns its sequence number.
    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        json: Bytes,
    ) -> BoxFut<'a, Result<u64, StoreError>>;
    /// The events after `after`; `None` when the stream is unknown or forgotten.
    fn replay<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        after: u64,
    ) -> BoxFut<'a, Result<Option<Replay>, StoreError>>;
    /// Marks the stream ended; its events stay for late resumption.
    fn finish<'a>(&'a self, session: &'a str, stream: u64) -> BoxFut<'a, Result<(), StoreError>>;
    /// Forgets every stream of a session that ended.
    fn forget<'a>(&'a self, session: &'a str) -> BoxFut<'a, Result<(), StoreError>>;
}

#[derive(Debug, Default)]
struct Log {
    /// Order of opening, to evict the oldest.
    opened: u64,
    next_seq: u64,
    events: VecDeque<(u64, Bytes)>,
    done: bool,
}

/// The in-process event store.
#[derive(Debug, Default)]
pub(crate) struct MemoryEvents {
    sessions: Mutex<HashMap<String, SessionLogs>>,
}

#[derive(Debug, Default)]
struct SessionLogs {
    opened: u64,
    streams: HashMap<u64, Log>,
}

fn ready<T: Send + 'static>(v: T) -> BoxFut<'static, T> {
    Box::pin(std::future::ready(v))
}

impl EventStore for MemoryEvents {
    fn open<'a>(&'a self, session: &'a str, stream: u64) -> BoxFut<'a, Result<(), StoreError>> {
        let mut all = self.sessions.lock().expect("event store poisoned");
        let logs = all.entry(session.to_owned()).or_default();
        if logs.streams.len() >= MAX_STREAMS {
            // Forget the oldest finished stream; if none is finished, the oldest of all.
            let oldest = |done_only: bool| {
                logs.streams
                    .iter()
                    .filter(|(_, l)| l.done || !done_only)
                    .min_by_key(|(_, l)| l.opened)
                    .map(|(k, _)| *k)
            };
            if let Some(v) = oldest(true).or_else(|| oldest(false)) {
                logs.streams.remove(&v);
            }
        }
        logs.opened += 1;
        let opened = logs.opened;
        logs.streams.insert(
            stream,
            Log {
                opened,
                next_seq: 1,
                ..Log::default()
            },
        );
        ready(Ok(()))
    }

    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        json: Bytes,
    ) -> BoxFut<'a, Result<u64, StoreError>> {
        let mut all = self.sessions.lock().expect("event store poisoned");
        let Some(log) = all
            .get_mut(session)
            .and_then(|l| l.streams.get_mut(&stream))
        else {
            // A forgotten stream records nothing; its sequence numbers are not reused.
            return ready(Ok(0));
        };
        let seq = log.next_seq;
        log.next_seq += 1;
        if log.events.len() == MAX_EVENTS {
            log.events.pop_front();
        }
        log.events.push_back((seq, json));
        ready(Ok(seq))
    }

    fn replay<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        after: u64,
    ) -> BoxFut<'a, Result<Option<Replay>, StoreError>> {
        let all = self.sessions.lock().expect("event store poisoned");
        let found = all
            .get(session)
            .and_then(|l| l.streams.get(&stream))
            .map(|log| Replay {
                events: log
                    .events
                    .iter()
                    .filter(|(s, _)| *s > after)
                    .cloned()
                    .collect(),
                finished: log.done,
            });
        ready(Ok(found))
    }

    fn finish<'a>(&'a self, session: &'a str, stream: u64) -> BoxFut<'a, Result<(), StoreError>> {
        let mut all = self.sessions.lock().expect("event store poisoned");
        if let Some(log) = all
            .get_mut(session)
            .and_then(|l| l.streams.get_mut(&stream))
        {
            log.done = true;
        }
        ready(Ok(()))
    }

    fn forget<'a>(&'a self, session: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        self.sessions
            .lock()
            .expect("event store poisoned")
            .remove(session);
        ready(Ok(()))
    }
}

/// A stream's key: its session and its number.
type StreamKey = (Arc<str>, u64);

/// The client connections attached to streams on this replica.
#[derive(Debug, Default)]
pub(crate) struct LiveStreams {
    attached: Mutex<HashMap<StreamKey, mpsc::Sender<Bytes>>>,
}

impl LiveStreams {
    fn get(&self, session: &Arc<str>, stream: u64) -> Option<mpsc::Sender<Bytes>> {
        self.attached
            .lock()
            .expect("live streams poisoned")
            .get(&(session.clone(), stream))
            .cloned()
    }

    fn set(&self, session: &Arc<str>, stream: u64, live: Option<mpsc::Sender<Bytes>>) {
        let mut attached = self.attached.lock().expect("live streams poisoned");
        match live {
            Some(tx) => attached.insert((session.clone(), stream), tx),
            None => attached.remove(&(session.clone(), stream)),
        };
    }

    /// Detaches `tx` if it is still the stream's connection (a newer one may have replaced it).
    fn detach_if(&self, session: &Arc<str>, stream: u64, tx: &mpsc::Sender<Bytes>) {
        let mut attached = self.attached.lock().expect("live streams poisoned");
        let key = (session.clone(), stream);
        if attached.get(&key).is_some_and(|l| l.same_channel(tx)) {
            attached.remove(&key);
        }
    }

    /// Ends every connection of `session`.
    pub(crate) fn drop_session(&self, session: &str) {
        self.attached
            .lock()
            .expect("live streams poisoned")
            .retain(|(s, _), _| &**s != session);
    }

    /// Ends every connection (shutdown).
    pub(crate) fn clear(&self) {
        self.attached.lock().expect("live streams poisoned").clear();
    }
}

/// One stream of a session: records its events and delivers them to whoever is attached.
#[derive(Debug, Clone)]
pub(crate) struct StreamHandle {
    store: Arc<dyn EventStore>,
    live: Arc<LiveStreams>,
    session: Arc<str>,
    stream: u64,
}

/// Why a `Last-Event-ID` could not be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeError {
    /// The stream is unknown to this session, or was forgotten.
    UnknownStream,
    /// The store failed.
    Store(StoreError),
}

impl StreamHandle {
    /// Opens stream `stream` of `session`, attached to `live` when given.
    pub(crate) async fn open(
        store: Arc<dyn EventStore>,
        live_streams: Arc<LiveStreams>,
        session: Arc<str>,
        stream: u64,
        live: Option<mpsc::Sender<Bytes>>,
    ) -> Result<Self, StoreError> {
        store.open(&session, stream).await?;
        live_streams.set(&session, stream, live);
        Ok(Self {
            store,
            live: live_streams,
            session,
            stream,
        })
    }

    /// A handle on an existing stream (no store call).
    pub(crate) fn existing(
        store: Arc<dyn EventStore>,
        live: Arc<LiveStreams>,
        session: Arc<str>,
        stream: u64,
    ) -> Self {
        Self {
            store,
            live,
            session,
            stream,
        }
    }

    /// Sends the priming event (id `<stream>-0`, empty data) to the live connection.
    pub(crate) async fn prime(&self) -> bool {
        self.deliver(sse::priming(EventId {
            stream: self.stream,
            seq: 0,
        }))
        .await
    }

    /// Records `json` as the next event and delivers it live if a connection is attached.
    /// Returns whether a live connection took it.
    pub(crate) async fn send(&self, json: Bytes) -> bool {
        let Ok(seq) = self
            .store
            .append(&self.session, self.stream, json.clone())
            .await
        else {
            return false;
        };
        let frame = sse::event(
            Some(EventId {
                stream: self.stream,
                seq,
            }),
            &json,
        );
        self.deliver(frame).await
    }

    /// Sends bytes that are not recorded (keep-alives, retry) to the live connection only.
    pub(crate) async fn deliver(&self, frame: Bytes) -> bool {
        let Some(tx) = self.live.get(&self.session, self.stream) else {
            return false;
        };
        if tx.send(frame).await.is_ok() {
            return true;
        }
        // The client went away: keep recording so it can resume.
        self.live.detach_if(&self.session, self.stream, &tx);
        false
    }

    /// True when a client connection is attached and open.
    pub(crate) fn is_live(&self) -> bool {
        self.live
            .get(&self.session, self.stream)
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Attaches a connection (a plain GET on the session's standalone stream).
    pub(crate) fn attach(&self, live: mpsc::Sender<Bytes>) {
        self.live.set(&self.session, self.stream, Some(live));
    }

    /// Ends the HTTP response after a `retry:` hint while the stream goes on recording; the
    /// client resumes with `Last-Event-ID`.
    pub(crate) async fn detach(&self, retry_ms: u64) {
        self.deliver(sse::retry(retry_ms)).await;
        self.live.set(&self.session, self.stream, None);
    }

    /// Marks the stream complete and ends the live response; the log stays for late resumption.
    pub(crate) async fn finish(&self) {
        let _ = self.store.finish(&self.session, self.stream).await;
        self.live.set(&self.session, self.stream, None);
    }

    /// Replays what the stream sent after `last` into `live`, then attaches `live` for what
    /// follows, unless the stream has finished.
    pub(crate) async fn resume(
        store: Arc<dyn EventStore>,
        live_streams: Arc<LiveStreams>,
        session: Arc<str>,
        last: EventId,
        live: mpsc::Sender<Bytes>,
    ) -> Result<(), ResumeError> {
        let replay = store
            .replay(&session, last.stream, last.seq)
            .await
            .map_err(ResumeError::Store)?
            .ok_or(ResumeError::UnknownStream)?;
        for (seq, json) in &replay.events {
            let frame = sse::event(
                Some(EventId {
                    stream: last.stream,
                    seq: *seq,
                }),
                json,
            );
            // The channel holds RESUME_CHANNEL frames, more than a log keeps, so this never waits.
            let _ = live.try_send(frame);
        }
        if !replay.finished {
            live_streams.set(&session, last.stream, Some(live));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles() -> (Arc<dyn EventStore>, Arc<LiveStreams>, Arc<str>) {
        (
            Arc::new(MemoryEvents::default()),
            Arc::new(LiveStreams::default()),
            "s1".into(),
        )
    }

    #[tokio::test]
    async fn resume_replays_only_later_events_of_that_stream() {
        let (store, live, session) = handles();
        let (tx, mut rx) = mpsc::channel(8);
        let a = StreamHandle::open(store.clone(), live.clone(), session.clone(), 1, Some(tx))
            .await
            .unwrap();
        let b = StreamHandle::open(store.clone(), live.clone(), session.clone(), 2, None)
            .await
            .unwrap();
        a.send(Bytes::from_static(b"1")).await;
        b.send(Bytes::from_static(b"\"other\"")).await;
        a.send(Bytes::from_static(b"2")).await;
        a.send(Bytes::from_static(b"3")).await;
        assert!(rx.recv().await.unwrap().starts_with(b"id: 1-1\n"));
        drop(rx);
        let (tx2, mut rx2) = mpsc::channel(RESUME_CHANNEL);
        let last = EventId { stream: 1, seq: 1 };
        StreamHandle::resume(store.clone(), live.clone(), session.clone(), last, tx2)
            .await
            .unwrap();
        let first = rx2.recv().await.unwrap();
        assert!(first.starts_with(b"id: 1-2\n"), "{first:?}");
        assert!(rx2.recv().await.unwrap().starts_with(b"id: 1-3\n"));
        a.send(Bytes::from_static(b"4")).await;
        assert!(rx2.recv().await.unwrap().starts_with(b"id: 1-4\n"));
        a.finish().await;
        assert!(rx2.recv().await.is_none(), "finish ends the live response");
        let unknown = EventId { stream: 9, seq: 1 };
        assert_eq!(
            StreamHandle::resume(store, live, session, unknown, mpsc::channel(1).0).await,
            Err(ResumeError::UnknownStream)
        );
    }

    #[tokio::test]
    async fn keeps_a_bounded_number_of_streams_and_events() {
        let store = MemoryEvents::default();
        for i in 0..(MAX_STREAMS as u64 + 3) {
            store.open("s", i).await.unwrap();
        }
        assert_eq!(
            store.sessions.lock().unwrap()["s"].streams.len(),
            MAX_STREAMS
        );
        assert!(
            store.replay("s", 0, 0).await.unwrap().is_none(),
            "oldest forgotten"
        );
        let last = MAX_STREAMS as u64 + 2;
        for _ in 0..MAX_EVENTS + 10 {
            store
                .append("s", last, Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let r = store.replay("s", last, 0).await.unwrap().unwrap();
        assert_eq!(r.events.len(), MAX_EVENTS);
        assert_eq!(r.events[0].0, 11);
    }
}
