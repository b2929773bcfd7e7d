#!/usr/bin/env bash
# Measures what the README and closing notes quote: stripped release binary size, runtime
# dependency count, idle RSS, and whoami throughput on loopback (wrk, 64 connections, 10 s).
#
#   bash benches/bench.sh            # DURATION=10s CONNECTIONS=64 THREADS=2 by default
#
# The ceiling-relative request-path benchmark of issue 8 is benches/request_path.sh.
#
# Installs wrk from Debian's packages when it is missing. Runs the release binary in --dev mode
# on a free loopback port and stops it at the end. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}

if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
cargo build --release --quiet
BIN=target/release/vouch-mcp

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
OUT=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
PORT=$PORT VOUCH_MCP_LOG=warn "$BIN" --dev >"$OUT/stdout" 2>"$OUT/stderr" &
PID=$!

# Mint through the dev issuer's endpoint rather than reading the banner, whose layout may change.
TOKEN=""
for _ in $(seq 1 100); do
  TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/dev/token" \
    -d '{"sub":"dev-user","email":"dev@example.com","hardware_verified":true,"ttl_secs":3600}' |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' || true)
  [ -n "$TOKEN" ] && break
  sleep 0.1
done
META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},'"$META"'}}'
call() {
  curl -s "http://127.0.0.1:$PORT/mcp" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: whoami' -d "$BODY"
}
for _ in $(seq 1 100); do
  call | grep -q '"isError":false' && break
  sleep 0.1
done
call | grep -q '"isError":false' || { echo "bench: server never answered whoami" >&2; exit 1; }

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
IDLE_RSS=$(rss_kib)

cat >"$OUT/whoami.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "whoami"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (whoami, 2026-07-28; the same token each time, so verification is a cache hit after the first)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$OUT/whoami.lua" "http://127.0.0.1:$PORT/mcp"
LOADED_RSS=$(rss_kib)

echo "== sizes"
echo "binary (stripped release): $(stat -c %s "$BIN") bytes"
echo "runtime dependencies: $(cargo tree -e normal --prefix none | sort -u | wc -l) (cargo tree -e normal --prefix none | sort -u | wc -l)"
echo "idle RSS: ${IDLE_RSS} KiB"
echo "RSS after the load: ${LOADED_RSS} KiB"
