#!/usr/bin/python3 -I
"""Helpers for bench/run (Python 3 stdlib only).

  bench.py envs WORK SYS_SOCK [H1 H2]      write WORK/env30 (and WORK/env300)
  bench.py specs WORK API SOCK INSPECT     WORK/floor-up.json and WORK/compose.yml,
                                           taking drover.spec from drover's containers
  bench.py check-same REF OTHER WHO        exit 1 unless the containers in inspect
                                           output OTHER have REF's settings
  bench.py requests STRACE OUT.json       count requests/connections in strace output
  bench.py report WORK [RESULTS.md]        print the table (and write RESULTS.md)
"""

import json
import os
import re
import statistics
import sys

# ---- the one workload, as every client creates it ---------------------------
TASKS = 30
IMAGE = "drover-test/busybox:1"
COMMAND = ["sleep", "3600"]
ENV_NAME = "bench"  # part 1 and 2: 30 tasks on the system engine
JOB = "web"
HOST = "local"
LOCALTIME = "/etc/localtime"
STOP_TIMEOUT = 30
LOG = {"driver": "local", "max-size": "20m", "max-file": "5"}

ENV300 = "bench3"  # part 3: 300 tasks, 100 on each of three engines
JOB300 = "fleet"
PER_HOST = 100


def container_name(task):
    return f"{ENV_NAME}.{JOB}.{HOST}.{task}"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def cmd_envs(work, sys_sock, h1=None, h2=None):
    # drover's defaults already are: host network, init, unless-stopped, local
    # log driver 20m x 5, /etc/localtime read-only, stop timeout 30s. They are
    # spelled out so that the benchmark does not drift if the defaults change.
    defaults = f"""
[defaults]
network = "host"
init = true
restart = "unless-stopped"
stop_timeout = "{STOP_TIMEOUT}s"
host_files = ["{LOCALTIME}"]
log = {{ driver = "{LOG['driver']}", max_size = "{LOG['max-size']}", max_files = {LOG['max-file']} }}
"""
    write(
        f"{work}/env30/drover.toml",
        f'name = "{ENV_NAME}"\n[hosts.{HOST}]\ndocker = "unix://{sys_sock}"\n' + defaults,
    )
    write(
        f"{work}/env30/jobs/{JOB}.toml",
        f'image = "{IMAGE}"\nhosts = ["{HOST}"]\ninstances = {TASKS}\n'
        f"command = {json.dumps(COMMAND)}\n",
    )
    if h1 is None:
        return
    write(
        f"{work}/env300/drover.toml",
        f'name = "{ENV300}"\n'
        f'[hosts.local]\ndocker = "unix://{sys_sock}"\n'
        f'[hosts.h1]\ndocker = "{h1}"\n'
        f'[hosts.h2]\ndocker = "{h2}"\n' + defaults,
    )
    write(
        f"{work}/env300/jobs/{JOB300}.toml",
        f'image = "{IMAGE}"\nhosts = ["local", "h1", "h2"]\ninstances = {PER_HOST}\n'
        f"command = {json.dumps(COMMAND)}\n",
    )


def task_env(task):
    return {
        "DROVER_ENV": ENV_NAME,
        "DROVER_HOST": HOST,
        "DROVER_JOB": JOB,
        "DROVER_TASK": str(task),
    }


def drover_labels(inspect):
    """Per task: the labels drover put on its containers (drover.spec is a
    hash drover computes; the other clients copy it so that drover sees their
    containers as its own and `drover diff` can check they are the same)."""
    by_task = {}
    for c in inspect:
        labels = c["Config"]["Labels"]
        if labels.get("drover.env") != ENV_NAME:
            continue
        by_task[int(labels["drover.task"])] = {
            k: v for k, v in labels.items() if k.startswith("drover.")
        }
    missing = sorted(set(range(TASKS)) - set(by_task))
    if missing:
        sys.exit(f"bench: drover created no container for task(s) {missing}")
    return by_task


def engine_body(task, labels):
    """The create request, field for field what drover sends (see
    crates/engine/src/convert.rs create_body)."""
    return {
        "Image": IMAGE,
        "Cmd": COMMAND,
        "Env": [f"{k}={v}" for k, v in sorted(task_env(task).items())],
        "Labels": labels,
        "StopTimeout": STOP_TIMEOUT,
        "HostConfig": {
            "Binds": [],
            "Mounts": [
                {"Type": "bind", "Source": LOCALTIME, "Target": LOCALTIME, "ReadOnly": True}
            ],
            "NetworkMode": "host",
            "Init": True,
            "RestartPolicy": {"Name": "unless-stopped"},
            "LogConfig": {
                "Type": LOG["driver"],
                "Config": {"max-size": LOG["max-size"], "max-file": LOG["max-file"]},
            },
        },
    }


def compose_service(task, labels):
    """The same container as a compose (v1, file format 2.4) service."""
    return {
        "image": IMAGE,
        "container_name": container_name(task),
        "command": COMMAND,
        "environment": task_env(task),
        "labels": labels,
        "network_mode": "host",
        "init": True,
        "restart": "unless-stopped",
        "stop_grace_period": f"{STOP_TIMEOUT}s",
        "logging": {
            "driver": LOG["driver"],
            "options": {"max-size": LOG["max-size"], "max-file": LOG["max-file"]},
        },
        # long syntax: a bind *mount* with ReadOnly, as drover makes it
        "volumes": [
            {"type": "bind", "source": LOCALTIME, "target": LOCALTIME, "read_only": True}
        ],
    }


def cmd_specs(work, api, sock, inspect_path):
    with open(inspect_path) as f:
        labels = drover_labels(json.load(f))
    spec = {
        "socket": sock,
        "api": api,
        "tasks": [
            {"name": container_name(t), "body": engine_body(t, labels[t])}
            for t in range(TASKS)
        ],
    }
    write(f"{work}/floor-up.json", json.dumps(spec, indent=1))
    compose = {
        "version": "2.4",
        "services": {f"{JOB}-{t}": compose_service(t, labels[t]) for t in range(TASKS)},
    }
    # JSON is YAML: docker-compose reads it as is.
    write(f"{work}/compose.yml", json.dumps(compose, indent=1))


def settings(c):
    """What a container runs with, as far as the benchmark requires it equal."""
    cfg, hc = c["Config"], c["HostConfig"]
    return {
        "image": cfg["Image"],
        "cmd": cfg["Cmd"],
        "env": sorted(e for e in (cfg.get("Env") or []) if e.startswith("DROVER_")),
        "labels": {k: v for k, v in (cfg.get("Labels") or {}).items() if k.startswith("drover.")},
        "stop_timeout": cfg.get("StopTimeout"),
        "network": hc["NetworkMode"],
        "init": hc.get("Init"),
        "restart": hc["RestartPolicy"]["Name"],
        "log": [hc["LogConfig"]["Type"], hc["LogConfig"].get("Config")],
        "mounts": [
            (m.get("Type"), m.get("Source"), m.get("Target"), m.get("ReadOnly"))
            for m in (hc.get("Mounts") or [])
        ],
        "binds": hc.get("Binds") or [],
        "memory": hc.get("Memory"),
        "state": c["State"]["Status"],
        "name": c["Name"],
    }


def cmd_check_same(reference_path, other_path, who):
    """Exit 1 unless every container in OTHER has the settings drover's had."""
    with open(reference_path) as f:
        ref = {c["Name"]: settings(c) for c in json.load(f)}
    with open(other_path) as f:
        other = {c["Name"]: settings(c) for c in json.load(f)}
    if sorted(ref) != sorted(other):
        sys.exit(f"bench: {who} made containers {sorted(other)[:3]}..., drover {sorted(ref)[:3]}...")
    for name, want in ref.items():
        got = other[name]
        diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
        if diff:
            sys.exit(f"bench: {who}'s {name} differs from drover's: {diff}")


# ---- results -----------------------------------------------------------------

REQUEST = re.compile(r'"(GET|POST|PUT|DELETE|HEAD) (/[^ "?]*)')
ID = re.compile(r"/[0-9a-f]{64}|/sha256:[0-9a-f]{64}")


def endpoint(method, path):
    path = re.sub(r"^/v1\.\d+", "", path)
    path = ID.sub("/ID", path)
    return f"{method} {path}"


def cmd_requests(strace_path, out_path):
    """Requests and connections one command made, and when, from `strace -f
    -ttt -e trace=execve,exit_group,connect,sendto,sendmsg,write,writev,recvfrom`
    output (lines: PID SECONDS CALL(...)). Times are relative to the execve."""
    connects, requests, first = 0, {}, {}
    t_exec = t_exit = t_answer = None
    with open(strace_path, errors="replace") as f:
        for line in f:
            fields = line.split(None, 2)
            if len(fields) < 3:
                continue
            try:
                t = float(fields[1])
            except ValueError:
                continue
            rest = fields[2]
            call = rest.split("(", 1)[0].strip()
            if call == "execve" and t_exec is None:
                t_exec = t
            elif call == "exit_group" or rest.startswith("+++ exited"):
                t_exit = t
            # with -f, a call can be split: "connect(... <unfinished ...>" and
            # "<... connect resumed>) = 0"; count the first half
            elif call == "connect" and ".sock" in rest and "= -1" not in rest:
                connects += 1
            elif call in ("sendto", "sendmsg", "write", "writev"):
                for m in REQUEST.finditer(rest):
                    e = endpoint(m.group(1), m.group(2))
                    requests[e] = requests.get(e, 0) + 1
                    first.setdefault(e, t)
            elif "HTTP/1.1 " in rest and ("recvfrom" in rest or "read" in rest):
                t_answer = t
    rel = lambda t: round(t - t_exec, 4) if t is not None and t_exec is not None else None  # noqa: E731
    with open(out_path, "w") as f:
        json.dump({
            "connects": connects,
            "requests": requests,
            "first_sent": {e: rel(t) for e, t in first.items()},
            "last_answer": rel(t_answer),
            "exit": rel(t_exit),
        }, f, indent=1)


def request_times(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def requests_summary(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except FileNotFoundError:
        return None
    total = sum(d["requests"].values())
    parts = ", ".join(f"{n} x {e}" for e, n in sorted(d["requests"].items(), key=lambda x: -x[1]))
    return total, d["connects"], parts


def hyperfine(path):
    """{command name: result} from a hyperfine or rounds.py --export-json file."""
    with open(path) as f:
        data = json.load(f)
    return {r["command"]: r for r in data["results"]}


def paired(path, a, b, plus=0.0):
    """Median over rounds of a's time / (b's time + plus) in the same round."""
    with open(path) as f:
        rounds = json.load(f).get("rounds") or []
    xs = [r[a] / (r[b] + plus) for r in rounds if r.get(a) and r.get(b)]
    return statistics.median(xs) if xs else None


# `drover up` waits for every task it started to stay up this long without a
# restart (issue 5: a crash loop must fail `up`; crates/apply/src/gate.rs
# SETTLE). The floor and compose do not check: the fair comparison adds it.
SETTLE = 2.0


def median_file(path):
    try:
        with open(path) as f:
            xs = [float(x) for x in f if x.strip()]
    except FileNotFoundError:
        return None
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_x(x):
    return f"{x:.2f}x" if x else "-"


def pct(a, b):
    return f"{(a / b - 1) * 100:+.0f}%"


def cmd_report(work, record_path=None):
    meta = {}
    with open(f"{work}/meta") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    up = hyperfine(f"{work}/up.json")
    st = hyperfine(f"{work}/status.json")
    df = hyperfine(f"{work}/diff.json")
    med = lambda d, k: d[k]["median"] if k in d else None  # noqa: E731

    d_up, c_up, f_up = med(up, "drover-up"), med(up, "compose-up"), med(up, "floor-up")
    f_up_in = median_file(f"{work}/floor-up.times")
    d_st, c_ps, f_st = med(st, "drover-status"), med(st, "compose-ps"), med(st, "floor-stats")
    dk_st = med(st, "docker-stats")
    d_st1 = med(st, "drover-status-first")
    f_st_in = median_file(f"{work}/floor-stats.times")
    d_df, d_dfj = med(df, "drover-diff"), med(df, "drover-diff-json")
    p_up_f = paired(f"{work}/up.json", "drover-up", "floor-up", SETTLE)
    p_up_c = paired(f"{work}/up.json", "drover-up", "compose-up", SETTLE)
    p_st_f = paired(f"{work}/status.json", "drover-status", "floor-stats")
    r_up = requests_summary(f"{work}/requests.up.json")
    r_st = requests_summary(f"{work}/requests.status.json")
    r_df = requests_summary(f"{work}/requests.diff.json")

    ok_up_f = d_up <= 1.1 * (f_up + SETTLE)
    ok_up_c = d_up < c_up + SETTLE
    ok_st = d_st <= 1.2 * f_st
    ok_df = d_df < 0.300

    def t(d, k, label):
        r = d[k]
        return (label, fmt_s(r["median"]), f"{fmt_s(r['min'])} - {fmt_s(r['max'])}", len(r["times"]))

    def verdict(ok):
        return "met" if ok else "MISSED"

    # (part, [(what, median, range, n)], [(ratio, value, paired, target, verdict)])
    parts = [
        ("1. up: 30 tasks from empty", [
            t(up, "drover-up", "drover up --yes"),
            t(up, "compose-up", "docker-compose up -d (30 services)"),
            t(up, "floor-up", "floor: create+start x 30 at once"),
            ("floor, in-process (no interpreter start)", fmt_s(f_up_in), "", ""),
            ("floor + the 2 s every new task must stay up", fmt_s(f_up + SETTLE), "", ""),
            ("compose + the same 2 s", fmt_s(c_up + SETTLE), "", ""),
        ], [
            ("drover / (floor + 2 s)", fmt_x(d_up / (f_up + SETTLE)), fmt_x(p_up_f), "<= 1.10x", verdict(ok_up_f)),
            ("drover / (compose + 2 s)", fmt_x(d_up / (c_up + SETTLE)), fmt_x(p_up_c), "< 1.00x", verdict(ok_up_c)),
            ("drover / floor, without the check", fmt_x(d_up / f_up), "", "", ""),
        ]),
        ("2. status: 30 running tasks", [
            t(st, "drover-status", "drover status (its last run within a minute)"),
        ] + ([t(st, "drover-status-first", "drover status, no samples held (a first run)")] if d_st1 else []) + [
            t(st, "compose-ps", "docker-compose ps"),
            t(st, "floor-stats", "floor: stats?stream=false x 30 at once"),
            ("floor, in-process (no interpreter start)", fmt_s(f_st_in), "", ""),
        ] + ([t(st, "docker-stats", "docker stats --no-stream (reference)")] if dk_st else []), [
            ("drover / stats floor", fmt_x(d_st / f_st), fmt_x(p_st_f), "<= 1.20x", verdict(ok_st)),
        ] + ([("drover, first run / stats floor", fmt_x(d_st1 / f_st),
               fmt_x(paired(f"{work}/status.json", "drover-status-first", "floor-stats")),
               "<= 1.20x", verdict(d_st1 <= 1.2 * f_st))] if d_st1 else []) + [
            ("drover / compose ps", fmt_x(d_st / c_ps), "", "", ""),
        ]),
        ("3. diff: 300 tasks on 3 engines, no changes", [
            t(df, "drover-diff", "drover diff"),
            t(df, "drover-diff-json", "drover diff --json"),
        ], [
            ("drover diff", fmt_s(d_df), "", "< 300 ms", verdict(ok_df)),
        ]),
    ]

    out = []
    for title, times, ratios in parts:
        out.append(title)
        out.append(f"  {'':<42} {'median':>8}   {'min - max':<17} runs")
        for what, m, rng, n in times:
            out.append(f"  {what:<42} {m:>8}   {rng:<17} {n}")
        for what, v, pv, target, ok in ratios:
            line = f"  {what:<42} {v:>8}"
            if pv:
                line += f"   paired {pv:<8}"
            else:
                line += " " * 19
            if target:
                line += f" target {target}: {ok}"
            out.append(line.rstrip())
        out.append("")
    for label, r in (("drover up", r_up), ("drover status", r_st), ("drover diff (300)", r_df)):
        if r:
            out.append(f"{label}: {r[0]} requests on {r[1]} connections ({r[2]})")
    table = "\n".join(out).rstrip() + "\n"
    print(table)

    if not record_path:
        return

    md = []
    for title, times, ratios in parts:
        md.append(f"\n**{title}**\n")
        md.append("| | median | min - max | runs |")
        md.append("| --- | ---: | --- | ---: |")
        for what, m, rng, n in times:
            md.append(f"| {what} | {m} | {rng} | {n} |")
        for what, v, pv, target, ok in ratios:
            extra = f"paired {pv}" if pv else ""
            tgt = f"target {target}: **{ok}**" if target else ""
            md.append(f"| **{what}** | **{v}** | {extra} | {tgt} |")
    md_tables = "\n".join(md)

    req_lines = []
    for label, r in (("`drover up`", r_up), ("`drover status`", r_st), ("`drover diff` (300 tasks)", r_df)):
        if r:
            req_lines.append(f"- {label}: {r[0]} requests on {r[1]} connections: {r[2]}.")
    req_text = "\n".join(req_lines) if req_lines else "(strace was not available: not counted)"

    # ---- the reading: from this run's numbers ----
    read = []
    rng_d = (up["drover-up"]["min"], up["drover-up"]["max"])
    rng_f = (up["floor-up"]["min"], up["floor-up"]["max"])
    def spread(r):
        return max(r["median"] - r["min"], r["max"] - r["median"]) / r["median"] * 100

    with open(f"{work}/up.json") as f:
        up_rounds = json.load(f)["rounds"]
    per_round = [r["drover-up"] / r["floor-up"] for r in up_rounds]
    sp = max(spread(up["drover-up"]), spread(up["floor-up"]))
    read.append(
        f"**up:** drover brought 30 tasks up in {fmt_s(d_up)} (median of {len(per_round)}), "
        f"the raw-API floor in {fmt_s(f_up)}. drover then waits until every task it started "
        f"has stayed up {SETTLE:.0f} s without a restart (so that a crash loop fails `up`, issue 5), "
        f"which neither the floor nor docker-compose checks: against the floor plus those "
        f"{SETTLE:.0f} s drover is at {fmt_x(d_up / (f_up + SETTLE))}, so the 1.10x target is "
        + ("met" if ok_up_f else f"missed, by {pct(d_up, 1.1 * (f_up + SETTLE))} of the allowed time")
        + f"; against docker-compose ({fmt_s(c_up)}) plus the same wait, drover is "
        f"{'faster' if ok_up_c else 'NOT faster'} ({fmt_x(d_up / (c_up + SETTLE))}). "
        f"Creating and starting 30 containers is the engine's work (containerd and runc on "
        f"{meta.get('nproc')} CPUs): single runs ranged up to {sp:.0f}% from their medians."
    )
    up_t = request_times(f"{work}/requests.up.json")
    if up_t:
        extra = {e: n for e, n in up_t["requests"].items()
                 if e not in ("POST /containers/create", "POST /containers/ID/start")}
        extra_text = ", ".join(f"{n} x `{e}`" for e, n in extra.items()) or "none"
        first_create = up_t["first_sent"].get("POST /containers/create")
        tail = (up_t["exit"] - up_t["last_answer"]) if up_t["exit"] and up_t["last_answer"] else None
        read.append(
            f"drover's own part is small: it makes {sum(up_t['requests'].values())} requests where "
            f"the floor makes 60 (besides the creates and starts: {extra_text}); traced, it sent its "
            f"first create {fmt_s(first_create)} after it started"
            + (f" and exited {fmt_s(tail)} after its last answer" if tail is not None else "")
            + " (strace slows it: upper bounds)"
            + (f"; it opens a new connection for every request ({up_t['connects']} connections, "
               f"where the floor keeps 30 alive), because its engine client (bollard) turns "
               f"connection reuse off, which costs little on a unix socket but would cost a round "
               f"trip, and a TLS handshake, per request to a tcp:// host."
               if up_t["connects"] >= sum(up_t["requests"].values()) else
               f"; {up_t['connects']} connections (the floor: 30).")
        )
    st_t = request_times(f"{work}/requests.status.json")
    first_stats = st_t["first_sent"].get("GET /containers/ID/stats") if st_t else None
    read.append(
        f"**status:** {fmt_s(d_st)} against {fmt_s(f_st)} for 30 bare stats requests "
        f"({fmt_x(d_st / f_st)}; target 1.20x: "
        f"{'met' if ok_st else 'MISSED, by ' + pct(d_st, 1.2 * f_st)}). A bare stats request "
        f"waits for two samples of a collector that ticks once a second, as `docker stats "
        f"--no-stream` does too ({fmt_s(dk_st)}). drover takes one-shot samples, each at the "
        f"collector's next tick: one per container when its previous run (within a minute) "
        f"held one to measure CPU from, as in these rounds, and two on a first run"
        + (f" ({fmt_s(d_st1)}, {fmt_x(d_st1 / f_st)} the floor)" if d_st1 else "")
        + (f"; a first run asks for stats {fmt_s(first_stats)} after it starts (traced), having "
           f"listed and inspected the 30 containers" if first_stats is not None else "")
        + f". `docker-compose ps` ({fmt_s(c_ps)}) reads no usage at all: faster, but it does not "
        f"answer the same question."
    )
    read.append(
        f"**diff:** {fmt_s(d_df)} for 300 tasks on three engines "
        + ("(under the 300 ms target)" if ok_df else f"(OVER the 300 ms target, by {pct(d_df, 0.3)})")
        + f", `--json` {fmt_s(d_dfj)}: it lists and inspects every container on each host, the "
        f"three hosts at once" + (f" ({r_df[0]} requests)." if r_df else ".")
    )
    missed = [n for n, ok in (("up vs floor", ok_up_f), ("up vs compose", ok_up_c),
                              ("status", ok_st), ("diff", ok_df)) if not ok]
    read.append("All four targets were met in this run." if not missed
                else "Missed in this run: " + ", ".join(missed) + ".")

    text = f"""# drover benchmarks

Written by `bench/run --record` (rerun it to refresh; `bench/run` alone only prints).
Every number is a median of wall-clock times over the runs shown, all in one run of
the script on one machine. Parts 1 and 2 run their commands in interleaved rounds
(`bench/lib/rounds.py`: each command once per round, order rotated each round) so that
load from elsewhere on this shared machine falls on all of them alike; the "paired"
ratio is the median of the per-round ratios. Part 3 uses hyperfine (3 warm-up runs).

- date: {meta.get('date')}
- machine: {meta.get('nproc')} CPUs ({meta.get('cpu')}), {meta.get('mem')} memory, {meta.get('kernel')}
- docker: engine {meta.get('docker')} (API {meta.get('api')}, storage {meta.get('storage')}, cgroup v{meta.get('cgroup')}), docker-compose {meta.get('compose')}
- drover: release build of {meta.get('commit')}
- load average (1/5/15 min): {meta.get('load')} at the start, {meta.get('load_end')} at the end; the run took {meta.get('seconds')} s
- command: `{meta.get('command')}`

## What is compared

1. **up, 30 tasks from empty.** All three ways create the same 30 containers: image
   `{IMAGE}`, command `{' '.join(COMMAND)}`, host network, init, restart
   `unless-stopped`, log driver `local` with max-size 20m and max-file 5,
   `/etc/localtime` bound read-only, stop timeout 30 s, the `DROVER_*` env and the
   `drover.*` labels. This is checked, not assumed: before timing, each way runs once,
   `drover diff` must then report no changes, and the inspected settings of the floor's
   and compose's containers must equal those of drover's. Every container is removed
   before every timed run (untimed, followed by {meta.get('settle', '1')} s of quiet).
   - `drover up --yes`, release build.
   - `docker-compose up -d` with a file of 30 services, one per task, each with
     `container_name` set to drover's name. Thirty services rather than one service
     scaled to 30: drover's tasks are not identical replicas (each has its own name,
     `DROVER_TASK` and labels), which `--scale` cannot express, so the 30-service file
     is what a compose user would write to get these containers.
   - the floor, `bench/lib/floor.py`: a stdlib Python client, one thread and one
     keep-alive HTTP/1.1 connection per task on the engine's unix socket, all 30
     connected first and then sending together: the create request drover sends, then
     start on the same connection. Its time includes starting the interpreter
     (about 30 ms); the in-process time is shown too.
   - since issue 5, `drover up` also waits until every task it started has stayed
     up {SETTLE:.0f} s without a restart (a crash loop must fail `up`); neither other way
     checks that, so the targets compare drover with them plus those {SETTLE:.0f} s.
2. **status, 30 running tasks** (made by docker-compose, so that `docker-compose ps`
   has its project): `drover status`, with a cache of the bench's own that its run in
   the round before fills (about ten seconds before), and once more with no cache (a
   directory it cannot write: a first run); `docker-compose ps`, which lists but reads no
   usage; the floor, 30 `GET /containers/ID/stats?stream=false` at once from the same
   client (IDs listed beforehand); and `docker stats --no-stream` for reference. Each
   command starts after {meta.get('stats_idle', '1.5')} s of quiet, so that the engine's stats collector is
   idle every time (otherwise a command inherits the collector's phase from the one
   before it, worth up to a second).
3. **diff, 300 tasks**: 100 running tasks on each of three engines (the system engine
   and two private dockerd's in their own network namespaces, from `scripts/test-hosts` under the name drover-bench);
   `drover diff` with nothing to change (exit 0 is required), and `drover --json diff`.

## Results
{md_tables}

Requests drover made (one run each under `strace -f`, counted from what it wrote to the
engine's socket):

{req_text}

## Reading

{chr(10).join(read)}
"""
    # Keep the sections other benchmark scripts own (bench/lib/section.py).
    try:
        with open(record_path) as f:
            owned = section_blocks(f.read())
    except FileNotFoundError:
        owned = {}
    if owned:
        text = text.rstrip() + "\n\n" + "\n".join(b.rstrip() + "\n" for b in owned.values())
    with open(record_path, "w") as f:
        f.write(text)
    print(f"wrote {record_path}")


def section_blocks(text):
    import re
    found = {}
    for m in re.finditer(r"<!-- section:([\w-]+) -->.*?<!-- /section:\1 -->\n?", text, re.S):
        found[m.group(1)] = m.group(0)
    return found


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "envs" and len(args) in (2, 4):
        cmd_envs(*args)
    elif cmd == "specs" and len(args) == 4:
        cmd_specs(*args)
    elif cmd == "check-same" and len(args) == 3:
        cmd_check_same(*args)
    elif cmd == "requests" and len(args) == 2:
        cmd_requests(*args)
    elif cmd == "report" and len(args) in (1, 2):
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
