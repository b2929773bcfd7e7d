//! Tasks, in both eras: which calls become tasks, the task state machine, and every `tasks/*` answer; pure.
//!
//! Two wires share one engine:
//!
//! * 2025-11-25 experimental tasks (SEP-1686): the client asks with `params.task`, the server
//!   answers `{"task": Task}` at once; `tasks/get`, `tasks/result` (blocks until terminal),
//!   `tasks/list`, `tasks/cancel` (refuses terminal tasks). A tool result with `isError` makes the
//!   task `failed`.
//! * the `io.modelcontextprotocol/tasks` extension at 2026-07-28 (SEP-2663): the client declares
//!   the extension per request and the *server* decides; a `CreateTaskResult` is the flat
//!   `resultType: "task"` object; `tasks/get` inlines the result or error; `tasks/update` carries
//!   `inputResponses`; `tasks/cancel` is an idempotent ack; `tasks/result` and `tasks/list` are
//!   gone (-32601). A tool result with `isError` is `completed`.
//!
//! A task belongs to its (iss, sub): any other principal gets the unknown-id answer. A record is
//! kept for its retention time after it reaches a terminal status, then forgotten. The replica
//! running a task renews a lease; a lapsed lease turns the task `failed`. Every decision here
//! takes `now_ms` as a parameter and returns the new record; the runtime stores it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::dispatch::Served;
use super::error::ProtocolError;
use super::message::{self, ErrorCode, ErrorObject, Id};
use super::version::Version;
use super::{Core, Decision, Reply};
use crate::auth::Principal;

/// The extension's identifier (`capabilities.extensions` key, SEP-2663).
pub(crate) const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// `_meta` key tying a 2025-11-25 message to its task.
pub(crate) const META_RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// Whether a tool may run as a task (`execution.taskSupport` in its `tools/list` entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TaskSupport {
    /// Never a task (the default).
    #[default]
    Forbidden,
    /// The call may become a task: the server decides at 2026-07-28, the client asks in 2025-11-25.
    Optional,
    /// Always a task (unless the call ends in an `input_required` round first); a client that
    /// cannot take a task is refused (-32021 at 2026-07-28, -32601 before).
    Required,
}

impl TaskSupport {
    /// The `execution.taskSupport` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// A task's status (the same five in both eras).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskStatus {
    /// Running.
    Working,
    /// Waiting for the client's answers.
    InputRequired,
    /// Finished with a result.
    Completed,
    /// Finished with a JSON-RPC error (2025-11-25: also a tool result with `isError`).
    Failed,
    /// Cancelled by the client.
    Cancelled,
}

impl TaskStatus {
    /// The wire value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled: nothing changes any more.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// Which wire a task was created on; it is visible and answered only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskWire {
    /// 2025-11-25 experimental tasks.
    Legacy,
    /// The 2026-07-28 extension.
    Modern,
}

/// Who owns a task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct TaskOwner {
    /// Token issuer.
    pub(crate) issuer: String,
    /// Token subject ("" when the token had none).
    pub(crate) subject: String,
}

impl TaskOwner {
    /// The owner a principal's tasks are bound to.
    pub(crate) fn of(p: &Principal) -> Self {
        Self {
            issuer: p.issuer.clone(),
            subject: p.subject.clone().unwrap_or_default(),
        }
    }

    fn is(&self, p: &Principal) -> bool {
        self.issuer == p.issuer && self.subject == p.subject.as_deref().unwrap_or("")
    }
}

/// How a finished task ended: the underlying request's result object or its JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskOutcome {
    /// The result, exactly as the request would have answered it.
    Result(Value),
    /// The error object (`code`, `message`, `data`).
    Error(Value),
}

/// One task as the store holds it. Plain data (serializable), so a shared store can keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    /// The task id (CSPRNG, 192 bits, base64url).
    pub(crate) id: String,
    /// The principal it belongs to.
    pub(crate) owner: TaskOwner,
    /// The wire that created it.
    pub(crate) wire: TaskWire,
    /// The tool it runs (for logs).
    pub(crate) tool: String,
    /// Current status.
    pub(crate) status: TaskStatus,
    /// `statusMessage`.
    pub(crate) status_message: Option<String>,
    /// Unix ms of creation.
    pub(crate) created_ms: u64,
    /// Unix ms of the last status or message change.
    pub(crate) updated_ms: u64,
    /// Unix ms it reached a terminal status.
    pub(crate) terminal_ms: Option<u64>,
    /// How long it is kept after that.
    pub(crate) retention_ms: u64,
    /// `pollInterval` / `pollIntervalMs`.
    pub(crate) poll_interval_ms: u64,
    /// Unfinished tasks fail once this passes without a renewal from the replica running them.
    pub(crate) lease_until_ms: u64,
    /// Outstanding requests for the client (2026-07-28 `inputRequests`), by wire key.
    pub(crate) input_requests: Map<String, Value>,
    /// Answers delivered by `tasks/update` that the handler has not taken yet, by wire key.
    pub(crate) input_responses: Map<String, Value>,
    /// Every wire key ever issued: a key is never reused within a task (SEP-2663).
    pub(crate) used_keys: Vec<String>,
    /// The result or error, once terminal (`None` for a cancelled 2026-07-28 task).
    pub(crate) outcome: Option<TaskOutcome>,
    /// Bumped by every change; stores replace a record only over the version they were given.
    pub(crate) version: u64,
}

/// What the runtime creates a task with.
#[derive(Debug, Clone)]
pub(crate) struct NewTask {
    /// The fresh id.
    pub(crate) id: String,
    /// Its owner.
    pub(crate) owner: TaskOwner,
    /// Its wire.
    pub(crate) wire: TaskWire,
    /// The tool.
    pub(crate) tool: String,
    /// Retention after the terminal status.
    pub(crate) retention_ms: u64,
    /// Suggested poll interval.
    pub(crate) poll_interval_ms: u64,
    /// Lease length.
    pub(crate) lease_ms: u64,
}

impl TaskRecord {
    /// A new `working` task.
    pub(crate) fn new(t: NewTask, now_ms: u64) -> Self {
        Self {
            id: t.id,
            owner: t.owner,
            wire: t.wire,
            tool: t.tool,
            status: TaskStatus::Working,
            status_message: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            terminal_ms: None,
            retention_ms: t.retention_ms,
            poll_interval_ms: t.poll_interval_ms.max(1),
            lease_until_ms: now_ms.saturating_add(t.lease_ms),
            input_requests: Map::new(),
            input_responses: Map::new(),
            used_keys: Vec::new(),
            outcome: None,
            version: 1,
        }
    }

    /// When the record may be forgotten.
    pub(crate) fn forget_at(&self) -> Option<u64> {
        self.terminal_ms
            .map(|t| t.saturating_add(self.retention_ms))
    }

    /// Past its retention: answered as unknown and removed.
    pub(crate) fn is_forgotten(&self, now_ms: u64) -> bool {
        self.forget_at().is_some_and(|at| now_ms >= at)
    }

    /// Unfinished, and the replica running it stopped renewing its lease.
    pub(crate) fn lease_lapsed(&self, now_ms: u64) -> bool {
        !self.status.is_terminal() && now_ms > self.lease_until_ms
    }

    /// `ttl` / `ttlMs`: from creation until it may be forgotten; `null` (unlimited) while it runs,
    /// since a running task is kept for as long as it runs.
    fn ttl_ms(&self) -> Option<u64> {
        self.forget_at()
            .map(|at| at.saturating_sub(self.created_ms))
    }

    fn bumped(&self) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next
    }
}

/// The record after `now` is taken into account: a lapsed lease makes the task `failed`.
/// `None` when nothing changes.
pub(crate) fn observe(rec: &TaskRecord, now_ms: u64) -> Option<TaskRecord> {
    if !rec.lease_lapsed(now_ms) {
        return None;
    }
    let message = "the server running this task stopped before it finished (its lease expired)";
    Some(finished(
        rec,
        TaskStatus::Failed,
        Some(TaskOutcome::Error(error_value(
            ErrorCode::INTERNAL_ERROR,
            message,
        ))),
        Some(message.to_owned()),
        now_ms,
    ))
}

fn error_value(code: ErrorCode, message: &str) -> Value {
    json!({"code": code.0, "message": message})
}

fn finished(
    rec: &TaskRecord,
    status: TaskStatus,
    outcome: Option<TaskOutcome>,
    message: Option<String>,
    now_ms: u64,
) -> TaskRecord {
    let mut next = rec.bumped();
    next.status = status;
    next.outcome = outcome;
    if message.is_some() {
        next.status_message = message;
    }
    next.updated_ms = now_ms;
    next.terminal_ms = Some(now_ms);
    next.input_requests.clear();
    next.input_responses.clear();
    next
}

/// The task ends with the handler's outcome; `None` when it already ended (cancelled, or failed
/// by a lapsed lease): a terminal status never changes.
pub(crate) fn finish(rec: &TaskRecord, outcome: TaskOutcome, now_ms: u64) -> Option<TaskRecord> {
    if rec.status.is_terminal() {
        return None;
    }
    let (status, message) = match &outcome {
        TaskOutcome::Error(e) => (
            TaskStatus::Failed,
            e.get("message").and_then(Value::as_str).map(str::to_owned),
        ),
        // 2025-11-25: a tool result with isError fails the task; SEP-2663 keeps it `completed`.
        TaskOutcome::Result(r)
            if rec.wire == TaskWire::Legacy && r.get("isError") == Some(&Value::Bool(true)) =>
        {
            let text = r
                .pointer("/content/0/text")
                .and_then(Value::as_str)
                .map(|t| format!("Tool execution failed: {t}"));
            (TaskStatus::Failed, text)
        }
        TaskOutcome::Result(_) => (TaskStatus::Completed, None),
    };
    Some(finished(rec, status, Some(outcome), message, now_ms))
}

/// The handler could not finish: the server is stopping (or lost it). `None` if already terminal.
pub(crate) fn abandon(rec: &TaskRecord, why: &str, now_ms: u64) -> Option<TaskRecord> {
    if rec.status.is_terminal() {
        return None;
    }
    Some(finished(
        rec,
        TaskStatus::Failed,
        Some(TaskOutcome::Error(error_value(
            ErrorCode::INTERNAL_ERROR,
            why,
        ))),
        Some(why.to_owned()),
        now_ms,
    ))
}

/// `tasks/cancel`: the task is `cancelled` now (both eras allow it at once); `None` if terminal.
fn cancel(rec: &TaskRecord, now_ms: u64) -> Option<TaskRecord> {
    if rec.status.is_terminal() {
        return None;
    }
    // 2025-11-25 tasks/result answers a cancelled task with this error; 2026-07-28 inlines nothing.
    let outcome = (rec.wire == TaskWire::Legacy).then(|| {
        TaskOutcome::Error(error_value(
            ErrorCode::INVALID_PARAMS,
            "The task was cancelled; it has no result",
        ))
    });
    Some(finished(
        rec,
        TaskStatus::Cancelled,
        outcome,
        Some("The task was cancelled by request.".to_owned()),
        now_ms,
    ))
}

/// The lease is renewed until `until_ms`; `None` if terminal (nothing left to hold).
pub(crate) fn renew(rec: &TaskRecord, until_ms: u64) -> Option<TaskRecord> {
    if rec.status.is_terminal() {
        return None;
    }
    let mut next = rec.bumped();
    next.lease_until_ms = next.lease_until_ms.max(until_ms);
    Some(next)
}

/// The handler's status message; `None` if terminal.
pub(crate) fn set_message(rec: &TaskRecord, message: &str, now_ms: u64) -> Option<TaskRecord> {
    if rec.status.is_terminal() {
        return None;
    }
    let mut next = rec.bumped();
    next.status_message = Some(message.to_owned());
    next.updated_ms = now_ms;
    Some(next)
}

/// Wire keys for a round of requests: the handler's own key, unless this task already used it,
/// then `key-2`, `key-3`, ... (keys are never reused within a task, SEP-2663).
pub(crate) fn wire_keys<'k>(
    rec: &TaskRecord,
    keys: impl Iterator<Item = &'k str>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for key in keys {
        let taken =
            |w: &str| rec.used_keys.iter().any(|u| u == w) || out.iter().any(|(_, o)| o == w);
        let mut wire = key.to_owned();
        let mut n = 1;
        while taken(&wire) {
            n += 1;
            wire = format!("{key}-{n}");
        }
        out.push((key.to_owned(), wire));
    }
    out
}

/// The handler asks: these requests (by wire key) are outstanding, and the task is
/// `input_required`. `None` if terminal.
pub(crate) fn ask(
    rec: &TaskRecord,
    requests: &[(String, Value)],
    now_ms: u64,
) -> Option<TaskRecord> {
    if rec.status.is_terminal() {
        return None;
    }
    let mut next = rec.bumped();
    for (key, request) in requests {
        next.input_requests.insert(key.clone(), request.clone());
        next.used_keys.push(key.clone());
    }
    next.status = TaskStatus::InputRequired;
    next.updated_ms = now_ms;
    Some(next)
}

/// `tasks/update`: answers to outstanding keys are accepted; others (never issued, answered
/// already) are ignored. `None` when nothing was accepted.
fn answer(rec: &TaskRecord, responses: &Map<String, Value>, now_ms: u64) -> Option<TaskRecord> {
    if rec.status.is_terminal() || !responses.keys().any(|k| rec.input_requests.contains_key(k)) {
        return None;
    }
    let mut next = rec.bumped();
    for (key, response) in responses {
        if next.input_requests.remove(key).is_some() {
            next.input_responses.insert(key.clone(), response.clone());
        }
    }
    next.updated_ms = now_ms;
    Some(next)
}

/// The handler takes the answers to `keys` once all of them arrived; the task is `working`
/// again when nothing else is outstanding. `None` while some are missing (or if terminal).
pub(crate) fn take_answers(
    rec: &TaskRecord,
    keys: &[String],
    now_ms: u64,
) -> Option<(TaskRecord, Map<String, Value>)> {
    if rec.status.is_terminal() || !keys.iter().all(|k| rec.input_responses.contains_key(k)) {
        return None;
    }
    let mut next = rec.bumped();
    let mut got = Map::new();
    for k in keys {
        if let Some(v) = next.input_responses.remove(k) {
            got.insert(k.clone(), v);
        }
    }
    if next.input_requests.is_empty() {
        next.status = TaskStatus::Working;
    }
    next.updated_ms = now_ms;
    Some((next, got))
}

/// An initialize-era task's handler waits for (or got) its server-to-client answers.
pub(crate) fn set_waiting(rec: &TaskRecord, waiting: bool, now_ms: u64) -> Option<TaskRecord> {
    let want = if waiting {
        TaskStatus::InputRequired
    } else {
        TaskStatus::Working
    };
    if rec.status.is_terminal() || rec.status == want {
        return None;
    }
    let mut next = rec.bumped();
    next.status = want;
    next.updated_ms = now_ms;
    Some(next)
}

// ------------------------------------------------------------------------------------------
// Which calls become tasks
// ------------------------------------------------------------------------------------------

/// How a `tools/call` may run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TaskPlan {
    /// An ordinary call.
    #[default]
    None,
    /// 2026-07-28, the client declared the extension: the server may answer with a task;
    /// `required`: it does, unless the call ends in an `input_required` round.
    Modern {
        /// The tool's support is `required`.
        required: bool,
    },
    /// 2025-11-25 `params.task`: a task from the start.
    Legacy,
}

/// Whether the client declared the extension (`clientCapabilities.extensions[...]`).
pub(crate) fn declares_extension(client_capabilities: &Value) -> bool {
    client_capabilities
        .get("extensions")
        .and_then(|e| e.get(EXTENSION))
        .is_some_and(Value::is_object)
}

fn extension_required() -> ProtocolError {
    ProtocolError::MissingCapability(json!({"extensions": {EXTENSION: {}}}))
}

/// Decides how a call of a tool with `support` runs, or refuses it.
pub(crate) fn plan(
    version: Version,
    support: TaskSupport,
    client_capabilities: &Value,
    params: &Map<String, Value>,
    tool: &str,
) -> Result<TaskPlan, ProtocolError> {
    if version.is_modern() {
        // A legacy `task` param is ignored here (SEP-2663): the server alone decides.
        return match (support, declares_extension(client_capabilities)) {
            (TaskSupport::Forbidden, _) | (TaskSupport::Optional, false) => Ok(TaskPlan::None),
            (TaskSupport::Required, false) => Err(extension_required()),
            (_, true) => Ok(TaskPlan::Modern {
                required: support == TaskSupport::Required,
            }),
        };
    }
    let asked = params.get("task");
    if version < Version::V2025_11_25 {
        // Tasks do not exist before 2025-11-25: a `task` member is just unknown.
        return match support {
            TaskSupport::Required => Err(ProtocolError::TaskRequired(tool.to_owned())),
            _ => Ok(TaskPlan::None),
        };
    }
    match (support, asked) {
        (_, Some(t)) if !t.is_object() => Err(ProtocolError::InvalidParams(
            "params.task must be an object".into(),
            None,
        )),
        (_, Some(t)) if t.get("ttl").is_some_and(|v| v.as_u64().is_none()) => Err(
            ProtocolError::InvalidParams("params.task.ttl must be a whole number".into(), None),
        ),
        (TaskSupport::Forbidden, Some(_)) => Err(ProtocolError::TaskForbidden(tool.to_owned())),
        (TaskSupport::Required, None) => Err(ProtocolError::TaskRequired(tool.to_owned())),
        (_, Some(_)) => Ok(TaskPlan::Legacy),
        (_, None) => Ok(TaskPlan::None),
    }
}

// ------------------------------------------------------------------------------------------
// tasks/* requests
// ------------------------------------------------------------------------------------------

/// What a `tasks/*` request asks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TaskOp {
    /// `tasks/get`.
    Get,
    /// `tasks/update` (2026-07-28) with `inputResponses`.
    Update(Map<String, Value>),
    /// `tasks/cancel`.
    Cancel,
    /// `tasks/result` (2025-11-25).
    Result,
    /// `tasks/list` (2025-11-25) from this cursor.
    List(Option<String>),
}

/// A decided `tasks/*` request; the runtime fetches the task and asks [`Core::task_step`].
#[derive(Debug, Clone)]
pub(crate) struct TaskCall {
    /// The JSON-RPC id.
    pub(crate) id: Id,
    /// The revision served.
    pub(crate) version: Version,
    /// `params.taskId` (empty for `tasks/list`).
    pub(crate) task_id: String,
    /// What is asked.
    pub(crate) op: TaskOp,
}

impl TaskCall {
    fn wire(&self) -> TaskWire {
        if self.version.is_modern() {
            TaskWire::Modern
        } else {
            TaskWire::Legacy
        }
    }
}

/// Decides a `tasks/*` request: is the method served here, for this client, with these params.
pub(super) fn request(
    core: &Core,
    served: &Served<'_>,
    id: &Id,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Decision, ProtocolError> {
    let not_found = || ProtocolError::MethodNotFound(method.to_owned());
    if !core.catalog().has_task_tools() {
        return Err(not_found());
    }
    let version = served.version;
    if version.is_modern() {
        // SEP-2663 removed these two.
        if matches!(method, "tasks/result" | "tasks/list") {
            return Err(not_found());
        }
        if !declares_extension(&served.client_capabilities) {
            return Err(extension_required());
        }
    } else if version < Version::V2025_11_25 || method == "tasks/update" {
        return Err(not_found());
    }
    let task_id = || {
        params
            .get("taskId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ProtocolError::InvalidParams("params.taskId must be a string".into(), None)
            })
    };
    let (task_id, op) = match method {
        "tasks/get" => (task_id()?, TaskOp::Get),
        "tasks/cancel" => (task_id()?, TaskOp::Cancel),
        "tasks/result" => (task_id()?, TaskOp::Result),
        "tasks/update" => {
            let responses =
                match params.get("inputResponses") {
                    Some(Value::Object(m)) if m.values().all(Value::is_object) => m.clone(),
                    _ => return Err(ProtocolError::InvalidParams(
                        "params.inputResponses must be an object whose values are result objects"
                            .into(),
                        None,
                    )),
                };
            (task_id()?, TaskOp::Update(responses))
        }
        "tasks/list" => {
            let cursor = match params.get("cursor") {
                None | Some(Value::Null) => None,
                Some(Value::String(c)) => Some(c.clone()),
                Some(_) => {
                    return Err(ProtocolError::InvalidParams(
                        "cursor must be a string".into(),
                        None,
                    ))
                }
            };
            (String::new(), TaskOp::List(cursor))
        }
        _ => return Err(not_found()),
    };
    Ok(Decision::Task(TaskCall {
        id: id.clone(),
        version,
        task_id,
        op,
    }))
}

/// What the store said about the task a `tasks/*` request names.
#[derive(Debug, Clone)]
pub(crate) enum TaskFact {
    /// The record (any owner; the core checks).
    Found(Box<TaskRecord>),
    /// No such task.
    Missing,
    /// The store could not be asked.
    Unavailable,
}

/// What the runtime does next for a `tasks/*` request.
#[derive(Debug)]
pub(crate) enum TaskStep {
    /// Send this.
    Reply(Reply),
    /// Replace the stored record (still at `expected`) with `record`, then send `reply`. If the
    /// store moved on meanwhile, read it again and ask again.
    Write {
        /// The version the decision was made on.
        expected: u64,
        /// The new record.
        record: Box<TaskRecord>,
        /// The answer once stored.
        reply: Reply,
        /// Fire the task's cancellation signal once stored.
        cancel: bool,
    },
    /// `tasks/result` on an unfinished task: wait for it to change, then ask again.
    Wait,
}

/// A result decorated for the revision, serialized as the reply.
fn ok(core: &Core, call: &TaskCall, result: Value) -> Reply {
    Reply::ok(message::result(
        &call.id,
        &core.catalog().decorate(call.version, result),
    ))
}

/// The 2026-07-28 `tasks/update` / `tasks/cancel` acknowledgement: an empty result.
fn ack(core: &Core, call: &TaskCall) -> Reply {
    ok(core, call, json!({}))
}

pub(super) fn step(
    core: &Core,
    call: &TaskCall,
    fact: TaskFact,
    principal: &Principal,
    now_ms: u64,
) -> TaskStep {
    let modern = call.version.is_modern();
    let fail = |e: ProtocolError| TaskStep::Reply(e.reply(modern, Some(&call.id)));
    let stored = match fact {
        // Another principal's task, a task of the other wire, or one past its retention is
        // exactly as unknown as one that never existed.
        TaskFact::Found(r)
            if r.owner.is(principal) && r.wire == call.wire() && !r.is_forgotten(now_ms) =>
        {
            r
        }
        TaskFact::Found(_) | TaskFact::Missing => return fail(ProtocolError::TaskNotFound),
        TaskFact::Unavailable => return fail(ProtocolError::TaskStoreUnavailable),
    };
    let observed = observe(&stored, now_ms);
    let rec = observed.as_ref().unwrap_or(&stored);
    let write = |record: TaskRecord, reply: Reply, cancel: bool| TaskStep::Write {
        expected: stored.version,
        record: Box::new(record),
        reply,
        cancel,
    };
    let keep = |reply: Reply| match &observed {
        Some(r) => write(r.clone(), reply, false),
        None => TaskStep::Reply(reply),
    };
    match &call.op {
        TaskOp::Get => keep(ok(core, call, detail(rec))),
        TaskOp::Cancel => match cancel(rec, now_ms) {
            Some(cancelled) => {
                let reply = if modern {
                    ack(core, call)
                } else {
                    ok(core, call, task_object(&cancelled))
                };
                write(cancelled, reply, true)
            }
            // SEP-2663: idempotent on a terminal task; 2025-11-25: refused with -32602.
            None if modern => keep(ack(core, call)),
            None => fail(ProtocolError::TaskTerminal(rec.status.as_str())),
        },
        TaskOp::Update(responses) => match answer(rec, responses, now_ms) {
            Some(answered) => write(answered, ack(core, call), false),
            None => keep(ack(core, call)),
        },
        TaskOp::Result => match (&rec.outcome, rec.status.is_terminal()) {
            (Some(outcome), true) => keep(legacy_result(call, &rec.id, outcome)),
            (None, true) => {
                keep(ProtocolError::TaskTerminal(rec.status.as_str()).reply(false, Some(&call.id)))
            }
            // Not finished: a lapsed lease would have made it terminal just above.
            _ => TaskStep::Wait,
        },
        TaskOp::List(_) => fail(ProtocolError::Internal),
    }
}

/// 2025-11-25 `tasks/result` of a finished task: exactly what the request would have answered,
/// a result tagged with the related task, or the JSON-RPC error.
fn legacy_result(call: &TaskCall, task_id: &str, outcome: &TaskOutcome) -> Reply {
    match outcome {
        TaskOutcome::Result(r) => {
            let mut r = r.clone();
            if let Value::Object(m) = &mut r {
                let meta = m.entry("_meta").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    meta.insert(META_RELATED_TASK.into(), json!({"taskId": task_id}));
                }
            }
            Reply::ok(message::result(&call.id, &r))
        }
        TaskOutcome::Error(e) => {
            let code = e
                .get("code")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(ErrorCode::INTERNAL_ERROR.0);
            let mut err = ErrorObject::new(
                ErrorCode(code),
                e.get("message").and_then(Value::as_str).unwrap_or(""),
            );
            err.data = e.get("data").cloned();
            Reply::ok(message::error(Some(&call.id), &err))
        }
    }
}

/// Page size of 2025-11-25 `tasks/list`.
pub(crate) const LIST_PAGE: usize = 50;

/// 2025-11-25 `tasks/list` over the caller's records (creation order, already filtered by owner
/// by the store, checked again here), `LIST_PAGE` at a time.
pub(super) fn list(
    core: &Core,
    call: &TaskCall,
    records: Vec<TaskRecord>,
    principal: &Principal,
    now_ms: u64,
) -> Reply {
    let visible: Vec<TaskRecord> = records
        .into_iter()
        .filter(|r| r.owner.is(principal) && r.wire == TaskWire::Legacy && !r.is_forgotten(now_ms))
        .collect();
    let start = match &call.op {
        TaskOp::List(Some(cursor)) => match visible.iter().position(|r| &r.id == cursor) {
            Some(i) => i + 1,
            None => {
                return ProtocolError::InvalidParams(
                    "cursor is not one this server issued".into(),
                    None,
                )
                .reply(false, Some(&call.id))
            }
        },
        _ => 0,
    };
    let end = (start + LIST_PAGE).min(visible.len());
    let mut m = Map::new();
    let page = &visible[start..end];
    m.insert(
        "tasks".into(),
        page.iter()
            .map(|r| task_object(observe(r, now_ms).as_ref().unwrap_or(r)))
            .collect(),
    );
    if end < visible.len() {
        if let Some(last) = page.last() {
            // The cursor names the last task shown; it is opaque to the client.
            m.insert("nextCursor".into(), json!(last.id));
        }
    }
    ok(core, call, Value::Object(m))
}

// ------------------------------------------------------------------------------------------
// Shapes
// ------------------------------------------------------------------------------------------

/// The `Task` object of the record's wire: 2025-11-25 `ttl`/`pollInterval`, 2026-07-28
/// `ttlMs`/`pollIntervalMs`.
pub(crate) fn task_object(rec: &TaskRecord) -> Value {
    let mut m = Map::new();
    m.insert("taskId".into(), json!(rec.id));
    m.insert("status".into(), json!(rec.status.as_str()));
    if let Some(msg) = &rec.status_message {
        m.insert("statusMessage".into(), json!(msg));
    }
    m.insert("createdAt".into(), json!(iso8601(rec.created_ms)));
    m.insert("lastUpdatedAt".into(), json!(iso8601(rec.updated_ms)));
    let (ttl, poll) = match rec.wire {
        TaskWire::Legacy => ("ttl", "pollInterval"),
        TaskWire::Modern => ("ttlMs", "pollIntervalMs"),
    };
    m.insert(ttl.into(), json!(rec.ttl_ms()));
    if !rec.status.is_terminal() {
        m.insert(poll.into(), json!(rec.poll_interval_ms));
    }
    Value::Object(m)
}

/// `tasks/get`: the task, and at 2026-07-28 its outstanding requests, result or error inlined.
fn detail(rec: &TaskRecord) -> Value {
    let mut v = task_object(rec);
    if rec.wire == TaskWire::Modern {
        if let Value::Object(m) = &mut v {
            match (rec.status, &rec.outcome) {
                (TaskStatus::InputRequired, _) => {
                    m.insert(
                        "inputRequests".into(),
                        Value::Object(rec.input_requests.clone()),
                    );
                }
                (TaskStatus::Completed, Some(TaskOutcome::Result(r))) => {
                    m.insert("result".into(), r.clone());
                }
                (TaskStatus::Failed, Some(TaskOutcome::Error(e))) => {
                    m.insert("error".into(), e.clone());
                }
                _ => {}
            }
        }
    }
    v
}

/// The answer to the `tools/call` that created the task.
pub(super) fn created(core: &Core, id: &Id, version: Version, rec: &TaskRecord) -> Reply {
    let result = match rec.wire {
        // `Result & Task`, flat, discriminated by resultType (SEP-2663).
        TaskWire::Modern => {
            let mut v = task_object(rec);
            v["resultType"] = json!("task");
            core.catalog().decorate(version, v)
        }
        TaskWire::Legacy => json!({ "task": task_object(rec) }),
    };
    let mut reply = Reply::ok(message::result(id, &result));
    reply.detail = Some(format!("task {} created", rec.status.as_str()));
    reply
}

/// The outcome held by a finished call's reply (`result` or `error` of its JSON-RPC body).
pub(crate) fn outcome_of(reply: &Reply) -> TaskOutcome {
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    match (body.get("result"), body.get("error")) {
        (Some(r), _) => TaskOutcome::Result(r.clone()),
        (None, Some(e)) => TaskOutcome::Error(e.clone()),
        (None, None) => {
            TaskOutcome::Error(error_value(ErrorCode::INTERNAL_ERROR, "Internal error"))
        }
    }
}

/// RFC 3339 UTC with milliseconds: `2025-11-25T10:30:00.000Z`.
pub(crate) fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(wire: TaskWire) -> TaskRecord {
        TaskRecord::new(
            NewTask {
                id: "t1".into(),
                owner: TaskOwner {
                    issuer: "iss".into(),
                    subject: "alice".into(),
                },
                wire,
                tool: "slow".into(),
                retention_ms: 60_000,
                poll_interval_ms: 500,
                lease_ms: 1_000,
            },
            10_000,
        )
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_764_066_600_123), "2025-11-25T10:30:00.123Z");
    }

    #[test]
    fn a_terminal_status_never_changes() {
        let r = record(TaskWire::Modern);
        let done = finish(&r, TaskOutcome::Result(json!({"content": []})), 11_000).unwrap();
        assert_eq!(done.status, TaskStatus::Completed);
        assert_eq!(done.terminal_ms, Some(11_000));
        assert!(finish(&done, TaskOutcome::Error(json!({})), 12_000).is_none());
        assert!(cancel(&done, 12_000).is_none());
        assert!(ask(&done, &[("k".into(), json!({}))], 12_000).is_none());
        assert!(
            observe(&done, 1_000_000).is_none(),
            "a finished task holds no lease"
        );
        let cancelled = cancel(&r, 11_000).unwrap();
        assert!(finish(&cancelled, TaskOutcome::Result(json!({})), 12_000).is_none());
    }

    #[test]
    fn tool_errors_fail_legacy_tasks_and_complete_modern_ones() {
        let err = json!({"content": [{"type": "text", "text": "boom"}], "isError": true});
        let m = finish(
            &record(TaskWire::Modern),
            TaskOutcome::Result(err.clone()),
            1,
        )
        .unwrap();
        assert_eq!(m.status, TaskStatus::Completed);
        let l = finish(&record(TaskWire::Legacy), TaskOutcome::Result(err), 1).unwrap();
        assert_eq!(l.status, TaskStatus::Failed);
        assert_eq!(
            l.status_message.as_deref(),
            Some("Tool execution failed: boom")
        );
    }

    #[test]
    fn a_lapsed_lease_fails_the_task_with_a_message() {
        let r = record(TaskWire::Modern);
        assert!(observe(&r, 11_000).is_none(), "within the lease");
        let failed = observe(&r, 11_001).unwrap();
        assert_eq!(failed.status, TaskStatus::Failed);
        assert!(failed.status_message.unwrap().contains("lease expired"));
        assert!(matches!(failed.outcome, Some(TaskOutcome::Error(ref e)) if e["code"] == -32603));
        let renewed = renew(&r, 20_000).unwrap();
        assert!(observe(&renewed, 19_999).is_none());
    }

    #[test]
    fn retention_counts_from_the_terminal_status() {
        let r = record(TaskWire::Modern);
        assert_eq!(task_object(&r)["ttlMs"], Value::Null);
        let done = finish(&r, TaskOutcome::Result(json!({})), 15_000).unwrap();
        assert_eq!(task_object(&done)["ttlMs"], json!(65_000));
        assert!(!done.is_forgotten(74_999));
        assert!(done.is_forgotten(75_000));
    }

    #[test]
    fn partial_answers_keep_the_task_waiting_and_keys_are_never_reused() {
        let r = record(TaskWire::Modern);
        let keys = wire_keys(&r, ["a", "b"].into_iter());
        assert_eq!(
            keys,
            vec![("a".into(), "a".into()), ("b".into(), "b".into())]
        );
        let asked = ask(
            &r,
            &[
                ("a".into(), json!({"method": "x"})),
                ("b".into(), json!({"method": "y"})),
            ],
            1,
        )
        .unwrap();
        assert_eq!(asked.status, TaskStatus::InputRequired);
        let mut resp = Map::new();
        resp.insert("a".into(), json!({"action": "accept"}));
        resp.insert("never-issued".into(), json!({}));
        let one = answer(&asked, &resp, 2).unwrap();
        assert_eq!(one.input_requests.keys().collect::<Vec<_>>(), ["b"]);
        assert!(answer(&one, &resp, 3).is_none(), "a is answered already");
        let all = ["a".to_owned(), "b".to_owned()];
        assert!(take_answers(&one, &all, 3).is_none());
        let mut resp_b = Map::new();
        resp_b.insert("b".into(), json!({"action": "accept"}));
        let two = answer(&one, &resp_b, 4).unwrap();
        let (working, got) = take_answers(&two, &all, 5).unwrap();
        assert_eq!(working.status, TaskStatus::Working);
        assert_eq!(got.len(), 2);
        let again = wire_keys(&working, ["a", "c"].into_iter());
        assert_eq!(
            again,
            vec![("a".into(), "a-2".into()), ("c".into(), "c".into())]
        );
    }

    #[test]
    fn plans_follow_each_revision() {
        let ext = json!({"extensions": {EXTENSION: {}}});
        let none = json!({});
        let p = Map::new();
        let modern = Version::V2026_07_28;
        assert_eq!(
            plan(modern, TaskSupport::Optional, &ext, &p, "t").unwrap(),
            TaskPlan::Modern { required: false }
        );
        assert_eq!(
            plan(modern, TaskSupport::Optional, &none, &p, "t").unwrap(),
            TaskPlan::None
        );
        assert!(matches!(
            plan(modern, TaskSupport::Required, &none, &p, "t"),
            Err(ProtocolError::MissingCapability(_))
        ));
        assert_eq!(
            plan(modern, TaskSupport::Forbidden, &ext, &p, "t").unwrap(),
            TaskPlan::None
        );
        let legacy = Version::V2025_11_25;
        let mut asked = Map::new();
        asked.insert("task".into(), json!({"ttl": 60000}));
        assert_eq!(
            plan(legacy, TaskSupport::Optional, &none, &asked, "t").unwrap(),
            TaskPlan::Legacy
        );
        assert!(matches!(
            plan(legacy, TaskSupport::Forbidden, &none, &asked, "t"),
            Err(ProtocolError::TaskForbidden(_))
        ));
        assert!(matches!(
            plan(legacy, TaskSupport::Required, &none, &p, "t"),
            Err(ProtocolError::TaskRequired(_))
        ));
        assert_eq!(
            plan(
                Version::V2025_06_18,
                TaskSupport::Optional,
                &none,
                &asked,
                "t"
            )
            .unwrap(),
            TaskPlan::None
        );
    }
}
