//! Change notifications a server sends when its lists or resources change.

use tokio::sync::broadcast;

/// One change, fanned out to every open GET stream and `subscriptions/listen` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The tool list changed.
    Tools,
    /// The prompt list changed.
    Prompts,
    /// The resource list changed.
    Resources,
    /// This resource's content changed.
    ResourceUpdated(String),
}

impl Change {
    /// The notification method.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Tools => "notifications/tools/list_changed",
            Self::Prompts => "notifications/prompts/list_changed",
            Self::Resources => "notifications/resources/list_changed",
            Self::ResourceUpdated(_) => "notifications/resources/updated",
        }
    }
}

/// Streams that fall this far behind skip the oldest changes (they are hints to re-list).
const BACKLOG: usize = 256;

/// A handle for announcing changes; cheap to clone, usable from any handler or task.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Change>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifier {
    /// A notifier with no listeners yet.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }

    /// Announces a change; streams that asked for this kind receive it.
    pub fn send(&self, change: Change) {
        // No listeners is not an error: nobody needs telling.
        let _ = self.tx.send(change);
    }

    /// `notifications/tools/list_changed`.
    pub fn tools_changed(&self) {
        self.send(Change::Tools)
    }

    /// `notifications/prompts/list_changed`.
    pub fn prompts_changed(&self) {
        self.send(Change::Prompts)
    }

    /// `notifications/resources/list_changed`.
    pub fn resources_changed(&self) {
        self.send(Change::Resources)
    }

    /// `notifications/resources/updated` for `uri`.
    pub fn resource_updated(&self, uri: impl Into<String>) {
        self.send(Change::ResourceUpdated(uri.into()))
    }

    /// A new receiver (the shell makes one per stream).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}
