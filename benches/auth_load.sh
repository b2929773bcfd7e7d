# Shared by token_pool.sh and flood.sh: a loopback issuer (static JWKS over http) and servers
# (release binaries) configured for it. Sourced, not run. Loopback only; every process started
# here is stopped by the EXIT trap of the sourcing script.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_issuer DIR: serves DIR/issuer/oauth/jwks on a free port; sets ISSUER_PORT, ISSUER.
start_issuer() {
  local dir=$1
  ISSUER_PORT=$(free_port)
  ISSUER="http://127.0.0.1:$ISSUER_PORT/issuer"
  mkdir -p "$dir/www/issuer/oauth"
  python3 -m http.server "$ISSUER_PORT" --bind 127.0.0.1 --directory "$dir/www" >"$dir/issuer.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do
    curl -s -o /dev/null "http://127.0.0.1:$ISSUER_PORT/" && return 0
    sleep 0.1
  done
  echo "issuer did not start" >&2
  exit 1
}

# start_server NAME BIN [ENV=VALUE...]: runs BIN against the issuer on a free port; sets PORT_<NAME>.
start_server() {
  local name=$1 bin=$2
  shift 2
  local port
  port=$(free_port)
  env HOST=127.0.0.1 PORT="$port" VOUCH_ISSUER="$ISSUER" VOUCH_AUDIENCE="$AUDIENCE" \
    VOUCH_MCP_LOG=error "$@" "$bin" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  PIDS+=($!)
  eval "PID_$name=$!"
  eval "PORT_$name=$port"
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    sleep 0.1
  done
  echo "server $name did not start" >&2
  exit 1
}

AUDIENCE=https://mcp.bench/mcp
META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},'"$META"'}}'

# whoami PORT TOKEN: one call; prints the HTTP status.
whoami() {
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/mcp" -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: whoami' -d "$BODY"
}

# wait_ready PORT TOKEN: until whoami answers 200 (the first JWKS fetch has landed).
wait_ready() {
  for _ in $(seq 1 100); do
    [ "$(whoami "$1" "$2")" = 200 ] && return 0
    sleep 0.1
  done
  echo "server on port $1 never answered whoami with 200" >&2
  exit 1
}

# wrk_rps OUTPUT_FILE: requests/s from a wrk report.
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
