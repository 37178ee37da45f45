#!/usr/bin/python3 -I
"""The package benchmark (bench/package, issue 9), Python 3 stdlib only.

  package.py artifact DIR MB FILES          write the artifact: FILES files, MB megabytes
  package.py run DROVER WORK SOCK REGISTRY RUNS
                                            measure; WORK/package.json
  package.py report WORK [RESULTS.md]       print the section (and write it)

One engine (SOCK) and one registry (REGISTRY, host:port) for both sides.
Each round first changes one small file of the artifact (so both sides have
a new 50 MB layer to build and push), then, in an order that alternates
between rounds:
  - drover: `drover package app --artifact DIR --tag rN`, then again with
    unchanged inputs (`--tag rN-again`: the same image, nothing new to push);
  - docker: `docker build` of the equivalent three-line Dockerfile (FROM
    the base, COPY the artifact to the artifact path, CMD the command) with
    the classic builder, then `docker push`; then the same again with
    unchanged inputs (the builder's cache, nothing new to push).
Round 0 is a warm-up, not counted; after it both images are checked to hold
the same files with the same contents at the artifact path, and the same
command.
"""

import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meta as metamod  # noqa: E402

ENV = "bench-package"
JOB = "app"
BASE = "drover-test/busybox:1"
APP_PATH = "/app"
COMMAND = ["httpd", "-f", "-p", "8080", "-h", APP_PATH]
DOCKER = "/usr/bin/docker"
REPO = "bench/app"

WORDS = (
    "the of and to in is for on that by this with from at as be are or an it not which have has can was "
    "request response server client error warning info debug config value key user session token cache "
    "function return import class public private static void int string list map true false null new"
).split()


# ---- the artifact ---------------------------------------------------------------


def cmd_artifact(root, mb, files):
    """FILES files in a small tree, MB megabytes in all, the same bytes for
    the same arguments: about two thirds of the bytes random (like
    compressed jars and images), the rest text-like (it compresses)."""
    mb, files = float(mb), int(files)
    rng = random.Random(20261128)
    dirs = ["lib", "lib/ext", "static/css", "static/js", "static/img", "conf", "bin", "templates"]
    weights = [rng.lognormvariate(0, 1.2) for _ in range(files)]
    total = int(mb * 1e6)
    sizes = [max(1, int(total * w / sum(weights))) for w in weights]
    sizes[-1] += total - sum(sizes)
    for i, size in enumerate(sizes):
        d = dirs[i % len(dirs)]
        text = d in ("static/css", "static/js", "conf", "templates")
        ext = {"lib": "jar", "lib/ext": "jar", "static/css": "css", "static/js": "js", "static/img": "png", "conf": "conf", "bin": "bin", "templates": "html"}[d]
        path = os.path.join(root, d, f"f{i:04d}.{ext}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            if text:
                chunk = " ".join(rng.choices(WORDS, k=12000)).encode()
                written = 0
                while written < size:
                    n = min(size - written, len(chunk))
                    f.write(chunk[:n])
                    written += n
                    chunk = chunk[n:] or " ".join(rng.choices(WORDS, k=12000)).encode()
            else:
                f.write(rng.randbytes(size))
    with open(os.path.join(root, "VERSION"), "w") as f:
        f.write("build 0\n")
    print(f"package: wrote {len(sizes)} files, {sum(sizes) / 1e6:.1f} MB in {root}", file=sys.stderr)


# ---- running things -------------------------------------------------------------


def timed(cmd, env=None):
    """Runs cmd; its wall time, exit code, output, stderr lines with the
    time each arrived, and its own peak RSS and CPU time (wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = [], []

    def read_out():
        out.append(p.stdout.read())

    def read_err():
        for line in p.stderr:
            err.append((time.perf_counter() - t0, line.decode(errors="replace").rstrip("\n")))

    threads = [threading.Thread(target=read_out), threading.Thread(target=read_err)]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    return {
        "wall": wall,
        "rc": p.returncode,
        "stdout": b"".join(out).decode(errors="replace"),
        "stderr": err,
        "maxrss_kib": usage.ru_maxrss,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def must(r, what):
    if r["rc"] != 0:
        text = "\n".join(line for _, line in r["stderr"][-30:])
        sys.exit(f"package: {what} exited {r['rc']}:\n{r['stdout'][-2000:]}\n{text}")
    return r


# Progress lines (after "drover: ") that start each stage. An image the
# engine already has is only named: "HOST has ID already: tagging it REF",
# or "REF is already ID on HOST" under the same tag.
STAGES = [
    (r"exporting the base", "export"),
    (r"adding ", "layer"),
    (r"loading |\S+ has \S+ already: tagging|\S+ is already ", "load"),
    (r"pushing ", "push"),
    (r"pushed ", "done"),
]


def drover_package(drover, work, tag):
    r = must(timed([drover, "-C", f"{work}/env", "package", JOB, "--artifact", f"{work}/ctx/artifact", "--tag", tag]), f"drover package --tag {tag}")
    marks = {"start": 0.0}
    digest = None
    for t, line in r["stderr"]:
        for prefix, name in STAGES:
            if re.match("drover: (?:" + prefix + ")", line) and name not in marks:
                marks[name] = t
        m = re.search(r"\((sha256:[0-9a-f]{64})\)", line)
        if line.startswith("drover: pushed ") and m:
            digest = m.group(1)
    marks["exit"] = r["wall"]
    order = ["start", "export", "layer", "load", "push", "done", "exit"]
    missing = [k for k in order if k not in marks]
    if missing:
        sys.exit(f"package: drover package printed no {missing} stage:\n" + "\n".join(line for _, line in r["stderr"]))
    names = ["start and connect", "export base", "write layer and image", "load (or only tag)", "push", "finish"]
    stages = {n: marks[order[i + 1]] - marks[order[i]] for i, n in enumerate(names)}
    return {"wall": r["wall"], "reference": r["stdout"].strip(), "digest": digest, "stages": stages, "maxrss_kib": r["maxrss_kib"], "cpu": r["cpu"]}


def docker_build_push(sock, work, ref):
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    b = must(timed([DOCKER, "-H", sock, "build", "-t", ref, f"{work}/ctx"], env=env), f"docker build -t {ref}")
    p = must(timed([DOCKER, "-H", sock, "push", ref], env=env), f"docker push {ref}")
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", p["stdout"])
    return {
        "wall": b["wall"] + p["wall"],
        "build": b["wall"],
        "push": p["wall"],
        "digest": m.group(1) if m else None,
        "classic": "Sending build context to Docker daemon" in b["stdout"] + "".join(line for _, line in b["stderr"]),
        "cached": "Using cache" in b["stdout"],
    }


def docker(sock, *args):
    r = subprocess.run([DOCKER, "-H", sock, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"package: docker {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def content(sock, image):
    """What is at the artifact path in image: file count, and one md5 over
    every file's md5 (sorted by path)."""
    script = f"cd {APP_PATH} && find . -type f | sort | xargs md5sum | md5sum && find . -type f | wc -l"
    return docker(sock, "run", "--rm", "--network", "none", image, "sh", "-c", script).split()


def layer_mb(registry, tag):
    """The compressed size of the last layer (the artifact's) as pushed."""
    req = urllib.request.Request(
        f"http://{registry}/v2/{REPO}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as f:
        manifest = json.load(f)
    return manifest["layers"][-1]["size"] / 1e6


def cmd_run(drover, work, sock, registry, runs):
    runs = int(runs)
    os.makedirs(f"{work}/env/jobs", exist_ok=True)
    with open(f"{work}/env/drover.toml", "w") as f:
        f.write(f'name = "{ENV}"\n\n[hosts.h1]\ndocker = {json.dumps(sock)}\n')
    with open(f"{work}/env/jobs/{JOB}.toml", "w") as f:
        f.write(
            f'image = "{registry}/{REPO}:0"\nhosts = ["h1"]\nbase = "{BASE}"\nartifact_path = "{APP_PATH}"\n'
            f"command = {json.dumps(COMMAND)}\n"
        )
    with open(f"{work}/ctx/Dockerfile", "w") as f:
        f.write(f"FROM {BASE}\nCOPY artifact {APP_PATH}\nCMD {json.dumps(COMMAND)}\n")

    results = {"rounds": [], "checks": {}}
    for r in range(runs + 1):
        with open(f"{work}/ctx/artifact/VERSION", "w") as f:
            f.write(f"build {r + 1}\n")
        this = {}

        def run_drover():
            this["drover"] = drover_package(drover, work, f"r{r}")
            this["drover_again"] = drover_package(drover, work, f"r{r}-again")

        def run_docker():
            this["docker"] = docker_build_push(sock, work, f"{registry}/{REPO}:d{r}")
            this["docker_again"] = docker_build_push(sock, work, f"{registry}/{REPO}:d{r}-again")

        first, second = (run_drover, run_docker) if r % 2 == 0 else (run_docker, run_drover)
        first_name = "drover" if r % 2 == 0 else "docker"
        first()
        second()
        this["first"] = first_name
        this["drover_layer_mb"] = layer_mb(registry, f"r{r}")
        this["docker_layer_mb"] = layer_mb(registry, f"d{r}")
        label = "warm-up" if r == 0 else f"round {r}/{runs}"
        print(
            f"  {label} ({first_name} first): drover package {this['drover']['wall']:.2f}s, again {this['drover_again']['wall']:.2f}s;"
            f" docker build+push {this['docker']['wall']:.2f}s ({this['docker']['build']:.2f}+{this['docker']['push']:.2f}),"
            f" again {this['docker_again']['wall']:.2f}s ({this['docker_again']['build']:.2f}+{this['docker_again']['push']:.2f})",
            file=sys.stderr,
            flush=True,
        )
        if r == 0:
            d_ref, k_ref = this["drover"]["reference"], f"{registry}/{REPO}:d0"
            d_content, k_content = content(sock, d_ref), content(sock, k_ref)
            d_cmd = json.loads(docker(sock, "image", "inspect", "-f", "{{json .Config.Cmd}}", d_ref))
            k_cmd = json.loads(docker(sock, "image", "inspect", "-f", "{{json .Config.Cmd}}", k_ref))
            local_files = sum(len(fs) for _, _, fs in os.walk(f"{work}/ctx/artifact"))
            if d_content != k_content or d_cmd != COMMAND or k_cmd != COMMAND or int(d_content[-1]) != local_files:
                sys.exit(f"package: the images differ: drover {d_content} {d_cmd}, docker {k_content} {k_cmd}, artifact {local_files} files")
            results["checks"] = {"files": local_files, "md5": d_content[0], "cmd": d_cmd}
        else:
            results["rounds"].append(this)
    with open(f"{work}/package.json", "w") as f:
        json.dump(results, f, indent=1)


# ---- report --------------------------------------------------------------------


def cmd_report(work, record=None):
    meta = metamod.read(work)
    with open(f"{work}/package.json") as f:
        data = json.load(f)
    rounds = data["rounds"]
    med = statistics.median

    def col(key, sub="wall"):
        return [r[key][sub] for r in rounds]

    def cell(xs):
        return f"{med(xs):.2f} s | {min(xs):.2f} - {max(xs):.2f} s"

    dn, da = col("drover"), col("drover_again")
    kn, ka = col("docker"), col("docker_again")
    kb, kp = col("docker", "build"), col("docker", "push")
    kab, kap = col("docker_again", "build"), col("docker_again", "push")
    paired_new = med([r["drover"]["wall"] / r["docker"]["wall"] for r in rounds])
    paired_again = med([r["drover_again"]["wall"] / r["docker_again"]["wall"] for r in rounds])
    stage_names = list(rounds[0]["drover"]["stages"])
    stages = {n: med([r["drover"]["stages"][n] for r in rounds]) for n in stage_names}
    stages_again = {n: med([r["drover_again"]["stages"][n] for r in rounds]) for n in stage_names}
    reproducible = all(r["drover"]["digest"] == r["drover_again"]["digest"] for r in rounds)
    classic = all(r[k]["classic"] for r in rounds for k in ("docker", "docker_again"))
    cached = all(r["docker_again"]["cached"] for r in rounds)
    checks = data["checks"]
    rss = max(r[k]["maxrss_kib"] for r in rounds for k in ("drover", "drover_again")) / 1024
    cpu = med([r["drover"]["cpu"] for r in rounds])
    cpu_again = med([r["drover_again"]["cpu"] for r in rounds])

    again_note = ""
    if reproducible and med(da) > med(ka):
        again_note = (
            f"With unchanged inputs drover is slower than docker's cached build: of its {med(da):.2f} s, "
            f"{stages_again['load (or only tag)']:.2f} s is naming the image the engine already has (no load), and "
            f"{stages_again['write layer and image']:.2f} s writing the layer and image again; its push finds "
            f"every blob in the registry ({stages_again['push']:.2f} s).\n"
        )

    def stage_line(s):
        return ", ".join(f"{n} {s[n]:.2f} s" for n in stage_names)

    text = f"""## Package: `drover package` against `docker build` + `docker push` (issue 9)

{metamod.header(meta, 'bench/package')}

{metamod.load_note(meta)}

One private engine (scripts/test-hosts' h1, {meta.get('docker', '')}) and the registry
scripts/test-hosts starts with it ({meta.get('registry', '')}; the engine reaches it through the
script's socat bridge, both sides alike). The artifact: a directory of {checks['files']} files,
{meta.get('artifact_mb', '?')} MB (about two thirds random bytes, like jars and images; the rest text),
on top of the base `{BASE}` at `{APP_PATH}`, command `{json.dumps(COMMAND)}`. The docker side is
`/usr/bin/docker` ({meta.get('docker_client', '')}) with `DOCKER_BUILDKIT=0`: the **classic builder**
ran{' (its output says "Sending build context to Docker daemon")' if classic else ' (NOT confirmed by its output)'}, building

```Dockerfile
FROM {BASE}
COPY artifact {APP_PATH}
CMD {json.dumps(COMMAND)}
```

Each round first changes one small file of the artifact (so both have a new layer to push),
then runs drover's pair and docker's pair, the order alternating between rounds: a package of
the new artifact, then one of the same inputs again under another tag. {len(rounds)} rounds after
one warm-up, medians. Checked after the warm-up: both images hold the same {checks['files']} files
with the same contents at `{APP_PATH}`, and the same command.

| | median | min - max |
| --- | ---: | --- |
| drover package (new artifact, pushed) | {cell(dn)} |
| docker build + docker push | {cell(kn)} |
| of which docker build | {cell(kb)} |
| of which docker push | {cell(kp)} |
| **drover / docker** | **{med(dn) / med(kn):.2f}x** | paired {paired_new:.2f}x |
| drover package, unchanged inputs (nothing new to push) | {cell(da)} |
| docker build (all from cache) + docker push (nothing new) | {cell(ka)} |
| of which docker build | {cell(kab)} |
| of which docker push | {cell(kap)} |
| **drover / docker, unchanged inputs** | **{med(da) / med(ka):.2f}x** | paired {paired_again:.2f}x |

Where drover's time goes (medians of its progress lines' arrival): new artifact: {stage_line(stages)};
unchanged inputs: {stage_line(stages_again)}. drover's own CPU time: {cpu:.2f} s (new), {cpu_again:.2f} s
(unchanged); its peak RSS {rss:.1f} MiB. The artifact's layer as pushed: drover {med([r['drover_layer_mb'] for r in rounds]):.1f} MB,
docker {med([r['docker_layer_mb'] for r in rounds]):.1f} MB (compressed by the engine on push).
Same inputs, same digest (each round's two drover packages): **{'yes' if reproducible else 'NO'}**.
docker's second build came all from its cache: {'yes' if cached else 'not in every round'}.
{again_note}"""
    print(text)
    if record:
        import section

        section.write(record, "package", text)


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
    if cmd == "artifact" and len(args) == 3:
        cmd_artifact(*args)
    elif cmd == "run" and len(args) == 5:
        cmd_run(*args)
    elif cmd == "report" and len(args) in (1, 2):
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
