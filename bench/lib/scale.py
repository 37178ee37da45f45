#!/usr/bin/python3 -I
"""The scale benchmark (bench/scale, issue 12), Python 3 stdlib only.

  scale.py env WORK NAME SIMDIR HOSTS       WORK/NAME: HOSTS hosts on SIMDIR/hI.sock, the job
                                            `fleet` with 10 tasks on each
  scale.py extra ENVDIR                     add the job `extra`: one task on every host
  scale.py once OUT.json SIMPID CMD...      run CMD once: wall time, its CPU, the simulator's CPU
  scale.py expect DROVER ENVDIR N           diff must say no changes, status N running
  scale.py timeline TRACE OFFSET            the requests in engine-sim's --trace file from byte
                                            OFFSET on, by kind: how many, when the first came,
                                            when the last was answered
  scale.py report WORK [RESULTS.md]         print the section (and write it)

WORK/fleets lists the fleets measured (HOSTS per line); for each, WORK/
holds up-HOSTS.json (the first `up`, once), rounds-HOSTS.json (diff and
status) and up-rounds-HOSTS.json (`up` of one new task per host), written by
bench/lib/rounds.py with --watch on the simulator.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meta as metamod  # noqa: E402
import rounds as roundsmod  # noqa: E402
import section  # noqa: E402

IMAGE = "drover-test/busybox:1"
PER_HOST = 10
AIMS = {"diff": 1.0, "status": 2.0, "up": 5.0}  # seconds, at the large fleet (issue 12)
BEFORE_HOSTS = 20  # bench/day2 measures this many real engines


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def host_list(n):
    return ", ".join(f'"h{i}"' for i in range(1, n + 1))


def cmd_env(work, name, simdir, hosts):
    hosts = int(hosts)
    d = f"{work}/{name}"
    text = f'name = "scale{hosts}"\n'
    for i in range(1, hosts + 1):
        text += f'\n[hosts.h{i}]\ndocker = "unix://{simdir}/h{i}.sock"\n'
    write(f"{d}/drover.toml", text)
    write(
        f"{d}/jobs/fleet.toml",
        f'image = "{IMAGE}"\nhosts = [{host_list(hosts)}]\ninstances = {PER_HOST}\n'
        'command = ["sleep", "3600"]\nstop_timeout = "1s"\n',
    )


def cmd_extra(envdir):
    with open(f"{envdir}/drover.toml") as f:
        hosts = len(re.findall(r"^\[hosts\.", f.read(), re.M))
    write(
        f"{envdir}/jobs/extra.toml",
        f'image = "{IMAGE}"\nhosts = [{host_list(hosts)}]\ninstances = 1\n'
        'command = ["sleep", "3600"]\nstop_timeout = "1s"\n',
    )


def cmd_once(out, simpid, *cmd):
    sim0 = roundsmod.process_cpu(int(simpid))
    cpu0 = roundsmod.children_cpu()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"scale: {' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-2000:]}")
    with open(out, "w") as f:
        json.dump({
            "wall": wall,
            "cpu": roundsmod.children_cpu() - cpu0,
            "sim_cpu": roundsmod.process_cpu(int(simpid)) - sim0,
        }, f)


def cmd_expect(drover, envdir, n):
    r = subprocess.run([drover, "-C", envdir, "diff"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"scale: drover -C {envdir} diff exited {r.returncode} (want 0: no changes):\n{r.stdout[-3000:]}{r.stderr[-2000:]}")
    r = subprocess.run([drover, "-C", envdir, "--json", "status"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"scale: drover -C {envdir} status exited {r.returncode}:\n{r.stderr[-2000:]}")
    running = sum(t.get("state") == "running" for t in json.loads(r.stdout))
    if running != int(n):
        sys.exit(f"scale: drover -C {envdir} status shows {running} running tasks, want {n}")


def cmd_timeline(trace, offset):
    """Requests by kind (method and path, IDs and names folded): how many, the
    first one's start and the last one's end, the median answer time."""
    kinds = {}
    with open(trace) as f:
        f.seek(int(offset))
        for line in f:
            fields = line.split()
            if len(fields) < 6:
                continue
            came, took, method, path = float(fields[0]), float(fields[1]), fields[3], fields[4].split("?")[0]
            path = re.sub(r"^/v[\d.]+", "", path)
            path = re.sub(r"/(sha256:)?[0-9a-f]{64}", "/ID", path)
            path = re.sub(r"/containers/[^/]+\.[^/]+/", "/containers/NAME/", path)
            kinds.setdefault((method, path), []).append((came, took))
    if not kinds:
        print("  (no requests)")
        return
    t0 = min(came for items in kinds.values() for came, _ in items)
    rows = sorted(kinds.items(), key=lambda kv: min(c for c, _ in kv[1]))
    for (method, path), items in rows:
        took = sorted(t for _, t in items)
        first = min(c for c, _ in items) - t0
        last = max(c + t for c, t in items) - t0
        print(f"  {len(items):6d} x {method:6} {path:42} {first:7.2f} s to {last:7.2f} s, each {took[len(took) // 2] * 1000:6.1f} ms (median)")


# ---- report --------------------------------------------------------------------

def fmt_s(x):
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def real_engine_figures(results_md):
    """drover status and diff at 20 real engines x 10 tasks, from bench/day2's section."""
    try:
        with open(results_md) as f:
            day2 = section.sections(f.read()).get("day2", "")
    except FileNotFoundError:
        return None
    found = {}
    for name in ("status", "diff"):
        m = re.search(rf"\| \*\*drover {name}\*\* \| \*\*([\d.]+) (ms|s)\*\*", day2)
        if m:
            found[name] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    command = re.search(r"Command: `([^`]*)` · ([^·]*) ·.*drover (\w+)", day2)
    if command:
        found["from"] = f"`{command.group(1)}`, {command.group(2).strip()}, drover {command.group(3)}"
    return found if "status" in found and "diff" in found else None


def load(path):
    with open(path) as f:
        return json.load(f)


def cmd_report(work, record=None):
    meta = metamod.read(work)
    with open(f"{work}/fleets") as f:
        fleets = [int(line) for line in f if line.strip()]
    large = max(fleets)
    results_md = record or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "RESULTS.md")
    real = real_engine_figures(results_md)
    parts = [f"## Scale: `diff`, `status` and `up` at {large} hosts x {PER_HOST} tasks, against the engine simulator (issue 12)\n"]
    parts.append(metamod.header(meta, "bench/scale") + "\n")
    parts.append(metamod.load_note(meta) + "\n")
    parts.append(f"""**These figures are against a simulator, not real engines.** `engine-sim` (crates/testkit,
`drover_testkit::sim`) is one process serving one Docker engine per host on its own unix socket;
each answers drover's calls with a real 20.10 engine's JSON (API 1.41) after a real engine's latency
(list {meta.get('lat_list', '?')}, inspect {meta.get('lat_inspect', '?')}, create {meta.get('lat_create', '?')}, start {meta.get('lat_start', '?')}, a process's exit on SIGTERM {meta.get('lat_stop', '?')}, ±30 %
jitter, seed {meta.get('seed', '1')}), and a stats read waits for the next tick of the engine's once-a-second
collector. What they measure is drover: its requests, its bounds on requests in flight, its own
CPU. On a real fleet each engine has its own machine; here the simulator shares the {meta.get('nproc', '?')} CPUs with
drover, and its CPU time during each command is shown beside drover's.

Each fleet: `drover up` brings up the job `fleet`, {PER_HOST} tasks (`sleep`) on every host (timed once);
then `diff` (no changes), `status` with the samples of its previous run (within a minute) and
`status` with none held (a first run: two samples, two collector ticks) run in interleaved
rounds (bench/lib/rounds.py, one warm-up round); then `up` with the job `extra` added, one new task
on every host (created, started, each gated 2 s without a restart), in rounds of its own, with
`drover down extra` between them (untimed). Wall time is the median; CPU is user + system time of
the drover process, median.
""")
    verdicts = []
    for hosts in sorted(fleets, reverse=True):
        tasks = hosts * PER_HOST
        first = load(f"{work}/up-{hosts}.json")
        by = {r["command"]: r for r in load(f"{work}/rounds-{hosts}.json")["results"]}
        by.update({r["command"]: r for r in load(f"{work}/up-rounds-{hosts}.json")["results"]})
        rows = [
            ("diff", "drover diff (no changes)"),
            ("status", "drover status, its last run within a minute"),
            ("status-first", "drover status, no samples held (a first run)"),
            ("up", f"drover up: one new task on each of the {hosts} hosts"),
        ]
        table = []
        for name, label in rows:
            r = by[name]
            table.append(
                f"| {label} | {fmt_s(r['median'])} | {fmt_s(r['min'])} - {fmt_s(r['max'])} | "
                f"{fmt_s(r['cpu_median'])} | {fmt_s(r.get('watched_cpu_median'))} | {len(r['times'])} |"
            )
        table.append(
            f"| drover up of all {tasks} tasks (once, untimed above) | {fmt_s(first['wall'])} | | "
            f"{fmt_s(first['cpu'])} | {fmt_s(first['sim_cpu'])} | 1 |"
        )
        text = f"""### {hosts} hosts x {PER_HOST} tasks ({tasks} tasks)

| | wall, median | min - max | drover CPU | simulator CPU | runs |
| --- | ---: | --- | ---: | ---: | ---: |
""" + "\n".join(table) + "\n"
        if hosts == large:
            lines = []
            for name, aim_key, label in (("diff", "diff", "diff"), ("status", "status", "status"), ("up", "up", "up of one new task per host")):
                median = by[name]["median"]
                ok = median < AIMS[aim_key]
                verdicts.append((f"{label} at {hosts} x {PER_HOST} under {AIMS[aim_key]:.0f} s", ok))
                lines.append(f"`{label}` {fmt_s(median)} (aim < {AIMS[aim_key]:.0f} s: **{'met' if ok else 'not met'}**)")
            text += "\nAims (issue 12): " + "; ".join(lines) + ".\n"
        if hosts == BEFORE_HOSTS and real:
            text += (
                f"\nThe same fleet on {BEFORE_HOSTS} real engines (bench/day2, {real.get('from', 'bench/RESULTS.md')}): "
                f"`status` {fmt_s(real['status'])}, `diff` {fmt_s(real['diff'])}; against the simulator: "
                f"`status` {fmt_s(by['status']['median'])}, `diff` {fmt_s(by['diff']['median'])}.\n"
            )
        parts.append(text)
    profile = f"{work}/profile.md"
    if os.path.exists(profile):
        with open(profile) as f:
            parts.append(f.read())
    parts.append("Verdicts: " + "; ".join(f"{name}: **{'yes' if ok else 'no'}**" for name, ok in verdicts) + ".\n")
    body = "\n".join(parts)
    print(body)
    if record:
        section.write(record, "scale", body)
        print(f"bench/scale: wrote its section of {record}", file=sys.stderr)


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
    if cmd == "env" and len(args) == 4:
        cmd_env(*args)
    elif cmd == "extra" and len(args) == 1:
        cmd_extra(*args)
    elif cmd == "once" and len(args) >= 3:
        cmd_once(*args)
    elif cmd == "expect" and len(args) == 3:
        cmd_expect(*args)
    elif cmd == "timeline" and len(args) == 2:
        cmd_timeline(*args)
    elif cmd == "report" and len(args) in (1, 2):
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
