//! Initialize-era sessions: a bounded, sharded table of sessions bound to the principal that created them.
//!
//! A session is *not* authentication: every request still verifies its own token, and the
//! session only remembers the negotiated revision, the client's capabilities, the log level,
//! the open GET stream and in-flight calls. It is bound to the (iss, sub) that created it; any
//! other principal presenting its id gets the same 404 as for an id that never existed.
//! Time and randomness are passed in.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SecureRandom;
use serde_json::Value;

use crate::events::{EventStreams, StreamHandle};
use crate::mcp::context::{CancelToken, ClientRequests, LogLevel};
use crate::mcp::version::Version;

/// Shards of the table: lookups on different sessions rarely touch the same lock.
const SHARDS: usize = 16;
/// Random bytes per session id: 192 bits, encoded as 32 base64url characters (visible ASCII).
const ID_BYTES: usize = 24;

/// Who owns a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Token issuer.
    pub issuer: String,
    /// Token subject ("" when the token had none).
    pub subject: String,
}

/// One live session.
#[derive(Debug)]
pub struct Session {
    id: Arc<str>,
    owner: Owner,
    version: Version,
    client_capabilities: Arc<Value>,
    /// Milliseconds since the store's epoch.
    last_seen_ms: AtomicU64,
    /// 0 = no `logging/setLevel` yet; otherwise level index + 1.
    log_level: AtomicU8,
    /// The standalone (GET) stream, created by the first GET.
    standalone: Mutex<Option<StreamHandle>>,
    /// Every SSE stream of the session, for ids and resumption.
    events: Arc<EventStreams>,
    in_flight: Mutex<HashMap<crate::jsonrpc::Id, CancelToken>>,
    client_requests: ClientRequests,
    subscriptions: Mutex<HashSet<String>>,
    closed: CancelToken,
}

impl Session {
    /// The id sent in `Mcp-Session-Id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The negotiated revision.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The capabilities the client declared at initialize.
    pub fn client_capabilities(&self) -> &Arc<Value> {
        &self.client_capabilities
    }

    /// Fired when the session is deleted, expires, or the server stops.
    pub fn closed(&self) -> &CancelToken {
        &self.closed
    }

    /// The level set by `logging/setLevel`, if any.
    pub fn log_level(&self) -> Option<LogLevel> {
        const LEVELS: [LogLevel; 8] = [
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Notice,
            LogLevel::Warning,
            LogLevel::Error,
            LogLevel::Critical,
            LogLevel::Alert,
            LogLevel::Emergency,
        ];
        match self.log_level.load(Ordering::Relaxed) {
            0 => None,
            n => LEVELS.get(n as usize - 1).copied(),
        }
    }

    /// Stores the level from `logging/setLevel`.
    pub fn set_log_level(&self, level: LogLevel) {
        self.log_level.store(level as u8 + 1, Ordering::Relaxed);
    }

    /// The session's SSE streams (event ids, replay).
    pub fn events(&self) -> &Arc<EventStreams> {
        &self.events
    }

    /// The standalone GET stream, and whether this call created it.
    pub fn standalone_stream(&self) -> (StreamHandle, bool) {
        let mut slot = self.standalone.lock().expect("session lock poisoned");
        match &*slot {
            Some(h) => (h.clone(), false),
            None => {
                let h = self.events.open(None);
                *slot = Some(h.clone());
                (h, true)
            }
        }
    }

    /// Streams of this revision start with a priming event and end with `retry:` (2025-11-25).
    pub fn primes_streams(&self) -> bool {
        self.version >= Version::V2025_11_25
    }

    /// Registers an in-flight request so `notifications/cancelled` can reach it.
    pub fn track(&self, id: crate::jsonrpc::Id, token: CancelToken) {
        self.in_flight
            .lock()
            .expect("session lock poisoned")
            .insert(id, token);
    }

    /// Forgets a finished request.
    pub fn untrack(&self, id: &crate::jsonrpc::Id) {
        self.in_flight
            .lock()
            .expect("session lock poisoned")
            .remove(id);
    }

    /// Cancels an in-flight request; unknown or finished ids are ignored (spec: MAY ignore).
    pub fn cancel(&self, id: &crate::jsonrpc::Id) {
        if let Some(t) = self
            .in_flight
            .lock()
            .expect("session lock poisoned")
            .get(id)
        {
            t.cancel();
        }
    }

    /// Server-to-client requests awaiting answers.
    pub fn client_requests(&self) -> &ClientRequests {
        &self.client_requests
    }

    /// Records `resources/subscribe` (true) or `unsubscribe` (false).
    pub fn set_subscribed(&self, uri: &str, on: bool) {
        let mut subs = self.subscriptions.lock().expect("session lock poisoned");
        if on {
            subs.insert(uri.to_owned());
        } else {
            subs.remove(uri);
        }
    }

    /// True when the client subscribed to `uri`.
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .expect("session lock poisoned")
            .contains(uri)
    }

    fn close(&self) {
        self.closed.cancel();
        if let Some(h) = self
            .standalone
            .lock()
            .expect("session lock poisoned")
            .take()
        {
            h.finish();
        }
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

/// Why a session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The table is at its cap.
    Full,
}

/// The session table.
pub struct SessionStore {
    shards: Vec<Mutex<HashMap<Arc<str>, Arc<Session>>>>,
    count: AtomicUsize,
    idle_timeout: Duration,
    max_sessions: usize,
    epoch: Instant,
    rng: Arc<dyn SecureRandom + Send + Sync>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("count", &self.len())
            .field("idle_timeout", &self.idle_timeout)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// An empty table. `epoch` anchors the compact last-seen timestamps.
    pub fn new(
        idle_timeout: Duration,
        max_sessions: usize,
        epoch: Instant,
        rng: Arc<dyn SecureRandom + Send + Sync>,
    ) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
            idle_timeout,
            max_sessions,
            epoch,
            rng,
        }
    }

    /// The idle expiry.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, id: &str) -> &Mutex<HashMap<Arc<str>, Arc<Session>>> {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn is_expired(&self, s: &Session, now_ms: u64) -> bool {
        now_ms.saturating_sub(s.last_seen_ms.load(Ordering::Relaxed))
            >= self.idle_timeout.as_millis() as u64
    }

    /// Creates a session for `owner`.
    pub fn create(
        &self,
        owner: Owner,
        version: Version,
        client_capabilities: Value,
        now: Instant,
    ) -> Result<Arc<Session>, CreateError> {
        // Reserve a slot first so concurrent creates cannot overshoot the cap.
        if self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_sessions).then_some(n + 1)
            })
            .is_err()
        {
            return Err(CreateError::Full);
        }
        let mut bytes = [0u8; ID_BYTES];
        self.rng
            .fill(&mut bytes)
            .expect("system randomness is available");
        let id: Arc<str> = URL_SAFE_NO_PAD.encode(bytes).into();
        let session = Arc::new(Session {
            id: id.clone(),
            owner,
            version,
            client_capabilities: Arc::new(client_capabilities),
            last_seen_ms: AtomicU64::new(self.millis(now)),
            log_level: AtomicU8::new(0),
            standalone: Mutex::new(None),
            events: Arc::new(EventStreams::default()),
            in_flight: Mutex::new(HashMap::new()),
            client_requests: ClientRequests::default(),
            subscriptions: Mutex::new(HashSet::new()),
            closed: CancelToken::new(),
        });
        self.shard(&id)
            .lock()
            .expect("session shard poisoned")
            .insert(id, session.clone());
        Ok(session)
    }

    /// The live session `id` if `owner` owns it; refreshes its idle timer.
    pub fn get(&self, id: &str, owner: &Owner, now: Instant) -> Option<Arc<Session>> {
        let now_ms = self.millis(now);
        let mut shard = self.shard(id).lock().expect("session shard poisoned");
        let session = shard.get(id)?;
        if self.is_expired(session, now_ms) {
            let s = shard.remove(id)?;
            drop(shard);
            self.count.fetch_sub(1, Ordering::AcqRel);
            s.close();
            return None;
        }
        if session.owner != *owner {
            return None;
        }
        session.last_seen_ms.fetch_max(now_ms, Ordering::Relaxed);
        Some(session.clone())
    }

    /// Ends session `id` if `owner` owns it. Returns whether it existed.
    pub fn remove(&self, id: &str, owner: &Owner, now: Instant) -> bool {
        if self.get(id, owner, now).is_none() {
            return false;
        }
        let removed = self
            .shard(id)
            .lock()
            .expect("session shard poisoned")
            .remove(id);
        match removed {
            Some(s) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                s.close();
                true
            }
            None => false,
        }
    }

    /// Frees every session idle past the timeout. Returns how many were freed.
    pub fn sweep(&self, now: Instant) -> usize {
        let now_ms = self.millis(now);
        let mut freed = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().expect("session shard poisoned");
            shard.retain(|_, s| {
                let keep = !self.is_expired(s, now_ms);
                if !keep {
                    freed.push(s.clone());
                }
                keep
            });
        }
        self.count.fetch_sub(freed.len(), Ordering::AcqRel);
        for s in &freed {
            s.close();
        }
        freed.len()
    }

    /// Closes every session (shutdown): their streams end and in-flight calls are cancelled.
    pub fn close_all(&self) {
        for shard in &self.shards {
            let drained: Vec<_> = shard
                .lock()
                .expect("session shard poisoned")
                .drain()
                .collect();
            self.count.fetch_sub(drained.len(), Ordering::AcqRel);
            for (_, s) in drained {
                s.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn store(idle_secs: u64, cap: usize) -> (SessionStore, Instant) {
        let epoch = Instant::now();
        (
            SessionStore::new(
                Duration::from_secs(idle_secs),
                cap,
                epoch,
                Arc::new(SystemRandom::new()),
            ),
            epoch,
        )
    }

    fn owner(sub: &str) -> Owner {
        Owner {
            issuer: "iss".into(),
            subject: sub.into(),
        }
    }

    #[test]
    fn session_is_invisible_to_another_principal() {
        let (s, t) = store(60, 10);
        let sess = s
            .create(owner("alice"), Version::V2025_11_25, Value::Null, t)
            .unwrap();
        assert!(s.get(sess.id(), &owner("alice"), t).is_some());
        assert!(s.get(sess.id(), &owner("bob"), t).is_none());
        assert!(!s.remove(sess.id(), &owner("bob"), t));
        assert!(s.remove(sess.id(), &owner("alice"), t));
        assert!(s.get(sess.id(), &owner("alice"), t).is_none());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn ids_are_visible_ascii_and_long() {
        let (s, t) = store(60, 10);
        let sess = s
            .create(owner("a"), Version::V2025_11_25, Value::Null, t)
            .unwrap();
        assert_eq!(sess.id().len(), 32);
        assert!(sess.id().bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }

    #[test]
    fn caps_and_expires() {
        let (s, t) = store(60, 1);
        let a = s
            .create(owner("a"), Version::V2025_11_25, Value::Null, t)
            .unwrap();
        assert_eq!(
            s.create(owner("a"), Version::V2025_11_25, Value::Null, t)
                .unwrap_err(),
            CreateError::Full
        );
        let later = t + Duration::from_secs(61);
        assert_eq!(s.sweep(later), 1);
        assert!(a.closed().is_cancelled());
        assert!(s
            .create(owner("a"), Version::V2025_11_25, Value::Null, later)
            .is_ok());
    }
}
