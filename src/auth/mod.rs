//! Request authorization: bearer extraction, signature verification against the issuer's keys, scopes.
//!
//! * [`algorithm`]: the configurable allow-list (ES256, RS256, PS256, EdDSA).
//! * [`jwt`]: the verifier (pure); [`es256`]: the table-based P-256 check it uses.
//! * [`jwks`]: JWKS parsing into usable keys (pure).
//! * [`refresh`]: when to refetch keys (pure).
//! * [`keys`]: key providers: a fixed set, or the cached JWKS fetched by [`fetch`] (found through
//!   [`discovery`] when needed).
//! * [`bearer`] and [`challenge`]: RFC 6750 on the way in and on the way out.
//! * [`metadata`]: the RFC 9728 document.
//! * [`cache`]: verification outcomes, reused while they provably still hold.
//! * [`limiter`]: the per-client limit on signature failures.

pub mod algorithm;
pub mod bearer;
pub mod cache;
pub mod challenge;
pub mod discovery;
pub mod es256;
pub mod fetch;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod limiter;
pub mod metadata;
pub mod refresh;
pub mod stats;
pub mod strict_json;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use tokio::sync::Semaphore;

pub use algorithm::Algorithm;
pub use bearer::{BearerError, Credentials};
pub use challenge::{AuthError, Challenger, Rejection};
pub use fetch::{FetchError, HttpFetcher};
pub use jwks::{JwksParseError, KeySet};
pub use jwt::{AudiencePolicy, JwtError, Policy, Principal, TypPolicy};
pub use keys::{JwksCache, KeyProvider, StaticKeys};
pub use refresh::RefreshPolicy;
pub use stats::{AuthStatus, KeyStatus};

/// One connection's last successful verification (HTTP/1.1 requests on a connection are
/// sequential, so the lock is never contended).
#[derive(Debug, Default)]
pub(crate) struct ConnectionMemo(std::sync::Mutex<Option<Memo>>);

#[derive(Debug)]
struct Memo {
    /// The whole `Authorization` value, compared byte for byte.
    header: http::HeaderValue,
    principal: Arc<Principal>,
    /// The key set it was verified against; a refresh ends the memo.
    keys: Arc<KeySet>,
    /// Usable while `valid_from <= now < valid_until` (leeway applied), as in the shared cache.
    valid_from: f64,
    valid_until: f64,
}

impl ConnectionMemo {
    fn hit(
        &self,
        headers: &HeaderMap,
        keys: Option<Arc<KeySet>>,
        now: u64,
    ) -> Option<Arc<Principal>> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let (value, None) = (values.next()?, values.next()) else {
            return None;
        };
        let keys = keys?;
        let memo = self.0.lock().expect("memo lock poisoned");
        let m = memo.as_ref()?;
        let now = now as f64;
        (m.header.as_bytes() == value.as_bytes()
            && Arc::ptr_eq(&m.keys, &keys)
            && m.valid_from <= now
            && now < m.valid_until)
            .then(|| m.principal.clone())
    }

    fn remember(
        &self,
        headers: &HeaderMap,
        principal: &Arc<Principal>,
        keys: Arc<KeySet>,
        leeway_secs: u64,
    ) {
        let Some(header) = headers.get(http::header::AUTHORIZATION) else {
            return;
        };
        let leeway = leeway_secs as f64;
        let valid_from = principal
            .claims
            .get("nbf")
            .and_then(serde_json::Value::as_f64)
            .map_or(f64::NEG_INFINITY, |nbf| nbf - leeway);
        *self.0.lock().expect("memo lock poisoned") = Some(Memo {
            header: header.clone(),
            principal: principal.clone(),
            keys,
            valid_from,
            valid_until: principal.expires_at + leeway,
        });
    }
}

/// Failed verifications remembered at once (for [`cache::FAILURE_TTL_SECS`] each).
const FAILED_ENTRIES: usize = 8_192;
/// The default delay before a bad-signature refusal is sent (`VOUCH_SIGNATURE_FAILURE_DELAY_MS`).
pub const DEFAULT_SIGNATURE_FAILURE_DELAY: Duration = Duration::from_millis(500);

/// Verifies the bearer token of each request and checks the server-wide scopes.
///
/// Defaults: a cache of [`cache::DEFAULT_ENTRIES`] verifications, at most
/// [`default_verify_concurrency`] full verifications at once, [`limiter::DEFAULT_PER_MINUTE`] signature
/// failures a minute per client address, and [`DEFAULT_SIGNATURE_FAILURE_DELAY`] before a
/// bad-signature refusal (401 or 429) is sent.
///
/// Why the delay: a signature that does not verify is never a legitimate client's mistake (an
/// expired or mis-addressed token fails other checks, with no delay), so holding the refusal
/// back costs honest clients nothing, while a flood of forged tokens is slowed to one request per
/// connection per delay, whatever the per-client limit can see.
pub struct Authenticator {
    policy: Policy,
    keys: Arc<dyn KeyProvider>,
    required_scopes: Vec<String>,
    /// Boxed: it is large, and an authenticator is often held by value in an enum.
    guard: Box<Guard>,
}

/// The caches and limits that keep repeated and forged tokens cheap.
struct Guard {
    verified: cache::VerifiedCache,
    failed: cache::FailedCache,
    limiter: limiter::FailureLimiter,
    /// Full verifications in flight. Only they wait here: cache hits, malformed tokens and
    /// everything that needs no signature check never queue behind a flood of them.
    verify_slots: Semaphore,
    full_verifications: AtomicU64,
    signature_failure_delay: Duration,
    /// Cache hits (a) and full verifications (b), for metrics.
    counts: stats::Counters,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("policy", &self.policy)
            .field("required_scopes", &self.required_scopes)
            .finish_non_exhaustive()
    }
}

/// The default number of concurrent full verifications: one less than the number of cores (at
/// least one), so a core always remains for cache hits and everything that needs no signature
/// check. A verify takes tens of microseconds, so one core already verifies far more tokens a
/// second than the HTTP stack serves requests.
pub fn default_verify_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl Authenticator {
    /// `required_scopes` apply to every request (may be empty).
    pub fn new(policy: Policy, keys: Arc<dyn KeyProvider>, required_scopes: Vec<String>) -> Self {
        Self {
            policy,
            keys,
            required_scopes,
            guard: Box::new(Guard {
                verified: cache::VerifiedCache::default(),
                failed: cache::FailedCache::new(FAILED_ENTRIES),
                limiter: limiter::FailureLimiter::new(limiter::DEFAULT_PER_MINUTE),
                verify_slots: Semaphore::new(default_verify_concurrency()),
                full_verifications: AtomicU64::new(0),
                signature_failure_delay: DEFAULT_SIGNATURE_FAILURE_DELAY,
                counts: stats::Counters::default(),
            }),
        }
    }

    /// The key source's state and the caches' hits and misses (readiness, metrics).
    pub fn status(&self) -> AuthStatus {
        let (cache_hits, cache_misses) = self.guard.counts.read();
        AuthStatus {
            keys: self.keys.status(),
            cache_hits,
            cache_misses,
        }
    }

    /// Holds bad-signature refusals back this long (zero: answer at once). A non-zero delay
    /// sleeps on the tokio timer, so the runtime must have timers enabled (`enable_all` or
    /// `enable_time`, as `#[tokio::main]` and the server's runtime do); an embedder running the
    /// authenticator on a runtime without them sets zero here.
    pub fn with_signature_failure_delay(mut self, delay: Duration) -> Self {
        self.guard.signature_failure_delay = delay;
        self
    }

    /// Keeps at most `entries` successful verifications (0 turns the cache off).
    pub fn with_verify_cache_entries(mut self, entries: usize) -> Self {
        self.guard.verified = cache::VerifiedCache::new(entries);
        self
    }

    /// Allows each client address `per_minute` signature failures a minute (0: no limit).
    pub fn with_signature_failure_limit(mut self, per_minute: u32) -> Self {
        self.guard.limiter = limiter::FailureLimiter::new(per_minute);
        self
    }

    /// Runs at most `n` full verifications at once (at least 1).
    pub fn with_verify_concurrency(mut self, n: usize) -> Self {
        self.guard.verify_slots = Semaphore::new(n.max(1));
        self
    }

    /// The verification policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scopes every request must carry.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// How many signature verifications have run (cache hits and cached failures excluded).
    pub fn full_verifications(&self) -> u64 {
        self.guard.full_verifications.load(Ordering::Relaxed)
    }

    /// Authenticates one request at `now` (Unix seconds). `peer` is the client address the
    /// signature-failure limit counts against (`None`: not limited per client).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        now: u64,
    ) -> Result<Arc<Principal>, AuthError> {
        self.authenticate_on(headers, peer, now, None).await
    }

    /// Authenticates one request of a connection whose last verification is in `memo`: the same
    /// `Authorization` bytes, against the same key set and inside the token's time window, are
    /// the same verification, so the parse, the hash and the shared cache are skipped.
    pub(crate) async fn authenticate_on(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        now: u64,
        memo: Option<&ConnectionMemo>,
    ) -> Result<Arc<Principal>, AuthError> {
        if let Some(p) = memo.and_then(|m| m.hit(headers, self.keys.current().ok(), now)) {
            self.guard.counts.bump_a();
            self.check_scopes(&p, &[])?;
            return Ok(p);
        }
        let token = match bearer::extract(headers).map_err(AuthError::InvalidRequest)? {
            Credentials::Absent => return Err(AuthError::NoCredentials),
            Credentials::MalformedBearer => return Err(AuthError::MalformedBearer),
            Credentials::Bearer(token) => token,
        };
        let principal = self.verify_from(token, peer, now).await?;
        self.check_scopes(&principal, &[])?;
        if let (Some(m), Ok(keys)) = (memo, self.keys.current()) {
            m.remember(headers, &principal, keys, self.policy.leeway_secs);
        }
        Ok(principal)
    }

    /// Verifies a bare token, refetching the key set once (rate-limited) for an unknown `kid`.
    /// A token verified before with the same key material is not checked again, only its times.
    pub async fn verify_token(&self, token: &str, now: u64) -> Result<Arc<Principal>, AuthError> {
        self.verify_from(token, None, now).await
    }

    async fn verify_from(
        &self,
        token: &str,
        peer: Option<IpAddr>,
        now: u64,
    ) -> Result<Arc<Principal>, AuthError> {
        let result = self.verify_uncached_delay(token, peer, now).await;
        if let Err(
            AuthError::InvalidToken(JwtError::SignatureInvalid)
            | AuthError::TooManySignatureFailures { .. },
        ) = &result
        {
            if !self.guard.signature_failure_delay.is_zero() {
                tokio::time::sleep(self.guard.signature_failure_delay).await;
            }
        }
        result
    }

    async fn verify_uncached_delay(
        &self,
        token: &str,
        peer: Option<IpAddr>,
        now: u64,
    ) -> Result<Arc<Principal>, AuthError> {
        // A hit means these exact bytes were verified before with key material the current set
        // still holds under the same kid, so it skips the decoding too; only the times are checked.
        let current = self.keys.current();
        let key = cache::token_key(token);
        if let Ok(keys) = &current {
            if let Some(p) = self.guard.verified.get(&key, keys, now) {
                self.guard.counts.bump_a();
                return Ok(p);
            }
            if let Some(e) = self.guard.failed.get(&key, keys, now) {
                if e == JwtError::SignatureInvalid {
                    self.guard.limiter.record_failure(peer, Instant::now());
                }
                return Err(e.into());
            }
        }
        self.guard.counts.bump_b();
        // Otherwise: a malformed token is a 401 even before any key set exists, then the 503.
        let unverified = jwt::parse(token, &self.policy)?;
        let keys = match current {
            Ok(keys) => keys,
            Err(_) => self
                .keys
                .wait_for_first_set()
                .await
                .map_err(|retry_after_secs| AuthError::KeysUnavailable { retry_after_secs })?,
        };
        let keys = match unverified.select_key(&keys) {
            Err(JwtError::UnknownKid) => self
                .keys
                .refresh_for_unknown_kid(&keys)
                .await
                .ok_or(JwtError::UnknownKid)?,
            Err(e) => return Err(e.into()),
            Ok(_) => keys,
        };
        let jwk = unverified.select_key(&keys)?;
        self.guard
            .limiter
            .check(peer, Instant::now())
            .map_err(|retry_after_secs| AuthError::TooManySignatureFailures { retry_after_secs })?;
        let verified = {
            let _slot = self
                .guard
                .verify_slots
                .acquire()
                .await
                .expect("the semaphore is never closed");
            self.guard
                .full_verifications
                .fetch_add(1, Ordering::Relaxed);
            unverified.verify_signature_with(jwk)
        };
        let outcome = verified.and_then(|()| unverified.claims_after_verify(&self.policy, now));
        match outcome {
            Ok(principal) => {
                let principal = Arc::new(principal);
                self.guard.verified.insert(
                    key,
                    principal.clone(),
                    unverified.kid(),
                    *jwk.fingerprint(),
                    self.policy.leeway_secs,
                );
                Ok(principal)
            }
            Err(e) => {
                if e == JwtError::SignatureInvalid {
                    self.guard.limiter.record_failure(peer, Instant::now());
                }
                self.guard
                    .failed
                    .insert(key, e.clone(), unverified.kid(), *jwk.fingerprint(), now);
                Err(e.into())
            }
        }
    }

    /// Checks the server-wide scopes plus `extra` (e.g. a tool's own); a 403 names all of them.
    pub fn check_scopes(&self, principal: &Principal, extra: &[String]) -> Result<(), AuthError> {
        let needed = || self.required_scopes.iter().chain(extra);
        if needed().all(|s| principal.has_scope(s)) {
            return Ok(());
        }
        let mut required: Vec<String> = Vec::new();
        for s in needed() {
            if !required.contains(s) {
                required.push(s.clone());
            }
        }
        Err(AuthError::InsufficientScope { required })
    }
}

#[cfg(test)]
mod tests;
