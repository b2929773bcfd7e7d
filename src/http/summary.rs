//! Summarises repeated request rejections in the log: the first of a kind in each second is written, the rest are counted and reported in one line.
//!
//! A flood of bad requests (no token, a bad signature, a 60 KB path) would otherwise write one
//! line per request and make the log the bottleneck, or fill the disk. Two bounds apply:
//! rejections alike (same status, method, path prefix, JSON-RPC method and detail) write one
//! line per second per kind, and rejection lines of all kinds together are capped per second.
//! What was held back is reported by [`Rejections::flush`], which the server calls every second.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Kinds tracked at once; a kind that hashes to a busy slot takes it over.
const SLOTS: usize = 64;
/// Rejection lines written per second, all kinds together.
pub(crate) const LINES_PER_SEC: u64 = 20;
/// Bytes of the path and detail that tell kinds apart.
const KEY_PREFIX: usize = 64;

/// What makes two rejections alike.
pub(crate) struct Kind<'a> {
    pub(crate) status: u16,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) rpc: Option<&'a str>,
    pub(crate) detail: Option<&'a str>,
}

impl Kind<'_> {
    fn hash(&self) -> u64 {
        fn prefix(s: &str) -> &[u8] {
            &s.as_bytes()[..s.len().min(KEY_PREFIX)]
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.status.hash(&mut h);
        self.method.hash(&mut h);
        prefix(self.path).hash(&mut h);
        self.rpc.hash(&mut h);
        self.detail.map(prefix).hash(&mut h);
        h.finish()
    }

    /// A short description for the summary line (client-controlled parts cut short).
    fn describe(&self) -> String {
        let mut s = String::with_capacity(96);
        crate::log::field(&mut s, "status", &self.status.to_string());
        crate::log::field(&mut s, "method", self.method);
        crate::log::field(&mut s, "path", cut(self.path));
        if let Some(rpc) = self.rpc {
            crate::log::field(&mut s, "rpc", rpc);
        }
        if let Some(d) = self.detail {
            crate::log::field(&mut s, "detail", cut(d));
        }
        s
    }
}

fn cut(s: &str) -> &str {
    let mut end = s.len().min(KEY_PREFIX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Default)]
struct Slot {
    kind: u64,
    second: u64,
    held: u64,
    description: String,
}

/// The rejection log's memory: a fixed table of kinds, and the per-second line budget.
pub(crate) struct Rejections {
    slots: Box<[Mutex<Slot>]>,
    /// The second the budget counts, and the lines written in it.
    budget_second: AtomicU64,
    budget_used: AtomicU64,
    /// Lines held back by the budget since the last flush.
    over_budget: AtomicU64,
}

impl std::fmt::Debug for Rejections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rejections").finish_non_exhaustive()
    }
}

impl Default for Rejections {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Mutex::default()).collect(),
            budget_second: AtomicU64::new(0),
            budget_used: AtomicU64::new(0),
            over_budget: AtomicU64::new(0),
        }
    }
}

/// What the caller does with a rejection's line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it.
    Write,
    /// Counted; write nothing.
    Held,
}

impl Rejections {
    /// Decides whether the line for a rejection of `kind` at unix second `second` is written.
    /// `summary` receives a line about the kind it displaces, when that kind had lines held.
    pub(crate) fn admit(
        &self,
        kind: &Kind<'_>,
        second: u64,
        summary: &mut impl FnMut(String),
    ) -> Verdict {
        let hash = kind.hash();
        let slot = &self.slots[(hash % SLOTS as u64) as usize];
        {
            let Ok(mut s) = slot.lock() else {
                return Verdict::Write;
            };
            if s.kind == hash && s.second == second && !s.description.is_empty() {
                s.held += 1;
                return Verdict::Held;
            }
            if s.held > 0 {
                summary(held_line(s.held, &s.description));
            }
            *s = Slot {
                kind: hash,
                second,
                held: 0,
                description: kind.describe(),
            };
        }
        if self.within_budget(second) {
            Verdict::Write
        } else {
            self.over_budget.fetch_add(1, Ordering::Relaxed);
            Verdict::Held
        }
    }

    fn within_budget(&self, second: u64) -> bool {
        if self.budget_second.swap(second, Ordering::Relaxed) != second {
            self.budget_used.store(0, Ordering::Relaxed);
        }
        self.budget_used.fetch_add(1, Ordering::Relaxed) < LINES_PER_SEC
    }

    /// Reports every kind whose lines were held in seconds before `second`, and the lines the
    /// budget held back.
    pub(crate) fn flush(&self, second: u64, summary: &mut impl FnMut(String)) {
        for slot in &*self.slots {
            let Ok(mut s) = slot.lock() else { continue };
            if s.held > 0 && s.second < second {
                summary(held_line(s.held, &s.description));
                s.held = 0;
            }
        }
        let over = self.over_budget.swap(0, Ordering::Relaxed);
        if over > 0 {
            summary(format!(
                "request rejections not logged: count={over} (more than {LINES_PER_SEC} rejection lines a second)"
            ));
        }
    }
}

fn held_line(count: u64, description: &str) -> String {
    format!("request rejections repeated: count={count} within 1 s;{description}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(path: &str) -> Kind<'_> {
        Kind {
            status: 401,
            method: "POST",
            path,
            rpc: None,
            detail: Some("no token"),
        }
    }

    #[test]
    fn repeats_within_a_second_are_held_and_summarised_once() {
        let r = Rejections::default();
        let mut lines = Vec::new();
        let mut sink = |l: String| lines.push(l);
        assert_eq!(r.admit(&kind("/mcp"), 10, &mut sink), Verdict::Write);
        for _ in 0..999 {
            assert_eq!(r.admit(&kind("/mcp"), 10, &mut sink), Verdict::Held);
        }
        r.flush(11, &mut sink);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("count=999"), "{}", lines[0]);
        assert!(lines[0].contains("status=\"401\"") || lines[0].contains("status=401"));
        // The next second writes the first line again.
        let mut sink = |_l: String| {};
        assert_eq!(r.admit(&kind("/mcp"), 11, &mut sink), Verdict::Write);
    }

    #[test]
    fn long_paths_alike_in_their_prefix_are_one_kind_and_cut_in_the_summary() {
        let r = Rejections::default();
        let long_a = format!("/{}a", "x".repeat(60_000));
        let long_b = format!("/{}b", "x".repeat(60_000));
        let mut lines = Vec::new();
        let mut sink = |l: String| lines.push(l);
        assert_eq!(r.admit(&kind(&long_a), 5, &mut sink), Verdict::Write);
        assert_eq!(r.admit(&kind(&long_b), 5, &mut sink), Verdict::Held);
        r.flush(6, &mut sink);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].len() < 400, "{}", lines[0].len());
    }

    #[test]
    fn distinct_kinds_share_a_per_second_budget() {
        let r = Rejections::default();
        let paths: Vec<String> = (0..1000).map(|i| format!("/p{i}")).collect();
        let mut noop = |_l: String| {};
        let written = paths
            .iter()
            .filter(|p| r.admit(&kind(p), 7, &mut noop) == Verdict::Write)
            .count() as u64;
        assert_eq!(written, LINES_PER_SEC);
        let mut lines = Vec::new();
        r.flush(8, &mut |l| lines.push(l));
        assert!(
            lines.iter().any(|l| l.contains("not logged: count=")),
            "{lines:?}"
        );
    }
}
