//! Tasks at run time: the task store (a trait, in memory by default), this replica's running tasks, the handler runner and its lease, and `tasks/*` requests.
//!
//! The core decides every rule (which calls become tasks, each transition, each answer); this
//! module stores what it decided and runs the handlers.
//!
//! * [`TaskStore`]: where task records live. Small, async (boxed futures), records passed by
//!   value, nothing borrowed across an `await`: a shared store (Redis) can implement it. Writes
//!   are compare-and-set on the record's `version`; [`TaskStore::changed`] lets a waiter sleep
//!   until a record moves on.
//! * The runner: a task's handler runs on the replica that created it, in a tokio task of its
//!   own. It renews the task's lease every third of the lease; if the replica dies, the lease
//!   lapses and the next reader (or the sweeper, on any replica) marks the task `failed`.
//! * Cancellation: `tasks/cancel` marks the task `cancelled` and fires the handler's
//!   cancellation signal (here at once; from another replica when the runner's change signal
//!   brings the cancelled record, at the latest at the next lease renewal). A handler that
//!   ignores the signal is dropped after a grace period.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch, Notify};

use super::call::{Call, Handler, Outcome};
use super::context::{CancelToken, ClientRequestError, RequestContext};
use super::session::BoxFut;
use super::Runtime;
use crate::auth::Principal;
use crate::core::mrtr::missing_capability;
use crate::core::tasks::{
    self, NewTask, TaskCall, TaskFact, TaskOp, TaskOwner, TaskPlan, TaskRecord, TaskStep, TaskWire,
};
use crate::core::{Facts, HandlerOutput, ProtocolError, Run};
use crate::log;
use crate::sources::{Clock, Now, RandomSource};
use crate::sse;
use crate::tool::ToolError;

/// Random bytes per task id: 192 bits, 32 base64url characters.
const TASK_ID_BYTES: usize = 24;
/// How long a waiter sleeps before it looks at a record again even without a change signal
/// (a shared store's signal may be lost).
const RECHECK: Duration = Duration::from_secs(5);
/// Compare-and-set retries before a write gives up (another writer keeps winning).
const CAS_TRIES: usize = 16;
/// Server-to-client messages an initialize-era task keeps for a `tasks/result` stream to come.
const QUEUED_MESSAGES: usize = 64;
/// Frames a `tasks/result` stream may hold for a slow client.
const STREAM_CHANNEL: usize = 32;

/// Why the task store refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskStoreError {
    /// The deployment holds as many tasks as it may.
    Full,
    /// This principal has as many unfinished tasks as it may.
    PrincipalFull,
    /// The store cannot be reached (a shared store; the in-memory one always answers).
    #[allow(dead_code)]
    Unavailable,
}

impl fmt::Display for TaskStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "the task cap is reached",
            Self::PrincipalFull => "this principal's task cap is reached",
            Self::Unavailable => "the task store is unavailable",
        })
    }
}

impl From<TaskStoreError> for ProtocolError {
    fn from(e: TaskStoreError) -> Self {
        match e {
            TaskStoreError::Full => Self::TooManyTasks,
            TaskStoreError::PrincipalFull => Self::PrincipalTaskCap,
            TaskStoreError::Unavailable => Self::TaskStoreUnavailable,
        }
    }
}

/// Where task records live: this process's memory by default, or a store shared by replicas.
///
/// Records go in and come out by value. `replace` is the only way to change one and succeeds
/// only over the version the writer read (compare-and-set), so concurrent writers (the runner,
/// `tasks/cancel`, `tasks/update`, on any replica) never lose each other's changes: the loser
/// reads again and lets the core decide again.
pub(crate) trait TaskStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new record, unless a cap is reached: [`TaskLimits::max_tasks`] records in all,
    /// or [`TaskLimits::max_per_principal`] unfinished ones of its owner.
    fn create(&self, record: TaskRecord) -> BoxFut<'_, Result<(), TaskStoreError>>;
    /// The record `id`, whoever owns it (the core checks); `None` when unknown or forgotten.
    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<TaskRecord>, TaskStoreError>>;
    /// Stores `record` if the stored one still has version `expected`; false when it moved on
    /// (or is gone).
    fn replace(
        &self,
        expected: u64,
        record: TaskRecord,
    ) -> BoxFut<'_, Result<bool, TaskStoreError>>;
    /// Up to `limit` of `owner`'s records in creation order, after the record `after`; `None`
    /// when `after` is not one of the owner's records.
    fn list<'a>(
        &'a self,
        owner: &'a TaskOwner,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFut<'a, Result<Option<Vec<TaskRecord>>, TaskStoreError>>;
    /// Completes once record `id` has a version other than `seen`, is gone, or `within` passed.
    fn changed<'a>(&'a self, id: &'a str, seen: u64, within: Duration) -> BoxFut<'a, ()>;
    /// Forgets records past their retention, and returns the unfinished ones whose lease
    /// lapsed (the caller fails them through the core).
    fn sweep(&self, now_ms: u64) -> BoxFut<'_, Result<Vec<TaskRecord>, TaskStoreError>>;
    /// Records held (best effort for a shared store).
    fn count(&self) -> usize;
}

/// Caps of a task store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskLimits {
    /// Records held, all principals and states together.
    pub(crate) max_tasks: usize,
    /// Unfinished (working or input_required) tasks of one principal.
    pub(crate) max_per_principal: usize,
}

struct Entry {
    record: TaskRecord,
    version: watch::Sender<u64>,
}

#[derive(Default)]
struct Tables {
    tasks: HashMap<String, Entry>,
    /// Each owner's task ids in creation order (`tasks/list`).
    by_owner: HashMap<TaskOwner, Vec<String>>,
    /// Each owner's unfinished tasks (the per-principal cap).
    unfinished: HashMap<TaskOwner, usize>,
}

impl Tables {
    fn remove(&mut self, id: &str) -> Option<TaskRecord> {
        let entry = self.tasks.remove(id)?;
        let owner = &entry.record.owner;
        if let Some(ids) = self.by_owner.get_mut(owner) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_owner.remove(owner);
            }
        }
        if !entry.record.status.is_terminal() {
            self.release(owner);
        }
        // Dropping the sender wakes every waiter on this record.
        Some(entry.record)
    }

    fn release(&mut self, owner: &TaskOwner) {
        if let Some(n) = self.unfinished.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.unfinished.remove(owner);
            }
        }
    }
}

/// The in-process store: one table under one lock (tasks are not on the hot path).
pub(crate) struct MemoryTasks {
    tables: Mutex<Tables>,
    limits: TaskLimits,
}

impl fmt::Debug for MemoryTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTasks")
            .field("count", &self.count())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl MemoryTasks {
    /// An empty store.
    pub(crate) fn new(limits: TaskLimits) -> Self {
        Self {
            tables: Mutex::new(Tables::default()),
            limits,
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().expect("task table poisoned")
    }
}

impl TaskStore for MemoryTasks {
    fn create(&self, record: TaskRecord) -> BoxFut<'_, Result<(), TaskStoreError>> {
        let result = (|| {
            let mut t = self.tables();
            if t.tasks.len() >= self.limits.max_tasks {
                return Err(TaskStoreError::Full);
            }
            let unfinished = !record.status.is_terminal();
            if unfinished {
                let n = t.unfinished.entry(record.owner.clone()).or_insert(0);
                if *n >= self.limits.max_per_principal {
                    return Err(TaskStoreError::PrincipalFull);
                }
                *n += 1;
            }
            t.by_owner
                .entry(record.owner.clone())
                .or_default()
                .push(record.id.clone());
            let (version, _) = watch::channel(record.version);
            t.tasks.insert(record.id.clone(), Entry { record, version });
            Ok(())
        })();
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<TaskRecord>, TaskStoreError>> {
        let found = self.tables().tasks.get(id).map(|e| e.record.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn replace(
        &self,
        expected: u64,
        record: TaskRecord,
    ) -> BoxFut<'_, Result<bool, TaskStoreError>> {
        let done = (|| {
            let mut t = self.tables();
            let Some(entry) = t.tasks.get_mut(&record.id) else {
                return false;
            };
            if entry.record.version != expected || record.version <= expected {
                return false;
            }
            let finishing = !entry.record.status.is_terminal() && record.status.is_terminal();
            let owner = record.owner.clone();
            let version = record.version;
            entry.record = record;
            entry.version.send_replace(version);
            if finishing {
                t.release(&owner);
            }
            true
        })();
        Box::pin(std::future::ready(Ok(done)))
    }

    fn list<'a>(
        &'a self,
        owner: &'a TaskOwner,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFut<'a, Result<Option<Vec<TaskRecord>>, TaskStoreError>> {
        let page = (|| {
            let t = self.tables();
            let ids = t.by_owner.get(owner).map(Vec::as_slice).unwrap_or(&[]);
            let start = match after {
                None => 0,
                Some(a) => ids.iter().position(|i| i == a)? + 1,
            };
            Some(
                ids[start..]
                    .iter()
                    .filter_map(|i| t.tasks.get(i).map(|e| e.record.clone()))
                    .take(limit)
                    .collect(),
            )
        })();
        Box::pin(std::future::ready(Ok(page)))
    }

    fn changed<'a>(&'a self, id: &'a str, seen: u64, within: Duration) -> BoxFut<'a, ()> {
        let rx = self.tables().tasks.get(id).map(|e| e.version.subscribe());
        Box::pin(async move {
            let Some(mut rx) = rx else { return };
            if *rx.borrow_and_update() != seen {
                return;
            }
            let _ = tokio::time::timeout(within, rx.changed()).await;
        })
    }

    fn sweep(&self, now_ms: u64) -> BoxFut<'_, Result<Vec<TaskRecord>, TaskStoreError>> {
        let lapsed = {
            let mut t = self.tables();
            let forgotten: Vec<String> = t
                .tasks
                .values()
                .filter(|e| e.record.is_forgotten(now_ms))
                .map(|e| e.record.id.clone())
                .collect();
            for id in &forgotten {
                t.remove(id);
            }
            t.tasks
                .values()
                .filter(|e| e.record.lease_lapsed(now_ms))
                .map(|e| e.record.clone())
                .collect()
        };
        Box::pin(std::future::ready(Ok(lapsed)))
    }

    fn count(&self) -> usize {
        self.tables().tasks.len()
    }
}

/// Timings of tasks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskConfig {
    /// How long a finished task is kept.
    pub(crate) retention: Duration,
    /// The suggested poll interval.
    pub(crate) poll_interval: Duration,
    /// The lease the running replica renews (every third of it).
    pub(crate) lease: Duration,
    /// 2026-07-28: how long a call that may become a task runs before it becomes one.
    pub(crate) immediate: Duration,
    /// How long a cancelled handler may take to return before it is dropped.
    pub(crate) cancel_grace: Duration,
}

/// What the runner, the links and the requests share.
pub(crate) struct TaskShared {
    pub(crate) store: Arc<dyn TaskStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: TaskConfig,
}

impl fmt::Debug for TaskShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskShared")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TaskShared {
    fn now_ms(&self) -> u64 {
        Now::read(&*self.clock).unix_ms()
    }

    /// Applies a core transition to the stored record, reading again when another writer won.
    async fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&TaskRecord, u64) -> Option<TaskRecord>,
    ) -> Update {
        for _ in 0..CAS_TRIES {
            let current = match self.store.get(id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Update::Gone,
                Err(e) => {
                    log::warn(format_args!("task store read failed: {e}"));
                    return Update::Failed;
                }
            };
            let Some(next) = change(&current, self.now_ms()) else {
                return Update::Refused;
            };
            match self.store.replace(current.version, next.clone()).await {
                Ok(true) => return Update::Done(Box::new(next)),
                Ok(false) => continue,
                Err(e) => {
                    log::warn(format_args!("task store write failed: {e}"));
                    return Update::Failed;
                }
            }
        }
        log::warn(format_args!(
            "task {id}: gave up after {CAS_TRIES} conflicting writes"
        ));
        Update::Failed
    }
}

/// What became of a transition.
#[derive(Debug)]
enum Update {
    /// Stored.
    Done(Box<TaskRecord>),
    /// The core refused it for the stored record (terminal, nothing to do).
    Refused,
    /// No such record.
    Gone,
    /// The store failed.
    Failed,
}

impl Update {
    fn done(self) -> Option<TaskRecord> {
        match self {
            Self::Done(r) => Some(*r),
            _ => None,
        }
    }
}

/// What this replica holds for a task it runs.
#[derive(Debug, Default)]
struct LiveTask {
    cancel: CancelToken,
    /// Set when the server stops: the task fails instead of being cancelled.
    stopping: AtomicBool,
    delivery: Delivery,
}

/// Initialize era: the task's server-to-client messages, on their way to a `tasks/result`
/// stream. Requests wait in the queue until a stream attaches; notifications that find no
/// stream are dropped.
#[derive(Debug, Default)]
struct Delivery {
    queue: Mutex<VecDeque<Bytes>>,
    listener: Mutex<Option<mpsc::Sender<Bytes>>>,
}

impl Delivery {
    fn push(&self, msg: Bytes) {
        let mut listener = self.listener.lock().expect("delivery lock");
        if let Some(tx) = listener.as_ref() {
            match tx.try_send(sse::event(None, &msg)) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => *listener = None,
                Err(mpsc::error::TrySendError::Full(_)) => {}
            }
        }
        drop(listener);
        let is_request = serde_json::from_slice::<Value>(&msg)
            .is_ok_and(|v| v.get("id").is_some() && v.get("method").is_some());
        if is_request {
            let mut q = self.queue.lock().expect("delivery lock");
            if q.len() >= QUEUED_MESSAGES {
                q.pop_front();
            }
            q.push_back(msg);
        }
    }

    /// A `tasks/result` stream attaches: it gets the queued requests first.
    fn attach(&self, tx: mpsc::Sender<Bytes>) {
        let queued: Vec<Bytes> = self
            .queue
            .lock()
            .expect("delivery lock")
            .drain(..)
            .collect();
        for m in queued {
            let _ = tx.try_send(sse::event(None, &m));
        }
        *self.listener.lock().expect("delivery lock") = Some(tx);
    }
}

/// This replica's running tasks.
#[derive(Debug, Default)]
struct LiveTasks {
    tasks: Mutex<HashMap<String, Arc<LiveTask>>>,
}

impl LiveTasks {
    fn insert(&self, id: &str, live: Arc<LiveTask>) {
        self.tasks
            .lock()
            .expect("live tasks poisoned")
            .insert(id.to_owned(), live);
    }

    fn find(&self, id: &str) -> Option<Arc<LiveTask>> {
        self.tasks
            .lock()
            .expect("live tasks poisoned")
            .get(id)
            .cloned()
    }

    fn remove(&self, id: &str) {
        self.tasks.lock().expect("live tasks poisoned").remove(id);
    }
}

/// Tasks as the runtime holds them.
#[derive(Debug)]
pub(crate) struct Tasks {
    shared: Arc<TaskShared>,
    live: LiveTasks,
}

impl Tasks {
    /// Tasks kept in `store`.
    pub(crate) fn new(shared: TaskShared) -> Self {
        Self {
            shared: Arc::new(shared),
            live: LiveTasks::default(),
        }
    }

    /// Records held.
    pub(crate) fn count(&self) -> usize {
        self.shared.store.count()
    }

    /// Tasks whose handler runs on this replica.
    pub(crate) fn running_here(&self) -> usize {
        self.live.tasks.lock().map_or(0, |t| t.len())
    }
}

/// A handler's link to its task: the context holds it, so the handler can ask, report status,
/// and (2026-07-28) turn its call into a task.
pub(crate) struct TaskLink {
    shared: Arc<TaskShared>,
    wire: TaskWire,
    /// The call may still become a task (2026-07-28, before it is one).
    may_become: bool,
    /// `None` while the call is not a task; `Some(None)` if it could not become one.
    id: watch::Sender<Option<Option<String>>>,
    /// The handler wants its call to become a task now.
    wanted: Notify,
    /// A status message set before the call became a task: the task starts with it.
    early_message: Mutex<Option<String>>,
}

impl fmt::Debug for TaskLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLink")
            .field("wire", &self.wire)
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl TaskLink {
    fn new(shared: Arc<TaskShared>, wire: TaskWire, may_become: bool) -> Self {
        Self {
            shared,
            wire,
            may_become,
            id: watch::channel(None).0,
            wanted: Notify::new(),
            early_message: Mutex::new(None),
        }
    }

    /// 2026-07-28 extension task (or call that may become one).
    pub(crate) fn is_modern(&self) -> bool {
        self.wire == TaskWire::Modern
    }

    /// The task id, once the call is a task.
    pub(crate) fn id(&self) -> Option<String> {
        self.id.borrow().clone().flatten()
    }

    fn became(&self, id: Option<String>) {
        self.id.send_replace(Some(id));
    }

    /// The task id, asking for the call to become a task first if it may.
    async fn task(&self) -> Option<String> {
        let mut rx = self.id.subscribe();
        if rx.borrow().is_none() {
            if !self.may_become {
                return None;
            }
            self.wanted.notify_one();
        }
        let decided = rx.wait_for(Option::is_some).await.ok()?;
        decided.clone().flatten()
    }

    /// `statusMessage`. Before the call is a task (but may become one) it is kept for the task.
    pub(crate) async fn set_status(&self, message: &str) -> bool {
        let Some(id) = self.id() else {
            if self.may_become && self.id.borrow().is_none() {
                *self.early_message.lock().expect("task link lock") = Some(message.to_owned());
                return true;
            }
            return false;
        };
        self.shared
            .update(&id, |r, now| tasks::set_message(r, message, now))
            .await
            .done()
            .is_some()
    }

    /// Initialize era: the handler waits for (or got) its server-to-client answers.
    pub(crate) async fn set_waiting(&self, waiting: bool) {
        if let Some(id) = self.id() {
            self.shared
                .update(&id, |r, now| tasks::set_waiting(r, waiting, now))
                .await;
        }
    }

    /// [`TaskLink::ask`] as an owned future (the runner's `input_required` rounds).
    fn ask_owned(
        self: Arc<Self>,
        cancel: CancelToken,
        client_capabilities: Arc<Value>,
        requests: Map<String, Value>,
    ) -> AskFuture {
        Box::pin(async move { self.ask(&cancel, &client_capabilities, requests).await })
    }

    /// 2026-07-28: puts `requests` on the task (`input_required`), then waits until
    /// `tasks/update` answered every one of them; answers come back by the handler's keys.
    pub(crate) async fn ask(
        &self,
        cancel: &CancelToken,
        client_capabilities: &Value,
        requests: Map<String, Value>,
    ) -> Result<Map<String, Value>, ClientRequestError> {
        for r in requests.values() {
            let method = r.get("method").and_then(Value::as_str).unwrap_or("");
            let params = r.get("params").unwrap_or(&Value::Null);
            if let Some((cap, _)) = missing_capability(client_capabilities, method, params) {
                return Err(ClientRequestError::CapabilityMissing(cap));
            }
        }
        let id = self.task().await.ok_or(ClientRequestError::Unsupported)?;
        let mut keys: Vec<(String, String)> = Vec::new();
        let asked = self
            .shared
            .update(&id, |r, now| {
                keys = tasks::wire_keys(r, requests.keys().map(String::as_str));
                let on_wire: Vec<(String, Value)> = keys
                    .iter()
                    .map(|(k, w)| (w.clone(), requests[k.as_str()].clone()))
                    .collect();
                tasks::ask(r, &on_wire, now)
            })
            .await;
        let Some(mut seen) = asked.done().map(|r| r.version) else {
            return Err(ClientRequestError::Cancelled);
        };
        let wire: Vec<String> = keys.iter().map(|(_, w)| w.clone()).collect();
        loop {
            if cancel.is_cancelled() {
                return Err(ClientRequestError::Cancelled);
            }
            let mut got = None;
            let taken = self
                .shared
                .update(&id, |r, now| {
                    seen = r.version;
                    let (next, answers) = tasks::take_answers(r, &wire, now)?;
                    got = Some(answers);
                    Some(next)
                })
                .await;
            if let (Some(_), Some(answers)) = (taken.done(), got) {
                let mut out = Map::new();
                for (key, w) in &keys {
                    if let Some(v) = answers.get(w) {
                        out.insert(key.clone(), v.clone());
                    }
                }
                return Ok(out);
            }
            match self.shared.store.get(&id).await {
                Ok(Some(r)) if !r.status.is_terminal() => {}
                _ => return Err(ClientRequestError::Cancelled),
            }
            tokio::select! {
                () = self.shared.store.changed(&id, seen, RECHECK) => {}
                () = cancel.cancelled() => return Err(ClientRequestError::Cancelled),
            }
        }
    }
}

type AskFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Map<String, Value>, ClientRequestError>> + Send>,
>;

fn random_id(rng: &dyn RandomSource) -> Option<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; TASK_ID_BYTES];
    rng.fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Runtime {
    fn new_task(&self, run: &Run, principal: &Principal, wire: TaskWire) -> Option<TaskRecord> {
        let shared = &self.tasks.shared;
        let config = shared.config;
        let id = random_id(&*self.rng)?;
        Some(TaskRecord::new(
            NewTask {
                id,
                owner: TaskOwner::of(principal),
                wire,
                tool: self.label(&run.target),
                retention_ms: config.retention.as_millis() as u64,
                poll_interval_ms: config.poll_interval.as_millis() as u64,
                lease_ms: config.lease.as_millis() as u64,
            },
            shared.now_ms(),
        ))
    }

    fn facts_now<'p>(&self, principal: &'p Principal) -> Facts<'p> {
        Facts {
            principal,
            now: self.tasks.shared.now_ms() / 1000,
        }
    }

    /// A `tools/call` whose plan allows a task.
    pub(crate) async fn call_task(self: &Arc<Self>, run: Box<Run>, call: Call) -> Outcome {
        match run.task {
            TaskPlan::Legacy => self.start_legacy(run, call).await,
            TaskPlan::Modern { required } => self.start_modern(run, call, required).await,
            TaskPlan::None => unreachable!("only calls planned as tasks get here"),
        }
    }

    /// 2025-11-25: the task exists before the handler starts, and the client gets it at once.
    async fn start_legacy(self: &Arc<Self>, mut run: Box<Run>, call: Call) -> Outcome {
        let fail = |e: ProtocolError, id| Outcome::Reply(e.reply(false, Some(id)));
        let Some(rec) = self.new_task(&run, &call.principal, TaskWire::Legacy) else {
            return fail(ProtocolError::Internal, &run.id);
        };
        if let Err(e) = self.tasks.shared.store.create(rec.clone()).await {
            return fail(e.into(), &run.id);
        }
        let link = Arc::new(TaskLink::new(
            self.tasks.shared.clone(),
            TaskWire::Legacy,
            false,
        ));
        link.became(Some(rec.id.clone()));
        let live = Arc::new(LiveTask::default());
        let (tx, mut rx) = mpsc::channel::<Bytes>(STREAM_CHANNEL);
        let mut ctx = RequestContext::new(
            call.principal.clone(),
            live.cancel.clone(),
            run.client_capabilities.clone(),
        )
        .with_outbox(Some(tx))
        .with_reporting(run.progress_token.take(), run.log_level)
        .with_task(link.clone());
        if let Some(s) = &call.session {
            let l = s.live(&self.live);
            ctx = ctx.with_session(l.client_requests().clone(), CancelToken::new());
        }
        let pump = live.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                pump.delivery.push(m);
            }
        });
        let handler = self.start(&run, ctx);
        let reply = self.core.task_created(&run, &rec);
        self.run_task(run, call, handler, link, live, rec.id);
        Outcome::Reply(reply)
    }

    /// 2026-07-28: the handler starts inline; the call becomes a task when it is not done
    /// within the immediate window, or asks the client for input. A `required` call that
    /// finished inline becomes a finished task, unless it ended in an `input_required` round.
    async fn start_modern(
        self: &Arc<Self>,
        mut run: Box<Run>,
        call: Call,
        required: bool,
    ) -> Outcome {
        let live = Arc::new(LiveTask::default());
        let link = Arc::new(TaskLink::new(
            self.tasks.shared.clone(),
            TaskWire::Modern,
            true,
        ));
        let ctx = RequestContext::new(
            call.principal.clone(),
            live.cancel.clone(),
            run.client_capabilities.clone(),
        )
        .with_round(run.input_responses.take(), run.request_state.take())
        .with_task(link.clone());
        let mut handler = self.start(&run, ctx);
        let window = tokio::time::sleep(self.tasks.shared.config.immediate);
        let finished = tokio::select! {
            biased;
            out = &mut handler => Some(self.output_of(&run, out)),
            () = link.wanted.notified() => None,
            () = window => None,
        };
        let fail = |e: ProtocolError, run: &Run| Outcome::Reply(e.reply(true, Some(&run.id)));
        if let Some(out) = finished {
            let input_round = matches!(out, HandlerOutput::Tool(Err(ToolError::InputRequired(_))));
            let reply = self.core.finish(&run, out, self.facts_now(&call.principal));
            // A refusal of the request itself (HTTP 400: a capability the client lacks) is no
            // task's outcome: it is answered as it is.
            if !required || input_round || reply.status != http::StatusCode::OK {
                return Outcome::Reply(reply);
            }
            let Some(rec) = self.new_task(&run, &call.principal, TaskWire::Modern) else {
                return fail(ProtocolError::Internal, &run);
            };
            let now = self.tasks.shared.now_ms();
            let done = tasks::finish(&rec, tasks::outcome_of(&reply), now).unwrap_or(rec);
            return match self.tasks.shared.store.create(done.clone()).await {
                Ok(()) => Outcome::Reply(self.core.task_created(&run, &done)),
                Err(e) => fail(e.into(), &run),
            };
        }
        let Some(mut rec) = self.new_task(&run, &call.principal, TaskWire::Modern) else {
            live.cancel.cancel();
            link.became(None);
            return fail(ProtocolError::Internal, &run);
        };
        rec.status_message = link.early_message.lock().expect("task link lock").take();
        if let Err(e) = self.tasks.shared.store.create(rec.clone()).await {
            // The call cannot become a task: it is given up (its context sees the cancellation).
            live.cancel.cancel();
            link.became(None);
            return fail(e.into(), &run);
        }
        // Stored before the client hears of it: an immediate tasks/get finds it (SEP-2663).
        link.became(Some(rec.id.clone()));
        let reply = self.core.task_created(&run, &rec);
        self.run_task(run, call, handler, link, live, rec.id);
        Outcome::Reply(reply)
    }

    fn output_of(&self, run: &Run, out: Result<HandlerOutput, ()>) -> HandlerOutput {
        out.unwrap_or_else(|()| {
            log::error(format_args!(
                "handler for {} {} panicked; answered -32603",
                run.method(),
                self.label(&run.target)
            ));
            HandlerOutput::Panicked
        })
    }

    /// Runs the handler of task `id` on a tokio task of its own.
    fn run_task(
        self: &Arc<Self>,
        run: Box<Run>,
        call: Call,
        handler: Handler,
        link: Arc<TaskLink>,
        live: Arc<LiveTask>,
        id: String,
    ) {
        self.tasks.live.insert(&id, live.clone());
        let rt = self.clone();
        tokio::spawn(async move {
            rt.drive(run, call, handler, link, &live, &id).await;
            rt.tasks.live.remove(&id);
        });
    }

    async fn drive(
        &self,
        run: Box<Run>,
        call: Call,
        mut handler: Handler,
        link: Arc<TaskLink>,
        live: &LiveTask,
        id: &str,
    ) {
        let shared = &self.tasks.shared;
        let config = shared.config;
        let every = (config.lease / 3).max(Duration::from_millis(10));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        // An input_required round inside a task: its requests go on the task, and the handler
        // runs again with the answers and its state, as a retry would.
        let mut asking: Option<(AskFuture, Option<String>)> = None;
        // The version this runner last saw: a newer one written elsewhere (`tasks/cancel` on
        // another replica, a lapsed lease failed by a reader) is noticed through the store's
        // change signal, not only at the next renewal.
        let mut known = shared.store.get(id).await.ok().flatten().map(|r| r.version);
        let reply = loop {
            let (is_asking, in_grace) = (asking.is_some(), grace.is_some());
            let moved_on = async {
                match known {
                    Some(v) if !in_grace => shared.store.changed(id, v, config.lease).await,
                    _ => std::future::pending().await,
                }
            };
            let grace_over = async {
                match grace.as_mut() {
                    Some(g) => g.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let answered = async {
                match asking.as_mut() {
                    Some((f, _)) => f.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                out = &mut handler, if !is_asking => {
                    let out = self.output_of(&run, out);
                    match out {
                        HandlerOutput::Tool(Err(ToolError::InputRequired(ir))) if link.is_modern() => {
                            let f = link.clone().ask_owned(
                                live.cancel.clone(),
                                run.client_capabilities.clone(),
                                ir.input_requests,
                            );
                            asking = Some((f, ir.request_state));
                        }
                        out => break Some(self.core.finish(&run, out, self.facts_now(&call.principal))),
                    }
                }
                answers = answered => {
                    let state = asking.take().and_then(|(_, s)| s);
                    match answers {
                        Ok(a) => {
                            let ctx = RequestContext::new(
                                call.principal.clone(),
                                live.cancel.clone(),
                                run.client_capabilities.clone(),
                            )
                            .with_round(Some(a), state)
                            .with_task(link.clone());
                            handler = self.start(&run, ctx);
                        }
                        Err(ClientRequestError::Cancelled) => break None,
                        Err(e) => {
                            let msg = format!("the task could not get the client's input: {e}");
                            shared.update(id, |r, now| tasks::abandon(r, &msg, now)).await;
                            break None;
                        }
                    }
                }
                () = moved_on => {
                    match shared.store.get(id).await {
                        Ok(Some(r)) if !r.status.is_terminal() => known = Some(r.version),
                        // Finished elsewhere or gone: the handler has nothing left to do.
                        Ok(_) => {
                            known = None;
                            live.cancel.cancel();
                        }
                        Err(_) => {}
                    }
                }
                _ = renew.tick() => {
                    let until = shared.now_ms() + config.lease.as_millis() as u64;
                    match shared.update(id, |r, _| tasks::renew(r, until)).await {
                        // Finished elsewhere (cancelled through another replica, or failed by a
                        // lapsed lease), or gone: the handler has nothing left to do.
                        Update::Refused | Update::Gone => live.cancel.cancel(),
                        Update::Done(_) | Update::Failed => {}
                    }
                }
                () = live.cancel.cancelled(), if !in_grace => {
                    grace = Some(Box::pin(tokio::time::sleep(config.cancel_grace)));
                }
                () = grace_over => {
                    log::warn(format_args!(
                        "a task of {}: the handler ignored its cancellation for {:?}; dropped",
                        self.label(&run.target),
                        config.cancel_grace
                    ));
                    break None;
                }
            }
        };
        // A cancelled handler's result has nowhere to go: the task is already cancelled, and
        // the core refuses to change a terminal status.
        if live.stopping.load(Ordering::Acquire) {
            let why = "the server stopped before the task finished";
            shared
                .update(id, |r, now| tasks::abandon(r, why, now))
                .await;
        } else if let Some(reply) = reply {
            let outcome = tasks::outcome_of(&reply);
            shared
                .update(id, |r, now| tasks::finish(r, outcome.clone(), now))
                .await;
        }
    }

    /// A `tasks/*` request.
    pub(crate) async fn task_request(
        self: &Arc<Self>,
        call: TaskCall,
        principal: Arc<Principal>,
        accepts_sse: bool,
    ) -> Outcome {
        let shared = &self.tasks.shared;
        if let TaskOp::List(cursor) = &call.op {
            let owner = TaskOwner::of(&principal);
            let page = shared
                .store
                .list(&owner, cursor.as_deref(), tasks::LIST_PAGE + 1)
                .await;
            let reply = match page {
                Ok(Some(records)) => {
                    self.core
                        .task_list(&call, records, &principal, shared.now_ms())
                }
                Ok(None) => ProtocolError::InvalidParams(
                    "cursor is not one this server issued".into(),
                    None,
                )
                .reply(false, Some(&call.id)),
                Err(e) => ProtocolError::from(e).reply(false, Some(&call.id)),
            };
            return Outcome::Reply(reply);
        }
        let mut tries = 0;
        loop {
            let (fact, seen) = self.task_fact(&call.task_id).await;
            match self
                .core
                .task_step(&call, fact, &principal, shared.now_ms())
            {
                TaskStep::Reply(r) => return Outcome::Reply(r),
                TaskStep::Write {
                    expected,
                    record,
                    reply,
                    cancel,
                } => match shared.store.replace(expected, *record).await {
                    Ok(true) => {
                        if cancel {
                            if let Some(live) = self.tasks.live.find(&call.task_id) {
                                live.cancel.cancel();
                            }
                        }
                        return Outcome::Reply(reply);
                    }
                    Ok(false) if tries < CAS_TRIES => tries += 1,
                    Ok(false) | Err(_) => {
                        let e = ProtocolError::TaskStoreUnavailable;
                        return Outcome::Reply(e.reply(call.version.is_modern(), Some(&call.id)));
                    }
                },
                TaskStep::Wait => {
                    // 2025-11-25 tasks/result blocks until the task ends; over SSE, the task's
                    // requests for the client travel on this response first.
                    if accepts_sse {
                        if let Some(live) = self.tasks.live.find(&call.task_id) {
                            return Outcome::Stream(self.result_stream(call, principal, live));
                        }
                    }
                    shared.store.changed(&call.task_id, seen, RECHECK).await;
                }
            }
        }
    }

    async fn task_fact(&self, id: &str) -> (TaskFact, u64) {
        match self.tasks.shared.store.get(id).await {
            Ok(Some(r)) => {
                let v = r.version;
                (TaskFact::Found(Box::new(r)), v)
            }
            Ok(None) => (TaskFact::Missing, 0),
            Err(e) => {
                log::warn(format_args!("task lookup failed: {e}"));
                (TaskFact::Unavailable, 0)
            }
        }
    }

    /// The SSE answer of a blocking `tasks/result`: queued requests, then keep-alives until the
    /// task ends, then its result.
    fn result_stream(
        self: &Arc<Self>,
        call: TaskCall,
        principal: Arc<Principal>,
        live: Arc<LiveTask>,
    ) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel::<Bytes>(STREAM_CHANNEL);
        live.delivery.attach(tx.clone());
        let rt = self.clone();
        tokio::spawn(async move {
            let keepalive = rt.config.sse_keepalive;
            loop {
                let (fact, seen) = rt.task_fact(&call.task_id).await;
                let now = rt.tasks.shared.now_ms();
                let reply = match rt.core.task_step(&call, fact, &principal, now) {
                    TaskStep::Reply(r) => r,
                    TaskStep::Write {
                        expected, record, ..
                    } => {
                        let _ = rt.tasks.shared.store.replace(expected, *record).await;
                        continue;
                    }
                    TaskStep::Wait => {
                        tokio::select! {
                            () = rt.tasks.shared.store.changed(&call.task_id, seen, keepalive) => {}
                            () = tx.closed() => return,
                        }
                        if tx.try_send(Bytes::from_static(sse::KEEPALIVE)).is_err()
                            && tx.is_closed()
                        {
                            return;
                        }
                        continue;
                    }
                };
                let _ = tx.send(sse::event(None, &reply.body)).await;
                return;
            }
        });
        rx
    }

    /// Expires finished tasks past their retention and fails unfinished ones whose lease lapsed.
    pub(crate) async fn sweep_tasks(&self) -> usize {
        let shared = &self.tasks.shared;
        match shared.store.sweep(shared.now_ms()).await {
            Ok(lapsed) => {
                for r in &lapsed {
                    shared.update(&r.id, tasks::observe).await;
                }
                lapsed.len()
            }
            Err(e) => {
                log::warn(format_args!("task sweep failed: {e}"));
                0
            }
        }
    }

    /// Shutdown: every task this replica runs is cancelled and recorded as failed.
    pub(crate) fn stop_tasks(&self) {
        for live in self
            .tasks
            .live
            .tasks
            .lock()
            .expect("live tasks poisoned")
            .values()
        {
            live.stopping.store(true, Ordering::Release);
            live.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tasks::{NewTask, TaskOutcome};
    use crate::{CallToolResult, McpService, ServerBuilder, TaskSupport, Tool};
    use http_body_util::{BodyExt, Full};
    use hyper::service::Service as _;
    use serde_json::json;

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

    fn store(max: usize, per: usize) -> MemoryTasks {
        MemoryTasks::new(TaskLimits {
            max_tasks: max,
            max_per_principal: per,
        })
    }

    #[tokio::test]
    async fn caps_count_unfinished_tasks_per_principal_and_all_records() {
        let s = store(3, 1);
        s.create(record("a", "alice", 0)).await.unwrap();
        assert_eq!(
            s.create(record("b", "alice", 0)).await,
            Err(TaskStoreError::PrincipalFull)
        );
        // Finishing releases the principal's slot; the record still counts globally.
        let a = s.get("a").await.unwrap().unwrap();
        let done = tasks::finish(&a, TaskOutcome::Result(json!({})), 10).unwrap();
        assert!(s.replace(a.version, done).await.unwrap());
        s.create(record("b", "alice", 10)).await.unwrap();
        s.create(record("c", "bob", 10)).await.unwrap();
        assert_eq!(
            s.create(record("d", "carol", 10)).await,
            Err(TaskStoreError::Full)
        );
        assert_eq!(s.count(), 3);
    }

    #[tokio::test]
    async fn replace_is_compare_and_set_on_the_version() {
        let s = store(10, 10);
        s.create(record("a", "alice", 0)).await.unwrap();
        let r = s.get("a").await.unwrap().unwrap();
        let first = tasks::set_message(&r, "one", 1).unwrap();
        let second = tasks::set_message(&r, "two", 1).unwrap();
        assert!(s.replace(r.version, first).await.unwrap());
        assert!(
            !s.replace(r.version, second).await.unwrap(),
            "a writer that read an old version loses"
        );
        let now = s.get("a").await.unwrap().unwrap();
        assert_eq!(now.status_message.as_deref(), Some("one"));
        assert!(!s.replace(1, record("nope", "x", 0)).await.unwrap());
    }

    #[tokio::test]
    async fn changed_wakes_on_a_new_version_and_times_out_otherwise() {
        let s = Arc::new(store(10, 10));
        s.create(record("a", "alice", 0)).await.unwrap();
        let r = s.get("a").await.unwrap().unwrap();
        let started = std::time::Instant::now();
        s.changed("a", r.version, Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        // An already newer version returns at once; a missing record too.
        s.changed("a", r.version + 7, Duration::from_secs(10)).await;
        s.changed("gone", 1, Duration::from_secs(10)).await;
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.changed("a", 1, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let next = tasks::set_message(&r, "m", 1).unwrap();
        assert!(s.replace(r.version, next).await.unwrap());
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("the waiter woke")
            .unwrap();
    }

    #[tokio::test]
    async fn sweep_forgets_expired_records_and_reports_lapsed_leases() {
        let s = store(10, 10);
        s.create(record("run", "alice", 0)).await.unwrap();
        s.create(record("done", "alice", 0)).await.unwrap();
        let d = s.get("done").await.unwrap().unwrap();
        let fin = tasks::finish(&d, TaskOutcome::Result(json!({})), 100).unwrap();
        assert!(s.replace(d.version, fin).await.unwrap());
        assert!(
            s.sweep(400).await.unwrap().is_empty(),
            "lease and retention hold"
        );
        let lapsed = s.sweep(1_099).await.unwrap();
        assert_eq!(
            lapsed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["run"]
        );
        assert!(s.get("done").await.unwrap().is_some());
        s.sweep(1_100).await.unwrap();
        assert!(
            s.get("done").await.unwrap().is_none(),
            "forgotten after retention"
        );
        assert_eq!(s.count(), 1);
    }

    #[tokio::test]
    async fn list_pages_an_owners_tasks_in_creation_order() {
        let s = store(10, 10);
        for id in ["a", "b", "c"] {
            s.create(record(id, "alice", 0)).await.unwrap();
        }
        s.create(record("z", "bob", 0)).await.unwrap();
        let ids = |v: Vec<TaskRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let alice = owner("alice");
        assert_eq!(
            ids(s.list(&alice, None, 2).await.unwrap().unwrap()),
            ["a", "b"]
        );
        assert_eq!(
            ids(s.list(&alice, Some("b"), 2).await.unwrap().unwrap()),
            ["c"]
        );
        assert!(
            s.list(&alice, Some("z"), 2).await.unwrap().is_none(),
            "bob's id is no cursor for alice"
        );
    }

    // ----- the runner's lease, across two servers sharing one store ----------------------

    const URL: &str = "http://localhost:3000/mcp";

    fn replica(store: Arc<dyn TaskStore>, lease: Duration) -> crate::Server {
        ServerBuilder::new("t", "1", URL)
            .dangerously_disable_auth()
            .tool(
                Tool::new(
                    "forever",
                    "Runs until cancelled",
                    |ctx: RequestContext| async move {
                        ctx.cancellation().cancelled().await;
                        Ok(CallToolResult::text("stopped"))
                    },
                )
                .task_support(TaskSupport::Optional),
            )
            .tool(
                Tool::new("slow", "Takes 700 ms", |_ctx: RequestContext| async move {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    Ok(CallToolResult::text("done"))
                })
                .task_support(TaskSupport::Optional),
            )
            .task_lease(lease)
            .task_store(store)
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

    async fn status_until(svc: &McpService, id: &str, want: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = post(svc, "tasks/get", id, json!({"taskId": id})).await;
            if got["result"]["status"] == want || std::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn shared_store() -> Arc<dyn TaskStore> {
        Arc::new(store(100, 100))
    }

    #[test]
    fn a_task_whose_replica_died_fails_once_its_lease_lapses() {
        let store = shared_store();
        let lease = Duration::from_millis(300);
        let a = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let id = a.block_on(async {
            let server = replica(store.clone(), lease);
            let created = post(
                &server.service(),
                "tools/call",
                "forever",
                json!({"name": "forever"}),
            )
            .await;
            assert_eq!(created["result"]["resultType"], "task", "{created}");
            created["result"]["taskId"].as_str().unwrap().to_owned()
        });
        // Replica A dies: its runtime stops, and with it the runner that renewed the lease.
        a.shutdown_timeout(Duration::from_millis(100));
        let b = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        b.block_on(async {
            let server = replica(store, lease);
            let svc = server.service();
            let failed = status_until(&svc, &id, "failed").await;
            let r = &failed["result"];
            assert_eq!(r["status"], "failed", "{failed}");
            assert!(
                r["statusMessage"]
                    .as_str()
                    .unwrap()
                    .contains("lease expired"),
                "{failed}"
            );
            assert_eq!(r["error"]["code"], -32603);
            // The failure is stored: it stays failed.
            let again = post(&svc, "tasks/get", &id, json!({"taskId": id})).await;
            assert_eq!(again["result"]["status"], "failed");
        });
    }

    #[tokio::test]
    async fn the_running_replica_renews_the_lease_of_a_long_task() {
        let server = replica(shared_store(), Duration::from_millis(150));
        let svc = server.service();
        let created = post(&svc, "tools/call", "slow", json!({"name": "slow"})).await;
        let id = created["result"]["taskId"].as_str().unwrap().to_owned();
        // Well past three leases, the task still runs: its lease was renewed.
        tokio::time::sleep(Duration::from_millis(450)).await;
        let mid = post(&svc, "tasks/get", &id, json!({"taskId": id})).await;
        assert_eq!(mid["result"]["status"], "working", "{mid}");
        let done = status_until(&svc, &id, "completed").await;
        assert_eq!(
            done["result"]["result"]["content"][0]["text"], "done",
            "{done}"
        );
        assert_eq!(server.task_count(), 1);
    }

    #[tokio::test]
    async fn shutdown_fails_the_tasks_this_replica_runs() {
        let server = replica(shared_store(), Duration::from_secs(30));
        let svc = server.service();
        let created = post(&svc, "tools/call", "forever", json!({"name": "forever"})).await;
        let id = created["result"]["taskId"].as_str().unwrap().to_owned();
        server.close_all();
        let failed = status_until(&svc, &id, "failed").await;
        assert!(
            failed["result"]["statusMessage"]
                .as_str()
                .unwrap()
                .contains("server stopped"),
            "{failed}"
        );
    }
}
