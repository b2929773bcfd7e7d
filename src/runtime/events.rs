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
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Replay {
    /// `(seq, json)` of each later event, in order.
    pub(crate) events: Vec<(u64, Bytes)>,
    /// The stream has ended: nothing more will come.
    pub(crate) finished: bool,
    /// It is a session's standalone (GET) stream, not a call's.
    pub(crate) standalone: bool,
    /// A call's stream whose producing replica stopped before the call finished: nothing more
    /// will come, and the request it answers has failed (`request` is its id). Never set by a
    /// store that lives in one process.
    pub(crate) producer_gone: Option<serde_json::Value>,
}

/// What a stream is for, recorded when it opens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Origin {
    /// A session's standalone GET stream.
    Standalone,
    /// The response stream of the request with this id.
    Call(serde_json::Value),
}

/// Where stream events are recorded for resumption.
pub(crate) trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Starts recording stream `stream` of `session`.
    fn open<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        origin: &'a Origin,
    ) -> BoxFut<'a, Result<(), StoreError>>;
    /// Records `json` as the next event of the stream; returns its sequence number. A shared
    /// store also carries it to the replica where a resumed connection is attached.
    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        json: Bytes,
    ) -> BoxFut<'a, Result<u64, StoreError>>;
    /// The events after `after`; `None` when the stream is unknown or forgotten. With `attach`,
    /// a shared store also routes the stream's later events to this replica.
    fn replay<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        after: u64,
        attach: bool,
    ) -> BoxFut<'a, Result<Option<Replay>, StoreError>>;
    /// Marks the stream ended; its events stay for late resumption.
    fn finish<'a>(&'a self, session: &'a str, stream: u64) -> BoxFut<'a, Result<(), StoreError>>;
    /// Forgets every stream of a session that ended.
    fn forget<'a>(&'a self, session: &'a str) -> BoxFut<'a, Result<(), StoreError>>;
    /// A plain GET (no `Last-Event-ID`) wants the session's standalone connection: false when a
    /// connection on another running replica holds it (409). With `take`, the caller holds it
    /// whatever the others do (a resumption). One process always holds its own.
    fn hold<'a>(&'a self, _session: &'a str, _take: bool) -> BoxFut<'a, Result<bool, StoreError>> {
        ready(Ok(true))
    }
    /// True when another replica now holds the session's standalone connection, so this
    /// replica's standalone stream should stop recording.
    fn held_elsewhere<'a>(&'a self, _session: &'a str) -> BoxFut<'a, Result<bool, StoreError>> {
        ready(Ok(false))
    }
    /// This replica's standalone connection closed: others may take it.
    fn release<'a>(&'a self, _session: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        ready(Ok(()))
    }
}

#[derive(Debug, Default)]
struct Log {
    /// Order of opening, to evict the oldest.
    opened: u64,
    next_seq: u64,
    events: VecDeque<(u64, Bytes)>,
    done: bool,
    standalone: bool,
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
    fn open<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        origin: &'a Origin,
    ) -> BoxFut<'a, Result<(), StoreError>> {
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
                standalone: *origin == Origin::Standalone,
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
        _attach: bool,
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
                standalone: log.standalone,
                producer_gone: None,
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

/// A connection's place on a stream.
#[derive(Debug)]
enum Slot {
    /// A resumption is reading the log: later events wait here, so none is lost or doubled.
    Staging(Vec<(u64, Bytes)>),
    /// Attached: events after `after` go to `tx`.
    Attached { tx: mpsc::Sender<Bytes>, after: u64 },
}

/// The client connections attached to streams on this replica.
#[derive(Debug, Default)]
pub(crate) struct LiveStreams {
    attached: Mutex<HashMap<StreamKey, Slot>>,
}

impl LiveStreams {
    fn get(&self, session: &Arc<str>, stream: u64) -> Option<mpsc::Sender<Bytes>> {
        match self
            .attached
            .lock()
            .expect("live streams poisoned")
            .get(&(session.clone(), stream))
        {
            Some(Slot::Attached { tx, .. }) => Some(tx.clone()),
            _ => None,
        }
    }

    /// Where event `seq` goes: the connection, unless it was already replayed there; while a
    /// resumption stages, the event is kept for it and `None` returned.
    fn route(
        &self,
        session: &Arc<str>,
        stream: u64,
        seq: u64,
        json: &Bytes,
    ) -> Option<mpsc::Sender<Bytes>> {
        match self
            .attached
            .lock()
            .expect("live streams poisoned")
            .get_mut(&(session.clone(), stream))
        {
            Some(Slot::Attached { tx, after }) if seq > *after => Some(tx.clone()),
            Some(Slot::Staging(held)) => {
                held.push((seq, json.clone()));
                None
            }
            _ => None,
        }
    }

    fn set(&self, session: &Arc<str>, stream: u64, live: Option<mpsc::Sender<Bytes>>) {
        let mut attached = self.attached.lock().expect("live streams poisoned");
        match live {
            Some(tx) => attached.insert((session.clone(), stream), Slot::Attached { tx, after: 0 }),
            None => attached.remove(&(session.clone(), stream)),
        };
    }

    /// Detaches `tx` if it is still the stream's connection (a newer one may have replaced it).
    fn detach_if(&self, session: &Arc<str>, stream: u64, tx: &mpsc::Sender<Bytes>) -> bool {
        let mut attached = self.attached.lock().expect("live streams poisoned");
        let key = (session.clone(), stream);
        if matches!(attached.get(&key), Some(Slot::Attached { tx: l, .. }) if l.same_channel(tx)) {
            attached.remove(&key);
            return true;
        }
        false
    }

    /// A resumption starts: events recorded from now on wait for it.
    fn stage(&self, session: &Arc<str>, stream: u64) {
        self.attached
            .lock()
            .expect("live streams poisoned")
            .insert((session.clone(), stream), Slot::Staging(Vec::new()));
    }

    /// The replay up to `last` is written: the events staged since follow it (those it already
    /// held are skipped), then `tx` stays attached, unless `finished`.
    fn activate(
        &self,
        session: &Arc<str>,
        stream: u64,
        tx: mpsc::Sender<Bytes>,
        last: u64,
        finished: bool,
    ) {
        let mut attached = self.attached.lock().expect("live streams poisoned");
        let key = (session.clone(), stream);
        let mut after = last;
        if let Some(Slot::Staging(held)) = attached.remove(&key) {
            for (seq, json) in held {
                if seq > after {
                    // Room was made for a whole log; a flood beyond it is cut, and resumed again.
                    let _ = tx.try_send(sse::event(Some(EventId { stream, seq }), &json));
                    after = seq;
                }
            }
        }
        if !finished {
            attached.insert(key, Slot::Attached { tx, after });
        }
    }

    /// An event another replica recorded for a connection attached here; false when no
    /// connection is attached (any more).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn deliver_remote(&self, session: &str, stream: u64, seq: u64, json: Bytes) -> bool {
        let session: Arc<str> = session.into();
        if !self.has(&session, stream) {
            return false;
        }
        let Some(tx) = self.route(&session, stream, seq, &json) else {
            return true;
        };
        let frame = sse::event(Some(EventId { stream, seq }), &json);
        match tx.try_send(frame) {
            Ok(()) => {
                self.bump(&session, stream, seq);
                true
            }
            // A client that cannot keep up is cut; it resumes from its last event.
            Err(_) => {
                self.detach_if(&session, stream, &tx);
                false
            }
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn bump(&self, session: &Arc<str>, stream: u64, seq: u64) {
        if let Some(Slot::Attached { after, .. }) = self
            .attached
            .lock()
            .expect("live streams poisoned")
            .get_mut(&(session.clone(), stream))
        {
            *after = (*after).max(seq);
        }
    }

    /// Ends the connection attached to a stream (it finished, or its producer is gone).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn end(&self, session: &str, stream: u64) {
        self.attached
            .lock()
            .expect("live streams poisoned")
            .remove(&(Arc::from(session), stream));
    }

    /// True when a connection is attached to the stream (or a resumption is staging it).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn has(&self, session: &str, stream: u64) -> bool {
        self.attached
            .lock()
            .expect("live streams poisoned")
            .contains_key(&(Arc::from(session), stream))
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

/// What a resumption found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resumed {
    /// It is the session's standalone stream.
    pub(crate) standalone: bool,
    /// The stream had already ended: the replay is all there is.
    pub(crate) finished: bool,
}

impl StreamHandle {
    /// Opens stream `stream` of `session`, attached to `live` when given.
    pub(crate) async fn open(
        store: Arc<dyn EventStore>,
        live_streams: Arc<LiveStreams>,
        session: Arc<str>,
        stream: u64,
        origin: Origin,
        live: Option<mpsc::Sender<Bytes>>,
    ) -> Result<Self, StoreError> {
        store.open(&session, stream, &origin).await?;
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

    /// The stream's number.
    pub(crate) fn id(&self) -> u64 {
        self.stream
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
        let Some(tx) = self.live.route(&self.session, self.stream, seq, &json) else {
            return false;
        };
        let frame = sse::event(
            Some(EventId {
                stream: self.stream,
                seq,
            }),
            &json,
        );
        if tx.send(frame).await.is_ok() {
            return true;
        }
        // The client went away: keep recording so it can resume.
        self.live.detach_if(&self.session, self.stream, &tx);
        false
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

    /// Completes when the attached connection closes (at once when none is attached).
    pub(crate) async fn connection_closed(&self) {
        if let Some(tx) = self.live.get(&self.session, self.stream) {
            tx.closed().await;
            self.live.detach_if(&self.session, self.stream, &tx);
        }
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

    /// Ends the live response here without marking the stream complete.
    pub(crate) fn end_here(&self) {
        self.live.set(&self.session, self.stream, None);
    }

    /// Marks the stream complete and ends the live response; the log stays for late resumption.
    pub(crate) async fn finish(&self) {
        let _ = self.store.finish(&self.session, self.stream).await;
        self.live.set(&self.session, self.stream, None);
    }

    /// Replays what the stream sent after `last` into `live`, then attaches `live` for what
    /// follows, unless the stream has finished. A call whose producing replica stopped gets a
    /// JSON-RPC error after the replay, and the stream ends.
    pub(crate) async fn resume(
        store: Arc<dyn EventStore>,
        live_streams: Arc<LiveStreams>,
        session: Arc<str>,
        last: EventId,
        live: mpsc::Sender<Bytes>,
    ) -> Result<Resumed, ResumeError> {
        live_streams.stage(&session, last.stream);
        let replay = match store.replay(&session, last.stream, last.seq, true).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                live_streams.end(&session, last.stream);
                return Err(ResumeError::UnknownStream);
            }
            Err(e) => {
                live_streams.end(&session, last.stream);
                return Err(ResumeError::Store(e));
            }
        };
        let mut seen = last.seq;
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
            seen = seen.max(*seq);
        }
        let mut finished = replay.finished;
        if let Some(request) = &replay.producer_gone {
            let handle = Self::existing(
                store.clone(),
                live_streams.clone(),
                session.clone(),
                last.stream,
            );
            let error = producer_gone_error(request);
            if let Ok(seq) = store.append(&session, last.stream, error.clone()).await {
                let _ = live.try_send(sse::event(
                    Some(EventId {
                        stream: last.stream,
                        seq,
                    }),
                    &error,
                ));
                seen = seen.max(seq);
            }
            handle.finish().await;
            finished = true;
        }
        live_streams.activate(&session, last.stream, live, seen, finished);
        Ok(Resumed {
            standalone: replay.standalone,
            finished,
        })
    }
}

/// The JSON-RPC error that ends a call whose replica stopped before it finished.
pub(crate) fn producer_gone_error(request: &serde_json::Value) -> Bytes {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": request,
        "error": {
            "code": -32603,
            "message": "The server replica running this request stopped before it finished; retry the request",
        },
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
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
        let a = StreamHandle::open(
            store.clone(),
            live.clone(),
            session.clone(),
            1,
            Origin::Standalone,
            Some(tx),
        )
        .await
        .unwrap();
        let b = StreamHandle::open(
            store.clone(),
            live.clone(),
            session.clone(),
            2,
            Origin::Standalone,
            None,
        )
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
            store.open("s", i, &Origin::Standalone).await.unwrap();
        }
        assert_eq!(
            store.sessions.lock().unwrap()["s"].streams.len(),
            MAX_STREAMS
        );
        assert!(
            store.replay("s", 0, 0, false).await.unwrap().is_none(),
            "oldest forgotten"
        );
        let last = MAX_STREAMS as u64 + 2;
        for _ in 0..MAX_EVENTS + 10 {
            store
                .append("s", last, Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let r = store.replay("s", last, 0, false).await.unwrap().unwrap();
        assert_eq!(r.events.len(), MAX_EVENTS);
        assert_eq!(r.events[0].0, 11);
    }
}
