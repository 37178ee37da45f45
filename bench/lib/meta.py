"""What every benchmark section says about its run: the command, the
machine, and how loaded it was (bench/day2, bench/package).

WORK/meta holds KEY=VALUE lines written by the bash wrapper: date, nproc,
cpu, docker, commit, command, load (at the start), load_end, and optional
load_PHASE lines recorded as each phase began.
"""


def read(work):
    meta = {}
    with open(f"{work}/meta") as f:
        for line in f:
            if "=" in line:
                key, _, value = line.rstrip("\n").partition("=")
                meta[key] = value
    return meta


def header(meta, script):
    return (
        f"Command: `{meta.get('command', script)}` · {meta.get('date', '')} · "
        f"{meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}) · drover {meta.get('commit', '?')} (release build) · "
        f"engine {meta.get('docker', '?')} · the run took {meta.get('seconds', '?')} s."
    )


INTERLEAVED = "the commands compared ran interleaved, so the load fell on each of them alike"


def load_note(meta, fairness=INTERLEAVED):
    """One paragraph on the machine's load: always the figures, and a warning
    when the 1-minute load average went above the number of CPUs."""
    try:
        nproc = int(meta.get("nproc", "0"))
    except ValueError:
        nproc = 0
    points = [("start", meta.get("load", ""))]
    points += [(k[len("load_"):].replace("_", " "), v) for k, v in meta.items() if k.startswith("load_") and k != "load_end"]
    points.append(("end", meta.get("load_end", "")))
    points = [(name, value) for name, value in points if value]
    text = "Load average (1/5/15 min): " + "; ".join(f"{value} at {name}" for name, value in points) + "."
    ones = []
    for _, value in points:
        try:
            ones.append(float(value.split()[0]))
        except (ValueError, IndexError):
            pass
    if nproc and ones and max(ones) > nproc:
        text += (
            f" **The machine was busy** (1-minute load up to {max(ones):.1f} on {nproc} CPUs: it is shared with other"
            " builds and tests, and a figure taken soon after this run started or stopped its own engines includes"
            f" that work too), so absolute times are noisier and likely higher than on a quiet machine; {fairness}."
        )
    return text
