//! The audit log: one JSON line per auth decision and per tool call, written off the request path through a bounded queue, to stderr or a file reopened on request (log rotation).
//!
//! A line names who (iss, sub), from where (the client address), what (the tool) and how it
//! ended, never a token and never tool arguments unless the tool opted in. Writing never
//! blocks a request: when the queue is full the line is dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Where audit lines go. Implementations must not block for long: they are called on the
/// request path. Each line is one complete JSON object, without a newline.
pub trait AuditSink: Send + Sync + 'static {
    /// Takes one line.
    fn write(&self, line: String);

    /// Lines dropped so far (reported as a metric).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Lines the audit queue holds before it starts dropping.
const QUEUE_LINES: usize = 8192;
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(200);

/// The default audit sink: a bounded queue and a writer thread, to stderr or to a file.
///
/// ```no_run
/// use std::sync::Arc;
/// use vouch_mcp::audit::AuditLog;
///
/// let audit = AuditLog::file("/var/log/vouch-mcp/audit.jsonl").expect("the file opens");
/// // After `mv audit.jsonl audit.jsonl.1`, reopen so new lines go to a fresh file:
/// audit.reopen();
/// let sink: Arc<dyn vouch_mcp::audit::AuditSink> = Arc::new(audit);
/// # let _ = sink;
/// ```
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: SyncSender<String>,
    dropped: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
}

enum Target {
    Stderr,
    File(PathBuf, File),
}

impl AuditLog {
    /// Audit lines on stderr (interleaved with the log, each a JSON object).
    pub fn stderr() -> Self {
        Self::start(Target::Stderr)
    }

    /// Audit lines appended to `path` (created if missing). Fails now if the file cannot be
    /// opened, so a bad path stops startup instead of losing the trail.
    pub fn file(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = open(&path)?;
        Ok(Self::start(Target::File(path, file)))
    }

    fn start(target: Target) -> Self {
        let (queue, rx) = mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        let _ = std::thread::Builder::new()
            .name("vouch-mcp-audit".into())
            .spawn(move || drain(rx, target, &flag));
        Self {
            queue,
            dropped,
            reopen,
        }
    }

    /// Asks the writer to reopen the file at its path (after a rotation); the old file is kept
    /// if the new one cannot be opened, and that is logged. No effect for stderr.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditSink for AuditLog {
    fn write(&self, line: String) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(line)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn dropped(&self) -> u64 {
        AuditLog::dropped(self)
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn drain(rx: Receiver<String>, mut target: Target, reopen: &AtomicBool) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut pause = POLL_MIN;
    loop {
        let mut wrote = false;
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                    wrote = true;
                    if buf.len() >= 64 * 1024 {
                        flush(&mut target, &mut buf);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        flush(&mut target, &mut buf);
        if reopen.swap(false, Ordering::AcqRel) {
            if let Target::File(path, file) = &mut target {
                match open(path) {
                    Ok(f) => *file = f,
                    Err(e) => crate::log::error(format_args!(
                        "audit file {} cannot be reopened ({e}); still writing to the old one",
                        path.display()
                    )),
                }
            }
        }
        if closed {
            return;
        }
        pause = if wrote {
            POLL_MIN
        } else {
            (pause * 2).min(POLL_MAX)
        };
        std::thread::sleep(pause);
    }
}

fn flush(target: &mut Target, buf: &mut Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    let result = match target {
        Target::Stderr => {
            let mut e = io::stderr().lock();
            e.write_all(buf).and_then(|()| e.flush())
        }
        Target::File(_, f) => f.write_all(buf),
    };
    if let Err(e) = result {
        crate::log::error(format_args!("audit write failed: {e}"));
    }
    buf.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(path: &Path, lines: usize) -> String {
        for _ in 0..200 {
            let s = std::fs::read_to_string(path).unwrap_or_default();
            if s.lines().count() >= lines {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} never had {lines} lines", path.display());
    }

    #[test]
    fn file_lines_survive_a_rotation_and_reopen() {
        let dir = std::env::temp_dir().join(format!("vouch-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = AuditLog::file(&path).unwrap();
        log.write("{\"n\":1}".into());
        wait_for(&path, 1);
        let rotated = dir.join("audit.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.write("{\"n\":2}".into());
        assert_eq!(
            wait_for(&rotated, 2),
            "{\"n\":1}\n{\"n\":2}\n",
            "before reopen"
        );
        log.reopen();
        // The reopen happens on the writer's next round; lines after it land in the new file.
        std::thread::sleep(Duration::from_millis(450));
        log.write("{\"n\":3}".into());
        assert_eq!(wait_for(&path, 1), "{\"n\":3}\n");
        assert!(AuditLog::file(dir.join("no/such/dir/x")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
