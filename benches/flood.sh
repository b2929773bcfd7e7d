#!/usr/bin/env bash
# A legitimate client with a cached token, alone and then during a bad-signature flood at c=64,
# against a "before" and an "after" binary in one run. Two floods: one forged token replayed (the
# right kid, one signature bit flipped) and distinct forged tokens (a random signature character
# changed in every request). The legitimate client is wrk -t1 -c$LEGIT_CONNECTIONS; the flood is
# wrk -t1 -c64 at the same time. Reports the legitimate client's requests/s and its share of
# its solo throughput.
#
#   BEFORE=/path/to/old/vouch-mcp bash benches/flood.sh
#
# AFTER defaults to this tree's release build; DURATION=10s, LEGIT_CONNECTIONS=8; AFTER_ENV adds
# settings to the after binary (e.g. AFTER_ENV=VOUCH_SIGNATURE_FAILURE_DELAY_MS=0). Wrap it in
# `flock /work/.bench.lock` on a shared machine. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
FLOOD_DURATION=$(( ${DURATION%s} + 2 ))s
LEGIT_CONNECTIONS=${LEGIT_CONNECTIONS:-8}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-64}
AFTER=${AFTER:-target/release/vouch-mcp}
BEFORE=${BEFORE:?set BEFORE to the binary to compare with}
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
python3 -c 'import cryptography' 2>/dev/null || pip install -q cryptography

OUT=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$OUT"' EXIT
source benches/auth_load.sh

start_issuer "$OUT"
python3 benches/mint_tokens.py "$OUT" "$ISSUER" "$AUDIENCE" 1
cp "$OUT/jwks.json" "$OUT/www/issuer/oauth/jwks"
GOOD=$(head -1 "$OUT/tokens.txt")
FORGED=$(head -1 "$OUT/forged.txt")

legit() { # PORT LABEL
  TOKENS="$OUT/tokens.txt" BODY="$BODY" wrk -t1 -c"$LEGIT_CONNECTIONS" -d"$DURATION" \
    -s benches/token_pool.lua "http://127.0.0.1:$1/mcp" >"$OUT/$2.legit"
  wrk_rps "$OUT/$2.legit"
}
flood() { # PORT DISTINCT LABEL (runs 2 s longer than the legitimate client, which starts 1 s in)
  FORGED="$OUT/forged.txt" DISTINCT=$2 BODY="$BODY" wrk -t1 -c"$FLOOD_CONNECTIONS" -d"$FLOOD_DURATION" \
    -s benches/flood.lua "http://127.0.0.1:$1/mcp" >"$OUT/$3.flood"
}

printf '%-8s %-34s %12s %12s %8s\n' binary case legit_rps flood_rps share
for name in before after; do
  bin=$BEFORE
  extra=()
  if [ "$name" = after ]; then
    bin=$AFTER
    read -r -a extra <<<"${AFTER_ENV:-}"
  fi
  start_server "$name" "$bin" "${extra[@]}"
  port_var="PORT_$name"
  port=${!port_var}
  wait_ready "$port" "$GOOD"
  [ "$(whoami "$port" "$FORGED")" = 401 ] || { echo "the forged token is not refused" >&2; exit 1; }
  solo=$(legit "$port" "$name-solo")
  printf '%-8s %-34s %12s %12s %8s\n' "$name" "legitimate client alone" "$solo" - 100%
  for distinct in 0 1; do
    label="flood, one forged token replayed"
    [ "$distinct" = 1 ] && label="flood, distinct forged tokens"
    flood "$port" "$distinct" "$name-$distinct" &
    FLOOD_PID=$!
    sleep 1
    under=$(legit "$port" "$name-$distinct")
    wait "$FLOOD_PID"
    share=$(python3 -c "print(f'{100*$under/$solo:.0f}%')")
    printf '%-8s %-34s %12s %12s %8s\n' "$name" "$label" "$under" "$(wrk_rps "$OUT/$name-$distinct.flood")" "$share"
  done
  pid_var="PID_$name"
  kill "${!pid_var}"
done
