//! What the auth layer reports about itself for readiness and metrics: the key source's state and the verification caches' hits and misses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state of a key source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// Usable keys in the current set; `None` while no set has been obtained.
    pub keys: Option<usize>,
    /// When the current set was fetched (`None` for a fixed set).
    pub fetched_at: Option<SystemTime>,
    /// Fetches that produced a key set.
    pub fetches_ok: u64,
    /// Fetches that failed (network, HTTP, or an unusable document).
    pub fetches_failed: u64,
}

/// The authenticator's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthStatus {
    /// The key source.
    pub keys: KeyStatus,
    /// Verifications answered by the per-connection memo or the shared cache.
    pub cache_hits: u64,
    /// Tokens verified in full (the caches did not have them).
    pub cache_misses: u64,
}

/// Relaxed counters: read only for metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) a: AtomicU64,
    pub(crate) b: AtomicU64,
    /// Unix milliseconds of the last success (0: never).
    pub(crate) at_ms: AtomicU64,
}

impl Counters {
    pub(crate) fn bump_a(&self) {
        self.a.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bump_b(&self) {
        self.b.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> (u64, u64) {
        (
            self.a.load(Ordering::Relaxed),
            self.b.load(Ordering::Relaxed),
        )
    }

    /// Records a success at the current wall-clock time (the key source already reads clocks).
    pub(crate) fn stamp(&self) {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.at_ms.store(ms.max(1), Ordering::Relaxed);
    }

    pub(crate) fn stamped(&self) -> Option<SystemTime> {
        match self.at_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }
}
