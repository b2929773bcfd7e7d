//! When to fetch the JWKS again: TTL clamping, failure backoff, the unknown-kid rate limit; pure, time passed in.

use std::time::{Duration, Instant};

/// Tunables for the key cache. Every default is in the field's doc.
#[derive(Debug, Clone)]
pub struct RefreshPolicy {
    /// TTL when the response has no `Cache-Control: max-age`. Defaults to 10 min.
    pub default_ttl: Duration,
    /// Lower clamp for `max-age`. Defaults to 1 min.
    pub min_ttl: Duration,
    /// Upper clamp for `max-age`. Defaults to 24 h.
    pub max_ttl: Duration,
    /// At most one refetch for an unknown `kid` per this interval. Defaults to 30 s.
    pub unknown_kid_cooldown: Duration,
    /// First retry delay after a failed fetch; doubles per failure. Defaults to 1 s.
    pub backoff_initial: Duration,
    /// Cap on the retry delay once a set has loaded. Defaults to 60 s.
    pub backoff_max: Duration,
    /// Cap on the retry delay while no set has ever loaded. Defaults to 5 s.
    pub startup_backoff_max: Duration,
    /// Fetch attempts are at least this far apart when a request or an unknown `kid` asks for
    /// one (the scheduled ones follow the backoff). Defaults to 1 s.
    pub min_fetch_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            startup_backoff_max: Duration::from_secs(5),
            min_fetch_interval: Duration::from_secs(1),
        }
    }
}

impl RefreshPolicy {
    /// How long a freshly fetched set is trusted before the next scheduled refresh.
    pub fn ttl(&self, max_age_secs: Option<u64>) -> Duration {
        let wanted = max_age_secs.map_or(self.default_ttl, Duration::from_secs);
        // max-then-min rather than clamp: a policy with min > max must not panic the refresher.
        wanted.max(self.min_ttl).min(self.max_ttl)
    }

    /// Delay before retrying after `consecutive_failures` (>= 1) failed fetches; `ever_loaded`
    /// tells whether a set is being served meanwhile (if not, the shorter startup cap applies).
    pub fn backoff(&self, consecutive_failures: u32, ever_loaded: bool) -> Duration {
        let doublings = consecutive_failures.saturating_sub(1).min(16);
        let cap = if ever_loaded {
            self.backoff_max
        } else {
            self.startup_backoff_max.min(self.backoff_max)
        };
        self.backoff_initial
            .saturating_mul(1u32 << doublings)
            .min(cap)
    }

    /// Whether an unknown `kid` may trigger a fetch now: the last *successful* such fetch is
    /// a cooldown old (a failed one starts no cooldown), and the last attempt of any kind is
    /// at least [`RefreshPolicy::min_fetch_interval`] old.
    pub fn may_refetch_for_unknown_kid(
        &self,
        last_success: Option<Instant>,
        last_attempt: Option<Instant>,
        now: Instant,
    ) -> bool {
        last_success
            .is_none_or(|last| now.saturating_duration_since(last) >= self.unknown_kid_cooldown)
            && self.may_fetch_on_demand(last_attempt, now)
    }

    /// Whether a request may ask for a fetch now, given the last attempt.
    pub fn may_fetch_on_demand(&self, last_attempt: Option<Instant>, now: Instant) -> bool {
        last_attempt
            .is_none_or(|last| now.saturating_duration_since(last) >= self.min_fetch_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_max_age() {
        let p = RefreshPolicy::default();
        assert_eq!(p.ttl(None), Duration::from_secs(600));
        assert_eq!(p.ttl(Some(5)), Duration::from_secs(60));
        assert_eq!(p.ttl(Some(3600)), Duration::from_secs(3600));
        assert_eq!(p.ttl(Some(u64::MAX / 2)), Duration::from_secs(86400));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RefreshPolicy::default();
        assert_eq!(p.backoff(1, true), Duration::from_secs(1));
        assert_eq!(p.backoff(3, true), Duration::from_secs(4));
        assert_eq!(p.backoff(100, true), Duration::from_secs(60));
    }

    #[test]
    fn backoff_is_capped_at_5_s_while_nothing_ever_loaded() {
        let p = RefreshPolicy::default();
        assert_eq!(p.backoff(3, false), Duration::from_secs(4));
        assert_eq!(p.backoff(4, false), Duration::from_secs(5));
        assert_eq!(p.backoff(100, false), Duration::from_secs(5));
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let p = RefreshPolicy::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(p.may_refetch_for_unknown_kid(None, None, t0));
        assert!(!p.may_refetch_for_unknown_kid(Some(t0), Some(t0), t0 + s(29)));
        assert!(p.may_refetch_for_unknown_kid(Some(t0), Some(t0), t0 + s(30)));
    }

    #[test]
    fn a_failed_attempt_delays_the_next_unknown_kid_fetch_by_one_second_only() {
        let p = RefreshPolicy::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // No success yet, one failed attempt at t0.
        assert!(!p.may_refetch_for_unknown_kid(None, Some(t0), t0 + ms(999)));
        assert!(p.may_refetch_for_unknown_kid(None, Some(t0), t0 + ms(1000)));
    }
}
