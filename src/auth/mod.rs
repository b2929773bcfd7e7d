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
pub mod es256;
pub mod fetch;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod metadata;
pub mod refresh;
pub mod strict_json;

use std::sync::Arc;

use http::HeaderMap;

pub use bearer::{BearerError, Credentials};
pub use challenge::{AuthError, Challenger, Rejection};
pub use jwt::{AudiencePolicy, JwtError, Policy, Principal, TypPolicy};
pub use keys::{JwksCache, KeyProvider, StaticKeys};

/// Verifies the bearer token of each request and checks the server-wide scopes.
pub struct Authenticator {
    policy: Policy,
    keys: Arc<dyn KeyProvider>,
    required_scopes: Vec<String>,
    verified: cache::VerifiedCache,
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
        let token = match bearer::extract(headers).map_err(AuthError::InvalidRequest)? {
            Credentials::Absent => return Err(AuthError::NoCredentials),
            Credentials::MalformedBearer => return Err(AuthError::MalformedBearer),
            Credentials::Bearer(token) => token,
        };
        let principal = self.verify_token(token, now).await?;
        self.check_scopes(&principal, &[])?;
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
            return Ok(p);
        }
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
