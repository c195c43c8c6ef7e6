#!/usr/bin/env python3
"""Writes `provisioner options` (the one option table) between the README's options markers, and
the metrics table of deploy/OPERATIONS.md (the operators' copy, edited there) over the README's;
with --check fails when the README is out of date. usage: readme-options.py BINARY [--check]"""
import subprocess, sys, pathlib

binary, check = sys.argv[1], "--check" in sys.argv[2:]
root = pathlib.Path(__file__).resolve().parents[2]
readme = root / "README.md"
table = subprocess.run([binary, "options"], check=True, capture_output=True, text=True).stdout
text = readme.read_text()
begin, end = "<!-- options:begin -->\n", "<!-- options:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
new = head + begin + table + end + tail


def metrics_table(lines):
    """The first table headed `| metric | type |`: its first and past-last line."""
    i = next(k for k, l in enumerate(lines) if l.startswith("| metric | type |"))
    j = i
    while j < len(lines) and lines[j].startswith("|"):
        j += 1
    return i, j


ops = (root / "deploy" / "OPERATIONS.md").read_text().split("\n")
oi, oj = metrics_table(ops)
lines = new.split("\n")
ri, rj = metrics_table(lines)
lines[ri:rj] = ops[oi:oj]
new = "\n".join(lines)
if check:
    if new != text:
        sys.exit("README.md's configuration reference or metrics table is out of date: run make readme")
else:
    readme.write_text(new)
