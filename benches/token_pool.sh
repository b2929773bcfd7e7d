#!/usr/bin/env bash
# Throughput when every request carries a token the server may not have seen recently: a pool of
# 20,000 distinct valid ES256 tokens cycled by wrk (tools/call whoami, 2026-07-28, -c64), against
# a "before" and an "after" binary in one run, each on its own port against the same loopback
# issuer.
#
#   BEFORE=/path/to/old/vouch-mcp bash benches/token_pool.sh
#
# AFTER defaults to this tree's release build; DURATION=20s, CONNECTIONS=64, THREADS=2, TOKENS=20000.
# Wrap it in `flock /work/.bench.lock` on a shared machine. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
POOL=${POOL:-20000}
AFTER=${AFTER:-target/release/vouch-mcp}
BEFORE=${BEFORE:?set BEFORE to the binary to compare with}
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
python3 -c 'import cryptography' 2>/dev/null || pip install -q cryptography

OUT=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$OUT"' EXIT
source benches/auth_load.sh

start_issuer "$OUT"
python3 benches/mint_tokens.py "$OUT" "$ISSUER" "$AUDIENCE" "$POOL"
cp "$OUT/jwks.json" "$OUT/www/issuer/oauth/jwks"
FIRST=$(head -1 "$OUT/tokens.txt")

for name in before after; do
  bin=$BEFORE
  [ "$name" = after ] && bin=$AFTER
  start_server "$name" "$bin"
  port_var="PORT_$name"
  wait_ready "${!port_var}" "$FIRST"
  echo "== $name ($bin): $POOL distinct tokens, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  TOKENS="$OUT/tokens.txt" BODY="$BODY" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s benches/token_pool.lua "http://127.0.0.1:${!port_var}/mcp" | tee "$OUT/$name.wrk"
  pid_var="PID_$name"
  echo "RSS after the load: $(awk '/VmRSS/ {print $2}' "/proc/${!pid_var}/status") KiB"
  kill "${!pid_var}"
done
echo "== summary: requests/s with $POOL distinct tokens"
echo "before: $(wrk_rps "$OUT/before.wrk")"
echo "after:  $(wrk_rps "$OUT/after.wrk")"
