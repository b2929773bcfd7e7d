//! The shared backend on Redis (feature `redis`): sessions, event logs, the notification bus, messages between replicas and the `requestState` key, so that any number of replicas serve one deployment.
//!
//! One command connection (a redis-rs connection manager, RESP3, reconnecting by itself) and
//! one subscriber connection per replica. Every command has a deadline: when Redis cannot be
//! reached, requests that need it fail fast with [`StoreError::Unavailable`] (503), and the
//! next command after Redis returns succeeds again: nothing needs a restart.
//!
//! What each replica keeps for itself: its live connections, the calls it runs and their
//! waiters, and a session cache of at most [`sessions::CACHE_MS`] per entry, dropped at once
//! when another replica announces a change (see `sessions.rs`).

mod events;
mod scripts;
mod sessions;
mod tasks;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{IntoConnectionInfo, PushKind, Value as RedisValue};
use tokio::sync::{broadcast, mpsc, watch};

use super::bus::{Bus, MemoryBus, PeerMessage, Peers};
use super::events::{EventStore, LiveStreams};
use super::session::{SessionLimits, SessionStore, StoreError};
use super::tasks::{TaskLimits, TaskStore};
use super::Runtime;
use crate::core::catalog::Change;
use crate::core::message::Id;
use crate::log;
use crate::sources::{RandomSource, SystemRandom};

pub(crate) use events::RedisEvents;
pub(crate) use sessions::RedisSessions;
pub(crate) use tasks::RedisTasks;

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "vouch-mcp:";
/// How long one Redis command may take before the request fails with 503.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// Heartbeat period of a replica.
const TICK: Duration = Duration::from_secs(1);
/// A replica silent this long is taken for dead (its standalone connections may be taken,
/// resumed calls it ran fail).
const DEAD_MS: u64 = 3_000;
/// A replica silent this long is forgotten.
const FORGET_MS: u64 = 60_000;
/// After a failed command, how long requests fail at once instead of waiting on Redis again
/// (one request in each such window probes it).
const FAIL_FAST: Duration = Duration::from_millis(250);
/// Messages to other replicas waiting to be published; beyond it they are dropped and logged.
const OUTBOX: usize = 4096;
/// How long an announcement waits for every replica that received it to say it acted on it.
/// Shorter than [`sessions::CACHE_MS`]: a replica that never answers (stalled, or an older
/// version) stops holding a stale copy by then anyway.
const ANNOUNCE_WAIT: Duration = Duration::from_millis(250);

/// Where the shared backend is and how its keys are named.
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    prefix: String,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisConfig {
    /// `redis://[user:password@]host:port/db`, or `rediss://` for TLS (rustls, webpki roots).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// The prefix of every key and channel, so several deployments can share one Redis.
    /// Defaults to [`DEFAULT_PREFIX`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// Why the backend could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is not a `redis://` or `rediss://` URL (shown without its password).
    BadUrl(String),
    /// Redis did not answer (the URL is shown without its password).
    Unreachable(String, String),
    /// The random source failed.
    NoRandomness,
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(u) => write!(f, "{u} is not a redis:// or rediss:// URL"),
            Self::Unreachable(u, why) => {
                write!(f, "the session store at {u} is unreachable: {why}")
            }
            Self::NoRandomness => f.write_str("the random source failed"),
        }
    }
}

impl std::error::Error for RedisError {}

/// The URL with any password replaced by `***`, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(unparsable url)".into();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// What a server built on the backend uses in place of the in-memory defaults.
pub(crate) type Parts = (
    Arc<dyn SessionStore>,
    Arc<dyn EventStore>,
    Arc<dyn Peers>,
    Arc<dyn Bus>,
);

/// A connection to the shared backend; give it to
/// [`ServerBuilder::redis`](crate::ServerBuilder::redis). Every replica that connects to the
/// same Redis with the same prefix serves the same deployment.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use vouch_mcp::redis::{RedisBackend, RedisConfig};
/// let backend = RedisBackend::connect(RedisConfig::new("redis://127.0.0.1:6379/0")).await?;
/// let server = vouch_mcp::ServerBuilder::new("s", "1", "https://mcp.example/mcp")
///     .dangerously_disable_auth()
///     .redis(backend)
///     .build()?;
/// # drop(server); Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    hub: Arc<Hub>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.hub.url)
            .field("replica", &self.hub.replica)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects, agrees on the `requestState` sealing key with the other replicas (the first
    /// replica's random key, kept in Redis), and starts this replica's heartbeat and subscriber.
    /// Must run inside a tokio runtime.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisError> {
        Self::connect_with(config, Arc::new(SystemRandom::new())).await
    }

    pub(crate) async fn connect_with(
        config: RedisConfig,
        random: Arc<dyn RandomSource>,
    ) -> Result<Self, RedisError> {
        let shown = redact(&config.url);
        if !(config.url.starts_with("redis://") || config.url.starts_with("rediss://")) {
            return Err(RedisError::BadUrl(shown));
        }
        let mut info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|_| RedisError::BadUrl(shown.clone()))?;
        info.redis.protocol = redis::ProtocolVersion::RESP3;
        let client = redis::Client::open(info).map_err(|_| RedisError::BadUrl(shown.clone()))?;
        let unreachable = |e: String| RedisError::Unreachable(shown.clone(), e);
        let manager_config = || {
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(COMMAND_TIMEOUT)
                .set_response_timeout(COMMAND_TIMEOUT)
                .set_number_of_retries(1)
                .set_max_delay(500)
        };
        let conn = tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), manager_config()),
        )
        .await
        .map_err(|_| unreachable("no answer in time".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let mut subscriber = tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
            ConnectionManager::new_with_config(
                client,
                manager_config()
                    .set_push_sender(push_tx)
                    .set_automatic_resubscription(),
            ),
        )
        .await
        .map_err(|_| unreachable("no answer in time".into()))?
        .map_err(|e| unreachable(e.to_string()))?;

        let mut id = [0u8; 6];
        random.fill(&mut id).map_err(|_| RedisError::NoRandomness)?;
        let replica: Arc<str> = hex(&id).into();
        let mut key = [0u8; 32];
        random
            .fill(&mut key)
            .map_err(|_| RedisError::NoRandomness)?;
        let prefix = config.prefix;
        let key_name = format!("{prefix}state-key");
        let mut c = conn.clone();
        let agreed: Option<String> = tokio::time::timeout(COMMAND_TIMEOUT, async {
            redis::cmd("SET")
                .arg(&key_name)
                .arg(hex(&key))
                .arg("NX")
                .exec_async(&mut c)
                .await?;
            redis::cmd("GET").arg(&key_name).query_async(&mut c).await
        })
        .await
        .map_err(|_| unreachable("no answer in time".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let state_key = agreed.as_deref().and_then(unhex).unwrap_or(key);

        for channel in [format!("{prefix}all"), format!("{prefix}r:{replica}")] {
            tokio::time::timeout(COMMAND_TIMEOUT, subscriber.subscribe(&channel))
                .await
                .map_err(|_| unreachable("no answer in time".into()))?
                .map_err(|e| unreachable(e.to_string()))?;
        }
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        let hub = Arc::new(Hub {
            url: shown,
            prefix,
            replica,
            conn,
            subscriber,
            state_key,
            outbox,
            runtime: OnceLock::new(),
            streams: OnceLock::new(),
            sessions: OnceLock::new(),
            events: OnceLock::new(),
            tasks: OnceLock::new(),
            bus: MemoryBus::default(),
            alive: Mutex::new(HashMap::new()),
            alive_read_ms: AtomicU64::new(0),
            last_complaint_ms: AtomicU64::new(0),
            down_until_ms: AtomicU64::new(0),
            next_announcement: AtomicU64::new(0),
            confirmations: Mutex::new(HashMap::new()),
        });
        tokio::spawn(publish_loop(Arc::downgrade(&hub), outbox_rx));
        tokio::spawn(receive_loop(Arc::downgrade(&hub), push_rx));
        tokio::spawn(tick_loop(Arc::downgrade(&hub)));
        log::info(format_args!(
            "shared session store: {} prefix={} replica={}",
            hub.url, hub.prefix, hub.replica
        ));
        Ok(Self { hub })
    }

    /// This replica's id, as its log lines and the other replicas know it.
    pub fn replica(&self) -> &str {
        &self.hub.replica
    }

    /// The agreed `requestState` sealing key.
    pub(crate) fn state_key(&self) -> [u8; 32] {
        self.hub.state_key
    }

    /// The stores for a server with these limits.
    pub(crate) fn parts(&self, limits: SessionLimits) -> Parts {
        let sessions = Arc::new(RedisSessions::new(self.hub.clone(), limits));
        let events = Arc::new(RedisEvents::new(self.hub.clone(), limits.idle_ms));
        let _ = self.hub.sessions.set(sessions.clone());
        let _ = self.hub.events.set(events.clone());
        let bus = Arc::new(RedisBus {
            hub: self.hub.clone(),
        });
        (sessions, events, self.hub.clone(), bus)
    }

    /// The task store of a server with these caps: task records shared by every replica.
    pub(crate) fn tasks(&self, limits: TaskLimits) -> Arc<dyn TaskStore> {
        let tasks = Arc::new(RedisTasks::new(self.hub.clone(), limits));
        let _ = self.hub.tasks.set(tasks.clone());
        tasks
    }

    /// Connects the backend to the built server, so messages from other replicas reach it.
    pub(crate) fn install(&self, runtime: &Arc<Runtime>) {
        let _ = self.hub.runtime.set(Arc::downgrade(runtime));
        let _ = self.hub.streams.set(runtime.streams.clone());
    }
}

/// What the stores and tasks of one replica share.
pub(crate) struct Hub {
    url: String,
    prefix: String,
    replica: Arc<str>,
    conn: ConnectionManager,
    subscriber: ConnectionManager,
    state_key: [u8; 32],
    outbox: mpsc::Sender<(String, String)>,
    runtime: OnceLock<Weak<Runtime>>,
    streams: OnceLock<Arc<LiveStreams>>,
    sessions: OnceLock<Arc<RedisSessions>>,
    events: OnceLock<Arc<RedisEvents>>,
    tasks: OnceLock<Arc<RedisTasks>>,
    /// Changes reach this replica's streams here (published locally and from the others).
    bus: MemoryBus,
    /// Other replicas and when they were last heard of (ms since the epoch).
    alive: Mutex<HashMap<String, u64>>,
    /// When `alive` was last read from Redis: an older list judges nobody dead.
    alive_read_ms: AtomicU64,
    last_complaint_ms: AtomicU64,
    /// Until then (ms since the epoch), commands fail without trying: Redis just failed.
    down_until_ms: AtomicU64,
    /// The number of this replica's next announcement.
    next_announcement: AtomicU64,
    /// Announcements waiting for the replicas' confirmations, by number: how many arrived.
    /// Locked once per confirmation and twice per announcement (deletes and session changes),
    /// never on a request that does not announce.
    confirmations: Mutex<HashMap<u64, watch::Sender<usize>>>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("url", &self.url)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    fn key(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("{}{parts}", self.prefix)
    }

    /// True while a recent failure says Redis is away; the first caller after the window
    /// probes it again.
    fn failing_fast(&self) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        let now = now_ms();
        if now < until {
            return true;
        }
        // The window is over: one caller probes; the others fail fast until it has answered.
        let probing = now + COMMAND_TIMEOUT.as_millis() as u64;
        self.down_until_ms
            .compare_exchange(until, probing, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    }

    fn note(&self, failed: bool) {
        if failed {
            self.down_until_ms
                .store(now_ms() + FAIL_FAST.as_millis() as u64, Ordering::Relaxed);
        } else if self.down_until_ms.load(Ordering::Relaxed) != 0 {
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Runs one script invocation with the command deadline.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        what: &str,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        if self.failing_fast() {
            return Err(StoreError::Unavailable);
        }
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, inv.invoke_async(&mut conn)).await;
        self.note(!matches!(result, Ok(Ok(_))));
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.complain(what, &e.to_string())),
            Err(_) => Err(self.complain(what, "no answer in time")),
        }
    }

    /// Runs one command with the command deadline.
    async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        if self.failing_fast() {
            return Err(StoreError::Unavailable);
        }
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async(&mut conn)).await;
        self.note(!matches!(result, Ok(Ok(_))));
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.complain(what, &e.to_string())),
            Err(_) => Err(self.complain(what, "no answer in time")),
        }
    }

    /// Logs a failure at most once a second (an outage under load would flood the log).
    fn complain(&self, what: &str, why: &str) -> StoreError {
        let now = now_ms();
        let last = self.last_complaint_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_complaint_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn(format_args!(
                "session store unavailable ({what}: {why}) at {}",
                self.url
            ));
        }
        StoreError::Unavailable
    }

    /// True when `replica` was heard of within [`DEAD_MS`] (this replica always is). While
    /// this replica cannot read the heartbeats (Redis is away), nobody is taken for dead.
    fn is_alive(&self, replica: &str, now: u64) -> bool {
        let stale = now.saturating_sub(self.alive_read_ms.load(Ordering::Relaxed))
            > 2 * TICK.as_millis() as u64;
        replica == &*self.replica
            || stale
            || self
                .alive
                .lock()
                .expect("alive poisoned")
                .get(replica)
                .is_some_and(|seen| now.saturating_sub(*seen) < DEAD_MS)
    }

    /// Like [`Hub::is_alive`], but a replica this one has not heard of yet (it started since
    /// the last heartbeat read) is looked up in Redis before it is taken for dead.
    async fn is_alive_now(&self, replica: &str, now: u64) -> bool {
        if self.is_alive(replica, now) {
            return true;
        }
        let cmd = redis::cmd("HGET")
            .arg(self.key(format_args!("replicas")))
            .arg(replica)
            .to_owned();
        match self.query::<Option<u64>>("read heartbeats", &cmd).await {
            Ok(Some(seen)) => now.saturating_sub(seen) < DEAD_MS,
            Ok(None) => false,
            // Redis is away: nobody is judged.
            Err(_) => true,
        }
    }

    fn publish(&self, channel: String, payload: String) {
        if self.outbox.try_send((channel, payload)).is_err() {
            self.complain("publish", "too many messages waiting");
        }
    }

    /// Counts one confirmation of announcement `number` (ignored once nobody waits for it).
    fn confirmed(&self, number: u64) {
        if let Some(tx) = self
            .confirmations
            .lock()
            .expect("confirmations poisoned")
            .get(&number)
        {
            tx.send_modify(|n| *n += 1);
        }
    }

    fn runtime(&self) -> Option<Arc<Runtime>> {
        self.runtime.get().and_then(Weak::upgrade)
    }

    /// A message from another replica (or Redis itself).
    fn receive(&self, channel: &str, payload: &str) {
        let (kind, rest) = payload.split_once(' ').unwrap_or((payload, ""));
        match kind {
            // `sync ORIGIN NUMBER MESSAGE`: an announcement; act on it, then confirm.
            "sync" => {
                let mut it = rest.splitn(3, ' ');
                let (Some(origin), Some(Ok(number)), Some(message)) =
                    (it.next(), it.next().map(str::parse::<u64>), it.next())
                else {
                    return;
                };
                if message.starts_with("sync ") {
                    return;
                }
                self.receive(channel, message);
                if origin == &*self.replica {
                    self.confirmed(number);
                } else {
                    self.publish(
                        format!("{}r:{origin}", self.prefix),
                        format!("seen {number}"),
                    );
                }
            }
            "seen" => {
                if let Ok(number) = rest.parse() {
                    self.confirmed(number);
                }
            }
            "ev" => {
                let mut it = rest.splitn(4, ' ');
                let (Some(session), Some(stream), Some(seq), Some(json)) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    return;
                };
                let (Ok(stream), Ok(seq)) = (stream.parse(), seq.parse()) else {
                    return;
                };
                if let Some(streams) = self.streams.get() {
                    let json = bytes::Bytes::copy_from_slice(json.as_bytes());
                    if !streams.deliver_remote(session, stream, seq, json) {
                        if let Some(events) = self.events.get() {
                            events.detach_later(session, stream);
                        }
                    }
                }
            }
            "fin" => {
                let mut it = rest.splitn(2, ' ');
                if let (Some(session), Some(Ok(stream))) =
                    (it.next(), it.next().map(str::parse::<u64>))
                {
                    if let Some(streams) = self.streams.get() {
                        streams.end(session, stream);
                    }
                    if let Some(events) = self.events.get() {
                        events.forget_remote(session, stream);
                    }
                }
            }
            "tv" => {
                let Some((id, version)) = rest.split_once(' ') else {
                    return;
                };
                if let (Some(tasks), Ok(version)) = (self.tasks.get(), version.parse()) {
                    tasks.on_version(id, version);
                }
            }
            "chg" => {
                let mut it = rest.splitn(3, ' ');
                let (Some(from), Some(what)) = (it.next(), it.next()) else {
                    return;
                };
                if from == &*self.replica {
                    return;
                }
                let change = match what {
                    "T" => Change::Tools,
                    "P" => Change::Prompts,
                    "R" => Change::Resources,
                    "U" => Change::ResourceUpdated(it.next().unwrap_or("").to_owned()),
                    _ => return,
                };
                self.bus.publish(change);
            }
            _ => {
                let Some(message) = decode_peer(kind, rest) else {
                    log::debug(format_args!("unreadable message on {channel}"));
                    return;
                };
                if let (
                    PeerMessage::Ended { session } | PeerMessage::Changed { session },
                    Some(s),
                ) = (&message, self.sessions.get())
                {
                    s.invalidate(session);
                }
                if let Some(rt) = self.runtime() {
                    rt.on_peer(message);
                }
            }
        }
    }
}

impl Peers for Hub {
    fn replica(&self) -> &str {
        &self.replica
    }

    fn send(&self, to: Option<&str>, message: PeerMessage) {
        let channel = match to {
            Some(r) => format!("{}r:{r}", self.prefix),
            None => format!("{}all", self.prefix),
        };
        self.publish(channel, encode_peer(&message));
    }

    /// Publishes `message` to every replica (this one included) and waits, up to
    /// [`ANNOUNCE_WAIT`], until each replica Redis handed it to has acted on it and said so:
    /// once a DELETE is answered, no replica still serves the session from its cache. (A client
    /// other than a replica subscribed to the channel, `redis-cli` say, never confirms: with one,
    /// each announcement takes the whole wait.)
    fn announce(&self, message: PeerMessage) -> crate::runtime::session::BoxFut<'_, ()> {
        Box::pin(async move {
            let number = self.next_announcement.fetch_add(1, Ordering::Relaxed);
            let (tx, mut seen) = watch::channel(0usize);
            self.confirmations
                .lock()
                .expect("confirmations poisoned")
                .insert(number, tx);
            let waiting = Waiting { hub: self, number };
            let payload = format!("sync {} {number} {}", self.replica, encode_peer(&message));
            let cmd = redis::cmd("PUBLISH")
                .arg(format!("{}all", self.prefix))
                .arg(payload)
                .to_owned();
            // Confirmations may arrive before PUBLISH's own answer: they are counted meanwhile.
            if let Ok(receivers) = self.query::<i64>("publish", &cmd).await {
                let want = usize::try_from(receivers).unwrap_or(0);
                let all_seen = seen.wait_for(|n| *n >= want);
                if tokio::time::timeout(ANNOUNCE_WAIT, all_seen).await.is_err() {
                    let got = *seen.borrow();
                    log::debug(format_args!(
                        "announcement {number}: {got} of {want} replicas confirmed within {} ms",
                        ANNOUNCE_WAIT.as_millis()
                    ));
                }
            }
            drop(waiting);
        })
    }
}

/// An announcement's entry in [`Hub::confirmations`], removed however the wait ends (the
/// request that announced may be dropped while it waits).
struct Waiting<'a> {
    hub: &'a Hub,
    number: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.hub.confirmations.lock() {
            m.remove(&self.number);
        }
    }
}

fn encode_peer(m: &PeerMessage) -> String {
    match m {
        PeerMessage::Cancel { session, request } => {
            format!("cancel {session} {}", request.to_value())
        }
        PeerMessage::Answer {
            session,
            id,
            outcome,
        } => match outcome {
            Ok(v) => format!("answer {session} {id} ok {v}"),
            Err(v) => format!("answer {session} {id} err {v}"),
        },
        PeerMessage::Ended { session } => format!("ended {session}"),
        PeerMessage::Changed { session } => format!("changed {session}"),
    }
}

fn decode_peer(kind: &str, rest: &str) -> Option<PeerMessage> {
    let word = |s: &str| s.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned()));
    Some(match kind {
        "cancel" => {
            let (session, id) = word(rest)?;
            let request = Id::from_value(&serde_json::from_str(&id).ok()?)?;
            PeerMessage::Cancel { session, request }
        }
        "answer" => {
            let (session, rest) = word(rest)?;
            let (id, rest) = word(&rest)?;
            let (ok, json) = word(&rest)?;
            let v = serde_json::from_str(&json).ok()?;
            PeerMessage::Answer {
                session,
                id,
                outcome: if ok == "ok" { Ok(v) } else { Err(v) },
            }
        }
        "ended" => PeerMessage::Ended {
            session: rest.to_owned(),
        },
        "changed" => PeerMessage::Changed {
            session: rest.to_owned(),
        },
        _ => return None,
    })
}

/// The bus of a replica among several: changes reach this replica's streams at once and the
/// other replicas through Redis.
#[derive(Debug)]
struct RedisBus {
    hub: Arc<Hub>,
}

impl Bus for RedisBus {
    fn publish(&self, change: Change) {
        let what = match &change {
            Change::Tools => "T".to_owned(),
            Change::Prompts => "P".to_owned(),
            Change::Resources => "R".to_owned(),
            Change::ResourceUpdated(uri) => format!("U {uri}"),
        };
        self.hub.publish(
            format!("{}all", self.hub.prefix),
            format!("chg {} {what}", self.hub.replica),
        );
        self.hub.bus.publish(change);
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.hub.bus.subscribe()
    }
}

/// Publishes messages for other replicas in order; one at a time, each with the deadline.
async fn publish_loop(hub: Weak<Hub>, mut rx: mpsc::Receiver<(String, String)>) {
    while let Some((channel, payload)) = rx.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        let cmd = redis::cmd("PUBLISH").arg(&channel).arg(&payload).to_owned();
        let _: Result<i64, _> = hub.query("publish", &cmd).await;
    }
}

/// Hands what the subscriber connection receives to the replica. A lost connection may have
/// missed invalidations: the session cache is dropped whole.
async fn receive_loop(hub: Weak<Hub>, mut rx: mpsc::UnboundedReceiver<redis::PushInfo>) {
    while let Some(push) = rx.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        match push.kind {
            PushKind::Message => {
                let text = |v: &RedisValue| match v {
                    RedisValue::BulkString(b) => String::from_utf8(b.clone()).ok(),
                    RedisValue::SimpleString(s) => Some(s.clone()),
                    _ => None,
                };
                if let (Some(channel), Some(payload)) = (
                    push.data.first().and_then(text),
                    push.data.get(1).and_then(text),
                ) {
                    hub.receive(&channel, &payload);
                }
            }
            PushKind::Disconnection => {
                log::warn(format_args!(
                    "lost the subscriber connection to the session store at {}; reconnecting",
                    hub.url
                ));
                if let Some(s) = hub.sessions.get() {
                    s.invalidate_all();
                }
                if let Some(t) = hub.tasks.get() {
                    t.wake_all();
                }
            }
            _ => {}
        }
    }
}

/// Every [`TICK`]: heartbeat, the list of live replicas, the sealing key put back if Redis lost
/// it, the subscriber connection kept alive, resumed calls whose replica died ended.
async fn tick_loop(hub: Weak<Hub>) {
    let mut tick = tokio::time::interval(TICK);
    let mut key_warned = false;
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let now = now_ms();
        let mut inv = scripts::TICK.prepare_invoke();
        inv.key(hub.key(format_args!("replicas")))
            .key(hub.key(format_args!("state-key")))
            .arg(&*hub.replica)
            .arg(now)
            .arg(hex(&hub.state_key))
            .arg(FORGET_MS);
        let seen: Result<(Vec<String>, Option<String>), _> = hub.invoke("heartbeat", inv).await;
        if let Ok((pairs, key)) = seen {
            let mut alive = hub.alive.lock().expect("alive poisoned");
            alive.clear();
            for pair in pairs.chunks(2) {
                if let [r, ms] = pair {
                    alive.insert(r.clone(), ms.parse().unwrap_or(0));
                }
            }
            drop(alive);
            hub.alive_read_ms.store(now, Ordering::Relaxed);
            let same = key.as_deref().and_then(unhex) == Some(hub.state_key);
            if !same && !key_warned {
                log::warn(format_args!(
                    "the requestState key in the session store differs from this replica's \
                     (Redis lost its data while replicas with another key ran?); retries sealed \
                     elsewhere fail here until the replicas restart, or set MCP_STATE_KEY_FILE"
                ));
            }
            key_warned = !same;
        }
        // A PING on the subscriber connection makes a dropped one reconnect (and resubscribe).
        let mut sub = hub.subscriber.clone();
        let _ = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async::<RedisValue>(&mut sub),
        )
        .await;
        if let Some(events) = hub.events.get() {
            events.watch_producers(now).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_shown_urls() {
        assert_eq!(
            redact("redis://user:s3cret@h:6379/0"),
            "redis://user:***@h:6379/0"
        );
        assert_eq!(redact("rediss://:s3cret@h/1"), "rediss://:***@h/1");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert!(!format!("{:?}", RedisConfig::new("redis://u:pw@h/0")).contains("pw"));
    }

    #[test]
    fn peer_messages_survive_the_wire() {
        for m in [
            PeerMessage::Cancel {
                session: "s".into(),
                request: Id::Str("a b".into()),
            },
            PeerMessage::Answer {
                session: "s".into(),
                id: "srv-ab-3".into(),
                outcome: Ok(serde_json::json!({"action": "accept", "x": "y z"})),
            },
            PeerMessage::Answer {
                session: "s".into(),
                id: "srv-ab-4".into(),
                outcome: Err(serde_json::json!({"code": -1})),
            },
            PeerMessage::Ended {
                session: "s".into(),
            },
            PeerMessage::Changed {
                session: "s".into(),
            },
        ] {
            let text = encode_peer(&m);
            let (kind, rest) = text.split_once(' ').unwrap();
            assert_eq!(decode_peer(kind, rest), Some(m));
        }
    }

    #[test]
    fn keys_round_trip_as_hex() {
        let k = [0xabu8; 32];
        assert_eq!(unhex(&hex(&k)), Some(k));
        assert_eq!(unhex("zz"), None);
    }
}
