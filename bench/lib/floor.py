#!/usr/bin/python3 -I
"""The floor: the least a client can do to the Docker Engine API.

A raw HTTP/1.1 client over the engine's unix socket, one thread and one
keep-alive connection per task, every task at once. Python stdlib only, and
only cheap modules (no asyncio, no http.client: they cost 30-70 ms of imports
on this machine, which would flatter drover).

  floor.py up SPEC.json        create + start every task of SPEC, all at once
                               (each task's create and start share one connection)
  floor.py stats IDS.txt       GET /containers/ID/stats?stream=false for every
                               ID, all at once (each waits for the engine's
                               next samples, as `drover status` does)

SPEC.json: {"socket": PATH, "api": "v1.41", "tasks": [{"name": N, "body": {...}}]}
IDS.txt:   first line socket path, second line API version, then one ID a line.

With FLOOR_TIMES=FILE, the in-process time (first connect to last answer, no
interpreter start-up) is appended to FILE in seconds.
"""

import json
import os
import socket
import sys
import threading
import time


class EngineError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection to a unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.rfile = self.sock.makefile("rb")

    def request(self, method, target, body=None):
        head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\n"
        data = b""
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            head += "Content-Type: application/json\r\n"
        if body is not None or method == "POST":
            head += f"Content-Length: {len(data)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + data)
        return self.response(method)

    def response(self, method):
        line = self.rfile.readline()
        if not line:
            raise EngineError("connection closed by the engine")
        status = int(line.split(b" ", 2)[1])
        headers = {}
        while True:
            h = self.rfile.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.partition(b":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    # trailers, then the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        elif b"content-length" in headers:
            body = self.rfile.read(int(headers[b"content-length"]))
        else:
            body = self.rfile.read()
        return status, body

    def close(self):
        self.rfile.close()
        self.sock.close()


def run_all(fn, items, path):
    """fn(conn, item) on one thread and one connection per item; re-raise the
    first error. Every thread connects first, then all send together (a
    barrier), so that thread start-up does not stagger the requests."""
    errors = []
    barrier = threading.Barrier(len(items))

    def wrap(item):
        conn = None
        try:
            conn = Conn(path)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"connect: {e}")
            barrier.abort()
            return
        try:
            barrier.wait()
            fn(conn, item)
        except threading.BrokenBarrierError:
            pass
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{item if isinstance(item, str) else item.get('name')}: {e}")
        finally:
            conn.close()

    threads = [threading.Thread(target=wrap, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise EngineError(f"{len(errors)} request(s) failed, first: {errors[0]}")


def up(spec):
    path, api = spec["socket"], spec["api"]

    def task(c, t):
        status, body = c.request("POST", f"/{api}/containers/create?name={t['name']}", t["body"])
        if status != 201:
            raise EngineError(f"create: HTTP {status}: {body[:200]!r}")
        cid = json.loads(body)["Id"]
        status, body = c.request("POST", f"/{api}/containers/{cid}/start")
        if status not in (204, 304):
            raise EngineError(f"start: HTTP {status}: {body[:200]!r}")

    run_all(task, spec["tasks"], path)


def stats(path, api, ids):
    def one(c, cid):
        status, body = c.request("GET", f"/{api}/containers/{cid}/stats?stream=false")
        if status != 200:
            raise EngineError(f"stats: HTTP {status}: {body[:200]!r}")
        s = json.loads(body)
        if "memory_stats" not in s or "cpu_stats" not in s:
            raise EngineError("stats: no memory_stats/cpu_stats in the answer")

    run_all(one, ids, path)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("up", "stats"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "up":
        with open(argv[2]) as f:
            spec = json.load(f)
        start = time.monotonic()
        up(spec)
    else:
        with open(argv[2]) as f:
            lines = [line.strip() for line in f if line.strip()]
        path, api, ids = lines[0], lines[1], lines[2:]
        start = time.monotonic()
        stats(path, api, ids)
    elapsed = time.monotonic() - start
    out = os.environ.get("FLOOR_TIMES")
    if out:
        with open(out, "a") as f:
            f.write(f"{elapsed:.6f}\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except EngineError as e:
        print(f"floor: {e}", file=sys.stderr)
        sys.exit(1)
