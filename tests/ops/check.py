"""Operations checks against the real vouch-mcp binary (see run.sh): a known load, then the
metrics parsed by prometheus_client's text parser and compared with the counts that load must
produce; JSON log lines; the audit file, its SIGHUP reopen, and no token anywhere."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BIN, WORK = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {what}")
    else:
        failed += 1
        print(f"FAIL {what} {detail}".rstrip())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(url, method="GET", body=None, headers=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}

audit_path = os.path.join(WORK, "audit.jsonl")
port = free_port()
env = {k: v for k, v in os.environ.items() if not k.startswith(("VOUCH_", "MCP_"))}
env.update({
    "PORT": str(port),
    "MCP_METRICS_ADDR": "127.0.0.1:0",
    "VOUCH_MCP_LOG_FORMAT": "json",
    "VOUCH_MCP_AUDIT": audit_path,
    "MCP_TRUSTED_PROXIES": "127.0.0.1",
})
err = open(os.path.join(WORK, "server.log"), "wb")
out = open(os.path.join(WORK, "server.out"), "wb")
server = subprocess.Popen([BIN, "--dev", "--leeway-secs", "0"], env=env, stdout=out, stderr=err)
base = f"http://127.0.0.1:{port}"
mcp = f"{base}/mcp"


def log_lines():
    with open(os.path.join(WORK, "server.log"), "rb") as f:
        return f.read().decode().splitlines()


try:
    metrics_url = None
    for _ in range(100):
        for line in log_lines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if v.get("msg", "").startswith("listening:"):
                addr = v["msg"].split("metrics=")[1].split()[0]
                metrics_url = f"http://{addr}/metrics"
        if metrics_url:
            break
        time.sleep(0.1)
    check(metrics_url is not None, "the listening line names the metrics listener")
    for _ in range(100):
        if request(f"{base}/readyz")[0] == 200:
            break
        time.sleep(0.1)

    def mint(hw, ttl=600):
        s, _, b = request(f"{base}/dev/token", "POST", json.dumps(
            {"sub": "ops-user", "email": "ops@example.com", "hardware_verified": hw, "ttl_secs": ttl}),
            {"Content-Type": "application/json"})
        assert s == 200, b
        return json.loads(b)["access_token"]

    hw, plain, expired = mint(True), mint(False), mint(True, -120)
    mints = 3

    def call(token, tool, extra=None):
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(extra or {})
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": tool, "arguments": {}, "_meta": META}}
        return request(mcp, "POST", json.dumps(body), headers)

    # The known load.
    for _ in range(20):
        s, h, b = call(hw, "whoami")
        assert s == 200, b
    for _ in range(5):
        s, h, b = call(plain, "sensitive-action")
        assert s == 200 and json.loads(b)["result"]["isError"] is True, b
    for _ in range(3):
        s, h, b = call(hw, "no-such-tool")
        assert s == 200 and json.loads(b)["error"]["code"] == -32602, b
    for _ in range(4):
        assert call(None, "whoami")[0] == 401
    for _ in range(2):
        assert call(expired, "whoami")[0] == 401
    legacy = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
              "Authorization": f"Bearer {hw}"}
    s, h, b = request(mcp, "POST", json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "ops", "version": "0"}}}), legacy)
    assert s == 200, b
    sid = {k.lower(): v for k, v in h.items()}["mcp-session-id"]
    legacy.update({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    assert request(mcp, "POST", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), legacy)[0] == 202
    assert request(mcp, "POST", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), legacy)[0] == 200
    # A trusted proxy (loopback here) names the client and the request id.
    s, h, b = call(hw, "whoami", {"X-Forwarded-For": "198.51.100.23", "X-Request-Id": "edge-42"})
    headers = {k.lower(): v for k, v in h.items()}
    check(s == 200 and headers.get("x-request-id") == "edge-42", "a trusted proxy's X-Request-Id is echoed")
    for _ in range(2):
        request(f"{base}/readyz")
    request(f"{base}/healthz")
    whoami_ok = 21

    text = request(metrics_url)[2].decode()
    with open(os.path.join(WORK, "metrics.txt"), "w") as f:
        f.write(text)
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def sample(family, name, **labels):
        fam = families.get(family)
        if fam is None:
            return None
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
        return 0

    op = "mcp_server_operation_duration_seconds"
    check(families[op].type == "histogram", "the operation duration is a histogram")
    expect_ops = [
        ({"mcp_method_name": "tools/call", "gen_ai_tool_name": "whoami"}, whoami_ok),
        ({"mcp_method_name": "tools/call", "gen_ai_tool_name": "sensitive-action", "error_type": "tool_error"}, 5),
        ({"mcp_method_name": "tools/call", "gen_ai_tool_name": "other", "error_type": "-32602"}, 3),
        ({"mcp_method_name": "initialize"}, 1),
        ({"mcp_method_name": "notifications/initialized"}, 1),
        ({"mcp_method_name": "tools/list"}, 1),
    ]
    for labels, n in expect_ops:
        got = sample(op, op + "_count", **labels)
        check(got == n, f"operations {labels} = {n}", f"(got {got})")
        inf = sample(op, op + "_bucket", **labels, le="+Inf")
        check(inf == n, f"histogram +Inf bucket {labels} = count")
    buckets = [s for s in families[op].samples if s.name == op + "_bucket"
               and s.labels.get("gen_ai_tool_name") == "whoami"]
    values = [s.value for s in buckets]
    check(values == sorted(values) and len(values) == 15, "buckets are cumulative, 14 bounds and +Inf")
    total_ops = sum(s.value for s in families[op].samples if s.name == op + "_count")
    check(total_ops == whoami_ok + 5 + 3 + 3, f"no other operation was counted ({total_ops})")

    http = "vouch_mcp_http_requests"
    for labels, n in [
        ({"route": "mcp", "method": "POST", "status": "200"}, whoami_ok + 5 + 3 + 2),
        ({"route": "mcp", "method": "POST", "status": "202"}, 1),
        ({"route": "mcp", "method": "POST", "status": "401"}, 6),
        ({"route": "fallback", "method": "POST", "status": "200"}, mints),
        ({"route": "readyz", "method": "GET", "status": "200"}, None),
        ({"route": "healthz", "method": "GET", "status": "200"}, 1),
    ]:
        got = sample(http, http + "_total", **labels)
        if n is None:
            check(got >= 3, f"http requests {labels} >= 3", f"(got {got})")
        else:
            check(got == n, f"http requests {labels} = {n}", f"(got {got})")

    auth = "vouch_mcp_auth_decisions"
    allowed = whoami_ok + 5 + 3 + 3
    for labels, n in [({"outcome": "allowed", "reason": "ok"}, allowed),
                      ({"outcome": "denied", "reason": "no_credentials"}, 4),
                      ({"outcome": "denied", "reason": "token_expired"}, 2)]:
        got = sample(auth, auth + "_total", **labels)
        check(got == n, f"auth decisions {labels} = {n}", f"(got {got})")
    # Each request is its own connection, so the shared cache answers every repeat of a token:
    # two valid tokens verified once each, the expired one once (its repeat is answered from the
    # failure cache, which counts as neither).
    cache = "vouch_mcp_verification_cache"
    check(sample(cache, cache + "_total", result="miss") == 3, "cache misses = 3",
          f"(got {sample(cache, cache + '_total', result='miss')})")
    check(sample(cache, cache + "_total", result="hit") == allowed - 2, f"cache hits = {allowed - 2}",
          f"(got {sample(cache, cache + '_total', result='hit')})")
    check(sample("vouch_mcp_jwks_fetches", "vouch_mcp_jwks_fetches_total", outcome="ok") >= 1, "a JWKS fetch succeeded")
    check(sample("vouch_mcp_jwks_keys", "vouch_mcp_jwks_keys") == 1, "one key in the set")
    age = sample("vouch_mcp_jwks_key_set_age_seconds", "vouch_mcp_jwks_key_set_age_seconds")
    check(age is not None and 0 <= age < 600, f"key set age {age}")
    check(sample("vouch_mcp_open_sessions", "vouch_mcp_open_sessions") == 1, "one open session")
    check(sample("vouch_mcp_tasks", "vouch_mcp_tasks") == 0, "no task held (the guide's tools never run as tasks)")
    check(sample("vouch_mcp_tasks_running", "vouch_mcp_tasks_running") == 0, "no task running")
    check(sample("vouch_mcp_ready", "vouch_mcp_ready") == 1, "ready")
    check(sample("vouch_mcp_log_lines_dropped", "vouch_mcp_log_lines_dropped_total") == 0, "no log line dropped")
    check((sample("process_resident_memory_bytes", "process_resident_memory_bytes") or 0) > 1 << 20, "resident memory reported")
    check((sample("process_open_fds", "process_open_fds") or 0) > 3, "open fds reported")
    labels_seen = {v for f in families.values() for s in f.samples for v in s.labels.values()}
    check(not any("ops-user" in v or "ops@example.com" in v for v in labels_seen), "no subject in any label")

    # Audit rotation: move the file, SIGHUP, and the next lines land in a new file.
    time.sleep(0.5)
    os.rename(audit_path, audit_path + ".1")
    server.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    call(hw, "whoami", {"X-Request-Id": "after-rotation"})
    for _ in range(50):
        if os.path.exists(audit_path) and "after-rotation" in open(audit_path).read():
            break
        time.sleep(0.1)
    check(os.path.exists(audit_path) and "after-rotation" in open(audit_path).read(),
          "after SIGHUP the audit file is reopened at its path")
    check(server.poll() is None, "SIGHUP did not stop the server")
finally:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    err.close()
    out.close()

# JSON logs: every line is one object; request lines carry the request fields.
lines = log_lines()
parsed = []
for line in lines:
    try:
        parsed.append(json.loads(line))
    except ValueError:
        check(False, "every log line is JSON", repr(line[:200]))
check(len(parsed) == len(lines) and len(lines) > 0, f"all {len(lines)} log lines are JSON objects")
check(all("ts" in v and "level" in v and "msg" in v for v in parsed), "every line has ts, level and msg")
reqs = [v for v in parsed if v.get("msg") == "request"]
mcp_reqs = [v for v in reqs if v.get("path") == "/mcp"]
# Repeated rejections within a second are summarised in one line ("count=N"), not logged each.
import re
held = sum(int(re.search(r"count=(\d+)", v["msg"]).group(1)) for v in parsed
           if v["msg"].startswith("request rejections repeated") and "path=/mcp" in v["msg"])
check(len(mcp_reqs) + held == whoami_ok + 5 + 3 + 6 + 3 + 1,
      f"one request line per /mcp request, or its share of a summary ({len(mcp_reqs)} + {held})")
check(all(isinstance(v["status"], int) and isinstance(v["latency_us"], int) and v.get("request_id")
          for v in reqs), "request lines have numeric status and latency and a request id")
edge = [v for v in reqs if v.get("request_id") == "edge-42"]
check(len(edge) == 1 and edge[0].get("client") == "198.51.100.23",
      "the request line has the trusted proxy's client address", str(edge))
check(all(v.get("client") == "127.0.0.1" for v in reqs if v.get("request_id") != "edge-42"),
      "without X-Forwarded-For the client is the peer")
check(not any(v.get("path") in ("/healthz", "/readyz") for v in reqs), "probes are not logged")

# Audit lines.
audit = [json.loads(l) for p in (audit_path + ".1", audit_path) for l in open(p) if l.strip()]
calls = [a for a in audit if a["event"] == "tool_call"]
count = lambda **kv: sum(all(a.get(k) == v for k, v in kv.items()) for a in calls)
check(count(tool="whoami", outcome="ok") == whoami_ok + 1, "audit: whoami ok lines")
check(count(tool="sensitive-action", outcome="tool_error") == 5, "audit: tool_error lines")
check(count(outcome="error", code=-32602) == 3, "audit: protocol error lines")
auth_lines = [a for a in audit if a["event"] == "auth"]
check(sum(a["outcome"] == "denied" and a["reason"] == "token_expired" for a in auth_lines) == 2, "audit: expired denials")
check(not any(a.get("reason") == "no_credentials" for a in auth_lines), "audit: no line for a request without credentials")
check(all(a.get("iss") and a.get("sub") == "ops-user" for a in calls), "audit: tool calls name iss and sub")
check(any(a.get("client") == "198.51.100.23" for a in audit), "audit: the forwarded client address")

# No token, nor any part of one, in any log.
everything = "\n".join(lines) + open(audit_path + ".1").read() + open(audit_path).read()
for t in (hw, plain, expired):
    for part in t.split(".")[1:]:
        check(part not in everything, "no token segment in the log or the audit file")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
