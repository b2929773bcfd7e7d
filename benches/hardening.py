#!/usr/bin/env python3
"""The attack driver of benches/hardening.sh: reproduces each hardening attack against the release
binary (`--dev`, loopback, a fresh process per check) and checks each target.

    python3 benches/hardening.py [--short] [--only NAME[,NAME]] [--before BIN] [--bin BIN]

Prints one row per check (attack, measured, target, pass) and exits 1 when a target is missed.
`--before BIN` also runs the attacks that apply to an older binary and prints its figures (no
pass/fail). Standard library only; every load is bounded in count and time; every process it
starts is stopped by PID, also on SIGINT/SIGTERM.
"""

import argparse
import base64
import fcntl
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1024 * 1024
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
BOTH = "application/json, text/event-stream"
CHILDREN = []  # Popen objects still running
TMP = tempfile.mkdtemp(prefix="hardening-")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Processes.
# ----------------------------------------------------------------------------------------------


def stop_all():
    for p in list(CHILDREN):
        stop(p)


def stop(p):
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if p in CHILDREN:
        CHILDREN.remove(p)


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


class Server:
    """A `vouch-mcp --dev` process on a free loopback port (PORT=0, read back from the banner)."""

    def __init__(self, binary, env=None, prefix=(), stderr=None, log_level="warn", name="server"):
        self.name = name
        full = dict(os.environ)
        full.update({"PORT": "0", "VOUCH_MCP_LOG": log_level})
        full.update(env or {})
        self.stdout_path = os.path.join(TMP, f"{name}.{time.time_ns()}.stdout")
        self.stderr_path = None
        out = open(self.stdout_path, "wb")
        if stderr is None:
            self.stderr_path = self.stdout_path.replace(".stdout", ".stderr")
            stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [*prefix, binary, "--dev"], stdout=out, stderr=stderr, env=full, stdin=subprocess.DEVNULL
        )
        CHILDREN.append(self.proc)
        out.close()
        if hasattr(stderr, "close"):
            stderr.close()
        self.pid = self.proc.pid
        deadline = time.time() + 15
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name}: exited with {self.proc.returncode}")
            with open(self.stdout_path, "rb") as f:
                m = re.search(rb"Issuer:\s+http://127\.0\.0\.1:(\d+)/dev", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError(f"{name}: no banner in 15 s")
        # The JWKS of the dev issuer loads from the server itself; wait for a verified call.
        self.token = self.mint("hardening-user")
        for _ in range(100):
            if call_whoami(self.port, self.token, timeout=2)[0] == 200:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{name}: whoami never answered 200")

    def mint(self, sub, hardware_verified=True, ttl=3600):
        body = json.dumps(
            {"sub": sub, "email": f"{sub}@example.com", "hardware_verified": hardware_verified, "ttl_secs": ttl}
        ).encode()
        st, _, b = http(self.port, "POST", "/dev/token", {"Content-Type": "application/json"}, body)
        if st != 200:
            raise RuntimeError(f"mint: {st} {b[:200]!r}")
        return json.loads(b)["access_token"]

    def rss_kib(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except FileNotFoundError:
            return 0
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop(self.proc)


class Sampler:
    """Samples a server's RSS every `every` seconds on a thread; keeps the peak and the samples."""

    def __init__(self, server, every=0.05):
        self.server, self.every = server, every
        self.samples, self.peak = [], 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            r = self.server.rss_kib()
            self.samples.append((time.time(), r))
            self.peak = max(self.peak, r)
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


# ----------------------------------------------------------------------------------------------
# HTTP over raw sockets: every byte is the test's.
# ----------------------------------------------------------------------------------------------


def head_bytes(port, method, path, headers, length=None, chunked=False, close=True):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_response(data):
    """(status, headers dict lowercased, body) of one complete response; chunked bodies decoded."""
    split = data.find(b"\r\n\r\n")
    if split < 0:
        return 0, {}, data
    head = data[:split].decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split(" ")[1])
    except (IndexError, ValueError):
        return 0, {}, data
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = data[split + 4 :]
    if "chunked" in headers.get("transfer-encoding", ""):
        out, rest = b"", body
        while True:
            eol = rest.find(b"\r\n")
            if eol < 0:
                break
            size = int(rest[:eol].split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out += rest[eol + 2 : eol + 2 + size]
            rest = rest[eol + 2 + size + 2 :]
        body = out
    return status, headers, body


def read_all(sock, deadline):
    data = b""
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("response not complete in time")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def http(port, method, path, headers, body=b"", timeout=10):
    """One request on its own connection (Connection: close); the whole response."""
    deadline = time.time() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        need_len = body or method in ("POST", "PUT")
        s.sendall(head_bytes(port, method, path, headers, len(body) if need_len else None) + body)
        return parse_response(read_all(s, deadline))


def modern_request(token, method, params, rid=1, name=None):
    params = dict(params)
    params["_meta"] = META
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": BOTH,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": method,
    }
    if name:
        headers["Mcp-Name"] = name
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, separators=(",", ":")).encode()
    return headers, body


def call_whoami(port, token, timeout=10):
    h, b = modern_request(token, "tools/call", {"name": "whoami", "arguments": {}}, name="whoami")
    return http(port, "POST", "/mcp", h, b, timeout)


def legacy_headers(token, session=None):
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": BOTH}
    if session:
        h["Mcp-Session-Id"] = session
    return h


def initialize(port, token, version="2025-11-25"):
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "hardening", "version": "1"}},
        }
    ).encode()
    return http(port, "POST", "/mcp", legacy_headers(token), body)


def open_stream(port, method, headers, body=b"", timeout=5):
    """Sends a request and reads only the response head; returns (socket, status, headers, rest)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(head_bytes(port, method, "/mcp", headers, len(body) if method == "POST" else None, close=False) + body)
    deadline = time.time() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        s.settimeout(max(0.01, deadline - time.time()))
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    status, headers, rest = parse_response(data)
    return s, status, headers, rest


def listen_stream(port, token, rid):
    h, b = modern_request(token, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}, rid=rid)
    return open_stream(port, "POST", h, b)


def get_stream(port, token, session):
    return open_stream(port, "GET", {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "Mcp-Session-Id": session})


def forge(token):
    """The token with one bit of its signature flipped: the right kid, a bad signature."""
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[40] ^= 1
    return f"{head}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


def jsonrpc_limit(body):
    try:
        v = json.loads(body)
    except ValueError:
        return None
    err = v.get("error") if isinstance(v, dict) else None
    if not err:
        return None
    return (err.get("data") or {}).get("limit") or err.get("message")


# ----------------------------------------------------------------------------------------------
# wrk.
# ----------------------------------------------------------------------------------------------


def wrk(args, env=None, timeout=None):
    full = dict(os.environ)
    full.update(env or {})
    out = subprocess.run(["wrk", *args], env=full, capture_output=True, text=True, timeout=timeout)
    return out.stdout + out.stderr


def wrk_rps(text):
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return float(m.group(1)) if m else 0.0


def wrk_requests(text):
    m = re.search(r"(\d+) requests in", text)
    return int(m.group(1)) if m else 0


def wrk_socket_errors(text):
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return sum(map(int, m.groups())) if m else 0


# ----------------------------------------------------------------------------------------------
# The checks. Each returns rows: (attack, measured, target, ok).
# ----------------------------------------------------------------------------------------------


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def padded_whoami(size):
    """A 2026-07-28 whoami body of exactly `size` bytes (JSON whitespace at the end)."""
    _, body = modern_request("x", "tools/call", {"name": "whoami", "arguments": {}}, name="whoami")
    return body + b" " * (size - len(body))


def check_slow_body(cfg):
    """16 authenticated connections send 300 KB of bodies one byte per TCP segment: half with
    Content-Length, half chunked with one-byte chunks. RSS must stay under idle + 64 MiB."""
    srv = Server(cfg.bin, name="slow-body")
    try:
        conns, total = 16, 300_000
        per = total // conns
        idle = srv.rss_kib()
        headers, _ = modern_request(srv.token, "tools/call", {"name": "whoami"}, name="whoami")
        body = padded_whoami(per)
        socks = []
        for i in range(conns):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(head_bytes(srv.port, "POST", "/mcp", headers, len(body), chunked=i % 2 == 1))
            socks.append(s)
        time.sleep(0.1)
        t0 = time.time()
        with Sampler(srv, 0.1) as samp:
            for pos in range(per):
                b = body[pos : pos + 1]
                for i, s in enumerate(socks):
                    s.send(b"1\r\n" + b + b"\r\n" if i % 2 else b)
                if pos % 4 == 0:
                    time.sleep(0.0005)
            for i, s in enumerate(socks):
                if i % 2:
                    s.sendall(b"0\r\n\r\n")
            statuses = [parse_response(read_all(s, time.time() + 30))[0] for s in socks]
        for s in socks:
            s.close()
        secs = time.time() - t0
        grow = samp.peak - idle
        served = statuses.count(200)
        ok = grow < 64 * 1024 and served == conns and srv.alive()
        return [
            (
                f"{total // 1000} KB in 1-byte segments over {conns} connections (8 Content-Length, 8 chunked), {secs:.0f} s",
                f"peak RSS idle {mib(idle)} + {mib(grow)}; {served}/{conns} bodies served 200",
                "< idle + 64 MiB, all served",
                ok,
            )
        ]
    finally:
        srv.stop()


def big_request(srv, kind, size, session=None):
    """(headers, body) of a ~`size`-byte request of `kind`."""
    if kind == "batch":
        one = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
        n = size // (len(one) + 6)
        body = ("[" + ",".join(one % i for i in range(n)) + "]").encode()
        h = legacy_headers(srv.token, session)
        h["MCP-Protocol-Version"] = "2025-03-26"
        return h, body
    if kind == "string":
        args = {"blob": "x" * (size - 400)}
    else:  # a numeric array: the parsed form is many times the text
        args = {"a": [1] * ((size - 400) // 2)}
    h, body = modern_request(srv.token, "tools/call", {"name": "whoami", "arguments": args}, name="whoami")
    return h, body


def send_and_read(port, headers, body, timeout=60, piece=None, pause=0.0):
    """Sends the body on a thread (in `piece`-byte writes `pause` s apart when given) while
    reading the response, so an early refusal is still read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    payload = head_bytes(port, "POST", "/mcp", headers, len(body)) + body

    def push():
        try:
            step = piece or len(payload)
            for at in range(0, len(payload), step):
                s.sendall(payload[at : at + step])
                if pause:
                    time.sleep(pause)
        except OSError:
            pass

    t = threading.Thread(target=push, daemon=True)
    t.start()
    try:
        data = read_all(s, time.time() + timeout)
    except (TimeoutError, OSError):
        data = b""
    t.join(timeout=5)
    s.close()
    return parse_response(data)


def check_big_bodies(cfg):
    """30 concurrent 4 MiB requests (10 batches of calls on a 2025-03-26 session, 10 with a 4 MB
    string argument, 10 with a 2-million-element array argument). RSS must stay under idle +
    2 x MCP_MAX_INFLIGHT_BYTES and the requests beyond the budget get 503 with Retry-After. Then
    RSS must come back within 32 MiB of idle."""
    budget = 64 * MIB
    srv = Server(cfg.bin, env=cfg.alloc_env, name="big-bodies")
    try:
        st, h, _ = initialize(srv.port, srv.token, "2025-03-26")
        session = h.get("mcp-session-id")
        assert st == 200 and session, st
        size = 4 * MIB - 1024
        reqs = []
        for i in range(30):
            kind = ("batch", "string", "array")[i % 3]
            reqs.append((kind, *big_request(srv, kind, size, session)))
        idle = srv.rss_kib()
        rows = []
        # Round 1 at loopback speed: each request gets its turn within the 500 ms wait, so
        # this is the memory peak of 30 bodies processed as fast as the budget lets them.
        # Round 2 at about 2 MB/s per client: the budget's holders keep it for about 2 s,
        # longer than the others may wait, so they are refused.
        for label, piece, pause in (("at loopback speed", None, 0.0), ("each sent at ~2 MB/s", 64 * 1024, 0.03)):
            results = [None] * len(reqs)
            barrier = threading.Barrier(len(reqs))

            def one(i):
                kind, hh, bb = reqs[i]
                barrier.wait()
                results[i] = (kind, send_and_read(srv.port, hh, bb, piece=piece, pause=pause))

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
            with Sampler(srv, 0.02) as samp:
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=90)
            grow = samp.peak - idle
            refused = [r for r in results if r and r[1][0] == 503]
            with_retry = [r for r in refused if r[1][1].get("retry-after", "").isdigit()]
            by_status = {}
            for r in results:
                st = r[1][0] if r else 0
                by_status[st] = by_status.get(st, 0) + 1
            unexpected = sum(n for st, n in by_status.items() if st not in (200, 400, 413, 503))
            ok = grow < 2 * budget // 1024 and len(with_retry) == len(refused) and unexpected == 0
            if pause:
                ok = ok and len(refused) >= 1
            rows.append(
                (
                    f"30 concurrent 4 MiB requests (10 batches, 10 string args, 10 array args), {label}",
                    f"peak RSS idle {mib(idle)} + {mib(grow)}; statuses {dict(sorted(by_status.items()))}; "
                    f"{len(refused)} got 503, {len(with_retry)} of them with Retry-After",
                    "< idle + 128 MiB (2 x budget); every 503 with Retry-After" + ("; some 503" if pause else ""),
                    ok,
                )
            )
        # Back to idle: wait for the allocator (and the sweepers) to give pages back.
        time.sleep(3)
        after = srv.rss_kib()
        back = after - idle
        rows.append(
            (
                "RSS after that load (3 s later)" + (f" [{cfg.alloc_label}]" if cfg.alloc_label else ""),
                f"{mib(after)} = idle + {mib(back)}",
                "< idle + 32 MiB",
                back < 32 * 1024,
            )
        )
        return rows
    finally:
        srv.stop()


def cpu_seconds(pid):
    """utime + stime of process `pid` (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_member_flood(cfg):
    """Bodies of about 1.2 MB made of 110,000 distinct member names, at the top level (where the
    JSON-RPC members are picked out) and inside `params`: the duplicate-name check must cost
    about what parsing costs. A top-level list searched per member once took 11 s of CPU for
    the first of these."""
    n = 110_000
    names = ",".join(f'"a{i}":0' for i in range(n))
    bodies = (
        ("top-level members", '{"jsonrpc":"2.0","id":1,"method":"ping",' + names + "}"),
        ("members of params", '{"jsonrpc":"2.0","id":1,"method":"ping","params":{' + names + "}}"),
    )
    srv = Server(cfg.bin, name="member-flood")
    rows = []
    try:
        headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        for label, body in bodies:
            cpu0, t0 = cpu_seconds(srv.pid), time.time()
            st, _, _ = http(srv.port, "POST", "/mcp", headers, body.encode(), timeout=60)
            wall, cpu = time.time() - t0, cpu_seconds(srv.pid) - cpu0
            rows.append((
                f"one {len(body) / 1e6:.1f} MB body of {n:,} distinct {label}",
                f"answered {st} in {wall * 1000:.0f} ms; server CPU {cpu * 1000:.0f} ms",
                "an answer (not 5xx) within 1 s of server CPU",
                0 < st < 500 and cpu < 1.0,
            ))
        return rows
    finally:
        srv.stop()


class WrkLua:
    """A small wrk script written to the temp directory."""

    def __init__(self, name, text):
        self.path = os.path.join(TMP, name)
        with open(self.path, "w") as f:
            f.write(text)


STATUS_LUA = r"""
-- POSTs BODY with TOKEN (2026-07-28 tools/call whoami) and counts the statuses it gets back.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
local body = os.getenv("BODY")
local token = os.getenv("TOKEN")
function request()
  return wrk.format("POST", "/mcp", {
    ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream", ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = "tools/call", ["Mcp-Name"] = "whoami"}, body)
end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do all[k] = (all[k] or 0) + v end
  end
  for k, v in pairs(all) do io.write(string.format("status %d %d\n", k, v)) end
end
"""


def check_fairness(cfg):
    """Principal A at its session cap (100) and stream cap (32 GET streams) and flooding calls
    while principal B initializes, calls, opens a GET stream and calls at 2026-07-28: B gets
    full service, A gets 429 with Retry-After and a JSON-RPC error naming the limit.

    The guide's tools finish within one poll of their task, so a principal's calls never
    overlap long enough to reach MCP_MAX_CALLS_PER_PRINCIPAL through this binary (the flood's
    counts show it); tests/fairness.rs holds calls in flight with a tool that waits. The guide
    binary does not offer `subscriptions/listen`; its streams are the sessions' GET streams."""
    srv = Server(cfg.bin, name="fairness")
    held = []
    try:
        a, b = srv.mint("principal-a"), srv.mint("principal-b")
        sessions = []
        for _ in range(100):
            st, h, body = initialize(srv.port, a)
            assert st == 200, (st, body[:200])
            sessions.append(h["mcp-session-id"])
        st, h, body = initialize(srv.port, a)
        a_session = (st, h.get("retry-after"), jsonrpc_limit(body))
        for sid in sessions[:32]:
            s, st, _, _ = get_stream(srv.port, a, sid)
            assert st == 200, st
            held.append(s)
        s, st, h, rest = get_stream(srv.port, a, sessions[32])
        s.settimeout(2)
        try:
            rest += read_all(s, time.time() + 2)
        except (TimeoutError, OSError):
            pass
        s.close()
        a_stream = (st, h.get("retry-after"), jsonrpc_limit(parse_response(b"HTTP/1.1 0 x\r\n\r\n" + rest)[2]) if "chunked" not in h.get("transfer-encoding", "") else "?")
        # A floods calls while B is served.
        lua = WrkLua("status.lua", STATUS_LUA)
        _, body = modern_request(a, "tools/call", {"name": "whoami", "arguments": {}}, name="whoami")
        out = {}

        def flood():
            out["text"] = wrk(
                ["-t1", "-c32", "-d4s", "-s", lua.path, f"http://127.0.0.1:{srv.port}/mcp"],
                env={"BODY": body.decode(), "TOKEN": a},
                timeout=30,
            )

        ft = threading.Thread(target=flood)
        ft.start()
        time.sleep(1)
        b_ok, b_worst, b_fail = 0, 0.0, ""
        for _ in range(5):
            t0 = time.time()
            st, h, body_b = initialize(srv.port, b)
            sid = h.get("mcp-session-id")
            steps = [("initialize", st == 200 and bool(sid))]
            call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}).encode()
            st2, _, body2 = http(srv.port, "POST", "/mcp", legacy_headers(b, sid), call)
            steps.append(("session call", st2 == 200 and b"principal-b" in body2))
            s, st3, h3, _ = get_stream(srv.port, b, sid)
            steps.append(("GET stream", st3 == 200 and h3.get("content-type") == "text/event-stream"))
            s.close()
            st4, _, body4 = call_whoami(srv.port, b)
            steps.append(("2026 whoami", st4 == 200 and b"principal-b" in body4))
            st6, _, _ = http(srv.port, "DELETE", "/mcp", {"Authorization": f"Bearer {b}", "Mcp-Session-Id": sid})
            steps.append(("DELETE", st6 == 204))
            b_worst = max(b_worst, time.time() - t0)
            failed = [n for n, good in steps if not good]
            b_ok += not failed
            b_fail = b_fail or ",".join(failed)
        ft.join()
        counts = dict((int(k), int(v)) for k, v in re.findall(r"status (\d+) (\d+)", out["text"]))
        ok = (
            a_session[0] == 429
            and a_session[1]
            and "MCP_MAX_SESSIONS_PER_PRINCIPAL" in (a_session[2] or "")
            and a_stream[0] == 429
            and a_stream[1]
            and set(counts) <= {200, 429}
            and b_ok == 5
        )
        return [
            (
                "fairness: A holds 100 sessions + 32 GET streams and floods calls (wrk -c32 4 s); B served meanwhile",
                f"A: 101st initialize {a_session[0]} (Retry-After {a_session[1]}, {a_session[2]!r}), "
                f"33rd GET {a_stream[0]} (Retry-After {a_stream[1]}, {a_stream[2]!r}), call flood statuses {counts}; "
                f"B: {b_ok}/5 rounds of initialize+session call+GET stream+2026 whoami+DELETE all served"
                + (f" (failed: {b_fail})" if b_fail else "")
                + f", slowest round {b_worst * 1000:.0f} ms",
                "A 429 + Retry-After at each cap; B 5/5",
                ok,
            )
        ]
    finally:
        for s in held:
            s.close()
        srv.stop()


def raise_own_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def check_fd_limit(cfg, binary=None, label=None):
    """The server under `prlimit --nofile=1024:1024`; 1,100 idle connections held open; a
    legitimate request must be served within 1 s."""
    raise_own_nofile(4096)
    srv = Server(binary or cfg.bin, prefix=("prlimit", "--nofile=1024:1024"), name="fd-limit")
    idle = []
    try:
        # Each connect completes its handshake (the kernel does that, accepted or not), so all
        # 1,100 are open before the legitimate client comes.
        connected = 0
        for _ in range(1100):
            s = socket.socket()
            s.settimeout(3)
            try:
                s.connect(("127.0.0.1", srv.port))
                connected += 1
            except OSError:
                pass
            idle.append(s)
        time.sleep(2)
        server_fds = len(os.listdir(f"/proc/{srv.pid}/fd"))
        worst, served = 0.0, 0
        for _ in range(5):
            t0 = time.time()
            try:
                st, _, _ = call_whoami(srv.port, srv.token, timeout=5)
            except (OSError, TimeoutError):
                st = 0
            worst = max(worst, time.time() - t0)
            served += st == 200
        ok = served == 5 and worst < 1.0
        measured = (
            f"{connected} idle sockets connected, server holds {server_fds} descriptors; "
            f"{served}/5 whoami served, slowest {worst * 1000:.0f} ms" + ("" if served == 5 else " (5 s client timeout)")
        )
        return [
            (
                (label or "") + "1,100 idle sockets at nofile 1024:1024, then a legitimate request",
                measured,
                "served within 1 s",
                ok,
            )
        ]
    finally:
        for s in idle:
            s.close()
        srv.stop()


def server_side_established(server_port, client_port):
    """True while the server's end of the connection from `client_port` is ESTABLISHED, read
    from /proc/net/tcp. A server that closes with its response unsent leaves its socket in
    FIN-WAIT-1 and the client's end still looks open, so the server's end is the one to watch."""
    want_local = f":{server_port:04X}"
    want_remote = f":{client_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
                return fields[3] == "01"
    return False


def check_write_timeout(cfg, binary=None, label=None):
    """A client with a 4 KiB receive buffer asks for a ~3.5 MB response (a long JSON-RPC id,
    echoed back) and never reads: the server must close the connection within
    MCP_WRITE_TIMEOUT_SECS (2) plus slack."""
    timeout_secs, slack, give_up = 2, 3, 15
    srv = Server(binary or cfg.bin, env={"MCP_WRITE_TIMEOUT_SECS": str(timeout_secs)}, name="write-timeout")
    try:
        h, body = modern_request(srv.token, "tools/call", {"name": "whoami", "arguments": {}}, rid="x" * 3_500_000, name="whoami")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(head_bytes(srv.port, "POST", "/mcp", h, len(body)) + body)
        sent = time.time()
        closed_after = None
        client_port = s.getsockname()[1]
        while time.time() - sent < give_up:
            if not server_side_established(srv.port, client_port):
                closed_after = time.time() - sent
                break
            time.sleep(0.05)
        s.close()
        if closed_after is None:
            measured = f"still open {give_up} s after the request"
        else:
            measured = f"connection closed {closed_after:.1f} s after the request"
        ok = closed_after is not None and closed_after <= timeout_secs + slack and srv.alive()
        # The server serves others meanwhile and after.
        ok = ok and call_whoami(srv.port, srv.token, timeout=2)[0] == 200
        return [
            (
                (label or "") + "a client never reads a 3.5 MB response (MCP_WRITE_TIMEOUT_SECS=2)",
                measured,
                f"closed within {timeout_secs} + {slack} s",
                ok,
            )
        ]
    finally:
        srv.stop()


def check_stderr_pipe(cfg, binary=None, label=None):
    """stderr is a pipe nobody reads (64 KiB fill it); 4 s of logged requests (info level, one
    line each) must all be answered, and /mcp must still answer within 1 s after."""
    r, w = os.pipe()
    srv = Server(binary or cfg.bin, stderr=w, log_level="info", name="stderr-pipe")
    os.close(w)
    try:
        lua = WrkLua("status.lua", STATUS_LUA)
        _, body = modern_request(srv.token, "tools/call", {"name": "whoami", "arguments": {}}, name="whoami")
        text = wrk(
            ["-t1", "-c8", "-d4s", "--timeout", "2s", "-s", lua.path, f"http://127.0.0.1:{srv.port}/mcp"],
            env={"BODY": body.decode(), "TOKEN": srv.token},
            timeout=30,
        )
        served = dict((int(k), int(v)) for k, v in re.findall(r"status (\d+) (\d+)", text)).get(200, 0)
        errors = wrk_socket_errors(text)
        pending = struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
        t0 = time.time()
        try:
            st = call_whoami(srv.port, srv.token, timeout=3)[0]
        except (OSError, TimeoutError):
            st = 0
        after = time.time() - t0
        ok = served > 1000 and errors == 0 and st == 200 and after < 1 and pending >= 65536 - 16384
        return [
            (
                (label or "") + "stderr a pipe nobody reads (info log, wrk -c8 4 s)",
                f"{served} requests answered 200, {errors} socket errors/timeouts; pipe holds {pending} unread bytes; "
                f"next whoami {st} in {after * 1000:.0f} ms",
                "/mcp keeps answering",
                ok,
            )
        ]
    finally:
        os.close(r)
        srv.stop()


PATH_FLOOD_LUA = r"""
-- Alternates a POST /mcp?q=<60 KB> and a GET /<60 KB>, neither with a token.
local long = string.rep("a", 61440)
local n = 0
function request()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("POST", "/mcp?q=" .. long, {["Content-Type"] = "application/json"}, "{}")
  end
  return wrk.format("GET", "/" .. long)
end
"""


def check_log_flood(cfg, binary=None, label=None):
    """60 KB paths without a token for 10 s (wrk -c8) with the info log to a file: at most 1 MB."""
    srv = Server(binary or cfg.bin, log_level="info", name="log-flood")
    try:
        lua = WrkLua("pathflood.lua", PATH_FLOOD_LUA)
        start = os.path.getsize(srv.stderr_path)
        text = wrk(["-t1", "-c8", "-d10s", "-s", lua.path, f"http://127.0.0.1:{srv.port}/mcp"], timeout=40)
        time.sleep(1.5)
        written = os.path.getsize(srv.stderr_path) - start
        with open(srv.stderr_path, "rb") as f:
            f.seek(start)
            longest = max((len(line) for line in f), default=0)
        ok = written <= 1_000_000 and srv.alive()
        return [
            (
                (label or "") + "60 KB-path flood without a token, 10 s (wrk -c8)",
                f"{wrk_requests(text)} requests; {written:,} bytes of log; longest line {longest} bytes",
                "<= 1 MB of log",
                ok,
            )
        ]
    finally:
        srv.stop()


def check_signature_flood(cfg):
    """A legitimate client with a cached token (wrk -t1 -c8) alone, then during a c=64 flood of
    distinct forged tokens (the right kid, a bad signature): it keeps >= 50% of its solo rate."""
    secs = 5 if cfg.short else 10
    srv = Server(cfg.bin, name="sig-flood")
    try:
        good = srv.token
        bad = forge(good)
        assert call_whoami(srv.port, bad)[0] == 401
        tokens = os.path.join(TMP, "tokens.txt")
        forged = os.path.join(TMP, "forged.txt")
        with open(tokens, "w") as f:
            f.write(good + "\n")
        with open(forged, "w") as f:
            f.write(bad + "\n")
        _, body = modern_request(good, "tools/call", {"name": "whoami", "arguments": {}}, name="whoami")
        env = {"BODY": body.decode(), "TOKENS": tokens, "FORGED": forged, "DISTINCT": "1"}
        url = f"http://127.0.0.1:{srv.port}/mcp"
        legit = ["-t1", "-c8", f"-d{secs}s", "-s", os.path.join(HERE, "token_pool.lua"), url]
        solo = wrk_rps(wrk(legit, env, timeout=secs + 30))
        out = {}

        def flood():
            out["text"] = wrk(
                ["-t1", "-c64", f"-d{secs + 2}s", "-s", os.path.join(HERE, "flood.lua"), url], env, timeout=secs + 30
            )

        ft = threading.Thread(target=flood)
        ft.start()
        time.sleep(1)
        under = wrk_rps(wrk(legit, env, timeout=secs + 30))
        ft.join()
        share = under / solo if solo else 0
        return [
            (
                f"bad-signature flood c=64 (distinct forged tokens) vs a legitimate client, {secs} s",
                f"legit alone {solo:,.0f} req/s, under flood {under:,.0f} req/s ({share:.0%}); flood {wrk_rps(out['text']):,.0f} req/s",
                ">= 50% of alone",
                share >= 0.5,
            )
        ]
    finally:
        srv.stop()


def check_streams(cfg):
    """One principal opens GET streams on its sessions: 32 are held and every further attempt
    gets 429 (15,000 attempts; 2,000 short); with MCP_MAX_STREAMS=64, once two principals hold
    64 a third gets 503; RSS stays bounded. (The guide binary does not offer
    `subscriptions/listen`, which counts against the same caps.)"""
    attempts = 2000 if cfg.short else 15000
    raise_own_nofile(4096)
    srv = Server(cfg.bin, env={"MCP_MAX_STREAMS": "64"}, name="streams")
    held = []
    try:
        def sessions_of(token, n):
            out = []
            for _ in range(n):
                st, h, _ = initialize(srv.port, token)
                assert st == 200, st
                out.append(h["mcp-session-id"])
            return out

        a = srv.mint("streamer-a")
        a_sessions = sessions_of(a, 100)
        b = srv.mint("streamer-b")
        b_sessions = sessions_of(b, 32)
        c = srv.mint("streamer-c")
        c_session = sessions_of(c, 1)[0]
        idle = srv.rss_kib()
        counts = {}
        t0 = time.time()
        with Sampler(srv, 0.2) as samp:
            for i in range(attempts):
                # The first 32 attempts open streams; then every session without one is tried in turn.
                sid = a_sessions[i] if i < 32 else a_sessions[32 + (i - 32) % 68]
                s, st, h, _ = get_stream(srv.port, a, sid)
                counts[st] = counts.get(st, 0) + 1
                if st == 200:
                    held.append(s)
                else:
                    if st == 429 and not h.get("retry-after"):
                        counts["429 without Retry-After"] = counts.get("429 without Retry-After", 0) + 1
                    s.close()
            b_ok = 0
            for sid in b_sessions:
                s, st, _, _ = get_stream(srv.port, b, sid)
                held.append(s)
                b_ok += st == 200
            s, st_c, h_c, _ = get_stream(srv.port, c, c_session)
            s.close()
        grow = samp.peak - idle
        secs = time.time() - t0
        ok = (
            counts.get(200) == 32
            and counts.get(429) == attempts - 32
            and b_ok == 32
            and st_c == 503
            and bool(h_c.get("retry-after"))
            and grow < 32 * 1024
        )
        return [
            (
                f"{attempts:,} GET-stream attempts from one principal ({secs:.0f} s), then B 32, then C (MCP_MAX_STREAMS=64)",
                f"A: {counts}; B: {b_ok}/32 opened; C: {st_c} (Retry-After {h_c.get('retry-after')}); peak RSS idle {mib(idle)} + {mib(grow)}",
                "A 32 then 429; C 503; RSS < idle + 32 MiB",
                ok,
            )
        ]
    finally:
        for s in held:
            s.close()
        srv.stop()


def check_soak(cfg):
    """3,000,000 mixed requests (100,000 short) through wrk with benches/soak.lua: both
    eras, initialize/calls/batches/DELETE, bad and expired tokens, unknown sessions, each checked
    against its expected status. RSS sampled every 10 s (2 s short) must stay flat within 10%
    after warm-up, with 0 unexpected answers and 0 socket errors."""
    target = 100_000 if cfg.short else 3_000_000
    every = 1 if cfg.short else 10
    threads = 8
    srv = Server(cfg.bin, name="soak")
    try:
        tokens = [srv.mint(f"soak-{i}", hardware_verified=i % 2 == 0) for i in range(16)]
        path = os.path.join(TMP, "soak-tokens.txt")
        with open(path, "w") as f:
            f.write("\n".join(tokens) + "\n")
        expired = srv.mint("soak-expired", ttl=-120)
        env = {"TOKENS": path, "EXPIRED": expired, "QUOTA": str(target // threads + 1)}
        done_dir = os.path.join(TMP, "soak-done")
        os.makedirs(done_dir, exist_ok=True)
        env["DONE_DIR"] = done_dir
        limit = 240 if cfg.short else 900
        t0 = time.time()
        with Sampler(srv, every) as samp:
            out_path = os.path.join(TMP, "soak.out")
            with open(out_path, "w") as out:
                p = subprocess.Popen(
                    ["wrk", f"-t{threads}", f"-c{threads}", f"-d{limit}s", "--timeout", "5s", "-s",
                     os.path.join(HERE, "soak.lua"), f"http://127.0.0.1:{srv.port}/mcp"],
                    env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                )
                CHILDREN.append(p)
                while p.poll() is None and len(os.listdir(done_dir)) < threads:
                    time.sleep(0.2)
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=30)
                finally:
                    stop(p)
            with open(out_path) as f:
                text = f.read()
        secs = time.time() - t0
        total = int(re.search(r"soak: (\d+) requests", text).group(1)) if "soak:" in text else 0
        unexpected = int(re.search(r"unexpected (\d+)", text).group(1)) if "unexpected" in text else -1
        errors = wrk_socket_errors(text)
        kinds = re.search(r"kinds: (.*)", text)
        samples = [r for _, r in samp.samples]
        warm = max(1, len(samples) // 4)
        post = samples[warm:] or samples
        spread = (max(post) - min(post)) / min(post) if post and min(post) else 1
        ok = total >= target and unexpected == 0 and errors == 0 and spread <= 0.10 and srv.alive()
        if unexpected:
            log("soak output:\n" + text)
        return [
            (
                f"soak: {total:,} mixed requests in {secs:.0f} s ({total / secs:,.0f} req/s, wrk -t{threads} -c{threads})",
                f"RSS every {every} s (MiB): {' '.join(f'{r / 1024:.1f}' for r in samples)}; after warm-up spread {spread:.1%}; "
                f"unexpected {unexpected}, socket errors {errors}" + (f"; {kinds.group(1)}" if kinds else ""),
                f">= {target:,} requests, RSS flat within 10%, 0 errors",
                ok,
            )
        ]
    finally:
        srv.stop()


CHECKS = {
    "slow-body": check_slow_body,
    "big-bodies": check_big_bodies,
    "member-flood": check_member_flood,
    "fairness": check_fairness,
    "fd-limit": check_fd_limit,
    "write-timeout": check_write_timeout,
    "stderr-pipe": check_stderr_pipe,
    "log-flood": check_log_flood,
    "signature-flood": check_signature_flood,
    "streams": check_streams,
    "soak": check_soak,
}
# The checks that make sense against a binary without the newer settings, for "before" figures.
BEFORE = ["fd-limit", "write-timeout", "log-flood"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", default=os.environ.get("HARDENING_SHORT") == "1")
    ap.add_argument("--only", default="")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "vouch-mcp"))
    ap.add_argument("--before", default="")
    ap.add_argument("--alloc-env", default="", help="KEY=VALUE settings for the memory check's server")
    cfg = ap.parse_args()
    cfg.alloc_env = dict(kv.split("=", 1) for kv in cfg.alloc_env.split() if "=" in kv)
    cfg.alloc_label = " ".join(f"{k}={v}" for k, v in cfg.alloc_env.items())
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    names = [n for n in cfg.only.split(",") if n] or list(CHECKS)
    rows, t_all = [], time.time()
    try:
        for name in names:
            log(f"check {name} ...")
            t0 = time.time()
            try:
                got = CHECKS[name](cfg)
            except Exception as e:  # a check that cannot run is a failed check
                got = [(name, f"error: {type(e).__name__}: {e}", "runs", False)]
            rows.extend(got)
            for r in got:
                log(f"  {'PASS' if r[3] else 'FAIL'} {r[0]}: {r[1]} ({time.time() - t0:.0f} s)")
        if "big-bodies" in names and not cfg.short and not cfg.alloc_env:
            # The same load with glibc's allocator defaults (the binary re-executes itself with
            # a trim threshold unless GLIBC_TUNABLES is set; empty keeps the defaults).
            log("big-bodies with glibc's defaults (GLIBC_TUNABLES=) ...")
            plain = argparse.Namespace(**vars(cfg))
            plain.alloc_env, plain.alloc_label = {"GLIBC_TUNABLES": ""}, "GLIBC_TUNABLES= (glibc defaults)"
            got = check_big_bodies(plain)[-1:]
            rows.extend((a, m, "(for comparison, not checked)", None) for a, m, _, _ in got)
        if cfg.before:
            for name in [n for n in BEFORE if n in names]:
                log(f"before: {name} ...")
                try:
                    got = CHECKS[name](cfg, binary=cfg.before, label="[before] ")
                except Exception as e:
                    got = [(f"[before] {name}", f"error: {type(e).__name__}: {e}", "", None)]
                rows.extend((a, m, "(before, not checked)", None) for a, m, _, _ in got)
    finally:
        stop_all()
    print()
    print(f"hardening suite ({'short' if cfg.short else 'full'} mode, {time.time() - t_all:.0f} s)")
    print("| attack | measured | target | pass |")
    print("|---|---|---|---|")
    for a, m, t, ok in rows:
        print(f"| {a} | {m} | {t} | {'-' if ok is None else ('yes' if ok else 'NO')} |")
    failed = [r for r in rows if r[3] is False]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} rows pass" if not failed else f"\nFAILED: {len(failed)} of {len(rows)} rows")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
