#!/usr/bin/env bash
# The request-path benchmark of issue 8: vouch-mcp --dev against a bare-hyper ceiling, same wrk load, one run.
#
#   bash benches/request_path.sh [--also NAME=PATH]...
#
# Builds target/release/vouch-mcp and the `ceiling` example (examples/ceiling.rs: hyper answering
# every POST with a fixed 250-byte JSON-RPC result). Starts the ceiling, `vouch-mcp --dev`, and
# every `--also NAME=PATH` binary (another vouch-mcp build, e.g. `--also before=/old/vouch-mcp`),
# each on its own loopback port. Then, for each load, runs the same wrk load against the ceiling
# and each server INTERLEAVED (ceiling, servers, ceiling, servers, ...), ROUNDS rounds, and
# reports medians and ratios to the ceiling:
#
#   modern   c=8, c=64   whoami tools/call at 2026-07-28 (_meta, Mcp-Method/Mcp-Name), token-cache hit
#   session  c=8, c=64   whoami tools/call in an initialize-era session (Mcp-Session-Id), cache hit
#   401      c=64        POST /mcp without a token
#
# Per run: requests/s, p50, p99 (wrk's done() hook), non-2xx count, and server CPU per request
# (utime+stime from /proc/PID/stat before and after the load, over requests completed). Also
# idle RSS (VmRSS after start, before any MCP request) and the stripped binary size.
# Before every run the exact request is sent once with curl and its answer checked (a whoami
# result for `bench`, or a 401 with a Bearer challenge), so a broken server cannot post numbers.
#
# The script depends only on the binary's HTTP behaviour under --dev: tokens are minted with
# `POST http://127.0.0.1:PORT/dev/token`; the banner is not read.
#
# FLOOR=1 adds a third kind of target, `json-floor`: the ceiling with CEILING_JSON=1, which also
# parses each body into a serde_json Value and serializes a whoami-shaped Value result (the least
# a server whose requests and results are Values does), on the whoami loads.
#
# Environment: DURATION=5s per run, WARMUP=1s per target and load (not recorded), ROUNDS=3,
# THREADS=2, LOADS="modern8 modern64 session8 session64 unauth64" (a subset for quick tries),
# VOUCH_MCP_LOG (passed through; unset = the binary's default, one line per request),
# OUT_DIR=target/bench. Server stderr goes to a file truncated before each run, so the report can
# show log lines per request. Writes OUT_DIR/request_path.md (the table) and request_path.tsv
# (every run). Loopback only; every load bounded in time; every process it starts is killed by
# PID on exit. Run it under `flock /work/.bench.lock` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
LOADS=${LOADS:-modern8 modern64 session8 session64 unauth64}
OUT_DIR=${OUT_DIR:-target/bench}

die() { echo "request_path: $*" >&2; exit 1; }

NAMES=(vouch-mcp)
declare -A BIN=([vouch-mcp]=target/release/vouch-mcp)
while [ $# -gt 0 ]; do
  case "$1" in
    --also)
      [ $# -ge 2 ] || die "--also needs NAME=PATH"
      spec=$2; shift 2 ;;
    --also=*) spec=${1#--also=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (expected --also NAME=PATH)" ;;
  esac
  name=${spec%%=*}; path=${spec#*=}
  [[ "$spec" == *=* && "$name" =~ ^[A-Za-z0-9_-]+$ ]] || die "--also wants NAME=PATH, got $spec"
  [ "$name" != ceiling ] && [ "$name" != json-floor ] && [ -z "${BIN[$name]:-}" ] || die "name $name is taken"
  [ -x "$path" ] || die "$path is not an executable file"
  NAMES+=("$name"); BIN[$name]=$path
done
for load in $LOADS; do
  case "$load" in modern8|modern64|session8|session64|unauth64) ;; *) die "unknown load $load" ;; esac
done

if ! command -v wrk >/dev/null; then
  echo "request_path: installing wrk (apt-get)" >&2
  (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)) >/dev/null
fi
command -v python3 >/dev/null || die "python3 is needed (free ports, answer checks, the report)"
echo "request_path: building the release binary and the ceiling" >&2
cargo build --release --quiet --bin vouch-mcp --example ceiling
CEILING_BIN=target/release/examples/ceiling

WORK=$(mktemp -d)
declare -A PID PORT TOKEN SESSION
cleanup() {
  local p
  for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# mint NAME: a token for `bench` from the server's dev issuer, on stdout (empty if not ready).
mint() {
  curl -s --max-time 5 -X POST "http://127.0.0.1:${PORT[$1]}/dev/token" \
    -H 'Content-Type: application/json' \
    -d '{"sub":"bench","email":"bench@example.com","hardware_verified":true,"ttl_secs":3600}' |
    python3 -c 'import json,sys
try: print(json.load(sys.stdin)["access_token"])
except Exception: pass' 2>/dev/null || true
}

# start_server NAME: runs BIN[NAME] --dev on a free port until it mints a token (retries the
# port, which another process may take between the probe and the bind).
start_server() {
  local name=$1 attempt tok
  for attempt in 1 2 3; do
    PORT[$name]=$(free_port)
    : >"$WORK/$name.stderr"
    PORT=${PORT[$name]} "${BIN[$name]}" --dev >"$WORK/$name.stdout" 2>>"$WORK/$name.stderr" &
    PID[$name]=$!
    for _ in $(seq 1 100); do
      kill -0 "${PID[$name]}" 2>/dev/null || break
      tok=$(mint "$name")
      if [ -n "$tok" ]; then TOKEN[$name]=$tok; return 0; fi
      sleep 0.1
    done
    kill "${PID[$name]}" 2>/dev/null || true
    wait "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
    echo "request_path: $name did not start on attempt $attempt; its stderr:" >&2
    tail -5 "$WORK/$name.stderr" >&2
  done
  die "$name (${BIN[$name]}) never became ready"
}

# start_ceiling NAME JSON: the ceiling binary as target NAME, with CEILING_JSON=JSON.
start_ceiling() {
  local name=$1
  CEILING_JSON=$2 "$CEILING_BIN" 0 >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" &
  PID[$name]=$!
  for _ in $(seq 1 100); do
    if grep -q '^listening on ' "$WORK/$name.stdout" 2>/dev/null; then
      PORT[$name]=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$WORK/$name.stdout")
      return 0
    fi
    kill -0 "${PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/$name.stderr" >&2
  die "$name never printed its address"
}
# targets LOAD: the targets of LOAD in the order they run (the floor only answers whoami loads).
targets() {
  echo ceiling
  [ "${FLOOR:-0}" = 1 ] && [[ "$1" != unauth* ]] && echo json-floor
  echo "${NAMES[@]}"
}
# who_for TARGET: whose token and session the request sent to TARGET carries.
who_for() { case "$1" in ceiling|json-floor) echo "${NAMES[0]}" ;; *) echo "$1" ;; esac; }

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# utime + stime of the whole process (all threads), in clock ticks. The command name sits in
# parentheses and may hold spaces, so fields are counted after the last ')'.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# cutime + cstime of this shell: the CPU of the children it has waited for (wrk among them).
children_ticks() { sed 's/.*) //' "/proc/$$/stat" | awk '{print $14 + $15}'; }
# Busy ticks of the whole machine (user, nice, system, irq, softirq, steal).
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)

META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
MODERN_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},'"$META"'}}'
SESSION_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
SESSION_VERSION=2025-11-25

# headers LOAD NAME: the request headers of LOAD as sent to server NAME, one "Key: value" a line.
headers() {
  local load=$1 name=$2
  echo "Content-Type: application/json"
  echo "Accept: application/json, text/event-stream"
  case "$load" in
    modern*|unauth*)
      [[ "$load" == unauth* ]] || echo "Authorization: Bearer ${TOKEN[$name]}"
      echo "MCP-Protocol-Version: 2026-07-28"
      echo "Mcp-Method: tools/call"
      echo "Mcp-Name: whoami" ;;
    session*)
      echo "Authorization: Bearer ${TOKEN[$name]}"
      echo "Mcp-Session-Id: ${SESSION[$name]}"
      echo "MCP-Protocol-Version: $SESSION_VERSION" ;;
  esac
}
body_of() { case "$1" in session*) echo "$SESSION_BODY" ;; *) echo "$MODERN_BODY" ;; esac; }
conns_of() { echo "${1//[!0-9]/}"; }

# open_session NAME: initialize + notifications/initialized; sets SESSION[NAME].
open_session() {
  local name=$1 url="http://127.0.0.1:${PORT[$1]}/mcp" code sid
  code=$(curl -s --max-time 5 -D "$WORK/init.head" -o "$WORK/init.body" -w '%{http_code}' "$url" \
    -H "Authorization: Bearer ${TOKEN[$name]}" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"'$SESSION_VERSION'","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}')
  sid=$(tr -d '\r' <"$WORK/init.head" | awk 'tolower($1)=="mcp-session-id:" {print $2}')
  [ "$code" = 200 ] && [ -n "$sid" ] || die "$name: initialize answered $code without a session id: $(head -c 300 "$WORK/init.body")"
  SESSION[$name]=$sid
  code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$url" \
    -H "Authorization: Bearer ${TOKEN[$name]}" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" \
    -H "MCP-Protocol-Version: $SESSION_VERSION" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}')
  [ "$code" = 202 ] || die "$name: notifications/initialized answered $code, not 202"
}

# check LOAD TARGET WHO: sends LOAD's request (as built for server WHO) once to TARGET and checks
# the answer: the ceiling's fixed body, a whoami result for `bench`, or a 401 Bearer challenge.
check() {
  local load=$1 target=$2 who=$3 args=() line code
  while IFS= read -r line; do args+=(-H "$line"); done < <(headers "$load" "$who")
  code=$(curl -s --max-time 5 -D "$WORK/check.head" -o "$WORK/check.body" -w '%{http_code}' \
    "${args[@]}" -d "$(body_of "$load")" "http://127.0.0.1:${PORT[$target]}/mcp") || code=000
  local kind=whoami
  [ "$target" = ceiling ] && kind=ceiling
  [ "$target" != ceiling ] && [[ "$load" == unauth* ]] && kind=unauth
  python3 - "$kind" "$code" "$WORK/check.head" "$WORK/check.body" <<'PY' ||
import json, sys
kind, code, head, body = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read(), open(sys.argv[4], "rb").read()
headers = {}
for l in head.decode("latin-1").split("\r\n")[1:]:
    if ":" in l:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
def messages(raw):
    # A JSON body, or the data lines of an SSE body.
    if headers.get("content-type", "").startswith("text/event-stream"):
        out = []
        for event in raw.decode().split("\n\n"):
            data = "\n".join(l[5:].lstrip() for l in event.split("\n") if l.startswith("data:"))
            if data.strip():
                out.append(json.loads(data))
        return out
    return [json.loads(raw)]
if kind == "ceiling":
    ok = code == "200" and len(body) == 250 and "result" in json.loads(body)
elif kind == "unauth":
    ok = code == "401" and headers.get("www-authenticate", "").startswith("Bearer ")
else:
    replies = [m for m in messages(body) if m.get("id") == 1]
    ok = code == "200" and len(replies) == 1 and replies[0].get("result", {}).get("isError") is False \
        and replies[0]["result"].get("structuredContent", {}).get("email") == "bench@example.com"
if not ok:
    print(f"status {code}, body {body[:300]!r}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
    die "$target answered the $load request wrongly (see above)"
}

# lua LOAD WHO FILE: a wrk script sending LOAD's request (as built for WHO) whose done() hook
# prints one machine-readable line.
lua() {
  local load=$1 who=$2 file=$3 line
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = [==[$(body_of "$load")]==]"
    while IFS= read -r line; do
      echo "wrk.headers[\"${line%%: *}\"] = [==[${line#*: }]==]"
    done < <(headers "$load" "$who")
    cat <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
LUA
  } >"$file"
}

TSV_HEADER="load	connections	round	target	requests	duration_us	rps	p50_us	p99_us	cpu_ticks	cpu_us_per_req	non2xx	socket_errors	log_lines	wrk_ticks	others_cores"

# run LOAD ROUND TARGET: one recorded wrk run; appends a row to the TSV.
run() {
  local load=$1 round=$2 target=$3 who c t0 t1 w0 w1 m0 m1 ns0 ns1 lines=-
  who=$(who_for "$target")
  c=$(conns_of "$load")
  check "$load" "$target" "$who"
  lua "$load" "$who" "$WORK/$load.$target.lua"
  [ "$target" = ceiling ] || : >"$WORK/$target.stderr"
  ns0=$(date +%s%N)
  m0=$(machine_busy_ticks)
  t0=$(cpu_ticks "${PID[$target]}")
  w0=$(children_ticks)
  # wrk runs in this shell (not in a $(...)), so its CPU shows in this shell's children times.
  wrk -t"$THREADS" -c"$c" -d"$DURATION" -s "$WORK/$load.$target.lua" \
    "http://127.0.0.1:${PORT[$target]}/mcp" >"$WORK/wrk.out"
  w1=$(children_ticks)
  # Let a logger that writes off the request path catch up before CPU and log lines are read.
  sleep 0.3
  t1=$(cpu_ticks "${PID[$target]}")
  m1=$(machine_busy_ticks)
  ns1=$(date +%s%N)
  [ "$target" = ceiling ] || lines=$(wc -l <"$WORK/$target.stderr")
  kill -0 "${PID[$target]}" 2>/dev/null || die "$target died during the $load load"
  local bench
  bench=$(grep '^BENCH ' "$WORK/wrk.out") || die "wrk printed no BENCH line for $target: $(cat "$WORK/wrk.out")"
  python3 - "$load" "$c" "$round" "$target" "$((t1 - t0))" "$CLK_TCK" "$lines" "$bench" \
    "$((w1 - w0))" "$((m1 - m0))" "$(((ns1 - ns0) / 1000))" >>"$TSV" <<'PY'
import sys
load, c, rnd, target, ticks, hz, lines, bench, wrk_ticks, machine_ticks, wall_us = sys.argv[1:]
f = dict(kv.split("=") for kv in bench.split()[1:])
req, dur = int(f["requests"]), int(f["duration_us"])
cpu = int(ticks) * 1e6 / int(hz) / req if req else float("nan")
sock = sum(int(f[k]) for k in ("connect", "read", "write", "timeout"))
# CPU used by everything else on the machine over the run, in cores (other agents, builds).
others = max(0, int(machine_ticks) - int(ticks) - int(wrk_ticks)) / int(hz) / (int(wall_us) / 1e6)
print("\t".join(map(str, [load, c, rnd, target, req, dur, f"{req / (dur / 1e6):.1f}", f["p50_us"],
                          f["p99_us"], ticks, f"{cpu:.2f}", f["non2xx"], sock, lines, wrk_ticks,
                          f"{others:.2f}"])))
PY
  tail -1 "$TSV" | awk -F'\t' '{printf "  %-9s c=%-3s round %s %-10s %9.0f req/s  p50 %6d us  p99 %6d us  cpu %6.2f us/req  non-2xx %s  others %s cores\n", $1, $2, $3, $4, $7, $8, $9, $11, $12, $16}' >&2
}

mkdir -p "$OUT_DIR"
TSV=$OUT_DIR/request_path.tsv
MD=$OUT_DIR/request_path.md
echo "$TSV_HEADER" >"$TSV"

start_ceiling ceiling 0
CEILINGS=(ceiling)
if [ "${FLOOR:-0}" = 1 ]; then start_ceiling json-floor 1; CEILINGS+=(json-floor); fi
declare -A IDLE_RSS SIZE
for name in "${NAMES[@]}"; do
  start_server "$name"
  IDLE_RSS[$name]=$(rss_kib "${PID[$name]}")
  # The release profile already strips; strip a copy anyway so any build is measured the same way.
  if command -v strip >/dev/null && strip -o "$WORK/$name.stripped" "${BIN[$name]}" 2>/dev/null; then
    SIZE[$name]=$(stat -c %s "$WORK/$name.stripped")
  else
    SIZE[$name]="$(stat -c %s "${BIN[$name]}") (as built: strip unavailable or failed)"
  fi
done
for name in "${CEILINGS[@]}"; do IDLE_RSS[$name]=$(rss_kib "${PID[$name]}"); done

START=$(date +%s)
echo "request_path: loads [$LOADS], $ROUNDS rounds of $DURATION, wrk -t$THREADS; targets: ceiling ${NAMES[*]}" >&2
for load in $LOADS; do
  if [[ "$load" == session* ]]; then
    for name in "${NAMES[@]}"; do [ -n "${SESSION[$name]:-}" ] || open_session "$name"; done
  fi
  echo "== $load (warm-up $WARMUP each)" >&2
  for target in $(targets "$load"); do
    who=$(who_for "$target")
    check "$load" "$target" "$who"
    lua "$load" "$who" "$WORK/warm.lua"
    wrk -t"$THREADS" -c"$(conns_of "$load")" -d"$WARMUP" -s "$WORK/warm.lua" \
      "http://127.0.0.1:${PORT[$target]}/mcp" >/dev/null
  done
  for round in $(seq 1 "$ROUNDS"); do
    for target in $(targets "$load"); do run "$load" "$round" "$target"; done
  done
done
ELAPSED=$(($(date +%s) - START))

declare -A LOADED_RSS
for name in "${CEILINGS[@]}" "${NAMES[@]}"; do LOADED_RSS[$name]=$(rss_kib "${PID[$name]}"); done
FACTS=$WORK/facts.tsv
{
  for name in "${CEILINGS[@]}" "${NAMES[@]}"; do
    path=${BIN[$name]:-$CEILING_BIN}
    [ "$name" = json-floor ] && path="CEILING_JSON=1 $CEILING_BIN"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "${IDLE_RSS[$name]}" "${LOADED_RSS[$name]}" \
      "${SIZE[$name]:--}" "$path"
  done
} >"$FACTS"

python3 - "$TSV" "$FACTS" "$DURATION" "$ROUNDS" "$THREADS" "$ELAPSED" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$MD" <<'PY'
import csv, statistics, sys
tsv, facts, duration, rounds, threads, elapsed, cpus, loadavg = sys.argv[1:]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
names = [l.split("\t")[0] for l in open(facts).read().splitlines()]
servers = [n for n in names if n != "ceiling"]
loads = list(dict.fromkeys(r["load"] for r in rows))
label = {"modern": "whoami 2026-07-28", "session": "whoami in session", "unauth": "401, no token"}
def runs(load, target):
    return [r for r in rows if r["load"] == load and r["target"] == target]
def med(load, target, key):
    return statistics.median(float(r[key]) for r in runs(load, target))
out = []
w = out.append
w("## Request path: vouch-mcp against the bare-hyper ceiling\n")
w(f"wrk -t{threads}, {duration} per run, {rounds} rounds interleaved (ceiling, servers, ...), medians; "
  f"token-cache hit for the authenticated loads. {cpus} CPUs shared by wrk and the servers; "
  f"load average at the end {loadavg}; {elapsed} s of loads.\n")
w("| load | c | target | req/s | p50 µs | p99 µs | CPU µs/req | CPU ×ceil | req/s ×ceil | p50 ×ceil | p99 ×ceil | non-2xx / requests | log lines/req |")
w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for load in loads:
    kind = load.rstrip("0123456789")
    c = load[len(kind):]
    for t in ["ceiling"] + servers:
        rs = runs(load, t)
        if not rs:
            continue
        rps, p50, p99, cpu = (med(load, t, k) for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req"))
        non2xx = sum(int(r["non2xx"]) for r in rs)
        total = sum(int(r["requests"]) for r in rs)
        sock = sum(int(r["socket_errors"]) for r in rs)
        errs = f"{non2xx:,} / {total:,}" + (f" (+{sock} socket errors)" if sock else "")
        if t == "ceiling":
            ratios = ["1", "1", "1", "1"]
            lines = "–"
        else:
            ratios = [f"{cpu / med(load, 'ceiling', 'cpu_us_per_req'):.2f}",
                      f"{rps / med(load, 'ceiling', 'rps'):.2f}",
                      f"{p50 / med(load, 'ceiling', 'p50_us'):.2f}",
                      f"{p99 / med(load, 'ceiling', 'p99_us'):.2f}"]
            lines = f"{sum(int(r['log_lines']) for r in rs) / total:.2f}" if total else "–"
        w(f"| {label[kind]} | {c} | {t} | {rps:,.0f} | {p50:,.0f} | {p99:,.0f} | {cpu:.1f} | "
          + " | ".join(ratios) + f" | {errs} | {lines} |")
w("\nRatios are median(server) / median(ceiling). Per-round ratios (server / the ceiling run just before it), to show the spread. Others' CPU is the machine's busy CPU minus the target's and wrk's during a run (other agents' builds and tests), over the ceiling's and this server's runs of the load:\n")
w("| load | c | target | CPU ×ceil by round | req/s ×ceil by round | p99 ×ceil by round | others' CPU (cores), max over its runs |")
w("|---|---|---|---|---|---|---:|")
for load in loads:
    kind = load.rstrip("0123456789")
    ceil = {r["round"]: r for r in runs(load, "ceiling")}
    for t in servers:
        per = [(r, ceil[r["round"]]) for r in runs(load, t) if r["round"] in ceil]
        if not per:
            continue
        fmt = lambda k: ", ".join(f"{float(s[k]) / float(b[k]):.2f}" for s, b in per)
        others = max(float(r["others_cores"]) for r in runs(load, t) + runs(load, "ceiling"))
        w(f"| {label[kind]} | {load[len(kind):]} | {t} | {fmt('cpu_us_per_req')} | {fmt('rps')} | {fmt('p99_us')} | {others:.2f} |")
w("\n| target | idle RSS (KiB) | RSS after the loads (KiB) | stripped binary (bytes) | binary |")
w("|---|---:|---:|---:|---|")
for line in open(facts).read().splitlines():
    n, idle, loaded, size, path = line.split("\t")
    size = f"{int(size):,}" if size.isdigit() else size
    w(f"| {n} | {int(idle):,} | {int(loaded):,} | {size} | `{path}` |")
print("\n".join(out))
PY
cat "$MD"
echo >&2
echo "request_path: table in $MD, every run in $TSV" >&2
