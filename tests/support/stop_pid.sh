# Sourced by the test scripts that start servers (tests/interop/run.sh, tests/browser/run.sh).
# stop_pid PID: TERM, up to 5 s to exit, then KILL; reaps it. Empty or gone: nothing to do.
stop_pid() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
  fi
}
