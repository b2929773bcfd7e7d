//! Initialize-era sessions: the store of session records (a trait, in memory by default) and each replica's live state of the sessions it serves.
//!
//! A session is *not* authentication: every request still verifies its own token. The record
//! remembers the negotiated revision, the client's capabilities, the log level and the resource
//! subscriptions, and it is bound to the (iss, sub) that created it; any other principal
//! presenting its id gets the same 404 as for an id that never existed.
//!
//! The live state (in-flight calls to cancel, server-to-client requests awaiting answers, the
//! attached GET stream) belongs to the replica serving the connection, so it is kept apart from
//! the record, which a shared store may hold for every replica.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::context::{CancelToken, ClientRequests};
use crate::core::message::Id;
use crate::core::version::Version;
use crate::core::{LogLevel, SessionUpdate, SessionView};

/// A boxed future, as the store traits return.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Shards of the in-memory tables: lookups on different sessions rarely touch the same lock.
const SHARDS: usize = 16;

/// Who owns a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    /// Token issuer.
    pub(crate) issuer: String,
    /// Token subject ("" when the token had none).
    pub(crate) subject: String,
}

/// One session as the store holds it.
#[derive(Debug)]
pub(crate) struct SessionRecord {
    /// The id sent in `Mcp-Session-Id`.
    pub(crate) id: Arc<str>,
    /// The principal it is bound to.
    pub(crate) owner: Owner,
    /// The negotiated revision.
    pub(crate) version: Version,
    /// What the client declared at initialize.
    pub(crate) client_capabilities: Arc<Value>,
    /// 0 = no `logging/setLevel` yet; otherwise level index + 1.
    log_level: AtomicU8,
    /// Resources the client subscribed to.
    subscriptions: Mutex<HashSet<String>>,
    /// Milliseconds since the Unix epoch of the last use.
    last_seen_ms: AtomicU64,
    /// This replica's live state of the session, once a request looked it up: a record the
    /// in-memory store keeps is shared by every request of the session, so the lookup is made
    /// once, not per call (a record read from a shared store is new each time and looks it up).
    live: OnceLock<Arc<Live>>,
    /// `id` as a response header value, made once (every response of the session echoes it).
    header: OnceLock<Option<http::HeaderValue>>,
}

impl SessionRecord {
    /// A new record, last seen at `now_ms`.
    pub(crate) fn new(
        id: Arc<str>,
        owner: Owner,
        version: Version,
        client_capabilities: Value,
        now_ms: u64,
    ) -> Self {
        Self {
            id,
            owner,
            version,
            client_capabilities: Arc::new(client_capabilities),
            log_level: AtomicU8::new(0),
            subscriptions: Mutex::new(HashSet::new()),
            last_seen_ms: AtomicU64::new(now_ms),
            live: OnceLock::new(),
            header: OnceLock::new(),
        }
    }

    /// The `Mcp-Session-Id` value that names this session (`None` if the id is not one).
    pub(crate) fn id_header(&self) -> Option<http::HeaderValue> {
        self.header
            .get_or_init(|| http::HeaderValue::from_str(&self.id).ok())
            .clone()
    }

    /// The session's live state on this replica (made on first use).
    pub(crate) fn live(&self, sessions: &LiveSessions) -> Arc<Live> {
        self.live.get_or_init(|| sessions.get(&self.id)).clone()
    }

    /// Milliseconds since the Unix epoch of the last use.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    /// The level set by `logging/setLevel`, if any.
    pub(crate) fn log_level(&self) -> Option<LogLevel> {
        match self.log_level.load(Ordering::Relaxed) {
            0 => None,
            n => LogLevel::ALL.get(n as usize - 1).copied(),
        }
    }

    /// True when the client subscribed to `uri`.
    pub(crate) fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .expect("session lock poisoned")
            .contains(uri)
    }

    /// What the core needs to decide a request in this session.
    pub(crate) fn view(&self) -> SessionView {
        SessionView {
            version: self.version,
            client_capabilities: self.client_capabilities.clone(),
            log_level: self.log_level(),
        }
    }

    pub(crate) fn apply(&self, update: &SessionUpdate) {
        match update {
            SessionUpdate::LogLevel(level) => {
                let index = LogLevel::ALL.iter().position(|l| l == level).unwrap_or(0);
                self.log_level.store(index as u8 + 1, Ordering::Relaxed);
            }
            SessionUpdate::Subscribe(uri, on) => {
                let mut subs = self.subscriptions.lock().expect("session lock poisoned");
                if *on {
                    subs.insert(uri.clone());
                } else {
                    subs.remove(uri);
                }
            }
        }
    }
}

/// Why the store refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// The deployment is at its session cap.
    Full,
    /// This principal is at its session cap.
    PrincipalFull,
    /// The store cannot be reached.
    Unavailable,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "the session cap is reached",
            Self::PrincipalFull => "this principal's session cap is reached",
            Self::Unavailable => "the session store is unavailable",
        })
    }
}

/// Where session records live: this process's memory by default, or a store shared by replicas.
pub(crate) trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new record, unless a cap is reached.
    fn create(&self, record: SessionRecord) -> BoxFut<'_, Result<Arc<SessionRecord>, StoreError>>;
    /// The live record `id`, its idle timer refreshed at `now_ms`; `None` once expired or deleted.
    fn get<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> BoxFut<'a, Result<Option<Arc<SessionRecord>>, StoreError>>;
    /// Applies an update; false when the session is gone.
    fn update<'a>(
        &'a self,
        id: &'a str,
        update: &'a SessionUpdate,
    ) -> BoxFut<'a, Result<bool, StoreError>>;
    /// Deletes `id`; false when it was not there.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<bool, StoreError>>;
    /// Drops every record idle since before `now_ms - idle`; returns their ids.
    fn sweep(&self, now_ms: u64) -> BoxFut<'_, Result<Vec<Arc<str>>, StoreError>>;
    /// True when session `id` subscribed to `uri` (a shared store asks the store, so a
    /// subscription made through another replica counts).
    fn is_subscribed<'a>(
        &'a self,
        record: &'a SessionRecord,
        uri: &'a str,
    ) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(Ok(record.is_subscribed(uri))))
    }
    /// Open sessions (best effort for a shared store).
    fn count(&self) -> usize;
    /// This replica stops: a store that lives only here forgets every session; a shared store
    /// keeps them for the other replicas.
    fn stop(&self);
    /// Whether the store can be reached now (`/readyz`); an in-process store always can.
    fn ready(&self) -> BoxFut<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Caps and expiry of a session store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    /// Idle time after which a session expires, in milliseconds.
    pub(crate) idle_ms: u64,
    /// Most open sessions.
    pub(crate) max_sessions: usize,
    /// Most open sessions of one principal.
    pub(crate) max_per_principal: usize,
}

type Shard = Mutex<HashMap<Arc<str>, Arc<SessionRecord>>>;

/// The in-process store: a sharded table, per-principal counts, idle expiry.
pub(crate) struct MemorySessions {
    shards: Vec<Shard>,
    count: AtomicUsize,
    per_principal: Vec<Mutex<HashMap<Owner, usize>>>,
    limits: SessionLimits,
}

impl fmt::Debug for MemorySessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySessions")
            .field("count", &self.count.load(Ordering::Relaxed))
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn shard_of(key: &impl Hash) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish() as usize % SHARDS
}

impl MemorySessions {
    /// An empty store.
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
            per_principal: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            limits,
        }
    }

    fn shard(&self, id: &str) -> &Shard {
        &self.shards[shard_of(&id)]
    }

    fn is_expired(&self, s: &SessionRecord, now_ms: u64) -> bool {
        now_ms.saturating_sub(s.last_seen_ms.load(Ordering::Relaxed)) >= self.limits.idle_ms
    }

    /// Reserves a slot for `owner`, or says which cap is reached.
    fn reserve(&self, owner: &Owner) -> Result<(), StoreError> {
        // The global slot first, so concurrent creates cannot overshoot the cap.
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_sessions).then_some(n + 1)
            })
            .map_err(|_| StoreError::Full)?;
        let mut counts = self.per_principal[shard_of(owner)]
            .lock()
            .expect("session counts poisoned");
        let n = counts.entry(owner.clone()).or_insert(0);
        if *n >= self.limits.max_per_principal {
            drop(counts);
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::PrincipalFull);
        }
        *n += 1;
        Ok(())
    }

    /// Gives back the slots of removed records.
    fn release(&self, removed: &[Arc<SessionRecord>]) {
        if removed.is_empty() {
            return;
        }
        self.count.fetch_sub(removed.len(), Ordering::AcqRel);
        for r in removed {
            let mut counts = self.per_principal[shard_of(&r.owner)]
                .lock()
                .expect("session counts poisoned");
            if let Some(n) = counts.get_mut(&r.owner) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&r.owner);
                }
            }
        }
    }
}

impl SessionStore for MemorySessions {
    fn create(&self, record: SessionRecord) -> BoxFut<'_, Result<Arc<SessionRecord>, StoreError>> {
        let result = self.reserve(&record.owner).map(|()| {
            let record = Arc::new(record);
            self.shard(&record.id)
                .lock()
                .expect("session shard poisoned")
                .insert(record.id.clone(), record.clone());
            record
        });
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> BoxFut<'a, Result<Option<Arc<SessionRecord>>, StoreError>> {
        let found = {
            let mut shard = self.shard(id).lock().expect("session shard poisoned");
            match shard.get(id) {
                None => None,
                Some(s) if self.is_expired(s, now_ms) => {
                    let gone = shard.remove(id);
                    drop(shard);
                    self.release(gone.as_slice());
                    None
                }
                Some(s) => {
                    s.last_seen_ms.fetch_max(now_ms, Ordering::Relaxed);
                    Some(s.clone())
                }
            }
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        update: &'a SessionUpdate,
    ) -> BoxFut<'a, Result<bool, StoreError>> {
        let record = self
            .shard(id)
            .lock()
            .expect("session shard poisoned")
            .get(id)
            .cloned();
        let found = record.map(|r| r.apply(update)).is_some();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<bool, StoreError>> {
        let removed = self
            .shard(id)
            .lock()
            .expect("session shard poisoned")
            .remove(id);
        let found = removed.is_some();
        self.release(removed.as_slice());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn sweep(&self, now_ms: u64) -> BoxFut<'_, Result<Vec<Arc<str>>, StoreError>> {
        let mut freed = Vec::new();
        for shard in &self.shards {
            shard
                .lock()
                .expect("session shard poisoned")
                .retain(|_, s| {
                    let keep = !self.is_expired(s, now_ms);
                    if !keep {
                        freed.push(s.clone());
                    }
                    keep
                });
        }
        self.release(&freed);
        Box::pin(std::future::ready(Ok(freed
            .into_iter()
            .map(|s| s.id.clone())
            .collect())))
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn stop(&self) {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(
                shard
                    .lock()
                    .expect("session shard poisoned")
                    .drain()
                    .map(|(_, s)| s),
            );
        }
        self.release(&all);
    }
}

/// What this replica holds for a session it serves: in-flight calls, pending client requests,
/// attached streams. Created on first need, dropped when the session ends.
#[derive(Debug)]
pub(crate) struct Live {
    in_flight: Mutex<HashMap<Id, CancelToken>>,
    client_requests: ClientRequests,
    /// The standalone GET stream's number, once the first GET made one.
    standalone: Mutex<Option<u64>>,
    closed: CancelToken,
}

impl Live {
    /// Registers an in-flight request so `notifications/cancelled` can reach it.
    pub(crate) fn track(&self, id: Id, token: CancelToken) {
        self.in_flight
            .lock()
            .expect("session lock poisoned")
            .insert(id, token);
    }

    /// Forgets a finished request.
    pub(crate) fn untrack(&self, id: &Id) {
        self.in_flight
            .lock()
            .expect("session lock poisoned")
            .remove(id);
    }

    /// Cancels an in-flight request; unknown or finished ids are ignored (spec: MAY ignore).
    pub(crate) fn cancel(&self, id: &Id) -> bool {
        let token = self
            .in_flight
            .lock()
            .expect("session lock poisoned")
            .get(id)
            .cloned();
        token.map(|t| t.cancel()).is_some()
    }

    /// Server-to-client requests awaiting answers.
    pub(crate) fn client_requests(&self) -> &ClientRequests {
        &self.client_requests
    }

    /// Makes `stream` this replica's standalone stream of the session (a resumed stream another
    /// replica fed); false when it already was.
    pub(crate) fn adopt_standalone(&self, stream: u64) -> bool {
        let mut slot = self.standalone.lock().expect("session lock poisoned");
        let adopted = *slot != Some(stream);
        *slot = Some(stream);
        adopted
    }

    /// Forgets `stream` as the standalone stream (another replica took the session's GET
    /// connection), so the next GET here starts a new one.
    pub(crate) fn drop_standalone(&self, stream: u64) {
        let mut slot = self.standalone.lock().expect("session lock poisoned");
        if *slot == Some(stream) {
            *slot = None;
        }
    }

    /// The standalone stream's number, if a GET made one here.
    pub(crate) fn current_standalone(&self) -> Option<u64> {
        *self.standalone.lock().expect("session lock poisoned")
    }

    /// True while `stream` is this replica's standalone stream of the session.
    pub(crate) fn is_standalone(&self, stream: u64) -> bool {
        *self.standalone.lock().expect("session lock poisoned") == Some(stream)
    }

    /// The standalone stream's number, creating it with `make` on the first GET.
    pub(crate) fn standalone(&self, make: impl FnOnce() -> u64) -> (u64, bool) {
        let mut slot = self.standalone.lock().expect("session lock poisoned");
        match *slot {
            Some(id) => (id, false),
            None => {
                let id = make();
                *slot = Some(id);
                (id, true)
            }
        }
    }

    /// Fired when the session ends (deleted, expired, server stopping).
    pub(crate) fn closed(&self) -> &CancelToken {
        &self.closed
    }

    fn close(&self) {
        self.closed.cancel();
        for (_, t) in self
            .in_flight
            .lock()
            .expect("session lock poisoned")
            .drain()
        {
            t.cancel();
        }
    }
}

/// This replica's live state of the sessions it serves.
#[derive(Debug)]
pub(crate) struct LiveSessions {
    shards: Vec<Mutex<HashMap<Arc<str>, Arc<Live>>>>,
    /// Server-to-client request ids carry it (see [`ClientRequests::with_prefix`]).
    request_prefix: Arc<str>,
}

impl Default for LiveSessions {
    fn default() -> Self {
        Self::with_request_prefix("".into())
    }
}

impl LiveSessions {
    /// Live state whose server-to-client request ids read `srv-<prefix>-N`.
    pub(crate) fn with_request_prefix(request_prefix: Arc<str>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            request_prefix,
        }
    }

    fn shard(&self, id: &str) -> &Mutex<HashMap<Arc<str>, Arc<Live>>> {
        &self.shards[shard_of(&id)]
    }

    /// The live state of session `id`, created on first use.
    pub(crate) fn get(&self, id: &Arc<str>) -> Arc<Live> {
        let mut shard = self.shard(id).lock().expect("live sessions poisoned");
        if let Some(live) = shard.get(id) {
            return live.clone();
        }
        shard
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Live {
                    in_flight: Mutex::default(),
                    client_requests: ClientRequests::with_prefix(self.request_prefix.clone()),
                    standalone: Mutex::default(),
                    closed: CancelToken::default(),
                })
            })
            .clone()
    }

    /// The live state of session `id`, if this replica holds any.
    pub(crate) fn find(&self, id: &str) -> Option<Arc<Live>> {
        self.shard(id)
            .lock()
            .expect("live sessions poisoned")
            .get(id)
            .cloned()
    }

    /// Ends session `id` here: its streams end and its in-flight calls are cancelled.
    pub(crate) fn close(&self, id: &str) {
        let live = self
            .shard(id)
            .lock()
            .expect("live sessions poisoned")
            .remove(id);
        if let Some(l) = live {
            l.close();
        }
    }

    /// Ends every session (shutdown).
    pub(crate) fn close_all(&self) {
        for shard in &self.shards {
            let drained: Vec<_> = shard
                .lock()
                .expect("live sessions poisoned")
                .drain()
                .collect();
            for (_, l) in drained {
                l.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(sub: &str) -> Owner {
        Owner {
            issuer: "iss".into(),
            subject: sub.into(),
        }
    }

    fn record(id: &str, sub: &str, now: u64) -> SessionRecord {
        SessionRecord::new(
            id.into(),
            owner(sub),
            Version::V2025_11_25,
            Value::Null,
            now,
        )
    }

    fn store(idle_ms: u64, max: usize, per: usize) -> MemorySessions {
        MemorySessions::new(SessionLimits {
            idle_ms,
            max_sessions: max,
            max_per_principal: per,
        })
    }

    #[tokio::test]
    async fn caps_expire_and_release_slots() {
        let s = store(60_000, 2, 1);
        s.create(record("a", "alice", 0)).await.unwrap();
        assert_eq!(
            s.create(record("b", "alice", 0)).await.unwrap_err(),
            StoreError::PrincipalFull
        );
        s.create(record("c", "bob", 0)).await.unwrap();
        assert_eq!(
            s.create(record("d", "carol", 0)).await.unwrap_err(),
            StoreError::Full
        );
        assert!(s.get("a", 59_999).await.unwrap().is_some());
        assert_eq!(s.sweep(59_999 + 60_000).await.unwrap().len(), 2);
        assert_eq!(s.count(), 0);
        s.create(record("e", "alice", 120_000)).await.unwrap();
        assert!(s.delete("e").await.unwrap());
        assert!(!s.delete("e").await.unwrap());
        assert_eq!(s.count(), 0);
    }

    #[tokio::test]
    async fn updates_reach_the_record() {
        let s = store(60_000, 10, 10);
        s.create(record("a", "alice", 0)).await.unwrap();
        let up = SessionUpdate::LogLevel(LogLevel::Warning);
        assert!(s.update("a", &up).await.unwrap());
        let sub = SessionUpdate::Subscribe("x://y".into(), true);
        assert!(s.update("a", &sub).await.unwrap());
        let r = s.get("a", 1).await.unwrap().unwrap();
        assert_eq!(r.log_level(), Some(LogLevel::Warning));
        assert!(r.is_subscribed("x://y"));
        assert!(!s.update("nope", &up).await.unwrap());
    }
}
