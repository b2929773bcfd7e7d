//! Logging: one process-wide sink and level, a default that never blocks a request, and quoting that keeps client values from forging lines.
//!
//! Every line is a [`LogRecord`]: a level, the time, and a message of `key=value` pairs built
//! with [`field`], which quotes a value unless it is plain token characters and cuts it at
//! [`MAX_VALUE_BYTES`]. No token ever reaches a record.
//!
//! The default sink, [`StderrSink`], hands each record to a bounded queue drained by a writer
//! thread through a buffered stderr. When the queue is full (stderr stalled, or a flood) the
//! record is dropped and counted, and the writer reports the count: requests never wait for
//! the log. An embedder can install its own sink once, before the first line is written.
//!
//! With [`Format::Json`] every message is a JSON object (`{"msg":...}` plus the fields) and the
//! writer adds `ts` and `level` in front: one JSON object per line. With the `tracing` cargo
//! feature, [`TracingSink`] forwards records to the `tracing` crate and is the default sink.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Nothing is logged.
    Off = 0,
    /// Failures needing an operator.
    Error = 1,
    /// Degraded operation (issuer down, skipped keys, limits hit).
    Warn = 2,
    /// One line per request plus lifecycle events (the default).
    Info = 3,
    /// Verbose diagnostics.
    Debug = 4,
}

impl Level {
    /// Parses `off|error|warn|info|debug` (also `none`, `warning`, `trace`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "off" | "none" => Self::Off,
            "error" => Self::Error,
            "warn" | "warning" => Self::Warn,
            "info" => Self::Info,
            "debug" | "trace" => Self::Debug,
            _ => return None,
        })
    }

    /// The level's name as written in lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `ts=... level=... message key=value ...` (the default).
    Text,
    /// One JSON object per line: `{"ts":...,"level":...,"msg":...,...fields}`.
    Json,
}

impl Format {
    /// Parses `text` or `json`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Severity.
    pub level: Level,
    /// When it was written.
    pub time: SystemTime,
    /// The message: words and ` key=value` pairs, no newline; with [`Format::Json`], a JSON
    /// object (`msg` and the fields).
    pub message: String,
}

/// Where log lines go. Implementations must not block for long: they are called on the
/// request path.
pub trait LogSink: Send + Sync + 'static {
    /// Takes one line.
    fn write(&self, record: LogRecord);

    /// Blocks until the lines taken so far are written out (the process is about to exit).
    /// The default does nothing, for sinks that write synchronously.
    fn flush(&self) {}
}

/// Client-controlled values are cut to this many bytes, with the original length noted.
pub const MAX_VALUE_BYTES: usize = 256;

/// Lines the default sink holds before it starts dropping.
const QUEUE_LINES: usize = 8192;

static SINK: OnceLock<Arc<dyn LogSink>> = OnceLock::new();
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicBool = AtomicBool::new(false);
/// Lines every default sink of this process dropped (a metric).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the process-wide sink. Only the first installation takes effect (lines already
/// written went to the default); returns false when a sink was already in place.
pub fn install_sink(sink: Arc<dyn LogSink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Sets the process-wide level.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Sets the process-wide line format.
pub fn set_format(format: Format) {
    JSON.store(format == Format::Json, Ordering::Relaxed);
}

/// The process-wide line format.
pub fn format() -> Format {
    if JSON.load(Ordering::Relaxed) {
        Format::Json
    } else {
        Format::Text
    }
}

/// Lines the default sinks dropped so far, process-wide.
pub(crate) fn dropped_total() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// True when a line at `level` would be written.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

fn sink() -> &'static Arc<dyn LogSink> {
    SINK.get_or_init(default_sink)
}

#[cfg(not(feature = "tracing"))]
fn default_sink() -> Arc<dyn LogSink> {
    Arc::new(StderrSink::start())
}

#[cfg(feature = "tracing")]
fn default_sink() -> Arc<dyn LogSink> {
    Arc::new(TracingSink)
}

/// Writes out the lines queued so far, waiting at most a second: call it before the process exits.
pub fn flush() {
    sink().flush();
}

/// Writes one line at `level` through the installed sink (so an embedder's own lines share the
/// format and the non-blocking queue). Quote client-supplied values with care: this writes
/// `args` as given.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut message = String::with_capacity(128);
    let _ = message.write_fmt(args);
    if format() == Format::Json {
        let mut obj = String::with_capacity(message.len() + 12);
        obj.push_str("{\"msg\":");
        json_string(&mut obj, &message);
        obj.push('}');
        message = obj;
    }
    emit(level, SystemTime::now(), message);
}

/// A structured line: a message and `key=value` fields, written as text or as JSON members
/// depending on the process-wide [`Format`]. Values are cut at [`MAX_VALUE_BYTES`].
pub(crate) struct Line {
    buf: String,
    json: bool,
}

impl Line {
    /// A line whose message is `msg` (a fixed word, never client data).
    pub(crate) fn new(msg: &str) -> Self {
        let json = format() == Format::Json;
        let mut buf = String::with_capacity(192);
        if json {
            buf.push_str("{\"msg\":\"");
            buf.push_str(msg);
            buf.push('"');
        } else {
            buf.push_str(msg);
        }
        Self { buf, json }
    }

    /// Adds a string field (quoted as needed in text, a JSON string in JSON).
    pub(crate) fn field(&mut self, key: &str, value: &str) -> &mut Self {
        if self.json {
            self.buf.push_str(",\"");
            self.buf.push_str(key);
            self.buf.push_str("\":");
            json_string(&mut self.buf, cut(value));
        } else {
            field(&mut self.buf, key, value);
        }
        self
    }

    /// Adds a field whose value is `value`'s `Display` text, formatted without a heap copy
    /// (text longer than 64 bytes is cut, as addresses and ids never are).
    pub(crate) fn display(&mut self, key: &str, value: impl fmt::Display) -> &mut Self {
        let mut buf = StackText::default();
        let _ = fmt::Write::write_fmt(&mut buf, format_args!("{value}"));
        self.field(key, buf.as_str())
    }

    /// Adds an IP address field. IPv4 is written digit by digit into a 15-byte buffer: core's
    /// `Display` for it, or even `fmt::Write` per octet, costs more than the rest of the line.
    pub(crate) fn ip(&mut self, key: &str, ip: std::net::IpAddr) -> &mut Self {
        let std::net::IpAddr::V4(v4) = ip else {
            return self.display(key, ip);
        };
        let mut buf = [0u8; 15];
        let mut len = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[len] = b'.';
                len += 1;
            }
            if octet >= 100 {
                buf[len] = b'0' + octet / 100;
                len += 1;
            }
            if octet >= 10 {
                buf[len] = b'0' + octet / 10 % 10;
                len += 1;
            }
            buf[len] = b'0' + octet % 10;
            len += 1;
        }
        self.field(key, std::str::from_utf8(&buf[..len]).unwrap_or(""))
    }

    /// Adds a number field (bare in both formats).
    pub(crate) fn number(&mut self, key: &str, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let text = decimal(value, &mut digits);
        if self.json {
            self.buf.push_str(",\"");
            self.buf.push_str(key);
            self.buf.push_str("\":");
            self.buf.push_str(text);
        } else {
            // Digits never need quoting.
            self.buf.push(' ');
            self.buf.push_str(key);
            self.buf.push('=');
            self.buf.push_str(text);
        }
        self
    }

    /// Writes the line at `level`, stamped `time`.
    pub(crate) fn emit(mut self, level: Level, time: SystemTime) {
        if self.json {
            self.buf.push('}');
        }
        emit(level, time, self.buf);
    }
}

/// Up to 64 bytes of formatted text on the stack; what does not fit is dropped.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        Self {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `str`s (or their char-boundary prefixes) are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// `value` cut at [`MAX_VALUE_BYTES`] on a character boundary.
fn cut(value: &str) -> &str {
    if value.len() <= MAX_VALUE_BYTES {
        return value;
    }
    let mut end = MAX_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Formats `n` in decimal into `buf` without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("ascii digits")
}

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes an already built line at `level`, stamped `time` (the request line builds its own
/// buffer and reuses the request's clock reading).
pub(crate) fn emit(level: Level, time: SystemTime, message: String) {
    sink().write(LogRecord {
        level,
        time,
        message,
    });
}

/// Writes a free-text line (as [`write`] does): wrapped as `{"msg":...}` in the JSON format.
pub(crate) fn emit_text(level: Level, time: SystemTime, message: String) {
    if format() == Format::Json {
        let mut obj = String::with_capacity(message.len() + 12);
        obj.push_str("{\"msg\":");
        json_string(&mut obj, &message);
        obj.push('}');
        return emit(level, time, obj);
    }
    emit(level, time, message);
}

/// Logs at error level.
pub(crate) fn error(args: fmt::Arguments<'_>) {
    write(Level::Error, args)
}
/// Logs at warn level.
pub(crate) fn warn(args: fmt::Arguments<'_>) {
    write(Level::Warn, args)
}
/// Logs at info level.
pub(crate) fn info(args: fmt::Arguments<'_>) {
    write(Level::Info, args)
}
/// Logs at debug level.
pub(crate) fn debug(args: fmt::Arguments<'_>) {
    write(Level::Debug, args)
}

/// Appends ` key=value`, quoting the value when it holds anything but plain token characters,
/// and cutting it at [`MAX_VALUE_BYTES`] with the original length noted.
pub(crate) fn field(line: &mut String, key: &str, value: &str) {
    line.push(' ');
    line.push_str(key);
    line.push('=');
    let cut = if value.len() > MAX_VALUE_BYTES {
        let mut end = MAX_VALUE_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        &value[..end]
    } else {
        value
    };
    let plain = !cut.is_empty()
        && cut.len() == value.len()
        && cut
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b':' | b'@' | b'+'));
    if plain {
        line.push_str(cut);
        return;
    }
    line.push('"');
    for c in cut.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", c as u32);
            }
            c => line.push(c),
        }
    }
    if cut.len() < value.len() {
        let _ = write!(line, "...(len={})", value.len());
    }
    line.push('"');
}

/// Forwards every record to the `tracing` crate (cargo feature `tracing`), as an event with
/// target `vouch_mcp` at the matching level, so an embedder's subscriber receives the server's
/// lines. The default sink when the feature is on.
#[cfg(feature = "tracing")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

#[cfg(feature = "tracing")]
impl LogSink for TracingSink {
    fn write(&self, record: LogRecord) {
        let m = record.message.as_str();
        match record.level {
            Level::Error => {
                tracing::event!(target: "vouch_mcp", tracing::Level::ERROR, message = m)
            }
            Level::Warn => tracing::event!(target: "vouch_mcp", tracing::Level::WARN, message = m),
            Level::Info => tracing::event!(target: "vouch_mcp", tracing::Level::INFO, message = m),
            Level::Debug => {
                tracing::event!(target: "vouch_mcp", tracing::Level::DEBUG, message = m)
            }
            Level::Off => {}
        }
    }
}

/// The default sink: a bounded queue and a writer thread with a buffered stderr.
#[derive(Debug)]
pub struct StderrSink {
    queue: SyncSender<LogRecord>,
    dropped: Arc<AtomicU64>,
    /// Lines queued so far.
    queued: AtomicU64,
    /// Lines the writer has written out, and its signal to a waiting [`LogSink::flush`].
    written: Arc<(Mutex<u64>, Condvar)>,
}

/// How long [`LogSink::flush`] waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

impl StderrSink {
    /// Starts the writer thread.
    pub fn start() -> Self {
        let (queue, rx) = mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let written = Arc::new((Mutex::new(0), Condvar::new()));
        let progress = written.clone();
        // If the thread cannot start, lines are dropped and counted; the server still serves.
        let _ = std::thread::Builder::new()
            .name("vouch-mcp-log".into())
            .spawn(move || drain(rx, &counter, &progress));
        Self {
            queue,
            dropped,
            queued: AtomicU64::new(0),
            written,
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl LogSink for StderrSink {
    fn write(&self, record: LogRecord) {
        match self.queue.try_send(record) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self) {
        let target = self.queued.load(Ordering::Relaxed);
        let (count, signal) = &*self.written;
        let Ok(written) = count.lock() else { return };
        let _ = signal.wait_timeout_while(written, FLUSH_WAIT, |w| *w < target);
    }
}

/// The writer polls rather than sleeps on the queue: a blocked receiver would make every request
/// that logs wake it through a futex, a syscall and a context switch per line. Polling lets
/// lines pile up between rounds and costs a sender one atomic operation. The pause grows while
/// the queue stays empty (an idle server wakes a few times a second) and shrinks when it fills.
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(200);

fn drain(rx: Receiver<LogRecord>, dropped: &AtomicU64, progress: &(Mutex<u64>, Condvar)) {
    // Not `stderr.lock()` held for good: other writers (the binary's `eprintln!` of a
    // configuration error) would block forever. The buffer takes the lock once per round.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let mut reported = 0u64;
    let mut line = String::with_capacity(256);
    let mut pause = POLL_MIN;
    loop {
        let mut wrote = 0u64;
        loop {
            match rx.try_recv() {
                Ok(record) => {
                    line.clear();
                    format_line(&mut line, &record);
                    let _ = out.write_all(line.as_bytes());
                    wrote += 1;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        report_dropped(&mut out, dropped, &mut reported, &mut line);
        let _ = out.flush();
        if wrote > 0 {
            if let Ok(mut n) = progress.0.lock() {
                *n += wrote;
            }
            progress.1.notify_all();
        }
        pause = if wrote > 0 {
            POLL_MIN
        } else {
            (pause * 2).min(POLL_MAX)
        };
        std::thread::sleep(pause);
    }
}

fn report_dropped(
    out: &mut impl std::io::Write,
    dropped: &AtomicU64,
    reported: &mut u64,
    line: &mut String,
) {
    let total = dropped.load(Ordering::Relaxed);
    if total > *reported {
        line.clear();
        let mut message = Line::new("log lines dropped (the log could not keep up)");
        message
            .number("count", total - *reported)
            .number("total", total);
        let message = if message.json {
            message.buf.push('}');
            message.buf
        } else {
            message.buf
        };
        format_line(
            line,
            &LogRecord {
                level: Level::Warn,
                time: SystemTime::now(),
                message,
            },
        );
        let _ = out.write_all(line.as_bytes());
        *reported = total;
    }
}

/// `ts=... level=... message\n`, or with a JSON message `{"ts":...,"level":...,<members>}\n`.
pub(crate) fn format_line(out: &mut String, record: &LogRecord) {
    if let Some(members) = record
        .message
        .strip_prefix('{')
        .and_then(|m| m.strip_suffix('}'))
    {
        out.push_str("{\"ts\":\"");
        write_timestamp(out, record.time);
        out.push_str("\",\"level\":\"");
        out.push_str(record.level.as_str());
        out.push('"');
        if !members.is_empty() {
            out.push(',');
            out.push_str(members);
        }
        out.push_str("}\n");
        return;
    }
    out.push_str("ts=");
    write_timestamp(out, record.time);
    out.push_str(" level=");
    out.push_str(record.level.as_str());
    out.push(' ');
    out.push_str(&record.message);
    out.push('\n');
}

/// RFC 3339 UTC with milliseconds, without a date crate.
#[cfg(test)]
fn timestamp(t: SystemTime) -> String {
    let mut s = String::with_capacity(24);
    write_timestamp(&mut s, t);
    s
}

/// Appends `t` as RFC 3339 UTC with milliseconds.
pub(crate) fn write_timestamp(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    // Digits written into fixed places, one copy into `out` (every line has a timestamp).
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, n) in [
        (0, 4, y.clamp(0, 9999) as u64),
        (5, 2, u64::from(m)),
        (8, 2, u64::from(day)),
        (11, 2, rem / 3600),
        (14, 2, rem % 3600 / 60),
        (17, 2, rem % 60),
        (20, 3, u64::from(d.subsec_millis())),
    ] {
        let mut n = n;
        for place in text[at..at + width].iter_mut().rev() {
            *place = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    out.push_str(std::str::from_utf8(&text).unwrap_or("0000-00-00T00:00:00.000Z"));
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_timestamp() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_689_208_123);
        assert_eq!(timestamp(t), "2026-11-26T10:33:28.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_millis(951_868_799_009);
        assert_eq!(timestamp(leap), "2000-02-29T23:59:59.009Z");
    }

    #[test]
    fn display_fields_are_the_values_text_cut_at_64_bytes() {
        let mut line = Line {
            buf: String::new(),
            json: false,
        };
        let addr: std::net::IpAddr = "2001:db8::17".parse().unwrap();
        line.display("client", addr).display("long", "é".repeat(40));
        // 32 two-byte characters fit in 64 bytes; the rest is dropped whole.
        assert_eq!(
            line.buf,
            format!(" client=2001:db8::17 long=\"{}\"", "é".repeat(32))
        );
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.255",
            "255.255.255.255",
            "1.22.100.9",
            "::1",
            "2001:db8::17",
        ] {
            let mut line = Line {
                buf: String::new(),
                json: false,
            };
            line.ip("client", ip.parse().unwrap());
            assert_eq!(line.buf, format!(" client={ip}"));
        }
    }

    #[test]
    fn quotes_values_that_could_forge_lines() {
        let mut line = String::new();
        field(&mut line, "sub", "a\nlevel=error");
        assert_eq!(line, r#" sub="a\u{a}level=error""#);
        let mut line = String::new();
        field(&mut line, "path", "/mcp");
        assert_eq!(line, " path=/mcp");
    }

    #[test]
    fn json_lines_are_one_object_with_escaped_values() {
        let mut line = Line {
            buf: String::from("{\"msg\":\"request\""),
            json: true,
        };
        line.field("sub", "a\"b\\c\nd\u{1}").number("status", 200);
        line.buf.push('}');
        let mut out = String::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_689_208_123);
        format_line(
            &mut out,
            &LogRecord {
                level: Level::Info,
                time: t,
                message: line.buf,
            },
        );
        assert_eq!(
            out,
            "{\"ts\":\"2026-11-26T10:33:28.123Z\",\"level\":\"info\",\"msg\":\"request\",\"sub\":\"a\\\"b\\\\c\\nd\\u0001\",\"status\":200}\n"
        );
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(v["sub"], "a\"b\\c\nd\u{1}");
    }

    #[test]
    fn long_values_are_cut_with_their_length_noted() {
        let mut line = String::new();
        field(&mut line, "path", &"/a".repeat(30_000));
        assert!(line.len() < MAX_VALUE_BYTES + 40, "{}", line.len());
        assert!(line.ends_with("...(len=60000)\""), "{line}");
        let mut line = String::new();
        field(&mut line, "v", &"é".repeat(200));
        assert!(line.contains("...(len=400)"));
    }
}
