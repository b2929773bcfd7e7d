#!/usr/bin/env bash
# Issue 10's benchmark: whoami tools/call in an initialize-era session and at 2026-07-28, c=64,
# against one in-memory replica (direct) and against three replicas sharing Redis behind nginx
# round-robin, in one run. Prints req/s, p50, p99, errors, the replicas' CPU (cores used, from
# /proc), req/s per replica core used, and Redis operations per request (INFO commandstats deltas).
#
#   flock /work/.bench.lock bash benches/cluster.sh     # DURATION=10s CONNECTIONS=64 THREADS=2 SESSIONS=64
#
# The session-era load spreads over SESSIONS sessions of one principal (each request takes the
# next session id), so the cluster's per-replica session cache is exercised as it would be.
# Needs wrk, redis-server, nginx (installed from Debian when missing). Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-64}

for t in wrk redis-server nginx; do
  command -v "$t" >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk redis-server nginx-light; } >/dev/null
done
cargo build --release --features redis --quiet --bin vouch-mcp --example conformance

OUT=$(mktemp -d)
HARNESS_PID=
stop_harness() {
  if [ -n "$HARNESS_PID" ]; then
    kill "$HARNESS_PID" 2>/dev/null || true
    wait "$HARNESS_PID" 2>/dev/null || true
    HARNESS_PID=
  fi
}
trap 'stop_harness; rm -rf "$OUT"' EXIT

start() { # start NAME ARGS...: a cluster described in $OUT/NAME.json
  local name=$1; shift
  python3 tests/cluster/harness.py serve "$OUT/$name.json" "$@" >"$OUT/$name.harness.log" 2>&1 &
  HARNESS_PID=$!
  for _ in $(seq 1 300); do [ -f "$OUT/$name.json" ] && return 0; sleep 0.1; done
  echo "bench: the $name cluster did not start" >&2; cat "$OUT/$name.harness.log" >&2; exit 1
}
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."): v=v[int(k)] if k.isdigit() else v[k]
print(v)' "$1" "$2"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
redis_calls() { # total calls in INFO commandstats
  [ -z "$1" ] && { echo 0; return; }
  redis-cli -p "$1" INFO commandstats | tr -d '\r' | sed -n 's/.*calls=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}'
}

META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
MODERN_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},'"$META"'}}'
LEGACY_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
TICK=$(getconf CLK_TCK)
TSV=$OUT/results.tsv
: >"$TSV"

run() { # run LABEL CLUSTER-JSON ERA URL
  local label=$1 desc=$2 era=$3 url=$4 token pids redis sids=""
  token=$(field "$desc" token)
  pids=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(v) for k,v in d["pids"].items() if k.startswith("replica")))' "$desc")
  redis=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["redis_port"] or "")' "$desc")
  if [ "$era" = legacy ]; then
    for _ in $(seq 1 "$SESSIONS"); do
      sid=$(curl -s -D - -o /dev/null "$url" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' |
        tr -d '\r' | awk 'tolower($1)=="mcp-session-id:" {print $2}')
      [ -n "$sid" ] || { echo "bench: initialize failed at $url" >&2; exit 1; }
      sids="$sids\"$sid\","
    done
  fi
  cat >"$OUT/load.lua" <<LUA
local sessions = {${sids%,}}
local n = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
request = function()
  if #sessions > 0 then
    n = n + 1
    wrk.headers["Mcp-Session-Id"] = sessions[(n % #sessions) + 1]
    wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
    return wrk.format(nil, nil, nil, '$LEGACY_BODY')
  end
  wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = "whoami"
  return wrk.format(nil, nil, nil, '$MODERN_BODY')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT\t%d\t%d\t%d\t%d\t%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
LUA
  # A short warm-up (JWKS fetched, connections open), not measured.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$OUT/load.lua" "$url" >/dev/null
  local before=0 after=0 p r0 r1
  for p in $pids; do before=$((before + $(cpu_ticks "$p"))); done
  r0=$(redis_calls "$redis")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$OUT/load.lua" "$url" >"$OUT/wrk.out"
  r1=$(redis_calls "$redis")
  for p in $pids; do after=$((after + $(cpu_ticks "$p"))); done
  read -r _ reqs dur_us p50 p99 errs < <(grep '^RESULT' "$OUT/wrk.out")
  # Redis counts its own INFO call; one per sample, taken out.
  awk -v l="$label" -v e="$era" -v n="$reqs" -v d="$dur_us" -v p50="$p50" -v p99="$p99" -v err="$errs" \
      -v cpu=$((after - before)) -v tick="$TICK" -v rops=$((r1 - r0 - 1)) 'BEGIN {
    rps = n / (d / 1e6); cores = (cpu / tick) / (d / 1e6);
    printf "%s\t%s\t%.0f\t%d\t%d\t%d\t%.2f\t%.0f\t%.3f\n", l, e, rps, p50, p99, err, cores, rps / cores, (l == "memory") ? 0 : rops / n
  }' >>"$TSV"
  tail -1 "$TSV" | awk -F'\t' '{printf "  %-8s %-7s %8s req/s  p50 %6s us  p99 %6s us  errors %s  replica cores %s  req/s per core %s  redis ops/req %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}' >&2
}

echo "bench: one in-memory replica (direct)" >&2
start memory --kind binary --memory --replicas 1
MEM=$OUT/memory.json
MEM_URL="http://127.0.0.1:$(field "$MEM" ports.0)/mcp"
run memory "$MEM" legacy "$MEM_URL"
run memory "$MEM" modern "$MEM_URL"
stop_harness

echo "bench: three replicas on Redis behind nginx" >&2
start cluster --kind binary --replicas 3
CL=$OUT/cluster.json
CL_URL="http://127.0.0.1:$(field "$CL" nginx_port)/mcp"
run cluster "$CL" legacy "$CL_URL"
run cluster "$CL" modern "$CL_URL"
stop_harness

echo
echo "| setup | era | req/s | p50 (us) | p99 (us) | errors | replica cores used | req/s per replica core | Redis ops/request |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", ($1 == "memory" ? "1 replica, in memory" : "3 replicas + Redis + nginx"), ($2 == "legacy" ? "session (2025-11-25)" : "2026-07-28"), $3, $4, $5, $6, $7, $8, $9}' "$TSV"
awk -F'\t' '$1 == "memory" {m[$2] = $8} $1 == "cluster" {c[$2] = $8} END {
  for (e in m) printf "ratio %s: cluster req/s per replica core / in-memory = %.2f%s\n", e, c[e] / m[e], (e == "legacy" ? " (target >= 0.6)" : "")
}' "$TSV"
