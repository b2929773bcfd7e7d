//! Line-oriented logging to stderr with a process-wide level; no token ever reaches it.
//!
//! One line per event: `ts=... level=... msg`. Request lines are built by the HTTP shell as
//! `key=value` pairs with [`field`], which quotes values so a client cannot forge log lines.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing is logged.
    Off = 0,
    /// Failures needing an operator.
    Error = 1,
    /// Degraded operation (issuer down, skipped keys).
    Warn = 2,
    /// One line per request plus lifecycle events (the default).
    Info = 3,
    /// Verbose diagnostics.
    Debug = 4,
}

impl Level {
    /// Parses `off|error|warn|info|debug`.
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

    fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the process-wide level.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// True when a message at `level` would be written.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line at `level`.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut line = String::with_capacity(128);
    let _ = write!(
        line,
        "ts={} level={} ",
        timestamp(SystemTime::now()),
        level.name()
    );
    let _ = line.write_fmt(args);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs at error level.
pub fn error(args: fmt::Arguments<'_>) {
    write(Level::Error, args)
}
/// Logs at warn level.
pub fn warn(args: fmt::Arguments<'_>) {
    write(Level::Warn, args)
}
/// Logs at info level.
pub fn info(args: fmt::Arguments<'_>) {
    write(Level::Info, args)
}
/// Logs at debug level.
pub fn debug(args: fmt::Arguments<'_>) {
    write(Level::Debug, args)
}

/// Appends ` key=value`, quoting the value when it holds anything but plain token characters.
pub fn field(line: &mut String, key: &str, value: &str) {
    line.push(' ');
    line.push_str(key);
    line.push('=');
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@+".contains(&b));
    if plain {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars().take(256) {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// RFC 3339 UTC with milliseconds, without a date crate.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
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
    use std::time::Duration;

    #[test]
    fn formats_known_timestamp() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_689_208_123);
        assert_eq!(timestamp(t), "2026-11-26T10:33:28.123Z");
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
}
