//! The server's sources of time and randomness, which an embedder can replace (tests, simulations, HSMs).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::SecureRandom as _;

/// Wall-clock time. The server reads it once when a request arrives and passes that reading to
/// every decision (token expiry, sealed-state expiry, session idle time), and once more when the
/// request is answered, for its latency in metrics, the audit log and the log line.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A moment as the server uses it: Unix seconds for token and state expiry, milliseconds for
/// session idle time, microseconds for latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Now {
    /// Microseconds since the Unix epoch.
    pub(crate) unix_us: u64,
}

impl Now {
    /// Reads `clock` once.
    pub(crate) fn read(clock: &dyn Clock) -> Self {
        let us = clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Self { unix_us: us }
    }

    /// Whole Unix seconds.
    pub(crate) fn unix_secs(self) -> u64 {
        self.unix_us / 1_000_000
    }

    /// Unix milliseconds.
    pub(crate) fn unix_ms(self) -> u64 {
        self.unix_us / 1000
    }

    /// The same moment as a `SystemTime`.
    pub(crate) fn system_time(self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_micros(self.unix_us)
    }

    /// Microseconds from `self` to `later` (0 if the clock stepped back).
    pub(crate) fn micros_until(self, later: Self) -> u64 {
        later.unix_us.saturating_sub(self.unix_us)
    }
}

/// Why the random source could not fill a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the random source failed")
    }
}

impl std::error::Error for RandomError {}

/// A cryptographically secure random source, for session ids, stream ids and the sealing key.
pub trait RandomSource: Send + Sync + 'static {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError>;
}

/// The operating system's CSPRNG through ring (the default).
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

impl Default for SystemRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRandom {
    /// The system source.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl RandomSource for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        self.0.fill(dest).map_err(|_| RandomError)
    }
}
