//! The default limits and timings of a server, in one place: the builder starts from them and the binary's settings show them.

use std::time::Duration;

/// Request body cap: 4 MiB.
pub const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Idle time after which a session expires: 30 min.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Open sessions, all principals together.
pub const MAX_SESSIONS: usize = 10_000;
/// Open sessions of one principal, so one caller cannot take every slot.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 100;
/// SSE keep-alive comment interval, below the common 60 s proxy idle limits.
pub const SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Entries per `tools/list` (and other list) page.
pub const PAGE_SIZE: usize = 50;
/// `ttlMs` on 2026-07-28 list and discover results: 0, do not cache.
pub const LIST_TTL_MS: u64 = 0;
/// Time in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time a client gets to send its request headers (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a client gets to send its request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// JWKS (and discovery) responses larger than this are refused; real sets are a few KiB.
pub const JWKS_MAX_BYTES: usize = 1024 * 1024;
