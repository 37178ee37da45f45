#!/usr/bin/python3 -I
"""The day-two benchmark (bench/day2, issue 7), Python 3 stdlib only.

  day2.py env-logs WORK SOCK                 WORK/env-logs: the flooding job on one engine
  day2.py env-fleet WORK SOCK...             WORK/env-fleet: 10 tasks on each engine
  day2.py env-remote WORK DIR...             from scripts/remote-hosts' DIR/env files:
                                             WORK/ssh_config, WORK/env-ssh, env-ssh-unix,
                                             env-tls, env-tls-unix
  day2.py expect DROVER ENVDIR N             diff must say no changes, status N running
  day2.py trace-status STRACE OUT.json      when drover status sent its stats requests
                                             and got the answers, from `strace -f -ttt`
  day2.py logs DROVER WORK SOCK DATAROOT RUNS WINDOW
                                             docker logs -f against drover logs -f of a
                                             flooding task, alternating; WORK/logs.json
  day2.py report WORK [RESULTS.md]           print the section (and write it)

The logs measurement. The flooding task is `yes LINE` with the `local` log
driver and a max_size large enough that nothing rotates while it is read.
Before every reader, the task's container is replaced by a fresh one (drover
down, then up: the old log goes with it), so every reader, docker's or
drover's, starts on the same situation: a container about 2 s old, already
writing as fast as it can. Each reader follows from "now" (`--tail 0 -f`) and
its stdout goes through a counting reader (a thread counting newlines, the
data then dropped). From its start we sample the count every 0.1 s and
report: lines per second over the fixed window 1 s to 1 s + WINDOW; the time
to its first line; lines per second over WINDOW seconds from its first line
(steady state, whatever the start cost); its peak resident memory (VmHWM of
/proc/PID/status, read just before it is stopped); lines drover said it
dropped. The writer's own rate comes from the growth of the container's log
file on the private engine (every record of the `local` driver's file has the
same size for a constant line, so bytes / record size = lines).
"""

import json
import os
import re
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meta as metamod  # noqa: E402

IMAGE = "drover-test/busybox:1"
LOG_ENV = "bench-day2-logs"
FLOOD_JOB = "flood"
# 80 characters, as an application's log line might be.
FLOOD_LINE = "2026-11-28 12:00:00 INFO  request served path=/api/items status=200 took=3ms ok"
FLOOD_LOG = {"driver": "local", "max_size": "4g", "max_files": 2}
FLEET_ENV = "bench-day2"
FLEET_JOB = "fleet"
PER_HOST = 10
REMOTE_ENV = "bench-day2-remote"
TLS_ENV = "bench-day2-tls"
REMOTE_JOB = "svc"
FIRST_LINE_CAP = 20.0  # seconds a reader may take to show its first line
RSS_AIM_MIB = 64
STATUS_AIM = 1.5
DIFF_AIM = 1.0
BEFORE = {"status": 1.77, "diff": 0.155}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def toml_str(s):
    return json.dumps(s)


# ---- environments ------------------------------------------------------------


def cmd_env_logs(work, sock):
    d = f"{work}/env-logs"
    write(f"{d}/drover.toml", f'name = "{LOG_ENV}"\n\n[hosts.h1]\ndocker = {toml_str(sock)}\n')
    log = FLOOD_LOG
    write(
        f"{d}/jobs/{FLOOD_JOB}.toml",
        f'image = "{IMAGE}"\nhosts = ["h1"]\n'
        f"command = {json.dumps(['yes', FLOOD_LINE])}\n"
        f'log = {{ driver = "{log["driver"]}", max_size = "{log["max_size"]}", max_files = {log["max_files"]} }}\n'
        'stop_timeout = "1s"\n',
    )


def cmd_env_fleet(work, *socks):
    d = f"{work}/env-fleet"
    text = f'name = "{FLEET_ENV}"\n'
    for i, sock in enumerate(socks, 1):
        text += f"\n[hosts.h{i}]\ndocker = {toml_str(sock)}\n"
    write(f"{d}/drover.toml", text)
    hosts = ", ".join(f'"h{i}"' for i in range(1, len(socks) + 1))
    write(
        f"{d}/jobs/{FLEET_JOB}.toml",
        f'image = "{IMAGE}"\nhosts = [{hosts}]\ninstances = {PER_HOST}\ncommand = ["sleep", "3600"]\nstop_timeout = "1s"\n',
    )


def read_exports(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export "):].partition("=")
                words = shlex.split(value)
                env[key] = words[0] if words else ""
    return env


def cmd_env_remote(work, *dirs):
    """Three sets of scripts/remote-hosts, each one ssh host (h3) and one TLS
    host (h4). drover takes one ssh config (DROVER_SSH_CONFIG), so ours gives
    each set's sshd an alias with its own port, key and known_hosts."""
    sets = [read_exports(f"{d}/env") for d in dirs]
    ssh_config = "# bench/day2: one alias per scripts/remote-hosts set\n"
    for i, (d, env) in enumerate(zip(dirs, sets), 1):
        port = re.search(r":(\d+)$", env["DROVER_TEST_SSH_HOST"]).group(1)
        ssh_config += (
            f"Host drbench-s{i}\n    HostName 127.0.0.1\n    Port {port}\n"
            f"    IdentityFile {env['DROVER_TEST_SSH_KEY']}\n"
            f"    UserKnownHostsFile {env['DROVER_TEST_SSH_KNOWN_HOSTS']}\n"
        )
    ssh_config += (
        "Host drbench-s*\n    User root\n    IdentitiesOnly yes\n    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n    BatchMode yes\n    PasswordAuthentication no\n"
        "    KbdInteractiveAuthentication no\n"
    )
    write(f"{work}/ssh_config", ssh_config)

    def env(dirname, name, prefix, address):
        text = f'name = "{name}"\n'
        for i, e in enumerate(sets, 1):
            text += f"\n[hosts.{prefix}{i}]\n" + address(i, e)
        write(f"{work}/{dirname}/drover.toml", text)
        hosts = ", ".join(f'"{prefix}{i}"' for i in range(1, len(sets) + 1))
        write(
            f"{work}/{dirname}/jobs/{REMOTE_JOB}.toml",
            f'image = "{IMAGE}"\nhosts = [{hosts}]\ninstances = {PER_HOST}\ncommand = ["sleep", "3600"]\nstop_timeout = "1s"\n',
        )

    # The same environment name and host names over either transport: both
    # see the same containers.
    env("env-ssh", REMOTE_ENV, "s", lambda i, e: f'docker = "ssh://root@drbench-s{i}"\n')
    env("env-ssh-unix", REMOTE_ENV, "s", lambda i, e: f"docker = {toml_str(e['DROVER_TEST_H3'])}\n")
    env(
        "env-tls",
        TLS_ENV,
        "t",
        lambda i, e: f"docker = {toml_str(e['DROVER_TEST_TLS_HOST'])}\n"
        f"tls = {{ ca = {toml_str(e['DROVER_TEST_TLS_CA'])}, cert = {toml_str(e['DROVER_TEST_TLS_CERT'])}, key = {toml_str(e['DROVER_TEST_TLS_KEY'])} }}\n",
    )
    env("env-tls-unix", TLS_ENV, "t", lambda i, e: f"docker = {toml_str(e['DROVER_TEST_H4_SOCK'])}\n")


def cmd_expect(drover, envdir, n):
    r = subprocess.run([drover, "-C", envdir, "diff"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"day2: drover -C {envdir} diff exited {r.returncode} (want 0: no changes):\n{r.stdout[-3000:]}{r.stderr[-2000:]}")
    r = subprocess.run([drover, "-C", envdir, "--json", "status"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"day2: drover -C {envdir} status exited {r.returncode}:\n{r.stderr[-2000:]}")
    running = sum(t.get("state") == "running" for t in json.loads(r.stdout))
    if running != int(n):
        sys.exit(f"day2: drover -C {envdir} status shows {running} running tasks, want {n}")


# ---- where status waits -------------------------------------------------------

SYSCALL = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+(\w+)\((\d+),\s*"(.*)$')
RESUMED = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+<\.\.\. (\w+) resumed>\s*"?(.*)$')
UNFINISHED = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+(\w+)\((\d+),\s*<unfinished')


def cmd_trace_status(strace, out):
    """Stats requests (by the socket they went out on) and the answer to
    each: the first read of that socket that starts `HTTP/1.1` after it."""
    start = end = None
    pending, pairs, unfinished = {}, [], {}
    with open(strace, errors="replace") as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) >= 2 and start is None:
                start = float(parts[1])
            if "exit_group(" in line:
                end = float(line.split()[1])
                continue
            m = UNFINISHED.match(line)
            if m:
                unfinished[m.group(1)] = (m.group(3), int(m.group(4)))
                continue
            m = RESUMED.match(line)
            if m:
                pid, t, call, data = m.group(1), float(m.group(2)), m.group(3), m.group(4)
                if pid not in unfinished:
                    continue
                call, fd = unfinished.pop(pid)
            else:
                m = SYSCALL.match(line)
                if not m:
                    continue
                t, call, fd, data = float(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
            if call in ("sendto", "write", "writev", "sendmsg") and data.startswith("GET /containers/") and "/stats?" in data.split(" ", 2)[1]:
                pending[fd] = t
            elif call in ("recvfrom", "read", "recvmsg") and data.startswith("HTTP/1.1 ") and fd in pending:
                pairs.append((pending.pop(fd), t))
    if not pairs or start is None:
        sys.exit(f"day2: no stats requests found in {strace}")
    pairs.sort()
    batches = [[pairs[0]]]
    for p in pairs[1:]:
        if p[0] - batches[-1][-1][0] > 0.2:
            batches.append([])
        batches[-1].append(p)
    result = {
        "exit": (end or max(a for _, a in pairs)) - start,
        "batches": [
            {
                "n": len(b),
                "sent": b[0][0] - start,
                "last_sent": b[-1][0] - start,
                "waits": sorted(a - s_ for s_, a in b),
                "answered": max(a for _, a in b) - start,
            }
            for b in batches
        ],
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


# ---- logs -f -------------------------------------------------------------------


def log_file(dataroot, sock, container):
    cid = subprocess.run(
        ["/usr/bin/docker", "-H", sock, "inspect", "-f", "{{.Id}}", container], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{dataroot}/containers/{cid}/local-logs/container.log"


def record_size(path):
    """Bytes of one record of the `local` driver's file: 4-byte length,
    the protobuf entry, 4-byte length again."""
    for _ in range(50):
        try:
            with open(path, "rb") as f:
                head = f.read(4)
            if len(head) == 4:
                return struct.unpack(">I", head)[0] + 8
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    sys.exit(f"day2: no log records in {path}")


def size_of(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


DROPPED = re.compile(rb"drover: (\d+) line\(s\) of \S+ dropped")


def read_follower(cmd, window, logpath, record):
    """Runs one follower; see the module's doc for what is measured."""
    size0 = size_of(logpath)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.perf_counter()
    count = [0]
    first = [None]
    dropped = [0]
    errors = []

    def out():
        fd = proc.stdout.fileno()
        while True:
            data = os.read(fd, 1 << 20)
            if not data:
                return
            n = data.count(b"\n")
            if n and first[0] is None:
                first[0] = time.perf_counter() - t0
            count[0] += n

    def err():
        for line in proc.stderr:
            m = DROPPED.search(line)
            if m:
                dropped[0] += int(m.group(1))
            elif len(errors) < 20:
                errors.append(line.decode(errors="replace").rstrip())

    threads = [threading.Thread(target=out, daemon=True), threading.Thread(target=err, daemon=True)]
    for t in threads:
        t.start()
    samples = []  # (seconds since start, lines so far, log file bytes)
    while True:
        t = time.perf_counter() - t0
        samples.append((t, count[0], size_of(logpath), dropped[0]))
        if proc.poll() is not None:
            break
        done_window = t >= 1 + window
        f = first[0]
        if done_window and f is not None and t >= f + window:
            break
        if done_window and f is None and t >= 1 + window + FIRST_LINE_CAP:
            break
        time.sleep(0.1)
    hwm = vm_hwm_kib(proc.pid)
    exited = proc.poll()
    if exited is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for t in threads:
        t.join(timeout=5)
    if exited is not None:
        sys.exit(f"day2: {' '.join(cmd)} ended by itself (exit {exited}):\n" + "\n".join(errors))

    def at(t):
        """(lines, bytes) at the last sample not after t."""
        best = samples[0]
        for s in samples:
            if s[0] <= t:
                best = s
        return best

    w0, w1 = at(1.0), at(1.0 + window)
    result = {
        "cmd": cmd,
        "window_rate": (w1[1] - w0[1]) / (w1[0] - w0[0]),
        "writer_rate": (w1[2] - w0[2]) / record / (w1[0] - w0[0]),
        "log_mb_at_start": size0 / 1e6,
        "first_line": first[0],
        "steady_rate": None,
        "peak_rss_kib": hwm,
        "dropped": dropped[0],
        "lines": count[0],
        "errors": errors,
    }
    f = first[0]
    if f is not None and samples[-1][0] >= f + window - 0.05:
        s0, s1 = at(f), at(f + window)
        if s1[0] > s0[0]:
            result["steady_rate"] = (s1[1] - s0[1]) / (s1[0] - s0[0])
            result["steady_writer_rate"] = (s1[2] - s0[2]) / record / (s1[0] - s0[0])
            result["steady_dropped_rate"] = (s1[3] - s0[3]) / (s1[0] - s0[0])
    return result


def cmd_logs(drover, work, sock, dataroot, runs, window):
    runs, window = int(runs), float(window)
    envdir = f"{work}/env-logs"
    container = f"{LOG_ENV}.{FLOOD_JOB}.h1.0"

    def drover_run(*args):
        r = subprocess.run([drover, "-C", envdir, *args], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"day2: drover {' '.join(args)} exited {r.returncode}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")

    readers = {
        "docker": lambda: ["/usr/bin/docker", "-H", sock, "logs", "-f", "--tail", "0", container],
        "drover": lambda: [drover, "-C", envdir, "--no-color", "logs", FLOOD_JOB, "-f", "--tail", "0"],
        # Once, for the cause of a late start: docker following from a time
        # (what drover asks the engine for) instead of from the end.
        "docker-since": lambda: ["/usr/bin/docker", "-H", sock, "logs", "-f", "--since", str(int(time.time())), container],
    }
    results = {"docker": [], "drover": [], "docker-since": []}
    record = None
    for i in range(runs):
        order = ["docker", "drover"] if i % 2 == 0 else ["drover", "docker"]
        if i == 0:
            order.append("docker-since")
        for who in order:
            # A fresh flooding container: the same start for every reader.
            drover_run("down", "--yes", FLOOD_JOB)
            drover_run("up", "--yes", FLOOD_JOB)
            path = log_file(dataroot, sock, container)
            if record is None:
                record = record_size(path)
            r = read_follower(readers[who](), window, path, record)
            results[who].append(r)
            first = f"{r['first_line']:.2f} s" if r["first_line"] is not None else f"none in {1 + window + FIRST_LINE_CAP:.0f} s"
            steady = f"{r['steady_rate']:,.0f}" if r["steady_rate"] is not None else "-"
            print(
                f"  run {i + 1}/{runs} {who:12}: {r['window_rate']:9,.0f} lines/s in the window, first line {first},"
                f" {steady} lines/s from it, peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB, dropped {r['dropped']:,},"
                f" writer {r['writer_rate']:,.0f} lines/s, log {r['log_mb_at_start']:.0f} MB at start",
                file=sys.stderr,
                flush=True,
            )
    drover_run("down", "--yes", FLOOD_JOB)
    with open(f"{work}/logs.json", "w") as f:
        json.dump({"window": window, "record_bytes": record, "line": FLOOD_LINE, "results": results}, f, indent=1)


# ---- report --------------------------------------------------------------------


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_rate(x):
    return "-" if x is None else f"{x:,.0f}"


def rounds_table(path, rows):
    with open(path) as f:
        data = json.load(f)
    by = {r["command"]: r for r in data["results"]}
    out = []
    for name, label in rows:
        r = by[name]
        out.append(f"| {label} | {fmt_s(r['median'])} | {fmt_s(r['min'])} - {fmt_s(r['max'])} | {len(r['times'])} |")
    return by, data["rounds"], "\n".join(out)


def paired(rounds, a, b):
    return statistics.median(r[a] / r[b] for r in rounds)


def cmd_report(work, record=None):
    meta = metamod.read(work)
    parts = []
    parts.append(f"## Day two: logs -f, status and diff across {meta.get('fleet_hosts', '20')} engines, remote transports (issue 7)\n")
    parts.append(metamod.header(meta, "bench/day2") + "\n")
    parts.append(metamod.load_note(meta) + "\n")
    verdicts = []

    # 1. logs -f
    with open(f"{work}/logs.json") as f:
        lg = json.load(f)
    d, v = lg["results"]["docker"], lg["results"]["drover"]
    win = lg["window"]

    def m(rs, key):
        return med([r[key] for r in rs if r[key] is not None])

    def firsts(rs):
        got = [r["first_line"] for r in rs if r["first_line"] is not None]
        missing = len(rs) - len(got)
        text = fmt_s(med(got)) if got else "-"
        if got:
            text += f" ({fmt_s(min(got))} - {fmt_s(max(got))})"
        if missing:
            text += f"; none within {1 + win + FIRST_LINE_CAP:.0f} s in {missing} of {len(rs)}"
        return text

    def ratio(a, b):
        return f"{a / b:.2f}x" if a is not None and b else "-"

    dw, vw = m(d, "window_rate"), m(v, "window_rate")
    ds, vs = m(d, "steady_rate"), m(v, "steady_rate")
    drss, vrss = max(r["peak_rss_kib"] for r in d) / 1024, max(r["peak_rss_kib"] for r in v) / 1024
    writer = med([r["writer_rate"] for r in d + v])
    log_mb = med([r["log_mb_at_start"] for r in d + v])
    rss_ok = vrss < RSS_AIM_MIB
    verdicts.append(("drover logs -f peak RSS under 64 MiB", rss_ok))
    parts.append(f"""### 1. `logs -f` of a flooding task

One task on a private engine runs `yes '{lg['line']}'` ({len(lg['line'])} characters),
log driver `local` with max_size {FLOOD_LOG['max_size']} (nothing rotates while it is read). Before
every reader the task gets a fresh container (drover down + up, untimed), so each reader starts
alike: a container about 2 s old, writing as fast as it can, its log about {log_mb:.0f} MB. Each
follows from now (`docker logs -f --tail 0 CONTAINER` / `drover logs flood -f --tail 0`), its
stdout read by a counting reader; the two alternate, {len(d)} runs each, medians (peak RSS: the
highest). The window is 1 s to {1 + win:.0f} s after the reader started.

| | docker logs -f | drover logs -f | drover / docker |
| --- | ---: | ---: | ---: |
| lines/s in the window | {fmt_rate(dw)} | {fmt_rate(vw)} | {ratio(vw, dw)} |
| time to the first line | {firsts(d)} | {firsts(v)} | |
| lines/s over {win:.0f} s from the first line | {fmt_rate(ds)} | {fmt_rate(vs)} | {ratio(vs, ds)} |
| peak RSS (VmHWM) | {drss:.1f} MiB | {vrss:.1f} MiB | |
| lines/s dropped (and said so) over those {win:.0f} s | | {fmt_rate(med([r.get('steady_dropped_rate') for r in v if r.get('steady_dropped_rate') is not None]))} | |

The writer produced {fmt_rate(writer)} lines/s meanwhile (from its log file's growth){
        ': neither reader keeps up with `yes` (the writer, the engine and the reader share 2 CPUs here)'
        if max(x or 0 for x in (ds, vs, dw, vw)) < 0.9 * writer else ''}.
drover's peak RSS under {RSS_AIM_MIB} MiB (issue 7): **{'met' if rss_ok else 'not met'}** ({vrss:.1f} MiB).
""")
    vfirst = med([r["first_line"] for r in v if r["first_line"] is not None])
    dfirst = med([r["first_line"] for r in d if r["first_line"] is not None])
    since = lg["results"].get("docker-since", [])
    if vfirst is None or (dfirst is not None and vfirst > dfirst + 1):
        text = (
            "**drover starts late.** It follows from a time (`since` = when it started, in whole seconds,\n"
            "so that it joins its history with no gap and no duplicate), not from the end of the log as\n"
            "`--tail 0` does; to serve `since`, the engine decodes the log file from its beginning, and on\n"
            f"these logs (about {log_mb:.0f} MB when the reader started) that took {fmt_s(vfirst)}"
            " before the first line. On a longer log (a long-running chatty task, a large max_size) the\n"
            "wait grows with the file. "
        )
        if since:
            sf = since[0]["first_line"]
            text += (
                f"The docker CLI asking the engine the same way (`docker logs -f --since <now>`, once, on a\n"
                f"log of {since[0]['log_mb_at_start']:.0f} MB) waited {fmt_s(sf) if sf is not None else 'past the cap'} for its first line too: the wait is the engine's\n"
                "answer to that request. "
            )
        text += "The rate from the first line is the throughput once lines flow.\n"
        parts.append(text)

    # 2. 20 engines
    hosts = meta.get("fleet_hosts", "20")
    by, rounds, table = rounds_table(
        f"{work}/fleet.json",
        [
            ("drover-status", "drover status (memory and CPU), its last run within a minute"),
            ("drover-status-first", "drover status, no samples held (a first run)"),
            ("drover-diff", "drover diff (no changes)"),
            ("docker-ps-x20", f"`docker -H … ps`, one per host, all {hosts} at once"),
            ("docker-stats-x20", f"`docker -H … stats --no-stream`, one per host, all {hosts} at once"),
        ],
    )
    st, df = by["drover-status"]["median"], by["drover-diff"]["median"]
    st_ok, df_ok = st < STATUS_AIM, df < DIFF_AIM
    verdicts += [(f"status of {hosts} x {PER_HOST} under 1.5 s", st_ok), (f"diff of {hosts} x {PER_HOST} under 1 s", df_ok)]
    parts.append(f"""### 2. `status` and `diff`: {hosts} engines x {PER_HOST} tasks

{hosts} private dockerd's (scripts/test-hosts, each in its own network namespace), {PER_HOST} running
tasks on each (`sleep`, brought up by drover, untimed). Interleaved rounds (bench/lib/rounds.py,
order rotated), each command after {meta.get('stats_idle', '1.5')} s of quiet so that the engines'
stats collectors are idle every time.

| | median | min - max | runs |
| --- | ---: | --- | ---: |
{table}
| **drover status** | **{fmt_s(st)}** | aim < {STATUS_AIM} s: **{'met' if st_ok else 'not met'}** | before issue 7: {fmt_s(BEFORE['status'])} |
| **drover diff** | **{fmt_s(df)}** | aim < {DIFF_AIM:.0f} s: **{'met' if df_ok else 'not met'}** | before issue 7: {fmt_s(BEFORE['diff'])} |
| drover status / docker stats x{hosts} | {st / by['docker-stats-x20']['median']:.2f}x | paired {paired(rounds, 'drover-status', 'docker-stats-x20'):.2f}x | |
| drover diff / docker ps x{hosts} | {df / by['docker-ps-x20']['median']:.2f}x | paired {paired(rounds, 'drover-diff', 'docker-ps-x20'):.2f}x | |

`docker ps` only lists; `drover diff` also inspects every container and compares it field by
field, and `drover status` also reads each container's memory and CPU, which is what `docker
stats --no-stream` does (it waits for the engine's samples). `drover status` measures CPU from
the sample its previous run held when that run was within a minute (one sample per container,
one collector tick: the rounds run it about every ten seconds, from a cache of the bench's own),
and takes two samples, two ticks, when it holds none (`drover status, no samples held`: run with
a cache directory that cannot be written).
""")
    if os.path.exists(f"{work}/trace-status.json"):
        with open(f"{work}/trace-status.json") as f:
            tr = json.load(f)
        b = tr["batches"]
        if len(b) >= 2:
            quick = [w for w in b[0]["waits"] if w < 0.1]
            slow = [w for w in b[0]["waits"] if w >= 0.1]
            parts.append(
                f"Where a first `drover status` (no samples held) waits, traced once (`strace -f`, untimed; it slows drover a little): it sent\n"
                f"its {b[0]['n']} first stats requests (`one-shot=true`) {b[0]['sent'] * 1000:.0f} ms after it started; {len(quick)} were\n"
                f"answered at once{f', the other {len(slow)} after {statistics.median(slow):.2f} s (median)' if slow else ''}. The engine's stats collector starts a\n"
                f"cycle when the first request reaches it, and a request that arrives a moment later waits for\n"
                f"its next tick, one second on (so only requests that reached an engine first came back at once). The second samples, asked\n"
                f"{b[1]['sent'] - b[0]['answered']:.2f} s after the last first one, came after {statistics.median(b[1]['waits']):.2f} s (median): the following tick.\n"
                f"drover exited at {tr['exit']:.2f} s. So two samples of most containers span two of the collector's\n"
                f"ticks on these engines, about 2 s: the cost of a first run, which held samples save. The rest is\n"
                f"the {b[0]['sent'] * 1000:.0f} ms before the first stats request (connecting, listing and inspecting the containers,\n"
                f"as `diff` does; slowed by strace) and the {(tr['exit'] - b[-1]['answered']) * 1000:.0f} ms after the last answer.\n"
            )

    # 3. remote
    by, rounds, table = rounds_table(
        f"{work}/remote.json",
        [
            ("ssh-status", "drover status over SSH"),
            ("ssh-unix-status", "drover status, same engines over unix sockets"),
            ("tls-status", "drover status over mutual TLS"),
            ("tls-unix-status", "drover status, same engines over unix sockets"),
            ("ssh-diff", "drover diff over SSH"),
            ("ssh-unix-diff", "drover diff, same engines over unix sockets"),
            ("tls-diff", "drover diff over mutual TLS"),
            ("tls-unix-diff", "drover diff, same engines over unix sockets"),
            ("ssh-login-x3", "for scale: `ssh drbench-sN true`, the three at once"),
        ],
    )

    def rr(a, b):
        return f"{by[a]['median'] / by[b]['median']:.2f}x (paired {paired(rounds, a, b):.2f}x)"

    parts.append(f"""### 3. `status` over SSH (and mutual TLS) against the same engines over unix sockets

scripts/remote-hosts started three times under names of this run's own: three sshd's on
loopback ports, each in front of its own dockerd (h3; over ssh `/var/run/docker.sock` is that
engine), and three dockerd's serving mutual TLS (h4). So the SSH hosts are three machines as
far as drover can tell, each with its own key, known_hosts entry and connection; drover reads
one ssh config (`DROVER_SSH_CONFIG`), in which each sshd has an alias (`drbench-sN`: its port,
key, known_hosts), and the hosts are `ssh://root@drbench-sN`. The unix runs use the same
engines' own sockets and the same environment and host names, so every command sees the same
{PER_HOST} tasks per host (30 in all). Interleaved rounds as above, each after
{meta.get('stats_idle', '1.5')} s of quiet.

| | median | min - max | runs |
| --- | ---: | --- | ---: |
{table}

| transport against unix sockets | ratio |
| --- | ---: |
| status, SSH | {rr('ssh-status', 'ssh-unix-status')} |
| status, mutual TLS | {rr('tls-status', 'tls-unix-status')} |
| diff, SSH | {rr('ssh-diff', 'ssh-unix-diff')} |
| diff, mutual TLS | {rr('tls-diff', 'tls-unix-diff')} |

Each drover command over SSH first opens one ssh connection per host (a ControlMaster that
forwards a local socket to the remote engine's, checked with `/_ping`) and closes it at exit.
Over SSH, `diff` took {fmt_s(by['ssh-diff']['median'] - by['ssh-unix-diff']['median'])} more and `status` {fmt_s(by['ssh-status']['median'] - by['ssh-unix-status']['median'])} more than over unix
sockets; three plain ssh logins at once to the same sshd's (each running `true`) took
{fmt_s(by['ssh-login-x3']['median'])}: the added time is of the order of setting up the connections, paid once per command.
""")
    met = [name for name, ok in verdicts if ok]
    missed = [name for name, ok in verdicts if not ok]
    summary = "Aims of issue 7: " + "; ".join(f"{n}: met" for n in met)
    if missed:
        summary += ("; " if met else "") + "; ".join(f"{n}: **not met**" for n in missed)
    parts.append(summary + ".\n")
    text = "\n".join(parts)
    print(text)
    if record:
        import section

        section.write(record, "day2", text)


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
    if cmd == "env-logs" and len(args) == 2:
        cmd_env_logs(*args)
    elif cmd == "env-fleet" and len(args) >= 2:
        cmd_env_fleet(*args)
    elif cmd == "env-remote" and len(args) >= 2:
        cmd_env_remote(*args)
    elif cmd == "expect" and len(args) == 3:
        cmd_expect(*args)
    elif cmd == "trace-status" and len(args) == 2:
        cmd_trace_status(*args)
    elif cmd == "logs" and len(args) == 6:
        cmd_logs(*args)
    elif cmd == "report" and len(args) in (1, 2):
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
