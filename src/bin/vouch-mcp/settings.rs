//! The binary's settings, each declared once (env name, flag, default, parser, help); parsing, `--help` and the README table all come from this table.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use vouch_mcp::auth::Algorithm;
use vouch_mcp::defaults;
use vouch_mcp::log::{Format, Level};

/// Where a setting's value comes from when neither flag nor environment gives one.
#[derive(Clone, Copy)]
enum Default {
    /// Parsed like a given value.
    Text(&'static str),
    /// A library default, shown and parsed as text.
    Library(fn() -> String),
    /// Computed from other settings; the text says how.
    Derived(&'static str),
    /// Unset.
    None,
}

/// One setting.
struct Setting<T: 'static> {
    env: &'static str,
    flag: &'static str,
    default: Default,
    help: &'static str,
    /// A flag that takes no value (`--flag` means true).
    switch: bool,
    /// Parses a value, or says what a value must be.
    parse: fn(&str) -> Result<T, &'static str>,
}

/// The type-erased face of a setting, for `--help`, the README table and flag lookup.
trait Described: Sync {
    fn env(&self) -> &'static str;
    fn flag(&self) -> &'static str;
    fn switch(&self) -> bool;
    fn default_text(&self) -> String;
    fn help(&self) -> &'static str;
}

impl<T: 'static> Described for Setting<T> {
    fn env(&self) -> &'static str {
        self.env
    }
    fn flag(&self) -> &'static str {
        self.flag
    }
    fn switch(&self) -> bool {
        self.switch
    }
    fn default_text(&self) -> String {
        match self.default {
            Default::Text(t) | Default::Derived(t) => t.to_owned(),
            Default::Library(f) => f(),
            Default::None => String::new(),
        }
    }
    fn help(&self) -> &'static str {
        self.help
    }
}

/// A configuration error; the message names the variable or flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Flags and environment, as given.
struct Sources<'a> {
    flags: Vec<(String, Option<String>)>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<T> Setting<T> {
    /// The value: the last flag, else the environment, else the default. Empty means unset.
    fn get(&self, src: &Sources<'_>) -> Result<Option<T>, ConfigError> {
        let given = src
            .flags
            .iter()
            .rev()
            .find(|(f, _)| f == self.flag)
            .map(|(_, v)| (v.clone().unwrap_or_else(|| "true".into()), self.flag))
            .or_else(|| (src.env)(self.env).map(|v| (v, self.env)));
        let (text, source) = match given {
            Some((v, source)) if !v.trim().is_empty() => (v, source),
            _ => match self.default {
                Default::Text(t) => (t.to_owned(), self.env),
                Default::Library(f) => (f(), self.env),
                Default::Derived(_) | Default::None => return Ok(None),
            },
        };
        (self.parse)(text.trim())
            .map(Some)
            .map_err(|expected| ConfigError(format!("{source}={text:?} {expected}")))
    }

    /// The value, where the default guarantees one.
    fn value(&self, src: &Sources<'_>) -> Result<T, ConfigError> {
        self.get(src)?
            .ok_or_else(|| ConfigError(format!("{} has no value", self.env)))
    }
}

fn text(s: &str) -> Result<String, &'static str> {
    Ok(s.to_owned())
}

fn url(s: &str) -> Result<String, &'static str> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("is not an absolute http(s) URL")?;
    if rest.is_empty() || rest.starts_with('/') || s.contains('#') {
        return Err("is not an absolute http(s) URL");
    }
    Ok(s.to_owned())
}

fn whole(s: &str) -> Result<u64, &'static str> {
    s.parse().map_err(|_| "is not a whole number")
}

fn positive(s: &str) -> Result<u64, &'static str> {
    match whole(s)? {
        0 => Err("must be greater than 0"),
        n => Ok(n),
    }
}

fn secs(s: &str) -> Result<Duration, &'static str> {
    whole(s).map(Duration::from_secs)
}

fn positive_secs(s: &str) -> Result<Duration, &'static str> {
    positive(s).map(Duration::from_secs)
}

fn count(s: &str) -> Result<usize, &'static str> {
    positive(s).and_then(|n| usize::try_from(n).map_err(|_| "is too large"))
}

fn whole_usize(s: &str) -> Result<usize, &'static str> {
    whole(s).and_then(|n| usize::try_from(n).map_err(|_| "is too large"))
}

fn whole_u32(s: &str) -> Result<u32, &'static str> {
    whole(s).and_then(|n| u32::try_from(n).map_err(|_| "is too large"))
}

fn millis(s: &str) -> Result<Duration, &'static str> {
    whole(s).map(Duration::from_millis)
}

fn algorithms(s: &str) -> Result<Vec<Algorithm>, &'static str> {
    match Algorithm::parse_list(s) {
        Ok(list) if !list.is_empty() => Ok(list),
        _ => Err("is not a comma-separated list of ES256, RS256, PS256, EdDSA"),
    }
}

fn port(s: &str) -> Result<u16, &'static str> {
    whole(s).and_then(|n| u16::try_from(n).map_err(|_| "is out of range (0-65535)"))
}

fn boolean(s: &str) -> Result<bool, &'static str> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("is not true or false"),
    }
}

fn list(s: &str) -> Result<Vec<String>, &'static str> {
    Ok(s.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn scopes(s: &str) -> Result<Vec<String>, &'static str> {
    let scopes = list(s)?;
    // RFC 6749 scope-token: visible ASCII but `"` and `\`.
    let ok = |t: &str| {
        t.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    };
    if scopes.iter().all(|t| ok(t)) {
        Ok(scopes)
    } else {
        Err("has an invalid scope (visible ASCII but \" and \\)")
    }
}

fn level(s: &str) -> Result<Level, &'static str> {
    Level::parse(s).ok_or("is not off, error, warn, info or debug")
}

fn redis_url(s: &str) -> Result<String, &'static str> {
    let rest = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("rediss://"))
        .ok_or("is not a redis:// or rediss:// URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("is not a redis:// or rediss:// URL");
    }
    Ok(s.to_owned())
}

fn path(s: &str) -> Result<PathBuf, &'static str> {
    Ok(PathBuf::from(s))
}

fn log_format(s: &str) -> Result<Format, &'static str> {
    Format::parse(s).ok_or("is not text or json")
}

/// `off`, or an `ip:port` to bind.
fn metrics_addr(s: &str) -> Result<Option<SocketAddr>, &'static str> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| "is not off or an ip:port address (e.g. 127.0.0.1:9464)")
}

/// Addresses and CIDR blocks (`10.0.0.0/8`, `::1`), comma-separated.
fn proxies(s: &str) -> Result<Vec<String>, &'static str> {
    let entries = list(s)?;
    let ok = |e: &str| {
        let (addr, len) = e.split_once('/').map_or((e, None), |(a, l)| (a, Some(l)));
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return false;
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        len.is_none_or(|l| l.parse::<u8>().is_ok_and(|n| n <= max))
    };
    if entries.iter().all(|e| ok(e)) {
        Ok(entries)
    } else {
        Err("has an entry that is not an IP address or a CIDR block")
    }
}

fn listen_path(s: &str) -> Result<String, &'static str> {
    if s.starts_with('/') && !s.contains(['?', '#']) && !s.chars().any(char::is_whitespace) {
        Ok(s.to_owned())
    } else {
        Err("must be a path starting with / (no ?, # or spaces)")
    }
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Audit {
    /// Nowhere.
    Off,
    /// Standard error.
    Stderr,
    /// This file (appended; reopened on SIGHUP).
    File(PathBuf),
}

fn audit(s: &str) -> Result<Audit, &'static str> {
    Ok(match s {
        "off" => Audit::Off,
        "stderr" => Audit::Stderr,
        p => Audit::File(PathBuf::from(p)),
    })
}

/// What `sensitive-action` does for a token without `hardware_verified: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepUpMode {
    /// The guide's `isError` result with `hardware_key_required`.
    Result,
    /// HTTP 401 `insufficient_user_authentication` (RFC 9470).
    Challenge,
}

fn step_up(s: &str) -> Result<StepUpMode, &'static str> {
    match s {
        "result" => Ok(StepUpMode::Result),
        "challenge" => Ok(StepUpMode::Challenge),
        _ => Err("is not result or challenge"),
    }
}

macro_rules! setting {
    ($name:ident: $t:ty = $env:literal, $flag:literal, $default:expr, $parse:expr, $help:literal) => {
        const $name: Setting<$t> = Setting {
            env: $env,
            flag: $flag,
            default: $default,
            help: $help,
            switch: false,
            parse: $parse,
        };
    };
    ($name:ident: switch = $env:literal, $flag:literal, $help:literal) => {
        const $name: Setting<bool> = Setting {
            env: $env,
            flag: $flag,
            default: Default::Text("false"),
            help: $help,
            switch: true,
            parse: boolean,
        };
    };
}

setting!(ISSUER: String = "VOUCH_ISSUER", "--issuer", Default::Text("https://us.vouch.sh"), url,
    "token issuer; `iss` must equal it byte for byte");
setting!(JWKS_URL: String = "VOUCH_JWKS_URL", "--jwks-url", Default::Derived("{issuer}/oauth/jwks"), url,
    "JWKS location (https, or http on loopback only)");
setting!(RESOURCE_URL: String = "MCP_RESOURCE_URL", "--resource-url", Default::Derived("http://localhost:{PORT}/mcp (https with TLS)"), url,
    "canonical public URL of the MCP endpoint");
setting!(AUDIENCE: Vec<String> = "VOUCH_AUDIENCE", "--audience", Default::Derived("the resource URL"), list,
    "accepted `aud` values, comma-separated");
setting!(SKIP_AUDIENCE: switch = "VOUCH_SKIP_AUDIENCE", "--insecure-skip-audience",
    "accept tokens for any audience (insecure)");
setting!(REQUIRED_SCOPES: Vec<String> = "VOUCH_REQUIRED_SCOPES", "--required-scopes", Default::None, scopes,
    "scopes every request needs (403 `insufficient_scope` otherwise)");
setting!(LEEWAY_SECS: u64 = "VOUCH_LEEWAY_SECS", "--leeway-secs", Default::Text("60"), whole,
    "clock skew allowed for `exp`, `nbf`, `iat`");
setting!(REQUIRE_AT_JWT: switch = "VOUCH_REQUIRE_AT_JWT", "--require-at-jwt",
    "accept only `typ: at+jwt` (RFC 9068)");
setting!(ALGORITHMS: Vec<Algorithm> = "VOUCH_ALGORITHMS", "--algorithms", Default::Text("ES256"), algorithms,
    "accepted token algorithms, comma-separated: ES256, RS256, PS256, EdDSA (`--dev`: ES256)");
setting!(VERIFY_CACHE_ENTRIES: usize = "VOUCH_VERIFY_CACHE_ENTRIES", "--verify-cache-entries",
    Default::Library(|| vouch_mcp::auth::cache::DEFAULT_ENTRIES.to_string()), whole_usize,
    "verified tokens remembered (0 turns the cache off)");
setting!(SIGNATURE_FAILURES: u32 = "VOUCH_SIGNATURE_FAILURES_PER_MINUTE", "--signature-failures-per-minute",
    Default::Library(|| vouch_mcp::auth::limiter::DEFAULT_PER_MINUTE.to_string()), whole_u32,
    "bad token signatures allowed per client address a minute before 429 (0: no limit)");
setting!(SIGNATURE_FAILURE_DELAY: Duration = "VOUCH_SIGNATURE_FAILURE_DELAY_MS", "--signature-failure-delay-ms",
    Default::Library(|| vouch_mcp::auth::DEFAULT_SIGNATURE_FAILURE_DELAY.as_millis().to_string()), millis,
    "hold back each bad-signature refusal (401 or 429) this long; slows forged-token floods");
setting!(JWKS_TIMEOUT: Duration = "VOUCH_JWKS_TIMEOUT_SECS", "--jwks-timeout-secs", Default::Text("5"), positive_secs,
    "JWKS connect and read timeout");
setting!(JWKS_REFETCH: Duration = "VOUCH_JWKS_REFETCH_SECS", "--jwks-refetch-secs", Default::Text("30"), secs,
    "least time between refetches for an unknown `kid`");
setting!(HOST: String = "HOST", "--host", Default::Derived("0.0.0.0 (--dev: 127.0.0.1)"), text,
    "bind address");
setting!(PORT: u16 = "PORT", "--port", Default::Text("3000"), port,
    "bind port (0 picks a free one)");
setting!(ALLOWED_HOSTS: Vec<String> = "MCP_ALLOWED_HOSTS", "--allowed-hosts", Default::None, list,
    "extra `Host` names besides the resource URL's host and loopback; `*` for any");
setting!(ALLOWED_ORIGINS: Vec<String> = "MCP_ALLOWED_ORIGINS", "--allowed-origins", Default::None, list,
    "extra browser origins");
setting!(MAX_BODY_BYTES: u64 = "MCP_MAX_BODY_BYTES", "--max-body-bytes",
    Default::Library(|| defaults::MAX_BODY_BYTES.to_string()), positive,
    "request body cap (413)");
setting!(SESSION_IDLE: Duration = "MCP_SESSION_IDLE_SECS", "--session-idle-secs",
    Default::Library(|| defaults::SESSION_IDLE.as_secs().to_string()), positive_secs,
    "idle time before a session expires");
setting!(MAX_SESSIONS: usize = "MCP_MAX_SESSIONS", "--max-sessions",
    Default::Library(|| defaults::MAX_SESSIONS.to_string()), count,
    "open-session cap (503 with `Retry-After` beyond)");
setting!(MAX_SESSIONS_PER_PRINCIPAL: usize = "MCP_MAX_SESSIONS_PER_PRINCIPAL", "--max-sessions-per-principal",
    Default::Library(|| defaults::MAX_SESSIONS_PER_PRINCIPAL.to_string()), count,
    "open sessions one principal may hold (429 with `Retry-After` beyond)");
setting!(MAX_INFLIGHT_BYTES: u64 = "MCP_MAX_INFLIGHT_BYTES", "--max-inflight-bytes",
    Default::Library(|| defaults::MAX_INFLIGHT_BYTES.to_string()), positive,
    "request bodies and their parsed form in flight, all requests together (503 with `Retry-After` beyond)");
setting!(MAX_BATCH: usize = "MCP_MAX_BATCH", "--max-batch",
    Default::Library(|| defaults::MAX_BATCH.to_string()), count,
    "messages in one JSON-RPC batch (2025-03-26 sessions; 400 beyond)");
setting!(MAX_CALLS_PER_PRINCIPAL: usize = "MCP_MAX_CALLS_PER_PRINCIPAL", "--max-calls-per-principal",
    Default::Library(|| defaults::MAX_CALLS_PER_PRINCIPAL.to_string()), count,
    "requests one principal may have in flight (429 with `Retry-After` beyond)");
setting!(MAX_STREAMS_PER_PRINCIPAL: usize = "MCP_MAX_STREAMS_PER_PRINCIPAL", "--max-streams-per-principal",
    Default::Library(|| defaults::MAX_STREAMS_PER_PRINCIPAL.to_string()), count,
    "GET and `subscriptions/listen` streams one principal may hold open (429 with `Retry-After` beyond)");
setting!(MAX_STREAMS: usize = "MCP_MAX_STREAMS", "--max-streams",
    Default::Library(|| defaults::MAX_STREAMS.to_string()), count,
    "open GET and `subscriptions/listen` streams, all principals (503 with `Retry-After` beyond)");
setting!(STREAM_MAX: Duration = "MCP_STREAM_MAX_SECS", "--stream-max-secs",
    Default::Library(|| defaults::STREAM_LIFETIME.as_secs().to_string()), positive_secs,
    "lifetime of a GET or `subscriptions/listen` stream; then it ends cleanly and the client reconnects");
setting!(MAX_CONNECTIONS: usize = "MCP_MAX_CONNECTIONS", "--max-connections",
    Default::Derived("9/10 of the open-file limit"), count,
    "open connections; beyond it the idlest idle one is closed, or the new one gets 503 and is closed");
setting!(WRITE_TIMEOUT: Duration = "MCP_WRITE_TIMEOUT_SECS", "--write-timeout-secs",
    Default::Library(|| defaults::WRITE_TIMEOUT.as_secs().to_string()), positive_secs,
    "a write (response or SSE keep-alive) that makes no progress this long closes the connection");
setting!(IDLE_TIMEOUT: Duration = "MCP_IDLE_TIMEOUT_SECS", "--idle-timeout-secs",
    Default::Library(|| defaults::IDLE_TIMEOUT.as_secs().to_string()), positive_secs,
    "a keep-alive connection with no request in flight closes after this long");
setting!(TASK_TTL: Duration = "MCP_TASK_TTL_SECS", "--task-ttl-secs",
    Default::Library(|| defaults::TASK_TTL.as_secs().to_string()), positive_secs,
    "how long a finished task's result stays readable before it is forgotten");
setting!(TASK_LEASE: Duration = "MCP_TASK_LEASE_SECS", "--task-lease-secs",
    Default::Library(|| defaults::TASK_LEASE.as_secs().to_string()), positive_secs,
    "a running task's lease, renewed every third of it by its replica: a task whose replica died fails once it lapses");
setting!(MAX_TASKS: usize = "MCP_MAX_TASKS", "--max-tasks",
    Default::Library(|| defaults::MAX_TASKS.to_string()), count,
    "task records held, finished ones included (503 with `Retry-After` beyond)");
setting!(MAX_TASKS_PER_PRINCIPAL: usize = "MCP_MAX_TASKS_PER_PRINCIPAL", "--max-tasks-per-principal",
    Default::Library(|| defaults::MAX_TASKS_PER_PRINCIPAL.to_string()), count,
    "unfinished tasks one principal may have (429 with `Retry-After` beyond)");
setting!(PAGE_SIZE: usize = "MCP_PAGE_SIZE", "--page-size",
    Default::Library(|| defaults::PAGE_SIZE.to_string()), count,
    "tools per `tools/list` page");
setting!(SSE_KEEPALIVE: Duration = "MCP_SSE_KEEPALIVE_SECS", "--sse-keepalive-secs",
    Default::Library(|| defaults::SSE_KEEPALIVE.as_secs().to_string()), positive_secs,
    "SSE keep-alive comment interval");
setting!(SHUTDOWN_GRACE: Duration = "MCP_SHUTDOWN_GRACE_SECS", "--shutdown-grace-secs",
    Default::Library(|| defaults::SHUTDOWN_GRACE.as_secs().to_string()), secs,
    "time in-flight requests get on SIGINT/SIGTERM");
setting!(STATE_KEY_FILE: PathBuf = "MCP_STATE_KEY_FILE", "--state-key-file", Default::Derived("random per process"), path,
    "file holding the 32-byte `requestState` secret (raw, or 64 hex digits); replicas share it");
setting!(TLS_CERT_FILE: PathBuf = "MCP_TLS_CERT_FILE", "--tls-cert-file", Default::None, path,
    "PEM certificate chain, leaf first; with `MCP_TLS_KEY_FILE` the server speaks https, reloading both on SIGHUP or a change");
setting!(TLS_KEY_FILE: PathBuf = "MCP_TLS_KEY_FILE", "--tls-key-file", Default::None, path,
    "PEM private key of the certificate (ECDSA or RSA; PKCS#8, SEC1 or PKCS#1)");
setting!(TLS_WATCH: Duration = "MCP_TLS_WATCH_SECS", "--tls-watch-secs", Default::Text("10"), secs,
    "how often the TLS files are checked for a change (`0`: only on SIGHUP)");
setting!(REDIS_URL: String = "MCP_REDIS_URL", "--redis-url", Default::Derived("unset: sessions in this process only"), redis_url,
    "`redis://[user:password@]host:port/db` (`rediss://` for TLS): replicas share sessions, streams, notifications and tasks through it");
setting!(REDIS_PREFIX: String = "MCP_REDIS_PREFIX", "--redis-prefix", Default::Text("vouch-mcp:"), text,
    "prefix of every Redis key and channel, so deployments can share one Redis");
setting!(LOG: Level = "VOUCH_MCP_LOG", "--log", Default::Text("info"), level,
    "`off`, `error`, `warn`, `info`, `debug`");
setting!(LOG_FORMAT: Format = "VOUCH_MCP_LOG_FORMAT", "--log-format", Default::Text("text"), log_format,
    "`text` (`key=value`) or `json` (one object per line)");
setting!(METRICS_ADDR: Option<SocketAddr> = "MCP_METRICS_ADDR", "--metrics-addr", Default::Derived("off (--dev: 127.0.0.1:9464)"), metrics_addr,
    "`ip:port` of a separate listener serving Prometheus `GET /metrics`, or `off`");
setting!(TRUSTED_PROXIES: Vec<String> = "MCP_TRUSTED_PROXIES", "--trusted-proxies", Default::None, proxies,
    "proxy addresses or CIDR blocks whose `X-Forwarded-For` and `X-Request-Id` are believed");
setting!(LISTEN_PATH: String = "MCP_LISTEN_PATH", "--listen-path", Default::Derived("the resource URL's path"), listen_path,
    "path the endpoint is served at, for a proxy that strips a prefix");
setting!(AUDIT: Audit = "VOUCH_MCP_AUDIT", "--audit", Default::Text("off"), audit,
    "audit log of auth decisions and tool calls: `off`, `stderr` or a file (JSON lines; reopened on SIGHUP)");
setting!(STEP_UP: StepUpMode = "VOUCH_STEP_UP", "--step-up", Default::Text("result"), step_up,
    "`sensitive-action` without a hardware key: `result` (the guide's `isError`) or `challenge` (401, RFC 9470)");

/// Every setting, in the order `--help` and the README list them.
static ALL: &[&dyn Described] = &[
    &ISSUER,
    &JWKS_URL,
    &RESOURCE_URL,
    &AUDIENCE,
    &SKIP_AUDIENCE,
    &REQUIRED_SCOPES,
    &LEEWAY_SECS,
    &REQUIRE_AT_JWT,
    &ALGORITHMS,
    &VERIFY_CACHE_ENTRIES,
    &SIGNATURE_FAILURES,
    &SIGNATURE_FAILURE_DELAY,
    &JWKS_TIMEOUT,
    &JWKS_REFETCH,
    &HOST,
    &PORT,
    &ALLOWED_HOSTS,
    &ALLOWED_ORIGINS,
    &MAX_BODY_BYTES,
    &SESSION_IDLE,
    &MAX_SESSIONS,
    &MAX_SESSIONS_PER_PRINCIPAL,
    &MAX_INFLIGHT_BYTES,
    &MAX_BATCH,
    &MAX_CALLS_PER_PRINCIPAL,
    &MAX_STREAMS_PER_PRINCIPAL,
    &MAX_STREAMS,
    &STREAM_MAX,
    &MAX_CONNECTIONS,
    &WRITE_TIMEOUT,
    &IDLE_TIMEOUT,
    &TASK_TTL,
    &TASK_LEASE,
    &MAX_TASKS,
    &MAX_TASKS_PER_PRINCIPAL,
    &PAGE_SIZE,
    &SSE_KEEPALIVE,
    &SHUTDOWN_GRACE,
    &STATE_KEY_FILE,
    &TLS_CERT_FILE,
    &TLS_KEY_FILE,
    &TLS_WATCH,
    &REDIS_URL,
    &REDIS_PREFIX,
    &LOG,
    &LOG_FORMAT,
    &METRICS_ADDR,
    &TRUSTED_PROXIES,
    &LISTEN_PATH,
    &AUDIT,
    &STEP_UP,
];

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) dev: bool,
    pub(crate) issuer: String,
    pub(crate) jwks_url: Option<String>,
    pub(crate) resource_url: Option<String>,
    pub(crate) audiences: Option<Vec<String>>,
    pub(crate) skip_audience: bool,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) leeway_secs: u64,
    pub(crate) require_at_jwt: bool,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) verify_cache_entries: usize,
    pub(crate) signature_failures_per_minute: u32,
    pub(crate) signature_failure_delay: Duration,
    pub(crate) jwks_timeout: Duration,
    pub(crate) jwks_refetch: Duration,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_body_bytes: u64,
    pub(crate) session_idle: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_principal: usize,
    pub(crate) max_inflight_bytes: u64,
    pub(crate) max_batch: usize,
    pub(crate) max_calls_per_principal: usize,
    pub(crate) max_streams_per_principal: usize,
    pub(crate) max_streams: usize,
    pub(crate) stream_max: Duration,
    pub(crate) max_connections: Option<usize>,
    pub(crate) write_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) task_ttl: Duration,
    pub(crate) task_lease: Duration,
    pub(crate) max_tasks: usize,
    pub(crate) max_tasks_per_principal: usize,
    pub(crate) page_size: usize,
    pub(crate) sse_keepalive: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) state_key_file: Option<PathBuf>,
    /// The TLS certificate chain and key files, when the server speaks https.
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) tls_watch: Duration,
    /// Never logged as given: it may hold a password.
    pub(crate) redis_url: Option<String>,
    pub(crate) redis_prefix: String,
    pub(crate) log: Level,
    pub(crate) log_format: Format,
    /// Where the metrics listener binds (`None`: off).
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// The metrics address is the `--dev` default, not one the operator chose.
    pub(crate) metrics_default: bool,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) listen_path: Option<String>,
    pub(crate) audit: Audit,
    pub(crate) step_up: StepUpMode,
}

/// `MCP_TLS_CERT_FILE` and `MCP_TLS_KEY_FILE`, given together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Run the server.
    Run(Box<Config>),
    /// Validate the settings, fetch the keys once, report, exit.
    Check(Box<Config>),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// Usage text listing every setting with its default.
pub(crate) fn usage() -> String {
    let mut s = String::from(
        "vouch-mcp: MCP remote server with Vouch OIDC (ES256) authorization\n\n\
         USAGE: vouch-mcp [--dev] [--FLAG VALUE]...\n\n\
         --dev    run with a built-in dev issuer on 127.0.0.1 and print ready tokens (flag only)\n\
         --check  validate every setting, fetch the JWKS once, print what was found, exit 0 or 1\n\
         --help   this text;  --version  the version\n\n\
         Each setting is an environment variable or a flag (the flag wins):\n\n",
    );
    for st in ALL {
        let default = st.default_text();
        s.push_str(&format!(
            "  {:<32} {:<30} default: {}\n      {}\n",
            st.env(),
            st.flag(),
            if default.is_empty() {
                "(none)"
            } else {
                &default
            },
            st.help().replace('`', "")
        ));
    }
    s
}

/// The README's configuration table rows, generated from the same table.
#[cfg(test)]
fn markdown_rows() -> String {
    let mut s = String::new();
    for st in ALL {
        let default = st.default_text();
        let default = if default.is_empty() {
            "none".to_owned()
        } else {
            format!("`{default}`")
        };
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            st.env(),
            st.flag(),
            default,
            st.help()
        ));
    }
    s
}

/// Parses `args` (without the program name) and the environment.
pub(crate) fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut dev = false;
    let mut check = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--dev" => dev = true,
            "--check" => check = true,
            a if a.starts_with("--") => {
                let (name, inline) = match a.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (a, None),
                };
                let Some(setting) = ALL.iter().find(|s| s.flag() == name) else {
                    return Err(ConfigError(format!("unknown flag {name} (see --help)")));
                };
                let value = if inline.is_some() || setting.switch() {
                    inline
                } else {
                    Some(
                        it.next()
                            .cloned()
                            .ok_or_else(|| ConfigError(format!("{name} needs a value")))?,
                    )
                };
                flags.push((name.to_owned(), value));
            }
            a => {
                return Err(ConfigError(format!(
                    "unexpected argument {a:?} (see --help)"
                )))
            }
        }
    }
    let src = Sources { flags, env };
    let host = HOST
        .get(&src)?
        .unwrap_or_else(|| if dev { "127.0.0.1" } else { "0.0.0.0" }.into());
    if dev && !is_loopback(&host) {
        return Err(ConfigError(format!(
            "--dev binds loopback only; refusing host {host} (from HOST or --host; use 127.0.0.1)"
        )));
    }
    let tls = match (TLS_CERT_FILE.get(&src)?, TLS_KEY_FILE.get(&src)?) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => {
            return Err(ConfigError(format!(
                "{} and {} go together: give both for https, or neither",
                TLS_CERT_FILE.env, TLS_KEY_FILE.env
            )))
        }
    };
    if dev && tls.is_some() {
        return Err(ConfigError(format!(
            "--dev serves plain http on loopback; {} and {} are for a real issuer",
            TLS_CERT_FILE.env, TLS_KEY_FILE.env
        )));
    }
    let metrics = METRICS_ADDR.get(&src)?;
    let dev_metrics: SocketAddr = ([127, 0, 0, 1], 9464).into();
    let config = Box::new(Config {
        dev,
        issuer: ISSUER.value(&src)?,
        jwks_url: JWKS_URL.get(&src)?,
        resource_url: RESOURCE_URL.get(&src)?,
        audiences: AUDIENCE.get(&src)?.filter(|a| !a.is_empty()),
        skip_audience: SKIP_AUDIENCE.value(&src)?,
        required_scopes: REQUIRED_SCOPES.get(&src)?.unwrap_or_default(),
        leeway_secs: LEEWAY_SECS.value(&src)?,
        require_at_jwt: REQUIRE_AT_JWT.value(&src)?,
        algorithms: ALGORITHMS.value(&src)?,
        verify_cache_entries: VERIFY_CACHE_ENTRIES.value(&src)?,
        signature_failures_per_minute: SIGNATURE_FAILURES.value(&src)?,
        signature_failure_delay: SIGNATURE_FAILURE_DELAY.value(&src)?,
        jwks_timeout: JWKS_TIMEOUT.value(&src)?,
        jwks_refetch: JWKS_REFETCH.value(&src)?,
        host,
        port: PORT.value(&src)?,
        allowed_hosts: ALLOWED_HOSTS.get(&src)?.unwrap_or_default(),
        allowed_origins: ALLOWED_ORIGINS.get(&src)?.unwrap_or_default(),
        max_body_bytes: MAX_BODY_BYTES.value(&src)?,
        session_idle: SESSION_IDLE.value(&src)?,
        max_sessions: MAX_SESSIONS.value(&src)?,
        max_sessions_per_principal: MAX_SESSIONS_PER_PRINCIPAL.value(&src)?,
        max_inflight_bytes: MAX_INFLIGHT_BYTES.value(&src)?,
        max_batch: MAX_BATCH.value(&src)?,
        max_calls_per_principal: MAX_CALLS_PER_PRINCIPAL.value(&src)?,
        max_streams_per_principal: MAX_STREAMS_PER_PRINCIPAL.value(&src)?,
        max_streams: MAX_STREAMS.value(&src)?,
        stream_max: STREAM_MAX.value(&src)?,
        max_connections: MAX_CONNECTIONS.get(&src)?,
        write_timeout: WRITE_TIMEOUT.value(&src)?,
        idle_timeout: IDLE_TIMEOUT.value(&src)?,
        task_ttl: TASK_TTL.value(&src)?,
        task_lease: TASK_LEASE.value(&src)?,
        max_tasks: MAX_TASKS.value(&src)?,
        max_tasks_per_principal: MAX_TASKS_PER_PRINCIPAL.value(&src)?,
        page_size: PAGE_SIZE.value(&src)?,
        sse_keepalive: SSE_KEEPALIVE.value(&src)?,
        shutdown_grace: SHUTDOWN_GRACE.value(&src)?,
        state_key_file: STATE_KEY_FILE.get(&src)?,
        tls,
        tls_watch: TLS_WATCH.value(&src)?,
        redis_url: REDIS_URL.get(&src)?,
        redis_prefix: REDIS_PREFIX.value(&src)?,
        log: LOG.value(&src)?,
        log_format: LOG_FORMAT.value(&src)?,
        metrics_addr: match metrics {
            Some(explicit) => explicit,
            None => dev.then_some(dev_metrics),
        },
        metrics_default: metrics.is_none() && dev,
        trusted_proxies: TRUSTED_PROXIES.get(&src)?.unwrap_or_default(),
        listen_path: LISTEN_PATH.get(&src)?,
        audit: AUDIT.value(&src)?,
        step_up: STEP_UP.value(&src)?,
    });
    Ok(if check {
        Command::Check(config)
    } else {
        Command::Run(config)
    })
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "::1" | "[::1]")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads the `requestState` secret: exactly 32 raw bytes, or 64 hex digits (surrounding
/// whitespace allowed).
pub(crate) fn read_state_key(path: &std::path::Path) -> Result<[u8; 32], ConfigError> {
    let name = STATE_KEY_FILE.env;
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError(format!("{name}={path:?} cannot be read: {e}")))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(raw);
    }
    let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
    let digits = text.as_bytes();
    if digits.len() == 64 && digits.iter().all(u8::is_ascii_hexdigit) {
        let mut key = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).expect("ascii hex digits");
            key[i] = u8::from_str_radix(hex, 16).expect("checked hex digits");
        }
        return Ok(key);
    }
    Err(ConfigError(format!(
        "{name}={path:?} must hold exactly 32 bytes, or 64 hex digits"
    )))
}

impl Config {
    /// The resource URL once the real port is known: https when the server speaks TLS.
    pub(crate) fn resource_url_for(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.resource_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://localhost:{port}/mcp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_hardening_settings_parse_with_defaults() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.algorithms, [Algorithm::Es256]);
        assert_eq!(c.verify_cache_entries, 65_536);
        assert_eq!(c.signature_failures_per_minute, 60);
        assert_eq!(c.signature_failure_delay, Duration::from_millis(500));
        let c = run(
            &[
                "--algorithms",
                "RS256,EdDSA",
                "--verify-cache-entries",
                "10",
            ],
            &[("VOUCH_SIGNATURE_FAILURES_PER_MINUTE", "0")],
        )
        .unwrap();
        assert_eq!(c.algorithms, [Algorithm::Rs256, Algorithm::EdDsa]);
        assert_eq!(
            (c.verify_cache_entries, c.signature_failures_per_minute),
            (10, 0)
        );
        let err = run(&[], &[("VOUCH_ALGORITHMS", "ES256,HS256")]).unwrap_err();
        assert!(err.0.contains("VOUCH_ALGORITHMS"), "{err}");
        let err = run(&[], &[("VOUCH_ALGORITHMS", ",")]).unwrap_err();
        assert!(err.0.contains("VOUCH_ALGORITHMS"), "{err}");
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match parse(&args, &lookup)? {
            Command::Run(c) | Command::Check(c) => Ok(*c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_guide_and_the_library() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.issuer, "https://us.vouch.sh");
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 3000));
        assert_eq!(c.resource_url_for(3000), "http://localhost:3000/mcp");
        assert!(!c.skip_audience);
        assert_eq!(c.max_body_bytes, defaults::MAX_BODY_BYTES);
        assert_eq!(c.session_idle, defaults::SESSION_IDLE);
        assert_eq!(c.max_sessions, defaults::MAX_SESSIONS);
        assert_eq!(
            c.max_sessions_per_principal,
            defaults::MAX_SESSIONS_PER_PRINCIPAL
        );
        assert_eq!(c.task_ttl, defaults::TASK_TTL);
        assert_eq!(c.task_lease, defaults::TASK_LEASE);
        assert_eq!(c.max_tasks, defaults::MAX_TASKS);
        assert_eq!(c.max_tasks_per_principal, defaults::MAX_TASKS_PER_PRINCIPAL);
        assert_eq!(c.jwks_timeout, Duration::from_secs(5));
        assert_eq!(c.leeway_secs, 60);
        assert_eq!(c.state_key_file, None);
        assert_eq!((c.redis_url, c.redis_prefix.as_str()), (None, "vouch-mcp:"));
    }

    #[test]
    fn redis_settings_parse() {
        let c = run(
            &["--redis-prefix", "blue:"],
            &[("MCP_REDIS_URL", "rediss://u:p@h:6380/2")],
        )
        .unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("rediss://u:p@h:6380/2"));
        assert_eq!(c.redis_prefix, "blue:");
    }

    #[test]
    fn task_limits_are_read_and_refused_when_zero() {
        let c = run(
            &["--max-tasks", "7"],
            &[
                ("MCP_TASK_TTL_SECS", "90"),
                ("MCP_TASK_LEASE_SECS", "3"),
                ("MCP_MAX_TASKS_PER_PRINCIPAL", "2"),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.task_ttl, c.max_tasks, c.max_tasks_per_principal),
            (Duration::from_secs(90), 7, 2)
        );
        assert_eq!(c.task_lease, Duration::from_secs(3));
        let e = run(&[], &[("MCP_TASK_LEASE_SECS", "0")]).unwrap_err();
        assert!(e.0.contains("MCP_TASK_LEASE_SECS"), "{e}");
        let e = run(&[], &[("MCP_MAX_TASKS_PER_PRINCIPAL", "0")]).unwrap_err();
        assert!(e.0.contains("MCP_MAX_TASKS_PER_PRINCIPAL"), "{e}");
    }

    #[test]
    fn flag_overrides_env() {
        let c = run(&["--port", "8080"], &[("PORT", "9000")]).unwrap();
        assert_eq!(c.port, 8080);
        let c = run(&["--port=7"], &[]).unwrap();
        assert_eq!(c.port, 7);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (k, v) in [
            ("PORT", "abc"),
            ("PORT", "70000"),
            ("VOUCH_SKIP_AUDIENCE", "maybe"),
            ("VOUCH_REQUIRED_SCOPES", "a\"b"),
            ("MCP_RESOURCE_URL", "localhost/mcp"),
            ("VOUCH_ISSUER", "us.vouch.sh"),
            ("VOUCH_LEEWAY_SECS", "-1"),
            ("MCP_MAX_SESSIONS", "0"),
            ("VOUCH_MCP_LOG", "loud"),
            ("VOUCH_MCP_LOG_FORMAT", "xml"),
            ("MCP_METRICS_ADDR", "9464"),
            ("MCP_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("MCP_TRUSTED_PROXIES", "proxy.internal"),
            ("MCP_LISTEN_PATH", "mcp"),
            ("VOUCH_STEP_UP", "maybe"),
            ("MCP_REDIS_URL", "http://h:6379"),
        ] {
            let e = run(&[], &[(k, v)]).unwrap_err();
            assert!(e.0.contains(k), "{k}={v}: {e}");
        }
        assert!(run(&["--bogus"], &[]).unwrap_err().0.contains("--bogus"));
        assert!(run(&["--port", "x"], &[]).unwrap_err().0.contains("--port"));
    }

    #[test]
    fn operations_settings_parse() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(
            (c.log_format, c.metrics_addr, c.audit.clone()),
            (Format::Text, None, Audit::Off)
        );
        assert_eq!(c.step_up, StepUpMode::Result);
        let dev = run(&["--dev"], &[]).unwrap();
        assert_eq!(dev.metrics_addr, Some(([127, 0, 0, 1], 9464).into()));
        assert!(dev.metrics_default);
        let off = run(&["--dev", "--metrics-addr", "off"], &[]).unwrap();
        assert_eq!((off.metrics_addr, off.metrics_default), (None, false));
        let c = run(
            &["--check"],
            &[
                ("VOUCH_MCP_LOG_FORMAT", "json"),
                ("MCP_METRICS_ADDR", "127.0.0.1:0"),
                ("MCP_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
                ("MCP_LISTEN_PATH", "/mcp"),
                ("VOUCH_MCP_AUDIT", "/var/log/audit.jsonl"),
                ("VOUCH_STEP_UP", "challenge"),
            ],
        )
        .unwrap();
        assert_eq!(c.log_format, Format::Json);
        assert_eq!(c.metrics_addr, Some(([127, 0, 0, 1], 0).into()));
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert_eq!(c.listen_path.as_deref(), Some("/mcp"));
        assert_eq!(c.audit, Audit::File("/var/log/audit.jsonl".into()));
        assert_eq!(c.step_up, StepUpMode::Challenge);
        let args: Vec<String> = vec!["--check".into()];
        assert!(matches!(parse(&args, &|_| None), Ok(Command::Check(_))));
    }

    #[test]
    fn dev_refuses_public_bind() {
        assert!(run(&["--dev", "--host", "0.0.0.0"], &[]).is_err());
        assert_eq!(run(&["--dev"], &[]).unwrap().host, "127.0.0.1");
    }

    #[test]
    fn lists_and_switches_parse() {
        let c = run(
            &[
                "--leeway-secs",
                "5",
                "--require-at-jwt",
                "--insecure-skip-audience",
                "--port",
                "1",
            ],
            &[
                ("VOUCH_AUDIENCE", "a,b c"),
                ("VOUCH_REQUIRED_SCOPES", "mcp:tools, read"),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.leeway_secs, c.require_at_jwt, c.skip_audience),
            (5, true, true)
        );
        assert_eq!(c.port, 1);
        assert_eq!(c.audiences.unwrap(), ["a", "b", "c"]);
        assert_eq!(c.required_scopes, ["mcp:tools", "read"]);
    }

    #[test]
    fn state_key_file_is_raw_or_hex() {
        let dir = std::env::temp_dir().join(format!("vouch-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(read_state_key(&raw).unwrap(), [7u8; 32]);
        let hex = dir.join("hex");
        std::fs::write(&hex, format!("{}\n", "0a".repeat(32))).unwrap();
        assert_eq!(read_state_key(&hex).unwrap(), [10u8; 32]);
        let short = dir.join("short");
        std::fs::write(&short, "abc").unwrap();
        assert!(read_state_key(&short)
            .unwrap_err()
            .0
            .contains("MCP_STATE_KEY_FILE"));
        assert!(read_state_key(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_files_go_together_and_make_the_default_resource_url_https() {
        let c = run(
            &["--tls-cert-file", "/c.pem"],
            &[("MCP_TLS_KEY_FILE", "/k.pem")],
        )
        .unwrap();
        assert_eq!(
            c.tls,
            Some(TlsFiles {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
        assert_eq!(c.resource_url_for(8443), "https://localhost:8443/mcp");
        assert_eq!(c.tls_watch, Duration::from_secs(10));
        // An explicit resource URL is kept as given.
        let c = run(
            &["--tls-cert-file", "/c", "--tls-key-file", "/k"],
            &[
                ("MCP_RESOURCE_URL", "https://mcp.example.com/mcp"),
                ("MCP_TLS_WATCH_SECS", "0"),
            ],
        )
        .unwrap();
        assert_eq!(c.resource_url_for(1), "https://mcp.example.com/mcp");
        assert_eq!(c.tls_watch, Duration::ZERO);
        assert_eq!(run(&[], &[]).unwrap().tls, None);
        for env in [[("MCP_TLS_CERT_FILE", "/c")], [("MCP_TLS_KEY_FILE", "/k")]] {
            let e = run(&[], &env).unwrap_err();
            assert!(
                e.0.contains("MCP_TLS_CERT_FILE and MCP_TLS_KEY_FILE"),
                "{e}"
            );
        }
        let e = run(
            &["--dev", "--tls-cert-file", "/c", "--tls-key-file", "/k"],
            &[],
        )
        .unwrap_err();
        assert!(e.0.contains("--dev"), "{e}");
        assert!(run(&[], &[("MCP_TLS_WATCH_SECS", "soon")])
            .unwrap_err()
            .0
            .contains("MCP_TLS_WATCH_SECS"));
    }

    #[test]
    fn readme_configuration_table_is_the_settings_table() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let rows: String = readme
            .lines()
            .filter(|l| l.starts_with("| `") && l.contains("` | `--"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            rows,
            markdown_rows(),
            "README's configuration table must be exactly `vouch-mcp`'s settings table"
        );
    }

    #[test]
    fn help_lists_every_setting_with_its_default() {
        let help = usage();
        for st in ALL {
            assert!(
                help.contains(st.env()) && help.contains(st.flag()),
                "{}",
                st.env()
            );
        }
        assert!(help.contains(&format!("default: {}", defaults::MAX_BODY_BYTES)));
    }
}
