#!/usr/bin/env bash
# The hardening suite: builds the release binary, then benches/hardening.py starts it
# (`--dev`, loopback, a fresh process per check, stopped by PID) and reproduces each attack:
# slow 1-byte-segment bodies, 30 concurrent 4 MiB requests and RSS after them, fairness between
# principals at every cap, 1,100 idle sockets at a 1024 descriptor limit, a client that never
# reads, stderr a pipe nobody reads, a 60 KB-path log flood, a bad-signature flood against a
# legitimate client, stream caps, and a soak of mixed requests with RSS sampled. It prints a table
# (attack, measured, target, pass) and exits 1 when a target is missed.
#
#   bash benches/hardening.sh            # full: about 7 minutes on 2 cores (3,000,000-request soak)
#   bash benches/hardening.sh --short    # CI: every check with smaller counts, about 2 minutes
#   HARDENING_SHORT=1 bash benches/hardening.sh
#   bash benches/hardening.sh --only soak,fairness      # some checks
#   bash benches/hardening.sh --before /path/to/old/vouch-mcp   # also "before" figures
#
# Needs python3 (standard library only), wrk (installed from Debian's packages when missing),
# prlimit (util-linux). Wrap it in `flock /work/.bench.lock` on a shared machine. Loopback only;
# every load is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
command -v prlimit >/dev/null || { echo "hardening: prlimit (util-linux) is needed" >&2; exit 2; }
# The same features as CI's release build, so CI builds (and links with LTO) only once.
cargo build --release --quiet --features redis --bin vouch-mcp
PY_PID=
trap '[ -n "$PY_PID" ] && kill "$PY_PID" 2>/dev/null; wait 2>/dev/null || true' EXIT
python3 benches/hardening.py "$@" &
PY_PID=$!
set +e
wait "$PY_PID"
rc=$?
PY_PID=
exit "$rc"
