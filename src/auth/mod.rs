//! Request authorization: bearer extraction, ES256 verification against the issuer's keys, scopes.
//!
//! * [`jwt`]: the verifier (pure).
//! * [`jwks`]: JWKS parsing into usable keys (pure).
//! * [`refresh`]: when to refetch keys (pure).
//! * [`keys`]: key providers: a fixed set, or the cached JWKS fetched by [`fetch`].
//! * [`bearer`] and [`challenge`]: RFC 6750 on the way in and on the way out.
//! * [`metadata`]: the RFC 9728 document.
//! * [`cache`]: successful verifications, reused while they provably still hold.

pub mod bearer;
pub mod cache;
pub mod challenge;
pub mod fetch;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod metadata;
pub mod refresh;
pub mod stats;
pub mod strict_json;

use std::sync::Arc;

use http::HeaderMap;

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

/// Verifies the bearer token of each request and checks the server-wide scopes.
pub struct Authenticator {
    policy: Policy,
    keys: Arc<dyn KeyProvider>,
    required_scopes: Vec<String>,
    verified: cache::VerifiedCache,
    /// Cache hits (a) and full verifications (b), for metrics (boxed: `AuthMode` stays small).
    counts: Box<stats::Counters>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("policy", &self.policy)
            .field("required_scopes", &self.required_scopes)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `required_scopes` apply to every request (may be empty).
    pub fn new(policy: Policy, keys: Arc<dyn KeyProvider>, required_scopes: Vec<String>) -> Self {
        Self {
            policy,
            keys,
            required_scopes,
            verified: cache::VerifiedCache::default(),
            counts: Box::default(),
        }
    }

    /// The key source's state and the caches' hits and misses (readiness, metrics).
    pub fn status(&self) -> AuthStatus {
        let (cache_hits, cache_misses) = self.counts.read();
        AuthStatus {
            keys: self.keys.status(),
            cache_hits,
            cache_misses,
        }
    }

    /// The verification policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scopes every request must carry.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// Authenticates one request at `now` (Unix seconds).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Arc<Principal>, AuthError> {
        self.authenticate_on(headers, now, None).await
    }

    /// Authenticates one request of a connection whose last verification is in `memo`: the same
    /// `Authorization` bytes, against the same key set and inside the token's time window, are
    /// the same verification, so the parse, the hash and the shared cache are skipped.
    pub(crate) async fn authenticate_on(
        &self,
        headers: &HeaderMap,
        now: u64,
        memo: Option<&ConnectionMemo>,
    ) -> Result<Arc<Principal>, AuthError> {
        if let Some(p) = memo.and_then(|m| m.hit(headers, self.keys.current().ok(), now)) {
            self.counts.bump_a();
            self.check_scopes(&p, &[])?;
            return Ok(p);
        }
        let token = match bearer::extract(headers).map_err(AuthError::InvalidRequest)? {
            Credentials::Absent => return Err(AuthError::NoCredentials),
            Credentials::MalformedBearer => return Err(AuthError::MalformedBearer),
            Credentials::Bearer(token) => token,
        };
        let principal = self.verify_token(token, now).await?;
        self.check_scopes(&principal, &[])?;
        if let (Some(m), Ok(keys)) = (memo, self.keys.current()) {
            m.remember(headers, &principal, keys, self.policy.leeway_secs);
        }
        Ok(principal)
    }

    /// Verifies a bare token, refetching the key set once (rate-limited) for an unknown `kid`.
    /// A token verified before against the same key set is not checked again, only its times.
    pub async fn verify_token(&self, token: &str, now: u64) -> Result<Arc<Principal>, AuthError> {
        // A cache hit means these exact bytes were parsed and verified before against this very
        // key set, so it skips the decoding too; only the time window is checked again.
        let current = self.keys.current();
        let key = cache::token_key(token);
        if let Some(p) = current
            .as_ref()
            .ok()
            .and_then(|keys| self.verified.get(&key, keys, now))
        {
            self.counts.bump_a();
            return Ok(p);
        }
        self.counts.bump_b();
        // Otherwise: a malformed token is a 401 even before any key set exists, then the 503.
        let unverified = jwt::parse(token, &self.policy)?;
        let keys =
            current.map_err(|retry_after_secs| AuthError::KeysUnavailable { retry_after_secs })?;
        let (principal, keys) = match unverified.verify(&keys, &self.policy, now) {
            Err(JwtError::UnknownKid) => {
                let Some(fresh) = self.keys.refresh_for_unknown_kid(&keys).await else {
                    return Err(JwtError::UnknownKid.into());
                };
                (unverified.verify(&fresh, &self.policy, now)?, fresh)
            }
            other => (other?, keys),
        };
        let principal = Arc::new(principal);
        self.verified
            .insert(key, principal.clone(), keys, self.policy.leeway_secs, now);
        Ok(principal)
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
