#!/usr/bin/env bash
# make demo: runs the decision engine on the bundled example (examples/settings.yaml and
# examples/events.jsonl) and prints what a person wants to see: commands by type, a few of them,
# and one explanation.
set -euo pipefail
BIN=${1:-build/provisioner}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SETTINGS=$ROOT/examples/settings.yaml
EVENTS=$ROOT/examples/events.jsonl
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== settings ($SETTINGS)"
"$BIN" check-config "$SETTINGS"
echo
echo "== simulate: $(wc -l <"$EVENTS") Salesforce change events -> Gong commands"
"$BIN" simulate --settings "$SETTINGS" --events "$EVENTS" >"$WORK/commands.jsonl" 2>"$WORK/stderr.txt"
grep -v '^warning' "$WORK/stderr.txt" || true
echo "   ($(grep -c '^warning' "$WORK/stderr.txt" || true) warnings, e.g. refused manager cycles)"
echo
echo "== commands by type"
python3 - "$WORK/commands.jsonl" <<'PY'
import collections, json, sys
cmds = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for t, n in collections.Counter(c["type"] for c in cmds).most_common():
    print(f"   {t:<18} {n}")
print("\n== a few of them")
shown = set()
for c in cmds:
    if c["type"] in shown:
        continue
    shown.add(c["type"])
    c.pop("source", None)
    print("  ", json.dumps(c)[:300])
PY
USER_ID=$(python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][5]['ChangeEventHeader']['recordIds'][0])" "$EVENTS")
echo
echo "== explain --user $USER_ID"
"$BIN" explain --settings "$SETTINGS" --events "$EVENTS" --user "$USER_ID"
