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
/// Bytes of request bodies and their parsed form in flight, all requests together: 64 MiB.
pub const MAX_INFLIGHT_BYTES: u64 = 64 * 1024 * 1024;
/// How long a request waits for room in the in-flight budget before it gets 503.
pub const INFLIGHT_WAIT: Duration = Duration::from_millis(500);
/// Messages in one JSON-RPC batch (2025-03-26 sessions).
pub const MAX_BATCH: usize = 64;
/// In-flight calls of one principal.
pub const MAX_CALLS_PER_PRINCIPAL: usize = 64;
/// Open GET and `subscriptions/listen` streams of one principal.
pub const MAX_STREAMS_PER_PRINCIPAL: usize = 32;
/// Open GET and `subscriptions/listen` streams, all principals together.
pub const MAX_STREAMS: usize = 10_000;
/// How long a GET or `subscriptions/listen` stream stays open before the server ends it
/// cleanly (the client reconnects): 1 h.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(3600);
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
/// Time a write to a client may make no progress before the connection is closed (a client
/// that stops reading cannot hold its response, or stream, forever).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a connection with no request in flight stays open (HTTP keep-alive).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a client gets to send its request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// JWKS (and discovery) responses larger than this are refused; real sets are a few KiB.
pub const JWKS_MAX_BYTES: usize = 1024 * 1024;
/// How long a finished task (its result or error) is kept for `tasks/get`: 1 h.
pub const TASK_TTL: Duration = Duration::from_secs(60 * 60);
/// Tasks held, all principals and states together (finished ones count until forgotten).
pub const MAX_TASKS: usize = 10_000;
/// Unfinished tasks of one principal.
pub const MAX_TASKS_PER_PRINCIPAL: usize = 50;
/// The poll interval suggested to clients.
pub const TASK_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The lease the replica running a task renews (every third of it); an unrenewed task fails.
pub const TASK_LEASE: Duration = Duration::from_secs(30);
/// 2026-07-28: how long a call that may become a task runs before it becomes one.
pub const TASK_IMMEDIATE: Duration = Duration::from_millis(100);
/// How long a cancelled task's handler may take to return before it is dropped.
pub const TASK_CANCEL_GRACE: Duration = Duration::from_secs(5);
