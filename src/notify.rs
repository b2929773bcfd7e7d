//! Announcing changes to connected clients: list changes and resource updates, from any handler or task.

use std::sync::Arc;

pub use crate::core::catalog::Change;
use crate::runtime::bus::{Bus, MemoryBus};

/// A handle for announcing list changes and resource updates; cheap to clone, usable anywhere.
///
/// Initialize-era sessions receive them on their GET stream (resource updates only for
/// resources they subscribed to); 2026-07-28 clients on their `subscriptions/listen` streams
/// (only the kinds they asked for). List changes are sent only for the lists the server
/// advertises with [`ServerBuilder::list_changed`](crate::ServerBuilder::list_changed).
///
/// ```
/// let server = vouch_mcp::ServerBuilder::new("s", "1", "http://localhost:3000/mcp");
/// let notifier = server.notifier();
/// notifier.resource_updated("file:///notes.txt");
/// ```
#[derive(Debug, Clone)]
pub struct Notifier {
    bus: Arc<dyn Bus>,
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
            bus: Arc::new(MemoryBus::default()),
        }
    }

    /// Announces a change; streams that asked for this kind receive it.
    pub fn send(&self, change: Change) {
        self.bus.publish(change);
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

    /// The bus the streams subscribe to.
    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }
}
