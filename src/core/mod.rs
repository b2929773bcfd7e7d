//! The protocol core: bytes and facts in, a decision out; no tokio, clock, randomness or logging.
//!
//! The shell has already routed the request and run Host/Origin, the body cap, auth and content
//! negotiation. It hands the core the body bytes and the facts it knows (headers, the verified
//! principal, `now`). The core parses the one JSON body, applies every era, header and batch
//! rule in the specified order, and answers with a [`Step`]:
//!
//! * [`Step::Decided`]: a [`Decision`]: a reply, a handler to run, a session to open, a
//!   stream to open, a cancellation or answer to deliver;
//! * [`Step::NeedSession`]: an initialize-era message that needs its session looked up first;
//!   the shell asks the session store and calls [`Core::with_session`].
//!
//! A handler run comes back to [`Core::finish`], which shapes the output into the reply. Every
//! reply is serialized once, here, into the bytes that go on the wire.
//!
//! * [`message`]: the JSON-RPC envelope; [`error`]: the error enum and its one wire mapping.
//! * [`version`], [`headers`], `era`: revisions, header rules, the era rules.
//! * `dispatch`: methods; [`catalog`]: what the server offers; `results`: handler output.
//! * [`mrtr`]: input_required and sealed state; [`tasks`]: task plans, states and answers;
//!   [`validate`]: argument checks;
//!   [`template`]: URI templates; [`level`]: log levels.

pub(crate) mod catalog;
mod dispatch;
mod era;
pub(crate) mod error;
pub(crate) mod headers;
pub(crate) mod level;
pub(crate) mod message;
pub(crate) mod mrtr;
mod results;
pub(crate) mod tasks;
pub(crate) mod template;
pub(crate) mod validate;
pub(crate) mod version;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::auth::Principal;
pub(crate) use catalog::{Catalog, ListenFilter};
pub(crate) use error::ProtocolError;
pub use level::LogLevel;
use message::Id;
use mrtr::StateSealer;
pub(crate) use results::HandlerOutput;
use version::Version;

/// `_meta` key carrying the request's protocol revision (2026-07-28).
pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities (2026-07-28).
pub(crate) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key carrying the requested log level (2026-07-28).
pub(crate) const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key carrying server info on results (2026-07-28).
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key carrying a subscription id on `subscriptions/listen` frames (2026-07-28).
pub(crate) const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A complete JSON response: status, the serialized body and the headers the core decides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// The JSON body; empty for 202.
    pub(crate) body: Bytes,
    /// `Retry-After` seconds.
    pub(crate) retry_after: Option<u32>,
    /// `Allow` (405).
    pub(crate) allow: Option<&'static str>,
    /// What the request log line should say about this reply (never sent to the client).
    pub(crate) detail: Option<String>,
    /// How the operation ended, for metrics and the audit log (never sent).
    pub(crate) ending: Ending,
    /// The tool a `tools/call` reply answers, once the core found it (metrics, audit).
    pub(crate) tool: Option<usize>,
}

/// How a reply ends its operation: the `error.type` of metrics and the audit outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Ending {
    /// A result.
    #[default]
    Ok,
    /// A tool result with `isError: true`.
    ToolError,
    /// A JSON-RPC error with this code.
    Error(i32),
}

impl Reply {
    /// 200 with `body`.
    pub(crate) fn ok(body: Vec<u8>) -> Self {
        Self {
            status: StatusCode::OK,
            body: body.into(),
            retry_after: None,
            allow: None,
            detail: None,
            ending: Ending::Ok,
            tool: None,
        }
    }

    /// 202 with no body: a notification or a response was accepted.
    pub(crate) fn accepted() -> Self {
        Self {
            status: StatusCode::ACCEPTED,
            body: Bytes::new(),
            retry_after: None,
            allow: None,
            detail: None,
            ending: Ending::Ok,
            tool: None,
        }
    }
}

/// What the core knows about one POST: its headers and body, and what its parse may build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Post<'a> {
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The whole body, as read under the cap.
    pub(crate) body: &'a [u8],
    /// The bounds of the body's parse (memory estimate, batch length).
    pub(crate) limits: crate::json::Limits,
}

/// Who asks, and when: the facts every decision may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The verified caller.
    pub(crate) principal: &'a Principal,
    /// Unix seconds, read once per request by the shell.
    pub(crate) now: u64,
}

/// The state of an initialize-era session, as the store holds it.
#[derive(Debug, Clone)]
pub(crate) struct SessionView {
    /// The negotiated revision.
    pub(crate) version: Version,
    /// What the client declared at initialize.
    pub(crate) client_capabilities: Arc<Value>,
    /// The level from `logging/setLevel`.
    pub(crate) log_level: Option<LogLevel>,
}

/// What the session lookup found for an initialize-era message.
#[derive(Debug, Clone)]
pub(crate) enum SessionFact {
    /// The request carried no `Mcp-Session-Id`.
    Absent,
    /// The id names no live session of this principal.
    Unknown,
    /// The caller's live session.
    Live(SessionView),
    /// The store could not be asked.
    Unavailable,
}

/// The core's answer to a POST body.
#[derive(Debug)]
pub(crate) enum Step {
    /// Everything is decided.
    Decided(Decision),
    /// Look up this session (`None`: the request named none) and call [`Core::with_session`].
    NeedSession(Option<String>, Pending),
}

/// An initialize-era message waiting for its session.
#[derive(Debug)]
pub(crate) struct Pending(PendingKind);

#[derive(Debug)]
enum PendingKind {
    Single(message::Message),
    Batch(Vec<Value>),
}

/// What the shell does for a request.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Send this reply.
    Reply(Reply),
    /// Run a handler, then send [`Core::finish`]'s reply.
    Run(Box<Run>),
    /// Initialize era: create a session with these facts, then send `reply` with its id.
    Initialize {
        /// The request id (a refusal echoes it).
        id: Id,
        /// The negotiated revision.
        version: Version,
        /// The client's declared capabilities.
        client_capabilities: Value,
        /// The InitializeResult.
        reply: Reply,
    },
    /// Initialize era: apply this change to the session, then send `reply`.
    Update(SessionUpdate, Reply),
    /// 2026-07-28 `subscriptions/listen`: open the notification stream.
    Listen(Listen),
    /// Initialize era: cancel this in-flight request of the session; 202.
    Cancel(Id),
    /// Initialize era: the client's answer to a server-to-client request; 202.
    Answer(Id, Result<Value, Value>),
    /// The principal lacks scopes a tool requires (HTTP 403 through the auth challenge).
    InsufficientScope {
        /// The tool asked for.
        tool: usize,
        /// The scopes it requires.
        scopes: Vec<String>,
    },
    /// The token fails the tool's step-up policy (HTTP 401 `insufficient_user_authentication`).
    StepUp {
        /// The tool asked for.
        tool: usize,
        /// What the challenge says.
        denial: crate::step_up::StepUpDenial,
    },
    /// Initialize era (2025-03-26): a batch, each item decided; answered as one array.
    Batch(Vec<BatchItem>),
    /// A `tasks/*` request: fetch the task, then [`Core::task_step`] (or [`Core::task_list`]).
    Task(tasks::TaskCall),
}

/// One element of a batch.
#[derive(Debug)]
pub(crate) enum BatchItem {
    /// This response element.
    Reply(Vec<u8>),
    /// Run a handler; its finished reply body is the element.
    Run(Box<Run>),
    /// Apply the update, then this element.
    Update(SessionUpdate, Vec<u8>),
    /// Cancel a request; no element.
    Cancel(Id),
    /// Deliver an answer; no element.
    Answer(Id, Result<Value, Value>),
}

/// A change to an initialize-era session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SessionUpdate {
    /// `logging/setLevel`.
    LogLevel(LogLevel),
    /// `resources/subscribe` (true) or `unsubscribe` (false).
    Subscribe(String, bool),
}

/// A 2026-07-28 `subscriptions/listen` stream to open.
#[derive(Debug)]
pub(crate) struct Listen {
    /// The request id, which is also the subscription id.
    pub(crate) id: Id,
    /// What to deliver.
    pub(crate) filter: ListenFilter,
    /// The acknowledgement, the stream's first message.
    pub(crate) ack: Vec<u8>,
}

/// Which handler a [`Run`] calls.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// `tools/call` of the tool at this index.
    Tool(usize),
    /// `prompts/get` of the prompt at this index.
    Prompt(usize),
    /// `resources/read` of the resource at this index.
    Resource(usize),
    /// `resources/read` through the template at this index: the URI and its variables.
    Template(usize, String, Map<String, Value>),
}

/// A handler run the core decided on; the runtime performs it and hands the output to [`Core::finish`].
#[derive(Debug)]
pub(crate) struct Run {
    /// The request id.
    pub(crate) id: Id,
    /// The revision served.
    pub(crate) version: Version,
    /// The handler.
    pub(crate) target: Target,
    /// The request's params, intact: arguments are read from here, and sealed state binds to them.
    pub(crate) params: Map<String, Value>,
    /// What the client declared (initialize, or this request's `_meta`).
    pub(crate) client_capabilities: Arc<Value>,
    /// `_meta.progressToken`, echoed with its JSON type.
    pub(crate) progress_token: Option<Value>,
    /// The log level in force for this call.
    pub(crate) log_level: Option<LogLevel>,
    /// 2026-07-28: the verified, unsealed state of the previous round.
    pub(crate) request_state: Option<String>,
    /// 2026-07-28: the client's answers to the previous round.
    pub(crate) input_responses: Option<Map<String, Value>>,
    /// The params digest, when a `requestState` was opened against it.
    pub(crate) digest: Option<[u8; 32]>,
    /// `tools/call`: whether (and how) the call may become a task.
    pub(crate) task: tasks::TaskPlan,
}

impl Run {
    /// `params.arguments` (already checked to be an object or absent).
    pub(crate) fn arguments(&self) -> &Value {
        static EMPTY: Value = Value::Null;
        self.params.get("arguments").unwrap_or(&EMPTY)
    }

    /// The method this run answers.
    pub(crate) fn method(&self) -> &'static str {
        match self.target {
            Target::Tool(_) => "tools/call",
            Target::Prompt(_) => "prompts/get",
            Target::Resource(_) | Target::Template(..) => "resources/read",
        }
    }
}

/// An SSE event id, `<stream>-<seq>`: the stream it belongs to and its place in that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EventId {
    /// The stream's number, unique across the deployment.
    pub(crate) stream: u64,
    /// The event's sequence number in its stream; 0 is the priming event.
    pub(crate) seq: u64,
}

impl EventId {
    /// Parses `<stream>-<seq>` (decimal, surrounding spaces allowed).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (stream, seq) = s.trim().split_once('-')?;
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(stream) || !digits(seq) {
            return None;
        }
        Some(Self {
            stream: stream.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.stream, self.seq)
    }
}

/// Which list-changed notifications the server will send (advertised as `listChanged`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListChanged {
    /// Tools.
    pub tools: bool,
    /// Prompts.
    pub prompts: bool,
    /// Resources.
    pub resources: bool,
}

/// The protocol core: what the server offers, plus the secret that seals `requestState`.
#[derive(Debug)]
pub(crate) struct Core {
    catalog: Catalog,
    sealer: StateSealer,
}

impl Core {
    /// A core serving `catalog`; `state_key` seals 2026-07-28 `requestState`.
    pub(crate) fn new(catalog: Catalog, state_key: &[u8; 32]) -> Self {
        Self {
            catalog,
            sealer: StateSealer::new(state_key, mrtr::DEFAULT_STATE_TTL_SECS),
        }
    }

    /// What the server offers.
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Decides a POST: the one JSON parse, then the era, header and batch rules, then dispatch.
    /// Also names the JSON-RPC method for the log (`None` when the body was not a message).
    pub(crate) fn post(&self, post: Post<'_>, facts: Facts<'_>) -> (Step, Option<&'static str>) {
        era::post(self, post, facts)
    }

    /// Decides an initialize-era message once its session was looked up.
    pub(crate) fn with_session(
        &self,
        pending: Pending,
        session: SessionFact,
        facts: Facts<'_>,
    ) -> Decision {
        era::with_session(self, pending, session, facts)
    }

    /// Turns a finished handler's output into the reply.
    pub(crate) fn finish(&self, run: &Run, output: HandlerOutput, facts: Facts<'_>) -> Reply {
        results::finish(self, run, output, facts)
    }

    /// The next step of a `tasks/*` request, given what the store holds for its task.
    pub(crate) fn task_step(
        &self,
        call: &tasks::TaskCall,
        fact: tasks::TaskFact,
        principal: &Principal,
        now_ms: u64,
    ) -> tasks::TaskStep {
        tasks::step(self, call, fact, principal, now_ms)
    }

    /// 2025-11-25 `tasks/list` over the records the store holds for the caller.
    pub(crate) fn task_list(
        &self,
        call: &tasks::TaskCall,
        records: Vec<tasks::TaskRecord>,
        principal: &Principal,
        now_ms: u64,
    ) -> Reply {
        tasks::list(self, call, records, principal, now_ms)
    }

    /// The answer to the `tools/call` `run` that created task `rec`.
    pub(crate) fn task_created(&self, run: &Run, rec: &tasks::TaskRecord) -> Reply {
        tasks::created(self, &run.id, run.version, rec)
    }

    /// GET and DELETE: 405 at 2026-07-28, 400 for an unsupported `MCP-Protocol-Version`.
    pub(crate) fn stream_preconditions(&self, headers: &HeaderMap) -> Result<(), Reply> {
        era::stream_preconditions(headers).map_err(|e| e.reply(false, None))
    }

    /// The session a GET or DELETE acts on: 400 without one, 404 for a repeated header.
    pub(crate) fn session_id<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, Reply> {
        era::required_session_id(headers).map_err(|e| e.reply(false, None))
    }

    /// `Last-Event-ID` of a GET that resumes a stream; 404 when it is not an id this server issues.
    pub(crate) fn last_event_id(&self, headers: &HeaderMap) -> Result<Option<EventId>, Reply> {
        let Some(raw) = headers.get(headers::LAST_EVENT_ID) else {
            return Ok(None);
        };
        raw.to_str()
            .ok()
            .and_then(EventId::parse)
            .map(Some)
            .ok_or_else(|| ProtocolError::NoStreamToResume.reply(false, None))
    }

    /// The error reply for `e` outside any message (GET, DELETE, transport-level session faults).
    pub(crate) fn error_reply(&self, e: &ProtocolError) -> Reply {
        e.reply(false, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse_only_in_the_issued_form() {
        assert_eq!(
            EventId::parse(" 12-3 "),
            Some(EventId { stream: 12, seq: 3 })
        );
        assert_eq!(EventId { stream: 12, seq: 3 }.to_string(), "12-3");
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "+1-2",
            "1- 2",
            "99999999999999999999999-1",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }
}
