"""The measurements of bench/web, with the standard library only.

A counting proxy (a unix socket in front of the engine's) records every
request drover makes; WebSocket and SSE clients are minimal ones written
here, so that what is measured is drover, not a client library.
"""

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

TOKEN = "bench-token-0123456789"


def log(*args):
    print("[bench/web]", *args, file=sys.stderr, flush=True)


# ---- the counting proxy -----------------------------------------------------


class Proxy:
    def __init__(self, path, upstream):
        self.path = path
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests = []  # (time, request line)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(256)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(self.upstream)
        except OSError:
            client.close()
            return

        def up():
            line = b""
            while True:
                try:
                    data = client.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buf = line + data
                parts = buf.split(b"\n")
                line = parts.pop()[-8192:]
                for part in parts:
                    text = part.rstrip(b"\r").decode("latin-1")
                    if text.endswith("HTTP/1.1") and text.split(" ", 1)[0] in ("GET", "POST", "PUT", "DELETE", "HEAD"):
                        with self.lock:
                            self.requests.append((time.monotonic(), text))
                try:
                    server.sendall(data)
                except OSError:
                    break
            try:
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=up, daemon=True)
        t.start()
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                break
            if not data:
                break
            try:
                client.sendall(data)
            except OSError:
                break
        for s in (client, server):
            try:
                s.close()
            except OSError:
                pass

    def since(self, t0):
        with self.lock:
            return [r for (t, r) in self.requests if t >= t0]


# ---- the dashboard process --------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Web:
    def __init__(self, drover, envdir):
        self.port = free_port()
        env = dict(os.environ, DROVER_WEB_TOKEN=TOKEN)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [drover, "-C", envdir, "web", "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # For bench/web's cleanup, should this script die before it stops them.
        with open(os.path.join(os.path.dirname(drover), "web.pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        threading.Thread(target=self.drain, daemon=True).start()

    def drain(self):
        for _ in self.proc.stderr:
            pass

    def first_byte(self, deadline=10.0):
        """Seconds from start until / answers its first byte."""
        while time.perf_counter() - self.t0 < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            except OSError:
                time.sleep(0.002)
                continue
            s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n".encode())
            first = s.recv(1)
            t = time.perf_counter() - self.t0
            rest = first + s.recv(65536)
            s.close()
            if not rest.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"/ answered {rest[:60]!r}")
            return t
        raise SystemExit("drover web did not answer within 10 s")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        return time.perf_counter() - t


# ---- clients ----------------------------------------------------------------


def ws_text(sock, text):
    """Sends one masked text frame (a client's)."""
    data = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    n = len(data)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


class Overview:
    """A browser tab's WebSocket on /api/live, subscribed to the overview
    (what the overview page asks for), reading every frame."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("the live feed closed at once")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"/api/live answered {head[:60]!r}")
        self.bytes = len(head.split(b"\r\n\r\n", 1)[1])
        self.opened = time.perf_counter()
        self.open = True
        ws_text(self.sock, json.dumps({"op": "sub", "id": 1, "topic": "overview"}))
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        self.sock.settimeout(None)
        while self.open:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)

    def close(self):
        self.open = False
        try:
            self.sock.close()
        except OSError:
            pass


class Follower:
    """An SSE client on a job's logs; `rate` bytes a second at most (None: as fast as it can)."""

    def __init__(self, port, job, rate=None):
        self.lines = 0
        self.dropped = 0
        self.bytes = 0
        self.open = True
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(
            (
                f"GET /api/jobs/{job}/logs?follow=true&tail=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        self.rate = rate
        self.sock.settimeout(None)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        # Counted with bytes methods (C speed), so that the client is not what
        # limits the rate: each line event has an `id:` field, other events none.
        buf = b""
        chunk = 65536 if self.rate is None else 16384
        while self.open:
            pause = chunk / self.rate if self.rate else 0
            try:
                data = self.sock.recv(chunk)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)
            buf += data
            # Only whole events; the rest waits for the next read. The body is
            # chunked, and its chunk-size lines fall between events.
            k = buf.rfind(b"\n\n")
            if k < 0:
                continue
            done, buf = buf[: k + 2], buf[k + 2 :]
            self.lines += done.count(b"\nid: ") + done.startswith(b"id: ")
            at = done.find(b"event: dropped\ndata: ")
            while at >= 0:
                end = done.find(b"\n", at + 21)
                try:
                    self.dropped += json.loads(done[at + 21 : end])["lines"]
                except (ValueError, KeyError):
                    pass
                at = done.find(b"event: dropped\ndata: ", end)
            if pause:
                time.sleep(pause)

    def close(self):
        self.open = False
        try:
            self.sock.close()
        except OSError:
            pass


def docker_logs_rate(container, seconds):
    p = subprocess.Popen(
        ["/usr/bin/docker", "logs", "-f", "--tail", "0", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    count = [0]

    def read():
        for _ in p.stdout:
            count[0] += 1

    threading.Thread(target=read, daemon=True).start()
    time.sleep(1)
    c0, t0 = count[0], time.perf_counter()
    time.sleep(seconds)
    rate = (count[0] - c0) / (time.perf_counter() - t0)
    p.kill()
    p.wait()
    return rate


def sample_rss(web, seconds):
    peak, samples = 0, []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        r = web.rss_kib()
        samples.append(r)
        peak = max(peak, r)
        time.sleep(0.25)
    return peak, statistics.median(samples) if samples else 0


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


# ---- the run ------------------------------------------------------------------


def small(a, results):
    """1-4, on the system engine."""
    proxy = Proxy(os.path.join(a.work, "engine.sock"), a.engine)
    envdir = os.path.join(a.work, "env")
    os.makedirs(os.path.join(envdir, "jobs"))
    with open(os.path.join(envdir, "drover.toml"), "w") as f:
        f.write(f'name = "{a.env}"\n\n[hosts.local]\ndocker = "unix://{proxy.path}"\n')
    with open(os.path.join(envdir, "jobs", "idle.toml"), "w") as f:
        f.write('image = "drover-test/busybox:1"\nhosts = ["local"]\ninstances = 5\ncommand = ["sleep", "3600"]\nstop_timeout = "1s"\n')

    def drover(*args):
        out = subprocess.run([a.drover, "-C", dirs[-1], *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"drover {' '.join(args)} failed:\n{out.stderr}")

    dirs = [envdir]
    log("drover up: 5 idle tasks")
    drover("up", "--yes")

    log(f"1. time to first byte of /, {a.runs} starts")
    ttfb, stops = [], []
    for _ in range(a.runs):
        web = Web(a.drover, envdir)
        ttfb.append(web.first_byte())
        stops.append(web.stop())
        time.sleep(0.2)
    results["ttfb"] = ttfb
    results["stop"] = [s for s in stops if s is not None]

    log("2. resident memory, idle and with one overview")
    web = Web(a.drover, envdir)
    web.first_byte()
    time.sleep(3)
    results["rss_idle"] = web.rss_kib()
    t0 = time.monotonic()
    calls_idle = len(proxy.since(t0))
    one = Overview(web.port)
    time.sleep(4)
    results["rss_one_overview"] = web.rss_kib()

    log("3. engine calls with one and with ten overviews (10 s each)")
    window = 10.0
    t0 = time.monotonic()
    time.sleep(window)
    r1 = proxy.since(t0)
    more = [Overview(web.port) for _ in range(9)]
    time.sleep(1)
    t0 = time.monotonic()
    time.sleep(window)
    r10 = proxy.since(t0)
    results["rss_ten_overviews"] = web.rss_kib()
    results["calls_one"] = len(r1) / window
    results["calls_ten"] = len(r10) / window
    results["calls_kinds_ten"] = sorted({r.split("?")[0].split(" ")[1].split("/", 3)[-1] for r in r10})
    for o in [one, *more]:
        o.close()
    log("   waiting for the watchers to stop (linger 10 s)")
    time.sleep(12)
    t0 = time.monotonic()
    time.sleep(5)
    results["calls_none"] = len(proxy.since(t0)) / 5
    results["calls_idle_start"] = calls_idle

    web.stop()

    # The flood bypasses the counting proxy (a Python relay would be the
    # bottleneck): a second environment directory names the engine directly.
    log("4. a flooding task")
    direct = os.path.join(a.work, "direct")
    os.makedirs(os.path.join(direct, "jobs"))
    with open(os.path.join(direct, "drover.toml"), "w") as f:
        f.write(f'name = "{a.env}"\n\n[hosts.local]\ndocker = "unix://{a.engine}"\n')
    for name in ("idle.toml",):
        with open(os.path.join(envdir, "jobs", name)) as src, open(os.path.join(direct, "jobs", name), "w") as dst:
            dst.write(src.read())
    with open(os.path.join(direct, "jobs", "flood.toml"), "w") as f:
        f.write(
            'image = "drover-test/busybox:1"\nhosts = ["local"]\n'
            'command = ["yes", "flood 0123456789 abcdefghijklmnopqrstuvwxyz <script>alert(1)</script> the quick brown fox"]\n'
            'stop_timeout = "1s"\n'
        )
    envdir = direct
    dirs.append(direct)
    drover("up", "--yes", "flood")
    web = Web(a.drover, envdir)
    web.first_byte()
    container = f"{a.env}.flood.local.0"
    time.sleep(2)
    results["rss_flood_start"] = web.rss_kib()
    seconds = 10
    results["docker_logs_rate"] = docker_logs_rate(container, seconds)

    fast = Follower(web.port, "flood")
    time.sleep(1)
    l0, t0 = fast.lines, time.perf_counter()
    peak, _ = sample_rss(web, seconds)
    results["fast_rate"] = (fast.lines - l0) / (time.perf_counter() - t0)
    results["rss_fast_peak"] = peak
    fast.close()
    time.sleep(1)

    slow_rate = 256 * 1024
    slow = Follower(web.port, "flood", rate=slow_rate)
    peak, median = sample_rss(web, 15)
    results["rss_one_slow_peak"] = peak
    results["one_slow_lines"] = slow.lines
    catch_up([slow])
    results["one_slow_dropped"] = slow.dropped
    slow.close()
    time.sleep(2)

    slows = [Follower(web.port, "flood", rate=slow_rate) for _ in range(10)]
    peak, median = sample_rss(web, 15)
    results["rss_ten_slow_peak"] = peak
    results["rss_ten_slow_median"] = median
    results["ten_slow_lines"] = sum(s.lines for s in slows)
    catch_up(slows)
    results["ten_slow_dropped"] = sum(s.dropped for s in slows)
    for s in slows:
        s.close()
    time.sleep(2)
    results["rss_after"] = web.rss_kib()
    web.stop()
    drover("down", "--yes", "flood")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drover", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--h1", help="the first test host's engine (unix://…)")
    ap.add_argument("--h2", help="the second test host's engine")
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--sim", help="engine-sim, for part 6")
    ap.add_argument("--sim-hosts", type=int, default=10)
    ap.add_argument("--sim-tasks", type=int, default=1000)
    ap.add_argument("--parts", default="123456", help="the parts to run (e.g. 56)")
    a = ap.parse_args()

    results = {}
    if any(p in a.parts for p in "1234"):
        small(a, results)

    if a.h1 and a.h2 and "5" in a.parts:
        many(a, results)
    if a.sim and "6" in a.parts:
        sim(a, results)
    report(results, a)


def http_get(port, path):
    """Seconds until the whole answer of GET `path` (bearer token) came, and its body."""
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"{path} answered {data[:80]!r}")
    return time.perf_counter() - t, data.split(b"\r\n\r\n", 1)[1]


class Tab:
    """A browser tab: one WebSocket on /api/live with the subscriptions its
    page makes. The overview page asks for `overview`; a task page for the
    task (its row and charts) and its log, followed from the last 1,000
    lines (`topic: logs`, `task: H/T`). Frames are parsed, so that what each
    subscription received can be checked."""

    def __init__(self, port, task=None, job=None):
        self.kind = "task" if task else "overview"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("the live feed closed at once")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"/api/live answered {head[:60]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.bytes = len(self.buf)
        self.opened = time.perf_counter()
        self.open = True
        self.lock = threading.Lock()
        self.seen = []  # (time, kind, log lines in it)
        self.errors = []
        if task:
            host, n = task.split("/")
            ws_text(self.sock, json.dumps({"op": "sub", "id": 1, "topic": "task", "job": job, "host": host, "task": int(n)}))
            ws_text(self.sock, json.dumps({"op": "sub", "id": 2, "topic": "logs", "job": job, "follow": "true", "tail": "1000", "task": task}))
        else:
            ws_text(self.sock, json.dumps({"op": "sub", "id": 1, "topic": "overview"}))
        threading.Thread(target=self.read, daemon=True).start()

    def frames(self):
        """Whole frames in the buffer: (opcode, payload)."""
        while True:
            b = self.buf
            if len(b) < 2:
                return
            n, at = b[1] & 0x7F, 2
            if n == 126:
                if len(b) < 4:
                    return
                n, at = int.from_bytes(b[2:4], "big"), 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, at = int.from_bytes(b[2:10], "big"), 10
            if len(b) < at + n:
                return
            self.buf = b[at + n :]
            yield b[0], b[at : at + n]

    def read(self):
        self.sock.settimeout(None)
        message = b""
        while self.open:
            try:
                data = self.sock.recv(262144)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)
            self.buf += data
            for first, payload in self.frames():
                op = first & 0x0F
                if op == 0x9:  # ping: a browser answers pong
                    try:
                        pong = bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload
                        self.sock.sendall(pong)
                    except OSError:
                        return
                    continue
                if op in (0x1, 0x0):
                    message += payload
                    if not first & 0x80:
                        continue
                    self.note(message)
                    message = b""

    def note(self, message):
        try:
            m = json.loads(message)
        except ValueError:
            return
        kind = m.get("t", "?")
        lines = len(m.get("lines", [])) if kind == "lines" else 0
        with self.lock:
            self.seen.append((time.perf_counter(), kind, lines))
            if kind == "error":
                self.errors.append(m.get("error"))

    def since(self, t0):
        with self.lock:
            return [s for s in self.seen if s[0] >= t0]

    def streaming(self, t0):
        """Whether the tab got what its page shows since `t0`: an overview,
        or new log lines and the task's row."""
        got = self.since(t0)
        if self.kind == "overview":
            return any(k == "overview" for _, k, _ in got)
        return any(k == "lines" and n for _, k, n in got) and any(k in ("task", "usage") for _, k, _ in got)

    def close(self):
        self.open = False
        try:
            self.sock.close()
        except OSError:
            pass


def calls_by_kind(requests):
    """What the engine was asked, by kind: {"stats": 120, "inspect": 3}."""
    kinds = {}
    for r in requests:
        parts = r.split("?")[0].split(" ")[1].rstrip("/").split("/")
        last = parts[-1]
        if last == "json" and len(parts) >= 2:
            kind = {"containers": "list", "images": "images"}.get(parts[-2], "inspect")
        else:
            kind = last
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def show_kinds(kinds, seconds):
    return ", ".join(f"{k} {v / seconds:.1f}/s" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) or "none"


# A task's log: a line a second (sh as PID 1: it leaves on SIGTERM at the next line).
TICKER = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo \"line $i of $HOSTNAME\"; sleep 1; done"]


def many(a, results):
    """5. `a.tasks` tasks on the two test hosts, each logging a line a
    second; 1, 10 and 20 tabs, half of them overviews and half task pages."""
    h1, h2 = a.h1.removeprefix("unix://"), a.h2.removeprefix("unix://")
    p1 = Proxy(os.path.join(a.work, "h1.sock"), h1)
    p2 = Proxy(os.path.join(a.work, "h2.sock"), h2)
    per_host = a.tasks // 2
    job = (
        'image = "drover-test/busybox:1"\nhosts = ["h1", "h2"]\n'
        f"instances = {per_host}\ncommand = {json.dumps(TICKER)}\nstop_timeout = \"2s\"\nrestart = \"no\"\n"
    )
    name = f"{a.env}many"
    direct = os.path.join(a.work, "many-direct")
    proxied = os.path.join(a.work, "many")
    for d, (s1, s2) in ((direct, (h1, h2)), (proxied, (p1.path, p2.path))):
        os.makedirs(os.path.join(d, "jobs"))
        with open(os.path.join(d, "drover.toml"), "w") as f:
            f.write(f'name = "{name}"\n\n[hosts.h1]\ndocker = "unix://{s1}"\n[hosts.h2]\ndocker = "unix://{s2}"\n')
        with open(os.path.join(d, "jobs", "many.toml"), "w") as f:
            f.write(job)

    def drover(*args):
        out = subprocess.run([a.drover, "-C", direct, *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"drover {' '.join(args)} failed:\n{out.stderr}")

    log(f"5. {per_host * 2} tasks on the test hosts: drover up")
    t = time.perf_counter()
    drover("up", "--yes")
    results["many_up"] = time.perf_counter() - t
    try:
        web = Web(a.drover, proxied)
        web.first_byte()
        time.sleep(2)
        results["many_rss_idle"] = web.rss_kib()
        log("   one tab (an overview); waiting for every task to be read and sampled")
        tabs = [Tab(web.port)]
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            _, body = http_get(web.port, "/metrics")
            if body.count(b"drover_task_memory_bytes{") >= per_host * 2:
                break
            time.sleep(2)
        else:
            raise SystemExit("the tasks' memory did not show within 2 minutes")
        window = 20.0
        hosts = ["h1", "h2"]
        results["many_tasks"] = per_host * 2
        results["many_tabs"] = []
        for n in (1, 10, 20):
            while len(tabs) < n:
                # Alternately a task page (a task of each host in turn) and an overview.
                k = len(tabs)
                if k % 2:
                    task = f"{hosts[(k // 2) % 2]}/{k // 2}"
                    tabs.append(Tab(web.port, task=task, job="many"))
                else:
                    tabs.append(Tab(web.port))
            if n > 1:
                log(f"   {n} tabs")
                time.sleep(3)  # the new log followers open their streams
            t0 = time.monotonic()
            p0 = time.perf_counter()
            bytes0 = sum(t.bytes for t in tabs)
            peak, median = sample_rss(web, window)
            requests = p1.since(t0) + p2.since(t0)
            received = sum(t.bytes for t in tabs) - bytes0
            streaming = sum(t.streaming(p0) for t in tabs)
            lines = sum(n for t in tabs if t.kind == "task" for _, k, n in t.since(p0) if k == "lines")
            results["many_tabs"].append(
                {
                    "tabs": n,
                    "overviews": sum(t.kind == "overview" for t in tabs),
                    "task_pages": sum(t.kind == "task" for t in tabs),
                    "streaming": streaming,
                    "errors": sum(len(t.errors) for t in tabs),
                    "lines_per_s": lines / window,
                    "rss_peak": peak,
                    "rss_median": median,
                    "calls": len(requests) / window,
                    "kinds": show_kinds(calls_by_kind(requests), window),
                    "bytes_per_s": received / window,
                }
            )
        log("   /metrics, 50 scrapes")
        took = []
        for _ in range(50):
            t, _ = http_get(web.port, "/metrics")
            took.append(t)
        took.sort()
        results["many_metrics"] = took
        for t in tabs:
            t.close()
        web.stop()
    finally:
        drover("down", "--yes", "many")


def sim(a, results):
    """6. `a.sim_tasks` tasks on engine-sim (a.sim_hosts simulated engines):
    `GET /metrics` over HTTP, whether a scrape calls the engines (the
    simulator's request log), the samples' memory, and `status --json`
    over the same tasks as the anchor."""
    hosts = a.sim_hosts
    per_host = a.sim_tasks // hosts
    simdir = os.path.join(a.work, "sim")
    trace = os.path.join(a.work, "sim.trace")
    log(f"6. {per_host * hosts} tasks on engine-sim ({hosts} simulated engines)")
    out = open(os.path.join(a.work, "sim.out"), "w")
    proc = subprocess.Popen(
        [a.sim, "--hosts", str(hosts), "--dir", simdir, "--trace", trace],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    with open(os.path.join(a.work, "sim.pid"), "w") as f:
        f.write(str(proc.pid))
    try:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            with open(os.path.join(a.work, "sim.out")) as f:
                if "engine-sim: ready" in f.read():
                    break
            if proc.poll() is not None:
                raise SystemExit("engine-sim exited before it was ready")
            time.sleep(0.1)
        else:
            raise SystemExit("engine-sim was not ready within 30 s")
        envdir = os.path.join(a.work, "simenv")
        os.makedirs(os.path.join(envdir, "jobs"))
        names = [f"h{i}" for i in range(1, hosts + 1)]
        with open(os.path.join(envdir, "drover.toml"), "w") as f:
            f.write(f'name = "{a.env}sim"\n\n')
            for h in names:
                f.write(f'[hosts.{h}]\ndocker = "unix://{simdir}/{h}.sock"\n')
        with open(os.path.join(envdir, "jobs", "fleet.toml"), "w") as f:
            f.write(
                f'image = "drover-test/busybox:1"\nhosts = {json.dumps(names)}\ninstances = {per_host}\n'
                'command = ["sleep", "3600"]\nstop_timeout = "1s"\n'
            )

        def traced():
            with open(trace) as f:
                return [line.split() for line in f]

        def since(t0):
            """Requests that came at or after `t0` (Unix seconds): method and path."""
            return [f"{r[3]} {r[4]} HTTP/1.1" for r in traced() if float(r[0]) >= t0]

        t = time.perf_counter()
        out = subprocess.run([a.drover, "-C", envdir, "up", "--yes"], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"drover up on engine-sim failed:\n{out.stderr}")
        results["sim_up"] = time.perf_counter() - t
        results["sim_tasks"] = per_host * hosts
        results["sim_hosts"] = hosts

        log("   the anchor: drover status --json, 3 runs")
        status = []
        for _ in range(3):
            t0 = time.time()
            t = time.perf_counter()
            out = subprocess.run([a.drover, "-C", envdir, "status", "--json"], capture_output=True, text=True,
                                 env=dict(os.environ, XDG_CACHE_HOME="/proc/drover-no-cache"))
            took = time.perf_counter() - t
            if out.returncode != 0:
                raise SystemExit(f"drover status --json on engine-sim failed:\n{out.stderr}")
            time.sleep(0.5)
            status.append((took, len(since(t0))))
        results["sim_status"] = status
        rows = json.loads(out.stdout)
        rows = rows.get("tasks", rows) if isinstance(rows, dict) else rows
        results["sim_status_rows"] = len(rows)

        log("   drover web: the first scrape, then the samples fill")
        web = Web(a.drover, envdir)
        web.first_byte()
        time.sleep(1)
        results["sim_rss_idle"] = web.rss_kib()
        t, body = http_get(web.port, "/metrics")
        results["sim_first_scrape"] = t
        results["sim_rss_read"] = web.rss_kib()
        results["sim_series"] = body.count(b"drover_task_up{")
        rss = []
        start = time.perf_counter()
        for at in (10, 30, 60, 120, 180):
            time.sleep(max(0, start + at - time.perf_counter()))
            http_get(web.port, "/metrics")  # keeps the lease (120 s) running
            rss.append((at, web.rss_kib()))
        results["sim_rss_sampled"] = rss
        _, body = http_get(web.port, "/metrics")
        results["sim_memory_series"] = body.count(b"drover_task_memory_bytes{")

        log("   /metrics: 100 scrapes, and the engines' calls with and without them")
        window = 20.0
        t0 = time.time()
        time.sleep(window)
        quiet = since(t0)
        t0 = time.time()
        took = []
        p = time.perf_counter()
        while len(took) < 100 or time.perf_counter() - p < window:
            t, _ = http_get(web.port, "/metrics")
            took.append(t)
        scraping = time.perf_counter() - p
        busy = since(t0)
        took.sort()
        results["sim_metrics"] = took
        results["sim_metrics_bytes"] = len(body)
        results["sim_quiet"] = (len(quiet) / window, calls_by_kind(quiet), window)
        results["sim_busy"] = (len(busy) / scraping, calls_by_kind(busy), scraping)
        web.stop()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.remove(os.path.join(a.work, "sim.pid"))


CATCH_UP = 8


def catch_up(followers):
    """Reads on at full speed for a while: the markers of dropped lines
    queue behind what the sockets' buffers already hold (megabytes on
    loopback), so a slow reader sees them only after those lines."""
    for f in followers:
        f.rate = None
    time.sleep(CATCH_UP)


def report(r, a):
    ms = lambda xs: f"{statistics.median(xs) * 1000:.0f} ms"
    print()
    print("## drover web")
    print()
    print(
        f"`bench/web`, release build, {os.cpu_count()} CPUs: parts 1-4 on the system engine (medians of {a.runs} starts), "
        "part 5 on two test hosts (scripts/test-hosts, real Docker engines), part 6 on `engine-sim` (simulated engines). "
        "A tab is one WebSocket on `/api/live` with the subscriptions its page makes: an overview tab subscribes to the "
        "overview; a task tab to the task (its row, its CPU and memory charts) and to its log, followed from the last "
        "1,000 lines. Engine calls are counted by a proxy in front of each engine (parts 1-5) or by the simulator's "
        "request log (part 6); resident memory is VmRSS of the `drover web` process."
    )
    if "ttfb" in r:
        print()
        print("### 1-4. Start, memory and log streaming on the system engine (5 idle tasks, then a flooding one)")
        print()
        print("| what | measured |")
        print("| --- | --- |")
        print(f"| time to first byte of `/` after start | {ms(r['ttfb'])} (min {min(r['ttfb']) * 1000:.0f} ms, max {max(r['ttfb']) * 1000:.0f} ms) |")
        if r["stop"]:
            print(f"| SIGTERM to exit | {ms(r['stop'])} |")
        print(f"| resident memory, idle | {mib(r['rss_idle'])} |")
        print(f"| resident memory, one overview open | {mib(r['rss_one_overview'])} |")
        print(f"| resident memory, ten overviews open | {mib(r['rss_ten_overviews'])} |")
        print(f"| engine calls/s, one overview (5 running tasks) | {r['calls_one']:.1f} |")
        print(f"| engine calls/s, ten overviews | {r['calls_ten']:.1f} ({', '.join(r['calls_kinds_ten'])}) |")
        print(f"| engine calls/s, no overview (after the 10 s linger) | {r['calls_none']:.1f} |")
        print(f"| resident memory, a new dashboard beside the flooding task, no client | {mib(r['rss_flood_start'])} |")
        print(f"| `docker logs -f` of a `yes` container | {r['docker_logs_rate']:,.0f} lines/s |")
        print(f"| one SSE client reading as fast as it can | {r['fast_rate']:,.0f} lines/s ({r['fast_rate'] / max(r['docker_logs_rate'], 1):.2f}x docker logs -f); peak RSS {mib(r['rss_fast_peak'])} |")
        print(f"| one slow client (256 KiB/s), 15 s | peak RSS {mib(r['rss_one_slow_peak'])}; {r['one_slow_lines']:,} lines delivered; {r['one_slow_dropped']:,} dropped and marked (markers read in {CATCH_UP} s at full speed after the 15 s) |")
        print(f"| ten slow clients (256 KiB/s each), 15 s | peak RSS {mib(r['rss_ten_slow_peak'])} (median {mib(r['rss_ten_slow_median'])}); {r['ten_slow_lines']:,} lines delivered; {r['ten_slow_dropped']:,} dropped and marked (likewise) |")
        print(f"| resident memory after the clients left | {mib(r['rss_after'])} |")
    if "many_tasks" in r:
        n = r["many_tasks"]
        m = r["many_metrics"]
        base = r["many_tabs"][0]
        print()
        print(f"### 5. {n} tasks on the two test hosts: 1, 10 and 20 tabs at once")
        print()
        print(
            f"One job, {n // 2} tasks on each of two real engines, each task printing a line a second (`up` took "
            f"{r['many_up']:.0f} s, not measured). Tabs alternate: an overview, a task page (a task of h1, then of h2, …). "
            "Each count is over 20 s with the tabs open (3 s after the last opened). A tab streams when, in those 20 s, "
            "an overview tab received the overview, and a task tab new log lines and its task's row or chart. "
            f"Resident memory with the dashboard idle (no tab, no engine calls): {mib(r['many_rss_idle'])}."
        )
        print()
        print("| tabs | streaming | peak RSS (median) | engine calls/s | vs one tab | calls by kind | log lines/s received (task tabs) | bytes/s to all tabs |")
        print("| --- | --- | --- | ---: | ---: | --- | ---: | ---: |")
        for t in r["many_tabs"]:
            ratio = t["calls"] / base["calls"] if base["calls"] else float("nan")
            err = f" ({t['errors']} errors)" if t["errors"] else ""
            print(
                f"| {t['tabs']} ({t['overviews']} overview, {t['task_pages']} task) | {t['streaming']} of {t['tabs']}{err} | "
                f"{mib(t['rss_peak'])} ({mib(t['rss_median'])}) | {t['calls']:.1f} | {ratio:.2f}x | {t['kinds']} | "
                f"{t['lines_per_s']:.1f} | {t['bytes_per_s'] / 1024:.0f} KiB/s |"
            )
        print()
        twenty = r["many_tabs"][-1]
        print(
            f"Aim (issue 13): resident memory < 60 MB with ten tabs: {mib(r['many_tabs'][1]['rss_peak'])} "
            f"({'**met**' if r['many_tabs'][1]['rss_peak'] * 1024 < 60e6 else '**not met**'}); "
            f"twenty tabs: {mib(twenty['rss_peak'])}. Engine calls with 20 tabs: {twenty['calls'] / base['calls']:.2f}x one tab's "
            "(the sampler's `stats` of every running task, whoever looks; a task tab's log is one `logs` stream per task, opened once). "
            f"`GET /metrics` over these {n} tasks (50 scrapes, a new connection each, tabs still open): median {statistics.median(m) * 1000:.1f} ms, "
            f"slowest {m[-1] * 1000:.1f} ms."
        )
    if "sim_tasks" in r:
        n, hosts = r["sim_tasks"], r["sim_hosts"]
        m = r["sim_metrics"]
        status = r["sim_status"]
        st = statistics.median(s[0] for s in status)
        st_calls = statistics.median(s[1] for s in status)
        q_rate, q_kinds, q_win = r["sim_quiet"]
        b_rate, b_kinds, b_win = r["sim_busy"]
        print()
        print(f"### 6. `GET /metrics` at {n} tasks: {hosts} simulated engines x {n // hosts} tasks")
        print()
        print(
            f"`engine-sim --hosts {hosts}` (crates/testkit: simulated Docker 20.10 engines on unix sockets, a real engine's "
            "latencies, a stats read waiting for the engine's once-a-second collector; its `--trace` logs every request) "
            f"serves the hosts of a real `drover web`; `drover up` of the {n} tasks took {r['sim_up']:.0f} s (not measured). "
            "The anchor is what a scraper would run without `/metrics`: `drover status --json` over the same tasks, "
            "with no samples held (3 runs, median)."
        )
        print()
        print("| what | measured |")
        print("| --- | --- |")
        print(f"| `GET /metrics`, {len(m):,} scrapes over HTTP, back to back (bearer token, a new connection each, {r['sim_metrics_bytes'] / 1024:.0f} KiB each) | median {statistics.median(m) * 1000:.1f} ms, 90th percentile {m[int(len(m) * 0.9)] * 1000:.1f} ms, slowest {m[-1] * 1000:.1f} ms |")
        print(f"| the anchor, `drover status --json` ({r['sim_status_rows']} rows) | {st:.2f} s, {st_calls:.0f} engine calls ({st / statistics.median(m):.0f}x a scrape's time) |")
        print(f"| engine calls/s, watchers warm, no scrape ({q_win:.0f} s) | {q_rate:.1f} ({show_kinds(q_kinds, q_win)}) |")
        print(f"| engine calls/s during the {len(m):,} scrapes ({b_win:.1f} s) | {b_rate:.1f} ({show_kinds(b_kinds, b_win)}) |")
        print(f"| the first scrape after start (waits until every host is read once) | {r['sim_first_scrape'] * 1000:.0f} ms; {r['sim_series']} tasks in it |")
        print()
        idle, read = r["sim_rss_idle"], r["sim_rss_read"]
        rss = r["sim_rss_sampled"]
        period = n / q_rate if q_rate else float("nan")
        ref = next((p for p in rss if p[0] >= 2 * period), rss[-1])
        observing = {k: v for k, v in b_kinds.items() if k in ("list", "inspect")}
        if not observing:
            print(
                f"**A scrape makes no engine call**: during the {len(m):,} scrapes the engines saw only the calls the dashboard's "
                f"watchers make anyway (the sampler's `stats`, {b_rate:.1f}/s against {q_rate:.1f}/s with no scrape) and no list "
                "or inspect of a container (what reading a host takes)."
            )
        else:
            print(
                f"**The engines were asked to list or inspect during the scrapes** ({show_kinds(observing, b_win)}): "
                "see the simulator's request log."
            )
        print()
        print(
            f"**The charts' samples** (crates/web/src/samples.rs): each task's ring holds at most `POINTS` = 360 points of 10 s "
            f"(an hour) of 16 bytes, reserved whole when the task is first sampled: `BYTES_PER_TASK` = 5,760 bytes per task, plus "
            f"its map entry (the task's key), whatever runs and however long; {n} tasks: at most {n * 5760 / 1048576:.1f} MiB. "
            f"Measured at {n} tasks: resident memory {mib(idle)} before the first scrape, {mib(read)} once every host was read "
            "(the view, no sample yet), then "
            + ", ".join(f"{mib(k)} after {s} s of sampling" for s, k in rss)
            + f" ({r['sim_memory_series']} tasks with a memory reading). A ring is reserved at its task's second sample; "
            f"the sampler read each task every {period:.0f} s here ({q_rate:.1f} `stats`/s over {n} tasks: a stats read waits "
            f"for the engine's collector, 8 at a time per host), so the rings were reserved by about {2 * period:.0f} s. "
            f"From {ref[0]} s to {rss[-1][0]} s: {(rss[-1][1] - ref[1]) / 1024:+.1f} MiB ({(rss[-1][1] - ref[1]) * 1024 / n:,.0f} bytes "
            f"per task), {(rss[-1][1] - rss[-2][1]) / 1024:+.1f} MiB in the last {rss[-1][0] - rss[-2][0]} s. "
            "All the sampler's state together (the rings, each container's last counters and usage, "
            f"and whatever the allocator keeps), from the view read to {rss[-1][0]} s: {(rss[-1][1] - read) / 1024:+.1f} MiB, "
            f"{(rss[-1][1] - read) * 1024 / n:,.0f} bytes per task."
        )
    print()


if __name__ == "__main__":
    main()
