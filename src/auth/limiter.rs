//! Per-client limit on signature failures: a token bucket per peer address, bounded in memory; pure, time passed in.
//!
//! Each address may fail signature verification `per_minute` times a minute, with bursts of as
//! many; past that, the tokens it presents that would need a full verification are refused with
//! 429 until the bucket refills. Tokens already verified (cache hits) are never refused, so a
//! legitimate client behind the same address keeps working with the tokens it has.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The default rate (`VOUCH_SIGNATURE_FAILURES_PER_MINUTE`).
pub const DEFAULT_PER_MINUTE: u32 = 60;
/// Addresses tracked at once; the oldest is forgotten first (it then starts with a full bucket).
const MAX_CLIENTS: usize = 16_384;
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<IpAddr, Bucket>,
    order: VecDeque<IpAddr>,
}

/// The limiter; `per_minute == 0` disables it.
#[derive(Debug)]
pub struct FailureLimiter {
    per_minute: u32,
    shards: Vec<Mutex<Shard>>,
}

impl FailureLimiter {
    /// A limiter allowing `per_minute` failures a minute per address (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The configured rate.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// IPv6 clients are counted per /64, the block one subscriber usually gets.
    fn client(peer: IpAddr) -> IpAddr {
        match peer {
            IpAddr::V4(_) => peer,
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        }
    }

    fn shard(&self, peer: &IpAddr) -> &Mutex<Shard> {
        let byte = match peer {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(v6) => v6.octets()[7] ^ v6.octets()[6],
        };
        &self.shards[byte as usize % SHARDS]
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let rate = self.per_minute as f64 / 60.0;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * rate).min(self.per_minute as f64)
    }

    /// `Err(seconds)` when `peer` is over its rate: how long until it may fail once more.
    pub fn check(&self, peer: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let Some(peer) = peer.filter(|_| self.per_minute > 0).map(Self::client) else {
            return Ok(());
        };
        let shard = self.shard(&peer).lock().expect("limiter lock poisoned");
        let Some(bucket) = shard.buckets.get(&peer) else {
            return Ok(());
        };
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            return Ok(());
        }
        let rate = self.per_minute as f64 / 60.0;
        Err(((1.0 - tokens) / rate).ceil().max(1.0) as u64)
    }

    /// Counts one signature failure for `peer`.
    pub fn record_failure(&self, peer: Option<IpAddr>, now: Instant) {
        let Some(peer) = peer.filter(|_| self.per_minute > 0).map(Self::client) else {
            return;
        };
        let mut shard = self.shard(&peer).lock().expect("limiter lock poisoned");
        let shard = &mut *shard;
        let tokens = match shard.buckets.get(&peer) {
            Some(b) => self.refilled(*b, now),
            None => {
                if shard.order.len() >= MAX_CLIENTS / SHARDS {
                    if let Some(old) = shard.order.pop_front() {
                        shard.buckets.remove(&old);
                    }
                }
                shard.order.push_back(peer);
                self.per_minute as f64
            }
        };
        shard.buckets.insert(
            peer,
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_past_the_burst_and_refills_at_the_rate() {
        let limiter = FailureLimiter::new(60);
        let peer = Some(IpAddr::from([10, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..60 {
            assert_eq!(limiter.check(peer, t0), Ok(()));
            limiter.record_failure(peer, t0);
        }
        assert_eq!(limiter.check(peer, t0), Err(1));
        assert_eq!(
            limiter.check(other, t0),
            Ok(()),
            "another address is unaffected"
        );
        assert_eq!(
            limiter.check(peer, t0 + Duration::from_millis(1000)),
            Ok(())
        );
    }

    #[test]
    fn zero_rate_and_unknown_peer_are_never_limited() {
        let t0 = Instant::now();
        let off = FailureLimiter::new(0);
        let peer = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..1000 {
            off.record_failure(peer, t0);
            off.record_failure(None, t0);
        }
        assert_eq!(off.check(peer, t0), Ok(()));
        let on = FailureLimiter::new(1);
        on.record_failure(None, t0);
        assert_eq!(on.check(None, t0), Ok(()));
        on.record_failure(peer, t0);
        assert_eq!(on.check(peer, t0), Err(60));
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let limiter = FailureLimiter::new(5);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            limiter.record_failure(Some(IpAddr::from(i.to_be_bytes())), t0);
        }
        let total: usize = limiter
            .shards
            .iter()
            .map(|s| s.lock().unwrap().buckets.len())
            .sum();
        assert!(total <= MAX_CLIENTS, "{total}");
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_bucket() {
        let limiter = FailureLimiter::new(1);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.record_failure(Some(a), t0);
        assert!(limiter.check(Some(b), t0).is_err());
        assert!(limiter.check(Some(c), t0).is_ok());
    }
}
