#!/usr/bin/env python3
"""Writes `provisioner options` (the one option table) between the README's options markers, or
with --check fails when the README is out of date. usage: readme-options.py BINARY [--check]"""
import subprocess, sys, pathlib

binary, check = sys.argv[1], "--check" in sys.argv[2:]
readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
table = subprocess.run([binary, "options"], check=True, capture_output=True, text=True).stdout
text = readme.read_text()
begin, end = "<!-- options:begin -->\n", "<!-- options:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
new = head + begin + table + end + tail
if check:
    if new != text:
        sys.exit("README.md's configuration reference is out of date: run make readme")
else:
    readme.write_text(new)
