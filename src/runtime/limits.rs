//! Resource limits: the process-wide budget of request bytes in flight, and per-principal counts of in-flight calls and open streams, with a global stream cap.
//!
//! Counts are kept per principal in sharded maps, so one caller at its cap never touches the
//! lock another caller takes. A permit releases its slot when dropped, however the work ends.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::session::Owner;

const SHARDS: usize = 16;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The process's budget of request bytes in flight (`MCP_MAX_INFLIGHT_BYTES`).
    InflightBytes,
    /// This principal's in-flight calls (`MCP_MAX_CALLS_PER_PRINCIPAL`).
    PrincipalCalls,
    /// This principal's open streams (`MCP_MAX_STREAMS_PER_PRINCIPAL`).
    PrincipalStreams,
    /// Open streams, all principals (`MCP_MAX_STREAMS`).
    Streams,
}

impl Limit {
    /// The setting that raises it.
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Self::InflightBytes => "MCP_MAX_INFLIGHT_BYTES",
            Self::PrincipalCalls => "MCP_MAX_CALLS_PER_PRINCIPAL",
            Self::PrincipalStreams => "MCP_MAX_STREAMS_PER_PRINCIPAL",
            Self::Streams => "MCP_MAX_STREAMS",
        }
    }

    /// True for a cap of one principal (429), false for a cap of the whole server (503).
    pub(crate) fn is_per_principal(self) -> bool {
        matches!(self, Self::PrincipalCalls | Self::PrincipalStreams)
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InflightBytes => "the server's budget of request bytes in flight is used up",
            Self::PrincipalCalls => "this user has as many calls in flight as it may",
            Self::PrincipalStreams => "this user has as many streams open as it may",
            Self::Streams => "the server has as many streams open as it may",
        })
    }
}

/// The budget of request bytes (bodies and their parsed form) in flight, process-wide.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    capacity: u64,
    used: AtomicU64,
    freed: Notify,
}

/// A reservation against the [`ByteBudget`]; released on drop.
#[derive(Debug)]
pub(crate) struct BytePermit {
    budget: Arc<ByteBudget>,
    bytes: u64,
}

impl ByteBudget {
    /// A budget of `capacity` bytes.
    pub(crate) fn new(capacity: u64) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            used: AtomicU64::new(0),
            freed: Notify::new(),
        })
    }

    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let after = used.checked_add(bytes)?;
                (after <= self.capacity).then_some(after)
            })
            .is_ok()
    }

    /// Reserves `bytes`, waiting at most `wait` for others to free room.
    pub(crate) async fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        wait: Duration,
    ) -> Result<BytePermit, Limit> {
        let mut permit = BytePermit {
            budget: self.clone(),
            bytes: 0,
        };
        permit.grow_to(bytes, wait).await?;
        Ok(permit)
    }

    /// Bytes reserved right now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

impl BytePermit {
    /// Grows the reservation to `bytes` (no-op when it is already that large).
    pub(crate) async fn grow_to(&mut self, bytes: u64, wait: Duration) -> Result<(), Limit> {
        if bytes <= self.bytes {
            return Ok(());
        }
        let more = bytes - self.bytes;
        if more > self.budget.capacity {
            return Err(Limit::InflightBytes);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a release in between is not missed.
            let freed = self.budget.freed.notified();
            if self.budget.try_take(more) {
                self.bytes = bytes;
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Limit::InflightBytes);
            }
        }
    }

    /// Bytes this permit holds.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for BytePermit {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
            self.budget.freed.notify_waiters();
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    calls: usize,
    streams: usize,
}

/// Per-principal caps on calls and streams, and the global stream cap.
#[derive(Debug)]
pub(crate) struct PrincipalLimits {
    shards: Vec<Mutex<HashMap<Owner, Counts>>>,
    streams: AtomicUsize,
    max_calls: usize,
    max_streams: usize,
    max_streams_total: usize,
}

/// What a permit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Stream,
}

/// A slot of one principal's calls or streams; released on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    limits: Arc<PrincipalLimits>,
    owner: Owner,
    kind: Kind,
}

/// The caps [`PrincipalLimits`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// In-flight calls per principal.
    pub(crate) calls_per_principal: usize,
    /// Open streams per principal.
    pub(crate) streams_per_principal: usize,
    /// Open streams, all principals.
    pub(crate) streams: usize,
}

impl PrincipalLimits {
    /// Counters for these caps.
    pub(crate) fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            streams: AtomicUsize::new(0),
            max_calls: caps.calls_per_principal,
            max_streams: caps.streams_per_principal,
            max_streams_total: caps.streams,
        })
    }

    fn shard(&self, owner: &Owner) -> &Mutex<HashMap<Owner, Counts>> {
        let mut h = DefaultHasher::new();
        owner.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    /// A slot for one more in-flight call of `owner`.
    pub(crate) fn call(self: &Arc<Self>, owner: &Owner) -> Result<Permit, Limit> {
        self.take(owner, Kind::Call)
    }

    /// A slot for one more open stream of `owner` (and of the server).
    pub(crate) fn stream(self: &Arc<Self>, owner: &Owner) -> Result<Permit, Limit> {
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams_total).then_some(n + 1)
            })
            .map_err(|_| Limit::Streams)?;
        self.take(owner, Kind::Stream).inspect_err(|_| {
            self.streams.fetch_sub(1, Ordering::AcqRel);
        })
    }

    fn take(self: &Arc<Self>, owner: &Owner, kind: Kind) -> Result<Permit, Limit> {
        let mut shard = self.shard(owner).lock().expect("limits lock poisoned");
        let counts = shard.entry(owner.clone()).or_default();
        let (n, max, limit) = match kind {
            Kind::Call => (&mut counts.calls, self.max_calls, Limit::PrincipalCalls),
            Kind::Stream => (
                &mut counts.streams,
                self.max_streams,
                Limit::PrincipalStreams,
            ),
        };
        if *n >= max {
            return Err(limit);
        }
        *n += 1;
        Ok(Permit {
            limits: self.clone(),
            owner: owner.clone(),
            kind,
        })
    }

    /// Open streams, all principals.
    #[cfg(test)]
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut shard = self
            .limits
            .shard(&self.owner)
            .lock()
            .expect("limits lock poisoned");
        if let Some(c) = shard.get_mut(&self.owner) {
            match self.kind {
                Kind::Call => c.calls -= 1,
                Kind::Stream => c.streams -= 1,
            }
            if c.calls == 0 && c.streams == 0 {
                shard.remove(&self.owner);
            }
        }
        drop(shard);
        if self.kind == Kind::Stream {
            self.limits.streams.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(sub: &str) -> Owner {
        Owner {
            issuer: "i".into(),
            subject: sub.into(),
        }
    }

    #[tokio::test]
    async fn the_byte_budget_waits_briefly_then_refuses_and_frees_on_drop() {
        let b = ByteBudget::new(100);
        let a = b.reserve(60, Duration::ZERO).await.unwrap();
        assert_eq!(
            b.reserve(60, Duration::from_millis(20)).await.unwrap_err(),
            Limit::InflightBytes
        );
        let waiting = {
            let b = b.clone();
            tokio::spawn(async move {
                b.reserve(60, Duration::from_secs(2))
                    .await
                    .map(|p| p.bytes())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert_eq!(waiting.await.unwrap(), Ok(60));
        assert_eq!(b.used(), 0, "the waiter's permit was dropped with its task");
        assert!(
            b.reserve(101, Duration::from_secs(5)).await.is_err(),
            "never fits"
        );
    }

    #[test]
    fn per_principal_caps_leave_other_principals_alone() {
        let l = PrincipalLimits::new(Caps {
            calls_per_principal: 2,
            streams_per_principal: 1,
            streams: 2,
        });
        let (a1, _a2) = (l.call(&owner("a")).unwrap(), l.call(&owner("a")).unwrap());
        assert_eq!(l.call(&owner("a")).unwrap_err(), Limit::PrincipalCalls);
        assert!(l.call(&owner("b")).is_ok());
        drop(a1);
        assert!(l.call(&owner("a")).is_ok());
        let s = l.stream(&owner("a")).unwrap();
        assert_eq!(l.stream(&owner("a")).unwrap_err(), Limit::PrincipalStreams);
        let _t = l.stream(&owner("b")).unwrap();
        assert_eq!(l.stream(&owner("c")).unwrap_err(), Limit::Streams);
        drop(s);
        assert_eq!(l.open_streams(), 1);
        assert!(l.stream(&owner("c")).is_ok());
    }
}
