//! Task records in Redis: every replica reads and writes the same tasks, the caps hold for the deployment, and a change made on one replica wakes the waiters on all of them.
//!
//! The key layout is in `scripts.rs`. Each write is one Lua script, so the caps (checked and
//! taken in one step), the compare-and-set on the version and the bookkeeping sets never
//! disagree. A replace announces the record's new version on the `all` channel; waiters
//! ([`TaskStore::changed`]) wake on it, and fall back to their timeout if a message is lost.
//! Task ids and owners never reach the log: an owner is kept only as a digest in key names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{scripts, Hub};
use crate::core::tasks::{TaskOwner, TaskRecord};
use crate::log;
use crate::runtime::session::{BoxFut, StoreError};
use crate::runtime::tasks::{TaskLimits, TaskStore, TaskStoreError};

/// How long a waiter sleeps when Redis failed before it lets its caller look again (never a
/// busy loop, never longer than the caller asked).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

impl From<StoreError> for TaskStoreError {
    fn from(_: StoreError) -> Self {
        Self::Unavailable
    }
}

/// Who waits for which task's next version, on this replica.
#[derive(Debug, Default)]
struct Waiters {
    by_id: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Waiters {
    fn watch(&self, id: &str) -> watch::Receiver<u64> {
        self.by_id
            .lock()
            .expect("task waiters poisoned")
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// The waiter is done: its entry goes once nobody else waits on it.
    fn done(&self, id: &str, rx: watch::Receiver<u64>) {
        drop(rx);
        let mut by_id = self.by_id.lock().expect("task waiters poisoned");
        if by_id.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            by_id.remove(id);
        }
    }

    fn wake(&self, id: &str, version: u64) {
        if let Some(tx) = self.by_id.lock().expect("task waiters poisoned").get(id) {
            tx.send_replace(version);
        }
    }

    fn wake_all(&self) {
        for tx in self.by_id.lock().expect("task waiters poisoned").values() {
            tx.send_modify(|_| {});
        }
    }
}

/// Tasks shared by every replica through Redis.
pub(crate) struct RedisTasks {
    hub: Arc<Hub>,
    limits: TaskLimits,
    waiters: Waiters,
    /// Tasks held, as the last create or sweep saw it.
    count: AtomicUsize,
}

impl std::fmt::Debug for RedisTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTasks")
            .field("hub", &self.hub)
            .field("limits", &self.limits)
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

/// A principal's digest: key names need no escaping, and carry no identity.
fn owner_digest(owner: &TaskOwner) -> String {
    let mut input = Vec::with_capacity(owner.issuer.len() + owner.subject.len() + 1);
    input.extend_from_slice(owner.issuer.as_bytes());
    input.push(0);
    input.extend_from_slice(owner.subject.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    super::hex(&digest.as_ref()[..16])
}

fn forget_score(record: &TaskRecord) -> String {
    record
        .forget_at()
        .map_or_else(|| "+inf".to_owned(), |at| at.to_string())
}

fn parse(json: &str) -> Option<TaskRecord> {
    let parsed = serde_json::from_str(json);
    if parsed.is_err() {
        log::warn(format_args!(
            "an unreadable task record in the session store was skipped"
        ));
    }
    parsed.ok()
}

impl RedisTasks {
    pub(crate) fn new(hub: Arc<Hub>, limits: TaskLimits) -> Self {
        Self {
            hub,
            limits,
            waiters: Waiters::default(),
            count: AtomicUsize::new(0),
        }
    }

    fn record_key(&self, id: &str) -> String {
        self.hub.key(format_args!("t:{id}"))
    }

    /// A replace somewhere announced `version` of task `id`.
    pub(crate) fn on_version(&self, id: &str, version: u64) {
        self.waiters.wake(id, version);
    }

    /// The subscriber connection dropped: announcements may be lost, so every waiter looks again.
    pub(crate) fn wake_all(&self) {
        self.waiters.wake_all();
    }

    async fn create_now(&self, record: TaskRecord) -> Result<(), TaskStoreError> {
        let json = serde_json::to_string(&record).map_err(|_| TaskStoreError::Unavailable)?;
        let owner = owner_digest(&record.owner);
        let unfinished = !record.status.is_terminal();
        let mut inv = scripts::TASK_CREATE.prepare_invoke();
        inv.key(self.record_key(&record.id))
            .key(self.hub.key(format_args!("tasks")))
            .key(self.hub.key(format_args!("to:{owner}")))
            .key(self.hub.key(format_args!("tu:{owner}")))
            .key(self.hub.key(format_args!("tleases")))
            .key(self.hub.key(format_args!("tseq")))
            .arg(&record.id)
            .arg(json)
            .arg(record.version)
            .arg(self.limits.max_tasks)
            .arg(self.limits.max_per_principal)
            .arg(if unfinished { "1" } else { "0" })
            .arg(record.lease_until_ms)
            .arg(forget_score(&record))
            .arg(&owner);
        let (code, held): (u8, usize) = self.hub.invoke("create a task", inv).await?;
        self.count.store(held, Ordering::Relaxed);
        match code {
            0 => Ok(()),
            1 => Err(TaskStoreError::Full),
            _ => Err(TaskStoreError::PrincipalFull),
        }
    }

    async fn replace_now(&self, expected: u64, record: TaskRecord) -> Result<bool, TaskStoreError> {
        if record.version <= expected {
            return Ok(false);
        }
        let json = serde_json::to_string(&record).map_err(|_| TaskStoreError::Unavailable)?;
        let owner = owner_digest(&record.owner);
        let mut inv = scripts::TASK_REPLACE.prepare_invoke();
        inv.key(self.record_key(&record.id))
            .key(self.hub.key(format_args!("tasks")))
            .key(self.hub.key(format_args!("tu:{owner}")))
            .key(self.hub.key(format_args!("tleases")))
            .arg(expected)
            .arg(record.version)
            .arg(json)
            .arg(if record.status.is_terminal() {
                "1"
            } else {
                "0"
            })
            .arg(record.lease_until_ms)
            .arg(forget_score(&record))
            .arg(&record.id)
            .arg(self.hub.key(format_args!("all")));
        let stored: u8 = self.hub.invoke("update a task", inv).await?;
        if stored == 1 {
            // Waiters here need not wait for the announcement's round trip.
            self.waiters.wake(&record.id, record.version);
        }
        Ok(stored == 1)
    }

    async fn version_of(&self, id: &str) -> Result<Option<u64>, TaskStoreError> {
        let cmd = redis::cmd("HGET")
            .arg(self.record_key(id))
            .arg("v")
            .to_owned();
        Ok(self.hub.query("read a task", &cmd).await?)
    }
}

impl TaskStore for RedisTasks {
    fn create(&self, record: TaskRecord) -> BoxFut<'_, Result<(), TaskStoreError>> {
        Box::pin(self.create_now(record))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<TaskRecord>, TaskStoreError>> {
        Box::pin(async move {
            let cmd = redis::cmd("HGET")
                .arg(self.record_key(id))
                .arg("r")
                .to_owned();
            let json: Option<String> = self.hub.query("read a task", &cmd).await?;
            Ok(json.as_deref().and_then(parse))
        })
    }

    fn replace(
        &self,
        expected: u64,
        record: TaskRecord,
    ) -> BoxFut<'_, Result<bool, TaskStoreError>> {
        Box::pin(self.replace_now(expected, record))
    }

    fn list<'a>(
        &'a self,
        owner: &'a TaskOwner,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFut<'a, Result<Option<Vec<TaskRecord>>, TaskStoreError>> {
        Box::pin(async move {
            let owner = owner_digest(owner);
            let mut inv = scripts::TASK_LIST.prepare_invoke();
            inv.key(self.hub.key(format_args!("to:{owner}")))
                .arg(after.unwrap_or(""))
                .arg(limit)
                .arg(self.hub.key(format_args!("t:")));
            let page: Option<Vec<String>> = self.hub.invoke("list tasks", inv).await?;
            Ok(page.map(|jsons| jsons.iter().filter_map(|j| parse(j)).collect()))
        })
    }

    fn changed<'a>(&'a self, id: &'a str, seen: u64, within: Duration) -> BoxFut<'a, ()> {
        Box::pin(async move {
            // Watching before reading: a change announced in between is not missed.
            let mut rx = self.waiters.watch(id);
            match self.version_of(id).await {
                Ok(Some(v)) if v == seen => {
                    let _ = tokio::time::timeout(within, rx.changed()).await;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(within.min(RETRY_AFTER_FAILURE)).await,
            }
            self.waiters.done(id, rx);
        })
    }

    fn sweep(&self, now_ms: u64) -> BoxFut<'_, Result<Vec<TaskRecord>, TaskStoreError>> {
        Box::pin(async move {
            let mut inv = scripts::TASK_SWEEP.prepare_invoke();
            inv.key(self.hub.key(format_args!("tasks")))
                .key(self.hub.key(format_args!("tleases")))
                .arg(now_ms)
                .arg(&self.hub.prefix);
            let (lapsed, held): (Vec<String>, usize) = self.hub.invoke("sweep tasks", inv).await?;
            self.count.store(held, Ordering::Relaxed);
            Ok(lapsed.iter().filter_map(|j| parse(j)).collect())
        })
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    //! These need a Redis: `VOUCH_TEST_REDIS_URL` names one, or a `redis-server` on PATH is
    //! started for each test on a free loopback port (and stopped by its PID). Without either
    //! they are skipped, unless `VOUCH_REQUIRE_REDIS=1` (CI) makes that a failure.

    use super::*;
    use crate::core::tasks::{self, NewTask, TaskOutcome, TaskWire};
    use crate::runtime::redis::{RedisBackend, RedisConfig};
    use crate::{CallToolResult, McpService, RequestContext, ServerBuilder, TaskSupport, Tool};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::service::Service as _;
    use serde_json::{json, Value};
    use std::sync::atomic::AtomicBool;

    /// A Redis for one test; a server this test started is stopped when it is dropped.
    struct TestRedis {
        url: String,
        child: Option<std::process::Child>,
    }

    impl Drop for TestRedis {
        fn drop(&mut self) {
            if let Some(c) = self.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    fn redis() -> Option<TestRedis> {
        if let Ok(url) = std::env::var("VOUCH_TEST_REDIS_URL") {
            return Some(TestRedis { url, child: None });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(
                std::env::var("VOUCH_REQUIRE_REDIS").as_deref() != Ok("1"),
                "VOUCH_REQUIRE_REDIS=1 but no redis-server on PATH and no VOUCH_TEST_REDIS_URL"
            );
            eprintln!("skipped: no redis-server on PATH and no VOUCH_TEST_REDIS_URL");
            return None;
        };
        let r = TestRedis {
            url: format!("redis://127.0.0.1:{port}/0"),
            child: Some(child),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    /// A fresh prefix per test: tests may share one Redis.
    fn prefix() -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("t{nanos}-{}:", N.fetch_add(1, Ordering::Relaxed))
    }

    async fn backend(r: &TestRedis, prefix: &str) -> RedisBackend {
        RedisBackend::connect(RedisConfig::new(r.url.clone()).prefix(prefix))
            .await
            .expect("the test Redis answers")
    }

    /// Two replicas' stores on one Redis and prefix.
    async fn two_stores(r: &TestRedis, max: usize, per: usize) -> [Arc<dyn TaskStore>; 2] {
        let p = prefix();
        let limits = TaskLimits {
            max_tasks: max,
            max_per_principal: per,
        };
        [
            backend(r, &p).await.tasks(limits),
            backend(r, &p).await.tasks(limits),
        ]
    }

    fn owner(sub: &str) -> TaskOwner {
        TaskOwner {
            issuer: "iss".into(),
            subject: sub.into(),
        }
    }

    fn record(id: &str, sub: &str, now: u64) -> TaskRecord {
        TaskRecord::new(
            NewTask {
                id: id.into(),
                owner: owner(sub),
                wire: TaskWire::Modern,
                tool: "t".into(),
                retention_ms: 1_000,
                poll_interval_ms: 100,
                lease_ms: 500,
            },
            now,
        )
    }

    #[tokio::test]
    async fn caps_hold_for_the_deployment_not_per_replica() {
        let Some(r) = redis() else { return };
        let [a, b] = two_stores(&r, 3, 1).await;
        a.create(record("a", "alice", 0)).await.unwrap();
        assert_eq!(
            b.create(record("b", "alice", 0)).await,
            Err(TaskStoreError::PrincipalFull),
            "alice's unfinished task on replica A counts on replica B"
        );
        // Finishing releases the principal's slot; the record still counts globally.
        let rec = b.get("a").await.unwrap().unwrap();
        let done = tasks::finish(&rec, TaskOutcome::Result(json!({})), 10).unwrap();
        assert!(b.replace(rec.version, done).await.unwrap());
        b.create(record("b", "alice", 10)).await.unwrap();
        a.create(record("c", "bob", 10)).await.unwrap();
        assert_eq!(
            b.create(record("d", "carol", 10)).await,
            Err(TaskStoreError::Full)
        );
        assert_eq!(b.count(), 3);
    }

    #[tokio::test]
    async fn replace_is_compare_and_set_across_replicas() {
        let Some(r) = redis() else { return };
        let [a, b] = two_stores(&r, 10, 10).await;
        a.create(record("x", "alice", 0)).await.unwrap();
        let seen_a = a.get("x").await.unwrap().unwrap();
        let seen_b = b.get("x").await.unwrap().unwrap();
        assert_eq!(seen_a, seen_b, "the record survives serialization");
        let one = tasks::set_message(&seen_a, "one", 1).unwrap();
        let two = tasks::set_message(&seen_b, "two", 1).unwrap();
        assert!(a.replace(seen_a.version, one).await.unwrap());
        assert!(
            !b.replace(seen_b.version, two).await.unwrap(),
            "a writer that read an old version loses"
        );
        let now = b.get("x").await.unwrap().unwrap();
        assert_eq!(now.status_message.as_deref(), Some("one"));
        assert!(!a.replace(1, record("nope", "x", 0)).await.unwrap());
        assert!(b.get("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_replace_on_one_replica_wakes_a_waiter_on_another() {
        let Some(r) = redis() else { return };
        let [a, b] = two_stores(&r, 10, 10).await;
        a.create(record("w", "alice", 0)).await.unwrap();
        let rec = a.get("w").await.unwrap().unwrap();
        let started = std::time::Instant::now();
        b.changed("w", rec.version, Duration::from_millis(100))
            .await;
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "no change: the timeout"
        );
        b.changed("gone", 1, Duration::from_secs(10)).await;
        b.changed("w", rec.version + 7, Duration::from_secs(10))
            .await;
        let woke = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (b, woke) = (b.clone(), woke.clone());
            tokio::spawn(async move {
                b.changed("w", 1, Duration::from_secs(10)).await;
                woke.store(true, Ordering::SeqCst);
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!woke.load(Ordering::SeqCst));
        let started = std::time::Instant::now();
        let next = tasks::set_message(&rec, "m", 1).unwrap();
        assert!(a.replace(rec.version, next).await.unwrap());
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("the waiter on the other replica woke")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn sweep_forgets_expired_records_and_reports_lapsed_leases() {
        let Some(r) = redis() else { return };
        let [a, b] = two_stores(&r, 10, 1).await;
        a.create(record("run", "alice", 0)).await.unwrap();
        a.create(record("done", "bob", 0)).await.unwrap();
        let d = a.get("done").await.unwrap().unwrap();
        let fin = tasks::finish(&d, TaskOutcome::Result(json!({})), 100).unwrap();
        assert!(a.replace(d.version, fin).await.unwrap());
        assert!(
            b.sweep(400).await.unwrap().is_empty(),
            "lease and retention hold"
        );
        let lapsed = b.sweep(1_099).await.unwrap();
        assert_eq!(
            lapsed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["run"]
        );
        assert!(a.get("done").await.unwrap().is_some());
        b.sweep(1_100).await.unwrap();
        assert!(
            a.get("done").await.unwrap().is_none(),
            "forgotten after retention"
        );
        assert!(a
            .list(&owner("bob"), None, 10)
            .await
            .unwrap()
            .unwrap()
            .is_empty());
        assert_eq!(b.count(), 1);
        // Failing the lapsed task frees alice's slot and takes it off the lease list.
        let run = a.get("run").await.unwrap().unwrap();
        let failed = tasks::observe(&run, 1_200).unwrap();
        assert!(b.replace(run.version, failed).await.unwrap());
        assert!(b.sweep(1_300).await.unwrap().is_empty());
        a.create(record("next", "alice", 1_300)).await.unwrap();
    }

    #[tokio::test]
    async fn list_pages_an_owners_tasks_in_creation_order() {
        let Some(r) = redis() else { return };
        let [a, b] = two_stores(&r, 10, 10).await;
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            let store = if i % 2 == 0 { &a } else { &b };
            store.create(record(id, "alice", 0)).await.unwrap();
        }
        a.create(record("z", "bob", 0)).await.unwrap();
        let ids = |v: Vec<TaskRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let alice = owner("alice");
        assert_eq!(
            ids(b.list(&alice, None, 2).await.unwrap().unwrap()),
            ["a", "b"]
        );
        assert_eq!(
            ids(a.list(&alice, Some("b"), 2).await.unwrap().unwrap()),
            ["c"]
        );
        assert!(
            a.list(&alice, Some("z"), 2).await.unwrap().is_none(),
            "bob's id is no cursor for alice"
        );
    }

    #[tokio::test]
    async fn keys_name_no_task_owner() {
        let Some(r) = redis() else { return };
        let p = prefix();
        let limits = TaskLimits {
            max_tasks: 10,
            max_per_principal: 10,
        };
        let store = backend(&r, &p).await.tasks(limits);
        store
            .create(record("k", "alice@example.com", 0))
            .await
            .unwrap();
        let client = redis::Client::open(r.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{p}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(keys.iter().any(|k| k == &format!("{p}t:k")), "{keys:?}");
        assert!(!keys.iter().any(|k| k.contains("alice")), "{keys:?}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_and_changed_does_not_hang() {
        let Some(r) = redis() else { return };
        if r.child.is_none() {
            return; // An external Redis is not ours to stop.
        }
        let mut r = r;
        let [a, _] = two_stores(&r, 10, 10).await;
        a.create(record("u", "alice", 0)).await.unwrap();
        if let Some(c) = r.child.as_mut() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        assert_eq!(
            a.create(record("v", "alice", 0)).await,
            Err(TaskStoreError::Unavailable)
        );
        assert_eq!(a.get("u").await, Err(TaskStoreError::Unavailable));
        let started = std::time::Instant::now();
        a.changed("u", 1, Duration::from_secs(30)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // ----- servers on the shared backend --------------------------------------------------

    const URL: &str = "http://localhost:3000/mcp";

    fn server(b: RedisBackend, stopped: Arc<AtomicBool>) -> crate::Server {
        ServerBuilder::new("t", "1", URL)
            .dangerously_disable_auth()
            .tool(
                Tool::new(
                    "forever",
                    "Runs until cancelled",
                    move |ctx: RequestContext| {
                        let stopped = stopped.clone();
                        async move {
                            ctx.cancellation().cancelled().await;
                            stopped.store(true, Ordering::SeqCst);
                            Ok(CallToolResult::text("stopped"))
                        }
                    },
                )
                .task_support(TaskSupport::Optional),
            )
            .tool(
                Tool::new("slow", "Takes 300 ms", |_ctx: RequestContext| async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(CallToolResult::text("done"))
                })
                .task_support(TaskSupport::Optional),
            )
            .task_lease(Duration::from_secs(30))
            .redis(b)
            .build()
            .unwrap()
    }

    async fn post(svc: &McpService, method: &str, name: &str, mut params: Value) -> Value {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}
        });
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let req = http::Request::post("/mcp")
            .header("host", "localhost:3000")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .header("mcp-name", name)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = svc.call(req).await.unwrap_or_else(|e| match e {});
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn servers_on_one_redis_share_tasks_and_a_cancel_elsewhere_stops_the_handler() {
        let Some(r) = redis() else { return };
        let p = prefix();
        let stopped = Arc::new(AtomicBool::new(false));
        let a = server(backend(&r, &p).await, stopped.clone());
        let b = server(backend(&r, &p).await, Arc::new(AtomicBool::new(false)));
        let (sa, sb) = (a.service(), b.service());
        let created = post(&sa, "tools/call", "slow", json!({"name": "slow"})).await;
        let id = created["result"]["taskId"].as_str().unwrap().to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let done = loop {
            let got = post(&sb, "tasks/get", &id, json!({"taskId": id})).await;
            if got["result"]["status"] != "working" || std::time::Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(done["result"]["status"], "completed", "{done}");
        assert_eq!(done["result"]["result"]["content"][0]["text"], "done");

        let created = post(&sa, "tools/call", "forever", json!({"name": "forever"})).await;
        let id = created["result"]["taskId"].as_str().unwrap().to_owned();
        let cancelled = post(&sb, "tasks/cancel", &id, json!({"taskId": id})).await;
        assert!(cancelled.get("error").is_none(), "{cancelled}");
        // Well before the first lease renewal (10 s): the change signal carried it.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !stopped.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the handler on replica A saw no cancellation"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = post(&sa, "tasks/get", &id, json!({"taskId": id})).await;
        assert_eq!(got["result"]["status"], "cancelled", "{got}");
    }
}
