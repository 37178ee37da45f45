#!/usr/bin/env python3
"""Sections of bench/RESULTS.md that each benchmark script owns.

Each script writes its own section between `<!-- section:NAME -->` and
`<!-- /section:NAME -->`, replacing only that block (or appending it), so one
script's results never overwrite another's.

  section.py write RESULTS.md NAME FILE     replace section NAME with FILE's text
"""
import re
import sys


def sections(text):
    """{name: block} of every owned section in text, in order."""
    found = {}
    for m in re.finditer(r"<!-- section:([\w-]+) -->.*?<!-- /section:\1 -->\n?", text, re.S):
        found[m.group(1)] = m.group(0)
    return found


def write(path, name, body):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# drover benchmarks\n"
    block = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"
    pattern = re.compile(rf"<!-- section:{re.escape(name)} -->.*?<!-- /section:{re.escape(name)} -->\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block
    with open(path, "w") as f:
        f.write(text)


def main(argv):
    if len(argv) == 5 and argv[1] == "write":
        with open(argv[4]) as f:
            write(argv[2], argv[3], f.read())
        print(f"wrote section {argv[3]} of {argv[2]}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
