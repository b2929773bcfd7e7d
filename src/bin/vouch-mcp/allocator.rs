//! Restarts the process once with glibc's malloc told to give freed memory back, unless the operator set `GLIBC_TUNABLES`.
//!
//! glibc's default allocator keeps the pages of large freed buffers: after 30 concurrent 4 MiB
//! requests, RSS stayed 50-58 MiB above idle for good (`bash benches/hardening.sh`).
//! `malloc_trim` would need FFI, and the crate forbids unsafe code; glibc reads its tunables
//! only at process start, so the binary re-executes itself with
//! `glibc.malloc.trim_threshold=131072`. Setting it also pins the mmap threshold at its
//! 128 KiB default (no dynamic growth), so large request buffers are mapped and unmapped
//! rather than kept in the heap, and a heap top above 128 KiB is returned. With it, RSS came
//! back to within 2 MiB of idle after that load; the price is an mmap and munmap per
//! buffer above 128 KiB, which the request path only makes for large bodies.
//!
//! Any `GLIBC_TUNABLES` already present (even empty) is left alone and nothing is re-executed:
//! `GLIBC_TUNABLES= vouch-mcp` runs with glibc's defaults. Other platforms and libcs are
//! untouched. The PID stays the same (exec replaces the image).

/// The tunables the binary runs with when none are given.
///
/// `tcache_count=32` (glibc's default is 7) lets each thread keep up to 32 freed chunks of each
/// small size for reuse: a request allocates and frees more than 7 chunks of some sizes, and
/// each one past the 7th went through the arena's bins. It cut the request path's
/// instructions by 4% (callgrind, whoami at 2026-07-28), for at most about 1 MiB of small
/// chunks kept per thread.
pub(crate) const TUNABLES: &str = "glibc.malloc.trim_threshold=131072:glibc.malloc.tcache_count=32";

/// Re-executes this binary with [`TUNABLES`] when `GLIBC_TUNABLES` is unset; returns only
/// when it did not (already set, not glibc, or the exec failed, which leaves the defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn reexec_with_tunables() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    // The running image itself, whatever PATH or a symlink said.
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", TUNABLES)
        .exec();
    // Only reached when exec failed: serve with glibc's defaults rather than not at all.
    eprintln!("vouch-mcp: could not re-execute with GLIBC_TUNABLES={TUNABLES} ({err}); continuing with glibc's defaults");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn reexec_with_tunables() {}
