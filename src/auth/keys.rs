//! Where verification keys come from: a fixed set, or the issuer's JWKS cached with TTL, single-flight and stale fallback.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::discovery::{self, DiscoveryError};
use super::fetch::{FetchError, Fetched, HttpFetcher};
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

    /// Called when [`KeyProvider::current`] has no set: waits (briefly, bounded by the
    /// provider's own timeout) for a fetch in flight or one it may start, then answers like
    /// `current`. The default waits for nothing.
    fn wait_for_first_set(&self) -> BoxFuture<'_, Result<Arc<KeySet>, u64>> {
        Box::pin(async { self.current() })
    }

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
#[non_exhaustive]
pub enum JwksError {
    /// The HTTP exchange failed.
    Fetch(FetchError),
    /// The body is not a usable JWKS.
    Parse(JwksParseError),
    /// `{issuer}/oauth/jwks` failed and so did discovery through the issuer's metadata.
    Discovery {
        /// Why the guide's location did not serve a JWKS.
        guide: Box<JwksError>,
        /// Why discovery found none.
        discovery: DiscoveryError,
    },
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "jwks fetch failed: {e}"),
            Self::Parse(e) => write!(f, "jwks rejected: {e}"),
            Self::Discovery { guide, discovery } => {
                write!(f, "{guide}; and OIDC discovery failed: {discovery}")
            }
        }
    }
}

impl std::error::Error for JwksError {}

/// The issuer's JWKS, fetched in the background and cached.
///
/// * A background task fetches at start, then again when the TTL runs out; failures retry
///   with backoff while the last good set keeps being served.
/// * Until the first success, requests wait for a fetch in flight (at most the fetch timeout),
///   may ask for one (at most one a second, run by the background task), and otherwise get the
///   time to wait (503 upstream). The backoff is capped at 5 s until then.
/// * An unknown `kid` triggers at most one fetch per cooldown, counted from the last such fetch
///   that succeeded; concurrent callers share it.
#[derive(Debug, Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: Source,
    policy: RefreshPolicy,
    /// Read on every request; written only after a fetch, so readers almost never wait.
    keys: RwLock<Option<Arc<KeySet>>>,
    state: Mutex<FetchState>,
    /// Held for the duration of a fetch: every fetch, scheduled or kid-driven, is single-flight.
    fetch_lock: tokio::sync::Mutex<()>,
    fetch_count: std::sync::atomic::AtomicU64,
    /// Fetches that succeeded (a) and failed (b), and when the current set arrived.
    outcomes: Counters,
    /// Wakes the background task for a fetch a request asked for.
    wake: Arc<Notify>,
    /// Counts finished fetch attempts, so waiting requests see one end.
    attempts: watch::Sender<u64>,
}

/// Where the JWKS comes from.
#[derive(Debug)]
struct Source {
    /// The configured URL, or `{issuer}/oauth/jwks`.
    primary: HttpFetcher,
    /// With no configured URL: the issuer for OIDC discovery, its document's fetcher, and the
    /// `jwks_uri` found there once one served a JWKS.
    discovery: Option<Discovery>,
}

#[derive(Debug)]
struct Discovery {
    issuer: String,
    document: HttpFetcher,
    found: Mutex<Option<HttpFetcher>>,
}

#[derive(Debug, Default)]
struct FetchState {
    consecutive_failures: u32,
    next_attempt: Option<Instant>,
    last_attempt: Option<Instant>,
    last_unknown_kid_fetch: Option<Instant>,
}

impl JwksCache {
    /// A cache for `fetcher`; call [`JwksCache::spawn_refresher`] inside a tokio runtime to start it.
    pub fn new(fetcher: HttpFetcher, policy: RefreshPolicy) -> Self {
        Self::from_source(
            Source {
                primary: fetcher,
                discovery: None,
            },
            policy,
        )
    }

    /// Like [`JwksCache::new`] for the guide's `{issuer}/oauth/jwks` (`fetcher`), falling back to
    /// OIDC discovery (`{issuer}/.well-known/openid-configuration`, whose `issuer` must equal
    /// `issuer` byte for byte) when that URL does not serve a JWKS. The discovery fetch follows
    /// the same rules as `fetcher`: https (or loopback http), timeout, size cap, no redirects.
    pub fn with_discovery(
        fetcher: HttpFetcher,
        issuer: &str,
        policy: RefreshPolicy,
    ) -> Result<Self, FetchError> {
        let document = fetcher.with_url(&discovery::discovery_url(issuer))?;
        Ok(Self::from_source(
            Source {
                primary: fetcher,
                discovery: Some(Discovery {
                    issuer: issuer.to_owned(),
                    document,
                    found: Mutex::new(None),
                }),
            },
            policy,
        ))
    }

    fn from_source(source: Source, policy: RefreshPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                policy,
                keys: RwLock::new(None),
                state: Mutex::new(FetchState::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                fetch_count: Default::default(),
                wake: Arc::new(Notify::new()),
                attempts: watch::channel(0).0,
                outcomes: Counters::default(),
            }),
        }
    }

    /// The JWKS URL in use: a discovered `jwks_uri` once one has served, else the first choice.
    pub fn jwks_url(&self) -> String {
        self.inner.source.current_url()
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
                let delay = inner.until_next_attempt();
                if !delay.is_zero() {
                    let wake = inner.wake.clone();
                    drop(inner);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = wake.notified() => {}
                    }
                    continue;
                }
                let _flight = inner.fetch_lock.lock().await;
                // Another fetch (an unknown kid's) may have landed while this one waited.
                if inner.until_next_attempt().is_zero() {
                    let _ = inner.fetch_and_store().await;
                }
            }
        })
    }
}

impl Source {
    fn current_url(&self) -> String {
        self.discovery
            .as_ref()
            .and_then(|d| d.found.lock().expect("discovery lock poisoned").clone())
            .unwrap_or_else(|| self.primary.clone())
            .uri()
            .to_string()
    }

    /// One fetch: the discovered `jwks_uri` once known, else the first choice and, when that
    /// does not serve a JWKS, discovery.
    async fn fetch(
        &self,
    ) -> Result<(KeySet, Vec<super::jwks::SkippedKey>, Option<u64>), JwksError> {
        let found = self
            .discovery
            .as_ref()
            .and_then(|d| d.found.lock().expect("discovery lock poisoned").clone());
        if let Some(found) = found {
            return fetch_set(&found).await;
        }
        let guide = match fetch_set(&self.primary).await {
            Ok(set) => return Ok(set),
            Err(e) => e,
        };
        let Some(discovery) = &self.discovery else {
            return Err(guide);
        };
        // A down issuer fails the same way at every URL: only a reply that is not a JWKS
        // (a 404, a redirect, an HTML page) sends the fetch to discovery.
        if matches!(
            guide,
            JwksError::Fetch(
                FetchError::Connect(_)
                    | FetchError::Tls(_)
                    | FetchError::Timeout
                    | FetchError::Http(_)
            )
        ) {
            return Err(guide);
        }
        let fail = |discovery| JwksError::Discovery {
            guide: Box::new(guide),
            discovery,
        };
        let document = match discovery.document.fetch().await {
            Ok(Fetched { body, .. }) => body,
            Err(e) => return Err(fail(DiscoveryError::Fetch(e))),
        };
        let uri = match discovery::jwks_uri(&document, &discovery.issuer) {
            Ok(uri) => uri,
            Err(e) => return Err(fail(e)),
        };
        let fetcher = match self.primary.with_url(&uri) {
            Ok(f) => f,
            Err(e) => return Err(fail(DiscoveryError::BadJwksUri(e))),
        };
        let set = fetch_set(&fetcher).await?;
        log::info(format_args!(
            "jwks found through OIDC discovery: {} names jwks_uri={}",
            discovery.document.uri(),
            fetcher.uri()
        ));
        *discovery.found.lock().expect("discovery lock poisoned") = Some(fetcher);
        Ok(set)
    }
}

async fn fetch_set(
    fetcher: &HttpFetcher,
) -> Result<(KeySet, Vec<super::jwks::SkippedKey>, Option<u64>), JwksError> {
    let fetched = fetcher.fetch().await.map_err(JwksError::Fetch)?;
    let (set, skipped) = KeySet::parse(&fetched.body).map_err(JwksError::Parse)?;
    Ok((set, skipped, fetched.max_age))
}

impl Inner {
    fn until_next_attempt(&self) -> Duration {
        let state = self.state.lock().expect("state lock poisoned");
        state.next_attempt.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }

    fn ever_loaded(&self) -> bool {
        self.keys.read().expect("keys lock poisoned").is_some()
    }

    /// Fetches and installs a new set; returns its TTL. Caller holds `fetch_lock`.
    async fn fetch_and_store(&self) -> Result<Duration, JwksError> {
        self.fetch_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state.lock().expect("state lock poisoned").last_attempt = Some(Instant::now());
        let result = self.source.fetch().await;
        let outcome = self.store(result);
        self.attempts.send_modify(|n| *n += 1);
        outcome
    }

    fn store(
        &self,
        result: Result<(KeySet, Vec<super::jwks::SkippedKey>, Option<u64>), JwksError>,
    ) -> Result<Duration, JwksError> {
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
                    self.source.current_url(),
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
                let ever_loaded = self.ever_loaded();
                self.outcomes.bump_b();
                let mut state = self.state.lock().expect("state lock poisoned");
                state.consecutive_failures += 1;
                let delay = self.policy.backoff(state.consecutive_failures, ever_loaded);
                state.next_attempt = Some(now + delay);
                let serving = if ever_loaded {
                    "serving the last good set"
                } else {
                    "no key set yet; requests get 503"
                };
                log::warn(format_args!(
                    "{e}: url={} failures={} retry_in_ms={} ({serving})",
                    self.source.current_url(),
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
        // Nothing loaded: a request may ask for a fetch once the minimum interval has passed.
        let state = self.inner.state.lock().expect("state lock poisoned");
        let wait = state.last_attempt.map_or(1, |t| {
            (t + self.inner.policy.min_fetch_interval)
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        });
        Err(wait)
    }

    fn wait_for_first_set(&self) -> BoxFuture<'_, Result<Arc<KeySet>, u64>> {
        Box::pin(async move {
            let inner = &self.inner;
            let mut finished = inner.attempts.subscribe();
            let in_flight = inner.fetch_lock.try_lock().is_err();
            if !in_flight {
                let mut state = inner.state.lock().expect("state lock poisoned");
                if !inner
                    .policy
                    .may_fetch_on_demand(state.last_attempt, Instant::now())
                {
                    drop(state);
                    return self.current();
                }
                // The background task runs the fetch, so a request that gives up never cancels it.
                state.next_attempt = Some(Instant::now());
                inner.wake.notify_one();
            }
            let timeout = inner.source.primary.timeout();
            let _ = tokio::time::timeout(timeout, finished.changed()).await;
            self.current()
        })
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
                let state = inner.state.lock().expect("state lock poisoned");
                if !inner.policy.may_refetch_for_unknown_kid(
                    state.last_unknown_kid_fetch,
                    state.last_attempt,
                    now,
                ) {
                    return None;
                }
            }
            // Only a fetch that succeeded starts the cooldown: after a failure the next unknown
            // kid may try again once the minimum interval has passed.
            inner.fetch_and_store().await.ok()?;
            inner
                .state
                .lock()
                .expect("state lock poisoned")
                .last_unknown_kid_fetch = Some(now);
            newer()
        })
    }
}
