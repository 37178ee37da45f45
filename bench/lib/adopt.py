#!/usr/bin/python3 -I
"""The adopt benchmark (bench/adopt, issue 14), Python 3 stdlib only.

  adopt.py setup WORK SOCK N           WORK/env (drover.toml, jobs/), and N containers
                                       started by hand on SOCK (WORK/containers.json)
  adopt.py run DROVER WORK SOCK RUNS   1 warm-up + RUNS rounds; WORK/adopt.json
  adopt.py report WORK [RESULTS.md]    print the section (and write it)

The containers: N/10 kinds of 10, each kind its own command and SERVICE
variable, all with the settings drover would give them (an init, the local
log driver with 20m x 5, restart unless-stopped), so that once adopted
`drover diff` has nothing to change; every fourth kind also a secret
(SVCNN_TOKEN: the secrets file holds one value per name), a bind mount with --user and --workdir, or --ulimit and
--cap-add. Each round: undo the last adoption (untimed: the records
removed, every container given its name back, the files deleted); read
every container's ID, start time, restart count and state; then time one
`docker inspect` of all of them, `drover adopt --dry-run`, `drover adopt
--yes` and `drover diff`; and check that every container is the same one,
started at the same time, restarted no more, running, under its task's
name, and that the secrets are in the secrets file only.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meta as metamod  # noqa: E402

ENV = "bench-adopt"
IMAGE = "drover-test/busybox:1"
PER_KIND = 10
AIM = 3.0
SAFE = ["--init", "--log-driver", "local", "--log-opt", "max-size=20m", "--log-opt", "max-file=5", "--restart", "unless-stopped"]


def docker(sock, *args, check=True):
    r = subprocess.run(["docker", "-H", sock, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"adopt: docker {' '.join(args[:3])}…: {r.stderr.strip()}")
    return r.stdout


def kind_args(work, k):
    args = [*SAFE, "-e", f"SERVICE=svc{k:02d}"]
    if k % 4 == 1:
        args += ["-e", f"SVC{k:02d}_TOKEN=bench-secret-{k:02d}-x7q"]
    elif k % 4 == 2:
        data = f"{work}/data/svc{k:02d}"
        os.makedirs(data, exist_ok=True)
        args += ["-v", f"{data}:/data", "--user", "1000:1000", "--workdir", "/data"]
    elif k % 4 == 3:
        args += ["--ulimit", "nofile=1024:2048", "--cap-add", "NET_ADMIN"]
    return args + [IMAGE, "sleep", str(100000 + k)]


def cmd_setup(work, sock, n):
    n = int(n)
    os.makedirs(f"{work}/env/jobs", exist_ok=True)
    with open(f"{work}/env/drover.toml", "w") as f:
        f.write(f'name = "{ENV}"\n\n[hosts.h1]\ndocker = {json.dumps(sock)}\n')
    wanted = [(f"svc{k:02d}-{i}", kind_args(work, k)) for k in range(n // PER_KIND) for i in range(PER_KIND)]

    def start(item):
        name, args = item
        return name, docker(sock, "run", "-d", "--name", name, *args).strip()

    with ThreadPoolExecutor(8) as pool:
        started = dict(pool.map(start, wanted))
    with open(f"{work}/containers.json", "w") as f:
        json.dump(started, f, indent=1)


def identities(sock, ids):
    out = docker(sock, "inspect", "-f", "{{.Id}} {{.Name}} {{.State.StartedAt}} {{.RestartCount}} {{.State.Status}}", *ids)
    found = {}
    for line in out.splitlines():
        cid, name, started, restarts, status = line.split()
        found[cid] = {"name": name.lstrip("/"), "started": started, "restarts": int(restarts), "status": status}
    return found


def undo(work, sock, containers):
    """Back to containers started by hand: no records, their own names, no files."""
    records = docker(sock, "ps", "-aq", "--filter", f"label=drover.env={ENV}").split()
    if records:
        docker(sock, "rm", "-f", *records)
    now = identities(sock, list(containers.values()))

    def rename(item):
        name, cid = item
        if now[cid]["name"] != name:
            docker(sock, "rename", cid, name)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(rename, containers.items()))
    for f in os.listdir(f"{work}/env/jobs"):
        os.remove(f"{work}/env/jobs/{f}")
    for f in ("secrets.env",):
        if os.path.exists(f"{work}/env/{f}"):
            os.remove(f"{work}/env/{f}")
    with open(f"{work}/env/drover.toml", "w") as f:
        f.write(f'name = "{ENV}"\n\n[hosts.h1]\ndocker = {json.dumps(sock)}\n')


def timed(cmd, want=(0,)):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode not in want:
        sys.exit(f"adopt: {' '.join(cmd[:4])}… exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return wall, r


def cmd_run(drover, work, sock, runs):
    runs = int(runs)
    with open(f"{work}/containers.json") as f:
        containers = json.load(f)
    ids = list(containers.values())
    env = f"{work}/env"
    results = {"rounds": []}
    for r in range(runs + 1):
        undo(work, sock, containers)
        time.sleep(1)
        before = identities(sock, ids)
        inspect_wall, _ = timed(["docker", "-H", sock, "inspect", *ids])
        dry_wall, dry = timed([drover, "-C", env, "adopt", "--dry-run"])
        adopt_wall, done = timed([drover, "-C", env, "adopt", "--yes"])
        diff_wall, _ = timed([drover, "-C", env, "diff"])
        after = identities(sock, ids)
        problems = []
        tasks = {}
        for name, cid in containers.items():
            kind = name.rsplit("-", 1)[0]
            b, a = before[cid], after[cid]
            if (a["started"], a["restarts"], a["status"]) != (b["started"], b["restarts"], "running"):
                problems.append(f"{name}: {b} -> {a}")
            # Its job's task: the kind is the job, the oldest container task 0.
            prefix = f"{ENV}.{kind}.h1."
            if not a["name"].startswith(prefix):
                problems.append(f"{name} is {a['name']}, not a task of job {kind}")
            tasks.setdefault(kind, set()).add(a["name"][len(prefix):])
        for kind, got in tasks.items():
            if got != {str(i) for i in range(PER_KIND)}:
                problems.append(f"job {kind} has tasks {sorted(got)}")
        jobs = sorted(os.listdir(f"{env}/jobs"))
        for job in jobs:
            with open(f"{env}/jobs/{job}") as f:
                if "bench-secret-" in f.read():
                    problems.append(f"jobs/{job} holds a secret")
        if "bench-secret-" in dry.stdout + done.stdout + dry.stderr + done.stderr:
            problems.append("a secret was printed")
        if problems:
            sys.exit("adopt: " + "\n".join(problems[:20]))
        restarted = sum(1 for cid in ids if after[cid]["restarts"] != before[cid]["restarts"] or after[cid]["started"] != before[cid]["started"])
        this = {
            "docker_inspect": inspect_wall,
            "dry_run": dry_wall,
            "adopt": adopt_wall,
            "diff": diff_wall,
            "jobs": len(jobs),
            "renamed": sum(1 for cid in ids if after[cid]["name"] != before[cid]["name"]),
            "restarted": restarted,
        }
        label = "warm-up" if r == 0 else f"round {r}/{runs}"
        print(
            f"  {label}: docker inspect {inspect_wall:.2f}s, adopt --dry-run {dry_wall:.2f}s, adopt --yes {adopt_wall:.2f}s"
            f" ({this['jobs']} jobs, {this['renamed']} renamed, {restarted} restarted), diff {diff_wall:.2f}s",
            file=sys.stderr,
            flush=True,
        )
        if r > 0:
            results["rounds"].append(this)
    with open(f"{work}/adopt.json", "w") as f:
        json.dump(results, f, indent=1)


def cmd_report(work, record=None):
    meta = metamod.read(work)
    with open(f"{work}/adopt.json") as f:
        rounds = json.load(f)["rounds"]
    med = statistics.median
    n = int(meta.get("containers", "200"))

    def row(label, key):
        xs = [r[key] for r in rounds]
        return f"| {label} | {med(xs):.2f} s | {min(xs):.2f} - {max(xs):.2f} s |"

    adopt = med([r["adopt"] for r in rounds])
    restarted = sum(r["restarted"] for r in rounds)
    verdict = "met" if adopt < AIM else "NOT met"
    text = f"""## Adopt: `drover adopt` of {n} containers started by hand (issue 14)

{metamod.header(meta, 'bench/adopt')}

{metamod.load_note(meta, "each round ran the same commands in the same order")}

One private engine (scripts/test-hosts' h1, {meta.get('docker', '')}) running {n} containers
started with `docker run`: {n // PER_KIND} kinds of {PER_KIND} (each its own command and variable;
every fourth kind also a secret, a bind mount with `--user` and `--workdir`, or `--ulimit`
and `--cap-add`), all with an init, the local log driver and restart unless-stopped, so that
once adopted they run as their files say. Each round first undoes the last adoption
(untimed), then times one `docker inspect` of all {n} (reading them, the floor of adopting
them), `drover adopt --dry-run`, `drover adopt --yes` (read, group into {rounds[0]['jobs']} jobs of
{PER_KIND} instances, check the files with the spec's loader, plan them, write them and the
secrets file, record the adoptions, rename the {n} containers) and `drover diff` after it.
{len(rounds)} rounds after one warm-up, medians.

| | median | min - max |
| --- | ---: | --- |
{row(f'docker inspect of the {n} containers', 'docker_inspect')}
{row('drover adopt --dry-run', 'dry_run')}
{row('**drover adopt --yes**', 'adopt')}
{row('drover diff afterwards (exit 0: nothing to change)', 'diff')}

**adopt --yes: {adopt:.2f} s for {n} containers (aim: under {AIM:.0f} s: {verdict}).** Restarts:
**{restarted}** over all rounds: after every adoption each of the {n} containers had the ID,
start time and restart count it had before and was running, under its task's name
(`{ENV}.svcNN.h1.I`); the secrets were in `secrets.env` only, in no job file and in no output.
"""
    print(text)
    if record:
        import section

        section.write(record, "adopt", text)


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
    if cmd == "setup" and len(args) == 3:
        cmd_setup(*args)
    elif cmd == "run" and len(args) == 4:
        cmd_run(*args)
    elif cmd == "report" and len(args) in (1, 2):
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
