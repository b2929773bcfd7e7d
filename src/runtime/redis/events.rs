//! Event logs of resumable streams in Redis: any replica replays them, and a connection resumed on one replica receives, through Redis, the events a call on another replica goes on producing.
//!
//! Each stream's meta names its producing replica. Resuming on another replica records an
//! attachment (`P a:<sid>:<stream>` = this replica) in the same script that reads the replay,
//! so every later event is either in the replay or published to this replica, never both or
//! neither (the live stream stages what arrives while the replay is written). When the producer
//! stops heartbeating before its call finished, the resumed connection gets a JSON-RPC error
//! for the call and ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;

use super::{now_ms, scripts, Hub, DEAD_MS};
use crate::runtime::events::{
    producer_gone_error, EventStore, Origin, Replay, MAX_EVENTS, MAX_STREAMS,
};
use crate::runtime::session::{BoxFut, StoreError};

/// A connection here attached to a call stream another replica produces.
#[derive(Debug, Clone)]
struct Remote {
    producer: String,
    request: Value,
}

/// Event logs shared through Redis.
#[derive(Debug)]
pub(crate) struct RedisEvents {
    hub: Arc<Hub>,
    /// Logs live as long as an idle session; each session lookup that reaches Redis extends them.
    ttl_ms: u64,
    remote: Mutex<HashMap<(String, u64), Remote>>,
}

impl RedisEvents {
    pub(crate) fn new(hub: Arc<Hub>, ttl_ms: u64) -> Self {
        Self {
            hub,
            ttl_ms,
            remote: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self, session: &str, stream: u64) -> (String, String, String) {
        (
            self.hub.key(format_args!("m:{session}:{stream}")),
            self.hub.key(format_args!("e:{session}:{stream}")),
            self.hub.key(format_args!("a:{session}:{stream}")),
        )
    }

    fn holder_key(&self, session: &str) -> String {
        self.hub.key(format_args!("h:{session}"))
    }

    /// A connection here closed: its stream's events need not come here any more.
    pub(crate) fn detach_later(&self, session: &str, stream: u64) {
        self.forget_remote(session, stream);
        let hub = self.hub.clone();
        let (_, _, att) = self.keys(session, stream);
        tokio::spawn(async move {
            let mut inv = scripts::DELETE_IF.prepare_invoke();
            inv.key(att).arg(&*hub.replica);
            let _: Result<i64, _> = hub.invoke("detach stream", inv).await;
        });
    }

    /// The stream finished (or its connection here ended).
    pub(crate) fn forget_remote(&self, session: &str, stream: u64) {
        self.remote
            .lock()
            .expect("remote streams poisoned")
            .remove(&(session.to_owned(), stream));
    }

    /// Ends resumed connections whose producing replica died before its call finished: the
    /// call's error is recorded and sent, and the stream marked done.
    pub(crate) async fn watch_producers(&self, now: u64) {
        let Some(streams) = self.hub.streams.get().cloned() else {
            return;
        };
        let entries: Vec<((String, u64), Remote)> = self
            .remote
            .lock()
            .expect("remote streams poisoned")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((session, stream), remote) in entries {
            if !streams.has(&session, stream) {
                self.detach_later(&session, stream);
                continue;
            }
            if self.hub.is_alive_now(&remote.producer, now).await {
                continue;
            }
            let error = producer_gone_error(&remote.request);
            if let Ok(seq) = self.append(&session, stream, error.clone()).await {
                streams.deliver_remote(&session, stream, seq, error);
            }
            let _ = self.finish(&session, stream).await;
            streams.end(&session, stream);
            self.forget_remote(&session, stream);
        }
    }
}

impl EventStore for RedisEvents {
    fn open<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        origin: &'a Origin,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (meta, list, att) = self.keys(session, stream);
            let (standalone, request) = match origin {
                Origin::Standalone => ("1", String::new()),
                Origin::Call(id) => ("0", id.to_string()),
            };
            let mut inv = scripts::OPEN.prepare_invoke();
            inv.key(meta)
                .key(list)
                .key(self.hub.key(format_args!("es:{session}")))
                .key(att)
                .arg(stream)
                .arg(standalone)
                .arg(&*self.hub.replica)
                .arg(request)
                .arg(self.ttl_ms)
                .arg(MAX_STREAMS)
                .arg(&self.hub.prefix)
                .arg(session)
                .arg(now_ms());
            self.hub.invoke::<i64>("open stream", inv).await.map(drop)
        })
    }

    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        json: Bytes,
    ) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let (meta, list, att) = self.keys(session, stream);
            let mut inv = scripts::APPEND.prepare_invoke();
            inv.key(meta)
                .key(list)
                .key(att)
                .arg(json.as_ref())
                .arg(MAX_EVENTS)
                .arg(self.ttl_ms)
                .arg(&*self.hub.replica)
                .arg(session)
                .arg(stream)
                .arg(&self.hub.prefix);
            let (seq, elsewhere): (u64, i64) = self.hub.invoke("record event", inv).await?;
            if elsewhere == 1 {
                // The client resumed on another replica: a connection still attached here is stale.
                if let Some(streams) = self.hub.streams.get() {
                    streams.end(session, stream);
                }
            }
            Ok(seq)
        })
    }

    fn replay<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        after: u64,
        attach: bool,
    ) -> BoxFut<'a, Result<Option<Replay>, StoreError>> {
        Box::pin(async move {
            let (meta, list, att) = self.keys(session, stream);
            let mut inv = scripts::REPLAY.prepare_invoke();
            inv.key(meta)
                .key(list)
                .key(att)
                .arg(&*self.hub.replica)
                .arg(if attach { "1" } else { "0" })
                .arg(self.ttl_ms);
            type Found = Option<(String, String, String, String, Vec<Vec<u8>>)>;
            let found: Found = self.hub.invoke("replay stream", inv).await?;
            let Some((done, standalone, producer, request, entries)) = found else {
                return Ok(None);
            };
            let mut events = Vec::with_capacity(entries.len());
            for e in entries {
                let Some(space) = e.iter().position(|b| *b == b' ') else {
                    continue;
                };
                let seq = std::str::from_utf8(&e[..space])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                if let Some(seq) = seq.filter(|s| *s > after) {
                    events.push((seq, Bytes::copy_from_slice(&e[space + 1..])));
                }
            }
            let finished = done == "1";
            let standalone = standalone == "1";
            let mut producer_gone = None;
            if attach && !finished && !standalone && producer != *self.hub.replica {
                let request: Value = serde_json::from_str(&request).unwrap_or(Value::Null);
                if self.hub.is_alive_now(&producer, now_ms()).await {
                    self.remote
                        .lock()
                        .expect("remote streams poisoned")
                        .insert((session.to_owned(), stream), Remote { producer, request });
                } else {
                    producer_gone = Some(request);
                }
            }
            Ok(Some(Replay {
                events,
                finished,
                standalone,
                producer_gone,
            }))
        })
    }

    fn finish<'a>(&'a self, session: &'a str, stream: u64) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (meta, _, att) = self.keys(session, stream);
            let mut inv = scripts::FINISH.prepare_invoke();
            inv.key(meta)
                .key(att)
                .arg(&self.hub.prefix)
                .arg(session)
                .arg(stream);
            self.hub.invoke::<i64>("finish stream", inv).await.map(drop)
        })
    }

    fn forget<'a>(&'a self, session: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut inv = scripts::FORGET.prepare_invoke();
            inv.key(self.hub.key(format_args!("es:{session}")))
                .arg(&self.hub.prefix)
                .arg(session);
            self.hub
                .invoke::<i64>("forget streams", inv)
                .await
                .map(drop)
        })
    }

    fn hold<'a>(&'a self, session: &'a str, take: bool) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut inv = scripts::HOLD.prepare_invoke();
            inv.key(self.holder_key(session))
                .key(self.hub.key(format_args!("replicas")))
                .arg(&*self.hub.replica)
                .arg(if take { "1" } else { "0" })
                .arg(now_ms())
                .arg(DEAD_MS)
                .arg(self.ttl_ms);
            Ok(self.hub.invoke::<i64>("hold stream", inv).await? == 1)
        })
    }

    fn held_elsewhere<'a>(&'a self, session: &'a str) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let cmd = redis::cmd("GET").arg(self.holder_key(session)).to_owned();
            let holder: Option<String> = self.hub.query("read stream holder", &cmd).await?;
            Ok(holder.is_some_and(|h| h != *self.hub.replica))
        })
    }

    fn release<'a>(&'a self, session: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut inv = scripts::DELETE_IF.prepare_invoke();
            inv.key(self.holder_key(session)).arg(&*self.hub.replica);
            self.hub
                .invoke::<i64>("release stream", inv)
                .await
                .map(drop)
        })
    }
}
