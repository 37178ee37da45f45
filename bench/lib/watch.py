"""The measurements of bench/watch, with the standard library only.

`drover watch` watches 200 tasks on two engines and posts to a webhook
receiver written here (an HTTP server on loopback that stamps each POST as
it arrives). Measured: the watcher's CPU time and resident memory while
nothing happens, and the time from a `docker kill` (the engine API's kill,
sent from here) to the webhook's POST of the drift it causes.
"""

import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


def log(*args):
    print("[bench/watch]", *args, file=sys.stderr, flush=True)


class Receiver:
    """Records (monotonic time, body) of every POST."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                at = time.monotonic()
                with receiver.lock:
                    receiver.posts.append((at, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, match, since, timeout):
        """The time of the first POST after `since` whose body matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for at, body in self.posts:
                    if at >= since and match(body):
                        return at
            time.sleep(0.005)
        return None


def api(sock, method, path):
    """One request to the engine at unix socket `sock`; returns the status."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    reply = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        reply += data
    s.close()
    return int(reply.split(b" ", 2)[1])


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def proc_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--drover", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--h1", required=True, help="unix socket path of the first engine")
    p.add_argument("--h2", required=True)
    p.add_argument("--image", default="drover-test/busybox:1")
    p.add_argument("--jobs", type=int, default=10)
    p.add_argument("--instances", type=int, default=10, help="tasks per job and host")
    p.add_argument("--idle", type=int, default=60)
    p.add_argument("--rounds", type=int, default=10)
    a = p.parse_args()

    receiver = Receiver()
    env_dir = os.path.join(a.work, "env")
    os.makedirs(os.path.join(env_dir, "jobs"), exist_ok=True)
    with open(os.path.join(env_dir, "drover.toml"), "w") as f:
        f.write(
            f'name = "{a.env}"\n[hosts.h1]\ndocker = "unix://{a.h1}"\n[hosts.h2]\ndocker = "unix://{a.h2}"\n'
            f'[notify]\nwebhook = "http://127.0.0.1:{receiver.port}/hooks/bench"\nformat = "json"\n'
        )
    for j in range(a.jobs):
        health = ""
        if j % 2 == 0:
            # Half the jobs have a health check: its execs are events the watcher must not pay for.
            health = '[health]\ncmd = ["true"]\ninterval = "10s"\ntimeout = "2s"\nretries = 3\n'
        with open(os.path.join(env_dir, "jobs", f"j{j}.toml"), "w") as f:
            f.write(
                f'image = "{a.image}"\nhosts = ["h1", "h2"]\ninstances = {a.instances}\n'
                f'command = ["sleep", "86400"]\nstop_timeout = "1s"\n{health}'
            )
    tasks = a.jobs * a.instances * 2
    log(f"up: {tasks} tasks on 2 engines")
    t = time.monotonic()
    subprocess.run([a.drover, "-C", env_dir, "up", "--yes"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up_s = time.monotonic() - t

    out = open(os.path.join(a.work, "watch.out"), "w")
    err = open(os.path.join(a.work, "watch.err"), "w")
    watcher = subprocess.Popen([a.drover, "-C", env_dir, "watch"], stdout=out, stderr=err,
                               stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    try:
        time.sleep(10)  # subscribed, listed, the first disk poll done
        hz = os.sysconf("SC_CLK_TCK")
        log(f"idle for {a.idle} s")
        t0, c0 = time.monotonic(), proc_cpu_ticks(watcher.pid)
        time.sleep(a.idle)
        t1, c1 = time.monotonic(), proc_cpu_ticks(watcher.pid)
        idle_cpu = (c1 - c0) / hz / (t1 - t0) * 100
        rss_kb = proc_kb(watcher.pid, "VmRSS")

        latencies = []
        for r in range(a.rounds):
            job = f"j{r % a.jobs}"
            host, sock = (("h1", a.h1) if r % 2 == 0 else ("h2", a.h2))
            name = f"{a.env}.{job}.{host}.0"
            sent = time.monotonic()
            status = api(sock, "POST", f"/containers/{name}/kill")
            if status != 204:
                raise SystemExit(f"kill {name}: engine answered {status}")
            got = receiver.wait(lambda b: b.get("event") == "drift.detected" and b.get("job") == job
                                and b.get("host") == host, sent, 30)
            if got is None:
                raise SystemExit(f"no drift.detected for {name} within 30 s (see {a.work}/watch.out)")
            latencies.append(got - sent)
            log(f"round {r + 1}: {name} killed, posted after {(got - sent) * 1000:.0f} ms")
            back = time.monotonic()
            api(sock, "POST", f"/containers/{name}/start")
            if receiver.wait(lambda b: b.get("event") == "task.recovered" and b.get("job") == job
                             and b.get("host") == host, back, 30) is None:
                raise SystemExit(f"no task.recovered for {name} within 30 s")
            time.sleep(1)
        peak_kb = proc_kb(watcher.pid, "VmHWM")
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)

    ms = [x * 1000 for x in latencies]
    med = statistics.median(ms)
    cpu_met = "met" if idle_cpu < 1.0 else "not met"
    rss_met = "met" if rss_kb < 30 * 1024 else "not met"
    lat_met = "met" if max(ms) < 2000 else "not met"
    print("## drover watch (issue 15)")
    print()
    print(f"`drover watch` over {tasks} tasks ({a.jobs} jobs x {a.instances} tasks on each of 2 engines, "
          f"`sleep`; half the jobs with a 10 s health check, whose execs the engine filters out of the "
          f"watcher's event stream), posting JSON to a webhook receiver on loopback. `up` of the 200 "
          f"tasks took {up_s:.1f} s and is not measured. Idle: the watcher's CPU time (utime + stime "
          f"from /proc) over {a.idle} s with nothing happening, 10 s after it started; its resident "
          f"memory then. Latency: a `POST /containers/NAME/kill` sent to the engine (the API call "
          f"`docker kill` makes) until the receiver has the `drift.detected` POST for that task "
          f"(the kill event, the exit, 300 ms of gathering, a diff of the job by the planner, the "
          f"POST); after each, `docker start` and the `task.recovered` it brings, one job per round "
          f"(each job's messages are rate-limited).")
    print()
    print("| | measured | target | |")
    print("| --- | ---: | ---: | --- |")
    print(f"| idle CPU | {idle_cpu:.2f}% of a core | < 1% | **{cpu_met}** |")
    print(f"| resident memory, idle | {rss_kb / 1024:.1f} MiB | < 30 MB | **{rss_met}** |")
    print(f"| peak resident memory (whole run) | {peak_kb / 1024:.1f} MiB | | |")
    print(f"| kill to POST, median of {len(ms)} | {med:.0f} ms | | |")
    print(f"| kill to POST, min - max | {min(ms):.0f} - {max(ms):.0f} ms | < 2 s | **{lat_met}** |")


if __name__ == "__main__":
    main()
