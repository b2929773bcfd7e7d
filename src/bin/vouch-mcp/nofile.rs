//! Raises the open-file soft limit to the hard limit at startup, so the connection cap can be generous.
//!
//! `setrlimit` has no safe wrapper in std and the crate forbids unsafe code, so this asks
//! util-linux's `prlimit` to change this process's limit. Where `prlimit` is missing the
//! limit stays as it is, and the log says so.

use std::process::Command;

/// The soft and hard `Max open files` of this process (`None` for unlimited).
fn read() -> Option<(Option<u64>, Option<u64>)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.split_whitespace().skip(3);
    let num = |s: &str| s.parse::<u64>().ok();
    Some((num(fields.next()?), num(fields.next()?)))
}

/// What happened, for the startup log line.
pub(crate) enum Outcome {
    /// Already at the hard limit.
    Unchanged(u64),
    Raised {
        from: u64,
        to: u64,
    },
    /// The limit could not be raised; the reason says why.
    Kept {
        soft: u64,
        hard: u64,
        why: String,
    },
    /// The platform does not say (no `/proc`).
    Unknown,
}

/// Raises the soft limit to the hard limit (or to `fs.nr_open` when the hard limit is unlimited).
pub(crate) fn raise() -> Outcome {
    let Some((Some(soft), hard)) = read() else {
        return Outcome::Unknown;
    };
    let hard = match hard {
        Some(h) => h,
        None => std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20),
    };
    if soft >= hard {
        return Outcome::Unchanged(soft);
    }
    let ran = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .output();
    let why = match ran {
        Err(e) => format!("prlimit could not run: {e}"),
        Ok(out) if !out.status.success() => format!(
            "prlimit failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => match read() {
            Some((Some(now), _)) if now > soft => {
                return Outcome::Raised {
                    from: soft,
                    to: now,
                }
            }
            _ => "prlimit ran but the limit did not change".into(),
        },
    };
    Outcome::Kept { soft, hard, why }
}
