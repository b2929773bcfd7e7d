//! The notification fan-out: changes published by any handler or task reach every open stream.
//!
//! Behind a trait so that a shared backend can carry changes between replicas; the in-memory
//! bus is a broadcast channel. Subscribers that fall [`BACKLOG`] changes behind skip the oldest
//! ones: changes are hints to re-list, so losing a duplicate is harmless.

use std::fmt;

use tokio::sync::broadcast;

use crate::core::catalog::Change;

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
