//! Session records in Redis, with a short per-replica cache: the deployment-wide cap and idle expiry live in Redis, and a delete or expiry anywhere is seen by every replica within [`CACHE_MS`].
//!
//! How the 1 s bound holds: a cached lookup is at most [`CACHE_MS`] (500 ms) old, so even with
//! no message at all a deleted or expired session is unknown everywhere within that time; and
//! the replica that deletes, expires or changes a session announces it on the `all` channel,
//! where every replica drops its copy as soon as the message arrives (normally well under a
//! millisecond on one network). A replica whose subscriber connection dropped drops its whole
//! cache, since it may have missed announcements. Refilling the cache is also what refreshes
//! the session's idle deadline in Redis, so a session in use never expires.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{scripts, Hub};
use crate::core::version::Version;
use crate::core::{LogLevel, SessionUpdate};
use crate::runtime::session::{
    BoxFut, Owner, SessionLimits, SessionRecord, SessionStore, StoreError,
};

/// How long a replica may answer from its copy of a session record.
pub(crate) const CACHE_MS: u64 = 500;
/// Shards of the cache.
const SHARDS: usize = 16;
/// Entries per shard; past it the shard is emptied (every entry is short-lived anyway).
const SHARD_CAP: usize = 4096;

type Cached = (u64, Arc<SessionRecord>);

/// Sessions shared by every replica through Redis.
pub(crate) struct RedisSessions {
    hub: Arc<Hub>,
    limits: SessionLimits,
    cache: Vec<Mutex<HashMap<Arc<str>, Cached>>>,
    count: AtomicUsize,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("hub", &self.hub)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn shard_of(id: &str) -> usize {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish() as usize % SHARDS
}

/// The key of a principal's session set: a digest, so issuer and subject need no escaping.
fn owner_key(hub: &Hub, owner: &Owner) -> String {
    let mut input = Vec::with_capacity(owner.issuer.len() + owner.subject.len() + 1);
    input.extend_from_slice(owner.issuer.as_bytes());
    input.push(0);
    input.extend_from_slice(owner.subject.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    hub.key(format_args!("o:{}", super::hex(&digest.as_ref()[..16])))
}

impl RedisSessions {
    pub(crate) fn new(hub: Arc<Hub>, limits: SessionLimits) -> Self {
        Self {
            hub,
            limits,
            cache: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
        }
    }

    fn record_key(&self, id: &str) -> String {
        self.hub.key(format_args!("s:{id}"))
    }

    fn subs_key(&self, id: &str) -> String {
        self.hub.key(format_args!("s:{id}:subs"))
    }

    fn all_key(&self) -> String {
        self.hub.key(format_args!("sessions"))
    }

    /// Drops this replica's copy of session `id` (another replica changed or ended it).
    pub(crate) fn invalidate(&self, id: &str) {
        self.cache[shard_of(id)]
            .lock()
            .expect("session cache poisoned")
            .remove(id);
    }

    /// Drops every copy (announcements may have been missed).
    pub(crate) fn invalidate_all(&self) {
        for shard in &self.cache {
            shard.lock().expect("session cache poisoned").clear();
        }
    }

    fn cached(&self, id: &str, now_ms: u64) -> Option<Arc<SessionRecord>> {
        let shard = self.cache[shard_of(id)]
            .lock()
            .expect("session cache poisoned");
        match shard.get(id) {
            Some((at, r)) if now_ms >= *at && now_ms - *at < CACHE_MS => Some(r.clone()),
            _ => None,
        }
    }

    fn remember(&self, record: Arc<SessionRecord>, now_ms: u64) {
        let mut shard = self.cache[shard_of(&record.id)]
            .lock()
            .expect("session cache poisoned");
        if shard.len() >= SHARD_CAP {
            shard.retain(|_, (at, _)| now_ms.saturating_sub(*at) < CACHE_MS);
            if shard.len() >= SHARD_CAP {
                shard.clear();
            }
        }
        shard.insert(record.id.clone(), (now_ms, record));
    }

    /// Rebuilds a record from its hash fields and subscriptions; `None` if it is unreadable.
    fn rebuild(id: &str, fields: &[String], subs: Vec<String>) -> Option<SessionRecord> {
        let mut map: HashMap<&str, &str> = HashMap::new();
        for pair in fields.chunks(2) {
            if let [k, v] = pair {
                map.insert(k, v);
            }
        }
        let record = SessionRecord::new(
            id.into(),
            Owner {
                issuer: map.get("iss")?.to_string(),
                subject: map.get("sub")?.to_string(),
            },
            Version::parse(map.get("ver")?)?,
            serde_json::from_str(map.get("caps")?).ok()?,
            0,
        );
        if let Some(level) = map.get("lvl").and_then(|l| LogLevel::parse(l)) {
            record.apply(&SessionUpdate::LogLevel(level));
        }
        for uri in subs {
            record.apply(&SessionUpdate::Subscribe(uri, true));
        }
        Some(record)
    }
}

impl SessionStore for RedisSessions {
    fn create(&self, record: SessionRecord) -> BoxFut<'_, Result<Arc<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let now = record.last_seen_ms();
            let mut inv = scripts::CREATE.prepare_invoke();
            inv.key(self.record_key(&record.id))
                .key(self.subs_key(&record.id))
                .key(self.all_key())
                .key(owner_key(&self.hub, &record.owner))
                .arg(now)
                .arg(self.limits.idle_ms)
                .arg(self.limits.max_sessions)
                .arg(self.limits.max_per_principal)
                .arg(&record.owner.issuer)
                .arg(&record.owner.subject)
                .arg(record.version.as_str())
                .arg(record.client_capabilities.to_string())
                .arg(&*record.id);
            match self.hub.invoke::<i64>("create session", inv).await? {
                0 => {
                    let record = Arc::new(record);
                    self.remember(record.clone(), now);
                    Ok(record)
                }
                1 => Err(StoreError::Full),
                _ => Err(StoreError::PrincipalFull),
            }
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> BoxFut<'a, Result<Option<Arc<SessionRecord>>, StoreError>> {
        // A hit costs no Redis round trip and no large future.
        if let Some(r) = self.cached(id, now_ms) {
            return Box::pin(std::future::ready(Ok(Some(r))));
        }
        Box::pin(async move {
            let mut inv = scripts::GET.prepare_invoke();
            inv.key(self.record_key(id))
                .key(self.subs_key(id))
                .key(self.all_key())
                .arg(now_ms)
                .arg(self.limits.idle_ms)
                .arg(id)
                .arg(&self.hub.prefix);
            let found: Option<(Vec<String>, Vec<String>)> =
                self.hub.invoke("look up session", inv).await?;
            let Some((fields, subs)) = found else {
                self.invalidate(id);
                return Ok(None);
            };
            let Some(record) = Self::rebuild(id, &fields, subs) else {
                return Ok(None);
            };
            let record = Arc::new(record);
            self.remember(record.clone(), now_ms);
            Ok(Some(record))
        })
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        update: &'a SessionUpdate,
    ) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut inv = scripts::UPDATE.prepare_invoke();
            inv.key(self.record_key(id)).key(self.subs_key(id));
            match update {
                SessionUpdate::LogLevel(level) => {
                    inv.arg("lvl").arg(level.as_str()).arg("0");
                }
                SessionUpdate::Subscribe(uri, on) => {
                    inv.arg("sub").arg(uri).arg(if *on { "1" } else { "0" });
                }
            }
            inv.arg(self.limits.idle_ms);
            let found = self.hub.invoke::<i64>("update session", inv).await? == 1;
            self.invalidate(id);
            Ok(found)
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut inv = scripts::DELETE.prepare_invoke();
            inv.key(self.record_key(id))
                .key(self.subs_key(id))
                .key(self.all_key())
                .arg(id);
            let existed = self.hub.invoke::<i64>("delete session", inv).await? == 1;
            self.invalidate(id);
            Ok(existed)
        })
    }

    fn sweep(&self, now_ms: u64) -> BoxFut<'_, Result<Vec<Arc<str>>, StoreError>> {
        Box::pin(async move {
            let mut inv = scripts::SWEEP.prepare_invoke();
            inv.key(self.all_key()).arg(now_ms).arg(&self.hub.prefix);
            let (ids, left): (Vec<String>, usize) = self.hub.invoke("expire sessions", inv).await?;
            self.count.store(left, Ordering::Relaxed);
            Ok(ids
                .into_iter()
                .map(|id| {
                    self.invalidate(&id);
                    Arc::from(id)
                })
                .collect())
        })
    }

    fn is_subscribed<'a>(
        &'a self,
        record: &'a SessionRecord,
        uri: &'a str,
    ) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let cmd = redis::cmd("SISMEMBER")
                .arg(self.subs_key(&record.id))
                .arg(uri)
                .to_owned();
            self.hub.query("read subscriptions", &cmd).await
        })
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Sessions belong to the deployment: a replica that stops leaves them to the others.
    fn stop(&self) {
        self.invalidate_all();
    }
}
