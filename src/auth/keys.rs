//! Where verification keys come from: a fixed set, or the issuer's JWKS cached with TTL, single-flight and stale fallback.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::fetch::{FetchError, HttpFetcher};
use super::jwks::{JwksParseError, KeySet};
use super::refresh::RefreshPolicy;
use super::stats::{Counters, KeyStatus};
use crate::log;

/// A boxed future, as returned by [`KeyProvider::refresh_for_unknown_kid`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The source of keys the authenticator verifies against.
pub trait KeyProvider: Send + Sync + 'static {
    /// The current set; `Err(seconds)` while no set has ever been obtained (the caller answers 503).
    fn current(&self) -> Result<Arc<KeySet>, u64>;

    /// A token named a `kid` that `stale` (the set the caller verified against) lacks. The
    /// provider may refetch (rate-limited, single-flight) and returns a newer set to retry with,
    /// or `None` if there is none.
    fn refresh_for_unknown_kid<'a>(
        &'a self,
        stale: &'a Arc<KeySet>,
    ) -> BoxFuture<'a, Option<Arc<KeySet>>>;

    /// The source's state for readiness and metrics. The default knows only the current set.
    fn status(&self) -> KeyStatus {
        KeyStatus {
            keys: self.current().ok().map(|k| k.len()),
            ..KeyStatus::default()
        }
    }
}

/// A fixed key set (embedding with pinned keys, tests).
#[derive(Debug, Clone)]
pub struct StaticKeys(pub Arc<KeySet>);

impl KeyProvider for StaticKeys {
    fn current(&self) -> Result<Arc<KeySet>, u64> {
        Ok(self.0.clone())
    }
    fn refresh_for_unknown_kid<'a>(
        &'a self,
        _stale: &'a Arc<KeySet>,
    ) -> BoxFuture<'a, Option<Arc<KeySet>>> {
        Box::pin(async { None })
    }
}

/// Why one fetch produced no key set.
#[derive(Debug)]
pub enum JwksError {
    /// The HTTP exchange failed.
    Fetch(FetchError),
    /// The body is not a usable JWKS.
    Parse(JwksParseError),
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "jwks fetch failed: {e}"),
            Self::Parse(e) => write!(f, "jwks rejected: {e}"),
        }
    }
}

impl std::error::Error for JwksError {}

/// The issuer's JWKS, fetched in the background and cached.
///
/// * A background task fetches at start, then again when the TTL runs out; failures retry
///   with backoff while the last good set keeps being served.
/// * Until the first success, [`KeyProvider::current`] says how long to wait (503 upstream).
/// * An unknown `kid` triggers at most one fetch per cooldown; concurrent callers share it.
#[derive(Debug, Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fetcher: HttpFetcher,
    policy: RefreshPolicy,
    /// Read on every request; written only after a fetch, so readers almost never wait.
    keys: RwLock<Option<Arc<KeySet>>>,
    state: Mutex<FetchState>,
    /// Held for the duration of a fetch: every fetch, scheduled or kid-driven, is single-flight.
    fetch_lock: tokio::sync::Mutex<()>,
    fetch_count: std::sync::atomic::AtomicU64,
    /// Fetches that succeeded (a) and failed (b), and when the current set arrived.
    outcomes: Counters,
}

#[derive(Debug, Default)]
struct FetchState {
    consecutive_failures: u32,
    next_attempt: Option<Instant>,
    last_unknown_kid_fetch: Option<Instant>,
}

impl JwksCache {
    /// A cache for `fetcher`; call [`JwksCache::spawn_refresher`] inside a tokio runtime to start it.
    pub fn new(fetcher: HttpFetcher, policy: RefreshPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                fetcher,
                policy,
                keys: RwLock::new(None),
                state: Mutex::new(FetchState::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                fetch_count: Default::default(),
                outcomes: Counters::default(),
            }),
        }
    }

    /// How many fetches have been attempted (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.inner
            .fetch_count
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts the background refresh loop; it ends when every handle to the cache is dropped.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let delay = {
                    let _flight = inner.fetch_lock.lock().await;
                    match inner.fetch_and_store().await {
                        Ok(ttl) => ttl,
                        Err(_) => inner.failure_delay(),
                    }
                };
                drop(inner);
                tokio::time::sleep(delay).await;
            }
        })
    }
}

impl Inner {
    fn failure_delay(&self) -> Duration {
        let state = self.state.lock().expect("state lock poisoned");
        state.next_attempt.map_or(self.policy.backoff_initial, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }

    /// Fetches and installs a new set; returns its TTL. Caller holds `fetch_lock`.
    async fn fetch_and_store(&self) -> Result<Duration, JwksError> {
        self.fetch_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = match self.fetcher.fetch().await {
            Ok(fetched) => KeySet::parse(&fetched.body)
                .map(|(set, skipped)| (set, skipped, fetched.max_age))
                .map_err(JwksError::Parse),
            Err(e) => Err(JwksError::Fetch(e)),
        };
        let now = Instant::now();
        match result {
            Ok((set, skipped, max_age)) => {
                for s in &skipped {
                    log::warn(format_args!(
                        "jwks key skipped: index={} kid={:?} reason={}",
                        s.index, s.kid, s.reason
                    ));
                }
                let ttl = self.policy.ttl(max_age);
                log::info(format_args!(
                    "jwks fetched: url={} keys={} skipped={} ttl_secs={}",
                    self.fetcher.uri(),
                    set.len(),
                    skipped.len(),
                    ttl.as_secs()
                ));
                *self.keys.write().expect("keys lock poisoned") = Some(Arc::new(set));
                self.outcomes.bump_a();
                self.outcomes.stamp();
                let mut state = self.state.lock().expect("state lock poisoned");
                state.consecutive_failures = 0;
                state.next_attempt = Some(now + ttl);
                Ok(ttl)
            }
            Err(e) => {
                self.outcomes.bump_b();
                let mut state = self.state.lock().expect("state lock poisoned");
                state.consecutive_failures += 1;
                let delay = self.policy.backoff(state.consecutive_failures);
                state.next_attempt = Some(now + delay);
                let serving = if self.keys.read().expect("keys lock poisoned").is_some() {
                    "serving the last good set"
                } else {
                    "no key set yet; requests get 503"
                };
                log::warn(format_args!(
                    "{e}: url={} failures={} retry_in_ms={} ({serving})",
                    self.fetcher.uri(),
                    state.consecutive_failures,
                    delay.as_millis()
                ));
                Err(e)
            }
        }
    }
}

impl KeyProvider for JwksCache {
    fn status(&self) -> KeyStatus {
        let (fetches_ok, fetches_failed) = self.inner.outcomes.read();
        KeyStatus {
            keys: self.current().ok().map(|k| k.len()),
            fetched_at: self.inner.outcomes.stamped(),
            fetches_ok,
            fetches_failed,
        }
    }

    fn current(&self) -> Result<Arc<KeySet>, u64> {
        if let Some(keys) = self.inner.keys.read().expect("keys lock poisoned").as_ref() {
            return Ok(keys.clone());
        }
        let state = self.inner.state.lock().expect("state lock poisoned");
        let wait = state.next_attempt.map_or(1, |t| {
            t.saturating_duration_since(Instant::now()).as_secs().max(1)
        });
        Err(wait)
    }

    fn refresh_for_unknown_kid<'a>(
        &'a self,
        stale: &'a Arc<KeySet>,
    ) -> BoxFuture<'a, Option<Arc<KeySet>>> {
        Box::pin(async move {
            // A newer set than the caller's (another caller's refetch, or the scheduled refresh,
            // landed in between): retry with it, no fetch needed.
            let newer = || self.current().ok().filter(|cur| !Arc::ptr_eq(cur, stale));
            if let Some(cur) = newer() {
                return Some(cur);
            }
            let inner = &self.inner;
            let _flight = inner.fetch_lock.lock().await;
            if let Some(cur) = newer() {
                return Some(cur);
            }
            let now = Instant::now();
            {
                let mut state = inner.state.lock().expect("state lock poisoned");
                if !inner
                    .policy
                    .may_refetch_for_unknown_kid(state.last_unknown_kid_fetch, now)
                {
                    return None;
                }
                state.last_unknown_kid_fetch = Some(now);
            }
            inner.fetch_and_store().await.ok()?;
            newer()
        })
    }
}
