#!/usr/bin/env bash
# Instructions per request on the request path, counted by valgrind's callgrind: deterministic,
# so a change of a few percent shows up where wall-clock benchmarks on a shared machine drown it.
#
#   bash benches/instructions.sh [--also NAME=PATH]...
#
# Builds target/release/vouch-mcp and the `ceiling` example (as benches/request_path.sh does),
# then for each target: starts it under callgrind on a free loopback port (vouch-mcp with --dev),
# sends 200 warm-up requests on one keep-alive connection, zeroes the counters, sends N more
# (N=2000), dumps, and reports every thread's instructions divided by N. Loads:
#
#   modern   whoami tools/call at 2026-07-28 (_meta, Mcp-Method/Mcp-Name), token-cache hit
#   session  whoami tools/call in a 2025-11-25 session (Mcp-Session-Id), token-cache hit
#
# The ceiling gets the modern request (it answers every POST with the same 250 bytes), and so
# does the JSON floor (the ceiling with CEILING_JSON=1: it parses the body into a serde_json
# Value and serializes a whoami-shaped Value result; the least a Value-based server does). Each
# `--also NAME=PATH` is another vouch-mcp binary (e.g. an older build) measured the same way.
# vouch-mcp re-executes itself with its glibc tunables unless GLIBC_TUNABLES is set; the script
# sets it to the binary's own default (src/bin/vouch-mcp/allocator.rs), so every target runs
# with the same allocator settings under valgrind. Environment: N=2000, LOADS="modern session",
# KEEP=DIR (keep each run's callgrind files there, for callgrind_annotate on a build with debug info).
# Installs valgrind with apt-get when missing. Every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "instructions: $*" >&2; exit 1; }
N=${N:-2000}
LOADS=${LOADS:-modern session}
TUNABLES=$(sed -n 's/^pub(crate) const TUNABLES: &str = "\(.*\)";$/\1/p' src/bin/vouch-mcp/allocator.rs)
[ -n "$TUNABLES" ] || die "could not read TUNABLES from src/bin/vouch-mcp/allocator.rs"

declare -A BIN=([vouch-mcp]=target/release/vouch-mcp)
NAMES=(vouch-mcp)
while [ $# -gt 0 ]; do
  case "$1" in
    --also) [ $# -ge 2 ] || die "--also needs NAME=PATH"; spec=$2; shift 2 ;;
    --also=*) spec=${1#--also=}; shift ;;
    *) die "unknown argument $1 (expected --also NAME=PATH)" ;;
  esac
  name=${spec%%=*}
  [[ "$spec" == *=* && "$name" =~ ^[A-Za-z0-9_-]+$ ]] || die "--also wants NAME=PATH, got $spec"
  [ -x "${spec#*=}" ] || die "$name: ${spec#*=} is not an executable"
  BIN[$name]=${spec#*=}
  NAMES+=("$name")
done

if ! command -v valgrind >/dev/null; then
  echo "instructions: installing valgrind (apt-get)" >&2
  (apt-get install -y -qq valgrind || (apt-get update -qq && apt-get install -y -qq valgrind)) >/dev/null
fi
cargo build --release --quiet --bin vouch-mcp --example ceiling

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The client: one keep-alive connection, WARM requests, then a signal file, then N requests.
cat >"$WORK/load.py" <<'PY'
import http.client, json, os, sys, time
port, token, mode, warm, n, ready, go = sys.argv[1:8]
c = http.client.HTTPConnection("127.0.0.1", int(port))
h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
if token != "-":
    h["Authorization"] = "Bearer " + token
meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}
body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": meta}}
if mode == "modern":
    h.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "whoami"})
else:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    c.request("POST", "/mcp", json.dumps(init), h); r = c.getresponse(); r.read()
    h["Mcp-Session-Id"] = r.getheader("Mcp-Session-Id") or sys.exit("initialize gave no session id")
    h["MCP-Protocol-Version"] = "2025-11-25"
    c.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), h)
    c.getresponse().read()
    del body["params"]["_meta"]
raw = json.dumps(body, separators=(",", ":"))
def send(k):
    for _ in range(k):
        c.request("POST", "/mcp", raw, h); r = c.getresponse(); d = r.read()
        if r.status != 200 or (token != "-" and b'"sub' not in d):
            sys.exit(f"unexpected answer {r.status}: {d[:200]!r}")
send(int(warm))
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
send(int(n))
PY

# measure NAME BIN LOAD: prints instructions per request.
measure() {
  local name=$1 bin=$2 load=$3 port out token vp lp
  port=$(free_port)
  out="$WORK/cg.$name.$load"
  if [ "$name" = ceiling ] || [ "$name" = json-floor ]; then
    CEILING_JSON=$([ "$name" = json-floor ] && echo 1 || echo 0) GLIBC_TUNABLES=$TUNABLES valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$port" \
      >"$out.stdout" 2>"$out.stderr" &
  else
    GLIBC_TUNABLES=$TUNABLES PORT=$port valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --dev \
      >"$out.stdout" 2>"$out.stderr" &
  fi
  vp=$!; PIDS+=("$vp")
  for _ in $(seq 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    kill -0 "$vp" 2>/dev/null || die "$name exited at start: $(tail -5 "$out.stderr")"
    sleep 0.1
  done
  token=-
  if [ "$name" != ceiling ] && [ "$name" != json-floor ]; then
    token=$(curl -sf -X POST "http://127.0.0.1:$port/dev/token" -H 'Content-Type: application/json' \
      -d '{"sub":"bench","email":"bench@example.com","hardware_verified":true,"ttl_secs":3600}' |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || die "$name: no dev token"
  fi
  rm -f "$WORK/ready" "$WORK/go"
  python3 "$WORK/load.py" "$port" "$token" "$load" 200 "$N" "$WORK/ready" "$WORK/go" & lp=$!
  while [ ! -e "$WORK/ready" ]; do kill -0 "$lp" 2>/dev/null || die "$name: the warm-up failed"; sleep 0.05; done
  callgrind_control -z "$vp" >/dev/null 2>&1
  touch "$WORK/go"
  wait "$lp" || die "$name: the load failed"
  callgrind_control -d "$vp" >/dev/null 2>&1
  kill "$vp"; wait "$vp" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$out".* "$KEEP"/; fi
  python3 - "$out" "$N" <<'PY'
import glob, sys
total = 0
for f in glob.glob(sys.argv[1] + ".*"):
    if f.endswith((".stdout", ".stderr")):
        continue
    for line in open(f):
        if line.startswith("summary:") or line.startswith("totals:"):
            total += int(line.split()[1]); break
print(round(total / int(sys.argv[2])))
PY
}

printf '| target | load | instructions per request | x ceiling |\n|---|---|---:|---:|\n'
ceil=$(measure ceiling target/release/examples/ceiling modern)
printf '| ceiling | modern | %s | 1.00 |\n' "$ceil"
floor=$(measure json-floor target/release/examples/ceiling modern)
printf '| json-floor | modern | %s | %s |\n' "$floor" "$(python3 -c "print(f'{$floor/$ceil:.2f}')")"
for load in $LOADS; do
  for name in "${NAMES[@]}"; do
    n=$(measure "$name" "${BIN[$name]}" "$load")
    printf '| %s | %s | %s | %s |\n' "$name" "$load" "$n" "$(python3 -c "print(f'{$n/$ceil:.2f}')")"
  done
done
