#!/usr/bin/env bash
# JWKS recovery with real timings, "before" and "after" binaries side by side in one run:
#  1. the issuer comes up DOWN seconds (default 60) after the servers start: how long after it is
#     up until a client polling every 250 ms gets its first 200;
#  2. a key is published right after a failed unknown-kid fetch: how long until a token signed by
#     it is accepted.
#
#   BEFORE=/path/to/old/vouch-mcp bash benches/jwks_recovery.sh
#
# AFTER defaults to this tree's release build. Loopback only; bounded in time (about DOWN + 90 s).
set -euo pipefail
cd "$(dirname "$0")/.."
DOWN=${DOWN:-60}
AFTER=${AFTER:-target/release/vouch-mcp}
BEFORE=${BEFORE:?set BEFORE to the binary to compare with}
python3 -c 'import cryptography' 2>/dev/null || pip install -q cryptography

OUT=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$OUT"' EXIT
source benches/auth_load.sh

# The issuer's address is fixed now; nothing listens on it yet.
ISSUER_PORT=$(free_port)
ISSUER="http://127.0.0.1:$ISSUER_PORT/issuer"
mkdir -p "$OUT/a" "$OUT/b" "$OUT/www/issuer/oauth"
python3 benches/mint_tokens.py "$OUT/a" "$ISSUER" "$AUDIENCE" 1 key-a
python3 benches/mint_tokens.py "$OUT/b" "$ISSUER" "$AUDIENCE" 1 key-b
TOKEN_A=$(head -1 "$OUT/a/tokens.txt")
TOKEN_B=$(head -1 "$OUT/b/tokens.txt")
cp "$OUT/a/jwks.json" "$OUT/www/issuer/oauth/jwks"
issuer_up() {
  python3 -m http.server "$ISSUER_PORT" --bind 127.0.0.1 --directory "$OUT/www" >>"$OUT/issuer.log" 2>&1 &
  ISSUER_PID=$!
  PIDS+=($ISSUER_PID)
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$ISSUER_PORT/" && return 0; sleep 0.05; done
}

# until_200 PORT TOKEN LIMIT_SECS: polls every 250 ms; prints the seconds it took (or "never").
until_200() {
  local start now
  start=$(date +%s.%N)
  while :; do
    [ "$(whoami "$1" "$2")" = 200 ] && break
    now=$(date +%s.%N)
    if python3 -c "import sys; sys.exit(0 if $now - $start > $3 else 1)"; then echo never; return; fi
    sleep 0.25
  done
  now=$(date +%s.%N)
  python3 -c "print(f'{$now - $start:.2f}')"
}

start_server_any() { # like start_server, but does not wait for a JWKS (the issuer may be down)
  local name=$1 bin=$2 port
  port=$(free_port)
  env HOST=127.0.0.1 PORT="$port" VOUCH_ISSUER="$ISSUER" VOUCH_AUDIENCE="$AUDIENCE" \
    VOUCH_MCP_LOG=error "$bin" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  PIDS+=($!)
  eval "PORT_$name=$port"
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0; sleep 0.1; done
  echo "server $name did not start" >&2; exit 1
}

echo "== 1. issuer down for $DOWN s after the servers start"
start_server_any before "$BEFORE"
start_server_any after "$AFTER"
echo "before while down: HTTP $(whoami "$PORT_before" "$TOKEN_A"); after while down: HTTP $(whoami "$PORT_after" "$TOKEN_A")"
sleep "$DOWN"
issuer_up
until_200 "$PORT_before" "$TOKEN_A" 120 >"$OUT/1.before" &
W1=$!
until_200 "$PORT_after" "$TOKEN_A" 120 >"$OUT/1.after" &
W2=$!
wait "$W1" "$W2"
echo "first token accepted after the issuer came up: before $(cat "$OUT/1.before") s, after $(cat "$OUT/1.after") s"

echo "== 2. key B published right after a failed unknown-kid fetch"
sleep 2 # more than a second since the last fetch
kill "$ISSUER_PID"
sleep 0.2
echo "token B while the issuer is down: before HTTP $(whoami "$PORT_before" "$TOKEN_B"), after HTTP $(whoami "$PORT_after" "$TOKEN_B") (the unknown kid's fetch failed)"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
a = json.load(open(f"{out}/a/jwks.json"))["keys"]
b = json.load(open(f"{out}/b/jwks.json"))["keys"]
json.dump({"keys": a + b}, open(f"{out}/www/issuer/oauth/jwks", "w"))
PY
issuer_up
until_200 "$PORT_before" "$TOKEN_B" 60 >"$OUT/2.before" &
W1=$!
until_200 "$PORT_after" "$TOKEN_B" 60 >"$OUT/2.after" &
W2=$!
wait "$W1" "$W2"
echo "token B accepted after key B was published: before $(cat "$OUT/2.before") s, after $(cat "$OUT/2.after") s"
