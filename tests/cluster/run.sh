#!/usr/bin/env bash
# The replica suite of issue 10: one Redis, three replicas of the release binary and of
# examples/conformance (both built with --features redis), nginx round-robin in front, and
# through it the cross-replica checks, the fault tests, the official conformance suite and the
# interop runner. See tests/cluster/harness.py.
#
#   bash tests/cluster/run.sh
#
# Installs redis-server and nginx from Debian's packages when missing. Prints PASS/FAIL lines
# and `N passed, M failed`; exits non-zero if anything failed. Loopback only; every process it
# starts is stopped by its PID.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

if ! command -v redis-server >/dev/null || ! command -v nginx >/dev/null; then
  echo "cluster: installing redis-server and nginx from Debian" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server nginx-light; } >/dev/null 2>&1 ||
    { echo "FAIL [setup] cannot install redis-server and nginx"; echo "0 passed, 1 failed"; exit 1; }
fi

if [ -z "${CLUSTER_BIN:-}" ]; then
  echo "cluster: building the release binary and example with --features redis" >&2
  cargo build --release --features redis --bin vouch-mcp --example conformance >&2 ||
    { echo "FAIL [setup] cargo build --release --features redis"; echo "0 passed, 1 failed"; exit 1; }
fi

exec python3 tests/cluster/harness.py check
