//! Resource limits: the process-wide budget of request bytes in flight, and per-principal counts of in-flight calls and open streams, with a global stream cap.
//!
//! Counts are kept per principal in sharded maps, so one caller at its cap never touches the
//! lock another caller takes. A permit releases its slot when dropped, however the work ends.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::auth::Principal;

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
        if self.budget.try_take(more) {
            self.bytes = bytes;
            return Ok(());
        }
        // Only a request that has to wait reads the clock for its deadline.
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

impl Counts {
    fn slot(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::Call => &mut self.calls,
            Kind::Stream => &mut self.streams,
        }
    }
}

/// A principal's identity as the count maps compare it: `(issuer, subject)` and its hash,
/// owned by a map entry or borrowed from the request's principal, so a lookup copies no string.
///
/// The hash is computed once per permit (SipHash with this process's random key, as a
/// `HashMap` would) and the maps use it as it is, instead of rehashing both strings on every
/// insert, lookup and removal.
trait Key {
    fn parts(&self) -> (&str, &str);
    fn digest(&self) -> u64;
}

fn parts(principal: &Principal) -> (&str, &str) {
    (
        &principal.issuer,
        principal.subject.as_deref().unwrap_or(""),
    )
}

/// A lookup key borrowed from a principal.
struct Probe<'a> {
    issuer: &'a str,
    subject: &'a str,
    digest: u64,
}

impl Key for Probe<'_> {
    fn parts(&self) -> (&str, &str) {
        (self.issuer, self.subject)
    }
    fn digest(&self) -> u64 {
        self.digest
    }
}

/// A map entry's key: the first in-flight principal of its identity, shared rather than copied
/// (an entry lives only while that identity holds a slot, and every slot holds a principal).
#[derive(Debug)]
struct Held {
    principal: Arc<Principal>,
    digest: u64,
}

impl Key for Held {
    fn parts(&self) -> (&str, &str) {
        parts(&self.principal)
    }
    fn digest(&self) -> u64 {
        self.digest
    }
}

impl<'a> Borrow<dyn Key + 'a> for Held {
    fn borrow(&self) -> &(dyn Key + 'a) {
        self
    }
}

impl Hash for dyn Key + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.digest());
    }
}

impl PartialEq for dyn Key + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn Key + '_ {}

// `Held` hashes and compares exactly as the `dyn Key` it borrows as, as `Borrow` requires.
impl Hash for Held {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self as &dyn Key).hash(h);
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Held {}

/// The maps' hasher: a [`Key`]'s digest is already a keyed hash, so it is used as written.
#[derive(Default)]
struct Digest(u64);

impl Hasher for Digest {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called (by `Key`'s `Hash`); fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type CountMap = HashMap<Held, Counts, BuildHasherDefault<Digest>>;

/// Per-principal caps on calls and streams, and the global stream cap.
#[derive(Debug)]
pub(crate) struct PrincipalLimits {
    shards: Vec<Mutex<CountMap>>,
    /// Keys the digests (a random key per process, as `HashMap`'s own).
    hasher: RandomState,
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

/// One in-flight call or open stream of one principal; frees its slot when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    limits: Arc<PrincipalLimits>,
    /// The principal the slot is counted against (shared with the request, not copied).
    principal: Arc<Principal>,
    /// Its key's digest, from when the slot was taken.
    digest: u64,
    kind: Kind,
}

/// The caps, as configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// `MCP_MAX_CALLS_PER_PRINCIPAL`.
    pub(crate) calls_per_principal: usize,
    /// `MCP_MAX_STREAMS_PER_PRINCIPAL`.
    pub(crate) streams_per_principal: usize,
    /// `MCP_MAX_STREAMS`.
    pub(crate) streams: usize,
}

/// The shard a digest's principal is counted in. The maps take their bucket from the low bits
/// and their tag from the top seven, so the shard comes from bits in between.
fn shard_of(digest: u64) -> usize {
    ((digest >> 32) % SHARDS as u64) as usize
}

impl PrincipalLimits {
    /// Limits with `caps`, nothing counted yet.
    pub(crate) fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(CountMap::default()))
                .collect(),
            hasher: RandomState::new(),
            streams: AtomicUsize::new(0),
            max_calls: caps.calls_per_principal,
            max_streams: caps.streams_per_principal,
            max_streams_total: caps.streams,
        })
    }

    /// A slot for one more in-flight call of `principal`.
    pub(crate) fn call(self: &Arc<Self>, principal: &Arc<Principal>) -> Result<Permit, Limit> {
        self.take(principal, Kind::Call)
    }

    /// A slot for one more open stream of `principal`, within the global stream cap.
    pub(crate) fn stream(self: &Arc<Self>, principal: &Arc<Principal>) -> Result<Permit, Limit> {
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams_total).then_some(n + 1)
            })
            .map_err(|_| Limit::Streams)?;
        self.take(principal, Kind::Stream).inspect_err(|_| {
            self.streams.fetch_sub(1, Ordering::AcqRel);
        })
    }

    fn take(self: &Arc<Self>, principal: &Arc<Principal>, kind: Kind) -> Result<Permit, Limit> {
        let (issuer, subject) = parts(principal);
        let key = Probe {
            issuer,
            subject,
            digest: self.hasher.hash_one((issuer, subject)),
        };
        let shard = shard_of(key.digest);
        let (max, limit) = match kind {
            Kind::Call => (self.max_calls, Limit::PrincipalCalls),
            Kind::Stream => (self.max_streams, Limit::PrincipalStreams),
        };
        let mut map = self.shards[shard].lock().expect("limits lock poisoned");
        match map.get_mut(&key as &dyn Key) {
            Some(c) => {
                let n = c.slot(kind);
                if *n >= max {
                    return Err(limit);
                }
                *n += 1;
            }
            None => {
                if max == 0 {
                    return Err(limit);
                }
                let mut c = Counts::default();
                *c.slot(kind) = 1;
                let held = Held {
                    principal: principal.clone(),
                    digest: key.digest,
                };
                map.insert(held, c);
            }
        }
        drop(map);
        Ok(Permit {
            limits: self.clone(),
            principal: principal.clone(),
            digest: key.digest,
            kind,
        })
    }

    /// Streams open right now, all principals.
    #[cfg(test)]
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (issuer, subject) = parts(&self.principal);
        let key = Probe {
            issuer,
            subject,
            digest: self.digest,
        };
        let mut map = self.limits.shards[shard_of(self.digest)]
            .lock()
            .expect("limits lock poisoned");
        if let Some(c) = map.get_mut(&key as &dyn Key) {
            *c.slot(self.kind) -= 1;
            if c.calls == 0 && c.streams == 0 {
                map.remove(&key as &dyn Key);
            }
        }
        drop(map);
        if self.kind == Kind::Stream {
            self.limits.streams.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(sub: &str) -> Arc<Principal> {
        Arc::new(Principal {
            issuer: "i".into(),
            subject: Some(sub.into()),
            ..Principal::default()
        })
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
