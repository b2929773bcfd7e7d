//! The fan-out between streams and replicas: changes published by any handler or task reach every open stream, and messages to other replicas (cancellations, answers, ended sessions).
//!
//! Behind traits so that a shared backend can carry them between replicas; the in-memory bus is
//! a broadcast channel and a process alone has no peers. Subscribers that fall [`BACKLOG`]
//! changes behind skip the oldest ones: changes are hints to re-list, so losing a duplicate is
//! harmless.

use std::fmt;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::core::catalog::Change;
use crate::core::message::Id;

/// What one replica tells the others about the sessions they share.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PeerMessage {
    /// `notifications/cancelled` for a request that may run on another replica.
    Cancel { session: String, request: Id },
    /// The client's answer to server-to-client request `id`, for the replica that waits.
    Answer {
        session: String,
        id: String,
        outcome: Result<Value, Value>,
    },
    /// The session was deleted or expired: free what you hold for it.
    Ended { session: String },
    /// The session's record changed (log level, subscriptions): drop any cached copy.
    Changed { session: String },
}

/// The other replicas of the deployment, as one replica reaches them. Sends never wait: a
/// message that cannot be carried is dropped and logged.
pub(crate) trait Peers: Send + Sync + fmt::Debug + 'static {
    /// This replica's id (in server-to-client request ids and log lines).
    fn replica(&self) -> &str;
    /// Sends to every other replica, or only to `to` when given.
    fn send(&self, to: Option<&str>, message: PeerMessage);
    /// Sends to every other replica and completes once each one that received it has acted
    /// on it (so a response sent after it cannot overtake it: after a DELETE's answer no replica
    /// serves the session), or once that failed or took too long.
    fn announce(&self, message: PeerMessage) -> crate::runtime::session::BoxFut<'_, ()>;
}

/// Changes a slow stream may fall behind before it skips the oldest.
pub(crate) const BACKLOG: usize = 256;

/// Carries changes to every subscriber.
pub(crate) trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Announces a change to every subscriber, on this replica and (for a shared bus) the others.
    fn publish(&self, change: Change);
    /// A receiver of every change published after this call.
    fn subscribe(&self) -> broadcast::Receiver<Change>;
}

/// The in-process bus.
#[derive(Debug)]
pub(crate) struct MemoryBus {
    tx: broadcast::Sender<Change>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Bus for MemoryBus {
    fn publish(&self, change: Change) {
        // No subscriber is not an error: nobody needs telling.
        let _ = self.tx.send(change);
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_changes_published_after_they_subscribed() {
        let bus = MemoryBus::default();
        bus.publish(Change::Tools);
        let mut rx = bus.subscribe();
        bus.publish(Change::ResourceUpdated("a://b".into()));
        assert_eq!(
            rx.recv().await.unwrap(),
            Change::ResourceUpdated("a://b".into())
        );
    }
}
