#!/usr/bin/env bash
# Operations checks against the real binary: metrics parsed by Prometheus's own Python text
# parser after a known load, JSON log lines, the audit file and its SIGHUP reopen, X-Request-Id
# and X-Forwarded-For, and no token in any log.
#
#   bash tests/ops/run.sh
#
# Installs prometheus-client (pinned in requirements.txt) into tests/ops/.venv (git-ignored).
# Builds target/release/vouch-mcp when it is missing or older than the sources
# (VOUCH_MCP_BIN=path uses that binary instead). Writes this run's files to .interop/ops/.
# Prints PASS/FAIL per check and exits non-zero if any failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK="$ROOT/.interop/ops"
rm -rf "$WORK"
mkdir -p "$WORK"

venv="$HERE/.venv"
want=$(sha256sum "$HERE/requirements.txt" | cut -c1-16)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing prometheus-client into tests/ops/.venv ..."
  rm -rf "$venv"
  { python3 -m venv "$venv" && "$venv/bin/pip" install --disable-pip-version-check -q -r "$HERE/requirements.txt"; } \
    >"$WORK/pip-install.log" 2>&1 || { tail -20 "$WORK/pip-install.log"; echo "FAIL [setup] pip install"; exit 1; }
  echo "$want" >"$venv/.stamp"
fi

if [ -n "${VOUCH_MCP_BIN:-}" ]; then
  BIN=$(readlink -f "$VOUCH_MCP_BIN")
else
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/vouch-mcp"
  if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "building the release binary ..."
    (cd "$ROOT" && cargo build --release --features redis --bin vouch-mcp) >"$WORK/cargo-build.log" 2>&1 \
      || { tail -30 "$WORK/cargo-build.log"; echo "FAIL [setup] cargo build"; exit 1; }
  fi
fi
exec "$venv/bin/python" "$HERE/check.py" "$BIN" "$WORK"
