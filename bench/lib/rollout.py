#!/usr/bin/python3 -I
"""The rollout benchmark (bench/rollout): a rolling update of 6 tasks on 3
hosts, and a rollback of it.

  rollout.py run DROVER WORK RUNS H1 H2 H3      measure, write WORK/rollout.json
  rollout.py report WORK [RESULTS.md]           print (and record) the section

Rolling update: drover's wall time against the sum of what it must wait for,
measured from the engines themselves in the same run: for each task, the old
container's graceful stop (the engine's `kill` event to its `stop` event: the
whole stop the engine does, signal, exit, cleanup, not just until `die`) and
the new container's health gate (its `start` event to its `health_status:
healthy` event). With `parallel = 1` these happen one after the other, so
their sum is the floor no tool can go under.

Beyond the floor, from the same events: the engine's own work between a
task's stop and its new container's start (renaming the old one aside:
`stop` to `rename`; creating and starting the new one: `rename` to `create`
to `start`, drover sending each request as the previous one returns), and
what is left, drover's own time: before the first stop (load, connect, read
the hosts, check images, take the lock), between one task's gate and the
next task's stop, and after the last gate (generations beyond `keep`
removed, lock released, exit).

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


# Debian's client, matching the 20.10 engines (a newer one may be first on PATH).
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def docker(sock, *args):
    r = subprocess.run([DOCKER, "-H", sock, *args], capture_output=True, text=True)
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
    """Each replacement's steps, from the engines' events. With `parallel =
    1` replacements never overlap, so the events of all hosts, in time
    order, read as one sequence: the old container's `kill` ... `stop`,
    `rename`; the new one's `create`, `start`, `health_status: healthy`."""
    timeline = []
    for sock in hosts:
        for e in events(sock, since, until):
            cid = e.get("id") or e.get("Actor", {}).get("ID")
            action = e.get("Action") or e.get("status") or ""
            timeline.append((e.get("timeNano", 0) / 1e9, action, cid))
    timeline.sort()
    done, cur = [], None
    for t, action, cid in timeline:
        if action == "kill" and (cur is None or "healthy" in cur):
            if cur is not None:
                done.append(cur)
            cur = {"old": cid, "kill": t}
        elif cur is None:
            continue
        elif action == "stop" and cid == cur["old"] and "stop" not in cur:
            cur["stop"] = t
        elif action == "rename" and cid == cur["old"] and "rename" not in cur:
            cur["rename"] = t
        elif action == "create" and "rename" in cur and "create" not in cur:
            cur["new"], cur["create"] = cid, t
        elif action == "start" and cid == cur.get("new") and "start" not in cur:
            cur["start"] = t
        elif action == "health_status: healthy" and cid == cur.get("new") and "healthy" not in cur:
            cur["healthy"] = t
    if cur is not None:
        done.append(cur)
    steps = ("kill", "stop", "rename", "create", "start", "healthy")
    complete = [r for r in done if all(k in r for k in steps)]
    if not complete:
        return None
    between = [b["kill"] - a["healthy"] for a, b in zip(complete, complete[1:])]
    return {
        "n": len(complete),
        "stops": sum(r["stop"] - r["kill"] for r in complete),
        "gates": sum(r["healthy"] - r["start"] for r in complete),
        "renames": sum(r["rename"] - r["stop"] for r in complete),
        "creates": sum(r["create"] - r["rename"] for r in complete),
        "starts": sum(r["start"] - r["create"] for r in complete),
        "between": sum(between),
        "first_kill": complete[0]["kill"],
        "last_healthy": complete[-1]["healthy"],
    }


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
        end = time.time()
        time.sleep(0.5)  # the engines' last events
        f = floor_of(hosts, since, end + 0.5)
        if f is None or f["n"] != 6:
            sys.exit(f"rollout: expected 6 replacements in the engines' events, found {0 if f is None else f['n']}")
        f["before"] = f.pop("first_kill") - since
        f["after"] = end - f.pop("last_healthy")
        results["update"].append({"wall": took, "floor": f["stops"] + f["gates"], **f})

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
    sys.dont_write_bytecode = True  # no __pycache__ in the tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import meta as metamod

    with open(f"{work}/rollout.json") as f:
        r = json.load(f)
    meta = metamod.read(work)
    med = statistics.median
    up = r["update"]

    def col(key):
        return [u[key] for u in up]

    def row(label, xs):
        return f"| {label} | {med(xs):.2f} s | {min(xs):.2f} - {max(xs):.2f} s |"

    walls, floors = col("wall"), col("floor")
    ratios = [u["wall"] / u["floor"] for u in up]
    engine = [u["renames"] + u["creates"] + u["starts"] for u in up]
    ratios_engine = [u["wall"] / (u["floor"] + e) for u, e in zip(up, engine)]
    accounted = [u["floor"] + e + u["before"] + u["between"] + u["after"] for u, e in zip(up, engine)]
    rb, cli = r["rollback"], r["cli"]
    verdict = "met" if med(ratios) < 1.10 else "not met"
    text = f"""## Rollouts (issue 6)

Command: `{meta.get('command', 'bench/rollout')}` · {meta.get('date', '')} · {meta.get('nproc', '?')} CPUs · drover {meta.get('commit', '')} · engine {meta.get('docker', '')} · {len(walls)} runs, medians.

{metamod.load_note(meta, 'the floor is read from the same runs, so load that slows the engines raises it too') if meta.get('load') else ''}

A job of 6 tasks on 3 hosts (2 per host, busybox httpd), health check every 1 s,
`parallel = 1`. Each run changes its env and runs `drover up --yes`: six
replacements, one after the other. The floor is what the engines themselves
took, read back from their events in the same run: each old container's
graceful stop (`kill` to `stop`: the whole stop the engine does, not just until
`die`) plus each new one's health gate (`start` to `health_status: healthy`).

| | median | min - max |
| --- | ---: | --- |
{row('drover up (6 replacements)', walls)}
{row('floor: stops + health gates', floors)}
{row('of which stops (`kill` to `stop`)', col('stops'))}
{row('of which health gates (`start` to `healthy`)', col('gates'))}
| **drover / floor** | **{med(ratios):.2f}x** | target < 1.10x: **{verdict}** |

Where the rest of drover's wall time goes, from the same events (sums over the six
replacements, medians over the runs):

| | median | min - max |
| --- | ---: | --- |
{row('engine: old containers renamed aside (`stop` to `rename`)', col('renames'))}
{row('engine: new containers created (`rename` to `create`)', col('creates'))}
{row('engine: new containers started (`create` to `start`)', col('starts'))}
{row('drover before the first stop (load, connect, read the hosts, lock)', col('before'))}
{row('drover between a gate passed and the next stop (5 gaps)', col('between'))}
{row('drover after the last gate (old generations, unlock, exit)', col('after'))}
{row('all of the above + the floor (should be the wall time)', accounted)}
| drover / (floor + the engine's rename, create and start) | {med(ratios_engine):.2f}x | not the aim; what is left is drover's own |

Rollback of the same job (every task back to its kept container), against a
hand-written docker CLI loop doing the same per task (stop, rename aside,
rename the kept one back, start, poll inspect every 100 ms until healthy):

| | median | min - max |
| --- | ---: | --- |
{row('drover rollback', rb)}
{row('docker CLI loop (/usr/bin/docker)', cli)}
| **drover / CLI loop** | **{med(rb) / med(cli):.2f}x** | |
"""
    text = text.replace("\n\n\n", "\n\n")
    print(text)
    if record:
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
