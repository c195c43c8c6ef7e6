#!/usr/bin/env python3
"""workload.py GEN USERS EVENTS LATENCY_EVENTS SEED THROUGHPUT_OUT LATENCY_OUT [ORG]: the benchmark's
workload, from examples/gen_events.py (GEN, with its ORG) run for EVENTS + LATENCY_EVENTS events: the first
EVENTS lines go to THROUGHPUT_OUT, the rest (later events on the same users) to LATENCY_OUT.

One change to the generator's stream: its non-User events all name the same Account id, and the
input topic is keyed by the first record id, so at a million events those 3% (~30,000 messages)
would all land in one partition and overflow the dev broker's 5 MiB partition cap. Here each names
one of 10,000 accounts instead (deterministically, by line number). The service skips non-User
events whatever their id (R1.1), so this changes nothing but where they are stored."""
import json
import subprocess
import sys


def main():
    if len(sys.argv) not in (8, 9):
        sys.exit(__doc__.split("\n")[0])
    gen, users, events, lat, seed, tp_out, lat_out = sys.argv[1:8]
    org = sys.argv[8] if len(sys.argv) > 8 else "flat"
    events, lat = int(events), int(lat)
    p = subprocess.Popen([sys.executable, gen, users, str(events + lat), seed, org],
                         stdout=subprocess.PIPE, text=True, bufsize=1 << 20)
    n = 0
    with open(tp_out, "w") as tp, open(lat_out, "w") as lt:
        for line in p.stdout:
            if '"entityName":"User"' not in line:
                ev = json.loads(line)
                acct = (n * 2654435761) % 10000
                ev["ChangeEventHeader"]["recordIds"] = ["0015e%010dAAC" % acct]
                line = json.dumps(ev, separators=(",", ":")) + "\n"
            (tp if n < events else lt).write(line)
            n += 1
    if p.wait() != 0:
        sys.exit(f"workload.py: {gen} exited with status {p.returncode}")
    if n != events + lat:
        sys.exit(f"workload.py: {gen} wrote {n} events, not {events + lat}")


if __name__ == "__main__":
    main()
