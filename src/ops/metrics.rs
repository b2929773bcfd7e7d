//! Prometheus counters and the operation-duration histogram: lock-free atomics indexed by bounded labels, rendered in the text exposition format by hand.
//!
//! Every label value comes from a fixed table or from the tool registry (an unknown tool is
//! `other`); nothing a client sends, no subject and no token ever becomes a label. Recording is
//! one or two relaxed atomic additions on arrays sized at build time: no lock, no allocation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Which part of the server answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Route {
    /// The MCP endpoint.
    Mcp,
    /// An RFC 9728 metadata path.
    Metadata,
    /// `/healthz`.
    Healthz,
    /// `/readyz`.
    Readyz,
    /// The embedder's fallback handler.
    Fallback,
    /// Nothing is served there.
    #[default]
    NotFound,
}

const ROUTES: [&str; 6] = [
    "mcp",
    "metadata",
    "healthz",
    "readyz",
    "fallback",
    "not_found",
];
const HTTP_METHODS: [&str; 8] = [
    "GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH", "other",
];
/// The statuses the server produces; any other (an embedder's fallback) counts as `other`.
const STATUSES: [u16; 24] = [
    200, 201, 202, 204, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 409, 413, 415, 421,
    429, 500, 502, 503, 504,
];

/// MCP method names (OpenTelemetry's well-known `mcp.method.name` values the server serves),
/// then `other`. The protocol core names methods from the same set.
const MCP_METHODS: [&str; 20] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "other",
];
const TOOLS_CALL: usize = 4;

/// `error.type` values: empty for success, then the classes the server reports.
const ERROR_TYPES: [&str; 16] = [
    "",
    "tool_error",
    "cancelled",
    "insufficient_scope",
    "insufficient_user_authentication",
    "-32700",
    "-32600",
    "-32601",
    "-32602",
    "-32603",
    "-32001",
    "-32002",
    "-32020",
    "-32021",
    "-32022",
    "_OTHER",
];

/// How an operation ended, as the histogram's `error_type` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorType {
    /// Success.
    None,
    /// A tool result with `isError: true`.
    ToolError,
    /// The client left (or the call was cancelled) before the result.
    Cancelled,
    /// The token lacks a scope the tool needs.
    InsufficientScope,
    /// The token fails the tool's step-up policy.
    InsufficientUserAuthentication,
    /// A JSON-RPC error with this code.
    Code(i32),
}

impl ErrorType {
    fn index(self) -> usize {
        match self {
            Self::None => 0,
            Self::ToolError => 1,
            Self::Cancelled => 2,
            Self::InsufficientScope => 3,
            Self::InsufficientUserAuthentication => 4,
            Self::Code(c) => {
                const CODES: [i32; 10] = [
                    -32700, -32600, -32601, -32602, -32603, -32001, -32002, -32020, -32021, -32022,
                ];
                CODES.iter().position(|&k| k == c).map_or(15, |i| i + 5)
            }
        }
    }
}

/// Why an auth decision went the way it did.
const AUTH_REASONS: [&str; 19] = [
    "ok",
    "no_credentials",
    "invalid_request",
    "malformed_bearer",
    "keys_unavailable",
    "too_many_signature_failures",
    "insufficient_scope",
    "insufficient_user_authentication",
    "token_too_large",
    "token_malformed",
    "unsupported_algorithm",
    "unsupported_token_type",
    "signature_invalid",
    "unknown_signing_key",
    "wrong_issuer",
    "token_expired",
    "token_not_yet_valid",
    "token_not_issued_for_this_resource",
    "other",
];

/// The `reason` label of an auth decision: one of a fixed set (`other` for anything new).
pub(crate) fn auth_reason_index(reason: &str) -> usize {
    AUTH_REASONS
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(AUTH_REASONS.len() - 1)
}

/// The label for a JWT failure's generic description (`token expired` → `token_expired`).
pub(crate) fn jwt_reason(description: &str) -> &'static str {
    AUTH_REASONS
        .iter()
        .find(|r| {
            r.len() == description.len()
                && r.bytes()
                    .zip(description.bytes())
                    .all(|(a, b)| a == b || (a == b'_' && b == b' '))
        })
        .copied()
        .unwrap_or("other")
}

/// `mcp.server.operation.duration` bucket bounds (OpenTelemetry's advice), in microseconds.
const BUCKETS_US: [u64; 14] = [
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
];
const BUCKET_LABELS: [&str; 14] = [
    "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10", "30", "60", "120", "300",
];
/// Per series: one count per bucket, one for +Inf, and the sum in microseconds.
const SLOTS: usize = BUCKETS_US.len() + 2;

/// Values read when the metrics are scraped, from the parts that own them.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    pub(crate) sessions: usize,
    /// Task records held (working, input_required and finished until forgotten).
    pub(crate) tasks: usize,
    /// Tasks whose handler runs in this process.
    pub(crate) tasks_running: usize,
    pub(crate) keys: Option<KeyGauges>,
    pub(crate) log_dropped: u64,
    pub(crate) audit_dropped: Option<u64>,
    pub(crate) ready: bool,
}

/// The key source's figures (absent when auth is disabled).
#[derive(Debug, Default)]
pub(crate) struct KeyGauges {
    pub(crate) fetches_ok: u64,
    pub(crate) fetches_failed: u64,
    pub(crate) keys: usize,
    pub(crate) age_secs: Option<f64>,
    pub(crate) cache_hits: u64,
    pub(crate) cache_misses: u64,
}

/// Every counter of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    http: Box<[AtomicU64]>,
    ops: Box<[AtomicU64]>,
    auth: Box<[AtomicU64]>,
    tools: Vec<String>,
    streams: AtomicI64,
    in_flight: AtomicI64,
}

impl Metrics {
    /// Counters for a server whose tool registry is `tools` (in registry order).
    pub(crate) fn new(tools: Vec<String>) -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        let rows = MCP_METHODS.len() + tools.len() + 1;
        Self {
            http: zeros(ROUTES.len() * HTTP_METHODS.len() * (STATUSES.len() + 1)),
            ops: zeros(rows * ERROR_TYPES.len() * SLOTS),
            auth: zeros(2 * AUTH_REASONS.len()),
            tools,
            streams: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
        }
    }

    /// One HTTP request answered.
    pub(crate) fn http(&self, route: Route, method: &http::Method, status: u16) {
        let m = HTTP_METHODS
            .iter()
            .position(|n| *n == method.as_str())
            .unwrap_or(HTTP_METHODS.len() - 1);
        let s = STATUSES
            .iter()
            .position(|&k| k == status)
            .unwrap_or(STATUSES.len());
        let i = (route as usize * HTTP_METHODS.len() + m) * (STATUSES.len() + 1) + s;
        self.http[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram row of `method` (and, for `tools/call`, the tool at `tool`; `None` is `other`).
    fn row(&self, method: &str, tool: Option<usize>) -> usize {
        let m = MCP_METHODS
            .iter()
            .position(|n| *n == method)
            .unwrap_or(MCP_METHODS.len() - 1);
        if m != TOOLS_CALL {
            return m;
        }
        MCP_METHODS.len()
            + tool
                .filter(|&t| t < self.tools.len())
                .unwrap_or(self.tools.len())
    }

    /// One MCP operation finished after `micros`.
    pub(crate) fn operation(
        &self,
        method: &str,
        tool: Option<usize>,
        error: ErrorType,
        micros: u64,
    ) {
        let base = (self.row(method, tool) * ERROR_TYPES.len() + error.index()) * SLOTS;
        let bucket = BUCKETS_US
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(BUCKETS_US.len());
        self.ops[base + bucket].fetch_add(1, Ordering::Relaxed);
        self.ops[base + SLOTS - 1].fetch_add(micros, Ordering::Relaxed);
    }

    /// One auth decision: allowed, or denied for `reason` (a label of [`AUTH_REASONS`]).
    pub(crate) fn auth(&self, allowed: bool, reason: &str) {
        let i = usize::from(!allowed) * AUTH_REASONS.len() + auth_reason_index(reason);
        self.auth[i].fetch_add(1, Ordering::Relaxed);
    }

    /// An SSE response opened (`1`) or ended (`-1`).
    pub(crate) fn streams(&self, delta: i64) {
        self.streams.fetch_add(delta, Ordering::Relaxed);
    }

    /// A handler started (`1`) or finished (`-1`).
    pub(crate) fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// The text exposition (format 0.0.4) of every family.
    pub(crate) fn render(&self, g: &Gauges, process: &Process) -> String {
        let mut out = String::with_capacity(8192);
        let o = &mut out;
        family(o, "vouch_mcp_build_info", "gauge", "The running version.");
        let _ = writeln!(
            o,
            "vouch_mcp_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        family(o, "vouch_mcp_ready", "gauge", "1 when /readyz answers 200.");
        let _ = writeln!(o, "vouch_mcp_ready {}", u8::from(g.ready));

        family(
            o,
            "vouch_mcp_http_requests_total",
            "counter",
            "HTTP requests answered, by route, method and status.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            for (m, method) in HTTP_METHODS.iter().enumerate() {
                for s in 0..=STATUSES.len() {
                    let i = (r * HTTP_METHODS.len() + m) * (STATUSES.len() + 1) + s;
                    let n = self.http[i].load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let status = STATUSES
                        .get(s)
                        .map_or_else(|| "other".to_owned(), u16::to_string);
                    let _ = writeln!(o, "vouch_mcp_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
                }
            }
        }

        family(o, "mcp_server_operation_duration_seconds", "histogram", "MCP request and notification duration on the server (OpenTelemetry mcp.server.operation.duration).");
        let rows = MCP_METHODS.len() + self.tools.len() + 1;
        for row in 0..rows {
            let (method, tool) = if let Some(m) = MCP_METHODS.get(row) {
                (*m, None)
            } else {
                let t = row - MCP_METHODS.len();
                (
                    MCP_METHODS[TOOLS_CALL],
                    Some(self.tools.get(t).map_or("other", String::as_str)),
                )
            };
            if row == TOOLS_CALL {
                continue; // tools/call is counted per tool
            }
            for (e, error) in ERROR_TYPES.iter().enumerate() {
                let base = (row * ERROR_TYPES.len() + e) * SLOTS;
                let counts: Vec<u64> = (0..SLOTS - 1)
                    .map(|b| self.ops[base + b].load(Ordering::Relaxed))
                    .collect();
                let total: u64 = counts.iter().sum();
                if total == 0 {
                    continue;
                }
                let mut labels = format!("mcp_method_name=\"{method}\"");
                if let Some(t) = tool {
                    labels.push_str(",gen_ai_tool_name=\"");
                    escape_label(&mut labels, t);
                    labels.push('"');
                }
                if !error.is_empty() {
                    let _ = write!(labels, ",error_type=\"{error}\"");
                }
                let mut cumulative = 0;
                for (b, le) in BUCKET_LABELS.iter().enumerate() {
                    cumulative += counts[b];
                    let _ = writeln!(o, "mcp_server_operation_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                let _ = writeln!(
                    o,
                    "mcp_server_operation_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}"
                );
                let sum = self.ops[base + SLOTS - 1].load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    o,
                    "mcp_server_operation_duration_seconds_sum{{{labels}}} {sum}"
                );
                let _ = writeln!(
                    o,
                    "mcp_server_operation_duration_seconds_count{{{labels}}} {total}"
                );
            }
        }

        family(
            o,
            "vouch_mcp_auth_decisions_total",
            "counter",
            "Authorization decisions, by outcome and reason.",
        );
        for (d, outcome) in ["allowed", "denied"].iter().enumerate() {
            for (r, reason) in AUTH_REASONS.iter().enumerate() {
                let n = self.auth[d * AUTH_REASONS.len() + r].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(o, "vouch_mcp_auth_decisions_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {n}");
                }
            }
        }

        if let Some(k) = &g.keys {
            family(
                o,
                "vouch_mcp_jwks_fetches_total",
                "counter",
                "JWKS fetches, by outcome.",
            );
            let _ = writeln!(
                o,
                "vouch_mcp_jwks_fetches_total{{outcome=\"ok\"}} {}",
                k.fetches_ok
            );
            let _ = writeln!(
                o,
                "vouch_mcp_jwks_fetches_total{{outcome=\"error\"}} {}",
                k.fetches_failed
            );
            family(
                o,
                "vouch_mcp_jwks_keys",
                "gauge",
                "Usable keys in the current key set (0 before the first fetch).",
            );
            let _ = writeln!(o, "vouch_mcp_jwks_keys {}", k.keys);
            if let Some(age) = k.age_secs {
                family(
                    o,
                    "vouch_mcp_jwks_key_set_age_seconds",
                    "gauge",
                    "Seconds since the current key set was fetched.",
                );
                let _ = writeln!(o, "vouch_mcp_jwks_key_set_age_seconds {age:.3}");
            }
            family(
                o,
                "vouch_mcp_verification_cache_total",
                "counter",
                "Token verifications answered from a cache (hit) or verified in full (miss).",
            );
            let _ = writeln!(
                o,
                "vouch_mcp_verification_cache_total{{result=\"hit\"}} {}",
                k.cache_hits
            );
            let _ = writeln!(
                o,
                "vouch_mcp_verification_cache_total{{result=\"miss\"}} {}",
                k.cache_misses
            );
        }

        family(
            o,
            "vouch_mcp_open_sessions",
            "gauge",
            "Initialize-era sessions open.",
        );
        let _ = writeln!(o, "vouch_mcp_open_sessions {}", g.sessions);
        family(
            o,
            "vouch_mcp_tasks",
            "gauge",
            "Task records held: unfinished, and finished ones until forgotten.",
        );
        let _ = writeln!(o, "vouch_mcp_tasks {}", g.tasks);
        family(
            o,
            "vouch_mcp_tasks_running",
            "gauge",
            "Tasks whose handler runs in this process.",
        );
        let _ = writeln!(o, "vouch_mcp_tasks_running {}", g.tasks_running);
        family(
            o,
            "vouch_mcp_open_streams",
            "gauge",
            "SSE responses open (GET streams, listen streams, streamed calls).",
        );
        let _ = writeln!(
            o,
            "vouch_mcp_open_streams {}",
            self.streams.load(Ordering::Relaxed).max(0)
        );
        family(
            o,
            "vouch_mcp_handlers_in_flight",
            "gauge",
            "Tool, prompt and resource handlers running.",
        );
        let _ = writeln!(
            o,
            "vouch_mcp_handlers_in_flight {}",
            self.in_flight.load(Ordering::Relaxed).max(0)
        );
        family(
            o,
            "vouch_mcp_log_lines_dropped_total",
            "counter",
            "Log lines dropped because the log could not keep up.",
        );
        let _ = writeln!(o, "vouch_mcp_log_lines_dropped_total {}", g.log_dropped);
        if let Some(n) = g.audit_dropped {
            family(
                o,
                "vouch_mcp_audit_lines_dropped_total",
                "counter",
                "Audit lines dropped because the audit sink could not keep up.",
            );
            let _ = writeln!(o, "vouch_mcp_audit_lines_dropped_total {n}");
        }
        if let Some(rss) = process.resident_bytes {
            family(
                o,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(o, "process_resident_memory_bytes {rss}");
        }
        if let Some(fds) = process.open_fds {
            family(o, "process_open_fds", "gauge", "Open file descriptors.");
            let _ = writeln!(o, "process_open_fds {fds}");
        }
        if let Some(max) = process.max_fds {
            family(
                o,
                "process_max_fds",
                "gauge",
                "The open file descriptor limit.",
            );
            let _ = writeln!(o, "process_max_fds {max}");
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape `\`, `"` and newlines (text format 0.0.4).
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The process's own figures, read from `/proc` when there is one.
#[derive(Debug, Default)]
pub(crate) struct Process {
    pub(crate) resident_bytes: Option<u64>,
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: Option<u64>,
}

impl Process {
    /// Reads `/proc/self` (Linux); elsewhere every figure is absent.
    pub(crate) fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let resident_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse().ok())
            });
        Self {
            resident_bytes,
            open_fds,
            max_fds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_labels_fall_into_other() {
        let m = Metrics::new(vec!["whoami".into()]);
        m.operation("tools/call", Some(7), ErrorType::Code(-32602), 5);
        m.operation("no/such", None, ErrorType::Code(-1), 5);
        m.http(Route::Fallback, &http::Method::TRACE, 418);
        let text = m.render(&Gauges::default(), &Process::default());
        assert!(text.contains(r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="other",error_type="-32602"} 1"#), "{text}");
        assert!(text.contains(r#"mcp_server_operation_duration_seconds_count{mcp_method_name="other",error_type="_OTHER"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"vouch_mcp_http_requests_total{route="fallback",method="other",status="other"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let m = Metrics::new(vec![]);
        m.operation("ping", None, ErrorType::None, 10_000);
        m.operation("ping", None, ErrorType::None, 10_001);
        m.operation("ping", None, ErrorType::None, 400_000_000);
        let text = m.render(&Gauges::default(), &Process::default());
        assert!(
            text.contains(r#"{mcp_method_name="ping",le="0.01"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{mcp_method_name="ping",le="0.02"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{mcp_method_name="ping",le="300"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{mcp_method_name="ping",le="+Inf"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"mcp_server_operation_duration_seconds_sum{mcp_method_name="ping"} 400.020001"#
            ),
            "{text}"
        );
    }

    #[test]
    fn jwt_descriptions_map_to_reason_labels() {
        assert_eq!(jwt_reason("token expired"), "token_expired");
        assert_eq!(
            jwt_reason("token not issued for this resource"),
            "token_not_issued_for_this_resource"
        );
        assert_eq!(jwt_reason("something new"), "other");
    }
}
