//! A bounded cache of successful verifications, so a token seen again skips the ECDSA check.
//!
//! It stays correct because a hit is only taken when (a) the token bytes are identical (keyed by
//! their SHA-256, so no token is held in memory), (b) the key set is the very one it was verified
//! against (a JWKS refresh or rotation invalidates everything), and (c) the time window still
//! holds at `now` (`exp` and `nbf` with the leeway are re-checked on every hit). Failures are
//! never cached. Time is passed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ring::digest;

use super::jwks::KeySet;
use super::jwt::Principal;

/// Independent locks: concurrent requests with different tokens rarely meet.
const SHARDS: usize = 16;
/// Entries per shard; the whole cache holds at most `SHARDS * PER_SHARD` verifications.
const PER_SHARD: usize = 256;

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    keys: Arc<KeySet>,
    /// Usable while `valid_from <= now < valid_until` (leeway already applied).
    valid_from: f64,
    valid_until: f64,
}

/// The cache.
#[derive(Debug)]
pub struct VerifiedCache {
    shards: Vec<Mutex<HashMap<[u8; 32], Entry>>>,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

/// The cache key of a token.
pub fn token_key(token: &str) -> [u8; 32] {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .expect("sha256 is 32 bytes")
}

impl VerifiedCache {
    fn shard(&self, key: &[u8; 32]) -> &Mutex<HashMap<[u8; 32], Entry>> {
        &self.shards[key[0] as usize % SHARDS]
    }

    /// The principal verified earlier for this token, if it still holds at `now` with `keys`.
    pub fn get(&self, key: &[u8; 32], keys: &Arc<KeySet>, now: u64) -> Option<Arc<Principal>> {
        let now = now as f64;
        let mut shard = self.shard(key).lock().expect("cache lock poisoned");
        let entry = shard.get(key)?;
        if !Arc::ptr_eq(&entry.keys, keys) || now >= entry.valid_until {
            shard.remove(key);
            return None;
        }
        (now >= entry.valid_from).then(|| entry.principal.clone())
    }

    /// Records a successful verification against `keys`.
    pub fn insert(
        &self,
        key: [u8; 32],
        principal: Arc<Principal>,
        keys: Arc<KeySet>,
        leeway_secs: u64,
        now: u64,
    ) {
        let leeway = leeway_secs as f64;
        let valid_from = principal
            .claims
            .get("nbf")
            .and_then(serde_json::Value::as_f64)
            .map_or(f64::NEG_INFINITY, |nbf| nbf - leeway);
        let valid_until = principal.expires_at + leeway;
        let mut shard = self.shard(&key).lock().expect("cache lock poisoned");
        if shard.len() >= PER_SHARD {
            let now = now as f64;
            shard.retain(|_, e| now < e.valid_until);
            if shard.len() >= PER_SHARD {
                // Still full of live entries: start over rather than track recency.
                shard.clear();
            }
        }
        shard.insert(
            key,
            Entry {
                principal,
                keys,
                valid_from,
                valid_until,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(exp: f64) -> Arc<Principal> {
        Arc::new(Principal {
            expires_at: exp,
            ..Default::default()
        })
    }

    #[test]
    fn hit_needs_same_key_set_and_live_window() {
        let cache = VerifiedCache::default();
        let keys = Arc::new(KeySet::default());
        let other = Arc::new(KeySet::default());
        let k = token_key("a.b.c");
        cache.insert(k, principal(1000.0), keys.clone(), 60, 900);
        assert!(cache.get(&k, &keys, 1000).is_some(), "inside the leeway");
        assert!(
            cache.get(&k, &other, 1000).is_none(),
            "another key set invalidates"
        );
        cache.insert(k, principal(1000.0), keys.clone(), 60, 900);
        assert!(cache.get(&k, &keys, 1060).is_none(), "now >= exp + leeway");
        assert!(cache.get(&token_key("x.y.z"), &keys, 900).is_none());
    }

    #[test]
    fn stays_bounded() {
        let cache = VerifiedCache::default();
        let keys = Arc::new(KeySet::default());
        for i in 0..(SHARDS * PER_SHARD * 3) {
            cache.insert(
                token_key(&i.to_string()),
                principal(1e9),
                keys.clone(),
                60,
                0,
            );
        }
        let total: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= SHARDS * PER_SHARD);
    }
}
