#!/usr/bin/python3 -I
"""The rollout benchmark (bench/rollout): a rolling update of 6 tasks on 3
hosts, and a rollback of it.

  rollout.py run DROVER WORK RUNS H1 H2 H3      measure, write WORK/rollout.json
  rollout.py report WORK [RESULTS.md]           print (and record) the section

Rolling update: drover's wall time against the sum of what it must wait for,
measured from the engines themselves in the same run: for each task, the old
container's graceful stop (the engine's `kill` event to its `die` event) and
the new container's health gate (its `start` event to its `health_status:
healthy` event). With `parallel = 1` these happen one after
the other, so their sum is the floor no tool can go under.

Rollback: `drover rollback` against a hand-written docker CLI loop doing the
same for each task in the same order: stop the current container, rename it
aside, rename the kept one back, start it, and wait (polling inspect every
100 ms) until it reports healthy.
"""

import json
import os
import statistics
import subprocess
import sys
import time

ENV = "bench-rollout"
JOB = "web"
PORT = 27000


def docker(sock, *args):
    r = subprocess.run(["docker", "-H", sock, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"rollout: docker {' '.join(args)} on {sock}: {r.stderr.strip()}")
    return r.stdout


def write_env(work, hosts, greeting):
    os.makedirs(f"{work}/env/jobs", exist_ok=True)
    with open(f"{work}/env/drover.toml", "w") as f:
        f.write(f'name = "{ENV}"\n')
        for i, sock in enumerate(hosts, 1):
            f.write(f'[hosts.h{i}]\ndocker = "{sock}"\n')
    with open(f"{work}/env/jobs/{JOB}.toml", "w") as f:
        f.write(f'''image = "drover-test/busybox:1"
hosts = ["h1", "h2", "h3"]
instances = 2
command = ["sh", "-c", "exec httpd -f -p $(({PORT} + DROVER_TASK)) -h /www"]
env = {{ GREETING = "{greeting}" }}
stop_timeout = "5s"
[health]
cmd = ["sh", "-c", "wget -q -O /dev/null http://127.0.0.1:$(({PORT} + DROVER_TASK))/"]
interval = "1s"
timeout = "1s"
retries = 3
[update]
parallel = 1
keep = 2
''')


def drover(bin_, work, *args, check=True):
    start = time.monotonic()
    r = subprocess.run([bin_, "-C", f"{work}/env", *args], capture_output=True, text=True)
    took = time.monotonic() - start
    if check and r.returncode != 0:
        sys.exit(f"rollout: drover {' '.join(args)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return took, r.stdout


def containers(sock):
    out = docker(sock, "ps", "-a", "--no-trunc", "--filter", f"label=drover.env={ENV}", "--format", "{{.ID}} {{.Names}}")
    return dict(line.split(" ", 1)[::-1] for line in out.split("\n") if line)


def events(sock, since, until):
    out = docker(sock, "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", f"label=drover.env={ENV}", "--format", "{{json .}}")
    return [json.loads(line) for line in out.split("\n") if line]


def floor_of(hosts, since, until):
    """Each old container's stop (`kill` to `die`) and each new one's health
    gate (`start` to `health_status: healthy`), from the engines' events."""
    stops, gates = [], []
    for sock in hosts:
        kills, starts = {}, {}
        for e in events(sock, since, until):
            cid = e.get("id") or e.get("Actor", {}).get("ID")
            action = e.get("Action") or e.get("status") or ""
            t = e.get("timeNano", 0) / 1e9
            if action == "kill" and cid not in kills:
                kills[cid] = t
            elif action == "die" and cid in kills:
                stops.append(t - kills.pop(cid))
            elif action == "start":
                starts[cid] = t
            elif action == "health_status: healthy" and cid in starts:
                gates.append(t - starts.pop(cid))
    return stops, gates


def cmd_run(bin_, work, runs, *hosts):
    runs = int(runs)
    write_env(work, hosts, "v0")
    drover(bin_, work, "up", "--yes")
    results = {"update": [], "rollback": [], "cli": []}
    for i in range(1, runs + 1):
        # 1. the rolling update
        write_env(work, hosts, f"v{i}")
        time.sleep(1)
        since = time.time()
        took, _ = drover(bin_, work, "up", "--yes")
        until = time.time() + 0.5
        stops, gates = floor_of(hosts, since, until)
        if len(gates) != 6 or len(stops) != 6:
            sys.exit(f"rollout: expected 6 stops and 6 health gates, measured {len(stops)} and {len(gates)}")
        results["update"].append({"wall": took, "stops": sum(stops), "gates": sum(gates), "floor": sum(stops) + sum(gates)})

        # 2. rollback by drover, then the same by hand (forward again first, untimed)
        time.sleep(1)
        took, _ = drover(bin_, work, "rollback", "web", "--yes")
        results["rollback"].append(took)
        drover(bin_, work, "up", "--yes")
        time.sleep(1)
        results["cli"].append(cli_rollback(hosts))
        drover(bin_, work, "up", "--yes")
    with open(f"{work}/rollout.json", "w") as f:
        json.dump(results, f, indent=1)


def cli_rollback(hosts):
    """The docker CLI loop: per task, in order, what a rollback does by hand."""
    start = time.monotonic()
    for i, sock in enumerate(hosts, 1):
        names = containers(sock)
        for task in range(2):
            own = f"{ENV}.{JOB}.h{i}.{task}"
            kept = sorted((n for n in names if n.startswith(own + ".kept-")), key=lambda n: docker(sock, "inspect", "-f", "{{.Created}}", n))
            if not kept or own not in names:
                sys.exit(f"rollout: nothing to roll {own} back to")
            target = kept[-1]
            docker(sock, "stop", "-t", "5", own)
            docker(sock, "rename", own, f"{own}.kept-{names[own][:12]}")
            docker(sock, "rename", target, own)
            docker(sock, "start", own)
            while docker(sock, "inspect", "-f", "{{.State.Health.Status}}", own).strip() != "healthy":
                time.sleep(0.1)
    return time.monotonic() - start


def cmd_report(work, record=None):
    with open(f"{work}/rollout.json") as f:
        r = json.load(f)
    with open(f"{work}/meta") as f:
        meta = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    med = statistics.median
    walls = [u["wall"] for u in r["update"]]
    floors = [u["floor"] for u in r["update"]]
    ratios = [u["wall"] / u["floor"] for u in r["update"]]
    stops = [u["stops"] for u in r["update"]]
    gates = [u["gates"] for u in r["update"]]
    rb, cli = r["rollback"], r["cli"]
    verdict = "met" if med(ratios) < 1.10 else "not met"
    text = f"""## Rollouts (issue 6)

Command: `{meta.get('command', 'bench/rollout')}` · {meta.get('date', '')} · {meta.get('nproc', '?')} CPUs · drover {meta.get('commit', '')} · engine {meta.get('docker', '')} · {len(walls)} runs, medians.

A job of 6 tasks on 3 hosts (2 per host, busybox httpd), health check every 1 s,
`parallel = 1`. Each run changes its env and runs `drover up --yes`: six
replacements, one after the other. The floor is what the engines themselves
took, read back from their events in the same run: each old container's
graceful stop (`kill` to `die`) plus each new one's health gate (`start` to
`health_status: healthy`).

| | median | min - max |
| --- | ---: | --- |
| drover up (6 replacements) | {med(walls):.2f} s | {min(walls):.2f} - {max(walls):.2f} s |
| floor: stops + health gates | {med(floors):.2f} s | {min(floors):.2f} - {max(floors):.2f} s |
| of which stops | {med(stops):.2f} s | |
| of which health gates | {med(gates):.2f} s | |
| **drover / floor** | **{med(ratios):.2f}x** | target < 1.10x: **{verdict}** |

Rollback of the same job (every task back to its kept container), against a
hand-written docker CLI loop doing the same per task (stop, rename aside,
rename the kept one back, start, poll inspect every 100 ms until healthy):

| | median | min - max |
| --- | ---: | --- |
| drover rollback | {med(rb):.2f} s | {min(rb):.2f} - {max(rb):.2f} s |
| docker CLI loop | {med(cli):.2f} s | {min(cli):.2f} - {max(cli):.2f} s |
| **drover / CLI loop** | **{med(rb) / med(cli):.2f}x** | |
"""
    print(text)
    if record:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import section
        section.write(record, "rollout", text)


def main(argv):
    if len(argv) >= 8 and argv[1] == "run":
        cmd_run(*argv[2:])
    elif len(argv) in (3, 4) and argv[1] == "report":
        cmd_report(*argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
