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
    ap.add_argument("--unit-metrics", help="the line the 1,000-task metrics bench printed")
    a = ap.parse_args()

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
    results = {}

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

    if a.h1 and a.h2:
        many(a, results)
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


def many(a, results):
    """5. `a.tasks` tasks on the two test hosts, one tab then ten."""
    h1, h2 = a.h1.removeprefix("unix://"), a.h2.removeprefix("unix://")
    p1 = Proxy(os.path.join(a.work, "h1.sock"), h1)
    p2 = Proxy(os.path.join(a.work, "h2.sock"), h2)
    per_host = a.tasks // 2
    job = (
        'image = "drover-test/busybox:1"\nhosts = ["h1", "h2"]\n'
        f'instances = {per_host}\ncommand = ["sleep", "3600"]\nstop_timeout = "1s"\nrestart = "no"\n'
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
    drover("up", "--yes")
    try:
        web = Web(a.drover, proxied)
        web.first_byte()
        time.sleep(2)
        results["many_rss_idle"] = web.rss_kib()
        log("   one tab; waiting for every task to be read and sampled")
        tabs = [Overview(web.port)]
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            _, body = http_get(web.port, "/metrics")
            if body.count(b"drover_task_memory_bytes{") >= per_host * 2:
                break
            time.sleep(2)
        else:
            raise SystemExit("the tasks' memory did not show within 2 minutes")
        window = 20.0
        t0 = time.monotonic()
        peak1, _ = sample_rss(web, window)
        r1 = p1.since(t0) + p2.since(t0)
        log("   ten tabs")
        tabs += [Overview(web.port) for _ in range(9)]
        time.sleep(2)
        t0 = time.monotonic()
        peak10, median10 = sample_rss(web, window)
        r10 = p1.since(t0) + p2.since(t0)
        results["many_tasks"] = per_host * 2
        results["many_calls_one"] = len(r1) / window
        results["many_calls_ten"] = len(r10) / window
        results["many_kinds"] = sorted({r.split("?")[0].split(" ")[1].split("/", 3)[-1].split("/")[-1] for r in r10})
        results["many_rss_one"] = peak1
        results["many_rss_ten"] = peak10
        results["many_rss_ten_median"] = median10
        now = time.perf_counter()
        results["many_tab_bytes"] = statistics.median(t.bytes / (now - t.opened) for t in tabs[1:])
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
    print(f"`bench/web`, release build, {os.cpu_count()} CPUs: parts 1-4 on the system engine (medians of {a.runs} starts), part 5 on two test hosts (scripts/test-hosts). A tab is a WebSocket on `/api/live` subscribed to the overview, as the overview page is.")
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
        print(f"| {n} tasks on the two test hosts: resident memory, dashboard idle | {mib(r['many_rss_idle'])} |")
        print(f"| {n} tasks, one tab open (overview): peak resident memory | {mib(r['many_rss_one'])} |")
        print(f"| {n} tasks, ten tabs open: peak resident memory (aim < 60 MiB) | {mib(r['many_rss_ten'])} (median {mib(r['many_rss_ten_median'])}) |")
        print(f"| {n} tasks, engine calls/s with one tab | {r['many_calls_one']:.1f} |")
        print(f"| {n} tasks, engine calls/s with ten tabs | {r['many_calls_ten']:.1f} ({', '.join(r['many_kinds'])}) |")
        print(f"| {n} tasks, what one tab receives | {r['many_tab_bytes'] / 1024:.0f} KiB/s |")
        print(f"| {n} tasks, `GET /metrics` (50 scrapes over HTTP, new connection each) | median {statistics.median(m) * 1000:.1f} ms, slowest {m[-1] * 1000:.1f} ms |")
    if a.unit_metrics:
        print(f"| `/metrics` at 1,000 tasks, rendered from a view made up in memory (`cargo test --release -p drover-web --lib a_thousand_tasks`; the engine simulator has not landed on main) | {a.unit_metrics} |")
    print()


if __name__ == "__main__":
    main()
