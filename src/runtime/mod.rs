//! The runtime: the async parts the core decides on: running handlers, cancellation, sessions, event streams and notifications.
//!
//! * [`context`]: what a handler sees ([`RequestContext`](context::RequestContext)).
//! * `call`: running a handler inline, switching to SSE when it streams.
//! * [`session`]: the session store trait and its in-memory default, plus each replica's live state.
//! * [`events`]: the event store trait (resumable streams) and the attached connections.
//! * [`bus`]: the notification fan-out trait.
//! * `streams`: GET, resumed and `subscriptions/listen` streams.
//! * [`limits`]: the in-flight byte budget and the per-principal caps on calls and streams.
//! * [`tasks`]: the task store trait and its in-memory default, task runs and `tasks/*` requests.

pub(crate) mod bus;
mod call;
pub(crate) mod context;
pub(crate) mod events;
pub(crate) mod limits;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod session;
mod streams;
pub(crate) mod tasks;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use bus::{PeerMessage, Peers};
pub(crate) use call::{Call, Outcome};
use context::CancelToken;
use events::{EventStore, LiveStreams};
use session::{LiveSessions, Owner, SessionRecord, SessionStore, StoreError};
pub(crate) use streams::Opened;

use crate::auth::Principal;
use crate::core::message::Id;
use crate::core::version::Version;
use crate::core::{Core, SessionFact, SessionUpdate};
use crate::log;
use crate::notify::Notifier;
use crate::prompt::PromptHandler;
use crate::resource::{Reader, TemplateReader};
use crate::sources::{Now, RandomSource};
use crate::tool::ErasedHandler;

/// The handlers, at the same indexes as their specs in the core's catalog.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) tools: Vec<Arc<ErasedHandler>>,
    pub(crate) prompts: Vec<Arc<PromptHandler>>,
    pub(crate) resources: Vec<Arc<Reader>>,
    pub(crate) templates: Vec<Arc<TemplateReader>>,
}

/// Timings of streams.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuntimeConfig {
    /// SSE keep-alive comment interval.
    pub(crate) sse_keepalive: Duration,
    /// How long a GET or `subscriptions/listen` stream stays open before the server ends it
    /// cleanly and the client reconnects.
    pub(crate) stream_lifetime: Duration,
}

/// Random bytes per session id: 192 bits, encoded as 32 base64url characters (visible ASCII).
const SESSION_ID_BYTES: usize = 24;

/// Everything the runtime needs; shared by `Arc`, never locked as a whole.
pub(crate) struct Runtime {
    pub(crate) core: Arc<Core>,
    pub(crate) handlers: Handlers,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) live: LiveSessions,
    pub(crate) events: Arc<dyn EventStore>,
    pub(crate) streams: Arc<LiveStreams>,
    pub(crate) notifier: Notifier,
    pub(crate) config: RuntimeConfig,
    pub(crate) shutdown: CancelToken,
    pub(crate) rng: Arc<dyn RandomSource>,
    pub(crate) limits: Arc<limits::PrincipalLimits>,
    /// The other replicas, when a shared backend connects them.
    pub(crate) peers: Option<Arc<dyn Peers>>,
    pub(crate) tasks: tasks::Tasks,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("sessions", &self.sessions)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The owner a principal's sessions are bound to.
pub(crate) fn owner(principal: &Principal) -> Owner {
    Owner {
        issuer: principal.issuer.clone(),
        subject: principal.subject.clone().unwrap_or_default(),
    }
}

fn is_owner(record: &SessionRecord, principal: &Principal) -> bool {
    record.owner.issuer == principal.issuer
        && record.owner.subject == principal.subject.as_deref().unwrap_or("")
}

impl Runtime {
    /// A fresh stream number: random, so ids stay unique across replicas.
    pub(crate) fn stream_id(&self) -> u64 {
        let mut b = [0u8; 8];
        // Without randomness the process could not have made its sealing key; a zero id still
        // works for this process (streams are per session).
        let _ = self.rng.fill(&mut b);
        // Kept below 2^53 so JavaScript clients read the id without rounding.
        u64::from_le_bytes(b) >> 11
    }

    /// Creates a session for `principal`.
    pub(crate) async fn open_session(
        &self,
        principal: &Principal,
        version: Version,
        client_capabilities: Value,
        now: Now,
    ) -> Result<Arc<SessionRecord>, StoreError> {
        use base64::Engine as _;
        let mut bytes = [0u8; SESSION_ID_BYTES];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| StoreError::Unavailable)?;
        let id: Arc<str> = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(bytes)
            .into();
        let record = SessionRecord::new(
            id,
            owner(principal),
            version,
            client_capabilities,
            now.unix_ms(),
        );
        self.sessions.create(record).await
    }

    /// Looks up session `id` for `principal`: another principal's session is as unknown as one
    /// that never existed.
    pub(crate) async fn find_session(
        &self,
        id: Option<&str>,
        principal: &Principal,
        now: Now,
    ) -> (SessionFact, Option<Arc<SessionRecord>>) {
        let Some(id) = id else {
            return (SessionFact::Absent, None);
        };
        match self.sessions.get(id, now.unix_ms()).await {
            Ok(Some(r)) if is_owner(&r, principal) => (SessionFact::Live(r.view()), Some(r)),
            Ok(_) => (SessionFact::Unknown, None),
            Err(e) => {
                log::warn(format_args!("session lookup failed: {e}"));
                (SessionFact::Unavailable, None)
            }
        }
    }

    /// Applies `update` to the session.
    pub(crate) async fn update_session(
        &self,
        session: &SessionRecord,
        update: &SessionUpdate,
    ) -> Result<bool, StoreError> {
        let found = self.sessions.update(&session.id, update).await?;
        self.announce(PeerMessage::Changed {
            session: session.id.to_string(),
        })
        .await;
        Ok(found)
    }

    /// DELETE: ends session `id` if `principal` owns it. Returns whether it existed.
    pub(crate) async fn delete_session(
        &self,
        id: &str,
        principal: &Principal,
        now: Now,
    ) -> Result<bool, StoreError> {
        match self.sessions.get(id, now.unix_ms()).await? {
            Some(r) if is_owner(&r, principal) => {}
            _ => return Ok(false),
        }
        let existed = self.sessions.delete(id).await?;
        self.end_session_here(id).await;
        self.announce(PeerMessage::Ended { session: id.into() })
            .await;
        Ok(existed)
    }

    /// Frees what this replica holds for a session that ended, and its event logs.
    async fn end_session_here(&self, id: &str) {
        self.free_live_state(id);
        let _ = self.events.forget(id).await;
    }

    /// Frees this replica's live state of a session (streams end, in-flight calls are cancelled).
    fn free_live_state(&self, id: &str) {
        self.live.close(id);
        self.streams.drop_session(id);
    }

    /// Tells the other replicas before the response goes out.
    async fn announce(&self, message: PeerMessage) {
        if let Some(p) = &self.peers {
            p.announce(message).await;
        }
    }

    fn tell_peers(&self, to: Option<&str>, message: PeerMessage) {
        if let Some(p) = &self.peers {
            p.send(to, message);
        }
    }

    /// This replica's id, when it is one of several.
    pub(crate) fn replica(&self) -> Option<&str> {
        self.peers.as_ref().map(|p| p.replica())
    }

    /// `notifications/cancelled`: cancels the named in-flight request of the session, here or,
    /// when it does not run here, on whichever replica runs it.
    pub(crate) fn cancel(&self, session: &SessionRecord, request: &Id) {
        let here = self
            .live
            .find(&session.id)
            .is_some_and(|live| live.cancel(request));
        if !here {
            self.tell_peers(
                None,
                PeerMessage::Cancel {
                    session: session.id.to_string(),
                    request: request.clone(),
                },
            );
        }
    }

    /// The client's answer to a server-to-client request; false when nobody waits for it here
    /// and no other replica issued it.
    pub(crate) fn answer(
        &self,
        session: &SessionRecord,
        id: &Id,
        outcome: Result<Value, Value>,
    ) -> bool {
        let Some(live) = self.live.find(&session.id) else {
            return self.forward_answer(session, id, outcome);
        };
        if live.client_requests().resolve(id, outcome.clone()) {
            return true;
        }
        self.forward_answer(session, id, outcome)
    }

    /// Sends an answer to the replica named in the request id (`srv-<replica>-N`).
    fn forward_answer(
        &self,
        session: &SessionRecord,
        id: &Id,
        outcome: Result<Value, Value>,
    ) -> bool {
        let (Some(me), Id::Str(text)) = (self.replica(), id) else {
            return false;
        };
        let Some(owner) = text
            .strip_prefix("srv-")
            .and_then(|rest| rest.rsplit_once('-'))
            .map(|(replica, _)| replica)
        else {
            return false;
        };
        if owner == me {
            return false;
        }
        self.tell_peers(
            Some(owner),
            PeerMessage::Answer {
                session: session.id.to_string(),
                id: text.clone(),
                outcome,
            },
        );
        true
    }

    /// A message from another replica.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_peer(&self, message: PeerMessage) {
        match message {
            PeerMessage::Cancel { session, request } => {
                if let Some(live) = self.live.find(&session) {
                    live.cancel(&request);
                }
            }
            PeerMessage::Answer {
                session,
                id,
                outcome,
            } => {
                let delivered = self
                    .live
                    .find(&session)
                    .is_some_and(|l| l.client_requests().resolve(&Id::Str(id.clone()), outcome));
                if delivered {
                    log::debug(format_args!(
                        "answer to {id} delivered from another replica"
                    ));
                } else {
                    let mut line = String::from("answer from another replica: nobody waits for it");
                    log::field(&mut line, "id", &id);
                    log::info(format_args!("{line}"));
                }
            }
            PeerMessage::Ended { session } => self.free_live_state(&session),
            PeerMessage::Changed { .. } => {}
        }
    }

    /// Expires idle sessions; returns how many.
    pub(crate) async fn sweep(&self, now: Now) -> usize {
        match self.sessions.sweep(now.unix_ms()).await {
            Ok(ids) => {
                for id in &ids {
                    self.end_session_here(id).await;
                    // Nobody waits on an expiry: told, not confirmed (a sweep of many sessions
                    // must not wait on each one's confirmations).
                    self.tell_peers(
                        None,
                        PeerMessage::Ended {
                            session: id.to_string(),
                        },
                    );
                }
                ids.len()
            }
            Err(e) => {
                log::warn(format_args!("session sweep failed: {e}"));
                0
            }
        }
    }

    /// Shutdown: streams end now; calls in flight may finish within the grace period.
    pub(crate) fn stop_streams(&self) {
        self.shutdown.cancel();
    }

    /// After the grace period: cancel what is left and free every session's live state.
    pub(crate) fn close_all(&self) {
        self.stop_tasks();
        self.live.close_all();
        self.streams.clear();
        self.sessions.stop();
    }
}
