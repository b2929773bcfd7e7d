//! Announcing changes to connected clients: list changes and resource updates, from any handler or task.

use std::sync::{Arc, OnceLock};

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
///
/// With a shared backend (feature `redis`), a change announced on one replica reaches the
/// streams of every replica; the handle is used the same way.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Chosen when the server is built: this process's bus, or the shared backend's.
    bus: Arc<OnceLock<Arc<dyn Bus>>>,
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
            bus: Arc::new(OnceLock::new()),
        }
    }

    /// Announces a change; streams that asked for this kind receive it.
    pub fn send(&self, change: Change) {
        // Before the server is built nothing listens yet: there is nobody to tell.
        if let Some(bus) = self.bus.get() {
            bus.publish(change);
        }
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

    /// The bus the streams subscribe to (this process's, unless a shared one was chosen).
    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        self.bus.get_or_init(|| Arc::new(MemoryBus::default()))
    }

    /// Carries changes on `bus` (a shared backend's); false when the notifier was already
    /// in use with another bus.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn use_bus(&self, bus: Arc<dyn Bus>) -> bool {
        self.bus.set(bus).is_ok()
    }
}
