#!/usr/bin/python3 -I
"""Time several commands in interleaved rounds (wall clock, like hyperfine).

  rounds.py --rounds N [--warmup W] [--prepare CMD] --out FILE.json NAME=CMD...

Each round runs every command once, in an order rotated from round to round,
each preceded by --prepare (untimed). Interleaving matters on a shared
machine: hyperfine runs all repetitions of one command before the next, so a
burst of load elsewhere (a build, a test suite) lands on one command only and
shows up as a difference between them. Warm-up rounds are run and discarded.

Commands are split on whitespace and run without a shell, output discarded;
a non-zero exit fails the whole run. FILE.json has hyperfine's shape:
{"results": [{"command": NAME, "median": s, "mean": s, "times": [s...]}]}
plus "rounds": [{NAME: s, ...}, ...] for paired comparisons.
"""

import json
import statistics
import subprocess
import sys
import time


def run(cmd, what):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace")[-2000:])
        sys.exit(f"rounds: {what} exited {r.returncode}: {' '.join(cmd)}")


def main(argv):
    rounds, warmup, prepare, out, commands = None, 0, None, None, []
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
        elif "=" in a:
            name, _, cmd = a.partition("=")
            commands.append((name, cmd.split()))
        else:
            sys.exit(__doc__)
    if not rounds or not out or not commands:
        sys.exit(__doc__)

    times = {name: [] for name, _ in commands}
    per_round = []
    for r in range(warmup + rounds):
        k = r % len(commands)
        order = commands[k:] + commands[:k]
        this = {}
        for name, cmd in order:
            if prepare:
                run(prepare, "--prepare")
            t0 = time.perf_counter()
            run(cmd, name)
            this[name] = time.perf_counter() - t0
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
        }
        for name, _ in commands
    ]
    with open(out, "w") as f:
        json.dump({"results": results, "rounds": per_round}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
