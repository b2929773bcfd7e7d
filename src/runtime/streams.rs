//! Long-lived SSE streams: a session's standalone GET stream (live or resumed) and 2026-07-28 `subscriptions/listen` streams.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::events::{Origin, ResumeError, StreamHandle, RESUME_CHANNEL};
use super::limits::Permit;
use super::session::{Live, SessionRecord};
use super::Runtime;
use crate::auth::Principal;
use crate::core::catalog::Change;
use crate::core::message;
use crate::core::version::Version;
use crate::core::{EventId, Listen, ProtocolError, META_SUBSCRIPTION_ID};
use crate::sse;

/// Frames a standalone or listen stream may hold for a slow client.
const STREAM_CHANNEL: usize = 32;
/// The `retry:` hint that ends a GET stream at its lifetime: the client reconnects after it.
const RECONNECT_MS: u64 = 1000;

/// An open stream: its frames, the principal's stream slot (held while the response lives),
/// and the frame that ends it cleanly when its lifetime runs out.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) frames: mpsc::Receiver<Bytes>,
    pub(crate) permit: Permit,
    pub(crate) farewell: Option<Bytes>,
}

impl Runtime {
    /// GET: attaches a new connection to the session's standalone stream, creating the stream
    /// (and its feeder task) on the first GET. One connection at a time: a second gets 409.
    pub(crate) async fn standalone(
        self: &Arc<Self>,
        session: Arc<SessionRecord>,
        principal: &Arc<Principal>,
    ) -> Result<Opened, ProtocolError> {
        let permit = self
            .limits
            .stream(principal)
            .map_err(ProtocolError::Limit)?;
        let live = session.live(&self.live);
        if let Some(current) = live.current_standalone() {
            let stream = StreamHandle::existing(
                self.events.clone(),
                self.streams.clone(),
                session.id.clone(),
                current,
            );
            if stream.is_live() {
                return Err(ProtocolError::StreamConflict);
            }
        }
        // With replicas, a connection held open on another one conflicts as well.
        match self.events.hold(&session.id, false).await {
            Ok(true) => {}
            Ok(false) => return Err(ProtocolError::StreamConflict),
            Err(_) => return Err(ProtocolError::SessionStoreUnavailable),
        }
        let (stream_id, created) = live.standalone(|| self.stream_id());
        let stream = if created {
            let opened = StreamHandle::open(
                self.events.clone(),
                self.streams.clone(),
                session.id.clone(),
                stream_id,
                Origin::Standalone,
                None,
            )
            .await;
            match opened {
                Ok(s) => s,
                Err(_) => {
                    live.drop_standalone(stream_id);
                    return Err(ProtocolError::SessionStoreUnavailable);
                }
            }
        } else {
            StreamHandle::existing(
                self.events.clone(),
                self.streams.clone(),
                session.id.clone(),
                stream_id,
            )
        };
        if stream.is_live() {
            // Another GET attached while this one waited for the store.
            return Err(ProtocolError::StreamConflict);
        }
        let (tx, rx) = mpsc::channel::<Bytes>(STREAM_CHANNEL);
        stream.attach(tx);
        let resumable = session.version >= Version::V2025_11_25;
        if resumable {
            stream.prime().await;
        }
        if created {
            // Subscribed before the response goes out, so no change announced after it is missed.
            let changes = self.notifier.bus().subscribe();
            tokio::spawn(feed_session_stream(
                self.clone(),
                session,
                stream,
                changes,
                live,
            ));
        }
        Ok(Opened {
            frames: rx,
            permit,
            farewell: resumable.then(|| sse::retry(RECONNECT_MS)),
        })
    }

    /// GET with `Last-Event-ID`: replays what that stream sent after the event, then goes on live.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        session: Arc<SessionRecord>,
        principal: &Arc<Principal>,
        last: EventId,
    ) -> Result<Opened, ProtocolError> {
        let permit = self
            .limits
            .stream(principal)
            .map_err(ProtocolError::Limit)?;
        let (tx, rx) = mpsc::channel::<Bytes>(RESUME_CHANNEL);
        let resumed = StreamHandle::resume(
            self.events.clone(),
            self.streams.clone(),
            session.id.clone(),
            last,
            tx,
        )
        .await
        .map_err(|e| match e {
            ResumeError::UnknownStream => ProtocolError::NoStreamToResume,
            ResumeError::Store(_) => ProtocolError::SessionStoreUnavailable,
        })?;
        if resumed.standalone && !resumed.finished {
            // A standalone stream another replica fed (it may have stopped): this replica
            // feeds it from now on. In one process it is always this replica's already.
            let live = session.live(&self.live);
            if live.adopt_standalone(last.stream) {
                let _ = self.events.hold(&session.id, true).await;
                let stream = StreamHandle::existing(
                    self.events.clone(),
                    self.streams.clone(),
                    session.id.clone(),
                    last.stream,
                );
                let changes = self.notifier.bus().subscribe();
                tokio::spawn(feed_session_stream(
                    self.clone(),
                    session,
                    stream,
                    changes,
                    live,
                ));
            }
        }
        Ok(Opened {
            frames: rx,
            permit,
            farewell: Some(sse::retry(RECONNECT_MS)),
        })
    }

    /// 2026-07-28 `subscriptions/listen`: an SSE stream that opens with the acknowledgement and
    /// then carries only the requested change kinds, each tagged with the subscription id.
    pub(crate) fn listen(
        self: &Arc<Self>,
        listen: Listen,
        principal: &Arc<Principal>,
    ) -> Result<Opened, ProtocolError> {
        let permit = self
            .limits
            .stream(principal)
            .map_err(ProtocolError::Limit)?;
        let (tx, rx) = mpsc::channel::<Bytes>(STREAM_CHANNEL);
        let _ = tx.try_send(sse::event(None, &listen.ack));
        // Subscribed before the acknowledgement can reach the client: nothing after it is missed.
        let changes = self.notifier.bus().subscribe();
        let farewell = sse::event(None, &listen_result(&listen.id));
        tokio::spawn(feed_listen_stream(self.clone(), listen, tx, changes));
        Ok(Opened {
            frames: rx,
            permit,
            farewell: Some(farewell),
        })
    }
}

/// Feeds a session's standalone stream for as long as the session lives: the change
/// notifications it may receive (recorded, so a reconnecting client can resume), and
/// keep-alives to whoever is attached. With replicas, it stops once another replica took the
/// session's GET connection while none is attached here.
async fn feed_session_stream(
    rt: Arc<Runtime>,
    session: Arc<SessionRecord>,
    stream: StreamHandle,
    mut changes: broadcast::Receiver<Change>,
    live: Arc<Live>,
) {
    let keepalive = rt.config.sse_keepalive;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let shutdown = rt.shutdown.clone();
    let closed = live.closed().clone();
    let superseded = || async {
        !live.is_standalone(stream.id())
            || (!stream.is_live() && rt.events.held_elsewhere(&session.id).await == Ok(true))
    };
    loop {
        let attached = stream.is_live();
        tokio::select! {
            _ = tick.tick() => {
                if !stream.deliver(Bytes::from_static(sse::KEEPALIVE)).await && superseded().await {
                    live.drop_standalone(stream.id());
                    return;
                }
            }
            change = changes.recv() => {
                let change = match change {
                    Ok(c) => c,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let wanted = rt.core.catalog().advertises(&change)
                    && match &change {
                        Change::ResourceUpdated(uri) => {
                            rt.sessions.is_subscribed(&session, uri).await.unwrap_or(false)
                        }
                        _ => true,
                    };
                if wanted {
                    if superseded().await {
                        live.drop_standalone(stream.id());
                        return;
                    }
                    let note = message::notification(change.method(), &change.params(None));
                    stream.send(note.into()).await;
                }
            }
            () = stream.connection_closed(), if attached => {
                let _ = rt.events.release(&session.id).await;
            }
            () = closed.cancelled() => break,
            () = shutdown.cancelled() => {
                // This replica stops, the session does not: with replicas, a client resumes
                // the stream on another one, so it is not marked finished.
                if rt.peers.is_some() {
                    stream.end_here();
                    return;
                }
                break;
            }
        }
    }
    stream.finish().await;
}

/// The result that ends a `subscriptions/listen` stream, naming the subscription.
fn listen_result(id: &crate::core::message::Id) -> Vec<u8> {
    message::result(
        id,
        &json!({"resultType": "complete", "_meta": {META_SUBSCRIPTION_ID: id}}),
    )
}

async fn feed_listen_stream(
    rt: Arc<Runtime>,
    listen: Listen,
    tx: mpsc::Sender<Bytes>,
    mut changes: broadcast::Receiver<Change>,
) {
    let keepalive = rt.config.sse_keepalive;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let shutdown = rt.shutdown.clone();
    let sub_id = listen.id.to_value();
    loop {
        let frame = tokio::select! {
            _ = tick.tick() => Bytes::from_static(sse::KEEPALIVE),
            change = changes.recv() => {
                let change = match change {
                    Ok(c) => c,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if !listen.filter.wants(&change) {
                    continue;
                }
                let params = change.params(Some(("_meta", json!({ META_SUBSCRIPTION_ID: sub_id }))));
                sse::event(None, &message::notification(change.method(), &params))
            }
            () = tx.closed() => return,
            () = shutdown.cancelled() => {
                // A graceful end: the final result names the subscription, then the stream closes.
                let _ = tx.send(sse::event(None, &listen_result(&listen.id))).await;
                return;
            }
        };
        if tx.send(frame).await.is_err() {
            return;
        }
    }
}
