#!/usr/bin/env python3
"""Cluster harness of issue 10: one Redis, three replicas, nginx round-robin in front; the
cross-replica checks, the fault tests, and the conformance and interop runners through it.

    python3 tests/cluster/harness.py check      # everything; PASS/FAIL lines, then `N passed, M failed`
    python3 tests/cluster/harness.py serve FILE --kind binary|example [--memory] [--replicas N]
                                                # start a cluster, write its description to FILE,
                                                # run until SIGTERM (benches/cluster.sh uses it)

Needs redis-server and nginx on PATH (tests/cluster/run.sh installs them), the release binary
and example built with `--features redis` (CLUSTER_BIN, CLUSTER_EXAMPLE override the paths).
Only loopback addresses; every process it starts is stopped by its PID; every wait is bounded.

How a check proves the cross-replica path was taken: nginx adds `X-Upstream` (the replica's
address) to every response, so a check knows which replica served each request and asserts,
for example, that the POST answering a sampling request was served by another replica than
the call waiting for it. nginx runs one worker, so round-robin hands consecutive requests to
consecutive replicas; a check that needs a given replica steers there with pings.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("CLUSTER_BIN", os.path.join(TARGET, "release", "vouch-mcp"))
EXAMPLE = os.environ.get("CLUSTER_EXAMPLE", os.path.join(TARGET, "release", "examples", "conformance"))
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
TASKS_EXT = "io.modelcontextprotocol/tasks"
# The task lease the example replicas run with (MCP_TASK_LEASE_SECS): short, so that a task
# whose replica died is seen to fail quickly.
TASK_LEASE_SECS = 3

results = {"passed": 0, "failed": 0}
# Every SSE event id any check read, across replicas and streams.
EVENT_IDS = []


def report(ok, name, why=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + why if why else ''}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream mcp {{
{servers}
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 1h;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
"""


class Cluster:
    """Redis, an issuer (binary kind), N replicas, nginx. Processes are stopped by PID."""

    def __init__(self, kind, replicas=3, memory=False, env=None, prefix="vouch-mcp:"):
        self.kind = kind
        self.n = replicas
        self.memory = memory
        self.extra_env = env or {}
        self.prefix = prefix
        self.dir = tempfile.mkdtemp(prefix=f"cluster-{kind}-")
        self.procs = {}
        self.redis_port = free_port()
        self.nginx_port = free_port()
        self.ports = [free_port() for _ in range(self.n)]
        self.url = f"http://localhost:{self.nginx_port}/mcp"
        self.issuer_port = None
        self.token = None

    # --- processes -------------------------------------------------------------------------
    def spawn(self, name, argv, env=None, log=None):
        out = open(os.path.join(self.dir, f"{name}.out"), "ab")
        err = open(log or os.path.join(self.dir, f"{name}.log"), "ab")
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.Popen(argv, env=full, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def redis_start(self, fresh=False):
        data = os.path.join(self.dir, "redis")
        if fresh and os.path.isdir(data):
            for f in os.listdir(data):
                os.remove(os.path.join(data, f))
        os.makedirs(data, exist_ok=True)
        self.spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", data,
                             "--dbfilename", "dump.rdb", "--protected-mode", "no"])
        if not wait_until(lambda: self.redis("PING") == "PONG", 10):
            raise RuntimeError("redis did not start")

    def redis(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), *args],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip()

    def redis_stop(self, save):
        """Stops Redis; with `save` its data is written first and comes back on start."""
        if save:
            self.redis("SHUTDOWN", "SAVE")
            p = self.procs.pop("redis")
            p.wait(timeout=10)
        else:
            self.stop("redis", signal.SIGKILL)

    def replica_env(self, i):
        env = {"HOST": "127.0.0.1", "PORT": str(self.ports[i]), "VOUCH_MCP_LOG": "info",
               "MCP_RESOURCE_URL": self.url}
        if not self.memory:
            env["MCP_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
            env["MCP_REDIS_PREFIX"] = self.prefix
        if self.kind == "binary":
            issuer = f"http://127.0.0.1:{self.issuer_port}/dev"
            env.update({"VOUCH_ISSUER": issuer, "VOUCH_JWKS_URL": issuer + "/oauth/jwks",
                        "VOUCH_LEEWAY_SECS": "0"})
        env.update(self.extra_env)
        return env

    def replica_start(self, i):
        argv = [BIN] if self.kind == "binary" else [EXAMPLE]
        self.spawn(f"replica{i}", argv, self.replica_env(i))
        if not wait_until(lambda: healthy(self.ports[i]), 20):
            raise RuntimeError(f"replica {i} did not start: {self.tail(f'replica{i}.log')}")

    def tail(self, name, n=20):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self):
        if not self.memory:
            self.redis_start()
        if self.kind == "binary":
            self.issuer_port = free_port()
            self.spawn("issuer", [BIN, "--dev"], {"PORT": str(self.issuer_port), "MCP_RESOURCE_URL": self.url,
                                                  "VOUCH_MCP_LOG": "warn"})
            if not wait_until(lambda: healthy(self.issuer_port), 20):
                raise RuntimeError("issuer did not start")
        for i in range(self.n):
            self.replica_start(i)
        servers = "\n".join(f"    server 127.0.0.1:{p};" for p in self.ports)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            # One worker keeps round-robin order strict for the checks; the benchmark may use more.
            f.write(NGINX_CONF.format(dir=self.dir, port=self.nginx_port, servers=servers,
                                      workers=os.environ.get("NGINX_WORKERS", "1")))
        self.spawn("nginx", ["nginx", "-p", self.dir, "-c", conf])
        if not wait_until(lambda: healthy(self.nginx_port), 10):
            raise RuntimeError("nginx did not start: " + self.tail("nginx-error.log"))
        if self.kind == "binary":
            self.token = self.mint("cluster-user", hardware=True)
        return self

    def mint(self, sub, hardware=True, ttl=3600):
        body = json.dumps({"sub": sub, "email": f"{sub}@example.com",
                           "hardware_verified": hardware, "ttl_secs": ttl}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.issuer_port}/dev/token", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
        try:
            return json.loads(text).get("access_token") or json.loads(text)["token"]
        except (ValueError, KeyError):
            return text.strip()

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        if not os.environ.get("KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def describe(self):
        return {"url": self.url, "nginx_port": self.nginx_port, "ports": self.ports,
                "redis_port": None if self.memory else self.redis_port, "token": self.token,
                "issuer": f"http://127.0.0.1:{self.issuer_port}" if self.issuer_port else None,
                "dir": self.dir,
                "pids": {k: p.pid for k, p in self.procs.items()}}


# --- an MCP client just big enough for the checks -------------------------------------------

class Response:
    def __init__(self, conn, resp):
        self.conn, self.resp = conn, resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.upstream = self.headers.get("x-upstream", "")
        self.sse = self.headers.get("content-type", "").startswith("text/event-stream")
        self._body = None

    def body(self):
        if self._body is None:
            self._body = self.resp.read()
            self.conn.close()
        return self._body

    def json(self):
        return json.loads(self.body() or b"null")

    def events(self, timeout):
        """Yields (id, data) of each SSE event until the stream ends or `timeout` passes."""
        self.conn.sock.settimeout(timeout)
        ev_id, data = None, []
        while True:
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                return
            except (OSError, http.client.HTTPException):
                return
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data:
                    yield ev_id, "\n".join(data)
                elif ev_id is not None:
                    yield ev_id, ""
                ev_id, data = None, []
            elif line.startswith("id:"):
                ev_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


class Client:
    def __init__(self, cluster, token=None):
        self.c = cluster
        self.token = token
        self.session = None
        self.next_id = 0
        self.event_ids = EVENT_IDS

    def headers(self, extra=None):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "Host": f"localhost:{self.c.nginx_port}"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.session:
            h["Mcp-Session-Id"] = self.session
            h["MCP-Protocol-Version"] = LEGACY
        h.update(extra or {})
        return h

    def send(self, method, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.c.nginx_port, timeout=timeout)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, "/mcp", body=data, headers=self.headers(headers))
        return Response(conn, conn.getresponse())

    def rpc_id(self):
        self.next_id += 1
        return self.next_id

    def initialize(self, caps=None):
        r = self.send("POST", {"jsonrpc": "2.0", "id": self.rpc_id(), "method": "initialize", "params": {
            "protocolVersion": LEGACY, "clientInfo": {"name": "cluster", "version": "1"},
            "capabilities": caps if caps is not None else {"sampling": {}, "elicitation": {}}}})
        r.body()
        assert r.status == 200, f"initialize: {r.status} {r.body()[:200]}"
        self.session = r.headers["mcp-session-id"]
        self.send("POST", {"jsonrpc": "2.0", "method": "notifications/initialized"}).body()
        return r

    def request(self, method, params=None, rid=None):
        rid = rid if rid is not None else self.rpc_id()
        body = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            body["params"] = params
        return rid, self.send("POST", body)

    def notify(self, method, params):
        return self.send("POST", {"jsonrpc": "2.0", "method": method, "params": params})

    def answer(self, rid, result):
        return self.send("POST", {"jsonrpc": "2.0", "id": rid, "result": result})

    def get(self, last_event_id=None):
        extra = {"Accept": "text/event-stream"}
        if last_event_id:
            extra["Last-Event-ID"] = last_event_id
        return self.send("GET", None, extra, timeout=30)

    def modern(self, method, params, name=None, tasks=False):
        params = dict(params)
        caps = {"elicitation": {}}
        if tasks:
            caps["extensions"] = {TASKS_EXT: {}}
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN,
                           "io.modelcontextprotocol/clientCapabilities": caps}
        extra = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if name:
            extra["Mcp-Name"] = name
        saved, self.session = self.session, None
        try:
            return self.send("POST", {"jsonrpc": "2.0", "id": self.rpc_id(), "method": method,
                                      "params": params}, extra)
        finally:
            self.session = saved

    def steer(self, target):
        """Sends pings until the next request goes to replica `target` (round-robin order)."""
        for _ in range(10):
            _, r = self.request("ping")
            r.body()
            last = self.c.ports.index(int(r.upstream.rsplit(":", 1)[1]))
            if (last + 1) % self.c.n == target:
                return True
        return False

    def replica_of(self, r):
        try:
            return self.c.ports.index(int(r.upstream.rsplit(":", 1)[1]))
        except (ValueError, IndexError):
            return None

    def read_until(self, stream, pred, timeout):
        """Reads SSE events until `pred(msg)` holds; returns that message (or None)."""
        for ev_id, data in stream.events(timeout):
            if ev_id:
                self.event_ids.append(ev_id)
            if not data:
                continue
            msg = json.loads(data)
            if pred(msg):
                return msg, ev_id
        return None, None


def check(name):
    def wrap(fn):
        def run(*a):
            try:
                ok, why = fn(*a)
            except Exception as e:  # a failed step is a failed check, never a crashed run
                ok, why = False, f"{type(e).__name__}: {e}"
            report(ok, name, why)
            return ok
        run.__name__ = fn.__name__
        return run
    return wrap


# --- cross-replica checks (examples/conformance replicas) -------------------------------------

@check("cluster: a session created on one replica is served by every replica")
def session_everywhere(c):
    cl = Client(c)
    init = cl.initialize()
    seen = {cl.replica_of(init)}
    for _ in range(3):
        _, r = cl.request("tools/list")
        body = r.json() if not r.sse else None
        if r.status != 200:
            return False, f"tools/list {r.status}"
        seen.add(cl.replica_of(r))
        del body
    return len(seen) == 3, f"replicas seen {sorted(seen)}"


def sampling_call(cl):
    rid, stream = cl.request("tools/call", {"name": "test_sampling", "arguments": {"prompt": "hi"}})
    if not stream.sse:
        raise AssertionError(f"test_sampling answered {stream.status} without a stream: {stream.body()[:200]}")
    msg, ev = cl.read_until(stream, lambda m: m.get("method") == "sampling/createMessage", 10)
    if not msg:
        raise AssertionError("no sampling request on the call's stream")
    return rid, stream, msg, ev


SAMPLED = {"role": "assistant", "content": {"type": "text", "text": "from-another-replica"}, "model": "m"}


@check("cluster: the answer to a sampling request, POSTed to another replica, reaches the waiting call")
def answer_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    rid, stream, req, _ = sampling_call(cl)
    a = cl.replica_of(stream)
    ans = cl.answer(req["id"], SAMPLED)
    ans.body()
    b = cl.replica_of(ans)
    if a == b:
        return False, f"answer and call both on replica {a}"
    done, _ = cl.read_until(stream, lambda m: m.get("id") == rid, 10)
    text = json.dumps(done or {})
    return ans.status == 202 and "from-another-replica" in text, \
        f"call on {a}, answer on {b} ({ans.status}); result {text[:200]}"


@check("cluster: notifications/cancelled sent to another replica cancels the call where it runs")
def cancel_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    rid, stream, _, _ = sampling_call(cl)
    a = cl.replica_of(stream)
    n = cl.notify("notifications/cancelled", {"requestId": rid, "reason": "test"})
    n.body()
    b = cl.replica_of(n)
    if a == b:
        return False, f"cancel and call both on replica {a}"
    start = time.time()
    got, _ = cl.read_until(stream, lambda m: m.get("id") == rid, 8)
    took = time.time() - start
    # A cancelled call gets no response (2025-11-25), and its stream ends at once.
    return got is None and took < 5 and n.status == 202, \
        f"call on {a}, cancel on {b}: response {got}, stream ended after {took:.1f}s"


@check("cluster: a GET stream on one replica receives list changes and subscribed resource updates emitted on others, and a second GET elsewhere gets 409")
def notifications_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    g = cl.get()
    a = cl.replica_of(g)
    if g.status != 200:
        return False, f"GET {g.status}"
    others = [(a + 1) % c.n, (a + 2) % c.n]
    cl.steer(others[0])
    second = cl.get()
    second.body()
    conflict = (second.status, cl.replica_of(second))
    cl.steer(others[1])
    _, sub = cl.request("resources/subscribe", {"uri": "test://watched-resource"})
    sub.body()
    cl.steer(others[0])
    _, t = cl.request("tools/call", {"name": "test_trigger_tool_change", "arguments": {}})
    t.body()
    _, u = cl.request("tools/call", {"name": "test_trigger_resource_update", "arguments": {"uri": "test://other"}})
    u.body()
    cl.steer(others[1])
    _, w = cl.request("tools/call", {"name": "test_trigger_resource_update", "arguments": {"uri": "test://watched-resource"}})
    w.body()
    where = {"get": a, "409": conflict, "subscribe": cl.replica_of(sub), "tools-changed": cl.replica_of(t),
             "update": cl.replica_of(w)}
    got = []
    for _, data in g.events(5):
        if data:
            m = json.loads(data)
            got.append((m.get("method"), m.get("params", {}).get("uri")))
            if m.get("params", {}).get("uri") == "test://watched-resource":
                break
    g.close()
    ok = (("notifications/tools/list_changed", None) in got
          and ("notifications/resources/updated", "test://watched-resource") in got
          and ("notifications/resources/updated", "test://other") not in got
          and conflict[0] == 409 and conflict[1] != a
          and where["subscribe"] != a and where["tools-changed"] != a and where["update"] != a)
    return ok, f"replicas {where}, received {got}"


@check("cluster: a call's stream cut on one replica resumes on another with Last-Event-ID: replay, then live events while the call keeps running where it started")
def resume_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    rid, stream, req, ev = sampling_call(cl)
    a = cl.replica_of(stream)
    stream.close()
    r = cl.get(last_event_id=ev)
    b = cl.replica_of(r)
    if r.status != 200 or a == b:
        return False, f"resume {r.status} on {b}, call on {a}"
    ans = cl.answer(req["id"], SAMPLED)
    ans.body()
    done, done_id = cl.read_until(r, lambda m: m.get("id") == rid, 10)
    ok = done is not None and "from-another-replica" in json.dumps(done) and done_id.split("-")[0] == ev.split("-")[0]
    return ok, f"call on {a}, resumed on {b}, answered on {cl.replica_of(ans)}; result {json.dumps(done)[:160]}"


@check("cluster: test_reconnection's closed stream resumes on another replica with the result")
def reconnection_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    rid, stream = cl.request("tools/call", {"name": "test_reconnection", "arguments": {}})
    a = cl.replica_of(stream)
    last = None
    for ev_id, _ in stream.events(5):
        if ev_id:
            last = ev_id
            cl.event_ids.append(ev_id)
    r = cl.get(last_event_id=last)
    b = cl.replica_of(r)
    done, _ = cl.read_until(r, lambda m: m.get("id") == rid, 10)
    ok = "Reconnection test completed" in json.dumps(done) and a != b
    return ok, f"call on {a}, resumed on {b}: {json.dumps(done)[:160]}"


@check("cluster: a 2026-07-28 retry with requestState sealed by one replica completes on another (agreed key)")
def request_state_elsewhere(c):
    cl = Client(c)
    first = cl.modern("tools/call", {"name": "test_input_required_result_request_state", "arguments": {}},
                      "test_input_required_result_request_state")
    body = first.json()
    state = body["result"]["requestState"]
    retry = cl.modern("tools/call", {"name": "test_input_required_result_request_state", "arguments": {},
                                     "inputResponses": {"confirm": {"action": "accept", "content": {"ok": True}}},
                                     "requestState": state}, "test_input_required_result_request_state")
    text = json.dumps(retry.json())
    a, b = cl.replica_of(first), cl.replica_of(retry)
    return "state-ok" in text and a != b, f"sealed on {a}, retried on {b}: {text[:200]}"


@check("cluster: subscriptions/listen on one replica receives a change emitted on another")
def listen_elsewhere(c):
    cl = Client(c)
    ls = cl.modern("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    a = cl.replica_of(ls)
    ack, _ = cl.read_until(ls, lambda m: True, 5)
    t = cl.modern("tools/call", {"name": "test_trigger_tool_change", "arguments": {}}, "test_trigger_tool_change")
    t.body()
    got, _ = cl.read_until(ls, lambda m: m.get("method") == "notifications/tools/list_changed", 5)
    ls.close()
    return got is not None and cl.replica_of(t) != a, f"listen on {a}, change on {cl.replica_of(t)}: {got}"


@check("cluster: DELETE on one replica is a 404 on the very next requests, served by the other replicas (10 rounds)")
def delete_everywhere(c):
    # The request right after the DELETE's answer races the other replicas' cached copies; a
    # DELETE is answered only once every replica confirmed it dropped its copy.
    rounds = []
    for _ in range(10):
        cl = Client(c)
        cl.initialize()
        for _ in range(3):  # every replica caches the session first
            _, r = cl.request("ping")
            r.body()
        d = cl.send("DELETE")
        d.body()
        after = []
        for _ in range(3):
            _, r = cl.request("ping")
            r.body()
            after.append((cl.replica_of(r), r.status))
        ok = d.status in (200, 204) and all(s == 404 for _, s in after) and len({x for x, _ in after}) == 3
        rounds.append((ok, f"DELETE {d.status} on {cl.replica_of(d)}; then {after}"))
    bad = [detail for ok, detail in rounds if not ok]
    return not bad, f"{10 - len(bad)} of 10 rounds right" + (f"; first wrong: {bad[0]}" if bad else f"; last: {rounds[-1][1]}")


@check("cluster: a DELETE is answered once the other replicas confirm they dropped the session: with one replica paused, after the 250 ms wait")
def delete_waits_for_confirmations(c):
    def timed_delete(cl):
        # Straight to replica 0, so the paused one is never asked to answer.
        conn = http.client.HTTPConnection("127.0.0.1", c.ports[0], timeout=10)
        t0 = time.monotonic()
        conn.request("DELETE", "/mcp", headers=cl.headers())
        resp = conn.getresponse()
        resp.read()
        return resp.status, (time.monotonic() - t0) * 1000

    def session():
        cl = Client(c)
        cl.initialize()
        for _ in range(3):  # every replica caches the session first
            _, r = cl.request("ping")
            r.body()
        return cl

    running = timed_delete(session())
    cl = session()
    paused = c.procs["replica2"]
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        stalled = timed_delete(cl)
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    ok = running[0] in (200, 204) and running[1] < 150 and stalled[0] in (200, 204) and 200 <= stalled[1] <= 1000
    return ok, (f"all running: {running[0]} in {running[1]:.0f} ms; "
                f"replica 2 paused: {stalled[0]} in {stalled[1]:.0f} ms")


@check("cluster: event ids are unique across replicas and streams (no event read twice)")
def unique_event_ids(_c):
    ids = [i for i in EVENT_IDS if i]
    streams = {i.split("-")[0] for i in ids}
    return len(ids) > 5 and len(ids) == len(set(ids)), f"{len(ids)} ids from {len(streams)} streams, {len(set(ids))} distinct"


# --- deployment-wide caps and expiry (binary replicas) ---------------------------------------

def binary_client(c):
    return Client(c, token=c.token)


@check("cluster: MCP_MAX_SESSIONS holds for the deployment, not per replica; a DELETE frees a slot everywhere")
def cap_everywhere(c):
    clients, where = [], []
    for _ in range(3):
        cl = binary_client(c)
        r = cl.initialize(caps={})
        clients.append(cl)
        where.append(cl.replica_of(r))
    extra = binary_client(c)
    r = extra.send("POST", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "clientInfo": {"name": "x", "version": "1"}, "capabilities": {}}})
    r.body()
    full = (r.status, r.headers.get("retry-after"), cl.replica_of(r))
    clients[0].send("DELETE").body()
    again = binary_client(c)
    again.initialize(caps={})
    ok = full[0] == 503 and full[1] is not None and len(set(where)) == 3
    return ok, f"three sessions on replicas {where}; fourth: {full}; after a DELETE a new one opened"


@check("cluster: an idle session expires for every replica; one in use on all of them does not")
def expiry_everywhere(c):
    idle, busy = binary_client(c), binary_client(c)
    idle.initialize(caps={})
    busy.initialize(caps={})
    statuses = []
    for _ in range(8):  # 4 s, past the 2 s idle timeout
        _, r = busy.request("ping")
        r.body()
        statuses.append(r.status)
        time.sleep(0.5)
    gone = []
    for _ in range(3):
        _, r = idle.request("ping")
        r.body()
        gone.append(r.status)
    return all(s == 200 for s in statuses) and gone == [404] * 3, f"busy {statuses}, idle afterwards {gone}"


# --- tasks across replicas (examples/conformance replicas, MCP_TASK_LEASE_SECS=3) -------------

def modern_task(cl, tool, arguments):
    """Creates a 2026-07-28 task; returns (task id, the replica that created it)."""
    r = cl.modern("tools/call", {"name": tool, "arguments": arguments}, tool, tasks=True)
    body = r.json()
    res = (body or {}).get("result") or {}
    if r.status != 200 or res.get("resultType") != "task":
        raise AssertionError(f"{tool} did not become a task: {r.status} {json.dumps(body)[:200]}")
    return res["taskId"], cl.replica_of(r)


def modern_get(cl, tid):
    r = cl.modern("tasks/get", {"taskId": tid}, tid, tasks=True)
    return r.json(), cl.replica_of(r)


def legacy_task(cl, tool, arguments):
    rid, r = cl.request("tools/call", {"name": tool, "arguments": arguments, "task": {"ttl": 60000}})
    body = r.json()
    task = ((body or {}).get("result") or {}).get("task") or {}
    if r.status != 200 or "taskId" not in task:
        raise AssertionError(f"{tool} did not become a task: {r.status} {json.dumps(body)[:200]}")
    return task["taskId"], cl.replica_of(r)


def poll(get, pred, timeout):
    """Calls `get()` until `pred(answer)`; returns (answer or None, replicas that answered)."""
    seen, end = [], time.time() + timeout
    while time.time() < end:
        body, replica = get()
        seen.append(replica)
        if pred(body):
            return body, seen
        time.sleep(0.1)
    return None, seen


def status_of(body):
    return ((body or {}).get("result") or {}).get("status")


@check("tasks: a 2026-07-28 task created on one replica is polled through the others to completion (tasks/get inlines the result)")
def task_modern_elsewhere(c):
    cl = Client(c)
    tid, a = modern_task(cl, "slow_compute", {"seconds": 1.5, "label": "modern"})
    working, _ = poll(lambda: modern_get(cl, tid), lambda b: status_of(b) == "working", 1)
    done, seen = poll(lambda: modern_get(cl, tid), lambda b: status_of(b) == "completed", 15)
    text = json.dumps(((done or {}).get("result") or {}).get("result") or {})
    others = sorted({r for r in seen if r != a})
    ok = working is not None and done is not None and "modern: computed" in text and len(others) == c.n - 1
    return ok, f"created on {a}, polled on {sorted(set(seen))}; result {text[:120]}"


@check("tasks: a 2025-11-25 task created on one replica: tasks/get, tasks/result and tasks/list through the others")
def task_legacy_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    tid, a = legacy_task(cl, "slow_compute", {"seconds": 1.5, "label": "legacy"})

    def get():
        _, r = cl.request("tasks/get", {"taskId": tid})
        return r.json(), cl.replica_of(r)

    done, seen = poll(get, lambda b: status_of(b) == "completed", 15)
    cl.steer((a + 1) % c.n)
    _, r = cl.request("tasks/result", {"taskId": tid})
    result = r.json() if not r.sse else next((json.loads(d) for _, d in r.events(10) if d), None)
    result_on = cl.replica_of(r)
    cl.steer((a + 2) % c.n)
    _, l = cl.request("tasks/list", {})
    listed = [t.get("taskId") for t in ((l.json() or {}).get("result") or {}).get("tasks", [])]
    list_on = cl.replica_of(l)
    text = json.dumps((result or {}).get("result") or {})
    ok = (done is not None and len({x for x in seen if x != a}) >= 1 and result_on != a and list_on != a
          and "legacy: computed" in text and tid in listed)
    return ok, (f"created on {a}, polled on {sorted(set(seen))}, tasks/result on {result_on}: {text[:100]}; "
                f"tasks/list on {list_on} lists it: {tid in listed}")


@check("tasks: input sent with tasks/update to another replica reaches the handler waiting on the creating one")
def task_input_elsewhere(c):
    cl = Client(c)
    cl.initialize()  # a session only to steer with pings
    tid, a = modern_task(cl, "confirm_delete", {"filename": "report.txt"})
    asked, _ = poll(lambda: modern_get(cl, tid), lambda b: status_of(b) == "input_required", 10)
    if asked is None:
        return False, "never input_required"
    keys = list((asked["result"].get("inputRequests") or {}).keys())
    b = (a + 1) % c.n
    cl.steer(b)
    u = cl.modern("tasks/update", {"taskId": tid, "inputResponses": {
        k: {"action": "accept", "content": {"confirm": True}} for k in keys}}, tid, tasks=True)
    ub, u_on = u.json(), cl.replica_of(u)
    start = time.time()
    done, _ = poll(lambda: modern_get(cl, tid), lambda b: status_of(b) == "completed", 10)
    took = time.time() - start
    text = json.dumps(((done or {}).get("result") or {}).get("result") or {})
    ok = u_on != a and "error" not in (ub or {}) and "Deleted report.txt" in text
    return ok, f"task on {a}, tasks/update on {u_on} (keys {keys}); completed {took:.2f}s later: {text[:100]}"


@check("tasks: tasks/cancel sent to another replica cancels the task everywhere, in both eras")
def task_cancel_elsewhere(c):
    cl = Client(c)
    cl.initialize()
    out = []
    ok = True
    for era in ("modern", "legacy"):
        if era == "modern":
            tid, a = modern_task(cl, "slow_compute", {"seconds": 30})
        else:
            tid, a = legacy_task(cl, "slow_compute", {"seconds": 30})
        cl.steer((a + 1) % c.n)
        if era == "modern":
            r = cl.modern("tasks/cancel", {"taskId": tid}, tid, tasks=True)
        else:
            _, r = cl.request("tasks/cancel", {"taskId": tid})
        body, on = r.json(), cl.replica_of(r)
        statuses = []
        for _ in range(c.n):
            if era == "modern":
                g, where = modern_get(cl, tid)
            else:
                _, gr = cl.request("tasks/get", {"taskId": tid})
                g, where = gr.json(), cl.replica_of(gr)
            statuses.append((where, status_of(g)))
        good = on != a and "error" not in (body or {}) and all(s == "cancelled" for _, s in statuses)
        ok = ok and good
        out.append(f"{era}: created on {a}, cancelled on {on}, then {statuses}")
    return ok, "; ".join(out)


@check("tasks: another principal's tasks/get is answered as an unknown id on every replica (the example runs without auth: one principal; see tests/redis_tasks.rs for two)")
def task_unknown_everywhere(c):
    cl = Client(c)
    answers = []
    for _ in range(c.n):
        body, where = modern_get(cl, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        answers.append((where, ((body or {}).get("error") or {}).get("code")))
    return sorted(w for w, _ in answers) == list(range(c.n)) and all(code == -32602 for _, code in answers), \
        f"{answers}"


@check(f"fault: killing the replica running a task makes it failed, saying so, within the lease ({TASK_LEASE_SECS} s), in both eras")
def task_replica_killed(c):
    victim = 1
    cl = Client(c)
    cl.initialize()
    if not cl.steer(victim):
        return False, "could not steer to the victim"
    tid_m, a = modern_task(cl, "slow_compute", {"seconds": 120})
    if not cl.steer(victim):
        return False, "could not steer to the victim"
    tid_l, b = legacy_task(cl, "slow_compute", {"seconds": 120})
    if (a, b) != (victim, victim):
        return False, f"tasks created on {a} and {b}, not on {victim}"
    time.sleep(0.5)
    c.stop(f"replica{victim}", signal.SIGKILL)
    killed = time.time()

    def legacy_get():
        _, r = cl.request("tasks/get", {"taskId": tid_l})
        return r.json(), cl.replica_of(r)

    m, _ = poll(lambda: modern_get(cl, tid_m), lambda x: status_of(x) == "failed", TASK_LEASE_SECS + 5)
    m_after = time.time() - killed
    l, _ = poll(legacy_get, lambda x: status_of(x) == "failed", TASK_LEASE_SECS + 5)
    l_after = time.time() - killed
    c.replica_start(victim)
    msg_m = ((m or {}).get("result") or {}).get("statusMessage") or ""
    msg_l = ((l or {}).get("result") or {}).get("statusMessage") or ""
    bound = TASK_LEASE_SECS + 1.0
    ok = (m is not None and l is not None and "stopped before it finished" in msg_m
          and "stopped before it finished" in msg_l and m_after <= bound and l_after <= bound)
    return ok, (f"modern failed {m_after:.2f}s after the kill ({msg_m!r}), legacy {l_after:.2f}s "
                f"({msg_l!r}); bound {bound:.1f}s")


# --- faults -----------------------------------------------------------------------------------

@check("fault: a replica killed with an open GET stream and a pending sampling request: its call fails, the session lives on, the GET resumes elsewhere")
def kill_replica(c):
    victim = 0
    cl = Client(c)
    cl.initialize()
    if not cl.steer(victim):
        return False, "could not steer to the victim"
    g = cl.get()
    if cl.replica_of(g) != victim:
        return False, f"GET on {cl.replica_of(g)}"
    prime, _ = None, None
    g_last = None
    for ev_id, _ in g.events(2):
        g_last = ev_id
        break
    if not cl.steer(victim):
        return False, "could not steer the call to the victim"
    rid, stream, _, ev = sampling_call(cl)
    if cl.replica_of(stream) != victim:
        return False, f"call on {cl.replica_of(stream)}"
    c.stop(f"replica{victim}", signal.SIGKILL)
    ended = all(False for _ in stream.events(5))  # the call's stream ends without a result
    statuses = []
    for _ in range(4):
        _, r = cl.request("tools/list")
        r.body()
        statuses.append(r.status)
    r = cl.get(last_event_id=ev)  # resuming the dead replica's call: replay, then its error
    failed, _ = cl.read_until(r, lambda m: m.get("id") == rid, 10)
    call_failed = failed is not None and "error" in failed
    g2 = cl.get(last_event_id=g_last)
    resumed = (g2.status, cl.replica_of(g2))
    _, t = cl.request("tools/call", {"name": "test_trigger_tool_change", "arguments": {}})
    t.body()
    note, _ = cl.read_until(g2, lambda m: m.get("method") == "notifications/tools/list_changed", 5)
    g2.close()
    c.replica_start(victim)
    ok = ended and all(s == 200 for s in statuses) and call_failed and resumed[0] == 200 and note is not None
    return ok, (f"statuses after the kill {statuses}; resumed call: {json.dumps(failed)[:120]}; "
                f"GET resumed {resumed}, list change {'received' if note else 'missing'}")


@check("fault: Redis stopped for 5 s during a load: session requests get 503 + Retry-After naming the session store, 2026-07-28 calls keep working, all recover without a restart, sessions kept")
def redis_outage(c):
    cl = Client(c)
    cl.initialize()
    stop_at, start_at, end_at = 3.0, 8.0, 14.0
    log = []
    lock = threading.Lock()
    t0 = time.time()

    def legacy():
        me = Client(c)
        me.session = cl.session
        while time.time() - t0 < end_at:
            s = time.time()
            try:
                _, r = me.request("tools/call", {"name": "test_simple_text", "arguments": {}})
                body = r.body()
                row = ("legacy", s - t0, r.status, r.headers.get("retry-after"), body[:300], time.time() - s)
            except Exception as e:
                row = ("legacy", s - t0, 0, None, str(e).encode(), time.time() - s)
            with lock:
                log.append(row)
            time.sleep(0.02)

    def modern():
        me = Client(c)
        while time.time() - t0 < end_at:
            s = time.time()
            try:
                r = me.modern("tools/call", {"name": "test_simple_text", "arguments": {}}, "test_simple_text")
                body = r.body()
                row = ("modern", s - t0, r.status, None, body[:300], time.time() - s)
            except Exception as e:
                row = ("modern", s - t0, 0, None, str(e).encode(), time.time() - s)
            with lock:
                log.append(row)
            time.sleep(0.02)

    threads = [threading.Thread(target=f) for f in (legacy, legacy, modern, modern)]
    for t in threads:
        t.start()
    time.sleep(stop_at)
    c.redis_stop(save=True)
    time.sleep(start_at - stop_at)
    c.redis_start()
    for t in threads:
        t.join(timeout=30)
    leg = [r for r in log if r[0] == "legacy"]
    mod = [r for r in log if r[0] == "modern"]
    refused = [r for r in leg if r[2] == 503]
    named = all(r[3] and b"session store" in r[4] for r in refused)
    others = sorted({r[2] for r in leg} - {200, 503})
    tail = [r[2] for r in leg if r[1] > end_at - 2.5]
    slowest = max(r[5] for r in log)
    ok = (all(r[2] == 200 for r in mod) and refused and named and not others
          and tail and all(s == 200 for s in tail) and slowest < 3.5)
    first_ok_after = min((r[1] for r in leg if r[1] > start_at and r[2] == 200), default=None)
    waits = sorted(r[5] for r in refused) or [0]
    median_503 = waits[len(waits) // 2]
    return ok, (f"legacy {len(leg)} requests, {len(refused)} x 503 (all naming the session store: {named}), "
                f"other statuses {others}; modern {len(mod)} requests, non-200: "
                f"{sum(1 for r in mod if r[2] != 200)}; slowest {slowest:.2f}s, median 503 in {median_503 * 1000:.0f} ms; "
                f"first legacy 200 after the "
                f"restart at +{(first_ok_after or 0) - start_at:.2f}s")


@check("fault: Redis restarted empty: old sessions are 404 on every replica, a new initialize works")
def redis_lost(c):
    cl = Client(c)
    cl.initialize()
    c.redis_stop(save=False)
    c.redis_start(fresh=True)
    time.sleep(1.0)
    statuses = []
    for _ in range(3):
        _, r = cl.request("ping")
        r.body()
        statuses.append(r.status)
    fresh = Client(c)
    fresh.initialize()
    _, r = fresh.request("tools/list")
    r.body()
    return statuses == [404] * 3 and r.status == 200, f"old session {statuses}, new session tools/list {r.status}"


# --- runners through the harness --------------------------------------------------------------

def run_tally(name, argv, env):
    """Runs a runner, echoes its lines, and adds its closing `N passed, M failed` to the total."""
    full = dict(os.environ)
    full.update(env)
    p = subprocess.run(argv, env=full, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    lines = (p.stdout or "").splitlines()
    tally = None
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[1] == "passed," and parts[3] == "failed":
            tally = (int(parts[0]), int(parts[2]))
        else:
            print(f"  [{name}] {line}", flush=True)
    if tally is None:
        report(False, f"{name}: no tally (exit {p.returncode})", (p.stderr or "")[-800:])
        return
    results["passed"] += tally[0]
    results["failed"] += tally[1]
    print(f"{name}: {tally[0]} passed, {tally[1]} failed", flush=True)
    if p.returncode != 0 and tally[1] == 0:
        report(False, f"{name}: exit {p.returncode}")


def main_check():
    for tool in ("redis-server", "redis-cli", "nginx"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            report(False, f"setup: {tool} is not installed")
            return
    for path in (BIN, EXAMPLE):
        if not os.access(path, os.X_OK):
            report(False, f"setup: {path} is missing (cargo build --release --features redis --bin vouch-mcp --example conformance)")
            return

    ex = Cluster("example", env={"MCP_TASK_LEASE_SECS": str(TASK_LEASE_SECS)})
    try:
        ex.start()
        print(f"cluster: 3 replicas of examples/conformance behind nginx at {ex.url}, Redis :{ex.redis_port}", flush=True)
        for chk in (session_everywhere, answer_elsewhere, cancel_elsewhere, notifications_elsewhere,
                    resume_elsewhere, reconnection_elsewhere, request_state_elsewhere, listen_elsewhere,
                    delete_everywhere, delete_waits_for_confirmations):
            chk(ex)
        for chk in (task_modern_elsewhere, task_legacy_elsewhere, task_input_elsewhere,
                    task_cancel_elsewhere, task_unknown_everywhere):
            chk(ex)
        # The task kill first: `steer` predicts round-robin order, which nginx changes for a
        # while after a replica died (it skips a failed upstream), so each kill needs the
        # replica before its victim alive and unmarked.
        for chk in (task_replica_killed, kill_replica, unique_event_ids):
            chk(ex)
        if not os.environ.get("CLUSTER_SKIP_RUNNERS"):
            run_tally("conformance", ["bash", "tests/conformance/run.sh"],
                      {"CONFORMANCE_URL": f"http://127.0.0.1:{ex.nginx_port}/mcp"})
        redis_outage(ex)
        redis_lost(ex)
    finally:
        ex.close()

    capped = Cluster("binary", env={"MCP_MAX_SESSIONS": "3", "MCP_SESSION_IDLE_SECS": "2"}, prefix="capped:")
    try:
        capped.start()
        cap_everywhere(capped)
        # Leave the capped sessions to expire, so the expiry check has room.
        time.sleep(2.5)
        expiry_everywhere(capped)
    finally:
        capped.close()

    if os.environ.get("CLUSTER_SKIP_RUNNERS"):
        return
    binary = Cluster("binary")
    try:
        binary.start()
        print(f"cluster: 3 replicas of vouch-mcp behind nginx at {binary.url}, issuer :{binary.issuer_port}", flush=True)
        combined = os.path.join(binary.dir, "replicas.log")
        follower = subprocess.Popen(["tail", "-q", "-n", "+1", "-F"] +
                                    [os.path.join(binary.dir, f"replica{i}.log") for i in range(binary.n)],
                                    stdout=open(combined, "ab"), stderr=subprocess.DEVNULL)
        try:
            run_tally("interop", ["bash", "tests/interop/run.sh"], {
                "INTEROP_MCP_URL": binary.url,
                "INTEROP_ISSUER_BASE": f"http://127.0.0.1:{binary.issuer_port}",
                "INTEROP_BANNER": os.path.join(binary.dir, "issuer.out"),
                "INTEROP_SERVER_LOG": combined,
            })
        finally:
            follower.terminate()
            follower.wait(timeout=5)
    finally:
        binary.close()


def main_serve(path, kind, memory, n):
    c = Cluster(kind, replicas=n, memory=memory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        c.start()
        with open(path + ".tmp", "w") as f:
            json.dump(c.describe(), f)
        os.rename(path + ".tmp", path)
        stop.wait(3600)
    finally:
        c.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["serve"]:
        kind = args[args.index("--kind") + 1] if "--kind" in args else "binary"
        n = int(args[args.index("--replicas") + 1]) if "--replicas" in args else 3
        main_serve(args[1], kind, "--memory" in args, n)
        sys.exit(0)
    try:
        main_check()
    except Exception as e:
        report(False, "harness", f"{type(e).__name__}: {e}")
    print(f"{results['passed']} passed, {results['failed']} failed", flush=True)
    sys.exit(0 if results["failed"] == 0 else 1)
