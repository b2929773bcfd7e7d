//! Bounded caches of verification outcomes, so a token seen again skips the signature check; pure, time passed in.
//!
//! A success is reused only when (a) the token bytes are identical (keyed by their SHA-256, so
//! no token is held in memory), (b) the current key set still holds, under the token's `kid`,
//! a key with the very material that verified it (its [`super::jwks::Jwk::fingerprint`]): a refresh that
//! returns the same keys keeps every hit, one that drops or changes a key invalidates exactly the
//! tokens that key verified, and (c) the time window still holds at `now` (`exp` and `nbf` with
//! the leeway are re-checked on every hit).
//!
//! A failure is remembered the same way, for [`FAILURE_TTL_SECS`] only, and only when it cannot
//! turn into a success by waiting (a bad signature, a wrong issuer, an expired token; not a
//! token whose `nbf` or `iat` lies ahead): replaying one forged token costs a lookup, not a verify.
//!
//! Eviction is first-in first-out per shard, O(1) per insert: each shard keeps its insertion
//! order in a ring, and no insert or lookup ever scans the entries. Requests only meet on a lock
//! when their tokens hash to the same one of [`SHARDS`] shards.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use ring::digest;

use super::jwks::{KeyLookup, KeySet};
use super::jwt::{JwtError, Principal};

/// Independent locks.
pub const SHARDS: usize = 64;
/// How long a failed verification is remembered.
pub const FAILURE_TTL_SECS: u64 = 10;
/// The default number of successful verifications kept (`VOUCH_VERIFY_CACHE_ENTRIES`).
pub const DEFAULT_ENTRIES: usize = 65_536;

/// The cache key of a token: its SHA-256.
pub type TokenKey = [u8; 32];

/// The cache key of a token.
pub fn token_key(token: &str) -> TokenKey {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .expect("sha256 is 32 bytes")
}

/// Hashes a key that is already a SHA-256 output by taking eight of its bytes: nobody can aim
/// tokens at one bucket without breaking SHA-256, so no keyed hash is needed.
#[derive(Debug, Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only [u8; 32] keys reach here (their length prefix comes first, then the bytes).
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// A map of at most `capacity` entries split over shards, evicting the oldest insert first.
#[derive(Debug)]
pub struct BoundedMap<V> {
    shards: Vec<Mutex<Shard<V>>>,
    per_shard: usize,
}

#[derive(Debug)]
struct Shard<V> {
    map: HashMap<TokenKey, (V, u64), BuildHasherDefault<DigestHasher>>,
    /// Insertion order; an item whose generation no longer matches the map's is stale.
    order: VecDeque<(TokenKey, u64)>,
    next_generation: u64,
}

impl<V: Clone> BoundedMap<V> {
    /// A map holding at most `capacity` entries (0 disables it: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        let shards = SHARDS.min(capacity.max(1));
        Self {
            per_shard: capacity.div_ceil(shards),
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::default(),
                        order: VecDeque::new(),
                        next_generation: 0,
                    })
                })
                .collect(),
        }
    }

    fn shard(&self, key: &TokenKey) -> &Mutex<Shard<V>> {
        &self.shards[key[0] as usize % self.shards.len()]
    }

    /// The value for `key` if `keep` says it still holds; one that does not is removed.
    pub fn get(&self, key: &TokenKey, keep: impl FnOnce(&V) -> bool) -> Option<V> {
        let mut shard = self.shard(key).lock().expect("cache lock poisoned");
        let (value, _) = shard.map.get(key)?;
        if keep(value) {
            return Some(value.clone());
        }
        shard.map.remove(key);
        None
    }

    /// Inserts or replaces; evicts the oldest entries of the shard past its share of the capacity.
    pub fn insert(&self, key: TokenKey, value: V) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(&key).lock().expect("cache lock poisoned");
        let shard = &mut *shard;
        // Every live entry has exactly one current item in `order`, so bounding `order` bounds
        // the map; each insert adds one item, so the evictions are O(1) amortized.
        while shard.order.len() >= self.per_shard {
            let Some((old, generation)) = shard.order.pop_front() else {
                break;
            };
            if shard.map.get(&old).is_some_and(|(_, g)| *g == generation) {
                shard.map.remove(&old);
            }
        }
        let generation = shard.next_generation;
        shard.next_generation += 1;
        shard.order.push_back((key, generation));
        shard.map.insert(key, (value, generation));
    }

    /// Number of live entries (tests and metrics; takes every shard's lock in turn).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("cache lock poisoned").map.len())
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which key produced an outcome: the `kid` it was found under and its material.
#[derive(Debug, Clone)]
struct KeyBinding {
    kid: Option<Arc<str>>,
    fingerprint: [u8; 32],
}

impl KeyBinding {
    /// True while `keys` would pick, for the same token, a key with the same material.
    fn still_holds(&self, keys: &KeySet) -> bool {
        match keys.find(self.kid.as_deref()) {
            KeyLookup::Found(jwk) => jwk.fingerprint() == &self.fingerprint,
            KeyLookup::UnknownKid | KeyLookup::AmbiguousWithoutKid => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Verified {
    principal: Arc<Principal>,
    key: KeyBinding,
    /// Usable while `valid_from <= now < valid_until` (leeway already applied).
    valid_from: f64,
    valid_until: f64,
}

#[derive(Debug, Clone)]
struct Failed {
    error: JwtError,
    key: KeyBinding,
    until: u64,
}

/// Successful verifications.
#[derive(Debug)]
pub struct VerifiedCache {
    map: BoundedMap<Verified>,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new(DEFAULT_ENTRIES)
    }
}

impl VerifiedCache {
    /// A cache of at most `entries` verifications.
    pub fn new(entries: usize) -> Self {
        Self {
            map: BoundedMap::new(entries),
        }
    }

    /// The principal verified earlier for this token, if it still holds at `now` with `keys`.
    pub fn get(&self, key: &TokenKey, keys: &KeySet, now: u64) -> Option<Arc<Principal>> {
        let now = now as f64;
        let hit = self
            .map
            .get(key, |e| now < e.valid_until && e.key.still_holds(keys))?;
        (now >= hit.valid_from).then_some(hit.principal)
    }

    /// Records a successful verification with the key `fingerprint` found under `kid`.
    pub fn insert(
        &self,
        key: TokenKey,
        principal: Arc<Principal>,
        kid: Option<&str>,
        fingerprint: [u8; 32],
        leeway_secs: u64,
    ) {
        let leeway = leeway_secs as f64;
        let valid_from = principal
            .claims
            .get("nbf")
            .and_then(serde_json::Value::as_f64)
            .map_or(f64::NEG_INFINITY, |nbf| nbf - leeway);
        let valid_until = principal.expires_at + leeway;
        self.map.insert(
            key,
            Verified {
                principal,
                key: KeyBinding {
                    kid: kid.map(Arc::from),
                    fingerprint,
                },
                valid_from,
                valid_until,
            },
        );
    }

    /// Number of cached verifications.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Recent failed verifications.
#[derive(Debug)]
pub struct FailedCache {
    map: BoundedMap<Failed>,
}

impl FailedCache {
    /// A cache of at most `entries` failures.
    pub fn new(entries: usize) -> Self {
        Self {
            map: BoundedMap::new(entries),
        }
    }

    /// Whether `error` may be remembered: it cannot become a success by waiting.
    pub fn is_cacheable(error: &JwtError) -> bool {
        !matches!(
            error,
            JwtError::NotYetValid
                | JwtError::IssuedInFuture
                | JwtError::UnknownKid
                | JwtError::KidMissingWithSeveralKeys
        )
    }

    /// The error this token failed with under the same key, within the last [`FAILURE_TTL_SECS`].
    pub fn get(&self, key: &TokenKey, keys: &KeySet, now: u64) -> Option<JwtError> {
        self.map
            .get(key, |e| now < e.until && e.key.still_holds(keys))
            .map(|e| e.error)
    }

    /// Remembers that this token failed with `error` under the key `fingerprint` found under `kid`.
    pub fn insert(
        &self,
        key: TokenKey,
        error: JwtError,
        kid: Option<&str>,
        fingerprint: [u8; 32],
        now: u64,
    ) {
        if !Self::is_cacheable(&error) {
            return;
        }
        self.map.insert(
            key,
            Failed {
                error,
                key: KeyBinding {
                    kid: kid.map(Arc::from),
                    fingerprint,
                },
                until: now.saturating_add(FAILURE_TTL_SECS),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwks::Jwk;
    use crate::dev::DevIssuer;

    fn principal(exp: f64) -> Arc<Principal> {
        Arc::new(Principal {
            expires_at: exp,
            ..Default::default()
        })
    }

    fn issuer(kid: &str, secret: u8) -> DevIssuer {
        DevIssuer::from_secret("https://i", kid, [secret; 32]).unwrap()
    }

    fn set(keys: &[&DevIssuer]) -> KeySet {
        KeySet::from_keys(
            keys.iter()
                .flat_map(|i| i.key_set().keys().to_vec())
                .collect::<Vec<Jwk>>(),
        )
    }

    #[test]
    fn hit_needs_same_key_material_and_live_window() {
        let a = issuer("a", 1);
        let cache = VerifiedCache::new(100);
        let keys = set(&[&a]);
        let fp = *keys.keys()[0].fingerprint();
        let k = token_key("a.b.c");
        cache.insert(k, principal(1000.0), Some("a"), fp, 60);
        assert!(cache.get(&k, &keys, 1000).is_some(), "inside the leeway");
        assert!(
            cache.get(&k, &set(&[&a]), 1000).is_some(),
            "a new set with the same key keeps the hit"
        );
        assert!(
            cache.get(&k, &set(&[&issuer("a", 2)]), 1000).is_none(),
            "other material under the same kid invalidates"
        );
        cache.insert(k, principal(1000.0), Some("a"), fp, 60);
        assert!(
            cache.get(&k, &set(&[&issuer("b", 1)]), 1000).is_none(),
            "kid gone"
        );
        cache.insert(k, principal(1000.0), Some("a"), fp, 60);
        assert!(cache.get(&k, &keys, 1060).is_none(), "now >= exp + leeway");
        assert!(cache.get(&token_key("x.y.z"), &keys, 900).is_none());
    }

    #[test]
    fn stays_bounded_and_evicts_oldest_first() {
        let map: BoundedMap<u32> = BoundedMap::new(640);
        for i in 0..10_000u32 {
            map.insert(token_key(&i.to_string()), i);
        }
        assert!(map.len() <= 640, "{}", map.len());
        assert!(map.len() >= 600, "{}", map.len());
        // The newest are kept, the oldest gone.
        assert_eq!(map.get(&token_key("9999"), |_| true), Some(9999));
        assert_eq!(map.get(&token_key("0"), |_| true), None);
    }

    #[test]
    fn reinserting_a_key_does_not_let_its_old_slot_evict_it() {
        let map: BoundedMap<u32> = BoundedMap::new(1);
        let k = token_key("k");
        map.insert(k, 1);
        map.insert(k, 2);
        assert_eq!(map.get(&k, |_| true), Some(2));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let map: BoundedMap<u32> = BoundedMap::new(0);
        map.insert(token_key("k"), 1);
        assert!(map.is_empty());
    }

    #[test]
    fn failures_expire_and_follow_the_key() {
        let a = issuer("a", 1);
        let keys = set(&[&a]);
        let fp = *keys.keys()[0].fingerprint();
        let cache = FailedCache::new(100);
        let k = token_key("bad");
        cache.insert(k, JwtError::SignatureInvalid, Some("a"), fp, 100);
        assert_eq!(cache.get(&k, &keys, 105), Some(JwtError::SignatureInvalid));
        assert_eq!(cache.get(&k, &set(&[&issuer("a", 2)]), 105), None);
        cache.insert(k, JwtError::SignatureInvalid, Some("a"), fp, 100);
        assert_eq!(cache.get(&k, &keys, 100 + FAILURE_TTL_SECS), None);
        cache.insert(k, JwtError::NotYetValid, Some("a"), fp, 100);
        assert_eq!(
            cache.get(&k, &keys, 101),
            None,
            "nbf ahead is not remembered"
        );
    }
}
