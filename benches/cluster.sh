#!/usr/bin/env bash
# Issue 10's benchmark: whoami tools/call in an initialize-era session and at 2026-07-28, c=64,
# against one in-memory replica (direct) and against three replicas sharing Redis behind nginx
# round-robin, in one run. Prints req/s, p50, p99, errors, the replicas' CPU (cores used, from
# /proc), req/s per replica core used, and Redis operations per request (INFO commandstats deltas).
#
#   flock /work/.bench.lock bash benches/cluster.sh     # DURATION=10s CONNECTIONS=64 THREADS=2 SESSIONS=64 ROUNDS=3
#
# Each round measures the single replica, then the cluster; the table gives the medians.
#
# The session-era load spreads over SESSIONS sessions of one principal (each request takes the
# next session id), so the cluster's per-replica session cache is exercised as it would be.
# REPLICA_WORKERS=N (default 1) gives each of the three replicas N tokio workers
# (TOKIO_WORKER_THREADS): three replicas share this machine's cores, so one worker each is how
# they would be sized; REPLICA_WORKERS= (empty) keeps tokio's default (one per core) for each.
# The single replica always keeps the default. NGINX_WORKERS (default auto) sets nginx's.
# Needs wrk, redis-server, nginx (installed from Debian when missing). Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-64}
ROUNDS=${ROUNDS:-3}
REPLICA_WORKERS=${REPLICA_WORKERS-1}

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
redis_calls() { # redis_calls PORT [COMMAND]: calls in INFO commandstats (every command, those scripts run included)
  [ -z "$1" ] && { echo 0; return; }
  redis-cli -p "$1" INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_${2:-[^:]*}:calls=\([0-9]*\),.*/\1/p" | awk '{s += $1} END {print s + 0}'
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
  r0=$(redis_calls "$redis"); s0=$(redis_calls "$redis" evalsha)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$OUT/load.lua" "$url" >"$OUT/wrk.out"
  r1=$(redis_calls "$redis"); s1=$(redis_calls "$redis" evalsha)
  for p in $pids; do after=$((after + $(cpu_ticks "$p"))); done
  read -r _ reqs dur_us p50 p99 errs < <(grep '^RESULT' "$OUT/wrk.out")
  # Redis counts its own INFO calls (two per sample), taken out.
  awk -v l="$label" -v e="$era" -v n="$reqs" -v d="$dur_us" -v p50="$p50" -v p99="$p99" -v err="$errs" \
      -v cpu=$((after - before)) -v tick="$TICK" -v rops=$((r1 - r0 - 2)) -v sops=$((s1 - s0)) 'BEGIN {
    rps = n / (d / 1e6); cores = (cpu / tick) / (d / 1e6);
    printf "%s\t%s\t%.0f\t%d\t%d\t%d\t%.2f\t%.0f\t%.4f\t%.4f\n", l, e, rps, p50, p99, err, cores, rps / cores, (l == "cluster") ? rops / n : 0, (l == "cluster") ? sops / n : 0
  }' >>"$TSV"
  # The sessions go, so the next run's principal is not at its session cap.
  for sid in $(printf '%s' "$sids" | tr -d '"' | tr ',' ' '); do
    curl -s -o /dev/null -X DELETE "$url" -H "Authorization: Bearer $token" -H "Mcp-Session-Id: $sid" \
      -H 'MCP-Protocol-Version: 2025-11-25'
  done
  tail -1 "$TSV" | awk -F'\t' '{printf "  %-8s %-7s %8s req/s  p50 %6s us  p99 %6s us  errors %s  replica cores %s  req/s per core %s  redis ops/req %s (scripts %s)\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}' >&2
}

export NGINX_WORKERS=${NGINX_WORKERS:-auto}
for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round/$ROUNDS: one in-memory replica (direct, and behind the same nginx)" >&2
  unset TOKIO_WORKER_THREADS
  start memory --kind binary --memory --replicas 1
  MEM=$OUT/memory.json
  MEM_URL="http://127.0.0.1:$(field "$MEM" ports.0)/mcp"
  MEM_NGINX="http://127.0.0.1:$(field "$MEM" nginx_port)/mcp"
  run memory "$MEM" legacy "$MEM_URL"
  run memory "$MEM" modern "$MEM_URL"
  run mem-nginx "$MEM" legacy "$MEM_NGINX"
  run mem-nginx "$MEM" modern "$MEM_NGINX"
  stop_harness
  rm -f "$MEM"

  echo "bench: round $round/$ROUNDS: three replicas on Redis behind nginx (TOKIO_WORKER_THREADS=${REPLICA_WORKERS:-default} each)" >&2
  if [ -n "${REPLICA_WORKERS:-}" ]; then export TOKIO_WORKER_THREADS=$REPLICA_WORKERS; fi
  start cluster --kind binary --replicas 3
  CL=$OUT/cluster.json
  CL_URL="http://127.0.0.1:$(field "$CL" nginx_port)/mcp"
  run cluster "$CL" legacy "$CL_URL"
  run cluster "$CL" modern "$CL_URL"
  stop_harness
  rm -f "$CL"
done

echo
echo "medians of $ROUNDS rounds (CPU from /proc of the replica processes; other load on the machine adds noise):"
python3 - "$TSV" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
names = {"memory": "1 replica, in memory, direct", "mem-nginx": "1 replica, in memory, behind nginx",
         "cluster": "3 replicas + Redis + nginx"}
eras = {"legacy": "session (2025-11-25)", "modern": "2026-07-28"}
med = {}
print("| setup | era | req/s | p50 (us) | p99 (us) | errors (all rounds) | replica cores used | req/s per replica core | Redis commands/request (scripts) |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for label in ("memory", "mem-nginx", "cluster"):
    for era in ("legacy", "modern"):
        rs = [r for r in rows if r[0] == label and r[1] == era]
        if not rs:
            continue
        m = lambda i: statistics.median(float(r[i]) for r in rs)
        med[(label, era)] = m(7)
        print(f"| {names[label]} | {eras[era]} | {m(2):.0f} | {m(3):.0f} | {m(4):.0f} | {sum(int(r[5]) for r in rs)} | "
              f"{m(6):.2f} | {m(7):.0f} | {m(8):.3f} ({m(9):.4f}) |")
for era in ("legacy", "modern"):
    if ("cluster", era) in med:
        c = med[("cluster", era)]
        print(f"ratio {eras[era]}: cluster req/s per replica core / in-memory direct = {c / med[('memory', era)]:.2f}"
              f"; / in-memory behind nginx = {c / med[('mem-nginx', era)]:.2f}"
              + (" (target >= 0.6)" if era == "legacy" else ""))
PY
