#!/usr/bin/python3 -I
"""Time several commands in interleaved rounds (wall clock, like hyperfine).

  rounds.py --rounds N [--warmup W] [--prepare CMD] [--watch PID] --out FILE.json NAME=CMD...

Each round runs every command once, in an order rotated from round to round,
each preceded by --prepare (untimed). Interleaving matters on a shared
machine: hyperfine runs all repetitions of one command before the next, so a
burst of load elsewhere (a build, a test suite) lands on one command only and
shows up as a difference between them. Warm-up rounds are run and discarded.

Commands are split on whitespace and run without a shell, output discarded;
a non-zero exit fails the whole run. FILE.json has hyperfine's shape:
{"results": [{"command": NAME, "median": s, "mean": s, "times": [s...]}]}
plus "rounds": [{NAME: s, ...}, ...] for paired comparisons. Each result
also has the CPU time (user + system) of the command and its children:
"cpu_times" and "cpu_median"; with --watch, also the CPU time the process
PID (a server the commands talk to) used while each command ran:
"watched_cpu_times" and "watched_cpu_median".
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid):
    """CPU time (user + system) process pid has used, from /proc/PID/stat."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name in parentheses comes field 3 (state): utime (14) and stime (15) follow.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd, what):
    """Runs cmd; returns the CPU time it took (user + system, with its children)."""
    before = children_cpu()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace")[-2000:])
        sys.exit(f"rounds: {what} exited {r.returncode}: {' '.join(cmd)}")
    return children_cpu() - before


def main(argv):
    rounds, warmup, prepare, out, watch, commands = None, 0, None, None, None, []
    args = argv[1:]
    while args:
        a = args.pop(0)
        if a == "--rounds":
            rounds = int(args.pop(0))
        elif a == "--warmup":
            warmup = int(args.pop(0))
        elif a == "--prepare":
            prepare = args.pop(0).split()
        elif a == "--out":
            out = args.pop(0)
        elif a == "--watch":
            watch = int(args.pop(0))
        elif "=" in a:
            name, _, cmd = a.partition("=")
            commands.append((name, cmd.split()))
        else:
            sys.exit(__doc__)
    if not rounds or not out or not commands:
        sys.exit(__doc__)

    times = {name: [] for name, _ in commands}
    cpu = {name: [] for name, _ in commands}
    watched = {name: [] for name, _ in commands}
    per_round = []
    for r in range(warmup + rounds):
        k = r % len(commands)
        order = commands[k:] + commands[:k]
        this = {}
        for name, cmd in order:
            if prepare:
                run(prepare, "--prepare")
            server = process_cpu(watch)
            t0 = time.perf_counter()
            used = run(cmd, name)
            this[name] = time.perf_counter() - t0
            if r >= warmup:
                cpu[name].append(used)
                watched[name].append(process_cpu(watch) - server)
        label = "warm-up" if r < warmup else f"round {r - warmup + 1}/{rounds}"
        print(f"  {label}: " + "  ".join(f"{n} {this[n]:.3f}s" for n, _ in commands),
              file=sys.stderr, flush=True)
        if r >= warmup:
            per_round.append(this)
            for name in this:
                times[name].append(this[name])

    results = [
        {
            "command": name,
            "median": statistics.median(times[name]),
            "mean": statistics.fmean(times[name]),
            "min": min(times[name]),
            "max": max(times[name]),
            "times": times[name],
            "cpu_median": statistics.median(cpu[name]),
            "cpu_times": cpu[name],
            **({"watched_cpu_median": statistics.median(watched[name]), "watched_cpu_times": watched[name]}
               if watch is not None else {}),
        }
        for name, _ in commands
    ]
    with open(out, "w") as f:
        json.dump({"results": results, "rounds": per_round}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
